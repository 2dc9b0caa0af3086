//! The C ABI. Every function here is a thin, panic-safe wrapper over `crate::api`; the
//! header `include/wx_token.h` is generated from these declarations and their comments.
//!
//! Safety contract of every `unsafe extern "C"` function here, stated once in the header's
//! conventions: pointer arguments are NULL or valid for the access the function documents.
#![allow(clippy::missing_safety_doc)]

pub(crate) mod args;
pub(crate) mod boundary;

use std::ffi::{CStr, c_char};

use self::args::{check_buffer, copy_out, optional, required, required_bytes, utf8, write_opt};
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
/// Refused locally to stay within WeChat's limits (forced refresh: one per 30 s, 20 a day).
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
/// or a JSON object with any of: "api_base" (default "https://api.weixin.qq.com"; http:// only
/// for loopback hosts), "endpoint" ("stable", the default, or "classic"), "refresh_ahead_secs"
/// (300), "timeout_ms" (5000), "retry_min_ms" (500), "retry_max_ms" (60000),
/// "error_cooldown_ms" (30000), and for sharing one token between processes and hosts:
/// "store" ("memory", the default; "file:/abs/dir"; "redis://[user:pass@]host:port/db" or
/// "rediss://..."), "store_prefix" ("wx_token:"), "lease_ms", "store_sync_ms" (10000),
/// "store_fallback_per_hour" (2); for client mode: "central" (the wx-tokend server's base URL,
/// https or loopback http) with "central_key" (this client's key for it). Process-wide
/// settings of background refreshing: "refresh_workers" (1 to 256; the pool of refresh threads
/// is the largest value any registration gave, 8 if none did) and "refresh_rate_per_sec" (1 to
/// 100000: background refreshes per second to this app's api_base or central server, shared by
/// every app of the process using it; the lowest value any registration for that upstream
/// gave applies, 50 if none did; fetches by callers that have no token are never delayed by
/// it). Unknown keys are rejected with WX_INVALID_ARGUMENT.
///
/// The cached token survives re-registration unless the secret, api_base or endpoint changed.
/// Nothing is fetched here: the first wx_token_get does that. The secret is kept in memory
/// only, never logged or put in a message, and zeroized when replaced.
///
/// Returns WX_OK or WX_INVALID_ARGUMENT.
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
/// Returns WX_OK, WX_INVALID_ARGUMENT, or WX_UNKNOWN_APP (not registered).
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
/// Returns WX_OK, WX_BUFFER_TOO_SMALL, WX_INVALID_ARGUMENT, WX_UNKNOWN_APP, or the error of the
/// fetch (WX_WECHAT_ERROR, WX_NETWORK, WX_PROTOCOL). After a failure, calls within the backoff
/// (transient errors) or cooldown (terminal errors such as a bad secret) get the same error
/// without calling WeChat again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wx_token_get(
    appid: *const c_char,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> i32 {
    ffi_boundary!({
        // SCALE: the cached path looks the appid up by its bytes (only a registered, hence
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
/// WX_OK is returned. With the "stable" endpoint, WeChat is first asked in normal mode; only
/// if it hands back the rejected token again is force_refresh used, within WeChat's limits
/// (one per 30 s, 20 per day), else WX_RATE_LIMITED is returned and the token stays in service.
///
/// `stale_token == NULL` forces a refresh, under the same limits (on either endpoint).
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
/// null), "tokens_from_store", "failures": [{"status", "errcode", "count"}]}. Same
/// `(buf, buf_len, out_len)` convention as wx_token_get. Never does I/O.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wx_token_stats_json(
    appid: *const c_char,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> i32 {
    ffi_boundary!({
        let appid = unsafe { required(appid, "appid") }?;
        check_buffer(buf, buf_len)?;
        let json = api::stats(appid)?.to_json().to_string();
        unsafe { copy_out(json.as_bytes(), buf, buf_len, out_len) }
    })
}

/// Stops the background refresh thread and waits for refreshes in progress (each bounded by
/// its app's timeout_ms). Call it before unloading the library. Cached tokens stay usable, and
/// any later call into the library resumes background work. Returns WX_OK.
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
