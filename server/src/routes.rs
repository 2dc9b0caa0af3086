//! The HTTP API: routing, the handlers, and the mapping of engine errors to HTTP statuses.
//!
//! A token request is answered on the async worker when the engine can answer without waiting
//! (`try_get_info`: a cached token, or a failure in its cooldown); calls that may wait on
//! WeChat (a cold or expired token, a passive refresh) run on tokio's blocking pool. The whole
//! request runs under `request_timeout`.

// `Result<_, Response>` is how a handler step returns its early answer (401, 413, 400); it is
// built once per request, so boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use std::convert::Infallible;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::de::{self, Deserializer as _, MapAccess, Visitor};
use serde_json::{Value, json};
use wx_token::{Error, Status, TokenInfo};

use crate::auth::{self, Authorizer, Denied, KeyDigest};
use crate::config::Client;
use crate::limits::{Budget, Limiter, retry_after_secs};
use crate::log;
use crate::metrics::{Metrics, status_label};

/// Invalidate bodies are a token (≤ 512 bytes) in a small JSON object.
pub const MAX_BODY: usize = 4096;

/// What lives for the whole process: counters and spent budgets survive a reload.
pub struct State {
    live: RwLock<Arc<Live>>,
    pub metrics: Metrics,
    pub limiter: Limiter,
}

/// What a configuration reload (SIGHUP) replaces at once. A request works on the `Live` it
/// started with.
pub struct Live {
    pub authz: Authorizer,
    /// Configured appids, in configuration order (for /metrics).
    pub appids: Vec<String>,
    pub metrics_key: Option<KeyDigest>,
    /// Without a metrics key, /metrics is served only when listening on loopback.
    pub metrics_open: bool,
    pub request_timeout: Duration,
    pub log_requests: bool,
}

impl State {
    pub fn new(live: Live) -> State {
        State {
            live: RwLock::new(Arc::new(live)),
            metrics: Metrics::new(),
            limiter: Limiter::default(),
        }
    }

    pub fn live(&self) -> Arc<Live> {
        self.live.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn replace(&self, live: Live) {
        self.limiter.retain(|name| live.authz.has_client(name));
        *self.live.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(live);
    }
}

enum Route {
    Healthz,
    Metrics,
    Token(String),
    Invalidate(String),
    /// `GET /v1/ticket/{id}/{kind}`.
    Ticket(String, String),
    /// `POST /v1/ticket/{id}/{kind}/invalidate`.
    TicketInvalidate(String, String),
    /// `GET /v1/jssdk/{id}/{kind}?url=…`.
    Jssdk(String, String),
}

impl Route {
    fn label(&self) -> &'static str {
        match self {
            Route::Healthz => "healthz",
            Route::Metrics => "metrics",
            Route::Token(_) => "token",
            Route::Invalidate(_) => "invalidate",
            Route::Ticket(..) => "ticket",
            Route::TicketInvalidate(..) => "ticket_invalidate",
            Route::Jssdk(..) => "jssdk",
        }
    }

    fn method(&self) -> Method {
        match self {
            Route::Invalidate(_) | Route::TicketInvalidate(..) => Method::POST,
            _ => Method::GET,
        }
    }
}

fn route(path: &str) -> Option<Route> {
    match path {
        "/healthz" => return Some(Route::Healthz),
        "/metrics" => return Some(Route::Metrics),
        _ => {}
    }
    if let Some(rest) = path.strip_prefix("/v1/ticket/") {
        let mut parts = rest.split('/');
        return match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(id), Some(kind), None, None) if !id.is_empty() && !kind.is_empty() => {
                Some(Route::Ticket(id.to_owned(), kind.to_owned()))
            }
            (Some(id), Some(kind), Some("invalidate"), None)
                if !id.is_empty() && !kind.is_empty() =>
            {
                Some(Route::TicketInvalidate(id.to_owned(), kind.to_owned()))
            }
            _ => None,
        };
    }
    if let Some(rest) = path.strip_prefix("/v1/jssdk/") {
        return match rest.split_once('/') {
            Some((id, kind)) if !id.is_empty() && !kind.is_empty() && !kind.contains('/') => {
                Some(Route::Jssdk(id.to_owned(), kind.to_owned()))
            }
            _ => None,
        };
    }
    let rest = path.strip_prefix("/v1/token/")?;
    match rest.split_once('/') {
        None if !rest.is_empty() => Some(Route::Token(rest.to_owned())),
        Some((appid, "invalidate")) if !appid.is_empty() => {
            Some(Route::Invalidate(appid.to_owned()))
        }
        _ => None,
    }
}

/// What a handler did, for the access log.
#[derive(Default)]
struct Note {
    appid: Option<String>,
    client: Option<String>,
    token_prefix: Option<String>,
    generation: Option<u64>,
    error: Option<&'static str>,
    errcode: i32,
}

type Resp = Response<Full<Bytes>>;

pub async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Resp, Infallible> {
    let start = Instant::now();
    let live = state.live();
    let method = req.method().clone();
    let route = route(req.uri().path());
    let query = req.uri().query().map(str::to_owned);
    let label = route.as_ref().map_or("other", Route::label);
    let mut note = Note::default();
    let resp = match route {
        None => error(StatusCode::NOT_FOUND, "not_found", 1, 0, "no such route"),
        Some(r) if r.method() != method => {
            let mut resp = error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                1,
                0,
                "method not allowed",
            );
            let allow = if r.method() == Method::POST {
                "POST"
            } else {
                "GET"
            };
            resp.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
            resp
        }
        Some(r) => {
            match tokio::time::timeout(
                live.request_timeout,
                dispatch(&state, &live, r, query.as_deref(), req, &mut note),
            )
            .await
            {
                Ok(resp) => resp,
                Err(_) => {
                    note.error = Some("timeout");
                    error(
                        StatusCode::GATEWAY_TIMEOUT,
                        "timeout",
                        Status::Network as i32,
                        0,
                        "request timed out",
                    )
                }
            }
        }
    };
    let took = start.elapsed();
    let code = resp.status().as_u16();
    state.metrics.request(label, code, took);
    if live.log_requests && label != "metrics" && label != "healthz" {
        access_log(&method, label, code, took, note);
    }
    Ok(resp)
}

fn access_log(method: &Method, route: &str, code: u16, took: Duration, note: Note) {
    let mut f = vec![
        ("method", json!(method.as_str())),
        ("route", json!(route)),
        ("code", json!(code)),
        ("ms", json!((took.as_secs_f64() * 1e6).round() / 1e3)),
    ];
    if let Some(a) = note.appid {
        // The appid comes from the URL, so it may be anything an attacker typed: bounded.
        f.push((
            "appid",
            json!(a.chars().take(wx_token::MAX_APPID_LEN).collect::<String>()),
        ));
    }
    if let Some(c) = note.client {
        f.push(("client", json!(c)));
    }
    if let Some(t) = note.token_prefix {
        f.push(("token_prefix", json!(t)));
    }
    if let Some(g) = note.generation {
        f.push(("generation", json!(g)));
    }
    if let Some(e) = note.error {
        f.push(("error", json!(e)));
        f.push(("errcode", json!(note.errcode)));
    }
    log::info("request", &f);
}

async fn dispatch(
    state: &State,
    live: &Live,
    route: Route,
    query: Option<&str>,
    req: Request<Incoming>,
    note: &mut Note,
) -> Resp {
    match route {
        Route::Ticket(appid, kind) => {
            note.appid = Some(appid.clone());
            if let Err(resp) = admit(state, live, &req, &appid, note) {
                return resp;
            }
            let result = blocking(move || wx_token::ticket(&appid, &kind)).await;
            ticket_result(result, note)
        }
        Route::TicketInvalidate(appid, kind) => {
            note.appid = Some(appid.clone());
            let client = match admit(state, live, &req, &appid, note) {
                Ok(c) => c,
                Err(resp) => return resp,
            };
            let stale = match read_body_json(req, "stale_ticket").await {
                Ok(stale) => stale,
                Err(resp) => return resp,
            };
            if let Err(resp) = charge_invalidation(state, client, note, "ticket") {
                return resp;
            }
            let result = blocking(move || {
                wx_token::ticket_invalidate(&appid, &kind, &stale)?;
                wx_token::ticket(&appid, &kind)
            })
            .await;
            invalidation_result(result, note, ticket_result)
        }
        Route::Jssdk(appid, kind) => {
            note.appid = Some(appid.clone());
            if let Err(resp) = admit(state, live, &req, &appid, note) {
                return resp;
            }
            let Some(url) = query_param(query.unwrap_or(""), "url") else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_argument",
                    Status::InvalidArgument as i32,
                    0,
                    "the page's url is required: /v1/jssdk/{id}/{kind}?url=<percent-encoded URL>",
                );
            };
            let result = blocking(move || wx_token::jssdk_config(&appid, &kind, &url)).await;
            match result {
                Ok(json) => json_body(StatusCode::OK, json),
                Err(e) => {
                    note.error = Some(status_label(e.status()));
                    note.errcode = e.errcode();
                    engine_error(&e)
                }
            }
        }
        Route::Healthz => json_response(StatusCode::OK, &json!({"status": "ok"})),
        Route::Metrics => metrics(state, live, &req),
        Route::Token(appid) => {
            note.appid = Some(appid.clone());
            if let Err(resp) = admit(state, live, &req, &appid, note) {
                return resp;
            }
            // The cached path stays on this worker; only a call that would wait on a fetch
            // goes to the blocking pool.
            let now = unwinding(|| wx_token::try_get_info(&appid))
                .unwrap_or_else(|| Some(Err(panic_error())));
            let result = match now {
                Some(result) => result,
                None => blocking(move || wx_token::get_info(&appid)).await,
            };
            match result {
                // A plain get has nothing to rate-limit; should the engine say RATE_LIMITED
                // anyway, it means "no token now, retry later": transient, not 429.
                Err(e) if e.status() == Status::RateLimited => {
                    note.error = Some("unavailable");
                    with_retry_after(
                        error(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "unavailable",
                            Status::Network as i32,
                            0,
                            e.message(),
                        ),
                        engine_retry_after(&e),
                    )
                }
                result => token_result(result, note),
            }
        }
        Route::Invalidate(appid) => {
            note.appid = Some(appid.clone());
            let client = match authorize(live, &req, &appid, note) {
                Ok(c) => c,
                Err(resp) => return resp,
            };
            if let Err(wait) = state
                .limiter
                .take(&client.name, Budget::Requests, &client.limits)
            {
                note.error = Some("rate_limited");
                return rate_limited("too many requests with this client key", wait);
            }
            let stale = match read_invalidate_body(req).await {
                Ok(stale) => stale,
                Err(resp) => return resp,
            };
            // Only an invalidation that may fetch is charged: one reporting a token already
            // replaced (a fleet reporting the same rejection) costs WeChat nothing.
            if may_fetch(&appid, stale.as_deref())
                && let Err(resp) = charge_invalidation(state, client, note, "token")
            {
                return resp;
            }
            let result = blocking(move || {
                wx_token::invalidate(&appid, stale.as_deref())?;
                wx_token::get_info(&appid)
            })
            .await;
            invalidation_result(result, note, token_result)
        }
    }
}

/// Charges an invalidation to the client key's budget; beyond it, the 429 to answer (the
/// current `what`, token or ticket, stays in service).
fn charge_invalidation(
    state: &State,
    client: &Client,
    note: &mut Note,
    what: &str,
) -> Result<(), Resp> {
    state
        .limiter
        .take(&client.name, Budget::Invalidations, &client.limits)
        .map_err(|wait| {
            note.error = Some("rate_limited");
            rate_limited(
                &format!(
                    "too many invalidations with this client key; the current {what} stays in service"
                ),
                wait,
            )
        })
}

/// An invalidation's answer: the engine's RATE_LIMITED (its pace refused the replacement)
/// keeps the engine's Retry-After; anything else is answered by `answer`.
fn invalidation_result(
    result: Result<TokenInfo, Error>,
    note: &mut Note,
    answer: fn(Result<TokenInfo, Error>, &mut Note) -> Resp,
) -> Resp {
    match result {
        Err(e) if e.status() == Status::RateLimited => {
            note.error = Some("rate_limited");
            with_retry_after(engine_error(&e), engine_retry_after(&e))
        }
        result => answer(result, note),
    }
}

/// The client key and its request budget, for a plain get of a token or ticket: the client,
/// or the answer to give. Never 429 on a plain GET: a client must not take a throttle for
/// WeChat's forced-refresh limit. 503 with Retry-After is "transient, come back".
fn admit<'l>(
    state: &State,
    live: &'l Live,
    req: &Request<Incoming>,
    appid: &str,
    note: &mut Note,
) -> Result<&'l Client, Resp> {
    let client = authorize(live, req, appid, note)?;
    if let Err(wait) = state
        .limiter
        .take(&client.name, Budget::Requests, &client.limits)
    {
        note.error = Some("busy");
        return Err(with_retry_after(
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                Status::Network as i32,
                0,
                "too many requests with this client key",
            ),
            wait,
        ));
    }
    Ok(client)
}

/// A query parameter, percent-decoded (`+` as a space, as forms send it); `None` if absent,
/// empty or not UTF-8.
fn query_param(query: &str, name: &str) -> Option<String> {
    let raw = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)?
        .1;
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?)
                    .ok()
                    .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok().filter(|s| !s.is_empty())
}

/// A ticket answer: `{"ticket", "expires_in"}` (whole seconds left, at least 1), or the error.
fn ticket_result(result: Result<TokenInfo, Error>, note: &mut Note) -> Resp {
    match result {
        Ok(info) => {
            note.token_prefix = Some(log::token_prefix(&info.access_token));
            note.generation = Some(info.generation);
            json_response(
                StatusCode::OK,
                &json!({"ticket": info.access_token, "expires_in": info.expires_in.as_secs().max(1)}),
            )
        }
        Err(e) => {
            note.error = Some(status_label(e.status()));
            note.errcode = e.errcode();
            engine_error(&e)
        }
    }
}

/// Reads a small JSON body `{"<field>": "<string>"}` (the stale ticket of an invalidation).
async fn read_body_json(req: Request<Incoming>, field: &str) -> Result<String, Resp> {
    let bad = |why: &str| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            Status::InvalidArgument as i32,
            0,
            why,
        )
    };
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(bad("could not read the body (at most 4096 bytes)")),
    };
    let v: Value = serde_json::from_slice(&body).map_err(|_| bad("body is not JSON"))?;
    match v.as_object() {
        Some(o) if o.len() == 1 => o
            .get(field)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| bad(&format!("body must be {{\"{field}\":\"...\"}}"))),
        _ => Err(bad(&format!("body must be {{\"{field}\":\"...\"}}"))),
    }
}

/// Whether invalidating with `stale` may cause a fetch: a forced refresh, or the token in
/// service (or one we cannot see without waiting).
fn may_fetch(appid: &str, stale: Option<&str>) -> bool {
    let Some(stale) = stale else { return true };
    match unwinding(|| wx_token::try_get_info(appid)).flatten() {
        Some(Ok(info)) => info.access_token == stale,
        _ => true,
    }
}

/// The engine's RATE_LIMITED messages say "retry in N s" when they know; else WeChat's
/// forced-refresh spacing.
fn engine_retry_after(e: &Error) -> Duration {
    e.message()
        .split("retry in ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next()?.parse::<u64>().ok())
        .map_or(wx_token::FORCE_MIN_SPACING, Duration::from_secs)
}

fn rate_limited(why: &str, wait: Duration) -> Resp {
    with_retry_after(
        error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            Status::RateLimited as i32,
            0,
            why,
        ),
        wait,
    )
}

fn with_retry_after(mut resp: Resp, wait: Duration) -> Resp {
    resp.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(retry_after_secs(wait)),
    );
    resp
}

fn authorize<'l>(
    live: &'l Live,
    req: &Request<Incoming>,
    appid: &str,
    note: &mut Note,
) -> Result<&'l Client, Resp> {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    match live.authz.authorize(header, appid) {
        Ok(client) => {
            note.client = Some(client.name.clone());
            Ok(client)
        }
        Err(Denied::Unauthenticated) => {
            note.error = Some("unauthorized");
            Err(unauthorized())
        }
        Err(Denied::AppNotAllowed) => {
            note.error = Some("app_not_allowed");
            Err(app_not_allowed())
        }
    }
}

fn unauthorized() -> Resp {
    let mut resp = error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        1,
        0,
        "missing or invalid client key",
    );
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

/// Told only to a caller that presented a valid key: the same answer whether the appid is
/// configured or not, so a key holder cannot probe for other apps either.
fn app_not_allowed() -> Resp {
    let mut resp = error(
        StatusCode::UNAUTHORIZED,
        "app_not_allowed",
        1,
        0,
        "this client key is not allowed for this appid",
    );
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"insufficient_scope\""),
    );
    resp
}

/// Parses an invalidate body: a JSON object with at most `stale_token`, a string or null
/// (absent or null: a forced refresh). Refused: anything else, unknown fields (a misspelt
/// `stale_token` must not turn into a forced refresh, which WeChat allows 20 times a day),
/// and duplicate keys (`{"stale_token":"x","stale_token":null}` must not be read as either).
/// A map visitor of our own: serde's derive would accept `[]` for a struct, and `Value`
/// silently keeps the last of duplicate keys.
pub fn parse_invalidate_body(body: &[u8]) -> Result<Option<String>, serde_json::Error> {
    struct Body;
    impl<'de> Visitor<'de> for Body {
        type Value = Option<String>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object with at most \"stale_token\"")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<String>, A::Error> {
            let mut stale: Option<Option<String>> = None;
            while let Some(key) = map.next_key::<String>()? {
                if key != "stale_token" {
                    return Err(de::Error::unknown_field(&key, &["stale_token"]));
                }
                if stale.is_some() {
                    return Err(de::Error::duplicate_field("stale_token"));
                }
                stale = Some(map.next_value()?);
            }
            Ok(stale.flatten())
        }
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let stale = (&mut de).deserialize_map(Body)?;
    de.end()?;
    Ok(stale)
}

async fn read_invalidate_body(req: Request<Incoming>) -> Result<Option<String>, Resp> {
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            1,
            0,
            "body over 4096 bytes",
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
        Err(_) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "invalid_argument",
                1,
                0,
                "could not read the body",
            ));
        }
    };
    match parse_invalidate_body(&body) {
        Ok(stale) => Ok(stale),
        Err(e) => Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            Status::InvalidArgument as i32,
            0,
            &format!("body must be {{\"stale_token\":\"...\"}} or {{\"stale_token\":null}}: {e}"),
        )),
    }
}

fn token_result(result: Result<TokenInfo, Error>, note: &mut Note) -> Resp {
    match result {
        Ok(info) => {
            note.token_prefix = Some(log::token_prefix(&info.access_token));
            note.generation = Some(info.generation);
            // Whole seconds left, rounded down (a client must not believe in a second that
            // is not there), but at least 1: the engine never hands out an expired token.
            let expires_in = info.expires_in.as_secs().max(1);
            json_response(
                StatusCode::OK,
                &json!({"access_token": info.access_token, "expires_in": expires_in}),
            )
        }
        Err(e) => {
            note.error = Some(status_label(e.status()));
            note.errcode = e.errcode();
            engine_error(&e)
        }
    }
}

/// The contract's mapping of engine statuses to HTTP statuses.
pub fn http_status(s: Status) -> StatusCode {
    match s {
        Status::UnknownApp => StatusCode::NOT_FOUND,
        Status::InvalidArgument => StatusCode::BAD_REQUEST,
        Status::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        Status::Store => StatusCode::SERVICE_UNAVAILABLE,
        Status::WechatError | Status::Network | Status::Protocol => StatusCode::BAD_GATEWAY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn engine_error(e: &Error) -> Resp {
    error(
        http_status(e.status()),
        status_label(e.status()),
        e.status() as i32,
        e.errcode(),
        e.message(),
    )
}

/// Runs an engine call on the blocking pool. The engine's Rust API does not catch panics
/// (the C ABI does), so a panic surfaces here as a PANIC error instead of a dropped request.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|_| Err(panic_error()))
}

/// Runs a non-blocking engine call on this worker; `None` if it panicked (which would
/// otherwise take the connection down with it).
fn unwinding<T>(f: impl FnOnce() -> T) -> Option<T> {
    catch_unwind(AssertUnwindSafe(f)).ok()
}

fn panic_error() -> Error {
    Error::new(Status::Panic, "internal error in the token engine")
}

/// The metrics name every configured appid, which 401s are designed to hide: with a key
/// configured, only its holder sees them; without one, they are served only on a loopback
/// listen address (where every caller is a local process).
fn metrics(state: &State, live: &Live, req: &Request<Incoming>) -> Resp {
    let authorised = match &live.metrics_key {
        Some(key) => {
            let header = req
                .headers()
                .get(header::AUTHORIZATION)
                .map(HeaderValue::as_bytes);
            auth::bearer_matches(header, key)
        }
        None => live.metrics_open,
    };
    if !authorised {
        return unauthorized();
    }
    let Some(text) = unwinding(|| state.metrics.render(&live.appids)) else {
        return engine_error(&panic_error());
    };
    let mut resp = Response::new(Full::new(Bytes::from(text)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

pub fn error(code: StatusCode, error: &str, status: i32, errcode: i32, errmsg: &str) -> Resp {
    // An engine message may quote a store or central URL: never with its password.
    let errmsg = log::mask_userinfo(errmsg);
    json_response(
        code,
        &json!({"error": error, "status": status, "errcode": errcode, "errmsg": errmsg}),
    )
}

fn json_response(code: StatusCode, v: &Value) -> Resp {
    json_body(code, v.to_string())
}

/// A JSON body already serialized (the engine's wx.config JSON, say), never cached.
fn json_body(code: StatusCode, json: String) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::from(json)));
    *resp.status_mut() = code;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // Tokens are credentials: no proxy or client cache may keep them.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert!(matches!(route("/healthz"), Some(Route::Healthz)));
        assert!(matches!(route("/v1/token/wx1"), Some(Route::Token(a)) if a == "wx1"));
        assert!(
            matches!(route("/v1/token/wx1/invalidate"), Some(Route::Invalidate(a)) if a == "wx1")
        );
        assert!(route("/v1/token/").is_none());
        assert!(route("/v1/token//invalidate").is_none());
        assert!(route("/v1/token/wx1/other").is_none());
        assert!(route("/v1/token/wx1/invalidate/x").is_none());
        assert!(route("/").is_none());
        assert!(
            matches!(route("/v1/ticket/wx1/jsapi"), Some(Route::Ticket(a, k)) if a == "wx1" && k == "jsapi")
        );
        assert!(matches!(
            route("/v1/ticket/wx1/jsapi/invalidate"),
            Some(Route::TicketInvalidate(..))
        ));
        assert!(matches!(
            route("/v1/jssdk/wx1/agent_config"),
            Some(Route::Jssdk(..))
        ));
        for bad in [
            "/v1/ticket/wx1",
            "/v1/ticket//jsapi",
            "/v1/ticket/wx1/jsapi/x",
            "/v1/jssdk/wx1",
            "/v1/jssdk/wx1/a/b",
        ] {
            assert!(route(bad).is_none(), "{bad}");
        }
        assert_eq!(
            query_param("a=1&url=https%3A%2F%2Fx%2Fy%3Fq%3D1+2", "url").as_deref(),
            Some("https://x/y?q=1 2")
        );
        assert_eq!(query_param("url=%zz", "url"), None);
        assert_eq!(query_param("url=%4", "url"), None);
        assert_eq!(query_param("url=", "url"), None);
    }

    #[test]
    fn status_mapping() {
        assert_eq!(http_status(Status::UnknownApp), StatusCode::NOT_FOUND);
        assert_eq!(
            http_status(Status::InvalidArgument),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            http_status(Status::RateLimited),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(http_status(Status::Store), StatusCode::SERVICE_UNAVAILABLE);
        for s in [Status::WechatError, Status::Network, Status::Protocol] {
            assert_eq!(http_status(s), StatusCode::BAD_GATEWAY);
        }
        assert_eq!(
            http_status(Status::Panic),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn invalidate_bodies() {
        assert_eq!(parse_invalidate_body(b"{}").unwrap(), None);
        assert_eq!(
            parse_invalidate_body(br#" {"stale_token":null} "#).unwrap(),
            None
        );
        assert_eq!(
            parse_invalidate_body(br#"{"stale_token":"t"}"#).unwrap(),
            Some("t".into())
        );
        for bad in [
            &br#"{"stale_token":"x","stale_token":null}"#[..],
            br#"{"stale_token":null,"stale_\u0074oken":"x"}"#,
            b"[]",
            b"[null]",
            b"",
            b"null",
            br#"{"stale":"x"}"#,
            br#"{"stale_token":5}"#,
            br#"{} {}"#,
        ] {
            assert!(
                parse_invalidate_body(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    /// Property tests of everything the server parses from a request (the fuzz target of
    /// issue 11): bounded to a few thousand cases, so they run in CI with the unit tests.
    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        fn json_ish() -> impl Strategy<Value = String> {
            let piece = prop_oneof![
                Just("{"),
                Just("}"),
                Just("["),
                Just("]"),
                Just(":"),
                Just(","),
                Just(" "),
                Just("null"),
                Just("1"),
                Just("\"stale_token\""),
                Just("\"stale_\\u0074oken\""),
                Just("\"stale\""),
                Just("\"x\""),
                Just("\"\\\""),
            ];
            proptest::collection::vec(piece, 0..14).prop_map(|v| v.concat())
        }

        proptest! {
            #![proptest_config(ProptestConfig {
                cases: 3000,
                failure_persistence: None,
                ..ProptestConfig::default()
            })]

            #[test]
            fn any_bytes_parse_or_fail_cleanly(body in proptest::collection::vec(any::<u8>(), 0..300)) {
                let _ = parse_invalidate_body(&body);
            }

            #[test]
            fn an_accepted_body_is_an_object_with_at_most_stale_token(body in json_ish()) {
                if let Ok(stale) = parse_invalidate_body(body.as_bytes()) {
                    let v: Value = serde_json::from_str(&body).expect("accepted only if JSON");
                    let obj = v.as_object().expect("accepted only if an object");
                    prop_assert!(obj.keys().all(|k| k == "stale_token"));
                    prop_assert_eq!(stale.as_deref(), obj.get("stale_token").and_then(Value::as_str));
                }
            }

            #[test]
            fn duplicate_keys_are_always_refused(
                a in proptest::option::of(".{0,20}"),
                b in proptest::option::of(".{0,20}"),
                escaped in any::<bool>(),
            ) {
                let second = if escaped { "stale_\\u0074oken" } else { "stale_token" };
                let body = format!(
                    "{{\"stale_token\":{},\"{second}\":{}}}",
                    serde_json::to_string(&a).unwrap(),
                    serde_json::to_string(&b).unwrap()
                );
                prop_assert!(parse_invalidate_body(body.as_bytes()).is_err(), "{}", body);
            }

            #[test]
            fn a_token_round_trips(token in "\\PC{0,80}") {
                let body = json!({"stale_token": token}).to_string();
                prop_assert_eq!(parse_invalidate_body(body.as_bytes()).unwrap(), Some(token));
            }

            #[test]
            fn routes_yield_one_nonempty_path_segment(path in "(/[a-z0-9%._-]{0,8}){0,5}") {
                match route(&path) {
                    Some(Route::Token(a)) | Some(Route::Invalidate(a)) => {
                        prop_assert!(!a.is_empty() && !a.contains('/'), "{}", a);
                        prop_assert!(path.starts_with("/v1/token/"));
                    }
                    Some(Route::Ticket(a, k)) | Some(Route::TicketInvalidate(a, k)) => {
                        prop_assert!(!a.is_empty() && !k.is_empty() && !a.contains('/') && !k.contains('/'));
                        prop_assert!(path.starts_with("/v1/ticket/"));
                    }
                    Some(Route::Jssdk(a, k)) => {
                        prop_assert!(!a.is_empty() && !k.is_empty() && !k.contains('/'));
                        prop_assert!(path.starts_with("/v1/jssdk/"));
                    }
                    Some(Route::Healthz) => prop_assert_eq!(path.as_str(), "/healthz"),
                    Some(Route::Metrics) => prop_assert_eq!(path.as_str(), "/metrics"),
                    None => {}
                }
            }

            #[test]
            fn bearer_keys_are_trimmed_and_nonempty(header in proptest::collection::vec(any::<u8>(), 0..64)) {
                if let Some(k) = auth::bearer(Some(&header)) {
                    prop_assert!(!k.is_empty() && k.trim() == k);
                }
            }
        }
    }
}
