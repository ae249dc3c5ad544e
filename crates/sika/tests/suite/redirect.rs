//! The plain-HTTP listener only redirects, permanently, to the HTTPS URL.

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

#[tokio::test]
async fn every_plain_http_request_is_permanently_redirected_to_https() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let public = url::Url::parse("https://pay.example.test:8443/").unwrap();
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    tokio::spawn(sika::server::serve_redirect(listener, public, shutdown, sika::server::Limits::default()));

    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    for (method, path) in [("GET", "/"), ("GET", "/healthz"), ("POST", "/api/v1/checkouts?a=1&b=2"), ("GET", "/login")]
    {
        let res = client
            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), format!("http://{addr}{path}"))
            .header("host", "evil.example")
            .body(if method == "POST" { "{}" } else { "" })
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 308, "{method} {path}");
        assert_eq!(
            res.headers()["location"],
            format!("https://pay.example.test:8443{path}"),
            "the Host header is ignored"
        );
        assert!(res.text().await.unwrap().is_empty(), "nothing is served over plain HTTP");
    }
    // An absolute-form request cannot steer the redirect to another host.
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET http://evil.example/steal HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = String::new();
    tcp.read_to_string(&mut reply).await.unwrap();
    assert!(reply.to_lowercase().contains("location: https://pay.example.test:8443/steal"), "{reply}");
}
