//! Property test of `options_json` parsing (#11's fuzz item, options part): whatever the
//! input, parsing never panics, gives the same answer twice, and what it accepts is within the
//! documented bounds. Bounded: a fixed number of cases, each a small input.

use proptest::prelude::*;
use wx_token::{Options, Status};

/// Keys the parser knows, and a few it must refuse.
const KEYS: &[&str] = &[
    "api_base",
    "endpoint",
    "refresh_ahead_secs",
    "timeout_ms",
    "retry_min_ms",
    "retry_max_ms",
    "error_cooldown_ms",
    "store",
    "store_prefix",
    "lease_ms",
    "store_sync_ms",
    "store_fallback_per_hour",
    "passive_refresh_interval_secs",
    "passive_refresh_daily_limit",
    "central",
    "central_key",
    "refresh_ahead_sec",
    "",
];

/// Values that exercise the types and bounds, without letting a `file:` store create
/// directories anywhere on this machine (only relative paths, which are refused).
fn value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{Value, json};
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (0u64..100_000).prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        prop::sample::select(vec![
            "stable",
            "classic",
            "memory",
            "file:relative/dir",
            "redis://127.0.0.1:1/0",
            "redis://user:pw@",
            "http://127.0.0.1:1",
            "https://tokens.internal:8443",
            "http://127.0.0.1:1,http://127.0.0.1:2",
            "http://10.0.0.1",
            "https://u:p@h",
            "wx_token:",
            "../x",
            "",
        ])
        .prop_map(|s| json!(s)),
        "[ -~]{0,24}"
            .prop_filter("no absolute file store", |s| !s.contains("file:/"))
            .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop::collection::vec(inner, 0..4).prop_map(Value::Array)
    })
}

fn options_object() -> impl Strategy<Value = String> {
    prop::collection::vec((prop::sample::select(KEYS), value()), 0..6).prop_map(|members| {
        let map: serde_json::Map<String, serde_json::Value> = members
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        serde_json::Value::Object(map).to_string()
    })
}

fn check(json: &str) {
    let first = Options::parse(Some(json));
    let second = Options::parse(Some(json));
    match (&first, &second) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b, "{json}");
            assert!(a.retry_min <= a.retry_max, "{json}");
            assert!(!a.timeout.is_zero() && a.passive_refresh_daily_limit <= 10_000);
            if let Some(c) = &a.central {
                assert!((1..=16).contains(&c.servers.len()), "{json}");
            }
        }
        (Err(a), Err(b)) => {
            assert_eq!(a, b, "{json}");
            assert_eq!(a.status(), Status::InvalidArgument, "{json}: {a:?}");
        }
        _ => panic!("{json}: {first:?} then {second:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn structured_options_parse_consistently(json in options_object()) {
        check(&json);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,64}") {
        check(&text);
    }

    #[test]
    fn arbitrary_bytes_as_json_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        check(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn deep_nesting_and_large_inputs_are_refused_without_overflowing_the_stack() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    check(&deep);
    let deep_object = format!(
        r#"{}1{}"#,
        r#"{"central":"#.repeat(50_000),
        "}".repeat(50_000)
    );
    check(&deep_object);
    let long_value = format!(r#"{{"api_base":"https://{}"}}"#, "a".repeat(60_000));
    check(&long_value);
    let many_urls: Vec<String> = (0..10_000).map(|i| format!("https://h{i}")).collect();
    check(&serde_json::json!({"central": many_urls, "central_key": "k"}).to_string());
}
