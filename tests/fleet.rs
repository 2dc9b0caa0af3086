//! A fleet of real processes (examples/store_peer in serving mode) sharing a real redis-server
//! through fault-injecting proxies, against the fake WeChat with 20 s tokens. Every token a
//! process serves is used at the fake's business API; a call answered 40001/42001 means a
//! token was ended under someone (or served past its life). Scenarios run in parallel.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::proxy::Proxy;
use common::*;
use wx_fake::FakeConfig;

/// 20 s tokens, refreshed 8 s ahead: fetches at 0, 12, 24... s in steady state. The terminal
/// error cooldown is the default 30 s, so a store failure mistaken for a terminal one shows.
const LIFETIME: u64 = 20;

fn setup(tag: &str) -> Setup {
    Setup::new(
        tag,
        FakeConfig {
            lifetime_secs: LIFETIME,
            ..FakeConfig::default()
        },
    )
}

fn options(s: &Setup, store: &str) -> String {
    s.options(&format!(
        r#""store":"{store}","endpoint":"classic","refresh_ahead_secs":8,"store_sync_ms":1000,"timeout_ms":1000,"error_cooldown_ms":30000"#
    ))
}

/// What one serving peer saw.
struct Seen {
    /// (ms since its start, "tok <fp>" | "err <STATUS>")
    changes: Vec<(u64, String)>,
    rejected: usize,
    calls: u64,
}

impl Seen {
    fn last_token(&self) -> Option<&str> {
        self.changes
            .last()
            .and_then(|(_, s)| s.strip_prefix("tok "))
    }
    fn errors(&self) -> Vec<&(u64, String)> {
        self.changes
            .iter()
            .filter(|(_, s)| s.starts_with("err"))
            .collect()
    }
}

fn serve(s: &Setup, options: &str, ms: u64, env: &[(&str, &str)]) -> Child {
    Command::new(peer_bin())
        .args(s.peer_args(options))
        .args(["--serve-ms", &ms.to_string(), "--check", &s.fake.base_url()])
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("store_peer starts")
}

fn collect(c: Child) -> Seen {
    let out = c.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("done "),
        "peer: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut seen = Seen {
        changes: Vec::new(),
        rejected: 0,
        calls: 0,
    };
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("done ") {
            seen.calls = n.parse().unwrap();
        } else if let Some((t, what)) = line.split_once(' ') {
            if what.starts_with("rejected") {
                seen.rejected += 1;
            } else {
                seen.changes.push((t.parse().unwrap(), what.to_owned()));
            }
        }
    }
    seen
}

fn current(s: &Setup) -> String {
    fingerprint(&s.fake.current_token(&s.appid).unwrap())
}

fn sleep_until(start: Instant, secs: f64) {
    let at = start + Duration::from_secs_f64(secs);
    std::thread::sleep(at.saturating_duration_since(Instant::now()));
}

fn redis_or_skip() -> Option<RedisServer> {
    let r = RedisServer::start();
    if r.is_none() {
        eprintln!("redis-server not installed: skipped");
    }
    r
}

#[test]
fn steady_state_is_one_fetch_per_refresh_for_the_fleet() {
    let Some(redis) = redis_or_skip() else { return };
    let s = setup("steady");
    let o = options(&s, &redis.url());
    let peers: Vec<Child> = (0..3).map(|_| serve(&s, &o, 30_000, &[])).collect();
    let seen: Vec<Seen> = peers.into_iter().map(collect).collect();
    assert!(
        seen.iter()
            .all(|p| p.rejected == 0 && p.errors().is_empty())
    );
    assert_eq!(s.fetches(), 3, "fetches at 0, 12 and 24 s for 3 processes");
    assert!(
        seen.iter()
            .all(|p| p.last_token() == Some(current(&s).as_str()))
    );
}

/// Group B is cut from Redis (blackholed) for longer than a token's life, then healed.
#[test]
fn a_partitioned_group_never_ends_the_connected_groups_token() {
    let Some(redis) = redis_or_skip() else { return };
    let s = setup("partition");
    let (pa, pb) = (Proxy::start(redis.port), Proxy::start(redis.port));
    let start = Instant::now();
    let a: Vec<Child> = (0..2)
        .map(|_| serve(&s, &options(&s, &pa.url()), 33_000, &[]))
        .collect();
    let b: Vec<Child> = (0..2)
        .map(|_| serve(&s, &options(&s, &pb.url()), 33_000, &[]))
        .collect();
    sleep_until(start, 3.0);
    pb.blackhole();
    sleep_until(start, 28.0);
    pb.heal();
    let heal_ms = start.elapsed().as_millis() as u64;
    let a: Vec<Seen> = a.into_iter().map(collect).collect();
    let b: Vec<Seen> = b.into_iter().map(collect).collect();
    for p in &a {
        assert_eq!(p.rejected, 0, "the connected group's tokens stay valid");
        assert!(p.errors().is_empty(), "{:?}", p.changes);
    }
    // The documented bound for a partition: no fetch beyond the connected group's own
    // refreshes (0, 12, 24 s).
    assert_eq!(s.fetches(), 3);
    for p in &b {
        assert_eq!(p.rejected, 0, "the cut group never serves an ended token");
        // Back on the store's token within one sync (1 s, plus a backoff step) of the heal.
        let back = p
            .changes
            .iter()
            .find(|(t, w)| *t + 500 >= heal_ms && w.starts_with("tok"))
            .expect("back on a token after the heal");
        assert!(
            back.0 <= heal_ms + 2_500,
            "{:?} heal at {heal_ms}",
            p.changes
        );
        assert_eq!(p.last_token(), Some(current(&s).as_str()));
    }
}

/// The whole fleet is cut across a refresh point, for less than a token's life.
#[test]
fn a_short_cut_of_the_whole_fleet_costs_nothing() {
    let Some(redis) = redis_or_skip() else { return };
    let s = setup("shortcut");
    let p = Proxy::start(redis.port);
    let start = Instant::now();
    let peers: Vec<Child> = (0..3)
        .map(|_| serve(&s, &options(&s, &p.url()), 26_000, &[]))
        .collect();
    sleep_until(start, 8.0);
    p.refuse();
    sleep_until(start, 15.0);
    p.heal();
    let seen: Vec<Seen> = peers.into_iter().map(collect).collect();
    for p in &seen {
        assert_eq!(p.rejected, 0);
        assert!(
            p.errors().is_empty(),
            "valid tokens served throughout: {:?}",
            p.changes
        );
    }
    // The refresh due at 12 s happens right after the heal, ahead of expiry (20 s), once.
    assert_eq!(s.fetches(), 2);
    for p in &seen {
        let second = p
            .changes
            .iter()
            .filter(|(_, w)| w.starts_with("tok"))
            .nth(1);
        assert!(
            second.is_some_and(|(t, _)| *t < 19_000),
            "refreshed ahead, not at expiry: {:?}",
            p.changes
        );
    }
    assert!(
        seen.iter()
            .all(|p| p.last_token() == Some(current(&s).as_str()))
    );
}

/// The whole fleet is cut for longer than a token's life: no fetch while cut (each would end
/// the others' tokens), callers told WX_STORE after expiry, one fetch after the heal.
#[test]
fn a_long_cut_of_the_whole_fleet_fails_clearly_and_recovers_with_one_fetch() {
    let Some(redis) = redis_or_skip() else { return };
    let s = setup("longcut");
    let p = Proxy::start(redis.port);
    let start = Instant::now();
    let peers: Vec<Child> = (0..3)
        .map(|_| serve(&s, &options(&s, &p.url()), 30_000, &[]))
        .collect();
    sleep_until(start, 3.0);
    p.blackhole();
    sleep_until(start, 24.0);
    assert_eq!(s.fetches(), 1, "nobody fetches blind");
    p.heal();
    let seen: Vec<Seen> = peers.into_iter().map(collect).collect();
    for p in &seen {
        assert_eq!(p.rejected, 0);
        assert!(
            p.errors().iter().all(|(_, e)| e == "err STORE"),
            "{:?}",
            p.changes
        );
        assert_eq!(p.last_token(), Some(current(&s).as_str()));
    }
    assert_eq!(s.fetches(), 2);
}

/// Redis restarts empty while every process holds a valid token: it is republished.
#[test]
fn an_emptied_store_gets_the_valid_token_republished_not_a_new_fetch() {
    let Some(mut redis) = redis_or_skip() else {
        return;
    };
    let s = setup("emptied");
    let o = options(&s, &redis.url());
    let start = Instant::now();
    let peers: Vec<Child> = (0..3).map(|_| serve(&s, &o, 9_000, &[])).collect();
    sleep_until(start, 3.0);
    redis.restart();
    let seen: Vec<Seen> = peers.into_iter().map(collect).collect();
    assert!(
        seen.iter()
            .all(|p| p.rejected == 0 && p.errors().is_empty())
    );
    assert_eq!(s.fetches(), 1, "republished, not fetched again");
    let key = format!("wx_token:{{{}}}", s.appid);
    let token = redis.cli(&["HGET", &key, "access_token"]).unwrap();
    assert_eq!(fingerprint(token.trim()), current(&s));
}

/// A short-lived process whose wall clock is an hour ahead fetches and publishes the first
/// token, then one an hour behind and one with a true clock serve (CLOCK_REALTIME only is
/// moved): nobody serves a token past its life, refreshes happen on time, nobody fetches extra.
fn skewed_clocks(store: &str, s: &Setup) {
    let Some(lib) = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists()) else {
        return eprintln!("libfaketime not installed (scripts/install-deps.sh): skipped");
    };
    let o = options(s, store);
    let env = |off| {
        vec![
            ("LD_PRELOAD", lib),
            ("FAKETIME", off),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ]
    };
    let ahead = collect(serve(s, &o, 1_500, &env("+1h")));
    assert_eq!(s.fetches(), 1);
    let behind = serve(s, &o, 29_000, &env("-1h"));
    let plain = serve(s, &o, 29_000, &[]);
    let seen: Vec<Seen> = [behind, plain].into_iter().map(collect).collect();
    for p in seen.iter().chain([&ahead]) {
        assert_eq!(
            p.rejected, 0,
            "a token served past its life: {:?}",
            p.changes
        );
        assert!(p.errors().is_empty(), "{:?}", p.changes);
    }
    assert_eq!(
        s.fetches(),
        3,
        "refreshes at 12 and 24 s, as with true clocks"
    );
    assert!(
        seen.iter()
            .all(|p| p.last_token() == Some(current(s).as_str()))
    );
}

#[test]
fn clock_skew_redis() {
    let Some(redis) = redis_or_skip() else { return };
    let s = setup("skewredis");
    skewed_clocks(&redis.url(), &s);
}

#[test]
fn clock_skew_file() {
    let s = setup("skewfile");
    skewed_clocks(&format!("file:{}", tmpdir("skew").display()), &s);
}

/// A slow link (150 ms each way) whose connections are dropped every 2 s: some store calls
/// fail, but nobody fetches twice, and no token in service is ever ended.
#[test]
fn a_slow_link_that_drops_connections_costs_no_extra_fetch() {
    let Some(redis) = redis_or_skip() else { return };
    let s = setup("lossy");
    let p = Proxy::start(redis.port);
    let o = options(&s, &p.url());
    // The fleet starts on a good link (a process without a token does not fetch blind).
    let peers: Vec<Child> = (0..3).map(|_| serve(&s, &o, 16_000, &[])).collect();
    std::thread::sleep(Duration::from_secs(2));
    p.delay(150);
    for _ in 0..7 {
        std::thread::sleep(Duration::from_secs(2));
        p.drop_connections();
    }
    let seen: Vec<Seen> = peers.into_iter().map(collect).collect();
    for p in &seen {
        assert_eq!(p.rejected, 0);
        assert!(p.errors().is_empty(), "{:?}", p.changes);
    }
    assert_eq!(s.fetches(), 2, "the start, and the refresh at 12 s");
    assert!(
        seen.iter()
            .all(|p| p.last_token() == Some(current(&s).as_str()))
    );
}
