//! Shared stores across real processes: examples/store_peer processes, a real redis-server,
//! real files and flocks, against the fake WeChat.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use wx_fake::{FakeConfig, Fault, FaultKind};
use wx_token::ffi::*;

/// store_peer's arguments for this setup (all but `--go-file`).
fn peer_args<'a>(
    s: &'a Setup,
    options: &'a str,
    threads: &'a str,
    report_rejected: bool,
) -> Vec<&'a str> {
    let mut args = s.peer_args(options);
    args.extend(["--threads", threads]);
    if report_rejected {
        args.push("--report-rejected");
    }
    args
}

fn spawn_peer(
    s: &Setup,
    options: &str,
    threads: usize,
    go: &PathBuf,
    report_rejected: bool,
) -> Child {
    Command::new(peer_bin())
        .args(peer_args(s, options, &threads.to_string(), report_rejected))
        .arg("--go-file")
        .arg(go)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("store_peer starts")
}

/// Starts `procs` peers, lets them go at once, and returns every fingerprint they printed.
fn fleet(
    s: &Setup,
    options: &str,
    procs: usize,
    threads: usize,
    report_rejected: bool,
) -> Vec<String> {
    let threads_arg = threads.to_string();
    let args = peer_args(s, options, &threads_arg, report_rejected);
    // 300 ms: every peer registered and waiting.
    let seen = peer_fleet(procs, &args, Duration::from_millis(300)).concat();
    assert_eq!(seen.len(), procs * threads);
    seen
}

fn cold_start(s: &Setup, store: &str) {
    s.fake.set_delay_ms(300); // the first fetch is in flight while the whole fleet asks
    let options = s.options(&format!(r#""store":"{store}","endpoint":"classic""#));
    let seen = fleet(s, &options, 10, 4, false);
    assert!(
        seen.iter().all(|t| *t == seen[0]),
        "one token for the whole fleet"
    );
    assert_eq!(
        s.fetches(),
        1,
        "one upstream fetch for 10 processes x 4 threads"
    );
    assert_eq!(
        seen[0],
        fingerprint(&s.fake.current_token(&s.appid).unwrap())
    );
}

fn invalidation_storm(s: &Setup, store: &str) {
    let options = s.options(&format!(r#""store":"{store}","endpoint":"classic""#));
    // This process fetches first and publishes to the store.
    register(&s.appid, &s.secret, Some(&options)).unwrap();
    let t1 = get(&s.appid).unwrap();
    s.fake.set_delay_ms(200);
    // Every peer reads t1 from the store, then all report it rejected at once.
    let seen = fleet(s, &options, 6, 4, true);
    assert!(
        seen.iter().all(|t| *t == seen[0] && *t != fingerprint(&t1)),
        "{seen:?}"
    );
    assert_eq!(
        s.fetches(),
        2,
        "the first fetch, then one for the whole fleet's invalidations"
    );
}

#[test]
fn file_store_cold_start_across_processes() {
    let s = Setup::new("filecold", FakeConfig::default());
    cold_start(&s, &format!("file:{}", tmpdir("filecold").display()));
}

#[test]
fn file_store_invalidation_storm_across_processes() {
    let s = Setup::new("filestorm", FakeConfig::default());
    let dir = tmpdir("filestorm");
    invalidation_storm(&s, &format!("file:{}", dir.display()));
    // What is stored: a small JSON record, 0600, without the secret.
    let record = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    let meta = std::fs::metadata(&record).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&record).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["generation"], 2);
    assert_eq!(v["appid"], s.appid.as_str());
    assert!(!text.contains(&s.secret) && !text.contains("s3cret"));
}

#[test]
fn redis_store_cold_start_across_processes() {
    let Some(redis) = RedisServer::start() else {
        return eprintln!("redis-server not installed: skipped");
    };
    let s = Setup::new("rediscold", FakeConfig::default());
    cold_start(&s, &redis.url());
}

#[test]
fn redis_store_invalidation_storm_across_processes() {
    let Some(redis) = RedisServer::start() else {
        return eprintln!("redis-server not installed: skipped");
    };
    let s = Setup::new("redisstorm", FakeConfig::default());
    invalidation_storm(&s, &redis.url());
    let key = format!("wx_token:{{{}}}", s.appid);
    assert_eq!(
        redis.cli(&["HGET", &key, "generation"]).unwrap().trim(),
        "2"
    );
    let all = redis.cli(&["HGETALL", &key]).unwrap();
    assert!(!all.contains(&s.secret) && !all.contains("s3cret"), "{all}");
    assert!(
        redis
            .cli(&["EXISTS", &format!("{key}:lease")])
            .unwrap()
            .trim()
            == "0",
        "lease released"
    );
}

fn lease_holder_killed(s: &Setup, store: &str) {
    let options = s.options(&format!(
        r#""store":"{store}","endpoint":"classic","lease_ms":1500,"timeout_ms":8000"#
    ));
    s.fake
        .push_fault(Fault::new(FaultKind::Slow).with_delay_ms(6000));
    let go = tmpdir("kill").join("go");
    std::fs::write(&go, b"go").unwrap();
    let mut holder = spawn_peer(s, &options, 1, &go, false);
    assert!(
        s.fake
            .wait_until(Duration::from_secs(10), |st| st.token_endpoint_requests()
                >= 1),
        "the holder is fetching"
    );
    holder.kill().unwrap(); // SIGKILL, mid-refresh, lease held
    holder.wait().unwrap();
    // Another process takes over within the lease's lifetime, long before the token would
    // have expired; its own wait is bounded by lease + timeout.
    let seen = fleet(s, &options, 1, 1, false);
    assert_eq!(
        seen[0],
        fingerprint(&s.fake.current_token(&s.appid).unwrap())
    );
    assert_eq!(s.fetches(), 2);
}

#[test]
fn file_store_lease_holder_killed_mid_refresh_is_replaced() {
    let s = Setup::new("filekill", FakeConfig::default());
    let dir = tmpdir("filekill");
    lease_holder_killed(&s, &format!("file:{}", dir.display()));
    // The dead holder's temp file was cleaned up by the next holder.
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp."))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn redis_store_lease_holder_killed_mid_refresh_is_replaced() {
    let Some(redis) = RedisServer::start() else {
        return eprintln!("redis-server not installed: skipped");
    };
    let s = Setup::new("rediskill", FakeConfig::default());
    lease_holder_killed(&s, &redis.url());
}

#[test]
fn redis_outage_serves_valid_tokens_never_fetches_blind_with_classic_and_recovers() {
    let Some(mut redis) = RedisServer::start() else {
        return eprintln!("redis-server not installed: skipped");
    };
    let s = Setup::new("outage", FakeConfig::default());
    let events = record_events(&s.appid, "store_");
    s.register(&format!(
        r#""store":"{}","endpoint":"classic","timeout_ms":500,"store_sync_ms":100"#,
        redis.url()
    ));
    let t1 = get(&s.appid).unwrap();
    redis.stop();
    // A valid token keeps being served, store syncs failing in the background meanwhile.
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(get(&s.appid).unwrap(), t1);
    // Without a valid token, no direct fetch: with the classic endpoint it would end the
    // token every other process of the fleet is using.
    let e = invalidate(&s.appid, Some(&t1)).unwrap_err();
    assert_eq!(e.status, WX_STORE, "{e:?}");
    assert!(e.message.contains("not fetching directly"), "{}", e.message);
    for _ in 0..50 {
        assert_eq!(get(&s.appid).unwrap_err().status, WX_STORE);
    }
    assert_eq!(
        s.fetches(),
        1,
        "no quota burnt, no token ended during the outage"
    );
    let stats = wx_token::stats(&s.appid).unwrap();
    assert!(stats.store_failures >= 1, "{stats:?}");
    // Redis comes back (empty): the engine recovers by itself, through the store, at once.
    redis.restart();
    assert!(eventually(2, || get(&s.appid).is_ok()), "recovered");
    assert_eq!(s.fetches(), 2);
    let key = format!("wx_token:{{{}}}", s.appid);
    assert!(eventually(2, || redis
        .cli(&["HGET", &key, "generation"])
        .is_some_and(|g| g.trim() == "1")));
    // Operators heard of it once, and of its end.
    assert_eq!(
        *events.lock().unwrap(),
        ["store_unavailable", "store_recovered"]
    );
}

/// The kinds of the events emitted for `appid`, from now on.
fn record_events(
    appid: &str,
    kinds: &'static str,
) -> std::sync::Arc<std::sync::Mutex<Vec<&'static str>>> {
    use wx_token::events::{Event, Level, set_sink};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (app, sink_seen) = (appid.to_owned(), seen.clone());
    set_sink(
        Some(Box::new(move |e: &Event<'_>| {
            // Only the kinds asked for (the store's own, say: fetches and refreshes are told by
            // their own kinds).
            if e.app == app && e.kind.starts_with(kinds) {
                sink_seen.lock().unwrap().push(e.kind);
            }
        })),
        Level::Info,
    );
    seen
}

#[test]
fn stable_fallback_is_normal_mode_only_and_within_the_hosts_budget() {
    let Some(mut redis) = RedisServer::start() else {
        return eprintln!("redis-server not installed: skipped");
    };
    let s = Setup::new("stablefb", FakeConfig::default());
    redis.stop();
    let options = s.options(&format!(
        r#""store":"{}","endpoint":"stable","timeout_ms":500,"store_fallback_per_hour":1"#,
        redis.url()
    ));
    // Two processes of this host without a token: one direct fetch between them, never a
    // forced refresh (which would end the token the rest of the fleet uses).
    register(&s.appid, &s.secret, Some(&options)).unwrap();
    let t = get(&s.appid).unwrap();
    let go = tmpdir("stablefb").join("go");
    std::fs::write(&go, b"go").unwrap();
    let out = spawn_peer(&s, &options, 1, &go, false)
        .wait_with_output()
        .unwrap();
    assert!(
        !out.status.success(),
        "the second process finds the host's budget spent"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("budget"));
    let e = invalidate(&s.appid, Some(&t)).unwrap_err();
    assert_eq!(e.status, WX_STORE, "{e:?}");
    let st = s.fake.app_stats(&s.appid);
    assert_eq!((st.stable_requests, st.force_requests), (1, 0));
    assert_eq!(wx_token::stats(&s.appid).unwrap().fallback_fetches, 1);
}

#[test]
fn store_sync_picks_up_a_token_published_by_another_process() {
    let s = Setup::new("sync", FakeConfig::default());
    let dir = tmpdir("sync");
    let options = s.options(&format!(
        r#""store":"file:{}","endpoint":"classic","store_sync_ms":100"#,
        dir.display()
    ));
    register(&s.appid, &s.secret, Some(&options)).unwrap();
    let t1 = get(&s.appid).unwrap();
    // Another process reports t1 rejected and publishes t2; this process follows within the
    // sync interval without being told, and without fetching.
    let seen = fleet(&s, &options, 1, 1, true);
    assert!(eventually(3, || fingerprint(&get(&s.appid).unwrap()) == seen[0]));
    assert_ne!(get(&s.appid).unwrap(), t1);
    assert_eq!(s.fetches(), 2);
    let stats = wx_token::stats(&s.appid).unwrap();
    assert_eq!(stats.fetches, 1, "this process fetched t1 only");
    assert!(stats.tokens_from_store >= 1, "{stats:?}");
}

#[test]
fn redis_store_refresh_ahead_is_one_fetch_for_the_fleet() {
    let Some(redis) = RedisServer::start() else {
        return eprintln!("redis-server not installed: skipped");
    };
    let s = Setup::new(
        "redisahead",
        FakeConfig {
            lifetime_secs: 6,
            overlap_secs: 1,
            ..FakeConfig::default()
        },
    );
    let options = s.options(&format!(
        r#""store":"{}","endpoint":"classic","refresh_ahead_secs":3"#,
        redis.url()
    ));
    let mut args = vec!["--hold-ms", "4500"];
    args.extend(peer_args(&s, &options, "1", false));
    let last: Vec<String> = peer_fleet(5, &args, Duration::from_millis(300))
        .into_iter()
        .map(|lines| lines.last().unwrap().clone())
        .collect();
    // Five processes, each with its own refresher, crossed the refresh-ahead point once.
    assert_eq!(
        s.fetches(),
        2,
        "one fetch at start, one refresh for the whole fleet"
    );
    assert!(
        last.iter()
            .all(|t| *t == fingerprint(&s.fake.current_token(&s.appid).unwrap())),
        "{last:?}"
    );
}

#[test]
fn store_options_are_validated() {
    let appid = unique_appid("storeopts");
    for bad in [
        r#"{"store":"memcached://x"}"#,
        r#"{"store":"file:relative"}"#,
        r#"{"store":"redis://"}"#,
        r#"{"store_prefix":"x:"}"#,
        r#"{"store":"memory","store_prefix":"../x"}"#,
        r#"{"store":"memory","lease_ms":5}"#,
    ] {
        assert_eq!(
            register(&appid, "s", Some(bad)).unwrap_err().status,
            WX_INVALID_ARGUMENT,
            "{bad}"
        );
    }
    let e = register(
        &appid,
        "s",
        Some(r#"{"store":"redis://user:hunter2@127.0.0.1:1/0:bad"}"#),
    )
    .unwrap_err();
    assert!(!e.message.contains("hunter2"), "{}", e.message);
}

/// A caller whose token expired while a background refresh was stuck on an unreachable store
/// does not inherit that refresh's WX_STORE: it tries itself, with its own (host) fallback.
#[test]
fn a_caller_never_inherits_a_background_syncs_store_error() {
    let Some(redis) = RedisServer::start() else {
        return eprintln!("redis-server not installed: skipped");
    };
    let s = Setup::new(
        "inherit",
        FakeConfig {
            lifetime_secs: 4,
            ..FakeConfig::default()
        },
    );
    let proxy = common::proxy::Proxy::start(redis.port);
    s.register(&format!(
        r#""store":"{}","endpoint":"stable","refresh_ahead_secs":1,"store_sync_ms":60000,"timeout_ms":2500,"store_fallback_per_hour":1"#,
        proxy.url()
    ));
    let t1 = get(&s.appid).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    // The background refresh (due at 3 s) hangs on the store until 5.5 s; the token expires
    // at 4 s, and this caller joins the refresh in flight.
    proxy.blackhole();
    std::thread::sleep(Duration::from_millis(2300));
    let t = get(&s.appid).expect("served through the caller's own fallback");
    assert!(valid_via_http(&s.fake.base_url(), &t));
    let st = s.fake.app_stats(&s.appid);
    assert_eq!(
        (st.stable_requests, st.force_requests),
        (2, 0),
        "{t1} then one fallback"
    );
}

/// A lease lost mid-fetch (Redis restarted or failed over, or the holder stalled past
/// `lease_ms`) lets another process fetch and publish; the first one's publish is then refused.
/// It must serve the fleet's stored token, not its own: two tokens in service is what the
/// store exists to prevent. Before, the refusal went unnoticed and uncounted.
#[test]
fn a_refused_publish_serves_the_stored_token_not_a_second_one() {
    let Some(redis) = RedisServer::start() else {
        return eprintln!("redis-server not installed: skipped");
    };
    let s = Setup::new("refusedpub", FakeConfig::default());
    let options = s.options(&format!(
        r#""store":"{}","endpoint":"classic""#,
        redis.url()
    ));
    register(&s.appid, &s.secret, Some(&options)).unwrap();
    s.fake.push_fault(Fault::slow(1500)); // this process's fetch only
    let appid = s.appid.clone();
    let ours = std::thread::spawn(move || get(&appid));
    let lease = format!("wx_token:{{{}}}:lease", s.appid);
    assert!(
        eventually(2, || redis
            .cli(&["EXISTS", &lease])
            .is_some_and(|n| n.trim() == "1")),
        "this process holds the lease while its fetch is slow"
    );
    // The lease vanishes (as in a failover to a replica that never saw it); a peer takes it,
    // fetches and publishes while this process's fetch is still in flight.
    redis.cli(&["DEL", &lease]).unwrap();
    let go = tmpdir("refusedpub").join("go");
    std::fs::write(&go, b"go").unwrap();
    let peer = spawn_peer(&s, &options, 1, &go, false)
        .wait_with_output()
        .unwrap();
    assert!(
        peer.status.success(),
        "{}",
        String::from_utf8_lossy(&peer.stderr)
    );
    let theirs = String::from_utf8_lossy(&peer.stdout).trim().to_owned();
    let token = ours.join().unwrap().expect("this process gets a token");
    assert_eq!(s.fetches(), 2);
    assert_eq!(
        fingerprint(&token),
        theirs,
        "the fleet's token is served, not a second one"
    );
    let key = format!("wx_token:{{{}}}", s.appid);
    let stored = redis.cli(&["HGET", &key, "access_token"]).unwrap();
    assert_eq!(stored.trim(), token);
    let stats = wx_token::stats(&s.appid).unwrap();
    assert!(stats.store_publish_failures >= 1, "{stats:?}");
}

/// Processes that each report the fleet's current token in turn (a business API answering
/// 40001 for another reason in every worker) once made one fetch per process: the pace was per
/// process, so the fleet's bound grew with its size. The store now paces replacements for the
/// whole fleet (the spacing, and the daily number), the others told RATE_LIMITED with the
/// token still in service.
fn reports_in_turn(s: &Setup, store: &str, pace: &str, replacements: u64, why: &str) {
    let options = s.options(&format!(r#""store":"{store}","endpoint":"classic",{pace}"#));
    register(&s.appid, &s.secret, Some(&options)).unwrap();
    get(&s.appid).unwrap();
    let go = tmpdir("inturn").join("go");
    std::fs::write(&go, b"go").unwrap();
    let mut refused = 0;
    for _ in 0..5 {
        // Each peer gets the store's current token, then reports it rejected.
        let out = spawn_peer(s, &options, 1, &go, true)
            .wait_with_output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            assert!(err.contains("RATE_LIMITED"), "{err}");
            assert!(
                err.contains("for the whole fleet") && err.contains(why),
                "{err}"
            );
            refused += 1;
        }
    }
    assert_eq!(
        s.fetches(),
        1 + replacements,
        "the first fetch, then the fleet's replacements"
    );
    assert_eq!(refused, 5 - replacements);
    // What a fresh process takes from the store is WeChat's current token.
    let out = spawn_peer(s, &options, 1, &go, false)
        .wait_with_output()
        .unwrap();
    let stored = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(
        stored,
        fingerprint(&s.fake.current_token(&s.appid).unwrap())
    );
}

/// After `reports_in_turn` spent the fleet's daily number: this process, whose own budget is
/// untouched, takes the fleet's token for the one it reports, then is refused the next
/// replacement by the fleet's count, told like its own pace (`passive_refresh_limited`).
fn this_process_is_refused_by_the_fleets_count(s: &Setup) {
    let events = record_events(&s.appid, "passive_refresh_limited");
    let mine = get(&s.appid).unwrap();
    invalidate(&s.appid, Some(&mine)).unwrap();
    let fleets = get(&s.appid).unwrap();
    assert_ne!(fleets, mine, "the store's token, without a fetch");
    assert_eq!(s.fetches(), 3);
    let e = invalidate(&s.appid, Some(&fleets)).unwrap_err();
    assert_eq!(e.status, WX_RATE_LIMITED, "{e:?}");
    assert!(
        e.message.contains("passive_refresh_daily_limit"),
        "{}",
        e.message
    );
    assert_eq!(get(&s.appid).unwrap(), fleets, "the token stays in service");
    assert_eq!(s.fetches(), 3);
    assert_eq!(*events.lock().unwrap(), ["passive_refresh_limited"]);
}

const SPACED: &str = r#""passive_refresh_interval_secs":30"#;
const DAILY: &str = r#""passive_refresh_interval_secs":0,"passive_refresh_daily_limit":2"#;

#[test]
fn file_store_reports_in_turn_are_paced_for_the_fleet() {
    for (tag, pace, n, why) in [
        ("inturnfile", SPACED, 1, "passive_refresh_interval_secs"),
        ("dailyfile", DAILY, 2, "passive_refresh_daily_limit"),
    ] {
        let s = Setup::new(tag, FakeConfig::default());
        let store = format!("file:{}", tmpdir(tag).display());
        reports_in_turn(&s, &store, pace, n, why);
        if pace == DAILY {
            this_process_is_refused_by_the_fleets_count(&s);
        }
    }
}

#[test]
fn redis_store_reports_in_turn_are_paced_for_the_fleet() {
    let Some(redis) = RedisServer::start() else {
        return eprintln!("redis-server not installed: skipped");
    };
    for (tag, pace, n, why) in [
        ("inturnredis", SPACED, 1, "passive_refresh_interval_secs"),
        ("dailyredis", DAILY, 2, "passive_refresh_daily_limit"),
    ] {
        let s = Setup::new(tag, FakeConfig::default());
        reports_in_turn(&s, &redis.url(), pace, n, why);
        if pace == DAILY {
            this_process_is_refused_by_the_fleets_count(&s);
        }
    }
}

/// Redis loses the lease (and the record) while this process's fetch is in flight, and no one
/// else fetches: the refused publish is retried under a new lease, so the fleet finds the token
/// at once instead of an empty store (where a process without a token would fetch another).
#[test]
fn a_token_whose_publish_was_refused_is_shared_once_the_lease_is_free() {
    let Some(redis) = RedisServer::start() else {
        return eprintln!("redis-server not installed: skipped");
    };
    let s = Setup::new("sharedagain", FakeConfig::default());
    let options = s.options(&format!(
        r#""store":"{}","endpoint":"classic""#,
        redis.url()
    ));
    register(&s.appid, &s.secret, Some(&options)).unwrap();
    s.fake.push_fault(Fault::slow(1500));
    let appid = s.appid.clone();
    let ours = std::thread::spawn(move || get(&appid));
    let lease = format!("wx_token:{{{}}}:lease", s.appid);
    assert!(eventually(2, || redis
        .cli(&["EXISTS", &lease])
        .is_some_and(|n| n.trim() == "1")));
    redis.cli(&["DEL", &lease]).unwrap();
    let token = ours.join().unwrap().expect("this process gets a token");
    let key = format!("wx_token:{{{}}}", s.appid);
    let stored = redis.cli(&["HGET", &key, "access_token"]).unwrap();
    assert_eq!(stored.trim(), token, "published at once, under a new lease");
    assert_eq!(
        redis.cli(&["EXISTS", &lease]).unwrap().trim(),
        "0",
        "and released"
    );
    assert_eq!(s.fetches(), 1);
}

/// With a shared store only reports that do replace the token count against the pace, and they
/// count for the fleet: a report answered from the store (the fleet had replaced that token
/// already) used to spend this process's own slot, so its next report, of a token the fleet
/// had not replaced for longer than the interval, was refused for nothing.
#[test]
fn a_report_answered_from_the_store_does_not_spend_the_pace() {
    let s = Setup::new("paceanswered", FakeConfig::default());
    let dir = tmpdir("paceanswered");
    let options = s.options(&format!(
        r#""store":"file:{}","endpoint":"classic","passive_refresh_interval_secs":1"#,
        dir.display()
    ));
    let go = tmpdir("paceanswered-go").join("go");
    std::fs::write(&go, b"go").unwrap();
    // A peer fetches t1 and another replaces it with t2 (the fleet's one replacement).
    let first = spawn_peer(&s, &options, 1, &go, false)
        .wait_with_output()
        .unwrap();
    assert!(first.status.success());
    let t1 = s.fake.current_token(&s.appid).unwrap();
    let replaced = spawn_peer(&s, &options, 1, &go, true)
        .wait_with_output()
        .unwrap();
    assert!(
        replaced.status.success(),
        "{}",
        String::from_utf8_lossy(&replaced.stderr)
    );
    assert_eq!(s.fetches(), 2);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // This process, restarted since it used t1, reports it: the store answers with t2.
    register(&s.appid, &s.secret, Some(&options)).unwrap();
    invalidate(&s.appid, Some(&t1)).unwrap();
    let t2 = get(&s.appid).unwrap();
    assert_ne!(t2, t1);
    assert_eq!(s.fetches(), 2, "answered from the store");
    // t2 is rejected too, over a second after the fleet's last replacement: replaced.
    invalidate(&s.appid, Some(&t2)).unwrap();
    assert_ne!(get(&s.appid).unwrap(), t2);
    assert_eq!(s.fetches(), 3);
}
