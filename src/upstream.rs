//! One token request to WeChat (or anything speaking its protocol), and the parsing of its
//! answer. Nothing here caches or retries: that is `app`'s job.

use std::time::Duration;

use serde_json::Value;
use zeroize::Zeroizing;

use crate::error::Error;
use crate::options::{Central, Endpoint, Options};
use crate::secret::Secret;
use crate::status::Status;
use crate::sync::LockExt;

/// WeChat documents 512 bytes as the storage to reserve for a token.
pub const MAX_TOKEN_LEN: usize = 512;
/// A token answer is ~200 bytes; anything much larger is not WeChat and is not read.
pub const MAX_BODY_LEN: u64 = 64 * 1024;

/// A token as WeChat handed it out.
#[derive(Debug, PartialEq, Eq)]
pub struct Fetched {
    pub access_token: String,
    pub expires_in: Duration,
}

/// What a fetch asks for.
pub struct Request<'a> {
    pub appid: &'a str,
    pub secret: &'a Secret,
    pub options: &'a Options,
    /// stable_token's `force_refresh`; ignored by the classic endpoint, which always mints.
    pub force_refresh: bool,
}

pub fn fetch(req: &Request<'_>) -> Result<Fetched, Error> {
    let result = send(req).and_then(|body| parse_response(&body));
    result.map_err(|e| scrub(e, req.secret))
}

/// SCALE: agents are kept per (timeout, loopback) and reused: building one per fetch cost
/// most of a background refresh's CPU, and over https it rebuilt the TLS configuration (all
/// of webpki's roots) every time. Each keeps a few idle connections (`IDLE_CONNECTIONS`, for
/// at most `IDLE_AGE`), so a refresh wave to one upstream does not pay a TCP (and TLS)
/// handshake per token. A fork child builds its own agents (a parent thread may have held an
/// agent's internal lock at the fork) and leaks the parent's rather than running their
/// destructors: the child then holds copies of at most `IDLE_CONNECTIONS` idle sockets per
/// agent, never used, which the server closes when they idle out.
static AGENTS: std::sync::Mutex<Agents> = std::sync::Mutex::new((0, Vec::new()));

/// The fork epoch the agents were built in, and each agent with its (timeout, loopback).
type Agents = (u64, Vec<(Duration, bool, ureq::Agent)>);

fn agent(timeout: Duration, loopback: bool) -> ureq::Agent {
    let epoch = crate::fork::epoch();
    let mut agents = AGENTS.lock_ok();
    if agents.0 != epoch {
        std::mem::forget(std::mem::take(&mut agents.1));
        agents.0 = epoch;
    }
    if let Some((.., a)) = agents
        .1
        .iter()
        .find(|(t, l, _)| *t == timeout && *l == loopback)
    {
        return a.clone();
    }
    let a = new_agent(timeout, loopback);
    agents.1.push((timeout, loopback, a.clone()));
    a
}

/// Locks the agent cache for `fork()` (released by `fork.rs`).
pub fn fork_lock() {
    crate::fork::hold(AGENTS.lock_ok());
}

const IDLE_CONNECTIONS: usize = 4;
const IDLE_AGE: Duration = Duration::from_secs(10);

fn new_agent(timeout: Duration, loopback: bool) -> ureq::Agent {
    let mut cfg = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        // A redirect would carry the secret (in the classic URL or the stable body) to a
        // host nobody configured; a 3xx is reported as an error instead.
        .max_redirects(0)
        .http_status_as_error(false)
        .user_agent(concat!("wx-token/", env!("CARGO_PKG_VERSION")))
        .max_idle_connections(IDLE_CONNECTIONS)
        .max_idle_connections_per_host(IDLE_CONNECTIONS)
        .max_idle_age(IDLE_AGE);
    if loopback {
        // A loopback fake must never be reached through an HTTP(S)_PROXY from the environment.
        cfg = cfg.proxy(None);
    }
    ureq::Agent::with_parts(
        cfg.build(),
        ureq::unversioned::transport::DefaultConnector::new(),
        LiteralFirst::default(),
    )
}

/// SCALE: ureq's resolver starts a thread for every lookup when a timeout is set, even for an
/// IP address; that thread was a tenth of a refresh's CPU and escaped the worker pool's bound.
/// An IP literal (loopback fakes, a central server by address) needs no lookup; host names
/// still go through ureq's resolver and its timeout.
#[derive(Debug, Default)]
struct LiteralFirst(ureq::unversioned::resolver::DefaultResolver);

impl ureq::unversioned::resolver::Resolver for LiteralFirst {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        if let Some(authority) = uri.authority() {
            let host = authority
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']');
            let port = authority.port_u16().or(match uri.scheme_str() {
                Some("http") => Some(80),
                Some("https") => Some(443),
                _ => None,
            });
            if let (Ok(ip), Some(port)) = (host.parse::<std::net::IpAddr>(), port) {
                let mut addrs = self.empty();
                addrs.push(std::net::SocketAddr::new(ip, port));
                return Ok(addrs);
            }
        }
        self.0.resolve(uri, config, timeout)
    }
}

fn send(req: &Request<'_>) -> Result<Zeroizing<Vec<u8>>, Error> {
    let agent = agent(req.options.timeout, req.options.loopback);
    let base = &req.options.api_base;
    let response = match req.options.endpoint {
        Endpoint::Classic => {
            let url = Zeroizing::new(format!(
                "{base}/cgi-bin/token?grant_type=client_credential&appid={}&secret={}",
                percent_encode(req.appid).as_str(),
                percent_encode(req.secret.expose()).as_str()
            ));
            agent.get(url.as_str()).call()
        }
        Endpoint::Stable => {
            let body = Zeroizing::new(
                serde_json::to_vec(&serde_json::json!({
                    "grant_type": "client_credential",
                    "appid": req.appid,
                    "secret": req.secret.expose(),
                    "force_refresh": req.force_refresh,
                }))
                .map_err(|e| Error::new(Status::Protocol, format!("encoding request: {e}")))?,
            );
            agent
                .post(format!("{base}/cgi-bin/stable_token"))
                .header("Content-Type", "application/json")
                .send(body.as_slice())
        }
    };
    let mut response = response.map_err(|e| transport_error(e, base, req.options.timeout))?;
    let status = response.status().as_u16();
    if response.status().is_redirection() {
        return Err(Error::new(
            Status::Network,
            format!("upstream answered HTTP {status} (redirects are never followed)"),
        ));
    }
    if !response.status().is_success() {
        return Err(Error::new(
            Status::Network,
            format!("upstream answered HTTP {status}"),
        ));
    }
    read_body(&mut response, base, req.options.timeout)
}

fn read_body(
    response: &mut ureq::http::Response<ureq::Body>,
    base: &str,
    timeout: Duration,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    response
        .body_mut()
        .with_config()
        .limit(MAX_BODY_LEN)
        .read_to_vec()
        .map(Zeroizing::new)
        .map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => Error::new(
                Status::Protocol,
                format!("upstream response larger than {MAX_BODY_LEN} bytes"),
            ),
            other => transport_error(other, base, timeout),
        })
}

/// What a client-mode app asks its central token server.
#[derive(Clone, Copy, Debug)]
pub enum CentralCall<'a> {
    Get,
    /// The passive refresh, forwarded; `None` forces a refresh.
    Invalidate(Option<&'a str>),
}

/// One request to a central wx-tokend server (its API: docs/openapi/wx-tokend.yaml).
pub fn fetch_central(
    appid: &str,
    options: &Options,
    central: &Central,
    call: CentralCall<'_>,
) -> Result<Fetched, Error> {
    let agent = agent(options.timeout, central.loopback);
    let base = &central.base;
    let url = format!("{base}/v1/token/{}", percent_encode(appid).as_str());
    let auth = Zeroizing::new(format!("Bearer {}", central.key.expose()));
    let response = match call {
        CentralCall::Get => agent
            .get(&url)
            .header("Authorization", auth.as_str())
            .call(),
        CentralCall::Invalidate(stale) => agent
            .post(format!("{url}/invalidate"))
            .header("Authorization", auth.as_str())
            .header("Content-Type", "application/json")
            .send(
                serde_json::json!({ "stale_token": stale })
                    .to_string()
                    .as_bytes(),
            ),
    };
    let result = response
        .map_err(|e| transport_error(e, base, options.timeout))
        .and_then(|mut response| {
            let status = response.status().as_u16();
            let body = read_body(&mut response, base, options.timeout)?;
            match status {
                200..=299 => parse_response(&body),
                _ => Err(central_error(status, &body, base)),
            }
        });
    result.map_err(|e| scrub(e, &central.key))
}

/// Turns the central server's error answer back into the engine error it reported, so that a
/// client sees WeChat's errcode (and its transient or terminal nature) as if it had asked.
fn central_error(http: u16, body: &[u8], base: &str) -> Error {
    if http == 401 {
        return Error::invalid(format!(
            "central server {base} rejected central_key (HTTP 401)"
        ));
    }
    let v: Option<Value> = serde_json::from_slice(body).ok();
    let field = |k: &str| v.as_ref().and_then(|v| v.get(k));
    let status = field("status")
        .and_then(Value::as_i64)
        .and_then(|c| Status::from_code(c as i32))
        .filter(|s| *s != Status::Ok);
    let errcode = field("errcode")
        .and_then(Value::as_i64)
        .and_then(|c| i32::try_from(c).ok())
        .unwrap_or(0);
    let errmsg = sanitize_errmsg(field("errmsg").and_then(Value::as_str).unwrap_or(""));
    match status {
        Some(status) => Error::relayed(status, errcode, format!("central server {base}: {errmsg}")),
        None => Error::new(
            Status::Network,
            format!("central server {base} answered HTTP {http}"),
        ),
    }
}

/// Describes a transport failure in our own words. ureq's own messages can quote the request
/// URI (which holds the secret on the classic endpoint), so only variants known to be safe
/// contribute text, and `scrub` runs over the result anyway.
fn transport_error(e: ureq::Error, base: &str, timeout: Duration) -> Error {
    use ureq::Error as U;
    let what = match e {
        U::Timeout(kind) => format!("timed out after {} ms ({kind})", timeout.as_millis()),
        U::HostNotFound => "host not found".to_owned(),
        U::ConnectionFailed => "connection failed".to_owned(),
        U::Io(io) => format!("I/O error: {io}"),
        U::Tls(msg) => format!("TLS error: {msg}"),
        U::Rustls(err) => format!("TLS error: {err}"),
        U::BodyExceedsLimit(_) => "response too large".to_owned(),
        U::BadUri(_) => return Error::invalid("api_base does not form a valid URL"),
        U::Protocol(_) => "malformed HTTP from upstream".to_owned(),
        U::LargeResponseHeader(..) => "upstream response headers too large".to_owned(),
        _ => "HTTP transport failure".to_owned(),
    };
    Error::new(
        Status::Network,
        format!("token request to {base} failed: {what}"),
    )
}

/// Turns a response body into a token or an error. Public for fuzzing and unit tests.
pub fn parse_response(body: &[u8]) -> Result<Fetched, Error> {
    let protocol = |why: &str| {
        Error::new(
            Status::Protocol,
            format!("unexpected token response: {why}"),
        )
    };
    let v: Value = serde_json::from_slice(body).map_err(|_| protocol("not valid JSON"))?;
    let obj = v.as_object().ok_or_else(|| protocol("not a JSON object"))?;
    if let Some(code) = obj.get("errcode") {
        let code = code
            .as_i64()
            .ok_or_else(|| protocol("errcode is not an integer"))?;
        if code != 0 {
            let code = i32::try_from(code).map_err(|_| protocol("errcode out of range"))?;
            let msg = obj.get("errmsg").and_then(Value::as_str).unwrap_or("");
            return Err(Error::wechat(code, &sanitize_errmsg(msg)));
        }
    }
    let token = obj
        .get("access_token")
        .and_then(Value::as_str)
        .ok_or_else(|| protocol("missing access_token"))?;
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(protocol(&format!(
            "access_token is {} bytes (expected 1 to {MAX_TOKEN_LEN})",
            token.len()
        )));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(protocol(
            "access_token holds characters other than printable ASCII",
        ));
    }
    let expires_in = obj
        .get("expires_in")
        .and_then(Value::as_u64)
        .filter(|s| (1..=86_400).contains(s))
        .ok_or_else(|| protocol("expires_in missing or not between 1 and 86400"))?;
    Ok(Fetched {
        access_token: token.to_owned(),
        expires_in: Duration::from_secs(expires_in),
    })
}

/// WeChat's errmsg goes into our messages: bound it and strip control characters.
fn sanitize_errmsg(msg: &str) -> String {
    msg.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// Removes the secret, raw or percent-encoded, from an error message: the last line of
/// defence in case some layer below ever echoes a request.
fn scrub(e: Error, secret: &Secret) -> Error {
    let raw = secret.expose();
    if raw.is_empty() {
        return e;
    }
    let encoded = percent_encode(raw);
    let msg = e.message();
    if !msg.contains(raw) && !msg.contains(encoded.as_str()) {
        return e;
    }
    match e.status() {
        // WeChat's errmsg is kept verbatim elsewhere; here it echoed the secret, so drop it.
        Status::WechatError => {
            Error::wechat(e.errcode(), "(errmsg withheld: it echoed the secret)")
        }
        status => Error::new(
            status,
            msg.replace(raw, "***").replace(encoded.as_str(), "***"),
        ),
    }
}

/// RFC 3986 percent-encoding of everything but unreserved characters: a secret may hold
/// `&`, `=`, `+`, `%` or non-ASCII, and must reach WeChat byte for byte.
pub fn percent_encode(s: &str) -> Zeroizing<String> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Zeroizing::new(String::with_capacity(s.len() * 3));
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_success_and_errors() {
        let f = parse_response(br#"{"access_token":"ABC_def-1","expires_in":7200}"#).unwrap();
        assert_eq!(
            f,
            Fetched {
                access_token: "ABC_def-1".into(),
                expires_in: Duration::from_secs(7200)
            }
        );
        let f =
            parse_response(br#"{"errcode":0,"errmsg":"ok","access_token":"T","expires_in":300}"#)
                .unwrap();
        assert_eq!(f.access_token, "T");
        let e = parse_response(br#"{"errcode":40013,"errmsg":"invalid appid"}"#).unwrap_err();
        assert_eq!((e.status(), e.errcode()), (Status::WechatError, 40013));
    }

    #[test]
    fn rejects_what_is_not_a_token() {
        let long = format!(
            r#"{{"access_token":"{}","expires_in":7200}}"#,
            "a".repeat(513)
        );
        let exact = format!(
            r#"{{"access_token":"{}","expires_in":7200}}"#,
            "a".repeat(512)
        );
        assert!(parse_response(exact.as_bytes()).is_ok());
        for bad in [
            long.as_bytes(),
            b"{\"access_token\": ",
            b"[]",
            br#"{"foo":1}"#,
            br#"{"access_token":"","expires_in":7200}"#,
            br#"{"access_token":"a b","expires_in":7200}"#,
            br#"{"access_token":"ab","expires_in":0}"#,
            br#"{"access_token":"ab","expires_in":"7200"}"#,
            br#"{"access_token":"ab"}"#,
            br#"{"errcode":"x"}"#,
            br#"{"errcode":99999999999}"#,
        ] {
            let e = parse_response(bad).unwrap_err();
            assert_eq!(
                e.status(),
                Status::Protocol,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn percent_encoding_covers_reserved_and_utf8() {
        assert_eq!(
            percent_encode("a&b=c+d%e f").as_str(),
            "a%26b%3Dc%2Bd%25e%20f"
        );
        assert_eq!(percent_encode("密").as_str(), "%E5%AF%86");
        assert_eq!(percent_encode("Az09-._~").as_str(), "Az09-._~");
    }

    #[test]
    fn scrub_removes_secret_in_both_forms() {
        let s = Secret::new("p@ss&word");
        let e = scrub(
            Error::new(
                Status::Network,
                "GET /x?secret=p%40ss%26word failed, p@ss&word",
            ),
            &s,
        );
        assert!(
            !e.message().contains("p@ss&word") && !e.message().contains("p%40ss%26word"),
            "{}",
            e.message()
        );
        let e = scrub(Error::wechat(40125, "bad secret p@ss&word"), &s);
        assert!(!e.message().contains("p@ss"));
        assert_eq!(e.errcode(), 40125);
    }
}
