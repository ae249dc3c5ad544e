//! TLS: rustls, TLS 1.2 and 1.3 only, AEAD cipher suites only.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::crypto::{CryptoProvider, ring};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The crypto provider restricted to forward-secret AEAD suites
/// (AES-GCM and ChaCha20-Poly1305; no CBC, no RSA key exchange).
pub fn provider() -> Arc<CryptoProvider> {
    use ring::cipher_suite::*;
    let mut p = ring::default_provider();
    p.cipher_suites = vec![
        TLS13_AES_256_GCM_SHA384,
        TLS13_AES_128_GCM_SHA256,
        TLS13_CHACHA20_POLY1305_SHA256,
        TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ];
    Arc::new(p)
}

/// The protocol versions offered: TLS 1.3 and TLS 1.2, nothing older.
pub static PROTOCOL_VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{var} ({path}) cannot be read as PEM: {why}")]
    Pem { var: &'static str, path: String, why: String },
    #[error("the TLS certificate and key do not form a valid pair: {0}")]
    Config(#[from] rustls::Error),
    #[error("cannot write the generated certificate: {0}")]
    Write(#[from] std::io::Error),
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

pub fn server_config(cert_file: &Path, key_file: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let pem_err = |var, path: &Path, why: String| TlsError::Pem { var, path: path.display().to_string(), why };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| pem_err("SIKA_TLS_CERT_FILE", cert_file, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem_err("SIKA_TLS_CERT_FILE", cert_file, e.to_string()))?;
    if certs.is_empty() {
        return Err(pem_err("SIKA_TLS_CERT_FILE", cert_file, "no certificate found".into()));
    }
    let key =
        PrivateKeyDer::from_pem_file(key_file).map_err(|e| pem_err("SIKA_TLS_KEY_FILE", key_file, e.to_string()))?;
    build(certs, key)
}

pub fn build(certs: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(PROTOCOL_VERSIONS)?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    // HTTP/1.1 only: the API is server to server and the console is small, so
    // HTTP/2 would add attack surface (stream resets, HPACK) for no gain.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A self-signed certificate for `localhost` and `127.0.0.1` (PEM cert, PEM key).
pub fn self_signed() -> Result<(String, String), TlsError> {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    let certified = rcgen::generate_simple_self_signed(names)?;
    Ok((certified.cert.pem(), certified.key_pair.serialize_pem()))
}

/// Writes a self-signed pair into `dir` unless one is already there; returns the paths.
pub fn ensure_self_signed(dir: &Path) -> Result<(PathBuf, PathBuf), TlsError> {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    if !(cert.exists() && key.exists()) {
        let (cert_pem, key_pem) = self_signed()?;
        crate::fsutil::write_private(&key, key_pem.as_bytes())?;
        std::fs::write(&cert, cert_pem)?;
    }
    Ok((cert, key))
}
