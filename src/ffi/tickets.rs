//! The C ABI of issue #13: JS-SDK tickets (mp and WeCom), their signatures, and wx.config.

use std::ffi::c_char;

use super::args::{check_buffer, copy_out, required};
use super::boundary::ffi_boundary;
use crate::error::Error;
use crate::jssdk;

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
