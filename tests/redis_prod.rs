//! Production Redis against real servers: Sentinel failover (redis-sentinel), a 3-primary
//! Redis Cluster, TLS with a private CA and client certificates made here, ACL users. Fleets are
//! real processes (examples/store_peer); upstream is the fake WeChat.

mod common;

use std::time::Duration;

use common::redis_prod::*;
use common::*;
use wx_fake::FakeConfig;
use wx_token::ffi::*;

/// The ACL rules docs/STORES.md documents (its line `ACL SETUSER wxtoken on >PASSWORD <rules>`):
/// keys under the default prefix, and only the commands the store sends, itself or from its
/// scripts. Read from the document, so the documented line is the tested one.
fn acl_rules() -> Vec<String> {
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/STORES.md")).unwrap();
    let line = docs
        .lines()
        .find_map(|l| l.strip_prefix("ACL SETUSER wxtoken on >PASSWORD "))
        .expect("docs/STORES.md gives an ACL line");
    line.split_whitespace().map(str::to_owned).collect()
}

fn acl_user(redis: &RedisServer, name: &str, password: &str, rules: &[&str]) {
    let pass = format!(">{password}");
    let mut args = vec!["ACL", "SETUSER", name, "on", &pass];
    args.extend(rules);
    assert_eq!(redis.cli(&args).unwrap().trim(), "OK");
}

#[test]
fn sentinel_failover_keeps_one_token_and_publishes_to_the_new_primary() {
    let Some(mut set) = SentinelSet::start(None) else {
        return eprintln!("redis-server or redis-sentinel not installed: skipped");
    };
    // 16 s tokens, refreshed 8 s ahead: the refresh falls well after the failover.
    let s = Setup::new(
        "sentinel",
        FakeConfig {
            lifetime_secs: 16,
            overlap_secs: 2,
            ..FakeConfig::default()
        },
    );
    let options = s.options(&format!(
        r#""store":"{}","endpoint":"classic","refresh_ahead_secs":8,"store_sync_ms":500,"timeout_ms":1000"#,
        set.url()
    ));
    let hold: &[&str] = &["--hold-ms", "13000"];
    let peers = Peers::start(&s.secret, &options, 2, &[(s.appid.as_str(), hold); 3]);
    let key = format!("wx_token:{{{}}}", s.appid);
    assert!(
        eventually(10, || cli(set.replica.port, &["HGET", &key, "generation"])
            .is_some_and(|g| g.trim() == "1")),
        "the record reached the replica"
    );
    set.primary.kill();
    assert!(
        eventually(15, || set.primary_port() == Some(set.replica.port)),
        "the sentinel promoted the replica"
    );
    let seen = peers.wait();
    let current = fingerprint(&s.fake.current_token(&s.appid).unwrap());
    let first: Vec<&String> = seen.iter().flat_map(|p| &p[..2]).collect();
    assert!(first.iter().all(|t| *t == first[0]), "{seen:?}");
    assert!(
        seen.iter().all(|p| p[2] == current && p[2] != *first[0]),
        "every process moved to the refreshed token: {seen:?}"
    );
    assert_eq!(
        s.fetches(),
        2,
        "one fetch at start, one refresh for the fleet, none for the failover"
    );
    // The refresh was published to the new primary.
    assert_eq!(
        cli(set.replica.port, &["HGET", &key, "generation"])
            .unwrap()
            .trim(),
        "2"
    );
    let stored = cli(set.replica.port, &["HGET", &key, "access_token"]).unwrap();
    assert_eq!(fingerprint(stored.trim()), current);
}

/// One app per cluster node, `procs` processes x 2 threads per app, all at once: one fetch and
/// one token per app, each record and lease on its app's node.
fn cluster_fleet(cluster: &RedisCluster, extra_options: &str, procs: usize) {
    let s = Setup::new("cluster", FakeConfig::default());
    // Record and lease share a slot through the {appid} tag; pick appids landing on each node.
    let mut apps: Vec<Option<String>> = vec![None; cluster.nodes.len()];
    for i in 0.. {
        let appid = format!("{}_{i}", s.appid);
        let node = cluster.node_of(&format!("wx_token:{{{appid}}}"));
        assert_eq!(
            cluster.node_of(&format!("wx_token:{{{appid}}}:lease")),
            node
        );
        apps[node].get_or_insert(appid);
        if apps.iter().all(Option::is_some) {
            break;
        }
    }
    let apps: Vec<String> = apps.into_iter().flatten().collect();
    for a in &apps {
        s.fake.add_app(a, &s.secret);
    }
    s.fake.set_delay_ms(300); // the first fetch is in flight while the whole fleet asks
    let options = s.options(&format!(
        r#""store":"{}","endpoint":"classic"{extra_options}"#,
        cluster.url("")
    ));
    let peers: Vec<(&str, &[&str])> = apps
        .iter()
        .flat_map(|a| vec![(a.as_str(), &[][..]); procs])
        .collect();
    let seen = Peers::start(&s.secret, &options, 2, &peers).wait();
    for (i, a) in apps.iter().enumerate() {
        let st = s.fake.app_stats(a);
        assert_eq!(
            st.token_requests + st.stable_requests + st.force_requests,
            1,
            "one fetch for {a} across {procs} processes x 2 threads"
        );
        let current = fingerprint(&s.fake.current_token(a).unwrap());
        assert!(
            seen[i * procs..(i + 1) * procs]
                .iter()
                .flatten()
                .all(|t| *t == current),
            "{seen:?}"
        );
        let port = cluster.nodes[i].port;
        let key = format!("wx_token:{{{a}}}");
        assert_eq!(
            cluster
                .cli(port, &["HGET", &key, "generation"])
                .unwrap()
                .trim(),
            "1"
        );
        assert_eq!(
            cluster
                .cli(port, &["EXISTS", &format!("{key}:lease")])
                .unwrap()
                .trim(),
            "0",
            "lease released"
        );
    }
}

#[test]
fn sentinel_over_tls_with_a_private_ca_and_client_certificates() {
    if !installed("redis-sentinel") {
        return eprintln!("redis-sentinel not installed: skipped");
    }
    let set = SentinelSet::start(Some(TlsFiles::generate())).unwrap();
    let tls = set.tls.as_ref().unwrap();
    let s = Setup::new("sentineltls", FakeConfig::default());
    s.fake.set_delay_ms(300);
    let options = s.options(&format!(r#""store":"{}",{}"#, set.url(), tls.options()));
    let seen = Peers::start(&s.secret, &options, 2, &[(s.appid.as_str(), &[][..]); 3]).wait();
    let current = fingerprint(&s.fake.current_token(&s.appid).unwrap());
    assert!(seen.iter().flatten().all(|t| *t == current), "{seen:?}");
    assert_eq!(s.fetches(), 1);
    let key = format!("wx_token:{{{}}}", s.appid);
    let stored = set.cli(set.primary.port, &["HGET", &key, "access_token"]);
    assert_eq!(
        fingerprint(stored.unwrap().trim()),
        current,
        "on the primary"
    );
}

#[test]
fn cluster_one_fetch_per_app_with_apps_on_every_node() {
    let Some(cluster) = RedisCluster::start(None) else {
        return eprintln!("redis-server not installed: skipped");
    };
    cluster_fleet(&cluster, "", 3);
}

#[test]
fn cluster_over_tls_with_a_private_ca_and_client_certificates() {
    if !installed("redis-server") {
        return eprintln!("redis-server not installed: skipped");
    }
    let cluster = RedisCluster::start(Some(TlsFiles::generate())).unwrap();
    let tls = cluster.tls.as_ref().unwrap();
    cluster_fleet(&cluster, &format!(",{}", tls.options()), 2);
}

#[test]
fn tls_with_a_private_ca_and_a_client_certificate() {
    if !installed("redis-server") {
        return eprintln!("redis-server not installed: skipped");
    }
    let tls = TlsFiles::generate();
    let password = "tls-hunter2-secret";
    let server = tls.server(&["--requirepass", password]);
    let url = format!("rediss://:{password}@127.0.0.1:{}/0", server.port);
    let files = |ca: &str, client: bool| {
        let mut o = format!(r#""store":"{url}","store_tls_ca_file":"{}""#, tls.path(ca));
        if client {
            o += &format!(
                r#","store_tls_cert_file":"{}","store_tls_key_file":"{}""#,
                tls.path("client.crt"),
                tls.path("client.key")
            );
        }
        o + r#","store_fallback_per_hour":0,"timeout_ms":1000"#
    };
    let s = Setup::new("tls", FakeConfig::default());
    s.register(&files("ca.crt", true));
    let t = get(&s.appid).unwrap();
    assert_eq!(s.fetches(), 1);
    let key = format!("wx_token:{{{}}}", s.appid);
    let stored = tls.cli(
        server.port,
        &[
            "-a",
            password,
            "--no-auth-warning",
            "HGET",
            &key,
            "access_token",
        ],
    );
    assert_eq!(stored.unwrap().trim(), t, "published over TLS");

    // A server the CA did not sign, and a client without a certificate: WX_STORE, and no
    // secret (password, key) in what the caller sees.
    let key_pem = std::fs::read_to_string(tls.path("client.key")).unwrap();
    let key_body = key_pem.lines().nth(1).unwrap();
    for (ca, client, why) in [
        ("other-ca.crt", true, "wrong CA"),
        ("ca.crt", false, "no client certificate"),
    ] {
        let other = Setup::new("tlsbad", FakeConfig::default());
        other.register(&files(ca, client));
        let e = get(&other.appid).unwrap_err();
        assert_eq!(e.status, WX_STORE, "{why}: {e:?}");
        assert!(
            e.message.contains("redis at 127.0.0.1"),
            "{why}: {}",
            e.message
        );
        for secret in [password, key_body] {
            assert!(!e.message.contains(secret), "{why}: {}", e.message);
        }
        assert_eq!(other.fetches(), 0, "{why}: WeChat never asked");
    }

    // TLS files need a TLS URL; missing files fail at register, naming the option only.
    let appid = unique_appid("tlsopts");
    let plain = format!(
        r#"{{"store":"redis://:{password}@127.0.0.1:{}/0","store_tls_ca_file":"{}"}}"#,
        server.port,
        tls.path("ca.crt")
    );
    let missing = format!(
        r#"{{"store":"{url}","store_tls_ca_file":"{}"}}"#,
        tls.path("nope.crt")
    );
    let no_store = format!(r#"{{"store_tls_ca_file":"{}"}}"#, tls.path("ca.crt"));
    // A certificate where the key belongs: refused at register, without quoting either file.
    let swapped = format!(
        r#"{{"store":"{url}","store_tls_cert_file":"{}","store_tls_key_file":"{}"}}"#,
        tls.path("client.key"),
        tls.path("client.crt")
    );
    for bad in [plain, missing, no_store, swapped] {
        let e = register(&appid, "s", Some(&bad)).unwrap_err();
        assert_eq!(e.status, WX_INVALID_ARGUMENT, "{bad}");
        assert!(!e.message.contains(password), "{}", e.message);
        assert!(!e.message.contains(key_body), "{}", e.message);
    }
}

#[test]
fn acl_user_with_the_documented_rules_shares_one_token() {
    let Some(redis) = RedisServer::start() else {
        return eprintln!("redis-server not installed: skipped");
    };
    let rules = acl_rules();
    let rules: Vec<&str> = rules.iter().map(String::as_str).collect();
    acl_user(&redis, "wxtoken", "acl-pass-1", &rules);
    let s = Setup::new("aclok", FakeConfig::default());
    s.fake.set_delay_ms(300);
    let options = s.options(&format!(
        r#""store":"redis://wxtoken:acl-pass-1@127.0.0.1:{}/0","endpoint":"classic""#,
        redis.port
    ));
    let seen = Peers::start(&s.secret, &options, 2, &[(s.appid.as_str(), &[][..]); 4]).wait();
    let current = fingerprint(&s.fake.current_token(&s.appid).unwrap());
    assert!(seen.iter().flatten().all(|t| *t == current), "{seen:?}");
    assert_eq!(s.fetches(), 1);
    // The lease is released by the ACL user.
    assert_one_fetch_recorded(&s.appid, |args| redis.cli(args));
}

/// A user the store cannot work with. Reading refused: WX_STORE at once (no fallback budget),
/// naming the refusal and not the password. Scripts refused: nothing ever reaches Redis, the
/// refusals count as store failures in the stats, and WeChat is asked at most once.
#[test]
fn acl_users_without_permissions_get_store_errors_and_never_publish() {
    let Some(redis) = RedisServer::start() else {
        return eprintln!("redis-server not installed: skipped");
    };
    let rules = acl_rules();
    let no_read: Vec<&str> = rules
        .iter()
        .map(String::as_str)
        // The record is read by a script: TYPE first (an absent record needs nothing more),
        // then HGETALL.
        .filter(|r| *r != "+hgetall" && *r != "+type")
        .collect();
    acl_user(&redis, "noread", "acl-pass-2", &no_read);
    let s = Setup::new("aclnoread", FakeConfig::default());
    s.register(&format!(
        r#""store":"redis://noread:acl-pass-2@127.0.0.1:{}/0","store_fallback_per_hour":0"#,
        redis.port
    ));
    let e = get(&s.appid).unwrap_err();
    assert_eq!(e.status, WX_STORE, "{e:?}");
    assert!(e.message.contains("NOPERM"), "{}", e.message);
    assert!(!e.message.contains("acl-pass-2"), "{}", e.message);
    assert_eq!(s.fetches(), 0);

    let no_scripts: Vec<&str> = rules
        .iter()
        .map(String::as_str)
        .filter(|r| !r.contains("eval") && !r.contains("script"))
        .collect();
    acl_user(&redis, "noscripts", "acl-pass-3", &no_scripts);
    let s = Setup::new("aclnoscript", FakeConfig::default());
    s.register(&format!(
        r#""store":"redis://noscripts:acl-pass-3@127.0.0.1:{}/0","lease_ms":60000"#,
        redis.port
    ));
    match get(&s.appid) {
        Ok(_) => {}
        Err(e) => {
            assert_eq!(e.status, WX_STORE, "{e:?}");
            assert!(!e.message.contains("acl-pass-3"), "{}", e.message);
        }
    }
    let key = format!("wx_token:{{{}}}", s.appid);
    assert_eq!(
        redis.cli(&["EXISTS", &key]).unwrap().trim(),
        "0",
        "never published"
    );
    // The refusals are store failures, in the stats operators scrape.
    let stats = wx_token::stats(&s.appid).unwrap();
    assert!(stats.store_failures >= 1, "{stats:?}");
    // Whatever the caller saw, WeChat was asked at most once (the host's stable fallback),
    // and asking again does not fetch again.
    let _ = get(&s.appid);
    std::thread::sleep(Duration::from_millis(200));
    assert!(s.fetches() <= 1, "{} fetches", s.fetches());
}

/// A child forked after its parent talked to Redis over TLS opens its own connection. Had it
/// used the parent's, the parent's TLS session would be out of step and its next store
/// operation would fail (counted as a store failure).
#[test]
fn fork_child_never_uses_the_parents_tls_connection() {
    if !installed("redis-server") {
        return eprintln!("redis-server not installed: skipped");
    }
    let tls = TlsFiles::generate();
    let server = tls.server(&[]);
    let s = Setup::new("tlsfork", FakeConfig::default());
    s.register(&format!(
        r#""store":"rediss://127.0.0.1:{}/0",{},"store_fallback_per_hour":0,"endpoint":"classic","timeout_ms":1000"#,
        server.port,
        tls.options()
    ));
    let t1 = get(&s.appid).unwrap(); // the parent's connection is now open and idle
    let base = s.fake.base_url();
    let code = in_child(|| {
        invalidate(&s.appid, Some(&t1)).is_ok()
            && get(&s.appid).is_ok_and(|t2| t2 != t1 && valid_via_http(&base, &t2))
    });
    assert_eq!(code, 0, "the child replaced the token through the store");
    assert_eq!(s.fetches(), 2);
    // The parent learns the child's token from the store, over its own connection.
    invalidate(&s.appid, Some(&t1)).unwrap();
    let t = get(&s.appid).unwrap();
    assert!(t != t1 && valid_via_http(&base, &t));
    assert_eq!(s.fetches(), 2, "installed from the store, not fetched");
    let stats = wx_token::stats(&s.appid).unwrap();
    assert!(
        stats
            .failures
            .iter()
            .all(|f| f.status != wx_token::Status::Store),
        "{stats:?}"
    );
}
