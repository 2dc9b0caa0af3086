//! wx-tokend: the central token server. It alone holds the AppSecrets, keeps every app's
//! token fresh through the wx_token engine, and hands tokens to business servers that present
//! a client key. See server/README.md.

mod auth;
mod config;
mod engine_events;
mod limits;
mod log;
mod metrics;
mod reload;
mod routes;
mod server;
mod tls;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::config::Config;
use crate::routes::State;

const USAGE: &str = "\
usage: wx-tokend --config PATH [--check-config]

  --config PATH     the TOML configuration (see server/README.md)
  --check-config    load and resolve the configuration (secrets, keys, TLS files), then exit
  --help            this text
  --version         the version

Serves GET /v1/token/{appid}, POST /v1/token/{appid}/invalidate, GET /healthz, GET /metrics.
Stops gracefully on SIGTERM or SIGINT; reloads the configuration on SIGHUP.
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
    reload::log_warnings(&cfg);
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
    match run(cfg, tls.map(|a| Arc::new(tls::Certs::new(a))), &args.config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error("startup failed", &[("error", json!(e))]);
            ExitCode::FAILURE
        }
    }
}

fn run(mut cfg: Config, tls: Option<Arc<tls::Certs>>, config_path: &Path) -> Result<(), String> {
    raise_fd_limit(cfg.max_connections);
    // Before any app is registered, so that no event of theirs is missed.
    engine_events::install();
    let live = reload::register_and_build(&mut cfg)?;
    let appids = live.appids.clone();
    let state = Arc::new(State::new(live));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        // Signal handlers before the `listening` line: from then on, SIGHUP reloads.
        let shutdown = shutdown_signal();
        let reloader = reload::on_sighup(
            state.clone(),
            tls.clone(),
            config_path.to_owned(),
            cfg.listening(),
        );
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
            max_connections_per_peer: cfg.max_connections_per_peer,
            head_timeout: cfg.head_timeout,
        };
        // In-flight requests get up to one request timeout (plus a margin) to finish.
        server
            .run(shutdown, cfg.request_timeout + Duration::from_secs(1))
            .await;
        reloader.abort();
        Ok::<(), String>(())
    })?;
    // Stop the engine's background refresher (and release any store lease) before exiting.
    wx_token::shutdown();
    rt.shutdown_timeout(Duration::from_secs(1));
    log::info("stopped", &[]);
    Ok(())
}

/// Raises the soft limit on open files to the hard one: each connection is a descriptor, and
/// the usual soft limit of 1024 would make accept fail before `max_connections` is reached.
fn raise_fd_limit(max_connections: usize) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    // Headroom for the listener, store connections, files and the runtime.
    if lim.rlim_cur < max_connections as u64 + 64 {
        log::warn(
            "the open-file limit is below max_connections + 64; raise LimitNOFILE",
            &[
                ("limit", json!(lim.rlim_cur)),
                ("max_connections", json!(max_connections)),
            ],
        );
    }
}

fn signal_stream(kind: tokio::signal::unix::SignalKind) -> tokio::signal::unix::Signal {
    tokio::signal::unix::signal(kind).expect("signal handler")
}

fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::SignalKind;
    let mut term = signal_stream(SignalKind::terminate());
    let mut int = signal_stream(SignalKind::interrupt());
    async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        log::info("shutting down", &[("signal", json!(name))]);
    }
}
