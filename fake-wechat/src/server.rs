//! Accept loop, one thread per connection, routing, and a shutdown that
//! leaves no thread behind.

use std::collections::HashMap;
use std::io::Read;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::control;
use crate::http::{self, Response};
use crate::shared::{Shared, lock};
use crate::{tickets, wechat};

/// Bounds how long an idle or stalled client can pin a thread.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// After answering, how long to wait for the client's FIN before closing.
const LINGER: Duration = Duration::from_millis(500);

pub enum Outcome {
    Reply(Response),
    /// Close without answering (reset, hang, or interrupted by shutdown).
    Close,
}

#[derive(Default)]
struct Connections {
    next_id: u64,
    /// Clones of open sockets, so shutdown can unblock their threads.
    open: HashMap<u64, TcpStream>,
    threads: Vec<JoinHandle<()>>,
}

pub struct Server {
    shared: Arc<Shared>,
    addr: SocketAddr,
    conns: Arc<Mutex<Connections>>,
    acceptor: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(listener: TcpListener, shared: Arc<Shared>) -> std::io::Result<Server> {
        let addr = listener.local_addr()?;
        let conns = Arc::new(Mutex::new(Connections::default()));
        let acceptor = {
            let shared = shared.clone();
            let conns = conns.clone();
            thread::Builder::new()
                .name("wx-fake-accept".into())
                .spawn(move || accept_loop(listener, shared, conns))?
        };
        Ok(Server {
            shared,
            addr,
            conns,
            acceptor: Some(acceptor),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn shutdown(&mut self) {
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        self.shared.stop.stop();
        // accept() has no timeout; a throwaway connection wakes it up.
        if TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_ok() {
            let _ = acceptor.join();
        }
        let threads = {
            let mut conns = lock(&self.conns);
            for stream in conns.open.values() {
                let _ = stream.shutdown(Shutdown::Both);
            }
            std::mem::take(&mut conns.threads)
        };
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>, conns: Arc<Mutex<Connections>>) {
    for conn in listener.incoming() {
        if shared.stop.is_stopped() {
            break;
        }
        match conn {
            Ok(stream) => spawn_connection(&shared, &conns, stream),
            // E.g. out of file descriptors: back off rather than spin.
            Err(_) => {
                if !shared.stop.sleep(Duration::from_millis(20)) {
                    break;
                }
            }
        }
    }
}

fn spawn_connection(shared: &Arc<Shared>, conns: &Arc<Mutex<Connections>>, stream: TcpStream) {
    let mut guard = lock(conns);
    guard.threads.retain(|t| !t.is_finished());
    let id = guard.next_id;
    guard.next_id += 1;
    if let Ok(clone) = stream.try_clone() {
        guard.open.insert(id, clone);
    }
    let (shared, conns_for_thread) = (shared.clone(), conns.clone());
    let spawned = thread::Builder::new()
        .name("wx-fake-conn".into())
        .spawn(move || {
            serve(&shared, stream);
            lock(&conns_for_thread).open.remove(&id);
        });
    match spawned {
        Ok(handle) => guard.threads.push(handle),
        Err(_) => {
            guard.open.remove(&id);
        }
    }
}

fn serve(shared: &Shared, mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_nodelay(true);
    let (method, path, outcome) = match http::read_request(&mut stream) {
        Ok(req) => {
            let outcome = route(shared, &req);
            (req.method, req.path, outcome)
        }
        Err(e) => match e.response() {
            Some(resp) => ("?".into(), "?".into(), Outcome::Reply(resp)),
            None => {
                if let http::ReadError::Io(err) = e {
                    log(shared, "?", "?", &format!("read-failed ({err})"));
                }
                return;
            }
        },
    };
    match outcome {
        Outcome::Reply(resp) => {
            let written = resp.write_to(&mut stream);
            log(shared, &method, &path, &resp.status.to_string());
            if written.is_ok() {
                close_gracefully(stream);
            }
        }
        Outcome::Close => {
            log(shared, &method, &path, "closed-without-answer");
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn route(shared: &Shared, req: &http::Request) -> Outcome {
    match req.path.as_str() {
        wechat::CLASSIC_PATH => wechat::classic(shared, req),
        wechat::STABLE_PATH => wechat::stable(shared, req),
        wechat::API_PATH => wechat::business_api(shared, req),
        tickets::WECOM_TOKEN_PATH => tickets::wecom_token(shared, req),
        tickets::TICKET_PATH | tickets::CORP_TICKET_PATH | tickets::AGENT_TICKET_PATH => {
            tickets::ticket(shared, req)
        }
        tickets::WECOM_API_PATH => tickets::wecom_api(shared, req),
        p if p.starts_with(control::PREFIX) => Outcome::Reply(control::handle(shared, req)),
        _ => Outcome::Reply(Response::text(404, "not found")),
    }
}

/// Closing with unread bytes in the receive buffer makes the kernel send RST,
/// which can destroy the answer before the client reads it; so send FIN and
/// drain until the client closes too.
fn close_gracefully(mut stream: TcpStream) {
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let _ = stream.set_read_timeout(Some(LINGER));
    let mut sink = [0u8; 4096];
    let mut drained = 0usize;
    while drained < 1 << 20 {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

/// Method, path and status only: query strings and bodies carry secrets.
fn log(shared: &Shared, method: &str, path: &str, status: &str) {
    if shared.verbose() {
        eprintln!("{method} {path} {status}");
    }
}
