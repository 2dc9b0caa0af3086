//! Client mode end to end: the fake WeChat, a real wx-tokend process holding the secret, and
//! clients (this process through the C ABI, and store_peer processes) that hold none.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use common::*;
use wx_fake::{FakeConfig, Fault, FaultKind};
use wx_token::ffi::*;

const CLIENT_KEY: &str = "client-key-0123456789abcdef";

fn bin(path: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let p = exe.parent().unwrap().parent().unwrap().join(path);
    assert!(
        p.exists(),
        "{} is built by `cargo test --workspace`",
        p.display()
    );
    p
}

struct Tokend {
    child: Option<Child>,
    port: u16,
    config: PathBuf,
    secret: String,
}

impl Tokend {
    /// Starts wx-tokend for `appid` (secret from an environment variable) on a free port.
    fn start(fake: &wx_fake::FakeWechat, appid: &str, secret: &str) -> Tokend {
        Tokend::start_with(fake, appid, secret, "")
    }

    /// The same, with `extra` engine options for the app (TOML inline-table members, each
    /// preceded by a comma).
    fn start_with(fake: &wx_fake::FakeWechat, appid: &str, secret: &str, extra: &str) -> Tokend {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config =
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("tokend-{appid}-{port}.toml"));
        std::fs::write(
            &config,
            format!(
                r#"listen = "127.0.0.1:{port}"

[[app]]
appid = "{appid}"
secret_env = "WX_TEST_TOKEND_SECRET"
options = {{ api_base = "{}", endpoint = "classic", retry_min_ms = 50, error_cooldown_ms = 300{extra} }}

[[client]]
name = "tests"
key_env = "WX_TEST_TOKEND_KEY"
apps = ["{appid}"]
"#,
                fake.base_url()
            ),
        )
        .unwrap();
        let mut t = Tokend {
            child: None,
            port,
            config,
            secret: secret.to_owned(),
        };
        t.restart();
        t
    }

    fn restart(&mut self) {
        self.stop();
        let child = Command::new(bin("wx-tokend"))
            .arg("--config")
            .arg(&self.config)
            .env("WX_TEST_TOKEND_SECRET", &self.secret)
            .env("WX_TEST_TOKEND_KEY", CLIENT_KEY)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("wx-tokend starts");
        self.child = Some(child);
        let base = self.base();
        assert!(
            eventually(10, || std::net::TcpStream::connect(
                base.trim_start_matches("http://")
            )
            .is_ok()),
            "wx-tokend listens"
        );
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn client_options(&self, key: &str) -> String {
        format!(
            r#"{{"central":"{}","central_key":"{key}","retry_min_ms":50,"retry_max_ms":200,"error_cooldown_ms":300,"timeout_ms":3000}}"#,
            self.base()
        )
    }
}

impl Drop for Tokend {
    fn drop(&mut self) {
        self.stop();
    }
}

fn setup(tag: &str) -> (Setup, Tokend) {
    let s = Setup::new(tag, FakeConfig::default());
    let t = Tokend::start(&s.fake, &s.appid, &s.secret);
    (s, t)
}

fn register_client(appid: &str, options: &str) -> Result<(), Failure> {
    let a = cstr(appid);
    let o = cstr(options);
    // No secret: client mode.
    let rc = unsafe { wx_token_register(a.as_ptr(), std::ptr::null(), o.as_ptr()) };
    if rc == WX_OK {
        Ok(())
    } else {
        Err(last_failure(rc))
    }
}

#[test]
fn many_clients_without_the_secret_share_one_fetch() {
    let (s, t) = setup("central");
    s.fake.set_delay_ms(300);
    let options = t.client_options(CLIENT_KEY);
    let peers: Vec<Child> = (0..8)
        .map(|_| {
            Command::new(bin("examples/store_peer"))
                .args(["--appid", &s.appid, "--options", &options, "--threads", "4"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    register_client(&s.appid, &options).unwrap();
    let mine = get(&s.appid).unwrap();
    for p in peers {
        let out = p.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            assert_eq!(line, fingerprint(&mine));
        }
    }
    assert!(s.fake.is_valid(&mine));
    assert_eq!(
        s.fetches(),
        1,
        "8 processes x 4 threads and this one: one fetch, by the server"
    );
}

#[test]
fn invalidate_is_forwarded_and_fetches_once() {
    let (s, t) = setup("centralinval");
    register_client(&s.appid, &t.client_options(CLIENT_KEY)).unwrap();
    let t1 = get(&s.appid).unwrap();
    invalidate(&s.appid, Some(&t1)).unwrap();
    let t2 = get(&s.appid).unwrap();
    assert_ne!(t1, t2);
    assert!(s.fake.is_valid(&t2));
    assert_eq!(s.fetches(), 2);
    // A second report of the same stale token changes nothing anywhere.
    invalidate(&s.appid, Some(&t1)).unwrap();
    assert_eq!(get(&s.appid).unwrap(), t2);
    assert_eq!(s.fetches(), 2);
}

/// A client that has not cached the token (a worker restarted between using it and learning
/// WeChat rejected it) still gets its report to the central server, which judges it against
/// the fleet's current token (#10 item 6). Before, the report was dropped for want of a local
/// token, and the fleet kept the rejected one.
#[test]
fn a_report_from_a_client_without_a_cached_token_reaches_the_server() {
    let (s, t) = setup("centralnocache");
    // Another client's get: the server now holds the fleet's token.
    let fleet = http_get_with_key(&t, &s.appid);
    assert_eq!(s.fetches(), 1);
    register_client(&s.appid, &t.client_options(CLIENT_KEY)).unwrap();
    invalidate(&s.appid, Some(&fleet)).unwrap();
    assert_eq!(s.fetches(), 2, "the server replaced the reported token");
    let now = get(&s.appid).unwrap();
    assert_ne!(now, fleet);
    assert!(s.fake.is_valid(&now));
    assert_eq!(
        http_get_with_key(&t, &s.appid),
        now,
        "one token for the fleet"
    );
    // A report of a token the server has moved on from changes nothing.
    invalidate(&s.appid, Some(&fleet)).unwrap();
    assert_eq!(s.fetches(), 2);
}

/// The server's current token, as any client with the key gets it over HTTP.
fn http_get_with_key(t: &Tokend, appid: &str) -> String {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(t.base().trim_start_matches("http://")).unwrap();
    write!(
        c,
        "GET /v1/token/{appid} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {CLIENT_KEY}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    c.read_to_string(&mut answer).unwrap();
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{answer}"));
    v["access_token"].as_str().unwrap().to_owned()
}

#[test]
fn a_wrong_key_is_rejected_and_wechat_errors_are_relayed() {
    let (s, t) = setup("centralerr");
    let other = unique_appid("badkey");
    register_client(&other, &t.client_options("not-the-right-key-0000")).unwrap();
    let e = get(&other).unwrap_err();
    assert_eq!(e.status, WX_INVALID_ARGUMENT, "{e:?}");
    assert!(
        e.message.contains("401") && !e.message.contains("not-the-right-key"),
        "{}",
        e.message
    );

    s.fake.push_fault(Fault::new(FaultKind::Quota));
    register_client(&s.appid, &t.client_options(CLIENT_KEY)).unwrap();
    let e = get(&s.appid).unwrap_err();
    assert_eq!((e.status, e.errcode), (WX_WECHAT_ERROR, 45009), "{e:?}");
    assert!(!e.message.contains(&s.secret));
}

#[test]
fn clients_keep_their_token_while_the_server_restarts() {
    let (s, mut t) = setup("centralrestart");
    register_client(&s.appid, &t.client_options(CLIENT_KEY)).unwrap();
    let t1 = get(&s.appid).unwrap();
    t.stop();
    for _ in 0..100 {
        assert_eq!(get(&s.appid).unwrap(), t1, "served from the client's cache");
    }
    assert_eq!(
        invalidate(&s.appid, Some(&t1)).unwrap_err().status,
        WX_NETWORK
    );
    t.restart();
    // Back up: the client recovers by itself (after its backoff) with a fresh token.
    assert!(eventually(10, || get(&s.appid).is_ok_and(|t2| t2 != t1)));
}

#[test]
fn client_mode_options_are_validated() {
    let appid = unique_appid("centralopts");
    for bad in [
        r#"{"central":"http://192.168.1.10:8443","central_key":"k"}"#,
        r#"{"central":"https://tokens.internal"}"#,
        r#"{"central":"https://tokens.internal","central_key":"k","store":"file:/tmp/x"}"#,
    ] {
        assert_eq!(
            register_client(&appid, bad).unwrap_err().status,
            WX_INVALID_ARGUMENT,
            "{bad}"
        );
    }
    assert_eq!(
        register_client(&appid, r#"{"endpoint":"classic"}"#)
            .unwrap_err()
            .status,
        WX_INVALID_ARGUMENT,
        "no secret, no central"
    );
    register_client(
        &appid,
        r#"{"central":"https://tokens.internal:8443","central_key":"k"}"#,
    )
    .unwrap();
}

// ---- #11 item 5 and #12: what a client makes of a central server's answers ----

/// A stand-in for a central server, written here: answers each `GET /v1/token/{appid}` and
/// `POST /v1/token/{appid}/invalidate` with the status and body scripted for its path after
/// `/v1/token/` (404 if none).
struct OddCentral {
    base: String,
}

impl OddCentral {
    fn start(answers: std::collections::HashMap<String, (u16, String)>) -> OddCentral {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut head = String::new();
                let mut content_len = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        content_len = v.trim().parse().unwrap_or(0);
                    }
                    head.push_str(&line);
                }
                let mut body = vec![0; content_len];
                let _ = reader.read_exact(&mut body);
                let path = head.split_whitespace().nth(1).unwrap_or("");
                let (status, body) = answers
                    .get(path.trim_start_matches("/v1/token/"))
                    .cloned()
                    .unwrap_or((404, String::new()));
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} Odd\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        OddCentral { base }
    }
}

#[test]
fn odd_central_answers_map_onto_a_closed_set_of_statuses() {
    let key = "odd-key-0123456789abcdef";
    let cases: Vec<(u16, &str, i32, &str)> = vec![
        (500, r#"{"status":2}"#, WX_NETWORK, ""),
        (500, r#"{"status":3,"errmsg":"x"}"#, WX_NETWORK, ""),
        (500, r#"{"status":1}"#, WX_NETWORK, ""),
        (500, r#"{"status":8}"#, WX_NETWORK, ""),
        (503, r#"{"status":2}"#, WX_NETWORK, ""),
        (599, "not json", WX_NETWORK, ""),
        (302, "", WX_NETWORK, ""),
        (429, r#"{"status":9}"#, WX_NETWORK, "429"),
        (400, r#"{"status":1,"errmsg":"bad"}"#, WX_PROTOCOL, ""),
        (404, r#"{"status":3}"#, WX_PROTOCOL, ""),
        (418, r#"{"status":0}"#, WX_PROTOCOL, ""),
        (200, r#"{"status":2}"#, WX_PROTOCOL, ""),
        (
            200,
            r#"{"access_token":"","expires_in":7200}"#,
            WX_PROTOCOL,
            "",
        ),
        (
            502,
            r#"{"error":"wechat_error","status":4,"errcode":45009,"errmsg":"quota"}"#,
            WX_WECHAT_ERROR,
            "quota",
        ),
        (502, r#"{"status":4,"errcode":0}"#, WX_NETWORK, ""),
        (
            502,
            r#"{"status":5,"errmsg":"upstream down"}"#,
            WX_NETWORK,
            "upstream down",
        ),
        (502, r#"{"status":6}"#, WX_PROTOCOL, ""),
        (
            503,
            r#"{"status":7,"errmsg":"store down"}"#,
            WX_STORE,
            "store down",
        ),
        (
            401,
            r#"{"error":"app_not_allowed","status":1,"errcode":0,"errmsg":"x"}"#,
            WX_INVALID_ARGUMENT,
            "not allowed for this app",
        ),
        (
            401,
            r#"{"error":"unauthorized","status":1,"errcode":0,"errmsg":"missing or invalid client key"}"#,
            WX_INVALID_ARGUMENT,
            "rejected central_key",
        ),
    ];
    let appids: Vec<String> = (0..cases.len())
        .map(|i| unique_appid(&format!("odd{i}")))
        .collect();
    let limited = unique_appid("oddlimited");
    let mut answers: std::collections::HashMap<String, (u16, String)> = cases
        .iter()
        .zip(&appids)
        .map(|((status, body, ..), appid)| (appid.clone(), (*status, (*body).to_owned())))
        .collect();
    answers.insert(
        limited.clone(),
        (
            200,
            r#"{"access_token":"tok-limited-1","expires_in":7200}"#.to_owned(),
        ),
    );
    answers.insert(
        format!("{limited}/invalidate"),
        (429, r#"{"status":9}"#.to_owned()),
    );
    let server = OddCentral::start(answers);
    let options = format!(
        r#"{{"central":"{}","central_key":"{key}","timeout_ms":2000}}"#,
        server.base
    );
    for ((status, body, want, says), appid) in cases.iter().zip(&appids) {
        register_client(appid, &options).unwrap();
        let a = cstr(appid);
        let mut buf = [0u8; WX_TOKEN_MAX_LEN + 1];
        let mut n = 12345usize;
        let rc = unsafe { wx_token_get(a.as_ptr(), buf.as_mut_ptr().cast(), buf.len(), &mut n) };
        let e = last_failure(rc);
        assert_eq!(rc, *want, "HTTP {status} {body}: {e:?}");
        assert_eq!(
            n, 12345,
            "*out_len untouched on a failure: HTTP {status} {body}"
        );
        assert!(
            e.message.contains(says),
            "HTTP {status} {body}: {}",
            e.message
        );
        assert!(
            !e.message.contains(key) && !e.message.contains("http://"),
            "{}",
            e.message
        );
    }
    // Only an invalidation may be refused as RATE_LIMITED by the server; the server's token
    // then stays in service, and plain gets are served it.
    register_client(&limited, &options).unwrap();
    assert_eq!(get(&limited).unwrap(), "tok-limited-1");
    let e = invalidate(&limited, Some("tok-limited-1")).unwrap_err();
    assert_eq!(e.status, WX_RATE_LIMITED, "{e:?}");
    assert!(e.message.contains("429"), "{}", e.message);
    assert_eq!(get(&limited).unwrap(), "tok-limited-1");
}

// ---- #10 item 8: several central servers, and failing over between them ----

/// Runs a store_peer client process once and returns the fingerprint it printed.
fn peer_fingerprint(appid: &str, options: &str) -> String {
    let out = Command::new(bin("examples/store_peer"))
        .args(["--appid", appid, "--options", options, "--threads", "1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A server that cannot reach WeChat itself (502 `network`: its egress or proxy is broken) is
/// passed over for the next one, which may get through; only a 502 relaying WeChat's own
/// errcode is an answer every server would repeat. Before, the first server's 502 ended the
/// call with WX_NETWORK although the second could serve.
#[test]
fn a_server_that_cannot_reach_wechat_is_passed_over() {
    let (s, t) = setup("failover502");
    let broken = OddCentral::start(
        [
            (
                s.appid.clone(),
                (
                    502,
                    r#"{"error":"network","status":5,"errcode":0,"errmsg":"token request to api.weixin.qq.com:443 failed: timed out"}"#
                        .to_owned(),
                ),
            ),
        ]
        .into_iter()
        .collect(),
    );
    let options = format!(
        r#"{{"central":["{}","{}"],"central_key":"{CLIENT_KEY}","retry_min_ms":50,"error_cooldown_ms":300}}"#,
        broken.base,
        t.base()
    );
    register_client(&s.appid, &options).unwrap();
    let token = get(&s.appid).expect("the second server serves");
    assert!(s.fake.is_valid(&token));
    assert_eq!(s.fetches(), 1);
    // The client now prefers the server that answered; re-registering starts from the first
    // again, whose relayed WeChat errcode is an answer, not a reason to fail over.
    let other = unique_appid("failover502b");
    let broken_b = OddCentral::start(
        [(
            other.clone(),
            (
                502,
                r#"{"error":"wechat_error","status":4,"errcode":40164,"errmsg":"invalid ip"}"#
                    .to_owned(),
            ),
        )]
        .into_iter()
        .collect(),
    );
    let options_b = format!(
        r#"{{"central":["{}","{}"],"central_key":"{CLIENT_KEY}"}}"#,
        broken_b.base,
        t.base()
    );
    register_client(&other, &options_b).unwrap();
    let e = get(&other).unwrap_err();
    assert_eq!((e.status, e.errcode), (WX_WECHAT_ERROR, 40164), "{e:?}");
}

#[test]
fn clients_fail_over_between_central_servers_and_find_a_returning_one() {
    let s = Setup::new("failover", FakeConfig::default());
    // Two servers for one app share one store: else each would fetch (and, on the classic
    // endpoint, end the other's token).
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("failover-{}", s.appid));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let store = format!(r#", store = "file:{}""#, dir.display());
    let mut a = Tokend::start_with(&s.fake, &s.appid, &s.secret, &store);
    let mut b = Tokend::start_with(&s.fake, &s.appid, &s.secret, &store);
    let both = |first: &Tokend, second: &Tokend| {
        format!(
            r#"{{"central":["{}","{}"],"central_key":"{CLIENT_KEY}"}}"#,
            first.base(),
            second.base()
        )
    };

    let fp = peer_fingerprint(&s.appid, &both(&a, &b));
    assert_eq!(s.fetches(), 1);
    a.stop();
    // The first server is gone: the next one answers, from the shared store.
    assert_eq!(peer_fingerprint(&s.appid, &both(&a, &b)), fp);
    a.restart();
    b.stop();
    // Comma-separated works too.
    let comma = format!(
        r#"{{"central":"{},{}","central_key":"{CLIENT_KEY}"}}"#,
        b.base(),
        a.base()
    );
    assert_eq!(peer_fingerprint(&s.appid, &comma), fp);
    assert_eq!(s.fetches(), 1, "no extra fetch through any failover");

    // A long-running client, with the default retry_max_ms (60 s), while both are down.
    a.stop();
    register_client(&s.appid, &both(&b, &a)).unwrap();
    let down_until = std::time::Instant::now() + std::time::Duration::from_secs(4);
    while std::time::Instant::now() < down_until {
        assert_eq!(get(&s.appid).unwrap_err().status, WX_NETWORK);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    a.restart();
    let back = std::time::Instant::now();
    assert!(
        eventually(3, || get(&s.appid).is_ok()),
        "a returning server is found within about 2 s"
    );
    eprintln!("found the returning server after {:?}", back.elapsed());
    let t1 = get(&s.appid).unwrap();
    assert_eq!(fingerprint(&t1), fp);
    assert_eq!(s.fetches(), 1);

    // The client now uses `a`; `b` returns and `a` dies: the passive refresh goes to `b`.
    b.restart();
    // `b` learns the store's token (a server that has not cached it yet ignores reports of it).
    let only_b = format!(
        r#"{{"central":"{}","central_key":"{CLIENT_KEY}"}}"#,
        b.base()
    );
    assert_eq!(peer_fingerprint(&s.appid, &only_b), fp);
    a.stop();
    invalidate(&s.appid, Some(&t1)).unwrap();
    let t2 = get(&s.appid).unwrap();
    assert_ne!(t2, t1);
    assert!(s.fake.is_valid(&t2));
    assert_eq!(s.fetches(), 2, "one fetch, for the invalidation");
}
