//! Structured logs: one JSON object per line on stderr, hand-written (a few lines instead of a
//! tracing stack). Callers pass only what is safe to log: appids, client names, statuses and
//! `token_prefix`es; never a secret, a client key or a whole token. As a last line of defence,
//! every string written has the userinfo (`user:password@`) of any URL in it masked, since
//! engine and configuration messages may quote a store or central URL.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// How much of a token may appear in a log line: enough to tell tokens apart, far too little
/// to use one.
pub const TOKEN_PREFIX_LEN: usize = 6;

pub fn token_prefix(token: &str) -> String {
    let mut p: String = token.chars().take(TOKEN_PREFIX_LEN).collect();
    p.push('…');
    p
}

pub fn info(msg: &str, fields: &[(&str, Value)]) {
    write_line("info", msg, fields);
}

pub fn warn(msg: &str, fields: &[(&str, Value)]) {
    write_line("warn", msg, fields);
}

pub fn error(msg: &str, fields: &[(&str, Value)]) {
    write_line("error", msg, fields);
}

/// At a level named at run time (engine events).
pub fn at(level: &str, msg: &str, fields: &[(&str, Value)]) {
    write_line(level, msg, fields);
}

fn write_line(level: &str, msg: &str, fields: &[(&str, Value)]) {
    let line = format_line(&now_rfc3339(), level, msg, fields);
    // One write of the whole line under stderr's lock, so concurrent lines never interleave.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

fn format_line(ts: &str, level: &str, msg: &str, fields: &[(&str, Value)]) -> String {
    let mut line = String::with_capacity(160);
    line.push_str("{\"ts\":\"");
    line.push_str(ts);
    line.push_str("\",\"level\":\"");
    line.push_str(level);
    line.push_str("\",\"msg\":");
    line.push_str(&Value::from(mask_userinfo(msg)).to_string());
    for (k, v) in fields {
        line.push(',');
        line.push_str(&Value::from(*k).to_string());
        line.push(':');
        line.push_str(&masked(v).to_string());
    }
    line.push_str("}\n");
    line
}

fn masked(v: &Value) -> std::borrow::Cow<'_, Value> {
    use std::borrow::Cow;
    match v {
        Value::String(s) if s.contains('@') => Cow::Owned(Value::from(mask_userinfo(s))),
        Value::Array(a) if a.iter().any(|x| !x.is_number()) => Cow::Owned(Value::Array(
            a.iter().map(|x| masked(x).into_owned()).collect(),
        )),
        Value::Object(o) => Cow::Owned(Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), masked(x).into_owned()))
                .collect(),
        )),
        _ => Cow::Borrowed(v),
    }
}

/// Replaces the userinfo of every `scheme://user:password@host` in `s` with `***`.
pub fn mask_userinfo(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at the path, query or fragment, or where the URL ends in text.
        let end = tail
            .find(|c: char| "/?#\"'<>`".contains(c) || c.is_whitespace() || c.is_control())
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// UTC now as `2026-01-02T03:04:05.678Z`, without a date-time dependency.
fn now_rfc3339() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs(), d.subsec_millis())
}

fn rfc3339(secs: u64, millis: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339(1_767_323_045, 678), "2026-01-02T03:04:05.678Z");
    }

    #[test]
    fn lines_are_json() {
        let l = format_line(
            "t",
            "info",
            "say \"hi\"",
            &[("n", json!(1)), ("s", json!("a\nb"))],
        );
        assert!(l.ends_with('\n') && !l[..l.len() - 1].contains('\n'));
        let v: Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["msg"], "say \"hi\"");
        assert_eq!(v["s"], "a\nb");
        assert_eq!(token_prefix("abcdefghij"), "abcdef…");
    }

    #[test]
    fn userinfo_is_masked_everywhere() {
        assert_eq!(
            mask_userinfo(
                "store redis://u:p%40ss@10.0.0.5:6379/0 and https://x:y@h, https://h/a@b"
            ),
            "store redis://***@10.0.0.5:6379/0 and https://***@h, https://h/a@b"
        );
        assert_eq!(mask_userinfo("no url @ all"), "no url @ all");
        assert_eq!(mask_userinfo("\"http://a:b@h\""), "\"http://***@h\"");
        let l = format_line(
            "t",
            "error",
            "bad central http://me:pw@h:1",
            &[
                ("error", json!("rediss://:pw@r/1")),
                ("list", json!(["http://q:pw@x"])),
            ],
        );
        assert!(!l.contains("pw"), "{l}");
    }
}
