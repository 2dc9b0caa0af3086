//! The cached read path of `wx_token_get`, at the cost of the floor any cache pays.
//!
//! Each app keeps, next to its `Arc<Token>`, an inline copy of the current token's bytes and
//! the instant until which it may be handed out, behind a sequence lock: a reader loads the
//! sequence, copies the words, and checks the sequence again. No reference count, no
//! thread-local bookkeeping, no lock, nothing written to shared memory; a reader that races a
//! writer (once per refresh) falls back to the `ArcSwap` path. The expiry check uses the coarse
//! monotonic clock (a few nanoseconds instead of ~20) against a deadline pulled in by more than
//! its tick, so it never hands out a token the precise clock would call expired.
//!
//! The cell also holds what a lookup compares (the appid, inline when it is short, as every
//! WeChat appid and WeCom corpid is) and the registered flag, right before the token's words,
//! so that a lookup of a random app among 100,000 touches three to five consecutive cache lines
//! instead of the app's fields, its appid's heap copy and the token's two allocations.
//!
//! The app table points at cells, not apps, and cells are packed together apart from the apps
//! (`hot_memory`), so the cached path touches no part of the app itself: the cell names its app
//! for every other path.
//!
//! Writers are serialized by the app's state lock (`App::install` / `App::withdraw`).

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU16, AtomicU32, AtomicU64, Ordering, fence};
use std::time::{Duration, Instant};

use zeroize::Zeroize;

use crate::app::App;
use crate::upstream::MAX_TOKEN_LEN;

/// The longest token kept in the cell: 256 bytes, about twice today's access_tokens (136 to 157
/// characters). WeChat reserves up to 512 (`MAX_TOKEN_LEN`): a longer token leaves the cell
/// empty and is served by the `ArcSwap` path, correct and a little slower. Every byte of
/// capacity is paid in memory by every app, and 100,000 apps' cells read at random cost what
/// they span: with 512 inline bytes (576-byte cells) such a read took 1.59 to 1.80 times its
/// floor, with 256 (320-byte cells) 1.41 to 1.50 times (docs/SCALE.md).
pub const INLINE_LEN: usize = 256;
const WORDS: usize = INLINE_LEN / 8;

/// More than the coarse clock's tick (1 to 10 ms depending on the kernel's HZ).
const COARSE_MARGIN: Duration = Duration::from_millis(20);

/// Appids up to this long are compared in the cell's first cache line: WeChat appids and WeCom
/// corpids have 18 characters.
const KEY_LEN: usize = 24;

/// Laid out so that a read touches as few cache lines as it can: what a lookup and a read
/// check (sequence, length, flags, deadline, key) fits in 40 bytes, and the token's words
/// start right after them in the same line, so a token of up to 152 bytes is read in three
/// lines and one of up to 216 (WeCom's, about 214) in four. The app pointer, which the cached
/// path never follows, goes last.
#[repr(C, align(64))]
pub struct TokenCell {
    /// Odd while a writer is changing the cell. 32 bits: a reader would be fooled only by
    /// exactly 2^31 writes (refreshes) while it copies 256 bytes.
    seq: AtomicU32,
    /// At most `INLINE_LEN`.
    len: AtomicU16,
    /// False once the app is unregistered; changed under the app's state lock.
    registered: AtomicBool,
    /// The appid's length if it fits `key`, else 0 (then the app's own copy is compared).
    /// Never changes.
    key_len: u8,
    /// Deadline on `coarse_now_ns`'s clock; 0 when there is no token.
    until_ns: AtomicU64,
    key: [u8; KEY_LEN],
    words: [AtomicU64; WORDS],
    /// The cell's app; set once, before the cell is published in the app table.
    app: AtomicPtr<App>,
}

impl TokenCell {
    /// An empty cell of a registered app.
    pub fn new(appid: &str) -> TokenCell {
        let mut key = [0u8; KEY_LEN];
        let key_len = if appid.len() <= KEY_LEN {
            key[..appid.len()].copy_from_slice(appid.as_bytes());
            appid.len() as u8
        } else {
            0
        };
        TokenCell {
            seq: AtomicU32::new(0),
            len: AtomicU16::new(0),
            registered: AtomicBool::new(true),
            key_len,
            until_ns: AtomicU64::new(0),
            key,
            words: [const { AtomicU64::new(0) }; WORDS],
            app: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// Names the cell's app; once, before the cell is reachable from the app table.
    pub fn bind(&self, app: &'static App) {
        let was = self
            .app
            .swap(std::ptr::from_ref(app).cast_mut(), Ordering::Release);
        debug_assert!(was.is_null(), "a cell belongs to one app");
    }

    /// The cell's app.
    #[inline]
    pub fn app(&self) -> &'static App {
        let app = self.app.load(Ordering::Acquire);
        assert!(!app.is_null(), "a published cell is bound to its app");
        // SAFETY: apps are leaked by `App::new` and never freed.
        unsafe { &*app }
    }

    /// Whether `appid` is this cell's app; `None` when the appid is too long to be kept here.
    #[inline]
    pub fn key_is(&self, appid: &[u8]) -> Option<bool> {
        (self.key_len != 0).then(|| &self.key[..usize::from(self.key_len)] == appid)
    }

    /// Whether this is `appid`'s cell: compared here when the appid is short, else with the
    /// app's own copy.
    #[inline]
    pub fn is_for(&self, appid: &[u8]) -> bool {
        self.key_is(appid)
            .unwrap_or_else(|| self.app().appid().as_bytes() == appid)
    }

    #[inline]
    pub fn is_registered(&self) -> bool {
        self.registered.load(Ordering::Acquire)
    }

    pub fn set_registered(&self, registered: bool) {
        self.registered.store(registered, Ordering::Release);
    }

    /// Publishes `value`, usable until `expires_at`; a value longer than `INLINE_LEN` empties
    /// the cell instead. Callers hold the app's state lock.
    pub fn publish(&self, value: &[u8], expires_at: Instant) {
        debug_assert!(value.len() <= MAX_TOKEN_LEN);
        if value.len() > INLINE_LEN {
            return self.clear();
        }
        // Precise clock first, then the remaining time: the deadline can only come out early.
        let now_ns = precise_now_ns();
        let remaining = expires_at.saturating_duration_since(Instant::now());
        let until = match remaining.checked_sub(COARSE_MARGIN) {
            Some(left) => now_ns.saturating_add(u64::try_from(left.as_nanos()).unwrap_or(0)),
            None => 0,
        };
        self.write(|cell| {
            for (i, chunk) in value.chunks(8).enumerate() {
                let mut w = [0u8; 8];
                w[..chunk.len()].copy_from_slice(chunk);
                cell.words[i].store(u64::from_ne_bytes(w), Ordering::Relaxed);
                w.zeroize();
            }
            let stale = usize::from(cell.len.swap(value.len() as u16, Ordering::Relaxed));
            // Zero what is left of a longer predecessor.
            for w in cell
                .words
                .iter()
                .take(stale.div_ceil(8))
                .skip(value.len().div_ceil(8))
            {
                w.store(0, Ordering::Relaxed);
            }
            cell.until_ns.store(until, Ordering::Relaxed);
        });
    }

    /// Forgets the token, zeroing its bytes. Callers hold the app's state lock.
    pub fn clear(&self) {
        self.write(|cell| {
            let stale = usize::from(cell.len.swap(0, Ordering::Relaxed));
            for w in &cell.words[..stale.div_ceil(8)] {
                w.store(0, Ordering::Relaxed);
            }
            cell.until_ns.store(0, Ordering::Relaxed);
        });
    }

    fn write(&self, f: impl FnOnce(&TokenCell)) {
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        f(self);
        self.seq.store(s.wrapping_add(2), Ordering::Release);
    }

    /// Runs `f` on the cached token's bytes if it is usable now; `None` if there is none, it
    /// is (nearly) expired, or a writer got in the way (then the caller takes the slow path).
    /// The copy stays in this frame: returning it would move half a KiB per call.
    #[inline]
    pub fn with_copy<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let s1 = self.seq.load(Ordering::Acquire);
        if s1 & 1 != 0 || coarse_now_ns() >= self.until_ns.load(Ordering::Relaxed) {
            return None;
        }
        let len = usize::from(self.len.load(Ordering::Relaxed)).min(INLINE_LEN);
        let n = len.div_ceil(8);
        // Uninitialized, not zeroed: zeroing 512 bytes per call cost more than the copy.
        let mut copy = MaybeUninit::<[u64; WORDS]>::uninit();
        let dst = copy.as_mut_ptr().cast::<u64>();
        for (i, w) in self.words[..n].iter().enumerate() {
            // SAFETY: i < n <= WORDS.
            unsafe { dst.add(i).write(w.load(Ordering::Relaxed)) };
        }
        fence(Ordering::Acquire);
        if self.seq.load(Ordering::Relaxed) != s1 || len == 0 {
            wipe(dst, n);
            return None;
        }
        // SAFETY: the first n words are initialized, and len <= 8 * n.
        let r = f(unsafe { std::slice::from_raw_parts(dst.cast::<u8>(), len) });
        wipe(dst, n);
        Some(r)
    }
}

/// Zeroes the reader's copy (a bearer credential) word by word: volatile, so it is not
/// optimized away, and not `zeroize`'s memset call, which cost as much as the copy.
#[inline]
fn wipe(words: *mut u64, n: usize) {
    for i in 0..n {
        // SAFETY: the caller's buffer holds at least n words.
        unsafe { std::ptr::write_volatile(words.add(i), 0) };
    }
    std::sync::atomic::compiler_fence(Ordering::SeqCst);
}

/// The monotonic clock `Instant` uses, in nanoseconds (the OS call is in `platform`, so a port
/// supplies its own clock there).
#[inline]
fn precise_now_ns() -> u64 {
    crate::platform::monotonic_ns()
}

/// The same clock as of the last tick: never ahead of `precise_now_ns`, at most a tick behind.
#[inline]
fn coarse_now_ns() -> u64 {
    crate::platform::monotonic_coarse_ns()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_read_replace_clear() {
        let cell = TokenCell::new("wx_cell_test");
        assert!(cell.with_copy(|_| ()).is_none());
        let later = Instant::now() + Duration::from_secs(60);
        cell.publish(b"ABCDEFGHIJKLMNOPQRS", later);
        assert_eq!(
            cell.with_copy(<[u8]>::to_vec).unwrap(),
            b"ABCDEFGHIJKLMNOPQRS"
        );
        cell.publish(b"xyz", later);
        assert_eq!(cell.with_copy(<[u8]>::to_vec).unwrap(), b"xyz");
        // The longer token's tail is gone, not just hidden by the length.
        assert!(
            cell.words[1..]
                .iter()
                .all(|w| w.load(Ordering::Relaxed) == 0)
        );
        cell.clear();
        assert!(cell.with_copy(|_| ()).is_none());
        assert!(cell.words.iter().all(|w| w.load(Ordering::Relaxed) == 0));
        let max = vec![b'a'; INLINE_LEN];
        cell.publish(&max, later);
        assert_eq!(cell.with_copy(<[u8]>::to_vec).unwrap(), &max[..]);
        // Longer: not in the cell (the caller serves it from `current`), and nothing of it or
        // of its predecessor left in the words.
        cell.publish(&vec![b'b'; INLINE_LEN + 1], later);
        assert!(cell.with_copy(|_| ()).is_none());
        assert!(cell.words.iter().all(|w| w.load(Ordering::Relaxed) == 0));
    }

    #[test]
    fn short_appids_are_compared_in_the_cell() {
        let cell = TokenCell::new("wx1234567890abcdef");
        assert_eq!(cell.key_is(b"wx1234567890abcdef"), Some(true));
        assert_eq!(cell.key_is(b"wx1234567890abcdeg"), Some(false));
        assert_eq!(cell.key_is(b"wx1234567890abcde"), Some(false));
        let long = "x".repeat(KEY_LEN + 1);
        assert_eq!(TokenCell::new(&long).key_is(long.as_bytes()), None);
        assert_eq!(
            std::mem::offset_of!(TokenCell, words),
            40,
            "the header and the token's first 24 bytes share a line"
        );
        assert_eq!(size_of::<TokenCell>(), 320, "five lines");
    }

    #[test]
    fn a_token_near_its_expiry_is_not_served_from_the_cell() {
        let cell = TokenCell::new("wx_cell_test");
        cell.publish(b"soon", Instant::now() + COARSE_MARGIN / 2);
        assert!(cell.with_copy(|_| ()).is_none());
        cell.publish(b"gone", Instant::now() - Duration::from_secs(1));
        assert!(cell.with_copy(|_| ()).is_none());
    }

    #[test]
    fn readers_never_see_a_torn_token() {
        use std::sync::atomic::{AtomicBool, AtomicUsize};
        let cell: &'static TokenCell = Box::leak(Box::new(TokenCell::new("wx_cell_test")));
        let later = Instant::now() + Duration::from_secs(60);
        let tokens: Vec<Vec<u8>> = (0..8u8)
            .map(|i| vec![b'a' + i; 40 + 30 * usize::from(i)])
            .collect();
        let stop = &*Box::leak(Box::new(AtomicBool::new(false)));
        let reads = &*Box::leak(Box::new(AtomicUsize::new(0)));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let tokens = tokens.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        if let Some(c) = cell.with_copy(<[u8]>::to_vec) {
                            assert!(tokens.contains(&c), "torn read");
                            reads.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        // Publish until the readers have read a fair number of times alongside the writes (on
        // a loaded machine they may not be scheduled during a fixed number of publishes), so
        // the test never passes without having looked.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut i = 0usize;
        while (i < 50_000 || reads.load(Ordering::Relaxed) < 10_000) && Instant::now() < deadline {
            cell.publish(&tokens[i % tokens.len()], later);
            i += 1;
            if i % 256 == 0 {
                std::thread::yield_now();
            }
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            r.join().unwrap();
        }
        assert!(reads.load(Ordering::Relaxed) > 0, "the readers read");
    }
}
