//! Collecting payments: creating checkouts, taking webhooks into the inbox,
//! and verifying with Flutterwave before anything changes.
//!
//! The flow: the shop creates a checkout (`create`) and sends its customer to
//! the hosted link. Flutterwave's webhook is checked and stored (`receive`)
//! and answered 200 at once; the worker (`process_inbox`) later calls verify
//! by transaction id and applies the money rule (`domain::checkout::judge`).
//! A return visit (`settle_by_reference`) and the reconciler do the same.

pub mod notify;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use flutterwave::webhook::{self, SignatureCheck, WebhookEvent};
use flutterwave::{Client, ErrorKind, Reply};
use rust_decimal::Decimal;
use serde_json::json;

use crate::crypto::field::FieldCipher;
use crate::crypto::{random, sha256_hex};
use crate::domain::checkout::{Expected, NewCheckout, Verdict, judge};
use crate::secret::Secret;
use crate::store::{CheckoutRow, Notification, Store, StoreError, now_ms};

#[derive(Debug, Clone)]
pub struct Payments {
    pub store: Store,
    cipher: FieldCipher,
    flw: Client,
    secret_hash: Secret,
    /// Sika's own return URL for the hosted checkout.
    return_url: String,
    pub max_amount: Decimal,
    /// A checkout not paid within this time is closed (`cancelled`, or `failed` after failed attempts).
    pub expire_after_ms: i64,
    /// Refused webhook deliveries (forged, unsigned), for monitoring.
    pub refused_webhooks: Arc<AtomicU64>,
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
    Settled { status: &'static str, moved: bool },
    /// A failed attempt: the checkout stays open.
    AttemptFailed,
    /// Not final, or no definite answer: try again later.
    Retry,
    /// No checkout has this transaction's reference.
    Unmatched,
    /// Flutterwave says there is no such transaction.
    NoSuchTransaction,
}

impl Payments {
    pub fn new(store: Store, cipher: FieldCipher, flw: Client, secret_hash: Secret, public_url: &url::Url) -> Self {
        let return_url = public_url.join("/checkout/return").map(|u| u.to_string()).unwrap_or_default();
        Payments {
            store,
            cipher,
            flw,
            secret_hash,
            return_url,
            max_amount: Decimal::from(crate::domain::checkout::DEFAULT_MAX_AMOUNT),
            expire_after_ms: DEFAULT_EXPIRY_MS,
            refused_webhooks: Arc::default(),
        }
    }

    pub fn flutterwave(&self) -> &Client {
        &self.flw
    }

    /// Creates (or, for the same body, returns) a checkout and its hosted link.
    /// Returns the row and whether this call created it.
    pub async fn create(&self, api_key_id: &str, c: &NewCheckout) -> Result<CheckoutRow, CreateError> {
        let r = &c.reference;
        let row = CheckoutRow {
            reference: r.clone(),
            fingerprint: c.fingerprint(),
            amount: c.amount.to_string(),
            currency: c.currency.clone(),
            email_enc: self.cipher.seal_str("checkouts", "email", r, &c.email),
            name_enc: c.name.as_deref().map(|n| self.cipher.seal_str("checkouts", "name", r, n)),
            phone_enc: c.phone.as_deref().map(|p| self.cipher.seal_str("checkouts", "phone", r, p)),
            redirect_url: c.redirect_url.clone(),
            status: "pending".into(),
            checkout_url: None,
            transaction_id: None,
            paid_amount: None,
            review_reason: None,
            api_key_id: api_key_id.into(),
            created_at: now_ms(),
            updated_at: now_ms(),
        };
        self.store.insert_checkout(&row).await?;
        let Some(existing) = self.store.checkout(r).await? else { return Err(CreateError::Unavailable) };
        if !crate::crypto::ct_eq(&existing.fingerprint, &row.fingerprint) {
            return Err(CreateError::Conflict);
        }
        if existing.checkout_url.is_some() || existing.status != "pending" {
            return Ok(existing);
        }
        let req = flutterwave::payments::PaymentRequest {
            tx_ref: r.clone(),
            amount: c.amount.into(),
            currency: c.currency.clone(),
            redirect_url: self.return_url.clone(),
            customer: flutterwave::payments::PaymentCustomer {
                email: c.email.clone(),
                name: c.name.clone(),
                phone_number: c.phone.clone(),
            },
            customizations: None,
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
                tracing::warn!(check = ?other, "webhook refused: bad or missing signature");
                return Err(Refusal::Signature);
            }
        }
        let id = random::hex_id();
        let sealed = self.cipher.seal("webhook_inbox", "body", &id, body);
        // Dedupe on the exact bytes: Flutterwave's retries and duplicates repeat them.
        let fresh = self.store.inbox_insert(&id, &sha256_hex(body), &sealed).await.map_err(Refusal::Store)?;
        Ok(fresh)
    }

    /// Processes due inbox rows; returns how many were handled.
    pub async fn process_inbox(&self, batch: i64) -> Result<usize, StoreError> {
        let rows = self.store.inbox_claim(batch, 60_000).await?;
        let n = rows.len();
        for row in rows {
            let body = match self.cipher.open("webhook_inbox", "body", &row.id, &row.body_enc) {
                Ok(b) => b,
                Err(e) => {
                    self.store.inbox_finish(&row.id, "unprocessable", 0, &format!("cannot open: {e}")).await?;
                    continue;
                }
            };
            let (state, note) = match webhook::parse(&body) {
                WebhookEvent::Charge(c) => match self.verify_and_apply(c.id).await? {
                    Applied::Retry => {
                        let delay = retry_delay(row.attempts);
                        self.store.inbox_finish(&row.id, "retry", now_ms() + delay, "no definite answer yet").await?;
                        continue;
                    }
                    Applied::Unmatched => ("unmatched", "no checkout has this transaction's reference".to_string()),
                    Applied::NoSuchTransaction => ("rejected", "Flutterwave has no such transaction".to_string()),
                    other => ("done", format!("{other:?}")),
                },
                WebhookEvent::Unknown { event: None, .. } => ("unprocessable", "not a payload Sika understands".into()),
                other => ("ignored", format!("{} events are not handled yet", kind(&other))),
            };
            self.store.inbox_finish(&row.id, state, 0, &note).await?;
        }
        Ok(n)
    }

    /// Calls verify for a transaction id and applies the money rule.
    pub async fn verify_and_apply(&self, transaction_id: i64) -> Result<Applied, StoreError> {
        match self.flw.verify_transaction(transaction_id).await {
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

    /// For a return visit or the reconciler: verify by reference.
    pub async fn settle_by_reference(&self, reference: &str) -> Result<Applied, StoreError> {
        match self.flw.verify_by_reference(reference).await {
            Reply::Ok(tx) => self.apply(&tx).await,
            Reply::Rejected(e) if e.kind == ErrorKind::NotFound => Ok(Applied::Retry),
            Reply::Rejected(_) | Reply::Indefinite(_) => Ok(Applied::Retry),
        }
    }

    async fn apply(&self, tx: &flutterwave::transactions::Transaction) -> Result<Applied, StoreError> {
        // The verified transaction's own reference decides which checkout it is about,
        // whatever the webhook claimed.
        let Some(c) = self.store.checkout(&tx.tx_ref).await? else { return Ok(Applied::Unmatched) };
        let Ok(amount) = c.amount.parse::<Decimal>() else { return Ok(Applied::Retry) };
        let expected = Expected { reference: c.reference.clone(), amount, currency: c.currency.clone() };
        let payload = |status: &str| {
            json!({"event": format!("checkout.{status}"), "reference": c.reference,
                   "status": status, "amount": c.amount, "currency": c.currency})
        };
        Ok(match judge(&expected, tx) {
            Verdict::Paid { proof, overpaid } => {
                let moved = self
                    .store
                    .mark_paid(&proof, Notification { event: "checkout.paid", payload: payload("paid") })
                    .await?;
                if moved && overpaid > Decimal::ZERO {
                    self.store
                        .checkout_event(&c.reference, "overpaid", &format!("{overpaid} {} may be refunded", c.currency))
                        .await?;
                }
                Applied::Settled { status: "paid", moved }
            }
            Verdict::NeedsReview { transaction_id, reason } => {
                let note = Notification { event: "checkout.needs_review", payload: payload("needs_review") };
                let moved =
                    self.store.mark_unpaid(&c.reference, "needs_review", Some(transaction_id), &reason, note).await?;
                Applied::Settled { status: "needs_review", moved }
            }
            Verdict::AttemptFailed => {
                self.store.checkout_event(&c.reference, "attempt_failed", &format!("transaction {}", tx.id)).await?;
                Applied::AttemptFailed
            }
            Verdict::NotYet => Applied::Retry,
        })
    }

    /// Refunds a paid checkout, fully (`amount: None`) or partly. The refund
    /// has its own state; an indefinite answer leaves it `unknown` (never re-sent).
    pub async fn refund(
        &self,
        reference: &str,
        amount: Option<Decimal>,
        comment: &str,
        requested_by: &str,
    ) -> Result<RefundOutcome, StoreError> {
        let Some(c) = self.store.checkout(reference).await? else {
            return Ok(RefundOutcome::Refused("no such checkout".into()));
        };
        let (Some(tx_id), Some(paid)) =
            (c.transaction_id, c.paid_amount.as_deref().and_then(|p| p.parse::<Decimal>().ok()))
        else {
            return Ok(RefundOutcome::Refused("only a paid checkout can be refunded".into()));
        };
        if c.status != "paid" {
            return Ok(RefundOutcome::Refused("only a paid checkout can be refunded".into()));
        }
        let amount = amount.unwrap_or(paid);
        if amount <= Decimal::ZERO || amount.normalize().scale() > 2 {
            return Ok(RefundOutcome::Refused("the amount must be positive with at most 2 decimals".into()));
        }
        let Some(id) = self.store.insert_refund(reference, tx_id, amount, paid, requested_by).await? else {
            return Ok(RefundOutcome::Refused("that would refund more than was paid".into()));
        };
        let req = flutterwave::transactions::RefundRequest {
            amount: Some(amount.into()),
            comments: Some(comment.chars().take(200).collect()),
        };
        Ok(match self.flw.refund(tx_id, &req).await {
            Reply::Ok(r) => {
                self.store.finish_refund(&id, "completed", Some(r.id), &r.status).await?;
                self.store.checkout_event(reference, "refunded", &format!("{amount} {}", c.currency)).await?;
                RefundOutcome::Completed(id)
            }
            Reply::Rejected(e) => {
                self.store.finish_refund(&id, "failed", None, &e.message).await?;
                RefundOutcome::Refused(e.message)
            }
            Reply::Indefinite(why) => {
                self.store.finish_refund(&id, "unknown", None, &format!("{why:?}")).await?;
                RefundOutcome::Unknown(id)
            }
        })
    }

    /// The customer's details, opened (for the console).
    pub fn customer_email(&self, c: &CheckoutRow) -> Option<String> {
        self.cipher.open_str("checkouts", "email", &c.reference, &c.email_enc).ok()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundOutcome {
    Completed(String),
    /// Refused before or by Flutterwave, with the reason.
    Refused(String),
    /// No definite answer: shown as `unknown`, to be checked, never sent again.
    Unknown(String),
}

#[derive(Debug)]
pub enum Refusal {
    Signature,
    Store(StoreError),
}

fn kind(e: &WebhookEvent) -> &'static str {
    match e {
        WebhookEvent::Charge(_) => "charge",
        WebhookEvent::Transfer(_) => "transfer",
        WebhookEvent::Card(_) => "card",
        WebhookEvent::Refund(_) => "refund",
        WebhookEvent::Unknown { .. } => "unknown",
    }
}

/// Checkouts expire a day after creation, after the reconciler's last check.
pub const DEFAULT_EXPIRY_MS: i64 = 25 * 3_600_000;
/// Identifies the reconciler's advisory lock: one reconciler across instances.
const RECONCILER_LOCK: i64 = 0x5169_6b61_0003;

/// 5 s, 10 s, 20 s … capped at 10 minutes.
fn retry_delay(attempts: i64) -> i64 {
    (5_000_i64 << attempts.clamp(0, 7)).min(600_000)
}

/// The background worker: processes the inbox continuously and re-verifies
/// pending checkouts (the reconciler, so a missed webhook still settles).
pub async fn run_workers(p: Payments) {
    let mut last_reconcile = 0;
    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("sika/", env!("CARGO_PKG_VERSION")))
        .build();
    let http = match http {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the notification client; notifications are off");
            return;
        }
    };
    loop {
        if let Err(e) = notify::deliver_due(&p.store, &p.cipher, &http).await {
            tracing::error!(error = %e, "notification delivery failed");
        }
        match p.process_inbox(50).await {
            Ok(0) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "inbox processing failed");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
        let now = now_ms();
        if now - last_reconcile >= 5_000 {
            last_reconcile = now;
            match p.store.singleton(RECONCILER_LOCK, reconcile(&p)).await {
                Ok(Some(Err(e))) | Err(e) => tracing::error!(error = %e, "reconciler failed"),
                Ok(_) => {}
            }
        }
    }
}

/// Re-verifies pending checkouts at about 1 m, 5 m, 30 m, 2 h, 12 h and 24 h
/// after creation, inside the client's outbound budget.
pub async fn reconcile(p: &Payments) -> Result<usize, StoreError> {
    reconcile_at(p, now_ms()).await
}

/// One reconciler pass as if the time were `now` (tests look ahead with it):
/// verifies what is due, then closes what expired unpaid.
pub async fn reconcile_at(p: &Payments, now: i64) -> Result<usize, StoreError> {
    let due = p.store.checkouts_due(now, 200).await?;
    for (c, checks) in &due {
        let outcome = p.settle_by_reference(&c.reference).await?;
        p.store.checkout_event(&c.reference, "reconciled", &format!("{outcome:?}")).await?;
        p.store.checkout_checked(&c.reference, *checks, c.created_at).await?;
    }
    for (reference, failed) in p.store.checkouts_expired(now - p.expire_after_ms, 200).await? {
        // One last look: a payment may have landed since the last check.
        if let Applied::Settled { .. } = p.settle_by_reference(&reference).await? {
            continue;
        }
        let (status, event) = if failed { ("failed", "checkout.failed") } else { ("cancelled", "checkout.cancelled") };
        let Some(c) = p.store.checkout(&reference).await? else { continue };
        let payload = json!({"event": event, "reference": reference, "status": status, "amount": c.amount, "currency": c.currency});
        p.store.mark_unpaid(&reference, status, None, "expired unpaid", Notification { event, payload }).await?;
    }
    Ok(due.len())
}
