//! The reconciler and expiry. The reconciler verifies pending checkouts by
//! reference on a schedule, so a missed webhook still settles. Expiry closes a
//! checkout unpaid only on a *definite* answer that no successful transaction
//! exists; any other answer defers it and it is tried again, within the budget.

use crate::domain::CheckoutStatus;
use crate::store::{ExpiryCandidate, StoreError, now_ms};

use super::{Applied, Payments, note};

/// Re-verifies pending checkouts at about 1 m, 5 m, 30 m, 2 h, 12 h and 24 h
/// after creation, then closes what expired unpaid.
pub async fn reconcile(p: &Payments) -> Result<usize, StoreError> {
    reconcile_at(p, now_ms()).await
}

/// What one expiry check decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expiry {
    /// Closed unpaid, with this status.
    Closed(CheckoutStatus),
    /// Settled by the last look (paid or under review).
    Settled,
    /// No definite answer (or still pending at Flutterwave): tried again at this time.
    Deferred(i64),
}

/// One reconciler pass as if the time were `now` (tests look ahead with it):
/// verifies what is due, then examines what expired.
pub async fn reconcile_at(p: &Payments, now: i64) -> Result<usize, StoreError> {
    let due = p.store.checkouts_due(now, 200).await?;
    for (c, checks) in &due {
        let outcome = p.settle_by_reference(&c.reference).await?;
        p.store.checkout_event(&c.reference, "reconciled", &outcome.describe()).await?;
        p.store.checkout_checked(&c.reference, *checks, c.created_at).await?;
    }
    for candidate in p.store.checkouts_expired(now - p.expire_after_ms, now, 200).await? {
        expire(p, &candidate, now).await?;
    }
    Ok(due.len())
}

/// Backoff between expiry checks that got no definite answer: 1 m doubling, at most 6 h.
fn expiry_backoff_ms(checks: i64) -> i64 {
    (60_000_i64 << checks.clamp(0, 9)).min(6 * 3_600_000)
}

/// The last look before closing a checkout, and the decision.
pub async fn expire(p: &Payments, c: &ExpiryCandidate, now: i64) -> Result<Expiry, StoreError> {
    let (status, reason) = match p.settle_by_reference(&c.reference).await? {
        Applied::Settled { .. } => return Ok(Expiry::Settled),
        // Definite: Flutterwave has no transaction for this reference.
        Applied::NoSuchTransaction if c.attempts_failed => (CheckoutStatus::Failed, "expired: every attempt failed"),
        Applied::NoSuchTransaction => (CheckoutStatus::Cancelled, "expired unpaid: no transaction at Flutterwave"),
        // Definite: the reference's transaction failed.
        Applied::AttemptFailed => (CheckoutStatus::Failed, "expired: every attempt failed"),
        // Flutterwave says pending: wait, but not forever (a success after closing is a late payment).
        Applied::NotFinal if now - c.created_at >= p.expire_after_ms + p.pending_grace_ms => {
            (CheckoutStatus::Cancelled, "expired: the transaction stayed pending at Flutterwave")
        }
        Applied::NotFinal | Applied::Retry | Applied::Unmatched => {
            let next = now + expiry_backoff_ms(c.checks);
            p.store.defer_expiry(&c.reference, next).await?;
            p.store.checkout_event(&c.reference, "expiry_deferred", "no definite answer from Flutterwave yet").await?;
            return Ok(Expiry::Deferred(next));
        }
    };
    let Some(row) = p.store.checkout(&c.reference).await? else { return Ok(Expiry::Settled) };
    if p.store.mark_unpaid(&c.reference, status, None, reason, note(&row, status)).await? {
        Ok(Expiry::Closed(status))
    } else {
        Ok(Expiry::Settled)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn expiry_backs_off_to_six_hours() {
        assert_eq!(super::expiry_backoff_ms(0), 60_000);
        assert_eq!(super::expiry_backoff_ms(3), 480_000);
        assert_eq!(super::expiry_backoff_ms(50), 6 * 3_600_000);
    }
}
