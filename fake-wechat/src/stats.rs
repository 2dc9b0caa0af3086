//! Request counters, so tests can assert how often the engine went upstream.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{Value, json};

/// Counter snapshot. For the whole server, `apps` holds the same counters per
/// appid; in a per-app snapshot (`FakeWechat::app_stats`) it is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Classic `GET /cgi-bin/token` requests.
    pub token_requests: u64,
    /// `POST /cgi-bin/stable_token` without `force_refresh` (or unparseable).
    pub stable_requests: u64,
    /// `POST /cgi-bin/stable_token` with `force_refresh: true`.
    pub force_requests: u64,
    /// New tokens minted (a reused stable token does not count).
    pub issued: u64,
    /// Business API calls (`/cgi-bin/get_api_domain_ip`).
    pub api_requests: u64,
    /// Token requests answered by a scripted fault.
    pub faults_served: u64,
    /// WeCom `GET /cgi-bin/gettoken` requests.
    pub wecom_token_requests: u64,
    /// mp `GET /cgi-bin/ticket/getticket` requests (jsapi and wx_card).
    pub ticket_requests: u64,
    /// WeCom `GET /cgi-bin/get_jsapi_ticket` requests (corp tickets).
    pub corp_ticket_requests: u64,
    /// WeCom `GET /cgi-bin/ticket/get?type=agent_config` requests (agent tickets).
    pub agent_ticket_requests: u64,
    /// New tickets minted (a ticket handed back again does not count).
    pub tickets_issued: u64,
    /// WeCom business API calls (`/cgi-bin/getcallbackip`).
    pub wecom_api_requests: u64,
    /// Browser checks (`POST /_fake/jssdk_check`), and how many of them failed.
    pub check_requests: u64,
    pub check_failures: u64,
    pub apps: BTreeMap<String, Stats>,
}

impl Stats {
    /// All requests that reached a token endpoint, whatever the answer.
    pub fn token_endpoint_requests(&self) -> u64 {
        self.token_requests + self.stable_requests + self.force_requests
    }

    /// The `GET /_fake/stats` shape: counters plus an `apps` object of counters.
    pub fn to_json(&self) -> Value {
        let mut v = self.counters_json();
        let apps: serde_json::Map<String, Value> = self
            .apps
            .iter()
            .map(|(k, s)| (k.clone(), s.counters_json()))
            .collect();
        v["apps"] = Value::Object(apps);
        v
    }

    fn counters_json(&self) -> Value {
        json!({
            "token_requests": self.token_requests,
            "stable_requests": self.stable_requests,
            "force_requests": self.force_requests,
            "issued": self.issued,
            "api_requests": self.api_requests,
            "faults_served": self.faults_served,
            "wecom_token_requests": self.wecom_token_requests,
            "ticket_requests": self.ticket_requests,
            "corp_ticket_requests": self.corp_ticket_requests,
            "agent_ticket_requests": self.agent_ticket_requests,
            "tickets_issued": self.tickets_issued,
            "wecom_api_requests": self.wecom_api_requests,
            "check_requests": self.check_requests,
            "check_failures": self.check_failures,
        })
    }
}

/// Which credential endpoint a request hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenEndpoint {
    Classic,
    Stable,
    StableForce,
    /// WeCom's gettoken (the log's `appid` is the corpid).
    WecomToken,
    /// mp getticket, type jsapi or wx_card (the log's `appid` is the token's appid).
    Ticket,
    /// WeCom get_jsapi_ticket (the log's `appid` is the corpid).
    CorpTicket,
    /// WeCom ticket/get?type=agent_config (the log's `appid` is the corpid).
    AgentTicket,
}

impl TokenEndpoint {
    pub fn name(self) -> &'static str {
        match self {
            TokenEndpoint::Classic => "classic",
            TokenEndpoint::Stable => "stable",
            TokenEndpoint::StableForce => "stable_force",
            TokenEndpoint::WecomToken => "gettoken",
            TokenEndpoint::Ticket => "getticket",
            TokenEndpoint::CorpTicket => "get_jsapi_ticket",
            TokenEndpoint::AgentTicket => "agent_config",
        }
    }

    /// Whether faults without a `path` apply: the token endpoints, as before tickets existed.
    pub fn is_token(self) -> bool {
        matches!(
            self,
            TokenEndpoint::Classic
                | TokenEndpoint::Stable
                | TokenEndpoint::StableForce
                | TokenEndpoint::WecomToken
        )
    }
}

/// One token-endpoint request, recorded before any fault or delay applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub endpoint: TokenEndpoint,
    /// As sent by the client; `None` if absent or the body did not parse.
    pub appid: Option<String>,
    pub at: Instant,
}

#[derive(Default)]
pub struct StatsBook {
    total: Stats,
    log: Vec<RequestRecord>,
}

/// Per-app counters are kept inside `total.apps`; this picks the counter to bump.
#[derive(Clone, Copy)]
pub enum Counter {
    Issued,
    Api,
    FaultServed,
    TicketIssued,
    WecomApi,
    Check,
    CheckFailed,
}

impl StatsBook {
    pub fn token_request(&mut self, endpoint: TokenEndpoint, appid: Option<&str>, at: Instant) {
        fn bump(s: &mut Stats, endpoint: TokenEndpoint) {
            match endpoint {
                TokenEndpoint::Classic => s.token_requests += 1,
                TokenEndpoint::Stable => s.stable_requests += 1,
                TokenEndpoint::StableForce => s.force_requests += 1,
                TokenEndpoint::WecomToken => s.wecom_token_requests += 1,
                TokenEndpoint::Ticket => s.ticket_requests += 1,
                TokenEndpoint::CorpTicket => s.corp_ticket_requests += 1,
                TokenEndpoint::AgentTicket => s.agent_ticket_requests += 1,
            }
        }
        bump(&mut self.total, endpoint);
        if let Some(appid) = appid {
            bump(
                self.total.apps.entry(appid.to_string()).or_default(),
                endpoint,
            );
        }
        self.log.push(RequestRecord {
            endpoint,
            appid: appid.map(str::to_string),
            at,
        });
    }

    pub fn bump(&mut self, counter: Counter, appid: Option<&str>) {
        fn field(s: &mut Stats, counter: Counter) -> &mut u64 {
            match counter {
                Counter::Issued => &mut s.issued,
                Counter::Api => &mut s.api_requests,
                Counter::FaultServed => &mut s.faults_served,
                Counter::TicketIssued => &mut s.tickets_issued,
                Counter::WecomApi => &mut s.wecom_api_requests,
                Counter::Check => &mut s.check_requests,
                Counter::CheckFailed => &mut s.check_failures,
            }
        }
        *field(&mut self.total, counter) += 1;
        if let Some(appid) = appid {
            *field(
                self.total.apps.entry(appid.to_string()).or_default(),
                counter,
            ) += 1;
        }
    }

    pub fn snapshot(&self) -> Stats {
        self.total.clone()
    }

    pub fn app(&self, appid: &str) -> Stats {
        self.total.apps.get(appid).cloned().unwrap_or_default()
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        self.log.clone()
    }

    pub fn reset(&mut self) {
        *self = StatsBook::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_totals_and_per_app() {
        let mut b = StatsBook::default();
        let now = Instant::now();
        b.token_request(TokenEndpoint::Classic, Some("a"), now);
        b.token_request(TokenEndpoint::StableForce, Some("a"), now);
        b.token_request(TokenEndpoint::Stable, None, now);
        b.bump(Counter::Issued, Some("a"));
        b.bump(Counter::Api, None);
        let s = b.snapshot();
        assert_eq!(s.token_endpoint_requests(), 3);
        assert_eq!((s.issued, s.api_requests), (1, 1));
        let a = b.app("a");
        assert_eq!(
            (a.token_requests, a.force_requests, a.stable_requests),
            (1, 1, 0)
        );
        assert_eq!(b.app("zzz"), Stats::default());
        assert_eq!(b.requests().len(), 3);
        assert_eq!(s.to_json()["apps"]["a"]["issued"], 1);
        b.reset();
        assert_eq!(b.snapshot(), Stats::default());
        assert!(b.requests().is_empty());
        assert!(b.snapshot().to_json()["apps"].is_object());
    }
}
