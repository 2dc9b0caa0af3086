//! The background thread that refreshes tokens ahead of expiry, even when nobody calls `get`.
//!
//! It sleeps until the earliest due instant over all apps (so an idle process costs nothing),
//! and is woken early whenever a token lands or an app is registered. Each due refresh runs
//! on a short-lived worker thread, so one slow upstream never delays the others.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use std::sync::{Condvar, Mutex};

use crate::sync::{LockExt, wait, wait_until};

use crate::app::App;
use crate::{fork, registry};

#[derive(Default)]
struct State {
    /// The fork epoch the thread was started in; 0 when not running.
    epoch: u64,
    /// Identifies the current thread; an older one (replaced after a shutdown) exits.
    run_id: u64,
    stop: bool,
    dirty: bool,
    thread: Option<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
}

struct Refresher {
    state: Mutex<State>,
    wake: Condvar,
}

static REFRESHER: LazyLock<Refresher> = LazyLock::new(|| Refresher {
    state: Mutex::new(State::default()),
    wake: Condvar::new(),
});

/// Mirrors `State::epoch` for the hot path, which checks it without locking.
static RUNNING_EPOCH: AtomicU64 = AtomicU64::new(0);

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
    if st.epoch == epoch && st.thread.is_some() {
        return;
    }
    if st.epoch != epoch {
        // Inherited from the parent across fork: those threads do not exist here, and joining
        // them would hang, so the handles are dropped (which detaches, never joins).
        st.thread = None;
        st.workers.clear();
    }
    st.stop = false;
    st.dirty = true;
    st.run_id += 1;
    let run_id = st.run_id;
    match std::thread::Builder::new()
        .name("wx-token-refresh".into())
        .spawn(move || run(run_id))
    {
        Ok(handle) => {
            st.thread = Some(handle);
            st.epoch = epoch;
            RUNNING_EPOCH.store(epoch, Ordering::Release);
        }
        // Out of threads: tokens are still fetched on demand, and the next call tries again.
        Err(_) => st.epoch = 0,
    }
}

/// Tells the refresher that some due instant may have changed.
pub fn wake() {
    let mut st = REFRESHER.state.lock_ok();
    st.dirty = true;
    REFRESHER.wake.notify_one();
}

fn run(run_id: u64) {
    let my_epoch = fork::epoch();
    loop {
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        let mut due = Vec::new();
        for app in registry::snapshot().values() {
            match app.next_due() {
                Some(at) if at <= now && app.claim_refresh(now) => due.push(Job::Token(app)),
                Some(at) if at <= now => {}
                Some(at) => next = Some(next.map_or(at, |n| n.min(at))),
                None => {}
            }
            for (i, cell) in app.tickets().cells().enumerate() {
                match cell.next_due(app) {
                    Some(at) if at <= now && cell.claim_refresh(app, now) => {
                        due.push(Job::Ticket(app, i))
                    }
                    Some(at) if at <= now => {}
                    Some(at) => next = Some(next.map_or(at, |n| n.min(at))),
                    None => {}
                }
            }
            // Also wake when a token expires, to tell the operator if it had no replacement.
            if let Some(at) = app.watch_expiry(now) {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        let mut st = REFRESHER.state.lock_ok();
        if st.stop || st.epoch != my_epoch || st.run_id != run_id {
            // Claimed refreshes still run, so no flight stays marked without a thread.
            drop(st);
            due.into_iter().for_each(Job::run);
            return;
        }
        for job in due {
            let spawned = std::thread::Builder::new()
                .name("wx-token-fetch".into())
                .spawn(move || job.run());
            match spawned {
                Ok(handle) => st.workers.push(handle),
                Err(_) => {
                    drop(st);
                    job.run();
                    st = REFRESHER.state.lock_ok();
                }
            }
        }
        st.workers.retain(|w| !w.is_finished());
        if !st.dirty {
            match next {
                Some(at) => st = wait_until(&REFRESHER.wake, st, at).0,
                None => st = wait(&REFRESHER.wake, st),
            }
        }
        st.dirty = false;
    }
}

/// A claimed background refresh: an app's token, or one of its tickets (by index).
#[derive(Clone, Copy)]
enum Job {
    Token(&'static App),
    Ticket(&'static App, usize),
}

impl Job {
    fn run(self) {
        match self {
            Job::Token(app) => app.run_claimed_refresh(),
            Job::Ticket(app, i) => {
                if let Some(cell) = app.tickets().cells().nth(i) {
                    cell.run_claimed_refresh(app);
                }
            }
        }
    }
}

/// Stops the refresher and waits for refreshes in progress (each bounded by its app's
/// timeout). Later calls into the library start it again.
pub fn shutdown() {
    let (thread, workers) = {
        let mut st = REFRESHER.state.lock_ok();
        st.stop = true;
        REFRESHER.wake.notify_all();
        let mine = st.epoch == fork::epoch();
        st.epoch = 0;
        RUNNING_EPOCH.store(0, Ordering::Release);
        let thread = st.thread.take();
        let workers = std::mem::take(&mut st.workers);
        if !mine {
            return;
        }
        (thread, workers)
    };
    if let Some(t) = thread
        && t.thread().id() != std::thread::current().id()
    {
        let _ = t.join();
    }
    // A refresh worker may be the caller (an event callback that shuts the library down):
    // joining itself would fail, and it finishes as soon as the callback returns anyway.
    for w in workers {
        if w.thread().id() != std::thread::current().id() {
            let _ = w.join();
        }
    }
}

/// Locks the refresher's state for `fork()` (released by `fork.rs`).
pub fn fork_lock() {
    fork::hold(REFRESHER.state.lock_ok());
}
