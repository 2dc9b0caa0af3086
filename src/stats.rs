//! Per-app counters of upstream work, for monitoring (the central server's /metrics, and
//! `wx_token_stats_json` for everyone else). Updated only on the slow paths.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::fork;
use crate::status::Status;
use crate::sync::LockExt;

#[derive(Default)]
pub struct Counters {
    fetches: AtomicU64,
    fetch_nanos: AtomicU64,
    /// 0 until the first fetch: a fetch never takes 0 ns.
    last_fetch_nanos: AtomicU64,
    from_store: AtomicU64,
    store_failures: AtomicU64,
    store_publish_failures: AtomicU64,
    fallback_fetches: AtomicU64,
    store_records_rejected: AtomicU64,
    failures: Mutex<BTreeMap<(i32, i32), u64>>,
}

/// A snapshot of one app's counters since it was registered in this process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppStats {
    /// Requests sent upstream (WeChat, or the central server in client mode), background
    /// refreshes included.
    pub fetches: u64,
    pub fetch_time_total: Duration,
    pub last_fetch_time: Option<Duration>,
    /// Tokens taken over from a shared store's record (published by another process) instead
    /// of fetching; a sync that finds the token unchanged does not count.
    pub tokens_from_store: u64,
    /// Shared-store operations that failed (unreachable, refused, not writable), publishes
    /// and lease releases included.
    pub store_failures: u64,
    /// Of those, failed publishes, publish preparations and lease checks or releases.
    pub store_publish_failures: u64,
    /// Direct fetches made while the store was unreachable (within the host's budget).
    pub fallback_fetches: u64,
    /// Records read from the store and refused by validation (then replaced).
    pub store_records_rejected: u64,
    /// Failed fetches (and store failures), by status and WeChat errcode.
    pub failures: Vec<FailureCount>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureCount {
    pub status: Status,
    pub errcode: i32,
    pub count: u64,
}

impl Counters {
    /// Runs one upstream request and counts it with its duration.
    pub fn timed<T>(&self, request: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = request();
        let nanos = u64::try_from(start.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        self.fetches.fetch_add(1, Ordering::Relaxed);
        self.fetch_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.last_fetch_nanos.store(nanos, Ordering::Relaxed);
        out
    }

    pub fn token_from_store(&self) {
        self.from_store.fetch_add(1, Ordering::Relaxed);
    }

    pub fn store_failure(&self) {
        self.store_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub fn store_publish_failure(&self) {
        self.store_publish_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub fn fallback_fetch(&self) {
        self.fallback_fetches.fetch_add(1, Ordering::Relaxed);
    }

    pub fn store_record_rejected(&self) {
        self.store_records_rejected.fetch_add(1, Ordering::Relaxed);
    }

    pub fn failure(&self, e: &Error) {
        *self
            .failures
            .lock_ok()
            .entry((e.status() as i32, e.errcode()))
            .or_default() += 1;
    }

    pub fn snapshot(&self) -> AppStats {
        let last = self.last_fetch_nanos.load(Ordering::Relaxed);
        AppStats {
            fetches: self.fetches.load(Ordering::Relaxed),
            fetch_time_total: Duration::from_nanos(self.fetch_nanos.load(Ordering::Relaxed)),
            last_fetch_time: (last != 0).then(|| Duration::from_nanos(last)),
            tokens_from_store: self.from_store.load(Ordering::Relaxed),
            store_failures: self.store_failures.load(Ordering::Relaxed),
            store_publish_failures: self.store_publish_failures.load(Ordering::Relaxed),
            fallback_fetches: self.fallback_fetches.load(Ordering::Relaxed),
            store_records_rejected: self.store_records_rejected.load(Ordering::Relaxed),
            failures: self
                .failures
                .lock_ok()
                .iter()
                .filter_map(|(&(status, errcode), &count)| {
                    Some(FailureCount {
                        status: Status::from_code(status)?,
                        errcode,
                        count,
                    })
                })
                .collect(),
        }
    }

    pub fn fork_lock(&'static self) {
        fork::hold(self.failures.lock_ok());
    }
}

impl AppStats {
    /// The language-neutral form returned by `wx_token_stats_json`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "fetches": self.fetches,
            "fetch_seconds_total": self.fetch_time_total.as_secs_f64(),
            "last_fetch_seconds": self.last_fetch_time.map(|d| d.as_secs_f64()),
            "tokens_from_store": self.tokens_from_store,
            "store_failures": self.store_failures,
            "store_publish_failures": self.store_publish_failures,
            "fallback_fetches": self.fallback_fetches,
            "store_records_rejected": self.store_records_rejected,
            "failures": self.failures.iter().map(|f| serde_json::json!({
                "status": f.status.name(),
                "errcode": f.errcode,
                "count": f.count,
            })).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_fetches_durations_and_failures() {
        let c = Counters::default();
        assert_eq!(c.snapshot().last_fetch_time, None);
        c.timed(|| std::thread::sleep(Duration::from_millis(2)));
        c.timed(|| ());
        c.failure(&Error::wechat(45009, "quota"));
        c.failure(&Error::wechat(45009, "quota"));
        c.failure(&Error::new(Status::Network, "x"));
        c.token_from_store();
        let s = c.snapshot();
        assert_eq!(s.fetches, 2);
        assert!(s.fetch_time_total >= Duration::from_millis(2));
        assert_eq!(s.tokens_from_store, 1);
        assert_eq!(
            s.failures,
            vec![
                FailureCount {
                    status: Status::WechatError,
                    errcode: 45009,
                    count: 2
                },
                FailureCount {
                    status: Status::Network,
                    errcode: 0,
                    count: 1
                },
            ]
        );
        assert_eq!(s.to_json()["failures"][0]["status"], "WECHAT_ERROR");
    }
}
