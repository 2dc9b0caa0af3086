//! Shared token stores: how processes on one host (`file:`) or many hosts (`redis://`) agree on
//! one token per app, so that they do not overwrite each other's tokens.
//!
//! A store holds, per app, one small record (documented in docs/STORES.md) and a refresh lease.
//! Only the lease holder asks WeChat; everyone else reads the record it publishes.

mod file;
mod redis;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::Error;
use crate::status::Status;

pub use self::file::FileStore;
pub use self::redis::RedisStore;

/// One app's shared token, as stored. Never holds the AppSecret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub access_token: String,
    /// Increases by one with every token published for the app; invalidation names it, so
    /// that a report about generation N can never withdraw generation N+1.
    pub generation: u64,
    /// Wall-clock milliseconds since the UNIX epoch: monotonic clocks are not comparable across
    /// processes or hosts.
    pub fetched_at_ms: u64,
    pub expires_at_ms: u64,
    /// Set when a process reported this token rejected and could not replace it yet.
    pub invalidated: bool,
}

impl Record {
    pub fn lifetime(&self) -> Duration {
        Duration::from_millis(self.expires_at_ms.saturating_sub(self.fetched_at_ms))
    }

    pub fn is_usable(&self, now_ms: u64) -> bool {
        !self.invalidated && now_ms < self.expires_at_ms
    }

    /// Whether a refresh `ahead` of expiry (capped at half the lifetime) is due.
    pub fn refresh_due(&self, now_ms: u64, ahead: Duration) -> bool {
        let ahead = ahead.min(self.lifetime() / 2).as_millis() as u64;
        now_ms + ahead >= self.expires_at_ms
    }
}

/// Proof of holding an app's refresh lease; released on drop of the store's handle.
pub struct Lease {
    pub(crate) owner: String,
    /// The file store's lock: the kernel releases it if the process dies.
    pub(crate) file: Option<std::fs::File>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(f) = &self.file {
            crate::fork::untrack_fd(crate::platform::raw_fd(f));
        }
    }
}

pub trait Store: Send + Sync + fmt::Debug {
    /// The app's record, if any.
    fn load(&self, appid: &str) -> Result<Option<Record>, Error>;
    /// Takes the app's refresh lease for `ttl`, or `None` if another process holds it.
    fn try_lease(&self, appid: &str, ttl: Duration) -> Result<Option<Lease>, Error>;
    /// Publishes `record` if `lease` is still held and `record.generation` is newer than the
    /// stored one; `false` when it was not published.
    fn publish(&self, appid: &str, record: &Record, lease: &Lease) -> Result<bool, Error>;
    /// Marks the record invalidated only if it is still at `generation`.
    fn invalidate(&self, appid: &str, generation: u64, lease: &Lease) -> Result<bool, Error>;
    fn release(&self, appid: &str, lease: Lease);
}

/// Where an app's token lives, from the `store` option.
#[derive(Clone, Debug)]
pub enum StoreSpec {
    Memory,
    Shared(Arc<dyn Store>),
}

impl PartialEq for StoreSpec {
    fn eq(&self, other: &StoreSpec) -> bool {
        match (self, other) {
            (StoreSpec::Memory, StoreSpec::Memory) => true,
            (StoreSpec::Shared(a), StoreSpec::Shared(b)) => format!("{a:?}") == format!("{b:?}"),
            _ => false,
        }
    }
}
impl Eq for StoreSpec {}

impl StoreSpec {
    /// Parses `memory`, `file:/dir` or `redis[s]://[user:password@]host:port[/db]`.
    pub fn parse(spec: &str, prefix: &str, timeout: Duration) -> Result<StoreSpec, Error> {
        if spec == "memory" {
            return Ok(StoreSpec::Memory);
        }
        if let Some(dir) = spec.strip_prefix("file:") {
            return Ok(StoreSpec::Shared(Arc::new(FileStore::new(dir, prefix)?)));
        }
        if spec.starts_with("redis://") || spec.starts_with("rediss://") {
            return Ok(StoreSpec::Shared(Arc::new(RedisStore::new(
                spec, prefix, timeout,
            )?)));
        }
        Err(Error::invalid(
            "options_json: store must be \"memory\", \"file:/path/to/dir\" or \"redis://host:port/db\" (or rediss://)",
        ))
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Identifies a lease holder in a store (and to an operator reading it): host, process and a
/// random part, so two processes never share an identity, even across fork.
pub fn owner_id() -> String {
    let host = crate::platform::hostname().unwrap_or_else(|| "unknown".to_owned());
    format!(
        "{host}:{}:{:016x}",
        std::process::id(),
        (crate::pacing::jitter() * u64::MAX as f64) as u64
    )
}

pub fn store_error(what: impl fmt::Display) -> Error {
    Error::new(Status::Store, format!("token store: {what}"))
}

/// Keys and file names embed the appid; refuse anything that could escape a directory or
/// a key namespace.
pub fn check_prefix(prefix: &str) -> Result<(), Error> {
    if prefix.len() > 64
        || !prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b))
    {
        return Err(Error::invalid(
            "options_json: store_prefix must be at most 64 of [A-Za-z0-9_-.:]",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_due_caps_ahead_at_half_life() {
        let r = Record {
            access_token: "t".into(),
            generation: 1,
            fetched_at_ms: 0,
            expires_at_ms: 10_000,
            invalidated: false,
        };
        assert!(!r.refresh_due(4_000, Duration::from_secs(300)));
        assert!(r.refresh_due(5_000, Duration::from_secs(300)));
        assert!(r.refresh_due(9_000, Duration::from_secs(1)));
        assert!(!r.refresh_due(8_000, Duration::from_secs(1)));
        assert!(r.is_usable(9_999) && !r.is_usable(10_000));
    }

    #[test]
    fn specs() {
        assert_eq!(
            StoreSpec::parse("memory", "p:", Duration::from_secs(1)).unwrap(),
            StoreSpec::Memory
        );
        assert!(StoreSpec::parse("mem", "p:", Duration::from_secs(1)).is_err());
        assert!(StoreSpec::parse("file:relative/dir", "p:", Duration::from_secs(1)).is_err());
        assert!(check_prefix("wx_token:").is_ok());
        assert!(check_prefix("../x").is_err());
    }
}
