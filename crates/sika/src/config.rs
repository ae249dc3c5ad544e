//! Configuration from the environment (see `../shared/contract.md`).
//!
//! Every secret `X` may instead be given as `X_FILE`, a path to a file that
//! only its owner can read. Errors are one sentence that names the variable,
//! because that sentence is what an operator sees when `serve` refuses to start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::crypto::keyring::KeyRing;
use crate::secret::Secret;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://sika.db";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
pub const DEFAULT_FLW_BASE_URL: &str = "https://api.flutterwave.com/v3";
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// Prometheus's usual exporter port, on loopback: never the public listener.
pub const DEFAULT_METRICS_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9464);
/// The checklist's ceiling: "Session duration should be limited to a maximum of 10 hours".
pub const MAX_SESSION_LIFETIME: Duration = Duration::from_secs(10 * 3600);

/// One sentence naming the variable at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

/// Where variables come from: the process environment, or an overlay of a
/// demo directory on top of it. A trait object keeps tests free of global state.
pub trait Source {
    fn get(&self, name: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl Source for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<F: Fn(&str) -> Option<String>> Source for F {
    fn get(&self, name: &str) -> Option<String> {
        self(name)
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: Secret,
    pub listen: SocketAddr,
    pub http_redirect_listen: Option<SocketAddr>,
    pub public_url: url::Url,
    pub tls_cert_file: PathBuf,
    pub tls_key_file: PathBuf,
    pub data_keys: KeyRing,
    pub audit_key: Secret,
    pub session_idle_timeout: Duration,
    pub session_absolute_timeout: Duration,
    pub flw_base_url: url::Url,
    pub flw_secret_key: Secret,
    pub flw_secret_hash: Secret,
    pub max_body_bytes: usize,
    /// Failed logins per IP address per 15 minutes before it is refused.
    pub login_ip_limit: i64,
    /// The outbound budget towards Flutterwave: requests per second.
    pub flw_rate_per_second: u32,
    /// Shop notifications may go to this machine (the demo's receiver); never to private networks.
    pub notify_allow_loopback: bool,
    /// Connections one client address may hold open at once (0: no per-address cap).
    pub max_connections_per_ip: usize,
    /// Where signed checkpoints of the audit chain's head are appended.
    pub audit_checkpoint_file: PathBuf,
    /// Virtual cards (off by default: Flutterwave issues them to approved accounts only).
    pub cards_enabled: bool,
    /// Where Prometheus scrapes `/metrics` (plain HTTP; loopback unless set); `None`: off.
    pub metrics_listen: Option<SocketAddr>,
    /// Payouts not approved within this time expire.
    pub payout_approval_ttl: Duration,
    /// A payout claimed for sending that Flutterwave does not know this long after is sent again (same reference).
    pub payout_resend_after: Duration,
    /// Pages of Flutterwave's transfer list a lookup by reference reads at most.
    pub transfer_lookup_max_pages: u32,
    /// A paid checkout in no settlement after this many days is reported.
    pub settlement_grace_days: u32,
    /// E-mail to approvers, admins and every user about their own account.
    pub mail: MailConfig,
}

/// How Sika sends mail: `SIKA_SMTP_URL` (a secret) or `SIKA_MAIL_DIR` (the demo's), and when.
#[derive(Debug, Clone)]
pub struct MailConfig {
    pub delivery: MailDelivery,
    /// `SIKA_MAIL_FROM`: the sender's address.
    pub from: Option<String>,
    /// `SIKA_MAIL_DIGEST_INTERVAL`: an approver gets at most one digest this often.
    pub digest_every: Duration,
    /// `SIKA_ALERT_INBOX_AGE`: webhooks waiting longer than this alert the admins.
    pub inbox_backlog_after: Duration,
    /// `SIKA_ALERT_TRANSFER_NEW_AFTER`: a transfer Flutterwave calls NEW this long alerts the admins.
    pub transfer_new_after: Duration,
}

#[derive(Debug, Clone)]
pub enum MailDelivery {
    /// Nothing set: mail is composed into the outbox and never sent.
    Off,
    /// One `.eml` file a message in this directory (`sika demo`).
    Dir(PathBuf),
    Smtp(SmtpTarget),
}

/// Where the SMTP server is. Credentials stay inside `url` (masked when printed).
#[derive(Debug, Clone)]
pub struct SmtpTarget {
    pub url: Secret,
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// `SIKA_SMTP_CA_FILE`: PEM certificates to trust besides the public roots (a private mail server).
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// `smtp://`: STARTTLS, required (a server that does not offer it is refused).
    StartTls,
    /// `smtps://`: TLS from the first byte.
    Implicit,
    /// `smtp://...?tls=none`: no encryption, allowed to a loopback host only.
    None,
}

impl Default for MailConfig {
    /// No mail sent; the default intervals.
    fn default() -> Self {
        MailConfig {
            delivery: MailDelivery::Off,
            from: None,
            digest_every: Duration::from_secs(15 * 60),
            inbox_backlog_after: Duration::from_secs(15 * 60),
            transfer_new_after: Duration::from_secs(6 * 3600),
        }
    }
}

impl MailConfig {
    pub fn load(src: &dyn Source) -> Result<Self, ConfigError> {
        let delivery = match (optional_secret(src, "SIKA_SMTP_URL")?, plain(src, "SIKA_MAIL_DIR")) {
            (Some(_), Some(_)) => return err("Set SIKA_SMTP_URL or SIKA_MAIL_DIR, not both."),
            (Some(url), None) => {
                MailDelivery::Smtp(smtp_target(url, plain(src, "SIKA_SMTP_CA_FILE").map(PathBuf::from))?)
            }
            (None, Some(dir)) => MailDelivery::Dir(PathBuf::from(dir)),
            (None, None) => MailDelivery::Off,
        };
        let from = match plain(src, "SIKA_MAIL_FROM") {
            Some(f) if f.parse::<lettre::message::Mailbox>().is_ok() => Some(f),
            Some(f) => {
                return err(format!(
                    "SIKA_MAIL_FROM must be an address like Sika <sika@shop.example>, not `{}`.",
                    printable(&f)
                ));
            }
            None => None,
        };
        if from.is_none() && !matches!(delivery, MailDelivery::Off) {
            return err("SIKA_MAIL_FROM must be set when mail is sent (SIKA_SMTP_URL or SIKA_MAIL_DIR).");
        }
        let digest_every = duration_var(src, "SIKA_MAIL_DIGEST_INTERVAL", Duration::from_secs(15 * 60))?;
        if digest_every < Duration::from_secs(60) || digest_every > Duration::from_secs(24 * 3600) {
            return err("SIKA_MAIL_DIGEST_INTERVAL must be between 1m and 24h.");
        }
        let inbox_backlog_after = duration_var(src, "SIKA_ALERT_INBOX_AGE", Duration::from_secs(15 * 60))?;
        let transfer_new_after = duration_var(src, "SIKA_ALERT_TRANSFER_NEW_AFTER", Duration::from_secs(6 * 3600))?;
        if inbox_backlog_after < Duration::from_secs(60) || transfer_new_after < Duration::from_secs(60) {
            return err("SIKA_ALERT_INBOX_AGE and SIKA_ALERT_TRANSFER_NEW_AFTER must be at least 1m.");
        }
        Ok(MailConfig { delivery, from, digest_every, inbox_backlog_after, transfer_new_after })
    }
}

/// `smtp://user:password@host:587` (STARTTLS), `smtps://user:password@host:465`, or
/// `smtp://127.0.0.1:2525?tls=none` (loopback only). User and password are percent-encoded.
fn smtp_target(url: Secret, ca_file: Option<PathBuf>) -> Result<SmtpTarget, ConfigError> {
    let bad = |why: &str| ConfigError(format!("SIKA_SMTP_URL {why}."));
    let parsed =
        url::Url::parse(url.expose()).map_err(|_| bad("is not a URL like smtp://user:password@mail.example:587"))?;
    let host = match parsed.host() {
        Some(url::Host::Domain(d)) => d.to_string(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return Err(bad("names no host")),
    };
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    let plain_asked = parsed.query_pairs().any(|(k, v)| k == "tls" && v == "none");
    let tls = match parsed.scheme() {
        "smtps" if !plain_asked => SmtpTls::Implicit,
        "smtp" if plain_asked && loopback => SmtpTls::None,
        "smtp" if plain_asked => return Err(bad("may go without TLS (tls=none) to a loopback host only")),
        "smtp" => SmtpTls::StartTls,
        _ => return Err(bad("must start with smtp:// (STARTTLS) or smtps:// (TLS)")),
    };
    let port = parsed.port().unwrap_or(if tls == SmtpTls::Implicit { 465 } else { 587 });
    if parsed.username().is_empty() != parsed.password().is_none() {
        return Err(bad("needs both a user and a password, or neither"));
    }
    if let Some(f) = &ca_file
        && !f.is_file()
    {
        return err(format!("SIKA_SMTP_CA_FILE {} is not a readable file.", f.display()));
    }
    Ok(SmtpTarget { url, host, port, tls, ca_file })
}

impl Config {
    /// Everything `serve` needs; refuses on the first problem.
    pub fn load(src: &dyn Source) -> Result<Self, ConfigError> {
        let listen = parse_addr(src, "SIKA_LISTEN")?.unwrap_or_else(default_listen);
        let http_redirect_listen = parse_addr(src, "SIKA_HTTP_REDIRECT_LISTEN")?;
        let public_url = match plain(src, "SIKA_PUBLIC_URL") {
            Some(v) => parse_https_url("SIKA_PUBLIC_URL", &v)?,
            None => url::Url::parse(&format!("https://{listen}/"))
                .map_err(|_| ConfigError("SIKA_LISTEN does not form a valid https:// URL.".into()))?,
        };
        let tls_cert_file = required_path(src, "SIKA_TLS_CERT_FILE")?;
        let tls_key_file = required_path(src, "SIKA_TLS_KEY_FILE")?;
        check_owner_only("SIKA_TLS_KEY_FILE", &tls_key_file)?;

        let data_key = required_secret(src, "SIKA_DATA_KEY")?;
        let data_keys = KeyRing::parse(data_key.expose())
            .map_err(|why| ConfigError(format!("SIKA_DATA_KEY is not a valid key ring: {why}.")))?;
        let audit_key = required_secret(src, "SIKA_AUDIT_KEY")?;
        if audit_key.expose().len() < 32 {
            return err("SIKA_AUDIT_KEY must be at least 32 characters long.");
        }
        let (session_idle_timeout, session_absolute_timeout) = session_timeouts(src)?;
        let flw_base_url = match plain(src, "FLW_BASE_URL") {
            Some(v) => parse_url("FLW_BASE_URL", &v)?,
            None => url::Url::parse(DEFAULT_FLW_BASE_URL).expect("constant URL parses"),
        };
        let flw_secret_key = required_secret(src, "FLW_SECRET_KEY")?;
        let flw_secret_hash = required_secret(src, "FLW_SECRET_HASH")?;
        let database_url =
            optional_secret(src, "SIKA_DATABASE_URL")?.unwrap_or_else(|| Secret::new(DEFAULT_DATABASE_URL));
        let max_body_bytes = match plain(src, "SIKA_MAX_BODY_BYTES") {
            None => DEFAULT_MAX_BODY_BYTES,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1024..=16 * 1024 * 1024).contains(&n) => n,
                _ => return err("SIKA_MAX_BODY_BYTES must be a whole number of bytes between 1024 and 16777216."),
            },
        };
        let login_ip_limit = match plain(src, "SIKA_LOGIN_IP_LIMIT") {
            None => crate::auth::IP_THROTTLE_LIMIT,
            Some(v) => match v.parse::<i64>() {
                Ok(n) if (1..=1_000_000).contains(&n) => n,
                _ => return err("SIKA_LOGIN_IP_LIMIT must be a whole number between 1 and 1000000."),
            },
        };
        let flw_rate_per_second = match plain(src, "FLW_RATE_PER_SECOND") {
            None => 5,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (1..=10_000).contains(&n) => n,
                _ => return err("FLW_RATE_PER_SECOND must be a whole number between 1 and 10000."),
            },
        };
        let notify_allow_loopback = flag(src, "SIKA_NOTIFY_ALLOW_LOOPBACK")?;
        let max_connections_per_ip = match plain(src, "SIKA_MAX_CONNECTIONS_PER_IP") {
            None => DEFAULT_MAX_CONNECTIONS_PER_IP,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if n <= 100_000 => n,
                _ => return err("SIKA_MAX_CONNECTIONS_PER_IP must be a whole number between 0 (no cap) and 100000."),
            },
        };
        let audit_checkpoint_file = audit_checkpoint_file(src, &database_url);
        let metrics_listen = match plain(src, "SIKA_METRICS_LISTEN").as_deref() {
            None => Some(DEFAULT_METRICS_LISTEN),
            Some("off") => None,
            Some(_) => parse_addr(src, "SIKA_METRICS_LISTEN")?,
        };
        let payout_approval_ttl = duration_var(src, "SIKA_PAYOUT_APPROVAL_TTL", Duration::from_secs(72 * 3600))?;
        let payout_resend_after = duration_var(src, "SIKA_PAYOUT_RESEND_AFTER", Duration::from_secs(300))?;
        if payout_resend_after < Duration::from_secs(10) {
            return err("SIKA_PAYOUT_RESEND_AFTER must be at least 10s (longer than a request can take).");
        }
        let transfer_lookup_max_pages = match plain(src, "SIKA_TRANSFER_LOOKUP_MAX_PAGES") {
            None => crate::payouts::DEFAULT_LOOKUP_MAX_PAGES,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (1..=1000).contains(&n) => n,
                _ => return err("SIKA_TRANSFER_LOOKUP_MAX_PAGES must be a whole number between 1 and 1000."),
            },
        };
        let settlement_grace_days = match plain(src, "SIKA_SETTLEMENT_GRACE_DAYS") {
            None => crate::settlements::DEFAULT_GRACE_DAYS,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (1..=60).contains(&n) => n,
                _ => return err("SIKA_SETTLEMENT_GRACE_DAYS must be a whole number of days between 1 and 60."),
            },
        };
        let cards_enabled = flag(src, "SIKA_CARDS_ENABLED")?;
        let mail = MailConfig::load(src)?;
        Ok(Config {
            mail,
            settlement_grace_days,
            transfer_lookup_max_pages,
            cards_enabled,
            metrics_listen,
            payout_resend_after,
            payout_approval_ttl,
            notify_allow_loopback,
            max_connections_per_ip,
            audit_checkpoint_file,
            flw_rate_per_second,
            login_ip_limit,
            database_url,
            listen,
            http_redirect_listen,
            public_url,
            tls_cert_file,
            tls_key_file,
            data_keys,
            audit_key,
            session_idle_timeout,
            session_absolute_timeout,
            flw_base_url,
            flw_secret_key,
            flw_secret_hash,
            max_body_bytes,
        })
    }
}

/// What the operator commands need (`user add`, `apikey create`, `audit`, `keys rotate`).
#[derive(Debug, Clone)]
pub struct OpsConfig {
    pub database_url: Secret,
    pub data_keys: KeyRing,
    pub audit_key: Secret,
    pub session_idle_timeout: Duration,
    pub session_absolute_timeout: Duration,
    pub audit_checkpoint_file: PathBuf,
}

impl OpsConfig {
    pub fn load(src: &dyn Source) -> Result<Self, ConfigError> {
        let data_key = required_secret(src, "SIKA_DATA_KEY")?;
        let data_keys = KeyRing::parse(data_key.expose())
            .map_err(|why| ConfigError(format!("SIKA_DATA_KEY is not a valid key ring: {why}.")))?;
        let audit_key = required_secret(src, "SIKA_AUDIT_KEY")?;
        let (session_idle_timeout, session_absolute_timeout) = session_timeouts(src)?;
        let database_url = database_url(src)?;
        Ok(OpsConfig {
            audit_checkpoint_file: audit_checkpoint_file(src, &database_url),
            database_url,
            data_keys,
            audit_key,
            session_idle_timeout,
            session_absolute_timeout,
        })
    }
}

/// Only what a database command needs (`migrate`, `user add`, ...).
pub fn database_url(src: &dyn Source) -> Result<Secret, ConfigError> {
    Ok(optional_secret(src, "SIKA_DATABASE_URL")?.unwrap_or_else(|| Secret::new(DEFAULT_DATABASE_URL)))
}

/// The default per-address connection cap: far above a browser's or a shop's
/// needs, far below the global cap. Behind a load balancer, set it to 0.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 256;

/// `SIKA_AUDIT_CHECKPOINT_FILE`, or beside a SQLite database
/// (`sika.db` → `sika.db.audit-checkpoints`), or `sika-audit-checkpoints` in
/// the working directory. Keep it somewhere the database's owner cannot
/// rewrite for the checkpoints to mean anything.
pub fn audit_checkpoint_file(src: &dyn Source, database_url: &Secret) -> PathBuf {
    if let Some(p) = plain(src, "SIKA_AUDIT_CHECKPOINT_FILE") {
        return PathBuf::from(p);
    }
    let sqlite = database_url.expose().strip_prefix("sqlite:").map(|r| r.trim_start_matches("//"));
    match sqlite.and_then(|r| r.split('?').next()).filter(|p| !p.is_empty() && *p != ":memory:") {
        Some(path) => PathBuf::from(format!("{path}.audit-checkpoints")),
        None => PathBuf::from("sika-audit-checkpoints"),
    }
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`); unset is `false`.
fn flag(src: &dyn Source, name: &str) -> Result<bool, ConfigError> {
    match plain(src, name).map(|v| v.to_ascii_lowercase()).as_deref() {
        None | Some("false" | "0" | "no") => Ok(false),
        Some("true" | "1" | "yes") => Ok(true),
        Some(_) => err(format!("{name} must be true or false.")),
    }
}

/// Session timeouts, validated: both positive, idle ≤ absolute ≤ 10 h.
pub fn session_timeouts(src: &dyn Source) -> Result<(Duration, Duration), ConfigError> {
    let idle = duration_var(src, "SIKA_SESSION_IDLE_TIMEOUT", Duration::from_secs(15 * 60))?;
    let absolute = duration_var(src, "SIKA_SESSION_ABSOLUTE_TIMEOUT", MAX_SESSION_LIFETIME)?;
    if absolute > MAX_SESSION_LIFETIME {
        return err("SIKA_SESSION_ABSOLUTE_TIMEOUT must not exceed 10h (the checklist's maximum session duration).");
    }
    if idle > absolute {
        return err("SIKA_SESSION_IDLE_TIMEOUT must not be longer than SIKA_SESSION_ABSOLUTE_TIMEOUT.");
    }
    Ok((idle, absolute))
}

fn default_listen() -> SocketAddr {
    DEFAULT_LISTEN.parse().expect("constant address parses")
}

/// A non-secret variable; empty counts as unset.
fn plain(src: &dyn Source, name: &str) -> Option<String> {
    src.get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

fn parse_addr(src: &dyn Source, name: &str) -> Result<Option<SocketAddr>, ConfigError> {
    match plain(src, name) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            ConfigError(format!("{name} must be an address like 127.0.0.1:8443, not `{}`.", printable(&v)))
        }),
    }
}

fn parse_url(name: &str, v: &str) -> Result<url::Url, ConfigError> {
    let url = url::Url::parse(v).map_err(|_| ConfigError(format!("{name} is not a valid URL.")))?;
    if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
        return err(format!("{name} must be an http(s) URL with a host."));
    }
    Ok(url)
}

fn parse_https_url(name: &str, v: &str) -> Result<url::Url, ConfigError> {
    let url = parse_url(name, v)?;
    if url.scheme() != "https" {
        return err(format!("{name} must start with https:// (Sika is only served over HTTPS)."));
    }
    Ok(url)
}

fn required_path(src: &dyn Source, name: &str) -> Result<PathBuf, ConfigError> {
    match plain(src, name) {
        Some(v) => Ok(PathBuf::from(v)),
        None => err(format!("{name} is required: set it to the path of a PEM file.")),
    }
}

/// Parses `30s`, `15m`, `10h`, or combinations like `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("it is empty".into());
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(format!("`{}` is not a duration (use a number with s, m or h, e.g. 15m)", printable(t))),
        };
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("`{}` is not a duration (use a number with s, m or h, e.g. 15m)", printable(t)))?;
        total = n
            .checked_mul(unit)
            .and_then(|x| total.checked_add(x))
            .ok_or_else(|| format!("`{}` is too long", printable(t)))?;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(format!("`{}` has no unit (use s, m or h, e.g. 15m)", printable(t)));
    }
    if total == 0 {
        return Err("it must be longer than zero".into());
    }
    Ok(Duration::from_secs(total))
}

fn duration_var(src: &dyn Source, name: &str, default: Duration) -> Result<Duration, ConfigError> {
    match plain(src, name) {
        None => Ok(default),
        Some(v) => parse_duration(&v).map_err(|why| ConfigError(format!("{name} is invalid: {why}."))),
    }
}

/// Values that are obviously a template left unfilled.
fn looks_like_placeholder(v: &str) -> bool {
    // Whole words, not substrings: a generated key is random base64, and one
    // in some tens of thousands holds "xxxx" or "your_" inside a run of
    // letters — that is a key, not a template left unfilled.
    let l = v.to_ascii_lowercase();
    if l.contains('<') || matches!(l.as_str(), "secret" | "password" | "todo" | "test") {
        return true;
    }
    let words: Vec<&str> = l.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let marker = |w: &str| matches!(w, "changeme" | "placeholder") || (w.len() >= 4 && w.bytes().all(|b| b == b'x'));
    words.iter().any(|w| marker(w)) || words.windows(2).any(|p| (p[0] == "change" && p[1] == "me") || p[0] == "your")
}

/// Where a secret was read from: `sika check` prefers files (a secrets
/// manager, systemd's `LoadCredential=`) to the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Environment,
    File(PathBuf),
}

/// A secret and where it came from, with every check `serve` applies.
pub fn secret_with_origin(src: &dyn Source, name: &str) -> Result<Option<(Secret, Origin)>, ConfigError> {
    let file_var = format!("{name}_FILE");
    let origin = match plain(src, &file_var) {
        Some(path) => Origin::File(PathBuf::from(path)),
        None => Origin::Environment,
    };
    Ok(optional_secret(src, name)?.map(|s| (s, origin)))
}

/// `true` when `SIKA_PUBLIC_URL`-style values look like a template left unfilled.
pub fn is_placeholder(v: &str) -> bool {
    looks_like_placeholder(v)
}

/// A non-secret variable as `serve` reads it (trimmed; empty is unset).
pub fn variable(src: &dyn Source, name: &str) -> Option<String> {
    plain(src, name)
}

fn optional_secret(src: &dyn Source, name: &str) -> Result<Option<Secret>, ConfigError> {
    let file_var = format!("{name}_FILE");
    let direct = src.get(name).filter(|v| !v.is_empty());
    let file = plain(src, &file_var);
    let value = match (direct, file) {
        (Some(_), Some(_)) => return err(format!("{name} and {file_var} are both set: keep only one.")),
        (Some(v), None) => v,
        (None, Some(path)) => read_secret_file(&file_var, Path::new(&path))?,
        (None, None) => return Ok(None),
    };
    let value = value.trim_end_matches(['\n', '\r']).to_string();
    if value.trim().is_empty() {
        return err(format!("{name} is empty: set it, or {file_var} to a file that contains it."));
    }
    if looks_like_placeholder(&value) {
        return err(format!("{name} looks like a placeholder, not a real secret."));
    }
    Ok(Some(Secret::new(value)))
}

fn required_secret(src: &dyn Source, name: &str) -> Result<Secret, ConfigError> {
    optional_secret(src, name)?.ok_or_else(|| {
        ConfigError(format!(
            "{name} is missing or empty: set it, or {name}_FILE to a file (mode 0600) that contains it."
        ))
    })
}

fn read_secret_file(var: &str, path: &Path) -> Result<String, ConfigError> {
    check_owner_only(var, path)?;
    std::fs::read_to_string(path).map_err(|e| ConfigError(format!("{var} cannot be read ({}).", e.kind())))
}

/// A secret file must not be readable by group or others.
pub fn check_owner_only(var: &str, path: &Path) -> Result<(), ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| ConfigError(format!("{var} cannot be read ({}).", e.kind())))?;
    if !meta.is_file() {
        return err(format!("{var} is not a regular file."));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return err(format!("{var} is readable by group or others: run chmod 600 on it."));
    }
    Ok(())
}

/// Keeps echoed user input short and free of control characters.
fn printable(v: &str) -> String {
    v.chars().filter(|c| !c.is_control()).take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k: &str| map.get(k).cloned()
    }

    #[test]
    fn durations_parse_and_reject_clearly() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("10h"), Ok(Duration::from_secs(36000)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        for bad in ["", "15", "m", "15x", "0s", "-5m", "99999999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn absolute_timeout_above_ten_hours_is_refused() {
        let e = session_timeouts(&env(&[("SIKA_SESSION_ABSOLUTE_TIMEOUT", "11h")])).unwrap_err();
        assert!(e.0.contains("SIKA_SESSION_ABSOLUTE_TIMEOUT"), "{e}");
        assert!(session_timeouts(&env(&[("SIKA_SESSION_ABSOLUTE_TIMEOUT", "10h")])).is_ok());
        let e = session_timeouts(&env(&[("SIKA_SESSION_IDLE_TIMEOUT", "2h"), ("SIKA_SESSION_ABSOLUTE_TIMEOUT", "1h")]))
            .unwrap_err();
        assert!(e.0.contains("SIKA_SESSION_IDLE_TIMEOUT"), "{e}");
    }

    #[test]
    fn secrets_missing_empty_placeholder_or_doubled_are_refused() {
        let e = required_secret(&env(&[]), "FLW_SECRET_KEY").unwrap_err();
        assert!(e.0.starts_with("FLW_SECRET_KEY is missing"), "{e}");
        let e = required_secret(&env(&[("FLW_SECRET_KEY", "")]), "FLW_SECRET_KEY").unwrap_err();
        assert!(e.0.contains("FLW_SECRET_KEY"), "{e}");
        let e = required_secret(&env(&[("FLW_SECRET_KEY", "changeme")]), "FLW_SECRET_KEY").unwrap_err();
        assert!(e.0.contains("placeholder"), "{e}");
        let e = required_secret(&env(&[("FLW_SECRET_KEY", "a"), ("FLW_SECRET_KEY_FILE", "/x")]), "FLW_SECRET_KEY")
            .unwrap_err();
        assert!(e.0.contains("both"), "{e}");
    }

    #[test]
    fn templates_are_placeholders_and_random_keys_that_happen_to_spell_one_are_not() {
        for t in [
            "changeme",
            "Change-Me",
            "please_change_me",
            "FLWSECK_TEST-xxxxxxxx",
            "<your key>",
            "placeholder",
            "your-secret-hash",
            "https://your_domain.example",
            "secret",
            "TODO",
        ] {
            assert!(looks_like_placeholder(t), "{t}");
        }
        // Each of these was refused when the markers were substrings: a
        // generated key or token that holds them inside a run of letters.
        for k in [
            "k1:q2XxXxbN0Yw8Zp4tVd3Lr9Hs6Jm1Kc7Ue5Fa2Gi0Ob8=",
            "FLWSECK_TEST-9fyour_Kq3ZchangemeT",
            "aBxxxxyZ",
            "k1:Zyour+Ab",
            "placeholderless9",
        ] {
            assert!(!looks_like_placeholder(k), "{k}");
        }
    }

    #[test]
    fn metrics_listen_on_loopback_unless_told_otherwise() {
        let default = DEFAULT_METRICS_LISTEN;
        assert!(default.ip().is_loopback(), "never the public interface by default");
        assert_ne!(default.port(), default_listen().port(), "never the public port");
    }

    #[test]
    fn secret_files_must_be_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "s3cr3t-value-from-file\n").unwrap();
        for mode in [0o644, 0o640, 0o604] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let src = env(&[("FLW_SECRET_HASH_FILE", path.to_str().unwrap())]);
            let e = required_secret(&src, "FLW_SECRET_HASH").unwrap_err();
            assert!(e.0.contains("FLW_SECRET_HASH_FILE") && e.0.contains("group or others"), "{e}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let src = env(&[("FLW_SECRET_HASH_FILE", path.to_str().unwrap())]);
        assert_eq!(required_secret(&src, "FLW_SECRET_HASH").unwrap().expose(), "s3cr3t-value-from-file");
    }
}
