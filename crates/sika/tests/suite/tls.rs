//! TLS 1.2 and 1.3 are served; TLS 1.0, 1.1 and non-AEAD suites are refused.

use crate::support;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

async fn get_with(app: &support::TestApp, version: reqwest::tls::Version) -> Result<u16, reqwest::Error> {
    let client = support::client_for(&app.cert_pem).min_tls_version(version).max_tls_version(version).build()?;
    Ok(client.get(app.url("/healthz")).send().await?.status().as_u16())
}

#[tokio::test]
async fn clients_pinned_to_tls_1_2_and_1_3_succeed() {
    let app = support::spawn_app().await;
    assert_eq!(get_with(&app, reqwest::tls::Version::TLS_1_2).await.expect("TLS 1.2"), 200);
    assert_eq!(get_with(&app, reqwest::tls::Version::TLS_1_3).await.expect("TLS 1.3"), 200);
}

fn client_hello(version: [u8; 2], suites: &[[u8; 2]]) -> Vec<u8> {
    sika::check::tls_probe::client_hello(version, suites, None)
}

/// The server's first record type: 0x16 = handshake (a ServerHello), 0x15 = alert, None = closed.
async fn first_record(app: &support::TestApp, hello: &[u8]) -> Option<u8> {
    let mut tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    tcp.write_all(hello).await.unwrap();
    let mut b = [0u8; 1];
    match tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read(&mut b)).await {
        Ok(Ok(1)) => Some(b[0]),
        _ => None,
    }
}

use sika::check::tls_probe::{CBC_SUITES, GCM_SUITES};

#[tokio::test]
async fn tls_1_0_and_1_1_handshakes_are_refused() {
    let app = support::spawn_app().await;
    // The probe itself is sound: a TLS 1.2 hello with AEAD suites gets a ServerHello.
    assert_eq!(first_record(&app, &client_hello([3, 3], &GCM_SUITES)).await, Some(0x16));
    for (name, version) in [("TLS 1.0", [3, 1]), ("TLS 1.1", [3, 2])] {
        let all: Vec<[u8; 2]> = CBC_SUITES.iter().chain(GCM_SUITES.iter()).copied().collect();
        let answer = first_record(&app, &client_hello(version, &all)).await;
        assert_ne!(answer, Some(0x16), "{name} got a ServerHello");
    }
}

#[tokio::test]
async fn cbc_only_clients_are_refused() {
    let app = support::spawn_app().await;
    let answer = first_record(&app, &client_hello([3, 3], &CBC_SUITES)).await;
    assert_ne!(answer, Some(0x16), "a TLS 1.2 hello offering only CBC suites got a ServerHello");
}

#[test]
fn only_aead_suites_and_modern_versions_are_configured() {
    let provider = sika::server::tls::provider();
    for suite in &provider.cipher_suites {
        let name = format!("{:?}", suite.suite());
        assert!(name.contains("GCM") || name.contains("CHACHA20_POLY1305"), "non-AEAD suite {name}");
        assert!(name.starts_with("TLS13_") || name.contains("ECDHE"), "suite without forward secrecy: {name}");
    }
    let versions: Vec<_> = sika::server::tls::PROTOCOL_VERSIONS.iter().map(|v| v.version).collect();
    assert_eq!(versions, vec![rustls::ProtocolVersion::TLSv1_3, rustls::ProtocolVersion::TLSv1_2]);
}
