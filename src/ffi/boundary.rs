//! The panic boundary every export runs inside, and the thread-local last error it records.

use std::cell::{Cell, RefCell};

use crate::error::Error;
use crate::status::Status;

thread_local! {
    static HAS_ERROR: Cell<bool> = const { Cell::new(false) };
    static LAST: RefCell<(i32, String, String)> = const { RefCell::new((0, String::new(), String::new())) };
}

/// Runs an export's body: catches panics (unwinding into C is undefined behaviour), turns the
/// outcome into a status and records this thread's last error. A success clears it, so
/// `wx_last_errcode` always describes the latest call.
macro_rules! ffi_boundary {
    ($body:block) => {{
        let outcome = ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(
            || -> ::std::result::Result<(), $crate::error::Error> { $body },
        ));
        $crate::ffi::boundary::finish(outcome)
    }};
}
pub(crate) use ffi_boundary;

#[inline]
pub fn finish(outcome: std::thread::Result<Result<(), Error>>) -> i32 {
    match outcome {
        Ok(Ok(())) => {
            clear();
            Status::Ok as i32
        }
        Ok(Err(e)) => {
            record(&e);
            e.status() as i32
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            record(&Error::new(
                Status::Panic,
                format!("internal error (please report): {what}"),
            ));
            Status::Panic as i32
        }
    }
}

#[inline]
fn clear() {
    // try_with: a call from a thread-local destructor must not panic here.
    if HAS_ERROR.try_with(|h| h.replace(false)).unwrap_or(false) {
        let _ = LAST.try_with(|l| {
            let mut l = l.borrow_mut();
            l.0 = 0;
            l.1.clear();
            l.2.clear();
        });
    }
}

fn record(e: &Error) {
    let _ = LAST.try_with(|l| {
        let mut l = l.borrow_mut();
        l.0 = e.errcode();
        l.1.clear();
        l.1.push_str(e.message());
        l.2.clear();
        l.2.push_str(e.wechat_errmsg());
    });
    let _ = HAS_ERROR.try_with(|h| h.set(true));
}

pub fn last_errcode() -> i32 {
    LAST.try_with(|l| l.borrow().0).unwrap_or(0)
}

/// Runs `f` on this thread's last message; `None` only during thread teardown.
pub fn with_last_message<R>(f: impl FnOnce(&str) -> R) -> Option<R> {
    LAST.try_with(|l| f(&l.borrow().1)).ok()
}

/// Runs `f` on WeChat's errmsg from this thread's last error ("" if none).
pub fn with_last_wechat_errmsg<R>(f: impl FnOnce(&str) -> R) -> Option<R> {
    LAST.try_with(|l| f(&l.borrow().2)).ok()
}
