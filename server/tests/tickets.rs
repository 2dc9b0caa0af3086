//! JS-SDK tickets through wx-tokend: `GET /v1/ticket/{id}/{kind}`, `POST
//! /v1/ticket/{id}/{kind}/invalidate`, `GET /v1/jssdk/{id}/{kind}?url=`, with the token's client
//! keys and allow-lists; and the engine's client mode getting tickets and wx.config JSON with
//! no secret on the client.

mod common;

use common::*;
use wx_fake::TicketKind;

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn ticket_and_jssdk_routes_with_keys_and_allow_lists() {
    let fake = fake_with_apps();
    let srv = Tokend::start(&config(&fake, "", ""));
    let r = srv.get(&format!("/v1/ticket/{APP1}/jsapi"), Some(BILLING_KEY));
    assert_eq!(r.status, 200, "{}", r.body);
    let t = r.json()["ticket"].as_str().unwrap().to_owned();
    assert_eq!(
        fake.current_ticket(APP1, TicketKind::Jsapi),
        Some(t.clone())
    );
    assert!(r.json()["expires_in"].as_u64().unwrap() > 7000);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // Same keys and allow-lists as tokens.
    assert_eq!(
        srv.get(&format!("/v1/ticket/{APP1}/jsapi"), None).status,
        401
    );
    let denied = srv.get(&format!("/v1/ticket/{APP2}/jsapi"), Some(BILLING_KEY));
    assert_eq!(
        (denied.status, denied.json()["error"].as_str()),
        (401, Some("app_not_allowed"))
    );
    let denied = srv.get(&format!("/v1/jssdk/{APP2}/jsapi?url=x"), Some(BILLING_KEY));
    assert_eq!(denied.status, 401);
    assert_eq!(
        srv.get(&format!("/v1/ticket/{APP1}/bogus"), Some(BILLING_KEY))
            .status,
        400
    );
    assert_eq!(
        srv.get(&format!("/v1/ticket/{APP1}"), Some(BILLING_KEY))
            .status,
        404
    );
    // wx.config JSON for a page, accepted by the browser's check.
    let page = "https://shop.example/item?id=5&from=a b#reviews";
    let r = srv.get(
        &format!("/v1/jssdk/{APP1}/jsapi?url={}", enc(page)),
        Some(OPS_KEY),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["appId"], APP1);
    fake.jssdk_check(&r.json(), page)
        .expect("wx.config accepts");
    let r = srv.get(&format!("/v1/jssdk/{APP1}/jsapi"), Some(OPS_KEY));
    assert_eq!(r.status, 400, "the url is required");
    assert_eq!(
        fake.app_stats(APP1).ticket_requests,
        1,
        "one getticket for all of it"
    );
    // A page's report: the ticket is replaced once.
    fake.expire_tickets();
    let path = format!("/v1/ticket/{APP1}/jsapi/invalidate");
    let bad = http(
        srv.addr,
        "POST",
        &path,
        Some(OPS_KEY),
        Some(r#"{"stale_token":"x"}"#),
    );
    assert_eq!(bad.status, 400);
    let body = serde_json::json!({ "stale_ticket": t }).to_string();
    let r = http(srv.addr, "POST", &path, Some(OPS_KEY), Some(&body));
    assert_eq!(r.status, 200, "{}", r.body);
    let t2 = r.json()["ticket"].as_str().unwrap().to_owned();
    assert_ne!(t2, t);
    assert_eq!(fake.current_ticket(APP1, TicketKind::Jsapi), Some(t2));
    assert_eq!(fake.app_stats(APP1).ticket_requests, 2);
}

#[test]
fn client_mode_gets_tickets_and_configs_without_a_secret() {
    let fake = fake_with_apps();
    let srv = Tokend::start(&config(&fake, "", ""));
    let opts = serde_json::json!({
        "central": format!("http://{}", srv.addr), "central_key": OPS_KEY, "timeout_ms": 2000,
        "passive_refresh_interval_secs": 0,
    })
    .to_string();
    wx_token::register(APP2, None, Some(&opts)).expect("client-mode register");
    let t = wx_token::ticket(APP2, "jsapi").expect("ticket through the server");
    assert_eq!(
        fake.current_ticket(APP2, TicketKind::Jsapi),
        Some(t.access_token.clone())
    );
    let page = "https://m.example/checkout?step=2";
    for _ in 0..5 {
        let cfg: serde_json::Value =
            serde_json::from_str(&wx_token::jssdk_config(APP2, "jsapi", page).unwrap()).unwrap();
        fake.jssdk_check(&cfg, page)
            .expect("wx.config accepts a client-mode config");
    }
    assert_eq!(
        fake.app_stats(APP2).ticket_requests,
        1,
        "cached on the client"
    );
    // The report is forwarded: the server replaces its ticket once.
    fake.expire_tickets();
    wx_token::ticket_invalidate(APP2, "jsapi", &t.access_token).expect("forwarded");
    let t2 = wx_token::ticket(APP2, "jsapi").unwrap();
    assert_ne!(t2.access_token, t.access_token);
    assert_eq!(
        fake.current_ticket(APP2, TicketKind::Jsapi),
        Some(t2.access_token)
    );
    assert_eq!(fake.app_stats(APP2).ticket_requests, 2);
    wx_token::shutdown();
}
