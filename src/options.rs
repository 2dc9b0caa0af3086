//! Per-app options, parsed from the JSON object given to `wx_token_register`.

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use serde::Deserialize;

use crate::error::Error;
use crate::secret::Secret;
use crate::store::StoreSpec;

pub const DEFAULT_API_BASE: &str = "https://api.weixin.qq.com";
pub const DEFAULT_STORE_PREFIX: &str = "wx_token:";

/// Which WeChat token API to call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// POST /cgi-bin/stable_token: WeChat's current recommendation. Normal-mode calls return
    /// the same token until it nears expiry, so several fetchers do not overwrite each other.
    Stable,
    /// GET /cgi-bin/token: every call mints a new token and ends the previous one after a
    /// short overlap.
    Classic,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Scheme, host and optional port and path prefix, without a trailing slash.
    pub api_base: String,
    pub endpoint: Endpoint,
    pub refresh_ahead: Duration,
    pub timeout: Duration,
    /// First backoff delay after a transient failure; doubles per failure up to `retry_max`.
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// How long a terminal failure (bad credentials, quota...) is answered from memory
    /// before WeChat is asked again; doubles per repeated failure up to one hour.
    pub error_cooldown: Duration,
    /// Whether `api_base` is a loopback host (plain http allowed, proxies bypassed).
    pub loopback: bool,
    /// Where the token is kept: this process only, or a store shared with other processes.
    pub store: StoreSpec,
    /// How long a refresh lease in a shared store lasts: a holder that dies mid-refresh is
    /// replaced within this time.
    pub lease: Duration,
    /// With a shared store, how often a process re-reads the store for tokens another process
    /// published (a refresh or an invalidation elsewhere in the fleet).
    pub store_sync: Duration,
    /// How many times per hour an app may fetch directly from WeChat while its shared store is
    /// unreachable and it has no valid token: small, so a store outage cannot burn the quota.
    pub store_fallback_per_hour: u32,
    /// Client mode: tokens come from a central wx-tokend server instead of WeChat, so this
    /// process needs no AppSecret.
    pub central: Option<Central>,
    /// Process-wide: background refresh worker threads. The pool is the largest value any
    /// registration asked for; `None` leaves the default (8) to the others.
    pub refresh_workers: Option<u32>,
    /// Process-wide per upstream: background refreshes per second to this app's `api_base`
    /// (or central server), shared by all apps using it. The lowest value any registration
    /// for that upstream asked for applies; `None` leaves the default (50).
    pub refresh_rate_per_sec: Option<u32>,
}

/// Where the central token server is, and this client's key for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Central {
    /// Scheme, host and port, without a trailing slash (https, or http on loopback only).
    pub base: String,
    pub key: Secret,
    pub loopback: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            api_base: DEFAULT_API_BASE.to_owned(),
            endpoint: Endpoint::Stable,
            refresh_ahead: Duration::from_secs(300),
            timeout: Duration::from_millis(5000),
            retry_min: Duration::from_millis(500),
            retry_max: Duration::from_secs(60),
            error_cooldown: Duration::from_secs(30),
            loopback: false,
            store: StoreSpec::Memory,
            lease: Duration::from_secs(10),
            store_sync: Duration::from_secs(10),
            store_fallback_per_hour: 2,
            central: None,
            refresh_workers: None,
            refresh_rate_per_sec: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOptions {
    api_base: Option<String>,
    endpoint: Option<String>,
    refresh_ahead_secs: Option<u64>,
    timeout_ms: Option<u64>,
    retry_min_ms: Option<u64>,
    retry_max_ms: Option<u64>,
    error_cooldown_ms: Option<u64>,
    store: Option<String>,
    store_prefix: Option<String>,
    lease_ms: Option<u64>,
    store_sync_ms: Option<u64>,
    store_fallback_per_hour: Option<u32>,
    central: Option<String>,
    central_key: Option<String>,
    refresh_workers: Option<u64>,
    refresh_rate_per_sec: Option<u64>,
}

impl Options {
    /// Parses and validates `json` (`None` or blank means all defaults). Unknown keys are an
    /// error, so that a typo such as `refresh_ahead_sec` never silently falls back to a default.
    pub fn parse(json: Option<&str>) -> Result<Options, Error> {
        let json = match json.map(str::trim) {
            None | Some("") => return Ok(Options::default()),
            Some(j) => j,
        };
        let raw: RawOptions =
            serde_json::from_str(json).map_err(|e| Error::invalid(format!("options_json: {e}")))?;
        let mut o = Options::default();
        if let Some(base) = raw.api_base {
            let (base, loopback) = validate_api_base(&base)?;
            o.api_base = base;
            o.loopback = loopback;
        }
        if let Some(ep) = raw.endpoint {
            o.endpoint = match ep.as_str() {
                "stable" => Endpoint::Stable,
                "classic" => Endpoint::Classic,
                other => {
                    return Err(Error::invalid(format!(
                        "options_json: endpoint must be \"stable\" or \"classic\", not {other:?}"
                    )));
                }
            };
        }
        if let Some(s) = raw.refresh_ahead_secs {
            o.refresh_ahead = Duration::from_secs(in_range("refresh_ahead_secs", s, 0, 86_400)?);
        }
        if let Some(ms) = raw.timeout_ms {
            o.timeout = Duration::from_millis(in_range("timeout_ms", ms, 1, 600_000)?);
        }
        if let Some(ms) = raw.retry_min_ms {
            o.retry_min = Duration::from_millis(in_range("retry_min_ms", ms, 1, 3_600_000)?);
        }
        if let Some(ms) = raw.retry_max_ms {
            o.retry_max = Duration::from_millis(in_range("retry_max_ms", ms, 1, 3_600_000)?);
        }
        if o.retry_max < o.retry_min {
            return Err(Error::invalid(
                "options_json: retry_max_ms must not be less than retry_min_ms",
            ));
        }
        if let Some(ms) = raw.error_cooldown_ms {
            o.error_cooldown =
                Duration::from_millis(in_range("error_cooldown_ms", ms, 1, 3_600_000)?);
        }
        if let Some(ms) = raw.lease_ms {
            o.lease = Duration::from_millis(in_range("lease_ms", ms, 100, 600_000)?);
        } else {
            // A lease must outlast the fetch it guards.
            o.lease = o.lease.max(o.timeout * 2);
        }
        if let Some(ms) = raw.store_sync_ms {
            o.store_sync = Duration::from_millis(in_range("store_sync_ms", ms, 10, 3_600_000)?);
        }
        if let Some(n) = raw.store_fallback_per_hour {
            o.store_fallback_per_hour =
                in_range("store_fallback_per_hour", n.into(), 0, 60)? as u32;
        }
        match (raw.central, raw.central_key) {
            (Some(base), Some(key)) => {
                let (base, loopback) = validate_url("central", &base)?;
                if key.is_empty() || key.len() > 512 {
                    return Err(Error::invalid(
                        "options_json: central_key must be 1 to 512 bytes",
                    ));
                }
                if raw.store.as_deref().is_some_and(|s| s != "memory") {
                    return Err(Error::invalid(
                        "options_json: with central, the central server owns the store; drop \"store\"",
                    ));
                }
                o.central = Some(Central {
                    base,
                    key: Secret::new(&key),
                    loopback,
                });
            }
            (None, None) => {}
            _ => {
                return Err(Error::invalid(
                    "options_json: central and central_key go together",
                ));
            }
        }
        if let Some(n) = raw.refresh_workers {
            o.refresh_workers = Some(in_range("refresh_workers", n, 1, 256)? as u32);
        }
        if let Some(n) = raw.refresh_rate_per_sec {
            o.refresh_rate_per_sec = Some(in_range("refresh_rate_per_sec", n, 1, 100_000)? as u32);
        }
        let prefix = raw.store_prefix.as_deref().unwrap_or(DEFAULT_STORE_PREFIX);
        crate::store::check_prefix(prefix)?;
        if let Some(spec) = raw.store {
            o.store = StoreSpec::parse(&spec, prefix, o.timeout)?;
        } else if raw.store_prefix.is_some() {
            return Err(Error::invalid("options_json: store_prefix needs a store"));
        }
        Ok(o)
    }
}

fn in_range(key: &str, v: u64, min: u64, max: u64) -> Result<u64, Error> {
    if (min..=max).contains(&v) {
        Ok(v)
    } else {
        Err(Error::invalid(format!(
            "options_json: {key} must be between {min} and {max}, not {v}"
        )))
    }
}

/// Accepts `https://host[:port][/prefix]`, and `http://` only for loopback hosts, so that a
/// misconfiguration can never send the AppSecret over plain text across a network.
/// Returns the base without a trailing slash, and whether the host is loopback.
pub fn validate_api_base(base: &str) -> Result<(String, bool), Error> {
    validate_url("api_base", base)
}

fn validate_url(key: &str, base: &str) -> Result<(String, bool), Error> {
    let bad = |why: &str| Error::invalid(format!("options_json: {key} {base:?}: {why}"));
    let (scheme, rest) = base
        .split_once("://")
        .ok_or_else(|| bad("expected https://host"))?;
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() {
        return Err(bad("missing host"));
    }
    if rest.contains(['?', '#', '@']) || rest.chars().any(|c| c.is_ascii_control() || c == ' ') {
        return Err(bad(
            "must not contain a query, fragment, user info or spaces",
        ));
    }
    let host = host_of(authority).ok_or_else(|| bad("malformed host or port"))?;
    let loopback = is_loopback_host(host);
    match scheme {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(bad(
                "plain http is allowed only for loopback hosts (127.0.0.0/8, ::1, localhost)",
            ));
        }
        _ => return Err(bad("scheme must be https")),
    }
    Ok((base.trim_end_matches('/').to_owned(), loopback))
}

/// The host part of `host[:port]` or `[v6]:port`, with the port checked to be numeric.
fn host_of(authority: &str) -> Option<&str> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        (h, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if let Some(p) = port
        && p.parse::<u16>().is_err()
    {
        return None;
    }
    (!host.is_empty()).then_some(host)
}

fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(IpAddr::V6(v6)) => v6 == Ipv6Addr::LOCALHOST,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let o = Options::parse(None).unwrap();
        assert_eq!(o, Options::default());
        assert_eq!(o.endpoint, Endpoint::Stable);
        assert_eq!(Options::parse(Some("  ")).unwrap(), Options::default());
        assert_eq!(Options::parse(Some("{}")).unwrap(), Options::default());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected() {
        for bad in [
            r#"{"refresh_ahead_sec":1}"#,
            r#"{"endpoint":"fast"}"#,
            r#"{"timeout_ms":0}"#,
            r#"{"refresh_workers":0}"#,
            r#"{"refresh_workers":257}"#,
            r#"{"refresh_rate_per_sec":0}"#,
            r#"{"timeout_ms":-5}"#,
            r#"{"retry_min_ms":100,"retry_max_ms":50}"#,
            r#"[1,2]"#,
            r#"{"api_base":"ftp://127.0.0.1"}"#,
            r#"{"central":"http://10.0.0.1:8443","central_key":"k"}"#,
            r#"{"central":"https://tokens.internal"}"#,
            r#"{"central_key":"k"}"#,
            r#"{"central":"https://tokens.internal","central_key":"k","store":"file:/tmp/x"}"#,
            "not json",
        ] {
            let e = Options::parse(Some(bad)).unwrap_err();
            assert_eq!(e.status(), crate::Status::InvalidArgument, "{bad}");
        }
    }

    #[test]
    fn http_only_on_loopback() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://127.1.2.3",
            "http://localhost:1/",
            "http://[::1]:99",
            "https://example.com/prefix",
        ] {
            validate_api_base(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "http://example.com",
            "http://10.0.0.1",
            "http://127.0.0.1.evil.com",
            "http://[::2]:80",
            "https://",
            "https://a.com?x=1",
            "https://user@a.com",
            "https://a.com:port",
            "api.weixin.qq.com",
        ] {
            assert!(validate_api_base(bad).is_err(), "{bad}");
        }
        assert_eq!(
            validate_api_base("http://127.0.0.1:9/").unwrap(),
            ("http://127.0.0.1:9".to_owned(), true)
        );
        assert!(!validate_api_base(DEFAULT_API_BASE).unwrap().1);
    }
}
