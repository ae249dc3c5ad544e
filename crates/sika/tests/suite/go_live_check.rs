//! `sika check --url`: every live probe passes on the real server, and each
//! one fails when the control it names is off — a server without the
//! headers, with weak cookies, TRACE allowed, forged webhooks, XML and
//! cross-site forms accepted, markup reflected, internals shown; TLS 1.0
//! and CBC accepted; an expired, soon-expiring or misnamed certificate.

use crate::support;

use std::collections::HashMap;

use axum::Router;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::{any, get, post};
use sika::check::live::{self, Target};
use sika::check::{Report, Status};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

async fn probe(base: &str, ca_pem: &str) -> Report {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let target = Target { url: url::Url::parse(base).unwrap(), ca_file: Some(ca) };
    let mut report = Report::default();
    live::check(&target, &mut report).await;
    report
}

fn status(r: &Report, id: &str) -> Status {
    r.get(id).unwrap_or_else(|| panic!("no finding {id} in\n{}", r.text())).status
}

/// A TLS server (Sika's own strict TLS settings) in front of `app`, with a
/// certificate from `params`; returns its URL and the certificate's PEM.
async fn serve_with(app: Router, params: rcgen::CertificateParams) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let tls = sika::server::tls::build(
        vec![cert.der().clone()],
        rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        sika::server::serve_https(listener, tls, app, shutdown, sika::server::Limits::default()).await;
        drop(stop);
    });
    (format!("https://{addr}/"), cert.pem())
}

fn for_localhost() -> rcgen::CertificateParams {
    let mut p = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    p.subject_alt_names = vec![rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap())];
    p.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    p.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(365);
    p
}

#[tokio::test]
async fn the_real_server_passes_every_live_probe() {
    let app = support::spawn_app().await;
    let r = probe(&app.base, &app.cert_pem).await;
    assert_eq!(r.findings.len(), 16, "{}", r.text());
    for f in &r.findings {
        assert_eq!(f.status, Status::Pass, "{}\n{}", f.id, r.text());
    }
}

/// A web server with every control off: no security headers, a weak cookie,
/// every method answered, forged webhooks and XML accepted, markup and
/// database errors echoed, a worker down.
fn careless() -> Router {
    Router::new()
        .route("/login", any(|| async { ([("set-cookie", "sid=abc; Path=/")], Html("<form>sign in</form>")) }))
        .route("/webhooks/flutterwave", post(|| async { "thanks" }))
        .route("/api/v1/checkouts", any(|| async { ([("cache-control", "private")], "[]") }))
        .route(
            "/checkout/return",
            get(|Query(q): Query<HashMap<String, String>>| async move {
                let tx_ref = q.get("tx_ref").cloned().unwrap_or_default();
                if tx_ref.contains('\'') {
                    return (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        Html("sqlx: syntax error at or near \"OR\"".to_string()),
                    );
                }
                (StatusCode::OK, Html(format!("<p>Order {tx_ref}</p>")))
            }),
        )
        .route("/readyz", get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "worker stalled") }))
        .fallback(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "thread 'main' panicked at src/main.rs:1") })
}

#[tokio::test]
async fn each_control_turned_off_is_a_failure() {
    let (url, pem) = serve_with(careless(), for_localhost()).await;
    let r = probe(&url, &pem).await;
    for id in [
        "https.hsts",
        "headers.cache",
        "headers.browser",
        "cookies.attributes",
        "methods.unused_refused",
        "webhooks.forged_refused",
        "csrf.refused",
        "xss.reflected",
        "sql.injection",
        "xml.refused",
        "errors.generic",
        "health.ready",
    ] {
        assert_eq!(status(&r, id), Status::Fail, "{id}\n{}", r.text());
    }
    // Its TLS is Sika's own, so those pass: the failures are the HTTP controls.
    assert_eq!(status(&r, "tls.versions"), Status::Pass);
    assert_eq!(status(&r, "tls.certificate"), Status::Pass);
    assert!(r.failed());
}

#[tokio::test]
async fn a_server_agreeing_to_tls_1_0_and_cbc_fails() {
    // Answers every ClientHello with the first byte of a ServerHello.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = tcp.read(&mut buf).await;
                let _ = tcp.write_all(&[0x16, 0x03, 0x01]).await;
            });
        }
    });
    let r = probe(
        &format!("https://{addr}/"),
        &for_localhost().self_signed(&rcgen::KeyPair::generate().unwrap()).unwrap().pem(),
    )
    .await;
    assert_eq!(status(&r, "tls.versions"), Status::Fail, "{}", r.text());
    assert!(r.get("tls.versions").unwrap().evidence.contains("TLS 1.0"));
    assert_eq!(status(&r, "tls.aead_only"), Status::Fail);
    assert_eq!(status(&r, "tls.certificate"), Status::Fail, "no real handshake");
}

#[tokio::test]
async fn expired_expiring_and_misnamed_certificates_are_caught() {
    let hello = || Router::new().route("/login", get(|| async { "hi" }));
    let mut expired = for_localhost();
    expired.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(60);
    expired.not_after = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    let (url, pem) = serve_with(hello(), expired).await;
    let r = probe(&url, &pem).await;
    assert_eq!(status(&r, "tls.certificate"), Status::Fail, "{}", r.text());
    assert!(r.get("tls.certificate").unwrap().evidence.contains("refused"), "{}", r.text());

    let mut soon = for_localhost();
    soon.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(10);
    let (url, pem) = serve_with(hello(), soon).await;
    let r = probe(&url, &pem).await;
    assert_eq!(status(&r, "tls.certificate"), Status::Warn, "{}", r.text());
    assert!(r.get("tls.certificate").unwrap().evidence.contains("expires within 30 days"));

    let mut misnamed = rcgen::CertificateParams::new(vec!["shop.example.com".to_string()]).unwrap();
    misnamed.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(365);
    let (url, pem) = serve_with(hello(), misnamed).await;
    let r = probe(&url, &pem).await;
    assert_eq!(status(&r, "tls.certificate"), Status::Fail, "{}", r.text());

    // And one nobody vouches for (no --ca-file).
    let (url, _) = serve_with(hello(), for_localhost()).await;
    let mut r = Report::default();
    live::check(&Target { url: url::Url::parse(&url).unwrap(), ca_file: None }, &mut r).await;
    assert_eq!(status(&r, "tls.certificate"), Status::Fail, "{}", r.text());
}

#[tokio::test]
async fn plain_http_is_a_failure_before_anything_is_sent() {
    let mut r = Report::default();
    live::check(&Target { url: url::Url::parse("http://127.0.0.1:9/").unwrap(), ca_file: None }, &mut r).await;
    assert_eq!(status(&r, "https.enforced"), Status::Fail);
    assert_eq!(r.findings.len(), 1);
}
