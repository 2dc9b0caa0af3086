//! Tickets and WeCom over HTTP, as the engine and the bindings' tests see them.

mod common;

use common::*;
use serde_json::json;
use wx_fake::{FakeConfig, Fault, TICKET_PATH, TicketKind};

fn sign(ticket: &str, nonce: &str, ts: &str, url: &str) -> String {
    let page = url.split('#').next().unwrap();
    sha1_smol::Sha1::from(format!(
        "jsapi_ticket={ticket}&noncestr={nonce}&timestamp={ts}&url={page}"
    ))
    .digest()
    .to_string()
}

#[test]
fn getticket_serves_the_same_ticket_with_full_expires_in_and_takes_path_faults() {
    let f = fake_with(FakeConfig::default().with_app(APP, SECRET));
    let url = f.base_url();
    let token = token_of(&classic(&url, APP, SECRET));
    let target = format!(
        "/cgi-bin/ticket/getticket?access_token={}&type=jsapi",
        enc(&token)
    );
    let a = get(&url, &target).json();
    assert_eq!(
        (a["errcode"].as_i64(), a["expires_in"].as_u64()),
        (Some(0), Some(7200))
    );
    let b = get(&url, &target).json();
    assert_eq!(a["ticket"], b["ticket"]);
    assert_eq!(f.app_stats(APP).ticket_requests, 2);
    assert_eq!(f.stats().tickets_issued, 1);
    // A pathless fault is for the token endpoints; a path-bound one hits the ticket.
    f.push_fault(Fault::wx_error(40001, "invalid credential").for_path(TICKET_PATH));
    assert_eq!(get(&url, &target).json()["errcode"], 40001);
    assert_eq!(get(&url, &target).json()["ticket"], a["ticket"]);
    let bad = format!(
        "/cgi-bin/ticket/getticket?access_token={}&type=nope",
        enc(&token)
    );
    assert_eq!(get(&url, &bad).json()["errcode"], 40097);
    f.revoke(&token);
    assert_eq!(get(&url, &target).json()["errcode"], 40001);
    // The browser check over HTTP.
    let ticket = f.current_ticket(APP, TicketKind::Jsapi).unwrap();
    let page = "https://shop.example/p?id=1#top";
    let cfg = json!({"appId": APP, "timestamp": "1700000000", "nonceStr": "abc",
                     "signature": sign(&ticket, "abc", "1700000000", page), "url": page});
    assert_eq!(
        post(&url, "/_fake/jssdk_check", &cfg.to_string()).json(),
        json!({"ok": true})
    );
    let mut wrong = cfg.clone();
    wrong["url"] = json!("https://shop.example/p?id=2");
    assert_eq!(
        post(&url, "/_fake/jssdk_check", &wrong.to_string()).json()["ok"],
        false
    );
    post(&url, "/_fake/expire_tickets", "{}");
    assert_eq!(
        post(&url, "/_fake/jssdk_check", &cfg.to_string()).json()["ok"],
        false
    );
    assert_eq!(f.stats().check_failures, 2);
}

#[test]
fn wecom_tokens_per_secret_and_tickets_per_corp_and_agent() {
    let f = fake();
    let url = f.base_url();
    post(
        &url,
        "/_fake/wecom",
        r#"{"corpid":"ww1","secret":"app-secret","agentid":1000002}"#,
    );
    post(
        &url,
        "/_fake/wecom",
        r#"{"corpid":"ww1","secret":"contacts-secret"}"#,
    );
    let tok = |secret: &str| {
        get(
            &url,
            &format!("/cgi-bin/gettoken?corpid=ww1&corpsecret={secret}"),
        )
        .json()
    };
    let app = tok("app-secret");
    let contacts = tok("contacts-secret");
    assert_ne!(app["access_token"], contacts["access_token"]);
    assert_eq!(tok("app-secret")["access_token"], app["access_token"]);
    assert_eq!(tok("nope")["errcode"], 40001);
    assert_eq!(
        get(&url, "/cgi-bin/gettoken?corpid=ww9&corpsecret=x").json()["errcode"],
        40013
    );
    let app_token = token_of(&app);
    let api = get(
        &url,
        &format!("/cgi-bin/getcallbackip?access_token={}", enc(&app_token)),
    )
    .json();
    assert_eq!(api["errcode"], 0);
    let corp = get(
        &url,
        &format!("/cgi-bin/get_jsapi_ticket?access_token={}", enc(&app_token)),
    )
    .json();
    let agent = get(
        &url,
        &format!(
            "/cgi-bin/ticket/get?access_token={}&type=agent_config",
            enc(&app_token)
        ),
    )
    .json();
    assert_ne!(corp["ticket"], agent["ticket"]);
    let by_http = get(&url, "/_fake/ticket?owner=ww1/1000002&kind=agent_config").json();
    assert_eq!(by_http["ticket"], agent["ticket"]);
    let s = f.stats();
    assert_eq!(
        (
            s.wecom_token_requests,
            s.corp_ticket_requests,
            s.agent_ticket_requests
        ),
        (5, 1, 1)
    );
    assert_eq!(f.app_stats("ww1").corp_ticket_requests, 1);
    let log = get(&url, "/_fake/requests").json();
    assert_eq!(log[0]["endpoint"], "gettoken");
    assert_eq!(log[0]["appid"], "ww1");
}
