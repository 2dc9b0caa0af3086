//! How the Redis store reaches Redis: one server (`redis://`, `rediss://`), the primary that
//! Redis Sentinel names (`redis+sentinel://`, `rediss+sentinel://`), or a Redis Cluster
//! (`redis+cluster://`, `rediss+cluster://`), with an optional private CA and client certificate.
//!
//! The store's record logic only sees `with_conn`: one operation on a `ConnectionLike`. What
//! this module guarantees whatever the topology:
//! - at most one cached idle connection, taken out for each operation (no lock is held across
//!   I/O) and put back only after a success;
//! - a connection opened before fork() is never used nor closed by the child;
//! - every socket has connect, read and write timeouts, and a sentinel that stops answering
//!   cannot hold a caller longer than the timeout;
//! - errors never quote a command's arguments, a URL's credentials or the crate's parse errors.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, TryLockError};
use std::time::{Duration, Instant};

use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConnection};
use redis::sentinel::{SentinelClientBuilder, SentinelServerType};
use redis::{ClientTlsConfig, ConnectionAddr, TlsCertificates, TlsMode};
use zeroize::Zeroizing;

use super::store_error;
use crate::error::Error;
use crate::fork;
use crate::secret::Secret;

/// PEM files are small; anything bigger is a wrong path, not a certificate.
const MAX_PEM_BYTES: u64 = 1 << 20;

/// The `store_tls_*` options: absolute paths, read once when the app is registered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedisTls {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

impl RedisTls {
    pub fn is_empty(&self) -> bool {
        self.ca_file.is_none() && self.cert_file.is_none() && self.key_file.is_none()
    }
}

/// The PEM contents of `RedisTls`, turned into the crate's type for each client built.
struct Pem {
    ca: Option<Vec<u8>>,
    cert_key: Option<(Vec<u8>, Zeroizing<Vec<u8>>)>,
}

impl Pem {
    fn load(tls: &RedisTls) -> Result<Pem, Error> {
        let ca = tls
            .ca_file
            .as_deref()
            .map(|p| read_pem("store_tls_ca_file", p))
            .transpose()?;
        let cert_key = match (&tls.cert_file, &tls.key_file) {
            (Some(c), Some(k)) => Some((
                read_pem("store_tls_cert_file", c)?,
                Zeroizing::new(read_pem("store_tls_key_file", k)?),
            )),
            (None, None) => None,
            _ => {
                return Err(Error::invalid(
                    "options_json: store_tls_cert_file and store_tls_key_file go together",
                ));
            }
        };
        let pem = Pem { ca, cert_key };
        pem.check(tls)?;
        Ok(pem)
    }

    /// Parses the PEM now, so that a wrong file fails at register with the option's name
    /// rather than at the first connection. Messages never quote a file's contents.
    fn check(&self, tls: &RedisTls) -> Result<(), Error> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let bad = |key: &str, path: &Option<PathBuf>, what: &str| {
            let path = path.as_deref().unwrap_or(Path::new("")).display();
            Error::invalid(format!("options_json: {key} {path}: no valid {what} in it"))
        };
        let certs_ok = |pem: &[u8]| {
            let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem).collect();
            certs.is_ok_and(|c| !c.is_empty())
        };
        if let Some(ca) = &self.ca
            && !certs_ok(ca)
        {
            return Err(bad("store_tls_ca_file", &tls.ca_file, "PEM certificate"));
        }
        if let Some((cert, key)) = &self.cert_key {
            if !certs_ok(cert) {
                return Err(bad(
                    "store_tls_cert_file",
                    &tls.cert_file,
                    "PEM certificate",
                ));
            }
            if PrivateKeyDer::from_pem_slice(key).is_err() {
                return Err(bad("store_tls_key_file", &tls.key_file, "PEM private key"));
            }
        }
        Ok(())
    }

    fn certificates(&self) -> TlsCertificates {
        TlsCertificates {
            client_tls: self.cert_key.as_ref().map(|(c, k)| ClientTlsConfig {
                client_cert: c.clone(),
                client_key: k.to_vec(),
            }),
            root_cert: self.ca.clone(),
        }
    }
}

/// Reads a PEM file named by option `key`; messages name the path and the kind of failure,
/// never the contents.
fn read_pem(key: &str, path: &Path) -> Result<Vec<u8>, Error> {
    let bad = |why: &str| Error::invalid(format!("options_json: {key} {}: {why}", path.display()));
    if !path.is_absolute() {
        return Err(bad("must be an absolute path"));
    }
    let file = File::open(path).map_err(|e| bad(&format!("cannot open ({})", e.kind())))?;
    // Checked on the open file, so a swap between check and read cannot change the answer.
    let meta = file
        .metadata()
        .map_err(|e| bad(&format!("cannot stat ({})", e.kind())))?;
    if !meta.is_file() {
        return Err(bad("not a regular file"));
    }
    if meta.len() > MAX_PEM_BYTES {
        return Err(bad("larger than 1 MiB"));
    }
    let mut buf = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| bad(&format!("cannot read ({})", e.kind())))?;
    if buf.is_empty() || buf.len() as u64 > MAX_PEM_BYTES {
        return Err(bad("empty or larger than 1 MiB"));
    }
    Ok(buf)
}

/// What `redis+sentinel://` and `redis+cluster://` URLs hold once parsed.
struct Multi {
    tls: bool,
    username: Option<Secret>,
    password: Option<Secret>,
    hosts: Vec<(String, u16)>,
    /// The path's segments (sentinel: service name, then db).
    path: Vec<String>,
}

fn invalid_url(why: &str) -> Error {
    Error::invalid(format!("options_json: store: {why}"))
}

/// Parses `scheme://[user:pass@]host:port[,host:port…][/a[/b]]`; errors never quote the URL.
fn parse_multi(rest: &str, tls: bool) -> Result<Multi, Error> {
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(u) => {
            let (user, pass) = u.split_once(':').unwrap_or((u, ""));
            let (user, pass) = (percent_decode(user)?, percent_decode(pass)?);
            (
                (!user.expose().is_empty()).then_some(user),
                (!pass.expose().is_empty()).then_some(pass),
            )
        }
    };
    let hosts = hosts
        .split(',')
        .map(|h| {
            let (host, port) = if let Some(v6) = h.strip_prefix('[') {
                let (host, port) = v6.split_once("]:").ok_or(())?;
                (host, port)
            } else {
                h.rsplit_once(':').ok_or(())?
            };
            let port = port.parse::<u16>().map_err(|_| ())?;
            let ok = !host.is_empty()
                && port != 0
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:_".contains(&b));
            if ok {
                Ok((host.to_owned(), port))
            } else {
                Err(())
            }
        })
        .collect::<Result<Vec<_>, ()>>()
        .map_err(|()| invalid_url("every host must be host:port, separated by commas"))?;
    if path.contains(['?', '#']) {
        return Err(invalid_url("query strings are not supported"));
    }
    let path = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(Multi {
        tls,
        username,
        password,
        hosts,
        path,
    })
}

/// Decodes straight into a `Secret`, so no plain copy of a password is left behind.
fn percent_decode(s: &str) -> Result<Secret, Error> {
    let bad = || invalid_url("bad percent-encoding in the user info");
    let b = s.as_bytes();
    let mut out = Zeroizing::new(Vec::with_capacity(b.len()));
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).ok_or_else(bad)?;
            let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(Secret::new(std::str::from_utf8(&out).map_err(|_| bad())?))
}

fn host_port(h: &str, p: u16) -> String {
    if h.contains(':') {
        format!("[{h}]:{p}")
    } else {
        format!("{h}:{p}")
    }
}

/// Sentinel: how to ask the sentinels, and the primary they named last.
struct Sentinel {
    multi: Multi,
    service: String,
    db: i64,
    pem: Option<Pem>,
    /// The primary's client (no socket: safe across fork), forgotten after any failure so that
    /// the next operation asks the sentinels again and follows a failover.
    primary: Arc<Mutex<Option<redis::Client>>>,
    /// `epoch + 1` of the process whose lookup is in flight, 0 if none: at most one lookup at a
    /// time, and one left behind by a parent's thread does not block a forked child.
    lookup: Arc<AtomicU64>,
}

enum Target {
    Single(redis::Client),
    Sentinel(Box<Sentinel>),
    Cluster(ClusterClient),
}

enum Conn {
    Plain(redis::Connection),
    Cluster(Box<ClusterConnection>),
}

impl Conn {
    fn as_dyn(&mut self) -> &mut dyn redis::ConnectionLike {
        match self {
            Conn::Plain(c) => c,
            Conn::Cluster(c) => &mut **c,
        }
    }
}

pub struct RedisConn {
    target: Target,
    /// Hosts and service/db, without credentials: what messages and Debug show.
    shown: String,
    timeout: Duration,
    /// One idle connection, tagged with the fork epoch it was opened in.
    idle: Mutex<Option<(u64, Conn)>>,
}

impl fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl RedisConn {
    /// Parses `url` and reads the TLS files; connects lazily, on first use.
    pub fn open(url: &str, tls: &RedisTls, timeout: Duration) -> Result<RedisConn, Error> {
        let timeout = timeout.max(Duration::from_millis(100));
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid_url("expected redis://host:port/db"))?;
        let secure = matches!(scheme, "rediss" | "rediss+sentinel" | "rediss+cluster");
        if !tls.is_empty() && !secure {
            return Err(Error::invalid(
                "options_json: store_tls_* options need a TLS store URL (rediss://, rediss+sentinel:// or rediss+cluster://)",
            ));
        }
        let pem = (!tls.is_empty()).then(|| Pem::load(tls)).transpose()?;
        let (target, shown) = match scheme {
            "redis" | "rediss" => single(url, rest, pem.as_ref())?,
            "redis+sentinel" | "rediss+sentinel" => sentinel(parse_multi(rest, secure)?, pem)?,
            "redis+cluster" | "rediss+cluster" => {
                cluster(parse_multi(rest, secure)?, pem.as_ref(), timeout)?
            }
            _ => return Err(invalid_url("unknown redis URL scheme")),
        };
        Ok(RedisConn {
            target,
            shown,
            timeout,
            idle: Mutex::new(None),
        })
    }

    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Runs `op` on a connection; a failed connection is dropped rather than reused (and, with
    /// Sentinel, the primary is asked for again).
    pub fn with_conn<T>(
        &self,
        what: &str,
        op: impl FnOnce(&mut dyn redis::ConnectionLike) -> redis::RedisResult<T>,
    ) -> Result<T, Error> {
        let epoch = fork::epoch();
        // try_lock: after a fork, the slot may be locked forever by a thread that is gone;
        // then this process simply works without a cached connection.
        let mut slot = match self.idle.try_lock() {
            Ok(slot) => Some(slot),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        };
        let cached = slot.as_mut().and_then(|s| s.take());
        drop(slot);
        let mut conn = match cached {
            Some((e, c)) if e == epoch => c,
            other => {
                // A connection from before a fork shares its sockets with the parent: leave it
                // to the parent rather than closing or using it.
                std::mem::forget(other);
                self.connect()?
            }
        };
        match op(conn.as_dyn()) {
            Ok(v) => {
                if let Ok(mut slot) = self.idle.try_lock() {
                    *slot = Some((epoch, conn));
                }
                Ok(v)
            }
            Err(e) => {
                self.forget_primary();
                Err(store_error(format!(
                    "redis at {}: {what} failed: {}",
                    self.shown,
                    describe(&e)
                )))
            }
        }
    }

    fn connect(&self) -> Result<Conn, Error> {
        let failed = |e: &redis::RedisError| {
            store_error(format!(
                "cannot connect to redis at {}: {}",
                self.shown,
                describe(e)
            ))
        };
        let plain = |client: &redis::Client| -> redis::RedisResult<Conn> {
            let c = client.get_connection_with_timeout(self.timeout)?;
            c.set_read_timeout(Some(self.timeout))?;
            c.set_write_timeout(Some(self.timeout))?;
            Ok(Conn::Plain(c))
        };
        match &self.target {
            Target::Single(client) => plain(client).map_err(|e| failed(&e)),
            Target::Sentinel(s) => {
                let client = self.primary(s)?;
                plain(&client).map_err(|e| {
                    self.forget_primary();
                    failed(&e)
                })
            }
            Target::Cluster(client) => {
                let c = client.get_connection().map_err(|e| failed(&e))?;
                c.set_read_timeout(Some(self.timeout))
                    .and_then(|()| c.set_write_timeout(Some(self.timeout)))
                    .map_err(|e| failed(&e))?;
                Ok(Conn::Cluster(Box::new(c)))
            }
        }
    }

    fn forget_primary(&self) {
        if let Target::Sentinel(s) = &self.target
            && let Ok(mut p) = s.primary.try_lock()
        {
            *p = None;
        }
    }

    /// The primary the sentinels name, asked on a helper thread so that a sentinel that
    /// accepts connections but never answers holds no caller longer than the timeout.
    fn primary(&self, s: &Sentinel) -> Result<redis::Client, Error> {
        let mine = fork::epoch() + 1;
        let deadline = Instant::now() + self.timeout;
        // One lookup at a time: the others wait for its answer (within the timeout) rather
        // than fail, so that a burst of callers never looks like a store outage.
        loop {
            if let Ok(p) = s.primary.try_lock()
                && let Some(c) = p.as_ref()
            {
                return Ok(c.clone());
            }
            if Instant::now() >= deadline {
                return Err(store_error(format!(
                    "redis sentinel {}: a lookup of the primary is still pending",
                    self.shown
                )));
            }
            let busy = s.lookup.load(Ordering::Acquire);
            if busy != mine
                && s.lookup
                    .compare_exchange(busy, mine, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut client = match s.client(self.timeout) {
            Ok(c) => c,
            Err(e) => {
                s.lookup.store(0, Ordering::Release);
                return Err(store_error(format!(
                    "redis sentinel {}: {}",
                    self.shown,
                    describe(&e)
                )));
            }
        };
        let (tx, rx) = mpsc::sync_channel(1);
        let (primary, lookup) = (Arc::clone(&s.primary), Arc::clone(&s.lookup));
        let spawned = std::thread::Builder::new()
            .name("wx-redis-sentinel".into())
            .spawn(move || {
                let found = client.get_client();
                if let (Ok(c), Ok(mut p)) = (&found, primary.lock()) {
                    // Kept even if the caller gave up waiting: the next operation uses it.
                    *p = Some(c.clone());
                }
                lookup.store(0, Ordering::Release);
                let _ = tx.send(found);
            });
        if spawned.is_err() {
            s.lookup.store(0, Ordering::Release);
            return Err(store_error("cannot start a thread to ask redis sentinel"));
        }
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(store_error(format!(
                "redis sentinel {}: no primary: {}",
                self.shown,
                describe(&e)
            ))),
            Err(_) => Err(store_error(format!(
                "redis sentinel {}: timed out asking for the primary",
                self.shown
            ))),
        }
    }
}

impl Sentinel {
    /// A fresh sentinel client per lookup: it caches sentinel connections, which must never
    /// cross a fork, and building one opens nothing.
    fn client(&self, timeout: Duration) -> redis::RedisResult<redis::sentinel::SentinelClient> {
        let m = &self.multi;
        let addrs = m.hosts.iter().map(|(h, p)| {
            if m.tls {
                ConnectionAddr::TcpTls {
                    host: h.clone(),
                    port: *p,
                    insecure: false,
                    tls_params: None,
                }
            } else {
                ConnectionAddr::Tcp(h.clone(), *p)
            }
        });
        // TCP_USER_TIMEOUT bounds connects and unanswered writes to a dead host, so a helper
        // thread left behind by a timed-out lookup ends too (Linux; elsewhere the kernel's).
        let tcp = redis::io::tcp::TcpSettings::default();
        #[cfg(target_os = "linux")]
        let tcp = tcp.set_user_timeout(timeout);
        #[cfg(not(target_os = "linux"))]
        let _ = timeout;
        let mut b = SentinelClientBuilder::new(addrs, &self.service, SentinelServerType::Master)?
            .set_client_to_redis_db(self.db)
            .set_client_to_redis_tcp_settings(tcp.clone())
            .set_client_to_sentinel_tcp_settings(tcp);
        if let Some(u) = &m.username {
            b = b.set_client_to_redis_username(u.expose());
        }
        if let Some(p) = &m.password {
            b = b.set_client_to_redis_password(p.expose());
        }
        if m.tls {
            b = b
                .set_client_to_redis_tls_mode(TlsMode::Secure)
                .set_client_to_sentinel_tls_mode(TlsMode::Secure);
            if let Some(pem) = &self.pem {
                b = b
                    .set_client_to_redis_certificates(pem.certificates())
                    .set_client_to_sentinel_certificates(pem.certificates());
            }
        }
        b.build()
    }
}

fn single(url: &str, rest: &str, pem: Option<&Pem>) -> Result<(Target, String), Error> {
    let authority = rest.split('/').next().unwrap_or("");
    if authority.rsplit('@').next().unwrap_or("").is_empty() {
        return Err(invalid_url("needs a host, as in redis://127.0.0.1:6379/0"));
    }
    // The URL may hold a password: never echo it, nor redis's own parse error.
    let client = match pem {
        Some(pem) => redis::Client::build_with_tls(url, pem.certificates()),
        None => redis::Client::open(url),
    }
    .map_err(|_| invalid_url("not a valid redis:// URL"))?;
    let info = client.get_connection_info();
    let shown = format!("{} (db {})", info.addr(), info.redis_settings().db());
    Ok((Target::Single(client), shown))
}

fn sentinel(m: Multi, pem: Option<Pem>) -> Result<(Target, String), Error> {
    let usage = "redis+sentinel://[user:password@]host:port[,host:port…]/service_name[/db]";
    let (service, db) = match m.path.as_slice() {
        [s] => (s.clone(), 0),
        [s, db] => (
            s.clone(),
            db.parse::<i64>()
                .ok()
                .filter(|d| (0..=1_000_000).contains(d))
                .ok_or_else(|| invalid_url(&format!("db must be a number: {usage}")))?,
        ),
        _ => return Err(invalid_url(&format!("expected {usage}"))),
    };
    if service.len() > 128
        || !service
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(invalid_url("sentinel service name must be [A-Za-z0-9-_.]"));
    }
    let hosts: Vec<String> = m.hosts.iter().map(|(h, p)| host_port(h, *p)).collect();
    let shown = format!("sentinel {}/{service} (db {db})", hosts.join(","));
    let s = Sentinel {
        multi: m,
        service,
        db,
        pem,
        primary: Arc::new(Mutex::new(None)),
        lookup: Arc::new(AtomicU64::new(0)),
    };
    // Built once here only to check the parameters; each lookup builds its own.
    s.client(Duration::from_secs(1))
        .map_err(|_| invalid_url("invalid sentinel parameters"))?;
    Ok((Target::Sentinel(Box::new(s)), shown))
}

fn cluster(m: Multi, pem: Option<&Pem>, timeout: Duration) -> Result<(Target, String), Error> {
    if !m.path.is_empty() {
        return Err(invalid_url(
            "a cluster has no db: redis+cluster://[user:password@]host:port[,host:port…]",
        ));
    }
    let hosts: Vec<String> = m.hosts.iter().map(|(h, p)| host_port(h, *p)).collect();
    let scheme = if m.tls { "rediss" } else { "redis" };
    let nodes: Vec<String> = hosts.iter().map(|h| format!("{scheme}://{h}")).collect();
    let mut b = ClusterClientBuilder::new(nodes)
        .connection_timeout(timeout)
        .response_timeout(timeout)
        // MOVED/ASK are followed at once; retries only wait out a resharding or failover, and
        // few keep a caller's wait bounded.
        .retries(2);
    if let Some(u) = &m.username {
        b = b.username(u.expose());
    }
    if let Some(p) = &m.password {
        b = b.password(p.expose());
    }
    if let Some(pem) = pem {
        b = b.certs(pem.certificates());
    }
    let client = b
        .build()
        .map_err(|_| invalid_url("invalid cluster parameters"))?;
    Ok((
        Target::Cluster(client),
        format!("cluster {}", hosts.join(",")),
    ))
}

/// redis's errors can quote a command's arguments; keep only the kind and the server's code.
fn describe(e: &redis::RedisError) -> String {
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connection_refusal() {
        "connection refused".to_owned()
    } else if e.is_io_error() || e.is_connection_dropped() {
        "connection lost".to_owned()
    } else if e.code() == Some("NOPERM")
        || e.detail()
            .is_some_and(|d| d.contains("can't run this command"))
    {
        // Inside a script Redis reports an ACL refusal as a plain ERR; say what it is, without
        // the detail (which may quote the script's arguments).
        "NOPERM: the ACL user may not run a command the store needs (docs/STORES.md, ACL)"
            .to_owned()
    } else {
        format!("{:?} {}", e.kind(), e.code().unwrap_or(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(url: &str) -> Result<RedisConn, Error> {
        RedisConn::open(url, &RedisTls::default(), Duration::from_secs(1))
    }

    #[test]
    fn urls_are_parsed_and_never_echo_credentials() {
        let s = open("redis+sentinel://u:hunter2@127.0.0.1:26379,[::1]:26380/mymaster/3").unwrap();
        assert_eq!(
            s.shown(),
            "sentinel 127.0.0.1:26379,[::1]:26380/mymaster (db 3)"
        );
        let c = open("rediss+cluster://u:p%40ss@10.0.0.1:7000,10.0.0.2:7000").unwrap();
        assert_eq!(c.shown(), "cluster 10.0.0.1:7000,10.0.0.2:7000");
        assert!(!format!("{c:?}").contains("p@ss"));
        for bad in [
            "redis+sentinel://u:hunter2@127.0.0.1:26379",
            "redis+sentinel://u:hunter2@127.0.0.1/m",
            "redis+sentinel://u:hunter2@127.0.0.1:26379/m/x",
            "redis+sentinel://u:hunter2@127.0.0.1:26379/m?x=1",
            "redis+cluster://u:hunter2@127.0.0.1:7000/0",
            "redis+cluster://u:hunter2@h:7000,,h:7001",
            "redis+cluster://u:hunter2%zz@h:7000",
            "redis+sentinel://hunter2@h:1/a b",
            "redis://u:hunter2@127.0.0.1:1/0:bad",
            "redis://",
            "memcache+cluster://hunter2@h:1",
        ] {
            let e = open(bad).unwrap_err();
            assert_eq!(e.status(), crate::Status::InvalidArgument, "{bad}");
            assert!(!e.to_string().contains("hunter2"), "{bad}: {e}");
        }
    }

    #[test]
    fn tls_files_are_checked() {
        let t = |ca: &str| RedisTls {
            ca_file: Some(ca.into()),
            ..RedisTls::default()
        };
        let second = Duration::from_secs(1);
        let not_pem = std::env::temp_dir().join(format!("wx-not-pem-{}", std::process::id()));
        std::fs::write(&not_pem, "not a certificate\n").unwrap();
        let not_pem = not_pem.to_str().unwrap();
        let e = RedisConn::open("redis://h:1/0", &t(not_pem), second).unwrap_err();
        assert!(e.to_string().contains("TLS store URL"), "{e}");
        for (ca, why) in [
            ("relative.pem", "absolute"),
            ("/nonexistent/ca.pem", "cannot open"),
            ("/etc", "regular file"),
            (not_pem, "no valid PEM certificate"),
        ] {
            let e = RedisConn::open("rediss://h:1/0", &t(ca), second).unwrap_err();
            assert!(e.to_string().contains(why), "{ca}: {e}");
        }
        let half = RedisTls {
            cert_file: Some(not_pem.into()),
            ..RedisTls::default()
        };
        let e = RedisConn::open("rediss://h:1/0", &half, second).unwrap_err();
        assert!(e.to_string().contains("go together"), "{e}");
        std::fs::remove_file(not_pem).unwrap();
    }
}
