//! Chargeback answers: recorded awaiting approval (with their audit entry), approved
//! through the one approval transaction (`approvals.rs`), claimed once for sending,
//! then finished as Flutterwave answered. At most one live answer per chargeback.

use rust_decimal::Decimal;
use sqlx::Row as _;

use super::approvals::{ApprovalTable, Facts};
use super::timeline::Timeline;
use super::{AuditDraft, Backend, Store, StoreError, Tx, decode, now_ms};
use crate::domain::chargeback::{AnswerApproved, ChargebackAnswers, EvidenceKind};
use crate::domain::{AnswerStatus, Currency};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerRow {
    pub reference: String,
    pub chargeback_id: i64,
    /// `accept` or `decline`.
    pub action: String,
    pub comment: String,
    /// The evidence file, sealed (`FieldCipher`), until it is sent.
    pub evidence_enc: Option<String>,
    pub evidence_kind: Option<EvidenceKind>,
    pub currency: Currency,
    pub status: AnswerStatus,
    pub created_by: String,
    pub approvals_needed: i64,
    pub proof_link: Option<String>,
    pub failure: Option<String>,
    /// The chargeback's due date: not approved by then, it expires.
    pub expires_at: i64,
    pub sent_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What recording an approval of an answer did.
pub type AnswerWrite = super::Written<ChargebackAnswers>;

const SELECT: &str = "SELECT reference, chargeback_id, action, comment, evidence_enc, evidence_kind, currency, status, \
                      created_by, approvals_needed, proof_link, failure, expires_at, sent_at, created_at, updated_at \
                      FROM chargeback_answers";

/// Answers that still stand (a new one may be prepared only when none does).
const LIVE: &str = "('awaiting_approval', 'queued', 'unknown', 'sent')";

fn row(r: &sqlx::any::AnyRow) -> Result<AnswerRow, sqlx::Error> {
    let kind: Option<String> = r.try_get("evidence_kind")?;
    Ok(AnswerRow {
        reference: r.try_get("reference")?,
        chargeback_id: r.try_get("chargeback_id")?,
        action: r.try_get("action")?,
        comment: r.try_get("comment")?,
        evidence_enc: r.try_get("evidence_enc")?,
        evidence_kind: kind.as_deref().and_then(EvidenceKind::parse),
        currency: decode(r, "currency", Currency::parse)?,
        status: decode(r, "status", AnswerStatus::parse)?,
        created_by: r.try_get("created_by")?,
        approvals_needed: r.try_get("approvals_needed")?,
        proof_link: r.try_get("proof_link")?,
        failure: r.try_get("failure")?,
        expires_at: r.try_get("expires_at")?,
        sent_at: r.try_get("sent_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// The checkout whose timeline tells of the chargeback's answer, if any.
async fn checkout_of(tx: &mut Tx, chargeback_id: i64) -> Result<Option<String>, StoreError> {
    let r: Option<Option<String>> = sqlx::query_scalar("SELECT checkout_reference FROM chargebacks WHERE id = $1")
        .bind(chargeback_id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(r.flatten())
}

async fn tell(tx: &mut Tx, chargeback_id: i64, kind: &str, detail: &str) -> Result<(), StoreError> {
    if let Some(reference) = checkout_of(tx, chargeback_id).await? {
        Timeline::Checkout.add_in(tx, &reference, kind, detail).await?;
    }
    Ok(())
}

impl ApprovalTable for ChargebackAnswers {
    type Row = AnswerRow;
    const APPROVALS: &'static str = "chargeback_answer_approvals";
    const MISSING: &'static str = "no such answer";

    async fn lock(tx: &mut Tx, backend: Backend, reference: &str) -> Result<Option<AnswerRow>, StoreError> {
        let lock = if backend == Backend::Postgres { " FOR UPDATE" } else { "" };
        let select = format!("{SELECT} WHERE reference = $1{lock}");
        Ok(sqlx::query(&select).bind(reference).fetch_optional(&mut **tx).await?.as_ref().map(row).transpose()?)
    }

    fn facts(a: &AnswerRow) -> (AnswerStatus, Facts) {
        // An answer moves no money of ours: nothing to fit, nothing to hold.
        let facts = Facts {
            created_by: a.created_by.clone(),
            approvals_needed: a.approvals_needed,
            currency: a.currency,
            amount: Decimal::ZERO,
        };
        (a.status, facts)
    }

    async fn held(_: &mut Tx, _: Backend, _: &AnswerRow) -> Result<Decimal, StoreError> {
        Ok(Decimal::ZERO)
    }

    fn hold(_: &AnswerRow) -> Decimal {
        Decimal::ZERO
    }

    async fn queue(tx: &mut Tx, a: &AnswerRow, _: Decimal) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE chargeback_answers SET status = 'queued', updated_at = $1 WHERE reference = $2 AND status = 'awaiting_approval'",
        )
        .bind(now_ms())
        .bind(&a.reference)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn event(tx: &mut Tx, a: &AnswerRow, approver: &str, queued: bool) -> Result<(), StoreError> {
        let detail = match queued {
            true => format!("the answer ({}) to chargeback {} approved by user:{approver}", a.action, a.chargeback_id),
            false => {
                format!("the answer to chargeback {} approved by user:{approver}; another is needed", a.chargeback_id)
            }
        };
        tell(tx, a.chargeback_id, "chargeback.answer.approved", &detail).await
    }
}

impl Store {
    /// Records an answer awaiting approval, with its audit entry; `false` (nothing
    /// written) when the chargeback already has an answer that stands.
    pub async fn insert_answer(&self, a: &AnswerRow, audit: AuditDraft) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        if self.backend() == Backend::Postgres {
            // One preparer at a time per chargeback: the check below then sees every live answer.
            sqlx::query("SELECT id FROM chargebacks WHERE id = $1 FOR UPDATE")
                .bind(a.chargeback_id)
                .execute(&mut *tx)
                .await?;
        }
        let live: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM chargeback_answers WHERE chargeback_id = $1 AND status IN {LIVE}"
        ))
        .bind(a.chargeback_id)
        .fetch_one(&mut *tx)
        .await?;
        if live > 0 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO chargeback_answers (reference, chargeback_id, action, comment, evidence_enc, evidence_kind, currency, \
             status, created_by, approvals_needed, expires_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'awaiting_approval', $8, $9, $10, $11, $11)",
        )
        .bind(&a.reference)
        .bind(a.chargeback_id)
        .bind(&a.action)
        .bind(&a.comment)
        .bind(a.evidence_enc.as_deref())
        .bind(a.evidence_kind.map(|k| k.as_str()))
        .bind(a.currency.code())
        .bind(&a.created_by)
        .bind(a.approvals_needed)
        .bind(a.expires_at)
        .bind(a.created_at)
        .execute(&mut *tx)
        .await?;
        let detail =
            format!("an answer ({}) to chargeback {} prepared; an approver must send it", a.action, a.chargeback_id);
        tell(&mut tx, a.chargeback_id, "chargeback.answer.prepared", &detail).await?;
        audit.append_in(&mut tx, self.backend()).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn answer(&self, reference: &str) -> Result<Option<AnswerRow>, StoreError> {
        let r =
            sqlx::query(&format!("{SELECT} WHERE reference = $1")).bind(reference).fetch_optional(self.pool()).await?;
        Ok(r.as_ref().map(row).transpose()?)
    }

    /// A chargeback's answers, newest first.
    pub async fn answers_for(&self, chargeback_id: i64) -> Result<Vec<AnswerRow>, StoreError> {
        let rows = sqlx::query(&format!("{SELECT} WHERE chargeback_id = $1 ORDER BY created_at DESC, reference"))
            .bind(chargeback_id)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }

    pub async fn answers_awaiting_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM chargeback_answers WHERE status = 'awaiting_approval'")
            .fetch_one(self.pool())
            .await?)
    }

    /// The chargeback an answer is to (read inside a change's transaction).
    async fn chargeback_of(tx: &mut Tx, reference: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT chargeback_id FROM chargeback_answers WHERE reference = $1")
            .bind(reference)
            .fetch_one(&mut **tx)
            .await?)
    }

    pub async fn answer_approvals(&self, reference: &str) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT user_id FROM chargeback_answer_approvals WHERE reference = $1 ORDER BY at")
            .bind(reference)
            .fetch_all(self.pool())
            .await?)
    }

    /// Records an approval under the rule (`approve_outgoing`).
    pub async fn approve_answer(
        &self,
        reference: &str,
        approver: &crate::domain::approval::Approver<'_>,
        audit: AuditDraft,
    ) -> Result<AnswerWrite, StoreError> {
        self.approve_outgoing::<ChargebackAnswers>(reference, approver, Decimal::ZERO, audit).await
    }

    /// Closes an answer awaiting approval (`rejected` or `expired`), with `audit` when a person did it.
    pub async fn close_answer(
        &self,
        reference: &str,
        to: AnswerStatus,
        why: &str,
        audit: Option<AuditDraft>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE chargeback_answers SET status = $1, failure = $2, updated_at = $3 \
             WHERE reference = $4 AND status = 'awaiting_approval'",
        )
        .bind(to.as_str())
        .bind(why)
        .bind(now_ms())
        .bind(reference)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        let id = Self::chargeback_of(&mut tx, reference).await?;
        tell(&mut tx, id, &format!("chargeback.answer.{to}"), why).await?;
        if let Some(a) = audit {
            a.append_in(&mut tx, self.backend()).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    pub async fn answers_unapproved_expired(&self, now: i64, limit: i64) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT reference FROM chargeback_answers WHERE status = 'awaiting_approval' AND expires_at <= $1 LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    pub async fn answers_queued(&self, limit: i64) -> Result<Vec<(AnswerRow, Vec<String>)>, StoreError> {
        let rows = sqlx::query(&format!("{SELECT} WHERE status = 'queued' ORDER BY updated_at LIMIT $1"))
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        let mut out = Vec::new();
        for r in &rows {
            let a = row(r)?;
            let approvers = self.answer_approvals(&a.reference).await?;
            out.push((a, approvers));
        }
        Ok(out)
    }

    /// Answers sent without a definite answer, to look up.
    pub async fn answers_unknown(&self, limit: i64) -> Result<Vec<AnswerRow>, StoreError> {
        let rows = sqlx::query(&format!("{SELECT} WHERE status = 'unknown' ORDER BY updated_at LIMIT $1"))
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }

    /// A queued answer the rule does not consent to goes back for approval.
    pub async fn requeue_answer(&self, reference: &str, why: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE chargeback_answers SET status = 'awaiting_approval', failure = $1, updated_at = $2 \
             WHERE reference = $3 AND status = 'queued'",
        )
        .bind(why)
        .bind(now_ms())
        .bind(reference)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Marks the moment the answer itself may reach Flutterwave (after the evidence is uploaded).
    pub async fn answer_attempted(&self, reference: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE chargeback_answers SET sent_at = $1, updated_at = $1 WHERE reference = $2 AND status = 'unknown'",
        )
        .bind(now_ms())
        .bind(reference)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// queued → unknown, only with the rule's proof: this caller sends it, once
    /// across instances; until Flutterwave answers it is `unknown` — a crash here
    /// leaves it to be looked up, never sent again.
    pub async fn claim_answer(&self, approved: &AnswerApproved) -> Result<bool, StoreError> {
        let now = now_ms();
        let r = sqlx::query(
            "UPDATE chargeback_answers SET status = 'unknown', updated_at = $1 WHERE reference = $2 AND status = 'queued'",
        )
        .bind(now)
        .bind(approved.reference().as_str())
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Where the evidence went (uploaded, before the answer is sent): kept so a retry never uploads twice.
    pub async fn answer_proof(&self, reference: &str, link: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE chargeback_answers SET proof_link = $1, updated_at = $2 WHERE reference = $3")
            .bind(link)
            .bind(now_ms())
            .bind(reference)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// unknown → sent or failed, as Flutterwave answered; the sealed evidence is dropped once sent.
    pub async fn finish_answer(
        &self,
        reference: &str,
        to: AnswerStatus,
        note: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE chargeback_answers SET status = $1, failure = $2, updated_at = $3, \
             evidence_enc = CASE WHEN $1 = 'sent' THEN NULL ELSE evidence_enc END \
             WHERE reference = $4 AND status = 'unknown'",
        )
        .bind(to.as_str())
        .bind(note)
        .bind(now_ms())
        .bind(reference)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        let id = Self::chargeback_of(&mut tx, reference).await?;
        let detail = match (to, note) {
            (AnswerStatus::Sent, _) => format!("the answer to chargeback {id} was sent to Flutterwave"),
            (_, Some(why)) => format!("Flutterwave refused the answer to chargeback {id}: {why}"),
            _ => format!("the answer to chargeback {id} was not taken"),
        };
        tell(&mut tx, id, &format!("chargeback.answer.{to}"), &detail).await?;
        tx.commit().await?;
        Ok(true)
    }
}
