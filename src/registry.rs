//! The process-wide table of registered apps.
//!
//! Lookups are lock-free (`ArcSwap` of an immutable map) because every `get` starts with one;
//! registration copies the map under a writer lock, which is fine for a table that changes
//! a handful of times in a process's life. Apps are never removed, so they are leaked to
//! `&'static` and their generation counters can be handed to bindings as stable pointers.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use crate::app::{App, AppConfig};

type Map = HashMap<Box<str>, &'static App>;

struct Registry {
    apps: ArcSwap<Map>,
    writer: Mutex<()>,
}

static REGISTRY: LazyLock<Registry> =
    LazyLock::new(|| Registry { apps: ArcSwap::from_pointee(Map::new()), writer: Mutex::new(()) });

/// Runs `f` on the app without taking any lock or touching a shared reference count.
pub fn with_app<R>(appid: &str, f: impl FnOnce(&'static App) -> R) -> Option<R> {
    let map = REGISTRY.apps.load();
    map.get(appid).map(|app| f(app))
}

pub fn find(appid: &str) -> Option<&'static App> {
    with_app(appid, |app| app)
}

/// Registers `appid`, or reconfigures it if it exists.
pub fn upsert(appid: &str, config: AppConfig) {
    let _writer = REGISTRY.writer.lock();
    if let Some(app) = find(appid) {
        app.reconfigure(config);
        return;
    }
    let app: &'static App = Box::leak(Box::new(App::new(appid, config)));
    let mut map = Map::clone(&REGISTRY.apps.load());
    map.insert(appid.into(), app);
    REGISTRY.apps.store(Arc::new(map));
}

pub fn snapshot() -> Arc<Map> {
    REGISTRY.apps.load_full()
}

/// Locks the registry and every app for `fork()`, in the one order used everywhere
/// (registry writer, then apps), so no lock is inherited mid-update by the child.
///
/// # Safety
/// Must be followed by `fork_unlock_all` on the same thread, or in the fork child.
pub unsafe fn fork_lock_all() {
    std::mem::forget(REGISTRY.writer.lock());
    for app in REGISTRY.apps.load().values() {
        unsafe { app.fork_lock() };
    }
}

/// # Safety
/// Only after `fork_lock_all`; the registry cannot have changed since, its writer was held.
pub unsafe fn fork_unlock_all() {
    for app in REGISTRY.apps.load().values() {
        unsafe { app.fork_unlock() };
    }
    unsafe { crate::fork::force_unlock(&REGISTRY.writer) };
}
