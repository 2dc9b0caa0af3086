//! The engine's client mode (`central` option) against the real wx-tokend: the contract between
//! the two sides, checked from both ends. The business side registers without a secret.

mod common;

use common::*;

#[test]
fn engine_in_client_mode_gets_and_invalidates_through_the_server() {
    let fake = fake_with_apps();
    let srv = Tokend::start(&config(&fake, "", ""));
    let central = format!("http://{}", srv.addr);
    let opts =
        serde_json::json!({"central": central, "central_key": BILLING_KEY, "timeout_ms": 2000})
            .to_string();
    wx_token::register(APP1, None, Some(&opts)).expect("client-mode register");

    let t1 = wx_token::get(APP1).expect("token through the server");
    assert_eq!(Some(t1.clone()), fake.current_token(APP1));
    let info = wx_token::get_info(APP1).unwrap();
    assert!(info.expires_in.as_secs() > 7000, "{info:?}");
    assert_eq!(fetches(&fake, APP1), 1);

    // The passive refresh is forwarded: one more fetch upstream, the new token here.
    wx_token::invalidate(APP1, Some(&t1)).expect("invalidate forwarded");
    let t2 = wx_token::get(APP1).unwrap();
    assert_ne!(t2, t1);
    assert_eq!(Some(t2.clone()), fake.current_token(APP1));
    assert_eq!(fetches(&fake, APP1), 2);

    // A key not allowed for the app: the server's 401 comes back as an engine error.
    let opts2 =
        serde_json::json!({"central": format!("http://{}", srv.addr), "central_key": BILLING_KEY})
            .to_string();
    wx_token::register(APP2, None, Some(&opts2)).unwrap();
    let e = wx_token::get(APP2).unwrap_err();
    assert!(e.message().contains("401"), "{e:?}");
    assert_eq!(fetches(&fake, APP2), 0);

    // An upstream error is relayed with its status and errcode.
    let opts3 =
        serde_json::json!({"central": format!("http://{}", srv.addr), "central_key": OPS_KEY})
            .to_string();
    wx_token::register(APP2, None, Some(&opts3)).unwrap();
    fake.push_fault(wx_fake::Fault::quota().for_app(APP2));
    let e = wx_token::get(APP2).unwrap_err();
    assert_eq!(
        (e.status(), e.errcode()),
        (wx_token::Status::WechatError, 45009),
        "{e:?}"
    );
    wx_token::shutdown();
}
