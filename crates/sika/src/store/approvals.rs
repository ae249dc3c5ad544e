//! The approval transaction, one for every kind of outgoing money
//! (`domain::approval::Outgoing`): the request's row and its currency's holds
//! locked, the approvals already recorded read, the rule applied, the money
//! checked when the last consent completes it, the approval, the timeline
//! event and the audit entry written — all in one transaction. A kind of
//! outgoing money says only what differs: its tables, what it must fit in,
//! and how its timeline reads.

use rust_decimal::Decimal;
use serde_json::json;

use super::{AuditDraft, Backend, Store, StoreError, Tx, now_ms};
use crate::domain::Currency;
use crate::domain::approval::{Approval, Approved, Approver, Outgoing, Pending, approve, needed_from_stored};

/// What recording an approval did.
pub enum Written<K> {
    /// Recorded; this many more approvers are needed.
    Recorded { still_needed: usize },
    /// Complete: queued to be sent, with its hold.
    Queued(Approved<K>),
    /// The rule refused it (nothing written).
    Refused(String),
    /// It does not fit: available, already held or in flight, this amount (nothing written).
    Short { available: Decimal, held: Decimal, amount: Decimal },
}

impl<K> std::fmt::Debug for Written<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Written::Recorded { still_needed } => write!(f, "Recorded {{ still_needed: {still_needed} }}"),
            Written::Queued(a) => write!(f, "Queued({a:?})"),
            Written::Refused(why) => write!(f, "Refused({why:?})"),
            Written::Short { available, held, amount } => {
                write!(f, "Short {{ available: {available}, held: {held}, amount: {amount} }}")
            }
        }
    }
}

impl<K> Written<K> {
    /// The audit log's word for it.
    pub fn result(&self) -> &'static str {
        match self {
            Written::Recorded { .. } => "recorded",
            Written::Queued(_) => "queued",
            Written::Refused(_) => "refused",
            Written::Short { .. } => "short",
        }
    }
}

/// A request's facts the approval transaction needs.
pub(super) struct Facts {
    pub created_by: String,
    pub approvals_needed: i64,
    pub currency: Currency,
    pub amount: Decimal,
}

/// A table of outgoing money under the approval rule.
pub(super) trait ApprovalTable: Outgoing + Sized {
    type Row;
    /// Where each approver's consent is recorded: `(reference, user_id, at)`.
    const APPROVALS: &'static str;
    /// What a missing request is called in the refusal.
    const MISSING: &'static str;

    /// The request's row, locked for the rest of `tx` on PostgreSQL.
    async fn lock(tx: &mut Tx, backend: Backend, reference: &str) -> Result<Option<Self::Row>, StoreError>;
    fn facts(row: &Self::Row) -> (Self::Status, Facts);
    /// What is already held against what `available` is, for this request.
    async fn held(tx: &mut Tx, backend: Backend, row: &Self::Row) -> Result<Decimal, StoreError>;
    /// The hold it places on the wallet once queued.
    fn hold(row: &Self::Row) -> Decimal;
    /// Moves it from awaiting approval to queued with `hold`.
    async fn queue(tx: &mut Tx, row: &Self::Row, hold: Decimal) -> Result<(), StoreError>;
    /// Its timeline's line for this approval.
    async fn event(tx: &mut Tx, row: &Self::Row, approver: &str, queued: bool) -> Result<(), StoreError>;
}

impl Store {
    /// Records an approval under the rule, in one transaction that locks the
    /// request and its currency's holds: the rule sees every approval already
    /// recorded, so concurrent approvers cannot skip it; when the approval
    /// completes it, the amount must fit in `available` (read just before)
    /// less what is held already. `audit` is written with it; a refusal
    /// writes nothing (the caller records the denial).
    pub(super) async fn approve_outgoing<K: ApprovalTable>(
        &self,
        reference: &str,
        approver: &Approver<'_>,
        available: Decimal,
        audit: AuditDraft,
    ) -> Result<Written<K>, StoreError> {
        let mut tx = self.begin_write().await?;
        let Some(row) = K::lock(&mut tx, self.backend(), reference).await? else {
            return Ok(Written::Refused(K::MISSING.into()));
        };
        let (status, facts) = K::facts(&row);
        super::payouts::lock_holds(&mut tx, self.backend(), facts.currency).await?;
        let approved_by = approvals_in(&mut tx, K::APPROVALS, reference).await?;
        let pending = Pending::<K> {
            reference,
            status,
            created_by: &facts.created_by,
            approved_by: &approved_by,
            needed: needed_from_stored(facts.approvals_needed),
        };
        let written = match approve(&pending, approver) {
            Approval::Refused(why) => return Ok(Written::Refused(why.into())),
            Approval::Recorded { still_needed } => Written::Recorded { still_needed },
            Approval::Complete(approved) => {
                let held = K::held(&mut tx, self.backend(), &row).await?;
                if held + facts.amount > available {
                    return Ok(Written::Short { available, held, amount: facts.amount });
                }
                K::queue(&mut tx, &row, K::hold(&row)).await?;
                Written::Queued(approved)
            }
        };
        let insert = format!("INSERT INTO {} (reference, user_id, at) VALUES ($1, $2, $3)", K::APPROVALS);
        sqlx::query(&insert).bind(reference).bind(approver.user_id()).bind(now_ms()).execute(&mut *tx).await?;
        K::event(&mut tx, &row, approver.user_id(), matches!(written, Written::Queued(_))).await?;
        let details = match &written {
            Written::Recorded { still_needed } => json!({"result": "recorded", "still_needed": still_needed}),
            _ => json!({"result": "queued", "hold": K::hold(&row).to_string(), "currency": facts.currency}),
        };
        audit.with_details(details).append_in(&mut tx, self.backend()).await?;
        tx.commit().await?;
        Ok(written)
    }
}

/// The approvers recorded so far on one request.
pub(super) async fn approvals_in(tx: &mut Tx, table: &str, reference: &str) -> Result<Vec<String>, StoreError> {
    let select = format!("SELECT user_id FROM {table} WHERE reference = $1");
    Ok(sqlx::query_scalar(&select).bind(reference).fetch_all(&mut **tx).await?)
}
