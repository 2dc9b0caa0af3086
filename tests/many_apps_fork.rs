//! Issue #14 across fork(): the lock-free app table and the timer-queue refresher in a child
//! forked while registrations, unregistrations and refreshes go on. A binary of its own, so
//! the children inherit (and refresh) no other test's apps.

mod common;

use std::thread;

use common::*;
use wx_fake::FakeConfig;

#[test]
fn fork_child_inherits_a_growing_table_and_a_busy_refresher() {
    let s = Setup::new(
        "forkscale",
        FakeConfig {
            lifetime_secs: 4,
            // Parent and children each refresh the same apps on the classic endpoint (memory
            // stores: separate processes); an overlap as long as a token's life keeps a token
            // one of them holds valid while another refreshes, so a slow child is not failed
            // for the overwrite this test is not about.
            overlap_secs: 4,
            ..FakeConfig::default()
        },
    );
    let extra = r#""endpoint":"classic","refresh_ahead_secs":2"#;
    let ids = register_and_get_many(&s, "forkscale", 50, extra);
    let base = s.fake.base_url();
    // Registrations (growing the table), unregistrations and gets go on while we fork.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let (stop, opts, secret) = (stop.clone(), s.options(extra), s.secret.clone());
        thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let id = unique_appid("forkchurn");
                register(&id, &secret, Some(&opts)).unwrap();
                unregister(&id).unwrap();
            }
        })
    };
    for _ in 0..10 {
        let code = in_child(|| {
            let opts = s.options(extra);
            let fresh: Vec<String> = (0..300).map(|_| unique_appid("forkchild")).collect();
            fresh
                .iter()
                .all(|id| register(id, "x", Some(&opts)).is_ok() && unregister(id).is_ok())
                && ids
                    .iter()
                    .all(|id| get(id).is_ok_and(|t| valid_via_http(&base, &t)))
        });
        assert_eq!(code, 0);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    churn.join().unwrap();

    // The child's refresher (restarted, its queue rebuilt from the inherited one) refreshes
    // apps that exist only in the child, so every request for them is the child's.
    let code = in_child(|| {
        let opts = s.options(extra);
        let own: Vec<String> = (0..20).map(|_| unique_appid("forkown")).collect();
        let ok = own.iter().all(|id| {
            http_post(
                &base,
                "/_fake/apps",
                &format!(r#"{{"appid":"{id}","secret":"x"}}"#),
            );
            register(id, "x", Some(&opts)).is_ok() && get(id).is_ok()
        });
        ok && eventually(10, || own.iter().all(|id| fetches_via_http(&base, id) >= 2))
    });
    assert_eq!(code, 0);
}
