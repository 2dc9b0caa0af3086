//! When the engine may call WeChat again: backoff after failures, and WeChat's own limits on
//! forced refreshes. Pure bookkeeping on the monotonic clock, no I/O.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::options::Options;
use crate::status::Status;

/// The longest a repeated terminal failure is answered from memory.
const MAX_ERROR_COOLDOWN: Duration = Duration::from_secs(3600);

/// The last failed fetch, answered to callers until `retry_at`.
#[derive(Clone, Debug)]
pub struct Failure {
    pub error: Error,
    pub retry_at: Instant,
    pub attempts: u32,
}

impl Failure {
    /// Transient failures back off exponentially from `retry_min` with jitter (so a fleet of
    /// processes does not retry in lockstep); terminal ones wait `error_cooldown`, doubling
    /// while they repeat, so a loop of callers cannot burn the daily quota.
    pub fn after(
        previous: Option<&Failure>,
        error: Error,
        now: Instant,
        options: &Options,
    ) -> Failure {
        let attempts = previous.map_or(1, |p| p.attempts.saturating_add(1));
        let doubling = 1u32 << (attempts - 1).min(20);
        let delay = if error.is_transient() || error.status() == Status::Store {
            let mut ceiling = options
                .retry_min
                .saturating_mul(doubling)
                .min(options.retry_max);
            if error.status() == Status::Store {
                // A store outage is transient, whatever it says: retried at least once per
                // sync interval, so the first look after the store returns finds it.
                ceiling = ceiling.min(options.store_sync);
            }
            // "Equal jitter": at least half the step, so the backoff still grows.
            ceiling / 2 + ceiling.mul_f64(jitter() / 2.0)
        } else {
            options
                .error_cooldown
                .saturating_mul(doubling)
                .min(MAX_ERROR_COOLDOWN.max(options.error_cooldown))
        };
        Failure {
            error,
            retry_at: now + delay,
            attempts,
        }
    }
}

/// A number in [0, 1) that differs per call and per process; quality is irrelevant, only
/// decorrelation matters, so std's randomly seeded SipHash is enough.
pub fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// WeChat allows stable_token's force_refresh at most once per 30 s and 20 times a day; we
/// refuse locally instead of spending a call that WeChat would refuse (or count).
#[derive(Debug, Default)]
pub struct ForceLimiter {
    recent: VecDeque<Instant>,
}

pub const FORCE_MIN_SPACING: Duration = Duration::from_secs(30);
pub const FORCE_DAILY_LIMIT: usize = 20;
const DAY: Duration = Duration::from_secs(86_400);

impl ForceLimiter {
    /// Records a forced refresh at `now`, or says why it may not happen. A rolling 24-hour
    /// window is stricter than WeChat's calendar day, never looser.
    pub fn try_acquire(&mut self, now: Instant) -> Result<(), Error> {
        while self
            .recent
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= DAY)
        {
            self.recent.pop_front();
        }
        if let Some(&last) = self.recent.back() {
            let since = now.saturating_duration_since(last);
            if since < FORCE_MIN_SPACING {
                return Err(Error::new(
                    Status::RateLimited,
                    format!(
                        "forced refresh refused: the last one was {} s ago and WeChat allows one per {} s; retry in {} s",
                        since.as_secs(),
                        FORCE_MIN_SPACING.as_secs(),
                        (FORCE_MIN_SPACING - since).as_secs() + 1
                    ),
                ));
            }
        }
        if self.recent.len() >= FORCE_DAILY_LIMIT {
            return Err(Error::new(
                Status::RateLimited,
                format!(
                    "forced refresh refused: {FORCE_DAILY_LIMIT} in the last 24 h, WeChat's daily limit"
                ),
            ));
        }
        self.recent.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_failures_back_off_briefly_never_for_the_cooldown() {
        let o = Options {
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_secs(60),
            store_sync: Duration::from_millis(1500),
            error_cooldown: Duration::from_secs(30),
            ..Options::default()
        };
        let now = Instant::now();
        let mut f: Option<Failure> = None;
        for _ in 0..10 {
            let next = Failure::after(f.as_ref(), Error::new(Status::Store, "down"), now, &o);
            assert!(next.retry_at <= now + o.store_sync, "capped at store_sync");
            f = Some(next);
        }
    }

    #[test]
    fn transient_backoff_grows_with_jitter_and_caps() {
        let o = Options {
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_millis(800),
            ..Options::default()
        };
        let now = Instant::now();
        let mut f = Failure::after(None, Error::new(Status::Network, "x"), now, &o);
        let d1 = f.retry_at - now;
        assert!(
            d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100),
            "{d1:?}"
        );
        for _ in 0..10 {
            f = Failure::after(Some(&f), Error::new(Status::Network, "x"), now, &o);
        }
        let d = f.retry_at - now;
        assert!(
            d >= Duration::from_millis(400) && d <= Duration::from_millis(800),
            "{d:?}"
        );
    }

    #[test]
    fn terminal_cooldown_doubles_up_to_an_hour() {
        let o = Options {
            error_cooldown: Duration::from_secs(30),
            ..Options::default()
        };
        let now = Instant::now();
        let e = Error::wechat(40125, "invalid appsecret");
        let f1 = Failure::after(None, e.clone(), now, &o);
        assert_eq!(f1.retry_at - now, Duration::from_secs(30));
        let f2 = Failure::after(Some(&f1), e.clone(), now, &o);
        assert_eq!(f2.retry_at - now, Duration::from_secs(60));
        let mut f = f2;
        for _ in 0..30 {
            f = Failure::after(Some(&f), e.clone(), now, &o);
        }
        assert_eq!(f.retry_at - now, Duration::from_secs(3600));
    }

    #[test]
    fn force_limiter_spacing_and_daily_cap() {
        let mut l = ForceLimiter::default();
        let t0 = Instant::now();
        l.try_acquire(t0).unwrap();
        assert_eq!(
            l.try_acquire(t0 + Duration::from_secs(29))
                .unwrap_err()
                .status(),
            Status::RateLimited
        );
        let mut t = t0;
        for _ in 1..FORCE_DAILY_LIMIT {
            t += FORCE_MIN_SPACING;
            l.try_acquire(t).unwrap();
        }
        t += FORCE_MIN_SPACING;
        let e = l.try_acquire(t).unwrap_err();
        assert!(e.message().contains("24 h"), "{}", e.message());
        l.try_acquire(t0 + DAY + Duration::from_secs(1)).unwrap();
    }

    #[test]
    fn jitter_is_in_unit_interval() {
        for _ in 0..1000 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }
}
