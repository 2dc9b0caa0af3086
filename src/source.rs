//! Where a new token comes from: straight from WeChat (memory store), or through a shared
//! store, where it is read from the record another process published, or fetched under the
//! app's refresh lease and published for everyone else.

use std::time::{Duration, Instant};

use crate::error::Error;
use crate::options::Options;
use crate::pacing::FallbackBudget;
use crate::status::Status;
use crate::store::{Lease, Record, Store, StoreSpec, now_ms, store_error};
use crate::sync::LockExt;
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

/// A token ready to install, and when it was requested (its lifetime counts from then).
pub struct Obtained {
    pub fetched: Fetched,
    pub requested_at: Instant,
    /// The fetch succeeded but a forced refresh the caller needed was refused (see `App`).
    pub refused: Option<Error>,
    /// Read from a shared store's record, not fetched by this process.
    pub from_store: bool,
}

impl Obtained {
    pub fn fetched(fetched: Fetched, requested_at: Instant) -> Obtained {
        Obtained {
            fetched,
            requested_at,
            refused: None,
            from_store: false,
        }
    }
}

pub enum Outcome {
    Got(Obtained),
    /// Another process holds the lease; only for `Need::Refresh`, which simply looks again soon.
    Busy,
    Failed(Error),
}

/// A record can stand in for a fetch only if it is safely inside its lifetime.
const MARGIN_MS: u64 = 1000;

pub fn obtain(
    appid: &str,
    options: &Options,
    need: Need<'_>,
    budget: &std::sync::Mutex<FallbackBudget>,
    fetch: impl Fn() -> Result<Obtained, Error>,
) -> Outcome {
    let store = match &options.store {
        StoreSpec::Memory => return fetch().map_or_else(Outcome::Failed, Outcome::Got),
        StoreSpec::Shared(store) => store.as_ref(),
    };
    let deadline = Instant::now() + options.lease + options.timeout;
    let mut pause = Duration::from_millis(10);
    loop {
        match store.load(appid) {
            Ok(Some(r)) if satisfies(&r, need, options) => return Outcome::Got(from_record(r)),
            Ok(_) => {}
            Err(e) => return fallback(e, need, options, budget, &fetch),
        }
        match store.try_lease(appid, options.lease) {
            Ok(Some(lease)) => {
                let outcome = under_lease(store, appid, need, options, &lease, &fetch);
                store.release(appid, lease);
                return outcome;
            }
            Ok(None) if matches!(need, Need::Refresh) => return Outcome::Busy,
            Ok(None) if Instant::now() >= deadline => {
                return Outcome::Failed(store_error(format!(
                    "timed out after {} ms waiting for another process's refresh of {appid}",
                    (options.lease + options.timeout).as_millis()
                )));
            }
            // Another process is fetching: its record will appear, or its lease will lapse.
            Ok(None) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(e) => return fallback(e, need, options, budget, &fetch),
        }
    }
}

fn under_lease(
    store: &dyn Store,
    appid: &str,
    need: Need<'_>,
    options: &Options,
    lease: &Lease,
    fetch: &impl Fn() -> Result<Obtained, Error>,
) -> Outcome {
    // Someone may have published between our read and our lease.
    let record = match store.load(appid) {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(e),
    };
    if let Some(r) = &record
        && satisfies(r, need, options)
    {
        return Outcome::Got(from_record(r.clone()));
    }
    match fetch() {
        Ok(got) => {
            let age = got.requested_at.elapsed().as_millis() as u64;
            let fetched_at_ms = now_ms().saturating_sub(age);
            let published = Record {
                access_token: got.fetched.access_token.clone(),
                generation: record.as_ref().map_or(1, |r| r.generation + 1),
                fetched_at_ms,
                expires_at_ms: fetched_at_ms + got.fetched.expires_in.as_millis() as u64,
                invalidated: false,
            };
            // If publishing fails the token is still good here; the others will fetch their own.
            let _ = store.publish(appid, &published, lease);
            Outcome::Got(got)
        }
        Err(e) => {
            // A rejected token must not be picked up from the record while its replacement
            // failed: mark it, but only if the record is still the generation we saw.
            if let (Need::Replace(stale), Some(r)) = (need, &record)
                && r.access_token == stale
            {
                let _ = store.invalidate(appid, r.generation, lease);
            }
            Outcome::Failed(e)
        }
    }
}

/// The store is unreachable. A process with a valid token keeps it and retries later; one
/// without may fetch directly, within a small hourly budget.
fn fallback(
    e: Error,
    need: Need<'_>,
    options: &Options,
    budget: &std::sync::Mutex<FallbackBudget>,
    fetch: &impl Fn() -> Result<Obtained, Error>,
) -> Outcome {
    if matches!(need, Need::Refresh) {
        return Outcome::Failed(e);
    }
    if budget
        .lock_ok()
        .try_acquire(Instant::now(), options.store_fallback_per_hour)
    {
        return fetch().map_or_else(Outcome::Failed, Outcome::Got);
    }
    Outcome::Failed(Error::new(
        Status::Store,
        format!(
            "{e}; the budget of {} direct fetches per hour while the store is unreachable is spent",
            options.store_fallback_per_hour
        ),
    ))
}

fn satisfies(r: &Record, need: Need<'_>, options: &Options) -> bool {
    let now = now_ms();
    if !r.is_usable(now + MARGIN_MS) {
        return false;
    }
    match need {
        Need::Usable => true,
        Need::Refresh => !r.refresh_due(now, options.refresh_ahead),
        Need::Replace(stale) => r.access_token != stale,
    }
}

fn from_record(r: Record) -> Obtained {
    let age = Duration::from_millis(now_ms().saturating_sub(r.fetched_at_ms));
    let now = Instant::now();
    Obtained {
        fetched: Fetched {
            expires_in: r.lifetime(),
            access_token: r.access_token,
        },
        requested_at: now.checked_sub(age).unwrap_or(now),
        refused: None,
        from_store: true,
    }
}
