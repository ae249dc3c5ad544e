//! Notifying the shop: every state change's outbox row is POSTed to the
//! shop's URL, signed, at least once, with exponential backoff for three days,
//! then dead-lettered (replayable from the console).
//!
//! `Sika-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>`.
//! The shop checks the signature, refuses a `t` more than 5 minutes away, and
//! deduplicates on the event's `id`.

use crate::crypto::field::FieldCipher;
use crate::crypto::hmac_hex;
use crate::store::{OutboxRow, Store, StoreError, now_ms};

pub const URL_SETTING: &str = "notify.url";
pub const SECRET_SETTING: &str = "notify.secret";
/// Give up after this long.
pub const GIVE_UP_AFTER_MS: i64 = 3 * 86_400_000;

/// `t=<t>,v1=<hex>` for `body` at unix time `t`.
pub fn signature(secret: &str, t: i64, body: &str) -> String {
    format!("t={t},v1={}", hmac_hex(secret.as_bytes(), &[t.to_string().as_bytes(), b".", body.as_bytes()]))
}

/// The shop's endpoint must be https (http only to loopback, for development).
pub fn valid_url(u: &str) -> Result<String, &'static str> {
    let url = url::Url::parse(u.trim()).map_err(|_| "Enter an absolute URL.")?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if !(url.scheme() == "https" || (url.scheme() == "http" && loopback))
        || !url.username().is_empty()
        || u.len() > 2048
    {
        return Err("The URL must be https:// (http:// only to this machine) and at most 2048 characters.");
    }
    Ok(url.to_string())
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

/// One delivery pass; returns how many were delivered.
pub async fn deliver_due(store: &Store, cipher: &FieldCipher, http: &reqwest::Client) -> Result<usize, StoreError> {
    let Some((url, secret)) = endpoint(store, cipher).await? else { return Ok(0) };
    let now = now_ms();
    let mut delivered = 0;
    for row in store.outbox_due(now, 20).await? {
        if attempt(http, &url, &secret, &row).await {
            store.outbox_delivered(&row.id).await?;
            delivered += 1;
        } else {
            let dead = now - row.created_at >= GIVE_UP_AFTER_MS;
            store.outbox_failed(&row.id, now + backoff_ms(row.attempts), dead).await?;
            if dead {
                tracing::warn!(event = %row.event, reference = %row.reference, "shop notification dead-lettered after 3 days");
            }
        }
    }
    Ok(delivered)
}

async fn attempt(http: &reqwest::Client, url: &str, secret: &str, row: &OutboxRow) -> bool {
    let t = now_ms() / 1000;
    let res = http
        .post(url)
        .header("content-type", "application/json")
        .header("sika-signature", signature(secret, t, &row.payload))
        .header("sika-event-id", &row.id)
        .body(row.payload.clone())
        .send()
        .await;
    matches!(res, Ok(r) if r.status().is_success())
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
        assert!(valid_url("https://shop.example/hook").is_ok());
        assert!(valid_url("http://127.0.0.1:9000/hook").is_ok());
        for bad in ["http://shop.example/hook", "ftp://x/", "https://user:pw@shop.example/", "not a url"] {
            assert!(valid_url(bad).is_err(), "{bad}");
        }
        assert_eq!(backoff_ms(0), 30_000);
        assert_eq!(backoff_ms(20), 6 * 3_600_000);
    }
}
