//! Chargebacks: one row per Flutterwave chargeback, written only from what
//! Flutterwave's own list said (never from a webhook's body). A new one, or one
//! that moved, writes its checkout's timeline entry and the shop's notification
//! in the same transaction.

use rust_decimal::Decimal;
use sqlx::Row as _;

use super::checkouts::{Notification, insert_outbox};
use super::timeline::Timeline;
use super::{Store, StoreError, decode, now_ms};
use crate::domain::Currency;

/// What Flutterwave's list said about one chargeback, linked to a checkout when one matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargebackFacts {
    pub id: i64,
    pub checkout_reference: Option<String>,
    pub transaction_id: Option<i64>,
    pub flw_ref: String,
    pub amount: Decimal,
    pub currency: Option<Currency>,
    /// Flutterwave's word (`initiated`, `accepted`, `declined`, `won`, `lost`, or another).
    pub status: String,
    pub stage: String,
    pub due_at: Option<i64>,
    pub comment: Option<String>,
    /// Entries in Flutterwave's history of it.
    pub history_len: i64,
}

impl ChargebackFacts {
    /// Waiting for the merchant's answer (the statuses the due-date queries count as open).
    pub fn is_open(&self) -> bool {
        matches!(self.status.as_str(), "initiated" | "pending")
    }
}

/// What chargebacks hold or took back: every one not won (Flutterwave debits the amount when one opens).
pub fn charged_back(rows: &[ChargebackRow]) -> Decimal {
    rows.iter().filter(|k| k.facts.status != "won").map(|k| k.facts.amount).sum()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargebackRow {
    pub facts: ChargebackFacts,
    pub first_seen_at: i64,
    pub updated_at: i64,
}

/// Open chargebacks against the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChargebacksDue {
    pub open: i64,
    pub due_soon: i64,
    pub overdue: i64,
}

/// What recording a chargeback changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// First seen.
    Opened,
    /// Its status moved (from, to).
    Moved(String, String),
    /// Nothing Sika shows changed.
    Same,
}

fn row(r: &sqlx::any::AnyRow) -> Result<ChargebackRow, sqlx::Error> {
    let currency: Option<String> = r.try_get("currency")?;
    Ok(ChargebackRow {
        facts: ChargebackFacts {
            id: r.try_get("id")?,
            checkout_reference: r.try_get("checkout_reference")?,
            transaction_id: r.try_get("transaction_id")?,
            flw_ref: r.try_get("flw_ref")?,
            amount: decode(r, "amount", |s| s.parse::<Decimal>().ok())?,
            currency: currency.as_deref().and_then(Currency::parse),
            status: r.try_get("status")?,
            stage: r.try_get("stage")?,
            due_at: r.try_get("due_at")?,
            comment: r.try_get("comment")?,
            history_len: r.try_get("history_seen")?,
        },
        first_seen_at: r.try_get("first_seen_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

const SELECT: &str = "SELECT id, checkout_reference, transaction_id, flw_ref, amount, currency, status, stage, due_at, \
                      comment, history_seen, first_seen_at, updated_at FROM chargebacks";

/// The shop's event for a chargeback reaching `status`, if it hears of that one.
fn event(status: &str, opened: bool) -> Option<&'static str> {
    if opened {
        return Some("chargeback.opened");
    }
    match status {
        "won" => Some("chargeback.won"),
        "lost" => Some("chargeback.lost"),
        _ => None,
    }
}

impl Store {
    /// Records what Flutterwave listed: inserts a new chargeback or updates a known one;
    /// a change of status goes on the checkout's timeline and, when the shop hears of it
    /// (opened, won, lost), into the outbox — all in one transaction.
    pub async fn record_chargeback(&self, f: &ChargebackFacts) -> Result<Recorded, StoreError> {
        let mut tx = self.begin_write().await?;
        let lock = self.backend().row_lock();
        let known = sqlx::query(&format!("{SELECT} WHERE id = $1{lock}"))
            .bind(f.id)
            .fetch_optional(&mut *tx)
            .await?
            .as_ref()
            .map(row)
            .transpose()?;
        let now = now_ms();
        let result = match &known {
            None => {
                let r = sqlx::query(
                    "INSERT INTO chargebacks (id, checkout_reference, transaction_id, flw_ref, amount, currency, status, \
                     stage, due_at, comment, history_seen, first_seen_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) ON CONFLICT (id) DO NOTHING",
                )
                .bind(f.id)
                .bind(f.checkout_reference.as_deref())
                .bind(f.transaction_id)
                .bind(&f.flw_ref)
                .bind(f.amount.to_string())
                .bind(f.currency.map(|c| c.code()))
                .bind(&f.status)
                .bind(&f.stage)
                .bind(f.due_at)
                .bind(f.comment.as_deref())
                .bind(f.history_len)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                if r.rows_affected() == 1 { Recorded::Opened } else { Recorded::Same }
            }
            Some(k) => {
                sqlx::query(
                    "UPDATE chargebacks SET checkout_reference = COALESCE(checkout_reference, $1), status = $2, stage = $3, \
                     due_at = $4, comment = $5, history_seen = $6, amount = $7, updated_at = $8 WHERE id = $9",
                )
                .bind(f.checkout_reference.as_deref())
                .bind(&f.status)
                .bind(&f.stage)
                .bind(f.due_at)
                .bind(f.comment.as_deref())
                .bind(f.history_len)
                .bind(f.amount.to_string())
                .bind(now)
                .bind(f.id)
                .execute(&mut *tx)
                .await?;
                if k.facts.status == f.status {
                    Recorded::Same
                } else {
                    Recorded::Moved(k.facts.status.clone(), f.status.clone())
                }
            }
        };
        let reference = f.checkout_reference.clone().or_else(|| known.and_then(|k| k.facts.checkout_reference));
        let (opened, moved_to) = match &result {
            Recorded::Opened => (true, Some(f.status.as_str())),
            Recorded::Moved(_, to) => (false, Some(to.as_str())),
            Recorded::Same => (false, None),
        };
        if let (Some(reference), Some(to)) = (reference.as_deref(), moved_to) {
            let detail = format!("chargeback {} of {} ({}, stage {})", f.id, f.amount, to, f.stage);
            let kind = if opened { "chargeback.opened" } else { "chargeback.moved" };
            Timeline::Checkout.add_in(&mut tx, reference, kind, &detail).await?;
        }
        // The shop hears only of chargebacks against its own checkouts.
        if let (Some(name), Some(_)) = (moved_to.and_then(|to| event(to, opened)), reference.as_deref()) {
            let payload = serde_json::json!({
                "event": name, "chargeback_id": f.id, "reference": reference, "status": f.status, "stage": f.stage,
                "amount": f.amount.to_string(), "currency": f.currency, "due_at": f.due_at,
            });
            insert_outbox(&mut tx, &format!("chargeback-{}", f.id), &Notification { event: name, payload }).await?;
        }
        tx.commit().await?;
        Ok(result)
    }

    pub async fn chargeback(&self, id: i64) -> Result<Option<ChargebackRow>, StoreError> {
        let r = sqlx::query(&format!("{SELECT} WHERE id = $1")).bind(id).fetch_optional(self.pool()).await?;
        Ok(r.as_ref().map(row).transpose()?)
    }

    /// A checkout's chargebacks, oldest first.
    pub async fn chargebacks_of(&self, reference: &str) -> Result<Vec<ChargebackRow>, StoreError> {
        let rows = sqlx::query(&format!("{SELECT} WHERE checkout_reference = $1 ORDER BY first_seen_at, id"))
            .bind(reference)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }

    /// Open chargebacks (waiting for the merchant's answer): how many, how many are due
    /// before `soon`, how many are past due at `now`.
    pub async fn chargebacks_due(&self, now: i64, soon: i64) -> Result<ChargebacksDue, StoreError> {
        let r = sqlx::query(
            "SELECT COUNT(*) AS open, \
             COALESCE(SUM(CASE WHEN due_at IS NOT NULL AND due_at >= $1 AND due_at < $2 THEN 1 ELSE 0 END), 0) AS soon, \
             COALESCE(SUM(CASE WHEN due_at IS NOT NULL AND due_at < $1 THEN 1 ELSE 0 END), 0) AS overdue \
             FROM chargebacks WHERE status IN ('initiated', 'pending')",
        )
        .bind(now)
        .bind(soon)
        .fetch_one(self.pool())
        .await?;
        Ok(ChargebacksDue { open: r.try_get("open")?, due_soon: r.try_get("soon")?, overdue: r.try_get("overdue")? })
    }

    /// Every chargeback: open ones first, soonest due first; then the rest, latest change first.
    pub async fn chargebacks_listed(&self, limit: i64) -> Result<Vec<ChargebackRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "{SELECT} ORDER BY CASE WHEN status IN ('initiated', 'pending') THEN 0 ELSE 1 END, \
             CASE WHEN status IN ('initiated', 'pending') THEN due_at ELSE -updated_at END, id LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }

    /// Chargebacks still waiting for the merchant's answer, soonest due first.
    pub async fn chargebacks_open(&self, limit: i64) -> Result<Vec<ChargebackRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "{SELECT} WHERE status IN ('initiated', 'pending') ORDER BY due_at IS NULL, due_at, id LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }
}
