//! WeChat semantics of the token endpoints and the business API, over HTTP.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::*;
use wx_fake::{FakeConfig, FakeWechat, TokenEndpoint};

#[test]
fn classic_issues_fresh_tokens_with_real_defaults() {
    let f = fake();
    let r = get(&f.base_url(), &classic_target(APP, SECRET));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/json; encoding=utf-8")
    );
    assert_eq!(r.header("connection"), Some("close"));
    let v = r.json();
    assert_eq!(v["expires_in"], 7200);
    let t = token_of(&v);
    assert_eq!(t.len(), 136);
    assert!(
        t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    );
    assert!(f.is_valid(&t));
    assert_eq!(f.current_token(APP), Some(t));
    assert!(f.base_url().starts_with("http://127.0.0.1:"));
    assert_eq!(f.base_url(), format!("http://127.0.0.1:{}", f.port()));
}

#[test]
fn classic_previous_token_overlaps_and_older_ones_die() {
    let f = fake();
    let url = f.base_url();
    let t1 = token_of(&classic(&url, APP, SECRET));
    let t2 = token_of(&classic(&url, APP, SECRET));
    assert_ne!(t1, t2);
    assert_eq!(
        api_errcode(&url, &t1),
        0,
        "previous token valid during overlap"
    );
    let t3 = token_of(&classic(&url, APP, SECRET));
    assert_eq!(
        api_errcode(&url, &t1),
        42001,
        "older than previous dies at once"
    );
    assert_eq!(api_errcode(&url, &t2), 0);
    assert_eq!(api_errcode(&url, &t3), 0);
}

#[test]
fn classic_overlap_runs_out_in_real_time() {
    let f = fake_with(FakeConfig {
        overlap_secs: 1,
        ..FakeConfig::default()
    });
    let url = f.base_url();
    let t1 = token_of(&classic(&url, APP, SECRET));
    let _t2 = token_of(&classic(&url, APP, SECRET));
    assert!(f.is_valid(&t1));
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(api_errcode(&url, &t1), 42001);
}

#[test]
fn zero_overlap_invalidates_previous_immediately() {
    let f = fake_with(FakeConfig {
        overlap_secs: 0,
        ..FakeConfig::default()
    });
    let url = f.base_url();
    let t1 = token_of(&classic(&url, APP, SECRET));
    let t2 = token_of(&classic(&url, APP, SECRET));
    assert_eq!(api_errcode(&url, &t1), 42001);
    assert_eq!(api_errcode(&url, &t2), 0);
}

#[test]
fn classic_credential_errors() {
    let f = fake();
    let url = f.base_url();
    let err = |target: &str| get(&url, target).json()["errcode"].as_i64().unwrap();
    assert_eq!(
        err("/cgi-bin/token?grant_type=password&appid=wx_app&secret=s3cret"),
        40002
    );
    assert_eq!(err("/cgi-bin/token?appid=wx_app&secret=s3cret"), 40002);
    assert_eq!(
        err("/cgi-bin/token?grant_type=client_credential&secret=s3cret"),
        41002
    );
    assert_eq!(
        err("/cgi-bin/token?grant_type=client_credential&appid=wx_app"),
        41004
    );
    assert_eq!(
        err("/cgi-bin/token?grant_type=client_credential&appid=wx_app&secret="),
        41004
    );
    assert_eq!(err(&classic_target("wx_nope", SECRET)), 40013);
    assert_eq!(err(&classic_target(APP, "wrong")), 40125);
    let v = get(&url, &classic_target(APP, "wrong")).json();
    assert_eq!(v["errmsg"], "invalid appsecret");
    assert_eq!(f.stats().issued, 0);
    assert_eq!(f.stats().token_requests, 8);
}

#[test]
fn secrets_with_any_characters_must_be_percent_encoded() {
    let f = fake();
    let secret = "a&b+c%d e=f/?#微信";
    f.add_app("wx_odd", secret);
    let url = f.base_url();
    assert!(classic(&url, "wx_odd", secret)["access_token"].is_string());
    // `+` left raw decodes to a space, as with form encoding upstream.
    let sloppy = "/cgi-bin/token?grant_type=client_credential&appid=wx_odd&secret=a%26b+c%25d%20e%3Df%2F%3F%23%E5%BE%AE%E4%BF%A1";
    assert_eq!(get(&url, sloppy).json()["errcode"], 40125);
    // The stable endpoint takes the secret in JSON, no encoding games.
    assert!(stable(&url, "wx_odd", secret, false)["access_token"].is_string());
}

#[test]
fn stable_token_is_reused_until_forced() {
    let f = fake();
    let url = f.base_url();
    let s1 = stable(&url, APP, SECRET, false);
    assert_eq!(s1["expires_in"], 7200);
    let s2 = stable(&url, APP, SECRET, false);
    assert_eq!(token_of(&s1), token_of(&s2));
    let left = s2["expires_in"].as_u64().unwrap();
    assert!((7198..=7200).contains(&left), "{left}");
    let forced = stable(&url, APP, SECRET, true);
    assert_ne!(token_of(&forced), token_of(&s1));
    assert_eq!(forced["expires_in"], 7200);
    assert_eq!(api_errcode(&url, &token_of(&s1)), 0, "old one overlaps");
    assert_eq!(
        token_of(&stable(&url, APP, SECRET, false)),
        token_of(&forced)
    );
    let st = f.stats();
    assert_eq!(
        (st.stable_requests, st.force_requests, st.issued),
        (3, 1, 2)
    );
}

#[test]
fn stable_force_with_zero_overlap_kills_the_old_token() {
    let f = fake_with(FakeConfig {
        overlap_secs: 0,
        ..FakeConfig::default()
    });
    let url = f.base_url();
    let old = token_of(&stable(&url, APP, SECRET, false));
    let new = token_of(&stable(&url, APP, SECRET, true));
    assert_eq!(api_errcode(&url, &old), 42001);
    assert_eq!(api_errcode(&url, &new), 0);
}

#[test]
fn stable_renews_near_expiry_and_leaves_old_to_expire_naturally() {
    // With lifetime == overlap a token never has "more than the overlap" left.
    let f = fake_with(FakeConfig {
        lifetime_secs: 300,
        overlap_secs: 300,
        ..FakeConfig::default()
    });
    let url = f.base_url();
    let a = token_of(&stable(&url, APP, SECRET, false));
    let b = token_of(&stable(&url, APP, SECRET, false));
    assert_ne!(a, b);
    assert_eq!(api_errcode(&url, &a), 0);
    assert_eq!(api_errcode(&url, &b), 0);
}

#[test]
fn stable_errors() {
    let f = fake();
    let url = f.base_url();
    let err = |body: &str| post(&url, "/cgi-bin/stable_token", body).json()["errcode"].clone();
    assert_eq!(err("{not json"), 47001);
    assert_eq!(err(""), 47001);
    assert_eq!(
        err(
            r#"{"grant_type":"client_credential","appid":"wx_app","secret":"s3cret","force_refresh":"yes"}"#
        ),
        47001
    );
    assert_eq!(
        err(r#"{"grant_type":"x","appid":"wx_app","secret":"s3cret"}"#),
        40002
    );
    assert_eq!(
        err(r#"{"grant_type":"client_credential","secret":"s3cret"}"#),
        41002
    );
    assert_eq!(
        err(r#"{"grant_type":"client_credential","appid":"wx_app"}"#),
        41004
    );
    assert_eq!(
        err(r#"{"grant_type":"client_credential","appid":"wx_no","secret":"s3cret"}"#),
        40013
    );
    assert_eq!(
        err(r#"{"grant_type":"client_credential","appid":"wx_app","secret":"nope"}"#),
        40125
    );
    let v = post(&url, "/cgi-bin/stable_token", "{").json();
    assert_eq!(v["errmsg"], "data format error");
    assert_eq!(get(&url, "/cgi-bin/stable_token").status, 405);
    assert_eq!(post(&url, "/cgi-bin/token", "{}").status, 405);
    assert_eq!(f.stats().issued, 0);
}

#[test]
fn classic_and_stable_tokens_are_independent() {
    let f = fake_with(FakeConfig {
        overlap_secs: 0,
        ..FakeConfig::default()
    });
    let url = f.base_url();
    let s = token_of(&stable(&url, APP, SECRET, false));
    let c1 = token_of(&classic(&url, APP, SECRET));
    assert_eq!(f.current_token(APP).as_deref(), Some(c1.as_str()));
    let _c2 = token_of(&classic(&url, APP, SECRET));
    assert_eq!(
        api_errcode(&url, &s),
        0,
        "classic rotation leaves stable alone"
    );
    assert_eq!(token_of(&stable(&url, APP, SECRET, false)), s);
    let s2 = token_of(&stable(&url, APP, SECRET, true));
    assert_eq!(f.current_token(APP), Some(s2));
}

#[test]
fn business_api_answers() {
    let f = fake();
    let url = f.base_url();
    let v = get(&url, "/cgi-bin/get_api_domain_ip").json();
    assert_eq!(v["errcode"], 41001);
    assert_eq!(v["errmsg"], "access_token missing");
    let v = get(&url, "/cgi-bin/get_api_domain_ip?access_token=nope").json();
    assert_eq!(v["errcode"], 40001);
    assert_eq!(
        v["errmsg"],
        "invalid credential, access_token is invalid or not latest"
    );
    let t = token_of(&classic(&url, APP, SECRET));
    let v = get(
        &url,
        &format!("/cgi-bin/get_api_domain_ip?access_token={t}"),
    )
    .json();
    assert_eq!(v, serde_json::json!({"ip_list": ["127.0.0.1"]}));
    assert_eq!(f.stats().api_requests, 3);
    assert_eq!(f.app_stats(APP).api_requests, 1);
}

#[test]
fn revoke_and_expire_app() {
    let f = fake();
    let url = f.base_url();
    let c = token_of(&classic(&url, APP, SECRET));
    let s = token_of(&stable(&url, APP, SECRET, false));
    f.revoke(&c);
    assert!(!f.is_valid(&c));
    assert_eq!(api_errcode(&url, &c), 40001);
    f.expire_app(APP);
    assert!(!f.is_valid(&s));
    assert_eq!(api_errcode(&url, &s), 42001);
    assert_eq!(api_errcode(&url, &c), 40001, "revoked stays 40001");
    let s2 = token_of(&stable(&url, APP, SECRET, false));
    assert_ne!(s, s2, "an expired stable token is not reused");
    assert!(f.is_valid(&s2));
}

#[test]
fn live_settings_apply_to_new_tokens() {
    let f = fake();
    let url = f.base_url();
    f.set_token_len(512);
    f.set_lifetime(60);
    let v = classic(&url, APP, SECRET);
    assert_eq!(token_of(&v).len(), 512);
    assert_eq!(v["expires_in"], 60);
    f.set_token_len(600);
    assert_eq!(token_of(&stable(&url, APP, SECRET, true)).len(), 600);
    f.set_token_len(1);
    assert_eq!(token_of(&classic(&url, APP, SECRET)).len(), 1);
    f.set_overlap(0);
    let a = token_of(&classic(&url, APP, SECRET));
    token_of(&classic(&url, APP, SECRET));
    assert!(!f.is_valid(&a));
}

#[test]
#[should_panic(expected = "token_len")]
fn out_of_range_token_len_is_a_test_bug() {
    fake().set_token_len(1025);
}

#[test]
fn counters_and_request_log_per_app() {
    let f = fake();
    f.add_app("wx_b", "b");
    let url = f.base_url();
    let before = Instant::now();
    classic(&url, APP, SECRET);
    classic(&url, "wx_b", "b");
    stable(&url, "wx_b", "b", false);
    stable(&url, "wx_b", "b", false);
    stable(&url, "wx_b", "b", true);
    post(&url, "/cgi-bin/stable_token", "garbage");
    let s = f.stats();
    assert_eq!(
        (
            s.token_requests,
            s.stable_requests,
            s.force_requests,
            s.issued,
            s.faults_served
        ),
        (2, 3, 1, 4, 0)
    );
    assert_eq!(s.token_endpoint_requests(), 6);
    let b = f.app_stats("wx_b");
    assert_eq!(
        (
            b.token_requests,
            b.stable_requests,
            b.force_requests,
            b.issued
        ),
        (1, 2, 1, 3)
    );
    assert_eq!(s.apps["wx_b"], b);
    assert!(b.apps.is_empty());
    assert_eq!(f.app_stats("never"), wx_fake::Stats::default());
    let log = f.requests();
    assert_eq!(log.len(), 6);
    assert_eq!(log[0].endpoint, TokenEndpoint::Classic);
    assert_eq!(log[0].appid.as_deref(), Some(APP));
    assert_eq!(log[4].endpoint, TokenEndpoint::StableForce);
    assert_eq!(log[5].appid, None);
    assert!(log.iter().all(|r| r.at >= before));
    assert!(log.windows(2).all(|w| w[0].at <= w[1].at));
    f.reset_stats();
    assert_eq!(f.stats(), wx_fake::Stats::default());
    assert!(f.requests().is_empty());
}

#[test]
fn concurrent_requests_get_distinct_tokens() {
    let f = fake();
    let url = f.base_url();
    let tokens: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..32)
            .map(|_| s.spawn(|| token_of(&classic(&url, APP, SECRET))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(tokens.iter().collect::<HashSet<_>>().len(), 32);
    assert_eq!(f.stats().issued, 32);
    assert!(f.wait_until(Duration::from_secs(1), |s| s.token_requests == 32));
    assert!(!f.wait_until(Duration::from_millis(30), |s| s.token_requests > 32));
    assert_eq!(f.stats().token_requests, 32);
}

#[test]
fn http_edge_cases() {
    let f = fake();
    let url = f.base_url();
    let addr = url.trim_start_matches("http://");
    assert_eq!(get(&url, "/nope").status, 404);
    // Chunked bodies (some C# and Python stacks send them) are understood.
    let body = r#"{"grant_type":"client_credential","appid":"wx_app","secret":"s3cret"}"#;
    let req = format!(
        "POST /cgi-bin/stable_token HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    let r = raw_request(addr, req.as_bytes()).unwrap();
    assert!(r.json()["access_token"].is_string());
    let big = format!(
        "POST /cgi-bin/stable_token HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
        1 << 20
    );
    assert_eq!(raw_request(addr, big.as_bytes()).unwrap().status, 413);
    let mut huge_head = b"GET / HTTP/1.1\r\nX-Pad: ".to_vec();
    huge_head.resize(huge_head.len() + 20_000, b'a');
    huge_head.extend_from_slice(b"\r\n\r\n");
    assert_eq!(raw_request(addr, &huge_head).unwrap().status, 431);
    assert_eq!(raw_request(addr, b"NONSENSE\r\n\r\n").unwrap().status, 400);
}

#[test]
fn refuses_non_loopback_and_bad_config() {
    let err = FakeWechat::start_on("0.0.0.0:0", FakeConfig::default())
        .err()
        .unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let bad = FakeConfig {
        token_len: 0,
        ..FakeConfig::default()
    };
    assert!(FakeWechat::start(bad).is_err());
}

#[test]
fn stop_closes_the_port() {
    let f = fake();
    let addr = f.addr();
    f.stop();
    assert!(std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err());
}
