//! Virtual card rows: never a card number or CVV (see `0010_cards.sql`).
//! Every change of status is conditional on the status it leaves.

use rust_decimal::Decimal;
use sqlx::Row as _;

use super::timeline::Timeline;
use super::{Store, StoreError, decode, now_ms};
use crate::domain::CardStatus;

#[derive(Debug, Clone)]
pub struct CardRow {
    pub reference: String,
    pub fingerprint: String,
    pub flw_id: Option<String>,
    pub status: CardStatus,
    pub currency: crate::domain::Currency,
    pub amount: Decimal,
    pub name_on_card: String,
    pub masked_pan: Option<String>,
    pub card_type: Option<String>,
    pub holder_enc: String,
    pub api_key_id: String,
    pub failure: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub checks: i64,
}

macro_rules! select_cards {
    ($tail:literal) => {
        concat!(
            "SELECT reference, fingerprint, flw_id, status, currency, amount, name_on_card, masked_pan, card_type, ",
            "holder_enc, api_key_id, failure, created_at, updated_at, checks FROM cards ",
            $tail
        )
    };
}

fn row(r: &sqlx::any::AnyRow) -> Result<CardRow, sqlx::Error> {
    Ok(CardRow {
        reference: r.try_get("reference")?,
        fingerprint: r.try_get("fingerprint")?,
        flw_id: r.try_get("flw_id")?,
        status: decode(r, "status", CardStatus::parse)?,
        currency: super::decode(r, "currency", |c| c.parse::<crate::domain::Currency>().ok())?,
        amount: decode(r, "amount", |a| a.parse::<Decimal>().ok())?,
        name_on_card: r.try_get("name_on_card")?,
        masked_pan: r.try_get("masked_pan")?,
        card_type: r.try_get("card_type")?,
        holder_enc: r.try_get("holder_enc")?,
        api_key_id: r.try_get("api_key_id")?,
        failure: r.try_get("failure")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        checks: r.try_get("checks")?,
    })
}

/// A list of cards: only the filters set reach the SQL.
#[derive(Debug, Clone, Default)]
pub struct CardQuery {
    pub status: Option<CardStatus>,
    /// A reference fragment.
    pub search: Option<String>,
    /// The last row of the previous page: (created_at, reference).
    pub after: Option<(i64, String)>,
    pub limit: i64,
}

/// What Flutterwave said a card is, as Sika keeps it (no number, no CVV).
#[derive(Debug, Clone)]
pub struct CardFacts {
    pub flw_id: String,
    pub masked_pan: Option<String>,
    pub card_type: Option<String>,
}

impl Store {
    pub async fn card(&self, reference: &str) -> Result<Option<CardRow>, StoreError> {
        let r = sqlx::query(select_cards!("WHERE reference = $1")).bind(reference).fetch_optional(self.pool()).await?;
        Ok(r.as_ref().map(row).transpose()?)
    }

    pub async fn card_by_flw_id(&self, flw_id: &str) -> Result<Option<CardRow>, StoreError> {
        let r = sqlx::query(select_cards!("WHERE flw_id = $1")).bind(flw_id).fetch_optional(self.pool()).await?;
        Ok(r.as_ref().map(row).transpose()?)
    }

    /// One page of cards, newest first, and how many match in all.
    pub async fn cards_query(&self, q: &CardQuery) -> Result<(Vec<CardRow>, i64), StoreError> {
        use super::list_query::{Value, contains_pattern};
        let mut w = super::list_query::Where::default();
        w.and_some("status = ?", q.status.map(CardStatus::as_str));
        if let Some(f) = &q.search {
            w.and("reference LIKE ? ESCAPE '\\'", [Value::Text(contains_pattern(f))]);
        }
        let total: i64 = w
            .bind(sqlx::query(&format!("SELECT COUNT(*) AS n FROM cards {}", w.sql())))
            .fetch_one(self.pool())
            .await?
            .try_get("n")?;
        w.after_cursor(q.after.as_ref());
        let sql = w.newest_first(select_cards!(""));
        let rows = w.bind(sqlx::query(&sql)).bind(q.limit).fetch_all(self.pool()).await?;
        Ok((rows.iter().map(row).collect::<Result<_, _>>()?, total))
    }

    /// Cards whose creation is being followed (`creating`, `unknown`), due now.
    pub async fn cards_due(&self, now: i64, limit: i64) -> Result<Vec<CardRow>, StoreError> {
        let rows = sqlx::query(select_cards!(
            "WHERE status IN ('creating', 'unknown') AND next_check_at <= $1 ORDER BY next_check_at LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }

    /// Links Flutterwave's card to ours and moves it from `from` to `to`,
    /// only if it is still in `from`; `false` otherwise (or when that
    /// Flutterwave card is linked already).
    pub async fn card_linked(
        &self,
        reference: &str,
        from: CardStatus,
        to: CardStatus,
        facts: &CardFacts,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE cards SET flw_id = $1, masked_pan = $2, card_type = $3, status = $4, updated_at = $5, \
             next_check_at = $6 WHERE reference = $7 AND status = $8 AND (flw_id IS NULL OR flw_id = $1)",
        )
        .bind(&facts.flw_id)
        .bind(&facts.masked_pan)
        .bind(&facts.card_type)
        .bind(to.as_str())
        .bind(now)
        .bind(now + 30_000)
        .bind(reference)
        .bind(from.as_str())
        .execute(&mut *tx)
        .await;
        let moved = match r {
            Ok(r) => r.rows_affected() == 1,
            // The unique index: that Flutterwave card belongs to another row already.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => false,
            Err(e) => return Err(e.into()),
        };
        if moved {
            let detail = format!("Flutterwave card {}", facts.flw_id);
            Timeline::Card.add_in(&mut tx, reference, to.as_str(), &detail).await?;
            card_note(&mut tx, reference, "card.created", reference, serde_json::json!({})).await?;
        }
        tx.commit().await?;
        Ok(moved)
    }

    /// Moves a card from `from` to `to` (with a reason), only if it is still in `from`.
    pub async fn card_moved(
        &self,
        reference: &str,
        from: CardStatus,
        to: CardStatus,
        why: &str,
    ) -> Result<bool, StoreError> {
        self.card_moved_audited(reference, from, to, why, None).await
    }

    /// Moves a card `from` → `to` with its timeline entry and, when someone asked for
    /// it, the audit entry — all in one transaction, or none of them.
    pub async fn card_moved_audited(
        &self,
        reference: &str,
        from: CardStatus,
        to: CardStatus,
        why: &str,
        audit: Option<super::AuditDraft>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE cards SET status = $1, failure = CASE WHEN $1 = 'failed' THEN $2 ELSE failure END, updated_at = $3 \
             WHERE reference = $4 AND status = $5",
        )
        .bind(to.as_str())
        .bind(why)
        .bind(now_ms())
        .bind(reference)
        .bind(from.as_str())
        .execute(&mut *tx)
        .await?;
        let moved = r.rows_affected() == 1;
        if moved {
            super::timeline::Timeline::Card.add_in(&mut tx, reference, to.as_str(), why).await?;
            let event = match (from, to) {
                (_, CardStatus::Blocked) => Some("card.blocked"),
                (CardStatus::Blocked, CardStatus::Active) => Some("card.unblocked"),
                (_, CardStatus::Terminated) => Some("card.terminated"),
                (_, CardStatus::Failed) => Some("card.failed"),
                _ => None,
            };
            if let Some(event) = event {
                // A card is blocked and unblocked more than once: its timeline's length tells them apart.
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM card_events WHERE reference = $1")
                    .bind(reference)
                    .fetch_one(&mut *tx)
                    .await?;
                let key = format!("{reference}:{event}:{n}");
                card_note(&mut tx, reference, event, &key, serde_json::json!({"message": why})).await?;
            }
            if let Some(a) = audit {
                a.append_in(&mut tx, self.backend()).await?;
            }
        }
        tx.commit().await?;
        Ok(moved)
    }

    /// Looks again later (a lookup found nothing definite yet).
    pub async fn card_checked(&self, reference: &str, next: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE cards SET checks = checks + 1, next_check_at = $1 WHERE reference = $2")
            .bind(next)
            .bind(reference)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// A card transaction Flutterwave's own list confirmed (a debit, a credit, a declined
    /// purchase): its timeline entry and the shop's notification, once per transaction. One
    /// of Sika's own fundings or withdrawals is told as that funding, not again.
    /// `false` when that transaction was seen before.
    pub async fn card_transaction_seen(
        &self,
        reference: &str,
        kind: &str,
        detail: &str,
        txn_id: &str,
        amount: rust_decimal::Decimal,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let event = match kind {
            "debit" => "card.debited",
            "declined" => "card.declined",
            _ => "card.credited",
        };
        let ours: Option<String> = sqlx::query_scalar("SELECT reference FROM card_fundings WHERE flw_txn_id = $1")
            .bind(txn_id)
            .fetch_optional(&mut *tx)
            .await?;
        let extra = serde_json::json!({"transaction_id": txn_id, "amount": amount.to_string(), "message": detail});
        let key = format!("cardtxn:{txn_id}");
        // A funding's or withdrawal's own transaction is told as that funding (`card.funded`...).
        let new = ours.is_some() || card_note(&mut tx, reference, event, &key, extra).await?;
        if new {
            Timeline::Card.add_in(&mut tx, reference, kind, &format!("{detail}, transaction {txn_id}")).await?;
        }
        tx.commit().await?;
        Ok(new)
    }

    pub async fn card_event(&self, reference: &str, kind: &str, detail: &str) -> Result<(), StoreError> {
        Timeline::Card.add(self, reference, kind, detail).await
    }

    pub async fn card_events(&self, reference: &str) -> Result<Vec<(i64, String, String)>, StoreError> {
        Timeline::Card.read(self, reference).await
    }
}

/// The shop's notification of a card event, written once per `key` (one occurrence of the event).
/// It says the card's reference, status and currency, never its number. `false` when written before.
pub(super) async fn card_note(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    card_reference: &str,
    event: &'static str,
    key: &str,
    extra: serde_json::Value,
) -> Result<bool, StoreError> {
    let found: Option<(String, String)> = sqlx::query_as("SELECT currency, status FROM cards WHERE reference = $1")
        .bind(card_reference)
        .fetch_optional(&mut **tx)
        .await?;
    let Some((currency, status)) = found else { return Ok(false) };
    let mut payload =
        serde_json::json!({"event": event, "reference": card_reference, "status": status, "currency": currency});
    if let (Some(p), Some(x)) = (payload.as_object_mut(), extra.as_object()) {
        p.extend(x.clone());
    }
    super::checkouts::insert_outbox_once(tx, key, &super::checkouts::Notification { event, payload }).await
}
