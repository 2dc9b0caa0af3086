//! Memory for what a cached get touches: the app table's slots and the apps' token cells.
//!
//! A cached get of a random app among 100,000 is bound by memory, not by instructions: it
//! costs what it touches, in cache lines and in pages. With each token cell inside its app (one
//! 1.8 KiB allocation per app), the cells of 100,000 apps were spread over 190 MB and 10,000
//! apps outgrew the TLB, so a lookup paid page walks on top of its cache misses (on a virtual
//! machine two-dimensional ones, several more misses each). Here the cells sit side by side,
//! 320 bytes each, in chunks that double from 64 cells up to 2 MiB: the cells of 10,000 apps
//! span 3.2 MB instead of 18, those of 100,000 apps 32 MB instead of 190. A small process pays
//! nothing for it, its chunks being small.
//!
//! Transparent huge pages (`madvise(MADV_HUGEPAGE)` on the 2 MiB chunks) were tried and left
//! out: at 100,000 apps (576-byte cells then) they brought a cached get from 1.59-1.76x of its
//! floor to 1.42-1.55x, but on this project's virtual machine each fresh huge page took about
//! 4 ms to fault in (the host backs it on first touch), which added 1 µs to every registration
//! (docs/SCALE.md).
//!
//! Nothing here is ever freed: tables and cells live as long as the apps, which live as long as
//! the process (see `registry`). The memory is mapped rather than allocated, so leak checkers
//! (valgrind in the C and C++ tests) do not count it.

use std::sync::Mutex;
use std::sync::atomic::AtomicPtr;

use crate::platform::map_zeroed;
use crate::sync::LockExt;
use crate::token_cell::TokenCell;

const PAGE: usize = 4096;
/// The first chunk's cells; each next chunk doubles, up to `LAST_CHUNK`'s worth.
const FIRST_CHUNK: usize = 64;
const LAST_CHUNK: usize = (2 << 20) / size_of::<TokenCell>();

struct Slab {
    next: *mut TokenCell,
    left: usize,
    /// The capacity of the last chunk mapped.
    chunk: usize,
}

// SAFETY: the pointer is only followed under the slab's mutex, to memory owned by the slab.
unsafe impl Send for Slab {}

/// Taken only by `App::new`, which the registry calls under its writer lock, so no thread
/// holds it across a `fork()` (the atfork handler takes the writer lock first).
static SLAB: Mutex<Slab> = Mutex::new(Slab {
    next: std::ptr::null_mut(),
    left: 0,
    chunk: 0,
});

/// A new token cell for `appid`, next to the cells made before it; never freed.
pub fn new_cell(appid: &str) -> &'static TokenCell {
    let mut slab = SLAB.lock_ok();
    if slab.left == 0 {
        let cells = (slab.chunk * 2).clamp(FIRST_CHUNK, LAST_CHUNK);
        match map_zeroed((cells * size_of::<TokenCell>()).next_multiple_of(PAGE)) {
            Some(chunk) => {
                slab.next = chunk.as_ptr().cast();
                slab.left = cells;
                slab.chunk = cells;
            }
            // Out of address space: this cell on the heap, unpacked but just as correct.
            None => return Box::leak(Box::new(TokenCell::new(appid))),
        }
    }
    let cell = slab.next;
    // SAFETY: `left > 0`, so `cell` is an unused, suitably aligned (page-aligned chunk,
    // 64-byte cells) slot of a chunk that is never unmapped, and no one else refers to it.
    unsafe {
        cell.write(TokenCell::new(appid));
        slab.next = cell.add(1);
    }
    slab.left -= 1;
    // SAFETY: initialized just above, and never freed or handed out again.
    unsafe { &*cell }
}

/// `n` null atomic pointers, never freed: the slots of an app table.
pub fn null_slots<T>(n: usize) -> &'static [AtomicPtr<T>] {
    match map_zeroed((n * size_of::<AtomicPtr<T>>()).next_multiple_of(PAGE)) {
        // SAFETY: zeroed memory is a valid null `AtomicPtr` (same layout as a raw pointer), the
        // mapping is page-aligned and at least `bytes` long, and it is never unmapped.
        Some(p) => unsafe { std::slice::from_raw_parts(p.as_ptr().cast(), n) },
        None => Box::leak(
            (0..n)
                .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn cells_sit_side_by_side() {
        // Enough cells to go through the growing chunks into full-size ones.
        let cells: Vec<usize> = (0..2 * LAST_CHUNK)
            .map(|i| std::ptr::from_ref(new_cell(&format!("wx_slab_{i}"))) as usize)
            .collect();
        assert!(cells.iter().all(|c| c % 64 == 0), "cells are line-aligned");
        // Other tests make cells meanwhile, and chunks end, so not every pair is adjacent;
        // nearly all are when the slab packs them.
        let adjacent = cells
            .windows(2)
            .filter(|w| w[1] == w[0] + size_of::<TokenCell>())
            .count();
        assert!(
            adjacent * 100 >= cells.len() * 95,
            "{adjacent} of {}",
            cells.len()
        );
        let last = new_cell("wx_slab_key");
        assert_eq!(last.key_is(b"wx_slab_key"), Some(true));
    }

    #[test]
    fn table_slots_start_null() {
        for n in [64, (2 << 20) / 8 + 1] {
            let slots = null_slots::<u8>(n);
            assert_eq!(slots.len(), n);
            assert!(slots.iter().all(|s| s.load(Ordering::Relaxed).is_null()));
            slots[n - 1].store(std::ptr::dangling_mut(), Ordering::Relaxed);
        }
    }
}
