//! Shared test helpers: a fresh database per test, and the real HTTPS server on port 0.
#![allow(dead_code)]

pub mod browser;
pub mod cluster;
pub mod emulated;
pub mod people;
pub mod smtp;
pub mod webdriver;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use sika::http::{self, AppState};
use sika::secret::Secret;
use sika::store::Store;
use tokio::sync::watch;

/// A fresh, migrated database. SQLite lives in a temp dir that is removed on drop.
pub struct TestDb {
    pub store: Store,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("sika.db").display());
    let store = Store::connect(&Secret::new(url.clone())).await.expect("open sqlite");
    store.migrate().await.expect("migrate sqlite");
    TestDb { store, url, _dir: Some(dir) }
}

/// The PostgreSQL server under test, or `None` with a loud note when it is not configured.
/// In CI (`CI` set) a missing server is a failure, never a silent skip.
pub fn postgres_url() -> Option<String> {
    match std::env::var("SIKA_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must set SIKA_TEST_POSTGRES_URL: the PostgreSQL half cannot be skipped"
            );
            eprintln!("NOTE: SIKA_TEST_POSTGRES_URL is not set: the PostgreSQL half of this test did NOT run.");
            None
        }
    }
}

/// A fresh, empty (not migrated) PostgreSQL database on the configured server; its URL.
pub async fn empty_postgres() -> Option<String> {
    let admin_url = postgres_url()?;
    let name = format!("sika_t_{}", sika::crypto::random::hex_id());
    {
        use sqlx::Connection as _;
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("connect to SIKA_TEST_POSTGRES_URL");
        // The name is ours (hex), not input; DDL cannot take bind parameters.
        sqlx::raw_sql(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create test database");
        let _ = admin.close().await;
    }
    let mut url = url::Url::parse(&admin_url).expect("postgres url");
    url.set_path(&name);
    Some(url.to_string())
}

/// A fresh PostgreSQL database (created for this test) on the configured server.
pub async fn postgres() -> Option<TestDb> {
    let url = empty_postgres().await?;
    let store = Store::connect(&Secret::new(url.clone())).await.expect("open postgres");
    store.migrate().await.expect("migrate postgres");
    Some(TestDb { store, url, _dir: None })
}

/// A running Sika on 127.0.0.1:0 over TLS, with a client that trusts its certificate.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    pub cert_pem: String,
    pub db: TestDb,
    pub auth: sika::auth::Auth,
    pub audit_key: String,
    pub payments: sika::payments::Payments,
    pub payouts: sika::payouts::Payouts,
    pub cards: Option<sika::cards::Cards>,
    /// The webhook inbox's worker (tests run its passes themselves).
    pub inbox: sika::inbox::Inbox,
    /// Settlements (tests run the poller's passes themselves).
    pub settlements: sika::settlements::Settlements,
    stop: watch::Sender<bool>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

pub fn client_for(cert_pem: &str) -> reqwest::ClientBuilder {
    cluster::client_trusting(cert_pem)
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Router::new()).await
}

pub async fn spawn_app_with(extra: Router<AppState>) -> TestApp {
    spawn_on(sqlite().await, extra, Duration::from_secs(15 * 60), Duration::from_secs(10 * 3600)).await
}

/// The real server on port 0 over `db`, with keys generated now and the given session timeouts.
pub async fn spawn_on(db: TestDb, extra: Router<AppState>, idle: Duration, absolute: Duration) -> TestApp {
    spawn_full(db, extra, idle, absolute, None).await
}

/// Flutterwave as the app sees it: the emulator's `/v3` URL, its secret key and hash.
#[derive(Clone)]
pub struct Flw {
    pub base_url: String,
    pub secret_key: String,
    pub secret_hash: String,
}

/// Settings a test may change before the app starts.
pub struct Options {
    /// The outbound budget towards Flutterwave (requests per second; the burst is twice it).
    pub rate_per_second: u32,
    /// The workers' health `/readyz` reports.
    pub workers: std::sync::Arc<sika::jobs::Health>,
    pub limits: sika::server::Limits,
    /// The server's certificate and key (PEM); generated when `None`.
    pub tls: Option<(String, String)>,
    /// `SIKA_CARDS_ENABLED`.
    pub cards: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            rate_per_second: 200,
            workers: Default::default(),
            limits: sika::server::Limits::default(),
            tls: None,
            cards: false,
        }
    }
}

pub async fn spawn_full(
    db: TestDb,
    extra: Router<AppState>,
    idle: Duration,
    absolute: Duration,
    flw: Option<Flw>,
) -> TestApp {
    spawn_tuned(db, extra, idle, absolute, flw, |_| {}).await
}

/// [`spawn_full`], with a chance to change the payments service's settings first.
pub async fn spawn_tuned(
    db: TestDb,
    extra: Router<AppState>,
    idle: Duration,
    absolute: Duration,
    flw: Option<Flw>,
    tune: impl FnOnce(&mut sika::payments::Payments),
) -> TestApp {
    spawn_with(db, extra, idle, absolute, flw, Options::default(), tune).await
}

/// The most general start: every option a test may set.
pub async fn spawn_with(
    db: TestDb,
    extra: Router<AppState>,
    idle: Duration,
    absolute: Duration,
    flw: Option<Flw>,
    options: Options,
    tune: impl FnOnce(&mut sika::payments::Payments),
) -> TestApp {
    let (cert_pem, key_pem) = match options.tls.clone() {
        Some(pair) => pair,
        None => sika::server::tls::self_signed().expect("self-signed"),
    };
    let tls = tls_config(&cert_pem, &key_pem);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let keys = sika::crypto::keyring::KeyRing::parse(&sika::crypto::keyring::KeyRing::generate_text("k1")).unwrap();
    let audit_key = sika::crypto::random::token();
    let public = url::Url::parse(&format!("https://127.0.0.1:{}/", addr.port())).unwrap();
    let flw = flw.unwrap_or(Flw {
        base_url: "http://127.0.0.1:9/v3".into(),
        secret_key: format!("FLWSECK_TEST-{}-X", sika::crypto::random::hex_id()),
        secret_hash: sika::crypto::random::token(),
    });
    let config = sika::config::Config {
        database_url: Secret::new(db.url.clone()),
        listen: addr,
        http_redirect_listen: None,
        public_url: public.clone(),
        // The harness serves its own certificate below; these files are never read.
        tls_cert_file: "unused-cert.pem".into(),
        tls_key_file: "unused-key.pem".into(),
        data_keys: keys,
        audit_key: Secret::new(audit_key.clone()),
        session_idle_timeout: idle,
        session_absolute_timeout: absolute,
        flw_base_url: url::Url::parse(&flw.base_url).unwrap(),
        flw_secret_key: Secret::new(flw.secret_key.clone()),
        flw_secret_hash: Secret::new(flw.secret_hash.clone()),
        max_body_bytes: sika::config::DEFAULT_MAX_BODY_BYTES,
        login_ip_limit: sika::auth::IP_THROTTLE_LIMIT,
        flw_rate_per_second: options.rate_per_second,
        notify_allow_loopback: false,
        max_connections_per_ip: 0,
        audit_checkpoint_file: "unused-checkpoints".into(),
        cards_enabled: options.cards,
        metrics_listen: None,
        payout_approval_ttl: Duration::from_secs(72 * 3600),
        payout_resend_after: Duration::from_secs(300),
        transfer_lookup_max_pages: sika::payouts::DEFAULT_LOOKUP_MAX_PAGES,
        settlement_grace_days: sika::settlements::DEFAULT_GRACE_DAYS,
        mail: sika::config::MailConfig::default(),
    };
    // The production client, with a timeout short enough that a timeout drill takes seconds, not 30 s.
    let mut flw_config = flutterwave::Config::new(
        config.flw_base_url.clone(),
        flutterwave::SecretKey::new(config.flw_secret_key.expose()),
    );
    flw_config.rate_per_second = options.rate_per_second;
    flw_config.burst = options.rate_per_second.saturating_mul(2);
    flw_config.request_timeout = Duration::from_secs(2);
    flw_config.max_retries = 1;
    let client = flutterwave::Client::new(flw_config).unwrap();
    let state = sika::gateway::assemble(&config, &db.store, &public, client, options.workers, tune);
    let (auth, payments, payouts, cards, inbox) =
        (state.auth.clone(), state.payments.clone(), state.payouts.clone(), state.cards.clone(), state.inbox.clone());
    let settlements = state.settlements.clone();
    let app = http::app_with(state, extra);
    let (stop, shutdown) = watch::channel(false);
    tokio::spawn(sika::server::serve_https(listener, tls, app, shutdown, options.limits));
    let client = client_for(&cert_pem).build().expect("client");
    TestApp {
        addr,
        base: format!("https://127.0.0.1:{}", addr.port()),
        client,
        cert_pem,
        db,
        auth,
        audit_key,
        payments,
        payouts,
        cards,
        inbox,
        settlements,
        stop,
    }
}

pub fn tls_config(cert_pem: &str, key_pem: &str) -> std::sync::Arc<rustls::ServerConfig> {
    use rustls_pki_types::pem::PemObject as _;
    let certs = vec![rustls_pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes()).expect("cert pem")];
    let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key pem");
    sika::server::tls::build(certs, key).expect("tls config")
}

/// A test's stand-in for the fresh step-up code only `auth` makes in Sika
/// itself (`tests/suite/architecture.rs` keeps every other implementation out of
/// the shipped code): service-level tests approve as `id` without a browser.
#[allow(dead_code)]
pub struct TestCode(pub String);

impl sika::domain::approval::SteppedUp for TestCode {
    fn user_id(&self) -> &str {
        &self.0
    }
}

/// An approver whose role may approve, as `id`.
#[allow(dead_code)]
pub fn checker(id: &str) -> sika::domain::approval::Approver<'static> {
    sika::domain::approval::Approver { proof: Box::leak(Box::new(TestCode(id.to_string()))), may_approve: true }
}

/// The actor service-level tests act as.
#[allow(dead_code)]
pub fn cli() -> sika::audit::Actor {
    sika::audit::Actor::cli()
}

/// A random name for temporary things.
pub fn random_name() -> String {
    sika::crypto::random::hex_id()
}
