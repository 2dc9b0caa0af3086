//! Reading arguments from C and writing results back, defensively: NULL, unterminated or
//! non-UTF-8 strings and impossible lengths become INVALID_ARGUMENT, never a crash.

use std::ffi::c_char;

use crate::error::Error;
use crate::status::Status;

/// No legitimate string argument is longer; scanning stops here instead of running through
/// memory looking for a NUL that a buggy caller forgot.
pub(crate) const MAX_ARG_LEN: usize = 64 * 1024;

/// Borrows a required C string argument.
///
/// # Safety
/// `ptr` must be NULL or point to memory readable up to its NUL or `MAX_ARG_LEN` bytes.
pub unsafe fn required<'a>(ptr: *const c_char, name: &str) -> Result<&'a str, Error> {
    unsafe { optional(ptr, name) }?.ok_or_else(|| Error::invalid(format!("{name} is NULL")))
}

/// Borrows an optional C string argument (NULL is `None`).
///
/// # Safety
/// As for `required`.
pub unsafe fn optional<'a>(ptr: *const c_char, name: &str) -> Result<Option<&'a str>, Error> {
    if ptr.is_null() {
        return Ok(None);
    }
    let bytes = unsafe { required_bytes(ptr, name) }?;
    utf8(bytes, name).map(Some)
}

/// A required C string argument's bytes, not yet checked to be UTF-8 (see `utf8`).
///
/// # Safety
/// As for `required`.
#[inline]
pub unsafe fn required_bytes<'a>(ptr: *const c_char, name: &str) -> Result<&'a [u8], Error> {
    if ptr.is_null() {
        return Err(Error::invalid(format!("{name} is NULL")));
    }
    // SAFETY: the caller guarantees readability up to the NUL or the bound, and strnlen
    // reads no further than either.
    let len = unsafe { crate::platform::strnlen(ptr, MAX_ARG_LEN + 1) };
    if len > MAX_ARG_LEN {
        return Err(Error::invalid(format!(
            "{name} is longer than {MAX_ARG_LEN} bytes or not NUL-terminated"
        )));
    }
    Ok(unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) })
}

pub fn utf8<'a>(bytes: &'a [u8], name: &str) -> Result<&'a str, Error> {
    std::str::from_utf8(bytes).map_err(|_| Error::invalid(format!("{name} is not valid UTF-8")))
}

/// Checks a caller-allocated output buffer before anything is computed, so a bad one fails
/// fast and nothing is written.
pub fn check_buffer(buf: *mut c_char, buf_len: usize) -> Result<(), Error> {
    if buf_len > isize::MAX as usize {
        return Err(Error::invalid("buf_len is larger than any buffer can be"));
    }
    if buf.is_null() && buf_len != 0 {
        return Err(Error::invalid("buf is NULL but buf_len is not 0"));
    }
    Ok(())
}

/// Copies `value` plus a NUL into `buf` if it fits, and reports its length either way:
/// the `(buf, buf_len, out_len)` convention, where BUFFER_TOO_SMALL tells the caller the
/// size to allocate and writes nothing into `buf`.
///
/// # Safety
/// `buf` must be valid for `buf_len` bytes (checked by `check_buffer`), `out_len` NULL or
/// writable.
pub unsafe fn copy_out(
    value: &[u8],
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> Result<(), Error> {
    unsafe { write_opt(out_len, value.len()) };
    if value.len() >= buf_len {
        return Err(Error::new(
            Status::BufferTooSmall,
            format!(
                "buffer of {buf_len} bytes is too small: {} bytes plus a NUL are needed",
                value.len()
            ),
        ));
    }
    // SAFETY: value.len() + 1 <= buf_len and buf is valid for buf_len bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(value.as_ptr(), buf.cast::<u8>(), value.len());
        *buf.add(value.len()) = 0;
    }
    Ok(())
}

/// The `(buf, buf_len, out_len)` output of a value computed on demand: the buffer is checked
/// before `value` runs, so a bad one fails without any work (or I/O), and nothing is written
/// unless `value` succeeds.
///
/// # Safety
/// As for `copy_out`.
pub unsafe fn output<T: AsRef<[u8]>>(
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
    value: impl FnOnce() -> Result<T, Error>,
) -> Result<(), Error> {
    check_buffer(buf, buf_len)?;
    let value = value()?;
    unsafe { copy_out(value.as_ref(), buf, buf_len, out_len) }
}

/// Writes an optional out-parameter.
///
/// # Safety
/// `ptr` must be NULL or valid for a write of `T`.
pub unsafe fn write_opt<T>(ptr: *mut T, value: T) {
    if !ptr.is_null() {
        unsafe { ptr.write(value) };
    }
}
