//! The accept loop: a bounded number of connections, HTTP/1.1 with keep-alive, optional TLS,
//! and a graceful shutdown that lets in-flight requests finish.
//!
//! Connection slots are defended against idle and unauthenticated sockets: a new connection
//! has `head_timeout` to send its request head (and a keep-alive connection is closed after
//! that long idle); one IP address may hold at most `max_connections_per_peer`; and beyond
//! either limit a connection is shed at once (a 503 on plain HTTP, then close) instead of
//! waiting in the backlog, so a legitimate client always gets an answer at once.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::log;
use crate::routes::{self, State};
use crate::tls::Certs;

/// Request heads (line + headers) beyond this are refused by hyper: nothing in this API needs
/// more than a path and an Authorization header.
const MAX_HEAD: usize = 16 * 1024;

pub struct Server {
    pub listener: TcpListener,
    pub tls: Option<Arc<Certs>>,
    pub state: Arc<State>,
    pub max_connections: usize,
    pub max_connections_per_peer: usize,
    pub head_timeout: Duration,
}

/// What a shed plain-HTTP connection is told before it is closed.
const SHED_RESPONSE: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\
Cache-Control: no-store\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: 78\r\n\r\n\
{\"error\":\"busy\",\"status\":5,\"errcode\":0,\"errmsg\":\"too many connections; retry\"}";

/// Open connections per peer address; an entry goes when its last connection does.
#[derive(Default)]
struct Peers(Mutex<HashMap<IpAddr, usize>>);

/// One counted connection of a peer, uncounted on drop.
struct PeerSlot {
    peers: Arc<Peers>,
    ip: IpAddr,
}

impl Peers {
    fn try_add(self: &Arc<Self>, ip: IpAddr, cap: usize) -> Option<PeerSlot> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_default();
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(PeerSlot {
            peers: self.clone(),
            ip,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut map = self.peers.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// Logs shedding at most once per 10 s (an attack must not flood the logs too).
struct ShedLog {
    last_ms: AtomicU64,
    start: Instant,
}

impl ShedLog {
    fn note(&self, reason: &str, peer: IpAddr) {
        let now = self.start.elapsed().as_millis() as u64 + 10_000;
        let last = self.last_ms.load(Ordering::Relaxed);
        if now >= last + 10_000
            && self
                .last_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            log::warn(
                "shedding connections (logged at most every 10 s; see wx_tokend_connections_shed_total)",
                &[("reason", json!(reason)), ("peer", json!(peer.to_string()))],
            );
        }
    }
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
            max_connections_per_peer,
            head_timeout,
        } = self;
        let slots = Arc::new(Semaphore::new(max_connections));
        let peers = Arc::new(Peers::default());
        let shed_log = ShedLog {
            last_ms: AtomicU64::new(0),
            start: Instant::now(),
        };
        let graceful = GracefulShutdown::new();
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            // Bounds the time a client may take to send a request head (slowloris), and how
            // long an idle keep-alive connection is kept.
            .header_read_timeout(head_timeout)
            .keep_alive(true)
            .max_buf_size(MAX_HEAD);
        let http = Arc::new(http);
        tokio::pin!(shutdown);
        loop {
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
            // Beyond a limit, shed at once rather than let the connection wait: a queued
            // client would only time out, and the backlog would hide the overload.
            let shed = |reason: &str, counter: &AtomicU64| {
                counter.fetch_add(1, Ordering::Relaxed);
                shed_log.note(reason, peer.ip());
                if tls.is_none() {
                    // Non-blocking and best effort: a fresh socket's send buffer is empty.
                    let _ = stream.try_write(SHED_RESPONSE);
                }
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                shed("max_connections", &state.metrics.shed_max_connections);
                continue;
            };
            let Some(peer_slot) = peers.try_add(peer.ip(), max_connections_per_peer) else {
                shed("max_connections_per_peer", &state.metrics.shed_per_peer);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let state = state.clone();
            let http = http.clone();
            let tls = tls.as_ref().map(|c| c.current());
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
                        match tokio::time::timeout(head_timeout, acceptor.accept(stream)).await {
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
                drop(peer_slot);
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
