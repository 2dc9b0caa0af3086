//! One token request to WeChat (or anything speaking its protocol), and the parsing of its
//! answer. Nothing here caches or retries: that is `app`'s job.

use std::borrow::Cow;
use std::time::Duration;

use serde_json::Value;
use zeroize::Zeroizing;

use crate::error::Error;
use crate::options::{Central, CentralServer, Endpoint, Options, Platform};
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
    let result = send(req).and_then(|body| parse_for(req.options, &body));
    result.map_err(|e| scrub(e, req.secret))
}

/// With several central servers, a server that does not even accept a connection within this
/// is passed over for the next one, instead of holding the request for the whole timeout_ms.
const CENTRAL_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Agents are kept per (timeout, loopback, connect timeout) and reused: building one per fetch
/// cost most of a background refresh's CPU, and over https it rebuilt the TLS configuration
/// (all of webpki's roots) every time. Each keeps a few idle connections (`IDLE_CONNECTIONS`,
/// for at most `IDLE_AGE`), so a refresh wave to one upstream does not pay a TCP (and TLS)
/// handshake per token. A fork child builds its own agents (a parent thread may have held an
/// agent's internal lock at the fork) and leaks the parent's rather than running their
/// destructors: the child then holds copies of at most `IDLE_CONNECTIONS` idle sockets per
/// agent, never used, which the server closes when they idle out.
static AGENTS: std::sync::Mutex<Agents> = std::sync::Mutex::new((0, Vec::new()));

/// What distinguishes one agent from another.
type AgentKey = (Duration, bool, Option<Duration>);
/// The fork epoch the agents were built in, and each agent with its key.
type Agents = (u64, Vec<(AgentKey, ureq::Agent)>);

fn agent(timeout: Duration, loopback: bool, connect: Option<Duration>) -> ureq::Agent {
    let key = (timeout, loopback, connect);
    let epoch = crate::fork::epoch();
    let mut agents = AGENTS.lock_ok();
    if agents.0 != epoch {
        std::mem::forget(std::mem::take(&mut agents.1));
        agents.0 = epoch;
    }
    if let Some((_, a)) = agents.1.iter().find(|(k, _)| *k == key) {
        return a.clone();
    }
    let a = new_agent(key);
    agents.1.push((key, a.clone()));
    a
}

/// Locks the agent cache for `fork()` (released by `fork.rs`).
pub fn fork_lock() {
    crate::fork::hold(AGENTS.lock_ok());
}

const IDLE_CONNECTIONS: usize = 4;
const IDLE_AGE: Duration = Duration::from_secs(10);

fn new_agent((timeout, loopback, connect): AgentKey) -> ureq::Agent {
    let mut cfg = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .timeout_connect(connect.map(|c| c.min(timeout)))
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

/// ureq's resolver starts a thread for every lookup when a timeout is set, even for an
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
    let agent = agent(req.options.timeout, req.options.loopback, None);
    let base = &req.options.api_base;
    let response = match (&req.options.platform, req.options.endpoint) {
        (Platform::Wecom { corpid, .. }, _) => {
            // One token per secret: the registered id is only our label for it.
            let url = Zeroizing::new(format!(
                "{base}/cgi-bin/gettoken?corpid={}&corpsecret={}",
                percent_encode(corpid).as_str(),
                percent_encode(req.secret.expose()).as_str()
            ));
            agent.get(url.as_str()).call()
        }
        (Platform::Mp, Endpoint::Classic) => {
            let url = Zeroizing::new(format!(
                "{base}/cgi-bin/token?grant_type=client_credential&appid={}&secret={}",
                percent_encode(req.appid).as_str(),
                percent_encode(req.secret.expose()).as_str()
            ));
            agent.get(url.as_str()).call()
        }
        (Platform::Mp, Endpoint::Stable) => {
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
    let peer = authority(base);
    let mut response = response.map_err(|e| transport_error(e, peer, req.options.timeout))?;
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
    read_body(&mut response, peer, req.options.timeout)
}

fn read_body(
    response: &mut ureq::http::Response<ureq::Body>,
    peer: &str,
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
            other => transport_error(other, peer, timeout),
        })
}

/// What a client-mode app asks its central token server.
#[derive(Clone, Copy, Debug)]
pub enum CentralCall<'a> {
    Get,
    /// The passive refresh, forwarded; `None` forces a refresh.
    Invalidate(Option<&'a str>),
    /// A JS-SDK ticket of this kind (`GET /v1/ticket/{id}/{kind}`).
    Ticket(&'a str),
    /// A ticket a page reported, forwarded (`POST /v1/ticket/{id}/{kind}/invalidate`).
    TicketInvalidate(&'a str, &'a str),
}

/// One ticket request: `GET` the endpoint of `kind` with the app's access token. The token is
/// a credential in the URL: scrubbed from any error like a secret.
pub fn fetch_ticket(
    options: &Options,
    path_and_query: &str,
    token: &str,
) -> Result<Fetched, Error> {
    let agent = agent(options.timeout, options.loopback, None);
    let url = Zeroizing::new(format!(
        "{}{path_and_query}access_token={}",
        options.api_base,
        percent_encode(token).as_str()
    ));
    let peer = authority(&options.api_base);
    let result = agent
        .get(url.as_str())
        .call()
        .map_err(|e| transport_error(e, peer, options.timeout))
        .and_then(|mut response| {
            let status = response.status().as_u16();
            if !response.status().is_success() {
                return Err(Error::new(
                    Status::Network,
                    format!("ticket request answered HTTP {status} (redirects are never followed)"),
                ));
            }
            read_body(&mut response, peer, options.timeout)
        })
        .and_then(|body| parse_credential(&body, "ticket"))
        .map_err(|e| wecom_class(options, e));
    result.map_err(|e| scrub(e, &Secret::new(token)))
}

/// One request to the central wx-tokend servers (their API: docs/openapi/wx-tokend.yaml),
/// failing over between them: a server that cannot be reached, or that answers with a
/// failure of its own (HTTP 5xx, except a 502 relaying a WeChat errcode, which every server
/// would repeat), is passed over at once for the next one; the one that answers is tried first
/// next time.
pub fn fetch_central(
    appid: &str,
    options: &Options,
    central: &Central,
    call: CentralCall<'_>,
) -> Result<Fetched, Error> {
    use std::sync::atomic::Ordering;
    let n = central.servers.len();
    let first = central.preferred.load(Ordering::Relaxed) % n.max(1);
    let mut unavailable = Vec::new();
    for k in 0..n {
        let i = (first + k) % n;
        let server = &central.servers[i];
        let connect = (n > 1).then_some(CENTRAL_CONNECT_TIMEOUT);
        match central_once(appid, options, connect, server, &central.key, call) {
            Attempt::Answered(result) => {
                central.preferred.store(i, Ordering::Relaxed);
                return result.map_err(|e| scrub(e, &central.key));
            }
            Attempt::Unavailable(e) => {
                if n > 1 {
                    let e = scrub(e.clone(), &central.key);
                    crate::events::emit(
                        crate::events::Level::Warn,
                        appid,
                        crate::events::kind::CENTRAL_UNAVAILABLE,
                        e.status(),
                        e.errcode(),
                        format_args!("{e}; trying the next central server"),
                    );
                }
                unavailable.push(e);
            }
        }
    }
    let why: Vec<&str> = unavailable.iter().map(Error::message).collect();
    let e = match unavailable.len() {
        1 => unavailable.swap_remove(0),
        _ => Error::new(
            Status::Network,
            format!("no central server answered: {}", why.join("; ")),
        ),
    };
    Err(scrub(e, &central.key))
}

/// How one central server took a request.
enum Attempt {
    /// It answered for the fleet: a token, or an error that another server would repeat.
    Answered(Result<Fetched, Error>),
    /// Unreachable, or failing on its own: worth trying the next server at once.
    Unavailable(Error),
}

fn central_once(
    appid: &str,
    options: &Options,
    connect: Option<Duration>,
    server: &CentralServer,
    key: &crate::secret::Secret,
    call: CentralCall<'_>,
) -> Attempt {
    let agent = agent(options.timeout, server.loopback, connect);
    let label = authority(&server.base);
    let url = match call {
        CentralCall::Ticket(kind) | CentralCall::TicketInvalidate(kind, _) => format!(
            "{}/v1/ticket/{}/{kind}",
            server.base,
            percent_encode(appid).as_str()
        ),
        _ => format!(
            "{}/v1/token/{}",
            server.base,
            percent_encode(appid).as_str()
        ),
    };
    let auth = Zeroizing::new(format!("Bearer {}", key.expose()));
    let field = match call {
        CentralCall::Ticket(_) | CentralCall::TicketInvalidate(..) => "ticket",
        _ => "access_token",
    };
    let response = match call {
        CentralCall::TicketInvalidate(_, stale) => agent
            .post(format!("{url}/invalidate"))
            .header("Authorization", auth.as_str())
            .header("Content-Type", "application/json")
            .send(
                serde_json::json!({ "stale_ticket": stale })
                    .to_string()
                    .as_bytes(),
            ),
        CentralCall::Ticket(_) => agent
            .get(&url)
            .header("Authorization", auth.as_str())
            .call(),
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
    let mut response = match response {
        Ok(r) => r,
        Err(e) => {
            return Attempt::Unavailable(transport_error(
                e,
                &format!("central server {label}"),
                options.timeout,
            ));
        }
    };
    let status = response.status().as_u16();
    let body = match read_body(
        &mut response,
        &format!("central server {label}"),
        options.timeout,
    ) {
        Ok(b) => b,
        Err(e) => return Attempt::Unavailable(e),
    };
    match status {
        200..=299 => Attempt::Answered(parse_credential(&body, field)),
        500 | 501 | 503..=599 => Attempt::Unavailable(central_error(status, &body, label, call)),
        // A 502 relays WeChat's own answer (an errcode), which another server would repeat;
        // but one saying the server could not reach WeChat, or could not understand it, is
        // that server's trouble (its egress, its proxy): the next server may well get through.
        502 => {
            let e = central_error(status, &body, label, call);
            if e.status() == Status::WechatError {
                Attempt::Answered(Err(e))
            } else {
                Attempt::Unavailable(e)
            }
        }
        _ => Attempt::Answered(Err(central_error(status, &body, label, call))),
    }
}

/// Maps the central server's error answer onto the statuses a client-mode call may return, so
/// that a client sees WeChat's errcode (and its transient or terminal nature) as if it had
/// asked. The set is closed: whatever a server (or something posing as one) answers, a
/// client never gets BUFFER_TOO_SMALL, UNKNOWN_APP, PANIC or INVALID_ARGUMENT from a body, and
/// a plain get never gets RATE_LIMITED.
fn central_error(http: u16, body: &[u8], label: &str, call: CentralCall<'_>) -> Error {
    let v: Option<Value> = serde_json::from_slice(body).ok();
    let field = |k: &str| v.as_ref().and_then(|v| v.get(k));
    let errmsg = sanitize_errmsg(field("errmsg").and_then(Value::as_str).unwrap_or(""));
    let said = if errmsg.is_empty() {
        String::new()
    } else {
        format!(": {errmsg}")
    };
    match http {
        // The key is configuration, checked locally by the HTTP status alone: INVALID_ARGUMENT
        // like any other bad option. wx-tokend says which refusal it is in `error`.
        401 | 403 => {
            let not_allowed = field("error").and_then(Value::as_str) == Some("app_not_allowed");
            Error::invalid(if not_allowed {
                format!(
                    "central server {label}: central_key is not allowed for this app (HTTP {http})"
                )
            } else {
                format!("central server {label} rejected central_key (HTTP {http})")
            })
        }
        429 => match call {
            CentralCall::Invalidate(_) | CentralCall::TicketInvalidate(..) => Error::new(
                Status::RateLimited,
                format!(
                    "central server {label} refused the refresh within its limits (HTTP 429){said}"
                ),
            ),
            // A plain get is never RATE_LIMITED: to the client, a busy server is transient.
            CentralCall::Get | CentralCall::Ticket(_) => Error::new(
                Status::Network,
                format!("central server {label} is limiting requests (HTTP 429){said}"),
            ),
        },
        300..=399 => Error::new(
            Status::Network,
            format!("central server {label} answered HTTP {http} (redirects are never followed)"),
        ),
        500..=599 => {
            let status = field("status")
                .and_then(Value::as_i64)
                .and_then(|c| Status::from_code(i32::try_from(c).ok()?));
            let errcode = field("errcode")
                .and_then(Value::as_i64)
                .and_then(|c| i32::try_from(c).ok())
                .unwrap_or(0);
            match status {
                Some(Status::WechatError) if errcode != 0 => Error::relayed(
                    Status::WechatError,
                    errcode,
                    format!("central server {label}{said}"),
                ),
                Some(s @ (Status::Network | Status::Protocol | Status::Store)) => {
                    Error::relayed(s, 0, format!("central server {label}{said}"))
                }
                _ => Error::new(
                    Status::Network,
                    format!("central server {label} answered HTTP {http}"),
                ),
            }
        }
        _ => Error::new(
            Status::Protocol,
            format!("central server {label} answered HTTP {http}{said}"),
        ),
    }
}

/// `host[:port]` of a base URL: what messages name, never the URL itself (#11 item 7).
fn authority(base: &str) -> &str {
    let rest = base.split_once("://").map_or(base, |(_, r)| r);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let auth = &rest[..end];
    auth.rsplit_once('@').map_or(auth, |(_, host)| host)
}

/// Describes a transport failure in our own words. ureq's own messages can quote the request
/// URI (which holds the secret on the classic endpoint), so only variants known to be safe
/// contribute text, and `scrub` runs over the result anyway.
fn transport_error(e: ureq::Error, peer: &str, timeout: Duration) -> Error {
    use ureq::Error as U;
    let what = match e {
        U::Timeout(kind) => format!("timed out after {} ms ({kind})", timeout.as_millis()),
        U::HostNotFound => "host not found".to_owned(),
        U::ConnectionFailed => "connection failed".to_owned(),
        U::Io(io) => format!("I/O error: {io}"),
        U::Tls(msg) => format!("TLS error: {msg}"),
        U::Rustls(err) => format!("TLS error: {err}"),
        U::BodyExceedsLimit(_) => "response too large".to_owned(),
        U::BadUri(_) => {
            return Error::invalid(format!("{peer}: the options do not form a valid URL"));
        }
        U::Protocol(_) => "malformed HTTP from upstream".to_owned(),
        U::LargeResponseHeader(..) => "upstream response headers too large".to_owned(),
        _ => "HTTP transport failure".to_owned(),
    };
    Error::new(
        Status::Network,
        format!("token request to {peer} failed: {what}"),
    )
}

/// `parse_response`, with WeCom's reading of its errcodes for a WeCom app.
fn parse_for(options: &Options, body: &[u8]) -> Result<Fetched, Error> {
    parse_response(body).map_err(|e| wecom_class(options, e))
}

/// A WeChat error re-read by WeCom's classification when the app is WeCom's (45009/45033 are
/// its frequency limits there, to back off from, not mp's daily quota).
pub(crate) fn wecom_class(options: &Options, e: Error) -> Error {
    match options.platform {
        Platform::Wecom { .. } if e.status() == Status::WechatError => {
            Error::wecom(e.errcode(), e.wechat_errmsg())
        }
        _ => e,
    }
}

/// Turns a response body into a token or an error. Public for fuzzing and unit tests.
pub fn parse_response(body: &[u8]) -> Result<Fetched, Error> {
    parse_credential(body, "access_token")
}

/// A token (`field` "access_token") or a JS-SDK ticket ("ticket") answer; the credential is
/// returned in `Fetched::access_token` either way.
pub fn parse_credential(body: &[u8], field: &str) -> Result<Fetched, Error> {
    let protocol = |why: &str| {
        Error::new(
            Status::Protocol,
            format!("unexpected {field} response: {why}"),
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
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| protocol(&format!("missing {field}")))?;
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(protocol(&format!(
            "{field} is {} bytes (expected 1 to {MAX_TOKEN_LEN})",
            token.len()
        )));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(protocol(&format!(
            "{field} holds characters other than printable ASCII"
        )));
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

/// Removes the secret from an error, whatever layer put it there: WeChat's errmsg is rebuilt
/// from its scrubbed text, any other message is scrubbed as a whole. See `scrub_text`.
fn scrub(e: Error, secret: &Secret) -> Error {
    if e.status() == Status::WechatError && !e.wechat_errmsg().is_empty() {
        return match scrub_text(e.wechat_errmsg(), secret) {
            Cow::Borrowed(_) => e,
            Cow::Owned(clean) => e.with_wechat_errmsg(&clean),
        };
    }
    match scrub_text(e.message(), secret) {
        Cow::Borrowed(_) => e,
        Cow::Owned(clean) => Error::relayed(e.status(), e.errcode(), clean),
    }
}

/// Secret text shorter than this is matched only as a whole word (see `scrub_text`).
const MIN_SECRET_RUN: usize = 6;

/// Replaces with `***` every run of `MIN_SECRET_RUN` or more bytes of `text` that also occurs
/// in some encoding of the secret (raw, form-decoded, percent-encoded upper or lower case,
/// form-encoded, JSON-escaped): an echo, even truncated or re-encoded, leaves at most 5
/// characters of the secret in a message. A secret shorter than that is replaced only where
/// it stands as a whole word, so that a secret like "s" never garbles a message.
pub(crate) fn scrub_text<'a>(text: &'a str, secret: &Secret) -> Cow<'a, str> {
    let raw = secret.expose();
    if raw.is_empty() || text.is_empty() {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut masked = vec![false; bytes.len()];
    if raw.len() < MIN_SECRET_RUN {
        for form in [raw, percent_encode(raw).as_str()] {
            for (at, _) in text.match_indices(form) {
                let end = at + form.len();
                let word_edge = |b: Option<&u8>| b.is_none_or(|b| !b.is_ascii_alphanumeric());
                if word_edge(at.checked_sub(1).and_then(|i| bytes.get(i)))
                    && word_edge(bytes.get(end))
                {
                    masked[at..end].fill(true);
                }
            }
        }
    } else {
        for form in secret_forms(raw) {
            for (i, run) in common_runs(bytes, form.as_bytes()).into_iter().enumerate() {
                if run >= MIN_SECRET_RUN {
                    masked[i..i + run].fill(true);
                }
            }
        }
    }
    if !masked.contains(&true) {
        return Cow::Borrowed(text);
    }
    // Widen each masked run to whole characters, then replace it.
    for i in 0..bytes.len() {
        if masked[i] && !text.is_char_boundary(i) {
            let mut j = i;
            while !text.is_char_boundary(j) {
                j -= 1;
            }
            masked[j..i].fill(true);
        }
    }
    for i in (0..bytes.len()).rev() {
        if masked[i] && i + 1 < bytes.len() && !text.is_char_boundary(i + 1) {
            masked[i + 1] = true;
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let m = masked[i];
        while i < bytes.len() && masked[i] == m {
            i += 1;
        }
        if m {
            out.push_str("***");
        } else {
            out.push_str(&text[start..i]);
        }
    }
    Cow::Owned(out)
}

/// The encodings in which a secret may come back in an answer.
fn secret_forms(raw: &str) -> Vec<Zeroizing<String>> {
    let upper = percent_encode(raw);
    let lower = Zeroizing::new(lowercase_escapes(&upper));
    // application/x-www-form-urlencoded: spaces as '+'.
    let form_upper = Zeroizing::new(upper.replace("%20", "+"));
    let form_lower = Zeroizing::new(lower.replace("%20", "+"));
    let json = Zeroizing::new(serde_json::to_string(raw).unwrap_or_default());
    vec![
        Zeroizing::new(raw.to_owned()),
        // What a server that form-decodes the raw secret sees: '+' as a space.
        Zeroizing::new(raw.replace('+', " ")),
        upper,
        lower,
        form_upper,
        form_lower,
        Zeroizing::new(json.trim_matches('"').to_owned()),
    ]
}

/// `%AB` escapes in lower case.
fn lowercase_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut hex_left = 0;
    for c in s.chars() {
        if hex_left > 0 {
            out.push(c.to_ascii_lowercase());
            hex_left -= 1;
        } else {
            if c == '%' {
                hex_left = 2;
            }
            out.push(c);
        }
    }
    out
}

/// For each position of `text`, the length of the longest run starting there that occurs
/// somewhere in `form` (dynamic programming over suffixes, O(|text| x |form|)).
fn common_runs(text: &[u8], form: &[u8]) -> Vec<usize> {
    let mut best = vec![0; text.len()];
    let mut next = vec![0usize; form.len() + 1];
    let mut cur = vec![0usize; form.len() + 1];
    for i in (0..text.len()).rev() {
        for j in (0..form.len()).rev() {
            cur[j] = if text[i] == form[j] {
                next[j + 1] + 1
            } else {
                0
            };
            best[i] = best[i].max(cur[j]);
        }
        std::mem::swap(&mut next, &mut cur);
    }
    best
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
    fn scrub_text_removes_runs_of_six_in_every_encoding() {
        let s = Secret::new("ab cd+ef/gh");
        for echo in [
            "ab cd+ef/gh",
            "ab%20cd%2Bef%2Fgh",
            "ab%20cd%2bef%2fgh",
            "ab+cd%2Bef%2Fgh",
            "ab cd ef/gh",
            "cd+ef/",
        ] {
            let text = format!("x={echo}&y=1");
            let clean = scrub_text(&text, &s);
            assert_eq!(clean, "x=***&y=1", "{echo}");
        }
        // Five characters are not a run worth a mask; unrelated text is left alone.
        assert_eq!(scrub_text("cd+ef and more", &s), "cd+ef and more");
        assert!(matches!(scrub_text("nothing here", &s), Cow::Borrowed(_)));
        // JSON-escaped, as a server relaying it in a JSON string would.
        let s = Secret::new(r#"q"uo\te!"#);
        assert_eq!(scrub_text(r#"m: "q\"uo\\te!""#, &s), r#"m: "***""#);
        // Multi-byte characters are masked whole, never split.
        let s = Secret::new("密码abcdefg");
        assert_eq!(scrub_text("k=码abcd!", &s), "k=***!");
    }

    #[test]
    fn a_short_secret_is_masked_only_as_a_whole_word() {
        let s = Secret::new("s");
        assert_eq!(
            scrub_text("token request to host failed", &s),
            "token request to host failed"
        );
        assert_eq!(scrub_text("secret=s&x", &s), "secret=***&x");
        assert_eq!(scrub_text("s", &s), "***");
        let s = Secret::new("a+b");
        assert_eq!(scrub_text("k=a%2Bb;", &s), "k=***;");
    }

    #[test]
    fn authority_is_all_a_message_names() {
        assert_eq!(authority("https://api.weixin.qq.com"), "api.weixin.qq.com");
        assert_eq!(
            authority("http://127.0.0.1:8080/prefix?q"),
            "127.0.0.1:8080"
        );
        assert_eq!(authority("https://u:p@h:1/x"), "h:1");
    }

    #[test]
    fn central_errors_stay_within_the_closed_set() {
        let get = CentralCall::Get;
        for (http, body) in [
            (500, r#"{"status":2}"#),
            (500, r#"{"status":8}"#),
            (502, r#"{"status":3}"#),
            (503, r#"{"status":-1}"#),
            (400, r#"{"status":2}"#),
            (404, r#"{"status":3}"#),
            (429, r#"{"status":9}"#),
            (200, r#"{"status":1}"#),
            (301, ""),
            (401, "{}"),
        ] {
            let e = central_error(http, body.as_bytes(), "h:1", get);
            assert!(
                matches!(
                    e.status(),
                    Status::Network | Status::Protocol | Status::InvalidArgument
                ),
                "{http} {body}: {e:?}"
            );
            assert!(http == 401 || e.status() != Status::InvalidArgument);
        }
        let e = central_error(
            502,
            br#"{"status":4,"errcode":40164,"errmsg":"ip"}"#,
            "h:1",
            get,
        );
        assert_eq!((e.status(), e.errcode()), (Status::WechatError, 40164));
        let e = central_error(401, br#"{"error":"app_not_allowed"}"#, "h:1", get);
        assert!(e.message().contains("not allowed for this app"), "{e:?}");
        let e = central_error(429, b"", "h:1", CentralCall::Invalidate(None));
        assert_eq!(e.status(), Status::RateLimited);
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
