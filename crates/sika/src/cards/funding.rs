//! Money onto and off cards, under the same maker-checker rule as payouts:
//! a card's first load, a funding (wallet → card) and a withdrawal (card →
//! wallet) are each recorded awaiting approval; approvers who did not ask
//! for it consent after a fresh step-up code; a load or funding then holds
//! its amount on the wallet (with payouts' holds, against Flutterwave's
//! available balance), a withdrawal must fit in the card's balance read back
//! from Flutterwave. The dispatcher sends each once, with the rule's proof;
//! an indefinite answer is resolved by reading the card's transactions,
//! never by sending again.

use flutterwave::Reply;
use rust_decimal::Decimal;
use serde_json::json;

use super::{Cards, backoff_ms};
use crate::audit::{Actor, Outcome};
use crate::domain::card::{NewFunding, PendingFunding};
use crate::domain::{CardStatus, Currency, FundingKind, FundingStatus, approval::Approver};
use crate::store::{CardRow, FundingRow, FundingWrite, StoreError, now_ms};

/// Unapproved fundings expire after this long (as payouts do).
pub const APPROVAL_TTL_MS: i64 = crate::payouts::DEFAULT_APPROVAL_TTL_MS;
/// A funding sent without a definite answer that the card's transactions
/// still do not show this long after was not made.
pub const UNKNOWN_GIVE_UP_MS: i64 = 60 * 60 * 1000;

#[derive(Debug, thiserror::Error)]
pub enum FundingError {
    #[error("no such card")]
    NoSuchCard,
    #[error("the card cannot take money now (it is {0})")]
    NotNow(CardStatus),
    #[error("a funding with this reference exists with different details")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The first load's reference: the card's, with a suffix no shop reference
/// can have (`.` is not allowed in references).
pub fn load_reference(card_reference: &str) -> String {
    format!("{card_reference}.load")
}

pub(super) fn fingerprint(card: &str, f: &NewFunding) -> String {
    crate::crypto::sha256_hex(format!("{card}|{}|{}", f.kind, f.money.amount().normalize()).as_bytes())
}

/// How many approvers a movement of `amount` needs (the payouts' threshold setting).
pub(super) async fn approvals_needed(
    store: &crate::store::Store,
    currency: Currency,
    amount: Decimal,
) -> Result<i64, StoreError> {
    let two_above = store.setting(&crate::payouts::threshold_setting(currency)).await?;
    Ok(crate::domain::approval::approvers_needed(amount, two_above.as_deref()) as i64)
}

/// A card transaction's time, when Flutterwave's text can be read.
fn txn_ms(t: &flutterwave::cards::CardTransaction) -> Option<i64> {
    let s = t.created_at.as_deref()?;
    crate::timefmt::parse_instant(&format!("{}Z", s.get(..19)?))
}

impl Cards {
    /// Records a funding or withdrawal awaiting approval. Idempotent by reference.
    pub async fn request_funding(
        &self,
        actor: &Actor,
        card_reference: &str,
        created_by: &str,
        f: &NewFunding,
    ) -> Result<FundingRow, FundingError> {
        let card = self.store.card(card_reference).await?.ok_or(FundingError::NoSuchCard)?;
        let fp = fingerprint(card_reference, f);
        if let Some(existing) = self.store.funding(&f.reference).await? {
            return if existing.fingerprint == fp { Ok(existing) } else { Err(FundingError::Conflict) };
        }
        if !matches!(card.status, CardStatus::Active) {
            return Err(FundingError::NotNow(card.status));
        }
        let currency = card.currency;
        let now = now_ms();
        let row = FundingRow {
            reference: f.reference.to_string(),
            card_reference: card_reference.to_string(),
            kind: f.kind,
            amount: f.money.amount(),
            currency,
            fingerprint: fp.clone(),
            status: FundingStatus::AwaitingApproval,
            created_by: created_by.to_string(),
            approvals_needed: approvals_needed(&self.store, currency, f.money.amount()).await?,
            hold: Decimal::ZERO,
            reason: None,
            flw_txn_id: None,
            expires_at: now + APPROVAL_TTL_MS,
            sent_at: None,
            checks: 0,
            created_at: now,
            updated_at: now,
        };
        let action = if f.kind == FundingKind::Fund { "card.fund.request" } else { "card.withdraw.request" };
        let details = json!({"funding": row.reference, "amount": row.amount.to_string(), "currency": currency.code()});
        let target = format!("card:{card_reference}");
        let audit = self.auditor.draft(actor, action, &target, Outcome::Success, details).await?;
        if !self.store.insert_funding(&row, audit).await? {
            return match self.store.funding(&f.reference).await? {
                Some(e) if e.fingerprint == fp => Ok(e),
                _ => Err(FundingError::Conflict),
            };
        }
        Ok(row)
    }

    pub async fn funding(&self, reference: &str) -> Result<Option<FundingRow>, StoreError> {
        self.store.funding(reference).await
    }

    pub async fn fundings(&self, card_reference: &str) -> Result<Vec<FundingRow>, StoreError> {
        self.store.card_fundings(card_reference).await
    }

    pub async fn fundings_awaiting(&self) -> Result<Vec<FundingRow>, StoreError> {
        self.store.fundings_awaiting(200).await
    }

    pub async fn fundings_awaiting_count(&self) -> Result<i64, StoreError> {
        self.store.fundings_awaiting_count().await
    }

    pub async fn funding_approvals(&self, reference: &str) -> Result<Vec<String>, StoreError> {
        self.store.funding_approvals(reference).await
    }

    /// An approver consents. When the consent is complete, what the movement
    /// needs is read from Flutterwave first: the wallet's available balance
    /// (a load or funding, less the holds) or the card's balance (a withdrawal).
    pub async fn approve_funding(
        &self,
        actor: &Actor,
        reference: &str,
        approver: &Approver<'_>,
    ) -> Result<FundingWrite, StoreError> {
        let Some(f) = self.store.funding(reference).await? else {
            return Ok(FundingWrite::Refused("no such funding".into()));
        };
        let target = format!("card:{}", f.card_reference);
        let written = match self.available_for(&f).await? {
            Ok(available) => {
                let details = json!({"funding": f.reference, "kind": f.kind.as_str()});
                let audit =
                    self.auditor.draft(actor, "card.funding.approve", &target, Outcome::Success, details).await?;
                self.store.approve_card_funding(reference, approver, available, audit).await?
            }
            Err(refused) => refused,
        };
        crate::outgoing::record_refusal(&self.auditor, actor, "card.funding.approve", &target, &written).await?;
        Ok(written)
    }

    /// What the movement must fit in, read from Flutterwave: the wallet's
    /// available balance (a load or funding, less the holds) or the card's
    /// balance (a withdrawal).
    async fn available_for(&self, f: &FundingRow) -> Result<Result<Decimal, FundingWrite>, StoreError> {
        if f.kind.debits_wallet() {
            return Ok(match self.flw.balance(f.currency.code()).await {
                Reply::Ok(b) => Ok(b.available_balance.decimal()),
                _ => Err(unreadable("the wallet's balance")),
            });
        }
        let Some(card) = self.store.card(&f.card_reference).await? else {
            return Ok(Err(FundingWrite::Refused("no such card".into())));
        };
        Ok(match card.flw_id.as_deref() {
            Some(id) => match self.flw.get_card(id).await {
                Reply::Ok(c) => Ok(c.amount.decimal()),
                _ => Err(unreadable("the card's balance")),
            },
            None => Err(FundingWrite::Refused("the card is not at Flutterwave".into())),
        })
    }

    /// An approver refuses it, with a reason (a refused first load fails its card).
    pub async fn reject_funding(&self, actor: &Actor, reference: &str, reason: &str) -> Result<bool, StoreError> {
        let Some(f) = self.store.funding(reference).await? else { return Ok(false) };
        let details = json!({"funding": reference, "reason": reason});
        let target = format!("card:{}", f.card_reference);
        let audit = self.auditor.draft(actor, "card.funding.reject", &target, Outcome::Success, details).await?;
        self.store.close_funding(reference, FundingStatus::Rejected, reason, Some(audit)).await
    }

    /// Fundings not approved in time expire (`crate::outgoing::expire`).
    pub async fn expire_fundings(&self, now: i64) -> Result<usize, StoreError> {
        crate::outgoing::expire(self, now).await
    }

    /// Sends what the rule consents to, one claim per funding across
    /// instances (`crate::outgoing::dispatch`); returns how many were sent.
    pub async fn dispatch_fundings(&self, limit: i64) -> Result<usize, StoreError> {
        crate::outgoing::dispatch(self, limit).await
    }

    async fn move_money(&self, card: &CardRow, f: &FundingRow) -> Result<(), StoreError> {
        let Some(id) = card.flw_id.as_deref() else {
            self.store
                .settle_funding(&f.reference, FundingStatus::Failed, None, "the card is not at Flutterwave")
                .await?;
            return Ok(());
        };
        let amount = flutterwave::Amount::from(f.amount);
        let reply = match f.kind {
            FundingKind::Withdraw => self.flw.withdraw_from_card(id, amount).await,
            _ => self.flw.fund_card(id, f.currency.code(), amount).await,
        };
        match reply {
            Reply::Ok(()) => {
                // Done: the card transaction that shows it is kept with it when found now.
                let sent = f.sent_at.unwrap_or_else(now_ms);
                let txn = self.find_txn(card, f, sent).await.ok().flatten();
                let detail = format!("{} {} at Flutterwave", f.amount, f.currency);
                if !self.store.settle_funding(&f.reference, FundingStatus::Succeeded, txn.as_deref(), &detail).await? {
                    self.store.settle_funding(&f.reference, FundingStatus::Succeeded, None, &detail).await?;
                }
            }
            Reply::Rejected(e) => {
                let why: String = e.message.chars().filter(|c| !c.is_control()).take(200).collect();
                self.store.settle_funding(&f.reference, FundingStatus::Failed, None, &why).await?;
            }
            Reply::Indefinite(why) => {
                tracing::warn!(reference = %f.reference, ?why, "a card funding had no definite answer; looking it up, never sending again");
            }
        }
        Ok(())
    }

    /// The card transaction that shows `f` (same direction and amount, made
    /// after it was sent, proof of no other funding); `Err` when the
    /// transactions could not be read.
    async fn find_txn(&self, card: &CardRow, f: &FundingRow, sent: i64) -> Result<Option<String>, ()> {
        let Some(id) = card.flw_id.as_deref() else { return Ok(None) };
        let from = crate::timefmt::date(sent - 86_400_000);
        let to = crate::timefmt::date(now_ms() + 86_400_000);
        let txns = match self.flw.card_transactions(id, &from, &to, 0, 100).await {
            Reply::Ok(t) => t,
            _ => return Err(()),
        };
        let want = if f.kind == FundingKind::Withdraw { "D" } else { "C" };
        for t in txns.iter().rev() {
            let same = t.indicator.as_deref() == Some(want)
                && t.amount.decimal() == f.amount
                && txn_ms(t).is_none_or(|at| at >= sent - 300_000);
            if same && self.store.funding_by_txn(&t.id).await.ok().flatten().is_none() {
                return Ok(Some(t.id.clone()));
            }
        }
        Ok(None)
    }

    /// The follower's pass over fundings sent without a definite answer.
    pub async fn follow_fundings(&self, now: i64) -> Result<usize, StoreError> {
        let due = self.store.fundings_to_follow(now, 50).await?;
        for f in &due {
            let next = now + backoff_ms(f.checks);
            let Some(card) = self.store.card(&f.card_reference).await? else { continue };
            let sent = f.sent_at.unwrap_or(f.updated_at);
            match self.find_txn(&card, f, sent).await {
                Ok(Some(txn)) => {
                    let detail = format!("{} {}, found in the card's transactions", f.amount, f.currency);
                    if !self.store.settle_funding(&f.reference, FundingStatus::Succeeded, Some(&txn), &detail).await? {
                        self.store.funding_checked(&f.reference, next).await?;
                    }
                }
                Ok(None) if now - sent > UNKNOWN_GIVE_UP_MS => {
                    let why = "the card's transactions never showed it: it was not made";
                    self.store.settle_funding(&f.reference, FundingStatus::Failed, None, why).await?;
                }
                _ => self.store.funding_checked(&f.reference, next).await?,
            }
        }
        Ok(due.len())
    }
}

fn unreadable(what: &str) -> FundingWrite {
    FundingWrite::Refused(format!("{what} could not be read from Flutterwave, so nothing can be held; try again"))
}

impl crate::outgoing::Lifecycle for Cards {
    type Kind = crate::domain::card::CardFundings;
    type Row = FundingRow;
    const NAME: &'static str = "card funding";

    async fn unapproved_expired(&self, now: i64) -> Result<Vec<String>, StoreError> {
        self.store.fundings_unapproved_expired(now, 200).await
    }

    async fn expire(&self, reference: &str) -> Result<(), StoreError> {
        self.store.close_funding(reference, FundingStatus::Expired, "not approved in time", None).await?;
        Ok(())
    }

    async fn queued(&self, limit: i64) -> Result<Vec<(FundingRow, Vec<String>)>, StoreError> {
        self.store.fundings_queued(limit).await
    }

    fn pending<'a>(f: &'a FundingRow, approved_by: &'a [String]) -> PendingFunding<'a> {
        crate::outgoing::pending(&f.reference, f.status, &f.created_by, approved_by, f.approvals_needed)
    }

    async fn requeue(&self, reference: &str, why: &str) -> Result<(), StoreError> {
        self.store.requeue_funding(reference, why).await?;
        Ok(())
    }

    async fn claim(&self, approved: &crate::domain::card::FundingApproved) -> Result<bool, StoreError> {
        self.store.claim_funding(approved, now_ms() + backoff_ms(0)).await
    }

    /// A load creates the card; a funding or withdrawal moves money on it.
    async fn send(&self, f: FundingRow) -> Result<(), StoreError> {
        let Some(card) = self.store.card(&f.card_reference).await? else { return Ok(()) };
        match f.kind {
            FundingKind::Load => self.create_at_flutterwave(&card, &f).await,
            FundingKind::Fund | FundingKind::Withdraw => self.move_money(&card, &f).await,
        }
    }
}
