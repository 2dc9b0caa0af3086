//! The `wx-fake-wechat` binary as other languages' test harnesses run it.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_wx-fake-wechat");

/// Kills the child if a test fails half-way, so no fake outlives the run.
struct Fake {
    child: Child,
    base_url: String,
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(args: &[&str]) -> Fake {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wx-fake-wechat");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base_url = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .trim_end()
        .to_string();
    Fake { child, base_url }
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "child did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serves_configured_apps_and_exits_on_stdin_eof() {
    let dir = std::env::temp_dir().join(format!("wx-fake-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port_file = dir.join("port");
    let mut fake = spawn(&[
        "--app",
        "wx_cli:top:secret",
        "--token-len",
        "10",
        "--lifetime=99",
        "--port-file",
        port_file.to_str().unwrap(),
        "--exit-on-stdin-eof",
        "--verbose",
    ]);
    let url = fake.base_url.clone();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert_eq!(std::fs::read_to_string(&port_file).unwrap(), url);
    let v = classic(&url, "wx_cli", "top:secret");
    assert_eq!(token_of(&v).len(), 10);
    assert_eq!(v["expires_in"], 99);
    assert_eq!(
        classic(&url, "wx_demo_appid", "demo_secret")["errcode"],
        40013
    );
    assert_eq!(get(&url, "/_fake/stats").json()["issued"], 1);

    drop(fake.child.stdin.take());
    let status = wait_exit(&mut fake.child, Duration::from_secs(5));
    assert!(status.success(), "{status}");
    let mut stderr = String::new();
    fake.child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(stderr.contains("GET /cgi-bin/token 200"), "{stderr}");
    assert!(
        !stderr.contains("top:secret") && !stderr.contains("grant_type"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn default_app_is_announced_without_its_secret() {
    let mut fake = spawn(&["--exit-on-stdin-eof"]);
    let url = fake.base_url.clone();
    assert!(classic(&url, "wx_demo_appid", "demo_secret")["access_token"].is_string());
    drop(fake.child.stdin.take());
    wait_exit(&mut fake.child, Duration::from_secs(5));
    let mut stderr = String::new();
    fake.child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(stderr.contains("wx_demo_appid"), "{stderr}");
    assert!(!stderr.contains("demo_secret"), "{stderr}");
    assert!(
        !stderr.contains("/cgi-bin/token"),
        "quiet unless --verbose: {stderr}"
    );
}

#[test]
fn refuses_non_loopback_and_bad_flags() {
    for args in [
        &["--listen", "0.0.0.0:0"][..],
        &["--token-len", "0"][..],
        &["--app", "missing-colon"][..],
        &["--what"][..],
    ] {
        let out = Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
}
