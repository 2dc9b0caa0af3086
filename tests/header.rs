//! The checked-in header must be exactly what the pinned cbindgen generates from src/ffi.

#[test]
fn checked_in_header_is_fresh() {
    let generated = std::fs::read_to_string(concat!(env!("OUT_DIR"), "/wx_token.h"))
        .expect("build.rs generated a header");
    let checked_in =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/wx_token.h"))
            .unwrap();
    assert!(
        generated == checked_in,
        "include/wx_token.h is stale: regenerate it with `WX_TOKEN_UPDATE_HEADER=1 cargo build` and commit it"
    );
}
