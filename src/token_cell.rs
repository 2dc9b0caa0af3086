//! SCALE: the cached read path of `wx_token_get`, at the cost of the floor any cache pays.
//!
//! Each app keeps, next to its `Arc<Token>`, an inline copy of the current token's bytes and
//! the instant until which it may be handed out, behind a sequence lock: a reader loads the
//! sequence, copies the words, and checks the sequence again. No reference count, no
//! thread-local bookkeeping, no lock, nothing written to shared memory; a reader that races a
//! writer (once per refresh) falls back to the `ArcSwap` path. The expiry check uses the coarse
//! monotonic clock (a few nanoseconds instead of ~20) against a deadline pulled in by more than
//! its tick, so it never hands out a token the precise clock would call expired.
//!
//! Writers are serialized by the app's state lock (`App::install` / `App::withdraw`).

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
use std::time::{Duration, Instant};

use zeroize::Zeroize;

use crate::upstream::MAX_TOKEN_LEN;

pub const WORDS: usize = MAX_TOKEN_LEN / 8;

/// More than the coarse clock's tick (1 to 10 ms depending on the kernel's HZ).
const COARSE_MARGIN: Duration = Duration::from_millis(20);

pub struct TokenCell {
    /// Odd while a writer is changing the cell.
    seq: AtomicU64,
    /// Deadline on `coarse_now_ns`'s clock; 0 when there is no token.
    until_ns: AtomicU64,
    len: AtomicU32,
    words: [AtomicU64; WORDS],
}

/// A token's bytes as copied out of a cell.
pub struct Copied {
    words: MaybeUninit<[u64; WORDS]>,
    len: usize,
}

impl Copied {
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `read` initialized the first len.div_ceil(8) words, and len <= 8 * WORDS.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), self.len) }
    }
}

impl Drop for Copied {
    fn drop(&mut self) {
        // The copy is a bearer credential too.
        let n = self.len.div_ceil(8);
        // SAFETY: as in `bytes`: the first n words are initialized.
        let words =
            unsafe { std::slice::from_raw_parts_mut(self.words.as_mut_ptr().cast::<u64>(), n) };
        words.zeroize();
    }
}

impl Default for TokenCell {
    fn default() -> TokenCell {
        TokenCell {
            seq: AtomicU64::new(0),
            until_ns: AtomicU64::new(0),
            len: AtomicU32::new(0),
            words: [const { AtomicU64::new(0) }; WORDS],
        }
    }
}

impl TokenCell {
    /// Publishes `value`, usable until `expires_at`. Callers hold the app's state lock.
    pub fn publish(&self, value: &[u8], expires_at: Instant) {
        debug_assert!(value.len() <= MAX_TOKEN_LEN);
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
            let stale = cell.len.swap(value.len() as u32, Ordering::Relaxed) as usize;
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
            let stale = cell.len.swap(0, Ordering::Relaxed) as usize;
            for w in &cell.words[..stale.div_ceil(8)] {
                w.store(0, Ordering::Relaxed);
            }
            cell.until_ns.store(0, Ordering::Relaxed);
        });
    }

    fn write(&self, f: impl FnOnce(&TokenCell)) {
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        f(self);
        self.seq.store(s + 2, Ordering::Release);
    }

    /// The cached token if it is usable now; `None` if there is none, it is (nearly) expired,
    /// or a writer got in the way (then the caller takes the slow path).
    #[inline]
    pub fn read(&self) -> Option<Copied> {
        let s1 = self.seq.load(Ordering::Acquire);
        if s1 & 1 != 0 || coarse_now_ns() >= self.until_ns.load(Ordering::Relaxed) {
            return None;
        }
        let len = (self.len.load(Ordering::Relaxed) as usize).min(MAX_TOKEN_LEN);
        let mut out = Copied {
            words: MaybeUninit::uninit(),
            len: 0,
        };
        let dst = out.words.as_mut_ptr().cast::<u64>();
        for (i, w) in self.words[..len.div_ceil(8)].iter().enumerate() {
            // SAFETY: i < WORDS.
            unsafe { dst.add(i).write(w.load(Ordering::Relaxed)) };
        }
        out.len = len;
        fence(Ordering::Acquire);
        (self.seq.load(Ordering::Relaxed) == s1 && len > 0).then_some(out)
    }
}

#[cfg(target_os = "linux")]
const COARSE: libc::clockid_t = libc::CLOCK_MONOTONIC_COARSE;
#[cfg(not(target_os = "linux"))]
const COARSE: libc::clockid_t = libc::CLOCK_MONOTONIC;

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

/// The monotonic clock `Instant` uses, in nanoseconds.
fn precise_now_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// The same clock as of the last tick: never ahead of `precise_now_ns`, at most a tick behind.
#[inline]
fn coarse_now_ns() -> u64 {
    clock_ns(COARSE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_read_replace_clear() {
        let cell = TokenCell::default();
        assert!(cell.read().is_none());
        let later = Instant::now() + Duration::from_secs(60);
        cell.publish(b"ABCDEFGHIJKLMNOPQRS", later);
        assert_eq!(cell.read().unwrap().bytes(), b"ABCDEFGHIJKLMNOPQRS");
        cell.publish(b"xyz", later);
        assert_eq!(cell.read().unwrap().bytes(), b"xyz");
        // The longer token's tail is gone, not just hidden by the length.
        assert!(
            cell.words[1..]
                .iter()
                .all(|w| w.load(Ordering::Relaxed) == 0)
        );
        cell.clear();
        assert!(cell.read().is_none());
        assert!(cell.words.iter().all(|w| w.load(Ordering::Relaxed) == 0));
        let max = vec![b'a'; MAX_TOKEN_LEN];
        cell.publish(&max, later);
        assert_eq!(cell.read().unwrap().bytes(), &max[..]);
    }

    #[test]
    fn a_token_near_its_expiry_is_not_served_from_the_cell() {
        let cell = TokenCell::default();
        cell.publish(b"soon", Instant::now() + COARSE_MARGIN / 2);
        assert!(cell.read().is_none());
        cell.publish(b"gone", Instant::now() - Duration::from_secs(1));
        assert!(cell.read().is_none());
    }

    #[test]
    fn readers_never_see_a_torn_token() {
        let cell: &'static TokenCell = Box::leak(Box::default());
        let later = Instant::now() + Duration::from_secs(60);
        let tokens: Vec<Vec<u8>> = (0..8u8)
            .map(|i| vec![b'a' + i; 40 + 50 * usize::from(i)])
            .collect();
        let stop = &*Box::leak(Box::new(std::sync::atomic::AtomicBool::new(false)));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let tokens = tokens.clone();
                std::thread::spawn(move || {
                    let mut seen = 0;
                    while !stop.load(Ordering::Relaxed) {
                        if let Some(c) = cell.read() {
                            assert!(tokens.iter().any(|t| t[..] == *c.bytes()), "torn read");
                            seen += 1;
                        }
                    }
                    seen
                })
            })
            .collect();
        for i in 0..50_000 {
            cell.publish(&tokens[i % tokens.len()], later);
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            assert!(r.join().unwrap() > 0);
        }
    }
}
