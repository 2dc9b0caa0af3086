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
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use wx_token::{Error, Status, TokenInfo};

use crate::auth::{self, Authorizer, KeyDigest};
use crate::log;
use crate::metrics::{Metrics, status_label};

/// Invalidate bodies are a token (≤ 512 bytes) in a small JSON object.
pub const MAX_BODY: usize = 4096;

pub struct State {
    pub authz: Authorizer,
    pub metrics: Metrics,
    pub metrics_key: Option<KeyDigest>,
    pub request_timeout: Duration,
    pub log_requests: bool,
}

enum Route {
    Healthz,
    Metrics,
    Token(String),
    Invalidate(String),
}

impl Route {
    fn label(&self) -> &'static str {
        match self {
            Route::Healthz => "healthz",
            Route::Metrics => "metrics",
            Route::Token(_) => "token",
            Route::Invalidate(_) => "invalidate",
        }
    }

    fn method(&self) -> Method {
        match self {
            Route::Invalidate(_) => Method::POST,
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
    let method = req.method().clone();
    let route = route(req.uri().path());
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
            match tokio::time::timeout(state.request_timeout, dispatch(&state, r, req, &mut note))
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
    if state.log_requests && label != "metrics" && label != "healthz" {
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

async fn dispatch(state: &State, route: Route, req: Request<Incoming>, note: &mut Note) -> Resp {
    match route {
        Route::Healthz => json_response(StatusCode::OK, &json!({"status": "ok"})),
        Route::Metrics => metrics(state, &req),
        Route::Token(appid) => {
            note.appid = Some(appid.clone());
            if let Err(resp) = authorize(state, &req, &appid, note) {
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
            token_result(result, note)
        }
        Route::Invalidate(appid) => {
            note.appid = Some(appid.clone());
            if let Err(resp) = authorize(state, &req, &appid, note) {
                return resp;
            }
            let stale = match read_invalidate_body(req).await {
                Ok(stale) => stale,
                Err(resp) => return resp,
            };
            let result = blocking(move || {
                wx_token::invalidate(&appid, stale.as_deref())?;
                wx_token::get_info(&appid)
            })
            .await;
            token_result(result, note)
        }
    }
}

fn authorize(
    state: &State,
    req: &Request<Incoming>,
    appid: &str,
    note: &mut Note,
) -> Result<(), Resp> {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    match state.authz.authorize(header, appid) {
        Ok(client) => {
            note.client = Some(client.name.clone());
            Ok(())
        }
        Err(auth::Denied) => {
            note.error = Some("unauthorized");
            Err(unauthorized())
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InvalidateBody {
    /// Absent or null: a forced refresh. Unknown fields are refused, so that a misspelt
    /// `stale_token` cannot silently turn into a forced refresh (WeChat allows 20 a day).
    #[serde(default)]
    stale_token: Option<String>,
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
    // Through `Value` first: serde would also accept `[]` as a struct, which would make a
    // stray array a forced refresh.
    let parsed = serde_json::from_slice::<Value>(&body).and_then(|v| match v {
        Value::Object(_) => serde_json::from_value::<InvalidateBody>(v),
        _ => Err(serde::de::Error::custom("not a JSON object")),
    });
    match parsed {
        Ok(b) => Ok(b.stale_token),
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

fn metrics(state: &State, req: &Request<Incoming>) -> Resp {
    if let Some(key) = &state.metrics_key {
        let header = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes);
        if !auth::bearer_matches(header, key) {
            return unauthorized();
        }
    }
    let Some(text) = unwinding(|| state.metrics.render()) else {
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
    json_response(
        code,
        &json!({"error": error, "status": status, "errcode": errcode, "errmsg": errmsg}),
    )
}

fn json_response(code: StatusCode, v: &Value) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::from(v.to_string())));
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
}
