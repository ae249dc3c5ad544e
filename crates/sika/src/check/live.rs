//! `sika check --url https://…`: the running server, probed from outside the
//! way a scanner or an attacker would: its TLS versions and suites, its
//! certificate, the headers and cookies it sends, the methods it refuses,
//! and how it answers forged, cross-site, injected and oversized requests.
//! Every probe is harmless: nothing it sends can change data.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject as _;

use super::tls_probe::{Answer, CBC_SUITES, GCM_SUITES, client_hello, probe};
use super::{Report, Status};

/// Where to probe, and which extra certificate authority to trust (a private CA, or the demo's self-signed certificate).
pub struct Target {
    pub url: url::Url,
    pub ca_file: Option<std::path::PathBuf>,
}

/// A certificate that will still be valid this long from now passes; sooner is a warning.
const RENEW_WITHIN: Duration = Duration::from_secs(30 * 86_400);
/// HSTS shorter than this (180 days) is a warning.
const MIN_HSTS_SECONDS: u64 = 15_552_000;

/// The findings of every live probe, in the order an operator reads them.
pub async fn check(target: &Target, report: &mut Report) {
    let url = &target.url;
    if url.scheme() != "https" {
        report.fail(
            "https.enforced",
            "HTTPS is enforced on all pages and endpoints of your application",
            format!("{url} is not https://"),
        );
        return;
    }
    let Some(host) = url.host_str().map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string()) else {
        report.fail("https.enforced", "HTTPS is enforced on all pages and endpoints of your application", "no host");
        return;
    };
    let port = url.port_or_known_default().unwrap_or(443);
    let addr = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    let roots = match roots(target.ca_file.as_deref()) {
        Ok(r) => r,
        Err(why) => {
            report.fail("tls.certificate", ITEM_TLS_EXCHANGE, why);
            return;
        }
    };
    tls_versions(&addr, &host, report).await;
    certificate(&addr, &host, roots.clone(), report).await;
    let client = match client(target) {
        Ok(c) => c,
        Err(why) => {
            report.fail("https.enforced", "HTTPS is enforced on all pages and endpoints of your application", why);
            return;
        }
    };
    http_probes(&client, url, report).await;
}

const ITEM_TLS_ONLY: &str = "SSL must be configured to support only TLS version 1.2 or higher.";
const ITEM_TLS_EXCHANGE: &str = "Securely exchange encryption keys - Ensure key exchanges are performed over a secure channel (TLS 1.2 and TLS 1.3)";

async fn tls_versions(addr: &str, host: &str, report: &mut Report) {
    let all: Vec<[u8; 2]> = CBC_SUITES.iter().chain(GCM_SUITES.iter()).copied().collect();
    let mut old = Vec::new();
    for (name, version) in [("TLS 1.0", [3, 1]), ("TLS 1.1", [3, 2])] {
        match probe(addr, &client_hello(version, &all, Some(host))).await {
            Ok(Answer::Agreed) => old.push(name),
            Ok(Answer::Refused) => {}
            Err(why) => {
                report.fail("tls.versions", ITEM_TLS_ONLY, why);
                return;
            }
        }
    }
    let modern = probe(addr, &client_hello([3, 3], &GCM_SUITES, Some(host))).await;
    if !old.is_empty() {
        report.fail("tls.versions", ITEM_TLS_ONLY, format!("{} accepted", old.join(" and ")));
    } else if modern == Ok(Answer::Agreed) {
        report.pass("tls.versions", ITEM_TLS_ONLY, "TLS 1.0 and 1.1 hellos refused; TLS 1.2 with AEAD accepted");
    } else {
        report.warn("tls.versions", ITEM_TLS_ONLY, "TLS 1.0 and 1.1 refused, but so was a TLS 1.2 hello with AES-GCM");
    }
    match probe(addr, &client_hello([3, 3], &CBC_SUITES, Some(host))).await {
        Ok(Answer::Refused) => {
            report.pass("tls.aead_only", ITEM_TLS_EXCHANGE, "a TLS 1.2 hello offering only CBC suites is refused")
        }
        Ok(Answer::Agreed) => report.fail("tls.aead_only", ITEM_TLS_EXCHANGE, "a CBC (non-AEAD) suite is accepted"),
        Err(why) => report.fail("tls.aead_only", ITEM_TLS_EXCHANGE, why),
    }
}

fn roots(ca_file: Option<&std::path::Path>) -> Result<Arc<RootCertStore>, String> {
    let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("--ca-file {}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("--ca-file {}: no certificate in it", path.display()));
        }
        for c in certs {
            roots.add(c).map_err(|e| format!("--ca-file {}: {e}", path.display()))?;
        }
    }
    Ok(Arc::new(roots))
}

/// Verifies the server's certificate as any client would, and again as of
/// 30 days from now, to warn before it expires.
#[derive(Debug)]
struct Renewal {
    inner: Arc<WebPkiServerVerifier>,
    in_a_month: Mutex<Option<Result<(), rustls::Error>>>,
}

impl ServerCertVerifier for Renewal {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let later = UnixTime::since_unix_epoch(Duration::from_secs(now.as_secs()) + RENEW_WITHIN);
        let soon = self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, later).map(|_| ());
        if let Ok(mut slot) = self.in_a_month.lock() {
            *slot = Some(soon);
        }
        self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

async fn certificate(addr: &str, host: &str, roots: Arc<RootCertStore>, report: &mut Report) {
    const ID: &str = "tls.certificate";
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner = match WebPkiServerVerifier::builder_with_provider(roots, provider.clone()).build() {
        Ok(v) => v,
        Err(e) => return report.fail(ID, ITEM_TLS_EXCHANGE, format!("cannot build a verifier: {e}")),
    };
    let verifier = Arc::new(Renewal { inner, in_a_month: Mutex::new(None) });
    let config = match rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions() {
        Ok(b) => b.dangerous().with_custom_certificate_verifier(verifier.clone()).with_no_client_auth(),
        Err(e) => return report.fail(ID, ITEM_TLS_EXCHANGE, format!("cannot build a TLS client: {e}")),
    };
    let Ok(name) = ServerName::try_from(host.to_string()) else {
        return report.fail(ID, ITEM_TLS_EXCHANGE, format!("{host} is not a server name"));
    };
    let tcp = match tokio::time::timeout(Duration::from_secs(10), tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(t)) => t,
        _ => return report.fail(ID, ITEM_TLS_EXCHANGE, format!("cannot connect to {addr}")),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tls = match tokio::time::timeout(Duration::from_secs(10), connector.connect(name, tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return report.fail(ID, ITEM_TLS_EXCHANGE, format!("the certificate is refused: {e}")),
        Err(_) => return report.fail(ID, ITEM_TLS_EXCHANGE, "the TLS handshake timed out"),
    };
    let (_, session) = tls.get_ref();
    let version = session.protocol_version().map(|v| format!("{v:?}")).unwrap_or_default();
    let suite = session.negotiated_cipher_suite().map(|s| format!("{:?}", s.suite())).unwrap_or_default();
    let soon = verifier.in_a_month.lock().ok().and_then(|s| s.clone());
    match soon {
        Some(Err(rustls::Error::InvalidCertificate(rustls::CertificateError::Expired)))
        | Some(Err(rustls::Error::InvalidCertificate(rustls::CertificateError::ExpiredContext { .. }))) => report.warn(
            ID,
            ITEM_TLS_EXCHANGE,
            format!("valid for {host} today but expires within 30 days: renew it ({version}, {suite})"),
        ),
        _ => report.pass(
            ID,
            ITEM_TLS_EXCHANGE,
            format!("valid for {host} and for at least 30 more days; negotiated {version} with {suite}"),
        ),
    }
}

fn client(target: &Target) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .https_only(true)
        .timeout(Duration::from_secs(15))
        .user_agent("sika-check");
    if let Some(path) = &target.ca_file {
        let pem = std::fs::read(path).map_err(|e| format!("--ca-file {}: {e}", path.display()))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| format!("--ca-file: {e}"))? {
            b = b.add_root_certificate(cert);
        }
    }
    b.build().map_err(|e| format!("cannot build an HTTPS client: {e}"))
}

struct Got {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

async fn send(req: reqwest::RequestBuilder) -> Result<Got, String> {
    let res = req.send().await.map_err(|e| format!("no answer: {e}"))?;
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.text().await.unwrap_or_default();
    Ok(Got { status, headers, body })
}

fn header(g: &Got, name: &str) -> String {
    g.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

/// Words that betray internals in an error page.
const LEAKS: [&str; 9] = [
    "panicked",
    "stack backtrace",
    "sqlx",
    "SQLSTATE",
    "syntax error",
    "src/",
    "Traceback",
    "Exception",
    "RUST_BACKTRACE",
];

fn leaks(body: &str) -> Option<&'static str> {
    LEAKS.iter().copied().find(|w| body.contains(w))
}

async fn http_probes(client: &reqwest::Client, base: &url::Url, report: &mut Report) {
    let at = |path: &str| base.join(path).map(|u| u.to_string()).unwrap_or_default();
    let login = match send(client.get(at("/login"))).await {
        Ok(g) => g,
        Err(why) => {
            report.fail("https.enforced", "HTTPS is enforced on all pages and endpoints of your application", why);
            return;
        }
    };
    let item_https = "HTTPS is enforced on all pages and endpoints of your application";
    let hsts = header(&login, "strict-transport-security");
    let max_age = hsts
        .split(';')
        .find_map(|p| p.trim().strip_prefix("max-age=").and_then(|v| v.trim().parse::<u64>().ok()))
        .unwrap_or(0);
    match max_age {
        0 => report.fail(
            "https.hsts",
            item_https,
            "no Strict-Transport-Security header: browsers may fall back to http://",
        ),
        s if s < MIN_HSTS_SECONDS => {
            report.warn("https.hsts", item_https, format!("HSTS max-age={s}: make it at least 180 days"))
        }
        s => report.pass("https.hsts", item_https, format!("HSTS max-age={s} ({} days)", s / 86_400)),
    }

    // Cache-Control on a page and on an API answer.
    let api = send(client.get(at("/api/v1/checkouts"))).await.ok();
    let item_cache = "Ensure caching has been disabled on all SSL pages and all pages that contain sensitive data by using value no-cache and no-store instead of private in the Cache-Control header";
    let mut bad = Vec::new();
    for (what, g) in [("/login", Some(&login)), ("/api/v1/checkouts", api.as_ref())] {
        let Some(g) = g else { continue };
        let cc = header(g, "cache-control").to_ascii_lowercase();
        if !(cc.contains("no-store") && cc.contains("no-cache")) || cc.contains("private") {
            bad.push(format!("{what}: Cache-Control `{cc}`"));
        }
    }
    if bad.is_empty() {
        report.pass("headers.cache", item_cache, "no-store, no-cache on pages and API answers");
    } else {
        report.fail("headers.cache", item_cache, bad.join("; "));
    }

    let item_xss = "With proper input validation and output encoding, applications should not be susceptible to cross-site scripting, either stored or reflected. This includes all headers, cookies, query strings, form fields and hidden fields";
    let csp = header(&login, "content-security-policy");
    let mut missing = Vec::new();
    if csp.is_empty() || csp.contains("'unsafe-inline'") || csp.contains("'unsafe-eval'") {
        missing.push("a Content-Security-Policy without unsafe-inline/eval");
    }
    if !csp.contains("frame-ancestors") && header(&login, "x-frame-options").is_empty() {
        missing.push("framing refused (frame-ancestors or X-Frame-Options)");
    }
    if header(&login, "x-content-type-options") != "nosniff" {
        missing.push("X-Content-Type-Options: nosniff");
    }
    if header(&login, "referrer-policy").is_empty() {
        missing.push("a Referrer-Policy");
    }
    if missing.is_empty() {
        report.pass("headers.browser", item_xss, "strict CSP, framing refused, nosniff, Referrer-Policy");
    } else {
        report.fail("headers.browser", item_xss, format!("missing: {}", missing.join(", ")));
    }

    // Cookies the sign-in page sets.
    let item_cookies = "Ensure all app session cookies have the following attributes set: Secure, HTTPOnly";
    let cookies: Vec<String> =
        login.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok().map(str::to_string)).collect();
    if cookies.is_empty() {
        report.warn("cookies.attributes", item_cookies, "the sign-in page set no cookie to inspect");
    } else {
        let weak: Vec<String> = cookies
            .iter()
            .filter(|c| {
                let l = c.to_ascii_lowercase();
                !(l.contains("; secure") && l.contains("; httponly"))
            })
            .map(|c| c.split('=').next().unwrap_or("").to_string())
            .collect();
        if weak.is_empty() {
            let strict = cookies.iter().all(|c| c.to_ascii_lowercase().contains("samesite=strict"));
            report.pass(
                "cookies.attributes",
                item_cookies,
                format!(
                    "{} cookie(s), each Secure and HttpOnly{}",
                    cookies.len(),
                    if strict { ", SameSite=Strict" } else { "" }
                ),
            );
        } else {
            report.fail("cookies.attributes", item_cookies, format!("without Secure or HttpOnly: {}", weak.join(", ")));
        }
    }

    // Methods never used.
    let item_methods =
        "The app web server must be configured to disable the TRACE and other HTTP methods if not being used";
    let mut allowed = Vec::new();
    for m in ["TRACE", "TRACK", "OPTIONS", "PROPFIND", "DEBUG"] {
        let Ok(method) = Method::from_bytes(m.as_bytes()) else { continue };
        if let Ok(g) = send(client.request(method, at("/login"))).await
            && (200..300).contains(&g.status)
        {
            allowed.push(format!("{m} ({})", g.status));
        }
    }
    if allowed.is_empty() {
        report.pass("methods.unused_refused", item_methods, "TRACE, TRACK, OPTIONS, PROPFIND and DEBUG refused");
    } else {
        report.fail("methods.unused_refused", item_methods, format!("answered: {}", allowed.join(", ")));
    }

    // A webhook without the right secret hash.
    let item_hash = "We recommend the use of Secret Hash on your dashboard via Settings > Webhooks in order to verify that the webhook was sent by Flutterwave";
    let forged = serde_json::json!({"event": "charge.completed", "data": {"id": 1, "tx_ref": "sika-check-forged",
        "status": "successful", "amount": 1, "currency": "NGN"}});
    let hash = crate::crypto::random::token();
    match send(client.post(at("/webhooks/flutterwave")).header("verif-hash", hash).json(&forged)).await {
        Ok(g) if g.status == 401 || g.status == 403 => report.pass(
            "webhooks.forged_refused",
            item_hash,
            format!("a webhook with a wrong verif-hash got {}", g.status),
        ),
        Ok(g) => report.fail(
            "webhooks.forged_refused",
            item_hash,
            format!("a webhook with a wrong verif-hash got {}", g.status),
        ),
        Err(why) => report.fail("webhooks.forged_refused", item_hash, why),
    }

    // Cross-site request forgery: a sign-in without the form's token.
    let item_csrf = "Cross-Site Request Forgery";
    let form = [("email", "sika-check@example.com"), ("password", "Not-The-Password-1!"), ("totp", "000000")];
    match send(client.post(at("/login")).header("origin", "https://sika-check.invalid").form(&form)).await {
        Ok(g) if g.status == 403 || g.status == 400 => {
            report.pass("csrf.refused", item_csrf, format!("a cross-site form without a token got {}", g.status))
        }
        Ok(g) => report.fail("csrf.refused", item_csrf, format!("a cross-site form without a token got {}", g.status)),
        Err(why) => report.fail("csrf.refused", item_csrf, why),
    }

    // Reflected XSS in query strings.
    let item_reflected = "Cross-Site Scripting reflected and stored cross-site scripting";
    let marker = "<script>sikacheck()</script>";
    let probe_url = format!(
        "{}?next=%3Cscript%3Esikacheck()%3C%2Fscript%3E&email=%22%3E%3Cscript%3Esikacheck()%3C%2Fscript%3E",
        at("/login")
    );
    let mut reflected = Vec::new();
    for u in [probe_url, format!("{}?tx_ref=%3Cscript%3Esikacheck()%3C%2Fscript%3E", at("/checkout/return"))] {
        if let Ok(g) = send(client.get(&u)).await
            && g.body.contains(marker)
        {
            reflected.push(u.split('?').next().unwrap_or("").to_string());
        }
    }
    if reflected.is_empty() {
        report.pass("xss.reflected", item_reflected, "markup in query strings comes back encoded or not at all");
    } else {
        report.fail("xss.reflected", item_reflected, format!("reflected unencoded by {}", reflected.join(", ")));
    }

    // SQL injection: quotes in a looked-up value must not reach the SQL.
    let item_sql = "SQL Injection";
    let sqli = format!("{}?tx_ref=%27%20OR%20%271%27%3D%271&status=successful", at("/checkout/return"));
    match send(client.get(&sqli)).await {
        Ok(g) if g.status >= 500 || leaks(&g.body).is_some() => report.fail(
            "sql.injection",
            item_sql,
            format!("a quoted value got {} {}", g.status, leaks(&g.body).unwrap_or("")),
        ),
        Ok(g) => {
            report.pass("sql.injection", item_sql, format!("a quoted value got {} without a database error", g.status))
        }
        Err(why) => report.fail("sql.injection", item_sql, why),
    }

    // XML bodies.
    let item_xml = "XML Injection";
    let xml = r#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>"#;
    match send(client.post(at("/api/v1/checkouts")).header("content-type", "application/xml").body(xml)).await {
        Ok(g) if g.status == 415 => {
            report.pass("xml.refused", item_xml, "an XML body is refused with 415 before anything reads it")
        }
        Ok(g) if (200..300).contains(&g.status) => {
            report.fail("xml.refused", item_xml, format!("an XML body got {}", g.status))
        }
        Ok(g) => {
            report.warn("xml.refused", item_xml, format!("an XML body got {}: not clearly refused as XML", g.status))
        }
        Err(why) => report.fail("xml.refused", item_xml, why),
    }

    // Oversized bodies: refused before they are read.
    let item_input = "All input (user and service) must be validated only on the server-side in addition to any client-side validation to permit only the characters required and field length necessary";
    let big = vec![b'a'; 4 * 1024 * 1024];
    match send(client.post(at("/webhooks/flutterwave")).header("content-type", "application/json").body(big)).await {
        Ok(g) if g.status == 413 => report.pass("input.size_limited", item_input, "a 4 MiB body is refused with 413"),
        Ok(g) if g.status >= 500 => {
            report.fail("input.size_limited", item_input, format!("a 4 MiB body got {}", g.status))
        }
        Ok(g) => report.warn("input.size_limited", item_input, format!("a 4 MiB body got {} (not 413)", g.status)),
        // A server that closes the connection on an oversized body refuses it too.
        Err(_) => report.pass("input.size_limited", item_input, "a 4 MiB body is cut off"),
    }

    // Errors: generic words, no internals.
    let item_errors = "When encountered with an unhandled exception, display generic messages to the end-user. Do not reveal details about the internal state of your application eg database errors, app server errors etc";
    let missing = send(client.get(at(&format!("/sika-check-{}", crate::crypto::random::hex_id())))).await;
    let broken =
        send(client.post(at("/webhooks/flutterwave")).header("content-type", "application/json").body("{\"event\":"))
            .await;
    let mut said = Vec::new();
    for g in [missing, broken].into_iter().flatten() {
        if g.status >= 500 || leaks(&g.body).is_some() {
            said.push(format!("{} {}", g.status, leaks(&g.body).unwrap_or("")));
        }
    }
    if said.is_empty() {
        report.pass("errors.generic", item_errors, "an unknown page and a broken body get generic answers");
    } else {
        report.fail("errors.generic", item_errors, format!("internals shown: {}", said.join("; ")));
    }

    // Ready to serve: the database answers and every worker is alive.
    let item_ready = "Sika: the server is ready (database and workers)";
    match send(client.get(at("/readyz"))).await {
        Ok(g) if g.status == 200 => report.pass("health.ready", item_ready, "/readyz answered 200"),
        Ok(g) => report.fail(
            "health.ready",
            item_ready,
            format!("/readyz answered {}: {}", g.status, g.body.chars().take(200).collect::<String>()),
        ),
        Err(why) => report.fail("health.ready", item_ready, why),
    }
}

/// What `check` reports for live items when no `--url` is given.
pub fn not_probed(report: &mut Report) {
    report.add(
        "live.not_probed",
        "Sika: the running server, probed from outside",
        Status::Warn,
        "not probed: run `sika check --url https://your-sika-host/` (TLS, headers, cookies, methods, forged requests)",
    );
}
