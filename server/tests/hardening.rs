//! wx-tokend against hostile callers and operator mistakes (issue 11): idle sockets, a key
//! spending the quota through invalidations, SIGHUP, odd secret files, file modes, plain HTTP
//! beyond loopback, metrics exposure, passwords in messages, duplicate JSON keys,
//! `--check-config` side effects; and engine events in the log (issue 12).

mod common;

use std::io::Read;
use std::net::{Ipv4Addr, TcpStream};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use wx_fake::Fault;

const OTHER_PEER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// One request from `from`, timed from connect to the full answer.
fn timed_token_from(from: Ipv4Addr, srv: &Tokend) -> (Resp, Duration) {
    let t0 = Instant::now();
    let mut s = connect_from(from, srv.addr);
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let r = http_on(
        &mut s,
        "GET",
        &format!("/v1/token/{APP1}"),
        Some(BILLING_KEY),
        None,
    );
    (r, t0.elapsed())
}

/// Whether the server still holds `s` open (nothing to read within `ms`).
fn still_open(s: &TcpStream, ms: u64) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(ms))).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match (&*s).read(&mut buf) {
            Ok(0) => return false,
            Ok(_) => continue, // the 503 of a shed connection, then EOF
            Err(e) => {
                return matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                );
            }
        }
    }
}

#[test]
fn a_client_is_served_at_once_while_one_peer_holds_1100_idle_sockets() {
    assert!(
        raise_fd_limit() >= 1400,
        "this test needs 1,100 sockets: raise the hard RLIMIT_NOFILE"
    );
    let fake = fake_with_apps();
    // Default limits, but a short head timeout so the test can watch idle sockets go.
    let srv = Tokend::start(&config(&fake, "head_timeout_ms = 3000", ""));
    srv.token(APP1, BILLING_KEY).access_token();

    // In bursts the accept queue can hold, so every socket reaches the server.
    let mut idle: Vec<TcpStream> = Vec::new();
    for _ in 0..11 {
        idle.extend((0..100).map(|_| TcpStream::connect(srv.addr).unwrap()));
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200)); // the server has seen them all

    // Served at once (the median of five, so one scheduling hiccup on a busy CI machine does
    // not decide); before the fix it waited for the attacker's sockets to time out.
    let mut took: Vec<Duration> = (0..5)
        .map(|_| {
            let (r, took) = timed_token_from(OTHER_PEER, &srv);
            assert_eq!(r.status, 200, "{r:?}");
            took
        })
        .collect();
    took.sort();
    assert!(
        took[2] < Duration::from_millis(100) && took[4] < Duration::from_secs(1),
        "the legitimate client waited {took:?}"
    );
    // Beyond the per-peer cap the attacker's sockets were shed at once (a 503, then closed),
    // not queued.
    let open = idle.iter().filter(|s| still_open(s, 2)).count();
    assert!(open <= 256, "{open} idle sockets from one peer are open");
    let m = http_on(
        &mut connect_from(OTHER_PEER, srv.addr),
        "GET",
        "/metrics",
        None,
        None,
    )
    .body;
    let shed: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("wx_tokend_connections_shed_total{reason=\"per_peer\"} "))
        .unwrap_or_else(|| panic!("{m}"))
        .parse()
        .unwrap();
    assert!((800..=1100 - 256).contains(&shed), "{shed} shed");
    // The ones within the cap are closed after the head timeout.
    std::thread::sleep(Duration::from_millis(3000));
    let open = idle.iter().filter(|s| still_open(s, 50)).count();
    assert_eq!(open, 0, "idle sockets outlived the head timeout");
    drop(idle);
    assert!(eventually(2, || srv.token(APP1, BILLING_KEY).status == 200));
}

#[test]
fn invalidations_by_one_key_are_bounded_and_answered_429_with_retry_after() {
    let fake = fake_with_apps();
    // No request limit here: only the invalidation budget is under test.
    let srv = Tokend::start(&config(&fake, "requests_per_second = 0", ""));
    let first = srv.token(APP1, BILLING_KEY).access_token();
    let (mut ok, mut limited, mut by_key) = (0, 0, 0);
    for _ in 0..500 {
        let current = srv.token(APP1, BILLING_KEY).access_token();
        let r = srv.invalidate(
            APP1,
            BILLING_KEY,
            &json!({"stale_token": current}).to_string(),
        );
        match r.status {
            200 => ok += 1,
            429 => {
                limited += 1;
                assert_eq!(r.json()["error"], "rate_limited");
                assert_eq!(r.json()["status"], 9);
                let after: u64 = r
                    .header("retry-after")
                    .expect("Retry-After")
                    .parse()
                    .unwrap();
                assert!((1..=60).contains(&after), "{after}");
                // The engine may pace passive refreshes too; most refusals are the key's budget.
                if r.json()["errmsg"].as_str().unwrap().contains("client key") {
                    by_key += 1;
                }
            }
            _ => panic!("{r:?}"),
        }
    }
    let n = fetches(&fake, APP1);
    // The default burst of 10 (6 a minute after it): one fetch for the first get, then ten.
    assert!(n <= 12, "{n} upstream fetches for 500 invalidations");
    assert!(ok <= 11 && limited >= 489, "{ok} served, {limited} limited");
    assert!(by_key >= 480, "{by_key} refused for the key's budget");
    // The current token stays in service, and reporting a token already replaced costs
    // nothing, so it is still answered.
    let current = srv.token(APP1, BILLING_KEY).access_token();
    let r = srv.invalidate(
        APP1,
        BILLING_KEY,
        &json!({"stale_token": first}).to_string(),
    );
    assert_eq!(r.access_token(), current);
    // Another key has its own budget (the engine's own pacing may still refuse).
    let r = srv.invalidate(APP1, OPS_KEY, &json!({"stale_token": current}).to_string());
    if r.status == 200 {
        assert_ne!(r.access_token(), current);
    } else {
        assert_eq!(r.status, 429, "{r:?}");
        assert!(
            !r.json()["errmsg"].as_str().unwrap().contains("client key"),
            "{r:?}"
        );
    }
}

#[test]
fn per_key_request_limit_throttles_gets_with_503_never_429() {
    let fake = fake_with_apps();
    let srv = Tokend::start(&config(
        &fake,
        "requests_per_second = 1\nrequests_burst = 5",
        "",
    ));
    let codes: Vec<Resp> = (0..20).map(|_| srv.token(APP1, BILLING_KEY)).collect();
    assert!(codes[..5].iter().all(|r| r.status == 200));
    let throttled: Vec<&Resp> = codes.iter().filter(|r| r.status != 200).collect();
    assert!(throttled.len() >= 14, "{codes:?}");
    for r in throttled {
        assert_eq!(r.status, 503, "{r:?}");
        assert_eq!(r.json()["error"], "busy");
        assert!(r.header("retry-after").is_some());
    }
    // Another key is not affected.
    assert_eq!(srv.token(APP1, OPS_KEY).status, 200);
}

#[test]
fn a_plain_get_never_answers_429() {
    let fake = fake_with_apps();
    // The stable endpoint: a passive refresh there is a forced one, paced by WeChat's limits.
    let srv = Tokend::start(
        &config(&fake, "", "").replace("endpoint = \"classic\"", "endpoint = \"stable\""),
    );
    srv.token(APP1, BILLING_KEY).access_token();
    // A forced refresh, then an invalidation whose fetch fails: the engine may keep the
    // rejected token and refuse another forced refresh for 30 s...
    let t2 = srv.invalidate(APP1, BILLING_KEY, "{}").access_token();
    fake.push_fault(Fault::http_status(503).for_app(APP1).times(3));
    let r = srv.invalidate(APP1, BILLING_KEY, &json!({"stale_token": t2}).to_string());
    assert_ne!(r.status, 200, "{r:?}");
    // ...but a plain GET has nothing to rate-limit.
    for _ in 0..30 {
        let r = srv.token(APP1, BILLING_KEY);
        assert_ne!(r.status, 429, "{r:?}");
        if r.status == 503 {
            assert!(r.header("retry-after").is_some(), "{r:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sighup_reloads_apps_clients_and_keys_and_keeps_the_old_config_on_a_bad_file() {
    let fake = fake_with_apps();
    let text = config(&fake, "", "");
    let srv = Tokend::start(&text);
    let t1 = srv.token(APP1, BILLING_KEY).access_token();
    assert_eq!(srv.token(APP2, BILLING_KEY).status, 401);

    // billing may now ask for APP2 too; ops is gone; a new client appears.
    let new_key = "new-client-key-0123456789";
    let reloaded = text
        .replacen(
            &format!("apps = [\"{APP1}\"]"),
            &format!("apps = [\"{APP1}\", \"{APP2}\"]"),
            1,
        )
        .replacen("name = \"ops\"", "name = \"newcomer\"", 1)
        .replacen(&sha256_hex(OPS_KEY), &sha256_hex(new_key), 1);
    std::fs::write(&srv.config_path, &reloaded).unwrap();
    srv.sighup();
    assert!(
        eventually(5, || !srv
            .lines_with_msg("configuration reloaded")
            .is_empty()),
        "{}",
        srv.logs()
    );
    assert_eq!(srv.token(APP2, BILLING_KEY).status, 200);
    assert_eq!(
        srv.token(APP1, new_key).access_token(),
        t1,
        "the cached token survives"
    );
    assert_eq!(srv.token(APP1, OPS_KEY).status, 401);
    assert_eq!(fetches(&fake, APP1), 1, "no fetch for a reload");

    // A broken file: the running configuration stays, and the log says why.
    std::fs::write(
        &srv.config_path,
        "listen = \"127.0.0.1:0\"\n[[app]]\nappid = 5\n",
    )
    .unwrap();
    srv.sighup();
    assert!(eventually(5, || !srv
        .lines_with_msg("reload failed; keeping the running configuration")
        .is_empty()));
    let failed = &srv.lines_with_msg("reload failed; keeping the running configuration")[0];
    assert_eq!(failed["level"], "error");
    assert!(
        failed["error"].as_str().unwrap().contains("line 3"),
        "{failed}"
    );
    assert_eq!(srv.token(APP2, BILLING_KEY).status, 200);
    assert_eq!(srv.token(APP1, new_key).access_token(), t1);
}

#[test]
fn secret_files_must_be_small_regular_files() {
    let fake = fake_with_apps();
    let dir = TempDir::new("secrets");
    let big = dir.write("big", &"x".repeat(70 * 1024));
    let fifo = dir.0.join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    for (path, want) in [
        ("/dev/zero".into(), "is not a regular file"),
        (fifo.display().to_string(), "is not a regular file"),
        (big.display().to_string(), "is over 65536 bytes"),
        (dir.0.display().to_string(), "is not a regular file"),
    ] {
        let text = config(&fake, "", "").replacen(
            "secret_env = \"WX_SECRET_TEST\"",
            &format!("secret_file = \"{path}\""),
            1,
        );
        let t0 = Instant::now();
        let (code, _, err) = check_config(&text, 0o600, &[]);
        assert_eq!(code, Some(2), "{path}: {err}");
        assert!(err.contains(want), "{path}: want {want:?} in {err}");
        assert!(t0.elapsed() < Duration::from_secs(5));
    }
    // TLS files are read the same way.
    let tls = config(
        &fake,
        "tls = { cert = \"/dev/zero\", key = \"/dev/zero\" }",
        "",
    );
    let (code, _, err) = check_config(&tls, 0o600, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("tls.cert: /dev/zero is not a regular file"),
        "{err}"
    );
}

#[test]
fn warnings_for_readable_config_and_secret_files_and_plain_http_beyond_loopback() {
    let fake = fake_with_apps();
    let dir = TempDir::new("modes");
    let secret = dir.write("secret", SECRET);
    let text = config(&fake, "", "").replacen(
        "secret_env = \"WX_SECRET_TEST\"",
        &format!("secret_file = \"{}\"", secret.display()),
        1,
    );
    let warnings = |err: &str| -> Vec<String> {
        err.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["msg"] == "configuration warning" && v["level"] == "warn")
            .map(|v| v["warning"].as_str().unwrap().to_owned())
            .collect()
    };
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, _, err) = check_config(&text, 0o644, &[]);
    assert_eq!(code, Some(0), "{err}");
    let w = warnings(&err);
    assert_eq!(w.len(), 2, "{err}");
    assert!(
        w[0].contains("configuration file") && w[0].contains("0644"),
        "{w:?}"
    );
    assert!(
        w[1].contains(&secret.display().to_string()) && w[1].contains("0644"),
        "{w:?}"
    );

    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, _, err) = check_config(&text, 0o600, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(warnings(&err).is_empty(), "{err}");

    let open = text.replacen("listen = \"127.0.0.1:0\"", "listen = \"0.0.0.0:0\"", 1);
    let (code, _, err) = check_config(&open, 0o600, &[]);
    assert_eq!(code, Some(0), "{err}");
    let w = warnings(&err);
    assert!(
        w.iter()
            .any(|w| w.contains("0.0.0.0") && w.contains("tls is not set")),
        "{err}"
    );
}

#[test]
fn metrics_need_their_key_beyond_loopback_and_appids_stay_hidden() {
    let fake = fake_with_apps();
    let text = config(&fake, "", "").replacen("127.0.0.1:0", "0.0.0.0:0", 1);
    let srv = Tokend::start(&text);
    srv.token(APP1, BILLING_KEY).access_token();
    let r = srv.get("/metrics", None);
    assert_eq!(r.status, 401, "{r:?}");
    assert!(!r.body.contains(APP1));
    assert_eq!(srv.get("/metrics", Some(BILLING_KEY)).status, 401);
    assert!(
        srv.lines_with_msg("configuration warning")
            .iter()
            .any(|l| l["warning"]
                .as_str()
                .unwrap()
                .contains("metrics_key_env is not set")),
        "{}",
        srv.logs()
    );
    drop(srv);

    let keyed = config(&fake, "metrics_key_env = \"WX_METRICS_KEY\"", "").replacen(
        "127.0.0.1:0",
        "0.0.0.0:0",
        1,
    );
    let srv = Tokend::start_with(&keyed, &[("WX_METRICS_KEY", "metrics-key-0123456789")]);
    let r = srv.get("/metrics", None);
    assert_eq!(r.status, 401);
    assert!(!r.body.contains(APP1));
    let r = srv.get("/metrics", Some("metrics-key-0123456789"));
    assert_eq!(r.status, 200);
    assert!(r.body.contains(APP1));
}

#[test]
fn no_url_password_in_any_message() {
    let fake = fake_with_apps();
    let good = config(&fake, "", "");
    // The engine refuses a central URL with userinfo, quoting it; a TOML error quotes its line.
    let central = good.replacen(
        "endpoint = \"classic\"",
        "endpoint = \"classic\", central = \"https://wxuser:hunter2pw@central.example:8443\", central_key = \"ck-0123456789abcdef\"",
        1,
    );
    let toml_dup = good.replacen(
        "endpoint = \"classic\"",
        "endpoint = \"classic\", store = \"redis://wxuser:hunter2pw@127.0.0.1:1/0\", store = \"x\"",
        1,
    );
    for text in [central, toml_dup] {
        let (code, out, err) = check_config(&text, 0o600, &[]);
        assert_eq!(code, Some(2), "{err}");
        assert!(
            !err.contains("hunter2pw") && !out.contains("hunter2pw"),
            "{err}"
        );
    }
    // A store that cannot be reached: the error body and the logs name it without its password.
    let unreachable = good.replacen(
        "endpoint = \"classic\"",
        "endpoint = \"classic\", store = \"redis://wxuser:hunter2pw@127.0.0.1:1/0\", store_fallback_per_hour = 0",
        1,
    );
    let srv = Tokend::start(&unreachable);
    let r = srv.token(APP1, BILLING_KEY);
    assert_ne!(r.status, 200, "{r:?}");
    assert!(!r.body.contains("hunter2pw"), "{r:?}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(!srv.logs().contains("hunter2pw"), "{}", srv.logs());
}

#[test]
fn duplicate_json_keys_are_refused() {
    let fake = fake_with_apps();
    let srv = Tokend::start(&config(&fake, "", ""));
    let t1 = srv.token(APP1, BILLING_KEY).access_token();
    for body in [
        r#"{"stale_token":"x","stale_token":null}"#.to_string(),
        r#"{"stale_token":null,"stale_token":"x"}"#.to_string(),
        format!(r#"{{"stale_token":"{t1}","stale\u005ftoken":"{t1}"}}"#),
    ] {
        let r = srv.invalidate(APP1, BILLING_KEY, &body);
        assert_eq!(r.status, 400, "{body}: {r:?}");
        assert_eq!(r.json()["error"], "invalid_argument");
        assert!(
            r.json()["errmsg"].as_str().unwrap().contains("duplicate"),
            "{r:?}"
        );
    }
    assert_eq!(fetches(&fake, APP1), 1, "no forced refresh");
    assert_eq!(srv.token(APP1, BILLING_KEY).access_token(), t1);
}

#[test]
fn check_config_changes_nothing_on_disk() {
    let fake = fake_with_apps();
    let dir = TempDir::new("nodisk");
    let store = dir.0.join("store").join("tokens");
    let text = config(&fake, "", "").replace(
        "endpoint = \"classic\"",
        &format!(
            "endpoint = \"classic\", store = \"file:{}\"",
            store.display()
        ),
    );
    let (code, out, err) = check_config(&text, 0o600, &[]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        !dir.0.join("store").exists(),
        "--check-config created {}",
        store.display()
    );
    // A relative directory, or a file where the directory should be, is still refused.
    for (bad, want) in [
        ("file:relative/dir".to_string(), "absolute"),
        (
            format!("file:{}", dir.write("plain", "x").display()),
            "not a directory",
        ),
    ] {
        let text = config(&fake, "", "").replace(
            "endpoint = \"classic\"",
            &format!("endpoint = \"classic\", store = \"{bad}\""),
        );
        let (code, _, err) = check_config(&text, 0o600, &[]);
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains(want), "{want}: {err}");
    }
}

#[test]
fn engine_events_are_logged_as_json_lines_for_a_failing_refresh() {
    let fake = fake_with_apps();
    // A short-lived token: its refresh ahead of expiry fails with 40164 (IP not whitelisted),
    // which no request sees while the old token serves; the operator must see it in the log.
    fake.set_lifetime(2);
    let srv = Tokend::start(&config(&fake, "", ""));
    let t1 = srv.token(APP1, BILLING_KEY).access_token();
    fake.push_fault(
        Fault::wx_error(40164, "invalid ip 1.2.3.4, not in whitelist")
            .for_app(APP1)
            .times(100),
    );
    assert!(
        eventually(5, || srv
            .lines_with_msg("event")
            .iter()
            .any(|l| l["kind"] == "refresh_failed")),
        "{}",
        srv.logs()
    );
    let events = srv.lines_with_msg("event");
    let failed = events
        .iter()
        .find(|l| l["kind"] == "refresh_failed")
        .unwrap();
    assert_eq!(failed["level"], "warn");
    assert_eq!(failed["appid"], APP1);
    assert_eq!(failed["errcode"], 40164);
    assert!(failed["message"].is_string());
    let logs = srv.logs();
    assert!(!logs.contains(SECRET) && !logs.contains(&t1), "{logs}");
}
