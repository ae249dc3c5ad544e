//! Collecting payments: creating checkouts, taking webhooks into the inbox,
//! and verifying with Flutterwave before anything changes.
//!
//! The flow: the shop creates a checkout (`create`) and sends its customer to
//! the hosted link. Flutterwave's webhook is checked and stored (`receive`)
//! and answered 200 at once; the inbox worker (`crate::inbox`) later calls
//! verify by transaction id and applies the money rule
//! (`domain::checkout::judge`). A return visit (`return_visit`), the
//! reconciler and expiry (`expiry.rs`) verify by reference; refunds
//! (`refunds.rs`) are followed until Flutterwave calls them final.

pub mod answers;
pub mod chargebacks;
pub mod expiry;
pub mod list;
pub mod notify;
pub mod overview;
pub mod refunds;
pub mod workers;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use flutterwave::webhook::{self, SignatureCheck};
use flutterwave::{Client, ErrorKind, Reply};
use rust_decimal::Decimal;
use serde_json::json;

use crate::crypto::field::FieldCipher;
use crate::crypto::{random, sha256_hex};
use crate::domain::CheckoutStatus;
use crate::domain::checkout::{Expected, NewCheckout, Verdict, judge};
use crate::secret::Secret;
use crate::store::{CheckoutRow, Notification, Store, StoreError, now_ms};

pub use expiry::{reconcile, reconcile_at};
pub use refunds::RefundOutcome;

/// The blind-index purpose for customers' e-mails on checkouts.
const CUSTOMER_EMAIL_INDEX: &str = "customer_email";
/// The merchant's name, shown to customers (hosted page title, return page).
pub use crate::store::settings::MERCHANT_NAME as MERCHANT_NAME_SETTING;

/// How the customer paid, from a verify answer, in plain bounded text: the
/// card's brand and last four digits only (never more of the number).
fn payment_details(tx: &flutterwave::transactions::Transaction) -> crate::store::PaymentDetails {
    let clean = |s: Option<&str>, max: usize| {
        s.map(|v| v.chars().filter(|c| !c.is_control()).take(max).collect::<String>())
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let card = tx.card.as_ref();
    crate::store::PaymentDetails {
        payment_type: clean(tx.payment_type.as_deref(), 40),
        card_brand: clean(card.and_then(|c| c.card_type.as_deref()), 30),
        card_last4: card
            .and_then(|c| c.last_4digits.as_deref())
            .filter(|l| l.len() == 4 && l.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_string),
        fee: tx.app_fee.map(|f| f.decimal()),
        processor_response: clean(tx.processor_response.as_deref(), 200),
        // As Flutterwave says it, or nothing: never `amount − fee`.
        settled_amount: tx.amount_settled.map(|a| a.decimal()),
        charged_amount: tx.charged_amount.map(|a| a.decimal()),
    }
}

#[derive(Debug, Clone)]
pub struct Payments {
    store: Store,
    cipher: FieldCipher,
    flw: Client,
    secret_hash: Secret,
    /// Drafts the audit entries of the privileged changes made here (links, refunds,
    /// notification tests and replays), each committed with its change.
    auditor: crate::audit::Auditor,
    /// Sika's own return URL for the hosted checkout.
    return_url: String,
    pub max_amount: Decimal,
    /// A checkout not paid within this time is closed — on a definite answer only.
    pub expire_after_ms: i64,
    /// A transaction Flutterwave still calls `pending` this long after expiry
    /// stops holding its checkout open (a later success is a late payment).
    pub pending_grace_ms: i64,
    /// The return page verifies a checkout at most once per this interval.
    pub return_verify_interval_ms: i64,
    /// Inbox rows are dead-lettered after this many attempts.
    pub max_inbox_attempts: i64,
    /// Refused webhook deliveries (forged, unsigned), for monitoring.
    pub refused_webhooks: Arc<AtomicU64>,
    /// The shop's notification URL may point to this machine (the demo).
    pub notify_allow_loopback: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("a checkout with this reference exists with different details")]
    Conflict,
    #[error("Flutterwave refused the checkout: {0}")]
    Refused(String),
    #[error("Flutterwave did not answer definitely; retry with the same reference")]
    Unavailable,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What became of one verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The checkout moved (paid, needs_review); `false` if another worker had already moved it.
    Settled { status: CheckoutStatus, moved: bool },
    /// A failed attempt: the checkout stays open.
    AttemptFailed,
    /// Flutterwave answered definitely that the transaction is not final yet (`pending`).
    NotFinal,
    /// No definite answer: try again later.
    Retry,
    /// No checkout has this transaction's reference.
    Unmatched,
    /// Flutterwave says, definitely, there is no such transaction.
    NoSuchTransaction,
}

impl Applied {
    /// What one look at Flutterwave found, in words for the timeline.
    pub fn describe(&self) -> String {
        match self {
            Applied::Settled { status, moved: true } => format!("settled: {}", status.label().to_lowercase()),
            Applied::Settled { status, moved: false } => format!("already {}", status.label().to_lowercase()),
            Applied::AttemptFailed => "the customer's attempt failed; the payment stays open".into(),
            Applied::NotFinal => "still pending at Flutterwave".into(),
            Applied::Retry => "no definite answer; Sika asks again later".into(),
            Applied::Unmatched => "the answer was about another reference".into(),
            Applied::NoSuchTransaction => "nothing paid yet".into(),
        }
    }
}

/// Checkouts expire a day after creation, after the reconciler's last check.
pub const DEFAULT_EXPIRY_MS: i64 = 25 * 3_600_000;
/// How long after expiry a still-`pending` transaction keeps its checkout open.
pub const DEFAULT_PENDING_GRACE_MS: i64 = 7 * 86_400_000;
pub const DEFAULT_RETURN_VERIFY_INTERVAL_MS: i64 = 10_000;
/// About nine hours of retries (5 s doubling to 10 min) before a person is asked to look.
pub const DEFAULT_MAX_INBOX_ATTEMPTS: i64 = 60;
pub use crate::inbox::{INBOX_LEASE_MS, ROW_TIMEOUT};

impl Payments {
    pub fn new(
        store: Store,
        cipher: FieldCipher,
        flw: Client,
        secret_hash: Secret,
        public_url: &url::Url,
        auditor: crate::audit::Auditor,
    ) -> Self {
        let return_url = public_url.join("/checkout/return").map(|u| u.to_string()).unwrap_or_default();
        Payments {
            store,
            cipher,
            flw,
            secret_hash,
            auditor,
            return_url,
            max_amount: Decimal::from(crate::domain::checkout::DEFAULT_MAX_AMOUNT),
            expire_after_ms: DEFAULT_EXPIRY_MS,
            pending_grace_ms: DEFAULT_PENDING_GRACE_MS,
            return_verify_interval_ms: DEFAULT_RETURN_VERIFY_INTERVAL_MS,
            max_inbox_attempts: DEFAULT_MAX_INBOX_ATTEMPTS,
            refused_webhooks: Arc::default(),
            notify_allow_loopback: false,
        }
    }

    pub fn flutterwave(&self) -> &Client {
        &self.flw
    }

    /// The database, for the capabilities beside this one (the inbox).
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// A checkout's timeline and the notifications the shop was sent for it.
    pub async fn history(
        &self,
        reference: &str,
    ) -> Result<(Vec<(i64, String, String)>, Vec<crate::store::OutboxRow>), StoreError> {
        Ok((self.store.checkout_events(reference).await?, self.store.outbox_for(reference).await?))
    }

    /// What may still be refunded: paid less every refund not definitely failed.
    pub async fn refundable(&self, reference: &str) -> Result<Option<Decimal>, StoreError> {
        self.store.refundable(reference).await
    }

    pub fn cipher(&self) -> &FieldCipher {
        &self.cipher
    }

    /// Creates (or, for the same body, returns) a checkout and its hosted link. Made `by`
    /// someone in the console, it is audited as `payment_link.create` in the same transaction.
    pub async fn create(
        &self,
        api_key_id: &str,
        c: &NewCheckout,
        by: Option<&crate::audit::Actor>,
    ) -> Result<CheckoutRow, CreateError> {
        let audit = match by {
            Some(actor) => {
                let details =
                    serde_json::json!({"amount": c.price.amount().to_string(), "currency": c.price.currency()});
                let target = format!("checkout:{}", c.reference);
                let outcome = crate::audit::Outcome::Success;
                Some(self.auditor.draft(actor, "payment_link.create", &target, outcome, details).await?)
            }
            None => None,
        };
        let r = &c.reference;
        let now = now_ms();
        let row = CheckoutRow {
            reference: r.to_string(),
            fingerprint: c.fingerprint(),
            amount: c.price.amount(),
            currency: c.price.currency(),
            email_enc: self.cipher.seal_str("checkouts", "email", r, &c.email),
            name_enc: c.name.as_deref().map(|n| self.cipher.seal_str("checkouts", "name", r, n)),
            phone_enc: c.phone.as_deref().map(|p| self.cipher.seal_str("checkouts", "phone", r, p)),
            redirect_url: c.redirect_url.clone(),
            status: CheckoutStatus::Pending,
            checkout_url: None,
            transaction_id: None,
            paid_amount: None,
            review_reason: None,
            api_key_id: api_key_id.into(),
            created_at: now,
            updated_at: now,
            refunded: Decimal::ZERO,
            email_index: Some(self.cipher.blind_index(CUSTOMER_EMAIL_INDEX, &c.email)),
            description: c.description.clone(),
            link_expires_at: c.expires_in_minutes.map(|m| now + m * 60_000),
            payment: Default::default(),
        };
        self.store.insert_checkout(&row, audit).await?;
        let Some(existing) = self.store.checkout(r).await? else { return Err(CreateError::Unavailable) };
        if !crate::crypto::ct_eq(&existing.fingerprint, &row.fingerprint) {
            return Err(CreateError::Conflict);
        }
        if existing.checkout_url.is_some() || existing.status != CheckoutStatus::Pending {
            return Ok(existing);
        }
        let req = flutterwave::payments::PaymentRequest {
            tx_ref: r.to_string(),
            amount: c.price.amount().into(),
            currency: c.price.currency().code().to_string(),
            redirect_url: self.return_url.clone(),
            customer: flutterwave::payments::PaymentCustomer {
                email: c.email.clone(),
                name: c.name.clone(),
                phone_number: c.phone.clone(),
            },
            customizations: Some(flutterwave::payments::Customizations {
                title: self.store.setting(MERCHANT_NAME_SETTING).await?,
                description: c.description.clone(),
                logo: None,
            })
            .filter(|z| z.title.is_some() || z.description.is_some()),
            payment_options: None,
            meta: None,
            session_duration: None,
            max_retry_attempt: None,
        };
        match self.flw.create_payment(&req).await {
            Reply::Ok(link) => {
                self.store.set_checkout_url(r, &link.link).await?;
                Ok(CheckoutRow { checkout_url: Some(link.link), ..existing })
            }
            Reply::Rejected(e) => Err(CreateError::Refused(e.message)),
            Reply::Indefinite(why) => {
                tracing::warn!(reference = %r, ?why, "creating the hosted link got no definite answer");
                Err(CreateError::Unavailable)
            }
        }
    }

    /// Checks a delivery's signature (constant time, failing closed) and
    /// stores it, sealed, before the caller answers 200. `Err` → answer 401.
    pub async fn receive(
        &self,
        verif_hash: Option<&[u8]>,
        signature: Option<&[u8]>,
        body: &[u8],
    ) -> Result<bool, Refusal> {
        match webhook::verify_signature(Some(self.secret_hash.expose()), verif_hash, signature, body) {
            SignatureCheck::Valid => {}
            other => {
                self.refused_webhooks.fetch_add(1, Ordering::Relaxed);
                crate::metrics::count(&crate::metrics::global().webhooks, "refused");
                tracing::warn!(check = ?other, "webhook refused: bad or missing signature");
                return Err(Refusal::Signature);
            }
        }
        let id = random::hex_id();
        let sealed = self.cipher.seal("webhook_inbox", "body", &id, body);
        // Dedupe on the exact bytes: Flutterwave's retries and duplicates repeat them.
        let fresh = self.store.inbox_insert(&id, &sha256_hex(body), &sealed).await.map_err(Refusal::Store)?;
        crate::metrics::count(&crate::metrics::global().webhooks, if fresh { "received" } else { "duplicate" });
        Ok(fresh)
    }

    /// Calls verify for a transaction id and applies the money rule.
    pub async fn verify_and_apply(&self, transaction_id: i64) -> Result<Applied, StoreError> {
        let reply = self.flw.verify_transaction(transaction_id).await;
        count_verify(&reply);
        match reply {
            Reply::Ok(tx) => self.apply(&tx).await,
            Reply::Rejected(e) if e.kind == ErrorKind::NotFound => Ok(Applied::NoSuchTransaction),
            Reply::Rejected(e) => {
                tracing::warn!(transaction_id, message = %e.message, "verify refused");
                Ok(Applied::Retry)
            }
            Reply::Indefinite(why) => {
                tracing::info!(transaction_id, ?why, "verify had no definite answer; will retry");
                Ok(Applied::Retry)
            }
        }
    }

    /// For the reconciler and expiry: verify by reference, in the polling
    /// lane (served after webhook verification and payouts, on every instance).
    pub async fn settle_by_reference(&self, reference: &str) -> Result<Applied, StoreError> {
        self.settle_with(&self.flw.polling(), reference).await
    }

    async fn settle_with(&self, flw: &Client, reference: &str) -> Result<Applied, StoreError> {
        let reply = flw.verify_by_reference(reference).await;
        count_verify(&reply);
        match reply {
            Reply::Ok(tx) if tx.tx_ref == reference => self.apply(&tx).await,
            // An answer about another reference proves nothing about this one.
            Reply::Ok(_) => Ok(Applied::Retry),
            Reply::Rejected(e) if e.kind == ErrorKind::NotFound => Ok(Applied::NoSuchTransaction),
            Reply::Rejected(_) | Reply::Indefinite(_) => Ok(Applied::Retry),
        }
    }

    /// A customer back from the hosted page. Whatever the query string says,
    /// only a pending checkout is verified, only by its own reference, at most
    /// once per `return_verify_interval_ms` (claimed in the database, so on
    /// every instance together), and only within the budget's interactive
    /// share: unauthenticated visits can never spend settlement's budget.
    pub async fn return_visit(&self, reference: &str) -> Result<Option<CheckoutRow>, StoreError> {
        let Some(before) = self.store.checkout(reference).await? else { return Ok(None) };
        if before.status == CheckoutStatus::Pending
            && self.store.claim_return_verify(reference, now_ms(), self.return_verify_interval_ms).await?
        {
            self.settle_with(&self.flw.interactive(), reference).await?;
            return self.store.checkout(reference).await;
        }
        Ok(Some(before))
    }

    async fn apply(&self, tx: &flutterwave::transactions::Transaction) -> Result<Applied, StoreError> {
        // The verified transaction's own reference decides which checkout it is about,
        // whatever the webhook claimed.
        let Some(c) = self.store.checkout(&tx.tx_ref).await? else { return Ok(Applied::Unmatched) };
        let expected = Expected { reference: c.reference(), price: c.price() };
        let verdict = judge(&expected, tx);
        if c.status == CheckoutStatus::Pending && !matches!(verdict, Verdict::NotYet) {
            self.store.set_payment_details(&c.reference, &payment_details(tx)).await?;
        }
        if c.status.is_closed_unpaid() {
            return self.late(&c, tx, verdict).await;
        }
        if c.status != CheckoutStatus::Pending {
            // Settled already: nothing moves again. Another success is noted for refund.
            if c.status == CheckoutStatus::Paid
                && c.transaction_id != Some(tx.id)
                && matches!(verdict, Verdict::Paid { .. } | Verdict::NeedsReview { .. })
                && tx.status == flutterwave::transactions::TxStatus::Successful
            {
                self.another_payment(&c, tx).await?;
            }
            return Ok(Applied::Settled { status: c.status, moved: false });
        }
        Ok(match verdict {
            Verdict::Paid { proof, overpaid } => {
                let moved = self.store.mark_paid(&proof, note(&c, CheckoutStatus::Paid)).await?;
                if moved && overpaid > Decimal::ZERO {
                    let detail = format!("{overpaid} {} may be refunded", c.currency);
                    self.store.checkout_event(&c.reference, "overpaid", &detail).await?;
                }
                Applied::Settled { status: CheckoutStatus::Paid, moved }
            }
            Verdict::NeedsReview { transaction_id, reason } => {
                let n = note(&c, CheckoutStatus::NeedsReview);
                let moved = self
                    .store
                    .mark_unpaid(&c.reference, CheckoutStatus::NeedsReview, Some(transaction_id), &reason, n)
                    .await?;
                self.record_received(&c.reference, tx).await?;
                Applied::Settled { status: CheckoutStatus::NeedsReview, moved }
            }
            Verdict::AttemptFailed => {
                let why = payment_details(tx).processor_response.map(|p| format!(": {p}")).unwrap_or_default();
                self.store
                    .checkout_event(&c.reference, "attempt_failed", &format!("transaction {}{why}", tx.id))
                    .await?;
                Applied::AttemptFailed
            }
            Verdict::NotYet => Applied::NotFinal,
        })
    }

    /// Finds checkouts by the customer's e-mail: its blind index under the
    /// current key and older ones.
    pub fn customer_email_indexes(&self, email: &str) -> Vec<String> {
        self.cipher.blind_indexes(CUSTOMER_EMAIL_INDEX, email)
    }

    /// Gives checkouts created before the e-mail index existed their index
    /// (at start-up; a few hundred at a time until none is left).
    pub async fn backfill_email_index(&self) -> Result<usize, StoreError> {
        let mut done = 0;
        loop {
            let rows = self.store.checkouts_without_email_index(200).await?;
            if rows.is_empty() {
                return Ok(done);
            }
            for row in &rows {
                // A row whose e-mail cannot be opened gets a marker no search matches.
                let index = match self.customer_email(row) {
                    Some(e) => self.cipher.blind_index(CUSTOMER_EMAIL_INDEX, &e),
                    None => "unreadable".to_string(),
                };
                self.store.set_checkout_email_index(&row.reference, &index).await?;
                done += 1;
            }
        }
    }

    /// Money for a checkout already closed unpaid: a person must decide
    /// (fulfil or refund). The checkout goes to `needs_review`, the timeline
    /// says why and the shop hears `checkout.needs_review` — once.
    async fn late(
        &self,
        c: &CheckoutRow,
        tx: &flutterwave::transactions::Transaction,
        verdict: Verdict,
    ) -> Result<Applied, StoreError> {
        let what = match verdict {
            Verdict::Paid { .. } => format!("paid in full ({} {})", tx.amount.decimal(), tx.currency),
            Verdict::NeedsReview { reason, .. } => reason,
            Verdict::AttemptFailed => return Ok(Applied::AttemptFailed),
            Verdict::NotYet => return Ok(Applied::NotFinal),
        };
        let reason = format!("money arrived after the checkout was {}: {what}, transaction {}", c.status, tx.id);
        let moved =
            self.store.mark_late_payment(&c.reference, tx.id, &reason, note(c, CheckoutStatus::NeedsReview)).await?;
        self.record_received(&c.reference, tx).await?;
        if moved {
            tracing::warn!(reference = %c.reference, transaction_id = tx.id, "late payment for a closed checkout: needs review");
        }
        Ok(Applied::Settled { status: CheckoutStatus::NeedsReview, moved })
    }

    /// What verify said arrived for a checkout now under review (its transaction): the most a
    /// refund of it may return. Only a successful transaction of this reference counts.
    async fn record_received(
        &self,
        reference: &str,
        tx: &flutterwave::transactions::Transaction,
    ) -> Result<(), StoreError> {
        // A transaction of another reference is never refunded through this checkout.
        if tx.status == flutterwave::transactions::TxStatus::Successful && tx.tx_ref == reference {
            self.store.set_received_for_review(reference, tx.id, tx.amount.decimal(), &tx.currency).await?;
        }
        Ok(())
    }

    /// A second successful transaction for a paid checkout: noted once on the timeline, for refund.
    async fn another_payment(
        &self,
        c: &CheckoutRow,
        tx: &flutterwave::transactions::Transaction,
    ) -> Result<(), StoreError> {
        let detail = format!("transaction {} paid {} {} again: refund it", tx.id, tx.amount.decimal(), tx.currency);
        let seen = self.store.checkout_events(&c.reference).await?;
        if !seen.iter().any(|(_, kind, d)| kind == "paid_twice" && *d == detail) {
            self.store.checkout_event(&c.reference, "paid_twice", &detail).await?;
        }
        Ok(())
    }

    pub async fn checkout(&self, reference: &str) -> Result<Option<CheckoutRow>, StoreError> {
        self.store.checkout(reference).await
    }

    /// A checkout with its refunds and their states.
    /// A checkout's chargebacks, as Flutterwave last listed them.
    pub async fn chargebacks_of(&self, reference: &str) -> Result<Vec<crate::store::ChargebackRow>, StoreError> {
        self.store.chargebacks_of(reference).await
    }

    pub async fn checkout_with_refunds(
        &self,
        reference: &str,
    ) -> Result<Option<(CheckoutRow, Vec<crate::store::RefundRow>)>, StoreError> {
        let Some(c) = self.store.checkout(reference).await? else { return Ok(None) };
        let refunds = self.store.refunds(reference).await?;
        Ok(Some((c, refunds)))
    }

    /// The customer's details, opened (for the console).
    pub fn customer_email(&self, c: &CheckoutRow) -> Option<String> {
        self.cipher.open_str("checkouts", "email", &c.reference, &c.email_enc).ok()
    }

    /// The merchant's name for customers, from Settings ("" when not set).
    pub async fn merchant_name(&self) -> Result<String, StoreError> {
        Ok(self.store.setting(MERCHANT_NAME_SETTING).await?.unwrap_or_default())
    }

    pub fn customer_name(&self, c: &CheckoutRow) -> Option<String> {
        c.name_enc.as_deref().and_then(|n| self.cipher.open_str("checkouts", "name", &c.reference, n).ok())
    }
}

/// The shop's notification for a checkout reaching `status`.
pub(crate) fn note(c: &CheckoutRow, status: CheckoutStatus) -> Notification {
    let event = match status {
        CheckoutStatus::Paid => "checkout.paid",
        CheckoutStatus::NeedsReview => "checkout.needs_review",
        CheckoutStatus::Failed => "checkout.failed",
        CheckoutStatus::Cancelled => "checkout.cancelled",
        CheckoutStatus::Pending => "checkout.pending",
    };
    Notification {
        event,
        payload: json!({"event": event, "reference": c.reference, "status": status,
                        "amount": c.amount.to_string(), "currency": c.currency}),
    }
}

#[derive(Debug)]
pub enum Refusal {
    Signature,
    Store(StoreError),
}

/// 5 s, 10 s, 20 s … capped at 10 minutes.
/// Counts a verify call by the kind of answer, for the metrics.
fn count_verify<T>(reply: &Reply<T>) {
    let outcome = match reply {
        Reply::Ok(_) => "ok",
        Reply::Rejected(_) => "rejected",
        Reply::Indefinite(_) => "indefinite",
    };
    crate::metrics::count(&crate::metrics::global().verify, outcome);
}
