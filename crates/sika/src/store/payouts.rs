//! Payouts and their transitions. Like checkouts, every transition is a
//! conditional update in one transaction with its timeline entry (and, for
//! final states, the shop's notification). Approvals and holds are decided
//! under a lock per payout and per currency, so concurrent approvers can
//! neither skip the rule nor overdraw the balance together.

use rust_decimal::Decimal;
use sqlx::Row as _;

use super::checkouts::{Notification, insert_outbox};
use super::list_query::{Value, Where, contains_pattern};
use super::timeline::Timeline;
use super::{Backend, Store, StoreError, decode, now_ms};
use crate::domain::payout::{AccountKind, Approved, Approver, Payouts};
use crate::domain::{Currency, PayoutStatus};

#[derive(Debug, Clone)]
pub struct PayoutRow {
    pub reference: String,
    pub fingerprint: String,
    pub amount: Decimal,
    pub currency: Currency,
    pub fee: Decimal,
    pub country: String,
    pub bank_code: String,
    pub bank_name: Option<String>,
    pub kind: AccountKind,
    pub branch_code: Option<String>,
    pub account_enc: String,
    pub account_mask: String,
    pub given_name_enc: Option<String>,
    pub resolved_name_enc: Option<String>,
    pub name_mismatch: bool,
    pub narration: Option<String>,
    pub meta: Option<String>,
    pub status: PayoutStatus,
    pub created_by: String,
    pub approvals_needed: i64,
    pub hold: Decimal,
    pub transfer_id: Option<i64>,
    pub flw_status: Option<String>,
    pub complete_message: Option<String>,
    pub reason: Option<String>,
    pub retry_of: Option<String>,
    pub batch_id: Option<String>,
    pub beneficiary_id: Option<String>,
    pub expires_at: i64,
    pub checks: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// Since when Flutterwave's status (`flw_status`) has been what it is.
    pub flw_status_at: Option<i64>,
    /// Why a person must look (a lookup that cannot finish); never re-sent meanwhile.
    pub attention: Option<String>,
}

impl PayoutRow {
    /// What the beneficiary receives.
    pub fn money(&self) -> crate::domain::Money {
        crate::domain::Money::new(self.amount, self.currency)
    }

    /// What leaves the balance: the amount and Flutterwave's fee.
    pub fn total(&self) -> Decimal {
        self.amount + self.fee
    }
}

macro_rules! select_payouts {
    ($tail:literal) => {
        concat!(
            "SELECT reference, fingerprint, amount, currency, fee, country, bank_code, bank_name, kind, branch_code, ",
            "account_enc, account_mask, given_name_enc, resolved_name_enc, name_mismatch, narration, meta, status, ",
            "created_by, approvals_needed, hold, transfer_id, flw_status, complete_message, reason, retry_of, batch_id, ",
            "beneficiary_id, expires_at, checks, created_at, updated_at, flw_status_at, attention FROM payouts ",
            $tail
        )
    };
}

fn dec(r: &sqlx::any::AnyRow, column: &str) -> Result<Decimal, sqlx::Error> {
    decode(r, column, |s: &str| s.parse::<Decimal>().ok())
}

pub(super) use select_payouts;

pub(super) fn row(r: &sqlx::any::AnyRow) -> Result<PayoutRow, sqlx::Error> {
    Ok(PayoutRow {
        reference: r.try_get("reference")?,
        fingerprint: r.try_get("fingerprint")?,
        amount: dec(r, "amount")?,
        currency: decode(r, "currency", Currency::parse)?,
        fee: dec(r, "fee")?,
        country: r.try_get("country")?,
        bank_code: r.try_get("bank_code")?,
        bank_name: r.try_get("bank_name")?,
        kind: decode(r, "kind", AccountKind::parse)?,
        branch_code: r.try_get("branch_code")?,
        account_enc: r.try_get("account_enc")?,
        account_mask: r.try_get("account_mask")?,
        given_name_enc: r.try_get("given_name_enc")?,
        resolved_name_enc: r.try_get("resolved_name_enc")?,
        name_mismatch: r.try_get::<i64, _>("name_mismatch")? != 0,
        narration: r.try_get("narration")?,
        meta: r.try_get("meta")?,
        status: decode(r, "status", PayoutStatus::parse)?,
        created_by: r.try_get("created_by")?,
        approvals_needed: r.try_get("approvals_needed")?,
        hold: dec(r, "hold")?,
        transfer_id: r.try_get("transfer_id")?,
        flw_status: r.try_get("flw_status")?,
        complete_message: r.try_get("complete_message")?,
        reason: r.try_get("reason")?,
        retry_of: r.try_get("retry_of")?,
        batch_id: r.try_get("batch_id")?,
        beneficiary_id: r.try_get("beneficiary_id")?,
        expires_at: r.try_get("expires_at")?,
        checks: r.try_get("checks")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        flw_status_at: r.try_get("flw_status_at")?,
        attention: r.try_get("attention")?,
    })
}

/// What recording an approval of a payout did.
pub type ApprovalWrite = super::Written<Payouts>;

impl super::approvals::ApprovalTable for Payouts {
    type Row = PayoutRow;
    const APPROVALS: &'static str = "payout_approvals";
    const MISSING: &'static str = "no such payout";

    async fn lock(tx: &mut super::Tx, backend: Backend, reference: &str) -> Result<Option<PayoutRow>, StoreError> {
        let select = match backend {
            Backend::Postgres => select_payouts!("WHERE reference = $1 FOR UPDATE"),
            Backend::Sqlite => select_payouts!("WHERE reference = $1"),
        };
        Ok(sqlx::query(select).bind(reference).fetch_optional(&mut **tx).await?.as_ref().map(row).transpose()?)
    }

    fn facts(p: &PayoutRow) -> (PayoutStatus, super::approvals::Facts) {
        let facts = super::approvals::Facts {
            created_by: p.created_by.clone(),
            approvals_needed: p.approvals_needed,
            currency: p.currency,
            amount: p.total(),
        };
        (p.status, facts)
    }

    async fn held(tx: &mut super::Tx, _: Backend, p: &PayoutRow) -> Result<Decimal, StoreError> {
        held_in(tx, p.currency).await
    }

    fn hold(p: &PayoutRow) -> Decimal {
        p.total()
    }

    async fn queue(tx: &mut super::Tx, p: &PayoutRow, hold: Decimal) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE payouts SET status = 'queued', hold = $1, updated_at = $2 WHERE reference = $3 AND status = 'awaiting_approval'",
        )
        .bind(hold.to_string())
        .bind(now_ms())
        .bind(&p.reference)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn event(tx: &mut super::Tx, p: &PayoutRow, approver: &str, queued: bool) -> Result<(), StoreError> {
        let detail = if queued {
            format!("by user:{approver}; queued with a hold of {} {}", p.total(), p.currency)
        } else {
            format!("by user:{approver}; another approver is needed")
        };
        event(tx, &p.reference, "approved", &detail).await
    }
}

/// Takes the currency's hold lock for the rest of `tx`: whoever places a hold
/// (payouts, batches, card fundings) sees every hold placed before it. On
/// PostgreSQL an advisory lock per currency; SQLite's `BEGIN IMMEDIATE`
/// already lets one writer in at a time.
pub(super) async fn lock_holds(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
    currency: Currency,
) -> Result<(), StoreError> {
    if backend == Backend::Postgres {
        let index = Currency::ALL.iter().position(|c| *c == currency).unwrap_or(0);
        let key = 0x5169_6b61_0100 + i64::try_from(index).unwrap_or(0);
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(key).execute(&mut **tx).await?;
    }
    Ok(())
}

pub(super) async fn event(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    reference: &str,
    kind: &str,
    detail: &str,
) -> Result<(), StoreError> {
    Timeline::Payout.add_in(tx, reference, kind, detail).await
}

pub(super) async fn held_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    currency: Currency,
) -> Result<Decimal, StoreError> {
    let holds: Vec<String> = sqlx::query_scalar(
        "SELECT hold FROM payouts WHERE currency = $1 AND status IN ('queued', 'submitted', 'unknown')",
    )
    .bind(currency.code())
    .fetch_all(&mut **tx)
    .await?;
    // Card loads and fundings take from the same wallet.
    let cards: Vec<String> = sqlx::query_scalar(
        "SELECT hold FROM card_fundings WHERE currency = $1 AND status IN ('queued', 'unknown') \
         AND kind IN ('load', 'fund')",
    )
    .bind(currency.code())
    .fetch_all(&mut **tx)
    .await?;
    super::sum_amounts("the wallet's holds", holds.iter().chain(&cards))
}

/// A transition's end state and what goes with it.
pub struct Settle<'a> {
    pub to: PayoutStatus,
    pub transfer_id: Option<i64>,
    pub flw_status: Option<&'a str>,
    pub message: Option<&'a str>,
    pub event: &'a str,
    pub detail: &'a str,
    pub note: Option<Notification>,
    /// When to look at it again (reversal watch after success); `None` for never.
    pub next_check_at: Option<i64>,
}

impl Store {
    /// Inserts a payout unless its reference exists (`false` when it did), with
    /// its first timeline lines (`events`) and the maker's audit entry in the
    /// same transaction.
    pub async fn insert_payout(
        &self,
        p: &PayoutRow,
        events: &[(&str, String)],
        audit: Option<super::AuditDraft>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "INSERT INTO payouts (reference, fingerprint, amount, currency, fee, country, bank_code, bank_name, kind, \
             branch_code, account_enc, account_mask, given_name_enc, resolved_name_enc, name_mismatch, narration, meta, \
             status, created_by, approvals_needed, transfer_id, retry_of, batch_id, beneficiary_id, expires_at, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
             $17, $18, $19, $20, NULL, $21, $22, $23, $24, $25, $25) ON CONFLICT (reference) DO NOTHING",
        )
        .bind(&p.reference)
        .bind(&p.fingerprint)
        .bind(p.amount.to_string())
        .bind(p.currency.code())
        .bind(p.fee.to_string())
        .bind(&p.country)
        .bind(&p.bank_code)
        .bind(&p.bank_name)
        .bind(p.kind.as_str())
        .bind(&p.branch_code)
        .bind(&p.account_enc)
        .bind(&p.account_mask)
        .bind(&p.given_name_enc)
        .bind(&p.resolved_name_enc)
        .bind(i64::from(p.name_mismatch))
        .bind(&p.narration)
        .bind(&p.meta)
        .bind(p.status.as_str())
        .bind(&p.created_by)
        .bind(p.approvals_needed)
        .bind(&p.retry_of)
        .bind(&p.batch_id)
        .bind(&p.beneficiary_id)
        .bind(p.expires_at)
        .bind(p.created_at)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        event(&mut tx, &p.reference, "created", &format!("by {}", p.created_by)).await?;
        for (kind, detail) in events {
            event(&mut tx, &p.reference, kind, detail).await?;
        }
        if let Some(a) = audit {
            a.append_in(&mut tx, self.backend()).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    pub async fn payout(&self, reference: &str) -> Result<Option<PayoutRow>, StoreError> {
        let r =
            sqlx::query(select_payouts!("WHERE reference = $1")).bind(reference).fetch_optional(self.pool()).await?;
        Ok(r.as_ref().map(row).transpose()?)
    }

    pub async fn payout_by_transfer(&self, transfer_id: i64) -> Result<Option<PayoutRow>, StoreError> {
        let r = sqlx::query(select_payouts!("WHERE transfer_id = $1"))
            .bind(transfer_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(r.as_ref().map(row).transpose()?)
    }

    /// Newest first, after `cursor` (`created_at`, `reference` of the last row
    /// seen), optionally only references containing `search` (letters, digits, `_`, `-`).
    pub async fn payouts_page(
        &self,
        status: Option<PayoutStatus>,
        search: Option<&str>,
        cursor: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<PayoutRow>, StoreError> {
        let q = PayoutQuery { status, search: search.map(str::to_string), after: cursor, limit, ..Default::default() };
        Ok(self.payouts_query(&q).await?.0)
    }

    /// One page of payouts, newest first, after the cursor, and how many match
    /// in all. Only the filters set reach the SQL (see `list_query`).
    pub async fn payouts_query(&self, q: &PayoutQuery) -> Result<(Vec<PayoutRow>, i64), StoreError> {
        let mut w = Where::default();
        w.and_some("status = ?", q.status.map(PayoutStatus::as_str));
        w.and_some("currency = ?", q.currency.map(Currency::code));
        w.created_between(q.from_ms, q.to_ms);
        if let Some(f) = &q.search {
            w.and("reference LIKE ? ESCAPE '\\'", [Value::Text(contains_pattern(f))]);
        }
        let total: i64 = w
            .bind(sqlx::query(&format!("SELECT COUNT(*) AS n FROM payouts {}", w.sql())))
            .fetch_one(self.pool())
            .await?
            .try_get("n")?;
        w.after_cursor(q.after.as_ref());
        let sql = w.newest_first(select_payouts!(""));
        let rows = w.bind(sqlx::query(&sql)).bind(q.limit).fetch_all(self.pool()).await?;
        Ok((rows.iter().map(row).collect::<Result<_, _>>()?, total))
    }

    pub async fn payouts_awaiting_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM payouts WHERE status = 'awaiting_approval'")
            .fetch_one(self.pool())
            .await?)
    }

    pub async fn payout_approvals(&self, reference: &str) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query_as("SELECT user_id, at FROM payout_approvals WHERE reference = $1 ORDER BY at")
            .bind(reference)
            .fetch_all(self.pool())
            .await?)
    }

    pub async fn payout_events(&self, reference: &str) -> Result<Vec<(i64, String, String)>, StoreError> {
        Timeline::Payout.read(self, reference).await
    }

    pub async fn payout_event(&self, reference: &str, kind: &str, detail: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        event(&mut tx, reference, kind, detail).await?;
        tx.commit().await?;
        Ok(())
    }

    /// What is held on a currency's balance by approved payouts not yet final.
    pub async fn payout_holds(&self, currency: Currency) -> Result<Decimal, StoreError> {
        let mut tx = self.begin_read().await?;
        let held = held_in(&mut tx, currency).await?;
        tx.commit().await?;
        Ok(held)
    }

    /// Records an approval (`approve_outgoing`): the hold must fit in
    /// `available`, Flutterwave's available balance read just before, less
    /// what is already held; `audit` commits with it.
    pub async fn approve_payout(
        &self,
        reference: &str,
        approver: &Approver<'_>,
        available: Decimal,
        audit: super::AuditDraft,
    ) -> Result<ApprovalWrite, StoreError> {
        self.approve_outgoing::<Payouts>(reference, approver, available, audit).await
    }

    /// awaiting_approval → rejected | cancelled | expired.
    pub async fn close_unapproved(
        &self,
        reference: &str,
        to: PayoutStatus,
        reason: &str,
        note: Option<Notification>,
        audit: Option<super::AuditDraft>,
    ) -> Result<bool, StoreError> {
        if !matches!(to, PayoutStatus::Rejected | PayoutStatus::Cancelled | PayoutStatus::Expired) {
            return Ok(false);
        }
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE payouts SET status = $1, reason = $2, updated_at = $3 WHERE reference = $4 AND status = 'awaiting_approval'",
        )
        .bind(to.as_str())
        .bind(reason)
        .bind(now_ms())
        .bind(reference)
        .execute(&mut *tx)
        .await?;
        let moved = r.rows_affected() == 1;
        if moved {
            event(&mut tx, reference, to.as_str(), reason).await?;
            if let Some(n) = note {
                insert_outbox(&mut tx, reference, &n).await?;
            }
            if let Some(a) = audit {
                a.append_in(&mut tx, self.backend()).await?;
            }
        }
        tx.commit().await?;
        Ok(moved)
    }

    /// Payouts awaiting approval past their time.
    pub async fn payouts_unapproved_expired(&self, now: i64, limit: i64) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT reference FROM payouts WHERE status = 'awaiting_approval' AND expires_at <= $1 ORDER BY expires_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// Queued payouts, oldest first, with their recorded approvers.
    pub async fn payouts_queued(&self, limit: i64) -> Result<Vec<(PayoutRow, Vec<String>)>, StoreError> {
        let rows = sqlx::query(select_payouts!("WHERE status = 'queued' ORDER BY updated_at LIMIT $1"))
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        let mut out = Vec::new();
        for r in &rows {
            let p = row(r)?;
            let approvers = sqlx::query_scalar("SELECT user_id FROM payout_approvals WHERE reference = $1")
                .bind(&p.reference)
                .fetch_all(self.pool())
                .await?;
            out.push((p, approvers));
        }
        Ok(out)
    }

    /// queued → unknown, only with the approval rule's proof: the payout is
    /// this caller's to send (one sender per reference, across instances),
    /// and until Flutterwave answers definitely it is `unknown` — a crash
    /// here leaves it to be looked up, never sent again.
    pub async fn claim_for_dispatch(&self, approved: &Approved, look_again_at: i64) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE payouts SET status = 'unknown', next_check_at = $1, updated_at = $2 WHERE reference = $3 AND status = 'queued'",
        )
        .bind(look_again_at)
        .bind(now_ms())
        .bind(approved.reference().as_str())
        .execute(&mut *tx)
        .await?;
        let moved = r.rows_affected() == 1;
        if moved {
            let who = approved.approvers().iter().map(|a| format!("user:{a}")).collect::<Vec<_>>().join(", ");
            event(&mut tx, approved.reference(), "dispatching", &format!("approved by {who}")).await?;
        }
        tx.commit().await?;
        Ok(moved)
    }

    /// A queued payout whose recorded approvals do not meet the rule goes back
    /// to awaiting approval, its hold released: nothing is sent.
    pub async fn requeue_for_approval(&self, reference: &str, why: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE payouts SET status = 'awaiting_approval', hold = '0', reason = $1, updated_at = $2 WHERE reference = $3 AND status = 'queued'",
        )
        .bind(why)
        .bind(now_ms())
        .bind(reference)
        .execute(&mut *tx)
        .await?;
        let moved = r.rows_affected() == 1;
        if moved {
            event(&mut tx, reference, "dispatch_refused", why).await?;
        }
        tx.commit().await?;
        Ok(moved)
    }

    /// unknown (never reached Flutterwave) → queued, the hold kept: the
    /// dispatcher sends it again with the same reference (the consent is
    /// checked again from the records).
    pub async fn requeue_unsent(&self, reference: &str, why: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE payouts SET status = 'queued', next_check_at = NULL, attention = NULL, updated_at = $1 WHERE reference = $2 AND status = 'unknown' AND transfer_id IS NULL",
        )
        .bind(now_ms())
        .bind(reference)
        .execute(&mut *tx)
        .await?;
        let moved = r.rows_affected() == 1;
        if moved {
            event(&mut tx, reference, "requeued", why).await?;
        }
        tx.commit().await?;
        Ok(moved)
    }

    /// unknown → submitted: Flutterwave accepted the transfer (queued, not
    /// paid); or, already submitted, what its status at Flutterwave is now.
    /// `flw_status_at` moves only when that status changes, and only a change
    /// goes on the timeline.
    pub async fn payout_submitted(
        &self,
        reference: &str,
        transfer_id: i64,
        flw_status: &str,
        look_again_at: i64,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let before: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT status, flw_status FROM payouts WHERE reference = $1")
                .bind(reference)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((status, was)) = before.filter(|(s, _)| s == "unknown" || s == "submitted") else {
            tx.commit().await?;
            return Ok(false);
        };
        let changed = status == "unknown" || was.as_deref() != Some(flw_status);
        let r = sqlx::query(
            "UPDATE payouts SET status = 'submitted', transfer_id = $1, flw_status = $2, next_check_at = $3, \
             updated_at = $4, checks = checks + 1, attention = NULL, \
             flw_status_at = CASE WHEN flw_status = $2 AND flw_status_at IS NOT NULL THEN flw_status_at ELSE $4 END \
             WHERE reference = $5 AND status IN ('unknown', 'submitted')",
        )
        .bind(transfer_id)
        .bind(flw_status)
        .bind(look_again_at)
        .bind(now)
        .bind(reference)
        .execute(&mut *tx)
        .await?;
        let moved = r.rows_affected() == 1;
        if moved && changed {
            event(&mut tx, reference, "submitted", &format!("transfer {transfer_id}, {flw_status} at Flutterwave"))
                .await?;
        }
        tx.commit().await?;
        Ok(moved && changed)
    }

    /// A person must look at this payout (the reason is kept, and goes on the
    /// timeline once). It is never sent again meanwhile.
    pub async fn payout_needs_attention(&self, reference: &str, why: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE payouts SET attention = $1 WHERE reference = $2 AND (attention IS NULL OR attention <> $1)",
        )
        .bind(why)
        .bind(reference)
        .execute(&mut *tx)
        .await?;
        let fresh = r.rows_affected() == 1;
        if fresh {
            event(&mut tx, reference, "needs_attention", why).await?;
        }
        tx.commit().await?;
        Ok(fresh)
    }

    /// Payouts a person should see: in flight with a reason to look, or
    /// waiting at Flutterwave with `flw_status` (e.g. `NEW`), longest first.
    pub async fn payouts_stuck(&self, flw_status: &str, limit: i64) -> Result<Vec<PayoutRow>, StoreError> {
        let rows = sqlx::query(select_payouts!(
            "WHERE (attention IS NOT NULL AND status IN ('queued', 'submitted', 'unknown')) \
             OR (status = 'submitted' AND flw_status = $1) \
             ORDER BY COALESCE(flw_status_at, updated_at), reference LIMIT $2"
        ))
        .bind(flw_status)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }

    /// How many payouts wait at Flutterwave with `flw_status` (e.g. `NEW`),
    /// since when the oldest has, and how many need a person.
    pub async fn payouts_waiting(&self, flw_status: &str) -> Result<PayoutsWaiting, StoreError> {
        let (waiting, oldest): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(COALESCE(flw_status_at, updated_at)) FROM payouts \
             WHERE status = 'submitted' AND flw_status = $1",
        )
        .bind(flw_status)
        .fetch_one(self.pool())
        .await?;
        let attention: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM payouts WHERE attention IS NOT NULL AND status IN ('queued', 'submitted', 'unknown')",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(PayoutsWaiting { waiting, oldest_since: oldest, attention })
    }

    /// A final transition from Flutterwave's own record: in flight →
    /// successful | failed (the hold released), or successful → reversed.
    pub async fn settle_payout(&self, reference: &str, s: Settle<'_>) -> Result<bool, StoreError> {
        let sql = match s.to {
            PayoutStatus::Successful | PayoutStatus::Failed => {
                "UPDATE payouts SET status = $1, hold = '0', transfer_id = COALESCE($2, transfer_id), \
                 flw_status = COALESCE($3, flw_status), complete_message = COALESCE($4, complete_message), \
                 next_check_at = $5, updated_at = $6, attention = NULL, flw_status_at = $6 \
                 WHERE reference = $7 AND status IN ('submitted', 'unknown')"
            }
            PayoutStatus::Reversed => {
                "UPDATE payouts SET status = $1, hold = '0', transfer_id = COALESCE($2, transfer_id), \
                 flw_status = COALESCE($3, flw_status), complete_message = COALESCE($4, complete_message), \
                 reason = 'reversed by Flutterwave after it succeeded: review', next_check_at = $5, updated_at = $6 \
                 WHERE reference = $7 AND status IN ('successful', 'submitted', 'unknown')"
            }
            _ => return Ok(false),
        };
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(sql)
            .bind(s.to.as_str())
            .bind(s.transfer_id)
            .bind(s.flw_status)
            .bind(s.message)
            .bind(s.next_check_at)
            .bind(now_ms())
            .bind(reference)
            .execute(&mut *tx)
            .await?;
        let moved = r.rows_affected() == 1;
        if moved {
            event(&mut tx, reference, s.event, s.detail).await?;
            if let Some(n) = &s.note {
                insert_outbox(&mut tx, reference, n).await?;
            }
        }
        tx.commit().await?;
        Ok(moved)
    }

    /// In-flight payouts due for a lookup, and successful ones watched for reversal.
    pub async fn payouts_to_follow(&self, now: i64, limit: i64) -> Result<Vec<PayoutRow>, StoreError> {
        let rows = sqlx::query(select_payouts!(
            "WHERE status IN ('submitted', 'unknown', 'successful') AND next_check_at IS NOT NULL AND next_check_at <= $1 \
             ORDER BY next_check_at LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }

    /// Records a lookup and schedules the next one.
    pub async fn payout_checked(&self, reference: &str, next: Option<i64>) -> Result<(), StoreError> {
        sqlx::query("UPDATE payouts SET checks = checks + 1, next_check_at = $1 WHERE reference = $2")
            .bind(next)
            .bind(reference)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// A country's cached bank list (JSON) and when it was fetched.
    pub async fn bank_list(&self, country: &str) -> Result<Option<(String, i64)>, StoreError> {
        Ok(sqlx::query_as("SELECT banks, fetched_at FROM bank_lists WHERE country = $1")
            .bind(country)
            .fetch_optional(self.pool())
            .await?)
    }

    pub async fn set_bank_list(&self, country: &str, banks: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO bank_lists (country, banks, fetched_at) VALUES ($1, $2, $3) \
             ON CONFLICT (country) DO UPDATE SET banks = $2, fetched_at = $3",
        )
        .bind(country)
        .bind(banks)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

/// Payouts waiting at Flutterwave, and those a person must look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayoutsWaiting {
    pub waiting: i64,
    pub oldest_since: Option<i64>,
    pub attention: i64,
}

/// Which payouts a list shows: every filter optional, newest first.
#[derive(Debug, Clone, Default)]
pub struct PayoutQuery {
    pub status: Option<PayoutStatus>,
    pub currency: Option<Currency>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// A reference fragment.
    pub search: Option<String>,
    /// The last row of the previous page: (created_at, reference).
    pub after: Option<(i64, String)>,
    pub limit: i64,
}
