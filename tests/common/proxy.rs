//! A loopback TCP proxy for fault injection: tests put it between processes and a server
//! (Redis, wx-tokend) and cut, delay or drop the link on demand.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

const PASS: u8 = 0;
/// New connections are closed at once, existing ones are closed: like a refused port.
const REFUSE: u8 = 1;
/// New connections are accepted and never answered; bytes on existing ones vanish.
const BLACKHOLE: u8 = 2;

struct Shared {
    mode: AtomicU8,
    delay_ms: AtomicU64,
    /// Bumped to close every connection opened before (drop, refuse).
    epoch: AtomicU64,
    stop: AtomicBool,
}

pub struct Proxy {
    pub port: u16,
    shared: Arc<Shared>,
}

impl Proxy {
    pub fn start(target_port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            mode: AtomicU8::new(PASS),
            delay_ms: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let sh = shared.clone();
        std::thread::spawn(move || {
            while !sh.stop.load(Ordering::Acquire) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let _ = client.set_nonblocking(false);
                        connect(client, target_port, sh.clone());
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Proxy { port, shared }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn refuse(&self) {
        self.shared.mode.store(REFUSE, Ordering::Release);
        self.shared.epoch.fetch_add(1, Ordering::AcqRel);
    }

    pub fn blackhole(&self) {
        self.shared.mode.store(BLACKHOLE, Ordering::Release);
    }

    pub fn delay(&self, ms: u64) {
        self.shared.delay_ms.store(ms, Ordering::Release);
    }

    /// Closes every established connection (new ones go through).
    pub fn drop_connections(&self) {
        self.shared.epoch.fetch_add(1, Ordering::AcqRel);
    }

    pub fn heal(&self) {
        self.shared.delay_ms.store(0, Ordering::Release);
        self.shared.mode.store(PASS, Ordering::Release);
        // Blackholed connections have lost bytes: close them, clients reconnect.
        self.shared.epoch.fetch_add(1, Ordering::AcqRel);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.epoch.fetch_add(1, Ordering::AcqRel);
    }
}

fn connect(client: TcpStream, target_port: u16, sh: Arc<Shared>) {
    let epoch = sh.epoch.load(Ordering::Acquire);
    match sh.mode.load(Ordering::Acquire) {
        REFUSE => return drop(client),
        BLACKHOLE => {
            // Held open, unanswered, until the link heals or the proxy stops.
            std::thread::spawn(move || {
                let mut client = client;
                let _ = client.set_read_timeout(Some(Duration::from_millis(50)));
                let mut buf = [0u8; 4096];
                while sh.epoch.load(Ordering::Acquire) == epoch && !sh.stop.load(Ordering::Acquire)
                {
                    match client.read(&mut buf) {
                        Ok(0) => return,
                        _ => continue,
                    }
                }
            });
            return;
        }
        _ => {}
    }
    let Ok(server) = TcpStream::connect(("127.0.0.1", target_port)) else {
        return;
    };
    for (from, to) in [
        (client.try_clone().unwrap(), server.try_clone().unwrap()),
        (server, client),
    ] {
        let sh = sh.clone();
        std::thread::spawn(move || pump(from, to, &sh, epoch));
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, sh: &Shared, epoch: u64) {
    let _ = from.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buf = [0u8; 16384];
    loop {
        if sh.epoch.load(Ordering::Acquire) != epoch || sh.stop.load(Ordering::Acquire) {
            break;
        }
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => break,
        };
        match sh.mode.load(Ordering::Acquire) {
            BLACKHOLE => continue,
            REFUSE => break,
            _ => {}
        }
        let delay = sh.delay_ms.load(Ordering::Acquire);
        if delay > 0 {
            std::thread::sleep(Duration::from_millis(delay));
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
