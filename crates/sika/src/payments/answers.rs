//! Answering a chargeback, by two people: one prepares the answer (accept, or
//! decline with a comment and evidence, checked by content and sealed at rest);
//! an approver who did not prepare it sends it with a fresh code — the same
//! approval rule and lifecycle as outgoing money (`domain::approval`,
//! `crate::outgoing`). Sending uploads the evidence once, then answers once; an
//! answer without a definite reply is looked up, never sent twice. Nothing is
//! sent after the chargeback's due date.

use flutterwave::Reply;
use flutterwave::chargebacks::{Answer, AnswerRequest, ChargebackStatus};
use serde_json::json;

use super::Payments;
use crate::audit::{Actor, Outcome};
use crate::domain::AnswerStatus;
use crate::domain::approval::{Approver, Pending};
use crate::domain::chargeback::{Action, AnswerApproved, ChargebackAnswers, NewAnswer};
use crate::store::{AnswerRow, AnswerWrite, StoreError, now_ms};

/// Why an answer could not be prepared, in words for the person.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn refused(why: impl Into<String>) -> PrepareError {
    PrepareError::Refused(why.into())
}

/// An answer must leave this long before the due date, or it is not sent (Flutterwave refuses late ones).
pub const LATEST_BEFORE_DUE_MS: i64 = 60_000;

impl Payments {
    /// Records an answer awaiting an approver, audited in the same transaction.
    pub async fn prepare_answer(
        &self,
        actor: &Actor,
        created_by: &str,
        chargeback_id: i64,
        answer: NewAnswer,
    ) -> Result<AnswerRow, PrepareError> {
        let Some(cb) = self.store.chargeback(chargeback_id).await? else { return Err(refused("no such chargeback")) };
        let f = cb.facts;
        if !matches!(ChargebackStatus::parse(&f.status), ChargebackStatus::Initiated | ChargebackStatus::Pending) {
            return Err(refused(format!("this chargeback is {} at Flutterwave: it takes no answer", f.status)));
        }
        let (Some(currency), Some(_)) = (f.currency, f.checkout_reference.as_deref()) else {
            return Err(refused("this chargeback is against no payment of ours: answer it on Flutterwave's dashboard"));
        };
        let Some(due) = f.due_at else {
            return Err(refused("Flutterwave gave no readable due date: answer it on Flutterwave's dashboard"));
        };
        let now = now_ms();
        if now + LATEST_BEFORE_DUE_MS >= due {
            return Err(refused("the due date has passed: Flutterwave no longer takes an answer"));
        }
        let reference = format!("cba-{chargeback_id}-{}", &crate::crypto::random::hex_id()[..8]);
        let (evidence_enc, evidence_kind) = match &answer.evidence {
            Some(e) => (Some(self.cipher.seal("chargeback_answers", "evidence", &reference, &e.bytes)), Some(e.kind)),
            None => (None, None),
        };
        let row = AnswerRow {
            reference: reference.clone(),
            chargeback_id,
            action: answer.action.as_str().into(),
            comment: answer.comment.clone(),
            evidence_enc,
            evidence_kind,
            currency,
            status: AnswerStatus::AwaitingApproval,
            created_by: created_by.to_string(),
            approvals_needed: 1,
            proof_link: None,
            failure: None,
            expires_at: due - LATEST_BEFORE_DUE_MS,
            sent_at: None,
            created_at: now,
            updated_at: now,
        };
        let details = json!({"chargeback": chargeback_id, "action": row.action,
                             "evidence": answer.evidence.as_ref().map(|e| e.kind.as_str())});
        let target = format!("chargeback:{chargeback_id}");
        let audit = self.auditor.draft(actor, "chargeback.answer.prepare", &target, Outcome::Success, details).await?;
        if !self.store.insert_answer(&row, audit).await? {
            return Err(refused("this chargeback already has an answer waiting or sent"));
        }
        Ok(row)
    }

    /// An approver's consent (a fresh code, not the preparer); a late one is refused with the reason.
    pub async fn approve_answer(
        &self,
        actor: &Actor,
        reference: &str,
        approver: &Approver<'_>,
    ) -> Result<AnswerWrite, StoreError> {
        let Some(a) = self.store.answer(reference).await? else {
            return Ok(AnswerWrite::Refused("no such answer".into()));
        };
        let target = format!("chargeback:{}", a.chargeback_id);
        let written = if now_ms() >= a.expires_at {
            AnswerWrite::Refused("the chargeback's due date has passed: the answer would arrive late".into())
        } else {
            let audit = self
                .auditor
                .draft(actor, "chargeback.answer.approve", &target, Outcome::Success, json!({"answer": reference}))
                .await?;
            self.store.approve_answer(reference, approver, audit).await?
        };
        crate::outgoing::record_refusal(&self.auditor, actor, "chargeback.answer.approve", &target, &written).await?;
        Ok(written)
    }

    /// An approver refuses an answer awaiting approval, with a reason.
    pub async fn reject_answer(&self, actor: &Actor, reference: &str, reason: &str) -> Result<bool, StoreError> {
        let Some(a) = self.store.answer(reference).await? else { return Ok(false) };
        let target = format!("chargeback:{}", a.chargeback_id);
        let details = json!({"answer": reference, "reason": reason});
        let audit = self.auditor.draft(actor, "chargeback.answer.reject", &target, Outcome::Success, details).await?;
        self.store.close_answer(reference, AnswerStatus::Rejected, &format!("rejected: {reason}"), Some(audit)).await
    }

    /// Answers waiting for an approver (the navigation's count).
    pub async fn answers_awaiting_count(&self) -> Result<i64, StoreError> {
        self.store.answers_awaiting_count().await
    }

    /// One chargeback, as last listed.
    pub async fn dispute(&self, id: i64) -> Result<Option<crate::store::ChargebackRow>, StoreError> {
        self.store.chargeback(id).await
    }

    /// An answer's evidence, opened — while it is kept (it is dropped once sent). The caller audits the reading.
    pub async fn evidence_of(
        &self,
        chargeback_id: i64,
        reference: &str,
    ) -> Result<Option<(crate::domain::chargeback::EvidenceKind, Vec<u8>)>, StoreError> {
        let Some(a) = self.store.answer(reference).await? else { return Ok(None) };
        if a.chargeback_id != chargeback_id {
            return Ok(None);
        }
        let (Some(sealed), Some(kind)) = (a.evidence_enc, a.evidence_kind) else { return Ok(None) };
        Ok(self.cipher.open("chargeback_answers", "evidence", reference, &sealed).ok().map(|b| (kind, b)))
    }

    /// A chargeback's answers, newest first (with their approvers).
    pub async fn answers_for(&self, chargeback_id: i64) -> Result<Vec<(AnswerRow, Vec<String>)>, StoreError> {
        let mut out = Vec::new();
        for a in self.store.answers_for(chargeback_id).await? {
            let approvers = self.store.answer_approvals(&a.reference).await?;
            out.push((a, approvers));
        }
        Ok(out)
    }

    /// One pass of the answers' lifecycle: expire, send what is approved, look up what is unknown.
    pub async fn work_answers(&self, now: i64) -> Result<usize, StoreError> {
        let answers = Answers(self);
        let expired = crate::outgoing::expire(&answers, now).await?;
        let sent = crate::outgoing::dispatch(&answers, 20).await?;
        let mut looked = 0;
        for a in self.store.answers_unknown(20).await? {
            self.follow_answer(a).await?;
            looked += 1;
        }
        Ok(expired + sent + looked)
    }

    /// Sends a claimed answer: the evidence once (its link kept), then the answer once.
    async fn send_answer(&self, a: AnswerRow) -> Result<(), StoreError> {
        if now_ms() >= a.expires_at {
            let why = "not sent: the due date came before it could be sent";
            self.store.finish_answer(&a.reference, AnswerStatus::Failed, Some(why)).await?;
            return Ok(());
        }
        let action = match Action::parse(&a.action) {
            Some(Action::Accept) => Answer::Accept,
            Some(Action::Decline) => Answer::Decline,
            None => {
                self.store.finish_answer(&a.reference, AnswerStatus::Failed, Some("an unreadable action")).await?;
                return Ok(());
            }
        };
        let mut proof = a.proof_link.clone();
        if let (None, Some(sealed), Some(kind)) = (&proof, &a.evidence_enc, a.evidence_kind) {
            let Ok(bytes) = self.cipher.open("chargeback_answers", "evidence", &a.reference, sealed) else {
                let why = "the sealed evidence cannot be opened";
                self.store.finish_answer(&a.reference, AnswerStatus::Failed, Some(why)).await?;
                return Ok(());
            };
            match self.flw.upload_evidence(kind.file_name(), kind.content_type(), &bytes).await {
                Reply::Ok(link) => {
                    self.store.answer_proof(&a.reference, &link).await?;
                    proof = Some(link);
                }
                Reply::Rejected(e) => {
                    let why = format!("the evidence was refused: {}", e.message.chars().take(200).collect::<String>());
                    self.store.finish_answer(&a.reference, AnswerStatus::Failed, Some(&why)).await?;
                    return Ok(());
                }
                // Nothing was answered yet: the next pass uploads again (a copy is harmless).
                Reply::Indefinite(_) => return Ok(()),
            }
        }
        // From here the answer may reach Flutterwave: mark it, so that a crash or a
        // timeout leads to a lookup, never a second answer.
        self.store.answer_attempted(&a.reference).await?;
        let request = AnswerRequest { action, comment: a.comment.clone(), prooflink: proof };
        match self.flw.answer_chargeback(a.chargeback_id, &request).await {
            Reply::Ok(cb) => {
                self.store.finish_answer(&a.reference, AnswerStatus::Sent, None).await?;
                self.record_listed(&cb).await?;
            }
            Reply::Rejected(e) => {
                let why = e.message.chars().take(200).collect::<String>();
                self.store.finish_answer(&a.reference, AnswerStatus::Failed, Some(&why)).await?;
            }
            Reply::Indefinite(why) => {
                tracing::warn!(answer = %a.reference, %why, "a chargeback answer got no definite reply; it is looked up");
            }
        }
        Ok(())
    }

    /// An answer whose reply is unknown: never attempted (a crash before) → send it; attempted →
    /// look the chargeback up: answered there → sent; still open → left for a person, never re-sent.
    async fn follow_answer(&self, a: AnswerRow) -> Result<(), StoreError> {
        if a.sent_at.is_none() {
            return self.send_answer(a).await;
        }
        let Some(cb) = self.store.chargeback(a.chargeback_id).await? else { return Ok(()) };
        let listed = match self.flw.polling().list_chargebacks(None, Some(&cb.facts.flw_ref), 1).await {
            Reply::Ok(p) => p.items,
            _ => return Ok(()),
        };
        let Some(found) = listed.into_iter().find(|c| c.id == a.chargeback_id) else { return Ok(()) };
        self.record_listed(&found).await?;
        match found.status {
            ChargebackStatus::Initiated | ChargebackStatus::Pending => {
                tracing::warn!(answer = %a.reference, "Flutterwave shows the chargeback unanswered after an unknown reply; not sent again");
            }
            ChargebackStatus::Lost if found.meta.history.iter().all(|h| !h.description.contains("Merchant")) => {
                let why = "Flutterwave shows no answer: the chargeback was lost";
                self.store.finish_answer(&a.reference, AnswerStatus::Failed, Some(why)).await?;
            }
            _ => {
                self.store.finish_answer(&a.reference, AnswerStatus::Sent, None).await?;
            }
        }
        Ok(())
    }
}

/// The answers' steps after approval, for `crate::outgoing`.
struct Answers<'a>(&'a Payments);

impl crate::outgoing::Lifecycle for Answers<'_> {
    type Kind = ChargebackAnswers;
    type Row = AnswerRow;
    const NAME: &'static str = "chargeback answer";

    async fn unapproved_expired(&self, now: i64) -> Result<Vec<String>, StoreError> {
        self.0.store.answers_unapproved_expired(now, 200).await
    }

    async fn expire(&self, reference: &str) -> Result<(), StoreError> {
        let why = "not approved before the chargeback's due date";
        self.0.store.close_answer(reference, AnswerStatus::Expired, why, None).await?;
        Ok(())
    }

    async fn queued(&self, limit: i64) -> Result<Vec<(AnswerRow, Vec<String>)>, StoreError> {
        self.0.store.answers_queued(limit).await
    }

    fn pending<'a>(a: &'a AnswerRow, approved_by: &'a [String]) -> Pending<'a, ChargebackAnswers> {
        crate::outgoing::pending(&a.reference, a.status, &a.created_by, approved_by, a.approvals_needed)
    }

    async fn requeue(&self, reference: &str, why: &str) -> Result<(), StoreError> {
        self.0.store.requeue_answer(reference, why).await
    }

    async fn claim(&self, approved: &AnswerApproved) -> Result<bool, StoreError> {
        self.0.store.claim_answer(approved).await
    }

    async fn send(&self, a: AnswerRow) -> Result<(), StoreError> {
        self.0.send_answer(a).await
    }
}
