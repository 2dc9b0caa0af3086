//! One registered app: its cached token, and the single-flight state machine that fetches,
//! refreshes and invalidates it.
//!
//! Readers of a usable token touch only `current` (an `ArcSwapOption`: no lock, no shared
//! write), so they never wait on a fetch. Everything else goes through `state`, a mutex that
//! is never held across I/O: a fetch marks itself in flight, unlocks, talks to WeChat, and
//! relocks to publish. Waiters sleep on `done`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::error::Error;
use crate::events::{self, Level, kind};
use crate::flight::{Flights, Turn};
use crate::fork;
use crate::options::Options;
use crate::pacing::{ForceLimiter, PassiveLimiter};
use crate::refresher;
use crate::secret::Secret;
use crate::source::{self, Held, Mode, Need, Obtained, Outcome, StoreHealth};
use crate::stats::{AppStats, Counters};
use crate::status::Status;
use crate::store::StoreSpec;
use crate::sync::{LockExt, wait_until};
use crate::token::Token;
use crate::token_cell::TokenCell;
use crate::upstream::{self, CentralCall, Fetched};

/// What the engine needs to ask WeChat for an app's token.
#[derive(Debug)]
pub struct AppConfig {
    /// `None` in client mode, where the central server holds it.
    pub secret: Option<Secret>,
    pub options: Options,
}

impl AppConfig {
    /// Whether a token fetched under `self` is still meaningful under `other`.
    fn same_upstream(&self, other: &AppConfig) -> bool {
        self.secret == other.secret
            && self.options.api_base == other.options.api_base
            && self.options.platform == other.options.platform
            && self.options.endpoint == other.options.endpoint
            && self.options.store == other.options.store
            && self.options.central == other.options.central
    }
}

pub struct App {
    appid: Box<str>,
    config: ArcSwap<AppConfig>,
    current: ArcSwapOption<Token>,
    /// Mirrors `current`'s generation; published after `current` changes, so a binding that
    /// sees a new value here is guaranteed to find the new token in `current`.
    generation: AtomicU64,
    state: Mutex<State>,
    done: Condvar,
    /// Separate from `state` because fetches consult them while `state` is unlocked.
    force: Mutex<ForceLimiter>,
    /// Paces fetches started by `invalidate(current token)` (#11 item 2).
    passive: Mutex<PassiveLimiter>,
    /// Whether the shared store answered last time (for the store_unavailable/recovered
    /// events); the fallback budget itself is per host, kept by the store module.
    store_health: StoreHealth,
    counters: Counters,
    /// The generation of the last token reported as expired (`token_expired`), so each
    /// expiry is reported once.
    expiry_reported: AtomicU64,
    /// The refresher's mark of where this app sits in its timer queue.
    pub(crate) queue_mark: refresher::QueueMark,
    /// A copy of `current` for `wx_token_get`'s cached path, changed with it; packed with the
    /// other apps' cells (`hot_memory`), and what the app table points at.
    cell: &'static TokenCell,
    /// The app's JS-SDK tickets (#13), each with this same machinery, fetched with its token;
    /// made on first use (an app that never asks for a ticket pays one pointer), never freed.
    tickets: std::sync::atomic::AtomicPtr<crate::ticket::Tickets>,
}

#[derive(Default)]
struct State {
    flights: Flights,
    /// A token a caller reported as rejected by WeChat. stable_token's normal mode may hand
    /// the same one back; then, and only then, a forced refresh is worth WeChat's limits.
    /// Set only through `State::reject`, read only through `State::rejected_here`.
    rejected: Option<Rejected>,
}

/// A rejected token, and the fork epoch of the process where it was reported.
struct Rejected {
    token: Box<str>,
    epoch: u64,
}

impl State {
    /// Records `token` as reported rejected in this process.
    fn reject(&mut self, token: &str) {
        self.rejected = Some(Rejected {
            token: token.into(),
            epoch: fork::epoch(),
        });
    }

    /// The rejected token, if reported in this very process: a fork child does not inherit its
    /// parent's report (#11 item 4), which would make its plain gets chase a forced refresh.
    fn rejected_here(&self) -> Option<&str> {
        self.rejected
            .as_ref()
            .filter(|r| r.epoch == fork::epoch())
            .map(|r| &*r.token)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Reason {
    /// A caller needs a token and none is usable.
    Demand,
    /// Refresh ahead of expiry, by the refresher.
    Background,
    /// A caller reported the cached token as rejected.
    Invalidated,
    /// A caller asked for a forced refresh.
    Forced,
}

impl Reason {
    fn describe(self) -> &'static str {
        match self {
            Reason::Demand => "fetch on demand",
            Reason::Background => "refresh ahead of expiry",
            Reason::Invalidated => "replacement of a rejected token",
            Reason::Forced => "forced refresh",
        }
    }
}

/// Lands a flight whose fetch panicked (an engine bug, caught at the FFI boundary): without it
/// the flight would stay marked and every later caller would wait for it until timing out.
struct LandOnUnwind<'a>(&'a App);

impl Drop for LandOnUnwind<'_> {
    fn drop(&mut self) {
        self.0.state.lock_ok().flights.land_panicked("token");
        self.0.done.notify_all();
    }
}

/// What a landing tells the operator. Built under `state`, emitted after it is unlocked, so
/// an event sink may call back into the library.
enum Report {
    Quiet,
    Fetched {
        token: Arc<Token>,
        /// stable_token handed back the token already cached.
        renewed: bool,
    },
    /// A passive refresh refused by the fleet's pace, told like the process's own pace.
    Limited(Error),
    Failed {
        error: Error,
        /// When the engine may try again; `None` when the error says so itself.
        retry_in: Option<Duration>,
        /// The token still served while the failure lasts, if any.
        serving: Option<Arc<Token>>,
    },
}

/// How a flight ended.
enum Landing {
    Done(Result<Arc<Token>, Error>),
    /// The app was re-registered with another secret or upstream meanwhile: the result
    /// belongs to a configuration that no longer exists and was dropped.
    Superseded,
}

impl App {
    /// Builds an app and leaks it: apps live as long as the process (the registry and the
    /// refresher hold them as `&'static`, and bindings hold their generation counter's
    /// address), which is also what lets `fly` hand `self` to the refresher.
    pub fn new(appid: &str, config: AppConfig) -> &'static App {
        let app = Box::leak(Box::new(App {
            appid: appid.into(),
            config: ArcSwap::from_pointee(config),
            current: ArcSwapOption::empty(),
            generation: AtomicU64::new(0),
            state: Mutex::new(State::default()),
            done: Condvar::new(),
            force: Mutex::new(ForceLimiter::default()),
            passive: Mutex::new(PassiveLimiter::default()),
            store_health: StoreHealth::default(),
            counters: Counters::default(),
            expiry_reported: AtomicU64::new(0),
            queue_mark: refresher::QueueMark::default(),
            cell: crate::hot_memory::new_cell(appid),
            tickets: std::sync::atomic::AtomicPtr::new(std::ptr::null_mut()),
        }));
        app.cell.bind(app);
        app
    }

    /// The app's token cell, which the app table holds.
    pub fn cell(&self) -> &'static TokenCell {
        self.cell
    }

    pub fn appid(&self) -> &str {
        &self.appid
    }

    #[inline]
    pub fn is_registered(&self) -> bool {
        self.cell.is_registered()
    }

    /// Unregisters the app. Its token is withdrawn (the generation counter moves, so
    /// binding-side caches drop it), its secret released (zeroized once a fetch in flight,
    /// which holds the old configuration, lands), and the configuration epoch bumped so that
    /// such a fetch lands as superseded: nothing is published, no error is remembered. The
    /// refresher drops the app when it next looks at it. A record in a shared store is left
    /// alone: other processes of the fleet may still use the app.
    pub fn retire(&self) {
        let mut st = self.state.lock_ok();
        // False once unregistered: the registry then answers UNKNOWN_APP and the
        // refresher drops the app. Changed only under `state`.
        self.cell.set_registered(false);
        self.reset_locked(&mut st);
        let retired = AppConfig {
            secret: None,
            options: self.config.load().options.clone(),
        };
        self.config.store(Arc::new(retired));
        drop(st);
        self.tickets_if_any().into_iter().for_each(|t| t.reset());
        // Waiters on a flight of this app see it unregistered when they wake.
        self.done.notify_all();
    }

    /// Forgets the token and everything learnt under the old configuration; `state` held.
    fn reset_locked(&self, st: &mut State) {
        st.flights.config_epoch += 1;
        st.flights.failure = None;
        st.flights.bg_failure = None;
        st.flights.last_error = None;
        st.rejected = None;
        st.flights.not_before = None;
        self.withdraw();
    }

    fn unknown(&self) -> Error {
        Error::new(
            Status::UnknownApp,
            format!("app {:?} is not registered", self.appid),
        )
    }

    /// The refresh's upstream, for the refresher's per-upstream rate limit: the central
    /// server in client mode, else `api_base`.
    pub fn upstream_key(&self) -> Box<str> {
        let config = self.config.load();
        match &config.options.central {
            // The servers as a list: one fleet of central servers shares one rate.
            Some(c) => c
                .servers
                .iter()
                .map(|srv| srv.base.as_str())
                .collect::<Vec<_>>()
                .join(",")
                .into(),
            None => config.options.api_base.as_str().into(),
        }
    }

    /// `self` as the `&'static` it is.
    fn leaked(&self) -> &'static App {
        // SAFETY: apps exist only as leaks made by `App::new`, never freed.
        unsafe { &*std::ptr::from_ref(self) }
    }

    pub fn generation_counter(&self) -> &AtomicU64 {
        &self.generation
    }

    /// Replaces the secret and options. A new secret or upstream drops the cached token and
    /// any remembered failure (the user has presumably fixed what failed); otherwise the
    /// token survives.
    pub fn reconfigure(&'static self, config: AppConfig) {
        let mut st = self.state.lock_ok();
        // A revived (re-registered after unregister) app starts from scratch.
        let reset = !self.is_registered() || !self.config.load().same_upstream(&config);
        self.config.store(Arc::new(config));
        if reset {
            self.reset_locked(&mut st);
        }
        self.cell.set_registered(true);
        drop(st);
        if reset {
            self.tickets_if_any().into_iter().for_each(|t| t.reset());
        }
        refresher::schedule(self);
    }

    pub fn config(&self) -> Arc<AppConfig> {
        self.config.load_full()
    }

    /// The app's ticket cells, made on first use.
    pub fn tickets(&self) -> &'static crate::ticket::Tickets {
        if let Some(t) = self.tickets_if_any() {
            return t;
        }
        // Made under `state`, which fork() holds: no cell appears (and is locked) between this
        // app's fork_lock and the fork, where the child would inherit its lock held.
        let _st = self.state.lock_ok();
        let fresh = Box::into_raw(Box::default());
        match self.tickets.compare_exchange(
            std::ptr::null_mut(),
            fresh,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            // SAFETY: published once, never freed.
            Ok(_) => unsafe { &*fresh },
            Err(existing) => {
                // SAFETY: `fresh` was never shared; `existing` is published and never freed.
                drop(unsafe { Box::from_raw(fresh) });
                unsafe { &*existing }
            }
        }
    }

    /// The app's ticket cells if any ticket was ever asked for.
    pub fn tickets_if_any(&self) -> Option<&'static crate::ticket::Tickets> {
        // SAFETY: null, or published by `tickets` and never freed.
        unsafe { self.tickets.load(Ordering::Acquire).as_ref() }
    }

    /// Runs `f` on a usable token: the cached one without I/O, else after a (shared) fetch.
    pub fn with_token<R>(&self, f: impl FnOnce(&Token) -> R) -> Result<R, Error> {
        {
            let guard = self.current.load();
            if let Some(token) = guard.as_deref()
                && token.is_usable(Instant::now())
            {
                return Ok(f(token));
            }
        }
        let token = self.acquire()?;
        Ok(f(&token))
    }

    fn usable(&self, now: Instant) -> Option<Arc<Token>> {
        self.current.load_full().filter(|t| t.is_usable(now))
    }

    /// The slow path of `with_token`: join the fetch in flight, or start one.
    fn acquire(&self) -> Result<Arc<Token>, Error> {
        let mut st = self.state.lock_ok();
        let mut awaited: Option<u64> = None;
        loop {
            let now = Instant::now();
            if let Some(token) = self.usable(now) {
                return Ok(token);
            }
            if !self.is_registered() {
                return Err(self.unknown());
            }
            // The flight we waited on failed: its error is ours too, without a new fetch.
            if let Turn::Wait = st.flights.turn(&mut awaited, now)? {
                st = self.wait_on_flight(st)?;
                continue;
            }
            match self.fly(st, Reason::Demand) {
                Landing::Done(result) => return result,
                Landing::Superseded => st = self.state.lock_ok(),
            }
        }
    }

    /// Sleeps until the flight in progress lands (or another wake-up). Bounded: a fetch never
    /// outlives its own timeout by much, so something is badly wrong if this expires.
    fn wait_on_flight<'a>(
        &self,
        st: MutexGuard<'a, State>,
    ) -> Result<MutexGuard<'a, State>, Error> {
        let limit = self.config.load().options.timeout * 2 + Duration::from_secs(1);
        let (st, timed_out) = wait_until(&self.done, st, Instant::now() + limit);
        if timed_out && st.flights.live() {
            return Err(Error::new(
                Status::Network,
                "timed out waiting for the token fetch in progress",
            ));
        }
        Ok(st)
    }

    /// The passive refresh: `stale` is a token WeChat rejected (40001/42001/40014). If it is
    /// still the cached one it is withdrawn and replaced by one fetch, however many callers
    /// report it; if the cache has moved on, nothing happens. `None` forces a refresh.
    pub fn invalidate(&self, stale: Option<&str>) -> Result<(), Error> {
        let mut st = self.state.lock_ok();
        // A fetch under way may already bring the replacement; judge the report against
        // what it lands.
        while st.flights.live() {
            st = self.wait_on_flight(st)?;
        }
        if !self.is_registered() {
            return Err(self.unknown());
        }
        let reason = match stale {
            Some(stale) => {
                match self.current.load_full() {
                    Some(cur) if cur.value() == stale => {}
                    // Nothing cached here (a worker restarted between using a token and
                    // learning it was rejected): with a shared store, the report is judged
                    // against the store's record by the flight below (Need::Replace), which
                    // replaces it if it is `stale` and otherwise just installs it. In client
                    // mode the central server is the fleet's store: the report goes to it, and
                    // it judges it against its current token the same way.
                    None if {
                        let options = &self.config.load().options;
                        matches!(options.store, StoreSpec::Shared(_)) || options.central.is_some()
                    } => {}
                    _ => return Ok(()),
                }
                // #11 item 2: a report that would start a fetch is paced.
                if let Err(e) = self.pace_passive_refresh() {
                    drop(st);
                    return Err(self.passive_refresh_limited(e));
                }
                st.reject(stale);
                self.withdraw();
                Reason::Invalidated
            }
            None => {
                self.force.lock_ok().try_acquire(Instant::now())?;
                if let Some(cur) = self.current.load_full() {
                    st.reject(cur.value());
                    self.withdraw();
                }
                Reason::Forced
            }
        };
        if let Some(e) = st.flights.cooling(Instant::now()) {
            return Err(e);
        }
        st.flights.start();
        match self.fly(st, reason) {
            Landing::Done(result) => result.map(drop),
            Landing::Superseded => Ok(()),
        }
    }

    /// Takes one of the passive refresh's slots (#11 item 2), for a report that is about
    /// to start a fetch; beyond the pace the caller leaves the token in service. Client mode
    /// leaves this to the central server, which may already hold a newer token and then
    /// answers without a fetch. A shared store keeps the same pace for the whole fleet, under
    /// the lease and only when a fetch would follow (`source::pace_replacement`): a report the
    /// store answers with a newer token spends nothing. Called with `state` held.
    fn pace_passive_refresh(&self) -> Result<(), Error> {
        let config = self.config.load();
        if config.options.central.is_some() || matches!(config.options.store, StoreSpec::Shared(_))
        {
            return Ok(());
        }
        self.passive
            .lock_ok()
            .try_acquire(Instant::now(), &config.options)
    }

    /// Tells the operator that a report was refused by the pacing; called without `state`.
    fn passive_refresh_limited(&self, e: Error) -> Error {
        events::emit(
            Level::Warn,
            &self.appid,
            events::kind::PASSIVE_REFRESH_LIMITED,
            e.status(),
            0,
            format_args!("{e}; the current token stays in service"),
        );
        e
    }

    /// When the refresher should next look at this app, if it should at all: the refresh-ahead
    /// point of a usable token, pushed back by any backoff. Nothing while a fetch is in
    /// flight (its landing wakes the refresher) or once the token has expired (then callers
    /// fetch on demand, under the same backoff).
    /// With its tickets (#13): the earliest of the token's and each ticket's due instant, so
    /// the refresher's one queue entry per app serves all of them.
    pub fn next_due(&self) -> Option<Instant> {
        let st = self.state.lock_ok();
        let token = self.due_locked(&st);
        drop(st);
        if !self.is_registered() {
            return None;
        }
        self.tickets_if_any()
            .into_iter()
            .flat_map(|t| t.cells())
            .filter_map(|c| c.next_due(self))
            .chain(token)
            .min()
    }

    /// `&'static self` for the refresher, which queues apps by reference.
    pub(crate) fn schedule_refresh(&self) {
        refresher::schedule(self.leaked());
    }

    fn due_locked(&self, st: &State) -> Option<Instant> {
        if st.flights.live() || !self.is_registered() {
            return None;
        }
        let token = self.current.load_full()?;
        let config = self.config.load();
        let options = &config.options;
        // Spread over the first half of the refresh-ahead window, so that tokens
        // fetched together (a cold start, a fleet restart) do not come due together.
        let due = token.refresh_at(options.refresh_ahead)
            + refresher::spread(
                &self.appid,
                token.generation,
                token.refresh_window(options.refresh_ahead),
            );
        let due = st.flights.due(due, options);
        (due < token.expires_at()).then_some(due)
    }

    /// Claims the background refresh if it is due now; the refresher then hands the claim to
    /// a worker thread that calls `run_claimed_refresh`. Reads the clock itself, after
    /// computing the due instant, since a due instant may be "now" (a shared store never
    /// synced).
    /// Claims every refresh of this app that is due now (the token's, its tickets'); `true`
    /// if any was, and then `run_claimed_refresh` runs them.
    pub fn claim_refresh(&self) -> bool {
        let now = Instant::now();
        let mut st = self.state.lock_ok();
        let token = match self.due_locked(&st) {
            Some(due) if due <= now => {
                st.flights.claim();
                true
            }
            _ => false,
        };
        drop(st);
        let mut any = token;
        if self.is_registered() {
            for c in self.tickets_if_any().into_iter().flat_map(|t| t.cells()) {
                any |= c.claim_refresh(self, now);
            }
        }
        any
    }

    pub fn run_claimed_refresh(&self) {
        let mut st = self.state.lock_ok();
        if st.flights.take_claim() {
            let _ = self.fly(st, Reason::Background);
        } else {
            drop(st);
        }
        for c in self.tickets_if_any().into_iter().flat_map(|t| t.cells()) {
            c.run_claimed_refresh(self);
        }
    }

    /// Obtains a token for the flight the caller marked, publishes the outcome and wakes
    /// waiters.
    fn fly(&self, st: MutexGuard<'_, State>, reason: Reason) -> Landing {
        debug_assert!(st.flights.live());
        let config = self.config.load_full();
        let config_epoch = st.flights.config_epoch;
        let rejected: Option<Box<str>> = st.rejected_here().map(Box::from);
        let need = match (reason, rejected.as_deref()) {
            (Reason::Background, _) => Need::Refresh,
            (_, Some(stale)) => Need::Replace(stale),
            (_, None) => Need::Usable,
        };
        let force_first = reason == Reason::Forced;
        // A valid token this process holds, offered to an emptied store instead of a fetch.
        let held = self
            .usable(Instant::now())
            .filter(|t| rejected.as_deref() != Some(t.value()))
            .map(|t| Held {
                token: t.value().to_owned(),
                requested_at: t.requested_at(),
                lifetime: t.lifetime(),
            });
        drop(st);
        let unwinding = LandOnUnwind(self);
        let cx = source::Ctx {
            appid: &self.appid,
            options: &config.options,
            counters: &self.counters,
            health: &self.store_health,
            held,
            sticky: false,
        };
        let outcome = source::obtain(&cx, need, |mode| {
            self.fetch_fresh(&config, force_first, rejected.as_deref(), mode)
        });
        let mut st = self.state.lock_ok();

        let now = Instant::now();
        let mut report = Report::Quiet;
        let landing = if st.flights.config_epoch != config_epoch {
            st.flights.last_error = None;
            Landing::Superseded
        } else {
            let (result, shared) = match outcome {
                Outcome::Got(got) => {
                    // Counted once per token taken over from another process, not per sync
                    // that found the same token again.
                    let new_token = self
                        .current
                        .load()
                        .as_deref()
                        .is_none_or(|c| c.value() != got.fetched.access_token);
                    if got.from_store && new_token {
                        self.counters.token_from_store();
                    }
                    st.flights.succeeded(now);
                    st.rejected = None;
                    let (from_upstream, paced) = (!got.from_store, got.paced);
                    let token = self.install(got.fetched, got.requested_at);
                    if from_upstream {
                        report = Report::Fetched {
                            token: token.clone(),
                            renewed: !new_token,
                        };
                    }
                    match got.refused {
                        // Only the caller who asked for the refresh learns it was refused; a
                        // plain get is served the token WeChat calls current (#11 item 4).
                        Some(e) if matches!(reason, Reason::Invalidated | Reason::Forced) => {
                            // WeChat handed back the token a caller saw rejected, and the
                            // forced refresh that would replace it is beyond WeChat's limits;
                            // or the fleet's pace of passive refreshes refused the fetch.
                            report = if paced {
                                Report::Limited(e.clone())
                            } else {
                                Report::Failed {
                                    error: e.clone(),
                                    retry_in: None,
                                    serving: Some(token),
                                }
                            };
                            (Err(e.clone()), Some(e))
                        }
                        _ => (Ok(token), None),
                    }
                }
                // Not a failure: whoever waited on this flight simply looks again.
                Outcome::Busy => (Err(st.flights.busy(now, "token")), None),
                Outcome::Failed(e) => {
                    self.counters.failure(&e);
                    if reason != Reason::Background {
                        // #11 item 4: the report died with its flight; a later plain
                        // get must not chase a forced refresh for it (RATE_LIMITED).
                        st.rejected = None;
                    }
                    let retry_in =
                        st.flights
                            .failed(reason == Reason::Background, &e, now, &config.options);
                    let serving = self.usable(now);
                    // A store sync failing while the token is not yet due for refresh is the
                    // store's outage, which store_unavailable/store_recovered tell once; telling
                    // it again at every retry (each store_sync_ms at most) would drown it.
                    let quiet_sync = reason == Reason::Background
                        && e.status() == Status::Store
                        && serving
                            .as_ref()
                            .is_some_and(|t| now < t.refresh_at(config.options.refresh_ahead));
                    if !quiet_sync {
                        report = Report::Failed {
                            error: e.clone(),
                            retry_in: Some(retry_in),
                            serving,
                        };
                    }
                    (Err(e.clone()), Some(e))
                }
            };
            // A background sync's failure (a store outage, say) is not a caller's: someone
            // who waited on it without a token starts a flight of their own, with its own
            // fallback, rather than inherit WX_STORE.
            st.flights.last_error = if reason == Reason::Background {
                None
            } else {
                shared
            };
            Landing::Done(result)
        };
        st.flights.land();
        drop(st);
        std::mem::forget(unwinding);
        self.done.notify_all();
        // Queue the app's next refresh (every app is leaked by `App::new`), then tell the
        // operator, with no lock held.
        refresher::schedule(self.leaked());
        self.report(report, reason);
        landing
    }

    /// Tells the operator how a flight ended. Runs with no engine lock held.
    fn report(&self, report: Report, reason: Reason) {
        match report {
            Report::Quiet => {}
            Report::Limited(e) => drop(self.passive_refresh_limited(e)),
            Report::Fetched { token, renewed } => events::emit(
                Level::Info,
                &self.appid,
                kind::TOKEN_FETCHED,
                Status::Ok,
                0,
                format_args!(
                    "{} token {} fetched ({}), valid for {} s",
                    if renewed { "the same" } else { "a new" },
                    events::token_hint(token.value()),
                    reason.describe(),
                    token.lifetime().as_secs()
                ),
            ),
            Report::Failed {
                error,
                retry_in,
                serving,
            } => {
                let serving = match &serving {
                    Some(t) => format!(
                        "the current token {} stays in service for {} s",
                        events::token_hint(t.value()),
                        t.remaining(Instant::now()).as_secs()
                    ),
                    None => "no valid token is available until then".to_owned(),
                };
                events::emit(
                    Level::Warn,
                    &self.appid,
                    kind::REFRESH_FAILED,
                    error.status(),
                    error.errcode(),
                    format_args!(
                        "{} failed: {}; {}{serving}",
                        reason.describe(),
                        error.message(),
                        retry_in.map_or_else(String::new, |d| format!(
                            "next attempt in {} ms at the earliest; ",
                            d.as_millis()
                        )),
                    ),
                );
            }
        }
    }

    /// For the refresher's queue: the current token's expiry, until `watch_expiry` reported it.
    pub fn expiry_due(&self) -> Option<Instant> {
        let token = self.current.load_full()?;
        (self.expiry_reported.load(Ordering::Acquire) != token.generation)
            .then(|| token.expires_at())
    }

    /// For the refresher, with no lock held: reports the current token's expiry once if it
    /// expired with no replacement (every refresh failed), and otherwise says when to look
    /// again.
    pub fn watch_expiry(&self, now: Instant) -> Option<Instant> {
        let token = self.current.load_full()?;
        if token.is_usable(now) {
            return Some(token.expires_at());
        }
        if self
            .expiry_reported
            .swap(token.generation, Ordering::AcqRel)
            == token.generation
        {
            return None;
        }
        let cause = {
            let st = self.state.lock_ok();
            [&st.flights.bg_failure, &st.flights.failure]
                .into_iter()
                .flatten()
                .next()
                .map(|f| f.error.clone())
        };
        let (status, errcode, why) = match &cause {
            Some(e) => (e.status(), e.errcode(), e.message()),
            None => (Status::Ok, 0, "none recorded"),
        };
        events::emit(
            Level::Error,
            &self.appid,
            kind::TOKEN_EXPIRED,
            status,
            errcode,
            format_args!(
                "token {} expired with no replacement; callers now wait for a fetch on demand (last failure: {why})",
                events::token_hint(token.value())
            ),
        );
        None
    }

    /// Asks WeChat for a token. stable_token's normal mode may hand back the very token a
    /// caller saw rejected; then, and only then, a forced refresh is spent, within WeChat's
    /// limits. If they refuse it, the token goes back into service (WeChat still calls it
    /// current) and the caller learns that its refresh was refused.
    fn fetch_fresh(
        &self,
        config: &AppConfig,
        force_first: bool,
        rejected: Option<&str>,
        mode: Mode,
    ) -> Result<Obtained, Error> {
        if let Some(central) = &config.options.central {
            // The central server runs this same logic (and WeChat's limits) for the fleet.
            let call = match (force_first, rejected) {
                (true, _) => CentralCall::Invalidate(None),
                (false, Some(stale)) => CentralCall::Invalidate(Some(stale)),
                (false, None) => CentralCall::Get,
            };
            let requested_at = Instant::now();
            let fetch = |call| {
                self.counters
                    .timed(|| upstream::fetch_central(&self.appid, &config.options, central, call))
            };
            return match fetch(call) {
                // The server refused the refresh within its limits: like a local
                // refusal, only the reporter learns it, and the server's current token (a
                // plain get) goes back into service instead of a cooldown of RATE_LIMITED.
                Err(refused) if refused.status() == Status::RateLimited => {
                    let fetched = fetch(CentralCall::Get)?;
                    Ok(Obtained {
                        refused: Some(refused),
                        ..Obtained::fetched(fetched, requested_at)
                    })
                }
                other => other.map(|fetched| Obtained::fetched(fetched, requested_at)),
            };
        }
        let stable = config.options.can_force();
        // Without the store (a fallback fetch), a forced refresh would end the token the rest
        // of the fleet is using: only normal mode, which hands back the current token.
        let may_force = mode == Mode::Leased;
        let requested_at = Instant::now();
        let fetched = self.request(config, force_first && stable && may_force)?;
        if stable && !may_force && rejected == Some(fetched.access_token.as_str()) {
            return Ok(Obtained {
                refused: Some(Error::new(
                    Status::Store,
                    "the token store is unreachable: no forced refresh, which would end the \
                     token the other processes use; WeChat still calls this token current",
                )),
                ..Obtained::fetched(fetched, requested_at)
            });
        }
        if stable && !force_first && rejected == Some(fetched.access_token.as_str()) {
            if let Err(refused) = self.force.lock_ok().try_acquire(Instant::now()) {
                return Ok(Obtained {
                    refused: Some(refused),
                    ..Obtained::fetched(fetched, requested_at)
                });
            }
            let requested_at = Instant::now();
            let fetched = self.request(config, true)?;
            return Ok(Obtained::fetched(fetched, requested_at));
        }
        Ok(Obtained::fetched(fetched, requested_at))
    }

    fn request(&self, config: &AppConfig, force_refresh: bool) -> Result<Fetched, Error> {
        let secret = config
            .secret
            .as_ref()
            .ok_or_else(|| Error::invalid("no secret registered for this app"))?;
        self.counters.timed(|| {
            upstream::fetch(&upstream::Request {
                appid: &self.appid,
                secret,
                options: &config.options,
                force_refresh,
            })
        })
    }

    /// Publishes a fetched token. The same value again (stable_token reuses tokens) keeps its
    /// generation, so binding-side caches stay valid.
    fn install(&self, fetched: Fetched, requested_at: Instant) -> Arc<Token> {
        let current = self.current.load_full();
        let generation = match &current {
            Some(cur) if cur.value() == fetched.access_token => cur.generation,
            _ => self.generation.load(Ordering::Relaxed) + 1,
        };
        let token = Arc::new(Token::new(
            fetched.access_token,
            requested_at,
            fetched.expires_in,
            generation,
        ));
        self.current.store(Some(token.clone()));
        self.cell
            .publish(token.value().as_bytes(), token.expires_at());
        self.generation.store(generation, Ordering::Release);
        token
    }

    /// Stops handing out the current token; callers must hold `state`.
    fn withdraw(&self) {
        let next = self.generation.load(Ordering::Relaxed) + 1;
        self.current.store(None);
        self.cell.clear();
        self.generation.store(next, Ordering::Release);
    }

    /// Locks this app's mutexes for `fork()`, in the engine's one lock order; `fork.rs`
    /// releases them on both sides of the fork.
    pub fn fork_lock(&'static self) {
        fork::hold(self.state.lock_ok());
        fork::hold(self.force.lock_ok());
        fork::hold(self.passive.lock_ok());
        self.counters.fork_lock();
        if let Some(t) = self.tickets_if_any() {
            t.fork_lock();
        }
    }

    pub fn stats(&self) -> AppStats {
        self.counters.snapshot()
    }

    /// The answer `with_token` would give if it can be had without waiting: a usable cached
    /// token, or the error of a failure still in its backoff or cooldown. `None` when getting
    /// one means waiting on a fetch (in flight or to start).
    pub fn try_token<R>(&self, f: impl FnOnce(&Token) -> R) -> Option<Result<R, Error>> {
        {
            let guard = self.current.load();
            if let Some(token) = guard.as_deref()
                && token.is_usable(Instant::now())
            {
                return Some(Ok(f(token)));
            }
        }
        let st = self.state.lock_ok();
        match &st.flights.failure {
            Some(fail) if !st.flights.live() && Instant::now() < fail.retry_at => {
                Some(Err(fail.error.clone()))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> &'static App {
        App::new(
            "wx_unit",
            AppConfig {
                secret: Some(Secret::new("s")),
                options: Options::default(),
            },
        )
    }

    #[test]
    fn a_panicking_fetch_lands_its_flight_with_a_panic_error() {
        let app = app();
        app.state.lock_ok().flights.flight = Some(fork::epoch());
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _landing = LandOnUnwind(app);
            panic!("simulated bug in a fetch");
        }));
        assert!(caught.is_err());
        let st = app.state.lock_ok();
        assert!(
            !st.flights.live(),
            "waiters are not left waiting for a flight that died"
        );
        assert_eq!(st.flights.completed, 1);
        assert_eq!(
            st.flights.last_error.as_ref().map(Error::status),
            Some(Status::Panic)
        );
    }

    #[test]
    fn a_flight_from_before_a_fork_is_not_live() {
        let app = app();
        app.state.lock_ok().flights.flight = Some(fork::epoch() - 1);
        assert!(!app.state.lock_ok().flights.live());
    }
}
