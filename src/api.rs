//! The engine's Rust API; the C ABI in `ffi` is a thin layer over these functions.

use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::app::{App, AppConfig};
use crate::error::Error;
use crate::options::Options;
use crate::secret::Secret;
use crate::status::Status;
use crate::ticket::TicketKind;
use crate::token::Token;
use crate::{fork, refresher, registry};

pub const MAX_APPID_LEN: usize = 128;
pub const MAX_SECRET_LEN: usize = 512;

/// A token as handed to a caller, with what a binding needs to cache it on its side.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub access_token: String,
    /// Changes whenever the token handed out for this app changes (see `generation_counter`).
    pub generation: u64,
    /// How long the token stays valid from now.
    pub expires_in: Duration,
    /// When it was requested from WeChat (wall clock), by this process or by whichever process
    /// published it to a shared store.
    pub fetched_at: SystemTime,
    /// The lifetime WeChat gave it (`expires_in` at the time it was fetched).
    pub lifetime: Duration,
}

impl TokenInfo {
    fn of(t: &Token) -> TokenInfo {
        let now = Instant::now();
        let age = now.saturating_duration_since(t.requested_at());
        TokenInfo {
            access_token: t.value().to_owned(),
            generation: t.generation,
            expires_in: t.remaining(now),
            fetched_at: SystemTime::now().checked_sub(age).unwrap_or(UNIX_EPOCH),
            lifetime: t.lifetime(),
        }
    }
}

impl std::fmt::Debug for TokenInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenInfo")
            .field(
                "access_token",
                &format_args!("{} bytes", self.access_token.len()),
            )
            .field("generation", &self.generation)
            .field("expires_in", &self.expires_in)
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

/// Ids are file names in a file store and parts of keys in Redis, whatever store an app uses
/// today: `[A-Za-z0-9_.-]`, 1 to 128 bytes, not starting with `.` (no hidden files, no `..`).
/// A WeChat appid (`wx` and 16 hex digits) fits, and so does a label such as "acme.contacts".
pub fn validate_appid(appid: &str) -> Result<(), Error> {
    let ok = !appid.is_empty()
        && appid.len() <= MAX_APPID_LEN
        && !appid.starts_with('.')
        && appid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !ok {
        let shown: String = appid.chars().take(MAX_APPID_LEN).collect();
        return Err(Error::invalid(format!(
            "appid {shown:?} is not valid: it must be 1 to {MAX_APPID_LEN} characters of [A-Za-z0-9_.-], not starting with '.'"
        )));
    }
    Ok(())
}

fn app(appid: &str) -> Result<&'static App, Error> {
    registry::find(appid).ok_or_else(|| unknown_app(appid))
}

fn unknown_app(appid: &str) -> Error {
    let shown: String = appid.chars().take(MAX_APPID_LEN).collect();
    Error::new(
        Status::UnknownApp,
        format!("app {shown:?} is not registered"),
    )
}

/// Registers `appid`, or updates its secret and options. The cached token survives unless
/// the secret, `api_base`, `endpoint`, `store` or `central` changed. `secret` is `None` only in
/// client mode (the `central` option), where the central server holds it.
pub fn register(
    appid: &str,
    secret: Option<&str>,
    options_json: Option<&str>,
) -> Result<(), Error> {
    validate_appid(appid)?;
    let options = Options::parse(options_json)?;
    let secret = match (secret, &options.central) {
        (Some(s), _) if s.is_empty() || s.len() > MAX_SECRET_LEN => {
            return Err(Error::invalid(format!(
                "secret must be 1 to {MAX_SECRET_LEN} bytes"
            )));
        }
        (Some(s), None) => Some(Secret::new(s)),
        // With a central server the secret stays on that server, even if one is passed here.
        (_, Some(_)) => None,
        (None, None) => {
            return Err(Error::invalid(
                "secret is NULL (only client mode, with \"central\", works without one)",
            ));
        }
    };
    fork::install_handlers();
    let (workers, rate) = (options.refresh_workers, options.refresh_rate_per_sec);
    let app = registry::upsert(appid, AppConfig { secret, options });
    refresher::configure(app.upstream_key(), workers, rate);
    refresher::ensure_running();
    Ok(())
}

/// Unregisters `appid` (an account that left the platform). A fetch in flight for it lands
/// without publishing anything, its background refresh stops, and later calls answer
/// UNKNOWN_APP until it is registered again (then it starts from scratch: no token, no
/// remembered failure). A record in a shared store is left for the other processes of the
/// fleet. The app's memory (~1.4 KiB) and generation counter stay allocated, so addresses
/// handed out stay valid.
pub fn unregister(appid: &str) -> Result<(), Error> {
    if registry::unregister(appid) {
        Ok(())
    } else {
        Err(unknown_app(appid))
    }
}

/// Runs `f` on a usable token for `appid`: the cached one without I/O, or one fetched now
/// (a single fetch shared by all concurrent callers).
#[inline]
pub fn with_token<R>(appid: &str, f: impl FnOnce(&crate::token::Token) -> R) -> Result<R, Error> {
    refresher::ensure_running();
    match registry::with_app(appid, |app| app.with_token(f)) {
        Some(result) => result,
        None => Err(unknown_app(appid)),
    }
}

/// Runs `f` on the cached token's bytes, if `appid` is registered and its token usable now:
/// the fast path of `wx_token_get`, which takes `with_token` when this answers `None`.
#[inline]
pub(crate) fn with_cached_bytes<R>(appid: &[u8], f: impl FnOnce(&[u8]) -> R) -> Option<R> {
    refresher::ensure_running();
    registry::find_cell(appid)?.with_copy(f)
}

pub fn get(appid: &str) -> Result<String, Error> {
    with_token(appid, |t| t.value().to_owned())
}

pub fn get_info(appid: &str) -> Result<TokenInfo, Error> {
    with_token(appid, TokenInfo::of)
}

/// `get_info` if it can answer without waiting (a usable cached token, or a failure still in
/// its backoff or cooldown); `None` when it would wait on a fetch. For async servers, which
/// then hand the blocking call to a thread pool.
pub fn try_get_info(appid: &str) -> Option<Result<TokenInfo, Error>> {
    refresher::ensure_running();
    match registry::with_app(appid, |app| app.try_token(TokenInfo::of)) {
        Some(answer) => answer,
        None => Some(Err(unknown_app(appid))),
    }
}

/// Counters of the app's upstream work since it was registered in this process.
pub fn stats(appid: &str) -> Result<crate::AppStats, Error> {
    Ok(app(appid)?.stats())
}

/// The passive refresh; see `App::invalidate`.
pub fn invalidate(appid: &str, stale_token: Option<&str>) -> Result<(), Error> {
    refresher::ensure_running();
    app(appid)?.invalidate(stale_token)
}

/// A counter that changes whenever the token handed out for `appid` changes (refresh,
/// invalidation, new secret). It lives as long as the process.
pub fn generation_counter(appid: &str) -> Result<&'static AtomicU64, Error> {
    Ok(app(appid)?.generation_counter())
}

/// Runs `f` on a usable JS-SDK ticket of `kind` ("jsapi", "wx_card" for mp; "jsapi",
/// "agent_config" for WeCom) for `appid`: the cached one without I/O, or one fetched now (a
/// single fetch shared by all concurrent callers, and through a shared store by the fleet).
pub fn with_ticket<R>(
    appid: &str,
    kind: &str,
    f: impl FnOnce(&crate::token::Token) -> R,
) -> Result<R, Error> {
    refresher::ensure_running();
    let app = app(appid)?;
    let kind = TicketKind::parse(kind, &app.config().options.platform)?;
    app.tickets().cell(kind).with_ticket(app, f)
}

/// A ticket as `TokenInfo` (its `access_token` holds the ticket).
pub fn ticket(appid: &str, kind: &str) -> Result<TokenInfo, Error> {
    with_ticket(appid, kind, TokenInfo::of)
}

/// A page's wx.config failed with "invalid signature" for `stale`: compare-and-invalidate,
/// like `invalidate` for tokens (see `TicketCell::invalidate`).
pub fn ticket_invalidate(appid: &str, kind: &str, stale: &str) -> Result<(), Error> {
    refresher::ensure_running();
    let app = app(appid)?;
    let kind = TicketKind::parse(kind, &app.config().options.platform)?;
    app.tickets().cell(kind).invalidate(app, stale)
}

/// The JSON for `wx.config` ("jsapi") or WeCom's `wx.agentConfig` ("agent_config") of the
/// page at `url`: {"appId" (mp: the appid; WeCom: the corpid) | "corpid" + "agentid",
/// "timestamp", "nonceStr", "signature"}, with a fresh CSPRNG nonce and the current time.
pub fn jssdk_config(appid: &str, kind: &str, url: &str) -> Result<String, Error> {
    if url.is_empty() || url.chars().any(char::is_control) {
        return Err(Error::invalid(
            "url must be the page's full URL, without control characters",
        ));
    }
    refresher::ensure_running();
    let app = app(appid)?;
    let config = app.config();
    let kind = TicketKind::parse(kind, &config.options.platform)?;
    // Checked before any fetch: a wx_card or agent_config without agentid never costs a call.
    crate::ticket::config_json(&config.options, appid, kind, "-", url)?;
    let ticket = app
        .tickets()
        .cell(kind)
        .with_ticket(app, |t| t.value().to_owned())?;
    crate::ticket::config_json(&config.options, appid, kind, &ticket, url)
}

/// Stops background refreshing and waits for refreshes in progress. Safe to call more than
/// once; any later call into the library resumes background work.
pub fn shutdown() {
    refresher::shutdown();
}
