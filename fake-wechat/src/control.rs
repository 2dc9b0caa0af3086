//! `/_fake/*`: the HTTP twin of the Rust API, for tests in other languages.

use serde_json::{Map, Value, json};

use crate::faults::Fault;
use crate::http::{Request, Response};
use crate::shared::{ControlResult, Shared};

pub const PREFIX: &str = "/_fake/";

const ROUTES: &[&str] = &[
    "stats",
    "requests",
    "faults",
    "config",
    "apps",
    "reset_stats",
    "revoke",
    "expire",
    "current",
    "wecom",
    "expire_tickets",
    "ticket",
    "jssdk_check",
];

pub fn handle(shared: &Shared, req: &Request) -> Response {
    let route = req.path.strip_prefix(PREFIX).unwrap_or_default();
    let result = match (req.method.as_str(), route) {
        ("GET", "stats") => Ok(shared.stats().to_json()),
        ("GET", "requests") => Ok(requests(shared)),
        ("GET", "faults") => Ok(Value::Array(
            shared.pending_faults().iter().map(Fault::to_json).collect(),
        )),
        ("POST", "faults") => push_faults(shared, &req.body),
        ("DELETE", "faults") => {
            shared.clear_faults();
            Ok(ok())
        }
        ("GET", "config") => Ok(config_json(shared)),
        ("POST", "config") => set_config(shared, &req.body),
        ("POST", "apps") => add_app(shared, &req.body),
        ("POST", "reset_stats") => {
            shared.reset_stats();
            Ok(ok())
        }
        ("POST", "revoke") => string_field(&req.body, "token").map(|t| {
            shared.revoke(&t);
            ok()
        }),
        ("POST", "expire") => string_field(&req.body, "appid").map(|a| {
            shared.expire_app(&a);
            ok()
        }),
        ("POST", "wecom") => add_wecom(shared, &req.body),
        ("POST", "expire_tickets") => {
            shared.expire_tickets();
            Ok(ok())
        }
        ("POST", "jssdk_check") => crate::tickets::check(shared, &req.body),
        ("GET", "ticket") => {
            let owner = req.query_param("owner").unwrap_or_default();
            let kind = req.query_param("kind").unwrap_or_default();
            let Some(kind) = crate::tickets::TicketKind::parse(&kind) else {
                return Response::json(
                    400,
                    &json!({"error": "kind must be jsapi, wx_card, corp_jsapi or agent_config"}),
                );
            };
            return match shared.current_ticket(&owner, kind) {
                Some(t) => Response::json(200, &json!({"ticket": t})),
                None => Response::json(404, &json!({"error": "no valid ticket"})),
            };
        }
        ("GET", "current") => {
            let appid = req.query_param("appid").unwrap_or_default();
            return match shared.current_token(&appid) {
                Some(t) => Response::json(200, &json!({"access_token": t})),
                None => Response::json(404, &json!({"error": "no token issued for this appid"})),
            };
        }
        (_, r) if ROUTES.contains(&r) => {
            return Response::json(405, &json!({"error": "method not allowed"}));
        }
        _ => return Response::json(404, &json!({"error": "no such control endpoint"})),
    };
    match result {
        Ok(v) => Response::json(200, &v),
        Err(e) => Response::json(400, &json!({"error": e})),
    }
}

fn ok() -> Value {
    json!({"ok": true})
}

fn parse(body: &[u8]) -> ControlResult<Value> {
    serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))
}

fn object(body: &[u8]) -> ControlResult<Map<String, Value>> {
    match parse(body)? {
        Value::Object(m) => Ok(m),
        _ => Err("body must be a JSON object".into()),
    }
}

fn string_field(body: &[u8], key: &str) -> ControlResult<String> {
    object(body)?
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| format!("body needs a non-empty string {key:?}"))
}

/// One fault or an array; all are validated before any is queued.
fn push_faults(shared: &Shared, body: &[u8]) -> ControlResult<Value> {
    let v = parse(body)?;
    let items = match &v {
        Value::Array(items) => items.iter().collect::<Vec<_>>(),
        other => vec![other],
    };
    let faults = items
        .into_iter()
        .map(Fault::from_json)
        .collect::<Result<Vec<_>, _>>()?;
    let n = faults.len();
    for f in faults {
        shared.push_fault(f);
    }
    Ok(json!({"ok": true, "queued": n}))
}

fn config_json(shared: &Shared) -> Value {
    let s = shared.settings();
    json!({
        "lifetime_secs": s.lifetime_secs,
        "token_len": s.token_len,
        "overlap_secs": s.overlap_secs,
        "delay_ms": s.delay_ms,
        "ticket_lifetime_secs": s.ticket_lifetime_secs,
    })
}

/// Validates every field first so a bad request changes nothing.
fn set_config(shared: &Shared, body: &[u8]) -> ControlResult<Value> {
    let obj = object(body)?;
    let mut next = shared.settings();
    for (key, val) in &obj {
        let n = val
            .as_u64()
            .ok_or_else(|| format!("{key:?} must be a non-negative integer"))?;
        match key.as_str() {
            "lifetime_secs" => next.lifetime_secs = n,
            "token_len" => {
                next.token_len = Shared::check_token_len(usize::try_from(n).unwrap_or(usize::MAX))?
            }
            "overlap_secs" => next.overlap_secs = n,
            "delay_ms" => next.delay_ms = n,
            "ticket_lifetime_secs" => next.ticket_lifetime_secs = n,
            _ => return Err(format!("unknown config field {key:?}")),
        }
    }
    // Only the fields sent are written, so concurrent updates of other knobs survive.
    shared.update_settings(|s| {
        for key in obj.keys() {
            match key.as_str() {
                "lifetime_secs" => s.lifetime_secs = next.lifetime_secs,
                "token_len" => s.token_len = next.token_len,
                "overlap_secs" => s.overlap_secs = next.overlap_secs,
                "delay_ms" => s.delay_ms = next.delay_ms,
                "ticket_lifetime_secs" => s.ticket_lifetime_secs = next.ticket_lifetime_secs,
                _ => {}
            }
        }
    });
    Ok(config_json(shared))
}

fn add_app(shared: &Shared, body: &[u8]) -> ControlResult<Value> {
    let appid = string_field(body, "appid")?;
    let secret = string_field(body, "secret")?;
    shared.add_app(&appid, &secret);
    Ok(ok())
}

/// `{"corpid","secret","agentid"?}`: a WeCom corp secret, with its app's agentid if any.
fn add_wecom(shared: &Shared, body: &[u8]) -> ControlResult<Value> {
    let corpid = string_field(body, "corpid")?;
    let secret = string_field(body, "secret")?;
    let agentid = match object(body)?.get("agentid") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().ok_or("agentid must be a non-negative integer")?),
    };
    shared.add_wecom(&corpid, &secret, agentid);
    Ok(ok())
}

fn requests(shared: &Shared) -> Value {
    let records = shared.requests();
    Value::Array(
        records
            .iter()
            .map(|r| {
                json!({
                    "endpoint": r.endpoint.name(),
                    "appid": r.appid,
                    "at_ms": r.at.saturating_duration_since(shared.started).as_millis() as u64,
                })
            })
            .collect(),
    )
}
