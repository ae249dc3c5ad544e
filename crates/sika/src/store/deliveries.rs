//! Each attempt to deliver a notification to the shop, for the delivery log,
//! and the test events an admin sends to check the endpoint.

use sqlx::Row as _;

use super::{Store, StoreError, now_ms};

/// One delivery attempt, as the log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    pub outbox_id: String,
    pub event: String,
    pub reference: String,
    pub at: i64,
    /// Where it was sent (scheme, host and path: never a query string).
    pub url: String,
    /// The shop's HTTP status, when it answered.
    pub status: Option<i64>,
    pub latency_ms: i64,
    /// `delivered`, or what went wrong in a few words.
    pub outcome: String,
}

impl Store {
    pub async fn record_delivery_attempt(&self, a: &DeliveryAttempt) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO outbox_attempts (outbox_id, at, url, status, latency_ms, outcome) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&a.outbox_id)
        .bind(a.at)
        .bind(&a.url)
        .bind(a.status)
        .bind(a.latency_ms)
        .bind(&a.outcome)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The newest attempts first, with their notification's event and reference.
    pub async fn delivery_attempts(&self, limit: i64) -> Result<Vec<DeliveryAttempt>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.outbox_id, o.event, o.reference, a.at, a.url, a.status, a.latency_ms, a.outcome \
             FROM outbox_attempts a JOIN outbox o ON o.id = a.outbox_id ORDER BY a.at DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DeliveryAttempt {
                    outbox_id: r.try_get("outbox_id")?,
                    event: r.try_get("event")?,
                    reference: r.try_get("reference")?,
                    at: r.try_get("at")?,
                    url: r.try_get("url")?,
                    status: r.try_get("status")?,
                    latency_ms: r.try_get("latency_ms")?,
                    outcome: r.try_get("outcome")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// Queues a `test.ping` for the shop's endpoint; its id.
    /// Queues a `test.ping` as `id`, with the audit entry of whoever asked.
    pub async fn queue_test_event(&self, id: &str, audit: super::AuditDraft) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let now = now_ms();
        let payload = serde_json::json!({"event": "test.ping", "id": id, "created_at": now,
            "note": "A test from Sika's console: nothing was paid."});
        sqlx::query(
            "INSERT INTO outbox (id, event, reference, payload, created_at, next_attempt_at) VALUES ($1, 'test.ping', $2, $3, $4, $4)",
        )
        .bind(id)
        .bind(format!("test-{id}"))
        .bind(payload.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        audit.append_in(&mut tx, self.backend()).await?;
        tx.commit().await?;
        Ok(())
    }
}
