//! wx_token_shutdown stops the process-wide refresher, so it runs in a test binary of its own.

mod common;

use common::*;
use wx_fake::FakeConfig;
use wx_token::ffi::*;

#[test]
fn shutdown_stops_background_work_and_calls_resume_it() {
    let s = Setup::new(
        "shutdown",
        FakeConfig {
            lifetime_secs: 4,
            overlap_secs: 1,
            ..FakeConfig::default()
        },
    );
    s.register(r#""refresh_ahead_secs":2"#);
    let t = get(&s.appid).unwrap();
    assert_eq!(wx_token_shutdown(), WX_OK);
    assert_eq!(wx_token_shutdown(), WX_OK, "idempotent");
    assert_eq!(get(&s.appid).unwrap(), t, "cached tokens stay usable");
    // That get resumed the refresher: the refresh ahead still happens.
    assert!(eventually(6, || s.fetches() >= 2));
}
