//! wx_token: gets, caches and refreshes WeChat access_tokens for every app registered in the
//! process, and exposes that through a C ABI (`ffi`, header `include/wx_token.h`).
//!
//! Module map: `api` is the engine's Rust surface; `app` is one app's token state machine;
//! `registry` the process-wide app table; `ticket` an app's JS-SDK tickets (#13) and `jssdk` their signatures; `refresher` the background refreshes (timer queue,
//! worker pool, per-upstream rate); `token_cell` the cached read path and `hot_memory` where it lives;
//! `upstream` one HTTP exchange with WeChat; `pacing` backoff and WeChat's force limits;
//! `fork` fork-safety; `platform` what differs between operating systems; `events` what operators are told; `options` (keys listed in `options_schema`), `secret`, `token`, `error`, `status` the values they share.

mod api;
mod app;
mod error;
pub mod events;
pub mod ffi;
mod flight;
mod fork;
mod hot_memory;
pub mod jssdk;
mod options;
mod options_schema;
mod pacing;
mod platform;
mod refresher;
mod registry;
mod secret;
mod source;
mod stats;
mod status;
mod store;
mod sync;
mod ticket;
mod token;
mod token_cell;
mod upstream;

pub use api::{
    MAX_APPID_LEN, MAX_SECRET_LEN, TokenInfo, generation_counter, get, get_info, invalidate,
    jssdk_config, register, shutdown, stats, ticket, ticket_invalidate, try_get_info, unregister,
    with_ticket, with_token,
};
pub use error::{Error, TOKEN_REJECTED_ERRCODES};
pub use options::{DEFAULT_API_BASE, Endpoint, Options};
pub use pacing::{FORCE_DAILY_LIMIT, FORCE_MIN_SPACING};
pub use stats::{AppStats, FailureCount};
pub use status::Status;
pub use token::Token;
pub use upstream::{MAX_BODY_LEN, MAX_TOKEN_LEN, parse_response};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
