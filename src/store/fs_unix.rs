//! Unix file handling for the file store and the per-host fallback budget, kept apart so that a
//! port to another platform only adds its own side of these few functions.
//!
//! The store directory may be reachable by other local users, so every file is opened with
//! `O_NOFOLLOW | O_CLOEXEC` (a planted symlink is an error, never followed), checked to be a
//! regular file owned by us after opening (`fstat`), and temporary files are created with
//! `O_EXCL` under unpredictable names (a pre-created file is never reused or truncated).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A record is ~400 bytes; a larger file is not ours and is not read whole.
const MAX_READ: u64 = 64 * 1024;

pub fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// Whether a read or open failed because the path is not a regular file of ours (a symlink
/// with O_NOFOLLOW: ELOOP; a foreign or oversized file: InvalidData).
pub fn not_ours(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::InvalidData || e.raw_os_error() == Some(libc::ELOOP)
}

/// Creates `dir` (0700) if missing, then refuses it unless it is a directory owned by the
/// effective user and not writable by group or others: anyone who can write it can plant
/// files and links there, or replace our records with tokens of their own.
pub fn ensure_private_dir(dir: &Path) -> Result<(), String> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let link = fs::symlink_metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if link.file_type().is_symlink() && link.uid() != euid() && link.uid() != 0 {
        return Err(format!(
            "{} is a symbolic link owned by uid {}, not by this user ({}) or root",
            dir.display(),
            link.uid(),
            euid()
        ));
    }
    let meta = fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    if meta.uid() != euid() {
        return Err(format!(
            "{} is owned by uid {}, not by this process's user ({}); use a directory of its own",
            dir.display(),
            meta.uid(),
            euid()
        ));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(format!(
            "{} has mode {mode:03o}: group or others can write it; chmod 700 it",
            dir.display()
        ));
    }
    Ok(())
}

/// Refuses what `open` found unless it is a regular file of ours.
fn check_opened(f: &File, path: &Path) -> io::Result<()> {
    let meta = f.metadata()?;
    if !meta.is_file() || meta.uid() != euid() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} is not a regular file owned by this user; remove it",
                path.display()
            ),
        ));
    }
    Ok(())
}

/// Reads a small file, `None` if it does not exist. A symlink, FIFO, device or another user's
/// file is an error.
pub fn read_small(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let f = match OpenOptions::new()
        .read(true)
        // O_NONBLOCK: opening a planted FIFO must not hang; it is then refused by check_opened.
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    check_opened(&f, path)?;
    let mut out = Vec::new();
    f.take(MAX_READ).read_to_end(&mut out)?;
    Ok(Some(out))
}

/// Opens (creating 0600 if needed) a lock file, without following a symlink.
pub fn open_lock(path: &Path) -> io::Result<File> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)?;
    check_opened(&f, path)?;
    Ok(f)
}

/// Creates a new temporary file next to `target`, exclusively, under a name nobody can
/// predict: `<target>.tmp.<pid>.<random>`.
pub fn create_temp(target: &Path) -> io::Result<(File, PathBuf)> {
    loop {
        let random = (crate::pacing::jitter() * u64::MAX as f64) as u64;
        let mut name = target.as_os_str().to_owned();
        name.push(format!(".tmp.{}.{random:016x}", std::process::id()));
        let path = PathBuf::from(name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
        {
            Ok(f) => return Ok((f, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Removes temp files next to `target` left by processes that no longer exist (killed
/// mid-refresh, say); called under the lease, so no live writer's file is touched.
pub fn remove_stale_temps(target: &Path) {
    let (Some(dir), Some(stem)) = (target.parent(), target.file_name()) else {
        return;
    };
    let prefix = format!("{}.tmp.", stem.to_string_lossy());
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        let Some(pid) = rest
            .split('.')
            .next()
            .and_then(|p| p.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        // SAFETY: signal 0 only checks whether the process exists.
        let gone = pid > 0
            && unsafe { libc::kill(pid, 0) } != 0
            && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Takes an exclusive flock; `Ok(false)` if another holder has it and `wait` is false.
pub fn lock(f: &File, wait: bool) -> io::Result<bool> {
    let op = if wait {
        libc::LOCK_EX
    } else {
        libc::LOCK_EX | libc::LOCK_NB
    };
    // SAFETY: a valid open descriptor.
    if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EWOULDBLOCK) if !wait => Ok(false),
        _ => Err(err),
    }
}

/// Milliseconds on a clock every process of this host shares and that no one can set:
/// `CLOCK_BOOTTIME` (counts suspend too). Wall-clock errors of any process do not touch it.
pub fn host_clock_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let clock = libc::CLOCK_BOOTTIME;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let clock = libc::CLOCK_MONOTONIC;
    // SAFETY: a valid clock id and out pointer.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// Identifies this boot of the host: host-clock times from another boot mean nothing.
pub fn boot_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "unknown".to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temps_of_dead_processes_are_removed_and_others_kept() {
        let dir = std::env::temp_dir().join(format!("wx-fsunix-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let target = dir.join("r.json");
        // A process that has exited and been reaped.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = dir.join(format!("r.json.tmp.{dead}.00"));
        let live = dir.join(format!("r.json.tmp.{}.00", std::process::id()));
        let other = dir.join("q.json.tmp.1.00");
        for p in [&stale, &live, &other] {
            fs::write(p, b"").unwrap();
        }
        remove_stale_temps(&target);
        assert!(!stale.exists() && live.exists() && other.exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
