//! The process-wide table of registered apps, built for hundreds of thousands of them.
//!
//! An open-addressing hash table whose slots are atomic pointers to the apps' token cells
//! (`token_cell`: what the cached path reads, packed apart from the apps by `hot_memory`, and
//! naming its app for every other path). Lookups are
//! lock-free and wait-free: one acquire load of the table, a hash, and a short probe of
//! acquire loads, with no shared write and no reference count, so their cost does not depend
//! on the number of apps. Inserts take the writer lock; they fill a free slot in place
//! (amortized O(1)), and when the table is half full they build one twice the size and publish
//! it. A table that readers may still be probing is never freed: the retired ones add up to
//! less than the live one (about 16 bytes per app at the largest size ever reached).
//!
//! Apps are never freed either (`App::new` leaks them), so a reader that found an app can use
//! it forever and the generation counters handed to bindings stay valid addresses.
//! `unregister` only marks the app retired: it stays in its slot, answers as unknown, and is
//! revived by a later registration of the same appid. The cost is that every distinct appid
//! ever registered in the process keeps its app (~1.2 KiB without a token) until the process
//! exits; a platform whose accounts churn through millions of distinct appids in one process
//! lifetime should restart it now and then.
//!
//! Fork-safe by construction: the table is plain memory and atomics, the writer lock a std
//! mutex taken by the atfork handler.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{LazyLock, Mutex};

use crate::app::{App, AppConfig};
use crate::fork;
use crate::hot_memory;
use crate::sync::LockExt;
use crate::token_cell::TokenCell;

struct Table {
    /// A power of two of them; never freed (`hot_memory`).
    slots: &'static [AtomicPtr<TokenCell>],
}

impl Table {
    fn with_capacity(capacity: usize) -> Table {
        Table {
            slots: hot_memory::null_slots(capacity),
        }
    }

    /// The slot holding `appid`'s cell, or the empty slot where it would go (linear probing;
    /// the load factor stays at or below one half, so a probe is short and always ends).
    #[inline]
    fn probe(
        &self,
        appid: &[u8],
        hash: u64,
    ) -> (&AtomicPtr<TokenCell>, Option<&'static TokenCell>) {
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        loop {
            let slot = &self.slots[i];
            let p = slot.load(Ordering::Acquire);
            if p.is_null() {
                return (slot, None);
            }
            // SAFETY: slots only ever hold cells made by `hot_memory`, which are never freed.
            let cell: &'static TokenCell = unsafe { &*p };
            if cell.is_for(appid) {
                return (slot, Some(cell));
            }
            i = (i + 1) & mask;
        }
    }

    fn apps(&self) -> impl Iterator<Item = &'static App> + '_ {
        self.slots.iter().filter_map(|s| {
            // SAFETY: as in `probe`.
            unsafe { s.load(Ordering::Acquire).as_ref() }.map(TokenCell::app)
        })
    }
}

struct Registry {
    /// The current table; retired tables are leaked (see the module comment).
    table: AtomicPtr<Table>,
    /// Serializes inserts and revivals, and holds the number of apps in the table; never
    /// taken by readers.
    writer: Mutex<usize>,
    /// Per-process random seed of `hash`.
    seed: u64,
    /// The retired tables, never freed: held here so that leak checkers (valgrind in the C
    /// and C++ tests, and users' own) count them as reachable rather than lost. Pushed to
    /// under the writer lock only.
    retired: Mutex<Vec<&'static Table>>,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| Registry {
    table: AtomicPtr::new(Box::into_raw(Box::new(Table::with_capacity(64)))),
    writer: Mutex::new(0),
    seed: std::collections::hash_map::RandomState::new().hash_one(0u8),
    retired: Mutex::new(Vec::new()),
});

/// Hashes an appid: FxHash-style multiply-rotate over 8-byte words, seeded per process, a
/// few nanoseconds for an 18-byte appid (SipHash took a fifth of a cached get). Appids come
/// from the operator's configuration, not from the network, so collision resistance against
/// chosen keys matters less than speed; the seed still varies the layout between processes.
#[inline]
fn hash(appid: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mix = |h: u64, w: u64| (h.rotate_left(5) ^ w).wrapping_mul(K);
    let bytes = appid;
    let mut h = REGISTRY.seed;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        h = mix(h, u64::from_le_bytes(c.try_into().unwrap_or_default()));
    }
    // The last 8 bytes, overlapping the chunks already mixed, in one load: copying the
    // remainder into a zeroed word went through memcpy and stalled the next load.
    let tail = match bytes.len().checked_sub(8) {
        Some(start) => u64::from_le_bytes(bytes[start..].try_into().unwrap_or_default()),
        None => bytes
            .iter()
            .enumerate()
            .fold(0, |t, (i, &b)| t | u64::from(b) << (8 * i)),
    };
    h = mix(h, tail ^ (bytes.len() as u64) << 56);
    // A multiply moves entropy only upwards, and the table indexes with the low bits:
    // MurmurHash3's finalizer mixes every input bit into every output bit.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[inline]
fn table() -> &'static Table {
    // SAFETY: tables are never freed once published.
    unsafe { &*REGISTRY.table.load(Ordering::Acquire) }
}

/// A registered app, found without taking any lock or touching a shared reference count.
/// A retired (unregistered) app is not found.
#[inline]
pub fn find(appid: &str) -> Option<&'static App> {
    find_bytes(appid.as_bytes())
}

/// `find` by the appid's bytes, unvalidated: only a registered (hence valid) appid matches.
#[inline]
pub fn find_bytes(appid: &[u8]) -> Option<&'static App> {
    find_cell(appid).map(TokenCell::app)
}

/// The token cell of a registered app, without touching the app: the cached path of
/// `wx_token_get`, which skips UTF-8 validation of its argument (only a registered, hence
/// valid, appid matches).
#[inline]
pub fn find_cell(appid: &[u8]) -> Option<&'static TokenCell> {
    table()
        .probe(appid, hash(appid))
        .1
        .filter(|cell| cell.is_registered())
}

/// Runs `f` on the registered app.
#[inline]
pub fn with_app<R>(appid: &str, f: impl FnOnce(&'static App) -> R) -> Option<R> {
    find(appid).map(f)
}

/// Registers `appid`, or reconfigures it if it exists, or revives it if it was unregistered.
/// Amortized O(1).
pub fn upsert(appid: &str, config: AppConfig) -> &'static App {
    let mut len = REGISTRY.writer.lock_ok();
    let h = hash(appid.as_bytes());
    // The writer lock is held, so this stays the current table until we replace it.
    let t = table();
    if let (_, Some(cell)) = t.probe(appid.as_bytes(), h) {
        let app = cell.app();
        app.reconfigure(config);
        return app;
    }
    let app = App::new(appid, config);
    if (*len + 1) * 2 > t.slots.len() {
        let bigger = Table::with_capacity(t.slots.len() * 2);
        for old in t.apps() {
            insert_into(&bigger, old, hash(old.appid().as_bytes()));
        }
        insert_into(&bigger, app, h);
        // Readers still probing the old table see a consistent (older) set of apps; it is
        // never freed.
        REGISTRY
            .table
            .store(Box::into_raw(Box::new(bigger)), Ordering::Release);
        REGISTRY.retired.lock_ok().push(t);
    } else {
        insert_into(t, app, h);
    }
    *len += 1;
    app
}

fn insert_into(t: &Table, app: &'static App, h: u64) {
    let (slot, found) = t.probe(app.appid().as_bytes(), h);
    debug_assert!(found.is_none());
    // Release: a reader that sees the pointer sees the fully built cell and app.
    slot.store(std::ptr::from_ref(app.cell()).cast_mut(), Ordering::Release);
}

/// Unregisters `appid`; `false` if it was not registered. See `App::retire`.
pub fn unregister(appid: &str) -> bool {
    let _writer = REGISTRY.writer.lock_ok();
    match table().probe(appid.as_bytes(), hash(appid.as_bytes())).1 {
        Some(cell) if cell.is_registered() => {
            cell.app().retire();
            true
        }
        _ => false,
    }
}

/// Every registered app, in no particular order. O(table size); for rare whole-process work
/// (a refresher restart), never for a request.
pub fn registered_apps() -> impl Iterator<Item = &'static App> {
    table().apps().filter(|a| a.is_registered())
}

/// Takes the registry's writer lock for `fork()`: first in the engine's one lock order
/// (registry writer, refresher, apps), so the registry cannot change until `fork.rs` releases
/// it.
pub fn fork_lock_writer() {
    fork::hold(REGISTRY.writer.lock_ok());
}

/// Locks every app (registered or retired: a retired app's fetch may still be landing) for
/// `fork()`. O(apps), about a microsecond per hundred apps.
pub fn fork_lock_apps() {
    for app in table().apps() {
        app.fork_lock();
    }
    crate::ticket::fork_lock_globals();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Appids that differ only in a few digits (how platforms number accounts) must not
    /// cluster: with linear probing at the table's largest load, an average lookup stays
    /// within a couple of slots.
    #[test]
    fn similar_appids_spread_over_the_table() {
        let n = 100_000usize;
        let capacity = (n * 2).next_power_of_two();
        let mut used = vec![false; capacity];
        let mut probes = 0usize;
        for i in 0..n {
            let mut at = hash(format!("wx{i:016}").as_bytes()) as usize & (capacity - 1);
            probes += 1;
            while used[at] {
                at = (at + 1) & (capacity - 1);
                probes += 1;
            }
            used[at] = true;
        }
        let mean = probes as f64 / n as f64;
        assert!(mean < 2.0, "{mean} slots per insert");
    }
}
