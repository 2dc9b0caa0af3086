//! The C ABI. Every function here is a thin, panic-safe wrapper over `crate::api`; the
//! header `include/wx_token.h` is generated from these declarations and their comments.
//!
//! Safety contract of every `unsafe extern "C"` function here, stated once in the header's
//! conventions: pointer arguments are NULL or valid for the access the function documents.
#![allow(clippy::missing_safety_doc)]

pub(crate) mod args;
pub(crate) mod boundary;
mod callback;
mod tickets;

pub(crate) use callback::fork_lock;
pub use tickets::*;

use std::ffi::{CStr, c_char, c_void};

use self::args::{
    check_buffer, copy_out, optional, output, required, required_bytes, utf8, write_opt,
};
use self::boundary::ffi_boundary;
use crate::api;
use crate::error::Error;
use crate::status::Status;

/// Success.
pub const WX_OK: i32 = 0;
/// A NULL, non-UTF-8, over-long or otherwise invalid argument, or bad options_json.
pub const WX_INVALID_ARGUMENT: i32 = 1;
/// The output buffer is too small; `*out_len` holds the length needed (without the NUL).
pub const WX_BUFFER_TOO_SMALL: i32 = 2;
/// The appid was never registered in this process.
pub const WX_UNKNOWN_APP: i32 = 3;
/// WeChat answered a nonzero errcode; see wx_last_errcode() and wx_last_error_message().
pub const WX_WECHAT_ERROR: i32 = 4;
/// Connect, TLS, timeout, redirect or non-2xx HTTP status.
pub const WX_NETWORK: i32 = 5;
/// WeChat's response was not understood: bad JSON, missing fields, too large, token > 512 bytes.
pub const WX_PROTOCOL: i32 = 6;
/// A shared token store failed.
pub const WX_STORE: i32 = 7;
/// An internal bug was caught at the boundary; the message says where.
pub const WX_PANIC: i32 = 8;
/// Refused to stay within limits, the token in service unchanged: WeChat's forced refresh
/// (one per 30 s, 20 a day), the passive refresh pacing (options "passive_refresh_interval_secs"
/// and "passive_refresh_daily_limit"), or, in client mode, the central server's limits.
/// Only wx_token_invalidate returns it.
pub const WX_RATE_LIMITED: i32 = 9;

/// The longest token WeChat may hand out (its documented reservation); a buffer of
/// WX_TOKEN_MAX_LEN + 1 bytes always fits a token and its NUL.
pub const WX_TOKEN_MAX_LEN: usize = 512;

const _: () = {
    assert!(WX_TOKEN_MAX_LEN == crate::upstream::MAX_TOKEN_LEN);
    assert!(WX_OK == Status::Ok as i32 && WX_INVALID_ARGUMENT == Status::InvalidArgument as i32);
    assert!(
        WX_BUFFER_TOO_SMALL == Status::BufferTooSmall as i32
            && WX_UNKNOWN_APP == Status::UnknownApp as i32
    );
    assert!(WX_WECHAT_ERROR == Status::WechatError as i32 && WX_NETWORK == Status::Network as i32);
    assert!(WX_PROTOCOL == Status::Protocol as i32 && WX_STORE == Status::Store as i32);
    assert!(WX_PANIC == Status::Panic as i32 && WX_RATE_LIMITED == Status::RateLimited as i32);
};

/// Registers an app, or updates its secret and options if it is registered already.
///
/// `appid` is a required NUL-terminated UTF-8 string; so is `secret`, except in client mode
/// (the "central" option), where it may be NULL: the central server holds it. `options_json` may be NULL
/// or a JSON object with any of: "api_base" (default "https://api.weixin.qq.com", or
/// "https://qyapi.weixin.qq.com" for WeCom; http:// only for loopback hosts), "endpoint"
/// ("stable", the default, or "classic"; mp only), "platform" ("mp", the default: an Official
/// Account or Mini Program whose appid is `appid`; or "wecom": `appid` is then a label of one
/// WeCom corp secret, e.g. "acme.contacts", and tokens come from GET /cgi-bin/gettoken) with,
/// for "wecom", "corpid" (required) and "agentid" (an integer, the app's agentid; needed for
/// "agent_config" tickets and wx.agentConfig), "refresh_ahead_secs"
/// (300), "timeout_ms" (5000), "retry_min_ms" (500), "retry_max_ms" (60000),
/// "error_cooldown_ms" (30000), and for sharing one token between processes and hosts:
/// "store" ("memory", the default; "file:/abs/dir"; "redis://[user:pass@]host:port/db" or
/// "rediss://..."; "redis+sentinel://[user:pass@]host:port[,host:port...]/service[/db]";
/// "redis+cluster://[user:pass@]host:port[,host:port...]"; rediss+sentinel/rediss+cluster for
/// TLS), "store_prefix" ("wx_token:"), "lease_ms", "store_sync_ms" (10000),
/// "store_fallback_per_hour" (2: direct fetches per app per hour for the whole host while the
/// store is unreachable, stable endpoint only; with "classic" nothing is fetched without the
/// store; see docs/STORES.md), "store_tls_ca_file" (absolute path of a PEM CA for a TLS
/// Redis store; default: the public web roots), "store_tls_cert_file" and "store_tls_key_file"
/// (absolute paths of a PEM client certificate and its key, together; default: none); for
/// pacing the passive refresh (wx_token_invalidate of the current token; refused beyond these
/// with WX_RATE_LIMITED): "passive_refresh_interval_secs" (30; at least this long between two
/// such fetches, 0 to 86400) and "passive_refresh_daily_limit" (100 per rolling 24 h, 0 to
/// 10000); for client mode: "central" (the wx-tokend server's base URL, https or loopback
/// http; or several, as a JSON array of strings or one comma-separated string, tried in order
/// and failed over between, at most 16) with "central_key" (this client's key for them).
/// Process-wide settings of background refreshing: "refresh_workers" (1 to 256; the pool of
/// refresh threads is the largest value any registration gave, 8 if none did) and
/// "refresh_rate_per_sec" (1 to 100000: background refreshes per second to this app's api_base
/// or central server, shared by every app of the process using it; the lowest value any
/// registration for that upstream gave applies, 50 if none did; fetches by callers that have
/// no token are never delayed by it). Unknown keys are rejected with WX_INVALID_ARGUMENT.
///
/// A file store directory must be owned by this user and not writable by group or others.
///
/// `appid` must be 1 to 128 characters of `[A-Za-z0-9_.-]`, not starting with `.`: it names
/// files and keys in shared stores, so the same rule holds whatever the store.
///
/// The cached token survives re-registration unless the secret, api_base or endpoint changed.
/// Nothing is fetched here: the first wx_token_get does that. The secret is kept in memory
/// only, never logged or put in a message, and zeroized when replaced.
///
/// Returns WX_OK; WX_INVALID_ARGUMENT for a NULL or malformed argument, an appid outside the
/// alphabet above, bad options_json, or a store that cannot be opened (e.g. a file store
/// directory that cannot be created; the message says why); WX_PANIC for an internal bug.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wx_token_register(
    appid: *const c_char,
    secret: *const c_char,
    options_json: *const c_char,
) -> i32 {
    ffi_boundary!({
        let appid = unsafe { required(appid, "appid") }?;
        let secret = unsafe { optional(secret, "secret") }?;
        let options = unsafe { optional(options_json, "options_json") }?;
        api::register(appid, secret, options)
    })
}

/// Unregisters an app, for an account that leaves: its background refresh stops, a fetch in
/// flight for it lands without publishing anything (callers waiting on it get
/// WX_UNKNOWN_APP), and later calls for `appid` return WX_UNKNOWN_APP until it is registered
/// again, which starts it from scratch. Its secret is released (zeroized once a fetch in flight
/// ends). A record in a shared store is left alone: other processes of the fleet may still
/// use the app. The address from wx_token_generation_counter stays valid (the counter moves,
/// so binding-side caches drop the token); the engine keeps about 1.4 KiB per distinct appid
/// ever registered until the process exits.
///
/// Returns WX_OK, WX_INVALID_ARGUMENT, WX_UNKNOWN_APP (not registered), or WX_PANIC for an
/// internal bug.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wx_token_unregister(appid: *const c_char) -> i32 {
    ffi_boundary!({
        let appid = unsafe { required(appid, "appid") }?;
        api::unregister(appid)
    })
}

/// Copies a valid access_token for `appid` into `buf`, NUL-terminated.
///
/// A cached token is returned without I/O. Otherwise the call blocks on one fetch, shared by
/// all threads asking at the same time. Tokens are refreshed in the background ahead of
/// expiry, so callers of a valid token never wait.
///
/// `*out_len` (if `out_len` is not NULL) receives the token's length without the NUL on WX_OK
/// and on WX_BUFFER_TOO_SMALL (so `buf = NULL, buf_len = 0` asks for the size). Nothing is
/// written into `buf` unless WX_OK is returned. A token is at most WX_TOKEN_MAX_LEN bytes.
///
/// Returns WX_OK, WX_BUFFER_TOO_SMALL, WX_INVALID_ARGUMENT (bad arguments; in client mode also
/// a central_key the central server refuses), WX_UNKNOWN_APP, or the error of the fetch:
/// WX_WECHAT_ERROR, WX_NETWORK, WX_PROTOCOL, WX_STORE (a shared store, or the central server's);
/// WX_PANIC for an internal bug. Never WX_RATE_LIMITED. In client mode, whatever the central
/// server answers maps onto these (never WX_BUFFER_TOO_SMALL, WX_UNKNOWN_APP or WX_PANIC from
/// its answer). After a failure, calls within the backoff (transient errors) or cooldown
/// (terminal errors such as a bad secret) get the same error without calling WeChat again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wx_token_get(
    appid: *const c_char,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> i32 {
    ffi_boundary!({
        // The cached path looks the appid up by its bytes (only a registered, hence
        // valid, appid matches) and validates UTF-8 only on the way to the slow path.
        let appid = unsafe { required_bytes(appid, "appid") }?;
        check_buffer(buf, buf_len)?;
        let cached =
            api::with_cached_bytes(appid, |t| unsafe { copy_out(t, buf, buf_len, out_len) });
        if let Some(done) = cached {
            return done;
        }
        let appid = utf8(appid, "appid")?;
        api::with_token(appid, |t| unsafe {
            copy_out(t.value().as_bytes(), buf, buf_len, out_len)
        })?
    })
}

/// wx_token_get, also reporting the token's generation and remaining lifetime, for callers
/// that cache it on their side (see wx_token_generation_counter).
///
/// `out_generation` and `out_expires_in_ms` may be NULL; they are written only on WX_OK.
/// Returns what wx_token_get returns.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wx_token_get_ex(
    appid: *const c_char,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
    out_generation: *mut u64,
    out_expires_in_ms: *mut u64,
) -> i32 {
    ffi_boundary!({
        let appid = unsafe { required(appid, "appid") }?;
        check_buffer(buf, buf_len)?;
        api::with_token(appid, |t| {
            unsafe { copy_out(t.value().as_bytes(), buf, buf_len, out_len) }?;
            let ms = t.remaining(std::time::Instant::now()).as_millis();
            unsafe {
                write_opt(out_generation, t.generation);
                write_opt(out_expires_in_ms, u64::try_from(ms).unwrap_or(u64::MAX));
            }
            Ok(())
        })?
    })
}

/// The passive refresh, for a caller whose WeChat API call failed with errcode 40001, 42001 or
/// 40014: pass the token that call used as `stale_token`.
///
/// If it is still the cached token, it stops being handed out and a replacement is fetched
/// before this returns (one fetch, however many threads report the same token; concurrent
/// wx_token_get calls wait for it). If the cache has already moved on, nothing happens and
/// WX_OK is returned. A process with no cached token (say, restarted since it used `stale`)
/// has the report judged against the shared store's record, or in client mode by the central
/// server: replaced if it is still the fleet's token, else the current one is taken. With the
/// "stable" endpoint, WeChat is first asked in normal mode; only if it hands back the rejected
/// token again is force_refresh used, within WeChat's limits (one per 30 s, 20 per day), else
/// WX_RATE_LIMITED is returned and the token stays in service.
///
/// Replacements started this way are paced per app ("passive_refresh_interval_secs", 30 s;
/// "passive_refresh_daily_limit", 100 a day): beyond that WX_RATE_LIMITED is returned and the
/// token stays in service. They are counted per process with the memory store, and for the
/// whole fleet with a shared store, where only reports that do replace the token count
/// (docs/STORES.md). In client mode the central server paces them instead.
///
/// `stale_token == NULL` forces a refresh, under WeChat's forced-refresh limits (on either
/// endpoint).
///
/// Returns WX_OK, WX_INVALID_ARGUMENT, WX_UNKNOWN_APP, WX_RATE_LIMITED, the error of the
/// replacement fetch (WX_WECHAT_ERROR, WX_NETWORK, WX_PROTOCOL, WX_STORE), or WX_PANIC.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wx_token_invalidate(
    appid: *const c_char,
    stale_token: *const c_char,
) -> i32 {
    ffi_boundary!({
        let appid = unsafe { required(appid, "appid") }?;
        let stale = unsafe { optional(stale_token, "stale_token") }?;
        api::invalidate(appid, stale)
    })
}

/// Stores in `*out_counter` the address of a 64-bit counter that changes whenever the token
/// handed out for `appid` changes (refresh, invalidation, new secret). The address stays valid
/// for the life of the process. Read it with an atomic (or volatile) 64-bit load; a caller that
/// caches a token with the generation from wx_token_get_ex may keep using it while the counter
/// still equals that generation and the token has not expired.
///
/// Returns WX_OK, WX_INVALID_ARGUMENT, WX_UNKNOWN_APP or WX_PANIC.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wx_token_generation_counter(
    appid: *const c_char,
    out_counter: *mut *const u64,
) -> i32 {
    ffi_boundary!({
        let appid = unsafe { required(appid, "appid") }?;
        if out_counter.is_null() {
            return Err(Error::invalid("out_counter is NULL"));
        }
        let counter = api::generation_counter(appid)?;
        unsafe { out_counter.write(counter.as_ptr().cast_const()) };
        Ok(())
    })
}

/// Copies, NUL-terminated, a JSON object of `appid`'s counters since it was registered in
/// this process, for monitoring: {"fetches", "fetch_seconds_total", "last_fetch_seconds" (or
/// null), "tokens_from_store", "store_failures", "store_publish_failures", "fallback_fetches",
/// "store_records_rejected", "failures": [{"status", "errcode", "count"}]}. Same
/// `(buf, buf_len, out_len)` convention as wx_token_get. Never does I/O.
///
/// Returns WX_OK, WX_BUFFER_TOO_SMALL, WX_INVALID_ARGUMENT, WX_UNKNOWN_APP or WX_PANIC.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wx_token_stats_json(
    appid: *const c_char,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> i32 {
    ffi_boundary!({
        let appid = unsafe { required(appid, "appid") }?;
        unsafe {
            output(buf, buf_len, out_len, || {
                api::stats(appid).map(|s| s.to_json().to_string())
            })
        }
    })
}

/// Stops the background refresh thread and waits for refreshes in progress (each bounded by
/// its app's timeout_ms). Call it before unloading the library. Cached tokens stay usable, and
/// any later call into the library resumes background work. Returns WX_OK (or WX_PANIC).
#[unsafe(no_mangle)]
pub extern "C" fn wx_token_shutdown() -> i32 {
    ffi_boundary!({
        api::shutdown();
        Ok(())
    })
}

/// WeChat's errcode from this thread's last call into the library, or 0 if that call
/// succeeded or failed without one.
#[unsafe(no_mangle)]
pub extern "C" fn wx_last_errcode() -> i32 {
    boundary::last_errcode()
}

/// Copies this thread's last error message (empty after a success) into `buf`, NUL-terminated
/// and truncated to fit at a UTF-8 character boundary, and returns its full length in bytes
/// without the NUL. With `buf == NULL` or `buf_len == 0`, only the length is returned.
/// The message never contains the AppSecret.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wx_last_error_message(buf: *mut c_char, buf_len: usize) -> usize {
    boundary::with_last_message(|msg| unsafe { copy_truncated(msg, buf, buf_len) }).unwrap_or(0)
}

/// WeChat's own errmsg from this thread's last call, verbatim (control characters removed,
/// at most 200 characters), or "" when that call did not fail with a WeChat errcode. Same
/// buffer convention as wx_last_error_message.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wx_last_wechat_errmsg(buf: *mut c_char, buf_len: usize) -> usize {
    boundary::with_last_wechat_errmsg(|msg| unsafe { copy_truncated(msg, buf, buf_len) })
        .unwrap_or(0)
}

/// Copies `msg` NUL-terminated into `buf`, truncated at a UTF-8 boundary to fit; returns its
/// full length.
unsafe fn copy_truncated(msg: &str, buf: *mut c_char, buf_len: usize) -> usize {
    if !buf.is_null() && buf_len > 0 && buf_len <= isize::MAX as usize {
        let mut n = msg.len().min(buf_len - 1);
        while !msg.is_char_boundary(n) {
            n -= 1;
        }
        // SAFETY: n + 1 <= buf_len, and the caller provides buf_len writable bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(msg.as_ptr(), buf.cast::<u8>(), n);
            *buf.add(n) = 0;
        }
    }
    msg.len()
}

/// The library's version, e.g. "0.1.0": a static string, never freed.
#[unsafe(no_mangle)]
pub extern "C" fn wx_token_version() -> *const c_char {
    const V: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(v) => v,
            Err(_) => panic!("version"),
        };
    V.as_ptr()
}

/// The name of a status code ("OK", "INVALID_ARGUMENT", ...), or "UNKNOWN" for a number this
/// version does not define. A static string, never freed.
#[unsafe(no_mangle)]
pub extern "C" fn wx_status_name(status: i32) -> *const c_char {
    let name = Status::from_code(status).map_or(c"UNKNOWN", Status::c_name);
    name.as_ptr()
}

/// Event level debug (wx_event.level).
pub const WX_LEVEL_DEBUG: i32 = 0;
/// Event level info: normal operation worth a log line (a token fetched, a store recovered).
pub const WX_LEVEL_INFO: i32 = 1;
/// Event level warn: trouble the library is riding out (a refresh failed while the current
/// token is still valid, a store outage).
pub const WX_LEVEL_WARN: i32 = 2;
/// Event level error: callers are or will be failing (the token expired with no replacement).
pub const WX_LEVEL_ERROR: i32 = 3;

const _: () = {
    use crate::events::Level;
    assert!(WX_LEVEL_DEBUG == Level::Debug as i32 && WX_LEVEL_INFO == Level::Info as i32);
    assert!(WX_LEVEL_WARN == Level::Warn as i32 && WX_LEVEL_ERROR == Level::Error as i32);
};

/// Something an operator should know, passed to the wx_set_event_callback callback. Every
/// pointer is valid, NUL-terminated UTF-8 for the duration of the call only: copy what you keep.
/// No event ever contains an AppSecret, a central key or a whole token (a token is named by
/// its last 4 characters and its length).
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct wx_event {
    /// WX_LEVEL_DEBUG, WX_LEVEL_INFO, WX_LEVEL_WARN or WX_LEVEL_ERROR.
    pub level: i32,
    /// The appid the event concerns, or "" for a process-wide event.
    pub app: *const c_char,
    /// What happened, a stable name to alert on: "token_fetched" (info), "refresh_failed"
    /// (warn: status and errcode say why, the message says when it is retried and how long
    /// the current token stays in service), "token_expired" (error: the token expired with no
    /// replacement; once per expiry), "store_unavailable" (warn), "store_recovered" (info),
    /// "fallback_fetch" (warn), "ticket_fetched" (info: a JS-SDK ticket was fetched; the
    /// message names its kind, and a failed ticket fetch is a "refresh_failed" naming it too).
    /// New kinds may be added; treat unknown ones by their level.
    pub kind: *const c_char,
    /// A one-line human-readable description.
    pub message: *const c_char,
    /// The WX_* status of the failure reported, WX_OK for good news.
    pub status: i32,
    /// WeChat's errcode (for example 40164, IP not whitelisted), or 0.
    pub errcode: i32,
}

/// The event callback type: `user_data` is the pointer given to wx_set_event_callback.
#[allow(non_camel_case_types)]
pub type wx_event_fn = Option<unsafe extern "C" fn(user_data: *mut c_void, event: *const wx_event)>;

/// Sends the library's operator events (see wx_event) at or above `min_level` to `fn`, for
/// the whole process, replacing any callback set before; `fn == NULL` removes it. Log them,
/// alert on them: a refresh failing (say WeChat answers 40164 because the server's IP is not
/// whitelisted) is reported when it happens, while the current token is still served, well
/// before callers fail.
///
/// Threads: `fn` is called on whichever thread did the work, often a library thread (the
/// background refresher), sometimes a thread inside wx_token_get or wx_token_invalidate, and
/// possibly on several threads at once; it and `user_data` must be safe to use from any thread.
///
/// Re-entrancy: events are never emitted while the library holds a lock, so `fn` may call any
/// function of this library (wx_token_get included, which then answers from the cache or
/// fetches on that thread). It should return promptly: a slow callback delays the refresh
/// that reported it. It must not unwind or longjmp out (a C++ callback catches everything).
///
/// When this returns, the previous callback is not running on any other thread and will not
/// be called again, so its `user_data` may be freed; this waits for calls in progress (so
/// do not call it while holding a lock the callback takes). Called from inside a callback, it
/// does not wait for that call; in a fork child, it does not wait for calls that were under
/// way in the parent's other threads (the child does not have them). The callback stays set
/// in a fork child.
///
/// Returns WX_OK, WX_INVALID_ARGUMENT if `min_level` is not one of WX_LEVEL_* (nothing is
/// changed then), or WX_PANIC for an internal bug.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wx_set_event_callback(
    r#fn: wx_event_fn,
    user_data: *mut c_void,
    min_level: i32,
) -> i32 {
    ffi_boundary!({
        let level = crate::events::Level::from_code(min_level).ok_or_else(|| {
            Error::invalid(format!(
                "min_level must be 0 (debug) to 3 (error), not {min_level}"
            ))
        })?;
        callback::set(r#fn, user_data, level);
        Ok(())
    })
}

/// Every key options_json accepts (see wx_token_register), as a static JSON object, never
/// freed: {"KEY": {"type": "string"|"integer", "default": VALUE or null, "meaning": "..."}}.
/// A null default means the option is off unless set, or derived (the meaning says how).
/// Bindings read it to check that they expose every option.
#[unsafe(no_mangle)]
pub extern "C" fn wx_token_options_schema() -> *const c_char {
    crate::options_schema::json().as_ptr()
}
