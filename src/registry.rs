//! The process-wide table of registered apps.
//!
//! Lookups are lock-free (`ArcSwap` of an immutable map) because every `get` starts with one;
//! registration copies the map under a writer lock, which is fine for a table that changes
//! a handful of times in a process's life. Apps are never removed, so they are leaked to
//! `&'static` and their generation counters can be handed to bindings as stable pointers.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use arc_swap::ArcSwap;

use crate::app::{App, AppConfig};
use crate::fork;
use crate::sync::LockExt;

type Map = HashMap<Box<str>, &'static App>;

struct Registry {
    apps: ArcSwap<Map>,
    writer: Mutex<()>,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| Registry {
    apps: ArcSwap::from_pointee(Map::new()),
    writer: Mutex::new(()),
});

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
    let _writer = REGISTRY.writer.lock_ok();
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
/// (registry writer, then apps), so no lock is inherited mid-update by the child. The registry
/// cannot change until `fork.rs` releases them, since its writer is held.
pub fn fork_lock_all() {
    fork::hold(REGISTRY.writer.lock_ok());
    for app in REGISTRY.apps.load().values() {
        app.fork_lock();
    }
    crate::ticket::fork_lock_globals();
}
