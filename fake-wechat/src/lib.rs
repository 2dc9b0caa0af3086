//! A local fake of WeChat's access_token endpoints with scriptable faults.
//!
//! It models the semantics a token cache must get right (classic tokens
//! superseding each other with an overlap, stable tokens being reused, force
//! refresh, errcodes) and lets tests script upstream failures. Everything is
//! served on 127.0.0.1 with a hand-written HTTP/1.1 server, one thread per
//! connection, so faults like resets and truncated bodies are possible.
//!
//! ```no_run
//! use wx_fake::{FakeConfig, FakeWechat, Fault};
//! let fake = FakeWechat::start(FakeConfig::default().with_app("wx1", "s3cret")).unwrap();
//! fake.push_fault(Fault::busy().times(2));
//! // point the engine at fake.base_url() ...
//! assert_eq!(fake.stats().token_requests, 0);
//! ```

mod control;
mod faults;
mod http;
mod server;
mod shared;
mod state;
mod stats;
mod tickets;
mod token;
mod wechat;

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

pub use faults::{Fault, FaultKind, HUGE_BODY_BYTES, REDIRECT_TARGET};
pub use state::{MAX_TOKEN_LEN, MIN_TOKEN_LEN};
pub use stats::{RequestRecord, Stats, TokenEndpoint};
pub use tickets::{
    AGENT_TICKET_PATH, CORP_TICKET_PATH, TICKET_PATH, TicketKind, WECOM_API_PATH, WECOM_TOKEN_PATH,
};

use server::Server;
use shared::Shared;
use state::{Settings, TokenStatus};

/// Starting configuration; everything but `apps` can be changed while running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeConfig {
    /// `expires_in` of newly issued tokens, in seconds.
    pub lifetime_secs: u64,
    /// Length of newly issued tokens, `MIN_TOKEN_LEN..=MAX_TOKEN_LEN`.
    pub token_len: usize,
    /// How long a superseded token keeps working, in seconds.
    pub overlap_secs: u64,
    /// Delay added to every token-endpoint answer, in milliseconds.
    pub delay_ms: u64,
    /// (appid, secret) pairs.
    pub apps: Vec<(String, String)>,
    /// `expires_in` of JS-SDK tickets, in seconds.
    pub ticket_lifetime_secs: u64,
    /// WeCom (corpid, secret, agentid) triples: one corp has several secrets.
    pub wecom: Vec<(String, String, Option<u64>)>,
}

impl Default for FakeConfig {
    /// WeChat's real numbers: 7200 s tokens of 136 chars, 300 s overlap.
    fn default() -> Self {
        FakeConfig {
            lifetime_secs: 7200,
            token_len: 136,
            overlap_secs: 300,
            delay_ms: 0,
            apps: Vec::new(),
            ticket_lifetime_secs: 7200,
            wecom: Vec::new(),
        }
    }
}

impl FakeConfig {
    pub fn with_app(mut self, appid: &str, secret: &str) -> Self {
        self.apps.push((appid.to_string(), secret.to_string()));
        self
    }

    /// A WeCom corp secret (an app's, contacts sync's, ...), with the app's agentid if any.
    pub fn with_wecom(mut self, corpid: &str, secret: &str, agentid: Option<u64>) -> Self {
        self.wecom
            .push((corpid.to_string(), secret.to_string(), agentid));
        self
    }
}

/// A running fake. Dropping it (or [`FakeWechat::stop`]) shuts the listener
/// down, wakes sleeping slow/hang connections and joins every thread.
pub struct FakeWechat {
    shared: Arc<Shared>,
    server: Server,
}

impl FakeWechat {
    /// Listens on an ephemeral port of 127.0.0.1.
    pub fn start(cfg: FakeConfig) -> io::Result<FakeWechat> {
        FakeWechat::start_on("127.0.0.1:0", cfg)
    }

    /// Listens on `addr`, which must be a loopback address: the fake accepts
    /// secrets in clear text and must never be reachable from outside.
    pub fn start_on(addr: &str, cfg: FakeConfig) -> io::Result<FakeWechat> {
        Shared::check_token_len(cfg.token_len)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let listener = bind_loopback(addr)?;
        let shared = Arc::new(Shared::new(Settings {
            lifetime_secs: cfg.lifetime_secs,
            token_len: cfg.token_len,
            overlap_secs: cfg.overlap_secs,
            delay_ms: cfg.delay_ms,
            ticket_lifetime_secs: cfg.ticket_lifetime_secs,
        }));
        for (appid, secret) in &cfg.apps {
            shared.add_app(appid, secret);
        }
        for (corpid, secret, agentid) in &cfg.wecom {
            shared.add_wecom(corpid, secret, *agentid);
        }
        let server = Server::start(listener, shared.clone())?;
        Ok(FakeWechat { shared, server })
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    pub fn port(&self) -> u16 {
        self.server.addr().port()
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Registers an app, or replaces its secret (its tokens stay valid).
    pub fn add_app(&self, appid: &str, secret: &str) {
        self.shared.add_app(appid, secret);
    }

    /// Adds a WeCom corp secret, or changes its agentid.
    pub fn add_wecom(&self, corpid: &str, secret: &str, agentid: Option<u64>) {
        self.shared.add_wecom(corpid, secret, agentid);
    }

    /// `expires_in` of tickets minted from now on.
    pub fn set_ticket_lifetime(&self, secs: u64) {
        self.shared
            .update_settings(|s| s.ticket_lifetime_secs = secs);
    }

    /// Every ticket expires now; the next request mints new ones.
    pub fn expire_tickets(&self) {
        self.shared.expire_tickets();
    }

    /// The ticket valid now: `owner` is the appid (Jsapi, WxCard), the corpid (Corp) or
    /// "corpid/agentid" (Agent).
    pub fn current_ticket(&self, owner: &str, kind: TicketKind) -> Option<String> {
        self.shared.current_ticket(owner, kind)
    }

    /// The browser's `wx.config` / `wx.agentConfig` (see `POST /_fake/jssdk_check`): `Ok` if
    /// the config JSON plus `url` carries a signature of the ticket valid now.
    pub fn jssdk_check(&self, config: &serde_json::Value, url: &str) -> Result<(), String> {
        let mut body = config.clone();
        body["url"] = serde_json::Value::from(url);
        let verdict = tickets::check(&self.shared, body.to_string().as_bytes())?;
        match verdict["ok"].as_bool() {
            Some(true) => Ok(()),
            _ => Err(verdict["errmsg"].as_str().unwrap_or("").to_string()),
        }
    }

    pub fn set_lifetime(&self, secs: u64) {
        self.shared.update_settings(|s| s.lifetime_secs = secs);
    }

    /// Panics outside `MIN_TOKEN_LEN..=MAX_TOKEN_LEN`: that is a bug in the test.
    pub fn set_token_len(&self, n: usize) {
        let n = Shared::check_token_len(n).unwrap_or_else(|e| panic!("{e}"));
        self.shared.update_settings(|s| s.token_len = n);
    }

    pub fn set_overlap(&self, secs: u64) {
        self.shared.update_settings(|s| s.overlap_secs = secs);
    }

    pub fn set_delay_ms(&self, ms: u64) {
        self.shared.update_settings(|s| s.delay_ms = ms);
    }

    /// Logs one line per request (method, path, status) to stderr.
    pub fn set_verbose(&self, on: bool) {
        self.shared.verbose.store(on, Ordering::Relaxed);
    }

    /// Queues a fault behind those already queued. A fault with `count == 0` is ignored.
    pub fn push_fault(&self, f: Fault) {
        self.shared.push_fault(f);
    }

    pub fn clear_faults(&self) {
        self.shared.clear_faults();
    }

    /// Faults not yet used up, in the order they will apply.
    pub fn pending_faults(&self) -> Vec<Fault> {
        self.shared.pending_faults()
    }

    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Counters of one appid (all zero if it was never seen); `apps` is empty.
    pub fn app_stats(&self, appid: &str) -> Stats {
        self.shared.app_stats(appid)
    }

    /// Every token-endpoint request since start or the last `reset_stats`, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.requests()
    }

    /// Polls the counters until `pred` holds or `timeout` passes; for engines
    /// that fetch in the background. Returns whether `pred` held.
    pub fn wait_until(&self, timeout: Duration, mut pred: impl FnMut(&Stats) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&self.stats()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Zeroes every counter and forgets the request log.
    pub fn reset_stats(&self) {
        self.shared.reset_stats();
    }

    /// The business API answers 40001 for `token` from now on.
    pub fn revoke(&self, token: &str) {
        self.shared.revoke(token);
    }

    /// Every token of the app becomes expired (42001), as if two hours had passed.
    pub fn expire_app(&self, appid: &str) {
        self.shared.expire_app(appid);
    }

    /// Whether the business API would accept `token` right now.
    pub fn is_valid(&self, token: &str) -> bool {
        self.shared.token_status(token) == TokenStatus::Valid
    }

    /// The latest token issued for the app, classic or stable, whichever is newer.
    pub fn current_token(&self, appid: &str) -> Option<String> {
        self.shared.current_token(appid)
    }

    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for FakeWechat {
    fn drop(&mut self) {
        self.server.shutdown();
    }
}

/// Binds the first address `addr` resolves to, after checking that every
/// resolved address is loopback.
pub(crate) fn bind_loopback(addr: &str) -> io::Result<TcpListener> {
    let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{addr} resolves to no address"),
        ));
    }
    if let Some(bad) = addrs.iter().find(|a| !a.ip().is_loopback()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing to listen on non-loopback address {bad}"),
        ));
    }
    TcpListener::bind(&addrs[..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_shareable_across_test_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<FakeWechat>();
        assert_send_sync::<Fault>();
        assert_send_sync::<Stats>();
    }
}
