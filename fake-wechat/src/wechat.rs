//! The WeChat endpoints: classic token, stable token, and one business API
//! that tells whether a token is still accepted.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::faults::FaultAction;
use crate::http::{Request, Response};
use crate::server::Outcome;
use crate::shared::{Shared, lock};
use crate::state::{CredentialError, Issued, State, TokenStatus};
use crate::stats::{Counter, TokenEndpoint};

pub const CLASSIC_PATH: &str = "/cgi-bin/token";
pub const STABLE_PATH: &str = "/cgi-bin/stable_token";
pub const API_PATH: &str = "/cgi-bin/get_api_domain_ip";

/// WeChat reports errors as HTTP 200 with an errcode.
pub(crate) fn wx_error(errcode: i64, errmsg: &str) -> Response {
    Response::json(200, &json!({"errcode": errcode, "errmsg": errmsg}))
}

fn credential_error(e: CredentialError) -> Response {
    match e {
        CredentialError::GrantType => wx_error(40002, "invalid grant_type"),
        CredentialError::AppidMissing => wx_error(41002, "appid missing"),
        CredentialError::SecretMissing => wx_error(41004, "appsecret missing"),
        CredentialError::UnknownAppid => wx_error(40013, "invalid appid"),
        CredentialError::WrongSecret => wx_error(40125, "invalid appsecret"),
    }
}

struct Credentials {
    grant_type: Option<String>,
    appid: Option<String>,
    secret: Option<String>,
}

pub fn classic(shared: &Shared, req: &Request) -> Outcome {
    if req.method != "GET" {
        return Outcome::Reply(Response::text(405, "use GET"));
    }
    let creds = Credentials {
        grant_type: req.query_param("grant_type"),
        appid: req.query_param("appid"),
        secret: req.query_param("secret"),
    };
    let appid = creds.appid.clone();
    endpoint_at(
        shared,
        CLASSIC_PATH,
        TokenEndpoint::Classic,
        appid.as_deref(),
        || {
            issue(shared, &creds, |st, appid, now| {
                st.issue_classic(appid, now)
            })
        },
    )
}

pub fn stable(shared: &Shared, req: &Request) -> Outcome {
    if req.method != "POST" {
        return Outcome::Reply(Response::text(405, "use POST"));
    }
    let parsed = parse_stable_body(&req.body);
    let (endpoint, appid) = match &parsed {
        Ok((creds, force)) => (
            if *force {
                TokenEndpoint::StableForce
            } else {
                TokenEndpoint::Stable
            },
            creds.appid.clone(),
        ),
        Err(appid) => (TokenEndpoint::Stable, appid.clone()),
    };
    endpoint_at(
        shared,
        STABLE_PATH,
        endpoint,
        appid.as_deref(),
        || match &parsed {
            Ok((creds, force)) => issue(shared, creds, |st, appid, now| {
                st.stable_token(appid, *force, now)
            }),
            Err(_) => wx_error(47001, "data format error"),
        },
    )
}

/// Ok((credentials, force_refresh)); on a format error, whatever appid could
/// still be read, so the request is counted against the right app.
fn parse_stable_body(body: &[u8]) -> Result<(Credentials, bool), Option<String>> {
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) else {
        return Err(None);
    };
    let appid = obj.get("appid").and_then(Value::as_str).map(str::to_string);
    let string = |key: &str| -> Result<Option<String>, ()> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(()),
        }
    };
    let force = match obj.get("force_refresh") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(()),
    };
    match (
        string("grant_type"),
        string("appid"),
        string("secret"),
        force,
    ) {
        (Ok(grant_type), Ok(appid), Ok(secret), Ok(force)) => Ok((
            Credentials {
                grant_type,
                appid,
                secret,
            },
            force,
        )),
        _ => Err(appid),
    }
}

/// What every credential request to `path` goes through: counting, then a scripted fault
/// (one bound to this path, or a pathless one at a token endpoint) or the global delay, then
/// `answer`.
pub(crate) fn endpoint_at(
    shared: &Shared,
    path: &str,
    endpoint: TokenEndpoint,
    appid: Option<&str>,
    answer: impl FnOnce() -> Response,
) -> Outcome {
    lock(&shared.stats).token_request(endpoint, appid, Instant::now());
    let fault = lock(&shared.faults).take_for(path, endpoint.is_token(), appid);
    let delay_ms = shared.settings().delay_ms;
    if delay_ms > 0 && !shared.stop.sleep(Duration::from_millis(delay_ms)) {
        return Outcome::Close;
    }
    let Some(fault) = fault else {
        return Outcome::Reply(answer());
    };
    lock(&shared.stats).bump(Counter::FaultServed, appid);
    match fault.action() {
        FaultAction::Reply(resp) => Outcome::Reply(resp),
        FaultAction::SlowThenServe(d) => {
            if shared.stop.sleep(d) {
                Outcome::Reply(answer())
            } else {
                Outcome::Close
            }
        }
        FaultAction::Reset => Outcome::Close,
        FaultAction::HangThenClose(d) => {
            shared.stop.sleep(d);
            Outcome::Close
        }
    }
}

fn issue(
    shared: &Shared,
    creds: &Credentials,
    mint: impl FnOnce(&mut State, &str, Instant) -> Issued,
) -> Response {
    let mut state = lock(&shared.state);
    if let Err(e) = state.authenticate(
        creds.grant_type.as_deref(),
        creds.appid.as_deref(),
        creds.secret.as_deref(),
    ) {
        return credential_error(e);
    }
    let appid = creds.appid.as_deref().unwrap_or_default();
    let issued = mint(&mut state, appid, Instant::now());
    drop(state);
    if issued.fresh {
        lock(&shared.stats).bump(Counter::Issued, Some(appid));
    }
    Response::json(
        200,
        &json!({"access_token": issued.token, "expires_in": issued.expires_in}),
    )
}

pub fn business_api(shared: &Shared, req: &Request) -> Outcome {
    let token = req.query_param("access_token").filter(|t| !t.is_empty());
    let Some(token) = token else {
        lock(&shared.stats).bump(Counter::Api, None);
        return Outcome::Reply(wx_error(41001, "access_token missing"));
    };
    let (status, appid) = {
        let state = lock(&shared.state);
        let (status, appid) = state.status(&token, Instant::now());
        (status, appid.map(str::to_string))
    };
    lock(&shared.stats).bump(Counter::Api, appid.as_deref());
    Outcome::Reply(match status {
        TokenStatus::Valid => Response::json(200, &json!({"ip_list": ["127.0.0.1"]})),
        TokenStatus::Expired => wx_error(42001, "access_token expired"),
        TokenStatus::Invalid => wx_error(
            40001,
            "invalid credential, access_token is invalid or not latest",
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_body_parsing() {
        let ok = |b: &str| parse_stable_body(b.as_bytes()).map(|(c, f)| (c.appid, c.secret, f));
        assert_eq!(
            ok(r#"{"grant_type":"client_credential","appid":"a","secret":"s"}"#),
            Ok((Some("a".into()), Some("s".into()), false))
        );
        assert_eq!(
            ok(r#"{"appid":"a","force_refresh":true}"#),
            Ok((Some("a".into()), None, true))
        );
        assert_eq!(
            ok(r#"{"appid":"a","force_refresh":"yes"}"#),
            Err(Some("a".into()))
        );
        assert_eq!(ok(r#"{"appid":1}"#), Err(None));
        assert_eq!(ok(r#"["a"]"#), Err(None));
        assert_eq!(ok(""), Err(None));
        assert_eq!(ok(r#"{"appid":"a""#), Err(None));
    }
}
