//! Status codes returned by every C ABI function.
//!
//! The numbers are part of the ABI: they never change and are never reused.
//! New statuses only ever get new numbers.

/// The outcome class of an operation; `#[repr(i32)]` so it crosses the ABI as a plain int.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    Ok = 0,
    InvalidArgument = 1,
    BufferTooSmall = 2,
    UnknownApp = 3,
    WechatError = 4,
    Network = 5,
    Protocol = 6,
    Store = 7,
    Panic = 8,
    RateLimited = 9,
}

impl Status {
    /// Stable upper-case name, the same as the C constant without the `WX_` prefix.
    pub fn name(self) -> &'static str {
        self.c_name().to_str().unwrap_or("UNKNOWN")
    }

    /// The name as a static C string, for `wx_status_name`.
    pub fn c_name(self) -> &'static std::ffi::CStr {
        match self {
            Status::Ok => c"OK",
            Status::InvalidArgument => c"INVALID_ARGUMENT",
            Status::BufferTooSmall => c"BUFFER_TOO_SMALL",
            Status::UnknownApp => c"UNKNOWN_APP",
            Status::WechatError => c"WECHAT_ERROR",
            Status::Network => c"NETWORK",
            Status::Protocol => c"PROTOCOL",
            Status::Store => c"STORE",
            Status::Panic => c"PANIC",
            Status::RateLimited => c"RATE_LIMITED",
        }
    }

    pub fn from_code(code: i32) -> Option<Status> {
        Some(match code {
            0 => Status::Ok,
            1 => Status::InvalidArgument,
            2 => Status::BufferTooSmall,
            3 => Status::UnknownApp,
            4 => Status::WechatError,
            5 => Status::Network,
            6 => Status::Protocol,
            7 => Status::Store,
            8 => Status::Panic,
            9 => Status::RateLimited,
            _ => return None,
        })
    }
}
