//! TLS served directly: a self-signed certificate made in the test (rcgen), a rustls client
//! that trusts only it.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use common::*;
use rustls::pki_types::{CertificateDer, ServerName};

#[test]
fn serves_tokens_over_tls() {
    let fake = fake_with_apps();
    let dir = TempDir::new("tls");
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let cert = dir.write("cert.pem", &ck.cert.pem());
    let key = dir.write("key.pem", &ck.signing_key.serialize_pem());
    let top = format!(
        "tls = {{ cert = \"{}\", key = \"{}\" }}",
        cert.display(),
        key.display()
    );
    let srv = Tokend::start(&config(&fake, &top, ""));
    let lines = srv.log_lines();
    assert_eq!(
        lines.iter().find(|l| l["msg"] == "listening").unwrap()["tls"],
        true
    );

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(ck.cert.der().to_vec()))
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let connect = || {
        let conn = rustls::ClientConnection::new(
            client.clone(),
            ServerName::try_from("localhost").unwrap(),
        )
        .unwrap();
        rustls::StreamOwned::new(conn, TcpStream::connect(srv.addr).unwrap())
    };
    let r = http_on(
        &mut connect(),
        "GET",
        &format!("/v1/token/{APP1}"),
        Some(BILLING_KEY),
        None,
    );
    assert_eq!(r.access_token(), fake.current_token(APP1).unwrap());
    let r = http_on(
        &mut connect(),
        "GET",
        &format!("/v1/token/{APP1}"),
        None,
        None,
    );
    assert_eq!(r.status, 401);
    let r = http_on(&mut connect(), "GET", "/healthz", None, None);
    assert_eq!(r.status, 200);

    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(srv.addr).unwrap();
    plain
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    use std::io::{Read, Write};
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let _ = plain.read_to_end(&mut buf);
    assert!(!buf.starts_with(b"HTTP/1.1 200"));
    assert_eq!(fetches(&fake, APP1), 1);
}

#[test]
fn bad_tls_files_fail_check_config() {
    let fake = fake_with_apps();
    let dir = TempDir::new("tlsbad");
    let cert = dir.write("cert.pem", "not a certificate");
    let top = format!(
        "tls = {{ cert = \"{}\", key = \"{}\" }}",
        cert.display(),
        cert.display()
    );
    let path = dir.write("c.toml", &config(&fake, &top, ""));
    let out = tokend_command(&path)
        .arg("--check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("tls.cert"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A rustls client that trusts only `cert`; `Err` when the handshake fails.
fn get_over_tls(addr: SocketAddr, cert: &rcgen::Certificate) -> Result<Resp, rustls::Error> {
    use std::io::Write;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(cert.der().to_vec()))
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let conn =
        rustls::ClientConnection::new(Arc::new(client), ServerName::try_from("localhost").unwrap())
            .unwrap();
    let mut s = rustls::StreamOwned::new(conn, TcpStream::connect(addr).unwrap());
    // Complete the handshake first, so that a refused certificate surfaces as its error.
    while s.conn.is_handshaking() {
        if let Err(e) = s.conn.complete_io(&mut s.sock) {
            return Err(e
                .into_inner()
                .and_then(|e| e.downcast::<rustls::Error>().ok())
                .map_or(rustls::Error::General("io".into()), |e| *e));
        }
    }
    s.flush().unwrap();
    Ok(http_on(&mut s, "GET", "/healthz", None, None))
}

#[test]
fn sighup_loads_a_renewed_certificate_for_new_connections() {
    let fake = fake_with_apps();
    let dir = TempDir::new("tlsrenew");
    let names = vec!["localhost".to_string()];
    let old = rcgen::generate_simple_self_signed(names.clone()).unwrap();
    let cert = dir.write("cert.pem", &old.cert.pem());
    let key = dir.write("key.pem", &old.signing_key.serialize_pem());
    let top = format!(
        "tls = {{ cert = \"{}\", key = \"{}\" }}",
        cert.display(),
        key.display()
    );
    let srv = Tokend::start(&config(&fake, &top, ""));
    assert_eq!(get_over_tls(srv.addr, &old.cert).unwrap().status, 200);

    // A renewed certificate in the same files, then SIGHUP.
    let new = rcgen::generate_simple_self_signed(names).unwrap();
    std::fs::write(&cert, new.cert.pem()).unwrap();
    std::fs::write(&key, new.signing_key.serialize_pem()).unwrap();
    srv.sighup();
    assert!(eventually(5, || !srv
        .lines_with_msg("configuration reloaded")
        .is_empty()));
    assert_eq!(get_over_tls(srv.addr, &new.cert).unwrap().status, 200);
    assert!(
        get_over_tls(srv.addr, &old.cert).is_err(),
        "the old certificate is gone"
    );

    // A broken key file: the reload fails and the renewed certificate stays in service.
    std::fs::write(&key, "not a key").unwrap();
    srv.sighup();
    assert!(eventually(5, || !srv
        .lines_with_msg("reload failed; keeping the running configuration")
        .is_empty()));
    assert_eq!(get_over_tls(srv.addr, &new.cert).unwrap().status, 200);
}
