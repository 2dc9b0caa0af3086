//! The C event callback behind `wx_set_event_callback`: a C function pointer and its
//! user_data installed as the process's `events` sink, with the guarantee C code needs to free
//! its user_data safely: once a replacement returns, the old callback is not running anywhere
//! and is never called again. Fork-safe: calls in progress on threads that a fork child does
//! not have are not waited for there.

use std::cell::Cell;
use std::ffi::{CString, c_void};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{wx_event, wx_event_fn};
use crate::events::{self, Event, Level};
use crate::fork;
use crate::sync::LockExt;

/// One installed callback.
struct Registration {
    f: unsafe extern "C" fn(*mut c_void, *const wx_event),
    user_data: *mut c_void,
    in_flight: InFlight,
}

// SAFETY: the header requires the callback and its user_data to be usable from any thread;
// the library never dereferences user_data, it only hands it back.
unsafe impl Send for Registration {}
unsafe impl Sync for Registration {}

/// Calls of a registration in progress in this process: the count in the low 32 bits, tagged
/// with the fork epoch it was counted in, so a fork child (where the counting threads do not
/// exist) sees none.
#[derive(Default)]
struct InFlight(AtomicU64);

impl InFlight {
    fn update(&self, f: impl Fn(u64) -> u64) {
        let epoch = fork::epoch() & 0xffff_ffff;
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                let count = if v >> 32 == epoch { v & 0xffff_ffff } else { 0 };
                Some((epoch << 32) | f(count))
            });
    }

    fn enter(&self) {
        self.update(|n| n + 1);
    }

    fn leave(&self) {
        self.update(|n| n.saturating_sub(1));
    }

    fn busy(&self) -> bool {
        let v = self.0.load(Ordering::Acquire);
        v >> 32 == fork::epoch() & 0xffff_ffff && v & 0xffff_ffff > 0
    }
}

/// The installed registration; serialises replacements so each one waits for its own
/// predecessor. Held across `fork()` (see `fork_lock`).
static ACTIVE: Mutex<Option<Arc<Registration>>> = Mutex::new(None);

thread_local! {
    /// Set while this thread runs a callback, so a callback that replaces the callback does
    /// not wait for itself to return.
    static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

/// Installs `f` (or removes the callback with `None`), then waits until no call of the
/// previous one is in progress on another thread.
pub fn set(f: wx_event_fn, user_data: *mut c_void, min_level: Level) {
    fork::install_handlers();
    let new = f.map(|f| {
        Arc::new(Registration {
            f,
            user_data,
            in_flight: InFlight::default(),
        })
    });
    let mut active = ACTIVE.lock_ok();
    let sink = new
        .clone()
        .map(|reg| Box::new(move |e: &Event<'_>| deliver(&reg, e)) as Box<events::Sink>);
    events::set_sink(sink, min_level);
    let old = std::mem::replace(&mut *active, new);
    drop(active);
    if let Some(old) = old
        && !IN_CALLBACK.with(Cell::get)
    {
        // The sink is replaced, so no new call of `old` starts; wait for those under way.
        while old.in_flight.busy() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn deliver(reg: &Registration, e: &Event<'_>) {
    // Strings from the engine have no NUL; replacing any keeps a message rather than losing it.
    let c = |s: &str| CString::new(s.replace('\0', " ")).unwrap_or_default();
    let (app, kind, message) = (c(e.app), c(e.kind), c(e.message));
    let event = wx_event {
        level: e.level as i32,
        app: app.as_ptr(),
        kind: kind.as_ptr(),
        message: message.as_ptr(),
        status: e.status as i32,
        errcode: e.errcode,
    };
    let outer = IN_CALLBACK.with(|c| c.replace(true));
    reg.in_flight.enter();
    // SAFETY: the caller of wx_set_event_callback vouched for f and user_data; the event and
    // its strings live until f returns.
    unsafe { (reg.f)(reg.user_data, &event) };
    reg.in_flight.leave();
    IN_CALLBACK.with(|c| c.set(outer));
}

/// Locks the registration for `fork()` (released by `fork.rs`), so a child never inherits it
/// half-replaced.
pub fn fork_lock() {
    fork::hold(ACTIVE.lock_ok());
}
