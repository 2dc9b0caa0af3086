//! Surviving `fork()`: pre-fork web servers (gunicorn, uwsgi, php-fpm) load the library in a
//! parent and fork workers that must keep working.
//!
//! Two hazards: a lock held by another parent thread at fork time stays locked forever in the
//! child, and threads (the refresher, a fetch in flight) do not exist in the child. The atfork
//! handlers take every engine lock before the fork and release them on both sides, and the
//! child bumps the fork epoch, which marks inherited flights and the refresher as gone; they
//! are restarted lazily. The locks are std's (see `sync.rs` for why not parking_lot's).

use std::any::Any;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{MutexGuard, Once};

use crate::{platform, refresher, registry, upstream};

static EPOCH: AtomicU64 = AtomicU64::new(1);
static HANDLERS: Once = Once::new();

/// Changes in every fork child; identifies which process a flight or thread belongs to.
pub fn epoch() -> u64 {
    EPOCH.load(Ordering::Acquire)
}

pub fn install_handlers() {
    // The handlers only lock and unlock engine mutexes, bump an atomic and close descriptors.
    HANDLERS.call_once(|| platform::at_fork(prepare, parent, child));
}

extern "C" fn prepare() {
    // The engine's one lock order: the event callback's registration, registry writer,
    // refresher, apps, HTTP agents.
    crate::ffi::fork_lock();
    registry::fork_lock_writer();
    refresher::fork_lock();
    registry::fork_lock_apps();
    upstream::fork_lock();
}

extern "C" fn parent() {
    release_held();
}

extern "C" fn child() {
    EPOCH.fetch_add(1, Ordering::AcqRel);
    close_lease_fds_in_child();
    release_held();
}

thread_local! {
    /// Guards taken by `prepare`, released by `parent`/`child`. Those run on the forking
    /// thread (in the child, its copy), so a thread-local is exactly where they belong.
    static HELD: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
}

/// Keeps a lock held across the fork.
pub fn hold<T: 'static>(guard: MutexGuard<'static, T>) {
    HELD.with(|h| h.borrow_mut().push(Box::new(guard)));
}

/// Unlocks in the reverse of the order taken.
fn release_held() {
    HELD.with(|h| {
        let mut held = h.borrow_mut();
        while let Some(guard) = held.pop() {
            drop(guard);
        }
    });
}

/// Descriptors that hold a file-store lease. A fork child closes its copies at once: otherwise
/// the lock (shared by both copies) would outlive the parent's release for as long as the
/// child lives, and block every other process's refresh.
static LEASE_FDS: [std::sync::atomic::AtomicI32; 64] =
    [const { std::sync::atomic::AtomicI32::new(-1) }; 64];

pub fn track_fd(fd: platform::RawFd) {
    for slot in &LEASE_FDS {
        if slot
            .compare_exchange(-1, fd, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            return;
        }
    }
}

pub fn untrack_fd(fd: platform::RawFd) {
    for slot in &LEASE_FDS {
        if slot
            .compare_exchange(fd, -1, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            return;
        }
    }
}

fn close_lease_fds_in_child() {
    for slot in &LEASE_FDS {
        let fd = slot.swap(-1, Ordering::AcqRel);
        if fd >= 0 {
            // The parent's copy keeps the lock.
            platform::close_fd(fd);
        }
    }
}
