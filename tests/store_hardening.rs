//! The file store against a hostile or broken directory (#11 item 1, #10 item 3), garbage
//! records of every kind in both stores (#10 item 5), and a rejected-token report from a
//! process without a cached token (#10 item 6).

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use wx_fake::FakeConfig;
use wx_token::ffi::*;

fn file_options(s: &Setup, dir: &Path) -> String {
    s.options(&format!(
        r#""store":"file:{}","endpoint":"classic""#,
        dir.display()
    ))
}

fn record_path(dir: &Path, appid: &str) -> PathBuf {
    dir.join(format!("wx_token_{appid}.json"))
}

/// What `get` hands out is the fake's current token, and it works at the business API.
fn assert_serves_a_real_token(s: &Setup) {
    let t = get(&s.appid).unwrap();
    assert_eq!(t, s.fake.current_token(&s.appid).unwrap());
    assert!(valid_via_http(&s.fake.base_url(), &t));
}

#[test]
fn a_planted_temp_file_symlink_is_never_followed() {
    let s = Setup::new("tmplink", FakeConfig::default());
    let dir = tmpdir("tmplink");
    let victim = tmpdir("victim").join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    // The temp name the store used to write through (`….json.tmp.<pid>`), planted in advance.
    let tmp = dir.join(format!(
        "wx_token_{}.json.tmp.{}",
        s.appid,
        std::process::id()
    ));
    symlink(&victim, &tmp).unwrap();
    register(&s.appid, &s.secret, Some(&file_options(&s, &dir))).unwrap();
    assert_serves_a_real_token(&s);
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
}

#[test]
fn a_pre_created_world_readable_temp_file_never_receives_the_token() {
    use std::io::Read;
    let s = Setup::new("tmpfile", FakeConfig::default());
    let dir = tmpdir("tmpfile");
    let tmp = dir.join(format!(
        "wx_token_{}.json.tmp.{}",
        s.appid,
        std::process::id()
    ));
    std::fs::write(&tmp, b"").unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o666)).unwrap();
    // The attacker keeps the planted file open, to read whatever is written into it later.
    let mut planted = std::fs::File::open(&tmp).unwrap();
    register(&s.appid, &s.secret, Some(&file_options(&s, &dir))).unwrap();
    assert_serves_a_real_token(&s);
    let mut leaked = String::new();
    planted.read_to_string(&mut leaked).unwrap();
    assert_eq!(leaked, "", "the token never lands in a planted file");
    let record = std::fs::metadata(record_path(&dir, &s.appid)).unwrap();
    assert_eq!(record.permissions().mode() & 0o777, 0o600);
}

#[test]
fn a_planted_record_symlink_is_refused_and_replaced() {
    let s = Setup::new("reclink", FakeConfig::default());
    let dir = tmpdir("reclink");
    let evil = tmpdir("evil").join("record");
    let forged = serde_json::json!({"v":1,"appid":s.appid,"access_token":"EVIL","generation":1,
        "fetched_at_ms":0u64,"expires_at_ms":u64::MAX,"invalidated":false});
    std::fs::write(&evil, forged.to_string()).unwrap();
    symlink(&evil, record_path(&dir, &s.appid)).unwrap();
    register(&s.appid, &s.secret, Some(&file_options(&s, &dir))).unwrap();
    assert_serves_a_real_token(&s);
    assert!(
        std::fs::read_to_string(&evil).unwrap().contains("EVIL"),
        "target untouched"
    );
    assert!(
        !std::fs::symlink_metadata(record_path(&dir, &s.appid))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn a_planted_lock_symlink_is_refused_without_fetching() {
    let s = Setup::new("locklink", FakeConfig::default());
    let dir = tmpdir("locklink");
    let victim = tmpdir("lockvictim").join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    symlink(&victim, dir.join(format!("wx_token_{}.lock", s.appid))).unwrap();
    register(&s.appid, &s.secret, Some(&file_options(&s, &dir))).unwrap();
    let e = get(&s.appid).unwrap_err();
    assert_eq!(e.status, WX_STORE, "{e:?}");
    assert_eq!(s.fetches(), 0);
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
}

#[test]
fn an_open_or_foreign_store_directory_is_refused_at_register() {
    let appid = unique_appid("opendir");
    let dir = tmpdir("opendir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let opts = format!(r#"{{"store":"file:{}"}}"#, dir.display());
    let e = register(&appid, "s", Some(&opts)).unwrap_err();
    assert_eq!(e.status, WX_INVALID_ARGUMENT, "{e:?}");
    assert!(
        e.message.contains("777") && e.message.contains("chmod"),
        "{}",
        e.message
    );
    // Owned by another user (needs root to arrange): refused however private its mode.
    let foreign = tmpdir("foreign");
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).unwrap();
        assert_eq!(std::fs::metadata(&foreign).unwrap().uid(), 65534);
        let opts = format!(r#"{{"store":"file:{}"}}"#, foreign.display());
        let e = register(&appid, "s", Some(&opts)).unwrap_err();
        assert_eq!(e.status, WX_INVALID_ARGUMENT, "{e:?}");
        assert!(e.message.contains("owned by uid 65534"), "{}", e.message);
    } else {
        eprintln!("not root: the foreign-owner case is skipped");
    }
}

/// A small tmpfs (mode 0700) mounted on a fresh directory; `None` (with the reason printed)
/// where this machine does not allow mounting.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(tag: &str, opts: &str) -> Option<Tmpfs> {
        let dir = tmpdir(tag);
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("mode=0700,{opts}"), "tmpfs"])
            .arg(&dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): skipped");
            return None;
        }
        Some(Tmpfs(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Three processes, a store they cannot write: nobody fetches (each fetch would end the
/// others' tokens, and none could be shared), every caller is told WX_STORE.
fn unwritable_store(s: &Setup, dir: &Path) {
    let options = file_options(s, dir);
    let go = tmpdir("unwritable").join("go");
    std::fs::write(&go, b"go").unwrap();
    let peers: Vec<_> = (0..3)
        .map(|_| {
            Command::new(peer_bin())
                .args(s.peer_args(&options))
                .args(["--serve-ms", "3000", "--check", &s.fake.base_url()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for p in peers {
        let out = p.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("err STORE") && !text.contains("tok "),
            "{text}"
        );
    }
    assert_eq!(s.fetches(), 0);
}

#[test]
fn a_read_only_store_directory_makes_no_fetch() {
    let Some(fs) = Tmpfs::mount("rofs", "ro,size=64k") else {
        return;
    };
    let s = Setup::new("rodir", FakeConfig::default());
    unwritable_store(&s, &fs.0);
}

#[test]
fn a_full_store_directory_makes_no_fetch() {
    let Some(fs) = Tmpfs::mount("fullfs", "size=16k") else {
        return;
    };
    // Fill it: every block taken, inodes still free (so files can be created, not written).
    let mut filler = std::fs::File::create(fs.0.join("filler")).unwrap();
    let chunk = [0u8; 1024];
    while std::io::Write::write_all(&mut filler, &chunk).is_ok() {}
    let s = Setup::new("fulldir", FakeConfig::default());
    unwritable_store(&s, &fs.0);
}

/// Records of every kind of garbage: refused, never handed out, replaced under the lease by
/// one fetch with a sane generation.
fn garbage_kinds(now_ms: u64) -> Vec<(&'static str, String, u64, u64, u64)> {
    let t = "tok".to_owned();
    vec![
        (
            "10000-byte token",
            "a".repeat(10_000),
            1,
            now_ms,
            now_ms + 7_200_000,
        ),
        ("empty token", String::new(), 1, now_ms, now_ms + 7_200_000),
        (
            "CR/LF in token",
            "ab\r\nX-Evil: 1".to_owned(),
            1,
            now_ms,
            now_ms + 7_200_000,
        ),
        ("never expires", t.clone(), 1, now_ms, u64::MAX),
        (
            "generation u64::MAX",
            t.clone(),
            u64::MAX,
            now_ms,
            now_ms + 7_200_000,
        ),
        (
            "fetched an hour in the future",
            t,
            1,
            now_ms + 3_600_000,
            now_ms + 10_800_000,
        ),
    ]
}

#[test]
fn garbage_file_records_are_refused_and_replaced() {
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    let now = ts.tv_sec as u64 * 1000;
    for (what, token, generation, fetched, expires) in garbage_kinds(now) {
        let s = Setup::new("filegarbage", FakeConfig::default());
        let dir = tmpdir("filegarbage");
        let rec = serde_json::json!({"v":2,"appid":s.appid,"access_token":token,
            "generation":generation,"boot_id":boot_id.trim(),"fetched_at_boot_ms":fetched,
            "expires_at_boot_ms":expires,"invalidated":false});
        std::fs::write(record_path(&dir, &s.appid), rec.to_string()).unwrap();
        register(&s.appid, &s.secret, Some(&file_options(&s, &dir))).unwrap();
        assert_serves_a_real_token(&s);
        assert_eq!(s.fetches(), 1, "{what}");
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(record_path(&dir, &s.appid)).unwrap()).unwrap();
        let expect = if generation == u64::MAX {
            1
        } else {
            generation + 1
        };
        assert_eq!(v["generation"], expect, "{what}");
        assert_eq!(
            wx_token::stats(&s.appid).unwrap().store_records_rejected,
            1,
            "{what}"
        );
    }
}

#[test]
fn garbage_redis_records_are_refused_and_replaced() {
    let Some(redis) = RedisServer::start() else {
        return eprintln!("redis-server not installed: skipped");
    };
    let time = redis.cli(&["TIME"]).unwrap();
    let now = time.lines().next().unwrap().trim().parse::<u64>().unwrap() * 1000;
    let mut kinds = garbage_kinds(now);
    kinds.push(("not a hash", String::new(), 0, 0, 0));
    for (what, token, generation, fetched, expires) in kinds {
        let s = Setup::new("redisgarbage", FakeConfig::default());
        let key = format!("wx_token:{{{}}}", s.appid);
        if what == "not a hash" {
            redis.cli(&["SET", &key, "garbage"]).unwrap();
        } else {
            let (g, f, e) = (
                generation.to_string(),
                fetched.to_string(),
                expires.to_string(),
            );
            redis
                .cli(&[
                    "HSET",
                    &key,
                    "access_token",
                    &token,
                    "generation",
                    &g,
                    "fetched_at_ms",
                    &f,
                    "expires_at_ms",
                    &e,
                    "invalidated",
                    "0",
                ])
                .unwrap();
        }
        s.register(&format!(
            r#""store":"{}","endpoint":"classic""#,
            redis.url()
        ));
        assert_serves_a_real_token(&s);
        assert_eq!(s.fetches(), 1, "{what}");
        let expect = if matches!(generation, 0 | u64::MAX) {
            1
        } else {
            generation + 1
        };
        assert_eq!(
            redis.cli(&["HGET", &key, "generation"]).unwrap().trim(),
            expect.to_string(),
            "{what}"
        );
    }
}

/// A worker restarted between using T and learning WeChat rejected it: its report, with no
/// token cached, still replaces T in the store (once).
#[test]
fn a_report_without_a_cached_token_is_judged_against_the_store() {
    let s = Setup::new("coldreport", FakeConfig::default());
    let dir = tmpdir("coldreport");
    let options = file_options(&s, &dir);
    // Another process fetches T1 and publishes it.
    let go = tmpdir("coldreport-go").join("go");
    std::fs::write(&go, b"go").unwrap();
    let out = Command::new(peer_bin())
        .args(s.peer_args(&options))
        .arg("--go-file")
        .arg(&go)
        .output()
        .unwrap();
    assert!(out.status.success());
    let t1 = s.fake.current_token(&s.appid).unwrap();
    register(&s.appid, &s.secret, Some(&options)).unwrap();
    invalidate(&s.appid, Some(&t1)).unwrap();
    let t2 = get(&s.appid).unwrap();
    assert_ne!(t1, t2);
    assert_eq!(s.fetches(), 2);
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(record_path(&dir, &s.appid)).unwrap()).unwrap();
    assert_eq!(v["generation"], 2);
    // A report of a token that is not the store's does nothing.
    invalidate(&s.appid, Some("someone-elses-token")).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(s.fetches(), 2);
}

/// A Redis user that may not run scripts (#10 item 3): nothing is fetched that could not be
/// published; with the ACL line docs/STORES.md gives, the store works.
#[test]
fn a_redis_user_without_scripts_fetches_nothing_and_the_documented_acl_works() {
    let Some(redis) = RedisServer::start() else {
        return eprintln!("redis-server not installed: skipped");
    };
    let acl = |line: &str| {
        let args: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(redis.cli(&args).unwrap().trim(), "OK", "{line}");
    };
    acl(
        "ACL SETUSER noscripts on >pw1 resetkeys ~wx_token:* resetchannels -@all +ping +set +get +del +type +time +hget +hset +hgetall +pexpire",
    );
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/STORES.md")).unwrap();
    let documented = docs
        .lines()
        .find(|l| l.starts_with("ACL SETUSER wxtoken"))
        .expect("docs/STORES.md gives an ACL line")
        .replace("PASSWORD", "pw2");
    acl(&documented);

    let s = Setup::new("noscripts", FakeConfig::default());
    let url = |user: &str, pw: &str| format!("redis://{user}:{pw}@127.0.0.1:{}/0", redis.port);
    s.register(&format!(
        r#""store":"{}","endpoint":"classic""#,
        url("noscripts", "pw1")
    ));
    for _ in 0..3 {
        assert_eq!(get(&s.appid).unwrap_err().status, WX_STORE);
        std::thread::sleep(Duration::from_millis(60));
    }
    assert_eq!(s.fetches(), 0, "no token fetched that could not be shared");
    assert!(wx_token::stats(&s.appid).unwrap().store_failures >= 1);

    let s = Setup::new("aclok", FakeConfig::default());
    s.register(&format!(
        r#""store":"{}","endpoint":"classic""#,
        url("wxtoken", "pw2")
    ));
    assert_serves_a_real_token(&s);
    assert_one_fetch_recorded(&s.appid, |args| redis.cli(args));
    let key = format!("wx_token:{{{}}}", s.appid);
    // The fleet's pace of passive refreshes works with exactly these rights too.
    let t = get(&s.appid).unwrap();
    invalidate(&s.appid, Some(&t)).unwrap();
    assert_ne!(get(&s.appid).unwrap(), t);
    assert_eq!(
        redis
            .cli(&["EXISTS", &format!("{key}:passive")])
            .unwrap()
            .trim(),
        "1"
    );
}
