//! Card fundings (a card's first load, fundings, withdrawals): approved
//! like payouts — the rule decided inside one transaction that locks the row
//! and the currency's holds — then claimed by one sender with the proof.
//! Every move is conditional on the state it leaves, and each is written to
//! the card's timeline in the same transaction.

use rust_decimal::Decimal;
use sqlx::Row as _;

use super::payouts::held_in;
use super::timeline::Timeline;
use super::{Backend, CardRow, Store, StoreError, decode, now_ms};
use crate::domain::card::{CardFundings, FundingApproved};
use crate::domain::{Currency, FundingKind, FundingStatus, approval::Approver};

#[derive(Debug, Clone)]
pub struct FundingRow {
    pub reference: String,
    pub card_reference: String,
    pub kind: FundingKind,
    pub amount: Decimal,
    pub currency: Currency,
    pub fingerprint: String,
    pub status: FundingStatus,
    /// `user:<id>` or `api_key:<id>`: the maker, who may not approve it.
    pub created_by: String,
    pub approvals_needed: i64,
    pub hold: Decimal,
    pub reason: Option<String>,
    pub flw_txn_id: Option<String>,
    pub expires_at: i64,
    pub sent_at: Option<i64>,
    pub checks: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

macro_rules! select_fundings {
    ($tail:literal) => {
        concat!(
            "SELECT reference, card_reference, kind, amount, currency, fingerprint, status, created_by, ",
            "approvals_needed, hold, reason, flw_txn_id, expires_at, sent_at, checks, created_at, updated_at ",
            "FROM card_fundings ",
            $tail
        )
    };
}

fn row(r: &sqlx::any::AnyRow) -> Result<FundingRow, sqlx::Error> {
    Ok(FundingRow {
        reference: r.try_get("reference")?,
        card_reference: r.try_get("card_reference")?,
        kind: decode(r, "kind", FundingKind::parse)?,
        amount: decode(r, "amount", |a| a.parse::<Decimal>().ok())?,
        currency: decode(r, "currency", |c| c.parse::<Currency>().ok())?,
        fingerprint: r.try_get("fingerprint")?,
        status: decode(r, "status", FundingStatus::parse)?,
        created_by: r.try_get("created_by")?,
        approvals_needed: r.try_get("approvals_needed")?,
        hold: decode(r, "hold", |a| a.parse::<Decimal>().ok())?,
        reason: r.try_get("reason")?,
        flw_txn_id: r.try_get("flw_txn_id")?,
        expires_at: r.try_get("expires_at")?,
        sent_at: r.try_get("sent_at")?,
        checks: r.try_get("checks")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// What recording an approval of a funding did: `Short` when the wallet
/// (load, fund) or the card (withdraw) does not have it.
pub type FundingWrite = super::Written<CardFundings>;

impl super::approvals::ApprovalTable for CardFundings {
    type Row = FundingRow;
    const APPROVALS: &'static str = "card_funding_approvals";
    const MISSING: &'static str = "no such funding";

    async fn lock(tx: &mut super::Tx, backend: Backend, reference: &str) -> Result<Option<FundingRow>, StoreError> {
        let select = match backend {
            Backend::Postgres => select_fundings!("WHERE reference = $1 FOR UPDATE"),
            Backend::Sqlite => select_fundings!("WHERE reference = $1"),
        };
        Ok(sqlx::query(select).bind(reference).fetch_optional(&mut **tx).await?.as_ref().map(row).transpose()?)
    }

    fn facts(f: &FundingRow) -> (FundingStatus, super::approvals::Facts) {
        let facts = super::approvals::Facts {
            created_by: f.created_by.clone(),
            approvals_needed: f.approvals_needed,
            currency: f.currency,
            amount: f.amount,
        };
        (f.status, facts)
    }

    /// A load or funding takes from the wallet (holds shared with payouts);
    /// a withdrawal from the card (approved withdrawals not yet made).
    async fn held(tx: &mut super::Tx, backend: Backend, f: &FundingRow) -> Result<Decimal, StoreError> {
        if f.kind.debits_wallet() {
            held_in(tx, f.currency).await
        } else {
            withdrawals_in_flight(tx, backend, &f.card_reference).await
        }
    }

    fn hold(f: &FundingRow) -> Decimal {
        if f.kind.debits_wallet() { f.amount } else { Decimal::ZERO }
    }

    async fn queue(tx: &mut super::Tx, f: &FundingRow, hold: Decimal) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE card_fundings SET status = 'queued', hold = $1, updated_at = $2 \
             WHERE reference = $3 AND status = 'awaiting_approval'",
        )
        .bind(hold.to_string())
        .bind(now_ms())
        .bind(&f.reference)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn event(tx: &mut super::Tx, f: &FundingRow, approver: &str, queued: bool) -> Result<(), StoreError> {
        let detail = match queued {
            true if f.kind.debits_wallet() => format!(
                "{} {} approved by user:{approver}; {} {} held on the wallet",
                f.kind, f.reference, f.amount, f.currency
            ),
            true => format!("{} {} approved by user:{approver}", f.kind, f.reference),
            false => format!("{} {} approved by user:{approver}; another approver is needed", f.kind, f.reference),
        };
        card_event(tx, &f.card_reference, "approved", &detail).await
    }
}

async fn card_event(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    card: &str,
    kind: &str,
    detail: &str,
) -> Result<(), StoreError> {
    Timeline::Card.add_in(tx, card, kind, detail).await
}

async fn insert(tx: &mut sqlx::Transaction<'static, sqlx::Any>, f: &FundingRow) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "INSERT INTO card_fundings (reference, card_reference, kind, amount, currency, fingerprint, status, \
         created_by, approvals_needed, expires_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) ON CONFLICT (reference) DO NOTHING",
    )
    .bind(&f.reference)
    .bind(&f.card_reference)
    .bind(f.kind.as_str())
    .bind(f.amount.to_string())
    .bind(f.currency.code())
    .bind(&f.fingerprint)
    .bind(f.status.as_str())
    .bind(&f.created_by)
    .bind(f.approvals_needed)
    .bind(f.expires_at)
    .bind(f.created_at)
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// What approved withdrawals not yet final will take off a card (the card's
/// row locked on PostgreSQL, so two approvals of one card queue).
async fn withdrawals_in_flight(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
    card: &str,
) -> Result<Decimal, StoreError> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT reference FROM cards WHERE reference = $1 FOR UPDATE")
            .bind(card)
            .fetch_optional(&mut **tx)
            .await?;
    }
    let amounts: Vec<String> = sqlx::query_scalar(
        "SELECT amount FROM card_fundings WHERE card_reference = $1 AND kind = 'withdraw' AND status IN ('queued', 'unknown')",
    )
    .bind(card)
    .fetch_all(&mut **tx)
    .await?;
    super::sum_amounts("the card's withdrawals in flight", &amounts)
}

impl Store {
    /// A new card awaiting approval with its first load, in one transaction;
    /// `false` when the reference exists.
    pub async fn insert_card_with_load(
        &self,
        card: &CardRow,
        load: &FundingRow,
        audit: super::AuditDraft,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "INSERT INTO cards (reference, fingerprint, status, currency, amount, name_on_card, holder_enc, api_key_id, \
             created_at, updated_at, next_check_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10) \
             ON CONFLICT (reference) DO NOTHING",
        )
        .bind(&card.reference)
        .bind(&card.fingerprint)
        .bind(card.status.as_str())
        .bind(card.currency.code())
        .bind(card.amount.to_string())
        .bind(&card.name_on_card)
        .bind(&card.holder_enc)
        .bind(&card.api_key_id)
        .bind(card.created_at)
        .bind(card.created_at + 30_000)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 || !insert(&mut tx, load).await? {
            return Ok(false);
        }
        let detail = format!("asked for, with a first load of {} {} awaiting approval", load.amount, load.currency);
        card_event(&mut tx, &card.reference, "requested", &detail).await?;
        audit.append_in(&mut tx, self.backend()).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// A funding or withdrawal awaiting approval; `false` when the reference exists.
    pub async fn insert_funding(&self, f: &FundingRow, audit: super::AuditDraft) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        if !insert(&mut tx, f).await? {
            return Ok(false);
        }
        let detail = format!("{} of {} {} ({}) awaiting approval", f.kind, f.amount, f.currency, f.reference);
        card_event(&mut tx, &f.card_reference, "requested", &detail).await?;
        audit.append_in(&mut tx, self.backend()).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn funding(&self, reference: &str) -> Result<Option<FundingRow>, StoreError> {
        let r =
            sqlx::query(select_fundings!("WHERE reference = $1")).bind(reference).fetch_optional(self.pool()).await?;
        Ok(r.as_ref().map(row).transpose()?)
    }

    /// A card's fundings, oldest first.
    pub async fn card_fundings(&self, card_reference: &str) -> Result<Vec<FundingRow>, StoreError> {
        let rows = sqlx::query(select_fundings!("WHERE card_reference = $1 ORDER BY created_at, reference"))
            .bind(card_reference)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }

    /// Fundings waiting for approvers, oldest first.
    pub async fn fundings_awaiting(&self, limit: i64) -> Result<Vec<FundingRow>, StoreError> {
        let rows = sqlx::query(select_fundings!("WHERE status = 'awaiting_approval' ORDER BY created_at LIMIT $1"))
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }

    pub async fn fundings_awaiting_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM card_fundings WHERE status = 'awaiting_approval'")
            .fetch_one(self.pool())
            .await?)
    }

    pub async fn funding_approvals(&self, reference: &str) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT user_id FROM card_funding_approvals WHERE reference = $1 ORDER BY at")
            .bind(reference)
            .fetch_all(self.pool())
            .await?)
    }

    /// Records an approval (`approve_outgoing`). A load or funding must fit
    /// in `available` (the wallet's available balance, read just before) less
    /// what is held already; a withdrawal in `available` (the card's balance,
    /// read just before) less the approved withdrawals of that card not yet
    /// made. `audit` commits with it.
    pub async fn approve_card_funding(
        &self,
        reference: &str,
        approver: &Approver<'_>,
        available: Decimal,
        audit: super::AuditDraft,
    ) -> Result<FundingWrite, StoreError> {
        self.approve_outgoing::<CardFundings>(reference, approver, available, audit).await
    }

    /// awaiting_approval → rejected | expired; a refused first load fails its card.
    pub async fn close_funding(
        &self,
        reference: &str,
        to: FundingStatus,
        reason: &str,
        audit: Option<super::AuditDraft>,
    ) -> Result<bool, StoreError> {
        if !matches!(to, FundingStatus::Rejected | FundingStatus::Expired) {
            return Ok(false);
        }
        let mut tx = self.begin_write().await?;
        let Some(f) = sqlx::query(select_fundings!("WHERE reference = $1"))
            .bind(reference)
            .fetch_optional(&mut *tx)
            .await?
            .as_ref()
            .map(row)
            .transpose()?
        else {
            return Ok(false);
        };
        let r = sqlx::query(
            "UPDATE card_fundings SET status = $1, reason = $2, updated_at = $3 \
             WHERE reference = $4 AND status = 'awaiting_approval'",
        )
        .bind(to.as_str())
        .bind(reason)
        .bind(now_ms())
        .bind(reference)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        card_event(&mut tx, &f.card_reference, to.as_str(), &format!("{} {}: {reason}", f.kind, f.reference)).await?;
        if f.kind == FundingKind::Load {
            sqlx::query(
                "UPDATE cards SET status = 'failed', failure = $1, updated_at = $2 \
                 WHERE reference = $3 AND status = 'awaiting_approval'",
            )
            .bind(format!("its first load was {to}: {reason}"))
            .bind(now_ms())
            .bind(&f.card_reference)
            .execute(&mut *tx)
            .await?;
            card_event(&mut tx, &f.card_reference, "failed", "nothing was created at Flutterwave").await?;
        }
        if let Some(a) = audit {
            a.append_in(&mut tx, self.backend()).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    pub async fn fundings_unapproved_expired(&self, now: i64, limit: i64) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT reference FROM card_fundings WHERE status = 'awaiting_approval' AND expires_at <= $1 \
             ORDER BY expires_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// Queued fundings, oldest first, with their recorded approvers.
    pub async fn fundings_queued(&self, limit: i64) -> Result<Vec<(FundingRow, Vec<String>)>, StoreError> {
        let rows = sqlx::query(select_fundings!("WHERE status = 'queued' ORDER BY updated_at LIMIT $1"))
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        let mut out = Vec::new();
        for r in &rows {
            let f = row(r)?;
            let approvers = self.funding_approvals(&f.reference).await?;
            out.push((f, approvers));
        }
        Ok(out)
    }

    /// queued → unknown, only with the rule's proof: the funding is this
    /// caller's to send (one sender across instances), and until Flutterwave
    /// answers it is `unknown` — a crash here leaves it to be looked up,
    /// never sent again. A first load moves its card to `creating` with it.
    pub async fn claim_funding(&self, approved: &FundingApproved, look_again_at: i64) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let now = now_ms();
        let r = sqlx::query(
            "UPDATE card_fundings SET status = 'unknown', sent_at = $1, next_check_at = $2, updated_at = $1 \
             WHERE reference = $3 AND status = 'queued'",
        )
        .bind(now)
        .bind(look_again_at)
        .bind(approved.reference().as_str())
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        let (card, kind): (String, String) =
            sqlx::query_as("SELECT card_reference, kind FROM card_fundings WHERE reference = $1")
                .bind(approved.reference().as_str())
                .fetch_one(&mut *tx)
                .await?;
        let who = approved.approvers().iter().map(|a| format!("user:{a}")).collect::<Vec<_>>().join(", ");
        card_event(&mut tx, &card, "sending", &format!("{kind} {} (approved by {who})", approved.reference())).await?;
        if kind == FundingKind::Load.as_str() {
            let moved = sqlx::query(
                "UPDATE cards SET status = 'creating', updated_at = $1 WHERE reference = $2 AND status = 'awaiting_approval'",
            )
            .bind(now)
            .bind(&card)
            .execute(&mut *tx)
            .await?;
            if moved.rows_affected() != 1 {
                // The card is not waiting for its load any more: send nothing.
                return Ok(false);
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// A queued funding whose approvals do not meet the rule goes back to
    /// awaiting approval, its hold released: nothing is sent.
    pub async fn requeue_funding(&self, reference: &str, why: &str) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE card_fundings SET status = 'awaiting_approval', hold = '0', reason = $1, updated_at = $2 \
             WHERE reference = $3 AND status = 'queued'",
        )
        .bind(why)
        .bind(now_ms())
        .bind(reference)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// unknown → succeeded | failed, with the card transaction that shows it
    /// (at most one funding per transaction: `false` if it settles another).
    pub async fn settle_funding(
        &self,
        reference: &str,
        to: FundingStatus,
        flw_txn_id: Option<&str>,
        detail: &str,
    ) -> Result<bool, StoreError> {
        if !matches!(to, FundingStatus::Succeeded | FundingStatus::Failed) {
            return Ok(false);
        }
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE card_fundings SET status = $1, flw_txn_id = $2, reason = $3, hold = '0', updated_at = $4 \
             WHERE reference = $5 AND status = 'unknown'",
        )
        .bind(to.as_str())
        .bind(flw_txn_id)
        .bind(detail)
        .bind(now_ms())
        .bind(reference)
        .execute(&mut *tx)
        .await;
        let moved = match r {
            Ok(r) => r.rows_affected() == 1,
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => false,
            Err(e) => return Err(e.into()),
        };
        if !moved {
            return Ok(false);
        }
        let (card, kind, amount, currency): (String, String, String, String) =
            sqlx::query_as("SELECT card_reference, kind, amount, currency FROM card_fundings WHERE reference = $1")
                .bind(reference)
                .fetch_one(&mut *tx)
                .await?;
        let what = format!("{kind} {reference} of {amount} {currency} {to}: {detail}");
        card_event(&mut tx, &card, &format!("{kind}_{to}"), &what).await?;
        let event = match (kind.as_str(), to) {
            ("withdraw", FundingStatus::Succeeded) => "card.withdrawn",
            ("withdraw", _) => "card.withdrawal_failed",
            (_, FundingStatus::Succeeded) => "card.funded",
            _ => "card.funding_failed",
        };
        let extra = serde_json::json!({"funding": reference, "kind": kind, "amount": amount,
                                       "transaction_id": flw_txn_id, "message": detail});
        super::cards::card_note(&mut tx, &card, event, reference, extra).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Fundings and withdrawals sent without a definite answer, due a lookup.
    pub async fn fundings_to_follow(&self, now: i64, limit: i64) -> Result<Vec<FundingRow>, StoreError> {
        let rows = sqlx::query(select_fundings!(
            "WHERE status = 'unknown' AND kind <> 'load' AND next_check_at <= $1 ORDER BY next_check_at LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }

    /// Is this card transaction the proof of a funding already?
    pub async fn funding_by_txn(&self, flw_txn_id: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT reference FROM card_fundings WHERE flw_txn_id = $1")
            .bind(flw_txn_id)
            .fetch_optional(self.pool())
            .await?)
    }

    pub async fn funding_checked(&self, reference: &str, next: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE card_fundings SET checks = checks + 1, next_check_at = $1 WHERE reference = $2")
            .bind(next)
            .bind(reference)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
