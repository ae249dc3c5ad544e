//! Every response is hardened, unused methods and foreign bodies are refused,
//! and a failing handler reveals nothing. Runs the real TLS server on port 0.

use crate::support;

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use reqwest::{Method, StatusCode};
use sika::http::AppState;
use sika::http::error::AppError;

fn test_routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/echo", post(|axum::Json(v): axum::Json<serde_json::Value>| async move { axum::Json(v) }))
        .route("/form-echo", post(|body: String| async move { body }))
        .route(
            "/api/v1/boom",
            get(|| async {
                panic!("internal detail: /var/lib/sika/secret-path");
                #[allow(unreachable_code)]
                ""
            }),
        )
        .route(
            "/boom",
            get(|| async { Err::<(), _>(AppError::Internal("stack trace at /srv/sika/src/db.rs:42".into())) }),
        )
        .route(
            "/api/v1/db-error",
            get(|State(state): State<AppState>| async move {
                // A real database error from a real query.
                state.store.setting("x").await?;
                Err::<(), _>(AppError::Internal("unreachable".into()))
            }),
        )
}

fn assert_hardened(res: &reqwest::Response) {
    let h = res.headers();
    let get = |n: &str| {
        h.get(n).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("missing header {n} on {}", res.url()))
    };
    let hsts = get("strict-transport-security");
    let max_age: u64 = hsts
        .split(';')
        .find_map(|p| p.trim().strip_prefix("max-age="))
        .and_then(|v| v.parse().ok())
        .expect("HSTS max-age");
    assert!(max_age >= 31_536_000, "HSTS shorter than a year: {hsts}");
    assert!(hsts.contains("includeSubDomains"));
    let cc = get("cache-control");
    assert!(cc.contains("no-store") && cc.contains("no-cache") && !cc.contains("private"), "{cc}");
    assert_eq!(get("pragma"), "no-cache");
    let csp = get("content-security-policy");
    for d in
        ["default-src 'self'", "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'", "object-src 'none'"]
    {
        assert!(csp.contains(d), "CSP lacks {d}: {csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
    assert_eq!(get("x-content-type-options"), "nosniff");
    assert_eq!(get("referrer-policy"), "no-referrer");
    assert!(get("permissions-policy").contains("camera=()"));
    assert!(h.get("server").is_none() && h.get("x-powered-by").is_none(), "version banner present");
    assert!(h.get("access-control-allow-origin").is_none(), "CORS must be off");
}

#[tokio::test]
async fn every_kind_of_response_carries_the_security_headers() {
    let app = support::spawn_app_with(test_routes()).await;
    let cases = [
        ("/login", 200, "text/html"),
        ("/healthz", 200, "application/json"),
        ("/boom", 500, "text/html"),
        ("/no/such/page", 404, "text/html"),
        ("/api/v1/nothing", 404, "application/json"),
    ];
    for (path, status, ctype) in cases {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status().as_u16(), status, "{path}");
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with(ctype), "{path}");
        assert_hardened(&res);
    }
}

#[tokio::test]
async fn trace_track_connect_options_and_unserved_methods_get_405() {
    let app = support::spawn_app().await;
    for m in ["TRACE", "TRACK", "OPTIONS", "PUT", "DELETE", "PATCH", "POST", "FOO"] {
        let res =
            app.client.request(Method::from_bytes(m.as_bytes()).unwrap(), app.url("/healthz")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED, "{m}");
        assert_hardened(&res);
        let body = res.text().await.unwrap();
        assert!(!body.to_lowercase().contains("trace") || m != "TRACE", "TRACE must not echo the request");
    }
    // Even on a path that does not exist, TRACE is refused as a method, not a 404.
    let res = app.client.request(Method::TRACE, app.url("/nowhere")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    // CONNECT needs a raw request: reqwest cannot send one.
    let reply = raw_request(&app, "CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n").await;
    assert!(reply.starts_with("HTTP/1.1 405"), "{reply}");
}

#[tokio::test]
async fn a_body_over_64_kib_is_refused_with_413() {
    let app = support::spawn_app_with(test_routes()).await;
    let big = format!("{{\"x\":\"{}\"}}", "a".repeat(70 * 1024));
    let res = app
        .client
        .post(app.url("/api/v1/echo"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_hardened(&res);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large");
    // Just under the limit passes.
    let ok = format!("{{\"x\":\"{}\"}}", "a".repeat(60 * 1024));
    let res = app
        .client
        .post(app.url("/api/v1/echo"))
        .header("content-type", "application/json")
        .body(ok)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // Chunked bodies (no Content-Length) are cut off too.
    let chunked = format!("{{\"x\":\"{}\"}}", "a".repeat(70 * 1024));
    let reply = raw_request(
        &app,
        &format!(
            "POST /api/v1/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{}\r\n0\r\n\r\n",
            chunked.len(),
            chunked
        ),
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{}", &reply[..reply.len().min(200)]);
}

#[tokio::test]
async fn xml_and_other_foreign_content_types_get_415() {
    let app = support::spawn_app_with(test_routes()).await;
    let xml = r#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>"#;
    for (path, ctype) in [
        ("/api/v1/echo", "application/xml"),
        ("/api/v1/echo", "text/xml"),
        ("/api/v1/echo", "text/plain"),
        ("/form-echo", "application/xml"),
        ("/form-echo", "application/json"),
    ] {
        let res = app.client.post(app.url(path)).header("content-type", ctype).body(xml).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{path} {ctype}");
        assert_hardened(&res);
        assert!(!res.text().await.unwrap().contains("passwd"));
    }
    let res = app.client.post(app.url("/api/v1/echo")).body("{}").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "a body without a content type");
    let res = app.client.post(app.url("/api/v1/echo")).json(&serde_json::json!({"a": 1})).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = app.client.post(app.url("/form-echo")).form(&[("a", "1")]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn failing_handlers_reveal_nothing_and_the_server_keeps_serving() {
    let app = support::spawn_app_with(test_routes()).await;
    // Drop the table so the handler's query fails with a real database error.
    {
        use sqlx::Connection as _;
        let mut c = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
        sqlx::raw_sql("DROP TABLE settings").execute(&mut c).await.unwrap();
    }
    for path in ["/api/v1/db-error", "/api/v1/boom", "/boom"] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        assert_hardened(&res);
        let request_id = res.headers()["x-request-id"].to_str().unwrap().to_string();
        let body = res.text().await.unwrap();
        assert!(body.contains(&request_id), "the request id is shown so support can find the log line");
        for leak in
            ["settings", "no such table", "sqlx", "sqlite", "panic", "/var/lib", "/srv", "src/", "secret-path", "stack"]
        {
            assert!(!body.to_lowercase().contains(leak), "{path} leaked {leak:?}: {body}");
        }
        if path.starts_with("/api/") {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["error"]["code"], "internal");
            assert_eq!(v["error"]["request_id"], request_id);
        }
    }
    // The panic did not take the server down.
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn health_and_readiness() {
    let app = support::spawn_app().await;
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["status"], "ok");
    let res = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    app.db.store.close().await;
    let res = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "readiness follows the database");
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200, "liveness does not");
}

/// Sends raw bytes over TLS and returns what the server answered.
async fn raw_request(app: &support::TestApp, request: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut roots = rustls::RootCertStore::empty();
    use rustls_pki_types::pem::PemObject as _;
    roots.add(rustls_pki_types::CertificateDer::from_pem_slice(app.cert_pem.as_bytes()).unwrap()).unwrap();
    let config =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), tls.read(&mut buf)).await.unwrap().unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}
