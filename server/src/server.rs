//! The accept loop: a bounded number of connections, HTTP/1.1 with keep-alive, optional TLS,
//! and a graceful shutdown that lets in-flight requests finish.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::log;
use crate::routes::{self, State};

/// Request heads (line + headers) beyond this are refused by hyper: nothing in this API needs
/// more than a path and an Authorization header.
const MAX_HEAD: usize = 16 * 1024;

pub struct Server {
    pub listener: TcpListener,
    pub tls: Option<TlsAcceptor>,
    pub state: Arc<State>,
    pub max_connections: usize,
}

impl Server {
    /// Serves until `shutdown` resolves, then stops accepting (the listening socket is closed
    /// at once, so a load balancer sees this instance go), asks every connection to finish its
    /// request in progress and close, and waits for them up to `drain`.
    pub async fn run(self, shutdown: impl Future<Output = ()>, drain: Duration) {
        let Server {
            listener,
            tls,
            state,
            max_connections,
        } = self;
        let slots = Arc::new(Semaphore::new(max_connections));
        let graceful = GracefulShutdown::new();
        let timeout = state.request_timeout;
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            // Bounds the time a client may take to send a request head (slowloris), and how
            // long an idle keep-alive connection is kept.
            .header_read_timeout(timeout)
            .keep_alive(true)
            .max_buf_size(MAX_HEAD);
        let http = Arc::new(http);
        tokio::pin!(shutdown);
        loop {
            // Wait for a free slot before accepting: beyond max_connections, clients queue in
            // the kernel's backlog instead of being accepted and starved.
            let permit = tokio::select! {
                p = slots.clone().acquire_owned() => p.expect("semaphore never closed"),
                () = &mut shutdown => break,
            };
            let (stream, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        log::warn("accept failed", &[("error", json!(e.to_string()))]);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let state = state.clone();
            let http = http.clone();
            let tls = tls.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                state
                    .metrics
                    .connections_open
                    .fetch_add(1, Ordering::Relaxed);
                let svc_state = state.clone();
                let svc = service_fn(move |req| routes::handle(svc_state.clone(), req));
                let result = match tls {
                    None => {
                        watcher
                            .watch(http.serve_connection(TokioIo::new(stream), svc))
                            .await
                    }
                    Some(acceptor) => {
                        match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                            Ok(Ok(tls_stream)) => {
                                watcher
                                    .watch(http.serve_connection(TokioIo::new(tls_stream), svc))
                                    .await
                            }
                            Ok(Err(e)) => {
                                log::warn(
                                    "tls handshake failed",
                                    &[
                                        ("peer", json!(peer.to_string())),
                                        ("error", json!(e.to_string())),
                                    ],
                                );
                                Ok(())
                            }
                            Err(_) => Ok(()),
                        }
                    }
                };
                if let Err(e) = result
                    && !e.is_incomplete_message()
                    && !e.is_timeout()
                {
                    log::warn(
                        "connection error",
                        &[
                            ("peer", json!(peer.to_string())),
                            ("error", json!(e.to_string())),
                        ],
                    );
                }
                state
                    .metrics
                    .connections_open
                    .fetch_sub(1, Ordering::Relaxed);
                drop(permit);
            });
        }
        drop(listener);
        log::info("draining", &[("connections", json!(graceful.count()))]);
        if tokio::time::timeout(drain, graceful.shutdown())
            .await
            .is_err()
        {
            log::warn("drain timed out; closing remaining connections", &[]);
        }
    }
}
