//! Surviving `fork()`: pre-fork web servers (gunicorn, uwsgi, php-fpm) load the library in a
//! parent and fork workers that must keep working.
//!
//! Two hazards: a lock held by another parent thread at fork time stays locked forever in the
//! child, and threads (the refresher, a fetch in flight) do not exist in the child. The atfork
//! handlers take every engine lock before the fork and release them on both sides, and the
//! child bumps the fork epoch, which marks inherited flights and the refresher as gone; they
//! are restarted lazily.

use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{refresher, registry};

static EPOCH: AtomicU64 = AtomicU64::new(1);
static HANDLERS: Once = Once::new();

/// Changes in every fork child; identifies which process a flight or thread belongs to.
pub fn epoch() -> u64 {
    EPOCH.load(Ordering::Acquire)
}

pub fn install_handlers() {
    HANDLERS.call_once(|| {
        #[cfg(unix)]
        // SAFETY: the handlers only lock and unlock engine mutexes and bump an atomic.
        unsafe {
            libc::pthread_atfork(Some(prepare), Some(parent), Some(child));
        }
    });
}

#[cfg(unix)]
extern "C" fn prepare() {
    // SAFETY: paired with the unlocks in `parent` and `child`, which run on this thread.
    unsafe {
        registry::fork_lock_all();
        refresher::fork_lock();
    }
}

#[cfg(unix)]
extern "C" fn parent() {
    unsafe {
        refresher::fork_unlock();
        registry::fork_unlock_all();
    }
}

#[cfg(unix)]
extern "C" fn child() {
    EPOCH.fetch_add(1, Ordering::AcqRel);
    close_lease_fds_in_child();
    unsafe {
        refresher::fork_unlock();
        registry::fork_unlock_all();
    }
}

/// Releases a mutex whose guard was forgotten by a `fork_lock` function.
///
/// # Safety
/// The mutex must be locked, by this thread (or, in a fork child, by the forking thread).
pub unsafe fn force_unlock<T>(mutex: &parking_lot::Mutex<T>) {
    unsafe { mutex.force_unlock(parking_lot::lock_api::GuardNoSend::new()) };
}

/// Descriptors that hold a file-store lease. A fork child closes its copies at once: otherwise
/// the lock (shared by both copies) would outlive the parent's release for as long as the
/// child lives, and block every other process's refresh.
static LEASE_FDS: [std::sync::atomic::AtomicI32; 64] = [const { std::sync::atomic::AtomicI32::new(-1) }; 64];

pub fn track_fd(fd: i32) {
    for slot in &LEASE_FDS {
        if slot.compare_exchange(-1, fd, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            return;
        }
    }
}

pub fn untrack_fd(fd: i32) {
    for slot in &LEASE_FDS {
        if slot.compare_exchange(fd, -1, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            return;
        }
    }
}

#[cfg(unix)]
fn close_lease_fds_in_child() {
    for slot in &LEASE_FDS {
        let fd = slot.swap(-1, Ordering::AcqRel);
        if fd >= 0 {
            // close(2) is async-signal-safe; the parent's copy keeps the lock.
            unsafe { libc::close(fd) };
        }
    }
}
