//! The `/_fake/*` HTTP control API used by the C, C# and Python tests.

mod common;

use common::*;
use serde_json::json;

#[test]
fn stats_shape_and_reset() {
    let f = fake();
    let url = f.base_url();
    classic(&url, APP, SECRET);
    stable(&url, APP, SECRET, true);
    let v = get(&url, "/_fake/stats").json();
    assert_eq!(
        v,
        json!({
            "token_requests": 1, "stable_requests": 0, "force_requests": 1,
            "issued": 2, "api_requests": 0, "faults_served": 0,
            "wecom_token_requests": 0, "ticket_requests": 0, "corp_ticket_requests": 0, "agent_ticket_requests": 0, "tickets_issued": 0, "wecom_api_requests": 0, "check_requests": 0, "check_failures": 0,
            "apps": {APP: {
                "token_requests": 1, "stable_requests": 0, "force_requests": 1,
                "issued": 2, "api_requests": 0, "faults_served": 0,
                "wecom_token_requests": 0, "ticket_requests": 0, "corp_ticket_requests": 0, "agent_ticket_requests": 0, "tickets_issued": 0, "wecom_api_requests": 0, "check_requests": 0, "check_failures": 0,
            }},
        })
    );
    let log = get(&url, "/_fake/requests").json();
    assert_eq!(log[0]["endpoint"], "classic");
    assert_eq!(log[1]["endpoint"], "stable_force");
    assert_eq!(log[1]["appid"], APP);
    assert!(log[1]["at_ms"].as_u64().unwrap() >= log[0]["at_ms"].as_u64().unwrap());
    assert_eq!(
        post(&url, "/_fake/reset_stats", "").json(),
        json!({"ok": true})
    );
    let v = get(&url, "/_fake/stats").json();
    assert_eq!(v["issued"], 0);
    assert_eq!(v["apps"], json!({}));
}

#[test]
fn faults_one_or_many_and_validated_all_or_nothing() {
    let f = fake();
    let url = f.base_url();
    let r = post(&url, "/_fake/faults", r#"{"kind":"busy","count":2}"#);
    assert_eq!(r.json()["queued"], 1);
    let r = post(
        &url,
        "/_fake/faults",
        r#"[{"kind":"errcode","errcode":40164,"errmsg":"ip"},{"kind":"http_status","status":502,"appid":"wx_app"}]"#,
    );
    assert_eq!(r.json()["queued"], 2);
    let r = post(
        &url,
        "/_fake/faults",
        r#"[{"kind":"busy"},{"kind":"teapot"}]"#,
    );
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().contains("teapot"));
    assert_eq!(
        post(&url, "/_fake/faults", r#"{"kind":"slow","dealy_ms":5}"#).status,
        400
    );
    assert_eq!(post(&url, "/_fake/faults", "nope").status, 400);
    let pending = get(&url, "/_fake/faults").json();
    assert_eq!(pending.as_array().unwrap().len(), 3);
    assert_eq!(
        pending[2],
        json!({"kind":"http_status","count":1,"status":502,"appid":"wx_app"})
    );
    assert_eq!(classic(&url, APP, SECRET)["errcode"], -1);
    assert_eq!(classic(&url, APP, SECRET)["errcode"], -1);
    assert_eq!(classic(&url, APP, SECRET)["errcode"], 40164);
    assert_eq!(
        request(&url, "DELETE", "/_fake/faults", None)
            .unwrap()
            .status,
        200
    );
    assert!(f.pending_faults().is_empty());
    assert!(classic(&url, APP, SECRET)["access_token"].is_string());
}

#[test]
fn config_updates_and_rejects_bad_values_atomically() {
    let f = fake();
    let url = f.base_url();
    let r = post(
        &url,
        "/_fake/config",
        r#"{"lifetime_secs":30,"token_len":512}"#,
    );
    assert_eq!(
        r.json(),
        json!({"lifetime_secs":30,"token_len":512,"overlap_secs":300,"delay_ms":0,"ticket_lifetime_secs":7200})
    );
    let v = classic(&url, APP, SECRET);
    assert_eq!(
        (token_of(&v).len(), v["expires_in"].as_u64()),
        (512, Some(30))
    );
    for bad in [
        r#"{"token_len":0}"#,
        r#"{"token_len":1025}"#,
        r#"{"overlap_secs":-1}"#,
        r#"{"delay_ms":1,"bogus":2}"#,
        r#"[1]"#,
    ] {
        assert_eq!(post(&url, "/_fake/config", bad).status, 400, "{bad}");
    }
    assert_eq!(
        get(&url, "/_fake/config").json()["delay_ms"],
        0,
        "nothing half-applied"
    );
    post(&url, "/_fake/config", r#"{"overlap_secs":0,"delay_ms":0}"#);
    let a = token_of(&classic(&url, APP, SECRET));
    classic(&url, APP, SECRET);
    assert!(!f.is_valid(&a));
}

#[test]
fn apps_revoke_expire_current() {
    let f = fake();
    let url = f.base_url();
    assert_eq!(
        post(&url, "/_fake/apps", r#"{"appid":"wx_new","secret":"p&w"}"#).status,
        200
    );
    assert_eq!(
        post(&url, "/_fake/apps", r#"{"appid":"wx_new"}"#).status,
        400
    );
    assert_eq!(get(&url, "/_fake/current?appid=wx_new").status, 404);
    let t = token_of(&classic(&url, "wx_new", "p&w"));
    let cur = get(&url, "/_fake/current?appid=wx_new");
    assert_eq!(cur.status, 200);
    assert_eq!(cur.json(), json!({"access_token": t}));

    let s = token_of(&stable(&url, "wx_new", "p&w", false));
    post(&url, "/_fake/revoke", &json!({"token": t}).to_string());
    assert_eq!(api_errcode(&url, &t), 40001);
    assert_eq!(post(&url, "/_fake/revoke", "{}").status, 400);
    post(&url, "/_fake/expire", r#"{"appid":"wx_new"}"#);
    assert_eq!(api_errcode(&url, &s), 42001);
}

#[test]
fn unknown_and_wrong_method() {
    let f = fake();
    let url = f.base_url();
    assert_eq!(get(&url, "/_fake/nope").status, 404);
    assert_eq!(get(&url, "/_fake/").status, 404);
    assert_eq!(get(&url, "/_fake/reset_stats").status, 405);
    assert_eq!(post(&url, "/_fake/stats", "").status, 405);
}
