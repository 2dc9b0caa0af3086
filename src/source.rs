//! Where a new token comes from: straight from WeChat (memory store), or through a shared
//! store, where it is read from the record another process published, or fetched under the
//! app's refresh lease and published for everyone else.
//!
//! Store trouble is never a reason to end the fleet's token: nothing is fetched under a lease
//! unless the publish is prepared (`Store::prepare`), a process that cannot reach the store
//! fetches only where that cannot overwrite anyone's token (stable_token's normal mode), within
//! a budget shared by the host, and a valid token a process holds is republished into an
//! emptied store instead of being replaced.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::events::{self, Level, kind};
use crate::options::Options;
use crate::stats::Counters;
use crate::status::Status;
use crate::store::{Lease, Loaded, Paced, Record, Store, StoreSpec, spend_fallback, store_error};
use crate::upstream::Fetched;

/// What the caller needs from the store's record for it to do instead of a fetch.
#[derive(Clone, Copy, Debug)]
pub enum Need<'a> {
    /// Any usable token.
    Usable,
    /// A usable token that is not due for refresh (the background refresh and store sync).
    Refresh,
    /// A usable token other than this rejected one.
    Replace(&'a str),
}

/// How a fetch may go: under the lease, or as a fallback while the store is unreachable,
/// where a forced refresh (which would end the token other processes use) is never sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Leased,
    Fallback,
}

/// A token ready to install, and when it was requested (its lifetime counts from then).
pub struct Obtained {
    pub fetched: Fetched,
    pub requested_at: Instant,
    /// The fetch succeeded but a forced refresh the caller needed was refused (see `App`).
    pub refused: Option<Error>,
    /// Read from a shared store's record, not fetched by this process.
    pub from_store: bool,
    /// `refused` comes from the fleet's pace of passive refreshes (see `pace_replacement`).
    pub paced: bool,
}

impl Obtained {
    pub fn fetched(fetched: Fetched, requested_at: Instant) -> Obtained {
        Obtained {
            fetched,
            requested_at,
            refused: None,
            from_store: false,
            paced: false,
        }
    }
}

pub enum Outcome {
    Got(Obtained),
    /// Another process holds the lease; only for `Need::Refresh`, which simply looks again soon.
    Busy,
    Failed(Error),
}

/// A valid token this process holds, offered for republishing into an emptied store.
pub struct Held {
    pub token: String,
    pub requested_at: Instant,
    pub lifetime: Duration,
}

/// Whether this app's store answered last time, so operators get one event per outage.
#[derive(Default)]
pub struct StoreHealth {
    down: AtomicBool,
}

impl StoreHealth {
    fn failed(&self, appid: &str, counters: &Counters, e: &Error) {
        counters.store_failure();
        if !self.down.swap(true, Ordering::AcqRel) {
            events::emit(
                Level::Warn,
                appid,
                kind::STORE_UNAVAILABLE,
                e.status(),
                0,
                format_args!("{e}"),
            );
        }
    }

    fn ok(&self, appid: &str) {
        if self.down.swap(false, Ordering::AcqRel) {
            events::emit(
                Level::Info,
                appid,
                kind::STORE_RECOVERED,
                Status::Ok,
                0,
                format_args!("the token store answers again"),
            );
        }
    }
}

/// Everything `obtain` needs besides the fetch itself. Never holds an engine lock: events are
/// emitted from here.
pub struct Ctx<'a> {
    pub appid: &'a str,
    pub options: &'a Options,
    pub counters: &'a Counters,
    pub health: &'a StoreHealth,
    pub held: Option<Held>,
    /// The credential is one WeChat re-serves with a full `expires_in` while it is valid (a
    /// JS-SDK ticket): a fetch that returns the value the record holds keeps the record's
    /// expiry (its life counts from when it was first seen), and marks it `renewed`.
    pub sticky: bool,
}

impl Ctx<'_> {
    /// A publish, its preparation or a lease release failed: a store failure like any other,
    /// counted apart and reported, since the fleet may not see this process's token.
    fn publish_failed(&self, e: &Error) {
        self.counters.store_publish_failure();
        events::emit(
            Level::Warn,
            self.appid,
            kind::STORE_PUBLISH_FAILED,
            e.status(),
            0,
            format_args!("{e}"),
        );
        self.health.failed(self.appid, self.counters, e);
    }
}

impl Ctx<'_> {
    /// The store refused a publish made under the lease: the lease was lost (it lapsed while
    /// this process stalled, or Redis lost the key in a restart or failover) and another
    /// process may have fetched and published meanwhile. Serving `ours` then would put a second
    /// token in service next to the fleet's, so the store's record wins if it is usable. Counted
    /// and reported like a failed publish, but not as an outage: the store answered.
    fn publish_refused(
        &self,
        store: &dyn Store,
        need: Need<'_>,
        ours: &impl HasToken,
    ) -> Option<Outcome> {
        self.counters.store_publish_failure();
        let theirs = match store.load(self.appid) {
            Ok(Loaded::Valid(r))
                if r.access_token != ours.token() && satisfies(&r, need, self.options) =>
            {
                Some(r)
            }
            _ => None,
        };
        events::emit(
            Level::Warn,
            self.appid,
            kind::STORE_PUBLISH_FAILED,
            Status::Store,
            0,
            format_args!(
                "token store refused the publish (the refresh lease was lost, or a newer record \
                 is stored); {}",
                if theirs.is_some() {
                    "the stored token is served instead"
                } else {
                    "this process serves its own token until the next sync"
                }
            ),
        );
        theirs.map(|r| Outcome::Got(from_record(r)))
    }
}

/// What `publish_refused` compares with the store's record.
trait HasToken {
    fn token(&self) -> &str;
}

impl HasToken for Obtained {
    fn token(&self) -> &str {
        &self.fetched.access_token
    }
}

impl HasToken for Held {
    fn token(&self) -> &str {
        &self.token
    }
}

/// A record can stand in for a fetch only if it is safely inside its lifetime.
const MARGIN_MS: u64 = 1000;

pub fn obtain(
    cx: &Ctx<'_>,
    need: Need<'_>,
    fetch: impl Fn(Mode) -> Result<Obtained, Error>,
) -> Outcome {
    let store = match &cx.options.store {
        StoreSpec::Memory => {
            return fetch(Mode::Leased).map_or_else(Outcome::Failed, Outcome::Got);
        }
        StoreSpec::Shared(store) => store.as_ref(),
    };
    let deadline = Instant::now() + cx.options.lease + cx.options.timeout;
    let mut pause = Duration::from_millis(10);
    loop {
        match store.load(cx.appid) {
            Ok(Loaded::Valid(r)) if satisfies(&r, need, cx.options) => {
                cx.health.ok(cx.appid);
                return Outcome::Got(from_record(r));
            }
            Ok(_) => cx.health.ok(cx.appid),
            Err(e) => return fallback(cx, store, e, need, &fetch),
        }
        match store.try_lease(cx.appid, cx.options.lease) {
            Ok(Some(mut lease)) => {
                let outcome = under_lease(cx, store, need, &mut lease, &fetch);
                if let Err(e) = store.release(cx.appid, lease) {
                    // The lease lapses by itself within lease_ms; meanwhile others wait.
                    cx.publish_failed(&e);
                }
                return outcome;
            }
            Ok(None) if matches!(need, Need::Refresh) => return Outcome::Busy,
            Ok(None) if Instant::now() >= deadline => {
                return Outcome::Failed(store_error(format!(
                    "timed out after {} ms waiting for another process's refresh of {}",
                    (cx.options.lease + cx.options.timeout).as_millis(),
                    cx.appid
                )));
            }
            // Another process is fetching: its record will appear, or its lease will lapse.
            Ok(None) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(e) => return fallback(cx, store, e, need, &fetch),
        }
    }
}

fn under_lease(
    cx: &Ctx<'_>,
    store: &dyn Store,
    need: Need<'_>,
    lease: &mut Lease,
    fetch: &impl Fn(Mode) -> Result<Obtained, Error>,
) -> Outcome {
    let failed = |e: Error| {
        cx.health.failed(cx.appid, cx.counters, &e);
        Outcome::Failed(e)
    };
    // Someone may have published between our read and our lease.
    let loaded_at = Instant::now();
    let loaded = match store.load(cx.appid) {
        Ok(l) => l,
        Err(e) => return failed(e),
    };
    match &loaded {
        Loaded::Valid(r) if satisfies(r, need, cx.options) => {
            return Outcome::Got(from_record(r.clone()));
        }
        Loaded::Bad { why, .. } => {
            cx.counters.store_record_rejected();
            events::emit(
                Level::Warn,
                cx.appid,
                kind::STORE_RECORD_REJECTED,
                Status::Store,
                0,
                format_args!("the stored record is refused ({why}); it is being replaced"),
            );
        }
        _ => {}
    }
    // An emptied store (or a bad record) while this process holds a good token: republish it
    // rather than fetch, which with the classic endpoint would end it for everyone. Never over
    // a valid record: that may say the held token was reported rejected, or be newer.
    if let (Some(held), Loaded::Absent | Loaded::Bad { .. }) = (&cx.held, &loaded) {
        let record = held_record(held, loaded.next_generation());
        if record.is_usable(MARGIN_MS) && holds_up(&record, need, cx.options) {
            return match store.publish(cx.appid, &record, lease) {
                // Refused: someone else published meanwhile (see `publish_refused`); theirs wins.
                Ok(published) => match (!published)
                    .then(|| cx.publish_refused(store, need, held))
                    .flatten()
                {
                    Some(theirs) => theirs,
                    None => Outcome::Got(Obtained::fetched(
                        Fetched {
                            access_token: held.token.clone(),
                            expires_in: held.lifetime,
                        },
                        held.requested_at,
                    )),
                },
                Err(e) => {
                    cx.publish_failed(&e);
                    Outcome::Failed(e)
                }
            };
        }
    }
    // Nobody fetches a token it could not share: check the publish can succeed first.
    if let Err(e) = store.prepare(cx.appid, lease) {
        cx.publish_failed(&e);
        return Outcome::Failed(e);
    }
    if let Some(refused) = pace_replacement(cx, store, need, &loaded, lease) {
        return refused;
    }
    match fetch(Mode::Leased) {
        Ok(mut got) => {
            let mut lifetime_ms = got.fetched.expires_in.as_millis() as u64;
            let age_ms = got.requested_at.elapsed().as_millis() as u64;
            let mut remaining_ms = lifetime_ms.saturating_sub(age_ms);
            let mut renewed = false;
            if let (true, Some(r)) = (cx.sticky, loaded.valid())
                && r.access_token == got.fetched.access_token
            {
                keep_first_expiry(&mut got, r, loaded_at, &mut lifetime_ms, &mut remaining_ms);
                renewed = true;
            }
            let published = Record {
                access_token: got.fetched.access_token.clone(),
                generation: loaded.next_generation(),
                lifetime_ms,
                remaining_ms,
                invalidated: false,
                renewed,
            };
            // The token is good here either way; a failed publish is a store failure, so the
            // next sync backs off and nobody fetches blind meanwhile.
            match store.publish(cx.appid, &published, lease) {
                Ok(true) => {}
                Ok(false) => {
                    if let Some(theirs) = cx.publish_refused(store, need, &got) {
                        return theirs;
                    }
                    share_again(cx, store, published);
                }
                Err(e) => cx.publish_failed(&e),
            }
            Outcome::Got(got)
        }
        Err(e) => {
            // A rejected token must not be picked up from the record while its replacement
            // failed: mark it, but only if the record is still the generation we saw.
            if let (Need::Replace(stale), Loaded::Valid(r)) = (need, &loaded)
                && r.access_token == stale
                && let Err(se) = store.invalidate(cx.appid, r.generation, lease)
            {
                cx.publish_failed(&se);
            }
            Outcome::Failed(e)
        }
    }
}

/// After a refused publish with nothing usable stored (Redis restarted empty mid-fetch, say,
/// taking the lease with it): shares the token just fetched under a new lease, if nobody holds
/// one, rather than leave the store empty until this process's next sync, meanwhile another
/// process without a token would fetch (on the classic endpoint, ending this one). Best effort:
/// any trouble leaves it to that sync's republish.
fn share_again(cx: &Ctx<'_>, store: &dyn Store, mut record: Record) {
    let Ok(Some(mut lease)) = store.try_lease(cx.appid, cx.options.lease) else {
        return;
    };
    if let Ok(loaded @ (Loaded::Absent | Loaded::Bad { .. })) = store.load(cx.appid) {
        record.generation = loaded.next_generation();
        if let Err(e) = store.publish(cx.appid, &record, &mut lease) {
            cx.publish_failed(&e);
        }
    }
    if let Err(e) = store.release(cx.appid, lease) {
        cx.publish_failed(&e);
    }
}

/// The fleet-wide pace of fetches that replace a reported token (the per-process one is in
/// `App::invalidate`): without it, processes reporting each new token in turn would make one
/// fetch per interval (and per daily limit) *each*. Only a replacement of a token still in
/// service is paced; a fetch for want of any usable token is not. Beyond the pace the reported
/// token stays in service and the reporter is told RATE_LIMITED (see `Obtained::refused`).
fn pace_replacement(
    cx: &Ctx<'_>,
    store: &dyn Store,
    need: Need<'_>,
    loaded: &Loaded,
    lease: &mut Lease,
) -> Option<Outcome> {
    let spacing = cx.options.passive_refresh_interval;
    let (Need::Replace(stale), Loaded::Valid(r)) = (need, loaded) else {
        return None;
    };
    if r.access_token != stale || !r.is_usable(MARGIN_MS) {
        return None;
    }
    let daily = cx.options.passive_refresh_daily_limit;
    let refused = |why: String| {
        Some(Outcome::Got(Obtained {
            refused: Some(Error::new(
                Status::RateLimited,
                format!("passive refresh refused for the whole fleet sharing the store: {why}"),
            )),
            paced: true,
            ..from_record(r.clone())
        }))
    };
    match store.pace_replacement(cx.appid, spacing, daily, lease) {
        Ok(Paced::Claimed) => None,
        Ok(Paced::TooSoon(wait)) => refused(format!(
            "a process replaced a token less than {} s ago (passive_refresh_interval_secs); \
             retry in {} s",
            spacing.as_secs(),
            wait.as_secs() + 1
        )),
        Ok(Paced::DailySpent) => refused(format!(
            "{daily} in the last 24 h, the limit set by passive_refresh_daily_limit"
        )),
        Err(e) => {
            cx.publish_failed(&e);
            Some(Outcome::Failed(e))
        }
    }
}

/// The store cannot be reached (or written). A process with a valid token keeps it and
/// retries soon; one without fetches directly only where that cannot end the token the rest
/// of the fleet uses, within a budget shared by every process of the host.
fn fallback(
    cx: &Ctx<'_>,
    store: &dyn Store,
    e: Error,
    need: Need<'_>,
    fetch: &impl Fn(Mode) -> Result<Obtained, Error>,
) -> Outcome {
    cx.health.failed(cx.appid, cx.counters, &e);
    if matches!(need, Need::Refresh) {
        return Outcome::Failed(e);
    }
    if cx.options.fetch_may_end_others() {
        return Outcome::Failed(Error::new(
            Status::Store,
            format!(
                "{e}; not fetching directly: with the classic endpoint (or WeCom's gettoken) a \
                 new token may end the one the other processes use (use the stable endpoint \
                 for a fallback)"
            ),
        ));
    }
    let budget_key = format!("{:?}:{}", store, cx.appid);
    let key: String = budget_key
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
                b as char
            } else {
                '_'
            }
        })
        .collect();
    match spend_fallback(store, &key, cx.options.store_fallback_per_hour) {
        Ok(true) => {
            cx.counters.fallback_fetch();
            events::emit(
                Level::Warn,
                cx.appid,
                kind::FALLBACK_FETCH,
                Status::Store,
                0,
                format_args!(
                    "fetching directly (stable_token, normal mode) while the store is unreachable: {e}"
                ),
            );
            fetch(Mode::Fallback).map_or_else(Outcome::Failed, Outcome::Got)
        }
        Ok(false) => Outcome::Failed(Error::new(
            Status::Store,
            format!(
                "{e}; the budget of {} direct fetches per hour for this host while the store is unreachable is spent",
                cx.options.store_fallback_per_hour
            ),
        )),
        Err(be) => Outcome::Failed(Error::new(
            Status::Store,
            format!("{e}; no direct fetch: {be}"),
        )),
    }
}

/// The fetch handed back the value the record holds (as WeChat does with a ticket asked for
/// while valid, with a full `expires_in`): its life still counts from when it was first seen,
/// so the record's expiry stands, here and in `got`, whichever comes first.
fn keep_first_expiry(
    got: &mut Obtained,
    r: &Record,
    loaded_at: Instant,
    lifetime_ms: &mut u64,
    remaining_ms: &mut u64,
) {
    let left = r
        .remaining_ms
        .saturating_sub(loaded_at.elapsed().as_millis() as u64);
    if left < *remaining_ms {
        *lifetime_ms = r.lifetime_ms;
        *remaining_ms = left;
        let now = Instant::now();
        let age = Duration::from_millis(r.lifetime_ms.saturating_sub(left));
        got.requested_at = now.checked_sub(age).unwrap_or(now);
        got.fetched.expires_in = r.lifetime();
    }
}

fn held_record(held: &Held, generation: u64) -> Record {
    let lifetime_ms = held.lifetime.as_millis() as u64;
    Record {
        access_token: held.token.clone(),
        generation,
        lifetime_ms,
        remaining_ms: lifetime_ms.saturating_sub(held.requested_at.elapsed().as_millis() as u64),
        invalidated: false,
        renewed: false,
    }
}

fn holds_up(r: &Record, need: Need<'_>, options: &Options) -> bool {
    match need {
        Need::Usable => true,
        Need::Refresh => !r.refresh_due(options.refresh_ahead),
        Need::Replace(stale) => r.access_token != stale,
    }
}

fn satisfies(r: &Record, need: Need<'_>, options: &Options) -> bool {
    r.is_usable(MARGIN_MS) && holds_up(r, need, options)
}

fn from_record(r: Record) -> Obtained {
    let now = Instant::now();
    let age = Duration::from_millis(r.age_ms());
    Obtained {
        fetched: Fetched {
            expires_in: r.lifetime(),
            access_token: r.access_token,
        },
        requested_at: now.checked_sub(age).unwrap_or(now),
        refused: None,
        from_store: true,
        paced: false,
    }
}
