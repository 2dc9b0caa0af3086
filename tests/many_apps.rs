//! Issue #14: many apps in one process. Unregistering, the bounded refresh worker pool, the
//! per-upstream rate limit, jittered due instants, and the app table across fork().
//!
//! Pool and rate are process-wide: only `refresh_wave_stays_within_the_worker_pool` sets
//! `refresh_workers` in this binary (the pool is the largest value asked for), and each test
//! has its own fake, hence its own upstream and rate limit.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::*;
use wx_fake::{FakeConfig, FakeWechat};
use wx_token::ffi::*;

/// Token requests the fake saw since its stats were reset, by instant.
fn request_instants(fake: &FakeWechat) -> Vec<Instant> {
    let mut at: Vec<Instant> = fake.requests().iter().map(|r| r.at).collect();
    at.sort();
    at
}

fn max_in_any_second(sorted: &[Instant]) -> usize {
    let (mut best, mut lo) = (0, 0);
    for hi in 0..sorted.len() {
        while sorted[hi] - sorted[lo] >= Duration::from_secs(1) {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

/// Live refresh worker threads, by their name in /proc.
fn fetch_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim() == "wx-token-fetch")
        .count()
}

#[test]
fn unregister_lands_the_fetch_in_flight_harmlessly_and_answers_unknown_app() {
    let s = Setup::new("unreg", FakeConfig::default());
    s.register(r#""endpoint":"classic""#);
    let counter = {
        let a = cstr(&s.appid);
        let mut p: *const u64 = std::ptr::null();
        assert_eq!(
            unsafe { wx_token_generation_counter(a.as_ptr(), &mut p) },
            WX_OK
        );
        p
    };
    s.fake
        .push_fault(wx_fake::Fault::slow(800).for_app(&s.appid));
    let appid = s.appid.clone();
    let waiter = thread::spawn(move || get(&appid));
    assert!(eventually(5, || s.fetches() == 1), "the fetch is in flight");
    unregister(&s.appid).unwrap();

    let landed = waiter.join().unwrap().unwrap_err();
    assert_eq!(landed.status, WX_UNKNOWN_APP, "{landed:?}");
    for failure in [
        get(&s.appid).unwrap_err(),
        invalidate(&s.appid, None).unwrap_err(),
        unregister(&s.appid).unwrap_err(),
    ] {
        assert_eq!(failure.status, WX_UNKNOWN_APP, "{failure:?}");
    }
    // The counter handed out before stays a valid address.
    let seen = unsafe { std::sync::atomic::AtomicU64::from_ptr(counter.cast_mut()) }
        .load(std::sync::atomic::Ordering::Acquire);
    assert!(seen >= 1);

    // Re-registering starts from scratch: the token fetched before the unregister was never
    // published, so a new fetch happens and its token is valid.
    s.register(r#""endpoint":"classic""#);
    let t = get(&s.appid).unwrap();
    assert_eq!(s.fetches(), 2);
    assert!(s.fake.is_valid(&t));
    assert_eq!(s.fake.current_token(&s.appid).as_deref(), Some(t.as_str()));
}

#[test]
fn unregister_stops_the_background_refresh() {
    let s = Setup::new(
        "unregbg",
        FakeConfig {
            lifetime_secs: 4,
            overlap_secs: 1,
            ..FakeConfig::default()
        },
    );
    let extra = r#""endpoint":"classic","refresh_ahead_secs":2"#;
    let ids = register_and_get_many(&s, "unregbg", 2, extra);
    unregister(&ids[0]).unwrap();
    let fetches = |id: &str| s.fake.app_stats(id).token_requests;
    assert!(
        eventually(10, || fetches(&ids[1]) >= 2),
        "the app still registered is refreshed ahead"
    );
    thread::sleep(Duration::from_millis(1500));
    assert_eq!(fetches(&ids[0]), 1, "the unregistered app is not refreshed");
}

#[test]
fn refresh_wave_stays_within_the_worker_pool() {
    let s = Setup::new(
        "pool",
        FakeConfig {
            lifetime_secs: 6,
            overlap_secs: 1,
            ..FakeConfig::default()
        },
    );
    let extra = r#""endpoint":"classic","refresh_ahead_secs":3,"refresh_workers":3,"refresh_rate_per_sec":1000,"timeout_ms":5000"#;
    let ids = register_and_get_many(&s, "pool", 40, extra);
    // Every refresh now takes 250 ms: a thread per due refresh would mean ~40 at once.
    s.fake.set_delay_ms(250);
    let mut peak = 0;
    let all_refreshed = eventually(20, || {
        peak = peak.max(fetch_threads());
        ids.iter()
            .all(|id| s.fake.app_stats(id).token_requests >= 2)
    });
    s.fake.set_delay_ms(0);
    assert!(all_refreshed, "every app is refreshed ahead");
    assert!(peak >= 1, "the wave ran on pool workers");
    assert!(peak <= 3, "{peak} refresh threads at once, pool of 3");
}

#[test]
fn background_refreshes_keep_to_the_upstream_rate_and_callers_do_not_queue_behind_them() {
    let s = Setup::new(
        "rate",
        FakeConfig {
            lifetime_secs: 6,
            overlap_secs: 1,
            ..FakeConfig::default()
        },
    );
    let extra = r#""endpoint":"classic","refresh_ahead_secs":3,"refresh_rate_per_sec":5"#;
    register_and_get_many(&s, "rate", 30, extra);
    s.fake.reset_stats();
    // The tokens come due within 0.75 s of each other: unlimited, 30 requests in that time.
    assert!(
        s.fake
            .wait_until(Duration::from_secs(10), |st| st.token_requests >= 3),
        "the wave began"
    );
    // A caller with no token, on the same upstream, is served while the wave still waits.
    let late = register_many(&s, "rate_late", 1, extra).remove(0);
    let started = Instant::now();
    let t = get(&late).unwrap();
    assert!(s.fake.is_valid(&t));
    let refreshed_meanwhile = s.fake.stats().token_requests;
    assert!(
        refreshed_meanwhile < 20,
        "the caller's fetch did not wait for the wave ({refreshed_meanwhile} refreshes first, {:?})",
        started.elapsed()
    );
    thread::sleep(Duration::from_secs(3));
    let wave: Vec<Instant> = {
        let records = s.fake.requests();
        let mut at: Vec<Instant> = records
            .iter()
            .filter(|r| r.appid.as_deref() != Some(late.as_str()))
            .map(|r| r.at)
            .collect();
        at.sort();
        at
    };
    assert!(wave.len() >= 10, "{} refreshes", wave.len());
    let max = max_in_any_second(&wave);
    // One more than the limit tolerates a request that reached the fake late.
    assert!(
        max <= 6,
        "{max} background refreshes within one second, limit 5"
    );
}

#[test]
fn due_instants_are_spread_over_the_refresh_ahead_window() {
    let s = Setup::new(
        "jitter",
        FakeConfig {
            lifetime_secs: 8,
            overlap_secs: 1,
            ..FakeConfig::default()
        },
    );
    let extra = r#""endpoint":"classic","refresh_ahead_secs":4,"refresh_rate_per_sec":1000"#;
    let ids = register_many(&s, "jitter", 40, extra);
    let fetched = Instant::now();
    for id in &ids {
        get(id).unwrap();
    }
    let fetched_in = fetched.elapsed();
    s.fake.reset_stats();
    assert!(
        s.fake
            .wait_until(Duration::from_secs(15), |st| st.token_requests >= 40),
        "all refreshed"
    );
    let wave = request_instants(&s.fake);
    let span = wave[wave.len() - 1] - wave[0];
    // Due between 4 s and 6 s after each fetch: without jitter, all within the time the 40
    // fetches took; with it, spread over most of two seconds.
    assert!(
        span >= fetched_in + Duration::from_millis(400),
        "refreshes span {span:?} (the fetches took {fetched_in:?})"
    );
    assert!(
        wave[0] >= fetched + Duration::from_secs(4) - Duration::from_millis(50),
        "nothing comes due before the refresh-ahead window opens"
    );
}

#[test]
fn thousands_of_apps_register_look_up_and_unregister() {
    let s = Setup::new("many", FakeConfig::default());
    let opts = s.options("");
    let ids: Vec<String> = (0..5000).map(|_| unique_appid("many")).collect();
    for id in &ids {
        register(id, &s.secret, Some(&opts)).unwrap();
    }
    for (i, id) in ids.iter().enumerate() {
        if i % 2 == 0 {
            unregister(id).unwrap();
        }
    }
    for (i, id) in ids.iter().enumerate() {
        let a = cstr(id);
        let mut p: *const u64 = std::ptr::null();
        let rc = unsafe { wx_token_generation_counter(a.as_ptr(), &mut p) };
        assert_eq!(rc, if i % 2 == 0 { WX_UNKNOWN_APP } else { WX_OK }, "{id}");
    }
    assert_eq!(
        unregister("wx_never_registered").unwrap_err().status,
        WX_UNKNOWN_APP
    );
    // Revival: the same entry answers again.
    register(&ids[0], &s.secret, Some(&opts)).unwrap();
    s.fake.add_app(&ids[0], &s.secret);
    assert!(s.fake.is_valid(&get(&ids[0]).unwrap()));
}
