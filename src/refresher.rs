//! Background refreshes ahead of expiry, even when nobody calls `get`, for up to hundreds of
//! thousands of apps in one process.
//!
//! - A timer queue (a binary heap of due instants) instead of a scan: an app is queued when
//!   its due instant may have changed (a landing, a registration), so a wake-up costs
//!   O(log n) per due app, and an idle process sleeps until the earliest due instant.
//! - A bounded pool of worker threads (`refresh_workers`, default 8) runs the refreshes; the
//!   dispatcher claims an app only when a worker is free, so a claimed refresh never waits
//!   in a queue while callers wait on it. Workers exit after a minute without work.
//! - A per-upstream rate limit (`refresh_rate_per_sec`, default 50, shared by every app of
//!   the process that uses the same `api_base`, or the same central server): background
//!   refreshes to one upstream start at least 1/rate apart. Apps waiting for their turn sit in
//!   the upstream's FIFO, unclaimed, so a caller whose token is gone fetches at once instead
//!   of queueing behind the wave; such demand fetches are not rate limited.
//! - Jitter: an app's refresh comes due at a point spread over the first half of its
//!   refresh-ahead window (`spread`), so tokens fetched together do not come due together.
//!
//! Process-wide settings come from per-app options: the pool is the largest
//! `refresh_workers` any registration asked for (8 if none did), and an upstream's rate the
//! lowest `refresh_rate_per_sec` any registration for it asked for (50 if none did). Neither
//! shrinks back when that app is unregistered.
//!
//! Lock order (also `fork.rs`'s): registry writer, then this module's state, then an app's
//! state. Nothing holds an app's state while taking this module's lock.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, LazyLock, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::app::App;
use crate::sync::{LockExt, wait, wait_until};
use crate::{fork, registry};

pub const DEFAULT_WORKERS: u32 = 8;
pub const DEFAULT_RATE_PER_SEC: u32 = 50;
/// A worker with nothing to do for this long exits; the pool regrows on demand.
const WORKER_IDLE_EXIT: Duration = Duration::from_secs(60);

/// Instants as nonzero nanoseconds since a process-wide anchor, so they fit an atomic.
static ANCHOR: LazyLock<Instant> = LazyLock::new(Instant::now);

fn key_of(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(*ANCHOR).as_nanos())
        .unwrap_or(u64::MAX - 1)
        .saturating_add(1)
}

fn instant_of(key: u64) -> Instant {
    *ANCHOR + Duration::from_nanos(key - 1)
}

/// Where an app sits in the timer queue: the key of its one live heap entry, or 0. Entries
/// whose key no longer matches their app's mark are stale and dropped when popped, so an app
/// rescheduled many times still has at most one live entry. Read and written only under the
/// refresher's lock (an atomic only so that `App` stays `Sync`).
#[derive(Default)]
pub struct QueueMark(AtomicU64);

impl QueueMark {
    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
    fn set(&self, k: u64) {
        self.0.store(k, Ordering::Relaxed);
    }
}

/// A heap entry; ordered by due key, then (arbitrarily but totally) by the app's address.
#[derive(Clone, Copy)]
struct Due(u64, &'static App);

impl PartialEq for Due {
    fn eq(&self, o: &Due) -> bool {
        self.cmp(o).is_eq()
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, o: &Due) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Due {
    fn cmp(&self, o: &Due) -> std::cmp::Ordering {
        (self.0, std::ptr::from_ref(self.1)).cmp(&(o.0, std::ptr::from_ref(o.1)))
    }
}

/// One upstream's rate limit and the due apps waiting for it.
struct Upstream {
    /// The lowest rate any registration asked for; `None` for the default.
    rate: Option<u32>,
    /// The earliest instant the next background refresh to this upstream may start.
    next_permit: Option<Instant>,
    ready: VecDeque<&'static App>,
}

impl Upstream {
    fn new() -> Upstream {
        Upstream {
            rate: None,
            next_permit: None,
            ready: VecDeque::new(),
        }
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(1) / self.rate.unwrap_or(DEFAULT_RATE_PER_SEC)
    }
}

struct State {
    /// The fork epoch the dispatcher was started in; 0 when not running.
    epoch: u64,
    /// Identifies the current dispatcher and its workers; older ones (replaced after a
    /// shutdown or a fork) exit.
    run_id: u64,
    stop: bool,
    dispatcher: Option<JoinHandle<()>>,
    heap: BinaryHeap<Reverse<Due>>,
    upstreams: HashMap<Box<str>, Upstream>,
    /// The largest `refresh_workers` asked for; `None` for the default.
    pool_size: Option<u32>,
    /// Claimed refreshes not yet taken by a worker.
    jobs: VecDeque<&'static App>,
    /// Claimed refreshes not yet finished (queued in `jobs` or running).
    busy: usize,
    /// Live worker threads of this run, and how many of them wait for a job.
    workers: usize,
    idle: usize,
    handles: Vec<JoinHandle<()>>,
}

impl State {
    fn pool(&self) -> usize {
        self.pool_size.unwrap_or(DEFAULT_WORKERS) as usize
    }
}

struct Refresher {
    state: Mutex<State>,
    /// Wakes the dispatcher: an earlier due instant, a free worker, a stop.
    wake: Condvar,
    /// Wakes an idle worker: a job, a stop.
    work: Condvar,
}

static REFRESHER: LazyLock<Refresher> = LazyLock::new(|| Refresher {
    state: Mutex::new(State {
        epoch: 0,
        run_id: 0,
        stop: false,
        dispatcher: None,
        heap: BinaryHeap::new(),
        upstreams: HashMap::new(),
        pool_size: None,
        jobs: VecDeque::new(),
        busy: 0,
        workers: 0,
        idle: 0,
        handles: Vec::new(),
    }),
    wake: Condvar::new(),
    work: Condvar::new(),
});

/// Mirrors `State::epoch` for the hot path, which checks it without locking.
static RUNNING_EPOCH: AtomicU64 = AtomicU64::new(0);

/// Per-process keys for `spread`.
static SPREAD_KEYS: LazyLock<std::collections::hash_map::RandomState> =
    LazyLock::new(std::collections::hash_map::RandomState::new);

/// How far into the first half of its refresh-ahead `window` an app's token comes due:
/// a pseudo-random fraction fixed per app, token generation and process, so it is stable
/// while the token lives (the due instant is recomputed often) and differs between apps and
/// between the processes of a fleet.
pub fn spread(appid: &str, generation: u64, window: Duration) -> Duration {
    let mut h = SPREAD_KEYS.build_hasher();
    h.write(appid.as_bytes());
    h.write_u64(generation);
    let fraction = (h.finish() >> 11) as f64 / (1u64 << 53) as f64;
    (window / 2).mul_f64(fraction)
}

/// Starts the refresher unless it runs in this process already. Two atomic loads when it does.
#[inline]
pub fn ensure_running() {
    if RUNNING_EPOCH.load(Ordering::Acquire) != fork::epoch() {
        start();
    }
}

#[cold]
fn start() {
    let mut st = REFRESHER.state.lock_ok();
    let epoch = fork::epoch();
    if st.epoch == epoch && st.dispatcher.is_some() {
        return;
    }
    if st.epoch != epoch {
        // Inherited from the parent across fork: those threads do not exist here, and joining
        // them would hang, so the handles are dropped (which detaches, never joins). Their
        // claims are stale (the flights carry the parent's epoch); the new dispatcher's
        // rescan queues those apps again.
        st.dispatcher = None;
        st.handles.clear();
        st.jobs.clear();
        st.busy = 0;
    }
    st.workers = 0;
    st.idle = 0;
    st.stop = false;
    st.run_id += 1;
    let run_id = st.run_id;
    match std::thread::Builder::new()
        .name("wx-token-refresh".into())
        .spawn(move || dispatch(run_id))
    {
        Ok(handle) => {
            st.dispatcher = Some(handle);
            st.epoch = epoch;
            RUNNING_EPOCH.store(epoch, Ordering::Release);
        }
        // Out of threads: tokens are still fetched on demand, and the next call tries again.
        Err(_) => st.epoch = 0,
    }
}

/// Records an app's process-wide settings: `refresh_workers` raises the pool, and
/// `refresh_rate_per_sec` lowers its upstream's rate.
pub fn configure(upstream: Box<str>, workers: Option<u32>, rate: Option<u32>) {
    let mut st = REFRESHER.state.lock_ok();
    let pool = st.pool_size;
    if let Some(w) = workers {
        st.pool_size = Some(pool.map_or(w, |p| p.max(w)));
    }
    let up = st.upstreams.entry(upstream).or_insert_with(Upstream::new);
    let old_rate = up.rate;
    if let Some(r) = rate {
        up.rate = Some(old_rate.map_or(r, |p| p.min(r)));
    }
    let rate_changed = up.rate != old_rate;
    // Only a change concerns the dispatcher: waking it on every registration made it contend
    // with a bulk registration for this lock.
    if rate_changed || st.pool_size != pool {
        REFRESHER.wake.notify_one();
    }
}

/// Queues `app`'s next background refresh, if it has one. Called whenever its due instant
/// may have changed; cheap when it has not (the app's mark already holds it).
pub fn schedule(app: &'static App) {
    // Also at the token's expiry, until reported: if every refresh failed, the operator hears
    // that it expired with no replacement (`token_expired`) when it does.
    let due = match (app.next_due(), app.expiry_due()) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let Some(due) = due else { return };
    let k = key_of(due);
    let mut st = REFRESHER.state.lock_ok();
    if app.queue_mark.get() == k {
        return;
    }
    let earliest = st.heap.peek().is_none_or(|Reverse(d)| k < d.0);
    app.queue_mark.set(k);
    st.heap.push(Reverse(Due(k, app)));
    if earliest {
        REFRESHER.wake.notify_one();
    }
}

fn dispatch(run_id: u64) {
    let my_epoch = fork::epoch();
    // After a start (first, after a shutdown or in a fork child) queue every app once, so
    // none whose claim or landing happened while no dispatcher ran is forgotten. O(apps).
    for app in registry::registered_apps() {
        schedule(app);
    }
    let mut st = REFRESHER.state.lock_ok();
    loop {
        if st.stop || st.epoch != my_epoch || st.run_id != run_id {
            return;
        }
        let now = Instant::now();
        move_due_to_upstreams(&mut st, key_of(now));
        let (next, unclaimed) = claim_ready(&mut st, now);
        if !hand_to_workers(&mut st, run_id) {
            // Out of threads with no worker at all: run the claimed refreshes here.
            while let Some(app) = st.jobs.pop_front() {
                drop(st);
                app.run_claimed_refresh();
                st = REFRESHER.state.lock_ok();
                st.busy = st.busy.saturating_sub(1);
            }
        }
        if !unclaimed.is_empty() {
            // No longer due (a caller fetched, a backoff began): queue them at their new due
            // instant, outside the lock, since that reads each app's state.
            drop(st);
            for app in unclaimed {
                app.watch_expiry(now);
                schedule(app);
            }
            st = REFRESHER.state.lock_ok();
            continue;
        }
        st = match next {
            Some(at) => wait_until(&REFRESHER.wake, st, at).0,
            None => wait(&REFRESHER.wake, st),
        };
    }
}

/// Pops every entry due by `now_k` and appends its app to its upstream's FIFO.
fn move_due_to_upstreams(st: &mut State, now_k: u64) {
    while let Some(&Reverse(Due(k, app))) = st.heap.peek()
        && k <= now_k
    {
        st.heap.pop();
        if app.queue_mark.get() != k {
            continue; // stale: the app was rescheduled since
        }
        app.queue_mark.set(0);
        st.upstreams
            .entry(app.upstream_key())
            .or_insert_with(Upstream::new)
            .ready
            .push_back(app);
    }
}

/// Claims ready apps while workers are free and their upstream's rate allows, and queues
/// them for the workers. Returns when to look again (the next due instant or permit; `None`
/// when only a notification can change anything) and the apps that turned out not to be due.
fn claim_ready(st: &mut State, now: Instant) -> (Option<Instant>, Vec<&'static App>) {
    let mut next = st.heap.peek().map(|Reverse(d)| instant_of(d.0));
    let mut unclaimed = Vec::new();
    let pool = st.pool();
    let State {
        upstreams,
        jobs,
        busy,
        ..
    } = st;
    'upstreams: for up in upstreams.values_mut() {
        while !up.ready.is_empty() {
            if *busy >= pool {
                // A finishing worker wakes the dispatcher.
                break 'upstreams;
            }
            if let Some(t) = up.next_permit
                && t > now
            {
                next = Some(next.map_or(t, |n| n.min(t)));
                break;
            }
            let Some(app) = up.ready.pop_front() else {
                break;
            };
            if app.claim_refresh() {
                up.next_permit = Some(now + up.interval());
                jobs.push_back(app);
                *busy += 1;
            } else {
                unclaimed.push(app);
            }
        }
    }
    (next, unclaimed)
}

/// Wakes idle workers for the queued jobs and starts new ones while the pool has room.
/// `false` if no worker exists to run them (out of threads): the caller runs them itself.
fn hand_to_workers(st: &mut State, run_id: u64) -> bool {
    if st.jobs.is_empty() {
        return true;
    }
    // One wake-up per job an idle worker can take: each costs a syscall and a context switch,
    // and waking every idle worker for one job wasted the rest.
    for _ in 0..st.jobs.len().min(st.idle) {
        REFRESHER.work.notify_one();
    }
    let mut unserved = st.jobs.len().saturating_sub(st.idle);
    while unserved > 0 && st.workers < st.pool() {
        let spawned = std::thread::Builder::new()
            .name("wx-token-fetch".into())
            .spawn(move || work(run_id));
        let Ok(handle) = spawned else { break };
        st.workers += 1;
        st.handles.retain(|h| !h.is_finished());
        st.handles.push(handle);
        unserved -= 1;
    }
    st.workers > 0
}

/// A pool worker: runs claimed refreshes until a minute passes without one, or a stop.
/// Claimed refreshes are always run, also after a stop, so no flight stays marked without a
/// thread to land it.
fn work(run_id: u64) {
    let mut st = REFRESHER.state.lock_ok();
    loop {
        if let Some(app) = st.jobs.pop_front() {
            drop(st);
            app.run_claimed_refresh();
            st = REFRESHER.state.lock_ok();
            // Only a full pool holds the dispatcher back; otherwise it is not waiting for us.
            if st.busy >= st.pool() {
                REFRESHER.wake.notify_one();
            }
            st.busy = st.busy.saturating_sub(1);
            continue;
        }
        if st.stop || st.run_id != run_id {
            break;
        }
        st.idle += 1;
        let (guard, timed_out) = wait_until(&REFRESHER.work, st, Instant::now() + WORKER_IDLE_EXIT);
        st = guard;
        st.idle -= 1;
        if timed_out && st.jobs.is_empty() {
            break;
        }
    }
    if st.run_id == run_id {
        st.workers -= 1;
    }
}

/// Stops the refresher and waits for refreshes in progress (each bounded by its app's
/// timeout). Later calls into the library start it again.
pub fn shutdown() {
    let (dispatcher, workers) = {
        let mut st = REFRESHER.state.lock_ok();
        st.stop = true;
        REFRESHER.wake.notify_all();
        REFRESHER.work.notify_all();
        let mine = st.epoch == fork::epoch();
        st.epoch = 0;
        RUNNING_EPOCH.store(0, Ordering::Release);
        let dispatcher = st.dispatcher.take();
        let workers = std::mem::take(&mut st.handles);
        if !mine {
            return;
        }
        (dispatcher, workers)
    };
    let me = std::thread::current().id();
    for t in dispatcher.into_iter().chain(workers) {
        if t.thread().id() != me {
            let _ = t.join();
        }
    }
}

/// Locks the refresher's state for `fork()` (released by `fork.rs`).
pub fn fork_lock() {
    fork::hold(REFRESHER.state.lock_ok());
}
