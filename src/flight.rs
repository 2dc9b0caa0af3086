//! The single-flight bookkeeping shared by the token (`app::App`) and each ticket
//! (`ticket::TicketCell`): one fetch at a time per credential, its landing shared with every
//! waiter, and the backoff, cooldown and store pauses that follow it. One copy, so the two
//! credentials cannot drift apart in how they join, pace or land a flight.

use std::time::{Duration, Instant};

use crate::error::Error;
use crate::fork;
use crate::options::Options;
use crate::pacing::Failure;
use crate::status::Status;
use crate::store::StoreSpec;

/// The pause after finding the shared store's lease held by another process.
const BUSY_RETRY: Duration = Duration::from_millis(200);

#[derive(Default)]
pub(crate) struct Flights {
    /// The fork epoch of the fetch in progress. A flight inherited from the parent across
    /// `fork()` has an older epoch: its thread does not exist here, so it is ignored.
    pub flight: Option<u64>,
    /// The flight was claimed by the refresher (`claim_refresh`), so `run_claimed_refresh`
    /// flies it; a flight a caller started is never flown twice.
    pub claimed: bool,
    /// Flights completed so far; waiters compare it to learn that theirs has landed.
    pub completed: u64,
    /// The failure of the latest completed flight, shared with everyone who waited on it.
    pub last_error: Option<Error>,
    /// Backoff or cooldown after failures of fetches callers asked for; cleared by a success
    /// or a new secret. Callers within it get its error without a new fetch.
    pub failure: Option<Failure>,
    /// The same for background refreshes and store syncs, which happen while the credential
    /// is still valid: they pace the refresher only, never a caller who needs one now.
    pub bg_failure: Option<Failure>,
    /// With a shared store: when the store was last consulted, and a pause after finding its
    /// lease held by another process.
    pub synced_at: Option<Instant>,
    pub not_before: Option<Instant>,
    /// Bumped when the secret or upstream changes, so a flight that started under the old
    /// configuration does not publish its result.
    pub config_epoch: u64,
}

/// What a caller whose cache missed does next.
pub(crate) enum Turn {
    /// A flight is in progress: wait for it to land, then look again.
    Wait,
    /// The caller marked a flight of its own: fly it.
    Fly,
}

impl Flights {
    pub fn live(&self) -> bool {
        self.flight == Some(fork::epoch())
    }

    /// Marks a flight of this process.
    pub fn start(&mut self) {
        self.flight = Some(fork::epoch());
    }

    /// Marks a flight for the refresher to fly.
    pub fn claim(&mut self) {
        self.start();
        self.claimed = true;
    }

    /// Takes the refresher's claim, if the flight in progress is its own.
    pub fn take_claim(&mut self) -> bool {
        self.live() && std::mem::take(&mut self.claimed)
    }

    /// The error of a caller's failure still within its backoff or cooldown.
    pub fn cooling(&self, now: Instant) -> Option<Error> {
        self.failure
            .as_ref()
            .filter(|f| now < f.retry_at)
            .map(|f| f.error.clone())
    }

    /// One turn of a caller's loop after its cache missed: the error of the flight it waited
    /// on (shared, without a new fetch), or of a cooldown; else wait for the flight in
    /// progress, or start one. `awaited` carries the flight waited on between turns.
    pub fn turn(&mut self, awaited: &mut Option<u64>, now: Instant) -> Result<Turn, Error> {
        if let Some(seq) = *awaited
            && self.completed != seq
        {
            if let Some(e) = &self.last_error {
                return Err(e.clone());
            }
            *awaited = None;
        }
        if self.live() {
            awaited.get_or_insert(self.completed);
            return Ok(Turn::Wait);
        }
        if let Some(e) = self.cooling(now) {
            return Err(e);
        }
        self.start();
        Ok(Turn::Fly)
    }

    /// A flight got a value (from WeChat or the store): every backoff and pause ends.
    pub fn succeeded(&mut self, now: Instant) {
        self.failure = None;
        self.bg_failure = None;
        self.not_before = None;
        self.synced_at = Some(now);
    }

    /// Another process holds the store's lease: pause briefly. Not a failure: whoever waited
    /// on this flight simply looks again.
    pub fn busy(&mut self, now: Instant, what: &str) -> Error {
        self.not_before = Some(now + BUSY_RETRY);
        Error::new(
            Status::Store,
            format!("another process is refreshing the {what}"),
        )
    }

    /// Records a failed flight in the backoff of its kind (the refresher's or the callers');
    /// returns how long until the next attempt.
    pub fn failed(
        &mut self,
        background: bool,
        e: &Error,
        now: Instant,
        options: &Options,
    ) -> Duration {
        let slot = if background {
            &mut self.bg_failure
        } else {
            &mut self.failure
        };
        let failure = Failure::after(slot.as_ref(), e.clone(), now, options);
        let retry_in = failure.retry_at - now;
        *slot = Some(failure);
        retry_in
    }

    /// `due` (the credential's own refresh instant) brought forward to the next store sync,
    /// and pushed back by backoffs and store pauses.
    pub fn due(&self, mut due: Instant, options: &Options) -> Instant {
        if matches!(options.store, StoreSpec::Shared(_)) {
            // Pick up what other processes published (refreshes, invalidations) before this
            // process's own refresh would come due.
            due = due.min(
                self.synced_at
                    .map_or_else(Instant::now, |t| t + options.store_sync),
            );
        }
        for f in [&self.failure, &self.bg_failure].into_iter().flatten() {
            due = due.max(f.retry_at);
        }
        if let Some(t) = self.not_before {
            due = due.max(t);
        }
        due
    }

    /// Lands the flight in progress.
    pub fn land(&mut self) {
        self.flight = None;
        self.completed += 1;
    }

    /// Lands a flight whose fetch panicked, so waiters are not left waiting for it.
    pub fn land_panicked(&mut self, what: &str) {
        self.land();
        self.claimed = false;
        self.last_error = Some(Error::new(
            Status::Panic,
            format!("internal error while fetching the {what}"),
        ));
    }
}
