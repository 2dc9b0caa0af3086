//! Per-client-key rate limits: token buckets keyed by client name.
//!
//! Two budgets per key. *Requests* (every token and invalidate request) protect the server's
//! CPU from one runaway client. *Invalidations that may fetch* (the reported token is the one
//! in service, or a forced refresh) protect WeChat's daily quota: each one is a token request
//! upstream, so one leaked or buggy key must not be able to spend the quota in seconds.
//! Buckets are kept by client name, so a configuration reload keeps what each key has spent.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::Limits;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Budget {
    Requests,
    Invalidations,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// A client's two buckets, created full on first use.
#[derive(Default)]
struct Buckets {
    requests: Option<Bucket>,
    invalidations: Option<Bucket>,
}

#[derive(Default)]
pub struct Limiter {
    buckets: Mutex<HashMap<String, Buckets>>,
}

impl Limiter {
    /// Takes one unit of `budget` for `client`, or says how long until one is available.
    pub fn take(&self, client: &str, budget: Budget, limits: &Limits) -> Result<(), Duration> {
        self.take_at(client, budget, limits, Instant::now())
    }

    fn take_at(
        &self,
        client: &str,
        budget: Budget,
        limits: &Limits,
        now: Instant,
    ) -> Result<(), Duration> {
        let (per_sec, burst) = match budget {
            Budget::Requests if limits.requests_per_second == 0 => return Ok(()),
            Budget::Requests => (
                f64::from(limits.requests_per_second),
                f64::from(limits.requests_burst),
            ),
            Budget::Invalidations => (
                f64::from(limits.invalidations_per_minute) / 60.0,
                f64::from(limits.invalidations_burst),
            ),
        };
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        // Looked up by &str first: no allocation per request once the client is known.
        if !map.contains_key(client) {
            map.insert(client.to_owned(), Buckets::default());
        }
        let both = map.get_mut(client).expect("just inserted");
        let slot = match budget {
            Budget::Requests => &mut both.requests,
            Budget::Invalidations => &mut both.invalidations,
        };
        let b = slot.get_or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        // A lowered burst (after a reload) applies at once.
        b.tokens = (b.tokens + elapsed * per_sec).min(burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / per_sec))
        }
    }

    /// Forgets clients no longer configured (after a reload).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.buckets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|name, _| keep(name));
    }
}

/// `Retry-After` in whole seconds, rounded up, at least 1.
pub fn retry_after_secs(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits {
        requests_per_second: 10,
        requests_burst: 3,
        invalidations_per_minute: 6,
        invalidations_burst: 2,
    };

    #[test]
    fn buckets_refill_at_their_rate_and_are_per_client_and_budget() {
        let l = Limiter::default();
        let t0 = Instant::now();
        for _ in 0..2 {
            l.take_at("a", Budget::Invalidations, &L, t0).unwrap();
        }
        let wait = l.take_at("a", Budget::Invalidations, &L, t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(10), "6 a minute: one per 10 s");
        assert_eq!(retry_after_secs(wait), 10);
        // Other budgets and clients are untouched.
        l.take_at("a", Budget::Requests, &L, t0).unwrap();
        l.take_at("b", Budget::Invalidations, &L, t0).unwrap();
        let later = t0 + Duration::from_secs(10);
        l.take_at("a", Budget::Invalidations, &L, later).unwrap();
        assert!(l.take_at("a", Budget::Invalidations, &L, later).is_err());
        // Unlimited requests.
        let free = Limits {
            requests_per_second: 0,
            ..L
        };
        for _ in 0..1000 {
            l.take_at("c", Budget::Requests, &free, t0).unwrap();
        }
        l.retain(|n| n == "b");
        l.take_at("a", Budget::Invalidations, &L, later).unwrap();
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
