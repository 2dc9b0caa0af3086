//! `file:/dir`: processes on one host share tokens through files, coordinated by flock(2).
//!
//! Per app: `<dir>/<prefix><appid>.json` (the record, replaced atomically by rename, mode 0600)
//! and `<dir>/<prefix><appid>.lock` (the lease: an exclusive flock, which the kernel releases
//! when its holder exits or is killed, so a dead holder never wedges the others).
//!
//! Times in the record are on the host's boot clock (`fs_unix::host_clock_ms`), tagged with the
//! boot id: no process's wall clock matters, and a record from before a reboot is refused.
//! The platform-specific parts (no-follow opens, exclusive temp files, flock, the boot clock)
//! live in `fs_unix`.

use std::fmt;
use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::fs_unix as sys;
use super::record::{Loaded, Raw, Record, validate};
use super::{Lease, Paced, Store, check_prefix, store_error};
use crate::error::Error;

/// The temp file is padded to this size before a fetch, so that the disk space a publish
/// needs is secured before anyone asks WeChat (a full disk fails before the fetch, not after).
/// A record with a 512-byte token is well under it; JSON ignores the trailing spaces.
const RESERVED: usize = 2048;

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
#[derive(Serialize)]
struct OnDisk<'a> {
    v: u32,
    appid: &'a str,
    access_token: &'a str,
    generation: u64,
    boot_id: &'a str,
    fetched_at_boot_ms: u64,
    expires_at_boot_ms: u64,
    invalidated: bool,
    /// Tickets: a refresh ahead got the same value back (see `Record::renewed`).
    renewed: bool,
}

const VERSION: u32 = 2;

impl FileStore {
    pub fn new(dir: &str, prefix: &str) -> Result<FileStore, Error> {
        check_prefix(prefix)?;
        let dir = PathBuf::from(dir);
        if !dir.is_absolute() {
            return Err(Error::invalid(
                "options_json: a file store needs an absolute directory, as in file:/var/lib/wx-token",
            ));
        }
        sys::ensure_private_dir(&dir)
            .map_err(|e| Error::invalid(format!("options_json: store: refusing {e}")))?;
        // ':' is legal on Linux but not on every file system the directory may live on.
        Ok(FileStore {
            dir,
            prefix: prefix.replace(':', "_"),
        })
    }

    /// `appid` is an id, or for a ticket `id@kind` ('@' is not in the id alphabet, so a ticket's
    /// files never collide with another id's).
    fn path(&self, appid: &str, ext: &str) -> Result<PathBuf, Error> {
        let (id, kind) = super::split_key(appid);
        if id.starts_with('.')
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
            || kind.is_some_and(|k| {
                k.is_empty() || !k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            })
        {
            return Err(Error::invalid(
                "a file store needs appids made of [A-Za-z0-9_-.]",
            ));
        }
        Ok(self.dir.join(format!("{}{appid}.{ext}", self.prefix)))
    }

    /// Writes `record` into `tmp` (prepared under the lease, or created now) and renames it
    /// over the record: readers see the old record or the new one, never a partial write.
    fn write_record(
        &self,
        appid: &str,
        record: &Record,
        tmp: Option<(fs::File, PathBuf)>,
    ) -> Result<(), Error> {
        let path = self.path(appid, "json")?;
        let now = sys::host_clock_ms();
        let fetched = now.saturating_sub(record.age_ms());
        let body = serde_json::to_vec(&OnDisk {
            v: VERSION,
            appid,
            access_token: &record.access_token,
            generation: record.generation,
            boot_id: sys::boot_id(),
            fetched_at_boot_ms: fetched,
            expires_at_boot_ms: fetched + record.lifetime_ms,
            invalidated: record.invalidated,
            renewed: record.renewed,
        })
        .map_err(store_error)?;
        let (mut f, tmp) = match tmp {
            Some(t) => t,
            None => sys::create_temp(&path).map_err(|e| {
                store_error(format!(
                    "cannot create a file in {}: {e}",
                    self.dir.display()
                ))
            })?,
        };
        let mut write = || -> std::io::Result<()> {
            f.seek(SeekFrom::Start(0))?;
            f.write_all(&body)?;
            f.sync_data()?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            store_error(format!("cannot write {}: {e}", path.display()))
        })
    }
}

/// Parses a record file leniently into its fields, so `validate` can say what is wrong and
/// keep a sane generation.
fn parse(bytes: &[u8], appid: &str) -> Result<Raw, (u64, String)> {
    let v: Value = serde_json::from_slice(bytes).map_err(|_| (0, "not JSON".to_owned()))?;
    let num = |k: &str| v.get(k).and_then(Value::as_u64);
    let generation = num("generation").unwrap_or(0);
    if num("v") != Some(u64::from(VERSION)) {
        return Err((generation, "not a version-2 record".to_owned()));
    }
    if v.get("appid").and_then(Value::as_str) != Some(appid) {
        return Err((generation, "the record names another appid".to_owned()));
    }
    if v.get("boot_id").and_then(Value::as_str) != Some(sys::boot_id()) {
        // Boot-clock times from another boot mean nothing.
        return Err((
            generation,
            "written before the host's last reboot".to_owned(),
        ));
    }
    Ok(Raw {
        access_token: v
            .get("access_token")
            .and_then(Value::as_str)
            .map(str::to_owned),
        generation: num("generation"),
        fetched_at_ms: num("fetched_at_boot_ms"),
        expires_at_ms: num("expires_at_boot_ms"),
        invalidated: v.get("invalidated").and_then(Value::as_bool) == Some(true),
        renewed: v.get("renewed").and_then(Value::as_bool) == Some(true),
    })
}

/// Loads and validates a record file (see `validate`).
pub fn load_file(path: &Path, appid: &str) -> Result<Loaded, Error> {
    let bytes = match sys::read_small(path) {
        Ok(Some(b)) => b,
        Ok(None) => return Ok(Loaded::Absent),
        // A symlink or foreign file where the record belongs is a bad record: replaced (the
        // rename replaces the link itself, never its target).
        Err(e) if sys::not_ours(&e) => {
            return Ok(Loaded::Bad {
                generation: 0,
                why: format!("{} is not a regular file of ours", path.display()),
            });
        }
        Err(e) => return Err(store_error(format!("cannot read {}: {e}", path.display()))),
    };
    Ok(match parse(&bytes, appid) {
        Ok(raw) => validate(raw, sys::host_clock_ms()),
        Err((generation, why)) => Loaded::Bad {
            generation: generation.min(super::record::MAX_GENERATION),
            why,
        },
    })
}

impl Store for FileStore {
    fn load(&self, appid: &str) -> Result<Loaded, Error> {
        load_file(&self.path(appid, "json")?, appid)
    }

    fn try_lease(&self, appid: &str, _ttl: Duration) -> Result<Option<Lease>, Error> {
        let path = self.path(appid, "lock")?;
        let file = sys::open_lock(&path)
            .map_err(|e| store_error(format!("cannot open {}: {e}", path.display())))?;
        if !sys::lock(&file, false)
            .map_err(|e| store_error(format!("cannot lock {}: {e}", path.display())))?
        {
            return Ok(None);
        }
        // A fork child must not keep this lock alive through its copy of the descriptor.
        crate::fork::track_fd(crate::platform::raw_fd(&file));
        Ok(Some(Lease {
            owner: super::owner_id(),
            file: Some(file),
            temp: None,
            rtt_ms: 0,
        }))
    }

    fn prepare(&self, appid: &str, lease: &mut Lease) -> Result<(), Error> {
        let path = self.path(appid, "json")?;
        sys::remove_stale_temps(&path);
        let (mut f, tmp) = sys::create_temp(&path).map_err(|e| {
            store_error(format!(
                "cannot create a file in {}: {e}",
                self.dir.display()
            ))
        })?;
        let mut reserve = || -> std::io::Result<()> {
            f.write_all(&[b' '; RESERVED])?;
            f.sync_data()
        };
        if let Err(e) = reserve() {
            let _ = fs::remove_file(&tmp);
            return Err(store_error(format!(
                "cannot write in {}: {e}",
                self.dir.display()
            )));
        }
        lease.temp = Some((f, tmp));
        Ok(())
    }

    fn publish(&self, appid: &str, record: &Record, lease: &mut Lease) -> Result<bool, Error> {
        if lease.file.is_none() {
            return Ok(false);
        }
        if let Loaded::Valid(current) = self.load(appid)?
            && current.generation >= record.generation
        {
            return Ok(false);
        }
        self.write_record(appid, record, lease.temp.take())?;
        Ok(true)
    }

    fn invalidate(&self, appid: &str, generation: u64, lease: &mut Lease) -> Result<bool, Error> {
        match self.load(appid)? {
            Loaded::Valid(mut r)
                if lease.file.is_some() && r.generation == generation && !r.invalidated =>
            {
                r.invalidated = true;
                self.write_record(appid, &r, lease.temp.take())?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn pace_replacement(
        &self,
        appid: &str,
        spacing: Duration,
        daily: u32,
        lease: &mut Lease,
    ) -> Result<Paced, Error> {
        if lease.file.is_none() {
            return Err(store_error("no lease held"));
        }
        // `<boot id> <boot-clock ms>...`: the fleet's replacements of the last day; read and
        // replaced under the lease's flock, so two processes never both claim one.
        let path = self.path(appid, "passive")?;
        let (now, boot) = (sys::host_clock_ms(), sys::boot_id());
        let mut times: Vec<u64> = match sys::read_small(&path) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes.unwrap_or_default()).into_owned();
                let mut words = text.split_whitespace();
                match words.next() {
                    Some(b) if b == boot => words.filter_map(|t| t.parse().ok()).collect(),
                    _ => Vec::new(),
                }
            }
            // A planted symlink or foreign file: ignored, and replaced by the rename below.
            Err(e) if sys::not_ours(&e) => Vec::new(),
            Err(e) => return Err(store_error(format!("cannot read {}: {e}", path.display()))),
        };
        let paced = super::pace_times(&mut times, now, spacing, daily);
        if paced != Paced::Claimed {
            return Ok(paced);
        }
        sys::remove_stale_temps(&path);
        let fail = |e: std::io::Error| store_error(format!("cannot write {}: {e}", path.display()));
        let (mut f, tmp) = sys::create_temp(&path).map_err(fail)?;
        let body: String = std::iter::once(boot.to_owned())
            .chain(times.iter().map(u64::to_string))
            .collect::<Vec<_>>()
            .join(" ");
        let written = f
            .write_all(body.as_bytes())
            .and_then(|()| f.sync_data())
            .and_then(|()| fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(fail(e));
        }
        Ok(Paced::Claimed)
    }

    fn release(&self, _appid: &str, mut lease: Lease) -> Result<(), Error> {
        if let Some((_, tmp)) = lease.temp.take() {
            let _ = fs::remove_file(tmp);
        }
        // Closing the descriptor releases the flock.
        drop(lease);
        Ok(())
    }

    fn budget_dir(&self) -> Option<&Path> {
        Some(&self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Arbitrary bytes in a record file never panic the parser, and what it accepts has a
        /// sane generation.
        #[test]
        fn arbitrary_record_files_are_parsed_or_refused(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            if let Ok(raw) = parse(&bytes, "wx1")
                && let Loaded::Valid(r) = validate(raw, sys::host_clock_ms())
            {
                proptest::prop_assert!(r.remaining_ms <= r.lifetime_ms);
            }
        }

        /// JSON-shaped records with hostile values: the same.
        #[test]
        fn hostile_json_records_are_validated(
            token in ".{0,600}",
            generation in proptest::num::u64::ANY,
            fetched in proptest::num::u64::ANY,
            expires in proptest::num::u64::ANY,
        ) {
            let body = serde_json::json!({"v": 2, "appid": "wx1", "access_token": token,
                "generation": generation, "boot_id": sys::boot_id(),
                "fetched_at_boot_ms": fetched, "expires_at_boot_ms": expires, "invalidated": false});
            let raw = parse(body.to_string().as_bytes(), "wx1").unwrap();
            if let Loaded::Valid(r) = validate(raw, sys::host_clock_ms()) {
                proptest::prop_assert!(super::super::record::valid_token(&r.access_token));
                proptest::prop_assert!(r.remaining_ms <= r.lifetime_ms);
            }
        }
    }
}
