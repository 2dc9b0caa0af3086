//! When the engine may call WeChat again: backoff after failures, and WeChat's own limits on
//! forced refreshes. Pure bookkeeping on the monotonic clock, no I/O.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::options::Options;
use crate::status::Status;

/// The longest a repeated terminal failure is answered from memory.
const MAX_ERROR_COOLDOWN: Duration = Duration::from_secs(3600);

/// The longest transient backoff of a client-mode app (see `Failure::after`).
pub const CENTRAL_PROBE_MAX: Duration = Duration::from_millis(1500);

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
            if options.central.is_some() {
                // Client mode probes its central servers briefly, whatever retry_max_ms says:
                // a server that comes back is found within CENTRAL_PROBE_MAX (#10 item 8). The
                // servers answer repeated failures from their own backoff, without upstream
                // calls, so probing costs them a cheap request.
                ceiling = ceiling.min(CENTRAL_PROBE_MAX);
            }
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

/// A rolling record of recent events, for limits of the form "at most one per `spacing` and
/// `daily` per rolling 24 hours". A rolling window is stricter than a calendar day, never looser.
#[derive(Debug, Default)]
struct Window {
    recent: VecDeque<Instant>,
}

/// Why a `Window` refused an event.
enum Refusal {
    /// The last one was `since` ago, less than the spacing.
    TooSoon { since: Duration, spacing: Duration },
    /// The daily budget is spent.
    Daily,
}

impl Window {
    fn try_acquire(
        &mut self,
        now: Instant,
        spacing: Duration,
        daily: usize,
    ) -> Result<(), Refusal> {
        while self
            .recent
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= DAY)
        {
            self.recent.pop_front();
        }
        if let Some(&last) = self.recent.back() {
            let since = now.saturating_duration_since(last);
            if since < spacing {
                return Err(Refusal::TooSoon { since, spacing });
            }
        }
        if self.recent.len() >= daily {
            return Err(Refusal::Daily);
        }
        self.recent.push_back(now);
        Ok(())
    }
}

impl Refusal {
    /// The RATE_LIMITED error for a refused `what`, naming the limit that refused it.
    fn error(&self, what: &str, (spacing_by, daily_by): (&str, &str), daily: usize) -> Error {
        let message = match *self {
            Refusal::TooSoon { since, spacing } => format!(
                "{what} refused: the last one was {} s ago and {spacing_by} allows one per {} s; retry in {} s",
                since.as_secs(),
                spacing.as_secs(),
                (spacing - since).as_secs() + 1
            ),
            Refusal::Daily => format!("{what} refused: {daily} in the last 24 h, {daily_by}"),
        };
        Error::new(Status::RateLimited, message)
    }
}

/// WeChat allows stable_token's force_refresh at most once per 30 s and 20 times a day; we
/// refuse locally instead of spending a call that WeChat would refuse (or count).
#[derive(Debug, Default)]
pub struct ForceLimiter(Window);

pub const FORCE_MIN_SPACING: Duration = Duration::from_secs(30);
pub const FORCE_DAILY_LIMIT: usize = 20;
const DAY: Duration = Duration::from_secs(86_400);

impl ForceLimiter {
    /// Records a forced refresh at `now`, or says why it may not happen.
    pub fn try_acquire(&mut self, now: Instant) -> Result<(), Error> {
        self.0
            .try_acquire(now, FORCE_MIN_SPACING, FORCE_DAILY_LIMIT)
            .map_err(|r| {
                r.error(
                    "forced refresh",
                    ("WeChat", "WeChat's daily limit"),
                    FORCE_DAILY_LIMIT,
                )
            })
    }
}

/// The passive refresh's own pace: fetches started because a caller reported the current
/// token rejected (`passive_refresh_interval_secs`, `passive_refresh_daily_limit`). Without
/// it a caller whose business API keeps answering 40001 for another reason would spend the
/// classic endpoint's daily quota in seconds.
#[derive(Debug, Default)]
pub struct PassiveLimiter(Window);

impl PassiveLimiter {
    pub fn try_acquire(&mut self, now: Instant, options: &Options) -> Result<(), Error> {
        let daily = options.passive_refresh_daily_limit as usize;
        self.0
            .try_acquire(now, options.passive_refresh_interval, daily)
            .map_err(|r| {
                r.error(
                    "passive refresh",
                    (
                        "passive_refresh_interval_secs",
                        "the limit set by passive_refresh_daily_limit",
                    ),
                    daily,
                )
            })
    }
}

/// At most `per_hour` events in any rolling hour (WeCom's ticket limits, #13).
#[derive(Debug, Default)]
pub struct HourlyBudget(Window);

impl HourlyBudget {
    /// Records an event at `now` if fewer than `per_hour` happened in the last hour.
    pub fn try_acquire(&mut self, now: Instant, per_hour: u32) -> bool {
        const HOUR: Duration = Duration::from_secs(3600);
        let recent = &mut self.0.recent;
        while recent
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= HOUR)
        {
            recent.pop_front();
        }
        if recent.len() >= per_hour as usize {
            return false;
        }
        recent.push_back(now);
        true
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
    fn passive_limiter_follows_its_options() {
        let o = Options {
            passive_refresh_interval: Duration::from_secs(10),
            passive_refresh_daily_limit: 3,
            ..Options::default()
        };
        let mut l = PassiveLimiter::default();
        let t0 = Instant::now();
        l.try_acquire(t0, &o).unwrap();
        let e = l.try_acquire(t0 + Duration::from_secs(9), &o).unwrap_err();
        assert_eq!(e.status(), Status::RateLimited);
        assert!(e.message().contains("retry in 2 s"), "{}", e.message());
        l.try_acquire(t0 + Duration::from_secs(10), &o).unwrap();
        l.try_acquire(t0 + Duration::from_secs(20), &o).unwrap();
        let e = l.try_acquire(t0 + Duration::from_secs(30), &o).unwrap_err();
        assert!(
            e.message().contains("passive_refresh_daily_limit"),
            "{}",
            e.message()
        );
        l.try_acquire(t0 + DAY, &o).unwrap();
        let never = Options {
            passive_refresh_daily_limit: 0,
            ..o
        };
        assert!(PassiveLimiter::default().try_acquire(t0, &never).is_err());
    }

    #[test]
    fn client_mode_backoff_is_short_whatever_retry_max_says() {
        let o = Options::parse(Some(
            r#"{"central":"https://t.example","central_key":"k","retry_max_ms":60000}"#,
        ))
        .unwrap();
        let now = Instant::now();
        let mut f = Failure::after(None, Error::new(Status::Network, "x"), now, &o);
        for _ in 0..20 {
            f = Failure::after(Some(&f), Error::new(Status::Network, "x"), now, &o);
        }
        assert!(f.retry_at - now <= CENTRAL_PROBE_MAX);
    }

    #[test]
    fn hourly_budget_is_per_rolling_hour() {
        let mut b = HourlyBudget::default();
        let t0 = Instant::now();
        assert!(b.try_acquire(t0, 2) && b.try_acquire(t0, 2));
        assert!(!b.try_acquire(t0 + Duration::from_secs(3599), 2));
        assert!(b.try_acquire(t0 + Duration::from_secs(3600), 2));
    }

    #[test]
    fn jitter_is_in_unit_interval() {
        for _ in 0..1000 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }
}
