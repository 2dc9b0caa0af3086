//! What differs between operating systems, behind one small interface: fork handlers, raw file
//! descriptors, the host name, a bounded string length, the monotonic clocks of the cached
//! read path. The rest of the engine calls only these functions (the file store's own unix
//! side is `store/fs_unix.rs`; `tests/platform.rs` fails on an OS API used anywhere else), so a port adds a sibling of `unix.rs` (Windows: no fork, so `at_fork` does
//! nothing; HANDLEs for fds; GetComputerNameExW) and touches nothing else.
//!
//! Built and tested: Linux x86-64 only. Other unix targets should build but have not been;
//! anything else is not yet built (the file store, `store/file.rs`, also needs its own port of
//! `flock`).

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::*;

#[cfg(not(unix))]
compile_error!(
    "wx_token has been built for unix targets only so far: a port adds src/platform/<os>.rs \
     with the functions of src/platform/unix.rs (see src/platform/mod.rs)"
);
