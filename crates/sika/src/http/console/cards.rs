//! Virtual cards in the console (only when they are on): the list with the
//! fundings waiting for approval, a card's page (masked number, balance read
//! live, loads/fundings/withdrawals, timeline), block/unblock/terminate
//! (operators; the destructive ones on a second screen), asking for a funding
//! or withdrawal (operators), approving or rejecting one (approvers, a fresh
//! code, never their own), and the audited live reveal of the number and CVV
//! (operators, a fresh code; never stored, logged or cached).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::authorized::{
    ApproveCardFunding, Authorized, AuthorizedForm, ConsoleError, ManageCards, ReadCards, RevealCards, csrf_forms,
};
use super::forms::Confirm;
use super::guard::{Ctx, Nav, render, time};
use super::payouts::who;
use crate::audit::Outcome;
use crate::auth::login::FreshCode;
use crate::auth::roles::may;
use crate::auth::session::Current;
use crate::cards::{Action, ActionError, Cards, Revealed};
use crate::domain::approval::Approver;
use crate::domain::card::FundingRequest;
use crate::domain::{CardStatus, Currency, FundingKind, FundingStatus};
use crate::http::AppState;
use crate::http::error::AppError;
use crate::store::FundingWrite;
use crate::timefmt::Stamp;

struct CardLine {
    reference: String,
    name: String,
    masked: String,
    currency: Currency,
    amount: String,
    status: CardStatus,
    created: Stamp,
}

struct AwaitingLine {
    card: String,
    kind: FundingKind,
    currency: Currency,
    amount: String,
    by: String,
    created: Stamp,
}

#[derive(Template)]
#[template(path = "cards.html")]
struct ListPage {
    nav: Option<Nav>,
    rows: Vec<CardLine>,
    awaiting: Vec<AwaitingLine>,
    next: Option<String>,
    total: i64,
    statuses: &'static [CardStatus],
    filter_status: String,
    filter_q: String,
    query: String,
    error: Option<String>,
    /// Operators may ask for a card here.
    can_request: bool,
}

struct FundingLine {
    reference: String,
    kind: FundingKind,
    currency: Currency,
    amount: String,
    status: FundingStatus,
    approvals: usize,
    needed: i64,
    note: String,
    can_approve: bool,
}

#[derive(Template)]
#[template(path = "card.html")]
struct CardPage {
    nav: Option<Nav>,
    csrf: String,
    card: crate::store::CardRow,
    masked: String,
    balance: Option<String>,
    first_load: String,
    created_by: String,
    fundings: Vec<FundingLine>,
    events: Vec<(Stamp, String, String)>,
    actions: Vec<(&'static str, &'static str)>,
    can_manage: bool,
    can_reveal: bool,
    revealed: Option<Revealed>,
    error: Option<String>,
    notice: Option<String>,
}

/// Cards off: the console has no card pages at all.
/// The card service: a request for a card page with cards off is answered 404
/// before anything else (sign-in included), as if the pages did not exist.
pub struct CardsOn(Cards);

impl axum::extract::FromRequestParts<AppState> for CardsOn {
    type Rejection = Response;

    async fn from_request_parts(_: &mut http::request::Parts, state: &AppState) -> Result<Self, Response> {
        state.cards.clone().map(CardsOn).ok_or_else(off)
    }
}

fn off() -> Response {
    AppError::NotFound.into_response()
}

fn money(currency: &Currency, amount: rust_decimal::Decimal) -> String {
    currency.format(amount)
}

#[derive(Deserialize, Default, Clone)]
pub struct ListQuery {
    #[serde(default)]
    cursor: String,
    #[serde(default)]
    status: String,
    /// A reference fragment.
    #[serde(default)]
    q: String,
}

impl ListQuery {
    /// The store's query, or why the filter is refused (in words).
    fn query(&self, limit: i64) -> Result<crate::store::CardQuery, &'static str> {
        let status = match self.status.as_str() {
            "" => None,
            s => Some(CardStatus::parse(s).ok_or("Choose a status from the list.")?),
        };
        let search = self.q.trim();
        if search.chars().count() > 64 {
            return Err("Search with at most 64 characters of a reference.");
        }
        let after = match self.cursor.split_once('.') {
            None if self.cursor.is_empty() => None,
            Some((at, r)) => Some((
                at.parse::<i64>().map_err(|_| "That page link is not one Sika gave.")?,
                crate::domain::checkout::reference(r)
                    .map_err(|_| "That page link is not one Sika gave.")?
                    .into_string(),
            )),
            None => return Err("That page link is not one Sika gave."),
        };
        Ok(crate::store::CardQuery { status, search: (!search.is_empty()).then(|| search.to_string()), after, limit })
    }

    /// The filters as a query string (for the next page and the export).
    fn query_string(&self) -> String {
        let mut u = url::form_urlencoded::Serializer::new(String::new());
        if !self.status.is_empty() {
            u.append_pair("status", &self.status);
        }
        if !self.q.trim().is_empty() {
            u.append_pair("q", self.q.trim());
        }
        u.finish()
    }
}

pub async fn list(
    State(state): State<AppState>,
    CardsOn(cards): CardsOn,
    a: Authorized<ReadCards>,
    Query(f): Query<ListQuery>,
) -> Result<Response, ConsoleError> {
    let c = a.current;
    let (query, error) = match f.query(51) {
        Ok(q) => (q, None),
        Err(why) => (crate::store::CardQuery { limit: 51, ..Default::default() }, Some(why.to_string())),
    };
    let ((mut rows, total), waiting) = match (cards.list(&query).await, cards.fundings_awaiting().await) {
        (Ok(r), Ok(w)) => (r, w),
        (Err(e), _) | (_, Err(e)) => return Err(ConsoleError::internal(e)),
    };
    let next = (rows.len() > 50).then(|| {
        rows.truncate(50);
        rows.last().map(|r| format!("{}.{}", r.created_at, r.reference))
    });
    let mut awaiting = Vec::new();
    for f in waiting {
        awaiting.push(AwaitingLine {
            card: f.card_reference.clone(),
            kind: f.kind,
            currency: f.currency,
            amount: f.currency.format(f.amount),
            by: who(&state, &f.created_by).await,
            created: time(f.created_at),
        });
    }
    let filters = f.query_string();
    Ok(render(&ListPage {
        can_request: may::MANAGE_CARDS.contains(&c.role()),
        nav: Nav::of(&c),
        rows: rows
            .into_iter()
            .map(|r| CardLine {
                masked: r.masked_pan.clone().unwrap_or_else(|| "not issued yet".into()),
                amount: money(&r.currency, r.amount),
                name: r.name_on_card,
                currency: r.currency,
                status: r.status,
                created: time(r.created_at),
                reference: r.reference,
            })
            .collect(),
        awaiting,
        next: next.flatten().map(|n| {
            let mut u = url::form_urlencoded::Serializer::new(filters.clone());
            u.append_pair("cursor", &n);
            u.finish()
        }),
        total,
        statuses: CardStatus::ALL,
        filter_status: f.status.clone(),
        filter_q: f.q.trim().to_string(),
        query: filters,
        error,
    }))
}

/// The list as CSV (masked numbers only; formula-safe cells), audited.
pub async fn export(
    State(state): State<AppState>,
    CardsOn(cards): CardsOn,
    a: Authorized<ReadCards>,
    Query(f): Query<ListQuery>,
) -> Result<Response, ConsoleError> {
    let (c, ctx) = (a.current, a.ctx);
    let q = match f.query(10_000) {
        Ok(q) => crate::store::CardQuery { after: None, ..q },
        Err(why) => return Ok(AppError::bad_request("bad_filter", why).into_response()),
    };
    let (rows, _) = cards.list(&q).await?;
    let actor = c.actor(&ctx.ip, &ctx.user_agent);
    let details = json!({"rows": rows.len(), "filter": f.query_string()});
    if let Err(r) = state.audited(&actor, "cards.export", "cards", Outcome::Success, details).await {
        return Ok(r);
    }
    let mut out = String::from("reference,status,name_on_card,masked_number,currency,first_load,created_at\n");
    for r in rows {
        out.push_str(&crate::domain::csv::line(&[
            r.reference,
            r.status.to_string(),
            r.name_on_card,
            r.masked_pan.unwrap_or_default(),
            r.currency.code().to_string(),
            r.amount.to_string(),
            crate::timefmt::iso(r.created_at),
        ]));
    }
    Ok(super::guard::download("cards.csv", "text/csv; charset=utf-8", out))
}

struct Shown {
    revealed: Option<Revealed>,
    error: Option<String>,
    notice: Option<String>,
}

impl Shown {
    fn none() -> Self {
        Shown { revealed: None, error: None, notice: None }
    }
    fn error(e: impl Into<String>) -> Self {
        Shown { error: Some(e.into()), ..Shown::none() }
    }
    fn notice(n: impl Into<String>) -> Self {
        Shown { notice: Some(n.into()), ..Shown::none() }
    }
}

async fn card_view(state: &AppState, c: &Current, reference: &str, shown: Shown) -> Result<Response, ConsoleError> {
    let Some(cards) = state.cards.clone() else { return Ok(off()) };
    if crate::domain::checkout::reference(reference).is_err() {
        return Ok(AppError::NotFound.into_response());
    }
    let card = match cards.card(reference).await? {
        Some(card) => card,
        None => return Ok(AppError::NotFound.into_response()),
    };
    let (rows, events) = match (cards.fundings(reference).await, cards.events(reference).await) {
        (Ok(f), Ok(e)) => (f, e),
        (Err(e), _) | (_, Err(e)) => return Err(ConsoleError::internal(e)),
    };
    let role = c.role();
    let mut fundings = Vec::new();
    for f in rows {
        let approvals = cards.funding_approvals(&f.reference).await?;
        fundings.push(FundingLine {
            can_approve: may::APPROVE_CARD_FUNDING.contains(&role)
                && f.status == FundingStatus::AwaitingApproval
                && f.created_by != c.user.id
                && !approvals.contains(&c.user.id),
            approvals: approvals.len(),
            needed: f.approvals_needed,
            note: f.reason.clone().unwrap_or_default(),
            amount: f.currency.format(f.amount),
            currency: f.currency,
            kind: f.kind,
            status: f.status,
            reference: f.reference,
        });
    }
    let balance = cards.balance(&card).await.map(|b| money(&card.currency, b));
    let actions: Vec<(&'static str, &'static str)> = match card.status {
        CardStatus::Active => vec![("block", "Block"), ("terminate", "Terminate")],
        CardStatus::Blocked => vec![("unblock", "Unblock"), ("terminate", "Terminate")],
        _ => Vec::new(),
    };
    let live = matches!(card.status, CardStatus::Active | CardStatus::Blocked);
    let page = CardPage {
        nav: Nav::of(c),
        csrf: c.csrf_token.clone(),
        masked: card.masked_pan.clone().unwrap_or_else(|| "not issued yet".into()),
        balance,
        first_load: money(&card.currency, card.amount),
        created_by: who(state, &card.api_key_id).await,
        fundings,
        events: events.into_iter().map(|(at, k, d)| (time(at), k, d)).collect(),
        can_manage: may::MANAGE_CARDS.contains(&role) && !actions.is_empty(),
        actions,
        can_reveal: may::REVEAL_CARDS.contains(&role) && live && shown.revealed.is_none(),
        card,
        revealed: shown.revealed,
        error: shown.error,
        notice: shown.notice,
    };
    // A revealed number must not outlive the page: every answer carries
    // `Cache-Control: no-store` (`http::edge`), this one included.
    Ok(render(&page))
}

pub async fn detail(
    State(state): State<AppState>,
    _on: CardsOn,
    a: Authorized<ReadCards>,
    Path(reference): Path<String>,
) -> Result<Response, ConsoleError> {
    card_view(&state, &a.current, &reference, Shown::none()).await
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    totp: String,
    #[serde(default)]
    csrf_token: String,
}

/// A fresh authenticator code, or the page again saying why not.
async fn fresh_code(
    state: &AppState,
    c: &Current,
    ctx: &Ctx,
    totp: &str,
    reference: &str,
) -> Result<FreshCode, Response> {
    match super::authorized::fresh_code(state, c, ctx, totp).await {
        Ok(Ok(code)) => Ok(code),
        Ok(Err(why)) => Err(card_view(state, c, reference, Shown::error(why)).await.into_response()),
        Err(e) => Err(e.into_response()),
    }
}

/// The full number and CVV, read live from Flutterwave after a fresh code:
/// audited (who, which card — never the number), shown once, kept nowhere.
pub async fn reveal(
    State(state): State<AppState>,
    CardsOn(cards): CardsOn,
    Path(reference): Path<String>,
    a: AuthorizedForm<RevealCards, CodeForm>,
) -> Result<Response, ConsoleError> {
    let AuthorizedForm { current: c, ctx, form: f, .. } = a;
    if let Err(r) = fresh_code(&state, &c, &ctx, &f.totp, &reference).await {
        return Ok(r);
    }
    let result = cards.reveal(&reference).await;
    let actor = c.actor(&ctx.ip, &ctx.user_agent);
    let outcome = if result.is_ok() { Outcome::Success } else { Outcome::Failure };
    if let Err(r) = state.audited(&actor, "card.reveal", &format!("card:{reference}"), outcome, json!({})).await {
        return Ok(r);
    }
    match result {
        Ok(revealed) => card_view(&state, &c, &reference, Shown { revealed: Some(revealed), ..Shown::none() }).await,
        Err(ActionError::NotFound) => Err(AppError::NotFound.into()),
        Err(e) => card_view(&state, &c, &reference, Shown::error(format!("Not shown: {e}."))).await,
    }
}

#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    confirmed: String,
}

/// Block, unblock or terminate; blocking and terminating ask first.
pub async fn act(
    State(state): State<AppState>,
    CardsOn(cards): CardsOn,
    Path((reference, action)): Path<(String, String)>,
    a: AuthorizedForm<ManageCards, ActionForm>,
) -> Result<Response, ConsoleError> {
    let AuthorizedForm { current: c, ctx, form: f, .. } = a;
    let Some(action) = Action::parse(&action) else { return Ok(AppError::NotFound.into_response()) };
    if crate::domain::checkout::reference(&reference).is_err() {
        return Ok(AppError::NotFound.into_response());
    }
    let path = format!("/cards/{reference}/{}", action.as_str());
    let back = format!("/cards/{reference}");
    if action != Action::Unblock && f.confirmed != "yes" {
        let (heading, consequences, button) = match action {
            Action::Terminate => (
                "Terminate this card?",
                "Flutterwave closes the card for good and returns what is left on it to the wallet. It cannot be undone.",
                "Terminate the card",
            ),
            _ => {
                ("Block this card?", "Every payment with the card is declined until it is unblocked.", "Block the card")
            }
        };
        return Ok(Confirm { heading, consequences, action: &path, button, back: &back }.page(&c));
    }
    // Audited by the service: with the card's new status when done, on its own when not.
    let result = cards.act(&c.actor(&ctx.ip, &ctx.user_agent), &reference, action).await;
    match result {
        Ok(card) => {
            card_view(
                &state,
                &c,
                &reference,
                Shown::notice(format!("The card is {}.", card.status.label().to_lowercase())),
            )
            .await
        }
        Err(ActionError::NotFound) => Err(AppError::NotFound.into()),
        Err(e) => card_view(&state, &c, &reference, Shown::error(format!("Not done: {e}."))).await,
    }
}

#[derive(Deserialize)]
pub struct FundingForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    amount: String,
}

/// An operator asks for a funding or withdrawal; an approver must consent.
pub async fn request_funding(
    State(state): State<AppState>,
    CardsOn(cards): CardsOn,
    Path(reference): Path<String>,
    a: AuthorizedForm<ManageCards, FundingForm>,
) -> Result<Response, ConsoleError> {
    let AuthorizedForm { current: c, ctx, form: f, .. } = a;
    let card = match cards.card(&reference).await? {
        Some(card) => card,
        None => return Ok(AppError::NotFound.into_response()),
    };
    let kind = if f.kind == "withdraw" { FundingKind::Withdraw } else { FundingKind::Fund };
    let Some(amount) = flutterwave::Amount::parse(&f.amount.trim().replace(',', "")) else {
        return card_view(&state, &c, &reference, Shown::error("Enter the amount as a number such as 25.50.")).await;
    };
    let currency = card.currency;
    let req = FundingRequest { reference: format!("cf-{}", crate::crypto::random::hex_id()), amount };
    let new = match req.validate(kind, currency, cards.max_amount) {
        Ok(n) => n,
        Err(e) => {
            return card_view(&state, &c, &reference, Shown::error(super::forms::sentence(&e.message))).await;
        }
    };
    let actor = c.actor(&ctx.ip, &ctx.user_agent);
    let result = cards.request_funding(&actor, &reference, &c.user.id, &new).await;
    if result.is_err() {
        let action = if kind == FundingKind::Fund { "card.fund.request" } else { "card.withdraw.request" };
        let details =
            json!({"funding": new.reference, "amount": new.money.amount().to_string(), "currency": currency.code()});
        if let Err(r) = state.audited(&actor, action, &format!("card:{reference}"), Outcome::Failure, details).await {
            return Ok(r);
        }
    }
    match result {
        Ok(_) => {
            card_view(&state, &c, &reference, Shown::notice("Asked for: an approver must consent before it is sent."))
                .await
        }
        Err(e) => card_view(&state, &c, &reference, Shown::error(format!("Not asked for: {e}."))).await,
    }
}

/// An approver consents to a funding with a fresh code; the rule decides.
pub async fn approve_funding(
    State(state): State<AppState>,
    CardsOn(cards): CardsOn,
    Path((reference, funding)): Path<(String, String)>,
    a: AuthorizedForm<ApproveCardFunding, CodeForm>,
) -> Result<Response, ConsoleError> {
    let AuthorizedForm { current: c, ctx, form: f, .. } = a;
    if !belongs(&cards, &funding, &reference).await {
        return Ok(AppError::NotFound.into_response());
    }
    let code = match fresh_code(&state, &c, &ctx, &f.totp, &reference).await {
        Ok(code) => code,
        Err(r) => return Ok(r),
    };
    let approver = Approver { proof: &code, may_approve: may::APPROVE_CARD_FUNDING.contains(&c.role()) };
    let actor = c.actor(&ctx.ip, &ctx.user_agent);
    let written = cards.approve_funding(&actor, &funding, &approver).await?;
    // Recorded by the service: with the approval when one is written, as a denial otherwise.
    let shown = match &written {
        FundingWrite::Queued(_) => Shown::notice("Approved: it is queued to be sent."),
        FundingWrite::Recorded { still_needed } => {
            Shown::notice(format!("Approval recorded; {still_needed} more approver(s) needed."))
        }
        FundingWrite::Refused(why) => Shown::error(format!("Not approved: {why}.")),
        FundingWrite::Short { available, held, amount } => Shown::error(format!(
            "Not approved: there is not enough money for it. Available {available}, already held {held}, this {amount}."
        )),
    };
    card_view(&state, &c, &reference, shown).await
}

#[derive(Deserialize)]
pub struct ReasonForm {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    csrf_token: String,
}

pub async fn reject_funding(
    State(state): State<AppState>,
    CardsOn(cards): CardsOn,
    Path((reference, funding)): Path<(String, String)>,
    a: AuthorizedForm<ApproveCardFunding, ReasonForm>,
) -> Result<Response, ConsoleError> {
    let AuthorizedForm { current: c, ctx, form: f, .. } = a;
    if !belongs(&cards, &funding, &reference).await {
        return Ok(AppError::NotFound.into_response());
    }
    let reason: String = f.reason.chars().filter(|ch| !ch.is_control()).take(200).collect();
    if reason.trim().is_empty() {
        return card_view(&state, &c, &reference, Shown::error("Give a reason for rejecting.")).await;
    }
    let actor = c.actor(&ctx.ip, &ctx.user_agent);
    match cards.reject_funding(&actor, &funding, reason.trim()).await? {
        true => card_view(&state, &c, &reference, Shown::notice("Rejected.")).await,
        false => {
            card_view(&state, &c, &reference, Shown::error("Only a request awaiting approval can be rejected.")).await
        }
    }
}

/// The funding exists and is this card's (the URL names both).
async fn belongs(cards: &Cards, funding: &str, card: &str) -> bool {
    matches!(cards.funding(funding).await, Ok(Some(f)) if f.card_reference == card)
}
csrf_forms!(CodeForm, ActionForm, FundingForm, ReasonForm, NewCardForm);

/// What was typed into the card request form, shown again on refusal.
#[derive(Deserialize, Default, Clone)]
pub struct NewCardForm {
    #[serde(default)]
    reference: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    date_of_birth: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    gender: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    city: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    postal_code: String,
    #[serde(default)]
    country: String,
    #[serde(default)]
    csrf_token: String,
}

#[derive(Template)]
#[template(path = "card_new.html")]
struct NewCardPage {
    nav: Option<Nav>,
    csrf: String,
    form: NewCardForm,
    errors: super::forms::FieldErrors,
}

fn new_card_view(c: &Current, form: NewCardForm, errors: super::forms::FieldErrors) -> Response {
    render(&NewCardPage { nav: Nav::of(c), csrf: c.csrf_token.clone(), form, errors })
}

/// The card request form, with a fresh reference suggested.
pub async fn new_card(_cards: CardsOn, a: Authorized<ManageCards>) -> Response {
    let reference = format!("card-{}", &crate::crypto::random::hex_id()[..10]);
    let form =
        NewCardForm { reference, currency: "USD".into(), title: "MR".into(), gender: "M".into(), ..Default::default() };
    new_card_view(&a.current, form, super::forms::FieldErrors::default())
}

/// The API's field names, as the form calls them (the form's are all `'static`).
fn card_form_field(api_field: &str) -> &'static str {
    const FIELDS: [&str; 15] = [
        "reference",
        "currency",
        "amount",
        "first_name",
        "last_name",
        "date_of_birth",
        "email",
        "phone",
        "title",
        "gender",
        "address",
        "city",
        "state",
        "postal_code",
        "country",
    ];
    let short = api_field.rsplit('.').next().unwrap_or(api_field);
    FIELDS.iter().copied().find(|f| *f == short).unwrap_or("")
}

/// An operator asks for a card, through the same rules as the API: its first load waits for an approver.
pub async fn create(
    CardsOn(cards): CardsOn,
    a: AuthorizedForm<ManageCards, NewCardForm>,
) -> Result<Response, ConsoleError> {
    let AuthorizedForm { current: c, ctx, form: f, .. } = a;
    let Some(amount) = flutterwave::Amount::parse(&f.amount.trim().replace(',', "")) else {
        let errors = super::forms::FieldErrors::of("amount", "Enter the first load as a number, such as 25.50.");
        return Ok(new_card_view(&c, f, errors));
    };
    let opt = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let req = crate::domain::card::CardRequest {
        reference: f.reference.trim().to_string(),
        currency: f.currency.trim().to_string(),
        amount,
        debit_currency: None,
        cardholder: crate::domain::card::Cardholder {
            first_name: f.first_name.clone(),
            last_name: f.last_name.clone(),
            date_of_birth: f.date_of_birth.clone(),
            email: f.email.clone(),
            phone: f.phone.clone(),
            title: f.title.clone(),
            gender: f.gender.clone(),
        },
        billing: Some(crate::domain::card::Billing {
            address: opt(&f.address),
            city: opt(&f.city),
            state: opt(&f.state),
            postal_code: opt(&f.postal_code),
            country: opt(&f.country),
        }),
    };
    let new = match req.validate(cards.max_amount, crate::http::cards_api::today()) {
        Ok(n) => n,
        Err(e) => {
            let errors = super::forms::FieldErrors::of(card_form_field(e.field), super::forms::sentence(&e.message));
            return Ok(new_card_view(&c, f, errors));
        }
    };
    let actor = c.actor(&ctx.ip, &ctx.user_agent);
    Ok(match cards.create(&actor, &c.user.id, &new).await {
        Ok(row) => super::flash::redirect(&format!("/cards/{}", row.reference), "card_requested"),
        Err(crate::cards::CreateError::Conflict) => new_card_view(
            &c,
            f,
            super::forms::FieldErrors::of(
                "reference",
                "A card with this reference exists already: choose another reference.",
            ),
        ),
        Err(crate::cards::CreateError::Store(e)) => return Err(e.into()),
    })
}
