//! `file:/dir`: processes on one host share tokens through files, coordinated by flock(2).
//!
//! Per app: `<dir>/<prefix><appid>.json` (the record, replaced atomically by rename, mode 0600)
//! and `<dir>/<prefix><appid>.lock` (the lease: an exclusive flock, which the kernel releases
//! when its holder exits or is killed, so a dead holder never wedges the others).

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Lease, Record, Store, check_prefix, store_error};
use crate::error::Error;

pub struct FileStore {
    dir: PathBuf,
    prefix: String,
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "file:{} ({})", self.dir.display(), self.prefix)
    }
}

/// The on-disk format (docs/STORES.md); `v` lets a later version change it knowingly.
#[derive(Serialize, Deserialize)]
struct OnDisk {
    v: u32,
    appid: String,
    access_token: String,
    generation: u64,
    fetched_at_ms: u64,
    expires_at_ms: u64,
    invalidated: bool,
}

impl FileStore {
    pub fn new(dir: &str, prefix: &str) -> Result<FileStore, Error> {
        check_prefix(prefix)?;
        let dir = PathBuf::from(dir);
        if !dir.is_absolute() {
            return Err(Error::invalid(
                "options_json: a file store needs an absolute directory, as in file:/var/lib/wx-token",
            ));
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| store_error(format!("cannot create {}: {e}", dir.display())))?;
        // ':' is legal on Linux but not on every file system the directory may live on.
        Ok(FileStore {
            dir,
            prefix: prefix.replace(':', "_"),
        })
    }

    fn path(&self, appid: &str, ext: &str) -> Result<PathBuf, Error> {
        if appid.starts_with('.')
            || !appid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        {
            return Err(Error::invalid(
                "a file store needs appids made of [A-Za-z0-9_-.]",
            ));
        }
        Ok(self.dir.join(format!("{}{appid}.{ext}", self.prefix)))
    }

    fn write_record(&self, appid: &str, record: &Record) -> Result<(), Error> {
        let path = self.path(appid, "json")?;
        let body = serde_json::to_vec(&OnDisk {
            v: 1,
            appid: appid.to_owned(),
            access_token: record.access_token.clone(),
            generation: record.generation,
            fetched_at_ms: record.fetched_at_ms,
            expires_at_ms: record.expires_at_ms,
            invalidated: record.invalidated,
        })
        .map_err(store_error)?;
        let tmp = path.with_extension(format!("json.tmp.{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&body)?;
            f.sync_data()?;
            // Readers see the old record or the new one, never a partial write.
            fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            store_error(format!("cannot write {}: {e}", path.display()))
        })
    }
}

fn read(path: &Path) -> Result<Option<OnDisk>, Error> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| store_error(format!("{} is not a wx-token record: {e}", path.display()))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(store_error(format!("cannot read {}: {e}", path.display()))),
    }
}

impl Store for FileStore {
    fn load(&self, appid: &str) -> Result<Option<Record>, Error> {
        Ok(read(&self.path(appid, "json")?)?.map(|d| Record {
            access_token: d.access_token,
            generation: d.generation,
            fetched_at_ms: d.fetched_at_ms,
            expires_at_ms: d.expires_at_ms,
            invalidated: d.invalidated,
        }))
    }

    fn try_lease(&self, appid: &str, _ttl: Duration) -> Result<Option<Lease>, Error> {
        let path = self.path(appid, "lock")?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| store_error(format!("cannot open {}: {e}", path.display())))?;
        // SAFETY: a valid open descriptor.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let err = std::io::Error::last_os_error();
            return match err.raw_os_error() {
                Some(libc::EWOULDBLOCK) => Ok(None),
                _ => Err(store_error(format!(
                    "cannot lock {}: {err}",
                    path.display()
                ))),
            };
        }
        // A fork child must not keep this lock alive through its copy of the descriptor.
        crate::fork::track_fd(file.as_raw_fd());
        Ok(Some(Lease {
            owner: super::owner_id(),
            file: Some(file),
        }))
    }

    fn publish(&self, appid: &str, record: &Record, lease: &Lease) -> Result<bool, Error> {
        if lease.file.is_none() {
            return Ok(false);
        }
        if let Some(current) = read(&self.path(appid, "json")?)?
            && current.generation >= record.generation
        {
            return Ok(false);
        }
        self.write_record(appid, record)?;
        Ok(true)
    }

    fn invalidate(&self, appid: &str, generation: u64, lease: &Lease) -> Result<bool, Error> {
        match self.load(appid)? {
            Some(mut r) if lease.file.is_some() && r.generation == generation && !r.invalidated => {
                r.invalidated = true;
                self.write_record(appid, &r)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn release(&self, _appid: &str, lease: Lease) {
        // Closing the descriptor releases the flock.
        drop(lease);
    }
}
