//! The engine through its C ABI, against the fake WeChat on loopback.

mod common;

use std::ffi::c_char;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use common::*;
use wx_fake::{FakeConfig, Fault, FaultKind};
use wx_token::ffi::*;

fn cfg() -> FakeConfig {
    FakeConfig::default()
}

#[test]
fn first_get_fetches_once_then_serves_from_cache() {
    let s = Setup::new("cache", cfg());
    s.register("");
    let t1 = get(&s.appid).unwrap();
    assert!(s.fake.is_valid(&t1));
    for _ in 0..1000 {
        assert_eq!(get(&s.appid).unwrap(), t1);
    }
    assert_eq!(s.fetches(), 1);
    assert_eq!(
        s.fake.app_stats(&s.appid).stable_requests,
        1,
        "stable is the default endpoint"
    );
}

#[test]
fn classic_endpoint_and_a_secret_that_needs_encoding() {
    let s = Setup::with_secret("classic", "a&b=c+d%e f/?#密", cfg());
    s.register(r#""endpoint":"classic""#);
    let t = get(&s.appid).unwrap();
    assert!(s.fake.is_valid(&t));
    assert_eq!(s.fake.app_stats(&s.appid).token_requests, 1);
}

#[test]
fn sixty_four_threads_cold_start_share_one_fetch() {
    let s = Setup::new("flight", cfg());
    s.fake.set_delay_ms(300); // keep the fetch in flight while every thread piles in
    s.register("");
    let barrier = Arc::new(Barrier::new(64));
    let tokens: Vec<String> = (0..64)
        .map(|_| {
            let (appid, barrier) = (s.appid.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                get(&appid).unwrap()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert!(tokens.iter().all(|t| *t == tokens[0]));
    assert_eq!(s.fetches(), 1);
}

#[test]
fn concurrent_callers_share_one_failure() {
    let s = Setup::new("sharedfail", cfg());
    s.fake.set_delay_ms(300);
    s.fake.push_fault(Fault::new(FaultKind::Quota));
    s.register("");
    let barrier = Arc::new(Barrier::new(32));
    let results: Vec<Result<String, Failure>> = (0..32)
        .map(|_| {
            let (appid, barrier) = (s.appid.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                get(&appid)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    for r in &results {
        let e = r.as_ref().unwrap_err();
        assert_eq!((e.status, e.errcode), (WX_WECHAT_ERROR, 45009), "{e:?}");
    }
    assert_eq!(s.fetches(), 1);
}

#[test]
fn refreshes_ahead_of_expiry_without_callers() {
    let s = Setup::new(
        "ahead",
        FakeConfig {
            lifetime_secs: 4,
            overlap_secs: 1,
            ..cfg()
        },
    );
    s.register(r#""refresh_ahead_secs":2"#);
    let t1 = get(&s.appid).unwrap();
    let g1 = generation(&s.appid);
    assert!(
        eventually(6, || s.fetches() >= 2),
        "the refresher fetched on its own"
    );
    // The new token is handed out once it has landed, without any caller having waited.
    assert!(eventually(2, || get(&s.appid).unwrap() != t1));
    assert!(generation(&s.appid) > g1);
    assert!(s.fake.is_valid(&get(&s.appid).unwrap()));
}

#[test]
fn short_lifetime_refreshes_at_half_life_not_in_a_loop() {
    // refresh_ahead 300 s is more than half of a 2 s token: refresh at 1 s, not at once.
    let s = Setup::new(
        "halflife",
        FakeConfig {
            lifetime_secs: 2,
            overlap_secs: 1,
            ..cfg()
        },
    );
    s.register("");
    get(&s.appid).unwrap();
    thread::sleep(Duration::from_millis(2500));
    let n = s.fetches();
    assert!(
        (2..=4).contains(&n),
        "about one refresh per second of a 2 s token, got {n}"
    );
}

#[test]
fn readers_keep_the_old_token_while_a_slow_refresh_is_in_flight() {
    let s = Setup::new(
        "slowrefresh",
        FakeConfig {
            lifetime_secs: 6,
            overlap_secs: 1,
            ..cfg()
        },
    );
    s.register(r#""refresh_ahead_secs":3"#);
    let t1 = get(&s.appid).unwrap();
    s.fake.set_delay_ms(1500);
    assert!(eventually(5, || s.fetches() >= 2), "refresh started");
    // The refresh is now in flight for ~1.5 s; readers are served the old token meanwhile.
    assert_eq!(get(&s.appid).unwrap(), t1);
    assert!(eventually(4, || get(&s.appid).unwrap() != t1));
}

#[test]
fn background_failures_are_retried_while_the_token_stays_in_service() {
    let s = Setup::new(
        "bgfail",
        FakeConfig {
            lifetime_secs: 6,
            overlap_secs: 1,
            ..cfg()
        },
    );
    s.register(r#""refresh_ahead_secs":3"#);
    let t1 = get(&s.appid).unwrap();
    s.fake.push_fault(Fault::new(FaultKind::Busy).times(3));
    assert!(
        eventually(6, || s.fetches() >= 5),
        "three failed refreshes, then a good one"
    );
    // On the stable endpoint the good refresh may hand t1 back (it still has more than the
    // overlap left), and the new token comes with the refresh in t1's last second: up to about
    // 3 s after the fifth fetch, which a 2 s wait missed once under AddressSanitizer on a
    // loaded machine. The wait now covers t1's whole remaining life.
    assert!(eventually(6, || get(&s.appid).unwrap() != t1));
    assert_eq!(s.fake.stats().faults_served, 3);
}

#[test]
fn invalidate_withdraws_the_token_and_fetches_once() {
    let s = Setup::new("inval", cfg());
    s.register(r#""endpoint":"classic""#);
    let t1 = get(&s.appid).unwrap();
    let g1 = generation(&s.appid);
    invalidate(&s.appid, Some(&t1)).unwrap();
    let t2 = get(&s.appid).unwrap();
    assert_ne!(t1, t2);
    assert!(generation(&s.appid) > g1);
    assert_eq!(s.fetches(), 2);
    // A token the cache has moved past: nothing happens.
    invalidate(&s.appid, Some(&t1)).unwrap();
    invalidate(&s.appid, Some("never-issued")).unwrap();
    assert_eq!(get(&s.appid).unwrap(), t2);
    assert_eq!(s.fetches(), 2);
}

#[test]
fn an_invalidation_storm_causes_one_fetch() {
    let s = Setup::new("storm", cfg());
    s.register(r#""endpoint":"classic""#);
    let t1 = get(&s.appid).unwrap();
    s.fake.set_delay_ms(200);
    let barrier = Arc::new(Barrier::new(32));
    let got: Vec<String> = (0..32)
        .map(|_| {
            let (appid, barrier, t1) = (s.appid.clone(), barrier.clone(), t1.clone());
            thread::spawn(move || {
                barrier.wait();
                invalidate(&appid, Some(&t1)).unwrap();
                get(&appid).unwrap()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert!(got.iter().all(|t| *t != t1 && *t == got[0]));
    assert_eq!(s.fetches(), 2);
}

#[test]
fn stable_forces_only_when_wechat_hands_back_the_rejected_token() {
    let s = Setup::new("stableforce", cfg());
    s.register("");
    let t1 = get(&s.appid).unwrap();
    // The fake, like WeChat, answers normal mode with the same token while it is far from
    // expiry: the engine must then spend one force_refresh.
    invalidate(&s.appid, Some(&t1)).unwrap();
    let t2 = get(&s.appid).unwrap();
    assert_ne!(t1, t2);
    let st = s.fake.app_stats(&s.appid);
    assert_eq!((st.stable_requests, st.force_requests), (2, 1));
    // A second rejection within 30 s: refused locally, and the token stays in service.
    let e = invalidate(&s.appid, Some(&t2)).unwrap_err();
    assert_eq!(e.status, WX_RATE_LIMITED, "{e:?}");
    assert!(e.message.contains("30 s"), "{}", e.message);
    assert_eq!(get(&s.appid).unwrap(), t2);
    assert_eq!(s.fake.app_stats(&s.appid).force_requests, 1);
}

#[test]
fn stable_normal_mode_suffices_when_wechat_already_moved_on() {
    let s = Setup::new("stablenormal", cfg());
    s.register("");
    let t1 = get(&s.appid).unwrap();
    s.fake.expire_app(&s.appid); // WeChat's own clock says the token is done
    invalidate(&s.appid, Some(&t1)).unwrap();
    let t2 = get(&s.appid).unwrap();
    assert_ne!(t1, t2);
    assert_eq!(s.fake.app_stats(&s.appid).force_requests, 0);
}

#[test]
fn forced_refresh_with_null_is_limited() {
    let s = Setup::new("forcenull", cfg());
    s.register("");
    let t1 = get(&s.appid).unwrap();
    invalidate(&s.appid, None).unwrap();
    let t2 = get(&s.appid).unwrap();
    assert_ne!(t1, t2);
    assert_eq!(s.fake.app_stats(&s.appid).force_requests, 1);
    let e = invalidate(&s.appid, None).unwrap_err();
    assert_eq!(e.status, WX_RATE_LIMITED);
    assert_eq!(
        get(&s.appid).unwrap(),
        t2,
        "a refused force leaves the token in service"
    );
    assert_eq!(s.fake.app_stats(&s.appid).force_requests, 1);
}

#[test]
fn transient_errors_back_off_then_recover() {
    let s = Setup::new("busy", cfg());
    s.fake.push_fault(Fault::new(FaultKind::Busy));
    s.register("");
    let e = get(&s.appid).unwrap_err();
    assert_eq!((e.status, e.errcode), (WX_WECHAT_ERROR, -1), "{e:?}");
    // Within the backoff the error is answered from memory.
    let again = get(&s.appid).unwrap_err();
    assert_eq!(again.errcode, -1);
    assert_eq!(s.fetches(), 1);
    assert!(eventually(3, || get(&s.appid).is_ok()));
    assert_eq!(s.fetches(), 2);
}

#[test]
fn terminal_errors_are_not_retried_in_a_loop() {
    let s = Setup::new("quota", cfg());
    s.fake.push_fault(Fault::new(FaultKind::Quota).times(100));
    s.register(r#""error_cooldown_ms":60000"#);
    for _ in 0..200 {
        let e = get(&s.appid).unwrap_err();
        assert_eq!((e.status, e.errcode), (WX_WECHAT_ERROR, 45009));
        assert!(e.message.contains("45009"), "{}", e.message);
        assert_eq!(e.errmsg, "reach max api daily quota limit");
    }
    assert_eq!(
        s.fetches(),
        1,
        "a burst after a terminal error does not reach WeChat"
    );
}

#[test]
fn wrong_secret_then_fixed_by_re_registering() {
    let s = Setup::new("badsecret", cfg());
    let opts = s.options(r#""error_cooldown_ms":60000"#);
    register(&s.appid, "wrong-secret", Some(&opts)).unwrap();
    let e = get(&s.appid).unwrap_err();
    assert_eq!((e.status, e.errcode), (WX_WECHAT_ERROR, 40125));
    assert!(!e.message.contains("wrong-secret"));
    assert_eq!(get(&s.appid).unwrap_err().errcode, 40125);
    assert_eq!(s.fetches(), 1);
    // The user fixes the secret: the cooldown belonged to the old one.
    register(&s.appid, &s.secret, Some(&opts)).unwrap();
    assert!(s.fake.is_valid(&get(&s.appid).unwrap()));
}

#[test]
fn unknown_appid_is_wechat_40013() {
    let s = Setup::new("unknownid", cfg());
    let other = unique_appid("notatfake");
    register(&other, "x", Some(&s.options(""))).unwrap();
    let e = get(&other).unwrap_err();
    assert_eq!((e.status, e.errcode), (WX_WECHAT_ERROR, 40013));
}

#[test]
fn re_registering_with_the_same_secret_keeps_the_token() {
    let s = Setup::new("reregister", cfg());
    s.register("");
    let t = get(&s.appid).unwrap();
    s.register(r#""refresh_ahead_secs":120"#);
    assert_eq!(get(&s.appid).unwrap(), t);
    assert_eq!(s.fetches(), 1);
}

fn assert_fault(tag: &str, fault: Fault, status: i32) -> Failure {
    let s = Setup::new(tag, cfg());
    s.fake.push_fault(fault);
    s.register(r#""timeout_ms":1000"#);
    let e = get(&s.appid).unwrap_err();
    assert_eq!(e.status, status, "{tag}: {e:?}");
    assert!(
        !e.message.contains(&s.secret) && !e.message.contains("s3cret"),
        "{tag}: {}",
        e.message
    );
    assert!(eventually(3, || get(&s.appid).is_ok()), "{tag}: recovers");
    e
}

#[test]
fn each_fault_maps_to_its_status() {
    let e = assert_fault(
        "http500",
        Fault::new(FaultKind::HttpStatus).with_status(500),
        WX_NETWORK,
    );
    assert_eq!(e.errmsg, "", "no WeChat errmsg for a transport error");
    assert_fault(
        "http403",
        Fault::new(FaultKind::HttpStatus).with_status(403),
        WX_NETWORK,
    );
    assert_fault("malformed", Fault::new(FaultKind::Malformed), WX_PROTOCOL);
    assert_fault("missing", Fault::new(FaultKind::MissingFields), WX_PROTOCOL);
    assert_fault("huge", Fault::new(FaultKind::Huge), WX_PROTOCOL);
    assert_fault("reset", Fault::new(FaultKind::Reset), WX_NETWORK);
    let e = assert_fault("redirect", Fault::new(FaultKind::Redirect), WX_NETWORK);
    assert!(e.message.contains("302"), "{}", e.message);
    let e = assert_fault(
        "hang",
        Fault::new(FaultKind::Hang).with_delay_ms(3000),
        WX_NETWORK,
    );
    assert!(e.message.contains("timed out"), "{}", e.message);
    let e = assert_fault(
        "ipwhitelist",
        Fault::new(FaultKind::Errcode)
            .with_errcode(40164)
            .with_errmsg("invalid ip 1.2.3.4"),
        WX_WECHAT_ERROR,
    );
    assert_eq!(e.errcode, 40164);
}

#[test]
fn tokens_of_512_bytes_pass_and_longer_ones_are_protocol_errors() {
    // Up to 256 bytes a cached token is served from the app's token cell, beyond it from the
    // app's current token: both are the token, from one fetch.
    for len in [255, 256, 257, 512] {
        let s = Setup::new(
            "len512",
            FakeConfig {
                token_len: len,
                ..cfg()
            },
        );
        s.register("");
        let token = get(&s.appid).unwrap();
        assert_eq!(token.len(), len);
        assert_eq!(get(&s.appid).unwrap(), token);
        assert_eq!(get(&s.appid).unwrap(), token);
        assert_eq!(s.fetches(), 1);
    }
    let s = Setup::new(
        "len600",
        FakeConfig {
            token_len: 600,
            ..cfg()
        },
    );
    s.register("");
    let e = get(&s.appid).unwrap_err();
    assert_eq!(e.status, WX_PROTOCOL);
    assert!(e.message.contains("600"), "{}", e.message);
}

#[test]
fn buffer_protocol() {
    let s = Setup::new("buffers", cfg());
    s.register("");
    let token = get(&s.appid).unwrap();
    let a = cstr(&s.appid);
    let mut n = 0usize;
    // Size query.
    assert_eq!(
        unsafe { wx_token_get(a.as_ptr(), std::ptr::null_mut(), 0, &mut n) },
        WX_BUFFER_TOO_SMALL
    );
    assert_eq!(n, token.len());
    // Exactly the length (no room for the NUL): too small, buffer untouched.
    let mut buf = vec![0x55u8; token.len()];
    n = 0;
    assert_eq!(
        unsafe {
            wx_token_get(
                a.as_ptr(),
                buf.as_mut_ptr().cast::<c_char>(),
                buf.len(),
                &mut n,
            )
        },
        WX_BUFFER_TOO_SMALL
    );
    assert_eq!(n, token.len());
    assert!(buf.iter().all(|&b| b == 0x55));
    // NULL out_len is allowed.
    let mut buf = vec![0u8; token.len() + 1];
    assert_eq!(
        unsafe {
            wx_token_get(
                a.as_ptr(),
                buf.as_mut_ptr().cast::<c_char>(),
                buf.len(),
                std::ptr::null_mut(),
            )
        },
        WX_OK
    );
    assert_eq!(&buf[..token.len()], token.as_bytes());
    // get_ex reports generation and remaining lifetime.
    let (mut g, mut ms) = (0u64, 0u64);
    assert_eq!(
        unsafe {
            wx_token_get_ex(
                a.as_ptr(),
                buf.as_mut_ptr().cast::<c_char>(),
                buf.len(),
                &mut n,
                &mut g,
                &mut ms,
            )
        },
        WX_OK
    );
    assert_eq!(g, generation(&s.appid));
    assert!(ms > 7_000_000 && ms <= 7_200_000, "{ms}");
}

#[test]
fn bad_arguments_are_invalid_argument() {
    let s = Setup::new("badargs", cfg());
    s.register("");
    let a = cstr(&s.appid);
    let mut buf = [0u8; 600];
    let mut n = 7usize;
    let p = buf.as_mut_ptr().cast::<c_char>();
    unsafe {
        assert_eq!(
            wx_token_get(std::ptr::null(), p, buf.len(), &mut n),
            WX_INVALID_ARGUMENT
        );
        assert!(last_failure(1).message.contains("appid is NULL"));
        assert_eq!(
            wx_token_get(a.as_ptr(), std::ptr::null_mut(), 10, &mut n),
            WX_INVALID_ARGUMENT
        );
        assert_eq!(
            wx_token_get(a.as_ptr(), p, usize::MAX, &mut n),
            WX_INVALID_ARGUMENT
        );
        assert_eq!(n, 7, "nothing written on failure");
        let bad_utf8 = b"wx\xff\xfe\0";
        assert_eq!(
            wx_token_get(bad_utf8.as_ptr().cast(), p, buf.len(), &mut n),
            WX_INVALID_ARGUMENT
        );
        assert!(last_failure(1).message.contains("UTF-8"));
        let unregistered = cstr("wx_never_registered");
        assert_eq!(
            wx_token_get(unregistered.as_ptr(), p, buf.len(), &mut n),
            WX_UNKNOWN_APP
        );
        assert_eq!(
            wx_token_invalidate(unregistered.as_ptr(), std::ptr::null()),
            WX_UNKNOWN_APP
        );
        assert_eq!(
            wx_token_register(a.as_ptr(), std::ptr::null(), std::ptr::null()),
            WX_INVALID_ARGUMENT
        );
        assert_eq!(
            wx_token_register(cstr("").as_ptr(), cstr("s").as_ptr(), std::ptr::null()),
            WX_INVALID_ARGUMENT
        );
        assert_eq!(
            wx_token_register(
                cstr("has space").as_ptr(),
                cstr("s").as_ptr(),
                std::ptr::null()
            ),
            WX_INVALID_ARGUMENT
        );
        assert_eq!(
            wx_token_generation_counter(a.as_ptr(), std::ptr::null_mut()),
            WX_INVALID_ARGUMENT
        );
        // An unterminated string longer than the scan bound.
        let long = vec![b'a'; 70 * 1024];
        assert_eq!(
            wx_token_get(long.as_ptr().cast(), p, buf.len(), &mut n),
            WX_INVALID_ARGUMENT
        );
    }
    for opts in [
        r#"{"api_base":"http://example.com"}"#,
        r#"{"refresh_ahead_sec":1}"#,
        r#"{"endpoint":"other"}"#,
        "{",
    ] {
        let e = register(&s.appid, &s.secret, Some(opts)).unwrap_err();
        assert_eq!(e.status, WX_INVALID_ARGUMENT, "{opts}");
    }
    assert!(
        get(&s.appid).is_ok(),
        "rejected updates leave the app as it was"
    );
}

#[test]
fn last_error_message_truncates_and_reports_full_length() {
    let bad = cstr("wx_never_registered_either");
    let mut b = [0u8; 1];
    unsafe {
        assert_eq!(
            wx_token_invalidate(bad.as_ptr(), std::ptr::null()),
            WX_UNKNOWN_APP
        );
        let full = wx_last_error_message(std::ptr::null_mut(), 0);
        assert!(full > 10);
        let mut small = [0xffu8; 8];
        assert_eq!(
            wx_last_error_message(small.as_mut_ptr().cast(), small.len()),
            full
        );
        assert_eq!(small[7], 0);
        assert_eq!(wx_last_error_message(b.as_mut_ptr().cast(), 1), full);
        assert_eq!(b[0], 0);
    }
}

#[test]
fn the_secret_never_appears_in_any_message() {
    let secret = "Sup3r&Secret=Value%+/密";
    let s = Setup::with_secret("leak", secret, cfg());
    let encoded = "Sup3r%26Secret%3DValue%25%2B%2F";
    let mut messages = Vec::new();
    for (i, fault) in [
        Fault::new(FaultKind::HttpStatus).with_status(500),
        Fault::new(FaultKind::Malformed),
        Fault::new(FaultKind::Reset),
        Fault::new(FaultKind::Redirect),
        Fault::new(FaultKind::Errcode)
            .with_errcode(40125)
            .with_errmsg(&format!("invalid appsecret {secret}")),
        Fault::new(FaultKind::Hang).with_delay_ms(2000),
    ]
    .into_iter()
    .enumerate()
    {
        for ep in ["classic", "stable"] {
            let appid = format!("{}_{i}_{ep}", s.appid);
            s.fake.add_app(&appid, secret);
            s.fake.push_fault(fault.clone());
            register(
                &appid,
                secret,
                Some(&s.options(&format!(r#""endpoint":"{ep}","timeout_ms":500"#))),
            )
            .unwrap();
            messages.push(get(&appid).unwrap_err().message);
        }
    }
    // Connection refused, with the classic endpoint's secret-bearing URL.
    let refused = unique_appid("refused");
    register(
        &refused,
        secret,
        Some(r#"{"api_base":"http://127.0.0.1:1","endpoint":"classic"}"#),
    )
    .unwrap();
    messages.push(get(&refused).unwrap_err().message);
    for m in &messages {
        assert!(
            !m.contains(secret) && !m.contains(encoded) && !m.contains("Sup3r"),
            "leak: {m}"
        );
    }
}

#[test]
fn plain_http_is_refused_for_non_loopback_hosts() {
    let e = register(
        &unique_appid("nonloop"),
        "x",
        Some(r#"{"api_base":"http://api.weixin.qq.com"}"#),
    )
    .unwrap_err();
    assert_eq!(e.status, WX_INVALID_ARGUMENT);
    assert!(e.message.contains("loopback"));
    register(
        &unique_appid("https"),
        "x",
        Some(r#"{"api_base":"https://api.weixin.qq.com"}"#),
    )
    .unwrap();
}

#[test]
fn version_and_status_names() {
    let v = unsafe { std::ffi::CStr::from_ptr(wx_token_version()) };
    assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    let name = |c| {
        unsafe { std::ffi::CStr::from_ptr(wx_status_name(c)) }
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(name(WX_OK), "OK");
    assert_eq!(name(WX_RATE_LIMITED), "RATE_LIMITED");
    assert_eq!(name(42), "UNKNOWN");
}

fn stats_json(appid: &str) -> serde_json::Value {
    let a = cstr(appid);
    let mut n = 0usize;
    assert_eq!(
        unsafe { wx_token_stats_json(a.as_ptr(), std::ptr::null_mut(), 0, &mut n) },
        WX_BUFFER_TOO_SMALL
    );
    let mut buf = vec![0u8; n + 1];
    assert_eq!(
        unsafe { wx_token_stats_json(a.as_ptr(), buf.as_mut_ptr().cast(), buf.len(), &mut n) },
        WX_OK
    );
    serde_json::from_slice(&buf[..n]).unwrap()
}

#[test]
fn stats_count_fetches_and_failures_by_errcode() {
    let s = Setup::new("stats", cfg());
    s.fake.push_fault(Fault::new(FaultKind::Busy));
    s.register("");
    assert_eq!(stats_json(&s.appid)["fetches"], 0);
    assert_eq!(
        stats_json(&s.appid)["last_fetch_seconds"],
        serde_json::Value::Null
    );
    get(&s.appid).unwrap_err();
    assert!(eventually(3, || get(&s.appid).is_ok()));
    let v = stats_json(&s.appid);
    assert_eq!(v["fetches"], 2);
    assert!(v["fetch_seconds_total"].as_f64().unwrap() > 0.0);
    assert_eq!(
        v["failures"],
        serde_json::json!([{"status": "WECHAT_ERROR", "errcode": -1, "count": 1}])
    );
    assert_eq!(v["tokens_from_store"], 0);
    assert_eq!(
        unsafe {
            wx_token_stats_json(
                cstr("wx_nope").as_ptr(),
                std::ptr::null_mut(),
                0,
                std::ptr::null_mut(),
            )
        },
        WX_UNKNOWN_APP
    );
}

#[test]
fn try_get_info_answers_only_without_waiting() {
    let s = Setup::new("tryget", cfg());
    s.fake.push_fault(Fault::new(FaultKind::Quota));
    s.register(r#""error_cooldown_ms":60000"#);
    assert!(
        wx_token::try_get_info(&s.appid).is_none(),
        "nothing cached: it would have to fetch"
    );
    get(&s.appid).unwrap_err();
    let e = wx_token::try_get_info(&s.appid).unwrap().unwrap_err();
    assert_eq!(
        e.errcode(),
        45009,
        "a failure in its cooldown is answered at once"
    );
    assert_eq!(s.fetches(), 1);
    let other = Setup::new("tryget2", cfg());
    other.register("");
    let token = get(&other.appid).unwrap();
    let info = wx_token::try_get_info(&other.appid).unwrap().unwrap();
    assert_eq!(info.access_token, token);
    assert_eq!(info.lifetime, Duration::from_secs(7200));
    let age = std::time::SystemTime::now()
        .duration_since(info.fetched_at)
        .unwrap();
    assert!(age < Duration::from_secs(60), "{age:?}");
    assert!(
        wx_token::try_get_info("wx_never_registered_3")
            .unwrap()
            .is_err()
    );
}

// ---- #11: hardening of the ABI's edges ----

/// Events for `appid` only (tests share the process-wide sink; each keeps its own app's).
fn capture_events(appid: &str) -> Arc<std::sync::Mutex<Vec<(String, i32, String)>>> {
    let seen: Arc<std::sync::Mutex<Vec<(String, i32, String)>>> = Arc::default();
    let (s, appid) = (seen.clone(), appid.to_owned());
    wx_token::events::set_sink(
        Some(Box::new(move |e: &wx_token::events::Event<'_>| {
            if e.app == appid {
                s.lock()
                    .unwrap()
                    .push((e.kind.to_owned(), e.level as i32, e.message.to_owned()));
            }
        })),
        wx_token::events::Level::Debug,
    );
    seen
}

#[test]
fn passive_refresh_is_paced_with_the_classic_endpoint() {
    // 500 x (get, invalidate(current)) once made 501 fetches in 0.27 s.
    let s = Setup::new("passivepace", cfg());
    s.register(r#""endpoint":"classic""#);
    let events = capture_events(&s.appid);
    let t1 = get(&s.appid).unwrap();
    let mut refused = 0;
    for _ in 0..200 {
        let t = get(&s.appid).unwrap();
        match invalidate(&s.appid, Some(&t)) {
            Ok(()) => {}
            Err(e) => {
                assert_eq!(e.status, WX_RATE_LIMITED, "{e:?}");
                assert!(
                    e.message.contains("passive_refresh_interval_secs"),
                    "{}",
                    e.message
                );
                refused += 1;
            }
        }
    }
    assert_eq!(s.fetches(), 2, "one invalidation-driven fetch per 30 s");
    assert_eq!(refused, 199);
    let t2 = get(&s.appid).unwrap();
    assert_ne!(t1, t2);
    assert!(s.fake.is_valid(&t2), "the current token stays in service");
    let events = events.lock().unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|(k, level, _)| k == "passive_refresh_limited" && *level == 2)
            .count(),
        199,
        "{events:?}"
    );
    assert!(events.iter().all(|(_, _, m)| !m.contains(&t2)));
}

#[test]
fn passive_refresh_has_a_daily_budget() {
    let s = Setup::new("passivedaily", cfg());
    s.register(
        r#""endpoint":"classic","passive_refresh_interval_secs":0,"passive_refresh_daily_limit":3"#,
    );
    get(&s.appid).unwrap();
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let t = get(&s.appid).unwrap();
        statuses.push(invalidate(&s.appid, Some(&t)).map_err(|e| e.status));
    }
    assert_eq!(statuses[..3], [Ok(()), Ok(()), Ok(())]);
    assert!(statuses[3..].iter().all(|r| *r == Err(WX_RATE_LIMITED)));
    assert_eq!(s.fetches(), 4);
    assert!(s.fake.is_valid(&get(&s.appid).unwrap()));
    for bad in [
        r#""passive_refresh_interval_secs":-1"#,
        r#""passive_refresh_interval_secs":86401"#,
        r#""passive_refresh_daily_limit":10001"#,
    ] {
        let e = register(&s.appid, &s.secret, Some(&s.options(bad))).unwrap_err();
        assert_eq!(e.status, WX_INVALID_ARGUMENT, "{bad}");
    }
}

#[test]
fn a_plain_get_never_answers_rate_limited_after_a_failed_invalidation() {
    let s = Setup::new("norategets", cfg());
    s.register("");
    get(&s.appid).unwrap();
    invalidate(&s.appid, None).unwrap(); // spends the forced refresh of the next 30 s
    let t2 = get(&s.appid).unwrap();
    s.fake.push_fault(Fault::new(FaultKind::Busy));
    let e = invalidate(&s.appid, Some(&t2)).unwrap_err();
    assert_eq!((e.status, e.errcode), (WX_WECHAT_ERROR, -1), "{e:?}");
    // WeChat, asked in normal mode, still calls t2 current: a plain get is served it, it never
    // chases the forced refresh the failed report wanted.
    let mut got = None;
    assert!(eventually(3, || match get(&s.appid) {
        Ok(t) => {
            got = Some(t);
            true
        }
        Err(e) => {
            assert_ne!(e.status, WX_RATE_LIMITED, "{e:?}");
            false
        }
    }));
    assert_eq!(got.as_deref(), Some(t2.as_str()));
    assert_eq!(s.fake.app_stats(&s.appid).force_requests, 1);
}

#[test]
fn ids_are_validated_at_register_whatever_the_store() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("ids-{}", std::process::id()));
    let s = Setup::new("ids", cfg());
    let file = format!(r#""store":"file:{}""#, dir.display());
    for extra in ["", file.as_str()] {
        for bad in [
            "../x",
            "a/b",
            ".hidden",
            "..",
            "wx*",
            "a b",
            "wx:1",
            "wx\u{7f}",
            "密",
            "",
            &"x".repeat(129),
        ] {
            let e = register(bad, &s.secret, Some(&s.options(extra))).unwrap_err();
            assert_eq!(e.status, WX_INVALID_ARGUMENT, "{bad:?} {extra}");
            assert!(e.message.contains("[A-Za-z0-9_.-]"), "{}", e.message);
        }
        for good in [
            format!("acme.contacts_{}", std::process::id()),
            format!("wx-1.2_{}", std::process::id()),
            format!("{}{}", "x".repeat(120), std::process::id() % 10_000_000),
        ] {
            register(&good, &s.secret, Some(&s.options(extra)))
                .unwrap_or_else(|e| panic!("{good}: {e:?}"));
        }
    }
    // A store that cannot be opened: a status register lists, with a message saying why.
    let e = register(
        &s.appid,
        &s.secret,
        Some(&s.options(r#""store":"file:/proc/self/x""#)),
    )
    .unwrap_err();
    assert_eq!(e.status, WX_INVALID_ARGUMENT, "{e:?}");
    assert!(e.message.contains("store"), "{}", e.message);
}

/// The cached path compares short appids inside the token cell and longer ones with the app's
/// own copy: ids of every length up to the limit, and ids that differ only after a long shared
/// prefix, each get their own token, from one fetch, and an unregistered one is unknown.
#[test]
fn long_and_look_alike_appids_each_get_their_own_cached_token() {
    let s = Setup::new("lookalike", cfg());
    let base = unique_appid("lookalike");
    let ids: Vec<String> = [31, 32, 33, 40, 64, 127, 128]
        .iter()
        .flat_map(|&len| {
            ["a", "b"].map(|last| {
                let mut id = base.clone();
                while id.len() < len - 1 {
                    id.push('x');
                }
                id + last
            })
        })
        .collect();
    let opts = s.options("");
    for id in &ids {
        assert!(id.len() <= 128);
        s.fake.add_app(id, &s.secret);
        register(id, &s.secret, Some(&opts)).unwrap();
    }
    let first: Vec<String> = ids.iter().map(|id| get(id).unwrap()).collect();
    for _ in 0..3 {
        for (id, token) in ids.iter().zip(&first) {
            assert_eq!(&get(id).unwrap(), token, "{id} served its own cached token");
        }
    }
    let distinct: std::collections::HashSet<&String> = first.iter().collect();
    assert_eq!(distinct.len(), ids.len());
    for id in &ids {
        let st = s.fake.app_stats(id);
        assert_eq!(st.token_requests + st.stable_requests, 1, "{id}");
    }
    unregister(&ids[5]).unwrap();
    assert_eq!(get(&ids[5]).unwrap_err().status, WX_UNKNOWN_APP);
    assert_eq!(get(&ids[4]).unwrap(), first[4]);
    assert_eq!(get(&ids[6]).unwrap(), first[6]);
}

/// Every run of 6 characters of `s`.
fn windows6(s: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    chars.windows(6).map(|w| w.iter().collect()).collect()
}

fn pct(s: &str, lower: bool, form: bool) -> String {
    let mut out = String::new();
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else if form && b == b' ' {
            out.push('+');
        } else if lower {
            out.push_str(&format!("%{b:02x}"));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[test]
fn echoed_secrets_are_scrubbed_in_every_encoding() {
    let secret = "Zq9+Vx/Kw 7&Jm=Pt%Lr密Hy";
    let s = Setup::with_secret("echo", secret, cfg());
    let encodings = [
        secret.to_owned(),
        pct(secret, false, false),
        pct(secret, true, false),
        pct(secret, false, true),
        secret.replace('+', " "), // form-decoded by the server
    ];
    // Each echoed whole, and truncated to a middle part of 8 characters.
    let mut echoes: Vec<String> = encodings.to_vec();
    echoes.extend(
        encodings
            .iter()
            .map(|e| e.chars().skip(3).take(8).collect::<String>()),
    );
    for (i, echo) in echoes.iter().enumerate() {
        for ep in ["classic", "stable"] {
            let appid = format!("{}_{i}_{ep}", s.appid);
            s.fake.add_app(&appid, secret);
            s.fake.push_fault(
                Fault::new(FaultKind::Errcode)
                    .with_errcode(40125)
                    .with_errmsg(&format!("invalid appsecret {echo} hint: [{echo}]"))
                    .for_app(&appid),
            );
            register(
                &appid,
                secret,
                Some(&s.options(&format!(r#""endpoint":"{ep}""#))),
            )
            .unwrap();
            let e = get(&appid).unwrap_err();
            assert_eq!((e.status, e.errcode), (WX_WECHAT_ERROR, 40125), "{e:?}");
            assert!(e.errmsg.starts_with("invalid appsecret "), "{}", e.errmsg);
            for text in [&e.message, &e.errmsg] {
                for enc in &encodings {
                    for w in windows6(enc) {
                        assert!(!text.contains(&w), "echo {i} leaks {w:?}: {text}");
                    }
                }
            }
        }
    }
}

#[test]
fn a_short_secret_never_garbles_a_message() {
    let s = Setup::with_secret("shortsecret", "s", cfg());
    s.fake.push_fault(
        Fault::new(FaultKind::Errcode)
            .with_errcode(40125)
            .with_errmsg("invalid appsecret, secret=s&appid=x"),
    );
    s.register(r#""endpoint":"classic""#);
    let e = get(&s.appid).unwrap_err();
    assert_eq!(e.errmsg, "invalid appsecret, secret=***&appid=x", "{e:?}");
    assert!(e.message.contains("invalid appsecret"), "{}", e.message);
    // A transport error names the host, never a URL (which holds the secret on classic).
    let refused = unique_appid("shortrefused");
    register(
        &refused,
        "s",
        Some(r#"{"api_base":"http://127.0.0.1:1","endpoint":"classic"}"#),
    )
    .unwrap();
    let e = get(&refused).unwrap_err();
    assert_eq!(e.status, WX_NETWORK);
    assert!(
        e.message.contains("token request to 127.0.0.1:1 failed") && !e.message.contains("http"),
        "{}",
        e.message
    );
    assert!(!e.message.contains("***"), "{}", e.message);
}
