//! Sending money: payouts to bank accounts and mobile money, with
//! maker-checker approval, on the same machinery as collections.
//!
//! The flow: a payout is checked and quoted (`create`: bank list, account
//! resolution, corridor rules, fee) and waits for approvers who did not
//! create it (`approve`, with a fresh step-up code; the hold on the balance
//! is placed then). The dispatcher (`dispatch`) sends what the approval rule
//! consents to, with the payout's reference as Flutterwave's; an indefinite
//! answer leaves it `unknown`, never re-sent. Final states come only from
//! Flutterwave's own record: webhooks are hints that trigger a lookup
//! (`transfer_event`), and the follower (`follow`) looks up what is in flight
//! and watches successful payouts for reversals.

pub mod batches;
pub mod workers;

use flutterwave::transfers::{Transfer, TransferLookup, TransferRequest, TransferStatus};
use flutterwave::webhook::TransferEvent;
use flutterwave::{Client, ErrorKind, Reply};
use rust_decimal::Decimal;
use serde_json::json;

use crate::audit::{Actor, Auditor, Outcome};
use crate::crypto::field::FieldCipher;
use crate::domain::payout::{AccountKind, Approver, Destination, NewPayout, PendingApproval, mask, names_differ};
use crate::domain::{Currency, PayoutStatus};
use crate::store::{ApprovalWrite, Notification, PayoutRow, PayoutsWaiting, Settle, Store, StoreError, now_ms};

/// See [`Payouts::resend_unsent_after_ms`]: ten times the client's request timeout.
pub const DEFAULT_RESEND_UNSENT_AFTER_MS: i64 = 5 * 60_000;
/// How many pages of Flutterwave's transfer list a lookup by reference reads
/// at most (ten transfers a page) before it says it could not finish.
pub const DEFAULT_LOOKUP_MAX_PAGES: u32 = 30;
/// A lookup by reference reads back to this long before the payout was
/// created: room for the two clocks to disagree.
const LOOKUP_CLOCK_SKEW_MS: i64 = 15 * 60_000;
/// Flutterwave's status for a transfer it has queued and not started: one
/// that stays here waits for something only the merchant can do there.
pub const WAITING_STATUS: &str = "NEW";
/// Unapproved payouts expire after this long.
pub const DEFAULT_APPROVAL_TTL_MS: i64 = 72 * 3_600_000;
/// A bank list is fetched again after a day (and served stale if that fails).
const BANK_LIST_TTL_MS: i64 = 86_400_000;
/// Setting: above this amount (per currency) a payout needs two approvers.
pub use crate::store::settings::two_approvers_above as threshold_setting;

#[derive(Debug, Clone)]
pub struct Payouts {
    store: Store,
    cipher: FieldCipher,
    flw: Client,
    pub max_amount: Decimal,
    pub approval_ttl_ms: i64,
    /// A payout claimed for sending that Flutterwave still does not know this
    /// long after (far longer than any request can take) was never sent — the
    /// process stopped first — and is sent again with the same reference.
    pub resend_unsent_after_ms: i64,
    /// See [`DEFAULT_LOOKUP_MAX_PAGES`].
    pub lookup_max_pages: u32,
    /// Each approval, rejection and cancellation commits with its entry.
    auditor: Auditor,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("a payout with this reference exists with different details")]
    Conflict,
    /// Definite, with the reason for the caller (unknown bank, unresolved account...).
    #[error("{field}: {message}")]
    Refused { field: &'static str, message: String },
    #[error("Flutterwave did not answer definitely; retry with the same reference")]
    Unavailable,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn refused(field: &'static str, message: impl Into<String>) -> CreateError {
    CreateError::Refused { field, message: message.into() }
}

/// A payout as people see it: the account masked, names opened.
#[derive(Debug, Clone)]
pub struct PayoutView {
    pub row: PayoutRow,
    pub given_name: Option<String>,
    pub resolved_name: Option<String>,
}

/// A saved beneficiary as people see it.
#[derive(Debug, Clone)]
pub struct BeneficiaryView {
    pub row: crate::store::BeneficiaryRow,
    pub name: Option<String>,
    pub resolved_name: Option<String>,
}

/// 1 m doubling, at most 6 h, between lookups of what is in flight.
fn follow_backoff_ms(checks: i64) -> i64 {
    (60_000_i64 << checks.clamp(0, 9)).min(6 * 3_600_000)
}

/// After success, watch for a reversal at about 1 h, 1 day and 3 days.
const REVERSAL_WATCH_MS: [i64; 3] = [3_600_000, 86_400_000, 3 * 86_400_000];

impl Payouts {
    /// One page of payouts for a list, and how many match in all.
    pub async fn list(&self, q: &crate::store::PayoutQuery) -> Result<(Vec<PayoutRow>, i64), StoreError> {
        self.store.payouts_query(q).await
    }

    pub fn new(store: Store, cipher: FieldCipher, flw: Client, auditor: Auditor) -> Self {
        Payouts {
            store,
            cipher,
            flw,
            auditor,
            max_amount: Decimal::from(crate::domain::payout::DEFAULT_MAX_PAYOUT),
            approval_ttl_ms: DEFAULT_APPROVAL_TTL_MS,
            resend_unsent_after_ms: DEFAULT_RESEND_UNSENT_AFTER_MS,
            lookup_max_pages: DEFAULT_LOOKUP_MAX_PAGES,
        }
    }

    pub fn flutterwave(&self) -> &Client {
        &self.flw
    }

    /// Newest first, after `cursor`, optionally one status or part of a reference.
    pub async fn page(
        &self,
        status: Option<PayoutStatus>,
        search: Option<&str>,
        cursor: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<PayoutRow>, StoreError> {
        self.store.payouts_page(status, search, cursor, limit).await
    }

    /// Who approved a payout and when, and its timeline.
    pub async fn history(
        &self,
        reference: &str,
    ) -> Result<(Vec<(String, i64)>, Vec<(i64, String, String)>), StoreError> {
        Ok((self.store.payout_approvals(reference).await?, self.store.payout_events(reference).await?))
    }

    pub async fn awaiting_count(&self) -> Result<i64, StoreError> {
        self.store.payouts_awaiting_count().await
    }

    pub async fn batches(&self, limit: i64) -> Result<Vec<crate::store::BatchRow>, StoreError> {
        self.store.batches(None, limit).await
    }

    pub async fn beneficiaries(&self, limit: i64) -> Result<Vec<crate::store::BeneficiaryRow>, StoreError> {
        self.store.beneficiaries(limit).await
    }

    pub async fn beneficiary(&self, id: &str) -> Result<Option<crate::store::BeneficiaryRow>, StoreError> {
        self.store.beneficiary(id).await
    }

    /// The codes of a country's banks: cached, refreshed daily, served stale
    /// when Flutterwave gives no definite answer.
    pub async fn bank_codes(&self, country: &str) -> Result<Vec<flutterwave::banks::Bank>, CreateError> {
        let cached = self.store.bank_list(country).await?;
        if let Some((banks, at)) = &cached
            && now_ms() - at < BANK_LIST_TTL_MS
            && let Ok(list) = serde_json::from_str(banks)
        {
            return Ok(list);
        }
        match self.flw.banks(country).await {
            Reply::Ok(list) => {
                if let Ok(text) = serde_json::to_string(&list) {
                    self.store.set_bank_list(country, &text).await?;
                }
                Ok(list)
            }
            Reply::Rejected(e) => {
                Err(refused("beneficiary.country", format!("Flutterwave has no bank list: {}", e.message)))
            }
            Reply::Indefinite(_) => match cached.and_then(|(banks, _)| serde_json::from_str(&banks).ok()) {
                Some(stale) => Ok(stale),
                None => Err(CreateError::Unavailable),
            },
        }
    }

    /// Checks and quotes a payout, then records it awaiting approval.
    /// Idempotent by reference: the same request returns the same payout.
    /// Records a payout awaiting approval, audited as `actor`'s in the same
    /// transaction. Idempotent by reference: the same request again returns
    /// the payout as it is (and records nothing new).
    pub async fn create(&self, actor: &Actor, created_by: &str, p: &NewPayout) -> Result<PayoutRow, CreateError> {
        self.create_linked(created_by, p, None, None, Some(actor)).await
    }

    /// A failed payout is retried only as a new payout — a new reference,
    /// linked to the old, the destination copied, the fee quoted again — that
    /// needs its own approval. Never by sending the old one again.
    pub async fn retry_as_new(
        &self,
        actor: &Actor,
        created_by: &str,
        reference: &str,
        new_reference: &str,
    ) -> Result<PayoutRow, CreateError> {
        let Some(old) = self.store.payout(reference).await? else {
            return Err(refused("reference", "no such payout"));
        };
        if !matches!(old.status, PayoutStatus::Failed | PayoutStatus::Reversed) {
            return Err(refused("reference", "only a failed or reversed payout can be retried"));
        }
        let new_reference =
            crate::domain::checkout::reference(new_reference).map_err(|e| refused("reference", e.message))?;
        let account =
            self.reveal_account(&old).ok_or_else(|| refused("reference", "the sealed account cannot be opened"))?;
        let view = self.view(old.clone());
        let destination = Destination {
            country: old.country.clone(),
            bank_code: old.bank_code.clone(),
            account_number: account,
            name: view.given_name,
            kind: old.kind,
            branch_code: old.branch_code.clone(),
        };
        let p = NewPayout {
            reference: new_reference,
            money: old.money(),
            narration: old.narration.clone(),
            destination: Some(destination),
            beneficiary_id: None,
            meta: old.meta.as_deref().and_then(|m| serde_json::from_str(m).ok()),
        };
        let row = self.create_linked(created_by, &p, Some(reference), None, Some(actor)).await?;
        self.store.payout_event(reference, "retried", &format!("as {}", row.reference)).await?;
        Ok(row)
    }

    async fn create_linked(
        &self,
        created_by: &str,
        p: &NewPayout,
        retry_of: Option<&str>,
        batch_id: Option<&str>,
        by: Option<&Actor>,
    ) -> Result<PayoutRow, CreateError> {
        let fingerprint = fingerprint(p);
        if let Some(existing) = self.store.payout(&p.reference).await? {
            return if crate::crypto::ct_eq(&existing.fingerprint, &fingerprint) {
                Ok(existing)
            } else {
                Err(CreateError::Conflict)
            };
        }
        let (d, bank_name, resolved) = match (&p.destination, &p.beneficiary_id) {
            (Some(d), _) => {
                let (bank_name, resolved) = self.check_destination(d).await?;
                (d.clone(), bank_name, resolved)
            }
            (None, Some(id)) => self.saved_destination(id, p.money.currency()).await?,
            (None, None) => return Err(refused("beneficiary", "is required")),
        };
        let mismatch = match (&d.name, &resolved) {
            (Some(given), Some(found)) => names_differ(given, found),
            _ => false,
        };
        let (amount, currency) = (p.money.amount(), p.money.currency());
        let fee = self.fee(amount, currency, d.kind).await?;
        let two_above = self.store.setting(&threshold_setting(currency)).await?;
        let needed = crate::domain::approval::approvers_needed(amount, two_above.as_deref()) as i64;
        let r = &p.reference;
        let now = now_ms();
        let row = PayoutRow {
            reference: r.to_string(),
            fingerprint,
            amount,
            currency,
            fee,
            country: d.country.clone(),
            bank_code: d.bank_code.clone(),
            bank_name,
            kind: d.kind,
            branch_code: d.branch_code.clone(),
            account_enc: self.cipher.seal_str("payouts", "account", r, &d.account_number),
            account_mask: mask(&d.account_number),
            given_name_enc: d.name.as_deref().map(|n| self.cipher.seal_str("payouts", "given_name", r, n)),
            resolved_name_enc: resolved.as_deref().map(|n| self.cipher.seal_str("payouts", "resolved_name", r, n)),
            name_mismatch: mismatch,
            narration: p.narration.clone(),
            meta: p.meta.as_ref().map(|m| m.to_string()),
            status: PayoutStatus::AwaitingApproval,
            created_by: created_by.to_string(),
            approvals_needed: needed,
            hold: Decimal::ZERO,
            transfer_id: None,
            flw_status: None,
            complete_message: None,
            reason: None,
            retry_of: retry_of.map(str::to_string),
            batch_id: batch_id.map(str::to_string),
            beneficiary_id: p.beneficiary_id.clone(),
            expires_at: now + self.approval_ttl_ms,
            checks: 0,
            created_at: now,
            updated_at: now,
            flw_status_at: None,
            attention: None,
        };
        let mut events = Vec::new();
        if mismatch {
            events.push(("name_mismatch", "the given name differs from the account's name".to_string()));
        }
        if let Some(old) = retry_of {
            events.push(("retry_of", format!("a new payout retrying {old}")));
        }
        let audit = match by {
            Some(actor) => {
                let (action, details) = match retry_of {
                    Some(old) => {
                        ("payout.retry", json!({"retry_of": old, "amount": amount.to_string(), "currency": currency}))
                    }
                    None => ("payout.create", json!({"amount": amount.to_string(), "currency": currency})),
                };
                Some(self.auditor.draft(actor, action, &format!("payout:{r}"), Outcome::Success, details).await?)
            }
            None => None,
        };
        if !self.store.insert_payout(&row, &events, audit).await? {
            // Another request with this reference won the race.
            return match self.store.payout(r).await? {
                Some(e) if crate::crypto::ct_eq(&e.fingerprint, &row.fingerprint) => Ok(e),
                _ => Err(CreateError::Conflict),
            };
        }
        Ok(row)
    }

    /// The bank code against the country's bank list, and the account's
    /// holder where Flutterwave resolves accounts: (bank name, resolved name).
    pub async fn check_destination(&self, d: &Destination) -> Result<(Option<String>, Option<String>), CreateError> {
        let mut bank_name = None;
        if d.bank_code != "FLUTTERWAVE" {
            let banks = self.bank_codes(&d.country).await?;
            match banks.iter().find(|b| b.code.eq_ignore_ascii_case(&d.bank_code)) {
                Some(b) => bank_name = Some(b.name.clone()),
                None => return Err(refused("bank_code", format!("{} is not a bank in {}", d.bank_code, d.country))),
            }
        }
        Ok((bank_name, self.resolve(d).await?))
    }

    /// A saved beneficiary as a destination, checked again against the
    /// payout's currency (its corridor's rules).
    async fn saved_destination(
        &self,
        id: &str,
        currency: Currency,
    ) -> Result<(Destination, Option<String>, Option<String>), CreateError> {
        let Some(b) = self.store.beneficiary(id).await? else {
            return Err(refused("beneficiary_id", "no saved beneficiary has this id"));
        };
        let open = |column: &str, v: &Option<String>| {
            v.as_deref().and_then(|s| self.cipher.open_str("beneficiaries", column, &b.id, s).ok())
        };
        let account = self
            .cipher
            .open_str("beneficiaries", "account", &b.id, &b.account_enc)
            .map_err(|_| refused("beneficiary_id", "the saved beneficiary cannot be opened"))?;
        let req = crate::domain::payout::BeneficiaryRequest {
            country: Some(b.country.clone()),
            bank_code: b.bank_code.clone(),
            account_number: account,
            name: open("name", &b.name_enc),
            kind: Some(b.kind.as_str().to_string()),
            branch_code: b.branch_code.clone(),
        };
        let d = crate::domain::payout::destination(req, currency).map_err(|e| refused(e.field, e.message))?;
        Ok((d, b.bank_name.clone(), open("resolved_name", &b.resolved_name_enc)))
    }

    /// Saves a beneficiary: checked, resolved and sealed like a payout's destination.
    pub async fn create_beneficiary(
        &self,
        actor: &Actor,
        created_by: &str,
        req: crate::domain::payout::BeneficiaryRequest,
        currency: Currency,
    ) -> Result<BeneficiaryView, CreateError> {
        let d = crate::domain::payout::destination(req, currency).map_err(|e| refused(e.field, e.message))?;
        let (bank_name, resolved) = self.check_destination(&d).await?;
        let id = format!("ben_{}", crate::crypto::random::hex_id());
        let row = crate::store::BeneficiaryRow {
            id: id.clone(),
            country: d.country.clone(),
            bank_code: d.bank_code.clone(),
            bank_name,
            kind: d.kind,
            branch_code: d.branch_code.clone(),
            account_enc: self.cipher.seal_str("beneficiaries", "account", &id, &d.account_number),
            account_mask: mask(&d.account_number),
            name_enc: d.name.as_deref().map(|n| self.cipher.seal_str("beneficiaries", "name", &id, n)),
            resolved_name_enc: resolved
                .as_deref()
                .map(|n| self.cipher.seal_str("beneficiaries", "resolved_name", &id, n)),
            created_by: created_by.to_string(),
            created_at: now_ms(),
        };
        let details = json!({"country": row.country, "bank_code": row.bank_code, "account": row.account_mask});
        let target = format!("beneficiary:{id}");
        let audit = self.auditor.draft(actor, "beneficiary.create", &target, Outcome::Success, details).await?;
        self.store.insert_beneficiary(&row, audit).await?;
        Ok(BeneficiaryView { name: d.name, resolved_name: resolved, row })
    }

    /// Deletes a saved beneficiary, audited with it; `false` when there was none.
    pub async fn delete_beneficiary(&self, actor: &Actor, id: &str) -> Result<bool, StoreError> {
        let target = format!("beneficiary:{id}");
        let audit = self.auditor.draft(actor, "beneficiary.delete", &target, Outcome::Success, json!({})).await?;
        self.store.delete_beneficiary(id, audit).await
    }

    /// A saved beneficiary with its names opened (the account stays masked).
    pub fn beneficiary_view(&self, row: crate::store::BeneficiaryRow) -> BeneficiaryView {
        let open = |column: &str, v: &Option<String>| {
            v.as_deref().and_then(|s| self.cipher.open_str("beneficiaries", column, &row.id, s).ok())
        };
        BeneficiaryView {
            name: open("name", &row.name_enc),
            resolved_name: open("resolved_name", &row.resolved_name_enc),
            row,
        }
    }

    /// The account holder's name where Flutterwave resolves accounts (Nigerian
    /// banks, M-Pesa); `None` elsewhere. An account that definitely does not
    /// resolve is refused.
    async fn resolve(&self, d: &Destination) -> Result<Option<String>, CreateError> {
        let mpesa = d.kind == AccountKind::MobileMoney && d.bank_code == "MPS" && d.country == "KE";
        let nigerian_bank = d.kind == AccountKind::Bank && d.country == "NG";
        if !(mpesa || nigerian_bank) {
            return Ok(None);
        }
        let req = flutterwave::banks::ResolveRequest {
            account_number: d.account_number.clone(),
            account_bank: d.bank_code.clone(),
            kind: mpesa.then(|| "MOBILEMONEY".to_string()),
            country: mpesa.then(|| "KE".to_string()),
        };
        match self.flw.resolve_account(&req).await {
            Reply::Ok(a) => Ok(Some(a.account_name)),
            Reply::Rejected(e) => {
                Err(refused("account_number", format!("the account could not be resolved: {}", e.message)))
            }
            Reply::Indefinite(_) => Err(CreateError::Unavailable),
        }
    }

    async fn fee(&self, amount: Decimal, currency: Currency, kind: AccountKind) -> Result<Decimal, CreateError> {
        let kind = match kind {
            AccountKind::Bank => "account",
            AccountKind::MobileMoney => "mobilemoney",
        };
        match self.flw.transfer_fee(amount.into(), currency.code(), Some(kind)).await {
            Reply::Ok(fees) => {
                let Some(f) = fees.into_iter().find(|f| f.currency.eq_ignore_ascii_case(currency.code())) else {
                    return Err(refused("currency", "Flutterwave quotes no fee for this currency"));
                };
                let fee = f.fee.decimal();
                Ok(if f.fee_type.as_deref() == Some("percentage") {
                    (amount * fee / Decimal::from(100)).round_dp(2)
                } else {
                    fee
                })
            }
            Reply::Rejected(e) => Err(refused("amount", format!("Flutterwave refused the fee quote: {}", e.message))),
            Reply::Indefinite(_) => Err(CreateError::Unavailable),
        }
    }

    pub async fn payout(&self, reference: &str) -> Result<Option<PayoutRow>, StoreError> {
        self.store.payout(reference).await
    }

    /// Payouts Flutterwave keeps at `NEW` (waiting for approval on its
    /// dashboard, an IP not allow-listed, a currency not enabled) and those
    /// whose lookup cannot finish: counts, and the longest-waiting rows.
    pub async fn stuck(&self, limit: i64) -> Result<(PayoutsWaiting, Vec<PayoutRow>), StoreError> {
        let counts = self.store.payouts_waiting(WAITING_STATUS).await?;
        let rows = self.store.payouts_stuck(WAITING_STATUS, limit).await?;
        Ok((counts, rows))
    }

    /// Names opened (for the approver and the API; the account stays masked).
    pub fn view(&self, row: PayoutRow) -> PayoutView {
        let open = |column: &str, v: &Option<String>| {
            v.as_deref().and_then(|s| self.cipher.open_str("payouts", column, &row.reference, s).ok())
        };
        PayoutView {
            given_name: open("given_name", &row.given_name_enc),
            resolved_name: open("resolved_name", &row.resolved_name_enc),
            row,
        }
    }

    /// The full account number: only for the audited reveal in the console.
    pub fn reveal_account(&self, row: &PayoutRow) -> Option<String> {
        self.cipher.open_str("payouts", "account", &row.reference, &row.account_enc).ok()
    }

    /// The currency's available balance at Flutterwave, less Sika's holds.
    pub async fn available(&self, currency: Currency) -> Result<Option<(Decimal, Decimal)>, StoreError> {
        let held = self.store.payout_holds(currency).await?;
        Ok(match self.flw.balance(currency.code()).await {
            Reply::Ok(b) => Some((b.available_balance.decimal(), held)),
            _ => None,
        })
    }

    /// An approval, under the approval rule; the hold is placed when it completes.
    pub async fn approve(
        &self,
        actor: &Actor,
        reference: &str,
        approver: &Approver<'_>,
    ) -> Result<ApprovalWrite, StoreError> {
        let target = format!("payout:{reference}");
        let written = match self.store.payout(reference).await? {
            None => ApprovalWrite::Refused("no such payout".into()),
            Some(p) => match self.flw.balance(p.currency.code()).await {
                Reply::Ok(b) => {
                    let audit =
                        self.auditor.draft(actor, "payout.approve", &target, Outcome::Success, json!({})).await?;
                    self.store.approve_payout(reference, approver, b.available_balance.decimal(), audit).await?
                }
                _ => ApprovalWrite::Refused(
                    "Flutterwave's balance could not be read, so no hold can be placed; try again".into(),
                ),
            },
        };
        crate::outgoing::record_refusal(&self.auditor, actor, "payout.approve", &target, &written).await?;
        Ok(written)
    }

    /// An approver refuses a payout, with a reason; the shop hears `payout.failed`.
    pub async fn reject(&self, actor: &Actor, reference: &str, reason: &str) -> Result<bool, StoreError> {
        let Some(p) = self.store.payout(reference).await? else { return Ok(false) };
        let n = note(&p, PayoutStatus::Rejected, Some(reason));
        let details = json!({"reason": reason});
        let target = format!("payout:{reference}");
        let audit = self.auditor.draft(actor, "payout.reject", &target, Outcome::Success, details).await?;
        self.store.close_unapproved(reference, PayoutStatus::Rejected, reason, Some(n), Some(audit)).await
    }

    /// The creator withdraws a payout before approval.
    pub async fn cancel(&self, actor: &Actor, reference: &str) -> Result<bool, StoreError> {
        let target = format!("payout:{reference}");
        let audit = self.auditor.draft(actor, "payout.cancel", &target, Outcome::Success, json!({})).await?;
        self.store
            .close_unapproved(reference, PayoutStatus::Cancelled, "cancelled before approval", None, Some(audit))
            .await
    }

    /// Payouts not approved in time expire (`crate::outgoing::expire`).
    pub async fn expire_unapproved(&self, now: i64) -> Result<usize, StoreError> {
        crate::outgoing::expire(self, now).await
    }

    /// Sends queued payouts the approval rule consents to, one claim per
    /// reference (`crate::outgoing::dispatch`); returns how many were sent.
    pub async fn dispatch(&self, limit: i64) -> Result<usize, StoreError> {
        crate::outgoing::dispatch(self, limit).await
    }

    async fn send(&self, p: &PayoutRow) -> Result<(), StoreError> {
        let Some(account) = self.reveal_account(p) else {
            let s = settle(PayoutStatus::Failed, "failed", "the sealed account number cannot be opened");
            self.store
                .settle_payout(&p.reference, Settle { note: Some(note(p, PayoutStatus::Failed, None)), ..s })
                .await?;
            return Ok(());
        };
        let view = self.view(p.clone());
        let req = TransferRequest {
            account_bank: p.bank_code.clone(),
            account_number: account,
            amount: p.amount.into(),
            currency: p.currency.code().to_string(),
            reference: p.reference.clone(),
            debit_currency: None,
            narration: p.narration.clone(),
            callback_url: None,
            beneficiary_name: view.given_name.or(view.resolved_name),
            destination_branch_code: p.branch_code.clone(),
            meta: p.meta.as_deref().and_then(|m| serde_json::from_str(m).ok()),
        };
        match self.flw.create_transfer(&req).await {
            Reply::Ok(t) => self.apply_transfer(p, &t).await,
            // The reference is taken: this payout (or an earlier send of it) is at
            // Flutterwave already. Not a failure: look it up.
            Reply::Rejected(e) if e.kind == ErrorKind::DuplicateReference => {
                let detail = format!("Flutterwave already has this reference ({}): looked up", e.message);
                self.store.payout_event(&p.reference, "unknown", &detail).await
            }
            Reply::Rejected(e) => {
                let detail = format!("Flutterwave refused the transfer: {}", e.message);
                let s = Settle {
                    message: Some(&e.message),
                    note: Some(note(p, PayoutStatus::Failed, Some(&e.message))),
                    ..settle(PayoutStatus::Failed, "refused", &detail)
                };
                self.store.settle_payout(&p.reference, s).await?;
                Ok(())
            }
            Reply::Indefinite(why) => {
                let detail = format!("no definite answer ({why}): looked up, never sent again");
                self.store.payout_event(&p.reference, "unknown", &detail).await
            }
        }
    }

    /// Applies Flutterwave's own record of the transfer to the payout.
    async fn apply_transfer(&self, p: &PayoutRow, t: &Transfer) -> Result<(), StoreError> {
        let now = now_ms();
        let flw = t.status.as_str().to_string();
        let message = t.complete_message.as_deref().filter(|m| !m.is_empty());
        let settled = match &t.status {
            TransferStatus::Successful if p.status.in_flight() => Some((PayoutStatus::Successful, "successful")),
            TransferStatus::Failed if p.status.in_flight() => Some((PayoutStatus::Failed, "failed")),
            TransferStatus::Reversed if p.status == PayoutStatus::Successful || p.status.in_flight() => {
                Some((PayoutStatus::Reversed, "reversed"))
            }
            _ => None,
        };
        if let Some((to, event)) = settled {
            let detail = format!("transfer {} {flw}{}", t.id, message.map(|m| format!(": {m}")).unwrap_or_default());
            let s = Settle {
                transfer_id: Some(t.id),
                flw_status: Some(&flw),
                message,
                note: Some(note(p, to, message)),
                // After success, the reversal watch.
                next_check_at: (to == PayoutStatus::Successful).then_some(now + REVERSAL_WATCH_MS[0]),
                ..settle(to, event, &detail)
            };
            self.store.settle_payout(&p.reference, s).await?;
            return Ok(());
        }
        match &t.status {
            TransferStatus::Successful if p.status == PayoutStatus::Successful => {
                // Still successful: the reversal watch goes on (from the time it succeeded), then stops.
                let next = REVERSAL_WATCH_MS.iter().map(|m| p.updated_at + m).find(|at| *at > now);
                self.store.payout_checked(&p.reference, next).await?;
            }
            _ if p.status.in_flight() => {
                // At Flutterwave, not final (`NEW`, `PENDING`): recorded with since when.
                let next =
                    now + follow_backoff_ms(if p.status == PayoutStatus::Unknown { p.checks } else { p.checks + 1 });
                self.store.payout_submitted(&p.reference, t.id, &flw, next).await?;
            }
            _ => {
                self.store.payout_checked(&p.reference, Some(now + follow_backoff_ms(p.checks + 1))).await?;
            }
        }
        Ok(())
    }

    /// One follower pass: looks up in-flight payouts (by transfer id, or by
    /// reference when the create call had no definite answer) and watches
    /// successful ones for reversals. Returns how many were looked at.
    ///
    /// A payout is sent again (same reference) only when the lookup says,
    /// definitely, that Flutterwave has no such transfer long after it was
    /// claimed. A lookup that cannot finish — its pages fail, or the page
    /// bound comes first — leaves it `unknown` and asks a person to look.
    pub async fn follow(&self, now: i64) -> Result<usize, StoreError> {
        let due = self.store.payouts_to_follow(now, 100).await?;
        for p in &due {
            let looked = match p.transfer_id {
                Some(id) => self.flw.get_transfer(id).await.map(|t| TransferLookup::Found(Box::new(t))),
                None => {
                    let since = p.created_at - LOOKUP_CLOCK_SKEW_MS;
                    self.flw.find_transfer(&p.reference, Some(since), self.lookup_max_pages).await
                }
            };
            let again = Some(now + follow_backoff_ms(p.checks + 1));
            match looked {
                Reply::Ok(TransferLookup::Found(t)) => self.apply_transfer(p, &t).await?,
                Reply::Ok(TransferLookup::Absent { .. })
                    if p.status == PayoutStatus::Unknown && now - p.updated_at >= self.resend_unsent_after_ms =>
                {
                    // Claimed, then the process stopped before the request left: the
                    // same reference goes out again (Flutterwave refuses a second one).
                    let why = "Flutterwave has no transfer with this reference long after it was claimed: it was never sent; sending it again with the same reference";
                    self.store.requeue_unsent(&p.reference, why).await?;
                }
                Reply::Ok(TransferLookup::Absent { .. }) => {
                    // Not at Flutterwave (yet): keep looking.
                    if p.checks >= 24 {
                        let why = "Flutterwave shows no transfer with this reference after a day of lookups: check it";
                        self.store.payout_needs_attention(&p.reference, why).await?;
                    }
                    self.store.payout_checked(&p.reference, again).await?;
                }
                Reply::Ok(TransferLookup::Incomplete { pages }) => {
                    let why = format!(
                        "Flutterwave's transfer list was read {pages} pages back without finding this reference or \
                         reaching the time it was created: it is never sent again; find it at Flutterwave"
                    );
                    self.store.payout_needs_attention(&p.reference, &why).await?;
                    self.store.payout_checked(&p.reference, again).await?;
                }
                Reply::Rejected(e) if e.kind == ErrorKind::NotFound => {
                    self.store.payout_checked(&p.reference, again).await?;
                }
                Reply::Rejected(_) | Reply::Indefinite(_) => {
                    let lost = p.status == PayoutStatus::Unknown && p.transfer_id.is_none();
                    if lost && now - p.updated_at >= self.resend_unsent_after_ms {
                        let why = "Flutterwave's transfer list could not be read to find this payout: it is not sent again; Sika keeps looking";
                        self.store.payout_needs_attention(&p.reference, why).await?;
                    } else if p.checks >= 24 && p.status.in_flight() {
                        let why = "Flutterwave could not be asked about this payout for a day: check it";
                        self.store.payout_needs_attention(&p.reference, why).await?;
                    }
                    self.store.payout_checked(&p.reference, Some(now + follow_backoff_ms(p.checks))).await?;
                }
            }
        }
        Ok(due.len())
    }

    /// A transfer webhook is a hint: the transfer is read back from
    /// Flutterwave before anything changes. `false` when that could not be done yet.
    pub async fn transfer_event(&self, e: &TransferEvent) -> Result<bool, StoreError> {
        let t = match self.flw.get_transfer(e.id).await {
            Reply::Ok(t) => t,
            // Flutterwave does not know it: a forgery, or another account's.
            Reply::Rejected(err) if err.kind == ErrorKind::NotFound => return Ok(true),
            Reply::Rejected(_) | Reply::Indefinite(_) => return Ok(false),
        };
        let p = match self.store.payout_by_transfer(t.id).await? {
            Some(p) => Some(p),
            None => match t.reference.as_deref() {
                Some(r) => self.store.payout(r).await?,
                None => None,
            },
        };
        if let Some(p) = p
            && (p.transfer_id.is_none() || p.transfer_id == Some(t.id))
        {
            self.apply_transfer(&p, &t).await?;
        }
        Ok(true)
    }
}

fn settle<'a>(to: PayoutStatus, event: &'a str, detail: &'a str) -> Settle<'a> {
    Settle { to, transfer_id: None, flw_status: None, message: None, event, detail, note: None, next_check_at: None }
}

/// What makes two requests "the same body" for idempotency.
fn fingerprint(p: &NewPayout) -> String {
    let d = p.destination.as_ref();
    let canonical = json!([
        p.reference,
        p.money.amount().to_string(),
        p.money.currency().code(),
        p.narration,
        d.map(|d| (&d.country, &d.bank_code, &d.account_number, &d.name, d.kind.as_str(), &d.branch_code)),
        p.beneficiary_id,
        p.meta,
    ]);
    crate::crypto::sha256_hex(canonical.to_string().as_bytes())
}

/// The shop's notification for a payout reaching `status`.
fn note(p: &PayoutRow, status: PayoutStatus, message: Option<&str>) -> Notification {
    let event = match status {
        PayoutStatus::Successful => "payout.successful",
        PayoutStatus::Reversed => "payout.reversed",
        PayoutStatus::Rejected => "payout.rejected",
        _ => "payout.failed",
    };
    Notification {
        event,
        payload: json!({"event": event, "reference": p.reference, "status": status, "amount": p.amount.to_string(),
                        "currency": p.currency, "fee": p.fee.to_string(), "message": message}),
    }
}

impl crate::outgoing::Lifecycle for Payouts {
    type Kind = crate::domain::payout::Payouts;
    type Row = PayoutRow;
    const NAME: &'static str = "payout";

    async fn unapproved_expired(&self, now: i64) -> Result<Vec<String>, StoreError> {
        self.store.payouts_unapproved_expired(now, 200).await
    }

    async fn expire(&self, reference: &str) -> Result<(), StoreError> {
        self.store.close_unapproved(reference, PayoutStatus::Expired, "not approved in time", None, None).await?;
        Ok(())
    }

    async fn queued(&self, limit: i64) -> Result<Vec<(PayoutRow, Vec<String>)>, StoreError> {
        self.store.payouts_queued(limit).await
    }

    fn pending<'a>(p: &'a PayoutRow, approved_by: &'a [String]) -> PendingApproval<'a> {
        crate::outgoing::pending(&p.reference, p.status, &p.created_by, approved_by, p.approvals_needed)
    }

    async fn requeue(&self, reference: &str, why: &str) -> Result<(), StoreError> {
        self.store.requeue_for_approval(reference, why).await?;
        Ok(())
    }

    async fn claim(&self, approved: &crate::domain::payout::Approved) -> Result<bool, StoreError> {
        self.store.claim_for_dispatch(approved, now_ms() + follow_backoff_ms(0)).await
    }

    /// Claimed: it is `unknown` until Flutterwave answers.
    async fn send(&self, p: PayoutRow) -> Result<(), StoreError> {
        Payouts::send(self, &PayoutRow { status: PayoutStatus::Unknown, ..p }).await
    }
}
