//! The C ABI of issue #13: JS-SDK tickets (mp and WeCom), their signatures, and wx.config.

use std::ffi::c_char;

use super::args::{check_buffer, copy_out, output, required};
use super::boundary::ffi_boundary;
use crate::api;
use crate::error::Error;
use crate::jssdk;

/// The longest JSON wx_jssdk_config returns (its fields are bounded: ids, agentid, time,
/// nonce, signature).
pub const WX_JSSDK_CONFIG_MAX_LEN: usize = 512;

/// Length of a signature in hex (SHA-1); a signature buffer needs WX_SIGNATURE_LEN + 1 bytes.
pub const WX_SIGNATURE_LEN: usize = 40;

/// Writes a 40-hex-digit signature and its NUL into `out_hex` of `out_len` bytes.
unsafe fn write_signature(hex: &str, out_hex: *mut c_char, out_len: usize) -> Result<(), Error> {
    if out_hex.is_null() {
        return Err(Error::invalid("out_hex is NULL"));
    }
    check_buffer(out_hex, out_len)?;
    unsafe { copy_out(hex.as_bytes(), out_hex, out_len, std::ptr::null_mut()) }
}

/// The JS-SDK signature WeChat's wx.config (and WeCom's wx.config and wx.agentConfig) checks:
/// lowercase hex `sha1("jsapi_ticket=" ticket "&noncestr=" noncestr "&timestamp=" timestamp
/// "&url=" url)`, with the values raw (no URL-encoding) and `url` cut at its first '#'. Pure:
/// no I/O, no registration needed. Most callers want wx_jssdk_config, which also picks the
/// ticket, a nonce and the time.
///
/// `out_hex` receives WX_SIGNATURE_LEN (40) hex digits and a NUL; `out_len` is its size in
/// bytes (at least 41). Nothing is written unless WX_OK is returned.
///
/// Returns WX_OK; WX_INVALID_ARGUMENT for a NULL or non-UTF-8 argument or a NULL `out_hex`;
/// WX_BUFFER_TOO_SMALL if `out_len` < 41; WX_PANIC for an internal bug.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wx_jssdk_signature(
    ticket: *const c_char,
    noncestr: *const c_char,
    timestamp: *const c_char,
    url: *const c_char,
    out_hex: *mut c_char,
    out_len: usize,
) -> i32 {
    ffi_boundary!({
        let ticket = unsafe { required(ticket, "ticket") }?;
        let noncestr = unsafe { required(noncestr, "noncestr") }?;
        let timestamp = unsafe { required(timestamp, "timestamp") }?;
        let url = unsafe { required(url, "url") }?;
        let hex = jssdk::signature(ticket, noncestr, timestamp, url);
        unsafe { write_signature(&hex, out_hex, out_len) }
    })
}

/// The most values wx_card_signature takes (WeChat's cardSign uses up to 7).
pub const WX_CARD_MAX_VALUES: usize = 64;

/// WeChat's cardSign for card pages: lowercase hex SHA-1 of `values` (the api_ticket of
/// wx_ticket_get(id, "wx_card"), timestamp, card_id, code, openid, nonce_str, ... whichever
/// the page uses) sorted lexicographically by their bytes and concatenated without separators.
/// `values` is an array of `count` NUL-terminated UTF-8 strings (1 to WX_CARD_MAX_VALUES).
///
/// `out_hex` receives 40 hex digits and a NUL; `out_len` is its size (at least 41). Nothing is
/// written unless WX_OK is returned.
///
/// Returns WX_OK; WX_INVALID_ARGUMENT for a NULL `values` or element, a non-UTF-8 value,
/// `count` of 0 or above WX_CARD_MAX_VALUES, or a NULL `out_hex`; WX_BUFFER_TOO_SMALL if
/// `out_len` < 41; WX_PANIC for an internal bug.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wx_card_signature(
    values: *const *const c_char,
    count: usize,
    out_hex: *mut c_char,
    out_len: usize,
) -> i32 {
    ffi_boundary!({
        if values.is_null() {
            return Err(Error::invalid("values is NULL"));
        }
        if count == 0 || count > WX_CARD_MAX_VALUES {
            return Err(Error::invalid(format!(
                "count must be 1 to {WX_CARD_MAX_VALUES}, not {count}"
            )));
        }
        let mut strs = Vec::with_capacity(count);
        for i in 0..count {
            // SAFETY: the caller provides `count` readable pointers.
            let p = unsafe { values.add(i).read() };
            strs.push(unsafe { required(p, &format!("values[{i}]")) }?);
        }
        let hex = jssdk::card_signature(&strs);
        unsafe { write_signature(&hex, out_hex, out_len) }
    })
}

/// Copies a valid JS-SDK ticket of `kind` for `appid` into `buf`, NUL-terminated: for an mp
/// app "jsapi" (GET /cgi-bin/ticket/getticket?type=jsapi) or "wx_card" (type=wx_card, the
/// card api_ticket for wx_card_signature); for a WeCom id "jsapi" (the corp ticket, GET
/// /cgi-bin/get_jsapi_ticket) or "agent_config" (the agent ticket, GET
/// /cgi-bin/ticket/get?type=agent_config).
///
/// Tickets have the token's guarantees: one fetch at a time per (app, kind) across threads,
/// shared through the app's store across processes and hosts, refreshed ahead by the library,
/// failures answered from a backoff (transient) or cooldown (terminal). A ticket's lifetime
/// counts from when that ticket was first seen: WeChat hands a ticket asked for while it is
/// valid back with a full expires_in, which never extends it. The ticket is fetched with the
/// app's access token; if WeChat answers 40001, 42001 or 40014, that token is passively
/// refreshed (as by wx_token_invalidate) and the ticket asked for once more. WeCom's limits
/// (400 corp tickets an hour per corp, 100 agent tickets an hour per app) are kept locally.
///
/// Same `(buf, buf_len, out_len)` convention as wx_token_get; a ticket is at most
/// WX_TOKEN_MAX_LEN bytes.
///
/// Returns WX_OK, WX_BUFFER_TOO_SMALL, WX_INVALID_ARGUMENT (a bad argument, or a kind the
/// app's platform does not have), WX_UNKNOWN_APP, WX_RATE_LIMITED (WeCom's hourly ticket limit
/// reached in this process), or the error of the fetch (of the ticket, or of the token it
/// needs): WX_WECHAT_ERROR, WX_NETWORK, WX_PROTOCOL, WX_STORE; WX_PANIC for an internal bug.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wx_ticket_get(
    appid: *const c_char,
    kind: *const c_char,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> i32 {
    ffi_boundary!({
        let appid = unsafe { required(appid, "appid") }?;
        let kind = unsafe { required(kind, "kind") }?;
        check_buffer(buf, buf_len)?;
        api::with_ticket(appid, kind, |t| unsafe {
            copy_out(t.value().as_bytes(), buf, buf_len, out_len)
        })?
    })
}

/// A page's wx.config (or wx.agentConfig) failed with "invalid signature", and the server
/// suspects the ticket: if `stale_ticket` is still the cached ticket of `kind`, it is
/// withdrawn and replaced by one fetch, however many callers report it; if the cache has moved
/// on, nothing happens (compare-and-invalidate). WeChat may hand back the same ticket (it
/// calls it valid): then it stays in service. A signature also fails for a `url` that is not
/// the page's exact URL (before '#'), which no new ticket cures. Reports that would start a
/// fetch are paced by "passive_refresh_interval_secs" and "passive_refresh_daily_limit", per
/// ticket kind. In client mode the report goes to the central server.
///
/// Returns WX_OK (replaced, or nothing to do); WX_INVALID_ARGUMENT (NULL or bad arguments,
/// `stale_ticket` included); WX_UNKNOWN_APP; WX_RATE_LIMITED (refused by the pacing, or by
/// WeCom's hourly limit; the current ticket stays in service); or the replacement's error:
/// WX_WECHAT_ERROR, WX_NETWORK, WX_PROTOCOL, WX_STORE; WX_PANIC for an internal bug.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wx_ticket_invalidate(
    appid: *const c_char,
    kind: *const c_char,
    stale_ticket: *const c_char,
) -> i32 {
    ffi_boundary!({
        let appid = unsafe { required(appid, "appid") }?;
        let kind = unsafe { required(kind, "kind") }?;
        let stale = unsafe { required(stale_ticket, "stale_ticket") }?;
        api::ticket_invalidate(appid, kind, stale)
    })
}

/// Copies into `buf`, NUL-terminated, the JSON a page passes to wx.config (`kind` "jsapi":
/// {"appId", "timestamp", "nonceStr", "signature"}, where appId is the appid, or for a WeCom
/// id its corpid) or to WeCom's wx.agentConfig (`kind` "agent_config": {"corpid", "agentid",
/// "timestamp", "nonceStr", "signature"}, agentid from the "agentid" option). Every call uses
/// a fresh 16-character nonce from the OS's CSPRNG and the current time (seconds, as a
/// string), and signs `url` (the page's full URL; cut at '#') with the current ticket of
/// `kind` (see wx_ticket_get). Add your own "jsApiList" (and "debug", "beta") to the object.
///
/// Same `(buf, buf_len, out_len)` convention as wx_token_get; the URL is not in the JSON, so
/// WX_JSSDK_CONFIG_MAX_LEN + 1 bytes always fit.
///
/// Returns WX_OK, WX_BUFFER_TOO_SMALL, WX_INVALID_ARGUMENT (bad arguments, an empty `url` or
/// one with control characters, "wx_card" (use wx_card_signature), or "agent_config" without
/// the "agentid" option), WX_UNKNOWN_APP, or what wx_ticket_get returns for the ticket:
/// WX_RATE_LIMITED, WX_WECHAT_ERROR, WX_NETWORK, WX_PROTOCOL, WX_STORE; WX_PANIC for an
/// internal bug.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wx_jssdk_config(
    appid: *const c_char,
    kind: *const c_char,
    url: *const c_char,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> i32 {
    ffi_boundary!({
        let appid = unsafe { required(appid, "appid") }?;
        let kind = unsafe { required(kind, "kind") }?;
        let url = unsafe { required(url, "url") }?;
        unsafe {
            output(buf, buf_len, out_len, || {
                api::jssdk_config(appid, kind, url)
            })
        }
    })
}
