//! JS-SDK tickets through the C ABI against the fake WeChat: single flight, lifetimes counted
//! from first sight, refresh ahead, compare-and-invalidate, the token's passive refresh on
//! getticket's 40001, WeCom's corp and agent tickets and limits, fleets of processes sharing a
//! ticket through file and Redis stores, and every wx_jssdk_config answer checked by the fake's
//! wx.config.

mod common;

use std::ffi::c_char;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use wx_fake::{FakeConfig, FakeWechat, Fault, TICKET_PATH, TicketKind};
use wx_token::ffi::*;

fn ticket(appid: &str, kind: &str) -> Result<String, Failure> {
    let (a, k) = (cstr(appid), cstr(kind));
    let ticket = buffer_out(WX_TOKEN_MAX_LEN + 1, |buf, len, n| unsafe {
        wx_ticket_get(a.as_ptr(), k.as_ptr(), buf, len, n)
    })?;
    Ok(String::from_utf8(ticket).unwrap())
}

fn ticket_invalidate(appid: &str, kind: &str, stale: &str) -> Result<(), Failure> {
    let (a, k, s) = (cstr(appid), cstr(kind), cstr(stale));
    match unsafe { wx_ticket_invalidate(a.as_ptr(), k.as_ptr(), s.as_ptr()) } {
        WX_OK => Ok(()),
        rc => Err(last_failure(rc)),
    }
}

fn jssdk_config(appid: &str, kind: &str, url: &str) -> Result<serde_json::Value, Failure> {
    let (a, k, u) = (cstr(appid), cstr(kind), cstr(url));
    let json = buffer_out(WX_JSSDK_CONFIG_MAX_LEN + 1, |buf, len, n| unsafe {
        wx_jssdk_config(a.as_ptr(), k.as_ptr(), u.as_ptr(), buf, len, n)
    })?;
    Ok(serde_json::from_slice(&json).unwrap())
}

/// A page's wx.config with what the server rendered: accepted by the fake's browser check?
fn accepted(fake: &FakeWechat, appid: &str, kind: &str, url: &str) -> Result<(), String> {
    let cfg = jssdk_config(appid, kind, url).map_err(|f| f.message)?;
    fake.jssdk_check(&cfg, url)
}

fn mp(tag: &str, ticket_lifetime: u64, extra: &str) -> Setup {
    let s = Setup::new(tag, FakeConfig::default());
    s.fake.set_ticket_lifetime(ticket_lifetime);
    s.register(extra);
    s
}

#[test]
fn sixty_four_threads_cause_one_getticket_and_every_config_is_accepted() {
    let s = mp("tk64", 7200, "");
    s.fake.set_delay_ms(200); // the token and the ticket are in flight while everyone asks
    let threads: Vec<_> = (0..64)
        .map(|_| {
            let appid = s.appid.clone();
            std::thread::spawn(move || ticket(&appid, "jsapi"))
        })
        .collect();
    let seen: Vec<String> = threads
        .into_iter()
        .map(|t| t.join().unwrap().expect("ticket"))
        .collect();
    assert!(seen.iter().all(|t| *t == seen[0]));
    let st = s.fake.app_stats(&s.appid);
    assert_eq!(st.ticket_requests, 1, "one getticket for 64 threads");
    assert_eq!(s.fetches(), 1, "one token fetch");
    assert_eq!(
        s.fake.current_ticket(&s.appid, TicketKind::Jsapi),
        Some(seen[0].clone())
    );
    s.fake.set_delay_ms(0);
    let url = "https://shop.example/p?id=7&q=a b#/cart";
    for _ in 0..20 {
        accepted(&s.fake, &s.appid, "jsapi", url).expect("wx.config accepts");
    }
    let a = jssdk_config(&s.appid, "jsapi", url).unwrap();
    let b = jssdk_config(&s.appid, "jsapi", url).unwrap();
    assert_ne!(a["nonceStr"], b["nonceStr"], "a fresh nonce every call");
    assert_eq!(a["appId"], s.appid.as_str());
    // The card ticket is apart, and wx.config does not take it.
    let card = ticket(&s.appid, "wx_card").unwrap();
    assert_ne!(card, seen[0]);
    assert_eq!(
        jssdk_config(&s.appid, "wx_card", url).unwrap_err().status,
        WX_INVALID_ARGUMENT
    );
    assert_eq!(
        ticket(&s.appid, "agent_config").unwrap_err().status,
        WX_INVALID_ARGUMENT
    );
    assert_eq!(
        ticket("wx_nobody_here", "jsapi").unwrap_err().status,
        WX_UNKNOWN_APP
    );
    assert_eq!(s.fake.app_stats(&s.appid).ticket_requests, 2);
}

/// WeChat hands a ticket asked for while valid back with a full expires_in: the engine must
/// count its life from first sight, so it never serves a ticket WeChat has expired. A refresh
/// ahead asks once, then the replacement is fetched in the background at expiry.
#[test]
fn a_re_served_ticket_is_not_extended_and_is_replaced_ahead_of_callers() {
    let s = mp("tkext", 2, r#""refresh_ahead_secs":1"#);
    let first = ticket(&s.appid, "jsapi").unwrap();
    let url = "https://m.example/a";
    let mut failures = 0;
    let mut distinct = vec![first.clone()];
    let end = Instant::now() + Duration::from_millis(4500);
    while Instant::now() < end {
        match accepted(&s.fake, &s.appid, "jsapi", url) {
            Ok(()) => {}
            Err(_) => failures += 1,
        }
        let t = ticket(&s.appid, "jsapi").unwrap();
        if !distinct.contains(&t) {
            distinct.push(t);
        }
        std::thread::sleep(Duration::from_millis(40));
    }
    // A ticket extended by a re-fetch would fail every check for a whole lifetime (2 s, ~40
    // checks); a rotation can at worst race one check.
    assert!(failures <= 2, "{failures} wx.config checks failed");
    assert!(distinct.len() >= 2, "the ticket was replaced at its expiry");
    // Per lifetime: one fetch ahead (the same ticket back) and one at expiry, plus at most
    // three re-asks while WeChat still re-serves the old one: a handful, never a loop.
    let asked = s.fake.app_stats(&s.appid).ticket_requests;
    assert!(
        (3..=14).contains(&asked),
        "{asked} getticket calls in 2.25 lifetimes"
    );
    // Idle now: the refresher alone fetches the replacement when the ticket expires.
    let before = s.fake.app_stats(&s.appid).ticket_requests;
    std::thread::sleep(Duration::from_millis(2600));
    let after = s.fake.app_stats(&s.appid).ticket_requests;
    assert!(after > before, "refreshed in the background");
    let current = s.fake.current_ticket(&s.appid, TicketKind::Jsapi);
    assert_eq!(ticket(&s.appid, "jsapi").ok(), current);
    assert_eq!(
        s.fake.app_stats(&s.appid).ticket_requests,
        after,
        "no caller waited"
    );
}

#[test]
fn invalidate_compares_and_one_fetch_serves_every_reporter() {
    let s = mp("tkinv", 7200, r#""passive_refresh_interval_secs":0"#);
    let old = ticket(&s.appid, "jsapi").unwrap();
    let url = "https://m.example/inv";
    accepted(&s.fake, &s.appid, "jsapi", url).unwrap();
    s.fake.expire_tickets();
    assert!(
        accepted(&s.fake, &s.appid, "jsapi", url).is_err(),
        "the page fails"
    );
    // A report about another ticket changes nothing.
    ticket_invalidate(&s.appid, "jsapi", "not-the-ticket").unwrap();
    assert_eq!(ticket(&s.appid, "jsapi").unwrap(), old);
    assert_eq!(s.fake.app_stats(&s.appid).ticket_requests, 1);
    let reporters: Vec<_> = (0..16)
        .map(|_| {
            let (appid, old) = (s.appid.clone(), old.clone());
            std::thread::spawn(move || ticket_invalidate(&appid, "jsapi", &old))
        })
        .collect();
    for r in reporters {
        r.join().unwrap().unwrap();
    }
    assert_eq!(
        s.fake.app_stats(&s.appid).ticket_requests,
        2,
        "one fetch for 16 reports"
    );
    assert_ne!(ticket(&s.appid, "jsapi").unwrap(), old);
    accepted(&s.fake, &s.appid, "jsapi", url).unwrap();
    let n = cstr(&s.appid);
    let k = cstr("jsapi");
    assert_eq!(
        unsafe { wx_ticket_invalidate(n.as_ptr(), k.as_ptr(), std::ptr::null()) },
        WX_INVALID_ARGUMENT
    );
}

#[test]
fn getticket_40001_refreshes_the_token_once_and_retries() {
    let s = mp(
        "tk40001",
        7200,
        r#""endpoint":"classic","passive_refresh_interval_secs":0"#,
    );
    let token = get(&s.appid).unwrap();
    s.fake.revoke(&token); // WeChat no longer accepts it: getticket answers 40001
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let appid = s.appid.clone();
            std::thread::spawn(move || ticket(&appid, "jsapi"))
        })
        .collect();
    let seen: Vec<String> = threads
        .into_iter()
        .map(|t| t.join().unwrap().unwrap())
        .collect();
    assert!(seen.iter().all(|t| *t == seen[0]));
    assert_eq!(s.fetches(), 2, "the rejected token was replaced once");
    assert_ne!(get(&s.appid).unwrap(), token);
    assert_eq!(
        s.fake.app_stats(&s.appid).ticket_requests,
        2,
        "one rejected, one retried"
    );
    // A terminal error of getticket itself is answered from the cooldown.
    s.fake.expire_tickets();
    s.fake.push_fault(
        Fault::wx_error(40164, "invalid ip")
            .for_path(TICKET_PATH)
            .times(5),
    );
    ticket_invalidate(&s.appid, "jsapi", &seen[0]).unwrap_err();
    for _ in 0..5 {
        assert_eq!(ticket(&s.appid, "jsapi").unwrap_err().errcode, 40164);
    }
    assert_eq!(s.fake.app_stats(&s.appid).ticket_requests, 3);
}

fn wecom_fake(corp: &str) -> FakeWechat {
    let f = FakeWechat::start(
        FakeConfig::default()
            .with_wecom(corp, "app-secret", Some(1000002))
            .with_wecom(corp, "contacts-secret", None),
    )
    .unwrap();
    f.set_ticket_lifetime(7200);
    f
}

fn wecom_register(fake: &FakeWechat, id: &str, corp: &str, secret: &str, agent: Option<u64>) {
    let mut o = serde_json::json!({
        "platform": "wecom", "corpid": corp, "api_base": fake.base_url(),
        "passive_refresh_interval_secs": 0, "passive_refresh_daily_limit": 10000,
    });
    if let Some(a) = agent {
        o["agentid"] = a.into();
    }
    register(id, secret, Some(&o.to_string())).unwrap();
}

#[test]
fn wecom_corp_and_agent_tickets_do_not_collide_and_configs_are_accepted() {
    let corp = format!("wwtk{}", std::process::id());
    let fake = wecom_fake(&corp);
    let app = unique_appid("acme.app");
    let contacts = unique_appid("acme.contacts");
    wecom_register(&fake, &app, &corp, "app-secret", Some(1000002));
    wecom_register(&fake, &contacts, &corp, "contacts-secret", None);
    let corp_ticket = ticket(&app, "jsapi").unwrap();
    let agent_ticket = ticket(&app, "agent_config").unwrap();
    assert_ne!(
        corp_ticket, agent_ticket,
        "agent and corp tickets are apart"
    );
    assert_eq!(
        ticket(&contacts, "jsapi").unwrap(),
        corp_ticket,
        "one corp ticket per corp"
    );
    let url = "https://work.example/approve?id=9";
    accepted(&fake, &app, "jsapi", url).expect("wx.config (corp ticket)");
    accepted(&fake, &app, "agent_config", url).expect("wx.agentConfig (agent ticket)");
    let cfg = jssdk_config(&app, "agent_config", url).unwrap();
    assert_eq!(
        (cfg["corpid"].as_str(), cfg["agentid"].as_str()),
        (Some(corp.as_str()), Some("1000002"))
    );
    assert_eq!(
        jssdk_config(&app, "jsapi", url).unwrap()["appId"],
        corp.as_str()
    );
    assert_eq!(
        jssdk_config(&contacts, "agent_config", url)
            .unwrap_err()
            .status,
        WX_INVALID_ARGUMENT,
        "no agentid: no wx.agentConfig"
    );
    assert_eq!(
        ticket(&app, "wx_card").unwrap_err().status,
        WX_INVALID_ARGUMENT
    );
}

/// WeCom allows 100 agent tickets an hour per app: the 101st fetch is refused locally.
#[test]
fn wecom_agent_tickets_stop_at_a_hundred_an_hour() {
    let corp = format!("wwlim{}", std::process::id());
    let fake = wecom_fake(&corp);
    let app = unique_appid("acme.lim");
    wecom_register(&fake, &app, &corp, "app-secret", Some(1000002));
    let mut t = ticket(&app, "agent_config").unwrap();
    for _ in 1..100 {
        fake.expire_tickets();
        ticket_invalidate(&app, "agent_config", &t).unwrap();
        t = ticket(&app, "agent_config").unwrap();
    }
    fake.expire_tickets();
    let f = ticket_invalidate(&app, "agent_config", &t).unwrap_err();
    assert_eq!(f.status, WX_RATE_LIMITED, "{}", f.message);
    assert_eq!(fake.stats().agent_ticket_requests, 100);
}

fn ticket_fleet(s: &Setup, options: &str, procs: usize) -> Vec<String> {
    let mut args = s.peer_args(options);
    args.extend(["--threads", "4", "--ticket", "jsapi"]);
    let seen = peer_fleet(procs, &args, Duration::from_millis(300)).concat();
    assert_eq!(seen.len(), procs * 4);
    seen
}

fn one_ticket_per_fleet(store: &str) {
    let s = Setup::new("tkfleet", FakeConfig::default());
    s.fake.set_delay_ms(150);
    let options = s.options(&format!(r#""store":"{store}""#));
    let seen = ticket_fleet(&s, &options, 8);
    assert!(seen.iter().all(|f| *f == seen[0]), "one ticket: {seen:?}");
    let expected = fingerprint(&s.fake.current_ticket(&s.appid, TicketKind::Jsapi).unwrap());
    assert_eq!(seen[0], expected);
    assert_eq!(
        s.fake.app_stats(&s.appid).ticket_requests,
        1,
        "one getticket per fleet"
    );
    // A rejected ticket is replaced once for the whole fleet.
    s.fake.set_delay_ms(0);
    s.fake.expire_tickets();
    let options = s.options(&format!(
        r#""store":"{store}","passive_refresh_interval_secs":0"#
    ));
    let mut args = s.peer_args(&options);
    args.extend(["--threads", "2", "--ticket", "jsapi", "--report-rejected"]);
    let after = peer_fleet(6, &args, Duration::from_millis(400)).concat();
    let replacement = fingerprint(&s.fake.current_ticket(&s.appid, TicketKind::Jsapi).unwrap());
    assert!(after.iter().all(|f| *f == replacement), "{after:?}");
    assert_eq!(
        s.fake.app_stats(&s.appid).ticket_requests,
        2,
        "one replacement per fleet"
    );
}

#[test]
fn a_fleet_shares_one_ticket_through_a_file_store() {
    let dir = tmpdir("tkfile");
    one_ticket_per_fleet(&format!("file:{}", dir.display()));
}

#[test]
fn a_fleet_shares_one_ticket_through_redis() {
    let Some(redis) = RedisServer::start() else {
        eprintln!("SKIPPED: redis-server is not installed");
        return;
    };
    one_ticket_per_fleet(&redis.url());
    // The ticket lives in its id's hash slot, beside the token.
    let keys = redis
        .cli(&["--scan", "--pattern", "*ticket*"])
        .unwrap_or_default();
    assert!(
        keys.lines().any(|k| k.ends_with("}:ticket:jsapi")),
        "{keys}"
    );
    let _ = Arc::new(redis);
}

#[test]
fn ticket_functions_are_safe_on_bad_arguments_and_write_nothing_on_failure() {
    let s = mp("tkabi", 7200, "");
    let t = ticket(&s.appid, "jsapi").unwrap();
    let (a, k, u) = (cstr(&s.appid), cstr("jsapi"), cstr("https://p.example/x"));
    let mut buf = [b'#' as c_char; 8];
    let mut n = 0usize;
    // Too small: the length is reported, nothing is written.
    let rc = unsafe { wx_ticket_get(a.as_ptr(), k.as_ptr(), buf.as_mut_ptr(), buf.len(), &mut n) };
    assert_eq!((rc, n), (WX_BUFFER_TOO_SMALL, t.len()));
    assert!(buf.iter().all(|&c| c == b'#' as c_char));
    let rc = unsafe { wx_ticket_get(a.as_ptr(), k.as_ptr(), std::ptr::null_mut(), 0, &mut n) };
    assert_eq!((rc, n), (WX_BUFFER_TOO_SMALL, t.len()), "the size query");
    let rc = unsafe {
        wx_jssdk_config(
            a.as_ptr(),
            k.as_ptr(),
            u.as_ptr(),
            buf.as_mut_ptr(),
            buf.len(),
            &mut n,
        )
    };
    assert_eq!(rc, WX_BUFFER_TOO_SMALL);
    assert!(n > 8 && n <= WX_JSSDK_CONFIG_MAX_LEN);
    assert!(buf.iter().all(|&c| c == b'#' as c_char));
    let bad_utf8 = [0xffu8, 0];
    let null = std::ptr::null();
    for (id, kind) in [
        (null, k.as_ptr()),
        (a.as_ptr(), null),
        (bad_utf8.as_ptr().cast(), k.as_ptr()),
    ] {
        let rc = unsafe { wx_ticket_get(id, kind, buf.as_mut_ptr(), buf.len(), &mut n) };
        assert_eq!(rc, WX_INVALID_ARGUMENT);
        let rc =
            unsafe { wx_jssdk_config(id, kind, u.as_ptr(), buf.as_mut_ptr(), buf.len(), &mut n) };
        assert_eq!(rc, WX_INVALID_ARGUMENT);
        assert_eq!(
            unsafe { wx_ticket_invalidate(id, kind, a.as_ptr()) },
            WX_INVALID_ARGUMENT
        );
    }
    let rc = unsafe {
        wx_jssdk_config(
            a.as_ptr(),
            k.as_ptr(),
            null,
            buf.as_mut_ptr(),
            buf.len(),
            &mut n,
        )
    };
    assert_eq!(rc, WX_INVALID_ARGUMENT);
    let ctl = cstr("https://p.example/\n");
    let rc = unsafe {
        wx_jssdk_config(
            a.as_ptr(),
            k.as_ptr(),
            ctl.as_ptr(),
            buf.as_mut_ptr(),
            buf.len(),
            &mut n,
        )
    };
    assert_eq!(rc, WX_INVALID_ARGUMENT);
    let rc = unsafe { wx_ticket_get(a.as_ptr(), k.as_ptr(), std::ptr::null_mut(), 5, &mut n) };
    assert_eq!(rc, WX_INVALID_ARGUMENT, "NULL buf with a length");
    assert!(buf.iter().all(|&c| c == b'#' as c_char));
    assert_eq!(s.fake.app_stats(&s.appid).ticket_requests, 1);
}

/// fork() with several apps registered (every app's ticket locks are held around it) leaves a
/// child whose tickets work: the cached one at once, and a fresh fetch.
#[test]
fn a_fork_child_gets_tickets() {
    let a = mp("tkforka", 7200, "");
    let b = mp("tkforkb", 7200, "");
    let ta = ticket(&a.appid, "jsapi").unwrap();
    ticket(&b.appid, "jsapi").unwrap();
    let (base, appid) = (a.fake.base_url(), a.appid.clone());
    let status = in_child(move || {
        if ticket(&appid, "jsapi").ok() != Some(ta.clone()) {
            return false;
        }
        // The fake lives in the parent's threads: expire its tickets over HTTP, then report
        // the old one, which makes the child fetch.
        use std::io::{Read, Write};
        let addr = base.trim_start_matches("http://");
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        let req = format!(
            "POST /_fake/expire_tickets HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        );
        c.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        let _ = c.read_to_string(&mut out);
        ticket_invalidate(&appid, "jsapi", &ta).is_ok()
            && ticket(&appid, "jsapi").is_ok_and(|t| t != ta)
    });
    assert_eq!(status, 0);
}
