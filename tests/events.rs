//! Operator events through the C ABI (`wx_set_event_callback`), against the fake WeChat.
//!
//! The callback is process-wide, so the tests in this file take turns (`SERIAL`) and each
//! looks only at the events of its own app.

mod common;

use std::ffi::{CStr, c_char, c_void};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::*;
use wx_fake::{FakeConfig, Fault};
use wx_token::ffi::*;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// An event as the callback saw it, plus what a wx_token_get made from inside the callback
/// answered.
#[derive(Clone, Debug)]
struct Seen {
    level: i32,
    app: String,
    kind: String,
    message: String,
    status: i32,
    errcode: i32,
    get_inside: Result<String, i32>,
}

/// What the callback's user_data points to.
#[derive(Default)]
struct Collector {
    seen: Mutex<Vec<Seen>>,
    /// Makes the callback sleep this long, to test that replacing it waits for it.
    linger_ms: AtomicUsize,
    running: AtomicBool,
}

impl Collector {
    fn of(&self, appid: &str) -> Vec<Seen> {
        let seen = self.seen.lock().unwrap();
        seen.iter().filter(|e| e.app == appid).cloned().collect()
    }

    fn kinds(&self, appid: &str) -> Vec<String> {
        self.of(appid).into_iter().map(|e| e.kind).collect()
    }
}

fn text(p: *const c_char) -> String {
    assert!(!p.is_null(), "event strings are never NULL");
    unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_owned()
}

unsafe extern "C" fn collect(user_data: *mut c_void, event: *const wx_event) {
    let c = unsafe { &*user_data.cast::<Collector>() };
    let e = unsafe { &*event };
    c.running.store(true, Ordering::SeqCst);
    let app = text(e.app);
    // Recorded before the call below, which may report events of its own.
    let index = {
        let mut seen = c.seen.lock().unwrap();
        seen.push(Seen {
            level: e.level,
            app: app.clone(),
            kind: text(e.kind),
            message: text(e.message),
            status: e.status,
            errcode: e.errcode,
            get_inside: Err(-1),
        });
        seen.len() - 1
    };
    // Re-entrancy: the library must answer a call made from inside its own callback.
    let got = get(&app).map_err(|f| f.status);
    c.seen.lock().unwrap()[index].get_inside = got;
    std::thread::sleep(Duration::from_millis(
        c.linger_ms.load(Ordering::SeqCst) as u64
    ));
    c.running.store(false, Ordering::SeqCst);
}

/// Asserts that the event's message mentions each of `words`.
fn says(e: &Seen, words: &[&str]) {
    for w in words {
        assert!(e.message.contains(w), "{w:?} not in {:?}", e.message);
    }
}

fn install(c: &Arc<Collector>, min_level: i32) {
    let rc = unsafe {
        wx_set_event_callback(
            Some(collect),
            Arc::as_ptr(c).cast_mut().cast::<c_void>(),
            min_level,
        )
    };
    assert_eq!(rc, WX_OK);
}

fn remove() {
    assert_eq!(
        unsafe { wx_set_event_callback(None, std::ptr::null_mut(), WX_LEVEL_DEBUG) },
        WX_OK
    );
}

/// WeChat starts answering 40164 (IP not whitelisted) once the token is due for refresh:
/// the operator hears it from the refresh ahead of expiry, while the token is still served,
/// and then once, as an error, when the token expires with no replacement.
#[test]
fn a_refresh_failing_with_40164_is_reported_before_the_token_expires() {
    let _serial = serial();
    let s = Setup::new("ev40164", FakeConfig::default());
    s.fake.set_lifetime(4);
    s.register(r#""refresh_ahead_secs": 3, "error_cooldown_ms": 400"#);
    let events = Arc::new(Collector::default());
    install(&events, WX_LEVEL_DEBUG);

    let token = get(&s.appid).unwrap();
    let fetched_at = Instant::now();
    s.fake.push_fault(
        Fault::wx_error(40164, "invalid ip 203.0.113.9, not in whitelist")
            .for_app(&s.appid)
            .times(1000),
    );
    assert!(
        eventually(10, || events
            .kinds(&s.appid)
            .contains(&"token_expired".into())),
        "token_expired reported: {:?}",
        events.of(&s.appid)
    );
    // Callers now fetch on demand, and fail; let one do so before looking at everything.
    assert_eq!(get(&s.appid).unwrap_err().errcode, 40164);
    remove();
    let seen = events.of(&s.appid);

    let fetched = &seen[0];
    assert_eq!(
        (fetched.kind.as_str(), fetched.level, fetched.status),
        ("token_fetched", WX_LEVEL_INFO, WX_OK)
    );

    let failed: Vec<&Seen> = seen.iter().filter(|e| e.kind == "refresh_failed").collect();
    let first = failed.first().expect("refresh_failed reported");
    assert_eq!(first.level, WX_LEVEL_WARN);
    assert_eq!(first.status, WX_WECHAT_ERROR);
    assert_eq!(first.errcode, 40164);
    assert_eq!(first.app, s.appid);
    says(first, &["refresh ahead of expiry", "stays in service"]);
    assert_eq!(
        first.get_inside.as_deref(),
        Ok(token.as_str()),
        "when the first failure is reported, the token is still served"
    );
    assert!(
        fetched_at.elapsed() > Duration::from_secs(3),
        "test took its course"
    );

    let expired: Vec<&Seen> = seen.iter().filter(|e| e.kind == "token_expired").collect();
    assert_eq!(expired.len(), 1, "once per expiry: {seen:?}");
    assert_eq!(expired[0].level, WX_LEVEL_ERROR);
    assert_eq!(expired[0].errcode, 40164);
    assert!(expired[0].get_inside.is_err(), "no token after expiry");
    let expired_at = seen.iter().position(|e| e.kind == "token_expired").unwrap();
    let first_failure = seen
        .iter()
        .position(|e| e.kind == "refresh_failed")
        .unwrap();
    assert!(first_failure < expired_at, "warned before it expired");
    // The on-demand fetch after expiry is reported too, saying nothing is served.
    let last = seen.last().unwrap();
    assert_eq!(last.kind, "refresh_failed");
    assert!(last.message.contains("no valid token"), "{}", last.message);

    for e in &seen {
        for secret in [s.secret.as_str(), token.as_str()] {
            assert!(
                !e.message.contains(secret) && !e.app.contains(secret),
                "an event leaks a secret or token: {e:?}"
            );
        }
    }
    assert!(
        seen.iter()
            .any(|e| e.message.contains(&token[token.len() - 4..]))
    );
}

#[test]
fn events_below_the_level_are_not_delivered_and_a_removed_callback_gets_nothing() {
    let _serial = serial();
    let s = Setup::new("evlevel", FakeConfig::default());
    // classic: every invalidation brings a new token without spending a forced refresh.
    s.register(r#""endpoint": "classic""#);
    let events = Arc::new(Collector::default());
    install(&events, WX_LEVEL_WARN);
    let t1 = get(&s.appid).unwrap();
    assert!(events.of(&s.appid).is_empty(), "token_fetched is info");

    // A bad level changes nothing: the callback stays installed at WARN.
    assert_eq!(
        unsafe { wx_set_event_callback(Some(collect), std::ptr::null_mut(), 4) },
        WX_INVALID_ARGUMENT
    );
    assert!(
        last_failure(WX_INVALID_ARGUMENT)
            .message
            .contains("min_level")
    );
    assert_eq!(
        unsafe { wx_set_event_callback(None, std::ptr::null_mut(), -1) },
        WX_INVALID_ARGUMENT
    );

    install(&events, WX_LEVEL_INFO);
    invalidate(&s.appid, Some(&t1)).unwrap();
    assert_eq!(events.kinds(&s.appid), ["token_fetched"]);
    let seen = &events.of(&s.appid)[0];
    assert!(
        seen.message.contains("replacement of a rejected token"),
        "{}",
        seen.message
    );
    let t2 = seen
        .get_inside
        .clone()
        .expect("get from inside the callback");
    assert_eq!(get(&s.appid).unwrap(), t2);

    remove();
    invalidate(&s.appid, Some(&t2)).unwrap();
    assert_ne!(get(&s.appid).unwrap(), t2);
    assert_eq!(events.of(&s.appid).len(), 1, "nothing after removal");
}

/// After wx_set_event_callback returns, the previous callback is not running anywhere, so
/// C code may free its user_data right away.
#[test]
fn replacing_the_callback_waits_for_calls_in_progress() {
    let _serial = serial();
    let s = Setup::new("evwait", FakeConfig::default());
    s.register("");
    let events = Arc::new(Collector::default());
    events.linger_ms.store(300, Ordering::SeqCst);
    install(&events, WX_LEVEL_INFO);
    let appid = s.appid.clone();
    let getter = std::thread::spawn(move || get(&appid).unwrap());
    assert!(eventually(10, || events.running.load(Ordering::SeqCst)));
    remove();
    assert!(
        !events.running.load(Ordering::SeqCst),
        "the old callback finished before the replacement returned"
    );
    getter.join().unwrap();
}

unsafe extern "C" fn remove_from_inside(user_data: *mut c_void, _event: *const wx_event) {
    let calls = unsafe { &*user_data.cast::<AtomicUsize>() };
    calls.fetch_add(1, Ordering::SeqCst);
    // Must not wait for itself.
    assert_eq!(
        unsafe { wx_set_event_callback(None, std::ptr::null_mut(), 0) },
        WX_OK
    );
}

#[test]
fn a_callback_may_remove_itself() {
    let _serial = serial();
    let s = Setup::new("evself", FakeConfig::default());
    // classic: every invalidation brings a new token without spending a forced refresh.
    s.register(r#""endpoint": "classic""#);
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let rc = unsafe {
        wx_set_event_callback(
            Some(remove_from_inside),
            std::ptr::from_ref(&CALLS).cast_mut().cast::<c_void>(),
            WX_LEVEL_DEBUG,
        )
    };
    assert_eq!(rc, WX_OK);
    let t1 = get(&s.appid).unwrap();
    invalidate(&s.appid, Some(&t1)).unwrap();
    assert_eq!(CALLS.load(Ordering::SeqCst), 1);
}

#[test]
fn the_options_schema_lists_every_option_with_its_default() {
    let schema = unsafe { CStr::from_ptr(wx_token_options_schema()) };
    let v: serde_json::Value = serde_json::from_str(schema.to_str().unwrap()).unwrap();
    assert_eq!(v["timeout_ms"]["type"], "integer");
    assert_eq!(v["timeout_ms"]["default"], 5000);
    assert_eq!(v["store_prefix"]["default"], "wx_token:");
    assert!(v["central_key"]["default"].is_null());
    // What the schema lists, wx_token_register accepts.
    let s = Setup::new("evschema", FakeConfig::default());
    let mut all = serde_json::json!({ "store": "memory" });
    for (key, entry) in v.as_object().unwrap() {
        if !entry["default"].is_null() {
            all[key] = entry["default"].clone();
        }
    }
    register(&s.appid, &s.secret, Some(&all.to_string())).unwrap();
}

/// A caller reports the token rejected, WeChat's stable endpoint hands the same one back, and
/// the forced refresh that would replace it is beyond WeChat's limits: the operator hears that
/// a rejected token stays in service.
#[test]
fn a_refused_forced_refresh_is_reported() {
    let _serial = serial();
    let s = Setup::new("evforce", FakeConfig::default());
    s.register("");
    let events = Arc::new(Collector::default());
    install(&events, WX_LEVEL_INFO);
    let t1 = get(&s.appid).unwrap();
    invalidate(&s.appid, Some(&t1)).unwrap(); // the one forced refresh per 30 s
    let t2 = get(&s.appid).unwrap();
    assert_ne!(t1, t2);
    let refused = invalidate(&s.appid, Some(&t2)).unwrap_err();
    remove();
    assert_eq!(refused.status, WX_RATE_LIMITED);
    let seen = events.of(&s.appid);
    let last = seen.last().unwrap();
    assert_eq!(
        (last.kind.as_str(), last.level, last.status),
        ("refresh_failed", WX_LEVEL_WARN, WX_RATE_LIMITED),
        "{seen:?}"
    );
    says(
        last,
        &["replacement of a rejected token", "stays in service"],
    );
    assert!(!last.message.contains(&t2));
}

/// A fork child does not wait for callback calls that were under way in the parent's other
/// threads (they do not exist in the child): pre-fork servers set a logger in the parent.
#[test]
fn a_fork_child_can_replace_the_callback_while_the_parent_runs_it() {
    let _serial = serial();
    let s = Setup::new("evfork", FakeConfig::default());
    s.register("");
    let events = Arc::new(Collector::default());
    events.linger_ms.store(1500, Ordering::SeqCst);
    install(&events, WX_LEVEL_INFO);
    let appid = s.appid.clone();
    let getter = std::thread::spawn(move || get(&appid).unwrap());
    assert!(eventually(10, || events.running.load(Ordering::SeqCst)));
    let status = match unsafe { libc::fork() } {
        -1 => panic!("fork failed"),
        0 => unsafe {
            libc::alarm(5); // a child that hangs is killed, and the test fails
            let rc = wx_set_event_callback(None, std::ptr::null_mut(), WX_LEVEL_DEBUG);
            libc::_exit(if rc == WX_OK { 0 } else { 1 })
        },
        pid => {
            let mut status = 0;
            assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
            status
        }
    };
    remove();
    getter.join().unwrap();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the child hung or failed: status {status}"
    );
}
