//! Notifying the shop: every state change's outbox row is POSTed to the
//! shop's URL, signed, at least once, with exponential backoff for three days,
//! then dead-lettered (replayable from the console).
//!
//! `Sika-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>`.
//! The shop checks the signature, refuses a `t` more than 5 minutes away, and
//! deduplicates on the event's `id`.

use crate::audit::{Actor, Outcome};
use crate::crypto::field::FieldCipher;
use crate::crypto::hmac_hex;
use crate::store::{OutboxRow, Store, StoreError, now_ms};

pub use crate::store::settings::{NOTIFY_SECRET as SECRET_SETTING, NOTIFY_URL as URL_SETTING};
/// Give up after this long.
pub const GIVE_UP_AFTER_MS: i64 = 3 * 86_400_000;

/// `t=<t>,v1=<hex>` for `body` at unix time `t`.
pub fn signature(secret: &str, t: i64, body: &str) -> String {
    format!("t={t},v1={}", hmac_hex(secret.as_bytes(), &[t.to_string().as_bytes(), b".", body.as_bytes()]))
}

/// The shop's endpoint: https, or http only to this machine when loopback is
/// allowed (the demo's receiver); never an address literal that is private,
/// loopback or link-local otherwise. Names are checked again when resolved
/// at delivery ([`PublicOnly`]).
pub fn valid_url(u: &str, allow_loopback: bool) -> Result<String, &'static str> {
    let url = url::Url::parse(u.trim()).map_err(|_| "Enter an absolute URL.")?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err("Enter an absolute URL."),
    };
    if !(url.scheme() == "https" || (url.scheme() == "http" && loopback && allow_loopback))
        || !url.username().is_empty()
        || u.len() > 2048
    {
        return Err("The URL must be https:// and at most 2048 characters.");
    }
    if !host_allowed(&url, allow_loopback) {
        return Err("The URL must not point to a private, loopback or link-local address.");
    }
    Ok(url.to_string())
}

/// An address a notification may go to: public, or loopback when allowed.
pub fn address_allowed(ip: std::net::IpAddr, allow_loopback: bool) -> bool {
    use std::net::IpAddr;
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    if ip.is_loopback() {
        return allow_loopback;
    }
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
                || (a == 192 && b == 0 && v4.octets()[2] == 0)) // IETF protocol assignments
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80) // link-local
        }
    }
}

fn host_allowed(url: &url::Url, allow_loopback: bool) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => address_allowed(ip.into(), allow_loopback),
        Some(url::Host::Ipv6(ip)) => address_allowed(ip.into(), allow_loopback),
        Some(url::Host::Domain(d)) => allow_loopback || !d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Resolves names for notification delivery, keeping only allowed addresses:
/// a shop URL whose name points (or is re-pointed) inside the network is
/// refused at connect time, whatever it resolved to when it was saved.
#[derive(Debug, Clone, Copy)]
pub struct PublicOnly {
    pub allow_loopback: bool,
}

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow_loopback;
        Box::pin(async move {
            let found: Vec<std::net::SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let ok: Vec<std::net::SocketAddr> = found.into_iter().filter(|a| address_allowed(a.ip(), allow)).collect();
            if ok.is_empty() {
                return Err("the notification URL resolves only to private, loopback or link-local addresses".into());
            }
            Ok(Box::new(ok.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// 30 s, 1 m, 2 m … capped at 6 h.
fn backoff_ms(attempts: i64) -> i64 {
    (30_000_i64 << attempts.clamp(0, 10)).min(6 * 3_600_000)
}

pub async fn set_endpoint(store: &Store, cipher: &FieldCipher, url: &str, secret: &str) -> Result<(), StoreError> {
    store.set_setting(URL_SETTING, url).await?;
    store.set_setting(SECRET_SETTING, &cipher.seal_str("settings", "value", SECRET_SETTING, secret)).await
}

/// The configured URL and opened secret, if both are set.
pub async fn endpoint(store: &Store, cipher: &FieldCipher) -> Result<Option<(String, String)>, StoreError> {
    let (Some(url), Some(sealed)) = (store.setting(URL_SETTING).await?, store.setting(SECRET_SETTING).await?) else {
        return Ok(None);
    };
    Ok(cipher.open_str("settings", "value", SECRET_SETTING, &sealed).ok().map(|s| (url, s)))
}

/// Delivers shop notifications: its own HTTP client (short timeout, no
/// redirects, only allowed addresses), deliveries in parallel.
#[derive(Debug, Clone)]
pub struct Notifier {
    http: reqwest::Client,
    cipher: FieldCipher,
    allow_loopback: bool,
}

/// Deliveries at once; each is cut off by the client's timeout.
const PARALLEL: usize = 8;
/// A claimed notification is this instance's for this long (longer than one attempt).
const LEASE_MS: i64 = 60_000;

impl Notifier {
    pub fn new(cipher: FieldCipher, allow_loopback: bool) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(std::time::Duration::from_secs(10))
            .connect_timeout(std::time::Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(std::sync::Arc::new(PublicOnly { allow_loopback }))
            .user_agent(concat!("sika/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the notification client: {e}"))?;
        Ok(Notifier { http, cipher, allow_loopback })
    }

    /// One delivery pass; returns how many were delivered.
    pub async fn deliver_due(&self, store: &Store) -> Result<usize, StoreError> {
        let Some((url, secret)) = endpoint(store, &self.cipher).await? else { return Ok(0) };
        let allowed = url::Url::parse(&url).is_ok_and(|u| host_allowed(&u, self.allow_loopback));
        if !allowed {
            tracing::warn!("the shop's notification URL points to a refused address; nothing is sent");
        }
        let now = now_ms();
        let rows = store.outbox_claim(now, 20, LEASE_MS).await?;
        let mut delivered = 0;
        for chunk in rows.chunks(PARALLEL) {
            let mut tasks = tokio::task::JoinSet::new();
            for row in chunk.iter().cloned() {
                let (http, url, secret) = (self.http.clone(), url.clone(), secret.clone());
                tasks.spawn(async move {
                    let tried = if allowed {
                        attempt(&http, &url, &secret, &row).await
                    } else {
                        Tried {
                            status: None,
                            latency_ms: 0,
                            outcome: "not sent: the URL points to a refused address".into(),
                        }
                    };
                    (row, tried, url)
                });
            }
            while let Some(done) = tasks.join_next().await {
                let Ok((row, tried, url)) = done else { continue };
                let ok = tried.outcome == DELIVERED;
                store
                    .record_delivery_attempt(&crate::store::DeliveryAttempt {
                        outbox_id: row.id.clone(),
                        event: row.event.clone(),
                        reference: row.reference.clone(),
                        at: now_ms(),
                        url: loggable(&url),
                        status: tried.status.map(i64::from),
                        latency_ms: tried.latency_ms,
                        outcome: tried.outcome,
                    })
                    .await?;
                let m = &crate::metrics::global().notifications;
                if ok {
                    store.outbox_delivered(&row.id).await?;
                    crate::metrics::count(m, "delivered");
                    delivered += 1;
                } else {
                    let dead = now - row.created_at >= GIVE_UP_AFTER_MS;
                    store.outbox_failed(&row.id, now + backoff_ms(row.attempts), dead).await?;
                    crate::metrics::count(m, if dead { "dead" } else { "retried" });
                    if dead {
                        tracing::warn!(event = %row.event, reference = %row.reference, "shop notification dead-lettered after 3 days");
                    }
                }
            }
        }
        Ok(delivered)
    }
}

const DELIVERED: &str = "delivered";

/// What one attempt got: the shop's status, how long it took, in words.
struct Tried {
    status: Option<u16>,
    latency_ms: i64,
    outcome: String,
}

/// The endpoint as the delivery log shows it: no query string, no user info.
fn loggable(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!("{}://{}{}", u.scheme(), u.host_str().unwrap_or(""), u.path()).chars().take(300).collect(),
        Err(_) => "(not a URL)".into(),
    }
}

async fn attempt(http: &reqwest::Client, url: &str, secret: &str, row: &OutboxRow) -> Tried {
    let started = std::time::Instant::now();
    let t = now_ms() / 1000;
    let res = http
        .post(url)
        .header("content-type", "application/json")
        .header("sika-signature", signature(secret, t, &row.payload))
        .header("sika-event-id", &row.id)
        .body(row.payload.clone())
        .send()
        .await;
    let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    match res {
        Ok(r) if r.status().is_success() => {
            Tried { status: Some(r.status().as_u16()), latency_ms, outcome: DELIVERED.into() }
        }
        Ok(r) => Tried {
            status: Some(r.status().as_u16()),
            latency_ms,
            outcome: format!("the shop answered {}", r.status().as_u16()),
        },
        Err(e) => {
            tracing::info!(event = %row.event, reference = %row.reference, error = %e, "shop notification not delivered; will retry");
            let outcome = if e.is_timeout() {
                "no answer in time"
            } else if e.is_connect() {
                "could not connect"
            } else if e.is_redirect() {
                "the shop redirected (not followed)"
            } else {
                "the request failed"
            };
            Tried { status: None, latency_ms, outcome: outcome.into() }
        }
    }
}

impl super::Payments {
    /// The newest delivery attempts to the shop, for the console's log.
    pub async fn delivery_log(&self, limit: i64) -> Result<Vec<crate::store::DeliveryAttempt>, StoreError> {
        self.store.delivery_attempts(limit).await
    }

    /// Notifications that gave up, for the console to replay.
    pub async fn outbox_dead(&self) -> Result<Vec<crate::store::OutboxRow>, StoreError> {
        self.store.outbox_dead().await
    }

    /// Queues a `test.ping` to the shop's endpoint; its id.
    pub async fn send_test_event(&self, actor: &Actor) -> Result<String, StoreError> {
        let id = crate::crypto::random::hex_id();
        let target = format!("outbox:{id}");
        let audit =
            self.auditor.draft(actor, "notification.test", &target, Outcome::Success, serde_json::json!({})).await?;
        self.store.queue_test_event(&id, audit).await?;
        Ok(id)
    }

    /// Sends a notification again, delivered or not (same event id), audited
    /// with it (a replay of nothing is recorded as a failure).
    pub async fn replay_notification(&self, actor: &Actor, id: &str) -> Result<bool, StoreError> {
        let target = format!("outbox:{id}");
        let audit =
            self.auditor.draft(actor, "notification.replay", &target, Outcome::Success, serde_json::json!({})).await?;
        let done = self.store.outbox_replay(id, Some(audit)).await?;
        if !done {
            self.auditor.record(actor, "notification.replay", &target, Outcome::Failure, serde_json::json!({})).await?;
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_and_urls() {
        let s = signature("whsec", 1_700_000_000, "{\"a\":1}");
        assert!(s.starts_with("t=1700000000,v1="));
        assert_eq!(s.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(s, signature("whsec", 1_700_000_001, "{\"a\":1}"));
        assert!(valid_url("https://shop.example/hook", false).is_ok());
        assert!(valid_url("http://127.0.0.1:9000/hook", true).is_ok(), "the demo's receiver, when allowed");
        for bad in [
            "http://shop.example/hook",
            "ftp://x/",
            "https://user:pw@shop.example/",
            "not a url",
            "http://127.0.0.1:9000/hook",
            "https://127.0.0.1/hook",
            "https://localhost/hook",
            "https://10.0.0.5/hook",
            "https://192.168.1.1/hook",
            "https://172.16.0.1/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/hook",
            "https://[fe80::1]/hook",
            "https://[fd00::1]/hook",
            "https://[::ffff:10.0.0.1]/hook",
            "https://0.0.0.0/hook",
            "https://100.64.0.1/hook",
        ] {
            assert!(valid_url(bad, false).is_err(), "{bad}");
        }
        assert!(valid_url("https://10.0.0.5/hook", true).is_err(), "loopback allowance is not private allowance");
        assert_eq!(backoff_ms(0), 30_000);
        assert_eq!(backoff_ms(20), 6 * 3_600_000);
    }
}
