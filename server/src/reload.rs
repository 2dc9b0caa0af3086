//! Applying a configuration: registering its apps with the engine and building what requests
//! read (`routes::Live`), at startup and again on SIGHUP.
//!
//! A reload re-reads the file and swaps apps, clients, keys, limits, the metrics key, the
//! request timeout, `log_requests` and the TLS certificate and key (for new connections) at
//! once; cached tokens survive (the engine keeps an app's token unless its secret, endpoint,
//! api_base or store changed). A file that does not load keeps the running configuration, and
//! the log says why. What the listening socket was built with (`Listening`: the address, TLS
//! on or off, the connection limits) applies at restart only.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::json;
use zeroize::Zeroize;

use crate::auth::Authorizer;
use crate::config::{Config, Listening};
use crate::log;
use crate::routes::{Live, State};
use crate::tls::{self, Certs};

pub fn log_warnings(cfg: &Config) {
    for w in &cfg.warnings {
        log::warn("configuration warning", &[("warning", json!(w))]);
    }
}

/// Registers (or reconfigures) every app of `cfg`, then builds the request-side view of it.
/// Each AppSecret is zeroized here once the engine has its own copy.
pub fn register_and_build(cfg: &mut Config) -> Result<Live, String> {
    for app in &mut cfg.apps {
        wx_token::register(&app.appid, Some(&app.secret), app.options_json.as_deref())
            .map_err(|e| format!("app {:?}: {}", app.appid, e.message()))?;
        app.secret.zeroize();
    }
    let appids: Vec<String> = cfg.apps.iter().map(|a| a.appid.clone()).collect();
    Ok(Live {
        authz: Authorizer::new(std::mem::take(&mut cfg.clients), appids.clone()),
        appids,
        metrics_key: cfg.metrics_key,
        metrics_open: cfg.listen.ip().is_loopback(),
        request_timeout: cfg.request_timeout,
        log_requests: cfg.log_requests,
    })
}

/// Installs the SIGHUP handler now (so a SIGHUP right after startup is not fatal), and reloads
/// on each one, in order, off the async workers (it reads files and registers apps).
pub fn on_sighup(
    state: Arc<State>,
    certs: Option<Arc<Certs>>,
    path: PathBuf,
    running: Listening,
) -> tokio::task::JoinHandle<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup()).expect("SIGHUP handler");
    let running = Arc::new(running);
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            let (state, certs, path, running) =
                (state.clone(), certs.clone(), path.clone(), running.clone());
            let _ = tokio::task::spawn_blocking(move || {
                reload(&state, certs.as_deref(), &path, &running)
            })
            .await;
        }
    })
}

fn reload(state: &State, certs: Option<&Certs>, path: &Path, running: &Listening) {
    log::info(
        "reloading configuration",
        &[
            ("signal", json!("SIGHUP")),
            ("config", json!(path.display().to_string())),
        ],
    );
    let failed = |e: String| {
        log::error(
            "reload failed; keeping the running configuration",
            &[
                ("config", json!(path.display().to_string())),
                ("error", json!(e)),
            ],
        );
    };
    let mut cfg = match Config::load(path) {
        Ok(c) => c,
        Err(e) => return failed(e),
    };
    log_warnings(&cfg);
    if cfg.listening() != *running {
        log::warn(
            "listen, turning tls on or off, max_connections, max_connections_per_peer and head_timeout_ms apply at restart only; keeping the running values",
            &[],
        );
    }
    // Renewed certificate files are loaded before anything changes, so a bad one keeps all.
    let acceptor = match (certs, &cfg.tls) {
        (Some(_), Some(t)) => match tls::acceptor(t) {
            Ok(a) => Some(a),
            Err(e) => return failed(e),
        },
        _ => None,
    };
    match register_and_build(&mut cfg) {
        Ok(live) => {
            if let (Some(certs), Some(a)) = (certs, acceptor) {
                certs.replace(a);
            }
            let (apps, clients) = (live.appids.clone(), live.authz.client_count());
            state.replace(live);
            log::info(
                "configuration reloaded",
                &[("apps", json!(apps)), ("clients", json!(clients))],
            );
        }
        // Apps registered before the failing one have their new settings already; clients,
        // keys and limits stay as they were.
        Err(e) => failed(e),
    }
}
