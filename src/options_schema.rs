//! The one list of options_json keys. `RawOptions` (what `Options::parse` accepts) and the
//! schema the C ABI exports (`wx_token_options_schema`, which bindings check their option
//! types against) are both generated from it, so a key cannot be added to one and not the
//! other: adding an option is one line here plus its handling in `Options::parse`.

use std::ffi::{CStr, CString};
use std::sync::LazyLock;

/// Calls `$then!` with every option, one per line:
/// `key: Rust type, "JSON type", "default as JSON text" (or "null"), "one-line meaning";`
macro_rules! with_options {
    ($then:ident) => {
        $then! {
            api_base: String, "string", "\"https://api.weixin.qq.com\"", "WeChat's API base URL; https, or http only to a loopback host (tests, a local proxy)";
            endpoint: String, "string", "\"stable\"", "which token API to call: \"stable\" (stable_token) or \"classic\" (cgi-bin/token)";
            platform: String, "string", "\"mp\"", "\"mp\" (Official Account / Mini Program, api.weixin.qq.com) or \"wecom\" (WeCom, qyapi.weixin.qq.com: the id is a label of one corp secret)";
            corpid: String, "string", "null", "WeCom: the corp's id (required with \"platform\": \"wecom\")";
            agentid: u64, "integer", "null", "WeCom: the app's agentid, for wx.agentConfig (agent_config tickets)";
            refresh_ahead_secs: u64, "integer", "300", "refresh this many seconds before expiry (at most half the token's lifetime), 0 to 86400";
            timeout_ms: u64, "integer", "5000", "timeout of one upstream request, 1 to 600000";
            retry_min_ms: u64, "integer", "500", "first backoff after a transient failure; doubles per failure, with jitter";
            retry_max_ms: u64, "integer", "60000", "longest backoff after transient failures; not less than retry_min_ms";
            error_cooldown_ms: u64, "integer", "30000", "how long a terminal WeChat error (bad secret, 40164...) is answered from memory; doubles while it repeats, up to an hour";
            store: String, "string", "\"memory\"", "where the token is shared: \"memory\" (this process), \"file:/abs/dir\", \"redis://[user:pass@]host:port/db\", \"rediss://...\", \"redis+sentinel://host:port[,...]/service[/db]\" or \"redis+cluster://host:port[,...]\"";
            store_prefix: String, "string", "\"wx_token:\"", "prefix of the shared store's keys (needs \"store\")";
            lease_ms: u64, "integer", "null", "how long a shared store's refresh lease lasts, 100 to 600000; default 10000, or twice timeout_ms if larger";
            store_sync_ms: u64, "integer", "10000", "how often a process re-reads a shared store for tokens other processes published";
            store_fallback_per_hour: u32, "integer", "2", "direct upstream fetches allowed per hour while the shared store is unreachable and no token is valid, 0 to 60";
            store_tls_ca_file: String, "string", "null", "TLS Redis store: absolute path of a PEM CA bundle to trust instead of the public web roots";
            store_tls_cert_file: String, "string", "null", "TLS Redis store: absolute path of a PEM client certificate (with store_tls_key_file)";
            store_tls_key_file: String, "string", "null", "TLS Redis store: absolute path of the PEM private key of store_tls_cert_file";
            passive_refresh_interval_secs: u64, "integer", "30", "least time between two fetches started by invalidating the current token, 0 to 86400 (0: no spacing)";
            passive_refresh_daily_limit: u64, "integer", "100", "most fetches started by invalidating the current token per rolling 24 h, 0 to 10000";
            central: CentralUrls, "string", "null", "client mode: the wx-tokend servers that hold the secret (https, or http on loopback), comma-separated (or a JSON array), failed over in order; needs central_key, no secret";
            central_key: String, "string", "null", "client mode: this client's key for the central server (a secret, never logged)";
            refresh_workers: u64, "integer", "null", "process-wide: threads running background refreshes, 1 to 256; the pool is the largest value any registration gave (8 if none did)";
            refresh_rate_per_sec: u64, "integer", "null", "process-wide per upstream: background refreshes per second to this api_base (or central server), 1 to 100000; the lowest value any registration for it gave applies (50 if none did)";
        }
    };
}
pub(crate) use with_options;

macro_rules! schema_entries {
    ($($key:ident: $ty:ty, $json_type:literal, $default:literal, $meaning:literal;)*) => {
        &[$((stringify!($key), $json_type, $default, $meaning)),*]
    };
}

/// (key, JSON type, default as JSON text, meaning), in declaration order.
pub const OPTIONS: &[(&str, &str, &str, &str)] = with_options!(schema_entries);

/// The schema as JSON: {"KEY": {"type", "default", "meaning"}, ...}, NUL-terminated.
pub fn json() -> &'static CStr {
    static JSON: LazyLock<CString> = LazyLock::new(|| {
        let entries: Vec<String> = OPTIONS
            .iter()
            .map(|(key, ty, default, meaning)| {
                format!(
                    "{}:{{\"type\":{},\"default\":{default},\"meaning\":{}}}",
                    serde_json::Value::from(*key),
                    serde_json::Value::from(*ty),
                    serde_json::Value::from(*meaning)
                )
            })
            .collect();
        CString::new(format!("{{{}}}", entries.join(","))).expect("no NUL in the schema")
    });
    &JSON
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Options;

    fn schema() -> serde_json::Map<String, serde_json::Value> {
        let v: serde_json::Value = serde_json::from_str(json().to_str().unwrap()).unwrap();
        v.as_object().unwrap().clone()
    }

    #[test]
    fn schema_is_json_with_a_type_default_and_meaning_per_key() {
        let schema = schema();
        assert_eq!(schema.len(), OPTIONS.len(), "no key declared twice");
        for (key, entry) in &schema {
            let ty = entry["type"].as_str().unwrap();
            let default = &entry["default"];
            match ty {
                "string" => assert!(default.is_null() || default.is_string(), "{key}"),
                "integer" => assert!(default.is_null() || default.is_u64(), "{key}"),
                other => panic!("{key}: unknown type {other}"),
            }
            assert!(!entry["meaning"].as_str().unwrap().is_empty(), "{key}");
        }
    }

    /// Each documented default, given explicitly, configures exactly what leaving the key out
    /// does. ("store":"memory" is the base so that store_prefix, which needs a store, parses.)
    #[test]
    fn every_documented_default_is_the_engine_default() {
        for (key, entry) in schema() {
            if entry["default"].is_null() {
                continue;
            }
            let mut opts = serde_json::json!({ "store": "memory" });
            opts[&key] = entry["default"].clone();
            let parsed = Options::parse(Some(&opts.to_string()))
                .unwrap_or_else(|e| panic!("{key}'s default is rejected: {e}"));
            assert_eq!(parsed, Options::default(), "{key}'s documented default");
        }
    }

    /// The parser's accepted keys (serde lists them when it rejects an unknown one) are the
    /// schema's keys.
    #[test]
    fn the_parser_accepts_exactly_the_schema_keys() {
        let e = Options::parse(Some(r#"{"no_such_option":1}"#)).unwrap_err();
        let msg = e.message();
        let listed = msg
            .split_once("expected one of ")
            .unwrap_or_else(|| panic!("serde lists the fields: {msg}"))
            .1;
        let mut accepted: Vec<&str> = listed
            .split(", ")
            .map(|k| k.split('`').nth(1).unwrap())
            .collect();
        let mut declared: Vec<&str> = OPTIONS.iter().map(|o| o.0).collect();
        accepted.sort_unstable();
        declared.sort_unstable();
        assert_eq!(accepted, declared);
    }
}
