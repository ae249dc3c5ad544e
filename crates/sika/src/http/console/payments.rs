//! Payments in the console: the list with filters, one payment's page, a
//! payment link for operators, refunds (with a confirmation step and a fresh
//! code), shop-notification settings, and the webhooks that need a person.
//! A refused form is shown again with everything typed (secrets excepted).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::json;

use super::authorized::{
    Authorized, AuthorizedForm, ConsoleError, CreatePayments, ReadPayments, Refund, csrf_forms, fresh_code,
};
use super::flash;
use super::forms::{FieldErrors, sentence};
use super::guard::{Ctx, Nav, internal, render, time};
use crate::audit::Outcome;
use crate::auth::roles::may;
use crate::auth::session::Current;
use crate::domain::checkout::{CheckoutRequest, CustomerRequest};
use crate::domain::{CheckoutStatus, Currency};
use crate::http::AppState;
use crate::http::error::AppError;
use crate::payments::RefundOutcome;
use crate::payments::list::{self, ListFilter};
use crate::store::{CheckoutRow, OutboxRow};
use crate::timefmt::Stamp;

struct Line {
    reference: String,
    amount: String,
    refunded: String,
    net: String,
    currency: Currency,
    status: CheckoutStatus,
    tone: &'static str,
    method: String,
    created: Stamp,
}

/// A status badge's colour: settled well, needs a person, closed unpaid, waiting.
pub fn tone(s: CheckoutStatus) -> &'static str {
    match s {
        CheckoutStatus::Paid => "ok",
        CheckoutStatus::NeedsReview => "warn",
        CheckoutStatus::Failed | CheckoutStatus::Cancelled => "bad",
        CheckoutStatus::Pending => "info",
    }
}

/// What was typed into the payment-link form, shown again on refusal.
#[derive(Deserialize, Default, Clone)]
pub struct NewLink {
    #[serde(default)]
    reference: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    /// Minutes, or empty for the default expiry.
    #[serde(default)]
    expires_in_minutes: String,
    #[serde(default)]
    redirect_url: String,
    #[serde(default)]
    csrf_token: String,
}

/// The expiry choices of a payment link: (minutes, words).
const LINK_EXPIRIES: &[(&str, &str)] = &[
    ("", "the default"),
    ("60", "1 hour"),
    ("1440", "24 hours"),
    ("4320", "3 days"),
    ("10080", "7 days"),
    ("43200", "30 days"),
];

#[derive(Template)]
#[template(path = "payments.html")]
struct ListPage {
    nav: Option<Nav>,
    rows: Vec<Line>,
    total: i64,
    statuses: &'static [CheckoutStatus],
    currencies: &'static [Currency],
    f: Filter,
    /// The filters as a query string, for the export and the next page.
    query: String,
    next: Option<String>,
    can_create: bool,
    error: Option<String>,
}

/// The list's filters, as typed in the address bar.
#[derive(Deserialize, Default, Clone)]
pub struct Filter {
    #[serde(default)]
    status: String,
    #[serde(default)]
    currency: String,
    /// `YYYY-MM-DD`, in the console's time zone.
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    cursor: String,
}

impl Filter {
    /// The checked filter, or why a field is wrong.
    fn checked(&self) -> Result<ListFilter, String> {
        let day = crate::timefmt::console_day;
        Ok(ListFilter {
            status: CheckoutStatus::parse(&self.status),
            currency: Currency::parse(&self.currency),
            from_ms: day(&self.from, "from")?,
            // The "to" day is included: up to its end.
            to_ms: day(&self.to, "to")?.map(|ms| ms + 86_400_000),
            search: list::clean_search(&self.q),
            cursor: list::Cursor::parse(&self.cursor),
            limit: 50,
        })
    }

    fn query_string(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("status", CheckoutStatus::parse(&self.status).map(|s| s.as_str()).unwrap_or(""))
            .append_pair("currency", Currency::parse(&self.currency).map(|c| c.code()).unwrap_or(""))
            .append_pair("from", &self.from)
            .append_pair("to", &self.to)
            .append_pair("q", &list::clean_search(&self.q))
            .finish()
    }
}

fn line(r: CheckoutRow) -> Line {
    let method = match (&r.payment.payment_type, &r.payment.card_brand, &r.payment.card_last4) {
        (_, Some(b), Some(l)) => format!("{b} •••• {l}"),
        (Some(t), _, _) => t.clone(),
        _ => String::new(),
    };
    Line {
        amount: r.currency.format(r.amount),
        refunded: if r.refunded.is_zero() { String::new() } else { r.currency.format(r.refunded) },
        net: r.net().map(|n| r.currency.format(n)).unwrap_or_default(),
        reference: r.reference,
        currency: r.currency,
        tone: tone(r.status),
        status: r.status,
        method,
        created: time(r.created_at),
    }
}

async fn list_view(state: &AppState, c: &Current, f: Filter) -> Result<Response, ConsoleError> {
    let (page, error) = match f.checked() {
        Ok(filter) => (Some(state.payments.list(&filter).await?), None),
        Err(why) => (None, Some(why)),
    };
    let (rows, total, next) = match page {
        Some(p) => (p.rows.into_iter().map(line).collect(), p.total, p.next.map(|c| c.encode())),
        None => (Vec::new(), 0, None),
    };
    Ok(render(&ListPage {
        nav: Nav::of(c),
        rows,
        total,
        statuses: CheckoutStatus::ALL,
        currencies: Currency::ALL,
        query: f.query_string(),
        f: Filter { q: list::clean_search(&f.q), ..f },
        next,
        can_create: may::CREATE_PAYMENTS.contains(&c.role()),
        error,
    }))
}

pub async fn list(
    State(state): State<AppState>,
    a: Authorized<ReadPayments>,
    Query(f): Query<Filter>,
) -> Result<Response, ConsoleError> {
    list_view(&state, &a.current, f).await
}

/// The filtered payments as CSV: every cell safe to open in a spreadsheet,
/// the customer's e-mail included, so the export is audited.
pub async fn export(
    State(state): State<AppState>,
    a: Authorized<ReadPayments>,
    Query(f): Query<Filter>,
) -> Result<Response, ConsoleError> {
    let (c, ctx) = (a.current, a.ctx);
    let filter = match f.checked() {
        Ok(filter) => filter,
        Err(why) => return Ok(AppError::bad_request("bad_filter", why).into_response()),
    };
    let rows = state.payments.list_all(&filter).await?;
    let actor = c.actor(&ctx.ip, &ctx.user_agent);
    let details = json!({"filter": f.query_string(), "rows": rows.len()});
    if let Err(r) = state.audited(&actor, "payments.export", "checkouts", Outcome::Success, details).await {
        return Ok(r);
    }
    let mut out = String::from(
        "reference,status,amount,currency,paid,refunded,net,fee,method,card_brand,card_last4,transaction_id,customer_email,description,created_at_utc\n",
    );
    for r in &rows {
        let fields = [
            r.reference.clone(),
            r.status.as_str().to_string(),
            r.amount.to_string(),
            r.currency.code().to_string(),
            r.paid_amount.map(|p| p.to_string()).unwrap_or_default(),
            r.refunded.to_string(),
            r.net().map(|n| n.to_string()).unwrap_or_default(),
            r.payment.fee.map(|f| f.to_string()).unwrap_or_default(),
            r.payment.payment_type.clone().unwrap_or_default(),
            r.payment.card_brand.clone().unwrap_or_default(),
            r.payment.card_last4.clone().unwrap_or_default(),
            r.transaction_id.map(|t| t.to_string()).unwrap_or_default(),
            state.payments.customer_email(r).unwrap_or_default(),
            r.description.clone().unwrap_or_default(),
            crate::timefmt::iso(r.created_at),
        ];
        out.push_str(&crate::domain::csv::line(&fields));
    }
    Ok(super::guard::download("payments.csv", "text/csv; charset=utf-8", out))
}

#[derive(Template)]
#[template(path = "payment_new.html")]
struct NewLinkPage {
    nav: Option<Nav>,
    csrf: String,
    currencies: &'static [Currency],
    expiries: &'static [(&'static str, &'static str)],
    form: NewLink,
    errors: FieldErrors,
}

fn new_link_view(c: &Current, form: NewLink, errors: FieldErrors) -> Response {
    render(&NewLinkPage {
        nav: Nav::of(c),
        csrf: c.csrf_token.clone(),
        currencies: Currency::ALL,
        expiries: LINK_EXPIRIES,
        form,
        errors,
    })
}

/// The payment-link form, on its own page, with a fresh reference suggested.
pub async fn new_link(a: Authorized<CreatePayments>) -> Response {
    let reference = format!("link-{}", &crate::crypto::random::hex_id()[..10]);
    new_link_view(
        &a.current,
        NewLink { reference, currency: "NGN".into(), ..NewLink::default() },
        FieldErrors::default(),
    )
}

/// The API's field names, as the form calls them.
fn form_field(api_field: &'static str) -> &'static str {
    match api_field {
        "customer.email" => "email",
        "customer.name" => "name",
        other => other,
    }
}

/// An operator creates a payment link, through the same rules as the API.
pub async fn create(
    State(state): State<AppState>,
    a: AuthorizedForm<CreatePayments, NewLink>,
) -> Result<Response, ConsoleError> {
    let AuthorizedForm { current: c, ctx, form: f, .. } = a;
    let mut errors = FieldErrors::default();
    let amount = flutterwave::Amount::parse(&f.amount.trim().replace(',', ""));
    if amount.is_none() {
        errors.add("amount", "Enter the amount as a number, such as 1,500.50.");
    }
    let expires_in_minutes = match f.expires_in_minutes.trim() {
        "" => None,
        m => match m.parse::<i64>() {
            Ok(m) => Some(m),
            Err(_) => {
                errors.add("expires_in_minutes", "Choose one of the listed expiries.");
                None
            }
        },
    };
    let (Some(amount), true) = (amount, errors.is_empty()) else {
        return Ok(new_link_view(&c, f.clone(), errors));
    };
    let req = CheckoutRequest {
        reference: f.reference.trim().to_string(),
        amount,
        currency: f.currency.clone(),
        customer: CustomerRequest {
            email: f.email.clone(),
            name: Some(f.name.clone()).filter(|n| !n.trim().is_empty()),
            phone: None,
        },
        redirect_url: Some(f.redirect_url.clone()).filter(|u| !u.trim().is_empty()),
        description: Some(f.description.clone()).filter(|d| !d.trim().is_empty()),
        expires_in_minutes,
    };
    let new = match req.validate(state.payments.max_amount) {
        Ok(n) => n,
        Err(e) => {
            return Ok(new_link_view(&c, f.clone(), FieldErrors::of(form_field(e.field), sentence(&e.message))));
        }
    };
    let actor = c.actor(&ctx.ip, &ctx.user_agent);
    Ok(match state.payments.create(&format!("console:{}", c.user.id), &new, Some(&actor)).await {
        Ok(row) => flash::redirect(&format!("/payments/{}", row.reference), "link_created"),
        Err(crate::payments::CreateError::Conflict) => new_link_view(
            &c,
            f.clone(),
            FieldErrors::of("reference", "A payment with this reference exists already: choose another reference."),
        ),
        Err(e) => new_link_view(&c, f.clone(), FieldErrors::of("", format!("{e}."))),
    })
}

struct RefundLine {
    requested: Stamp,
    amount: String,
    status: String,
    reason: String,
    note: String,
}

#[derive(Template)]
#[template(path = "payment.html")]
struct DetailPage {
    nav: Option<Nav>,
    csrf: String,
    c: CheckoutRow,
    tone: &'static str,
    expected: String,
    paid: Option<String>,
    fee: Option<String>,
    /// Flutterwave's own figures, as it sent them.
    settled: Option<String>,
    charged: Option<String>,
    refunded: String,
    net: Option<String>,
    refundable: Option<String>,
    email: String,
    name: String,
    method: String,
    created_by: String,
    created: Stamp,
    expires: Option<Stamp>,
    events: Vec<(Stamp, String, String)>,
    notes: Vec<(String, i64, Option<Stamp>, bool)>,
    refunds: Vec<RefundLine>,
    /// (id, amount, status, stage, time left or "", due)
    chargebacks: Vec<(i64, String, String, String, String, Option<Stamp>)>,
    /// Paid less refunded less every chargeback not won, when any chargeback exists.
    net_after_chargebacks: Option<String>,
    can_refund: bool,
    form: RefundForm,
    error: Option<String>,
    notice: Option<String>,
}

pub async fn detail(
    State(state): State<AppState>,
    a: Authorized<ReadPayments>,
    Path(reference): Path<String>,
) -> Result<Response, ConsoleError> {
    let (c, ctx) = (a.current, a.ctx);
    detail_view(&state, &ctx, &c, reference, RefundForm::default(), None, None).await
}

/// A timeline entry in words: what happened, and its detail.
fn event_words(kind: &str, detail: &str, currency: Currency) -> (String, String) {
    let amount =
        |d: &str| d.parse::<Decimal>().map(|a| format!("{currency} {}", currency.format(a))).unwrap_or(d.into());
    let (what, detail) = match kind {
        "created" => ("Created", String::new()),
        "paid" => ("Paid, verified with Flutterwave", detail.to_string()),
        "needs_review" => ("Needs review", detail.to_string()),
        "failed" => ("Closed: failed", detail.to_string()),
        "cancelled" => ("Closed: cancelled", detail.to_string()),
        "late_payment" => ("Money arrived after it closed", detail.to_string()),
        "attempt_failed" => ("A payment attempt failed", detail.to_string()),
        "expiry_deferred" => ("Closing postponed", detail.to_string()),
        "overpaid" => ("Overpaid", detail.to_string()),
        "paid_twice" => ("Paid twice", detail.to_string()),
        "reconciled" => ("Checked with Flutterwave", detail.to_string()),
        "refund_requested" => ("Refund requested", amount(detail)),
        "refunded" => ("Refunded", amount(detail)),
        "refund_failed" => ("Refund failed", amount(detail)),
        other => return (other.replace('_', " "), detail.to_string()),
    };
    (what.to_string(), detail)
}

/// Who made a payment: the operator (by e-mail) or the API key (by name).
async fn creator(state: &AppState, api_key_id: &str) -> String {
    if let Some(user) = api_key_id.strip_prefix("console:") {
        return match state.auth.user(user).await {
            Ok(Some(u)) => format!("{} (console)", u.email),
            _ => "an operator no longer on record (console)".into(),
        };
    }
    match state.auth.api_keys().await {
        Ok(keys) => match keys.into_iter().find(|k| k.id == api_key_id) {
            Some(k) => format!("API key {} ({})", k.name, k.id),
            None => format!("API key {api_key_id}"),
        },
        Err(_) => format!("API key {api_key_id}"),
    }
}

async fn detail_view(
    state: &AppState,
    ctx: &Ctx,
    c: &Current,
    reference: String,
    form: RefundForm,
    error: Option<String>,
    notice: Option<String>,
) -> Result<Response, ConsoleError> {
    if crate::domain::checkout::reference(&reference).is_err() {
        return Ok(AppError::NotFound.into_response());
    }
    let (row, refunds) = match state.payments.checkout_with_refunds(&reference).await? {
        Some(r) => r,
        None => return Ok(AppError::NotFound.into_response()),
    };
    let ((events, notes), refundable) =
        match (state.payments.history(&reference).await, state.payments.refundable(&reference).await) {
            (Ok(h), Ok(r)) => (h, r),
            (Err(e), _) | (_, Err(e)) => return Err(ConsoleError::internal(e)),
        };
    // The customer's e-mail and name are sensitive: reading them is audited, or not shown.
    let actor = c.actor(&ctx.ip, &ctx.user_agent);
    if let Err(r) =
        state.audited(&actor, "payment.view", &format!("checkout:{reference}"), Outcome::Success, json!({})).await
    {
        return Ok(r);
    }
    let cur = row.currency;
    let email = state.payments.customer_email(&row).unwrap_or_default();
    let name = state.payments.customer_name(&row).unwrap_or_default();
    let events = events
        .into_iter()
        .map(|(at, k, d)| {
            let (what, detail) = event_words(&k, &d, cur);
            (time(at), what, detail)
        })
        .collect();
    let notes = notes.into_iter().map(|n: OutboxRow| (n.event, n.attempts, n.delivered_at.map(time), n.dead)).collect();
    let refunds = refunds
        .into_iter()
        .map(|r| RefundLine {
            requested: time(r.created_at),
            amount: cur.format(r.amount),
            status: r.status.to_string(),
            reason: r.comment.unwrap_or_default(),
            note: r.note.unwrap_or_default(),
        })
        .collect();
    let now = crate::store::now_ms();
    let listed = state.payments.chargebacks_of(&row.reference).await?;
    let charged_back = crate::store::charged_back(&listed);
    let net_after_chargebacks = (!listed.is_empty()).then(|| row.net().map(|n| cur.format(n - charged_back))).flatten();
    let chargebacks = listed
        .into_iter()
        .map(|k| {
            let f = k.facts;
            let open = f.is_open();
            let left = match (open, f.due_at) {
                (true, Some(at)) => crate::timefmt::due_in(now, at),
                _ => String::new(),
            };
            (f.id, cur.format(f.amount), f.status, f.stage, left, f.due_at.map(time))
        })
        .collect();
    let refundable = refundable.filter(|r| *r > Decimal::ZERO);
    // Paid, or under review with money verified received in its currency (a late payment, say).
    let can_refund = may::REFUND.contains(&c.role())
        && matches!(row.status, CheckoutStatus::Paid | CheckoutStatus::NeedsReview)
        && refundable.is_some();
    let p = &row.payment;
    let method = match (&p.payment_type, &p.card_brand, &p.card_last4) {
        (t, Some(b), Some(l)) => format!("{} · {b} •••• {l}", t.as_deref().unwrap_or("card")),
        (Some(t), _, _) => t.clone(),
        _ => "not known yet".into(),
    };
    Ok(render(&DetailPage {
        nav: Nav::of(c),
        csrf: c.csrf_token.clone(),
        tone: tone(row.status),
        expected: cur.format(row.amount),
        paid: row.paid_amount.map(|p| cur.format(p)),
        fee: p.fee.map(|f| cur.format(f)),
        settled: p.settled_amount.map(|f| cur.format(f)),
        charged: p.charged_amount.filter(|c| Some(*c) != row.paid_amount).map(|f| cur.format(f)),
        refunded: cur.format(row.refunded),
        net: row.net().map(|n| cur.format(n)),
        refundable: refundable.map(|r| cur.format(r)),
        created_by: creator(state, &row.api_key_id).await,
        created: time(row.created_at),
        expires: row.link_expires_at.map(time),
        method,
        c: row,
        email,
        name,
        events,
        notes,
        refunds,
        chargebacks,
        net_after_chargebacks,
        can_refund,
        form,
        error,
        notice,
    }))
}

/// The refund form: the amount is required (never "everything" by
/// accident), the reason is kept, and a confirmation step comes first.
#[derive(Deserialize, Default, Clone)]
pub struct RefundForm {
    #[serde(default)]
    amount: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    totp: String,
    #[serde(default)]
    csrf_token: String,
}

#[derive(Template)]
#[template(path = "refund_confirm.html")]
struct ConfirmPage {
    nav: Option<Nav>,
    csrf: String,
    reference: String,
    currency: Currency,
    amount: String,
    amount_shown: String,
    paid: String,
    refundable: String,
    after: String,
    comment: String,
    error: Option<String>,
}

/// Checks the typed amount against the currency and what remains refundable.
async fn checked_amount(
    state: &AppState,
    reference: &str,
    form: &RefundForm,
) -> Result<Result<(CheckoutRow, Decimal, Decimal), String>, Response> {
    let row = match state.payments.checkout(reference).await {
        Ok(Some(r)) => r,
        Ok(None) => return Err(AppError::NotFound.into_response()),
        Err(e) => return Err(internal(e)),
    };
    let refundable = match state.payments.refundable(reference).await {
        Ok(r) => r.unwrap_or_default(),
        Err(e) => return Err(internal(e)),
    };
    let typed = form.amount.trim().replace(',', "");
    if typed.is_empty() {
        return Ok(Err("Enter the amount to refund.".into()));
    }
    let Ok(amount) = typed.parse::<Decimal>() else {
        return Ok(Err("Enter the amount as a number, such as 500.00.".into()));
    };
    let amount = match row.currency.check_amount(amount, refundable.max(Decimal::ZERO)) {
        Ok(a) => a,
        Err(crate::domain::currency::AmountError::TooLarge { .. }) => {
            let cur = row.currency;
            return Ok(Err(format!("At most {cur} {} remains refundable.", cur.format(refundable))));
        }
        Err(e) => return Ok(Err(format!("The amount {e}."))),
    };
    if !matches!(row.status, CheckoutStatus::Paid | CheckoutStatus::NeedsReview) {
        return Ok(Err("Only a paid payment, or money received for one under review, can be refunded.".into()));
    }
    Ok(Ok((row, amount, refundable)))
}

fn clean_comment(c: &str) -> String {
    c.chars().filter(|ch| !ch.is_control()).take(200).collect()
}

fn confirm_view(
    c: &Current,
    (row, amount, refundable): &(CheckoutRow, Decimal, Decimal),
    comment: &str,
    error: Option<String>,
) -> Response {
    let cur = row.currency;
    render(&ConfirmPage {
        nav: Nav::of(c),
        csrf: c.csrf_token.clone(),
        reference: row.reference.clone(),
        currency: cur,
        amount: amount.to_string(),
        amount_shown: cur.format(*amount),
        paid: row.paid_amount.map(|p| cur.format(p)).unwrap_or_default(),
        refundable: cur.format(*refundable),
        after: cur.format(*refundable - *amount),
        comment: clean_comment(comment),
        error,
    })
}

/// What both refund steps check after the role and the CSRF token (the
/// extractor): the reference, and the amount against the currency and what
/// remains. A wrong amount shows the payment page again with the typed fields
/// and the reason.
async fn refund_request(
    state: &AppState,
    ctx: &Ctx,
    c: &Current,
    reference: &str,
    f: &RefundForm,
) -> Result<(CheckoutRow, Decimal, Decimal), Response> {
    if crate::domain::checkout::reference(reference).is_err() {
        return Err(AppError::NotFound.into_response());
    }
    match checked_amount(state, reference, f).await? {
        Ok(checked) => Ok(checked),
        Err(why) => {
            let kept = RefundForm { totp: String::new(), ..f.clone() };
            Err(detail_view(state, ctx, c, reference.to_string(), kept, Some(why), None).await.into_response())
        }
    }
}

/// Step one: the amount and reason are checked and shown back with the
/// currency and what remains refundable, before any code is asked.
pub async fn refund_confirm(
    State(state): State<AppState>,
    Path(reference): Path<String>,
    a: AuthorizedForm<Refund, RefundForm>,
) -> Result<Response, ConsoleError> {
    let AuthorizedForm { current: c, ctx, form: f, .. } = a;
    let checked = refund_request(&state, &ctx, &c, &reference, &f).await?;
    Ok(confirm_view(&c, &checked, &f.comment, None))
}

/// Step two: a fresh authenticator code, then the refund. A refused code
/// keeps the amount and the reason; five wrong codes end the session.
pub async fn refund(
    State(state): State<AppState>,
    Path(reference): Path<String>,
    a: AuthorizedForm<Refund, RefundForm>,
) -> Result<Response, ConsoleError> {
    let AuthorizedForm { current: c, ctx, form: f, .. } = a;
    let checked = refund_request(&state, &ctx, &c, &reference, &f).await?;
    let actor = c.actor(&ctx.ip, &ctx.user_agent);
    if let Err(why) = fresh_code(&state, &c, &ctx, &f.totp).await? {
        return Ok(confirm_view(&c, &checked, &f.comment, Some(why)));
    }
    let amount = checked.1;
    let comment = clean_comment(&f.comment);
    let target = format!("checkout:{reference}");
    let outcome = state.payments.refund(&reference, amount, &comment, &c.user.id, Some(&actor)).await?;
    let (result, error, notice) = match &outcome {
        RefundOutcome::Completed(_) => (Outcome::Success, None, Some("Refund completed.".to_string())),
        RefundOutcome::Processing(_) => (
            Outcome::Success,
            None,
            Some("Flutterwave accepted the refund and is processing it; its state updates here.".to_string()),
        ),
        RefundOutcome::Refused(why) => (Outcome::Failure, Some(format!("Refund refused: {why}")), None),
        RefundOutcome::Unknown(_) => (
            Outcome::Failure,
            Some("Flutterwave gave no definite answer: the refund is marked unknown and is being looked up; do not retry.".to_string()),
            None,
        ),
    };
    let details = json!({"amount": amount.to_string(), "outcome": outcome.word()});
    if let Err(r) = state.audited(&actor, "refund", &target, result, details).await {
        return Ok(r);
    }
    let kept = if error.is_some() { RefundForm { totp: String::new(), ..f } } else { RefundForm::default() };
    detail_view(&state, &ctx, &c, reference, kept, error, notice).await
}

csrf_forms!(NewLink, RefundForm);
