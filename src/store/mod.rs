//! Shared token stores: how processes on one host (`file:`) or many hosts (`redis://`) agree on
//! one token per app, so that they do not overwrite each other's tokens.
//!
//! A store holds, per app, one small record (documented in docs/STORES.md) and a refresh lease.
//! Only the lease holder asks WeChat; everyone else reads the record it publishes.

mod budget;
mod file;
#[cfg(unix)]
mod fs_unix;
mod record;
mod redis;
mod redis_conn;

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;
use crate::status::Status;

pub use self::budget::spend_fallback;
pub use self::file::FileStore;
pub use self::record::{Loaded, Record};
pub use self::redis::RedisStore;
pub use self::redis_conn::RedisTls;

/// Proof of holding an app's refresh lease; released on drop of the store's handle.
pub struct Lease {
    pub(crate) owner: String,
    /// The file store's lock: the kernel releases it if the process dies.
    pub(crate) file: Option<std::fs::File>,
    /// The file store's temp file, created (and its space reserved) by `prepare`.
    pub(crate) temp: Option<(std::fs::File, std::path::PathBuf)>,
    /// Redis: the round trip of the lease check before the fetch, added to the token's age
    /// when publishing, so the server's idea of its expiry can only be early, never late.
    pub(crate) rtt_ms: u64,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(f) = &self.file {
            crate::fork::untrack_fd(crate::platform::raw_fd(f));
        }
    }
}

pub trait Store: Send + Sync + fmt::Debug {
    /// The app's record, validated: garbage comes back as `Loaded::Bad`, never as an error.
    fn load(&self, appid: &str) -> Result<Loaded, Error>;
    /// Takes the app's refresh lease for `ttl`, or `None` if another process holds it.
    fn try_lease(&self, appid: &str, ttl: Duration) -> Result<Option<Lease>, Error>;
    /// Called under the lease before a fetch: proves, as far as can be known, that the
    /// publish will succeed (a writable directory with space; the right to run scripts and
    /// still holding the lease), so that nobody fetches a token it could not share.
    fn prepare(&self, appid: &str, lease: &mut Lease) -> Result<(), Error>;
    /// Publishes `record` if `lease` is still held and `record.generation` is newer than the
    /// stored one (a bad stored record is overwritten); `false` when it was not published.
    /// The store converts the record's remaining time to its own clock.
    fn publish(&self, appid: &str, record: &Record, lease: &mut Lease) -> Result<bool, Error>;
    /// Marks the record invalidated only if it is still at `generation`.
    fn invalidate(&self, appid: &str, generation: u64, lease: &mut Lease) -> Result<bool, Error>;
    fn release(&self, appid: &str, lease: Lease) -> Result<(), Error>;
    /// Called under the lease before a fetch that replaces a reported token: claims one of the
    /// fleet's such fetches, at most one per `spacing` and `daily` in any 24 h
    /// (`passive_refresh_interval_secs`, `passive_refresh_daily_limit`), shared by every
    /// process of the store on the store's own clock, so the bound does not grow with the
    /// number of processes.
    fn pace_replacement(
        &self,
        appid: &str,
        spacing: Duration,
        daily: u32,
        lease: &mut Lease,
    ) -> Result<Paced, Error>;
    /// A directory private to this host's processes of this user where the fallback budget is
    /// kept; `None`: the user's directory under the system's temp dir.
    fn budget_dir(&self) -> Option<&Path> {
        None
    }
}

/// The answer of `Store::pace_replacement`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paced {
    Claimed,
    /// Another process replaced a token this long before the spacing allows the next.
    TooSoon(Duration),
    /// The fleet's daily number is spent.
    DailySpent,
}

/// The fleet's replacements of reported tokens, kept as their times on one clock (ms): the
/// pacing rule shared by both stores. Drops times older than a day (or from the future: another
/// boot or a clock that went back), then claims `now` if the spacing and the daily number allow.
pub fn pace_times(times: &mut Vec<u64>, now: u64, spacing: Duration, daily: u32) -> Paced {
    const DAY_MS: u64 = 86_400_000;
    times.retain(|&t| t <= now && now - t < DAY_MS);
    let spacing_ms = spacing.as_millis() as u64;
    if let Some(&last) = times.iter().max()
        && now - last < spacing_ms
    {
        return Paced::TooSoon(Duration::from_millis(spacing_ms - (now - last)));
    }
    if times.len() >= daily as usize {
        return Paced::DailySpent;
    }
    times.push(now);
    Paced::Claimed
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
    /// Parses `memory`, `file:/dir`, `redis[s]://[user:password@]host:port[/db]`,
    /// `redis[s]+sentinel://[user:password@]host:port[,…]/service[/db]` or
    /// `redis[s]+cluster://[user:password@]host:port[,…]`. `tls` (the `store_tls_*` options) is
    /// only valid with a Redis store.
    pub fn parse(
        spec: &str,
        prefix: &str,
        tls: &RedisTls,
        timeout: Duration,
    ) -> Result<StoreSpec, Error> {
        let redis = matches!(
            spec.split_once("://").map(|(scheme, _)| scheme),
            Some(
                "redis"
                    | "rediss"
                    | "redis+sentinel"
                    | "rediss+sentinel"
                    | "redis+cluster"
                    | "rediss+cluster"
            )
        );
        if !redis && !tls.is_empty() {
            return Err(Error::invalid(
                "options_json: store_tls_* options need a redis store (rediss://…)",
            ));
        }
        if spec == "memory" {
            return Ok(StoreSpec::Memory);
        }
        if let Some(dir) = spec.strip_prefix("file:") {
            return Ok(StoreSpec::Shared(Arc::new(FileStore::new(dir, prefix)?)));
        }
        if redis {
            return Ok(StoreSpec::Shared(Arc::new(RedisStore::new(
                spec, prefix, tls, timeout,
            )?)));
        }
        Err(Error::invalid(
            "options_json: store must be \"memory\", \"file:/path/to/dir\", \"redis://host:port/db\" (or rediss://), \"redis+sentinel://host:port,…/service\" or \"redis+cluster://host:port,…\"",
        ))
    }
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

/// Splits a credential's store key: an id, or `id@kind` for a JS-SDK ticket of that id.
pub fn split_key(key: &str) -> (&str, Option<&str>) {
    match key.split_once('@') {
        Some((id, kind)) => (id, Some(kind)),
        None => (key, None),
    }
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
    fn pace_times_spaces_and_counts_a_rolling_day() {
        let (spacing, day) = (Duration::from_secs(30), 86_400_000);
        let mut t = Vec::new();
        assert_eq!(pace_times(&mut t, 1_000, spacing, 2), Paced::Claimed);
        assert_eq!(
            pace_times(&mut t, 21_000, spacing, 2),
            Paced::TooSoon(Duration::from_secs(10))
        );
        assert_eq!(pace_times(&mut t, 31_000, spacing, 2), Paced::Claimed);
        assert_eq!(pace_times(&mut t, 900_000, spacing, 2), Paced::DailySpent);
        // A day after the first, one slot is free again; times from the future are dropped.
        assert_eq!(pace_times(&mut t, 1_000 + day, spacing, 2), Paced::Claimed);
        let mut future = vec![5_000_000];
        assert_eq!(pace_times(&mut future, 1_000, spacing, 1), Paced::Claimed);
        assert_eq!(future, [1_000]);
        assert_eq!(
            pace_times(&mut Vec::new(), 1, Duration::ZERO, 0),
            Paced::DailySpent
        );
    }

    #[test]
    fn specs() {
        assert_eq!(
            StoreSpec::parse("memory", "p:", &RedisTls::default(), Duration::from_secs(1)).unwrap(),
            StoreSpec::Memory
        );
        assert!(
            StoreSpec::parse("mem", "p:", &RedisTls::default(), Duration::from_secs(1)).is_err()
        );
        assert!(
            StoreSpec::parse(
                "file:relative/dir",
                "p:",
                &RedisTls::default(),
                Duration::from_secs(1)
            )
            .is_err()
        );
        assert!(check_prefix("wx_token:").is_ok());
        assert!(check_prefix("../x").is_err());
    }
}
