//! Prometheus metrics, rendered by hand in text format 0.0.4 (a handful of counters and two
//! histograms do not justify a metrics crate).
//!
//! The engine exposes no fetch counters or fetch timestamps (see ENGINE-REQUESTS.md), so the
//! per-app figures are derived from what the server sees of the engine:
//! - a new `TokenInfo::generation` is a new token: a fetch by this instance or, with a shared
//!   store, by a peer (`wx_tokend_upstream_fetches_total`);
//! - each distinct engine failure handed out is counted once, however many waiting callers
//!   shared it (`wx_tokend_upstream_failures_total`): callers sharing one fetch's failure, or
//!   answered from the engine's cooldown, receive clones of one `Error` whose message is one
//!   `Arc<str>`, so the message's address identifies the failure (we keep the last one alive,
//!   so the address cannot be reused by a later failure);
//! - a token's age is counted from when this instance first saw its generation.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Seconds; request latencies on the cached path are tens of microseconds, fetches from
/// WeChat tens to thousands of milliseconds.
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0,
];

pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            buckets: Default::default(),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| s <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos
            .fetch_add(d.as_nanos().min(u64::MAX as u128) as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (b, n) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += n.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9
        );
        let _ = writeln!(out, "{name}_count {count}");
    }
}

#[derive(Default)]
struct AppState {
    generation: u64,
    fetches: u64,
    seen_at: Option<Instant>,
    expires_at: Option<Instant>,
    last_error: Option<wx_token::Error>,
    /// (errcode, lowercase status name) → count
    failures: BTreeMap<(i32, &'static str), u64>,
}

pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    pub request_duration: Histogram,
    pub refresh_duration: Histogram,
    pub connections_open: AtomicI64,
    apps: BTreeMap<String, Mutex<AppState>>,
}

impl Metrics {
    pub fn new(appids: impl IntoIterator<Item = String>) -> Metrics {
        Metrics {
            requests: Mutex::new(BTreeMap::new()),
            request_duration: Histogram::new(),
            refresh_duration: Histogram::new(),
            connections_open: AtomicI64::new(0),
            apps: appids
                .into_iter()
                .map(|a| (a, Mutex::new(AppState::default())))
                .collect(),
        }
    }

    pub fn request(&self, route: &'static str, code: u16, took: Duration) {
        *self
            .requests
            .lock()
            .unwrap()
            .entry((route, code))
            .or_default() += 1;
        self.request_duration.observe(took);
    }

    /// Records a token handed out; returns whether it is a token this instance had not seen
    /// (so the call that got it waited for a fetch, or a peer's refresh landed).
    pub fn token_seen(&self, appid: &str, info: &wx_token::TokenInfo) -> bool {
        let Some(app) = self.apps.get(appid) else {
            return false;
        };
        let now = Instant::now();
        let mut st = app.lock().unwrap();
        st.expires_at = Some(now + info.expires_in);
        if st.generation == info.generation {
            return false;
        }
        st.generation = info.generation;
        st.fetches += 1;
        st.seen_at = Some(now);
        true
    }

    /// Records a failure handed out by the engine, once per distinct failure.
    pub fn failure_seen(&self, appid: &str, err: &wx_token::Error) {
        let Some(app) = self.apps.get(appid) else {
            return;
        };
        let mut st = app.lock().unwrap();
        if st
            .last_error
            .as_ref()
            .is_some_and(|e| std::ptr::eq(e.message().as_ptr(), err.message().as_ptr()))
        {
            return;
        }
        *st.failures
            .entry((err.errcode(), status_label(err.status())))
            .or_default() += 1;
        st.last_error = Some(err.clone());
    }

    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str(
            "# HELP wx_tokend_requests_total HTTP requests answered, by route and status code.\n",
        );
        out.push_str("# TYPE wx_tokend_requests_total counter\n");
        for ((route, code), n) in self.requests.lock().unwrap().iter() {
            let _ = writeln!(
                out,
                "wx_tokend_requests_total{{route=\"{route}\",code=\"{code}\"}} {n}"
            );
        }
        self.request_duration.render(
            &mut out,
            "wx_tokend_request_duration_seconds",
            "Time from request head to response, in seconds.",
        );
        self.refresh_duration.render(
            &mut out,
            "wx_tokend_refresh_duration_seconds",
            "Engine calls that brought a new token (cold fetch, passive or forced refresh), as waited for by a request, in seconds.",
        );
        let _ = writeln!(
            out,
            "# HELP wx_tokend_connections_open Client connections open now.\n# TYPE wx_tokend_connections_open gauge\nwx_tokend_connections_open {}",
            self.connections_open.load(Ordering::Relaxed)
        );

        let now = Instant::now();
        let states: Vec<(&String, AppSnapshot)> = self
            .apps
            .iter()
            .map(|(a, m)| (a, AppSnapshot::of(&m.lock().unwrap(), now)))
            .collect();
        let family = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        family(
            &mut out,
            "wx_tokend_upstream_fetches_total",
            "counter",
            "New tokens seen by this instance (its own fetches, or a peer's through the shared store).",
        );
        for (a, s) in &states {
            let _ = writeln!(
                out,
                "wx_tokend_upstream_fetches_total{{appid=\"{}\"}} {}",
                esc(a),
                s.fetches
            );
        }
        family(
            &mut out,
            "wx_tokend_upstream_failures_total",
            "counter",
            "Distinct engine failures handed to requests, by WeChat errcode (0: not a WeChat error) and engine status.",
        );
        for (a, s) in &states {
            for ((code, status), n) in &s.failures {
                let _ = writeln!(
                    out,
                    "wx_tokend_upstream_failures_total{{appid=\"{}\",errcode=\"{code}\",error=\"{status}\"}} {n}",
                    esc(a)
                );
            }
        }
        family(
            &mut out,
            "wx_tokend_token_generation",
            "gauge",
            "Generation of the token handed out (0: none yet).",
        );
        for (a, s) in &states {
            let _ = writeln!(
                out,
                "wx_tokend_token_generation{{appid=\"{}\"}} {}",
                esc(a),
                s.generation
            );
        }
        family(
            &mut out,
            "wx_tokend_token_age_seconds",
            "gauge",
            "Seconds since this instance first handed out the current token.",
        );
        for (a, s) in &states {
            if let Some(age) = s.age {
                let _ = writeln!(
                    out,
                    "wx_tokend_token_age_seconds{{appid=\"{}\"}} {:.3}",
                    esc(a),
                    age.as_secs_f64()
                );
            }
        }
        family(
            &mut out,
            "wx_tokend_token_expires_in_seconds",
            "gauge",
            "Seconds the current token stays valid (0 once expired).",
        );
        for (a, s) in &states {
            if let Some(left) = s.expires_in {
                let _ = writeln!(
                    out,
                    "wx_tokend_token_expires_in_seconds{{appid=\"{}\"}} {:.3}",
                    esc(a),
                    left.as_secs_f64()
                );
            }
        }
        out
    }
}

struct AppSnapshot {
    generation: u64,
    fetches: u64,
    age: Option<Duration>,
    expires_in: Option<Duration>,
    failures: BTreeMap<(i32, &'static str), u64>,
}

impl AppSnapshot {
    fn of(st: &AppState, now: Instant) -> AppSnapshot {
        AppSnapshot {
            generation: st.generation,
            fetches: st.fetches,
            age: st.seen_at.map(|t| now - t),
            expires_in: st.expires_at.map(|t| t.saturating_duration_since(now)),
            failures: st.failures.clone(),
        }
    }
}

/// `WECHAT_ERROR` → `wechat_error`, as in error bodies; static so it can be a map key.
pub fn status_label(s: wx_token::Status) -> &'static str {
    use wx_token::Status::*;
    match s {
        Ok => "ok",
        InvalidArgument => "invalid_argument",
        BufferTooSmall => "buffer_too_small",
        UnknownApp => "unknown_app",
        WechatError => "wechat_error",
        Network => "network",
        Protocol => "protocol",
        Store => "store",
        Panic => "panic",
        RateLimited => "rate_limited",
        #[allow(unreachable_patterns)]
        _ => "unknown",
    }
}

/// Escapes a label value (appids are printable ASCII, which still allows `"` and `\`).
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use wx_token::{Error, Status, TokenInfo};

    fn info(g: u64) -> TokenInfo {
        TokenInfo {
            access_token: "t".into(),
            generation: g,
            expires_in: Duration::from_secs(100),
        }
    }

    #[test]
    fn counts_new_generations_and_distinct_failures() {
        let m = Metrics::new(["wx1".to_string()]);
        assert!(m.token_seen("wx1", &info(1)));
        assert!(!m.token_seen("wx1", &info(1)));
        assert!(m.token_seen("wx1", &info(3)));
        let e = Error::wechat(45009, "quota");
        m.failure_seen("wx1", &e);
        m.failure_seen("wx1", &e.clone());
        m.failure_seen("wx1", &Error::wechat(45009, "quota"));
        m.failure_seen("wx1", &Error::new(Status::Network, "down"));
        m.request("token", 200, Duration::from_micros(30));
        let text = m.render();
        assert!(
            text.contains("wx_tokend_upstream_fetches_total{appid=\"wx1\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("wx_tokend_upstream_failures_total{appid=\"wx1\",errcode=\"45009\",error=\"wechat_error\"} 2\n"), "{text}");
        assert!(
            text.contains("errcode=\"0\",error=\"network\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("wx_tokend_requests_total{route=\"token\",code=\"200\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("wx_tokend_request_duration_seconds_bucket{le=\"0.0001\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("wx_tokend_request_duration_seconds_count 1\n"),
            "{text}"
        );
        assert!(
            text.contains("wx_tokend_token_generation{appid=\"wx1\"} 3\n"),
            "{text}"
        );
    }
}
