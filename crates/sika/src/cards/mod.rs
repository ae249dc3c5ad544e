//! Virtual cards, asynchronously: a card is stored `creating` before
//! Flutterwave is asked, once. A definite answer links Flutterwave's card
//! (its id and masked number, never the number or CVV); a refusal fails it;
//! an indefinite answer leaves it `unknown`, and the follower resolves it by
//! listing Flutterwave's cards — it never asks to create again, so one
//! request never makes two cards. `creating` becomes `active` when
//! Flutterwave says so (lookup). Off unless `SIKA_CARDS_ENABLED`.

pub mod funding;
pub mod workers;

use flutterwave::Reply;
use flutterwave::client::{Client, ErrorKind};
use rust_decimal::Decimal;

use crate::audit::{Actor, Outcome};
use crate::crypto::field::FieldCipher;
use crate::domain::card::{Billing, Cardholder, NewCard};
use crate::domain::{CardStatus, FundingKind, FundingStatus};
use crate::store::{CardFacts, CardRow, FundingRow, Store, StoreError, now_ms};

/// An `unknown` card Flutterwave still does not list after this long was never created.
pub const UNKNOWN_GIVE_UP_MS: i64 = 60 * 60 * 1000;

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("a card with this reference exists with different details")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("no such card")]
    NotFound,
    #[error("the card cannot be {0} now (it is {1})")]
    NotNow(&'static str, CardStatus),
    #[error("Flutterwave refused: {0}")]
    Refused(String),
    #[error("Flutterwave gave no definite answer; try again")]
    Unavailable,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A card event from the inbox, once checked against Flutterwave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOutcome {
    /// The card's own transactions, read back, show it: recorded in its timeline.
    Confirmed(String),
    /// No card of ours has that Flutterwave id.
    NoSuchCard,
    /// Not (yet) in the card's transactions, or no definite answer: look again later.
    NotYet,
}

/// What a person or the shop may do to a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Block,
    Unblock,
    Terminate,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "block" => Some(Action::Block),
            "unblock" => Some(Action::Unblock),
            "terminate" => Some(Action::Terminate),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Block => "block",
            Action::Unblock => "unblock",
            Action::Terminate => "terminate",
        }
    }

    /// The audit log's name for it.
    pub fn audit_action(self) -> &'static str {
        match self {
            Action::Block => "card.block",
            Action::Unblock => "card.unblock",
            Action::Terminate => "card.terminate",
        }
    }

    fn words(self) -> &'static str {
        match self {
            Action::Block => "blocked",
            Action::Unblock => "unblocked",
            Action::Terminate => "terminated",
        }
    }

    /// (from, to) status moves this action makes.
    fn moves(self) -> &'static [(CardStatus, CardStatus)] {
        match self {
            Action::Block => &[(CardStatus::Active, CardStatus::Blocked)],
            Action::Unblock => &[(CardStatus::Blocked, CardStatus::Active)],
            Action::Terminate => {
                &[(CardStatus::Active, CardStatus::Terminated), (CardStatus::Blocked, CardStatus::Terminated)]
            }
        }
    }
}

/// A card's full details for one page. Its `Debug` shows nothing of them.
pub struct Revealed {
    pub pan: String,
    pub cvv: String,
    pub expiration: String,
}

impl std::fmt::Debug for Revealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Revealed(..)")
    }
}

#[derive(Clone)]
pub struct Cards {
    store: Store,
    cipher: FieldCipher,
    flw: Client,
    pub max_amount: Decimal,
    /// Approvals and rejections of fundings commit with their entries.
    auditor: crate::audit::Auditor,
}

impl std::fmt::Debug for Cards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cards").field("max_amount", &self.max_amount).finish_non_exhaustive()
    }
}

fn fingerprint(c: &NewCard) -> String {
    let canonical = serde_json::json!({
        "currency": c.load.currency(), "amount": c.load.amount().normalize().to_string(), "debit_currency": c.debit_currency,
        "cardholder": c.cardholder, "billing": c.billing,
    });
    crate::crypto::sha256_hex(canonical.to_string().as_bytes())
}

fn facts(card: &flutterwave::cards::Card) -> CardFacts {
    CardFacts { flw_id: card.id.clone(), masked_pan: card.masked_pan.clone(), card_type: card.card_type.clone() }
}

impl Cards {
    pub fn new(store: Store, cipher: FieldCipher, flw: Client, auditor: crate::audit::Auditor) -> Self {
        Cards { store, cipher, flw, max_amount: Decimal::from(10_000), auditor }
    }

    /// Records the card awaiting approval with its first load (money leaves
    /// the wallet with it, so it waits for approvers like any funding).
    /// Idempotent by reference: the same request again returns the card as it is.
    /// Issuing a card moves money (its first load): `actor`'s audit entry
    /// commits with it.
    pub async fn create(
        &self,
        actor: &crate::audit::Actor,
        created_by: &str,
        c: &NewCard,
    ) -> Result<CardRow, CreateError> {
        let fp = fingerprint(c);
        if let Some(existing) = self.store.card(&c.reference).await? {
            return if existing.fingerprint == fp { Ok(existing) } else { Err(CreateError::Conflict) };
        }
        let currency = c.load.currency();
        let holder = serde_json::json!({"cardholder": c.cardholder, "billing": c.billing}).to_string();
        let now = now_ms();
        let row = CardRow {
            reference: c.reference.to_string(),
            fingerprint: fp.clone(),
            flw_id: None,
            status: CardStatus::AwaitingApproval,
            currency,
            amount: c.load.amount(),
            name_on_card: c.name_on_card(),
            masked_pan: None,
            card_type: None,
            holder_enc: self.cipher.seal("cards", "holder", &c.reference, holder.as_bytes()),
            api_key_id: created_by.to_string(),
            failure: None,
            created_at: now,
            updated_at: now,
            checks: 0,
        };
        let load = FundingRow {
            reference: funding::load_reference(&c.reference),
            card_reference: c.reference.to_string(),
            kind: FundingKind::Load,
            amount: c.load.amount(),
            currency,
            fingerprint: fp.clone(),
            status: FundingStatus::AwaitingApproval,
            created_by: created_by.to_string(),
            approvals_needed: funding::approvals_needed(&self.store, currency, c.load.amount()).await?,
            hold: Decimal::ZERO,
            reason: None,
            flw_txn_id: None,
            expires_at: now + funding::APPROVAL_TTL_MS,
            sent_at: None,
            checks: 0,
            created_at: now,
            updated_at: now,
        };
        let details =
            serde_json::json!({"status": row.status, "currency": row.currency, "amount": row.amount.to_string()});
        let target = format!("card:{}", row.reference);
        let audit = self.auditor.draft(actor, "card.create", &target, crate::audit::Outcome::Success, details).await?;
        if !self.store.insert_card_with_load(&row, &load, audit).await? {
            // Another request with this reference won the insert.
            let existing = self.store.card(&c.reference).await?.ok_or(CreateError::Conflict)?;
            return if existing.fingerprint == fp { Ok(existing) } else { Err(CreateError::Conflict) };
        }
        Ok(row)
    }

    /// Asks Flutterwave once for an approved card (its load claimed, the card
    /// `creating`). A definite answer links the card or fails it (and its
    /// load); an indefinite one leaves both `unknown`, for the follower.
    async fn create_at_flutterwave(&self, card: &CardRow, load: &FundingRow) -> Result<(), StoreError> {
        let opened = self
            .cipher
            .open("cards", "holder", &card.reference, &card.holder_enc)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        let holder = opened.as_ref().and_then(|v| {
            Some((
                serde_json::from_value::<Cardholder>(v.get("cardholder")?.clone()).ok()?,
                serde_json::from_value::<Billing>(v.get("billing")?.clone()).unwrap_or_default(),
            ))
        });
        let Some((h, b)) = holder else {
            self.fail_card(card, load, "the sealed cardholder cannot be opened").await?;
            return Ok(());
        };
        let req = flutterwave::cards::CardRequest {
            currency: card.currency.code().to_string(),
            amount: flutterwave::Amount::from(card.amount),
            debit_currency: Some(load.currency.code().to_string()),
            billing_name: Some(card.name_on_card.clone()),
            billing_address: b.address,
            billing_city: b.city,
            billing_state: b.state,
            billing_postal_code: b.postal_code,
            billing_country: b.country,
            first_name: h.first_name,
            last_name: h.last_name,
            date_of_birth: h.date_of_birth,
            email: h.email,
            phone: h.phone,
            title: h.title,
            gender: h.gender,
            callback_url: None,
        };
        self.store.card_event(&card.reference, "creating", "asked Flutterwave to create the card").await?;
        match self.flw.create_card(&req).await {
            Reply::Ok(flw_card) => {
                let to = if flw_card.is_active { CardStatus::Active } else { CardStatus::Creating };
                self.store.card_linked(&card.reference, CardStatus::Creating, to, &facts(&flw_card)).await?;
                self.settle_load(&card.reference, FundingStatus::Succeeded, "made with the card").await?;
            }
            Reply::Rejected(e) => {
                let why: String = e.message.chars().filter(|c| !c.is_control()).take(200).collect();
                self.fail_card(card, load, &why).await?;
            }
            Reply::Indefinite(why) => {
                tracing::warn!(reference = %card.reference, ?why, "card creation had no definite answer; looking it up, never asking again");
                self.store
                    .card_moved(
                        &card.reference,
                        CardStatus::Creating,
                        CardStatus::Unknown,
                        "no definite answer; looking it up",
                    )
                    .await?;
            }
        }
        Ok(())
    }

    async fn fail_card(&self, card: &CardRow, load: &FundingRow, why: &str) -> Result<(), StoreError> {
        self.store.card_moved(&card.reference, CardStatus::Creating, CardStatus::Failed, why).await?;
        self.store.settle_funding(&load.reference, FundingStatus::Failed, None, why).await?;
        Ok(())
    }

    /// The first load follows its card: made when the card is, not when it is not.
    async fn settle_load(&self, card_reference: &str, to: FundingStatus, detail: &str) -> Result<(), StoreError> {
        self.store.settle_funding(&funding::load_reference(card_reference), to, None, detail).await?;
        Ok(())
    }

    pub async fn card(&self, reference: &str) -> Result<Option<CardRow>, StoreError> {
        self.store.card(reference).await
    }

    /// One page of cards for a list, and how many match in all.
    pub async fn list(&self, q: &crate::store::CardQuery) -> Result<(Vec<CardRow>, i64), StoreError> {
        self.store.cards_query(q).await
    }

    /// The follower's pass: `creating` cards become `active` when Flutterwave
    /// says so; `unknown` ones are found in Flutterwave's list (or, after
    /// an hour without a trace, failed: nothing was created). Returns how
    /// many were looked at.
    pub async fn follow(&self, now: i64) -> Result<usize, StoreError> {
        let due = self.store.cards_due(now, 50).await?;
        let mut listed: Option<Vec<flutterwave::cards::Card>> = None;
        for c in &due {
            let next = now + backoff_ms(c.checks);
            match (c.status, &c.flw_id) {
                (CardStatus::Creating, Some(id)) => match self.flw.get_card(id).await {
                    Reply::Ok(card) if card.is_active => {
                        self.store
                            .card_linked(&c.reference, CardStatus::Creating, CardStatus::Active, &facts(&card))
                            .await?;
                    }
                    _ => self.store.card_checked(&c.reference, next).await?,
                },
                (CardStatus::Unknown, _) | (CardStatus::Creating, None) => {
                    if listed.is_none() {
                        listed = match self.flw.list_cards().await {
                            Reply::Ok(cards) => Some(cards),
                            _ => {
                                self.store.card_checked(&c.reference, next).await?;
                                continue;
                            }
                        };
                    }
                    let cards = listed.as_deref().unwrap_or_default();
                    let mut found = self.match_unknown(c, cards).await?;
                    match (found.len(), found.pop()) {
                        (1, Some(card)) => {
                            let to = if card.is_active { CardStatus::Active } else { CardStatus::Creating };
                            if self.store.card_linked(&c.reference, c.status, to, &facts(card)).await? {
                                self.settle_load(&c.reference, FundingStatus::Succeeded, "found with the card").await?;
                            } else {
                                self.store.card_checked(&c.reference, next).await?;
                            }
                        }
                        // Nothing like it at Flutterwave long after it was asked for: never made.
                        (0, _) if now - c.updated_at.max(c.created_at) > UNKNOWN_GIVE_UP_MS => {
                            let why = "Flutterwave has no such card";
                            if self.store.card_moved(&c.reference, c.status, CardStatus::Failed, why).await? {
                                self.settle_load(&c.reference, FundingStatus::Failed, why).await?;
                            }
                        }
                        // None yet, or more than one that could be it: a card that may hold its
                        // load is never called failed; it stays looked up (and visible) until it is clear.
                        _ => self.store.card_checked(&c.reference, next).await?,
                    }
                }
                _ => {}
            }
        }
        Ok(due.len())
    }

    /// Flutterwave's cards that could be the one made for `c`: the same name,
    /// currency and first load, linked to no other card. Only a single
    /// candidate is linked.
    async fn match_unknown<'a>(
        &self,
        c: &CardRow,
        cards: &'a [flutterwave::cards::Card],
    ) -> Result<Vec<&'a flutterwave::cards::Card>, StoreError> {
        let mut candidates = Vec::new();
        for card in cards {
            let same = card.name_on_card.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(&c.name_on_card))
                && card.currency.eq_ignore_ascii_case(c.currency.code())
                && card.amount.decimal() == c.amount;
            if same && self.store.card_by_flw_id(&card.id).await?.is_none() {
                candidates.push(card);
            }
        }
        Ok(candidates)
    }

    /// A flat card event (debit, credit, OTP): it changes nothing until the
    /// card's transactions, read from Flutterwave, show the same transaction
    /// (id, amount, direction); a forged event never does. Only then is it
    /// written to the card's timeline (the amount and the masked number; the
    /// balance stays Flutterwave's, read live).
    pub async fn card_event(&self, ev: &flutterwave::webhook::CardEvent) -> Result<EventOutcome, StoreError> {
        let Some(c) = self.store.card_by_flw_id(&ev.card_id).await? else { return Ok(EventOutcome::NoSuchCard) };
        let Some(txn_id) = ev.transaction_id.as_deref() else { return Ok(EventOutcome::NotYet) };
        let from = crate::timefmt::iso(c.created_at - 86_400_000);
        let to = crate::timefmt::iso(now_ms() + 86_400_000);
        let txns = match self.flw.card_transactions(&ev.card_id, &from[..10], &to[..10], 0, 100).await {
            Reply::Ok(t) => t,
            _ => return Ok(EventOutcome::NotYet),
        };
        let debit = ev.kind.as_deref().is_some_and(|k| k.eq_ignore_ascii_case("debit"));
        let Some(t) = txns.iter().find(|t| t.id == txn_id) else { return Ok(EventOutcome::NotYet) };
        let same_amount = ev.amount.is_none_or(|a| a.decimal() == t.amount.decimal());
        let same_way = t.indicator.as_deref().is_none_or(|i| (i == "D") == debit);
        if !same_amount || !same_way {
            return Ok(EventOutcome::NotYet);
        }
        // A declined purchase moved nothing: it is recorded as declined, with Flutterwave's reason.
        let declined = t.status.as_deref().is_some_and(|s| {
            let s = s.to_ascii_lowercase();
            s.starts_with("declin") || s.starts_with("fail")
        });
        let clean =
            |s: Option<&str>| s.unwrap_or("").chars().filter(|ch| !ch.is_control()).take(60).collect::<String>();
        let mut what = format!(
            "{} {} {} ({})",
            if debit { "debit" } else { "credit" },
            c.currency,
            t.amount.decimal(),
            clean(t.narration.as_deref())
        );
        if declined {
            what = format!("{what} declined: {}", clean(t.response_message.as_deref()));
        }
        let kind = match (declined, debit) {
            (true, _) => "declined",
            (false, true) => "debit",
            (false, false) => "credit",
        };
        self.store.card_transaction_seen(&c.reference, kind, &what, txn_id, t.amount.decimal()).await?;
        Ok(EventOutcome::Confirmed(what))
    }

    /// The card's timeline: (when, kind, detail).
    pub async fn events(&self, reference: &str) -> Result<Vec<(i64, String, String)>, StoreError> {
        self.store.card_events(reference).await
    }

    /// Block, unblock or terminate: Flutterwave first, then our row, conditionally.
    /// Blocks, unblocks or terminates a card at Flutterwave, for `actor`. Done, the card's
    /// new status, its timeline entry and the audit entry commit together; not done
    /// (refused, no definite answer, not possible now), the attempt is recorded on its own.
    pub async fn act(&self, actor: &Actor, reference: &str, action: Action) -> Result<CardRow, ActionError> {
        let result = self.act_at_flutterwave(actor, reference, action).await;
        if let Err(e) = &result
            && !matches!(e, ActionError::Store(_))
        {
            let details = serde_json::json!({"why": e.to_string()});
            let target = format!("card:{reference}");
            self.auditor.record(actor, action.audit_action(), &target, Outcome::Failure, details).await?;
        }
        result
    }

    async fn act_at_flutterwave(&self, actor: &Actor, reference: &str, action: Action) -> Result<CardRow, ActionError> {
        let c = self.store.card(reference).await?.ok_or(ActionError::NotFound)?;
        let Some((from, to)) = action.moves().iter().copied().find(|(from, _)| *from == c.status) else {
            return Err(ActionError::NotNow(action.words(), c.status));
        };
        let Some(id) = &c.flw_id else { return Err(ActionError::NotNow(action.words(), c.status)) };
        let reply = match action {
            Action::Block => self.flw.block_card(id).await,
            Action::Unblock => self.flw.unblock_card(id).await,
            Action::Terminate => self.flw.terminate_card(id).await,
        };
        match reply {
            Reply::Ok(()) => {
                let target = format!("card:{reference}");
                let details = serde_json::json!({"from": from.as_str(), "to": to.as_str()});
                let audit =
                    self.auditor.draft(actor, action.audit_action(), &target, Outcome::Success, details).await?;
                let why = format!("{} at Flutterwave", action.words());
                self.store.card_moved_audited(reference, from, to, &why, Some(audit)).await?;
            }
            Reply::Rejected(e) if e.kind == ErrorKind::NotFound => {
                return Err(ActionError::Refused("no such card".into()));
            }
            Reply::Rejected(e) => return Err(ActionError::Refused(e.message.chars().take(200).collect())),
            Reply::Indefinite(_) => return Err(ActionError::Unavailable),
        }
        self.store.card(reference).await?.ok_or(ActionError::NotFound)
    }

    /// The full number, CVV and expiry, read now from Flutterwave for one
    /// page: never stored, logged or cached (the caller audits who asked).
    pub async fn reveal(&self, reference: &str) -> Result<Revealed, ActionError> {
        let c = self.store.card(reference).await?.ok_or(ActionError::NotFound)?;
        if !matches!(c.status, CardStatus::Active | CardStatus::Blocked) {
            return Err(ActionError::NotNow("shown", c.status));
        }
        let Some(id) = c.flw_id.as_deref() else { return Err(ActionError::NotNow("shown", c.status)) };
        match self.flw.get_card(id).await {
            Reply::Ok(card) => match (card.card_pan, card.cvv) {
                (Some(pan), Some(cvv)) => Ok(Revealed { pan, cvv, expiration: card.expiration.unwrap_or_default() }),
                _ => Err(ActionError::Refused("Flutterwave did not return the number".into())),
            },
            Reply::Rejected(e) => Err(ActionError::Refused(e.message.chars().take(200).collect())),
            Reply::Indefinite(_) => Err(ActionError::Unavailable),
        }
    }

    /// The card's balance, read now from Flutterwave (never stored); `None`
    /// when it has no Flutterwave card or no definite answer came.
    pub async fn balance(&self, c: &CardRow) -> Option<Decimal> {
        match self.flw.get_card(c.flw_id.as_deref()?).await {
            Reply::Ok(card) => Some(card.amount.decimal()),
            _ => None,
        }
    }

    /// The card's transactions, read live from Flutterwave (never cached).
    pub async fn transactions(&self, reference: &str) -> Result<Vec<flutterwave::cards::CardTransaction>, ActionError> {
        let c = self.store.card(reference).await?.ok_or(ActionError::NotFound)?;
        let Some(id) = &c.flw_id else { return Ok(Vec::new()) };
        let from = crate::timefmt::iso(c.created_at - 86_400_000);
        let to = crate::timefmt::iso(now_ms() + 86_400_000);
        match self.flw.card_transactions(id, &from[..10], &to[..10], 0, 100).await {
            Reply::Ok(t) => Ok(t),
            Reply::Rejected(e) => Err(ActionError::Refused(e.message.chars().take(200).collect())),
            Reply::Indefinite(_) => Err(ActionError::Unavailable),
        }
    }
}

/// 30 s, doubling, at most 10 minutes.
pub(crate) fn backoff_ms(checks: i64) -> i64 {
    (30_000i64 << checks.clamp(0, 5)).min(600_000)
}
