//! What happens to outgoing money after approval, once for every kind
//! (payouts, card loads, fundings and withdrawals; a chargeback answer or a
//! large refund next): requests not approved in time expire; queued ones are
//! checked again under the approval rule (`domain::approval::consent`),
//! claimed once across instances with their proof, and sent. A kind says how
//! its rows are read, claimed and sent ([`Lifecycle`]); the order of those
//! steps, and what happens to a row the rule no longer consents to, is here.

use serde_json::json;

use crate::audit::{Actor, Auditor, Outcome};
use crate::domain::approval::{Approved, Outgoing, Pending, consent, needed_from_stored};
use crate::store::StoreError;

/// One kind of outgoing money's steps after approval. Implemented and used
/// only inside Sika, on concrete types, whose futures stay `Send`.
#[allow(async_fn_in_trait)]
pub trait Lifecycle {
    type Kind: Outgoing;
    type Row: Send + Sync;
    /// For the log: "payout", "card funding".
    const NAME: &'static str;

    /// References awaiting approval past their expiry.
    async fn unapproved_expired(&self, now: i64) -> Result<Vec<String>, StoreError>;
    /// Closes one as expired (nothing was sent).
    async fn expire(&self, reference: &str) -> Result<(), StoreError>;
    /// Queued rows with their recorded approvers.
    async fn queued(&self, limit: i64) -> Result<Vec<(Self::Row, Vec<String>)>, StoreError>;
    /// What the approval rule sees of a row.
    fn pending<'a>(row: &'a Self::Row, approved_by: &'a [String]) -> Pending<'a, Self::Kind>;
    /// A queued row the rule does not consent to goes back for approval.
    async fn requeue(&self, reference: &str, why: &str) -> Result<(), StoreError>;
    /// Takes the row for sending, once across instances; `false` if another did.
    async fn claim(&self, approved: &Approved<Self::Kind>) -> Result<bool, StoreError>;
    /// Sends a claimed row to Flutterwave.
    async fn send(&self, row: Self::Row) -> Result<(), StoreError>;
}

/// Requests not approved in time expire; how many.
pub async fn expire<L: Lifecycle>(l: &L, now: i64) -> Result<usize, StoreError> {
    let due = l.unapproved_expired(now).await?;
    for r in &due {
        l.expire(r).await?;
    }
    Ok(due.len())
}

/// Sends queued requests the rule consents to, one claim per request; how many were sent.
pub async fn dispatch<L: Lifecycle>(l: &L, limit: i64) -> Result<usize, StoreError> {
    let mut sent = 0;
    for (row, approvers) in l.queued(limit).await? {
        let pending = L::pending(&row, &approvers);
        let Some(approved) = consent(&pending) else {
            let reference = pending.reference.to_string();
            tracing::error!(%reference, kind = L::NAME, "queued without the approvals the rule needs: not sent");
            l.requeue(&reference, "its recorded approvals do not meet the approval rule").await?;
            continue;
        };
        if !l.claim(&approved).await? {
            continue;
        }
        l.send(row).await?;
        sent += 1;
    }
    Ok(sent)
}

/// What the rule sees of a stored request: its maker, the approvers recorded
/// and the count it needs as stored (a count that makes no sense means two).
pub fn pending<'a, K: Outgoing>(
    reference: &'a str,
    status: K::Status,
    created_by: &'a str,
    approved_by: &'a [String],
    approvals_needed: i64,
) -> Pending<'a, K> {
    Pending { reference, status, created_by, approved_by, needed: needed_from_stored(approvals_needed) }
}

/// A refused or short approval changes nothing; it is recorded as denied, with why.
pub async fn record_refusal<K>(
    auditor: &Auditor,
    actor: &Actor,
    action: &str,
    target: &str,
    written: &crate::store::Written<K>,
) -> Result<(), StoreError> {
    use crate::store::Written;
    let details = match written {
        Written::Refused(why) => json!({"result": "refused", "reason": why}),
        Written::Short { available, held, amount } => json!({
            "result": "short", "available": available.to_string(), "held": held.to_string(), "amount": amount.to_string()
        }),
        Written::Queued(_) | Written::Recorded { .. } => return Ok(()),
    };
    auditor.record(actor, action, target, Outcome::Denied, details).await?;
    Ok(())
}
