//! The C event callback behind `wx_set_event_callback`: a C function pointer and its
//! user_data installed as the process's `events` sink, with the guarantee C code needs to free
//! its user_data safely: once a replacement returns, the old callback is not running anywhere
//! and is never called again.

use std::cell::Cell;
use std::ffi::{CString, c_void};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{wx_event, wx_event_fn};
use crate::events::{self, Event, Level};
use crate::sync::LockExt;

/// One installed callback.
struct Registration {
    f: unsafe extern "C" fn(*mut c_void, *const wx_event),
    user_data: *mut c_void,
}

// SAFETY: the header requires the callback and its user_data to be usable from any thread;
// the library never dereferences user_data, it only hands it back.
unsafe impl Send for Registration {}
unsafe impl Sync for Registration {}

/// The installed registration; serialises replacements so each one waits for its own
/// predecessor.
static ACTIVE: Mutex<Option<Arc<Registration>>> = Mutex::new(None);

thread_local! {
    /// Set while this thread runs a callback, so a callback that replaces the callback does
    /// not wait for itself to return.
    static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

/// Installs `f` (or removes the callback with `None`), then waits until no call of the
/// previous one is in progress on another thread.
pub fn set(f: wx_event_fn, user_data: *mut c_void, min_level: Level) {
    let new = f.map(|f| Arc::new(Registration { f, user_data }));
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
        // In-flight deliveries hold the old sink, which holds a reference to `old`; the
        // count falls to 1 (ours) when the last of them returns.
        while Arc::strong_count(&old) > 1 {
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
    // SAFETY: the caller of wx_set_event_callback vouched for f and user_data; the event and
    // its strings live until f returns.
    unsafe { (reg.f)(reg.user_data, &event) };
    IN_CALLBACK.with(|c| c.set(outer));
}
