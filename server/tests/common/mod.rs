//! Test harness: spawns the real `wx-tokend` binary with a temporary config, captures its
//! stderr (the structured logs), and talks to it with a minimal HTTP/1.1 client over
//! loopback (plain or through rustls).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;
use wx_fake::FakeWechat;

pub const SECRET: &str = "s3cret-for-tests-&=+%";
pub const BILLING_KEY: &str = "billing-key-0123456789abcdef";
pub const OPS_KEY: &str = "ops-key-0123456789abcdef-xyz";
pub const APP1: &str = "wx_tokend_app1";
pub const APP2: &str = "wx_tokend_app2";

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "wx_tokend_{tag}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn sha256_hex(s: &str) -> String {
    // The test computes the digest with the system's sha256sum, independently of the server.
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// Engine options pointing at `fake`, with short backoffs; `extra` is TOML inline-table
/// members appended (", key = value ...") or "".
pub fn app_options(fake: &FakeWechat, extra: &str) -> String {
    format!(
        "{{ api_base = \"{}\", endpoint = \"classic\", retry_min_ms = 50, retry_max_ms = 200, error_cooldown_ms = 300, timeout_ms = 2000{extra} }}",
        fake.base_url()
    )
}

/// A config with APP1 and APP2 (both with SECRET from the environment), client "billing"
/// (APP1 only, key from the environment) and client "ops" (every app, key as a SHA-256).
pub fn config(fake: &FakeWechat, top: &str, options_extra: &str) -> String {
    let opts = app_options(fake, options_extra);
    format!(
        r#"listen = "127.0.0.1:0"
{top}
[[app]]
appid = "{APP1}"
secret_env = "WX_SECRET_TEST"
options = {opts}

[[app]]
appid = "{APP2}"
secret_env = "WX_SECRET_TEST"
options = {opts}

[[client]]
name = "billing"
key_env = "WX_KEY_BILLING"
apps = ["{APP1}"]

[[client]]
name = "ops"
key_sha256 = "{}"
apps = ["*"]
"#,
        sha256_hex(OPS_KEY)
    )
}

pub fn fake_with_apps() -> FakeWechat {
    FakeWechat::start(
        wx_fake::FakeConfig::default()
            .with_app(APP1, SECRET)
            .with_app(APP2, SECRET),
    )
    .unwrap()
}

pub fn fetches(fake: &FakeWechat, appid: &str) -> u64 {
    fake.app_stats(appid).token_endpoint_requests()
}

pub fn tokend_command(config_path: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wx-tokend"));
    c.arg("--config").arg(config_path);
    c.env("WX_SECRET_TEST", SECRET)
        .env("WX_KEY_BILLING", BILLING_KEY);
    c
}

/// A running wx-tokend, killed on drop.
pub struct Tokend {
    pub child: Child,
    pub addr: SocketAddr,
    /// The configuration file it was started with (rewrite it, then `sighup`).
    pub config_path: PathBuf,
    logs: Arc<Mutex<Vec<String>>>,
    _dir: TempDir,
}

impl Tokend {
    pub fn start(config: &str) -> Tokend {
        Tokend::start_with(config, &[])
    }

    pub fn start_with(config: &str, env: &[(&str, &str)]) -> Tokend {
        let dir = TempDir::new("srv");
        let path = dir.write("wx-tokend.toml", config);
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let mut cmd = tokend_command(&path);
        cmd.envs(env.iter().copied());
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("wx-tokend starts");
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let listening = serde_json::from_str::<Value>(&line)
                    .ok()
                    .filter(|v| v["msg"] == "listening")
                    .map(|v| v["addr"].as_str().unwrap().parse::<SocketAddr>().unwrap());
                // Kept before the address is handed over, so a test sees the line in logs().
                sink.lock().unwrap().push(line);
                if let Some(addr) = listening {
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "wx-tokend did not start; logs:\n{}",
                    logs.lock().unwrap().join("\n")
                );
            }
        };
        Tokend {
            child,
            addr,
            config_path: path,
            logs,
            _dir: dir,
        }
    }

    pub fn sighup(&self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGHUP) };
    }

    /// Log lines (parsed) whose `msg` is `msg`.
    pub fn lines_with_msg(&self, msg: &str) -> Vec<Value> {
        self.log_lines()
            .into_iter()
            .filter(|l| l["msg"] == msg)
            .collect()
    }

    /// Everything logged so far, one line per entry.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    pub fn log_lines(&self) -> Vec<Value> {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).expect("every log line is JSON"))
            .collect()
    }

    pub fn sigterm(&self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Some(s) = self.child.try_wait().unwrap() {
                // Let the reader thread drain the last lines.
                std::thread::sleep(Duration::from_millis(50));
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    pub fn get(&self, path: &str, key: Option<&str>) -> Resp {
        http(self.addr, "GET", path, key, None)
    }

    pub fn token(&self, appid: &str, key: &str) -> Resp {
        self.get(&format!("/v1/token/{appid}"), Some(key))
    }

    /// `name{appid="<appid>"}` in a fresh scrape of /metrics (without a metrics key), if there.
    pub fn metric(&self, name: &str, appid: &str) -> Option<f64> {
        let m = self.get("/metrics", None).body;
        let prefix = format!("{name}{{appid=\"{appid}\"}} ");
        m.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|v| v.parse().unwrap())
    }

    pub fn invalidate(&self, appid: &str, key: &str, body: &str) -> Resp {
        http(
            self.addr,
            "POST",
            &format!("/v1/token/{appid}/invalidate"),
            Some(key),
            Some(body),
        )
    }
}

impl Drop for Tokend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn access_token(&self) -> String {
        assert_eq!(self.status, 200, "{}", self.body);
        self.json()["access_token"].as_str().unwrap().to_owned()
    }
}

pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> Resp {
    let mut s = TcpStream::connect(addr).expect("connect to wx-tokend");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    http_on(&mut s, method, path, key, body)
}

/// One request with `Connection: close` over any stream (plain TCP or TLS).
pub fn http_on<S: Read + Write>(
    s: &mut S,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> Resp {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if let Some(k) = key {
        req.push_str(&format!("Authorization: Bearer {k}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body.unwrap_or(""));
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    // A server closing early (413) may reset the connection: keep what was read.
    let _ = s.read_to_end(&mut raw);
    parse_response(&raw)
}

pub fn parse_response(raw: &[u8]) -> Resp {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {text:?}"));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Resp {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// Runs `wx-tokend --check-config` on `text` (written with `mode`), killed after 10 s if it
/// hangs: (exit code, stdout, stderr).
pub fn check_config(text: &str, mode: u32, env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let dir = TempDir::new("check");
    let path = dir.write("c.toml", text);
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
    let mut child = tokend_command(&path)
        .envs(env.iter().copied())
        .arg("--check-config")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > end {
            let _ = child.kill();
            panic!("--check-config hangs");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A TCP connection to `addr` from the loopback address `from` (such as 127.0.0.2), so that
/// a test can be a different peer from the rest of the test process.
pub fn connect_from(from: std::net::Ipv4Addr, addr: SocketAddr) -> TcpStream {
    use std::os::fd::FromRawFd;
    let SocketAddr::V4(to) = addr else {
        panic!("IPv4 only")
    };
    let sin = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let local = sin(from, 0);
        assert_eq!(
            libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), len),
            0,
            "bind {from}"
        );
        let remote = sin(*to.ip(), to.port());
        assert_eq!(
            libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), len),
            0,
            "connect"
        );
        TcpStream::from_raw_fd(fd)
    }
}

/// Raises this process's soft open-file limit to its hard limit; returns the new soft limit.
pub fn raise_fd_limit() -> u64 {
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur
    }
}

/// Polls `cond` every 10 ms for up to `secs` seconds.
pub fn eventually(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// A real redis-server on a free loopback port, killed on drop (as in the engine's tests).
pub struct RedisServer {
    pub port: u16,
    child: Child,
}

impl RedisServer {
    pub fn start() -> Option<RedisServer> {
        if Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let r = RedisServer { port, child };
        assert!(
            eventually(10, || TcpStream::connect(("127.0.0.1", port)).is_ok()),
            "redis-server listens"
        );
        Some(r)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
