//! Disputes: every chargeback Flutterwave listed, the open ones first by due
//! date with the time left ("due in 5 h"), each linked to its checkout; a
//! chargeback's page, where an operator prepares the answer (accept, or decline
//! with a comment and an evidence file) and an approver who did not prepare it
//! sends it with a fresh code, or rejects it with a reason.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::authorized::{
    AnswerChargebacks, ApproveChargebackAnswers, Authorized, AuthorizedForm, ConsoleError, ReadEvidence, ReadPayments,
    csrf_forms, fresh_code,
};
use super::guard::{Nav, render, time};
use super::payouts::who;
use crate::audit::Outcome;
use crate::auth::roles::may;
use crate::auth::session::Current;
use crate::domain::AnswerStatus;
use crate::domain::approval::Approver;
use crate::http::AppState;
use crate::http::error::AppError;
use crate::store::{AnswerWrite, ChargebackRow, now_ms};
use crate::timefmt::Stamp;

pub struct Line {
    pub id: i64,
    pub checkout: Option<String>,
    pub amount: String,
    pub status: String,
    pub stage: String,
    pub open: bool,
    /// "due in 5 h", "overdue by 2 h", or "" when Flutterwave gave no readable date.
    pub left: String,
    pub due: Option<Stamp>,
    pub first_seen: Stamp,
}

impl Line {
    fn of(r: ChargebackRow, now: i64) -> Line {
        let f = r.facts;
        let open = f.is_open();
        let amount = match f.currency {
            Some(c) => format!("{c} {}", c.format(f.amount)),
            None => f.amount.to_string(),
        };
        Line {
            id: f.id,
            checkout: f.checkout_reference,
            amount,
            status: f.status,
            stage: f.stage,
            open,
            left: match (open, f.due_at) {
                (true, Some(at)) => crate::timefmt::due_in(now, at),
                _ => String::new(),
            },
            due: f.due_at.map(time),
            first_seen: time(r.first_seen_at),
        }
    }
}

#[derive(Template)]
#[template(path = "disputes.html")]
struct DisputesPage {
    nav: Option<Nav>,
    rows: Vec<Line>,
    due_soon: i64,
    overdue: i64,
}

/// Rows a page shows.
const PAGE: i64 = 200;

pub async fn list(State(state): State<AppState>, a: Authorized<ReadPayments>) -> Result<Response, ConsoleError> {
    let now = now_ms();
    let rows = state.payments.disputes(PAGE).await?;
    let due = state.payments.disputes_due(now).await?;
    let rows = rows.into_iter().map(|r| Line::of(r, now)).collect();
    Ok(render(&DisputesPage { nav: Nav::of(&a.current), rows, due_soon: due.due_soon, overdue: due.overdue }))
}

pub struct AnswerLine {
    pub reference: String,
    pub action: String,
    pub comment: String,
    pub evidence: Option<&'static str>,
    pub status: AnswerStatus,
    pub prepared_by: String,
    pub approvers: String,
    pub failure: Option<String>,
    pub prepared: Stamp,
}

#[derive(Template)]
#[template(path = "dispute.html")]
struct DisputePage {
    nav: Option<Nav>,
    csrf: String,
    d: Line,
    answers: Vec<AnswerLine>,
    can_prepare: bool,
    can_approve: bool,
    can_read_evidence: bool,
    error: Option<String>,
    notice: Option<String>,
}

async fn dispute_view(
    state: &AppState,
    c: &Current,
    id: i64,
    error: Option<String>,
    notice: Option<String>,
) -> Result<Response, ConsoleError> {
    let Some(row) = state.payments.dispute(id).await? else { return Err(AppError::NotFound.into()) };
    let mut answers = Vec::new();
    for (a, approvers) in state.payments.answers_for(id).await? {
        let mut names = Vec::new();
        for u in &approvers {
            names.push(who(state, u).await);
        }
        answers.push(AnswerLine {
            prepared_by: who(state, &a.created_by).await,
            approvers: names.join(", "),
            evidence: a.evidence_enc.as_ref().and(a.evidence_kind).map(|k| k.as_str()),
            reference: a.reference,
            action: a.action,
            comment: a.comment,
            status: a.status,
            failure: a.failure,
            prepared: time(a.created_at),
        });
    }
    let now = now_ms();
    let line = Line::of(row, now);
    let standing = answers.iter().any(|a| {
        matches!(
            a.status,
            AnswerStatus::AwaitingApproval | AnswerStatus::Queued | AnswerStatus::Unknown | AnswerStatus::Sent
        )
    });
    let role = c.role();
    Ok(render(&DisputePage {
        nav: Nav::of(c),
        csrf: c.csrf_token.clone(),
        can_prepare: line.open && line.checkout.is_some() && !standing && may::ANSWER_CHARGEBACKS.contains(&role),
        can_approve: may::APPROVE_CHARGEBACK_ANSWERS.contains(&role),
        can_read_evidence: may::READ_EVIDENCE.contains(&role),
        d: line,
        answers,
        error,
        notice,
    }))
}

pub async fn detail(
    State(state): State<AppState>,
    a: Authorized<ReadPayments>,
    Path(id): Path<i64>,
) -> Result<Response, ConsoleError> {
    dispute_view(&state, &a.current, id, None, None).await
}

/// The answer, as a multipart form: the role is proven before the body is read,
/// the CSRF token (inside it) right after; the file is judged by its content.
pub async fn prepare(
    State(state): State<AppState>,
    a: Authorized<AnswerChargebacks>,
    Path(id): Path<i64>,
    mut form: axum::extract::Multipart,
) -> Result<Response, ConsoleError> {
    let (c, ctx) = (a.current, a.ctx);
    let (mut csrf, mut action, mut comment, mut file) = (String::new(), String::new(), String::new(), None);
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                let why = format!("The upload could not be read: {}", e.body_text());
                return Ok(AppError::bad_request("bad_upload", why).into_response());
            }
        };
        match field.name().unwrap_or("") {
            "csrf_token" => csrf = field.text().await.unwrap_or_default(),
            "action" => action = field.text().await.unwrap_or_default().chars().take(20).collect(),
            "comment" => comment = field.text().await.unwrap_or_default().chars().take(2000).collect(),
            "evidence" => {
                let name: String = field.file_name().unwrap_or("").chars().take(200).collect();
                match field.bytes().await {
                    Ok(b) if b.is_empty() => {}
                    Ok(b) => file = Some((name, b.to_vec())),
                    Err(e) => return Ok((e.status(), "The file is too large or could not be read.").into_response()),
                }
            }
            _ => return Ok(AppError::bad_request("bad_upload", "Unexpected field in the upload.").into_response()),
        }
    }
    state.check_csrf(&c, &ctx, &csrf).await?;
    let refuse = |why: String| dispute_view(&state, &c, id, Some(why), None);
    let evidence = match file.map(|(name, bytes)| crate::domain::chargeback::evidence(&name, bytes)).transpose() {
        Ok(e) => e,
        Err(e) => return refuse(format!("The evidence was not taken: {}.", e.message)).await,
    };
    let answer = match crate::domain::chargeback::answer(&action, &comment, evidence) {
        Ok(a) => a,
        Err(e) => return refuse(format!("{}: {}.", e.field, e.message)).await,
    };
    let actor = c.actor(&ctx.ip, &ctx.user_agent);
    match state.payments.prepare_answer(&actor, &c.user.id, id, answer).await {
        Ok(_) => {
            let notice = "Prepared: an approver must send it, with a fresh code, before the due date.".to_string();
            dispute_view(&state, &c, id, None, Some(notice)).await
        }
        Err(crate::payments::answers::PrepareError::Refused(why)) => refuse(format!("Not prepared: {why}.")).await,
        Err(crate::payments::answers::PrepareError::Store(e)) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    totp: String,
    #[serde(default)]
    csrf_token: String,
}

#[derive(Deserialize)]
pub struct ReasonForm {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    csrf_token: String,
}

csrf_forms!(CodeForm, ReasonForm);

/// An approver sends the answer: a fresh code, and not the one who prepared it.
pub async fn approve(
    State(state): State<AppState>,
    Path((id, reference)): Path<(i64, String)>,
    a: AuthorizedForm<ApproveChargebackAnswers, CodeForm>,
) -> Result<Response, ConsoleError> {
    let AuthorizedForm { current: c, ctx, form: f, .. } = a;
    let code = match fresh_code(&state, &c, &ctx, &f.totp).await? {
        Ok(code) => code,
        Err(why) => return dispute_view(&state, &c, id, Some(why), None).await,
    };
    let approver = Approver { proof: &code, may_approve: true };
    let actor = c.actor(&ctx.ip, &ctx.user_agent);
    let (error, notice) = match state.payments.approve_answer(&actor, &reference, &approver).await? {
        AnswerWrite::Queued(_) => (None, Some("Approved: the answer is being sent to Flutterwave.".to_string())),
        AnswerWrite::Recorded { still_needed } => {
            (None, Some(format!("Approved; {still_needed} more approver(s) needed.")))
        }
        AnswerWrite::Refused(why) => (Some(format!("Not approved: {why}.")), None),
        AnswerWrite::Short { .. } => (Some("Not approved.".to_string()), None),
    };
    dispute_view(&state, &c, id, error, notice).await
}

pub async fn reject(
    State(state): State<AppState>,
    Path((id, reference)): Path<(i64, String)>,
    a: AuthorizedForm<ApproveChargebackAnswers, ReasonForm>,
) -> Result<Response, ConsoleError> {
    let AuthorizedForm { current: c, ctx, form: f, .. } = a;
    let reason: String = f.reason.chars().filter(|ch| !ch.is_control()).take(200).collect();
    if reason.trim().is_empty() {
        return dispute_view(&state, &c, id, Some("Give a reason for rejecting.".into()), None).await;
    }
    let actor = c.actor(&ctx.ip, &ctx.user_agent);
    match state.payments.reject_answer(&actor, &reference, reason.trim()).await? {
        true => dispute_view(&state, &c, id, None, Some("Rejected: nothing was sent.".into())).await,
        false => {
            dispute_view(&state, &c, id, Some("Only an answer awaiting approval can be rejected.".into()), None).await
        }
    }
}

/// The evidence file, to whoever may read it: audited first (no record, no file), sent as a download.
pub async fn evidence(
    State(state): State<AppState>,
    a: Authorized<ReadEvidence>,
    Path((id, reference)): Path<(i64, String)>,
) -> Result<Response, ConsoleError> {
    let Some((kind, bytes)) = state.payments.evidence_of(id, &reference).await? else {
        return Err(AppError::NotFound.into());
    };
    let actor = a.current.actor(&a.ctx.ip, &a.ctx.user_agent);
    let target = format!("chargeback:{id}");
    let details = serde_json::json!({"answer": reference, "kind": kind.as_str()});
    if let Err(r) = state.audited(&actor, "chargeback.evidence.view", &target, Outcome::Success, details).await {
        return Ok(r);
    }
    let disposition = format!("attachment; filename=\"{}\"", kind.file_name());
    Ok((
        [
            (http::header::CONTENT_TYPE, kind.content_type().to_string()),
            (http::header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}
