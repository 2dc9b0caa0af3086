//! TLS served directly with rustls (ring provider: already built for the engine, no C
//! toolchain or OpenSSL needed). Only HTTP/1.1 is offered over ALPN.

use std::sync::{Arc, RwLock};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

use crate::config::{MAX_PEM_FILE, Tls, read_small_file};

/// The acceptor new connections use; a reload (SIGHUP) swaps in one built from renewed
/// certificate and key files, while connections already open keep theirs.
pub struct Certs(RwLock<TlsAcceptor>);

impl Certs {
    pub fn new(acceptor: TlsAcceptor) -> Certs {
        Certs(RwLock::new(acceptor))
    }

    pub fn current(&self) -> TlsAcceptor {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn replace(&self, acceptor: TlsAcceptor) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = acceptor;
    }
}

pub fn acceptor(tls: &Tls) -> Result<TlsAcceptor, String> {
    // Read like secret files: regular files of bounded size, so a wrong path cannot hang us.
    let (cert_pem, _) =
        read_small_file(&tls.cert, MAX_PEM_FILE).map_err(|e| format!("tls.cert: {e}"))?;
    let (key_pem, _) =
        read_small_file(&tls.key, MAX_PEM_FILE).map_err(|e| format!("tls.key: {e}"))?;
    let key_pem = zeroize::Zeroizing::new(key_pem);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("tls.cert {}: {e}", tls.cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "tls.cert {}: no certificate found",
            tls.cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| format!("tls.key {}: {e}", tls.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("tls: certificate and key: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
