//! Prometheus metrics, rendered by hand in text format 0.0.4 (a handful of counters and one
//! histogram do not justify a metrics crate).
//!
//! Request figures are counted here; the per-app upstream figures are the engine's own
//! (`wx_token::stats`, which covers background refreshes too), and the token gauges come from
//! `wx_token::try_get_info`, so a scrape never fetches or waits on a fetch.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use wx_token::{AppStats, TokenInfo};

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
        header(out, name, "histogram", help);
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

pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    pub request_duration: Histogram,
    pub connections_open: AtomicI64,
    /// Connections closed at once because a limit was reached.
    pub shed_max_connections: AtomicU64,
    pub shed_per_peer: AtomicU64,
}

/// What the engine says about one app at scrape time.
struct AppView<'a> {
    appid: &'a str,
    stats: AppStats,
    /// `None` when there is no usable token (none yet, expired, or being replaced).
    token: Option<TokenInfo>,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            requests: Mutex::new(BTreeMap::new()),
            request_duration: Histogram::new(),
            connections_open: AtomicI64::new(0),
            shed_max_connections: AtomicU64::new(0),
            shed_per_peer: AtomicU64::new(0),
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

    /// Reads the engine without I/O: counters, and the cached token only if it is usable now.
    pub fn render(&self, appids: &[String]) -> String {
        let apps: Vec<AppView> = appids
            .iter()
            .filter_map(|a| {
                Some(AppView {
                    appid: a,
                    stats: wx_token::stats(a).ok()?,
                    token: wx_token::try_get_info(a).and_then(Result::ok),
                })
            })
            .collect();
        self.render_with(&apps, SystemTime::now())
    }

    fn render_with(&self, apps: &[AppView], now: SystemTime) -> String {
        let mut out = String::with_capacity(4096);
        header(
            &mut out,
            "wx_tokend_requests_total",
            "counter",
            "HTTP requests answered, by route and status code.",
        );
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
        header(
            &mut out,
            "wx_tokend_connections_open",
            "gauge",
            "Client connections open now.",
        );
        let _ = writeln!(
            out,
            "wx_tokend_connections_open {}",
            self.connections_open.load(Ordering::Relaxed)
        );
        header(
            &mut out,
            "wx_tokend_connections_shed_total",
            "counter",
            "Connections closed at once because max_connections or max_connections_per_peer was reached.",
        );
        for (reason, n) in [
            ("max_connections", &self.shed_max_connections),
            ("per_peer", &self.shed_per_peer),
        ] {
            let _ = writeln!(
                out,
                "wx_tokend_connections_shed_total{{reason=\"{reason}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }

        let secs = |d: Duration| format!("{:.6}", d.as_secs_f64());
        family(
            &mut out,
            "wx_tokend_upstream_fetches_total",
            "counter",
            "Token requests this instance sent to WeChat, background refreshes and failures included (a peer's fetch through the shared store is not one).",
            apps,
            |a| Some(a.stats.fetches.to_string()),
        );
        header(
            &mut out,
            "wx_tokend_upstream_failures_total",
            "counter",
            "Failed fetches, background ones included, by WeChat errcode (0: not a WeChat error) and engine status.",
        );
        for a in apps {
            for f in &a.stats.failures {
                let _ = writeln!(
                    out,
                    "wx_tokend_upstream_failures_total{{appid=\"{}\",errcode=\"{}\",error=\"{}\"}} {}",
                    esc(a.appid),
                    f.errcode,
                    status_label(f.status),
                    f.count
                );
            }
        }
        family(
            &mut out,
            "wx_tokend_tokens_from_store_total",
            "counter",
            "Tokens taken from the shared store's record instead of fetching.",
            apps,
            |a| Some(a.stats.tokens_from_store.to_string()),
        );
        // A summary without quantiles: rate(_sum) / rate(_count) is the mean fetch time.
        header(
            &mut out,
            "wx_tokend_upstream_fetch_seconds",
            "summary",
            "Time spent on token requests to WeChat, in seconds.",
        );
        for a in apps {
            let appid = esc(a.appid);
            let _ = writeln!(
                out,
                "wx_tokend_upstream_fetch_seconds_sum{{appid=\"{appid}\"}} {}\nwx_tokend_upstream_fetch_seconds_count{{appid=\"{appid}\"}} {}",
                secs(a.stats.fetch_time_total),
                a.stats.fetches
            );
        }
        family(
            &mut out,
            "wx_tokend_upstream_last_fetch_seconds",
            "gauge",
            "Duration of the latest token request to WeChat, in seconds.",
            apps,
            |a| a.stats.last_fetch_time.map(secs),
        );
        // Token gauges only for an app with a usable token.
        family(
            &mut out,
            "wx_tokend_token_generation",
            "gauge",
            "Generation of the token in service.",
            apps,
            |a| a.token.as_ref().map(|t| t.generation.to_string()),
        );
        family(
            &mut out,
            "wx_tokend_token_age_seconds",
            "gauge",
            "Seconds since the token in service was requested from WeChat (by this instance or a peer).",
            apps,
            |a| {
                a.token
                    .as_ref()
                    .map(|t| secs(now.duration_since(t.fetched_at).unwrap_or_default()))
            },
        );
        family(
            &mut out,
            "wx_tokend_token_expires_in_seconds",
            "gauge",
            "Seconds the token in service stays valid.",
            apps,
            |a| a.token.as_ref().map(|t| secs(t.expires_in)),
        );
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A family with one sample per app for which `value` has one.
fn family(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    apps: &[AppView],
    value: impl Fn(&AppView) -> Option<String>,
) {
    header(out, name, kind, help);
    for a in apps {
        if let Some(v) = value(a) {
            let _ = writeln!(out, "{name}{{appid=\"{}\"}} {v}", esc(a.appid));
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
    use wx_token::{FailureCount, Status};

    #[test]
    fn renders_engine_stats_and_token_gauges() {
        let m = Metrics::new();
        m.request("token", 200, Duration::from_micros(30));
        let now = SystemTime::now();
        let stats = AppStats {
            fetches: 3,
            fetch_time_total: Duration::from_millis(150),
            last_fetch_time: Some(Duration::from_millis(40)),
            tokens_from_store: 2,
            failures: vec![
                FailureCount {
                    status: Status::WechatError,
                    errcode: 45009,
                    count: 2,
                },
                FailureCount {
                    status: Status::Network,
                    errcode: 0,
                    count: 1,
                },
            ],
            ..AppStats::default()
        };
        let token = TokenInfo {
            access_token: "t".into(),
            generation: 3,
            expires_in: Duration::from_secs(100),
            fetched_at: now - Duration::from_secs(7),
            lifetime: Duration::from_secs(7200),
        };
        let apps = [
            AppView {
                appid: "wx1",
                stats,
                token: Some(token),
            },
            AppView {
                appid: "wx\"2",
                stats: AppStats {
                    fetches: 0,
                    fetch_time_total: Duration::ZERO,
                    last_fetch_time: None,
                    tokens_from_store: 0,
                    failures: vec![],
                    ..AppStats::default()
                },
                token: None,
            },
        ];
        let text = m.render_with(&apps, now);
        for want in [
            "wx_tokend_requests_total{route=\"token\",code=\"200\"} 1\n",
            "wx_tokend_request_duration_seconds_bucket{le=\"0.0001\"} 1\n",
            "wx_tokend_request_duration_seconds_count 1\n",
            "wx_tokend_upstream_fetches_total{appid=\"wx1\"} 3\n",
            "wx_tokend_upstream_fetches_total{appid=\"wx\\\"2\"} 0\n",
            "wx_tokend_upstream_failures_total{appid=\"wx1\",errcode=\"45009\",error=\"wechat_error\"} 2\n",
            "wx_tokend_upstream_failures_total{appid=\"wx1\",errcode=\"0\",error=\"network\"} 1\n",
            "wx_tokend_tokens_from_store_total{appid=\"wx1\"} 2\n",
            "# TYPE wx_tokend_upstream_fetch_seconds summary\n",
            "wx_tokend_upstream_fetch_seconds_sum{appid=\"wx1\"} 0.150000\n",
            "wx_tokend_upstream_fetch_seconds_count{appid=\"wx1\"} 3\n",
            "wx_tokend_upstream_last_fetch_seconds{appid=\"wx1\"} 0.040000\n",
            "wx_tokend_token_generation{appid=\"wx1\"} 3\n",
            "wx_tokend_token_age_seconds{appid=\"wx1\"} 7.000000\n",
            "wx_tokend_token_expires_in_seconds{appid=\"wx1\"} 100.000000\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        // No fetch yet, no usable token: counters at 0, no last-fetch or token gauges.
        for absent in [
            "wx_tokend_upstream_last_fetch_seconds{appid=\"wx\\\"2\"}",
            "wx_tokend_token_generation{appid=\"wx\\\"2\"}",
            "wx_tokend_token_age_seconds{appid=\"wx\\\"2\"}",
            "wx_tokend_token_expires_in_seconds{appid=\"wx\\\"2\"}",
        ] {
            assert!(!text.contains(absent), "{absent:?} in\n{text}");
        }
    }
}
