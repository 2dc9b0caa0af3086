//! WeCom ids through the C ABI against the fake: one token per corp secret, WeCom's errcodes.

mod common;

use common::*;
use wx_fake::{FakeConfig, FakeWechat, Fault, WECOM_TOKEN_PATH};
use wx_token::ffi::*;

fn wecom_options(fake: &FakeWechat, corpid: &str, extra: &str) -> String {
    let mut o = serde_json::json!({
        "platform": "wecom", "corpid": corpid, "api_base": fake.base_url(),
        "retry_min_ms": 50, "retry_max_ms": 200, "error_cooldown_ms": 60000,
    });
    let extra: serde_json::Value = serde_json::from_str(&format!("{{{extra}}}")).unwrap();
    for (k, v) in extra.as_object().unwrap() {
        o[k] = v.clone();
    }
    o.to_string()
}

fn wecom_valid(fake: &FakeWechat, token: &str) -> bool {
    http_get(
        &fake.base_url(),
        &format!("/cgi-bin/getcallbackip?access_token={token}"),
    )
    .contains("ip_list")
}

#[test]
fn two_ids_of_one_corp_get_one_token_per_secret() {
    let corp = format!("ww{}", std::process::id());
    let fake = FakeWechat::start(
        FakeConfig::default()
            .with_wecom(&corp, "contacts-secret", None)
            .with_wecom(&corp, "app-secret", Some(1000002)),
    )
    .unwrap();
    let contacts = unique_appid("acme.contacts");
    let app = unique_appid("acme.app");
    register(
        &contacts,
        "contacts-secret",
        Some(&wecom_options(&fake, &corp, "")),
    )
    .unwrap();
    register(
        &app,
        "app-secret",
        Some(&wecom_options(&fake, &corp, r#""agentid":1000002"#)),
    )
    .unwrap();
    let tc = get(&contacts).unwrap();
    let ta = get(&app).unwrap();
    assert_ne!(tc, ta, "keyed by secret, not by corp");
    assert!(wecom_valid(&fake, &tc) && wecom_valid(&fake, &ta));
    assert_eq!(get(&contacts).unwrap(), tc, "cached");
    assert_eq!(fake.app_stats(&corp).wecom_token_requests, 2);
    // Compare-and-invalidate works as for mp ids: a stale report does nothing.
    invalidate(&contacts, Some("not-the-current-token")).unwrap();
    assert_eq!(get(&contacts).unwrap(), tc);
    assert_eq!(fake.app_stats(&corp).wecom_token_requests, 2);
}

#[test]
fn a_bad_secret_is_terminal_and_frequency_limits_back_off() {
    let corp = format!("wx{}b", std::process::id());
    let fake = FakeWechat::start(FakeConfig::default().with_wecom(&corp, "right", None)).unwrap();
    let bad = unique_appid("acme.bad");
    register(&bad, "wrong", Some(&wecom_options(&fake, &corp, ""))).unwrap();
    for _ in 0..3 {
        let f = get(&bad).unwrap_err();
        assert_eq!((f.status, f.errcode), (WX_WECHAT_ERROR, 40001));
    }
    assert_eq!(
        fake.app_stats(&corp).wecom_token_requests,
        1,
        "a bad secret is answered from the cooldown"
    );
    // 45033 (concurrency limit) and 45009 (frequency) are transient for WeCom: a short backoff.
    let ok = unique_appid("acme.ok");
    register(&ok, "right", Some(&wecom_options(&fake, &corp, ""))).unwrap();
    fake.push_fault(
        Fault::wx_error(45033, "api concurrent out of limit").for_path(WECOM_TOKEN_PATH),
    );
    fake.push_fault(Fault::wx_error(45009, "api freq out of limit").for_path(WECOM_TOKEN_PATH));
    assert_eq!(get(&ok).unwrap_err().errcode, 45033);
    assert!(
        eventually(5, || get(&ok).is_ok()),
        "recovers after the backoffs"
    );
    assert_eq!(fake.app_stats(&corp).wecom_token_requests, 4);
}

/// A fleet of processes shares one WeCom token per secret through a file store: one gettoken.
#[test]
fn a_fleet_shares_one_wecom_token_per_secret_through_a_file_store() {
    let corp = format!("wwfleet{}", std::process::id());
    let fake =
        FakeWechat::start(FakeConfig::default().with_wecom(&corp, "fleet-secret", None)).unwrap();
    fake.set_delay_ms(150);
    let id = unique_appid("acme.fleet");
    let dir = tmpdir("wecomfleet");
    let options = wecom_options(
        &fake,
        &corp,
        &format!(r#""store":"file:{}""#, dir.display()),
    );
    let args = [
        "--appid",
        &id,
        "--secret",
        "fleet-secret",
        "--options",
        &options,
        "--threads",
        "3",
    ];
    let seen = peer_fleet(6, &args, std::time::Duration::from_millis(300)).concat();
    assert_eq!(seen.len(), 18);
    assert!(seen.iter().all(|f| *f == seen[0]), "{seen:?}");
    assert_eq!(
        fake.app_stats(&corp).wecom_token_requests,
        1,
        "one gettoken per fleet"
    );
}
