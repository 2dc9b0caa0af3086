//! The engine's operator events (`wx_token::events`: a refresh failing while the old token is
//! still served, a store outage, a fallback fetch...) as JSON log lines at their own level,
//! through the server's logger, so they reach the same place as everything else it logs.
//! Engine messages never hold a secret or a whole token; the logger masks URL userinfo too.

use serde_json::{Value, json};
use wx_token::events::{Event, Level, set_sink};

use crate::log;
use crate::metrics::status_label;

/// Events below this level are not built at all (debug events are for development).
const MIN_LEVEL: Level = Level::Info;

pub fn install() {
    set_sink(
        Some(Box::new(|e: &Event<'_>| {
            log::at(e.level.name(), "event", &fields(e))
        })),
        MIN_LEVEL,
    );
}

fn fields(e: &Event<'_>) -> Vec<(&'static str, Value)> {
    vec![
        ("kind", json!(e.kind)),
        ("appid", json!(e.app)),
        ("status", json!(status_label(e.status))),
        ("errcode", json!(e.errcode)),
        ("message", json!(e.message)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use wx_token::Status;
    use wx_token::events::kind;

    #[test]
    fn an_event_becomes_named_fields() {
        let e = Event {
            level: Level::Warn,
            app: "wx1",
            kind: kind::REFRESH_FAILED,
            message: "WeChat errcode 40164; retrying in 1 s",
            status: Status::WechatError,
            errcode: 40164,
        };
        let f: serde_json::Map<String, Value> = fields(&e)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        assert_eq!(
            Value::Object(f),
            json!({"kind": "refresh_failed", "appid": "wx1", "status": "wechat_error",
                   "errcode": 40164, "message": "WeChat errcode 40164; retrying in 1 s"})
        );
    }
}
