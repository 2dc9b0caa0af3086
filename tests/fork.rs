//! A fork child keeps working: pre-fork servers load the library, fetch, then fork workers.

mod common;

use std::thread;
use std::time::Duration;

use common::*;
use wx_fake::FakeConfig;

#[test]
fn child_serves_the_cached_token_and_fetches_and_refreshes_on_its_own() {
    let s = Setup::new(
        "fork",
        FakeConfig {
            lifetime_secs: 4,
            overlap_secs: 1,
            ..FakeConfig::default()
        },
    );
    s.register(r#""refresh_ahead_secs":2,"endpoint":"classic""#);
    let parent_token = get(&s.appid).unwrap();
    let base = s.fake.base_url();

    // Other threads hammer the library while we fork, so locks are taken around the fork.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hammers: Vec<_> = (0..4)
        .map(|_| {
            let (appid, stop) = (s.appid.clone(), stop.clone());
            thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = get(&appid);
                }
            })
        })
        .collect();

    for _ in 0..20 {
        let code = in_child(|| {
            get(&s.appid).is_ok_and(|t| t == parent_token || valid_via_http(&base, &t))
        });
        assert_eq!(code, 0);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    hammers.into_iter().for_each(|h| h.join().unwrap());

    // In the child, the refresher is restarted: a refresh ahead happens with nobody calling get
    // after the first call, and an invalidation fetches anew.
    let before = s.fetches();
    let code = in_child(|| {
        let t = get(&s.appid).unwrap();
        if !eventually(6, || fetches_via_http(&base, &s.appid) > before) {
            return false;
        }
        let t2 = get(&s.appid).unwrap();
        invalidate(&s.appid, Some(&t2)).unwrap();
        let t3 = get(&s.appid).unwrap();
        t3 != t2 && valid_via_http(&base, &t3) && (t == parent_token || valid_via_http(&base, &t))
    });
    assert_eq!(code, 0);
}

#[test]
fn child_forked_during_a_fetch_does_not_wait_for_the_parents_flight() {
    let s = Setup::new("forkflight", FakeConfig::default());
    s.fake.set_delay_ms(1500);
    s.register("");
    let appid = s.appid.clone();
    let parent_fetch = thread::spawn(move || get(&appid));
    thread::sleep(Duration::from_millis(300)); // the parent's fetch is in flight now
    let code = in_child(|| get(&s.appid).is_ok());
    assert_eq!(code, 0);
    assert!(parent_fetch.join().unwrap().is_ok());
}

#[test]
fn child_forked_while_the_refresher_and_waiters_sleep_keeps_working() {
    // Regression: with parking_lot, a child inherited the parked refresher's and waiters'
    // entries in parking_lot's global wait queue and could spin forever once a new thread
    // reused a dead one's memory. The engine's locks are std futexes now.
    let s = Setup::new("forkparked", FakeConfig::default());
    s.register(r#""endpoint":"classic""#);
    let base = s.fake.base_url();
    let t1 = get(&s.appid).unwrap();
    // Park threads on the app's condition variable: one fetch in flight, others waiting on it.
    let other = unique_appid("forkparked_other");
    s.fake.add_app(&other, &s.secret);
    register(
        &other,
        &s.secret,
        Some(&s.options(r#""endpoint":"classic""#)),
    )
    .unwrap();
    s.fake
        .push_fault(wx_fake::Fault::slow(1500).for_app(&other));
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let other = other.clone();
            thread::spawn(move || get(&other))
        })
        .collect();
    thread::sleep(Duration::from_millis(300)); // refresher idle, waiters parked
    for _ in 0..5 {
        let code = in_child(|| {
            // Each of these wakes the (new) refresher; none may hang.
            for _ in 0..3 {
                let Ok(t) = get(&s.appid) else { return false };
                if invalidate(&s.appid, Some(&t)).is_err() {
                    return false;
                }
            }
            let t = get(&s.appid).unwrap();
            t != t1 && valid_via_http(&base, &t)
        });
        assert_eq!(code, 0);
    }
    for w in waiters {
        assert!(w.join().unwrap().is_ok());
    }
}
