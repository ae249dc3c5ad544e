//! Checkouts and their transitions. Every transition is a conditional update
//! (`... WHERE status = 'pending'`) in one transaction with its outbox row, so
//! concurrent webhooks, return visits and reconciler runs produce exactly one
//! transition and one notification.

use sqlx::Row as _;

use super::{Store, StoreError, now_ms};
use crate::domain::checkout::Verified;

#[derive(Debug, Clone)]
pub struct CheckoutRow {
    pub reference: String,
    pub fingerprint: String,
    pub amount: String,
    pub currency: String,
    pub email_enc: String,
    pub name_enc: Option<String>,
    pub phone_enc: Option<String>,
    pub redirect_url: Option<String>,
    pub status: String,
    pub checkout_url: Option<String>,
    pub transaction_id: Option<i64>,
    pub paid_amount: Option<String>,
    pub review_reason: Option<String>,
    pub api_key_id: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// When the reconciler verifies a pending checkout, after its creation.
pub const RECONCILE_MARKS_MS: [i64; 6] = [60_000, 300_000, 1_800_000, 7_200_000, 43_200_000, 86_400_000];

macro_rules! select_checkouts {
    ($tail:literal) => {
        concat!(
            "SELECT reference, fingerprint, amount, currency, email_enc, name_enc, phone_enc, redirect_url, status, ",
            "checkout_url, transaction_id, paid_amount, review_reason, api_key_id, created_at, updated_at, checks FROM checkouts ",
            $tail
        )
    };
}

fn row(r: &sqlx::any::AnyRow) -> Result<CheckoutRow, sqlx::Error> {
    Ok(CheckoutRow {
        reference: r.try_get("reference")?,
        fingerprint: r.try_get("fingerprint")?,
        amount: r.try_get("amount")?,
        currency: r.try_get("currency")?,
        email_enc: r.try_get("email_enc")?,
        name_enc: r.try_get("name_enc")?,
        phone_enc: r.try_get("phone_enc")?,
        redirect_url: r.try_get("redirect_url")?,
        status: r.try_get("status")?,
        checkout_url: r.try_get("checkout_url")?,
        transaction_id: r.try_get("transaction_id")?,
        paid_amount: r.try_get("paid_amount")?,
        review_reason: r.try_get("review_reason")?,
        api_key_id: r.try_get("api_key_id")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// A notification for the shop, written with the transition that caused it.
#[derive(Debug, Clone)]
pub struct Notification {
    pub event: &'static str,
    pub payload: serde_json::Value,
}

impl Store {
    /// Inserts a checkout unless its reference exists; `false` when it did.
    pub async fn insert_checkout(&self, c: &CheckoutRow) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "INSERT INTO checkouts (reference, fingerprint, amount, currency, email_enc, name_enc, phone_enc, redirect_url, \
             status, api_key_id, created_at, updated_at, next_check_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10, $10, $11) \
             ON CONFLICT (reference) DO NOTHING",
        )
        .bind(&c.reference)
        .bind(&c.fingerprint)
        .bind(&c.amount)
        .bind(&c.currency)
        .bind(&c.email_enc)
        .bind(&c.name_enc)
        .bind(&c.phone_enc)
        .bind(&c.redirect_url)
        .bind(&c.api_key_id)
        .bind(c.created_at)
        .bind(c.created_at + RECONCILE_MARKS_MS[0])
        .execute(self.pool())
        .await?;
        if r.rows_affected() == 1 {
            self.checkout_event(&c.reference, "created", "").await?;
        }
        Ok(r.rows_affected() == 1)
    }

    pub async fn checkout(&self, reference: &str) -> Result<Option<CheckoutRow>, StoreError> {
        let r =
            sqlx::query(select_checkouts!("WHERE reference = $1")).bind(reference).fetch_optional(self.pool()).await?;
        Ok(r.as_ref().map(row).transpose()?)
    }

    /// Pending checkouts created before `before` (for expiry), with whether any attempt failed.
    pub async fn checkouts_expired(&self, before: i64, limit: i64) -> Result<Vec<(String, bool)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT c.reference, CASE WHEN EXISTS (SELECT 1 FROM checkout_events e WHERE e.reference = c.reference \
             AND e.kind = 'attempt_failed') THEN 1 ELSE 0 END FROM checkouts c \
             WHERE c.status = 'pending' AND c.created_at < $1 ORDER BY c.created_at LIMIT $2",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(self.pool())
        .await?
        .into_iter()
        .map(|(r, failed): (String, i64)| (r, failed != 0))
        .collect())
    }

    /// The console's list: newest first, by status and/or a reference prefix.
    pub async fn checkouts_search(
        &self,
        status: Option<&str>,
        prefix: Option<&str>,
        limit: i64,
    ) -> Result<Vec<CheckoutRow>, StoreError> {
        let like = prefix.map(|p| format!("{p}%"));
        let rows = sqlx::query(select_checkouts!(
            "WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR reference LIKE $2) ORDER BY created_at DESC LIMIT $3"
        ))
        .bind(status)
        .bind(like)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }

    /// Pending checkouts whose next reconciliation is due.
    pub async fn checkouts_due(&self, now: i64, limit: i64) -> Result<Vec<(CheckoutRow, i64)>, StoreError> {
        let rows = sqlx::query(select_checkouts!(
            "WHERE status = 'pending' AND next_check_at IS NOT NULL AND next_check_at <= $1 ORDER BY next_check_at LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((row(r)?, r.try_get::<i64, _>("checks")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// Records a reconciliation and schedules the next one (none after the last mark).
    pub async fn checkout_checked(&self, reference: &str, checks: i64, created_at: i64) -> Result<(), StoreError> {
        let next = RECONCILE_MARKS_MS.get(usize::try_from(checks + 1).unwrap_or(usize::MAX)).map(|m| created_at + m);
        sqlx::query("UPDATE checkouts SET checks = $1, next_check_at = $2 WHERE reference = $3")
            .bind(checks + 1)
            .bind(next)
            .bind(reference)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn set_checkout_url(&self, reference: &str, url: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE checkouts SET checkout_url = $1, updated_at = $2 WHERE reference = $3")
            .bind(url)
            .bind(now_ms())
            .bind(reference)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn checkout_event(&self, reference: &str, kind: &str, detail: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO checkout_events (reference, at, kind, detail) VALUES ($1, $2, $3, $4)")
            .bind(reference)
            .bind(now_ms())
            .bind(kind)
            .bind(detail)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn checkout_events(&self, reference: &str) -> Result<Vec<(i64, String, String)>, StoreError> {
        Ok(sqlx::query_as("SELECT at, kind, detail FROM checkout_events WHERE reference = $1 ORDER BY at")
            .bind(reference)
            .fetch_all(self.pool())
            .await?)
    }

    /// pending → paid, only with proof. `true` if this call made the transition.
    pub async fn mark_paid(&self, proof: &Verified, note: Notification) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE checkouts SET status = 'paid', transaction_id = $1, paid_amount = $2, updated_at = $3 \
             WHERE reference = $4 AND status = 'pending'",
        )
        .bind(proof.transaction_id())
        .bind(proof.amount().to_string())
        .bind(now_ms())
        .bind(proof.reference())
        .execute(&mut *tx)
        .await?;
        let moved = r.rows_affected() == 1;
        if moved {
            insert_outbox(&mut tx, proof.reference(), &note).await?;
            insert_event(&mut tx, proof.reference(), "paid", &format!("transaction {}", proof.transaction_id()))
                .await?;
        }
        tx.commit().await?;
        Ok(moved)
    }

    /// pending → needs_review | failed | cancelled (not paid: that needs proof).
    pub async fn mark_unpaid(
        &self,
        reference: &str,
        status: &'static str,
        transaction_id: Option<i64>,
        reason: &str,
        note: Notification,
    ) -> Result<bool, StoreError> {
        debug_assert!(matches!(status, "needs_review" | "failed" | "cancelled"));
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE checkouts SET status = $1, transaction_id = $2, review_reason = $3, updated_at = $4 \
             WHERE reference = $5 AND status = 'pending'",
        )
        .bind(status)
        .bind(transaction_id)
        .bind(reason)
        .bind(now_ms())
        .bind(reference)
        .execute(&mut *tx)
        .await?;
        let moved = r.rows_affected() == 1;
        if moved {
            insert_outbox(&mut tx, reference, &note).await?;
            insert_event(&mut tx, reference, status, reason).await?;
        }
        tx.commit().await?;
        Ok(moved)
    }

    pub async fn outbox_count(&self, reference: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE reference = $1")
            .bind(reference)
            .fetch_one(self.pool())
            .await?)
    }
}

async fn insert_outbox(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    reference: &str,
    note: &Notification,
) -> Result<(), StoreError> {
    let now = now_ms();
    // The event id the shop deduplicates on is the outbox row's id.
    let id = crate::crypto::random::hex_id();
    let mut payload = note.payload.clone();
    if let Some(o) = payload.as_object_mut() {
        o.insert("id".into(), serde_json::Value::String(id.clone()));
    }
    // The unique (event, reference) index is a second guard: one notification per event, ever.
    sqlx::query(
        "INSERT INTO outbox (id, event, reference, payload, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(&id)
    .bind(note.event)
    .bind(reference)
    .bind(payload.to_string())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_event(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    reference: &str,
    kind: &str,
    detail: &str,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO checkout_events (reference, at, kind, detail) VALUES ($1, $2, $3, $4)")
        .bind(reference)
        .bind(now_ms())
        .bind(kind)
        .bind(detail)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: String,
    pub event: String,
    pub reference: String,
    pub payload: String,
    pub created_at: i64,
    pub attempts: i64,
    pub delivered_at: Option<i64>,
    pub dead: bool,
}

fn outbox_row(r: &sqlx::any::AnyRow) -> Result<OutboxRow, sqlx::Error> {
    Ok(OutboxRow {
        id: r.try_get("id")?,
        event: r.try_get("event")?,
        reference: r.try_get("reference")?,
        payload: r.try_get("payload")?,
        created_at: r.try_get("created_at")?,
        attempts: r.try_get("attempts")?,
        delivered_at: r.try_get("delivered_at")?,
        dead: r.try_get::<i64, _>("dead")? != 0,
    })
}

macro_rules! select_outbox {
    ($tail:literal) => {
        concat!("SELECT id, event, reference, payload, created_at, attempts, delivered_at, dead FROM outbox ", $tail)
    };
}

impl Store {
    /// Notifications due for (another) delivery attempt.
    pub async fn outbox_due(&self, now: i64, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
        let rows = sqlx::query(select_outbox!(
            "WHERE delivered_at IS NULL AND dead = 0 AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(outbox_row).collect::<Result<_, _>>()?)
    }

    pub async fn outbox_for(&self, reference: &str) -> Result<Vec<OutboxRow>, StoreError> {
        let rows = sqlx::query(select_outbox!("WHERE reference = $1 ORDER BY created_at"))
            .bind(reference)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(outbox_row).collect::<Result<_, _>>()?)
    }

    pub async fn outbox_dead(&self) -> Result<Vec<OutboxRow>, StoreError> {
        let rows = sqlx::query(select_outbox!("WHERE dead = 1 ORDER BY created_at DESC LIMIT 200"))
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(outbox_row).collect::<Result<_, _>>()?)
    }

    pub async fn outbox_delivered(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbox SET delivered_at = $1, attempts = attempts + 1 WHERE id = $2")
            .bind(now_ms())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// A failed attempt: try again at `next`, or give up (dead letter).
    pub async fn outbox_failed(&self, id: &str, next: i64, dead: bool) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $1, dead = $2 WHERE id = $3")
            .bind(next)
            .bind(i64::from(dead))
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// An admin replays a dead letter: delivery starts over.
    pub async fn outbox_replay(&self, id: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE outbox SET dead = 0, attempts = 0, created_at = $1, next_attempt_at = $1 WHERE id = $2 AND dead = 1")
            .bind(now_ms())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected() == 1)
    }
}

#[derive(Debug, Clone)]
pub struct RefundRow {
    pub id: String,
    pub amount: String,
    pub status: String,
    pub note: Option<String>,
    pub requested_by: String,
    pub created_at: i64,
}

impl Store {
    /// Records a refund request, refusing one that would exceed what was paid
    /// (counting every refund not definitely failed). `None` when it would.
    pub async fn insert_refund(
        &self,
        reference: &str,
        transaction_id: i64,
        amount: rust_decimal::Decimal,
        paid: rust_decimal::Decimal,
        requested_by: &str,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.begin_write().await?;
        let amounts: Vec<String> =
            sqlx::query_scalar("SELECT amount FROM refunds WHERE reference = $1 AND status <> 'failed'")
                .bind(reference)
                .fetch_all(&mut *tx)
                .await?;
        let already: rust_decimal::Decimal =
            amounts.iter().filter_map(|a| a.parse::<rust_decimal::Decimal>().ok()).sum();
        if already + amount > paid {
            return Ok(None);
        }
        let id = crate::crypto::random::hex_id();
        let now = now_ms();
        sqlx::query(
            "INSERT INTO refunds (id, reference, transaction_id, amount, status, requested_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'requested', $5, $6, $6)",
        )
        .bind(&id)
        .bind(reference)
        .bind(transaction_id)
        .bind(amount.to_string())
        .bind(requested_by)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        insert_event(&mut tx, reference, "refund_requested", &format!("{amount}")).await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    pub async fn finish_refund(
        &self,
        id: &str,
        status: &str,
        flw_id: Option<i64>,
        note: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE refunds SET status = $1, flw_refund_id = $2, note = $3, updated_at = $4 WHERE id = $5 AND status = 'requested'")
            .bind(status)
            .bind(flw_id)
            .bind(note)
            .bind(now_ms())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn refunds(&self, reference: &str) -> Result<Vec<RefundRow>, StoreError> {
        let rows = sqlx::query("SELECT id, amount, status, note, requested_by, created_at FROM refunds WHERE reference = $1 ORDER BY created_at")
            .bind(reference)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(RefundRow {
                    id: r.try_get("id")?,
                    amount: r.try_get("amount")?,
                    status: r.try_get("status")?,
                    note: r.try_get("note")?,
                    requested_by: r.try_get("requested_by")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }
}
