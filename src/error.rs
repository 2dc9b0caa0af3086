//! The engine's error value and how WeChat's errcodes are classified.

use std::fmt;
use std::sync::Arc;

use crate::status::Status;

/// An engine error: a status, WeChat's errcode when WeChat answered one (else 0), and a
/// human-readable message that never contains the AppSecret (see `upstream::scrub`).
///
/// Cloned cheaply: one fetch's failure is handed to every caller that waited on it.
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    status: Status,
    errcode: i32,
    message: Arc<str>,
    /// WeChat's own errmsg, verbatim after sanitising, when WeChat answered one.
    wechat_errmsg: Option<Arc<str>>,
    /// How a WeChat errcode is treated (mp and WeCom read some codes differently).
    class: Class,
}

impl Error {
    pub fn new(status: Status, message: impl Into<String>) -> Error {
        Error {
            status,
            errcode: 0,
            message: Arc::from(message.into()),
            wechat_errmsg: None,
            class: Class::Terminal,
        }
    }

    /// An errcode of an Official Account / Mini Program API (api.weixin.qq.com).
    pub fn wechat(errcode: i32, errmsg: &str) -> Error {
        Error::wechat_classed(errcode, errmsg, classify(errcode))
    }

    /// An errcode of a WeCom API (qyapi.weixin.qq.com): see `classify_wecom`.
    pub fn wecom(errcode: i32, errmsg: &str) -> Error {
        Error::wechat_classed(errcode, errmsg, classify_wecom(errcode))
    }

    /// The same WeChat error with its errmsg replaced (scrubbed), its class kept.
    pub fn with_wechat_errmsg(&self, errmsg: &str) -> Error {
        Error::wechat_classed(self.errcode, errmsg, self.class)
    }

    fn wechat_classed(errcode: i32, errmsg: &str, class: Class) -> Error {
        let hint = match class {
            Class::Transient => " (transient; retried with backoff)",
            Class::Terminal => {
                " (not retried until the cooldown ends; check the app's configuration)"
            }
        };
        Error {
            status: Status::WechatError,
            errcode,
            message: Arc::from(format!("WeChat errcode {errcode}: {errmsg}{hint}")),
            wechat_errmsg: Some(Arc::from(errmsg)),
            class,
        }
    }

    /// An error relayed from elsewhere (the central server) that already carries its status
    /// and WeChat errcode.
    pub fn relayed(status: Status, errcode: i32, message: impl Into<String>) -> Error {
        Error {
            status,
            errcode,
            message: Arc::from(message.into()),
            wechat_errmsg: None,
            class: classify(errcode),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(Status::InvalidArgument, message)
    }

    pub fn status(&self) -> Status {
        self.status
    }

    pub fn errcode(&self) -> i32 {
        self.errcode
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// WeChat's errmsg as it answered it, or "" when the error did not come from WeChat.
    pub fn wechat_errmsg(&self) -> &str {
        self.wechat_errmsg.as_deref().unwrap_or("")
    }

    /// Whether retrying soon may help. Terminal errors (bad credentials, IP not whitelisted,
    /// daily quota) get a long cooldown instead, so callers in a loop cannot burn the quota.
    pub fn is_transient(&self) -> bool {
        match self.status {
            Status::Network => true,
            Status::WechatError => self.class == Class::Transient,
            _ => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Error({}, errcode {}, {:?})",
            self.status.name(),
            self.errcode,
            &*self.message
        )
    }
}

impl std::error::Error for Error {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Transient,
    Terminal,
}

/// WeChat errcodes that are worth retrying after a short backoff: "system busy" and the
/// per-minute rate limit. Everything else, including codes we do not know, is treated as
/// terminal: retrying an unknown failure in a loop is exactly how the daily quota gets burnt.
pub fn classify(errcode: i32) -> Class {
    match errcode {
        -1 | 45011 => Class::Transient,
        _ => Class::Terminal,
    }
}

/// WeCom reads some codes otherwise: 45009 and 45033 are its frequency and concurrency limits
/// (back off briefly), not mp's daily quota. Its gettoken's 40001/40091 (bad secret), 40013
/// (bad corpid), 60020 (untrusted IP) and 48002 (API not allowed for this secret) are
/// terminal, like every code not listed.
pub fn classify_wecom(errcode: i32) -> Class {
    match errcode {
        -1 | 45009 | 45033 => Class::Transient,
        _ => Class::Terminal,
    }
}

/// Errcodes a business API answers when the token it was given is no longer valid; a caller
/// seeing one of these should pass the token to `invalidate` and retry once.
pub const TOKEN_REJECTED_ERRCODES: [i32; 3] = [40001, 42001, 40014];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_codes_are_not_transient() {
        for code in [
            40013, 40125, 40164, 61004, 40243, 41002, 41004, 89503, 89501, 89506, 89507, 45009,
            12345,
        ] {
            assert!(!Error::wechat(code, "x").is_transient(), "{code}");
        }
        for code in [-1, 45011] {
            assert!(Error::wechat(code, "x").is_transient(), "{code}");
        }
        assert!(Error::new(Status::Network, "x").is_transient());
        for code in [45009, 45033, -1] {
            assert!(Error::wecom(code, "x").is_transient(), "{code}");
            assert!(
                Error::wecom(code, "x")
                    .with_wechat_errmsg("y")
                    .is_transient()
            );
        }
        for code in [40001, 40091, 40013, 60020, 48002, 40014] {
            assert!(!Error::wecom(code, "x").is_transient(), "{code}");
        }
        assert!(!Error::new(Status::Protocol, "x").is_transient());
    }

    #[test]
    fn message_names_errcode_and_errmsg() {
        let e = Error::wechat(40013, "invalid appid");
        assert_eq!(e.status(), Status::WechatError);
        assert_eq!(e.errcode(), 40013);
        assert!(e.message().contains("40013") && e.message().contains("invalid appid"));
        assert_eq!(e.wechat_errmsg(), "invalid appid");
        assert_eq!(Error::new(Status::Network, "x").wechat_errmsg(), "");
    }
}
