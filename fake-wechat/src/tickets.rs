//! JS-SDK tickets and WeCom, as WeChat behaves:
//!
//! - WeCom's gettoken issues one token per corp secret (each self-built app, contacts sync,
//!   ...), handed back while it has more than the overlap left, like stable_token.
//! - A ticket (mp jsapi / wx_card, WeCom corp jsapi, WeCom agent_config) asked for again while
//!   valid comes back the SAME, with `expires_in` at its full value again: its real remaining
//!   life is shorter than the answer says. A new one is minted only once it has expired.
//! - The browser check plays `wx.config` / `wx.agentConfig`: it accepts a signature only if it
//!   matches the ticket valid right now.

use std::collections::HashMap;
use std::time::Instant;

use serde_json::{Value, json};

use crate::http::{Request, Response};
use crate::server::Outcome;
use crate::shared::{Shared, lock};
use crate::state::{State, TokenStatus, after};
use crate::stats::{Counter, TokenEndpoint};
use crate::wechat::{endpoint_at, wx_error};

pub const WECOM_TOKEN_PATH: &str = "/cgi-bin/gettoken";
pub const TICKET_PATH: &str = "/cgi-bin/ticket/getticket";
pub const CORP_TICKET_PATH: &str = "/cgi-bin/get_jsapi_ticket";
pub const AGENT_TICKET_PATH: &str = "/cgi-bin/ticket/get";
pub const WECOM_API_PATH: &str = "/cgi-bin/getcallbackip";

/// Tickets are about 86 characters at WeChat.
const TICKET_LEN: usize = 86;

/// Which ticket; the `&str` forms are what `/_fake/ticket?kind=` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TicketKind {
    /// mp getticket type=jsapi (owner: the appid).
    Jsapi,
    /// mp getticket type=wx_card (owner: the appid).
    WxCard,
    /// WeCom get_jsapi_ticket (owner: the corpid).
    Corp,
    /// WeCom ticket/get type=agent_config (owner: the corp secret the token was issued for).
    Agent,
}

impl TicketKind {
    pub fn parse(s: &str) -> Option<TicketKind> {
        Some(match s {
            "jsapi" => TicketKind::Jsapi,
            "wx_card" => TicketKind::WxCard,
            "corp_jsapi" => TicketKind::Corp,
            "agent_config" => TicketKind::Agent,
            _ => return None,
        })
    }
}

struct CorpSecret {
    secret: String,
    agentid: Option<u64>,
}

struct Ticket {
    value: String,
    valid_until: Instant,
}

#[derive(Default)]
pub struct Jssdk {
    /// corpid → its secrets; the token owner of secret `i` is `owner_key(corpid, i)`.
    corps: HashMap<String, Vec<CorpSecret>>,
    /// (owner, kind) → the ticket minted last.
    tickets: HashMap<(String, TicketKind), Ticket>,
}

/// The owner name of a WeCom secret's tokens ('#' never appears in an mp appid here).
fn owner_key(corpid: &str, index: usize) -> String {
    format!("{corpid}#{index}")
}

fn corp_of(owner: &str) -> Option<&str> {
    owner.split_once('#').map(|(corp, _)| corp)
}

impl State {
    /// Adds a secret to a corp (creating it), or changes the agentid of a known secret.
    pub fn add_wecom(&mut self, corpid: &str, secret: &str, agentid: Option<u64>) {
        let secrets = self.jssdk.corps.entry(corpid.to_string()).or_default();
        if let Some(s) = secrets.iter_mut().find(|s| s.secret == secret) {
            s.agentid = agentid;
            return;
        }
        secrets.push(CorpSecret {
            secret: secret.to_string(),
            agentid,
        });
        let owner = owner_key(corpid, secrets.len() - 1);
        self.add_app(&owner, secret);
    }

    /// WeCom's checks, in its order: the owner of (corpid, secret), or WeCom's errcode.
    fn wecom_owner(
        &self,
        corpid: Option<&str>,
        secret: Option<&str>,
    ) -> Result<String, (i64, &'static str)> {
        let corpid = corpid
            .filter(|c| !c.is_empty())
            .ok_or((41002, "corpid missing"))?;
        let secret = secret
            .filter(|s| !s.is_empty())
            .ok_or((41004, "corpsecret missing"))?;
        let secrets = self
            .jssdk
            .corps
            .get(corpid)
            .ok_or((40013, "invalid corpid"))?;
        let i = secrets
            .iter()
            .position(|s| s.secret == secret)
            .ok_or((40001, "invalid credential"))?;
        Ok(owner_key(corpid, i))
    }

    /// A ticket of `kind` for whoever `token` belongs to: the same one again while it is
    /// valid, with `expires_in` at its full value again (as WeChat does).
    fn ticket(
        &mut self,
        token: &str,
        kind: TicketKind,
        now: Instant,
    ) -> Result<(String, u64, bool), (i64, &'static str)> {
        let wecom = matches!(kind, TicketKind::Corp | TicketKind::Agent);
        let (status, owner) = self.status(token, now);
        let owner = owner.map(str::to_string);
        let invalid = if wecom {
            (40014, "invalid access_token")
        } else {
            (
                40001,
                "invalid credential, access_token is invalid or not latest",
            )
        };
        match status {
            TokenStatus::Valid => {}
            TokenStatus::Expired => return Err((42001, "access_token expired")),
            TokenStatus::Invalid => return Err(invalid),
        }
        let owner = owner.ok_or(invalid)?;
        let owner = match (kind, corp_of(&owner)) {
            (TicketKind::Jsapi | TicketKind::WxCard, None) => owner,
            (TicketKind::Corp, Some(corp)) => corp.to_string(),
            (TicketKind::Agent, Some(_)) => owner,
            _ => return Err(invalid),
        };
        let lifetime = self.settings.ticket_lifetime_secs;
        let key = (owner, kind);
        if let Some(t) = self.jssdk.tickets.get(&key)
            && now < t.valid_until
        {
            return Ok((t.value.clone(), lifetime, false));
        }
        let value = self.random(TICKET_LEN);
        self.jssdk.tickets.insert(
            key,
            Ticket {
                value: value.clone(),
                valid_until: after(now, lifetime),
            },
        );
        Ok((value, lifetime, true))
    }

    /// The ticket of `kind` of `owner` (appid, corpid, or for agent tickets the corpid and
    /// agentid as "corpid/agentid") valid at `now`.
    pub fn current_ticket(&self, owner: &str, kind: TicketKind, now: Instant) -> Option<String> {
        let owner = match kind {
            TicketKind::Agent => {
                let (corp, agent) = owner.split_once('/')?;
                self.agent_owner(corp, agent.parse().ok()?)?
            }
            _ => owner.to_string(),
        };
        self.jssdk
            .tickets
            .get(&(owner, kind))
            .filter(|t| now < t.valid_until)
            .map(|t| t.value.clone())
    }

    fn agent_owner(&self, corpid: &str, agentid: u64) -> Option<String> {
        let secrets = self.jssdk.corps.get(corpid)?;
        let i = secrets.iter().position(|s| s.agentid == Some(agentid))?;
        Some(owner_key(corpid, i))
    }

    /// Every ticket expires now, as if its two hours had passed.
    pub fn expire_tickets(&mut self, now: Instant) {
        for t in self.jssdk.tickets.values_mut() {
            t.valid_until = t.valid_until.min(now);
        }
    }

    /// The browser's `wx.config` / `wx.agentConfig`: `Ok` if the signature matches the ticket
    /// valid now, else WeChat's complaint.
    pub fn check(&self, cfg: &Value, now: Instant) -> Result<(), String> {
        let field = |k: &str| cfg.get(k).and_then(Value::as_str);
        let (timestamp, nonce, signature, url) = match (
            cfg.get("timestamp"),
            field("nonceStr"),
            field("signature"),
            field("url"),
        ) {
            (Some(ts), Some(n), Some(s), Some(u)) => (ts, n, s, u),
            _ => return Err("config:fail, missing timestamp, nonceStr, signature or url".into()),
        };
        // wx.config takes the timestamp as a number or a string of digits.
        let timestamp = match timestamp {
            Value::Number(n) if n.is_u64() => n.to_string(),
            Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.clone(),
            _ => return Err("config:fail, timestamp is not a number".into()),
        };
        if nonce.is_empty() || nonce.len() > 32 {
            return Err("config:fail, nonceStr must be 1 to 32 characters".into());
        }
        let ticket = match (field("appId"), field("corpid"), cfg.get("agentid")) {
            (Some(appid), None, None) if self.is_mp_app(appid) => {
                self.current_ticket(appid, TicketKind::Jsapi, now)
            }
            (Some(corpid), None, None) if self.jssdk.corps.contains_key(corpid) => {
                self.current_ticket(corpid, TicketKind::Corp, now)
            }
            (None, Some(corpid), Some(agentid)) => {
                let agentid = agentid
                    .as_u64()
                    .or_else(|| agentid.as_str()?.parse().ok())
                    .ok_or("config:fail, agentid is not a number")?;
                self.current_ticket(&format!("{corpid}/{agentid}"), TicketKind::Agent, now)
            }
            _ => return Err("config:fail, invalid appId, or corpid without agentid".into()),
        }
        .ok_or("config:fail, no valid ticket (invalid signature)")?;
        let page = url.split_once('#').map_or(url, |(p, _)| p);
        let expected = sha1_smol::Sha1::from(format!(
            "jsapi_ticket={ticket}&noncestr={nonce}&timestamp={timestamp}&url={page}"
        ))
        .digest()
        .to_string();
        if signature == expected {
            Ok(())
        } else {
            Err("config:fail, invalid signature".into())
        }
    }
}

/// `GET /cgi-bin/gettoken?corpid=&corpsecret=`.
pub fn wecom_token(shared: &Shared, req: &Request) -> Outcome {
    if req.method != "GET" {
        return Outcome::Reply(Response::text(405, "use GET"));
    }
    let corpid = req.query_param("corpid");
    let secret = req.query_param("corpsecret");
    endpoint_at(
        shared,
        WECOM_TOKEN_PATH,
        TokenEndpoint::WecomToken,
        corpid.as_deref(),
        || {
            let mut state = lock(&shared.state);
            let owner = match state.wecom_owner(corpid.as_deref(), secret.as_deref()) {
                Ok(o) => o,
                Err((code, msg)) => return wx_error(code, msg),
            };
            let issued = state.stable_token(&owner, false, Instant::now());
            drop(state);
            if issued.fresh {
                lock(&shared.stats).bump(Counter::Issued, corpid.as_deref());
            }
            Response::json(
                200,
                &json!({"errcode": 0, "errmsg": "ok",
                        "access_token": issued.token, "expires_in": issued.expires_in}),
            )
        },
    )
}

/// The three ticket endpoints: mp getticket (`type` jsapi or wx_card), WeCom's
/// get_jsapi_ticket and ticket/get (`type` agent_config).
pub fn ticket(shared: &Shared, req: &Request) -> Outcome {
    if req.method != "GET" {
        return Outcome::Reply(Response::text(405, "use GET"));
    }
    let ty = req.query_param("type");
    let (endpoint, kind) = match (req.path.as_str(), ty.as_deref()) {
        (TICKET_PATH, Some("jsapi")) => (TokenEndpoint::Ticket, Some(TicketKind::Jsapi)),
        (TICKET_PATH, Some("wx_card")) => (TokenEndpoint::Ticket, Some(TicketKind::WxCard)),
        (TICKET_PATH, _) => (TokenEndpoint::Ticket, None),
        (CORP_TICKET_PATH, _) => (TokenEndpoint::CorpTicket, Some(TicketKind::Corp)),
        (_, Some("agent_config")) => (TokenEndpoint::AgentTicket, Some(TicketKind::Agent)),
        _ => (TokenEndpoint::AgentTicket, None),
    };
    let token = req.query_param("access_token").unwrap_or_default();
    // Counted against the token's owner (appid, or corpid for WeCom), if the token is known.
    let owner = {
        let state = lock(&shared.state);
        let owner = state.status(&token, Instant::now()).1;
        owner.map(|o| corp_of(o).unwrap_or(o).to_string())
    };
    endpoint_at(shared, &req.path, endpoint, owner.as_deref(), || {
        let Some(kind) = kind else {
            return wx_error(40097, "invalid args: type");
        };
        if token.is_empty() {
            return wx_error(41001, "access_token missing");
        }
        let answer = lock(&shared.state).ticket(&token, kind, Instant::now());
        match answer {
            Ok((ticket, expires_in, fresh)) => {
                if fresh {
                    lock(&shared.stats).bump(Counter::TicketIssued, owner.as_deref());
                }
                Response::json(
                    200,
                    &json!({"errcode": 0, "errmsg": "ok", "ticket": ticket, "expires_in": expires_in}),
                )
            }
            Err((code, msg)) => wx_error(code, msg),
        }
    })
}

/// `GET /cgi-bin/getcallbackip?access_token=`: a WeCom business API, accepting WeCom tokens
/// only (40014 for anything else, 42001 for an expired one).
pub fn wecom_api(shared: &Shared, req: &Request) -> Outcome {
    let token = req.query_param("access_token").unwrap_or_default();
    let (status, owner) = {
        let state = lock(&shared.state);
        let (status, owner) = state.status(&token, Instant::now());
        (status, owner.map(str::to_string))
    };
    let corp = owner.as_deref().and_then(corp_of);
    lock(&shared.stats).bump(Counter::WecomApi, corp);
    Outcome::Reply(match (status, corp) {
        (TokenStatus::Valid, Some(_)) => Response::json(
            200,
            &json!({"errcode": 0, "errmsg": "ok", "ip_list": ["127.0.0.1"]}),
        ),
        (TokenStatus::Expired, Some(_)) => wx_error(42001, "access_token expired"),
        _ => wx_error(40014, "invalid access_token"),
    })
}

/// `POST /_fake/jssdk_check`: the browser's `wx.config` with the JSON a server rendered, plus
/// the page's `url`. Answers `{"ok":true}` or `{"ok":false,"errmsg":...}` (always HTTP 200).
pub fn check(shared: &Shared, body: &[u8]) -> Result<Value, String> {
    let cfg: Value = serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let verdict = lock(&shared.state).check(&cfg, Instant::now());
    let mut stats = lock(&shared.stats);
    stats.bump(Counter::Check, None);
    Ok(match verdict {
        Ok(()) => json!({"ok": true}),
        Err(why) => {
            stats.bump(Counter::CheckFailed, None);
            json!({"ok": false, "errmsg": why})
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Settings;
    use std::time::Duration;

    fn state() -> State {
        let mut s = State::new(Settings {
            lifetime_secs: 7200,
            token_len: 32,
            overlap_secs: 300,
            delay_ms: 0,
            ticket_lifetime_secs: 100,
        });
        s.add_app("wxa", "s");
        s.add_wecom("corp", "contacts", None);
        s.add_wecom("corp", "app1", Some(1000002));
        s
    }

    #[test]
    fn one_wecom_token_per_secret() {
        let mut s = state();
        let t0 = Instant::now();
        let a = s.wecom_owner(Some("corp"), Some("contacts")).unwrap();
        let b = s.wecom_owner(Some("corp"), Some("app1")).unwrap();
        let ta = s.stable_token(&a, false, t0).token;
        let tb = s.stable_token(&b, false, t0).token;
        assert_ne!(ta, tb);
        assert_eq!(s.stable_token(&a, false, t0).token, ta);
        assert_eq!(
            s.wecom_owner(Some("corp"), Some("x")),
            Err((40001, "invalid credential"))
        );
        assert_eq!(s.wecom_owner(Some("nope"), Some("x")).unwrap_err().0, 40013);
        assert_eq!(s.wecom_owner(None, Some("x")).unwrap_err().0, 41002);
    }

    #[test]
    fn the_same_ticket_comes_back_with_full_expires_in_until_it_expires() {
        let mut s = state();
        let t0 = Instant::now();
        let tok = s.issue_classic("wxa", t0).token;
        let (t1, e1, fresh) = s.ticket(&tok, TicketKind::Jsapi, t0).unwrap();
        assert!(fresh && e1 == 100);
        let (t2, e2, fresh) = s
            .ticket(&tok, TicketKind::Jsapi, t0 + Duration::from_secs(90))
            .unwrap();
        assert_eq!((t2.as_str(), e2, fresh), (t1.as_str(), 100, false));
        let (card, _, _) = s.ticket(&tok, TicketKind::WxCard, t0).unwrap();
        assert_ne!(card, t1);
        let (t3, _, fresh) = s
            .ticket(&tok, TicketKind::Jsapi, t0 + Duration::from_secs(100))
            .unwrap();
        assert!(fresh && t3 != t1);
        assert_eq!(
            s.ticket("bogus", TicketKind::Jsapi, t0).unwrap_err().0,
            40001
        );
        assert_eq!(s.ticket(&tok, TicketKind::Corp, t0).unwrap_err().0, 40014);
    }

    #[test]
    fn corp_and_agent_tickets_are_apart_and_checked() {
        let mut s = state();
        let t0 = Instant::now();
        let app1 = s.wecom_owner(Some("corp"), Some("app1")).unwrap();
        let contacts = s.wecom_owner(Some("corp"), Some("contacts")).unwrap();
        let t_app = s.stable_token(&app1, false, t0).token;
        let t_contacts = s.stable_token(&contacts, false, t0).token;
        let (corp1, _, _) = s.ticket(&t_app, TicketKind::Corp, t0).unwrap();
        let (corp2, _, _) = s.ticket(&t_contacts, TicketKind::Corp, t0).unwrap();
        assert_eq!(corp1, corp2, "one corp ticket per corp");
        let (agent, _, _) = s.ticket(&t_app, TicketKind::Agent, t0).unwrap();
        assert_ne!(agent, corp1);
        let sign = |t: &str| {
            sha1_smol::Sha1::from(format!(
                "jsapi_ticket={t}&noncestr=n&timestamp=1&url=https://p/x"
            ))
            .digest()
            .to_string()
        };
        let ok = s.check(
            &json!({"corpid": "corp", "agentid": 1000002, "timestamp": "1", "nonceStr": "n",
                    "signature": sign(&agent), "url": "https://p/x#frag"}),
            t0,
        );
        assert_eq!(ok, Ok(()));
        let wrong = s.check(
            &json!({"corpid": "corp", "agentid": 1000002, "timestamp": 1, "nonceStr": "n",
                    "signature": sign(&corp1), "url": "https://p/x"}),
            t0,
        );
        assert!(wrong.is_err());
        let corp_ok = s.check(
            &json!({"appId": "corp", "timestamp": 1, "nonceStr": "n",
                    "signature": sign(&corp1), "url": "https://p/x"}),
            t0,
        );
        assert_eq!(corp_ok, Ok(()));
        s.expire_tickets(t0);
        assert!(s.current_ticket("corp", TicketKind::Corp, t0).is_none());
    }
}
