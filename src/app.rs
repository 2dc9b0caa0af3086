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
use crate::fork;
use crate::options::{Endpoint, Options};
use crate::pacing::{Failure, FallbackBudget, ForceLimiter};
use crate::refresher;
use crate::secret::Secret;
use crate::source::{self, Need, Obtained, Outcome};
use crate::stats::{AppStats, Counters};
use crate::status::Status;
use crate::store::StoreSpec;
use crate::sync::{LockExt, wait_until};
use crate::token::Token;
use crate::upstream::{self, CentralCall, Fetched};

/// How soon to look again when another process holds the refresh lease.
const BUSY_RETRY: Duration = Duration::from_millis(200);

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
    fallback: Mutex<FallbackBudget>,
    counters: Counters,
    /// The generation of the last token reported as expired (`token_expired`), so each
    /// expiry is reported once.
    expiry_reported: AtomicU64,
}

#[derive(Default)]
struct State {
    /// The fork epoch of the fetch in progress. A flight inherited from the parent across
    /// `fork()` has an older epoch: its thread does not exist here, so it is ignored.
    flight: Option<u64>,
    /// Flights completed so far; waiters compare it to learn that theirs has landed.
    completed: u64,
    /// The failure of the latest completed flight, shared with everyone who waited on it.
    last_error: Option<Error>,
    /// Backoff or cooldown after failures of fetches callers asked for; cleared by a success
    /// or a new secret. Callers within it get its error without a new fetch.
    failure: Option<Failure>,
    /// The same for background refreshes and store syncs, which happen while the token is
    /// still valid: they pace the refresher only, never a caller who needs a token now.
    bg_failure: Option<Failure>,
    /// A token a caller reported as rejected by WeChat. stable_token's normal mode may hand
    /// the same one back; then, and only then, a forced refresh is worth WeChat's limits.
    rejected: Option<Box<str>>,
    /// With a shared store: when the store was last consulted, and a pause after finding its
    /// lease held by another process.
    synced_at: Option<Instant>,
    not_before: Option<Instant>,
    /// Bumped when the secret or upstream changes, so a flight that started under the old
    /// configuration does not publish its result.
    config_epoch: u64,
}

impl State {
    fn flight_live(&self) -> bool {
        self.flight == Some(fork::epoch())
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
        let mut st = self.0.state.lock_ok();
        st.flight = None;
        st.completed += 1;
        st.last_error = Some(Error::new(
            Status::Panic,
            "internal error while fetching the token",
        ));
        drop(st);
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
    pub fn new(appid: &str, config: AppConfig) -> App {
        App {
            appid: appid.into(),
            config: ArcSwap::from_pointee(config),
            current: ArcSwapOption::empty(),
            generation: AtomicU64::new(0),
            state: Mutex::new(State::default()),
            done: Condvar::new(),
            force: Mutex::new(ForceLimiter::default()),
            fallback: Mutex::new(FallbackBudget::default()),
            counters: Counters::default(),
            expiry_reported: AtomicU64::new(0),
        }
    }

    pub fn generation_counter(&self) -> &AtomicU64 {
        &self.generation
    }

    /// Replaces the secret and options. A new secret or upstream drops the cached token and
    /// any remembered failure (the user has presumably fixed what failed); otherwise the
    /// token survives.
    pub fn reconfigure(&self, config: AppConfig) {
        let mut st = self.state.lock_ok();
        let reset = !self.config.load().same_upstream(&config);
        self.config.store(Arc::new(config));
        if reset {
            st.config_epoch += 1;
            st.failure = None;
            st.bg_failure = None;
            st.last_error = None;
            st.rejected = None;
            self.withdraw();
        }
        drop(st);
        refresher::wake();
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
            if let Some(seq) = awaited
                && st.completed != seq
            {
                // The flight we waited on failed: its error is ours too, without a new fetch.
                if let Some(e) = &st.last_error {
                    return Err(e.clone());
                }
                awaited = None;
            }
            if st.flight_live() {
                awaited.get_or_insert(st.completed);
                st = self.wait_on_flight(st)?;
                continue;
            }
            if let Some(f) = &st.failure
                && now < f.retry_at
            {
                return Err(f.error.clone());
            }
            st.flight = Some(fork::epoch());
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
        if timed_out && st.flight_live() {
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
        while st.flight_live() {
            st = self.wait_on_flight(st)?;
        }
        let reason = match stale {
            Some(stale) => {
                match self.current.load_full() {
                    Some(cur) if cur.value() == stale => {}
                    _ => return Ok(()),
                }
                st.rejected = Some(stale.into());
                self.withdraw();
                Reason::Invalidated
            }
            None => {
                self.force.lock_ok().try_acquire(Instant::now())?;
                if let Some(cur) = self.current.load_full() {
                    st.rejected = Some(cur.value().into());
                    self.withdraw();
                }
                Reason::Forced
            }
        };
        if let Some(f) = &st.failure
            && Instant::now() < f.retry_at
        {
            return Err(f.error.clone());
        }
        st.flight = Some(fork::epoch());
        match self.fly(st, reason) {
            Landing::Done(result) => result.map(drop),
            Landing::Superseded => Ok(()),
        }
    }

    /// When the refresher should next look at this app, if it should at all: the refresh-ahead
    /// point of a usable token, pushed back by any backoff. Nothing while a fetch is in
    /// flight (its landing wakes the refresher) or once the token has expired (then callers
    /// fetch on demand, under the same backoff).
    pub fn next_due(&self) -> Option<Instant> {
        let st = self.state.lock_ok();
        self.due_locked(&st)
    }

    fn due_locked(&self, st: &State) -> Option<Instant> {
        if st.flight_live() {
            return None;
        }
        let token = self.current.load_full()?;
        let config = self.config.load();
        let options = &config.options;
        let mut due = token.refresh_at(options.refresh_ahead);
        if matches!(options.store, StoreSpec::Shared(_)) {
            // Pick up what other processes published (refreshes, invalidations) before this
            // process's own refresh would come due.
            due = due.min(
                st.synced_at
                    .map_or_else(Instant::now, |t| t + options.store_sync),
            );
        }
        for f in [&st.failure, &st.bg_failure].into_iter().flatten() {
            due = due.max(f.retry_at);
        }
        if let Some(t) = st.not_before {
            due = due.max(t);
        }
        (due < token.expires_at()).then_some(due)
    }

    /// Claims the background refresh if it is due now; the refresher then hands the claim to
    /// a worker thread that calls `run_claimed_refresh`.
    pub fn claim_refresh(&self, now: Instant) -> bool {
        let mut st = self.state.lock_ok();
        match self.due_locked(&st) {
            Some(due) if due <= now => {
                st.flight = Some(fork::epoch());
                true
            }
            _ => false,
        }
    }

    pub fn run_claimed_refresh(&self) {
        let st = self.state.lock_ok();
        if st.flight_live() {
            let _ = self.fly(st, Reason::Background);
        }
    }

    /// Obtains a token for the flight the caller marked, publishes the outcome and wakes
    /// waiters.
    fn fly(&self, st: MutexGuard<'_, State>, reason: Reason) -> Landing {
        debug_assert!(st.flight_live());
        let config = self.config.load_full();
        let config_epoch = st.config_epoch;
        let rejected = st.rejected.clone();
        let need = match (reason, rejected.as_deref()) {
            (Reason::Background, _) => Need::Refresh,
            (_, Some(stale)) => Need::Replace(stale),
            (_, None) => Need::Usable,
        };
        let force_first = reason == Reason::Forced;
        drop(st);
        let unwinding = LandOnUnwind(self);
        let outcome = source::obtain(&self.appid, &config.options, need, &self.fallback, || {
            self.fetch_fresh(&config, force_first, rejected.as_deref())
        });
        let mut st = self.state.lock_ok();

        let now = Instant::now();
        let mut report = Report::Quiet;
        let landing = if st.config_epoch != config_epoch {
            st.last_error = None;
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
                    st.failure = None;
                    st.bg_failure = None;
                    st.rejected = None;
                    st.not_before = None;
                    st.synced_at = Some(now);
                    let from_upstream = !got.from_store;
                    let token = self.install(got.fetched, got.requested_at);
                    if from_upstream {
                        report = Report::Fetched {
                            token: token.clone(),
                            renewed: !new_token,
                        };
                    }
                    match got.refused {
                        Some(e) => {
                            // WeChat handed back the token a caller saw rejected, and the
                            // forced refresh that would replace it is beyond WeChat's limits.
                            report = Report::Failed {
                                error: e.clone(),
                                retry_in: None,
                                serving: Some(token),
                            };
                            (Err(e.clone()), Some(e))
                        }
                        None => (Ok(token), None),
                    }
                }
                // Not a failure: whoever waited on this flight simply looks again.
                Outcome::Busy => {
                    st.not_before = Some(now + BUSY_RETRY);
                    (
                        Err(Error::new(
                            Status::Store,
                            "another process is refreshing the token",
                        )),
                        None,
                    )
                }
                Outcome::Failed(e) => {
                    self.counters.failure(&e);
                    let slot = if reason == Reason::Background {
                        &mut st.bg_failure
                    } else {
                        &mut st.failure
                    };
                    let failure = Failure::after(slot.as_ref(), e.clone(), now, &config.options);
                    report = Report::Failed {
                        error: e.clone(),
                        retry_in: Some(failure.retry_at - now),
                        serving: self.usable(now),
                    };
                    *slot = Some(failure);
                    (Err(e.clone()), Some(e))
                }
            };
            st.last_error = shared;
            Landing::Done(result)
        };
        st.flight = None;
        st.completed += 1;
        drop(st);
        std::mem::forget(unwinding);
        self.done.notify_all();
        refresher::wake();
        self.report(report, reason);
        landing
    }

    /// Tells the operator how a flight ended. Runs with no engine lock held.
    fn report(&self, report: Report, reason: Reason) {
        match report {
            Report::Quiet => {}
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

    /// For the refresher: reports the current token's expiry once if it expired with no
    /// replacement (every refresh failed), and otherwise says when to look again.
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
            [&st.bg_failure, &st.failure]
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
    ) -> Result<Obtained, Error> {
        if let Some(central) = &config.options.central {
            // The central server runs this same logic (and WeChat's limits) for the fleet.
            let call = match (force_first, rejected) {
                (true, _) => CentralCall::Invalidate(None),
                (false, Some(stale)) => CentralCall::Invalidate(Some(stale)),
                (false, None) => CentralCall::Get,
            };
            let requested_at = Instant::now();
            let fetched = self
                .counters
                .timed(|| upstream::fetch_central(&self.appid, &config.options, central, call))?;
            return Ok(Obtained::fetched(fetched, requested_at));
        }
        let stable = config.options.endpoint == Endpoint::Stable;
        let requested_at = Instant::now();
        let fetched = self.request(config, force_first && stable)?;
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
        self.generation.store(generation, Ordering::Release);
        token
    }

    /// Stops handing out the current token; callers must hold `state`.
    fn withdraw(&self) {
        let next = self.generation.load(Ordering::Relaxed) + 1;
        self.current.store(None);
        self.generation.store(next, Ordering::Release);
    }

    /// Locks this app's mutexes for `fork()`, in the engine's one lock order; `fork.rs`
    /// releases them on both sides of the fork.
    pub fn fork_lock(&'static self) {
        fork::hold(self.state.lock_ok());
        fork::hold(self.force.lock_ok());
        fork::hold(self.fallback.lock_ok());
        self.counters.fork_lock();
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
        match &st.failure {
            Some(fail) if !st.flight_live() && Instant::now() < fail.retry_at => {
                Some(Err(fail.error.clone()))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> App {
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
        app.state.lock_ok().flight = Some(fork::epoch());
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _landing = LandOnUnwind(&app);
            panic!("simulated bug in a fetch");
        }));
        assert!(caught.is_err());
        let st = app.state.lock_ok();
        assert!(
            !st.flight_live(),
            "waiters are not left waiting for a flight that died"
        );
        assert_eq!(st.completed, 1);
        assert_eq!(
            st.last_error.as_ref().map(Error::status),
            Some(Status::Panic)
        );
    }

    #[test]
    fn a_flight_from_before_a_fork_is_not_live() {
        let app = app();
        app.state.lock_ok().flight = Some(fork::epoch() - 1);
        assert!(!app.state.lock_ok().flight_live());
    }
}
