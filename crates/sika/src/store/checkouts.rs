//! Checkouts and their transitions. Every transition is a conditional update
//! (`... WHERE status = 'pending'`) in one transaction with its outbox row, so
//! concurrent webhooks, return visits and reconciler runs produce exactly one
//! transition and one notification.

use rust_decimal::Decimal;
use sqlx::Row as _;

use super::list_query::{Value, Where, contains_pattern};
use super::timeline::Timeline;
use super::{Backend, Store, StoreError, decode, now_ms};
use crate::domain::checkout::Verified;
use crate::domain::{CheckoutStatus, Currency, RefundStatus};

#[derive(Debug, Clone)]
pub struct CheckoutRow {
    pub reference: String,
    pub fingerprint: String,
    pub amount: Decimal,
    pub currency: Currency,
    pub email_enc: String,
    pub name_enc: Option<String>,
    pub phone_enc: Option<String>,
    pub redirect_url: Option<String>,
    pub status: CheckoutStatus,
    pub checkout_url: Option<String>,
    pub transaction_id: Option<i64>,
    pub paid_amount: Option<Decimal>,
    pub review_reason: Option<String>,
    pub api_key_id: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// What completed refunds returned.
    pub refunded: Decimal,
    /// The customer's e-mail as a keyed blind index (exact search without the address).
    pub email_index: Option<String>,
    pub description: Option<String>,
    /// The checkout's own expiry, when sooner than the default.
    pub link_expires_at: Option<i64>,
    /// How the customer paid, from the last verify answer while pending.
    pub payment: PaymentDetails,
}

/// How a customer paid, as Flutterwave's verify answer said: never more of a
/// card than its brand and last four digits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentDetails {
    pub payment_type: Option<String>,
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
    pub fee: Option<Decimal>,
    pub processor_response: Option<String>,
    /// What Flutterwave says it settles to the merchant (`amount_settled`), as sent:
    /// below `amount − fee` (VAT on the fee, stamp duty). Sika never computes it.
    pub settled_amount: Option<Decimal>,
    /// What the customer was charged (`charged_amount`): above the amount when the customer bore the fee.
    pub charged_amount: Option<Decimal>,
}

impl CheckoutRow {
    /// The price the checkout asks.
    pub fn price(&self) -> crate::domain::Money {
        crate::domain::Money::new(self.amount, self.currency)
    }

    pub fn reference(&self) -> crate::domain::Reference {
        crate::domain::Reference::from_stored(self.reference.clone())
    }

    /// What the merchant keeps: paid less completed refunds.
    pub fn net(&self) -> Option<Decimal> {
        self.paid_amount.map(|p| p - self.refunded)
    }
}

/// When the reconciler verifies a pending checkout, after its creation.
pub const RECONCILE_MARKS_MS: [i64; 6] = [60_000, 300_000, 1_800_000, 7_200_000, 43_200_000, 86_400_000];

macro_rules! select_checkouts {
    ($tail:literal) => {
        concat!(
            "SELECT reference, fingerprint, amount, currency, email_enc, name_enc, phone_enc, redirect_url, status, ",
            "checkout_url, transaction_id, paid_amount, review_reason, api_key_id, created_at, updated_at, checks, refunded, ",
            "email_index, description, link_expires_at, payment_type, card_brand, card_last4, fee, processor_response, settled_amount, charged_amount FROM checkouts ",
            $tail
        )
    };
}

fn row(r: &sqlx::any::AnyRow) -> Result<CheckoutRow, sqlx::Error> {
    Ok(CheckoutRow {
        reference: r.try_get("reference")?,
        fingerprint: r.try_get("fingerprint")?,
        amount: decode(r, "amount", |s: &str| s.parse::<Decimal>().ok())?,
        currency: decode(r, "currency", Currency::parse)?,
        email_enc: r.try_get("email_enc")?,
        name_enc: r.try_get("name_enc")?,
        phone_enc: r.try_get("phone_enc")?,
        redirect_url: r.try_get("redirect_url")?,
        status: decode(r, "status", CheckoutStatus::parse)?,
        checkout_url: r.try_get("checkout_url")?,
        transaction_id: r.try_get("transaction_id")?,
        paid_amount: r
            .try_get::<Option<String>, _>("paid_amount")?
            .map(|p| p.parse::<Decimal>().map_err(|e| sqlx::Error::Decode(Box::new(e))))
            .transpose()?,
        review_reason: r.try_get("review_reason")?,
        api_key_id: r.try_get("api_key_id")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        refunded: decode(r, "refunded", |s: &str| s.parse::<Decimal>().ok())?,
        email_index: r.try_get("email_index")?,
        description: r.try_get("description")?,
        link_expires_at: r.try_get("link_expires_at")?,
        payment: PaymentDetails {
            payment_type: r.try_get("payment_type")?,
            card_brand: r.try_get("card_brand")?,
            card_last4: r.try_get("card_last4")?,
            fee: optional_money(r, "fee")?,
            processor_response: r.try_get("processor_response")?,
            settled_amount: optional_money(r, "settled_amount")?,
            charged_amount: optional_money(r, "charged_amount")?,
        },
    })
}

/// An optional money column: absent is `None`; text that is not an amount is
/// an error, never a silent zero.
fn optional_money(r: &sqlx::any::AnyRow, column: &str) -> Result<Option<Decimal>, sqlx::Error> {
    match r.try_get::<Option<String>, _>(column)? {
        None => Ok(None),
        Some(t) => t.parse::<Decimal>().map(Some).map_err(|_| sqlx::Error::ColumnDecode {
            index: column.to_string(),
            source: format!("`{t}` is not an amount").into(),
        }),
    }
}

/// A notification for the shop, written with the transition that caused it.
#[derive(Debug, Clone)]
pub struct Notification {
    pub event: &'static str,
    pub payload: serde_json::Value,
}

impl Store {
    /// Inserts a checkout unless its reference exists; `false` when it did.
    /// Inserts a checkout unless its reference exists (`false` then), with
    /// its first timeline line and, for a payment link made in the console,
    /// its maker's audit entry, in one transaction.
    pub async fn insert_checkout(&self, c: &CheckoutRow, audit: Option<super::AuditDraft>) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "INSERT INTO checkouts (reference, fingerprint, amount, currency, email_enc, name_enc, phone_enc, redirect_url, \
             status, api_key_id, created_at, updated_at, next_check_at, email_index, description, link_expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10, $10, $11, $12, $13, $14) \
             ON CONFLICT (reference) DO NOTHING",
        )
        .bind(&c.reference)
        .bind(&c.fingerprint)
        .bind(c.amount.to_string())
        .bind(c.currency.code())
        .bind(&c.email_enc)
        .bind(&c.name_enc)
        .bind(&c.phone_enc)
        .bind(&c.redirect_url)
        .bind(&c.api_key_id)
        .bind(c.created_at)
        .bind(c.created_at + RECONCILE_MARKS_MS[0])
        .bind(&c.email_index)
        .bind(&c.description)
        .bind(c.link_expires_at)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        insert_event(&mut tx, &c.reference, "created", "").await?;
        if let Some(a) = audit {
            a.append_in(&mut tx, self.backend()).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    pub async fn checkout(&self, reference: &str) -> Result<Option<CheckoutRow>, StoreError> {
        let r =
            sqlx::query(select_checkouts!("WHERE reference = $1")).bind(reference).fetch_optional(self.pool()).await?;
        Ok(r.as_ref().map(row).transpose()?)
    }

    /// The checkout a verified transaction settled.
    pub async fn checkout_by_transaction(&self, transaction_id: i64) -> Result<Option<CheckoutRow>, StoreError> {
        let r = sqlx::query(select_checkouts!("WHERE transaction_id = $1"))
            .bind(transaction_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(r.as_ref().map(row).transpose()?)
    }

    /// Pending checkouts created before `before` whose expiry check is due at
    /// `now` (a deferred one waits for its next try), with whether any attempt
    /// failed and how many expiry checks it had.
    pub async fn checkouts_expired(
        &self,
        before: i64,
        now: i64,
        limit: i64,
    ) -> Result<Vec<ExpiryCandidate>, StoreError> {
        let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            "SELECT c.reference, CASE WHEN EXISTS (SELECT 1 FROM checkout_events e WHERE e.reference = c.reference \
             AND e.kind = 'attempt_failed') THEN 1 ELSE 0 END, c.expiry_checks, c.created_at FROM checkouts c \
             WHERE c.status = 'pending' AND (c.created_at < $1 OR c.link_expires_at <= $2) \
             AND (c.expire_check_at IS NULL OR c.expire_check_at <= $2) \
             ORDER BY c.created_at LIMIT $3",
        )
        .bind(before)
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(reference, failed, checks, created_at)| ExpiryCandidate {
                reference,
                attempts_failed: failed != 0,
                checks,
                created_at,
            })
            .collect())
    }

    /// Expiry got no definite answer: look again at `next`.
    pub async fn defer_expiry(&self, reference: &str, next: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE checkouts SET expire_check_at = $1, expiry_checks = expiry_checks + 1 WHERE reference = $2 AND status = 'pending'",
        )
        .bind(next)
        .bind(reference)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// One page of checkouts, newest first, after the cursor, with how many
    /// match in all. Every filter is optional; only those set reach the SQL,
    /// so the planner can use the index that fits.
    pub async fn checkouts_page(&self, q: &CheckoutQuery) -> Result<(Vec<CheckoutRow>, i64), StoreError> {
        let mut w = Where::default();
        w.and_some("status = ?", q.status.map(CheckoutStatus::as_str));
        w.and_some("currency = ?", q.currency.map(Currency::code));
        w.created_between(q.from_ms, q.to_ms);
        match (&q.reference_contains, q.transaction_id) {
            (Some(f), Some(id)) => w.and(
                "(reference LIKE ? ESCAPE '\\' OR transaction_id = ?)",
                [Value::Text(contains_pattern(f)), Value::Int(id)],
            ),
            (Some(f), None) => w.and("reference LIKE ? ESCAPE '\\'", [Value::Text(contains_pattern(f))]),
            (None, Some(id)) => w.and("transaction_id = ?", [Value::Int(id)]),
            (None, None) => {}
        }
        match q.email_indexes.as_slice() {
            [] => {}
            [a] => w.and("email_index = ?", [Value::Text(a.clone())]),
            [a, b] => w.and("email_index IN (?, ?)", [Value::Text(a.clone()), Value::Text(b.clone())]),
            [a, b, c, ..] => w.and(
                "email_index IN (?, ?, ?)",
                [Value::Text(a.clone()), Value::Text(b.clone()), Value::Text(c.clone())],
            ),
        }
        let total: i64 = w
            .bind(sqlx::query(&format!("SELECT COUNT(*) AS n FROM checkouts {}", w.sql())))
            .fetch_one(self.pool())
            .await?
            .try_get("n")?;
        w.after_cursor(q.after.as_ref());
        let sql = w.newest_first(select_checkouts!(""));
        let rows = w.bind(sqlx::query(&sql)).bind(q.limit).fetch_all(self.pool()).await?;
        Ok((rows.iter().map(row).collect::<Result<_, _>>()?, total))
    }

    /// Checkouts whose customer e-mail has no blind index yet (created before
    /// the index existed), for the one-off backfill.
    pub async fn checkouts_without_email_index(&self, limit: i64) -> Result<Vec<CheckoutRow>, StoreError> {
        let rows = sqlx::query(select_checkouts!("WHERE email_index IS NULL LIMIT $1"))
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }

    pub async fn set_checkout_email_index(&self, reference: &str, index: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE checkouts SET email_index = $1 WHERE reference = $2 AND email_index IS NULL")
            .bind(index)
            .bind(reference)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Records how the customer paid, from a verify answer, while the checkout
    /// is still open (the answer that settles it is the last one kept).
    pub async fn set_payment_details(&self, reference: &str, d: &PaymentDetails) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE checkouts SET payment_type = $1, card_brand = $2, card_last4 = $3, fee = $4, processor_response = $5, \
             settled_amount = $6, charged_amount = $7 WHERE reference = $8 AND status = 'pending'",
        )
        .bind(&d.payment_type)
        .bind(&d.card_brand)
        .bind(&d.card_last4)
        .bind(d.fee.map(|f| f.to_string()))
        .bind(&d.processor_response)
        .bind(d.settled_amount.map(|f| f.to_string()))
        .bind(d.charged_amount.map(|f| f.to_string()))
        .bind(reference)
        .execute(self.pool())
        .await?;
        Ok(())
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

    /// The return page's slot: `true` (and taken) when this pending checkout
    /// was not verified by a return visit in the last `interval_ms`. Atomic,
    /// so concurrent visits, on any instance, cost one call per interval.
    pub async fn claim_return_verify(&self, reference: &str, now: i64, interval_ms: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE checkouts SET return_verify_at = $1 WHERE reference = $2 AND status = 'pending' AND return_verify_at <= $3",
        )
        .bind(now)
        .bind(reference)
        .bind(now - interval_ms)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
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
        Timeline::Checkout.add(self, reference, kind, detail).await
    }

    pub async fn checkout_events(&self, reference: &str) -> Result<Vec<(i64, String, String)>, StoreError> {
        Timeline::Checkout.read(self, reference).await
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
        .bind(proof.reference().as_str())
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
        status: CheckoutStatus,
        transaction_id: Option<i64>,
        reason: &str,
        note: Notification,
    ) -> Result<bool, StoreError> {
        if status == CheckoutStatus::Paid || status == CheckoutStatus::Pending {
            return Ok(false);
        }
        self.transition(reference, From::Pending, status, transaction_id, reason, "", note).await
    }

    /// cancelled | failed → needs_review: money arrived for a checkout already
    /// closed unpaid. Kept for a person, with the shop told, never dropped.
    pub async fn mark_late_payment(
        &self,
        reference: &str,
        transaction_id: i64,
        reason: &str,
        note: Notification,
    ) -> Result<bool, StoreError> {
        self.transition(
            reference,
            From::ClosedUnpaid,
            CheckoutStatus::NeedsReview,
            Some(transaction_id),
            reason,
            "late_payment",
            note,
        )
        .await
    }

    /// One conditional transition with its outbox row and timeline entry.
    #[allow(clippy::too_many_arguments)]
    async fn transition(
        &self,
        reference: &str,
        from: From,
        to: CheckoutStatus,
        transaction_id: Option<i64>,
        reason: &str,
        event_kind: &str,
        note: Notification,
    ) -> Result<bool, StoreError> {
        let sql = match from {
            From::Pending => {
                "UPDATE checkouts SET status = $1, transaction_id = COALESCE($2, transaction_id), review_reason = $3, \
                 updated_at = $4 WHERE reference = $5 AND status = 'pending'"
            }
            From::ClosedUnpaid => {
                "UPDATE checkouts SET status = $1, transaction_id = COALESCE($2, transaction_id), review_reason = $3, \
                 updated_at = $4 WHERE reference = $5 AND status IN ('cancelled', 'failed')"
            }
        };
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(sql)
            .bind(to.as_str())
            .bind(transaction_id)
            .bind(reason)
            .bind(now_ms())
            .bind(reference)
            .execute(&mut *tx)
            .await?;
        let moved = r.rows_affected() == 1;
        if moved {
            insert_outbox(&mut tx, reference, &note).await?;
            let kind = if event_kind.is_empty() { to.as_str() } else { event_kind };
            insert_event(&mut tx, reference, kind, reason).await?;
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

/// Which states a transition may start from (each is one static SQL condition).
#[derive(Debug, Clone, Copy)]
enum From {
    Pending,
    ClosedUnpaid,
}

/// A pending checkout past its expiry time.
#[derive(Debug, Clone)]
pub struct ExpiryCandidate {
    pub reference: String,
    pub attempts_failed: bool,
    /// Expiry checks so far that got no definite answer.
    pub checks: i64,
    pub created_at: i64,
}
/// [`insert_outbox`] for an event that may be seen again (a card transaction's webhook):
/// `false`, and nothing written, when that (event, reference) was already written.
pub(super) async fn insert_outbox_once(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    reference: &str,
    note: &Notification,
) -> Result<bool, StoreError> {
    let seen: Option<String> = sqlx::query_scalar("SELECT id FROM outbox WHERE event = $1 AND reference = $2")
        .bind(note.event)
        .bind(reference)
        .fetch_optional(&mut **tx)
        .await?;
    if seen.is_some() {
        return Ok(false);
    }
    insert_outbox(tx, reference, note).await?;
    Ok(true)
}

pub(super) async fn insert_outbox(
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
    Timeline::Checkout.add_in(tx, reference, kind, detail).await
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
    /// Claims up to `limit` notifications due at `now` by pushing their next
    /// attempt out by `lease_ms`, so two instances never send one at once.
    pub async fn outbox_claim(&self, now: i64, limit: i64, lease_ms: i64) -> Result<Vec<OutboxRow>, StoreError> {
        let mut tx = self.begin_write().await?;
        let select = match self.backend() {
            Backend::Postgres => select_outbox!(
                "WHERE delivered_at IS NULL AND dead = 0 AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2 \
                 FOR UPDATE SKIP LOCKED"
            ),
            Backend::Sqlite => select_outbox!(
                "WHERE delivered_at IS NULL AND dead = 0 AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2"
            ),
        };
        let rows = sqlx::query(select).bind(now).bind(limit).fetch_all(&mut *tx).await?;
        let rows: Vec<OutboxRow> = rows.iter().map(outbox_row).collect::<Result<_, _>>()?;
        for r in &rows {
            sqlx::query("UPDATE outbox SET next_attempt_at = $1 WHERE id = $2")
                .bind(now + lease_ms)
                .bind(&r.id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(rows)
    }

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

    /// An admin replays a notification, delivered or not: it is sent again
    /// now, with the same event id (the shop de-duplicates on it), and retried
    /// for three days from now.
    /// Sends a notification again (same event id), with the audit entry of
    /// whoever asked in the same transaction (none when there is no such one).
    pub async fn outbox_replay(&self, id: &str, audit: Option<super::AuditDraft>) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE outbox SET dead = 0, delivered_at = NULL, attempts = 0, created_at = $1, next_attempt_at = $1 WHERE id = $2",
        )
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        if let Some(a) = audit {
            a.append_in(&mut tx, self.backend()).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRow {
    pub id: String,
    pub reference: String,
    pub transaction_id: i64,
    pub amount: Decimal,
    pub status: RefundStatus,
    pub flw_refund_id: Option<i64>,
    /// Flutterwave's own status text, as last seen.
    pub flw_status: Option<String>,
    pub note: Option<String>,
    /// The reason the approver gave.
    pub comment: Option<String>,
    pub requested_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub checks: i64,
}

fn refund_row(r: &sqlx::any::AnyRow) -> Result<RefundRow, sqlx::Error> {
    Ok(RefundRow {
        id: r.try_get("id")?,
        reference: r.try_get("reference")?,
        transaction_id: r.try_get("transaction_id")?,
        amount: decode(r, "amount", |s: &str| s.parse::<Decimal>().ok())?,
        status: decode(r, "status", RefundStatus::parse)?,
        flw_refund_id: r.try_get("flw_refund_id")?,
        flw_status: r.try_get("flw_status")?,
        note: r.try_get("note")?,
        comment: r.try_get("comment")?,
        requested_by: r.try_get("requested_by")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        checks: r.try_get("checks")?,
    })
}

macro_rules! select_refunds {
    ($tail:literal) => {
        concat!(
            "SELECT id, reference, transaction_id, amount, status, flw_refund_id, flw_status, note, comment, ",
            "requested_by, created_at, updated_at, checks FROM refunds ",
            $tail
        )
    };
}

/// Why a refund was not recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundRefusal {
    NoSuchCheckout,
    NotPaid,
    /// It would exceed what was paid; what may still be refunded.
    TooMuch {
        refundable: Decimal,
    },
}

impl Store {
    /// Records a refund request, refusing one that would exceed what was paid
    /// (counting every refund not definitely failed). The checkout's row is
    /// locked for the check and the insert (`FOR UPDATE` on PostgreSQL; SQLite
    /// holds its write lock from `BEGIN IMMEDIATE`), so concurrent requests
    /// are serialised per checkout and can never over-refund together.
    pub async fn insert_refund(
        &self,
        reference: &str,
        amount: Decimal,
        comment: &str,
        requested_by: &str,
        audit: Option<super::AuditDraft>,
    ) -> Result<Result<RefundRow, RefundRefusal>, StoreError> {
        let mut tx = self.begin_write().await?;
        let lock = match self.backend() {
            Backend::Postgres => {
                "SELECT status, transaction_id, paid_amount FROM checkouts WHERE reference = $1 FOR UPDATE"
            }
            Backend::Sqlite => "SELECT status, transaction_id, paid_amount FROM checkouts WHERE reference = $1",
        };
        let found: Option<(String, Option<i64>, Option<String>)> =
            sqlx::query_as(lock).bind(reference).fetch_optional(&mut *tx).await?;
        let Some((_, transaction_id, _)) = found else { return Ok(Err(RefundRefusal::NoSuchCheckout)) };
        let (Some(transaction_id), Some(paid)) = (transaction_id, refund_cap(&mut tx, reference).await?) else {
            return Ok(Err(RefundRefusal::NotPaid));
        };
        let held = held_refunds(&mut tx, reference).await?;
        if held + amount > paid {
            return Ok(Err(RefundRefusal::TooMuch { refundable: (paid - held).max(Decimal::ZERO) }));
        }
        let now = now_ms();
        let r = RefundRow {
            id: crate::crypto::random::hex_id(),
            reference: reference.into(),
            transaction_id,
            amount,
            status: RefundStatus::Requested,
            flw_refund_id: None,
            flw_status: None,
            note: None,
            comment: Some(comment.to_string()).filter(|c| !c.is_empty()),
            requested_by: requested_by.into(),
            created_at: now,
            updated_at: now,
            checks: 0,
        };
        sqlx::query(
            "INSERT INTO refunds (id, reference, transaction_id, amount, status, comment, requested_by, created_at, updated_at, next_check_at) \
             VALUES ($1, $2, $3, $4, 'requested', $5, $6, $7, $7, $8)",
        )
        .bind(&r.id)
        .bind(reference)
        .bind(transaction_id)
        .bind(amount.to_string())
        .bind(&r.comment)
        .bind(requested_by)
        .bind(now)
        // If the process stops before Flutterwave answers, the follower looks it up.
        .bind(now + REFUND_FIRST_CHECK_MS)
        .execute(&mut *tx)
        .await?;
        insert_event(&mut tx, reference, "refund_requested", &amount.to_string()).await?;
        if let Some(a) = audit {
            a.append_in(&mut tx, self.backend()).await?;
        }
        tx.commit().await?;
        Ok(Ok(r))
    }

    /// What may still be refunded: paid (or, under review, received) less every refund not
    /// definitely failed. `None`: no such checkout.
    pub async fn refundable(&self, reference: &str) -> Result<Option<Decimal>, StoreError> {
        if self.checkout(reference).await?.is_none() {
            return Ok(None);
        }
        let mut tx = self.begin_read().await?;
        let Some(paid) = refund_cap(&mut tx, reference).await? else {
            tx.commit().await?;
            return Ok(Some(Decimal::ZERO));
        };
        let held = held_refunds(&mut tx, reference).await?;
        tx.commit().await?;
        Ok(Some((paid - held).max(Decimal::ZERO)))
    }

    /// Moves a refund that is not final yet. Reaching `completed` adds its
    /// amount to the checkout's refunded total in the same transaction;
    /// `false` when it was already final (another follower got there first).
    pub async fn update_refund(&self, id: &str, u: &RefundUpdate<'_>) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE refunds SET status = $1, flw_refund_id = COALESCE($2, flw_refund_id), flw_status = COALESCE($3, flw_status), \
             note = $4, updated_at = $5, next_check_at = $6, checks = checks + $7 WHERE id = $8 AND status NOT IN ('completed', 'failed')",
        )
        .bind(u.status.as_str())
        .bind(u.flw_refund_id)
        .bind(u.flw_status)
        .bind(u.note)
        .bind(now_ms())
        .bind(if u.status.is_final() { None } else { u.next_check_at })
        .bind(i64::from(u.checked))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let moved = r.rows_affected() == 1;
        if moved && u.status.is_final() {
            let (reference, amount): (String, String) =
                sqlx::query_as("SELECT reference, amount FROM refunds WHERE id = $1")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
            if u.status == RefundStatus::Completed {
                // Locked: completions of two refunds at once must both count.
                let select = match self.backend() {
                    Backend::Postgres => "SELECT refunded FROM checkouts WHERE reference = $1 FOR UPDATE",
                    Backend::Sqlite => "SELECT refunded FROM checkouts WHERE reference = $1",
                };
                let refunded: String = sqlx::query_scalar(select).bind(&reference).fetch_one(&mut *tx).await?;
                let total =
                    refunded.parse::<Decimal>().unwrap_or_default() + amount.parse::<Decimal>().unwrap_or_default();
                sqlx::query("UPDATE checkouts SET refunded = $1, updated_at = $2 WHERE reference = $3")
                    .bind(total.normalize().to_string())
                    .bind(now_ms())
                    .bind(&reference)
                    .execute(&mut *tx)
                    .await?;
            }
            let kind = if u.status == RefundStatus::Completed { "refunded" } else { "refund_failed" };
            insert_event(&mut tx, &reference, kind, &amount).await?;
        }
        tx.commit().await?;
        Ok(moved)
    }

    pub async fn refund(&self, id: &str) -> Result<Option<RefundRow>, StoreError> {
        let r = sqlx::query(select_refunds!("WHERE id = $1")).bind(id).fetch_optional(self.pool()).await?;
        Ok(r.as_ref().map(refund_row).transpose()?)
    }

    pub async fn refund_by_flw_id(&self, flw_refund_id: i64) -> Result<Option<RefundRow>, StoreError> {
        let r = sqlx::query(select_refunds!("WHERE flw_refund_id = $1"))
            .bind(flw_refund_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(r.as_ref().map(refund_row).transpose()?)
    }

    pub async fn refunds(&self, reference: &str) -> Result<Vec<RefundRow>, StoreError> {
        let rows = sqlx::query(select_refunds!("WHERE reference = $1 ORDER BY created_at"))
            .bind(reference)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(refund_row).collect::<Result<_, _>>()?)
    }

    /// Refunds not final whose next look is due.
    pub async fn refunds_to_follow(&self, now: i64, limit: i64) -> Result<Vec<RefundRow>, StoreError> {
        let rows = sqlx::query(select_refunds!(
            "WHERE status NOT IN ('completed', 'failed') AND next_check_at IS NOT NULL AND next_check_at <= $1 \
             ORDER BY next_check_at LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(refund_row).collect::<Result<_, _>>()?)
    }
}

/// A refund's move: its new state, what Flutterwave said, when to look again.
#[derive(Debug, Clone)]
pub struct RefundUpdate<'a> {
    pub status: RefundStatus,
    pub flw_refund_id: Option<i64>,
    pub flw_status: Option<&'a str>,
    pub note: Option<&'a str>,
    pub next_check_at: Option<i64>,
    /// Counts as one more follow-up look.
    pub checked: bool,
}

/// The first follow-up look at a refund that has no final answer.
pub const REFUND_FIRST_CHECK_MS: i64 = 60_000;

/// The most a checkout's refunds may add up to: what was verified paid, or — for a checkout
/// under review — what verify said arrived, when it arrived in the checkout's own currency
/// (a refund is in the checkout's currency). `None`: nothing may be refunded.
async fn refund_cap(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    reference: &str,
) -> Result<Option<Decimal>, StoreError> {
    // status, currency, paid_amount, received_amount, received_currency
    type Row = (String, String, Option<String>, Option<String>, Option<String>);
    let row: Option<Row> = sqlx::query_as(
        "SELECT status, currency, paid_amount, received_amount, received_currency FROM checkouts WHERE reference = $1",
    )
    .bind(reference)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((status, currency, paid, received, received_currency)) = row else { return Ok(None) };
    let amount = match CheckoutStatus::parse(&status) {
        Some(CheckoutStatus::Paid) => paid,
        Some(CheckoutStatus::NeedsReview) if received_currency.as_deref() == Some(currency.as_str()) => received,
        _ => None,
    };
    Ok(amount.and_then(|a| a.parse::<Decimal>().ok()))
}

impl Store {
    /// Records what verify said arrived for a checkout under review (for its refund's cap).
    pub async fn set_received_for_review(
        &self,
        reference: &str,
        transaction_id: i64,
        amount: Decimal,
        currency: &str,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE checkouts SET received_amount = $1, received_currency = $2 \
             WHERE reference = $3 AND status = 'needs_review' AND transaction_id = $4",
        )
        .bind(amount.to_string())
        .bind(currency.trim().to_ascii_uppercase())
        .bind(reference)
        .bind(transaction_id)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// (amount, currency) verify said arrived for a checkout under review, if recorded.
    pub async fn received_for_review(&self, reference: &str) -> Result<Option<(Decimal, String)>, StoreError> {
        let r: Option<(Option<String>, Option<String>)> =
            sqlx::query_as("SELECT received_amount, received_currency FROM checkouts WHERE reference = $1")
                .bind(reference)
                .fetch_optional(self.pool())
                .await?;
        Ok(r.and_then(|(a, c)| Some((a?.parse().ok()?, c?))))
    }
}

async fn held_refunds(tx: &mut sqlx::Transaction<'static, sqlx::Any>, reference: &str) -> Result<Decimal, StoreError> {
    let amounts: Vec<String> =
        sqlx::query_scalar("SELECT amount FROM refunds WHERE reference = $1 AND status <> 'failed'")
            .bind(reference)
            .fetch_all(&mut **tx)
            .await?;
    super::sum_amounts("the checkout's refunds", &amounts)
}

/// Which checkouts a list shows: every filter optional, newest first.
#[derive(Debug, Clone, Default)]
pub struct CheckoutQuery {
    pub status: Option<CheckoutStatus>,
    pub currency: Option<Currency>,
    /// Created at or after (ms).
    pub from_ms: Option<i64>,
    /// Created before (ms).
    pub to_ms: Option<i64>,
    pub reference_contains: Option<String>,
    /// A transaction id typed in the same search box (matched with the reference, either one).
    pub transaction_id: Option<i64>,
    /// The customer e-mail's blind indexes under the current and older keys (at most three are used).
    pub email_indexes: Vec<String>,
    /// The last row of the previous page: (created_at, reference).
    pub after: Option<(i64, String)>,
    pub limit: i64,
}
