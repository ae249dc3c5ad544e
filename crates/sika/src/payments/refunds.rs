//! Refunds: requested by an approver, recorded before Flutterwave is asked,
//! never more than was paid, and followed until Flutterwave calls them final
//! (`GET /refunds/{id}`, the refund webhook when it comes). A refund without
//! a definite answer is found by lookup, never sent again.

use flutterwave::transactions::{Refund, RefundRequest};
use flutterwave::webhook::RefundEvent;
use flutterwave::{ErrorKind, Reply};
use rust_decimal::Decimal;

use super::Payments;
use crate::domain::RefundStatus;
use crate::store::{RefundRefusal, RefundRow, RefundUpdate, StoreError, now_ms};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundOutcome {
    Completed(RefundRow),
    /// Accepted by Flutterwave, not final yet: followed up until it is.
    Processing(RefundRow),
    /// Refused before or by Flutterwave, with the reason.
    Refused(String),
    /// No definite answer: shown as `unknown`, looked up, never sent again.
    Unknown(RefundRow),
}

impl RefundOutcome {
    /// The audit log's word for it (with the reason when refused).
    pub fn word(&self) -> serde_json::Value {
        match self {
            RefundOutcome::Completed(r) => serde_json::json!({"status": "completed", "refund": r.id}),
            RefundOutcome::Processing(r) => serde_json::json!({"status": "processing", "refund": r.id}),
            RefundOutcome::Refused(why) => serde_json::json!({"status": "refused", "reason": why}),
            RefundOutcome::Unknown(r) => serde_json::json!({"status": "unknown", "refund": r.id}),
        }
    }
}

/// A refund that no lookup finds within this time after its request was
/// recorded never reached Flutterwave: it is failed, and its amount is free again.
pub const REFUND_NOT_FOUND_AFTER_MS: i64 = 3_600_000;
/// Pages of `GET /refunds` read when looking for a refund without an id.
const LOOKUP_PAGES: u32 = 5;

/// 1 m doubling, at most 6 h, between follow-up looks.
fn follow_backoff_ms(checks: i64) -> i64 {
    (60_000_i64 << checks.clamp(0, 9)).min(6 * 3_600_000)
}

impl Payments {
    /// Refunds `amount` of a paid checkout. The amount must fit the
    /// currency's minor unit and what remains refundable. Asked `by` someone, the
    /// request is audited (`refund.request`) with the refund's reservation, before
    /// Flutterwave is asked: no record, no refund.
    pub async fn refund(
        &self,
        reference: &str,
        amount: Decimal,
        comment: &str,
        requested_by: &str,
        by: Option<&crate::audit::Actor>,
    ) -> Result<RefundOutcome, StoreError> {
        let Some(c) = self.store.checkout(reference).await? else {
            return Ok(RefundOutcome::Refused("no such checkout".into()));
        };
        let amount = match c.currency.check_amount(amount, self.max_amount) {
            Ok(a) => a,
            Err(e) => return Ok(RefundOutcome::Refused(format!("the amount {e}"))),
        };
        let audit = match by {
            Some(actor) => {
                let intent = serde_json::json!({"amount": amount.to_string(), "reason": comment});
                let target = format!("checkout:{reference}");
                let outcome = crate::audit::Outcome::Success;
                Some(self.auditor.draft(actor, "refund.request", &target, outcome, intent).await?)
            }
            None => None,
        };
        let row = match self.store.insert_refund(reference, amount, comment, requested_by, audit).await? {
            Ok(r) => r,
            Err(RefundRefusal::NoSuchCheckout) => return Ok(RefundOutcome::Refused("no such checkout".into())),
            Err(RefundRefusal::NotPaid) => {
                return Ok(RefundOutcome::Refused(
                    "only a paid checkout, or money verified received for one under review in its own currency, \
                     can be refunded"
                        .into(),
                ));
            }
            Err(RefundRefusal::TooMuch { refundable }) => {
                let cur = c.currency;
                return Ok(RefundOutcome::Refused(format!(
                    "that would refund more than was paid: {cur} {} remains refundable",
                    cur.format(refundable)
                )));
            }
        };
        let req = RefundRequest {
            amount: Some(amount.into()),
            comments: Some(comment.chars().take(200).collect()).filter(|c: &String| !c.is_empty()),
        };
        let now = now_ms();
        Ok(match self.flw.refund(row.transaction_id, &req).await {
            Reply::Ok(r) => {
                let status = RefundStatus::from_flutterwave(&r.status);
                let next = now + follow_backoff_ms(0);
                let u = update(status, Some(r.id), Some(&r.status), None, Some(next), false);
                self.store.update_refund(&row.id, &u).await?;
                let row = RefundRow { status, flw_refund_id: Some(r.id), flw_status: Some(r.status), ..row };
                if status == RefundStatus::Completed {
                    RefundOutcome::Completed(row)
                } else if status == RefundStatus::Failed {
                    RefundOutcome::Refused("Flutterwave reports the refund failed".into())
                } else {
                    RefundOutcome::Processing(row)
                }
            }
            Reply::Rejected(e) => {
                self.store
                    .update_refund(&row.id, &update(RefundStatus::Failed, None, None, Some(&e.message), None, false))
                    .await?;
                RefundOutcome::Refused(e.message)
            }
            Reply::Indefinite(why) => {
                let note = format!("no definite answer ({why}); looked up, never sent again");
                let u = update(RefundStatus::Unknown, None, None, Some(&note), Some(now + follow_backoff_ms(0)), false);
                self.store.update_refund(&row.id, &u).await?;
                RefundOutcome::Unknown(RefundRow { status: RefundStatus::Unknown, ..row })
            }
        })
    }

    /// One follow-up pass over refunds that are not final; returns how many were looked at.
    pub async fn follow_refunds(&self, now: i64) -> Result<usize, StoreError> {
        let due = self.store.refunds_to_follow(now, 50).await?;
        for r in &due {
            self.follow(r, now).await?;
        }
        Ok(due.len())
    }

    async fn follow(&self, r: &RefundRow, now: i64) -> Result<(), StoreError> {
        let later = Some(now + follow_backoff_ms(r.checks + 1));
        let found = match r.flw_refund_id {
            Some(id) => match self.flw.get_refund(id).await {
                Reply::Ok(f) => Some(f),
                _ => None,
            },
            None => match self.find_refund(r).await {
                Lookup::Found(f) => Some(f),
                Lookup::Absent if now - r.created_at >= REFUND_NOT_FOUND_AFTER_MS => {
                    let note = "Flutterwave has no record of this refund: it was never made";
                    self.store
                        .update_refund(&r.id, &update(RefundStatus::Failed, None, None, Some(note), None, true))
                        .await?;
                    return Ok(());
                }
                Lookup::Absent | Lookup::Unsure => None,
            },
        };
        let u = match &found {
            Some(f) => {
                let status = RefundStatus::from_flutterwave(&f.status);
                update(status, Some(f.id), Some(&f.status), None, later, true)
            }
            None => RefundUpdate {
                status: r.status,
                flw_refund_id: None,
                flw_status: None,
                note: r.note.as_deref(),
                next_check_at: later,
                checked: true,
            },
        };
        self.store.update_refund(&r.id, &u).await?;
        Ok(())
    }

    /// A refund recorded without Flutterwave's id (no answer, or the process
    /// stopped before it): the listing's refund of the same transaction and
    /// amount that no other Sika refund has claimed.
    async fn find_refund(&self, r: &RefundRow) -> Lookup {
        let from = crate::timefmt::date(r.created_at - 86_400_000);
        for page in 1..=LOOKUP_PAGES {
            let listing = match self.flw.list_refunds(Some(&from), page).await {
                Reply::Ok(p) => p,
                _ => return Lookup::Unsure,
            };
            for f in &listing.items {
                let same =
                    f.tx_id == Some(r.transaction_id) && f.amount_refunded.map(|a| a.decimal()) == Some(r.amount);
                if same && matches!(self.store.refund_by_flw_id(f.id).await, Ok(None)) {
                    return Lookup::Found(f.clone());
                }
            }
            let last = listing.page_info.and_then(|i| i.total_pages).is_none_or(|t| i64::from(page) >= t);
            if last || listing.items.is_empty() {
                return Lookup::Absent;
            }
        }
        Lookup::Unsure
    }

    /// A refund webhook is a hint: the refund is read back from Flutterwave
    /// before anything changes. `false` when that could not be done yet.
    pub async fn follow_refund_event(&self, e: &RefundEvent) -> Result<bool, StoreError> {
        let f = match self.flw.get_refund(e.id).await {
            Reply::Ok(f) => f,
            // Flutterwave does not know it: a forgery or another account's; nothing to do.
            Reply::Rejected(err) if err.kind == ErrorKind::NotFound => return Ok(true),
            Reply::Rejected(_) | Reply::Indefinite(_) => return Ok(false),
        };
        let row = match self.store.refund_by_flw_id(f.id).await? {
            Some(row) => Some(row),
            None => self.unclaimed_match(&f).await?,
        };
        let Some(row) = row else { return Ok(true) };
        let status = RefundStatus::from_flutterwave(&f.status);
        let later = Some(now_ms() + follow_backoff_ms(row.checks));
        self.store.update_refund(&row.id, &update(status, Some(f.id), Some(&f.status), None, later, false)).await?;
        Ok(true)
    }

    /// A refund of ours still without Flutterwave's id that `f` answers.
    async fn unclaimed_match(&self, f: &Refund) -> Result<Option<RefundRow>, StoreError> {
        let Some(tx_id) = f.tx_id else { return Ok(None) };
        let Some(c) = self.store.checkout_by_transaction(tx_id).await? else { return Ok(None) };
        Ok(self.store.refunds(&c.reference).await?.into_iter().find(|r| {
            r.flw_refund_id.is_none()
                && !r.status.is_final()
                && r.transaction_id == tx_id
                && f.amount_refunded.map(|a| a.decimal()) == Some(r.amount)
        }))
    }
}

enum Lookup {
    Found(Refund),
    /// The whole listing answered, definitely, without it.
    Absent,
    /// No definite answer.
    Unsure,
}

fn update<'a>(
    status: RefundStatus,
    flw_refund_id: Option<i64>,
    flw_status: Option<&'a str>,
    note: Option<&'a str>,
    next_check_at: Option<i64>,
    checked: bool,
) -> RefundUpdate<'a> {
    RefundUpdate { status, flw_refund_id, flw_status, note, next_check_at, checked }
}
