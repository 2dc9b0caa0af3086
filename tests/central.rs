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
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config =
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("tokend-{appid}.toml"));
        std::fs::write(
            &config,
            format!(
                r#"listen = "127.0.0.1:{port}"

[[app]]
appid = "{appid}"
secret_env = "WX_TEST_TOKEND_SECRET"
options = {{ api_base = "{}", endpoint = "classic", retry_min_ms = 50, error_cooldown_ms = 300 }}

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
