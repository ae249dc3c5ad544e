//! The webhook inbox's worker: it claims stored deliveries (a second of the
//! account's budget at a time, under a lease renewed while worked on), opens
//! each and routes it by kind — a charge to `payments` (verified, then the
//! money rule), a transfer to `payouts`, a refund back to `payments`, a card
//! event to `cards` — and records how it ended. It sits above the three
//! capabilities, so none of them holds another.

use std::time::Duration;

use flutterwave::webhook::{self, WebhookEvent};

use crate::audit::{Actor, Auditor, Outcome};
use crate::cards::Cards;
use crate::domain::InboxState;
use crate::jobs::{Schedule, Supervisor};
use crate::payments::{Applied, Payments};
use crate::payouts::Payouts;
use crate::store::{InboxRow, Store, StoreError, now_ms};

/// A claimed inbox row is its worker's for this long, renewed every third of
/// it while the worker is on it (up to [`ROW_TIMEOUT`]); a row whose instance
/// died is taken over by another within this long.
pub const INBOX_LEASE_MS: i64 = 15_000;
/// One row's processing (budget waits and client retries included) is cut off after this.
pub const ROW_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone)]
pub struct Inbox {
    store: Store,
    auditor: Auditor,
    payments: Payments,
    payouts: Payouts,
    /// Card events go here when cards are on.
    cards: Option<Cards>,
    /// Who holds the rows this process claims (random per process).
    worker_id: String,
}

impl Inbox {
    pub fn new(payments: Payments, payouts: Payouts, cards: Option<Cards>, auditor: Auditor) -> Self {
        let store = payments.store().clone();
        Inbox { store, auditor, payments, payouts, cards, worker_id: crate::crypto::random::hex_id() }
    }

    /// Deliveries a person should look at (dead, unmatched, unrecognised, …),
    /// and how many wait to be processed and since when.
    pub async fn attention(&self) -> Result<(Vec<InboxRow>, (i64, Option<i64>)), StoreError> {
        let mut rows = Vec::new();
        for s in InboxState::ATTENTION {
            rows.extend(self.store.inbox_by_state(s).await?);
        }
        Ok((rows, self.store.inbox_backlog().await?))
    }

    /// A person sends a stored delivery through again, audited with it
    /// (`false`, recorded as a failure, when it is not one that can be replayed).
    pub async fn replay(&self, actor: &Actor, id: &str) -> Result<bool, StoreError> {
        let target = format!("inbox:{id}");
        let audit =
            self.auditor.draft(actor, "webhook.replay", &target, Outcome::Success, serde_json::json!({})).await?;
        let done = self.store.inbox_replay(id, audit).await?;
        if !done {
            self.auditor.record(actor, "webhook.replay", &target, Outcome::Failure, serde_json::json!({})).await?;
        }
        Ok(done)
    }

    /// How many inbox rows one pass claims: about a second of the whole
    /// account's budget, so no instance sits on rows it cannot verify soon
    /// while another is idle.
    pub fn batch(&self) -> i64 {
        i64::from(self.payments.flutterwave().budget().rate()).clamp(1, 50)
    }

    /// Claims due inbox rows and processes them concurrently, each in its own
    /// task under [`ROW_TIMEOUT`]: a row that panics or hangs does not stop the
    /// others, and comes back after its lease (dead-lettered after
    /// `max_inbox_attempts`). The lease is renewed while a row is worked on.
    /// Returns how many rows were claimed.
    pub async fn process(&self, batch: i64) -> Result<usize, StoreError> {
        let buried = self.store.inbox_bury_exhausted(self.payments.max_inbox_attempts, now_ms()).await?;
        if buried > 0 {
            tracing::warn!(
                rows = buried,
                "webhooks dead-lettered after repeated failures; replay them from the console"
            );
        }
        let rows = self.store.inbox_claim(batch, INBOX_LEASE_MS, &self.worker_id).await?;
        let n = rows.len();
        let mut working: std::collections::HashSet<String> = rows.iter().map(|r| r.id.clone()).collect();
        let mut tasks = tokio::task::JoinSet::new();
        for row in rows {
            let p = self.clone();
            tasks.spawn(async move {
                let id = row.id.clone();
                let r = match tokio::time::timeout(ROW_TIMEOUT, p.process_row(row)).await {
                    Ok(r) => r,
                    Err(_) => {
                        tracing::warn!(inbox_id = %id, "an inbox row took too long; it is retried after its lease");
                        Ok(())
                    }
                };
                (id, r)
            });
        }
        let mut renew =
            tokio::time::interval(Duration::from_millis(u64::try_from(INBOX_LEASE_MS / 3).unwrap_or(5_000)));
        renew.tick().await;
        let mut first_error = None;
        loop {
            tokio::select! {
                done = tasks.join_next() => match done {
                    None => break,
                    Some(Ok((id, r))) => {
                        working.remove(&id);
                        if let Err(e) = r {
                            first_error = first_error.or(Some(e));
                        }
                    }
                    Some(Err(e)) => {
                        if e.is_panic() {
                            tracing::error!("an inbox row's processing panicked; it is retried after its lease");
                        }
                    }
                },
                _ = renew.tick() => {
                    let ids: Vec<String> = working.iter().cloned().collect();
                    if let Err(e) = self.store.inbox_renew(&ids, INBOX_LEASE_MS, &self.worker_id).await {
                        tracing::warn!(error = %e, "inbox leases could not be renewed; the rows may be taken over");
                    }
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(n),
        }
    }

    async fn process_row(&self, row: InboxRow) -> Result<(), StoreError> {
        let body = match self.payments.cipher().open("webhook_inbox", "body", &row.id, &row.body_enc) {
            Ok(b) => b,
            Err(e) => {
                let note = format!("cannot open: {e}");
                return self.store.inbox_finish(&row.id, InboxState::Unprocessable, 0, &note).await;
            }
        };
        let (state, note) = match webhook::parse(&body) {
            WebhookEvent::Charge(c) => match self.payments.verify_and_apply(c.id).await? {
                Applied::Retry | Applied::NotFinal => {
                    return self.retry_later(&row, "no definite final answer yet").await;
                }
                Applied::Unmatched => (InboxState::Unmatched, "no checkout has this transaction's reference".into()),
                Applied::NoSuchTransaction => (InboxState::Rejected, "Flutterwave has no such transaction".into()),
                other => (InboxState::Done, other.describe()),
            },
            WebhookEvent::Transfer(t) => match self.payouts.transfer_event(&t).await? {
                true => (InboxState::Done, format!("transfer {} looked up", t.id)),
                false => return self.retry_later(&row, "the transfer could not be looked up yet").await,
            },
            WebhookEvent::Refund(r) => match self.payments.follow_refund_event(&r).await? {
                true => (InboxState::Done, "refund followed up".into()),
                false => return self.retry_later(&row, "the refund could not be confirmed yet").await,
            },
            WebhookEvent::Card(ev) => match &self.cards {
                Some(cards) => match cards.card_event(&ev).await? {
                    crate::cards::EventOutcome::Confirmed(what) => (InboxState::Done, what),
                    crate::cards::EventOutcome::NoSuchCard => {
                        (InboxState::Unmatched, "no card of ours has this Flutterwave id".into())
                    }
                    crate::cards::EventOutcome::NotYet => {
                        return self.retry_later(&row, "the card's transactions do not show it (yet)").await;
                    }
                },
                None => (InboxState::Ignored, "cards are not enabled".into()),
            },
            // A hint only: what Flutterwave's own list says is what gets recorded.
            WebhookEvent::ChargebackHint { flw_ref } => match self.payments.look_up_chargeback(&flw_ref).await? {
                Some(0) => (InboxState::Unmatched, "Flutterwave lists no chargeback with this flw_ref".into()),
                Some(n) => {
                    (InboxState::Done, format!("looked up: {n} chargeback(s) recorded as Flutterwave lists them"))
                }
                None => return self.retry_later(&row, "the chargeback lookup got no definite answer").await,
            },
            // Kept sealed for a person, never an error to Flutterwave: a shape
            // Sika does not know yet may still be about money.
            WebhookEvent::Unknown { event, .. } => {
                let what = match event {
                    Some(e) => format!("a `{}` event Sika cannot classify", e.chars().take(60).collect::<String>()),
                    None => "a payload Sika cannot classify".into(),
                };
                (InboxState::Unrecognised, what)
            }
        };
        self.store.inbox_finish(&row.id, state, 0, &note).await
    }

    async fn retry_later(&self, row: &InboxRow, why: &str) -> Result<(), StoreError> {
        if row.attempts >= self.payments.max_inbox_attempts {
            let note = format!("{why}; gave up after {} attempts", row.attempts);
            tracing::warn!(inbox_id = %row.id, "a webhook was dead-lettered: {note}");
            return self.store.inbox_finish(&row.id, InboxState::Dead, 0, &note).await;
        }
        let next = now_ms() + retry_delay(row.attempts);
        self.store.inbox_finish(&row.id, InboxState::Retry, next, why).await
    }
}

fn retry_delay(attempts: i64) -> i64 {
    (5_000_i64 << attempts.clamp(0, 7)).min(600_000)
}

/// The inbox job, supervised like every other (see `crate::jobs`).
pub fn spawn(sup: &mut Supervisor, inbox: &Inbox) {
    let inbox = inbox.clone();
    sup.spawn(
        "inbox",
        Schedule {
            every: Duration::from_millis(200),
            // Rows run concurrently, each cut off at ROW_TIMEOUT; the pass itself a little later.
            timeout: ROW_TIMEOUT + Duration::from_secs(30),
            stall_after: ROW_TIMEOUT + Duration::from_secs(90),
        },
        move || {
            let i = inbox.clone();
            Box::pin(async move { i.process(i.batch()).await.map(|n| n > 0).map_err(|e| e.to_string()) })
        },
    );
}
