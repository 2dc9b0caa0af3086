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

/// Every status-returning export runs inside `ffi_boundary!`, which turns a panic into
/// WX_PANIC: so each one's documentation must list WX_PANIC (the header promises to document
/// every status a function can return). `wx_last_errcode` returns an errcode, not a status.
#[test]
fn every_status_returning_function_documents_wx_panic() {
    let header =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/wx_token.h"))
            .unwrap();
    let mut missing = Vec::new();
    let mut doc = String::new();
    for line in header.lines() {
        let t = line.trim_start();
        if t.starts_with("/**") {
            doc.clear();
        }
        if t.starts_with("/**") || t.starts_with('*') {
            doc.push_str(t);
            doc.push('\n');
            continue;
        }
        // Top-level declarations only (not struct fields, not continuation lines).
        if line.starts_with("int32_t wx_") {
            let name = line["int32_t ".len()..].split('(').next().unwrap_or(line);
            let lists = doc.contains("WX_PANIC") || doc.contains("what wx_token_get returns");
            if name != "wx_last_errcode" && !lists {
                missing.push(name.to_owned());
            }
        }
    }
    assert!(missing.is_empty(), "no WX_PANIC in the doc of {missing:?}");
}
