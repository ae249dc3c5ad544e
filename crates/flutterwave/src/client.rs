//! The HTTP core: authentication, the outbound budget, retries, and the
//! classification of every answer as definite or indefinite.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::budget::{Budget, Lane};

/// The Flutterwave secret key. Masked in `Debug` and `Display`.
#[derive(Clone)]
pub struct SecretKey(String);

impl SecretKey {
    pub fn new(key: impl Into<String>) -> Self {
        SecretKey(key.into())
    }
    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

impl fmt::Display for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// e.g. `https://api.flutterwave.com/v3` (no trailing slash needed).
    pub base_url: url::Url,
    pub secret_key: SecretKey,
    /// Requests per second allowed to leave this client (all tasks together).
    pub rate_per_second: u32,
    pub burst: u32,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Retries of a request that certainly was not processed (429, refused connection),
    /// and of reads after a 5xx or timeout.
    pub max_retries: u32,
    pub user_agent: String,
    /// Extra PEM roots to trust (tests, private gateways).
    pub extra_root_pem: Option<String>,
    /// How long an interactive call waits for the budget before giving up (`Indefinite::Busy`).
    pub interactive_max_wait: Duration,
    /// Where the schedule lives when several processes share the account's rate
    /// (`None`: this process alone, in memory).
    pub ledger: Option<Arc<dyn crate::budget::Ledger>>,
}

impl Config {
    pub fn new(base_url: url::Url, secret_key: SecretKey) -> Self {
        Config {
            base_url,
            secret_key,
            rate_per_second: 5,
            burst: 10,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            max_retries: 3,
            user_agent: concat!("sika/", env!("CARGO_PKG_VERSION")).to_string(),
            extra_root_pem: None,
            interactive_max_wait: Duration::from_secs(2),
            ledger: None,
        }
    }
}

/// Every call's result. The three cases cannot be confused: only `Ok` is a
/// success, only `Rejected` is a definite refusal, and `Indefinite` means
/// nobody knows what happened — change nothing, ask again later.
#[must_use = "an indefinite answer must not be treated as a refusal or a success"]
#[derive(Debug)]
pub enum Reply<T> {
    Ok(T),
    Rejected(ApiError),
    Indefinite(Indefinite),
}

impl<T> Reply<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Reply<U> {
        match self {
            Reply::Ok(t) => Reply::Ok(f(t)),
            Reply::Rejected(e) => Reply::Rejected(e),
            Reply::Indefinite(i) => Reply::Indefinite(i),
        }
    }

    /// `Some` only for a definite success; for tests and logs.
    pub fn ok(self) -> Option<T> {
        match self {
            Reply::Ok(t) => Some(t),
            _ => None,
        }
    }

    pub fn is_definite(&self) -> bool {
        !matches!(self, Reply::Indefinite(_))
    }
}

/// A definite refusal: Flutterwave answered 4xx with its error envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub http_status: u16,
    pub kind: ErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    InvalidAccount,
    DuplicateReference,
    InsufficientBalance,
    Unauthorized,
    Forbidden,
    Invalid,
}

impl ApiError {
    fn classify(http_status: u16, message: String) -> Self {
        let m = message.to_ascii_lowercase();
        let kind = if http_status == 401 {
            ErrorKind::Unauthorized
        } else if http_status == 403 {
            ErrorKind::Forbidden
        } else if m.contains("not found") || m.contains("no transaction was found") || http_status == 404 {
            ErrorKind::NotFound
        } else if m.contains("reference") && (m.contains("exist") || m.contains("duplicate")) {
            ErrorKind::DuplicateReference
        } else if m.contains("insufficient") {
            ErrorKind::InsufficientBalance
        } else if m.contains("invalid account") || m.contains("account resolve failed") || m.contains("blacklisted") {
            ErrorKind::InvalidAccount
        } else {
            ErrorKind::Invalid
        };
        ApiError { http_status, kind, message }
    }
}

/// Why an answer is not definite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Indefinite {
    Timeout,
    Connection(String),
    /// 5xx: the operation may or may not have happened.
    Server {
        http_status: u16,
    },
    RateLimited {
        retry_after: Option<Duration>,
    },
    /// A body we could not understand (HTML from a proxy, a changed schema...).
    Unparsable {
        http_status: u16,
        reason: String,
    },
    /// Not sent: the interactive lane's share of the budget is spent for now.
    Busy,
}

/// In words, for timelines and notes: what is stored is read by people.
impl std::fmt::Display for Indefinite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Indefinite::Timeout => write!(f, "timed out"),
            Indefinite::Connection(why) => write!(f, "the connection failed: {why}"),
            Indefinite::Server { http_status } => write!(f, "Flutterwave answered HTTP {http_status}"),
            Indefinite::RateLimited { retry_after: Some(d) } => {
                write!(f, "rate limited (retry after {} s)", d.as_secs())
            }
            Indefinite::RateLimited { retry_after: None } => write!(f, "rate limited"),
            Indefinite::Unparsable { http_status, reason } => {
                write!(f, "an answer that does not read (HTTP {http_status}: {reason})")
            }
            Indefinite::Busy => write!(f, "not sent: the visitors' share of the budget is spent for now"),
        }
    }
}

#[derive(Debug, serde::Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    data: Option<Box<serde_json::value::RawValue>>,
    #[serde(default)]
    meta: Option<serde_json::Value>,
}

/// A page of results with Flutterwave's `meta.page_info`.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub page_info: Option<PageInfo>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub struct PageInfo {
    #[serde(default, deserialize_with = "crate::lenient::opt_id")]
    pub total: Option<i64>,
    #[serde(default, deserialize_with = "crate::lenient::opt_id")]
    pub current_page: Option<i64>,
    #[serde(default, deserialize_with = "crate::lenient::opt_id")]
    pub total_pages: Option<i64>,
}

/// A success envelope's parts, before `data` is decoded.
struct Success {
    data: String,
    meta: Option<serde_json::Value>,
}

impl Success {
    fn decode<T: DeserializeOwned>(&self, code: u16) -> Reply<T> {
        match serde_json::from_str::<T>(&self.data) {
            Ok(t) => Reply::Ok(t),
            Err(e) => {
                Reply::Indefinite(Indefinite::Unparsable { http_status: code, reason: format!("unexpected data: {e}") })
            }
        }
    }
}

/// Whether a request may be sent again when the first attempt's fate is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Reads and idempotent calls: retry 429, 5xx, timeouts and connection errors.
    Safe,
    /// Calls that move money: retry only what certainly did not arrive (429,
    /// refused connection). A timeout or 5xx is returned as indefinite, to be
    /// settled by a lookup, never by sending again.
    NotProcessedOnly,
}

#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    config: Arc<Config>,
    budget: Arc<Budget>,
    lane: Lane,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the HTTP client cannot be built: {0}")]
    Http(#[from] reqwest::Error),
    #[error("base URL must be http(s)")]
    BadBaseUrl,
}

impl Client {
    pub fn new(config: Config) -> Result<Self, BuildError> {
        if !matches!(config.base_url.scheme(), "https" | "http") {
            return Err(BuildError::BadBaseUrl);
        }
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .min_tls_version(reqwest::tls::Version::TLS_1_2)
            .https_only(config.base_url.scheme() == "https")
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(config.user_agent.clone())
            .redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = &config.extra_root_pem {
            b = b.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes())?);
        }
        let budget = Arc::new(match &config.ledger {
            Some(ledger) => Budget::shared(config.rate_per_second, ledger.clone()),
            None => Budget::new(config.rate_per_second, config.burst),
        });
        Ok(Client { http: b.build()?, config: Arc::new(config), budget, lane: Lane::Background })
    }

    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// The same client for work a visitor triggers: it shares the budget but
    /// only its interactive share, never retries, and answers
    /// `Indefinite::Busy` instead of queueing behind settlement.
    pub fn interactive(&self) -> Client {
        Client { lane: Lane::Interactive, ..self.clone() }
    }

    /// The same client for polling (the reconciler, expiry): it shares the
    /// budget and is served after settlement work.
    pub fn polling(&self) -> Client {
        Client { lane: Lane::Polling, ..self.clone() }
    }

    fn url(&self, path: &str) -> url::Url {
        let mut url = self.config.base_url.clone();
        let base = url.path().trim_end_matches('/').to_string();
        url.set_path(&format!("{base}{path}"));
        url
    }

    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> Reply<T> {
        match self.call(Method::GET, path, query, None, Retry::Safe).await {
            Reply::Ok(s) => s.decode(200),
            Reply::Rejected(e) => Reply::Rejected(e),
            Reply::Indefinite(i) => Reply::Indefinite(i),
        }
    }

    pub(crate) async fn get_page<T: DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> Reply<Page<T>> {
        match self.call(Method::GET, path, query, None, Retry::Safe).await {
            Reply::Ok(s) => {
                let page_info = s
                    .meta
                    .as_ref()
                    .and_then(|m| m.get("page_info"))
                    .and_then(|p| serde_json::from_value::<PageInfo>(p.clone()).ok());
                s.decode::<Vec<T>>(200).map(|items| Page { items, page_info })
            }
            Reply::Rejected(e) => Reply::Rejected(e),
            Reply::Indefinite(i) => Reply::Indefinite(i),
        }
    }

    /// A `multipart/form-data` POST with one file part named `field`.
    pub(crate) async fn send_file<T: DeserializeOwned>(
        &self,
        path: &str,
        field: &str,
        file_name: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> Reply<T> {
        // A boundary that does not occur in the file (random, checked).
        // (The counter ends the search even if the OS gave no randomness: a file is finite.)
        let mut n = 0u64;
        let mut boundary = format!("sika-{}-{n}", uuid_like());
        while bytes.windows(boundary.len()).any(|w| w == boundary.as_bytes()) {
            n += 1;
            boundary = format!("sika-{}-{n}", uuid_like());
        }
        let mut body = Vec::with_capacity(bytes.len() + 256);
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{file_name}\"\r\n\
                 Content-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let content = format!("multipart/form-data; boundary={boundary}");
        match self.call(Method::POST, path, &[], Some((body, content)), Retry::Safe).await {
            Reply::Ok(s) => s.decode(200),
            Reply::Rejected(e) => Reply::Rejected(e),
            Reply::Indefinite(i) => Reply::Indefinite(i),
        }
    }

    pub(crate) async fn send<T: DeserializeOwned, B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        retry: Retry,
    ) -> Reply<T> {
        let bytes = match body.map(serde_json::to_vec).transpose() {
            Ok(b) => b,
            Err(e) => return Reply::Indefinite(Indefinite::Unparsable { http_status: 0, reason: e.to_string() }),
        };
        let body = bytes.map(|b| (b, "application/json".to_string()));
        match self.call(method, path, &[], body, retry).await {
            Reply::Ok(s) => s.decode(200),
            Reply::Rejected(e) => Reply::Rejected(e),
            Reply::Indefinite(i) => Reply::Indefinite(i),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<(Vec<u8>, String)>,
        retry: Retry,
    ) -> Reply<Success> {
        let mut url = self.url(path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        let mut attempt = 0u32;
        let max_retries = if self.lane == Lane::Interactive { 0 } else { self.config.max_retries };
        loop {
            match self.lane {
                Lane::Background | Lane::Polling => self.budget.acquire_lane(self.lane).await,
                Lane::Interactive => {
                    if !self.budget.acquire_within(Lane::Interactive, self.config.interactive_max_wait).await {
                        return Reply::Indefinite(Indefinite::Busy);
                    }
                }
            }
            let mut req = self.http.request(method.clone(), url.clone()).bearer_auth(self.config.secret_key.expose());
            if let Some((b, content_type)) = &body {
                req = req.header(reqwest::header::CONTENT_TYPE, content_type.as_str()).body(b.clone());
            }
            let outcome = match req.send().await {
                Ok(res) => classify(res).await,
                Err(e) if e.is_timeout() => Reply::Indefinite(Indefinite::Timeout),
                Err(e) => Reply::Indefinite(Indefinite::Connection(connection_reason(&e))),
            };
            let Reply::Indefinite(why) = &outcome else { return outcome };
            let certainly_not_processed = match why {
                Indefinite::RateLimited { .. } => true,
                Indefinite::Connection(reason) => reason == "connect",
                _ => false,
            };
            if attempt >= max_retries || !(retry == Retry::Safe || certainly_not_processed) {
                return outcome;
            }
            let delay = match why {
                Indefinite::RateLimited { retry_after: Some(d) } => *d.min(&Duration::from_secs(60)),
                _ => backoff(attempt),
            };
            if matches!(why, Indefinite::RateLimited { .. }) {
                self.budget.pause(delay).await;
            } else {
                tokio::time::sleep(delay).await;
            }
            attempt += 1;
        }
    }
}

fn connection_reason(e: &reqwest::Error) -> String {
    if e.is_connect() { "connect".into() } else { "transport".into() }
}

/// Jittered exponential backoff: 1 s, 2 s, 4 s... (capped at 30 s), each ±50 %.
pub fn backoff(attempt: u32) -> Duration {
    let base = 1000u64.saturating_mul(1 << attempt.min(5)).min(30_000);
    let mut b = [0u8; 8];
    let r = if getrandom::fill(&mut b).is_ok() { u64::from_le_bytes(b) } else { 0 };
    Duration::from_millis(base / 2 + r % base.max(1))
}

async fn classify(res: reqwest::Response) -> Reply<Success> {
    let status = res.status();
    let retry_after = res
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Reply::Indefinite(Indefinite::RateLimited { retry_after });
    }
    if status.is_server_error() {
        return Reply::Indefinite(Indefinite::Server { http_status: status.as_u16() });
    }
    let code = status.as_u16();
    let bytes = match res.bytes().await {
        Ok(b) => b,
        Err(e) if e.is_timeout() => return Reply::Indefinite(Indefinite::Timeout),
        Err(_) => return Reply::Indefinite(Indefinite::Connection("transport".into())),
    };
    let unparsable = |reason: String| Reply::Indefinite(Indefinite::Unparsable { http_status: code, reason });
    let envelope: Envelope = match serde_json::from_slice(&bytes) {
        Ok(e) => e,
        Err(e) => return unparsable(format!("not a Flutterwave envelope: {e}")),
    };
    match (status.is_success(), envelope.status.as_str()) {
        (true, "success") => Reply::Ok(Success {
            data: envelope.data.as_deref().map(|r| r.get().to_string()).unwrap_or_else(|| "null".into()),
            meta: envelope.meta,
        }),
        // An error envelope is definite, whatever the status (one note says verify's not-found can be 200).
        (_, "error") if status.is_success() || status.is_client_error() => {
            Reply::Rejected(ApiError::classify(code, envelope.message))
        }
        _ => unparsable(format!("status {code} with envelope status {:?}", envelope.status)),
    }
}

/// Percent-encodes one path segment: only `A-Z a-z 0-9 _ -` pass through, so
/// caller input can never add segments or climb with `..`.
pub(crate) fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// 32 random hex digits (for a multipart boundary).
fn uuid_like() -> String {
    use std::fmt::Write as _;
    let mut bytes = [0u8; 16];
    // Without the OS's randomness the boundary is still checked against the file above.
    let _ = getrandom::fill(&mut bytes);
    let mut out = String::with_capacity(32);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}
