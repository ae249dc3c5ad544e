//! Payouts in the console: the list and the approvals queue, creating a
//! payout (operators), a payout's page with its timeline, approving (a fresh
//! step-up code; never by its creator) and rejecting (a reason), cancelling,
//! and the audited reveal of a full account number.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use super::authorized::{
    ApprovePayouts, Authorized, AuthorizedForm, ConsoleError, CreatePayouts, ReadPayouts, RevealAccounts, csrf_forms,
    fresh_code,
};
use super::flash;
use super::forms::{FieldErrors, sentence};
use super::guard::{Nav, internal, render, time};
use crate::audit::Outcome;
use crate::auth::roles::may;
use crate::auth::session::Current;
use crate::domain::payout::{Approver, BeneficiaryRequest, PayoutRequest};
use crate::domain::{Currency, PayoutStatus};
use crate::http::AppState;
use crate::http::error::AppError;
use crate::payouts::CreateError;
use crate::store::ApprovalWrite;
use crate::timefmt::Stamp;

struct Line {
    reference: String,
    currency: Currency,
    amount: String,
    status: PayoutStatus,
    /// The account's name at the bank (else the name given).
    name: String,
    account: String,
    bank: String,
    created: Stamp,
    mismatch: bool,
}

impl Line {
    fn of(state: &AppState, p: &crate::store::PayoutRow) -> Line {
        let v = state.payouts.view(p.clone());
        Line {
            reference: p.reference.clone(),
            amount: p.currency.format(p.amount),
            currency: p.currency,
            status: p.status,
            name: v.resolved_name.or(v.given_name).unwrap_or_default(),
            account: p.account_mask.clone(),
            bank: p.bank_name.clone().unwrap_or_else(|| p.bank_code.clone()),
            created: time(p.created_at),
            mismatch: p.name_mismatch,
        }
    }
}

/// A payout a person should look at, and why in words.
struct Stuck {
    line: Line,
    why: String,
}

/// Why a payout needs a person, or waits at Flutterwave, in words; `None` when neither.
fn stuck_reason(p: &crate::store::PayoutRow, now: i64) -> Option<String> {
    if let Some(a) = &p.attention
        && p.status.holds_money()
    {
        return Some(a.clone());
    }
    let waiting =
        p.status == PayoutStatus::Submitted && p.flw_status.as_deref() == Some(crate::payouts::WAITING_STATUS);
    waiting.then(|| {
        let since = p.flw_status_at.unwrap_or(p.updated_at);
        format!(
            "Waiting at Flutterwave (NEW) for {}: it may need approving on Flutterwave's dashboard, this server's IP \
             allow-listed, or the currency enabled. Sika does not send it again.",
            crate::timefmt::span(now - since)
        )
    })
}

/// What was typed into the payout form, shown again on refusal.
#[derive(Deserialize, Default, Clone)]
pub struct NewPayoutForm {
    #[serde(default)]
    reference: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    country: String,
    #[serde(default)]
    bank_code: String,
    #[serde(default)]
    account_number: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    branch_code: String,
    #[serde(default)]
    narration: String,
    #[serde(default)]
    csrf_token: String,
}

#[derive(Template)]
#[template(path = "payouts.html")]
struct ListPage {
    nav: Option<Nav>,
    rows: Vec<Line>,
    /// At Flutterwave and not moving (`NEW`), or needing a person: longest first.
    stuck: Vec<Stuck>,
    waiting: crate::store::PayoutsWaiting,
    statuses: &'static [PayoutStatus],
    currencies: &'static [Currency],
    filter_status: String,
    filter_q: String,
    f: Filter,
    query: String,
    total: i64,
    older: Option<String>,
    can_create: bool,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "payout_new.html")]
struct NewPayoutPage {
    nav: Option<Nav>,
    csrf: String,
    currencies: &'static [Currency],
    form: NewPayoutForm,
    errors: FieldErrors,
}

fn new_payout_view(c: &Current, form: NewPayoutForm, errors: FieldErrors) -> Response {
    render(&NewPayoutPage { nav: Nav::of(c), csrf: c.csrf_token.clone(), currencies: Currency::ALL, form, errors })
}

/// The payout form, on its own page.
pub async fn new_payout(a: Authorized<CreatePayouts>) -> Response {
    let form = NewPayoutForm { currency: "NGN".into(), country: "NG".into(), ..NewPayoutForm::default() };
    new_payout_view(&a.current, form, FieldErrors::default())
}

/// The API's field names (`beneficiary.name`…), as the form calls them;
/// anything else belongs to the form as a whole.
fn form_field(api_field: &str) -> &'static str {
    match api_field.strip_prefix("beneficiary.").unwrap_or(api_field) {
        "reference" => "reference",
        "amount" => "amount",
        "currency" => "currency",
        "country" => "country",
        "bank_code" => "bank_code",
        "account_number" => "account_number",
        "name" => "name",
        "type" => "kind",
        "branch_code" => "branch_code",
        "narration" => "narration",
        _ => "",
    }
}

/// A refusal for a person: beside its field, in a sentence that names it
/// when it is shown above the form.
fn field_error(api_field: &str, message: &str) -> FieldErrors {
    match form_field(api_field) {
        "" => FieldErrors::of("", sentence(message)),
        field => FieldErrors::of(field, sentence(message)),
    }
}

#[derive(Deserialize, Default, Clone)]
pub struct Filter {
    #[serde(default)]
    status: String,
    #[serde(default)]
    currency: String,
    /// `YYYY-MM-DD` in the console's time zone; `to` is included.
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    /// Part of a reference.
    #[serde(default)]
    q: String,
    /// `created_at:reference` of the last row of the page before.
    #[serde(default)]
    after: String,
}

impl Filter {
    fn search(&self) -> Option<String> {
        let q: String =
            self.q.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').take(64).collect();
        Some(q).filter(|q| !q.is_empty())
    }

    fn cursor(&self) -> Option<(i64, String)> {
        let (at, r) = self.after.split_once(':')?;
        Some((at.parse().ok()?, crate::domain::checkout::reference(r).ok()?.into_string()))
    }

    /// The store's query, or why a date is wrong.
    fn query(&self, limit: i64) -> Result<crate::store::PayoutQuery, String> {
        let day = crate::timefmt::console_day;
        Ok(crate::store::PayoutQuery {
            status: PayoutStatus::parse(&self.status),
            currency: Currency::parse(&self.currency),
            from_ms: day(&self.from, "from")?,
            to_ms: day(&self.to, "to")?.map(|t| t + 86_400_000),
            search: self.search(),
            after: self.cursor(),
            limit,
        })
    }

    fn query_string(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("status", PayoutStatus::parse(&self.status).map(|s| s.as_str()).unwrap_or(""))
            .append_pair("currency", Currency::parse(&self.currency).map(|c| c.code()).unwrap_or(""))
            .append_pair("from", self.from.trim())
            .append_pair("to", self.to.trim())
            .append_pair("q", &self.search().unwrap_or_default())
            .finish()
    }
}

/// Rows a console page shows.
const PAGE: i64 = 100;

async fn list_view(state: &AppState, c: &Current, f: Filter, error: Option<String>) -> Result<Response, ConsoleError> {
    let status = PayoutStatus::parse(&f.status);
    let search = f.search();
    let (rows, total, error) = match f.query(PAGE) {
        Ok(q) => {
            let (rows, total) = state.payouts.list(&q).await?;
            (rows, total, error)
        }
        Err(why) => (Vec::new(), 0, Some(why)),
    };
    let older =
        (rows.len() as i64 == PAGE).then(|| rows.last().map(|r| format!("{}:{}", r.created_at, r.reference))).flatten();
    let rows = rows.iter().map(|p| Line::of(state, p)).collect();
    let (waiting, stuck) = state.payouts.stuck(20).await?;
    let now = crate::store::now_ms();
    let stuck =
        stuck.iter().filter_map(|p| stuck_reason(p, now).map(|why| Stuck { line: Line::of(state, p), why })).collect();
    Ok(render(&ListPage {
        nav: Nav::of(c),
        rows,
        stuck,
        waiting,
        statuses: PayoutStatus::ALL,
        currencies: Currency::ALL,
        filter_status: status.map(|s| s.as_str().to_string()).unwrap_or_default(),
        filter_q: search.unwrap_or_default(),
        query: f.query_string(),
        f,
        total,
        older,
        can_create: may::CREATE_PAYOUTS.contains(&c.role()),
        error,
    }))
}

pub async fn list(
    State(state): State<AppState>,
    a: Authorized<ReadPayouts>,
    Query(f): Query<Filter>,
) -> Result<Response, ConsoleError> {
    list_view(&state, &a.current, f, None).await
}

/// An operator creates a payout through the same checks as the API; it waits for an approver.
pub async fn create(
    State(state): State<AppState>,
    a: AuthorizedForm<CreatePayouts, NewPayoutForm>,
) -> Result<Response, ConsoleError> {
    let AuthorizedForm { current: c, ctx, form: f, .. } = a;
    let refuse = |errors: FieldErrors| new_payout_view(&c, f.clone(), errors);
    let Some(amount) = flutterwave::Amount::parse(&f.amount.trim().replace(',', "")) else {
        return Ok(refuse(FieldErrors::of("amount", "Enter the amount as a number such as 1500.50.")));
    };
    let opt = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let req = PayoutRequest {
        reference: f.reference.trim().to_string(),
        amount,
        currency: f.currency.clone(),
        narration: opt(&f.narration),
        beneficiary: Some(BeneficiaryRequest {
            country: opt(&f.country),
            bank_code: f.bank_code.clone(),
            account_number: f.account_number.clone(),
            name: opt(&f.name),
            kind: opt(&f.kind),
            branch_code: opt(&f.branch_code),
        }),
        beneficiary_id: None,
        bank_code: None,
        account_number: None,
        beneficiary_name: None,
        meta: None,
    };
    let new = match req.validate(state.payouts.max_amount) {
        Ok(n) => n,
        Err(e) => return Ok(refuse(field_error(e.field, &e.message))),
    };
    Ok(match state.payouts.create(&c.actor(&ctx.ip, &ctx.user_agent), &c.user.id, &new).await {
        Ok(row) => flash::redirect(&format!("/payouts/{}", row.reference), "payout_created"),
        Err(CreateError::Refused { field, message }) => refuse(field_error(field, &message)),
        Err(CreateError::Conflict) => refuse(FieldErrors::of(
            "reference",
            "A payout with this reference exists already with other details: choose another reference.",
        )),
        Err(e @ CreateError::Unavailable) => refuse(FieldErrors::of("", sentence(&e.to_string()))),
        Err(CreateError::Store(e)) => internal(e),
    })
}

#[derive(Template)]
#[template(path = "payout.html")]
struct DetailPage {
    nav: Option<Nav>,
    csrf: String,
    p: crate::store::PayoutRow,
    amount: String,
    fee: String,
    total: String,
    given_name: String,
    resolved_name: String,
    account: String,
    revealed: bool,
    created_by: String,
    approvals: Vec<(String, Stamp)>,
    balance_after: Option<String>,
    events: Vec<(Stamp, String, String)>,
    can_approve: bool,
    can_cancel: bool,
    can_retry: bool,
    can_reveal: bool,
    /// Waiting at Flutterwave, or needing a person, in words.
    stuck: Option<String>,
    error: Option<String>,
    notice: Option<String>,
}

/// Who a `created_by` is, in words.
pub(super) async fn who(state: &AppState, id: &str) -> String {
    if let Some(key) = id.strip_prefix("key:") {
        return format!("API key {key}");
    }
    match state.auth.user(id).await {
        Ok(Some(u)) => u.email,
        _ => format!("user {id}"),
    }
}

async fn detail_view(
    state: &AppState,
    c: &Current,
    reference: &str,
    revealed: Option<String>,
    error: Option<String>,
    notice: Option<String>,
) -> Result<Response, ConsoleError> {
    if crate::domain::checkout::reference(reference).is_err() {
        return Ok(AppError::NotFound.into_response());
    }
    let p = match state.payouts.payout(reference).await? {
        Some(p) => p,
        None => return Ok(AppError::NotFound.into_response()),
    };
    let (approvals, events) = state.payouts.history(reference).await?;
    let mut approvers = Vec::new();
    for (id, at) in approvals {
        approvers.push((who(state, &id).await, time(at)));
    }
    let cur = p.currency;
    // What the balance would be after this payout and every outstanding hold.
    let balance_after = if p.status == PayoutStatus::AwaitingApproval {
        state.payouts.available(cur).await?.map(|(available, held)| cur.format(available - held - p.total()))
    } else {
        None
    };
    let view = state.payouts.view(p.clone());
    let role = c.role();
    Ok(render(&DetailPage {
        nav: Nav::of(c),
        csrf: c.csrf_token.clone(),
        amount: cur.format(p.amount),
        fee: cur.format(p.fee),
        total: cur.format(p.total()),
        given_name: view.given_name.unwrap_or_default(),
        resolved_name: view.resolved_name.unwrap_or_default(),
        account: revealed.clone().unwrap_or_else(|| p.account_mask.clone()),
        revealed: revealed.is_some(),
        created_by: who(state, &p.created_by).await,
        approvals: approvers,
        balance_after,
        events: events.into_iter().map(|(at, k, d)| (time(at), k, d)).collect(),
        can_approve: may::APPROVE_PAYOUTS.contains(&role)
            && p.status == PayoutStatus::AwaitingApproval
            && p.created_by != c.user.id,
        can_cancel: may::CREATE_PAYOUTS.contains(&role) && p.status == PayoutStatus::AwaitingApproval,
        can_retry: may::CREATE_PAYOUTS.contains(&role)
            && matches!(p.status, PayoutStatus::Failed | PayoutStatus::Reversed),
        can_reveal: may::REVEAL_ACCOUNTS.contains(&role),
        stuck: stuck_reason(&p, crate::store::now_ms()),
        p,
        error,
        notice,
    }))
}

pub async fn detail(
    State(state): State<AppState>,
    a: Authorized<ReadPayouts>,
    Path(reference): Path<String>,
) -> Result<Response, ConsoleError> {
    detail_view(&state, &a.current, &reference, None, None, None).await
}

#[derive(Deserialize)]
pub struct ApproveForm {
    #[serde(default)]
    totp: String,
    #[serde(default)]
    csrf_token: String,
}

/// An approver approves with a fresh code; the approval rule decides.
pub async fn approve(
    State(state): State<AppState>,
    Path(reference): Path<String>,
    a: AuthorizedForm<ApprovePayouts, ApproveForm>,
) -> Result<Response, ConsoleError> {
    let AuthorizedForm { current: c, ctx, form: f, .. } = a;
    let code = match fresh_code(&state, &c, &ctx, &f.totp).await? {
        Ok(code) => code,
        Err(why) => return detail_view(&state, &c, &reference, None, Some(why), None).await,
    };
    let approver = Approver { proof: &code, may_approve: may::APPROVE_PAYOUTS.contains(&c.role()) };
    let actor = c.actor(&ctx.ip, &ctx.user_agent);
    let written = state.payouts.approve(&actor, &reference, &approver).await?;
    // Recorded by the service: with the approval when one is written, as a denial otherwise.
    let (error, notice) = match &written {
        ApprovalWrite::Queued(_) => (None, Some("Approved: the payout is queued for sending.".to_string())),
        ApprovalWrite::Recorded { still_needed } => {
            (None, Some(format!("Approval recorded; {still_needed} more approver(s) needed.")))
        }
        ApprovalWrite::Refused(why) => (Some(format!("Not approved: {why}.")), None),
        ApprovalWrite::Short { available, held, amount } => (
            Some(format!(
                "Not approved: it would overdraw the balance. Available {available}, already held {held}, this payout {amount}."
            )),
            None,
        ),
    };
    detail_view(&state, &c, &reference, None, error, notice).await
}

#[derive(Deserialize)]
pub struct ReasonForm {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    csrf_token: String,
}

/// An approver rejects, with a reason.
pub async fn reject(
    State(state): State<AppState>,
    Path(reference): Path<String>,
    a: AuthorizedForm<ApprovePayouts, ReasonForm>,
) -> Result<Response, ConsoleError> {
    let AuthorizedForm { current: c, ctx, form: f, .. } = a;
    let reason: String = f.reason.chars().filter(|ch| !ch.is_control()).take(200).collect();
    if reason.trim().is_empty() {
        return detail_view(&state, &c, &reference, None, Some("Give a reason for rejecting.".into()), None).await;
    }
    let actor = c.actor(&ctx.ip, &ctx.user_agent);
    match state.payouts.reject(&actor, &reference, reason.trim()).await? {
        true => detail_view(&state, &c, &reference, None, None, Some("Rejected.".into())).await,
        false => {
            detail_view(
                &state,
                &c,
                &reference,
                None,
                Some("Only a payout awaiting approval can be rejected.".into()),
                None,
            )
            .await
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf_token: String,
}

pub async fn cancel(
    State(state): State<AppState>,
    Path(reference): Path<String>,
    a: AuthorizedForm<CreatePayouts, CsrfOnly>,
) -> Result<Response, ConsoleError> {
    let AuthorizedForm { current: c, ctx, form: _, .. } = a;
    let actor = c.actor(&ctx.ip, &ctx.user_agent);
    state.payouts.cancel(&actor, &reference).await?;
    Ok(Redirect::to(&format!("/payouts/{reference}")).into_response())
}

/// An operator retries a failed payout as a new one (new reference, new approval).
pub async fn retry(
    State(state): State<AppState>,
    Path(reference): Path<String>,
    a: AuthorizedForm<CreatePayouts, CsrfOnly>,
) -> Result<Response, ConsoleError> {
    let AuthorizedForm { current: c, ctx, form: _, .. } = a;
    if crate::domain::checkout::reference(&reference).is_err() {
        return Ok(AppError::NotFound.into_response());
    }
    let mut n = 1;
    let new_reference = loop {
        let candidate: String = format!("{}-r{n}", reference.chars().take(58).collect::<String>());
        match state.payouts.payout(&candidate).await? {
            None => break candidate,
            Some(_) if n < 99 => n += 1,
            Some(_) => {
                return Ok(AppError::Conflict { code: "too_many_retries", message: "Too many retries.".into() }
                    .into_response());
            }
        }
    };
    let actor = c.actor(&ctx.ip, &ctx.user_agent);
    match state.payouts.retry_as_new(&actor, &c.user.id, &reference, &new_reference).await {
        Ok(row) => Ok(flash::redirect(&format!("/payouts/{}", row.reference), "payout_created")),
        Err(CreateError::Store(e)) => Err(e.into()),
        Err(e) => detail_view(&state, &c, &reference, None, Some(e.to_string()), None).await,
    }
}

/// Shows the full account number once, on this page; the reveal is audited first.
pub async fn reveal(
    State(state): State<AppState>,
    Path(reference): Path<String>,
    a: AuthorizedForm<RevealAccounts, CsrfOnly>,
) -> Result<Response, ConsoleError> {
    let AuthorizedForm { current: c, ctx, .. } = a;
    let p = match state.payouts.payout(&reference).await? {
        Some(p) => p,
        None => return Ok(AppError::NotFound.into_response()),
    };
    let actor = c.actor(&ctx.ip, &ctx.user_agent);
    if let Err(r) = state
        .audited(&actor, "payout.reveal_account", &format!("payout:{reference}"), Outcome::Success, json!({}))
        .await
    {
        return Ok(r);
    }
    let full = state.payouts.reveal_account(&p);
    detail_view(&state, &c, &reference, full, None, None).await
}

struct BatchLine {
    id: String,
    title: String,
    status: crate::domain::BatchStatus,
    items: i64,
    prepared: i64,
    created: Stamp,
}

#[derive(Template)]
#[template(path = "batches.html")]
struct BatchesPage {
    nav: Option<Nav>,
    csrf: String,
    rows: Vec<BatchLine>,
    can_upload: bool,
    title: String,
    errors: Vec<crate::domain::payout_csv::RowError>,
    error: Option<String>,
}

async fn batches_view(
    state: &AppState,
    c: &Current,
    title: String,
    errors: Vec<crate::domain::payout_csv::RowError>,
    error: Option<String>,
) -> Result<Response, ConsoleError> {
    let rows = state.payouts.batches(100).await?;
    let rows = rows
        .into_iter()
        .map(|b| BatchLine {
            title: b.title.unwrap_or_default(),
            status: b.status,
            items: b.total_items,
            prepared: b.prepared,
            created: time(b.created_at),
            id: b.id,
        })
        .collect();
    Ok(render(&BatchesPage {
        nav: Nav::of(c),
        csrf: c.csrf_token.clone(),
        rows,
        can_upload: may::CREATE_PAYOUTS.contains(&c.role()),
        title,
        errors,
        error,
    }))
}

pub async fn batches(State(state): State<AppState>, a: Authorized<ReadPayouts>) -> Result<Response, ConsoleError> {
    batches_view(&state, &a.current, String::new(), Vec::new(), None).await
}

/// The CSV upload: `multipart/form-data` on this route only, at most 1 MiB,
/// the file part's type and its content checked; all or nothing.
pub async fn upload_batch(
    State(state): State<AppState>,
    a: Authorized<CreatePayouts>,
    mut form: axum::extract::Multipart,
) -> Result<Response, ConsoleError> {
    // Who and what role are known before the body is read; the token travels inside it.
    let (c, ctx) = (a.current, a.ctx);
    let (mut csrf, mut title, mut file, mut file_type) = (String::new(), String::new(), None, String::new());
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                return Ok(AppError::bad_request(
                    "bad_upload",
                    format!("The upload could not be read: {}", e.body_text()),
                )
                .into_response());
            }
        };
        let name = field.name().unwrap_or("").to_string();
        match name.as_str() {
            "csrf_token" => csrf = field.text().await.unwrap_or_default(),
            "title" => title = field.text().await.unwrap_or_default().chars().take(100).collect(),
            "file" => {
                file_type = field.content_type().unwrap_or("").to_ascii_lowercase();
                match field.bytes().await {
                    Ok(b) => file = Some(b),
                    Err(e) => return Ok((e.status(), "The file is too large or could not be read.").into_response()),
                }
            }
            // Anything else is not part of this form.
            _ => return Ok(AppError::bad_request("bad_upload", "Unexpected field in the upload.").into_response()),
        }
    }
    state.check_csrf(&c, &ctx, &csrf).await?;
    let Some(bytes) = file.filter(|b| !b.is_empty()) else {
        return batches_view(&state, &c, title, Vec::new(), Some("Choose a CSV file.".into())).await;
    };
    if !["text/csv", "text/plain", "application/vnd.ms-excel", "application/csv"].contains(&file_type.as_str()) {
        let why = format!("The file must be a CSV (it was sent as {file_type}).");
        return batches_view(&state, &c, title, Vec::new(), Some(why)).await;
    }
    let actor = c.actor(&ctx.ip, &ctx.user_agent);
    match state.payouts.create_batch(&actor, &c.user.id, Some(&title), &bytes).await {
        Ok(b) => Ok(Redirect::to(&format!("/payouts/batches/{}", b.id)).into_response()),
        Err(crate::payouts::batches::BatchError::Rows(errors)) => {
            let n = errors.len();
            let shown = errors.into_iter().take(200).collect();
            batches_view(&state, &c, title, shown, Some(format!("Nothing was created: the file has {n} error(s).")))
                .await
        }
        Err(crate::payouts::batches::BatchError::Store(e)) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "batch.html")]
struct BatchPage {
    nav: Option<Nav>,
    csrf: String,
    s: crate::payouts::batches::BatchSummary,
    totals: Vec<(Currency, usize, String, String, String)>,
    statuses: Vec<(&'static str, usize)>,
    lines: Vec<Line>,
    can_approve: bool,
    error: Option<String>,
    notice: Option<String>,
}

async fn batch_view(
    state: &AppState,
    c: &Current,
    id: &str,
    error: Option<String>,
    notice: Option<String>,
) -> Result<Response, ConsoleError> {
    let s = match state.payouts.batch_summary(id).await? {
        Some(s) => s,
        None => return Ok(AppError::NotFound.into_response()),
    };
    let totals = s
        .totals
        .iter()
        .map(|(cur, (n, amount, fee))| (*cur, *n, cur.format(*amount), cur.format(*fee), cur.format(*amount + *fee)))
        .collect();
    let statuses = s.by_status.iter().map(|(k, v)| (*k, *v)).collect();
    let lines = s.items.iter().take(500).map(|p| Line::of(state, p)).collect();
    let can_approve = may::APPROVE_PAYOUTS.contains(&c.role())
        && s.batch.status == crate::domain::BatchStatus::AwaitingApproval
        && s.batch.created_by != c.user.id;
    Ok(render(&BatchPage {
        nav: Nav::of(c),
        csrf: c.csrf_token.clone(),
        totals,
        statuses,
        lines,
        can_approve,
        s,
        error,
        notice,
    }))
}

fn batch_id_ok(id: &str) -> bool {
    id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

pub async fn batch(
    State(state): State<AppState>,
    a: Authorized<ReadPayouts>,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let c = a.current;
    if !batch_id_ok(&id) {
        return Ok(AppError::NotFound.into_response());
    }
    batch_view(&state, &c, &id, None, None).await
}

/// A batch approved as one, with a fresh code, under the same rules as each payout.
pub async fn approve_batch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    a: AuthorizedForm<ApprovePayouts, ApproveForm>,
) -> Result<Response, ConsoleError> {
    let AuthorizedForm { current: c, ctx, form: f, .. } = a;
    if !batch_id_ok(&id) {
        return Ok(AppError::NotFound.into_response());
    }
    let code = match fresh_code(&state, &c, &ctx, &f.totp).await? {
        Ok(code) => code,
        Err(why) => return batch_view(&state, &c, &id, Some(why), None).await,
    };
    let approver = Approver { proof: &code, may_approve: may::APPROVE_PAYOUTS.contains(&c.role()) };
    let actor = c.actor(&ctx.ip, &ctx.user_agent);
    let result = state.payouts.approve_batch(&actor, &id, &approver).await?;
    // Recorded by the service: with the approval when one is written, as a denial otherwise.
    let (error, notice) = match &result {
        crate::store::BatchApproval::Done { queued, still_awaiting: 0 } => {
            (None, Some(format!("Approved: {queued} payouts are queued for sending.")))
        }
        crate::store::BatchApproval::Done { queued, still_awaiting } => {
            (None, Some(format!("Approval recorded: {queued} queued, {still_awaiting} need another approver.")))
        }
        crate::store::BatchApproval::Refused(why) => (Some(format!("Not approved: {why}.")), None),
        crate::store::BatchApproval::Overdraw { currency, available, held, total } => (
            Some(format!(
                "Not approved: it would overdraw the {currency} balance. Available {available}, already held {held}, this batch {total}."
            )),
            None,
        ),
    };
    batch_view(&state, &c, &id, error, notice).await
}

pub async fn reject_batch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    a: AuthorizedForm<ApprovePayouts, ReasonForm>,
) -> Result<Response, ConsoleError> {
    let AuthorizedForm { current: c, ctx, form: f, .. } = a;
    if !batch_id_ok(&id) {
        return Ok(AppError::NotFound.into_response());
    }
    let reason: String = f.reason.chars().filter(|ch| !ch.is_control()).take(200).collect();
    if reason.trim().is_empty() {
        return batch_view(&state, &c, &id, Some("Give a reason for rejecting.".into()), None).await;
    }
    let actor = c.actor(&ctx.ip, &ctx.user_agent);
    match state.payouts.reject_batch(&actor, &id, reason.trim()).await? {
        true => batch_view(&state, &c, &id, None, Some("Rejected, with every payout in it.".into())).await,
        false => {
            batch_view(&state, &c, &id, Some("Only a batch awaiting approval can be rejected.".into()), None).await
        }
    }
}

/// Payouts as CSV (formula-safe cells, the account masked), audited.
pub async fn export(
    State(state): State<AppState>,
    a: Authorized<ReadPayouts>,
    Query(f): Query<Filter>,
) -> Result<Response, ConsoleError> {
    let (c, ctx) = (a.current, a.ctx);
    let q = match f.query(10_000) {
        Ok(q) => crate::store::PayoutQuery { after: None, ..q },
        Err(why) => return Ok(AppError::bad_request("bad_filter", why).into_response()),
    };
    let (rows, _) = state.payouts.list(&q).await?;
    let actor = c.actor(&ctx.ip, &ctx.user_agent);
    if let Err(r) = state
        .audited(
            &actor,
            "payouts.export",
            "payouts",
            Outcome::Success,
            json!({"rows": rows.len(), "filter": f.query_string()}),
        )
        .await
    {
        return Ok(r);
    }
    let mut out = String::from(
        "reference,status,amount,currency,fee,country,bank_code,bank_name,account,name,transfer_id,message,created_at\n",
    );
    for p in rows {
        let view = state.payouts.view(p);
        let p = &view.row;
        let fields = [
            p.reference.clone(),
            p.status.to_string(),
            p.amount.to_string(),
            p.currency.to_string(),
            p.fee.to_string(),
            p.country.clone(),
            p.bank_code.clone(),
            p.bank_name.clone().unwrap_or_default(),
            p.account_mask.clone(),
            view.resolved_name.clone().or(view.given_name.clone()).unwrap_or_default(),
            p.transfer_id.map(|t| t.to_string()).unwrap_or_default(),
            p.complete_message.clone().unwrap_or_default(),
            crate::timefmt::iso(p.created_at),
        ];
        out.push_str(&crate::domain::csv::line(&fields));
    }
    Ok(super::guard::download("payouts.csv", "text/csv; charset=utf-8", out))
}

struct BeneficiaryLine {
    id: String,
    name: String,
    resolved: String,
    bank: String,
    account: String,
    kind: &'static str,
    created: Stamp,
}

#[derive(Template)]
#[template(path = "beneficiaries.html")]
struct BeneficiariesPage {
    nav: Option<Nav>,
    csrf: String,
    rows: Vec<BeneficiaryLine>,
    can_delete: bool,
}

/// Saved beneficiaries, masked.
pub async fn beneficiaries(
    State(state): State<AppState>,
    a: Authorized<ReadPayouts>,
) -> Result<Response, ConsoleError> {
    let c = a.current;
    let rows = state.payouts.beneficiaries(500).await?;
    let rows = rows
        .into_iter()
        .map(|b| {
            let v = state.payouts.beneficiary_view(b);
            BeneficiaryLine {
                name: v.name.unwrap_or_default(),
                resolved: v.resolved_name.unwrap_or_default(),
                bank: v.row.bank_name.clone().unwrap_or_else(|| v.row.bank_code.clone()),
                account: v.row.account_mask.clone(),
                kind: v.row.kind.as_str(),
                created: time(v.row.created_at),
                id: v.row.id,
            }
        })
        .collect();
    Ok(render(&BeneficiariesPage {
        nav: Nav::of(&c),
        csrf: c.csrf_token.clone(),
        rows,
        can_delete: may::CREATE_PAYOUTS.contains(&c.role()),
    }))
}

pub async fn delete_beneficiary(
    State(state): State<AppState>,
    Path(id): Path<String>,
    a: AuthorizedForm<CreatePayouts, CsrfOnly>,
) -> Result<Response, ConsoleError> {
    let AuthorizedForm { current: c, ctx, form: _, .. } = a;
    if !batch_id_ok(&id) {
        return Ok(AppError::NotFound.into_response());
    }
    state.payouts.delete_beneficiary(&c.actor(&ctx.ip, &ctx.user_agent), &id).await?;
    Ok(Redirect::to("/payouts/beneficiaries").into_response())
}

csrf_forms!(ApproveForm, CsrfOnly, ReasonForm, NewPayoutForm);
