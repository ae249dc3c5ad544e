//! Staying reachable: one client address cannot hold every connection slot,
//! idle connections are shed under pressure, and `/readyz` tells a dead or
//! stalled background worker from a healthy one.

use crate::support;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use sika::jobs::{Schedule, Supervisor};
use tokio::net::TcpSocket;

/// A raw TCP connection from `from` (another loopback address: 127.0.0.2
/// stands for a second client on the same machine).
async fn connect_from(from: IpAddr, to: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let s = TcpSocket::new_v4()?;
    s.bind(SocketAddr::new(from, 0))?;
    s.connect(to).await
}

/// Is the connection still open (the server neither closed nor reset it)?
async fn still_open(c: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::AsyncReadExt as _;
    let mut b = [0u8; 1];
    match tokio::time::timeout(Duration::from_millis(300), c.read(&mut b)).await {
        Err(_) => true,     // nothing to read and not closed
        Ok(Ok(0)) => false, // closed
        Ok(Ok(_)) => true,
        Ok(Err(_)) => false, // reset
    }
}

async fn app_with(options: support::Options) -> support::TestApp {
    let (idle, absolute) = (Duration::from_secs(900), Duration::from_secs(3600));
    support::spawn_with(support::sqlite().await, axum::Router::new(), idle, absolute, None, options, |_| {}).await
}

#[tokio::test]
async fn one_address_cannot_take_every_connection() {
    let limits = sika::server::Limits { max_connections: 200, per_ip: 20 };
    let app = app_with(support::Options { limits, ..Default::default() }).await;
    let flooder: IpAddr = "127.0.0.2".parse().unwrap();
    let mut held = Vec::new();
    for _ in 0..60 {
        held.push(connect_from(flooder, app.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut open = 0;
    for c in &mut held {
        open += usize::from(still_open(c).await);
    }
    assert_eq!(open, 20, "the address keeps its share and no more");
    // Everyone else is still served.
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    // Its connections closed, the address gets its share back.
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = connect_from(flooder, app.addr).await.unwrap();
    assert!(still_open(&mut again).await);
}

#[tokio::test]
async fn idle_connections_are_shed_when_most_slots_are_taken() {
    let limits = sika::server::Limits { max_connections: 40, per_ip: 0 };
    let app = app_with(support::Options { limits, ..Default::default() }).await;
    // Idle clients, many addresses (behind a proxy, say), that finished their TLS handshake.
    let mut idle = Vec::new();
    for i in 0..35u8 {
        let from: IpAddr = format!("127.0.1.{}", i + 1).parse().unwrap();
        let tcp = connect_from(from, app.addr).await.unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(client_tls(&app.cert_pem)));
        let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
        idle.push(tls.connect(name, tcp).await.unwrap());
    }
    // A new client still gets in: idle connections make room.
    let res = tokio::time::timeout(Duration::from_secs(5), app.client.get(app.url("/healthz")).send()).await;
    assert_eq!(res.expect("served while the slots were full").unwrap().status(), 200);
    let mut closed = 0;
    for c in &mut idle {
        use tokio::io::AsyncReadExt as _;
        let mut b = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(Duration::from_millis(100), c.read(&mut b)).await {
            closed += 1;
        }
    }
    assert!(closed >= 10, "idle connections were shed ({closed} closed)");
}

fn client_tls(cert_pem: &str) -> rustls::ClientConfig {
    use rustls_pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls_pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap()).unwrap();
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

#[tokio::test]
async fn readyz_reports_a_stalled_worker() {
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    let mut workers = Supervisor::new(stop_rx);
    let quick = Schedule {
        every: Duration::from_millis(20),
        timeout: Duration::from_secs(60),
        stall_after: Duration::from_secs(30),
    };
    workers.spawn("healthy", quick, || Box::pin(async { Ok(false) }));
    let (stall_tx, stall_rx) = tokio::sync::watch::channel(false);
    let stuck = Schedule {
        every: Duration::from_millis(20),
        timeout: Duration::from_secs(60),
        stall_after: Duration::from_millis(300),
    };
    workers.spawn("inbox", stuck, move || {
        let mut stall = stall_rx.clone();
        Box::pin(async move {
            // Once told to, this worker hangs (a lost connection, a deadlock).
            if *stall.borrow() {
                let _ = stall.wait_for(|s| !*s).await;
            }
            Ok(false)
        })
    });
    let app = app_with(support::Options { workers: workers.health(), ..Default::default() }).await;
    let res = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["workers"].as_array().unwrap().len(), 2);
    stall_tx.send(true).unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(app.client.get(app.url("/readyz")).send().await.unwrap().status(), 503, "a stalled worker is not ready");
    assert_eq!(app.client.get(app.url("/healthz")).send().await.unwrap().status(), 200, "but the process is alive");
    stall_tx.send(false).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(app.client.get(app.url("/readyz")).send().await.unwrap().status(), 200, "recovered");
}
