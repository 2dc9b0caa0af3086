//! The TOML configuration: parsed strictly (unknown keys are errors, so a typo never silently
//! falls back to a default), then resolved: secrets and client keys are read from the
//! environment or files here, once, so that the rest of the server never sees where they
//! came from and `--check-config` catches a missing variable before a deploy does.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::auth::KeyDigest;

/// Client keys shorter than this are refused: a bearer key is the only thing between the
/// network and every token, so it must not be guessable.
pub const MIN_KEY_LEN: usize = 16;
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: String,
    tls: Option<RawTls>,
    request_timeout_ms: Option<u64>,
    max_connections: Option<usize>,
    metrics_key_env: Option<String>,
    log_requests: Option<bool>,
    #[serde(default)]
    app: Vec<RawApp>,
    #[serde(default)]
    client: Vec<RawClient>,
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
}

/// A resolved app: what `wx_token::register` needs.
pub struct App {
    pub appid: String,
    pub secret: String,
    /// The engine's options as a JSON object, or `None` for the engine's defaults.
    pub options_json: Option<String>,
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
    pub max_connections: usize,
    pub metrics_key: Option<KeyDigest>,
    pub log_requests: bool,
    pub apps: Vec<App>,
    pub clients: Vec<Client>,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Config::parse(&text, &|name| std::env::var(name).ok())
    }

    /// Parses and resolves `text`; `env` looks up environment variables (a parameter so unit
    /// tests need not touch the process environment).
    pub fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, String> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| format!("config: {e}"))?;
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
        let max_connections = raw.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
        if !(1..=1_000_000).contains(&max_connections) {
            return Err(format!(
                "config: max_connections must be between 1 and 1000000, not {max_connections}"
            ));
        }
        let metrics_key = match &raw.metrics_key_env {
            Some(var) => Some(KeyDigest::of(&key_from_env(env, var, "metrics_key_env")?)),
            None => None,
        };

        if raw.app.is_empty() {
            return Err("config: at least one [[app]] is required".into());
        }
        let mut apps = Vec::new();
        let mut appids = HashSet::new();
        for a in raw.app {
            let app = resolve_app(a, env)?;
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
            let client = resolve_client(c, env, &appids)?;
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

        Ok(Config {
            listen,
            tls: raw.tls.map(|t| Tls {
                cert: t.cert,
                key: t.key,
            }),
            request_timeout: Duration::from_millis(request_timeout_ms),
            max_connections,
            metrics_key,
            log_requests: raw.log_requests.unwrap_or(true),
            apps,
            clients,
        })
    }
}

fn resolve_app(a: RawApp, env: &dyn Fn(&str) -> Option<String>) -> Result<App, String> {
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
        (None, Some(path)) => from_file(&path, &what)?,
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
            wx_token::Options::parse(Some(&json))
                .map_err(|e| format!("config: app {appid:?}: options: {}", e.message()))?;
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
        (None, Some(path), None) => KeyDigest::of(&checked_key(from_file(&path, &what)?, &what)?),
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
    Ok(Client { name, key, apps })
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

/// Reads a secret or key file, dropping one trailing newline (`echo` and most editors add one).
fn from_file(path: &Path, what: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("config: {what}: cannot read {}: {e}", path.display()))?;
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
    fn debug_never_shows_a_secret() {
        let c = parse(OK).unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(!format!("{c:?}").contains(&"k".repeat(32)));
    }
}
