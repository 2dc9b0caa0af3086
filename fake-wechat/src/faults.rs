//! Scripted misbehaviour of the token endpoints, consumed one request at a time.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde_json::{Value, json};

use crate::http::{Body, JSON, Response};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// `{"errcode":-1,"errmsg":"system error"}`: WeChat's retryable hiccup.
    Busy,
    /// 45009: daily quota exhausted; retrying makes it worse.
    Quota,
    /// Any errcode/errmsg the test picks.
    Errcode,
    /// A non-200 status (default 500) with a text body.
    HttpStatus,
    /// 200 with truncated JSON.
    Malformed,
    /// 200 with valid JSON that has neither a token nor an errcode.
    MissingFields,
    /// 200 with a 16 MiB JSON string: clients must bound what they read.
    Huge,
    /// Sleeps `delay_ms` (default 2000), then answers normally.
    Slow,
    /// Closes the connection without answering.
    Reset,
    /// 302 to an address nobody should follow a secret to.
    Redirect,
    /// Never answers: holds the connection `delay_ms` (default 30000), then closes.
    Hang,
}

impl FaultKind {
    pub const ALL: [FaultKind; 11] = [
        FaultKind::Busy,
        FaultKind::Quota,
        FaultKind::Errcode,
        FaultKind::HttpStatus,
        FaultKind::Malformed,
        FaultKind::MissingFields,
        FaultKind::Huge,
        FaultKind::Slow,
        FaultKind::Reset,
        FaultKind::Redirect,
        FaultKind::Hang,
    ];

    /// The snake_case name used by the HTTP control API.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Busy => "busy",
            FaultKind::Quota => "quota",
            FaultKind::Errcode => "errcode",
            FaultKind::HttpStatus => "http_status",
            FaultKind::Malformed => "malformed",
            FaultKind::MissingFields => "missing_fields",
            FaultKind::Huge => "huge",
            FaultKind::Slow => "slow",
            FaultKind::Reset => "reset",
            FaultKind::Redirect => "redirect",
            FaultKind::Hang => "hang",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FaultKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FaultKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown fault kind {s:?}"))
    }
}

pub const HUGE_BODY_BYTES: u64 = 16 * 1024 * 1024;
pub const REDIRECT_TARGET: &str = "http://127.0.0.1:1/steal";
const DEFAULT_SLOW_MS: u64 = 2000;
const DEFAULT_HANG_MS: u64 = 30_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    /// How many matching token requests it answers before it is used up.
    pub count: u32,
    pub delay_ms: Option<u64>,
    pub errcode: Option<i64>,
    pub errmsg: Option<String>,
    pub status: Option<u16>,
    /// Only requests for this appid consume the fault; others pass it by.
    pub appid: Option<String>,
    /// Only requests to this path (e.g. "/cgi-bin/ticket/getticket") consume the fault. Without
    /// it, a fault applies to the token endpoints only (classic, stable, WeCom's gettoken).
    pub path: Option<String>,
}

impl Fault {
    pub fn new(kind: FaultKind) -> Fault {
        Fault {
            kind,
            count: 1,
            delay_ms: None,
            errcode: None,
            errmsg: None,
            status: None,
            appid: None,
            path: None,
        }
    }

    pub fn busy() -> Fault {
        Fault::new(FaultKind::Busy)
    }

    pub fn quota() -> Fault {
        Fault::new(FaultKind::Quota)
    }

    /// An arbitrary WeChat error answer, e.g. 40164 (IP not whitelisted).
    pub fn wx_error(errcode: i64, errmsg: &str) -> Fault {
        Fault::new(FaultKind::Errcode)
            .with_errcode(errcode)
            .with_errmsg(errmsg)
    }

    pub fn http_status(status: u16) -> Fault {
        Fault::new(FaultKind::HttpStatus).with_status(status)
    }

    pub fn slow(delay_ms: u64) -> Fault {
        Fault::new(FaultKind::Slow).with_delay_ms(delay_ms)
    }

    pub fn hang(delay_ms: u64) -> Fault {
        Fault::new(FaultKind::Hang).with_delay_ms(delay_ms)
    }

    pub fn times(mut self, count: u32) -> Fault {
        self.count = count;
        self
    }

    pub fn with_delay_ms(mut self, ms: u64) -> Fault {
        self.delay_ms = Some(ms);
        self
    }

    pub fn with_errcode(mut self, errcode: i64) -> Fault {
        self.errcode = Some(errcode);
        self
    }

    pub fn with_errmsg(mut self, errmsg: &str) -> Fault {
        self.errmsg = Some(errmsg.to_string());
        self
    }

    pub fn with_status(mut self, status: u16) -> Fault {
        self.status = Some(status);
        self
    }

    pub fn for_app(mut self, appid: &str) -> Fault {
        self.appid = Some(appid.to_string());
        self
    }

    /// Only requests to `path` consume it (the ticket endpoints need this).
    pub fn for_path(mut self, path: &str) -> Fault {
        self.path = Some(path.to_string());
        self
    }

    /// Parses the control-API form. Unknown fields are refused so a typo like
    /// `"dealy_ms"` fails loudly instead of silently using the default.
    pub fn from_json(v: &Value) -> Result<Fault, String> {
        let obj = v.as_object().ok_or("a fault must be a JSON object")?;
        let kind: FaultKind = obj
            .get("kind")
            .and_then(Value::as_str)
            .ok_or("fault needs a string \"kind\"")?
            .parse()?;
        let mut f = Fault::new(kind);
        for (key, val) in obj {
            let bad = || format!("bad value for fault field {key:?}: {val}");
            match key.as_str() {
                "kind" => {}
                "count" => {
                    f.count = val
                        .as_u64()
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(bad)?
                }
                "delay_ms" => f.delay_ms = Some(val.as_u64().ok_or_else(bad)?),
                "errcode" => f.errcode = Some(val.as_i64().ok_or_else(bad)?),
                "errmsg" => f.errmsg = Some(val.as_str().ok_or_else(bad)?.to_string()),
                "status" => {
                    f.status = Some(
                        val.as_u64()
                            .and_then(|n| u16::try_from(n).ok())
                            .filter(|s| (100..=999).contains(s))
                            .ok_or_else(bad)?,
                    )
                }
                "appid" => f.appid = Some(val.as_str().ok_or_else(bad)?.to_string()),
                "path" => f.path = Some(val.as_str().ok_or_else(bad)?.to_string()),
                _ => return Err(format!("unknown fault field {key:?}")),
            }
        }
        Ok(f)
    }

    pub fn to_json(&self) -> Value {
        let mut v = json!({"kind": self.kind.name(), "count": self.count});
        if let Some(ms) = self.delay_ms {
            v["delay_ms"] = json!(ms);
        }
        if let Some(code) = self.errcode {
            v["errcode"] = json!(code);
        }
        if let Some(msg) = &self.errmsg {
            v["errmsg"] = json!(msg);
        }
        if let Some(status) = self.status {
            v["status"] = json!(status);
        }
        if let Some(appid) = &self.appid {
            v["appid"] = json!(appid);
        }
        if let Some(path) = &self.path {
            v["path"] = json!(path);
        }
        v
    }

    pub(crate) fn action(&self) -> FaultAction {
        let wx_error = |default_code: i64, default_msg: &str| {
            FaultAction::Reply(Response::json(
                200,
                &json!({
                    "errcode": self.errcode.unwrap_or(default_code),
                    "errmsg": self.errmsg.as_deref().unwrap_or(default_msg),
                }),
            ))
        };
        let delay = |default_ms| Duration::from_millis(self.delay_ms.unwrap_or(default_ms));
        match self.kind {
            FaultKind::Busy => wx_error(-1, "system error"),
            FaultKind::Quota => wx_error(45009, "reach max api daily quota limit"),
            FaultKind::Errcode => wx_error(-1, "fake error"),
            FaultKind::HttpStatus => {
                let status = self.status.unwrap_or(500);
                FaultAction::Reply(Response::text(
                    status,
                    &format!("fake upstream failure (HTTP {status})"),
                ))
            }
            FaultKind::Malformed => FaultAction::Reply(Response::raw(
                200,
                Some(JSON),
                b"{\"access_token\": ".to_vec(),
            )),
            FaultKind::MissingFields => FaultAction::Reply(Response::json(200, &json!({"foo": 1}))),
            FaultKind::Huge => FaultAction::Reply(Response {
                status: 200,
                content_type: Some(JSON),
                headers: Vec::new(),
                body: Body::Filled {
                    head: b"\"",
                    fill: b'x',
                    tail: b"\"",
                    len: HUGE_BODY_BYTES,
                },
            }),
            FaultKind::Slow => FaultAction::SlowThenServe(delay(DEFAULT_SLOW_MS)),
            FaultKind::Reset => FaultAction::Reset,
            FaultKind::Redirect => FaultAction::Reply(
                Response::raw(302, None, Vec::new()).with_header("Location", REDIRECT_TARGET),
            ),
            FaultKind::Hang => FaultAction::HangThenClose(delay(DEFAULT_HANG_MS)),
        }
    }
}

pub(crate) enum FaultAction {
    Reply(Response),
    SlowThenServe(Duration),
    Reset,
    HangThenClose(Duration),
}

#[derive(Default)]
pub struct FaultQueue {
    queue: VecDeque<Fault>,
}

impl FaultQueue {
    pub fn push(&mut self, fault: Fault) {
        if fault.count > 0 {
            self.queue.push_back(fault);
        }
    }

    pub fn clear(&mut self) {
        self.queue.clear();
    }

    pub fn pending(&self) -> Vec<Fault> {
        self.queue.iter().cloned().collect()
    }

    /// Consumes one use of the first fault that applies to `appid` at `path` (a fault without
    /// a path applies where `token_endpoint`).
    pub fn take_for(
        &mut self,
        path: &str,
        token_endpoint: bool,
        appid: Option<&str>,
    ) -> Option<Fault> {
        let idx = self.queue.iter().position(|f| {
            (f.appid.is_none() || f.appid.as_deref() == appid)
                && f.path.as_deref().map_or(token_endpoint, |p| p == path)
        })?;
        let fault = &mut self.queue[idx];
        fault.count -= 1;
        let taken = Fault {
            count: 1,
            ..fault.clone()
        };
        if fault.count == 0 {
            self.queue.remove(idx);
        }
        Some(taken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_by_name() {
        for k in FaultKind::ALL {
            assert_eq!(k.name().parse::<FaultKind>(), Ok(k));
        }
        assert!("Busy".parse::<FaultKind>().is_err());
    }

    #[test]
    fn json_round_trip_and_strictness() {
        let f = Fault::wx_error(40164, "ip")
            .times(3)
            .for_app("a")
            .with_delay_ms(5)
            .for_path("/cgi-bin/get_jsapi_ticket");
        assert_eq!(Fault::from_json(&f.to_json()), Ok(f));
        assert_eq!(
            Fault::from_json(&json!({"kind": "busy"})),
            Ok(Fault::busy())
        );
        assert!(Fault::from_json(&json!({"kind": "busy", "dealy_ms": 1})).is_err());
        assert!(Fault::from_json(&json!({"kind": "nope"})).is_err());
        assert!(Fault::from_json(&json!({"count": 1})).is_err());
        assert!(Fault::from_json(&json!({"kind": "busy", "count": -1})).is_err());
        assert!(Fault::from_json(&json!({"kind": "http_status", "status": 70000})).is_err());
        assert!(Fault::from_json(&json!(["busy"])).is_err());
    }

    #[test]
    fn queue_is_fifo_counts_down_and_honours_appid() {
        let mut q = FaultQueue::default();
        q.push(Fault::busy().for_app("b"));
        q.push(Fault::quota().times(2));
        q.push(Fault::slow(1).times(0));
        let t = |q: &mut FaultQueue, appid| q.take_for("/cgi-bin/token", true, appid);
        assert_eq!(t(&mut q, Some("a")).unwrap().kind, FaultKind::Quota);
        assert_eq!(t(&mut q, None).unwrap().kind, FaultKind::Quota);
        assert_eq!(t(&mut q, Some("a")), None);
        assert_eq!(q.pending().len(), 1);
        assert_eq!(t(&mut q, Some("b")).unwrap().kind, FaultKind::Busy);
        assert!(q.pending().is_empty());
        q.push(Fault::busy());
        q.clear();
        assert_eq!(t(&mut q, None), None);
        // A pathless fault is for token endpoints only; a path-bound one for its path only.
        q.push(Fault::busy());
        assert_eq!(q.take_for("/cgi-bin/ticket/getticket", false, None), None);
        q.clear();
        q.push(Fault::busy().for_path("/cgi-bin/ticket/getticket"));
        assert_eq!(t(&mut q, None), None);
        assert!(
            q.take_for("/cgi-bin/ticket/getticket", false, None)
                .is_some()
        );
    }
}
