//! Two wx-tokend instances sharing one real redis-server: one fetch for the fleet, an
//! invalidation on one seen by the other, and a restart that costs no fetch.

mod common;

use std::sync::Arc;

use common::*;
use serde_json::json;

fn redis_config(fake: &wx_fake::FakeWechat, redis: &RedisServer) -> String {
    config(
        fake,
        "",
        &format!(", store = \"{}\", store_sync_ms = 100", redis.url()),
    )
}

#[test]
fn two_instances_share_one_token_and_its_invalidation() {
    let Some(redis) = RedisServer::start() else {
        return eprintln!("redis-server not installed: skipped");
    };
    let fake = fake_with_apps();
    fake.set_delay_ms(200); // both instances are asked while the first fetch is in flight
    let cfg = redis_config(&fake, &redis);
    let a = Arc::new(Tokend::start(&cfg));
    let b = Arc::new(Tokend::start(&cfg));

    let threads: Vec<_> = (0..40)
        .map(|i| {
            let srv = if i % 2 == 0 { a.clone() } else { b.clone() };
            std::thread::spawn(move || {
                (0..5)
                    .map(|_| srv.token(APP1, BILLING_KEY).access_token())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let tokens: Vec<String> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert_eq!(tokens.len(), 200);
    let t1 = tokens[0].clone();
    assert!(
        tokens.iter().all(|t| *t == t1),
        "one token across both instances"
    );
    assert_eq!(fetches(&fake, APP1), 1, "one fetch for the fleet");
    // Each instance counts only its own requests to WeChat; the other took the token from
    // the store.
    let counts = |name: &str| (a.metric(name, APP1).unwrap(), b.metric(name, APP1).unwrap());
    let (fa, fb) = counts("wx_tokend_upstream_fetches_total");
    assert_eq!(fa + fb, 1.0, "{fa} + {fb}");
    let (sa, sb) = counts("wx_tokend_tokens_from_store_total");
    assert!(if fa == 1.0 { sb >= 1.0 } else { sa >= 1.0 }, "{sa} {sb}");
    let age = |srv: &Tokend| srv.metric("wx_tokend_token_age_seconds", APP1).unwrap();
    assert!(
        (age(&a) - age(&b)).abs() < 0.1,
        "both count the age from the one fetch"
    );

    // The passive refresh on A...
    fake.set_delay_ms(0);
    let t2 = a
        .invalidate(APP1, BILLING_KEY, &json!({"stale_token": t1}).to_string())
        .access_token();
    assert_ne!(t2, t1);
    assert_eq!(fetches(&fake, APP1), 2);
    // ...reaches B through the store, without B fetching.
    assert!(
        eventually(5, || b.token(APP1, OPS_KEY).access_token() == t2),
        "B picks up A's new token"
    );
    // B being told about the same stale token does nothing more.
    assert_eq!(
        b.invalidate(APP1, BILLING_KEY, &json!({"stale_token": t1}).to_string())
            .access_token(),
        t2
    );
    assert_eq!(fetches(&fake, APP1), 2);

    // A restarted instance serves the stored token without fetching.
    drop(a);
    let a2 = Tokend::start(&cfg);
    assert_eq!(a2.token(APP1, BILLING_KEY).access_token(), t2);
    assert_eq!(fetches(&fake, APP1), 2);
    assert_eq!(
        a2.metric("wx_tokend_upstream_fetches_total", APP1),
        Some(0.0)
    );
    assert!(
        a2.metric("wx_tokend_tokens_from_store_total", APP1)
            .unwrap()
            >= 1.0
    );
    assert!(
        (age(&a2) - age(&b)).abs() < 0.1,
        "the stored token's age, not reset by the restart"
    );
}
