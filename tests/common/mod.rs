//! Calls the C ABI exactly as a C caller would, and wraps the answers for assertions.
#![allow(dead_code)]

pub mod proxy;
pub mod redis_prod;

use std::ffi::{CStr, CString, c_char};
use std::sync::atomic::{AtomicU32, Ordering};

use wx_fake::{FakeConfig, FakeWechat};
use wx_token::ffi::*;

/// The C-level outcome of a failed call: status, WeChat errcode and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: i32,
    pub errcode: i32,
    pub message: String,
    /// WeChat's own errmsg (wx_last_wechat_errmsg).
    pub errmsg: String,
}

pub fn cstr(s: &str) -> CString {
    CString::new(s).expect("no NUL in test strings")
}

/// An appid unique to this test process, so tests sharing the global registry never collide.
pub fn unique_appid(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "wx_{tag}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn last_failure(status: i32) -> Failure {
    let mut buf = vec![0u8; 4096];
    let n = unsafe { wx_last_error_message(buf.as_mut_ptr().cast::<c_char>(), buf.len()) };
    let msg = CStr::from_bytes_until_nul(&buf)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(n, msg.len(), "message fits the test buffer");
    let mut buf = vec![0u8; 4096];
    unsafe { wx_last_wechat_errmsg(buf.as_mut_ptr().cast::<c_char>(), buf.len()) };
    let errmsg = CStr::from_bytes_until_nul(&buf)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    Failure {
        status,
        errcode: wx_last_errcode(),
        message: msg,
        errmsg,
    }
}

pub fn register(appid: &str, secret: &str, options: Option<&str>) -> Result<(), Failure> {
    let a = cstr(appid);
    let s = cstr(secret);
    let o = options.map(cstr);
    let rc = unsafe {
        wx_token_register(
            a.as_ptr(),
            s.as_ptr(),
            o.as_ref().map_or(std::ptr::null(), |o| o.as_ptr()),
        )
    };
    if rc == WX_OK {
        Ok(())
    } else {
        Err(last_failure(rc))
    }
}

/// Calls a `(buf, buf_len, out_len)` export with a buffer of `cap` bytes: the bytes it wrote
/// (checked NUL-terminated), or the failure it reported.
pub fn buffer_out(
    cap: usize,
    call: impl FnOnce(*mut c_char, usize, *mut usize) -> i32,
) -> Result<Vec<u8>, Failure> {
    let mut buf = vec![0u8; cap];
    let mut n = usize::MAX;
    let rc = call(buf.as_mut_ptr().cast::<c_char>(), buf.len(), &mut n);
    if rc != WX_OK {
        return Err(last_failure(rc));
    }
    assert_eq!(buf[n], 0, "NUL-terminated");
    buf.truncate(n);
    Ok(buf)
}

pub fn get(appid: &str) -> Result<String, Failure> {
    let a = cstr(appid);
    let token = buffer_out(WX_TOKEN_MAX_LEN + 1, |buf, len, n| unsafe {
        wx_token_get(a.as_ptr(), buf, len, n)
    })?;
    assert_eq!(wx_last_errcode(), 0, "success clears the last errcode");
    Ok(String::from_utf8(token).unwrap())
}

pub fn invalidate(appid: &str, stale: Option<&str>) -> Result<(), Failure> {
    let a = cstr(appid);
    let s = stale.map(cstr);
    let rc = unsafe {
        wx_token_invalidate(
            a.as_ptr(),
            s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
        )
    };
    if rc == WX_OK {
        Ok(())
    } else {
        Err(last_failure(rc))
    }
}

pub fn generation(appid: &str) -> u64 {
    let a = cstr(appid);
    let mut p: *const u64 = std::ptr::null();
    assert_eq!(
        unsafe { wx_token_generation_counter(a.as_ptr(), &mut p) },
        WX_OK
    );
    unsafe { std::sync::atomic::AtomicU64::from_ptr(p.cast_mut()).load(Ordering::Acquire) }
}

/// A fake WeChat that knows one app, and options pointing the engine at it.
pub struct Setup {
    pub fake: FakeWechat,
    pub appid: String,
    pub secret: String,
}

impl Setup {
    pub fn new(tag: &str, cfg: FakeConfig) -> Setup {
        Setup::with_secret(tag, "s3cret-&=+%/ 密", cfg)
    }

    pub fn with_secret(tag: &str, secret: &str, cfg: FakeConfig) -> Setup {
        let appid = unique_appid(tag);
        let fake = FakeWechat::start(cfg).expect("fake starts");
        fake.add_app(&appid, secret);
        Setup {
            fake,
            appid,
            secret: secret.to_owned(),
        }
    }

    /// store_peer's arguments naming this app (appid, secret) with `options`; a caller adds
    /// the rest.
    pub fn peer_args<'a>(&'a self, options: &'a str) -> Vec<&'a str> {
        vec![
            "--appid",
            &self.appid,
            "--secret",
            &self.secret,
            "--options",
            options,
        ]
    }

    /// Options JSON for this fake: short backoffs for tests, overridden by `extra` (JSON
    /// members without the braces, or "").
    pub fn options(&self, extra: &str) -> String {
        let mut opts = serde_json::json!({
            "api_base": self.fake.base_url(),
            "retry_min_ms": 50,
            "retry_max_ms": 200,
            "error_cooldown_ms": 300,
            "timeout_ms": 2000,
        });
        let extra: serde_json::Value =
            serde_json::from_str(&format!("{{{extra}}}")).expect("extra options");
        for (k, v) in extra.as_object().unwrap() {
            opts[k] = v.clone();
        }
        opts.to_string()
    }

    pub fn register(&self, extra: &str) {
        register(&self.appid, &self.secret, Some(&self.options(extra))).expect("register");
    }

    pub fn fetches(&self) -> u64 {
        let s = self.fake.app_stats(&self.appid);
        s.token_requests + s.stable_requests + s.force_requests
    }
}

/// Polls `cond` every 10 ms for up to `secs` seconds: for waiting on background work, whose
/// timing the tests do not assert.
pub fn eventually(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    cond()
}

/// A plain HTTP GET over loopback, for talking to the fake from a fork child (whose copy of
/// the in-process fake's memory no longer sees the server threads, which live in the parent).
pub fn http_get(base_url: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let addr = base_url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("connect to fake");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

/// Upstream token requests for `appid`, asked over HTTP.
pub fn fetches_via_http(base_url: &str, appid: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(&http_get(base_url, "/_fake/stats")).unwrap();
    let app = &v["apps"][appid];
    ["token_requests", "stable_requests", "force_requests"]
        .iter()
        .map(|k| app[*k].as_u64().unwrap_or(0))
        .sum()
}

/// Whether the fake's business API accepts `token`, asked over HTTP.
pub fn valid_via_http(base_url: &str, token: &str) -> bool {
    http_get(
        base_url,
        &format!("/cgi-bin/get_api_domain_ip?access_token={token}"),
    )
    .contains("ip_list")
}

/// A real redis-server on a free loopback port, stopped (SIGKILL) on drop.
pub struct RedisServer {
    pub port: u16,
    server: Option<redis_prod::Proc>,
}

impl RedisServer {
    pub fn start() -> Option<RedisServer> {
        if !redis_prod::installed("redis-server") {
            return None;
        }
        let mut r = RedisServer {
            port: redis_prod::free_port(),
            server: None,
        };
        r.restart();
        Some(r)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn stop(&mut self) {
        self.server = None;
    }

    /// (Re)starts the server on the same port, empty, and waits until it answers.
    pub fn restart(&mut self) {
        self.stop();
        self.server = Some(redis_prod::Proc::redis(self.port, &[]));
    }

    /// Runs redis-cli against this server; `None` if it failed.
    pub fn cli(&self, args: &[&str]) -> Option<String> {
        redis_prod::cli(self.port, args)
    }
}

/// The store_peer example binary (`cargo test` builds it; `cargo test --test NAME` does not:
/// then `cargo build --examples` first).
pub fn peer_bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/store_peer");
    assert!(
        bin.exists(),
        "{} missing: build the examples",
        bin.display()
    );
    bin
}

/// store_peer processes released together through a go file; killed on drop unless waited
/// for.
pub struct Peers {
    children: Vec<std::process::Child>,
}

impl Peers {
    /// One peer per `(appid, extra args)`, all with `secret`, `options` and `threads`.
    pub fn start(secret: &str, options: &str, threads: usize, peers: &[(&str, &[&str])]) -> Peers {
        let threads = threads.to_string();
        let args: Vec<Vec<&str>> = peers
            .iter()
            .map(|(appid, extra)| {
                let mut args = extra.to_vec();
                args.extend([
                    "--appid",
                    appid,
                    "--secret",
                    secret,
                    "--options",
                    options,
                    "--threads",
                    &threads,
                ]);
                args
            })
            .collect();
        // 300 ms: every peer registered and waiting.
        Peers::go(&args, std::time::Duration::from_millis(300))
    }

    /// One peer per entry of `peers` (its arguments; one shared `--go-file` is added), given
    /// `settle` to register and wait on the go file, then let go all at once.
    pub fn go(peers: &[Vec<&str>], settle: std::time::Duration) -> Peers {
        use std::process::{Command, Stdio};
        let go = tmpdir("go").join("go");
        let children = peers
            .iter()
            .map(|args| {
                Command::new(peer_bin())
                    .args(args)
                    .arg("--go-file")
                    .arg(&go)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("store_peer starts")
            })
            .collect();
        std::thread::sleep(settle);
        std::fs::write(&go, b"go").unwrap();
        Peers { children }
    }

    /// Each peer's printed fingerprints, in order; a failed peer fails the test.
    pub fn wait(mut self) -> Vec<Vec<String>> {
        std::mem::take(&mut self.children)
            .into_iter()
            .map(|c| {
                let out = c.wait_with_output().unwrap();
                assert!(
                    out.status.success(),
                    "peer failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(str::to_owned)
                    .collect()
            })
            .collect()
    }
}

impl Drop for Peers {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `procs` identical peers with `args` (see `Peers::go`): what each printed, line by line.
pub fn peer_fleet(procs: usize, args: &[&str], settle: std::time::Duration) -> Vec<Vec<String>> {
    Peers::go(&vec![args.to_vec(); procs], settle).wait()
}

/// Runs `child` in a forked process and returns its exit status (0 = all assertions held).
pub fn in_child(child: impl FnOnce() -> bool) -> i32 {
    match unsafe { libc::fork() } {
        -1 => panic!("fork failed"),
        0 => {
            let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(false);
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        pid => {
            let mut status = 0;
            assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
            assert!(libc::WIFEXITED(status), "child crashed: {status}");
            libc::WEXITSTATUS(status)
        }
    }
}

/// A fresh directory under the target's test temp dir, mode 0700 (a file store refuses more).
pub fn tmpdir(tag: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let d = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{tag}-{}", unique_appid("d")));
    std::fs::create_dir_all(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
    d
}

/// FNV-1a 64 of a token, as examples/store_peer prints it.
pub fn fingerprint(token: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in token.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("fnv1a64:{h:016x}")
}

/// The repository's root.
pub fn repo() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding libwx_token.so, next to the `deps` folder this test binary lives in.
/// `cargo test` builds the rlib for integration tests but not always the cdylib, so it is
/// built here when missing (cargo has released its lock while tests run).
pub fn lib_dir() -> std::path::PathBuf {
    use std::process::Command;
    static BUILT: std::sync::Once = std::sync::Once::new();
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    BUILT.call_once(|| {
        if !dir.join("libwx_token.so").exists() {
            let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            cmd.args(["build", "-p", "wx_token", "--lib"])
                .env("CARGO_TARGET_DIR", dir.parent().unwrap())
                .current_dir(repo());
            if dir.ends_with("release") {
                cmd.arg("--release");
            }
            assert!(cmd.status().unwrap().success(), "building the cdylib");
        }
    });
    assert!(
        dir.join("libwx_token.so").exists(),
        "no cdylib in {}",
        dir.display()
    );
    dir
}

pub fn unregister(appid: &str) -> Result<(), Failure> {
    let a = cstr(appid);
    match unsafe { wx_token_unregister(a.as_ptr()) } {
        WX_OK => Ok(()),
        rc => Err(last_failure(rc)),
    }
}

/// `n` apps known to `s.fake`, registered with `extra` options.
pub fn register_many(s: &Setup, tag: &str, n: usize, extra: &str) -> Vec<String> {
    let opts = s.options(extra);
    (0..n)
        .map(|_| {
            let id = unique_appid(tag);
            s.fake.add_app(&id, &s.secret);
            register(&id, &s.secret, Some(&opts)).expect("register");
            id
        })
        .collect()
}

/// `register_many`, then one token fetched for each app (so each has its refresh scheduled).
pub fn register_and_get_many(s: &Setup, tag: &str, n: usize, extra: &str) -> Vec<String> {
    let ids = register_many(s, tag, n, extra);
    for id in &ids {
        get(id).unwrap();
    }
    ids
}

/// A Redis store's record of `appid` after its one fetch, read through `cli` (redis-cli with
/// the server's flags): generation 1, and the refresh lease released.
pub fn assert_one_fetch_recorded(appid: &str, cli: impl Fn(&[&str]) -> Option<String>) {
    let key = format!("wx_token:{{{appid}}}");
    assert_eq!(cli(&["HGET", &key, "generation"]).unwrap().trim(), "1");
    assert_eq!(
        cli(&["EXISTS", &format!("{key}:lease")]).unwrap().trim(),
        "0",
        "lease released"
    );
}

/// A plain HTTP POST of a JSON body over loopback (from a fork child, see `http_get`).
pub fn http_post(base_url: &str, path: &str, body: &str) {
    use std::io::{Read, Write};
    let addr = base_url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("connect to fake");
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
}
