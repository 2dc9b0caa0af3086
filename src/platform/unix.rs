//! The unix side of `platform` (see its module doc for the interface a port provides).

use std::ffi::c_char;
use std::fs::File;
use std::os::fd::AsRawFd;

/// An open file as the OS knows it: a file descriptor.
pub type RawFd = i32;

/// Registers handlers run around `fork()` in the forking thread: `prepare` before, `parent`
/// and `child` after, on each side.
pub fn at_fork(prepare: extern "C" fn(), parent: extern "C" fn(), child: extern "C" fn()) {
    // SAFETY: plain function pointers with the signature pthread_atfork expects.
    unsafe {
        libc::pthread_atfork(Some(prepare), Some(parent), Some(child));
    }
}

pub fn raw_fd(file: &File) -> RawFd {
    file.as_raw_fd()
}

/// Closes a descriptor; async-signal-safe, so usable in a fork child's handler.
pub fn close_fd(fd: RawFd) {
    // SAFETY: closing a descriptor this process owns (its copy, in a fork child).
    unsafe { libc::close(fd) };
}

/// This host's name, if the OS gives one (for lease owner ids an operator can read).
pub fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: buf is writable for its length; gethostname NUL-terminates unless truncated,
    // which the search below tolerates.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// The length of the C string at `ptr`, scanning at most `max` bytes.
///
/// # Safety
/// `ptr` must be readable up to its NUL or `max` bytes, whichever comes first.
pub unsafe fn strnlen(ptr: *const c_char, max: usize) -> usize {
    // SAFETY: as the caller guarantees; libc's strnlen reads no further than either bound.
    unsafe { libc::strnlen(ptr, max) }
}

#[cfg(target_os = "linux")]
const COARSE: libc::clockid_t = libc::CLOCK_MONOTONIC_COARSE;
#[cfg(not(target_os = "linux"))]
const COARSE: libc::clockid_t = libc::CLOCK_MONOTONIC;

#[inline]
fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec; both clocks exist on every supported system.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// The monotonic clock `Instant` uses, in nanoseconds (the token cell's precise clock).
#[inline]
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// The same clock as of the last scheduler tick (cheaper: no syscall, no TSC read on Linux):
/// never ahead of `monotonic_ns`, at most a tick behind. The cached read path uses it.
#[inline]
pub fn monotonic_coarse_ns() -> u64 {
    clock_ns(COARSE)
}

/// `len` bytes of zeroed memory, never unmapped (the engine's hot tables live as long as the
/// process), or `None` if the OS refuses.
pub fn map_zeroed(len: usize) -> Option<std::ptr::NonNull<u8>> {
    // SAFETY: an anonymous private mapping at an address of the kernel's choice.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return None;
    }
    std::ptr::NonNull::new(base.cast())
}
