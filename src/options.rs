//! Per-app options, parsed from the JSON object given to `wx_token_register`.

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use serde::Deserialize;

use crate::error::Error;
use crate::secret::Secret;
use crate::store::{RedisTls, StoreSpec};

pub const DEFAULT_API_BASE: &str = "https://api.weixin.qq.com";
/// WeCom's API, the default `api_base` of `"platform": "wecom"`.
pub const DEFAULT_WECOM_API_BASE: &str = "https://qyapi.weixin.qq.com";

/// Which WeChat platform an id belongs to (#13).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Platform {
    /// An Official Account or Mini Program: the id is its appid.
    Mp,
    /// WeCom (企业微信): the id is a label of one corp secret (each self-built app, contacts
    /// sync, ... has its own token), e.g. "acme.contacts".
    Wecom {
        corpid: String,
        /// The app's agentid, for wx.agentConfig (agent_config tickets); `None` for secrets
        /// that are not an app's.
        agentid: Option<u64>,
    },
}
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
    pub platform: Platform,
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
    /// How many times per hour an app may fetch directly from WeChat, for all processes of the
    /// host together (counted in a flock'ed file), while its shared store is unreachable and
    /// no valid token is held: small, so a store outage cannot burn the quota. Only with the
    /// stable endpoint, in normal mode, which cannot end the token the fleet uses; with the
    /// classic endpoint nothing is fetched without the store.
    pub store_fallback_per_hour: u32,
    /// Passive refresh pacing: the least time between two fetches started by
    /// `invalidate(current token)`; a report within it is refused with RATE_LIMITED and the
    /// current token stays in service. Zero disables the spacing (the daily budget remains).
    pub passive_refresh_interval: Duration,
    /// Passive refresh pacing: at most this many invalidation-driven fetches in any rolling
    /// 24 hours (0: passive refresh always refused).
    pub passive_refresh_daily_limit: u32,
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

/// Where the central token servers are, and this client's key for them.
#[derive(Clone, Debug)]
pub struct Central {
    /// One or more servers, tried in order from the one that answered last (failover).
    pub servers: Vec<CentralServer>,
    pub key: Secret,
    /// Index into `servers` of the one to try first: the last one that answered. Shared by
    /// clones of these options (one app's fetches), not part of equality.
    pub preferred: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl PartialEq for Central {
    fn eq(&self, other: &Central) -> bool {
        self.servers == other.servers && self.key == other.key
    }
}
impl Eq for Central {}

/// One central server: its base URL and whether it is on loopback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CentralServer {
    /// Scheme, host and port, without a trailing slash (https, or http on loopback only).
    pub base: String,
    pub loopback: bool,
}

/// The most central servers one client may list.
pub const MAX_CENTRAL_SERVERS: usize = 16;

impl Default for Options {
    fn default() -> Options {
        Options {
            api_base: DEFAULT_API_BASE.to_owned(),
            endpoint: Endpoint::Stable,
            platform: Platform::Mp,
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
            passive_refresh_interval: Duration::from_secs(30),
            passive_refresh_daily_limit: 100,
            central: None,
            refresh_workers: None,
            refresh_rate_per_sec: None,
        }
    }
}

/// Declares `RawOptions` from the options table, one `Option` field per key.
macro_rules! raw_options {
    ($($key:ident: $ty:ty, $json_type:literal, $default:literal, $meaning:literal;)*) => {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawOptions {
            $($key: Option<$ty>,)*
        }
    };
}
crate::options_schema::with_options!(raw_options);

/// `central`: one URL, several separated by commas, or a JSON array of URLs.
#[derive(Deserialize)]
#[serde(untagged)]
enum CentralUrls {
    One(String),
    Many(Vec<String>),
}

impl CentralUrls {
    fn into_list(self) -> Vec<String> {
        match self {
            CentralUrls::One(s) => s.split(',').map(|u| u.trim().to_owned()).collect(),
            CentralUrls::Many(v) => v,
        }
    }
}

impl Options {
    /// Whether a fetch may end the token other processes use, so that nothing is fetched
    /// outside the store's lease: the classic endpoint always mints; WeCom's gettoken is
    /// documented both ways, so it is treated as if it did.
    pub fn fetch_may_end_others(&self) -> bool {
        self.endpoint == Endpoint::Classic || self.platform != Platform::Mp
    }

    /// Whether stable_token's force_refresh exists for this app (mp with the stable endpoint).
    pub fn can_force(&self) -> bool {
        self.endpoint == Endpoint::Stable && self.platform == Platform::Mp
    }

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
        let (base_given, endpoint_given) = (raw.api_base.is_some(), raw.endpoint.is_some());
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
        match (raw.platform.as_deref(), raw.corpid, raw.agentid) {
            (None | Some("mp"), None, None) => {}
            (Some("wecom"), Some(corpid), agentid) => {
                if corpid.is_empty()
                    || corpid.len() > 64
                    || !corpid.bytes().all(|b| b.is_ascii_alphanumeric())
                {
                    return Err(Error::invalid(
                        "options_json: corpid must be 1 to 64 letters and digits (as in ww0123456789abcdef)",
                    ));
                }
                if endpoint_given {
                    return Err(Error::invalid(
                        "options_json: endpoint is for mp apps; WeCom has one token API (gettoken)",
                    ));
                }
                if !base_given {
                    o.api_base = DEFAULT_WECOM_API_BASE.to_owned();
                }
                o.platform = Platform::Wecom { corpid, agentid };
            }
            (Some("wecom"), None, _) => {
                return Err(Error::invalid(
                    "options_json: platform \"wecom\" needs \"corpid\"",
                ));
            }
            (None | Some("mp"), _, _) => {
                return Err(Error::invalid(
                    "options_json: corpid and agentid need \"platform\": \"wecom\"",
                ));
            }
            (Some(other), _, _) => {
                return Err(Error::invalid(format!(
                    "options_json: platform must be \"mp\" or \"wecom\", not {other:?}"
                )));
            }
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
        if let Some(s) = raw.passive_refresh_interval_secs {
            o.passive_refresh_interval =
                Duration::from_secs(in_range("passive_refresh_interval_secs", s, 0, 86_400)?);
        }
        if let Some(n) = raw.passive_refresh_daily_limit {
            o.passive_refresh_daily_limit =
                in_range("passive_refresh_daily_limit", n, 0, 10_000)? as u32;
        }
        match (raw.central, raw.central_key) {
            (Some(urls), Some(key)) => {
                let urls = urls.into_list();
                if urls.is_empty() || urls.len() > MAX_CENTRAL_SERVERS {
                    return Err(Error::invalid(format!(
                        "options_json: central must list 1 to {MAX_CENTRAL_SERVERS} URLs"
                    )));
                }
                let servers = urls
                    .iter()
                    .map(|u| {
                        validate_url("central", u)
                            .map(|(base, loopback)| CentralServer { base, loopback })
                    })
                    .collect::<Result<Vec<_>, Error>>()?;
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
                    servers,
                    key: Secret::new(&key),
                    preferred: Default::default(),
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
        // Paths to PEM files, read (and checked) by the Redis store when the app is registered.
        let tls = RedisTls {
            ca_file: raw.store_tls_ca_file.map(Into::into),
            cert_file: raw.store_tls_cert_file.map(Into::into),
            key_file: raw.store_tls_key_file.map(Into::into),
        };
        if let Some(spec) = raw.store {
            // A store that cannot be opened is a configuration error at register, whatever
            // the store reports (WX_STORE is not a status register returns).
            o.store = StoreSpec::parse(&spec, prefix, &tls, o.timeout).map_err(|e| {
                if e.status() == crate::Status::InvalidArgument {
                    e
                } else {
                    Error::invalid(format!("options_json: store cannot be used: {e}"))
                }
            })?;
        } else if raw.store_prefix.is_some() || !tls.is_empty() {
            return Err(Error::invalid(
                "options_json: store_prefix and store_tls_* need a store",
            ));
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
    let shown = redact_userinfo(base);
    let bad = |why: &str| Error::invalid(format!("options_json: {key} {shown:?}: {why}"));
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

/// `base` as it may be shown in a message: any userinfo (which may hold a password) replaced.
fn redact_userinfo(base: &str) -> String {
    let (scheme, rest) = base.split_once("://").unwrap_or(("", base));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => base.to_owned(),
    }
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
    fn wecom_needs_a_corpid_and_defaults_to_qyapi() {
        let o = Options::parse(Some(
            r#"{"platform":"wecom","corpid":"ww1a","agentid":1000002}"#,
        ))
        .unwrap();
        assert_eq!(o.api_base, DEFAULT_WECOM_API_BASE);
        assert_eq!(
            o.platform,
            Platform::Wecom {
                corpid: "ww1a".into(),
                agentid: Some(1000002)
            }
        );
        let o = Options::parse(Some(
            r#"{"platform":"wecom","corpid":"ww1a","api_base":"http://127.0.0.1:9"}"#,
        ))
        .unwrap();
        assert_eq!(o.api_base, "http://127.0.0.1:9");
        assert_eq!(
            Options::parse(Some(r#"{"platform":"mp"}"#)).unwrap(),
            Options::default()
        );
        for bad in [
            r#"{"platform":"wecom"}"#,
            r#"{"platform":"wecom","corpid":""}"#,
            r#"{"platform":"wecom","corpid":"a/b"}"#,
            r#"{"platform":"wecom","corpid":"w","endpoint":"classic"}"#,
            r#"{"corpid":"ww1"}"#,
            r#"{"platform":"mp","agentid":1}"#,
            r#"{"platform":"qq"}"#,
            r#"{"platform":"wecom","corpid":"w","agentid":"1"}"#,
        ] {
            assert!(Options::parse(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn central_takes_one_or_several_urls() {
        let one = Options::parse(Some(
            r#"{"central":"http://127.0.0.1:1/","central_key":"k"}"#,
        ))
        .unwrap();
        let c = one.central.unwrap();
        assert_eq!(c.servers.len(), 1);
        assert_eq!(c.servers[0].base, "http://127.0.0.1:1");
        for several in [
            r#"{"central":"http://127.0.0.1:1, https://b.example:8443","central_key":"k"}"#,
            r#"{"central":["http://127.0.0.1:1","https://b.example:8443"],"central_key":"k"}"#,
        ] {
            let c = Options::parse(Some(several)).unwrap().central.unwrap();
            let bases: Vec<&str> = c.servers.iter().map(|s| s.base.as_str()).collect();
            assert_eq!(bases, ["http://127.0.0.1:1", "https://b.example:8443"]);
            assert!(c.servers[0].loopback && !c.servers[1].loopback);
        }
        let seventeen: Vec<String> = (0..17).map(|i| format!("https://h{i}")).collect();
        for bad in [
            r#"{"central":[],"central_key":"k"}"#.to_owned(),
            r#"{"central":"https://a,","central_key":"k"}"#.to_owned(),
            r#"{"central":["https://a",1],"central_key":"k"}"#.to_owned(),
            r#"{"central":["https://a","http://10.0.0.1"],"central_key":"k"}"#.to_owned(),
            serde_json::json!({"central": seventeen, "central_key": "k"}).to_string(),
        ] {
            assert!(Options::parse(Some(&bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn userinfo_is_never_echoed() {
        let e = Options::parse(Some(
            r#"{"central":"https://user:hunter2@tokens.internal","central_key":"k"}"#,
        ))
        .unwrap_err();
        assert!(!e.message().contains("hunter2"), "{}", e.message());
        assert!(
            e.message().contains("***@tokens.internal"),
            "{}",
            e.message()
        );
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
