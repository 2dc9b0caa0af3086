//! Operator events: what a person running the service must learn before users do — a refresh
//! failing while the old token is still served, a store outage and its end, a fallback fetch.
//!
//! One process-wide sink (the C ABI's `wx_set_event_callback`, wx-tokend's JSON log lines, a
//! binding's logger) receives every event at or above its minimum level. Emitting is cheap when
//! nobody listens: one atomic load.
//!
//! Rules for emitters, so a sink may call back into the library without deadlocking:
//! - never emit while holding an engine lock (an app's `state`, the registry writer, ...);
//! - never put an AppSecret, a central key or a whole token in a message (messages built from
//!   `Error`s are already scrubbed; a token may be named only by `token_hint`).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use arc_swap::ArcSwapOption;

use crate::status::Status;

/// Severity; the numbers are part of the C ABI (`wx_event.level`).
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Debug = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
}

impl Level {
    pub fn from_code(code: i32) -> Option<Level> {
        Some(match code {
            0 => Level::Debug,
            1 => Level::Info,
            2 => Level::Warn,
            3 => Level::Error,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// Event kinds. Stable strings: operators alert on them.
pub mod kind {
    /// info: a token was fetched from upstream (WeChat or the central server).
    pub const TOKEN_FETCHED: &str = "token_fetched";
    /// info: a JS-SDK ticket was fetched from upstream (WeChat or the central server); the
    /// message names its kind and says whether WeChat handed back the same ticket. A failed
    /// ticket fetch is a `refresh_failed` whose message names the ticket kind.
    pub const TICKET_FETCHED: &str = "ticket_fetched";
    /// warn: a fetch failed; the message says when it is retried. The old token may still serve.
    pub const REFRESH_FAILED: &str = "refresh_failed";
    /// error: the token expired and no replacement could be had.
    pub const TOKEN_EXPIRED: &str = "token_expired";
    /// warn: a shared store could not be read or written.
    pub const STORE_UNAVAILABLE: &str = "store_unavailable";
    /// info: the store answers again after `store_unavailable`.
    pub const STORE_RECOVERED: &str = "store_recovered";
    /// warn: a token was fetched directly from upstream because the store was unreachable.
    pub const FALLBACK_FETCH: &str = "fallback_fetch";
    /// warn: `invalidate(current token)` refused by the passive refresh pacing (RATE_LIMITED);
    /// the token stays in service. Repeats mean a caller reports a token WeChat still accepts.
    pub const PASSIVE_REFRESH_LIMITED: &str = "passive_refresh_limited";
    /// warn: a central server (client mode, several listed) could not be reached or failed on
    /// its own; the next one listed was tried at once.
    pub const CENTRAL_UNAVAILABLE: &str = "central_unavailable";
    /// warn: a write to the shared store failed: preparing a publish (before any fetch), the
    /// publish itself (the other processes do not see the token), marking a rejected token,
    /// or checking or releasing the refresh lease.
    pub const STORE_PUBLISH_FAILED: &str = "store_publish_failed";
    /// warn: a record read from the shared store was refused (garbage, a bad token, a lifetime
    /// or generation out of range, times from the future) and is being replaced.
    pub const STORE_RECORD_REJECTED: &str = "store_record_rejected";
}

/// One event, borrowed for the duration of the sink call.
#[derive(Clone, Copy)]
pub struct Event<'a> {
    pub level: Level,
    /// The app (registered id) it concerns, or "" for process-wide events.
    pub app: &'a str,
    pub kind: &'static str,
    pub message: &'a str,
    /// The status of the failure it reports, `Status::Ok` for good news.
    pub status: Status,
    /// WeChat's errcode, or 0.
    pub errcode: i32,
}

impl fmt::Debug for Event<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("level", &self.level)
            .field("app", &self.app)
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("status", &self.status)
            .field("errcode", &self.errcode)
            .finish()
    }
}

pub type Sink = dyn Fn(&Event<'_>) + Send + Sync;

static SINK: ArcSwapOption<Box<Sink>> = ArcSwapOption::const_empty();
/// Below any level while no sink is set, so `emit` returns after one load.
static MIN_LEVEL: AtomicI32 = AtomicI32::new(i32::MAX);

/// Sets (or with `None` removes) the process's event sink. Events below `min_level` are not
/// built at all. A sink being called when it is replaced finishes its call.
pub fn set_sink(sink: Option<Box<Sink>>, min_level: Level) {
    match sink {
        Some(s) => {
            SINK.store(Some(Arc::new(s)));
            MIN_LEVEL.store(min_level as i32, Ordering::Release);
        }
        None => {
            MIN_LEVEL.store(i32::MAX, Ordering::Release);
            SINK.store(None);
        }
    }
}

/// Whether an event at `level` would reach a sink (to skip building costly messages).
#[inline]
pub fn enabled(level: Level) -> bool {
    level as i32 >= MIN_LEVEL.load(Ordering::Acquire)
}

/// Delivers an event to the sink, if any listens at `level`. A panicking sink is contained here:
/// an operator's logger must never take a token refresh down with it.
pub fn emit(
    level: Level,
    app: &str,
    kind: &'static str,
    status: Status,
    errcode: i32,
    message: fmt::Arguments<'_>,
) {
    if !enabled(level) {
        return;
    }
    let Some(sink) = SINK.load_full() else {
        return;
    };
    let message = message.to_string();
    let event = Event {
        level,
        app,
        kind,
        message: &message,
        status,
        errcode,
    };
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink(&event)));
}

/// A short, non-reversible mention of a token for messages: its length and last 4 characters,
/// enough to tell two tokens apart in a log, never enough to use one.
pub fn token_hint(token: &str) -> String {
    let tail: String = token
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail} ({} bytes)", token.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn sink_receives_events_at_or_above_its_level_and_survives_a_panic() {
        let seen: Arc<Mutex<Vec<(Level, String, String)>>> = Arc::default();
        let s = seen.clone();
        set_sink(
            Some(Box::new(move |e: &Event<'_>| {
                s.lock()
                    .unwrap()
                    .push((e.level, e.kind.to_owned(), e.message.to_owned()));
                if e.message == "boom" {
                    panic!("a sink that panics");
                }
            })),
            Level::Info,
        );
        emit(
            Level::Debug,
            "a",
            kind::TOKEN_FETCHED,
            Status::Ok,
            0,
            format_args!("hidden"),
        );
        emit(
            Level::Warn,
            "a",
            kind::REFRESH_FAILED,
            Status::Network,
            0,
            format_args!("boom"),
        );
        emit(
            Level::Info,
            "a",
            kind::TOKEN_FETCHED,
            Status::Ok,
            0,
            format_args!("after"),
        );
        set_sink(None, Level::Debug);
        emit(
            Level::Error,
            "a",
            kind::TOKEN_EXPIRED,
            Status::Network,
            0,
            format_args!("gone"),
        );
        let seen = seen.lock().unwrap();
        let messages: Vec<&str> = seen.iter().map(|(_, _, m)| m.as_str()).collect();
        assert_eq!(messages, ["boom", "after"]);
        assert!(!enabled(Level::Error));
    }

    #[test]
    fn token_hint_keeps_only_the_tail() {
        assert_eq!(token_hint("ACCESS_TOKEN_abcd"), "…abcd (17 bytes)");
        assert_eq!(token_hint("ab"), "…ab (2 bytes)");
    }
}
