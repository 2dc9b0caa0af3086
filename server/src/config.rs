//! The TOML configuration: parsed strictly (unknown keys are errors, so a typo never silently
//! falls back to a default), then resolved: secrets and client keys are read from the
//! environment or files here, once, so that the rest of the server never sees where they
//! came from and `--check-config` catches a missing variable before a deploy does.

use std::collections::HashSet;
use std::io::Read as _;
use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::auth::KeyDigest;

/// Client keys shorter than this are refused: a bearer key is the only thing between the
/// network and every token, so it must not be guessable.
pub const MIN_KEY_LEN: usize = 16;
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// A client has this long to send a request head on a new connection, and an idle keep-alive
/// connection is closed after it: an idle socket must not hold a slot for long.
pub const DEFAULT_HEAD_TIMEOUT_MS: u64 = 5_000;
/// Connections one IP address may hold open at once; beyond, new ones are closed at once.
pub const DEFAULT_MAX_CONNECTIONS_PER_PEER: usize = 256;
/// Token requests per second a client key may make (a burst of `DEFAULT_REQUEST_BURST`).
/// A client caches its token for `expires_in`, so even a large fleet stays far below; the
/// limit keeps one runaway loop from taking the server's CPU from every other key.
pub const DEFAULT_REQUESTS_PER_SECOND: u32 = 1000;
pub const DEFAULT_REQUEST_BURST: u32 = 2000;
/// Invalidations that may cause a fetch (the reported token is the current one, or a forced
/// refresh) per minute and key, after a burst: each is one token request to WeChat.
pub const DEFAULT_INVALIDATIONS_PER_MINUTE: u32 = 6;
pub const DEFAULT_INVALIDATION_BURST: u32 = 10;
/// Secret and key files are a line of text: anything bigger (or not a regular file, such as
/// `/dev/zero` or a FIFO) is a mistake, refused before it can hang or exhaust the server.
pub const MAX_SECRET_FILE: u64 = 64 * 1024;
/// The configuration file itself.
pub const MAX_CONFIG_FILE: u64 = 1024 * 1024;
/// A TLS certificate chain or key.
pub const MAX_PEM_FILE: u64 = 1024 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: String,
    tls: Option<RawTls>,
    request_timeout_ms: Option<u64>,
    head_timeout_ms: Option<u64>,
    max_connections: Option<usize>,
    max_connections_per_peer: Option<usize>,
    metrics_key_env: Option<String>,
    log_requests: Option<bool>,
    requests_per_second: Option<u32>,
    requests_burst: Option<u32>,
    invalidations_per_minute: Option<u32>,
    invalidations_burst: Option<u32>,
    #[serde(default)]
    app: Vec<RawApp>,
    #[serde(default)]
    client: Vec<RawClient>,
}

/// Per-client-key limits: top-level defaults, overridable in each `[[client]]`.
#[derive(Default, Clone, Copy)]
struct RawLimits {
    requests_per_second: Option<u32>,
    requests_burst: Option<u32>,
    invalidations_per_minute: Option<u32>,
    invalidations_burst: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: PathBuf,
    key: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApp {
    appid: String,
    secret_env: Option<String>,
    secret_file: Option<PathBuf>,
    /// Accepted by the parser only to be refused with a clear message: an inline secret ends
    /// up in version control, backups and `ps`-readable config management.
    secret: Option<toml::Value>,
    options: Option<toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    name: String,
    key_env: Option<String>,
    key_file: Option<PathBuf>,
    key_sha256: Option<String>,
    apps: Vec<String>,
    requests_per_second: Option<u32>,
    requests_burst: Option<u32>,
    invalidations_per_minute: Option<u32>,
    invalidations_burst: Option<u32>,
}

/// A resolved app: what `wx_token::register` needs.
pub struct App {
    pub appid: String,
    pub secret: String,
    /// The engine's options as a JSON object, or `None` for the engine's defaults.
    pub options_json: Option<String>,
}

impl Drop for App {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.secret);
    }
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("appid", &self.appid)
            .field("options_json", &self.options_json)
            .finish()
    }
}

/// A resolved client: its name (for logs and metrics), the SHA-256 of its key (the key itself
/// is not kept), and the apps it may ask for.
#[derive(Debug)]
pub struct Client {
    pub name: String,
    pub key: KeyDigest,
    /// `None` means every configured app (`apps = ["*"]`).
    pub apps: Option<HashSet<String>>,
    pub limits: Limits,
}

/// How much one client key may ask for; see `limits.rs`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// 0: no limit.
    pub requests_per_second: u32,
    pub requests_burst: u32,
    pub invalidations_per_minute: u32,
    pub invalidations_burst: u32,
}

#[derive(Debug)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub tls: Option<Tls>,
    pub request_timeout: Duration,
    pub head_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_peer: usize,
    pub metrics_key: Option<KeyDigest>,
    pub log_requests: bool,
    pub apps: Vec<App>,
    pub clients: Vec<Client>,
    /// Things an operator should fix that do not stop the server (file modes, plain HTTP
    /// beyond loopback): logged as warnings at startup, reload and `--check-config`.
    pub warnings: Vec<String>,
}

/// What the listening socket and accept loop are built with: applied at restart only.
#[derive(Debug, PartialEq)]
pub struct Listening {
    listen: SocketAddr,
    /// Whether TLS is on; its certificate and key files are reloadable.
    tls: bool,
    max_connections: usize,
    max_connections_per_peer: usize,
    head_timeout: Duration,
}

impl Config {
    pub fn listening(&self) -> Listening {
        Listening {
            listen: self.listen,
            tls: self.tls.is_some(),
            max_connections: self.max_connections,
            max_connections_per_peer: self.max_connections_per_peer,
            head_timeout: self.head_timeout,
        }
    }

    pub fn load(path: &Path) -> Result<Config, String> {
        let (text, mode) = read_small_file(path, MAX_CONFIG_FILE)?;
        let mut cfg = Config::parse(&text, &|name| std::env::var(name).ok())?;
        if let Some(w) = mode_warning("the configuration file", path, mode) {
            cfg.warnings.insert(0, w);
        }
        Ok(cfg)
    }

    /// Parses and resolves `text`; `env` looks up environment variables (a parameter so unit
    /// tests need not touch the process environment).
    pub fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, String> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
        let mut warnings = Vec::new();
        let listen: SocketAddr = raw.listen.parse().map_err(|_| {
            format!(
                "config: listen = {:?} is not an IP:port address",
                raw.listen
            )
        })?;
        let request_timeout_ms = raw.request_timeout_ms.unwrap_or(DEFAULT_REQUEST_TIMEOUT_MS);
        if !(100..=600_000).contains(&request_timeout_ms) {
            return Err(format!(
                "config: request_timeout_ms must be between 100 and 600000, not {request_timeout_ms}"
            ));
        }
        let head_timeout_ms = raw.head_timeout_ms.unwrap_or(DEFAULT_HEAD_TIMEOUT_MS);
        in_range("head_timeout_ms", head_timeout_ms, 100, 600_000)?;
        let max_connections = raw.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
        in_range("max_connections", max_connections as u64, 1, 1_000_000)?;
        let max_connections_per_peer = raw
            .max_connections_per_peer
            .unwrap_or(DEFAULT_MAX_CONNECTIONS_PER_PEER)
            .min(max_connections);
        in_range(
            "max_connections_per_peer",
            max_connections_per_peer as u64,
            1,
            1_000_000,
        )?;
        let default_limits = resolve_limits(
            &RawLimits {
                requests_per_second: raw.requests_per_second,
                requests_burst: raw.requests_burst,
                invalidations_per_minute: raw.invalidations_per_minute,
                invalidations_burst: raw.invalidations_burst,
            },
            None,
            "",
        )?;
        let metrics_key = match &raw.metrics_key_env {
            Some(var) => Some(KeyDigest::of(&key_from_env(env, var, "metrics_key_env")?)),
            None => None,
        };
        if !listen.ip().is_loopback() {
            if raw.tls.is_none() {
                warnings.push(format!(
                    "listen = \"{listen}\" is not a loopback address and tls is not set: client keys \
                     and tokens cross the network in clear text unless a TLS proxy is in front"
                ));
            }
            if metrics_key.is_none() {
                warnings.push(format!(
                    "listen = \"{listen}\" is not a loopback address and metrics_key_env is not set: \
                     /metrics answers 401 to everyone"
                ));
            }
        }

        if raw.app.is_empty() {
            return Err("config: at least one [[app]] is required".into());
        }
        let mut apps = Vec::new();
        let mut appids = HashSet::new();
        for a in raw.app {
            let app = resolve_app(a, env, &mut warnings)?;
            if !appids.insert(app.appid.clone()) {
                return Err(format!("config: app {:?} is configured twice", app.appid));
            }
            apps.push(app);
        }

        if raw.client.is_empty() {
            return Err(
                "config: at least one [[client]] is required (nobody could ask for a token)".into(),
            );
        }
        let mut clients: Vec<Client> = Vec::new();
        for c in raw.client {
            let client = resolve_client(c, env, &appids, &default_limits, &mut warnings)?;
            if clients.iter().any(|o| o.name == client.name) {
                return Err(format!(
                    "config: client {:?} is configured twice",
                    client.name
                ));
            }
            if clients.iter().any(|o| o.key.bytes() == client.key.bytes()) {
                return Err(format!(
                    "config: client {:?} has the same key as another client",
                    client.name
                ));
            }
            clients.push(client);
        }

        if let Some(t) = &raw.tls
            && let Ok(meta) = std::fs::metadata(&t.key)
            && let Some(w) = mode_warning("tls.key", &t.key, meta.mode())
        {
            warnings.push(w);
        }
        Ok(Config {
            listen,
            tls: raw.tls.map(|t| Tls {
                cert: t.cert,
                key: t.key,
            }),
            request_timeout: Duration::from_millis(request_timeout_ms),
            head_timeout: Duration::from_millis(head_timeout_ms),
            max_connections,
            max_connections_per_peer,
            metrics_key,
            log_requests: raw.log_requests.unwrap_or(true),
            apps,
            clients,
            warnings,
        })
    }
}

/// A TOML error as its message and position only: the library's own rendering quotes the
/// offending line, which may hold a store password or an inline secret.
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("config: line {line}, column {col}: {}", e.message())
        }
        None => format!("config: {}", e.message()),
    }
}

fn in_range(key: &str, v: u64, min: u64, max: u64) -> Result<u64, String> {
    if (min..=max).contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "config: {key} must be between {min} and {max}, not {v}"
        ))
    }
}

/// A client's limits: its own keys, else the top-level ones, else the defaults.
fn resolve_limits(raw: &RawLimits, base: Option<&Limits>, what: &str) -> Result<Limits, String> {
    let pick = |own: Option<u32>, inherited: Option<u32>, default: u32| -> u64 {
        own.or(inherited).unwrap_or(default).into()
    };
    let key = |k: &str| format!("{what}{k}");
    Ok(Limits {
        requests_per_second: in_range(
            &key("requests_per_second"),
            pick(
                raw.requests_per_second,
                base.map(|b| b.requests_per_second),
                DEFAULT_REQUESTS_PER_SECOND,
            ),
            0,
            1_000_000,
        )? as u32,
        requests_burst: in_range(
            &key("requests_burst"),
            pick(
                raw.requests_burst,
                base.map(|b| b.requests_burst),
                DEFAULT_REQUEST_BURST,
            ),
            1,
            1_000_000,
        )? as u32,
        invalidations_per_minute: in_range(
            &key("invalidations_per_minute"),
            pick(
                raw.invalidations_per_minute,
                base.map(|b| b.invalidations_per_minute),
                DEFAULT_INVALIDATIONS_PER_MINUTE,
            ),
            1,
            600,
        )? as u32,
        invalidations_burst: in_range(
            &key("invalidations_burst"),
            pick(
                raw.invalidations_burst,
                base.map(|b| b.invalidations_burst),
                DEFAULT_INVALIDATION_BURST,
            ),
            1,
            1000,
        )? as u32,
    })
}

/// Validates engine options as `register` would, without its side effects: a file store's
/// directory is checked (absolute; a directory if it exists) but not created, so that
/// `--check-config` changes nothing on disk.
fn check_options(json: &str) -> Result<(), String> {
    let mut v: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    if let Some(dir) = v
        .get("store")
        .and_then(|s| s.as_str())
        .and_then(|s| s.strip_prefix("file:"))
    {
        let dir = Path::new(dir);
        if !dir.is_absolute() {
            return Err(
                "a file store needs an absolute directory, as in file:/var/lib/wx-token".into(),
            );
        }
        if let Ok(meta) = std::fs::symlink_metadata(dir)
            && !meta.is_dir()
        {
            return Err(format!("store {} is not a directory", dir.display()));
        }
        // The rest of the options are checked against a memory store, which has no side
        // effect; the engine checks the directory itself again at register.
        v["store"] = "memory".into();
    }
    wx_token::Options::parse(Some(&v.to_string()))
        .map(drop)
        .map_err(|e| e.message().to_owned())
}

fn resolve_app(
    a: RawApp,
    env: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> Result<App, String> {
    let appid = a.appid;
    if appid.is_empty()
        || appid.len() > wx_token::MAX_APPID_LEN
        || !appid.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(format!(
            "config: appid {appid:?} must be 1 to {} printable ASCII characters without spaces",
            wx_token::MAX_APPID_LEN
        ));
    }
    if a.secret.is_some() {
        return Err(format!(
            "config: app {appid:?}: an inline `secret` is not allowed (it would end up in version control \
             and backups); use secret_env = \"VAR\" or secret_file = \"/run/secrets/...\""
        ));
    }
    let what = format!("app {appid:?}");
    let secret = match (a.secret_env, a.secret_file) {
        (Some(var), None) => from_env(env, &var, &what)?,
        (None, Some(path)) => from_file(&path, &what, warnings)?,
        _ => {
            return Err(format!(
                "config: app {appid:?}: exactly one of secret_env or secret_file is required"
            ));
        }
    };
    if secret.len() > wx_token::MAX_SECRET_LEN {
        return Err(format!(
            "config: app {appid:?}: the secret is over {} bytes",
            wx_token::MAX_SECRET_LEN
        ));
    }
    let options_json = match a.options {
        None => None,
        Some(table) => {
            let json = serde_json::to_string(&table)
                .map_err(|e| format!("config: app {appid:?}: options: {e}"))?;
            // Validate here too, so --check-config catches a bad option without starting.
            check_options(&json).map_err(|e| format!("config: app {appid:?}: options: {e}"))?;
            Some(json)
        }
    };
    Ok(App {
        appid,
        secret,
        options_json,
    })
}

fn resolve_client(
    c: RawClient,
    env: &dyn Fn(&str) -> Option<String>,
    appids: &HashSet<String>,
    default_limits: &Limits,
    warnings: &mut Vec<String>,
) -> Result<Client, String> {
    let name = c.name;
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(format!(
            "config: client name {name:?} must be 1 to 64 of [A-Za-z0-9_.-]"
        ));
    }
    let what = format!("client {name:?}");
    let key = match (c.key_env, c.key_file, c.key_sha256) {
        (Some(var), None, None) => KeyDigest::of(&key_from_env(env, &var, &what)?),
        (None, Some(path), None) => {
            KeyDigest::of(&checked_key(from_file(&path, &what, warnings)?, &what)?)
        }
        (None, None, Some(hex)) => KeyDigest::from_hex(&hex).ok_or_else(|| {
            format!("config: {what}: key_sha256 must be 64 hex digits (sha256sum of the key)")
        })?,
        _ => {
            return Err(format!(
                "config: {what}: exactly one of key_env, key_file or key_sha256 is required"
            ));
        }
    };
    if c.apps.is_empty() {
        return Err(format!(
            "config: {what}: apps is empty; list appids or [\"*\"]"
        ));
    }
    let own = RawLimits {
        requests_per_second: c.requests_per_second,
        requests_burst: c.requests_burst,
        invalidations_per_minute: c.invalidations_per_minute,
        invalidations_burst: c.invalidations_burst,
    };
    let limits = resolve_limits(&own, Some(default_limits), &format!("{what}: "))?;
    let apps = if c.apps.iter().any(|a| a == "*") {
        if c.apps.len() > 1 {
            return Err(format!("config: {what}: \"*\" must be alone in apps"));
        }
        None
    } else {
        for a in &c.apps {
            if !appids.contains(a) {
                return Err(format!(
                    "config: {what}: app {a:?} is not configured in any [[app]]"
                ));
            }
        }
        Some(c.apps.into_iter().collect())
    };
    Ok(Client {
        name,
        key,
        apps,
        limits,
    })
}

fn key_from_env(
    env: &dyn Fn(&str) -> Option<String>,
    var: &str,
    what: &str,
) -> Result<String, String> {
    checked_key(from_env(env, var, what)?, what)
}

fn checked_key(key: String, what: &str) -> Result<String, String> {
    if key.len() < MIN_KEY_LEN {
        return Err(format!(
            "config: {what}: the key is shorter than {MIN_KEY_LEN} bytes"
        ));
    }
    Ok(key)
}

fn from_env(env: &dyn Fn(&str) -> Option<String>, var: &str, what: &str) -> Result<String, String> {
    match env(var) {
        Some(v) if !v.is_empty() => Ok(v),
        Some(_) => Err(format!(
            "config: {what}: environment variable {var} is empty"
        )),
        None => Err(format!(
            "config: {what}: environment variable {var} is not set"
        )),
    }
}

/// Reads a regular file of at most `limit` bytes, returning its text and mode. Opened
/// non-blocking (a FIFO must not hang the open) and checked on the open file, so that what is
/// read is what was checked.
pub fn read_small_file(path: &Path, limit: u64) -> Result<(String, u32), String> {
    let shown = path.display();
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    let meta = f
        .metadata()
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{shown} is not a regular file"));
    }
    if meta.len() > limit {
        return Err(format!("{shown} is over {limit} bytes"));
    }
    let mut bytes = Vec::new();
    (&mut f)
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    if bytes.len() as u64 > limit {
        return Err(format!("{shown} is over {limit} bytes"));
    }
    let text = String::from_utf8(bytes).map_err(|_| format!("{shown} is not UTF-8 text"))?;
    Ok((text, meta.mode()))
}

/// A warning when group or other users may read (or write) a file that holds secrets.
fn mode_warning(what: &str, path: &Path, mode: u32) -> Option<String> {
    (mode & 0o077 != 0).then(|| {
        format!(
            "{what} {} is accessible to group or other users (mode {:04o}); chmod 600 it",
            path.display(),
            mode & 0o7777
        )
    })
}

/// Reads a secret or key file, dropping one trailing newline (`echo` and most editors add one).
fn from_file(path: &Path, what: &str, warnings: &mut Vec<String>) -> Result<String, String> {
    let (text, mode) =
        read_small_file(path, MAX_SECRET_FILE).map_err(|e| format!("config: {what}: {e}"))?;
    let text = zeroize::Zeroizing::new(text);
    if let Some(w) = mode_warning(&format!("{what}: file"), path, mode) {
        warnings.push(w);
    }
    let v = text
        .strip_suffix('\n')
        .map(|s| s.strip_suffix('\r').unwrap_or(s))
        .unwrap_or(&text);
    if v.is_empty() {
        return Err(format!("config: {what}: {} is empty", path.display()));
    }
    Ok(v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "SECRET" => Some("s3cret".into()),
            "KEY" => Some("k".repeat(32)),
            "KEY2" => Some("q".repeat(32)),
            "SHORT" => Some("short".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, &env)
    }

    const OK: &str = r#"
        listen = "127.0.0.1:0"
        [[app]]
        appid = "wx1"
        secret_env = "SECRET"
        options = { endpoint = "classic", timeout_ms = 2000 }
        [[client]]
        name = "billing"
        key_env = "KEY"
        apps = ["wx1"]
    "#;

    #[test]
    fn minimal_config_resolves() {
        let c = parse(OK).unwrap();
        assert_eq!(c.apps[0].secret, "s3cret");
        let opts: serde_json::Value =
            serde_json::from_str(c.apps[0].options_json.as_ref().unwrap()).unwrap();
        assert_eq!(opts["endpoint"], "classic");
        assert_eq!(c.request_timeout, Duration::from_secs(10));
        assert_eq!(
            c.clients[0].key.bytes(),
            KeyDigest::of(&"k".repeat(32)).bytes()
        );
        assert!(c.log_requests);
    }

    #[test]
    fn rejects_inline_secret_unknown_keys_and_short_keys() {
        let e = parse(&OK.replace("secret_env = \"SECRET\"", "secret = \"abc\"")).unwrap_err();
        assert!(e.contains("inline `secret` is not allowed"), "{e}");
        let e = parse(&OK.replace("listen =", "lisen = \"x\"\nlisten =")).unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
        let e = parse(&OK.replace("key_env = \"KEY\"", "key_env = \"SHORT\"")).unwrap_err();
        assert!(e.contains("shorter than 16"), "{e}");
        let e = parse(&OK.replace("timeout_ms = 2000", "timeout_msec = 2000")).unwrap_err();
        assert!(e.contains("options"), "{e}");
        let e = parse(&OK.replace("\"SECRET\"", "\"NOPE\"")).unwrap_err();
        assert!(e.contains("NOPE is not set"), "{e}");
        let e = parse(&OK.replace("\"SECRET\"", "\"EMPTY\"")).unwrap_err();
        assert!(e.contains("EMPTY is empty"), "{e}");
        let e = parse(&OK.replace("apps = [\"wx1\"]", "apps = [\"wx2\"]")).unwrap_err();
        assert!(e.contains("not configured"), "{e}");
        let e = parse(&OK.replace(
            "key_env = \"KEY\"",
            "key_env = \"KEY\"\nkey_sha256 = \"00\"",
        ))
        .unwrap_err();
        assert!(e.contains("exactly one"), "{e}");
    }

    #[test]
    fn duplicates_and_wildcards() {
        let two =
            format!("{OK}\n[[client]]\nname = \"billing\"\nkey_env = \"KEY2\"\napps = [\"*\"]\n");
        assert!(parse(&two).unwrap_err().contains("twice"));
        let same_key =
            format!("{OK}\n[[client]]\nname = \"other\"\nkey_env = \"KEY\"\napps = [\"*\"]\n");
        assert!(parse(&same_key).unwrap_err().contains("same key"));
        let star = format!(
            "{OK}\n[[client]]\nname = \"ops\"\nkey_sha256 = \"{}\"\napps = [\"*\"]\n",
            "ab".repeat(32)
        );
        let c = parse(&star).unwrap();
        assert!(c.clients[1].apps.is_none());
        let dup_app = OK.replace(
            "[[client]]",
            "[[app]]\nappid = \"wx1\"\nsecret_env = \"SECRET\"\n[[client]]",
        );
        assert!(parse(&dup_app).unwrap_err().contains("twice"));
    }

    #[test]
    fn secret_file_drops_one_trailing_newline() {
        let dir = std::env::temp_dir().join(format!("wx_tokend_cfg_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("secret");
        std::fs::write(&f, "abc def\n").unwrap();
        let text = OK.replace(
            "secret_env = \"SECRET\"",
            &format!("secret_file = {:?}", f.display().to_string()),
        );
        assert_eq!(parse(&text).unwrap().apps[0].secret, "abc def");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn limits_default_inherit_and_override() {
        let c = parse(OK).unwrap();
        assert_eq!(
            c.head_timeout,
            Duration::from_millis(DEFAULT_HEAD_TIMEOUT_MS)
        );
        assert_eq!(c.max_connections_per_peer, DEFAULT_MAX_CONNECTIONS_PER_PEER);
        assert_eq!(
            c.clients[0].limits,
            Limits {
                requests_per_second: DEFAULT_REQUESTS_PER_SECOND,
                requests_burst: DEFAULT_REQUEST_BURST,
                invalidations_per_minute: DEFAULT_INVALIDATIONS_PER_MINUTE,
                invalidations_burst: DEFAULT_INVALIDATION_BURST,
            }
        );
        let text = OK
            .replace(
                "listen =",
                "invalidations_per_minute = 2\nmax_connections = 10\nmax_connections_per_peer = 50\nlisten =",
            )
            .replace("apps = [\"wx1\"]", "apps = [\"wx1\"]\ninvalidations_burst = 3");
        let c = parse(&text).unwrap();
        assert_eq!(
            c.max_connections_per_peer, 10,
            "never above max_connections"
        );
        assert_eq!(c.clients[0].limits.invalidations_per_minute, 2);
        assert_eq!(c.clients[0].limits.invalidations_burst, 3);
        let e =
            parse(&OK.replace("listen =", "invalidations_per_minute = 0\nlisten =")).unwrap_err();
        assert!(
            e.contains("invalidations_per_minute must be between 1 and 600"),
            "{e}"
        );
        let e = parse(&OK.replace("listen =", "head_timeout_ms = 5\nlisten =")).unwrap_err();
        assert!(e.contains("head_timeout_ms"), "{e}");
    }

    #[test]
    fn toml_errors_never_quote_the_line() {
        let e = parse(&OK.replace(
            "timeout_ms = 2000",
            "store = \"redis://u:hunter2@h:1/0\", store = \"x\"",
        ))
        .unwrap_err();
        assert!(e.starts_with("config: line 6, column"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn warnings_for_plain_http_and_open_metrics_beyond_loopback() {
        assert!(parse(OK).unwrap().warnings.is_empty());
        let w = parse(&OK.replace("127.0.0.1:0", "0.0.0.0:8443"))
            .unwrap()
            .warnings;
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("tls is not set") && w[1].contains("metrics_key_env"));
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let c = parse(OK).unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(!format!("{c:?}").contains(&"k".repeat(32)));
    }
}
