//! State shared by the listener, connection threads and both control surfaces
//! (the Rust API and `/_fake/*`), so the two can never drift apart.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::faults::{Fault, FaultQueue};
use crate::state::{MAX_TOKEN_LEN, MIN_TOKEN_LEN, Settings, State, TokenStatus};
use crate::stats::{RequestRecord, Stats, StatsBook};

/// A panicking connection thread must not take the whole fake down with it,
/// so poisoned locks are used as they are.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Lets every sleeping connection (slow, hang, delay) wake up at shutdown
/// instead of outliving the server.
#[derive(Default)]
pub struct StopSignal {
    stopped: Mutex<bool>,
    cv: Condvar,
}

impl StopSignal {
    pub fn stop(&self) {
        *lock(&self.stopped) = true;
        self.cv.notify_all();
    }

    pub fn is_stopped(&self) -> bool {
        *lock(&self.stopped)
    }

    /// Sleeps `d`; false if the server stopped meanwhile.
    pub fn sleep(&self, d: Duration) -> bool {
        let deadline = Instant::now().checked_add(d);
        let mut stopped = lock(&self.stopped);
        loop {
            if *stopped {
                return false;
            }
            let left = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            if left.is_zero() {
                return true;
            }
            stopped = self
                .cv
                .wait_timeout(stopped, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

pub struct Shared {
    pub state: Mutex<State>,
    pub faults: Mutex<FaultQueue>,
    pub stats: Mutex<StatsBook>,
    pub stop: StopSignal,
    pub verbose: AtomicBool,
    pub started: Instant,
}

/// A rejected control request; becomes HTTP 400.
pub type ControlResult<T> = Result<T, String>;

impl Shared {
    pub fn new(settings: Settings) -> Shared {
        Shared {
            state: Mutex::new(State::new(settings)),
            faults: Mutex::new(FaultQueue::default()),
            stats: Mutex::new(StatsBook::default()),
            stop: StopSignal::default(),
            verbose: AtomicBool::new(false),
            started: Instant::now(),
        }
    }

    pub fn add_app(&self, appid: &str, secret: &str) {
        lock(&self.state).add_app(appid, secret);
    }

    pub fn add_wecom(&self, corpid: &str, secret: &str, agentid: Option<u64>) {
        lock(&self.state).add_wecom(corpid, secret, agentid);
    }

    pub fn expire_tickets(&self) {
        lock(&self.state).expire_tickets(Instant::now());
    }

    pub fn current_ticket(&self, owner: &str, kind: crate::tickets::TicketKind) -> Option<String> {
        lock(&self.state).current_ticket(owner, kind, Instant::now())
    }

    pub fn settings(&self) -> Settings {
        lock(&self.state).settings.clone()
    }

    pub fn update_settings(&self, f: impl FnOnce(&mut Settings)) {
        f(&mut lock(&self.state).settings);
    }

    pub fn check_token_len(n: usize) -> ControlResult<usize> {
        if (MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&n) {
            Ok(n)
        } else {
            Err(format!(
                "token_len must be in {MIN_TOKEN_LEN}..={MAX_TOKEN_LEN}, got {n}"
            ))
        }
    }

    pub fn push_fault(&self, f: Fault) {
        lock(&self.faults).push(f);
    }

    pub fn clear_faults(&self) {
        lock(&self.faults).clear();
    }

    pub fn pending_faults(&self) -> Vec<Fault> {
        lock(&self.faults).pending()
    }

    pub fn stats(&self) -> Stats {
        lock(&self.stats).snapshot()
    }

    pub fn app_stats(&self, appid: &str) -> Stats {
        lock(&self.stats).app(appid)
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.stats).requests()
    }

    pub fn reset_stats(&self) {
        lock(&self.stats).reset();
    }

    pub fn revoke(&self, token: &str) {
        lock(&self.state).revoke(token);
    }

    pub fn expire_app(&self, appid: &str) {
        lock(&self.state).expire_app(appid, Instant::now());
    }

    pub fn token_status(&self, token: &str) -> TokenStatus {
        lock(&self.state).status(token, Instant::now()).0
    }

    pub fn current_token(&self, appid: &str) -> Option<String> {
        lock(&self.state).current_token(appid)
    }

    pub fn verbose(&self) -> bool {
        self.verbose.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn sleep_completes_or_wakes_on_stop() {
        let s = Arc::new(StopSignal::default());
        assert!(s.sleep(Duration::from_millis(5)));
        let s2 = s.clone();
        let t = std::thread::spawn(move || s2.sleep(Duration::from_secs(60)));
        std::thread::sleep(Duration::from_millis(20));
        let begin = Instant::now();
        s.stop();
        assert!(!t.join().unwrap());
        assert!(begin.elapsed() < Duration::from_secs(5));
        assert!(!s.sleep(Duration::from_secs(60)));
        assert!(s.is_stopped());
    }
}
