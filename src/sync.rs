//! Locking, std-only on purpose.
//!
//! The engine must survive `fork()`. std's Mutex and Condvar are futexes whose whole state is
//! the primitive's own memory; parking_lot keeps waiters in a process-global queue whose
//! entries a fork child inherits from threads that no longer exist, and a new thread that
//! reuses a dead thread's memory then corrupts that queue (seen as a child spinning forever).
//!
//! Poisoning is ignored: every critical section here leaves its state consistent at each step.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

pub trait LockExt<T> {
    fn lock_ok(&self) -> MutexGuard<'_, T>;
}

impl<T> LockExt<T> for Mutex<T> {
    #[inline]
    fn lock_ok(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Waits on `cv` until notified or `deadline`; `true` if the deadline passed.
pub fn wait_until<'a, T>(
    cv: &Condvar,
    guard: MutexGuard<'a, T>,
    deadline: Instant,
) -> (MutexGuard<'a, T>, bool) {
    let timeout = deadline.saturating_duration_since(Instant::now());
    let (guard, result) = cv
        .wait_timeout(guard, timeout)
        .unwrap_or_else(PoisonError::into_inner);
    (guard, result.timed_out())
}

pub fn wait<'a, T>(cv: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    cv.wait(guard).unwrap_or_else(PoisonError::into_inner)
}
