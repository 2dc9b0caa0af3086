//! wx-tokend: the central token server. It alone holds the AppSecrets, keeps every app's
//! token fresh through the wx_token engine, and hands tokens to business servers that present
//! a client key. See server/README.md.

mod auth;
mod config;
mod log;
mod metrics;
mod routes;
mod server;
mod tls;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use zeroize::Zeroize;

use crate::auth::Authorizer;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::routes::State;

const USAGE: &str = "\
usage: wx-tokend --config PATH [--check-config]

  --config PATH     the TOML configuration (see server/README.md)
  --check-config    load and resolve the configuration (secrets, keys, TLS files), then exit
  --help            this text
  --version         the version

Serves GET /v1/token/{appid}, POST /v1/token/{appid}/invalidate, GET /healthz, GET /metrics.
Stops gracefully on SIGTERM or SIGINT.
";

struct Args {
    config: PathBuf,
    check_only: bool,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut config = None;
    let mut check_only = false;
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        match a.to_str() {
            Some("--help" | "-h") => {
                print!("{USAGE}");
                return Ok(None);
            }
            Some("--version" | "-V") => {
                println!(
                    "wx-tokend {} (wx_token {})",
                    env!("CARGO_PKG_VERSION"),
                    wx_token::VERSION
                );
                return Ok(None);
            }
            Some("--check-config") => check_only = true,
            Some("--config") => {
                config = Some(PathBuf::from(args.next().ok_or("--config needs a path")?))
            }
            _ => {
                if let Some(path) = a.to_str().and_then(|s| s.strip_prefix("--config=")) {
                    config = Some(PathBuf::from(path));
                } else {
                    return Err(format!("unknown argument {a:?}\n\n{USAGE}"));
                }
            }
        }
    }
    let config = config.ok_or_else(|| format!("--config is required\n\n{USAGE}"))?;
    Ok(Some(Args { config, check_only }))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(a)) => a,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wx-tokend: {e}");
            return ExitCode::from(2);
        }
    };
    let cfg = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            log::error(
                "invalid configuration",
                &[
                    ("config", json!(args.config.display().to_string())),
                    ("error", json!(e)),
                ],
            );
            return ExitCode::from(2);
        }
    };
    let tls = match cfg.tls.as_ref().map(tls::acceptor).transpose() {
        Ok(t) => t,
        Err(e) => {
            log::error("invalid configuration", &[("error", json!(e))]);
            return ExitCode::from(2);
        }
    };
    if args.check_only {
        println!(
            "configuration OK: {} app(s), {} client(s)",
            cfg.apps.len(),
            cfg.clients.len()
        );
        return ExitCode::SUCCESS;
    }
    match run(cfg, tls) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error("startup failed", &[("error", json!(e))]);
            ExitCode::FAILURE
        }
    }
}

fn run(mut cfg: Config, tls: Option<tokio_rustls::TlsAcceptor>) -> Result<(), String> {
    let appids: Vec<String> = cfg.apps.iter().map(|a| a.appid.clone()).collect();
    for app in &mut cfg.apps {
        wx_token::register(&app.appid, Some(&app.secret), app.options_json.as_deref())
            .map_err(|e| format!("app {:?}: {}", app.appid, e.message()))?;
        // The engine keeps its own (zeroized-on-drop) copy; ours is no longer needed.
        app.secret.zeroize();
    }
    let state = Arc::new(State {
        authz: Authorizer::new(std::mem::take(&mut cfg.clients), appids.clone()),
        metrics: Metrics::new(appids.clone()),
        metrics_key: cfg.metrics_key,
        request_timeout: cfg.request_timeout,
        log_requests: cfg.log_requests,
    });

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        log::info(
            "listening",
            &[
                ("addr", json!(addr.to_string())),
                ("tls", json!(tls.is_some())),
                ("apps", json!(appids)),
                ("version", json!(env!("CARGO_PKG_VERSION"))),
            ],
        );
        let server = server::Server {
            listener,
            tls,
            state,
            max_connections: cfg.max_connections,
        };
        // In-flight requests get up to one request timeout (plus a margin) to finish.
        server
            .run(
                shutdown_signal(),
                cfg.request_timeout + Duration::from_secs(1),
            )
            .await;
        Ok::<(), String>(())
    })?;
    // Stop the engine's background refresher (and release any store lease) before exiting.
    wx_token::shutdown();
    rt.shutdown_timeout(Duration::from_secs(1));
    log::info("stopped", &[]);
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    log::info("shutting down", &[("signal", json!(name))]);
}
