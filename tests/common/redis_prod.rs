//! Production Redis topologies for tests, made of real servers on 127.0.0.1: a primary with a
//! replica and a sentinel, a 3-primary cluster, a TLS server with a CA and certificates made
//! here. Every process started is killed on drop; every file lives under the target tmpdir.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

use super::{eventually, unique_appid};

pub fn installed(bin: &str) -> bool {
    Command::new(bin).arg("--version").output().is_ok()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn scratch_dir(tag: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(unique_appid(tag));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A server process (redis-server or redis-sentinel), SIGKILLed on drop.
pub struct Proc {
    pub port: u16,
    child: Option<Child>,
}

impl Proc {
    pub fn spawn(bin: &str, args: &[String], port: u16) -> Proc {
        let child = Command::new(bin)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{bin} starts: {e}"));
        Proc {
            port,
            child: Some(child),
        }
    }

    /// A redis-server on 127.0.0.1:`port`, no persistence, with `extra` arguments; waits until
    /// it answers, unless it serves TLS only.
    pub fn redis(port: u16, extra: &[&str]) -> Proc {
        let mut args: Vec<String> = [
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
            // A fresh working directory: never load a dump.rdb left in the current one.
            "--dir",
            &scratch_dir("redis").display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let p = Proc::spawn("redis-server", &args, port);
        if !extra.contains(&"--tls-port") {
            assert!(
                eventually(10, || cli(port, &["PING"])
                    .is_some_and(|o| o.trim() == "PONG")),
                "redis-server on {port} answers"
            );
        }
        p
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// redis-cli against 127.0.0.1:`port`; `None` if it failed or the server answered an error.
pub fn cli(port: u16, args: &[&str]) -> Option<String> {
    cli_with(port, &[], args)
}

pub fn cli_with(port: u16, flags: &[&str], args: &[&str]) -> Option<String> {
    let out: Output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(flags)
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success() && !text.starts_with("ERR") && !text.starts_with("MOVED")).then_some(text)
}

/// A primary, its replica, and one redis-sentinel watching them (quorum 1, 1 s to declare the
/// primary down), so that a killed primary is replaced within a few seconds.
pub struct SentinelSet {
    pub primary: Proc,
    pub replica: Proc,
    pub sentinel: Proc,
    /// A sentinel address nothing listens on, listed first in the URL: lookups must skip it.
    dead_sentinel: u16,
    /// With TLS: servers and sentinel serve TLS only, replication too, client certificates.
    pub tls: Option<TlsFiles>,
}

pub const SENTINEL_SERVICE: &str = "wxprimary";

impl SentinelSet {
    pub fn start(tls: Option<TlsFiles>) -> Option<SentinelSet> {
        if !installed("redis-server") || !installed("redis-sentinel") {
            return None;
        }
        let dir = scratch_dir("sentinel");
        let server = |extra: &[&str]| match &tls {
            Some(t) => t.server(&[&["--tls-replication", "yes"], extra].concat()),
            None => Proc::redis(free_port(), extra),
        };
        let primary = server(&[]);
        let replica = server(&["--replicaof", "127.0.0.1", &primary.port.to_string()]);
        let sport = free_port();
        let listen = match &tls {
            Some(t) => format!(
                "port 0\ntls-port {sport}\ntls-replication yes\ntls-cert-file {}\n\
                 tls-key-file {}\ntls-ca-cert-file {}\n",
                t.path("server.crt"),
                t.path("server.key"),
                t.path("ca.crt")
            ),
            None => format!("port {sport}\n"),
        };
        let conf = dir.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "{listen}bind 127.0.0.1\ndir {}\n\
                 sentinel monitor {SENTINEL_SERVICE} 127.0.0.1 {} 1\n\
                 sentinel down-after-milliseconds {SENTINEL_SERVICE} 1000\n\
                 sentinel failover-timeout {SENTINEL_SERVICE} 3000\n",
                dir.display(),
                primary.port
            ),
        )
        .unwrap();
        let sentinel = Proc::spawn("redis-sentinel", &[conf.display().to_string()], sport);
        let set = SentinelSet {
            primary,
            replica,
            sentinel,
            dead_sentinel: free_port(),
            tls,
        };
        // Ready when the sentinel knows the replica: it can then promote it.
        let rport = set.replica.port.to_string();
        assert!(
            eventually(20, || set
                .cli(sport, &["SENTINEL", "replicas", SENTINEL_SERVICE])
                .is_some_and(|o| o.contains(&rport))),
            "the sentinel found the replica"
        );
        Some(set)
    }

    /// redis-cli against a server or the sentinel of this set.
    pub fn cli(&self, port: u16, args: &[&str]) -> Option<String> {
        match &self.tls {
            Some(t) => t.cli(port, args),
            None => cli(port, args),
        }
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!(
            "{scheme}+sentinel://127.0.0.1:{},127.0.0.1:{}/{SENTINEL_SERVICE}/0",
            self.dead_sentinel, self.sentinel.port
        )
    }

    /// The port of the server the sentinel names as primary now.
    pub fn primary_port(&self) -> Option<u16> {
        let out = self.cli(
            self.sentinel.port,
            &["SENTINEL", "get-master-addr-by-name", SENTINEL_SERVICE],
        )?;
        out.lines().nth(1)?.trim().parse().ok()
    }
}

/// Three redis-server primaries joined by `redis-cli --cluster create`, no replicas.
pub struct RedisCluster {
    pub nodes: Vec<Proc>,
    /// With TLS: every node serves TLS only, between nodes too, and wants client certificates.
    pub tls: Option<TlsFiles>,
}

impl RedisCluster {
    pub fn start(tls: Option<TlsFiles>) -> Option<RedisCluster> {
        if !installed("redis-server") {
            return None;
        }
        let nodes: Vec<Proc> = (0..3)
            .map(|_| {
                let conf = scratch_dir("cluster").join("nodes.conf");
                let mut args = vec![
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    conf.to_str().unwrap(),
                    "--cluster-node-timeout",
                    "2000",
                ];
                match &tls {
                    Some(t) => {
                        args.extend(["--tls-cluster", "yes"]);
                        t.server(&args)
                    }
                    None => Proc::redis(free_port(), &args),
                }
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .args(tls.as_ref().map(TlsFiles::cli_flags).unwrap_or_default())
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli runs");
        assert!(
            out.status.success(),
            "cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let c = RedisCluster { nodes, tls };
        assert!(
            eventually(20, || c.nodes.iter().all(|n| c
                .cli(n.port, &["CLUSTER", "INFO"])
                .is_some_and(|o| o.contains("cluster_state:ok")))),
            "cluster is ok on every node"
        );
        Some(c)
    }

    /// redis-cli against one node (not following redirections).
    pub fn cli(&self, port: u16, args: &[&str]) -> Option<String> {
        match &self.tls {
            Some(t) => t.cli(port, args),
            None => cli(port, args),
        }
    }

    pub fn url(&self, userinfo: &str) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}+cluster://{userinfo}{}", hosts.join(","))
    }

    /// Which node serves `key`: its slot, against each node's own slot ranges.
    pub fn node_of(&self, key: &str) -> usize {
        let slot: u16 = self
            .cli(self.nodes[0].port, &["CLUSTER", "KEYSLOT", key])
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        self.nodes
            .iter()
            .position(|n| {
                let nodes = self.cli(n.port, &["CLUSTER", "NODES"]).unwrap();
                let me = nodes.lines().find(|l| l.contains("myself")).unwrap();
                me.split_whitespace().skip(8).any(|range| {
                    let (a, b) = range.split_once('-').unwrap_or((range, range));
                    (a.parse::<u16>().unwrap()..=b.parse::<u16>().unwrap()).contains(&slot)
                })
            })
            .expect("some node serves every slot")
    }
}

/// A CA, a server certificate for 127.0.0.1/localhost and a client certificate it signed, and
/// an unrelated CA: PEM files in a fresh directory.
pub struct TlsFiles {
    pub dir: PathBuf,
}

impl TlsFiles {
    pub fn generate() -> TlsFiles {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let dir = scratch_dir("tls");
        let write = |name: &str, pem: String| std::fs::write(dir.join(name), pem).unwrap();
        let ca = |name: &str| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            write(
                &format!("{name}.crt"),
                params.self_signed(&key).unwrap().pem(),
            );
            Issuer::new(params, key)
        };
        let issuer = ca("ca");
        ca("other-ca");
        for (name, sans) in [
            (
                "server",
                vec!["127.0.0.1".to_owned(), "localhost".to_owned()],
            ),
            ("client", vec!["wx-token-client".to_owned()]),
        ] {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(sans)
                .unwrap()
                .signed_by(&key, &issuer)
                .unwrap();
            write(&format!("{name}.crt"), cert.pem());
            write(&format!("{name}.key"), key.serialize_pem());
        }
        TlsFiles { dir }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// redis-server with TLS only (`--port 0`), requiring client certificates signed by the CA.
    pub fn server(&self, extra: &[&str]) -> Proc {
        let port = free_port();
        let mut args: Vec<String> = vec![
            "--port".into(),
            "0".into(),
            "--tls-port".into(),
            port.to_string(),
            "--tls-cert-file".into(),
            self.path("server.crt"),
            "--tls-key-file".into(),
            self.path("server.key"),
            "--tls-ca-cert-file".into(),
            self.path("ca.crt"),
            "--tls-auth-clients".into(),
            "yes".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // Proc::redis sets --port first; the later "--port 0" wins.
        let proc = Proc::redis(port, &args);
        assert!(
            eventually(10, || self.cli(port, &["PING"]).is_some()),
            "TLS redis-server answers"
        );
        proc
    }

    /// The engine's options for these files, as JSON members: the CA, and the client
    /// certificate and key.
    pub fn options(&self) -> String {
        format!(
            r#""store_tls_ca_file":"{}","store_tls_cert_file":"{}","store_tls_key_file":"{}""#,
            self.path("ca.crt"),
            self.path("client.crt"),
            self.path("client.key")
        )
    }

    /// redis-cli's flags for TLS with the client certificate.
    pub fn cli_flags(&self) -> Vec<String> {
        let mut flags = vec!["--tls".to_owned()];
        for (flag, file) in [
            ("--cacert", "ca.crt"),
            ("--cert", "client.crt"),
            ("--key", "client.key"),
        ] {
            flags.extend([flag.to_owned(), self.path(file)]);
        }
        flags
    }

    /// redis-cli over TLS with the client certificate.
    pub fn cli(&self, port: u16, args: &[&str]) -> Option<String> {
        let flags = self.cli_flags();
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        cli_with(port, &flags, args)
    }
}
