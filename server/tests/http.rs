//! HTTP-level tests of the real wx-tokend binary against an in-process fake WeChat.

mod common;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use wx_fake::Fault;

#[test]
fn get_token_shape_and_expires_in() {
    let fake = fake_with_apps();
    let srv = Tokend::start(&config(&fake, "", ""));
    let r = srv.token(APP1, BILLING_KEY);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let v = r.json();
    assert_eq!(
        v.as_object().unwrap().len(),
        2,
        "exactly access_token and expires_in: {v}"
    );
    assert_eq!(
        v["access_token"].as_str(),
        fake.current_token(APP1).as_deref()
    );
    let expires_in = v["expires_in"].as_u64().unwrap();
    assert!(
        (7100..7200).contains(&expires_in),
        "remaining whole seconds, rounded down: {expires_in}"
    );
    assert_eq!(fetches(&fake, APP1), 1);
    // Served from the cache afterwards.
    assert_eq!(
        srv.token(APP1, BILLING_KEY).access_token(),
        v["access_token"].as_str().unwrap()
    );
    assert_eq!(
        srv.token(APP1, OPS_KEY).access_token(),
        v["access_token"].as_str().unwrap()
    );
    assert_eq!(fetches(&fake, APP1), 1);
}

#[test]
fn one_fetch_for_100_concurrent_requests() {
    let fake = fake_with_apps();
    fake.set_delay_ms(300); // every request arrives while the one fetch is in flight
    let srv = Arc::new(Tokend::start(&config(&fake, "", "")));
    let barrier = Arc::new(Barrier::new(100));
    let threads: Vec<_> = (0..100)
        .map(|i| {
            let (srv, barrier) = (srv.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                srv.token(APP1, if i % 2 == 0 { BILLING_KEY } else { OPS_KEY })
                    .access_token()
            })
        })
        .collect();
    let tokens: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(
        tokens.iter().all(|t| *t == tokens[0]),
        "one token for everyone"
    );
    assert_eq!(
        fetches(&fake, APP1),
        1,
        "one upstream fetch for 100 concurrent requests"
    );
}

#[test]
fn invalidate_stale_then_forced_then_rate_limited() {
    let fake = fake_with_apps();
    let srv = Tokend::start(&config(&fake, "", ""));
    let t1 = srv.token(APP1, BILLING_KEY).access_token();
    assert_eq!(fetches(&fake, APP1), 1);

    // The passive refresh: the stale token is replaced, with one more fetch.
    let r = srv.invalidate(APP1, BILLING_KEY, &json!({"stale_token": t1}).to_string());
    let t2 = r.access_token();
    assert_ne!(t2, t1);
    assert!(r.json()["expires_in"].as_u64().unwrap() > 7000);
    assert_eq!(fetches(&fake, APP1), 2);
    assert_eq!(srv.token(APP1, BILLING_KEY).access_token(), t2);

    // Reporting the same stale token again (another business server late to notice) is a
    // no-op: the cache has moved on.
    assert_eq!(
        srv.invalidate(APP1, OPS_KEY, &json!({"stale_token": t1}).to_string())
            .access_token(),
        t2
    );
    assert_eq!(fetches(&fake, APP1), 2);

    // `{}` forces a refresh.
    let t3 = srv.invalidate(APP1, BILLING_KEY, "{}").access_token();
    assert_ne!(t3, t2);
    assert_eq!(fetches(&fake, APP1), 3);

    // A second forced refresh within 30 s is refused by the engine's pacing: 429.
    let r = srv.invalidate(APP1, BILLING_KEY, r#"{"stale_token":null}"#);
    assert_eq!(r.status, 429, "{}", r.body);
    let v = r.json();
    assert_eq!(v["error"], "rate_limited");
    assert_eq!(v["status"], 9);
    let after: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!(
        (1..=31).contains(&after),
        "WeChat allows one per 30 s: {after}"
    );
    assert_eq!(fetches(&fake, APP1), 3);
    assert_eq!(
        srv.token(APP1, BILLING_KEY).access_token(),
        t3,
        "the token stays in service"
    );
}

#[test]
fn a_wrong_key_always_sees_one_401_and_a_good_key_learns_it_is_not_allowed() {
    let fake = fake_with_apps();
    let srv = Tokend::start(&config(&fake, "", ""));
    let post = |app: &str, key: Option<&str>| {
        http(
            srv.addr,
            "POST",
            &format!("/v1/token/{app}/invalidate"),
            key,
            Some("{}"),
        )
    };
    // Without a valid key: one identical answer, whatever the appid (configured or not).
    let attempts: Vec<Resp> = vec![
        srv.get(&format!("/v1/token/{APP1}"), None), // no header
        srv.get(
            &format!("/v1/token/{APP1}"),
            Some("wrong-key-0123456789abcdef"),
        ), // unknown key
        srv.get(&format!("/v1/token/{APP1}"), Some(&BILLING_KEY[..20])), // a prefix of a key
        srv.get(
            &format!("/v1/token/{APP1}"),
            Some(&format!("{BILLING_KEY}x")),
        ), // a key plus more
        srv.get(
            "/v1/token/wx_not_configured",
            Some("wrong-key-0123456789abcdef"),
        ),
        srv.get("/v1/token/wx_not_configured", None),
        post(APP1, Some("wrong-key-0123456789abcdef")),
        post("wx_not_configured", None),
    ];
    for r in &attempts {
        assert_eq!(r.status, 401, "{r:?}");
        assert_eq!(r.body, attempts[0].body, "identical bodies");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    }
    assert_eq!(
        attempts[0].json(),
        json!({"error":"unauthorized","status":1,"errcode":0,"errmsg":"missing or invalid client key"})
    );
    // A different scheme is no key either.
    let mut s = std::net::TcpStream::connect(srv.addr).unwrap();
    use std::io::Write;
    write!(s, "GET /v1/token/{APP1} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {BILLING_KEY}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut s, &mut raw).unwrap();
    assert_eq!(parse_response(&raw).body, attempts[0].body);

    // A valid key is told it may not ask for that app: the same answer whether the app is
    // configured but not in its list, or not configured at all.
    let denied: Vec<Resp> = vec![
        srv.get(&format!("/v1/token/{APP2}"), Some(BILLING_KEY)),
        srv.get("/v1/token/wx_not_configured", Some(BILLING_KEY)),
        srv.get("/v1/token/wx_not_configured", Some(OPS_KEY)),
        post(APP2, Some(BILLING_KEY)),
    ];
    for r in &denied {
        assert_eq!(r.status, 401, "{r:?}");
        assert_eq!(r.body, denied[0].body, "identical bodies");
    }
    assert_eq!(
        denied[0].json(),
        json!({"error":"app_not_allowed","status":1,"errcode":0,"errmsg":"this client key is not allowed for this appid"})
    );
    assert_eq!(
        fake.stats().token_endpoint_requests(),
        0,
        "nothing reached WeChat"
    );
}

#[test]
fn not_found_method_not_allowed_too_large_bad_body() {
    let fake = fake_with_apps();
    let srv = Tokend::start(&config(&fake, "", ""));
    for path in [
        "/",
        "/v1/token",
        "/v1/token/",
        &format!("/v1/token/{APP1}/other"),
        "/healthz/x",
    ] {
        let r = srv.get(path, Some(BILLING_KEY));
        assert_eq!(r.status, 404, "{path}: {r:?}");
        assert_eq!(r.json()["error"], "not_found");
    }
    let r = http(
        srv.addr,
        "POST",
        &format!("/v1/token/{APP1}"),
        Some(BILLING_KEY),
        Some("{}"),
    );
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET"));
    assert_eq!(r.json()["error"], "method_not_allowed");
    let r = srv.get(&format!("/v1/token/{APP1}/invalidate"), Some(BILLING_KEY));
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));

    let big = json!({"stale_token": "x".repeat(5000)}).to_string();
    let r = srv.invalidate(APP1, BILLING_KEY, &big);
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(r.json()["error"], "payload_too_large");

    for bad in [
        "",
        "[]",
        "{\"stale\":\"x\"}",
        "{\"stale_token\":5}",
        "not json",
    ] {
        let r = srv.invalidate(APP1, BILLING_KEY, bad);
        assert_eq!(r.status, 400, "{bad:?}: {r:?}");
        assert_eq!(r.json()["error"], "invalid_argument");
    }
    assert_eq!(fake.stats().token_endpoint_requests(), 0);
}

#[test]
fn upstream_errors_are_mapped() {
    let fake = fake_with_apps();
    let srv = Tokend::start(&config(&fake, "", ""));
    fake.push_fault(Fault::quota().for_app(APP2));
    let r = srv.token(APP2, OPS_KEY);
    assert_eq!(r.status, 502, "{r:?}");
    let v = r.json();
    assert_eq!(v["error"], "wechat_error");
    assert_eq!(v["status"], 4);
    assert_eq!(v["errcode"], 45009);
    assert!(v["errmsg"].as_str().unwrap().contains("45009"), "{v}");
    // Answered from the engine's cooldown meanwhile: no second fetch.
    assert_eq!(srv.token(APP2, OPS_KEY).status, 502);
    assert_eq!(fetches(&fake, APP2), 1);

    fake.push_fault(Fault::http_status(503).for_app(APP1));
    let r = srv.token(APP1, OPS_KEY);
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["error"], "network");
    assert_eq!(r.json()["status"], 5);

    let m = srv.get("/metrics", None).body;
    assert!(m.contains(&format!("wx_tokend_upstream_failures_total{{appid=\"{APP2}\",errcode=\"45009\",error=\"wechat_error\"}} 1\n")), "{m}");
    assert!(m.contains(&format!("wx_tokend_upstream_failures_total{{appid=\"{APP1}\",errcode=\"0\",error=\"network\"}} 1\n")), "{m}");
    assert!(
        m.contains("wx_tokend_requests_total{route=\"token\",code=\"502\"} 3\n"),
        "{m}"
    );
}

#[test]
fn slow_upstream_gets_504_within_the_request_timeout() {
    let fake = fake_with_apps();
    let srv = Tokend::start(&config(&fake, "request_timeout_ms = 300", ""));
    fake.push_fault(Fault::slow(1500).for_app(APP1));
    let t0 = std::time::Instant::now();
    let r = srv.token(APP1, BILLING_KEY);
    assert_eq!(r.status, 504, "{r:?}");
    assert_eq!(r.json()["error"], "timeout");
    assert!(t0.elapsed() < Duration::from_millis(1200));
    // The fetch carries on in the engine; the next request gets its token.
    assert!(eventually(5, || srv.token(APP1, BILLING_KEY).status == 200));
    assert_eq!(fetches(&fake, APP1), 1);
}

#[test]
fn healthz_and_metrics() {
    let fake = fake_with_apps();
    let srv = Tokend::start_with(
        &config(&fake, "metrics_key_env = \"WX_METRICS_KEY\"", ""),
        &[("WX_METRICS_KEY", "metrics-key-0123456789")],
    );
    let r = srv.get("/healthz", None);
    assert_eq!((r.status, r.json()), (200, json!({"status": "ok"})));
    srv.token(APP1, BILLING_KEY).access_token();
    srv.token(APP1, BILLING_KEY).access_token();
    srv.get(&format!("/v1/token/{APP1}"), None);

    assert_eq!(srv.get("/metrics", None).status, 401);
    assert_eq!(srv.get("/metrics", Some(BILLING_KEY)).status, 401);
    let r = srv.get("/metrics", Some("metrics-key-0123456789"));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let m = r.body;
    for want in [
        "wx_tokend_requests_total{route=\"token\",code=\"200\"} 2\n".to_string(),
        "wx_tokend_requests_total{route=\"token\",code=\"401\"} 1\n".to_string(),
        "wx_tokend_requests_total{route=\"healthz\",code=\"200\"} 1\n".to_string(),
        format!("wx_tokend_upstream_fetches_total{{appid=\"{APP1}\"}} 1\n"),
        format!("wx_tokend_upstream_fetches_total{{appid=\"{APP2}\"}} 0\n"),
        format!("wx_tokend_token_generation{{appid=\"{APP1}\"}} 1\n"),
        "# TYPE wx_tokend_request_duration_seconds histogram\n".to_string(),
        "wx_tokend_request_duration_seconds_count 6\n".to_string(),
        format!("wx_tokend_upstream_fetch_seconds_count{{appid=\"{APP1}\"}} 1\n"),
        format!("wx_tokend_upstream_fetch_seconds_count{{appid=\"{APP2}\"}} 0\n"),
        format!("wx_tokend_tokens_from_store_total{{appid=\"{APP1}\"}} 0\n"),
        "# TYPE wx_tokend_token_age_seconds gauge\n".to_string(),
        "wx_tokend_requests_total{route=\"metrics\",code=\"401\"} 2\n".to_string(),
    ] {
        assert!(m.contains(&want), "missing {want:?} in\n{m}");
    }
    let gauge = |name: &str| -> f64 {
        let prefix = format!("{name}{{appid=\"{APP1}\"}} ");
        m.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("{prefix} in {m}"))
            .parse()
            .unwrap()
    };
    assert!((7100.0..7200.0).contains(&gauge("wx_tokend_token_expires_in_seconds")));
    assert!((0.0..60.0).contains(&gauge("wx_tokend_token_age_seconds")));
    let fetch_secs = gauge("wx_tokend_upstream_last_fetch_seconds");
    assert!(fetch_secs > 0.0 && fetch_secs < 5.0, "{fetch_secs}");
    assert_eq!(
        gauge("wx_tokend_upstream_fetch_seconds_sum"),
        fetch_secs,
        "one fetch: the sum is the last one"
    );
    for name in [
        "wx_tokend_token_generation",
        "wx_tokend_token_age_seconds",
        "wx_tokend_upstream_last_fetch_seconds",
    ] {
        assert!(
            !m.contains(&format!("{name}{{appid=\"{APP2}\"}}")),
            "no token or fetch yet, no {name}"
        );
    }
    assert_eq!(
        fetches(&fake, APP2),
        0,
        "a scrape never fetches for a cold app"
    );
}

#[test]
fn metrics_count_background_refreshes_and_token_age_from_the_fetch() {
    let fake = fake_with_apps();
    // A short-lived first token: the engine refreshes it in the background at half its
    // lifetime, with no request asking; the replacement lives long.
    fake.set_lifetime(2);
    let srv = Tokend::start(&config(&fake, "", ""));
    srv.token(APP1, BILLING_KEY).access_token();
    fake.set_lifetime(7200);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(srv.metric("wx_tokend_token_generation", APP1), Some(1.0));
    let age = srv.metric("wx_tokend_token_age_seconds", APP1).unwrap();
    assert!(
        (0.8..2.0).contains(&age),
        "age counts from the fetch, not from the scrape: {age}"
    );

    assert!(eventually(5, || {
        srv.metric("wx_tokend_token_generation", APP1) == Some(2.0)
    }));
    assert_eq!(fetches(&fake, APP1), 2, "one background refresh");
    for (name, want) in [
        ("wx_tokend_upstream_fetches_total", 2.0),
        ("wx_tokend_upstream_fetch_seconds_count", 2.0),
        ("wx_tokend_tokens_from_store_total", 0.0),
    ] {
        assert_eq!(srv.metric(name, APP1), Some(want), "{name}");
    }
    let left = srv
        .metric("wx_tokend_token_expires_in_seconds", APP1)
        .unwrap();
    assert!(left > 7000.0, "{left}");
    let age = srv.metric("wx_tokend_token_age_seconds", APP1).unwrap();
    assert!(age < 2.0, "the new token's age: {age}");
}

#[test]
fn metrics_count_failed_background_refreshes_and_never_fetch_for_an_expired_token() {
    let fake = fake_with_apps();
    fake.set_lifetime(2);
    let srv = Tokend::start(&config(&fake, "", ""));
    srv.token(APP1, BILLING_KEY).access_token();
    // Every background refresh fails (HTTP 503: a network error), until the token expires;
    // no request sees any of it.
    fake.push_fault(Fault::http_status(503).for_app(APP1).times(1000));
    std::thread::sleep(Duration::from_millis(2500));
    let n = fetches(&fake, APP1);
    assert!(n >= 2, "background refreshes were tried: {n}");

    // The token has expired and no fetch is under way: the next request would fetch, but a
    // scrape must not (nor wait).
    let t0 = std::time::Instant::now();
    let m = srv.get("/metrics", None).body;
    assert!(t0.elapsed() < Duration::from_millis(500));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(fetches(&fake, APP1), n, "the scrape fetched");
    assert!(
        m.contains(&format!(
            "wx_tokend_upstream_fetches_total{{appid=\"{APP1}\"}} {n}\n"
        )),
        "exact, failures included: {m}"
    );
    assert!(
        m.contains(&format!("wx_tokend_upstream_failures_total{{appid=\"{APP1}\",errcode=\"0\",error=\"network\"}} {}\n", n - 1)),
        "{m}"
    );
    assert!(
        !m.contains(&format!(
            "wx_tokend_token_expires_in_seconds{{appid=\"{APP1}\"}}"
        )),
        "no usable token, no token gauges: {m}"
    );
    assert!(!m.contains("code=\"502\""), "no request saw a failure: {m}");

    // The next request does fetch.
    fake.clear_faults();
    srv.token(APP1, BILLING_KEY).access_token();
    assert_eq!(fetches(&fake, APP1), n + 1);
    assert_eq!(
        srv.metric("wx_tokend_upstream_fetches_total", APP1),
        Some((n + 1) as f64)
    );
}

#[test]
fn sigterm_lets_the_request_in_flight_finish_and_exits_0() {
    let fake = fake_with_apps();
    fake.set_delay_ms(1500);
    let mut srv = Tokend::start(&config(&fake, "", ""));
    let addr = srv.addr;
    let in_flight = std::thread::spawn(move || {
        http(
            addr,
            "GET",
            &format!("/v1/token/{APP1}"),
            Some(BILLING_KEY),
            None,
        )
    });
    assert!(
        eventually(5, || fetches(&fake, APP1) == 1),
        "the request is waiting on WeChat"
    );
    srv.sigterm();
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "no longer accepting"
    );
    let r = in_flight.join().unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    let status = srv.wait_exit(Duration::from_secs(10)).expect("exits");
    assert!(status.success(), "{status:?}");
    let logs = srv.logs();
    assert!(
        logs.contains("\"msg\":\"shutting down\",\"signal\":\"SIGTERM\""),
        "{logs}"
    );
    assert!(logs.contains("\"msg\":\"stopped\""), "{logs}");
}

#[test]
fn logs_are_json_and_never_contain_secrets_keys_or_whole_tokens() {
    let fake = fake_with_apps();
    let srv = Tokend::start(&config(&fake, "", ""));
    let t1 = srv.token(APP1, BILLING_KEY).access_token();
    let t2 = srv
        .invalidate(APP1, BILLING_KEY, &json!({"stale_token": t1}).to_string())
        .access_token();
    let t3 = srv.token(APP2, OPS_KEY).access_token();
    srv.get(
        &format!("/v1/token/{APP1}"),
        Some("wrong-key-0123456789abcdef"),
    );
    srv.invalidate(APP2, BILLING_KEY, &json!({"stale_token": t3}).to_string());
    srv.get("/metrics", None);
    std::thread::sleep(Duration::from_millis(100));

    let logs = srv.logs();
    for secret in [
        SECRET,
        BILLING_KEY,
        OPS_KEY,
        "wrong-key-0123456789abcdef",
        &t1,
        &t2,
        &t3,
    ] {
        assert!(!logs.contains(secret), "{secret:?} leaked into\n{logs}");
    }
    let lines = srv.log_lines();
    let requests: Vec<&Value> = lines.iter().filter(|l| l["msg"] == "request").collect();
    assert_eq!(requests.len(), 5, "{logs}");
    assert_eq!(requests[0]["client"], "billing");
    assert_eq!(requests[0]["appid"], APP1);
    assert_eq!(requests[0]["token_prefix"], format!("{}…", &t1[..6]));
    assert_eq!(requests[1]["route"], "invalidate");
    assert_eq!(requests[3]["code"], 401);
    assert_eq!(requests[3]["error"], "unauthorized");
    assert!(
        lines
            .iter()
            .all(|l| l["ts"].is_string() && l["level"].is_string())
    );
}

#[test]
fn check_config_validates_and_rejects() {
    let fake = fake_with_apps();
    let dir = TempDir::new("cfg");
    let good = config(&fake, "", "");
    let run = |text: &str| {
        let path = dir.write("c.toml", text);
        let out = tokend_command(&path)
            .arg("--check-config")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, _) = run(&good);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("configuration OK: 2 app(s), 2 client(s)"),
        "{out}"
    );

    let cases = [
        (
            good.replacen("secret_env = \"WX_SECRET_TEST\"", "secret = \"abc\"", 1),
            "inline `secret` is not allowed",
        ),
        (
            good.replacen("listen =", "bind = \"x\"\nlisten =", 1),
            "unknown field `bind`",
        ),
        (
            good.replacen(
                "name = \"billing\"",
                "name = \"billing\"\ncolor = \"red\"",
                1,
            ),
            "unknown field `color`",
        ),
        (
            good.replacen("WX_KEY_BILLING", "WX_SHORT_KEY", 1),
            "shorter than 16 bytes",
        ),
        (
            good.replacen("WX_SECRET_TEST", "WX_UNSET_VAR", 1),
            "WX_UNSET_VAR is not set",
        ),
        (
            good.replacen("endpoint = \"classic\"", "endpoint = \"classik\"", 1),
            "endpoint",
        ),
        (
            good.replacen("listen = \"127.0.0.1:0\"", "", 1),
            "missing field `listen`",
        ),
    ];
    for (text, want) in cases {
        let path = dir.write("c.toml", &text);
        let out = tokend_command(&path)
            .env("WX_SHORT_KEY", "short-key")
            .arg("--check-config")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{want}: {stderr}");
        assert!(stderr.contains(want), "want {want:?} in {stderr}");
        assert!(!stderr.contains(SECRET) && !stderr.contains(BILLING_KEY));
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wx-tokend"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("--check-config")
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wx-tokend"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "--config is required");
}

#[test]
fn secret_and_key_files() {
    let fake = fake_with_apps();
    let dir = TempDir::new("files");
    let secret = dir.write("secret", &format!("{SECRET}\n"));
    let key = dir.write("key", "file-key-0123456789abcdef\n");
    let text = config(&fake, "", "")
        .replacen(
            "secret_env = \"WX_SECRET_TEST\"",
            &format!("secret_file = \"{}\"", secret.display()),
            1,
        )
        .replacen(
            "key_env = \"WX_KEY_BILLING\"",
            &format!("key_file = \"{}\"", key.display()),
            1,
        );
    let srv = Tokend::start(&text);
    srv.token(APP1, "file-key-0123456789abcdef").access_token();
    assert_eq!(srv.token(APP1, BILLING_KEY).status, 401);
}
