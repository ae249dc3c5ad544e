//! Chargebacks, found and followed: a singleton job lists Flutterwave's
//! chargebacks per status (a list without `status` is reported to show only lost
//! ones), within the outbound budget; a webhook that looks like a chargeback
//! notification only triggers a lookup by `flw_ref`. What Flutterwave's list
//! says is recorded (`store::record_chargeback`), linked to the checkout whose
//! transaction it disputes; the shop hears when one opens, is won or is lost.

use flutterwave::Reply;
use flutterwave::chargebacks::{Chargeback, ChargebackStatus};

use super::Payments;
use crate::store::{ChargebackFacts, Recorded, StoreError};

/// How a pass over Flutterwave's chargebacks went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Polled {
    /// Chargebacks read from the list.
    pub seen: usize,
    /// First seen in this pass.
    pub opened: usize,
    /// Whose status moved in this pass.
    pub moved: usize,
    /// Whether every status was read to its end (an indefinite answer stops the pass).
    pub complete: bool,
}

/// "Due soon": an answer due within this time (the overview and the metric).
pub const DUE_SOON_MS: i64 = 24 * 3_600_000;

/// Pages per status a pass reads at most (10 chargebacks a page).
pub const MAX_PAGES: u32 = 20;

impl Payments {
    /// Reads every status's list (at most `max_pages` pages each) and records what it says.
    pub async fn poll_chargebacks(&self, max_pages: u32) -> Result<Polled, StoreError> {
        let flw = self.flw.polling();
        let mut polled = Polled { complete: true, ..Polled::default() };
        for status in ChargebackStatus::LISTED {
            for page in 1..=max_pages.max(1) {
                let listed = match flw.list_chargebacks(Some(status), None, page).await {
                    Reply::Ok(p) => p,
                    Reply::Rejected(e) => {
                        tracing::warn!(status, error = %e.message, "Flutterwave refused the chargeback list");
                        polled.complete = false;
                        break;
                    }
                    Reply::Indefinite(why) => {
                        tracing::info!(status, %why, "the chargeback list got no definite answer; next pass");
                        polled.complete = false;
                        return Ok(polled);
                    }
                };
                for c in &listed.items {
                    polled.seen += 1;
                    match self.record_chargeback(c).await? {
                        Recorded::Opened => polled.opened += 1,
                        Recorded::Moved(..) => polled.moved += 1,
                        Recorded::Same => {}
                    }
                }
                let last = listed.page_info.and_then(|p| p.total_pages).is_none_or(|t| i64::from(page) >= t);
                if listed.items.is_empty() || last {
                    break;
                }
                if page == max_pages.max(1) {
                    polled.complete = false;
                }
            }
        }
        Ok(polled)
    }

    /// Every chargeback, open ones first by due date (the console's disputes list).
    pub async fn disputes(&self, limit: i64) -> Result<Vec<crate::store::ChargebackRow>, StoreError> {
        self.store.chargebacks_listed(limit).await
    }

    /// Open chargebacks against the clock at `now`.
    pub async fn disputes_due(&self, now: i64) -> Result<crate::store::ChargebacksDue, StoreError> {
        self.store.chargebacks_due(now, now + DUE_SOON_MS).await
    }

    /// A webhook hinted at a chargeback: look it up by `flw_ref` (never trust the hint's body).
    /// `None` when Flutterwave gave no definite answer; otherwise how many it listed.
    pub async fn look_up_chargeback(&self, flw_ref: &str) -> Result<Option<usize>, StoreError> {
        match self.flw.polling().list_chargebacks(None, Some(flw_ref), 1).await {
            Reply::Ok(page) => {
                let mine: Vec<&Chargeback> = page.items.iter().filter(|c| c.flw_ref == flw_ref).collect();
                for c in &mine {
                    self.record_chargeback(c).await?;
                }
                Ok(Some(mine.len()))
            }
            Reply::Rejected(_) => Ok(Some(0)),
            Reply::Indefinite(_) => Ok(None),
        }
    }

    /// Links a listed chargeback to its checkout — by Flutterwave's transaction id, or by
    /// `tx_ref` when that checkout's transaction agrees — and records it.
    pub(super) async fn record_listed(&self, c: &Chargeback) -> Result<Recorded, StoreError> {
        self.record_chargeback(c).await
    }

    async fn record_chargeback(&self, c: &Chargeback) -> Result<Recorded, StoreError> {
        let by_id = match c.transaction_id {
            Some(id) => self.store.checkout_by_transaction(id).await?,
            None => None,
        };
        let checkout = match (by_id, c.tx_ref.as_deref()) {
            (Some(found), _) => Some(found),
            (None, Some(tx_ref)) => self.store.checkout(tx_ref).await?.filter(|k| {
                c.transaction_id.is_none() || k.transaction_id.is_none() || k.transaction_id == c.transaction_id
            }),
            (None, None) => None,
        };
        let facts = ChargebackFacts {
            id: c.id,
            checkout_reference: checkout.as_ref().map(|k| k.reference.clone()),
            transaction_id: c.transaction_id,
            flw_ref: c.flw_ref.chars().take(100).collect(),
            amount: c.amount.decimal(),
            currency: checkout.as_ref().map(|k| k.currency),
            status: c.status.as_str().chars().take(40).collect(),
            stage: c.stage.chars().take(40).collect(),
            due_at: c.due_at_ms(),
            comment: c.comment.as_ref().map(|s| s.chars().take(500).collect()),
            history_len: i64::try_from(c.meta.history.len()).unwrap_or(i64::MAX),
        };
        if facts.checkout_reference.is_none() {
            tracing::warn!(chargeback = c.id, "a chargeback matches no checkout of ours; kept for a person to look at");
        }
        self.store.record_chargeback(&facts).await
    }
}
