//! JS-SDK tickets (#13): credentials with the access token's guarantees, kept per (id, kind).
//!
//! A `TicketCell` is the token's machinery for one ticket of one app: a lock-free `current`,
//! a single flight under `state` (never held across I/O), failures answered from a backoff or
//! cooldown, compare-and-invalidate, refresh ahead by the refresher, and the app's shared store
//! (`source::obtain`, under the store key `id@kind`: one fetch per fleet). What differs is
//! the fetch, which uses the app's access token (refreshing it passively, once, when the ticket
//! endpoint rejects it), and lifetimes: WeChat hands a ticket asked for while it is valid back
//! with a full `expires_in`, so a ticket's life counts from when that value was first seen and
//! a re-fetch of the same value never extends it (`Seen`, and `sticky` records in a store).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::app::{App, AppConfig};
use crate::error::{Error, TOKEN_REJECTED_ERRCODES};
use crate::events::{self, Level, kind};
use crate::flight::{Flights, Turn};
use crate::fork;
use crate::options::{Options, Platform};
use crate::pacing::{Failure, HourlyBudget, PassiveLimiter};
use crate::source::{self, Held, Need, Obtained, Outcome, StoreHealth};
use crate::stats::Counters;
use crate::status::Status;
use crate::sync::{LockExt, wait_until};
use crate::token::Token;
use crate::upstream::{self, CentralCall};

/// WeCom's limits on ticket fetches (its documentation): corp tickets 400 an hour per corp,
/// agent tickets 100 an hour per app. Enforced locally so that a loop never reaches them.
pub const WECOM_CORP_TICKETS_PER_HOUR: u32 = 400;
pub const WECOM_AGENT_TICKETS_PER_HOUR: u32 = 100;

/// The kinds of ticket, by platform: mp "jsapi" and "wx_card" (getticket), WeCom "jsapi" (the
/// corp ticket) and "agent_config" (the agent ticket).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TicketKind {
    Jsapi,
    WxCard,
    AgentConfig,
}

impl TicketKind {
    pub const ALL: [TicketKind; 3] = [
        TicketKind::Jsapi,
        TicketKind::WxCard,
        TicketKind::AgentConfig,
    ];

    /// The kind named `kind`, if `platform` has it.
    pub fn parse(kind: &str, platform: &Platform) -> Result<TicketKind, Error> {
        match (kind, platform) {
            ("jsapi", _) => Ok(TicketKind::Jsapi),
            ("wx_card", Platform::Mp) => Ok(TicketKind::WxCard),
            ("agent_config", Platform::Wecom { .. }) => Ok(TicketKind::AgentConfig),
            (other, Platform::Mp) => Err(Error::invalid(format!(
                "ticket kind {:?} is not one of an mp app's: \"jsapi\" or \"wx_card\"",
                shown(other)
            ))),
            (other, Platform::Wecom { .. }) => Err(Error::invalid(format!(
                "ticket kind {:?} is not one of a WeCom id's: \"jsapi\" or \"agent_config\"",
                shown(other)
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TicketKind::Jsapi => "jsapi",
            TicketKind::WxCard => "wx_card",
            TicketKind::AgentConfig => "agent_config",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The endpoint's path and query up to `access_token=`.
    fn endpoint(self, platform: &Platform) -> &'static str {
        match (self, platform) {
            (TicketKind::Jsapi, Platform::Mp) => "/cgi-bin/ticket/getticket?type=jsapi&",
            (TicketKind::WxCard, _) => "/cgi-bin/ticket/getticket?type=wx_card&",
            (TicketKind::Jsapi, Platform::Wecom { .. }) => "/cgi-bin/get_jsapi_ticket?",
            (TicketKind::AgentConfig, _) => "/cgi-bin/ticket/get?type=agent_config&",
        }
    }
}

fn shown(s: &str) -> String {
    s.chars().take(32).collect()
}

/// The ticket value last installed and the expiry it was given when first seen: kept across
/// withdrawals, so a re-fetch that hands back the same ticket never extends its life.
struct Seen {
    value: Box<str>,
    requested_at: Instant,
    expires_at: Instant,
    /// How long its first fetch took: WeChat's expiry is at most this much later than ours.
    latency: Duration,
}

#[derive(Default)]
struct State {
    flights: Flights,
    /// A ticket a caller reported (its page's wx.config failed with "invalid signature").
    rejected: Option<Box<str>>,
    /// A refresh ahead got the current value back: the next refresh is at its expiry.
    renewed: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Reason {
    Demand,
    Background,
    Invalidated,
}

/// One ticket kind of one app.
pub struct TicketCell {
    kind: TicketKind,
    current: ArcSwapOption<Token>,
    generation: AtomicU64,
    state: Mutex<State>,
    done: Condvar,
    seen: Mutex<Option<Seen>>,
    passive: Mutex<PassiveLimiter>,
    /// Ticket fetches in the last hour (WeCom's hourly limits).
    hourly: Mutex<HourlyBudget>,
    health: StoreHealth,
    counters: Counters,
}

/// WeCom's corp ticket limit is per corp, across every id (secret) of the corp.
static CORP_BUDGETS: Mutex<Vec<(String, HourlyBudget)>> = Mutex::new(Vec::new());

/// Lands a flight whose fetch panicked, so waiters are not left waiting for it.
struct LandOnUnwind<'a>(&'a TicketCell);

impl Drop for LandOnUnwind<'_> {
    fn drop(&mut self) {
        self.0.state.lock_ok().flights.land_panicked("ticket");
        self.0.done.notify_all();
    }
}

/// The app's three ticket cells, indexed by `TicketKind`.
pub struct Tickets([TicketCell; 3]);

impl Default for Tickets {
    fn default() -> Tickets {
        Tickets(TicketKind::ALL.map(TicketCell::new))
    }
}

impl Tickets {
    pub fn cell(&self, kind: TicketKind) -> &TicketCell {
        &self.0[kind.index()]
    }

    pub fn cells(&self) -> impl Iterator<Item = &TicketCell> {
        self.0.iter()
    }

    /// A new secret, corp or upstream: tickets fetched under the old one are dropped.
    pub fn reset(&self) {
        for c in &self.0 {
            let mut st = c.state.lock_ok();
            st.flights.config_epoch += 1;
            st.flights.failure = None;
            st.flights.bg_failure = None;
            st.flights.last_error = None;
            st.rejected = None;
            st.renewed = false;
            c.withdraw();
        }
    }

    pub fn fork_lock(&'static self) {
        for c in &self.0 {
            fork::hold(c.state.lock_ok());
            fork::hold(c.seen.lock_ok());
            fork::hold(c.passive.lock_ok());
            fork::hold(c.hourly.lock_ok());
            c.counters.fork_lock();
        }
    }
}

/// Locks the process-wide corp ticket budgets for `fork()`, once, after every app's locks
/// (nothing takes an app's lock while holding it).
pub fn fork_lock_globals() {
    fork::hold(CORP_BUDGETS.lock_ok());
}

impl TicketCell {
    fn new(kind: TicketKind) -> TicketCell {
        TicketCell {
            kind,
            current: ArcSwapOption::empty(),
            generation: AtomicU64::new(0),
            state: Mutex::new(State::default()),
            done: Condvar::new(),
            seen: Mutex::new(None),
            passive: Mutex::new(PassiveLimiter::default()),
            hourly: Mutex::new(HourlyBudget::default()),
            health: StoreHealth::default(),
            counters: Counters::default(),
        }
    }

    /// The shared store's key of this ticket: `id@kind` (see `store::split_key`).
    fn key(&self, app: &App) -> String {
        format!("{}@{}", app.appid(), self.kind.name())
    }

    fn usable(&self, now: Instant) -> Option<Arc<Token>> {
        self.current.load_full().filter(|t| t.is_usable(now))
    }

    /// Runs `f` on a usable ticket: the cached one without I/O, else after a shared fetch.
    pub fn with_ticket<R>(&self, app: &App, f: impl FnOnce(&Token) -> R) -> Result<R, Error> {
        {
            let guard = self.current.load();
            if let Some(t) = guard.as_deref()
                && t.is_usable(Instant::now())
            {
                return Ok(f(t));
            }
        }
        let t = self.acquire(app)?;
        Ok(f(&t))
    }

    fn acquire(&self, app: &App) -> Result<Arc<Token>, Error> {
        let mut st = self.state.lock_ok();
        let mut awaited: Option<u64> = None;
        loop {
            let now = Instant::now();
            if let Some(t) = self.usable(now) {
                return Ok(t);
            }
            if let Turn::Wait = st.flights.turn(&mut awaited, now)? {
                st = self.wait_on_flight(app, st)?;
                continue;
            }
            match self.fly(app, st, Reason::Demand) {
                Some(result) => return result,
                None => st = self.state.lock_ok(),
            }
        }
    }

    fn wait_on_flight<'a>(
        &self,
        app: &App,
        st: MutexGuard<'a, State>,
    ) -> Result<MutexGuard<'a, State>, Error> {
        // A ticket fetch may first wait for the token's own fetch (and retry once).
        let limit = app.config().options.timeout * 4 + Duration::from_secs(1);
        let (st, timed_out) = wait_until(&self.done, st, Instant::now() + limit);
        if timed_out && st.flights.live() {
            return Err(Error::new(
                Status::Network,
                "timed out waiting for the ticket fetch in progress",
            ));
        }
        Ok(st)
    }

    /// A page reported `stale` (wx.config said "invalid signature"): if it is still the cached
    /// ticket it is withdrawn and replaced by one fetch, however many callers report it; if the
    /// cache has moved on, nothing happens. Paced like the token's passive refresh.
    pub fn invalidate(&self, app: &App, stale: &str) -> Result<(), Error> {
        let mut st = self.state.lock_ok();
        while st.flights.live() {
            st = self.wait_on_flight(app, st)?;
        }
        match self.current.load_full() {
            Some(cur) if cur.value() == stale => {}
            _ => return Ok(()),
        }
        let config = app.config();
        if config.options.central.is_none()
            && let Err(e) = self
                .passive
                .lock_ok()
                .try_acquire(Instant::now(), &config.options)
        {
            drop(st);
            events::emit(
                Level::Warn,
                app.appid(),
                kind::PASSIVE_REFRESH_LIMITED,
                e.status(),
                0,
                format_args!(
                    "{} ticket: {e}; the current ticket stays in service",
                    self.kind.name()
                ),
            );
            return Err(e);
        }
        st.rejected = Some(stale.into());
        st.renewed = false;
        self.withdraw();
        if let Some(e) = st.flights.cooling(Instant::now()) {
            return Err(e);
        }
        st.flights.start();
        match self.fly(app, st, Reason::Invalidated) {
            Some(result) => result.map(drop),
            None => Ok(()),
        }
    }

    /// When the refresher should next look at this ticket: `refresh_ahead` before expiry, or
    /// at its expiry once a refresh ahead got the same ticket back (WeChat mints a new one
    /// only then); with a shared store, at least every `store_sync`. Pushed back by failures.
    pub fn next_due(&self, app: &App) -> Option<Instant> {
        let st = self.state.lock_ok();
        self.due_locked(app, &st)
    }

    fn due_locked(&self, app: &App, st: &State) -> Option<Instant> {
        if st.flights.live() {
            return None;
        }
        let t = self.current.load_full()?;
        let config = app.config();
        let options = &config.options;
        let due = st.flights.due(
            if st.renewed {
                t.expires_at()
            } else {
                t.refresh_at(options.refresh_ahead)
            },
            options,
        );
        // At its expiry too: the replacement is fetched before a caller has to wait for it.
        (due <= t.expires_at()).then_some(due)
    }

    pub fn claim_refresh(&self, app: &App, now: Instant) -> bool {
        let mut st = self.state.lock_ok();
        match self.due_locked(app, &st) {
            Some(due) if due <= now => {
                st.flights.claim();
                true
            }
            _ => false,
        }
    }

    pub fn run_claimed_refresh(&self, app: &App) {
        let mut st = self.state.lock_ok();
        if st.flights.take_claim() {
            let _ = self.fly(app, st, Reason::Background);
        }
    }

    /// Obtains the ticket for the flight the caller marked, publishes the outcome and wakes
    /// waiters. `None`: the app was reconfigured meanwhile and the result dropped.
    fn fly(
        &self,
        app: &App,
        st: MutexGuard<'_, State>,
        reason: Reason,
    ) -> Option<Result<Arc<Token>, Error>> {
        let config = app.config();
        let config_epoch = st.flights.config_epoch;
        let rejected = st.rejected.clone();
        let need = match (reason, rejected.as_deref()) {
            (Reason::Background, _) => Need::Refresh,
            (_, Some(stale)) => Need::Replace(stale),
            (_, None) => Need::Usable,
        };
        drop(st);
        let unwinding = LandOnUnwind(self);
        let key = self.key(app);
        let held = self.usable(Instant::now()).map(|t| Held {
            token: t.value().to_owned(),
            requested_at: t.requested_at(),
            lifetime: t.lifetime(),
        });
        let cx = source::Ctx {
            appid: &key,
            options: &config.options,
            counters: &self.counters,
            health: &self.health,
            held,
            sticky: true,
        };
        let outcome = source::obtain(&cx, need, |_mode| {
            self.fetch(app, &config, rejected.as_deref())
        });
        let mut st = self.state.lock_ok();
        let now = Instant::now();
        let mut fetched_event = None;
        let mut failed_event = None;
        let landing = if st.flights.config_epoch != config_epoch {
            st.flights.last_error = None;
            None
        } else {
            let (result, shared) = match outcome {
                Outcome::Got(got) => {
                    let same = self
                        .current
                        .load()
                        .as_deref()
                        .is_some_and(|c| c.value() == got.fetched.access_token);
                    st.flights.succeeded(now);
                    st.rejected = None;
                    // The value in service came back from a refresh ahead (from WeChat or
                    // the fleet's record): nothing newer exists before it expires.
                    if reason == Reason::Background && same {
                        st.renewed = true;
                    } else if !same {
                        st.renewed = false;
                    }
                    let from_upstream = !got.from_store;
                    // The fleet's pace refused the replacement: the reported ticket stays in
                    // service, and only its reporter learns it was refused.
                    let refused = got
                        .refused
                        .clone()
                        .filter(|_| reason == Reason::Invalidated);
                    let t = self.install(got);
                    if from_upstream {
                        fetched_event = Some((t.clone(), same));
                    }
                    if let Some(e) = refused {
                        (Err(e), None)
                    } else if t.is_usable(now) {
                        (Ok(t), None)
                    } else {
                        // WeChat keeps handing back a ticket its first sighting says has
                        // expired: back off rather than ask again in a loop.
                        let e = Error::new(
                            Status::Network,
                            "WeChat handed back a ticket that has expired by the count from its first sighting; asking again after a backoff",
                        );
                        let failure = Failure::after(
                            st.flights.failure.as_ref(),
                            e.clone(),
                            now,
                            &config.options,
                        );
                        failed_event = Some((e.clone(), failure.retry_at - now));
                        st.flights.failure = Some(failure.clone());
                        st.flights.bg_failure = Some(failure);
                        (Err(e.clone()), Some(e))
                    }
                }
                Outcome::Busy => (Err(st.flights.busy(now, "ticket")), None),
                Outcome::Failed(e) => {
                    self.counters.failure(&e);
                    if reason != Reason::Background {
                        st.rejected = None;
                    }
                    let retry_in =
                        st.flights
                            .failed(reason == Reason::Background, &e, now, &config.options);
                    failed_event = Some((e.clone(), retry_in));
                    (Err(e.clone()), Some(e))
                }
            };
            st.flights.last_error = shared;
            Some(result)
        };
        st.flights.land();
        drop(st);
        std::mem::forget(unwinding);
        self.done.notify_all();
        app.schedule_refresh();
        self.report(app, fetched_event, failed_event);
        landing
    }

    /// Tells the operator how a flight ended; no engine lock held.
    fn report(
        &self,
        app: &App,
        fetched: Option<(Arc<Token>, bool)>,
        failed: Option<(Error, Duration)>,
    ) {
        if let Some((t, same)) = fetched {
            events::emit(
                Level::Info,
                app.appid(),
                kind::TICKET_FETCHED,
                Status::Ok,
                0,
                format_args!(
                    "{} {} ticket {} fetched, valid for {} s more",
                    if same { "the same" } else { "a new" },
                    self.kind.name(),
                    events::token_hint(t.value()),
                    t.remaining(Instant::now()).as_secs()
                ),
            );
        }
        if let Some((e, retry_in)) = failed {
            events::emit(
                Level::Warn,
                app.appid(),
                kind::REFRESH_FAILED,
                e.status(),
                e.errcode(),
                format_args!(
                    "{} ticket fetch failed: {}; next attempt in {} ms at the earliest",
                    self.kind.name(),
                    e.message(),
                    retry_in.as_millis()
                ),
            );
        }
    }

    /// Installs a ticket. A value seen before keeps the expiry it had when first seen,
    /// whatever `expires_in` WeChat answered this time.
    fn install(&self, got: Obtained) -> Arc<Token> {
        let value = got.fetched.access_token;
        let mut requested_at = got.requested_at;
        let mut expires_at = requested_at + got.fetched.expires_in;
        let mut seen = self.seen.lock_ok();
        match seen.as_mut() {
            Some(s) if *s.value == *value => {
                if s.expires_at < expires_at {
                    requested_at = s.requested_at;
                    expires_at = s.expires_at;
                }
                s.requested_at = requested_at;
                s.expires_at = expires_at;
            }
            _ => {
                *seen = Some(Seen {
                    value: value.as_str().into(),
                    requested_at,
                    expires_at,
                    latency: got.requested_at.elapsed(),
                });
            }
        }
        drop(seen);
        let current = self.current.load_full();
        let generation = match &current {
            Some(cur) if cur.value() == value => cur.generation,
            _ => self.generation.load(Ordering::Relaxed) + 1,
        };
        let lifetime = expires_at.saturating_duration_since(requested_at);
        let t = Arc::new(Token::new(value, requested_at, lifetime, generation));
        self.current.store(Some(t.clone()));
        self.generation.store(generation, Ordering::Release);
        t
    }

    fn withdraw(&self) {
        let next = self.generation.load(Ordering::Relaxed) + 1;
        self.current.store(None);
        self.generation.store(next, Ordering::Release);
    }

    /// One fetch: from the central server in client mode, else from WeChat with the app's
    /// token, within WeCom's hourly limits.
    fn fetch(
        &self,
        app: &App,
        config: &AppConfig,
        rejected: Option<&str>,
    ) -> Result<Obtained, Error> {
        let options = &config.options;
        if let Some(central) = &options.central {
            // The central server judges the report against its own ticket (one fetch for
            // the whole fleet) and answers with the ticket in service.
            let call = match rejected {
                Some(stale) => CentralCall::TicketInvalidate(self.kind.name(), stale),
                None => CentralCall::Ticket(self.kind.name()),
            };
            let requested_at = Instant::now();
            let fetched = self
                .counters
                .timed(|| upstream::fetch_central(app.appid(), options, central, call))?;
            return Ok(Obtained::fetched(fetched, requested_at));
        }
        self.take_hourly(options)?;
        let mut got = self.fetch_with_token(app, options)?;
        // WeChat re-served the ticket our count says has just expired: its own count started
        // up to one round trip later. Ask again once that has passed (a few times at most).
        for _ in 0..3 {
            let wait = {
                let seen = self.seen.lock_ok();
                match seen.as_ref() {
                    Some(s)
                        if *s.value == *got.fetched.access_token
                            && s.expires_at <= Instant::now() + Duration::from_millis(50) =>
                    {
                        s.latency.max(Duration::from_millis(50))
                    }
                    _ => break,
                }
            };
            std::thread::sleep(wait);
            got = self.fetch_with_token(app, options)?;
        }
        Ok(got)
    }

    /// getticket with the app's token; if WeChat says the token is bad (40001/42001/40014),
    /// the token is passively refreshed (compare-and-invalidate: one fetch however many
    /// tickets report it) and the ticket asked for once more.
    fn fetch_with_token(&self, app: &App, options: &Options) -> Result<Obtained, Error> {
        let path = self.kind.endpoint(&options.platform);
        let ask = |token: &str| {
            let requested_at = Instant::now();
            self.counters
                .timed(|| upstream::fetch_ticket(options, path, token))
                .map(|f| Obtained::fetched(f, requested_at))
        };
        let token = app.with_token(|t| t.value().to_owned())?;
        match ask(&token) {
            Err(e)
                if e.status() == Status::WechatError
                    && TOKEN_REJECTED_ERRCODES.contains(&e.errcode()) =>
            {
                if let Err(refused) = app.invalidate(Some(&token)) {
                    // The token's own pacing refused the refresh: report the ticket's error.
                    if refused.status() == Status::RateLimited {
                        return Err(e);
                    }
                    return Err(refused);
                }
                let fresh = app.with_token(|t| t.value().to_owned())?;
                ask(&fresh)
            }
            other => other,
        }
    }

    /// WeCom: at most 400 corp tickets an hour per corp and 100 agent tickets an hour per app
    /// (per process; a shared store makes it per fleet in practice). RATE_LIMITED beyond.
    fn take_hourly(&self, options: &Options) -> Result<(), Error> {
        let Platform::Wecom { corpid, .. } = &options.platform else {
            return Ok(());
        };
        let now = Instant::now();
        let ok = match self.kind {
            TicketKind::AgentConfig => self
                .hourly
                .lock_ok()
                .try_acquire(now, WECOM_AGENT_TICKETS_PER_HOUR),
            _ => {
                let mut budgets = CORP_BUDGETS.lock_ok();
                let i = match budgets.iter().position(|(c, _)| c == corpid) {
                    Some(i) => i,
                    None => {
                        budgets.push((corpid.clone(), HourlyBudget::default()));
                        budgets.len() - 1
                    }
                };
                budgets[i].1.try_acquire(now, WECOM_CORP_TICKETS_PER_HOUR)
            }
        };
        if ok {
            return Ok(());
        }
        let (what, limit) = match self.kind {
            TicketKind::AgentConfig => ("agent tickets per app", WECOM_AGENT_TICKETS_PER_HOUR),
            _ => ("corp tickets per corp", WECOM_CORP_TICKETS_PER_HOUR),
        };
        Err(Error::new(
            Status::RateLimited,
            format!("WeCom allows {limit} {what} an hour; that many were fetched in the last hour"),
        ))
    }
}

/// The JSON `wx.config` (mp, WeCom corp ticket) or `wx.agentConfig` (WeCom agent ticket)
/// takes, with a fresh nonce and the current time.
pub fn config_json(
    options: &Options,
    appid: &str,
    kind: TicketKind,
    ticket: &str,
    url: &str,
) -> Result<String, Error> {
    let nonce = crate::jssdk::nonce()?;
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .to_string();
    let signature = crate::jssdk::signature(ticket, &nonce, &timestamp, url);
    let v = match (&options.platform, kind) {
        (Platform::Mp, TicketKind::Jsapi) => serde_json::json!({
            "appId": appid, "timestamp": timestamp, "nonceStr": nonce, "signature": signature,
        }),
        (Platform::Wecom { corpid, .. }, TicketKind::Jsapi) => serde_json::json!({
            "appId": corpid, "timestamp": timestamp, "nonceStr": nonce, "signature": signature,
        }),
        (Platform::Wecom { corpid, agentid }, TicketKind::AgentConfig) => {
            let agentid = agentid.ok_or_else(|| {
                Error::invalid("agent_config needs the \"agentid\" option of this WeCom id")
            })?;
            serde_json::json!({
                "corpid": corpid, "agentid": agentid.to_string(), "timestamp": timestamp,
                "nonceStr": nonce, "signature": signature,
            })
        }
        _ => {
            return Err(Error::invalid(
                "wx.config takes the \"jsapi\" ticket (\"agent_config\" for WeCom's wx.agentConfig); a wx_card ticket signs cards: use wx_card_signature",
            ));
        }
    };
    Ok(v.to_string())
}
