//! Payments in the console: the list with filters, one payment's page, a
//! payment link for operators, shop-notification settings, and the webhooks
//! that need a person.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use super::guard::{Ctx, Nav, internal, render, time};
use crate::audit::Outcome;
use crate::auth::roles::may;
use crate::crypto::field::FieldCipher;
use crate::domain::checkout::{CURRENCIES, CheckoutRequest, CustomerRequest};
use crate::http::AppState;
use crate::http::error::AppError;
use crate::payments::notify;
use crate::store::{CheckoutRow, OutboxRow};

const STATUSES: [&str; 5] = ["pending", "paid", "needs_review", "failed", "cancelled"];

struct Line {
    reference: String,
    amount: String,
    currency: String,
    status: String,
    created: String,
}

#[derive(Template)]
#[template(path = "payments.html")]
struct ListPage {
    nav: Option<Nav>,
    csrf: String,
    rows: Vec<Line>,
    statuses: Vec<&'static str>,
    currencies: Vec<&'static str>,
    filter_status: String,
    filter_q: String,
    can_create: bool,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct Filter {
    #[serde(default)]
    status: String,
    #[serde(default)]
    q: String,
}

async fn list_view(state: &AppState, c: &crate::auth::session::Current, f: Filter, error: Option<String>) -> Response {
    let status = STATUSES.iter().find(|s| **s == f.status).map(|s| s.to_string());
    let q: String = f.q.chars().filter(|ch| ch.is_ascii_alphanumeric() || *ch == '_' || *ch == '-').take(64).collect();
    let rows = match state
        .payments
        .store
        .checkouts_search(status.as_deref(), Some(q.as_str()).filter(|q| !q.is_empty()), 200)
        .await
    {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let rows = rows
        .into_iter()
        .map(|r| Line {
            reference: r.reference,
            amount: r.amount,
            currency: r.currency,
            status: r.status,
            created: time(r.created_at),
        })
        .collect();
    render(&ListPage {
        nav: Nav::of(c),
        csrf: c.csrf_token.clone(),
        rows,
        statuses: STATUSES.to_vec(),
        currencies: CURRENCIES.to_vec(),
        filter_status: status.unwrap_or_default(),
        filter_q: q,
        can_create: may::CREATE_PAYMENTS.contains(&c.role()),
        error,
    })
}

pub async fn list(State(state): State<AppState>, ctx: Ctx, Query(f): Query<Filter>) -> Response {
    match state.authorize(&ctx, may::READ_PAYMENTS, "payments", None).await {
        Ok(c) => list_view(&state, &c, f, None).await,
        Err(r) => r,
    }
}

#[derive(Deserialize)]
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
    csrf_token: String,
}

/// An operator creates a payment link, through the same rules as the API.
pub async fn create(State(state): State<AppState>, ctx: Ctx, Form(f): Form<NewLink>) -> Response {
    let c = match state.authorize(&ctx, may::CREATE_PAYMENTS, "payments.create", Some(&f.csrf_token)).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(amount) = flutterwave::Amount::parse(&f.amount) else {
        return list_view(&state, &c, Filter::default(), Some("amount: enter a number such as 1500.50".into())).await;
    };
    let req = CheckoutRequest {
        reference: f.reference.trim().to_string(),
        amount,
        currency: f.currency,
        customer: CustomerRequest { email: f.email, name: Some(f.name).filter(|n| !n.trim().is_empty()), phone: None },
        redirect_url: None,
    };
    let new = match req.validate(state.payments.max_amount) {
        Ok(n) => n,
        Err(e) => return list_view(&state, &c, Filter::default(), Some(format!("{}: {}", e.field, e.message))).await,
    };
    let actor = c.actor(&ctx.ip, &ctx.user_agent);
    match state.payments.create(&format!("console:{}", c.user.id), &new).await {
        Ok(row) => {
            let _ = state
                .auth
                .auditor
                .record(
                    &actor,
                    "payment_link.create",
                    &format!("checkout:{}", row.reference),
                    Outcome::Success,
                    json!({"amount": row.amount, "currency": row.currency}),
                )
                .await;
            Redirect::to(&format!("/payments/{}", row.reference)).into_response()
        }
        Err(e) => list_view(&state, &c, Filter::default(), Some(e.to_string())).await,
    }
}

#[derive(Template)]
#[template(path = "payment.html")]
struct DetailPage {
    nav: Option<Nav>,
    csrf: String,
    c: CheckoutRow,
    email: String,
    events: Vec<(String, String, String)>,
    notes: Vec<(String, i64, String, bool)>,
    refunds: Vec<(String, String, String, String)>,
    can_refund: bool,
    error: Option<String>,
    notice: Option<String>,
}

pub async fn detail(State(state): State<AppState>, ctx: Ctx, Path(reference): Path<String>) -> Response {
    let c = match state.authorize(&ctx, may::READ_PAYMENTS, "payments", None).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    detail_view(&state, &ctx, &c, reference, None, None).await
}

async fn detail_view(
    state: &AppState,
    ctx: &Ctx,
    c: &crate::auth::session::Current,
    reference: String,
    error: Option<String>,
    notice: Option<String>,
) -> Response {
    if crate::domain::checkout::reference(&reference).is_err() {
        return AppError::NotFound.into_response();
    }
    let store = &state.payments.store;
    let row = match store.checkout(&reference).await {
        Ok(Some(r)) => r,
        Ok(None) => return AppError::NotFound.into_response(),
        Err(e) => return internal(e),
    };
    let (events, notes) = match (store.checkout_events(&reference).await, store.outbox_for(&reference).await) {
        (Ok(e), Ok(n)) => (e, n),
        (Err(e), _) | (_, Err(e)) => return internal(e),
    };
    // The customer's e-mail is sensitive: reading it is audited.
    let _ = state
        .auth
        .auditor
        .record(
            &c.actor(&ctx.ip, &ctx.user_agent),
            "payment.view",
            &format!("checkout:{reference}"),
            Outcome::Success,
            json!({}),
        )
        .await;
    let email = state.payments.customer_email(&row).unwrap_or_default();
    let events = events.into_iter().map(|(at, k, d)| (time(at), k, d)).collect();
    let notes = notes
        .into_iter()
        .map(|n: OutboxRow| (n.event, n.attempts, n.delivered_at.map(time).unwrap_or_else(|| "not yet".into()), n.dead))
        .collect();
    let refunds = match store.refunds(&reference).await {
        Ok(r) => r.into_iter().map(|r| (time(r.created_at), r.amount, r.status, r.note.unwrap_or_default())).collect(),
        Err(e) => return internal(e),
    };
    let can_refund = may::REFUND.contains(&c.role()) && row.status == "paid";
    render(&DetailPage {
        nav: Nav::of(c),
        csrf: c.csrf_token.clone(),
        c: row,
        email,
        events,
        notes,
        refunds,
        can_refund,
        error,
        notice,
    })
}

#[derive(Deserialize)]
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

/// An approver refunds a paid checkout, with a fresh TOTP code.
pub async fn refund(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(reference): Path<String>,
    Form(f): Form<RefundForm>,
) -> Response {
    let c = match state.authorize(&ctx, may::REFUND, "refund", Some(&f.csrf_token)).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if crate::domain::checkout::reference(&reference).is_err() {
        return AppError::NotFound.into_response();
    }
    let actor = c.actor(&ctx.ip, &ctx.user_agent);
    match state.auth.step_up(&actor, &f.totp).await {
        Ok(true) => {}
        Ok(false) => {
            return detail_view(
                &state,
                &ctx,
                &c,
                reference,
                Some("The authenticator code is not right, or was already used.".into()),
                None,
            )
            .await;
        }
        Err(e) => return internal(e),
    }
    let amount = match f.amount.trim() {
        "" => None,
        a => match a.parse::<rust_decimal::Decimal>() {
            Ok(d) => Some(d),
            Err(_) => {
                return detail_view(
                    &state,
                    &ctx,
                    &c,
                    reference,
                    Some("Enter the amount as a number, such as 500.00.".into()),
                    None,
                )
                .await;
            }
        },
    };
    let comment: String = f.comment.chars().filter(|ch| !ch.is_control()).take(200).collect();
    let outcome = match state.payments.refund(&reference, amount, &comment, &c.user.id).await {
        Ok(o) => o,
        Err(e) => return internal(e),
    };
    let (result, error, notice) = match &outcome {
        crate::payments::RefundOutcome::Completed(_) => (Outcome::Success, None, Some("Refund completed.".to_string())),
        crate::payments::RefundOutcome::Refused(why) => {
            (Outcome::Failure, Some(format!("Refund refused: {why}")), None)
        }
        crate::payments::RefundOutcome::Unknown(_) => (
            Outcome::Failure,
            Some(
                "Flutterwave gave no definite answer: the refund is marked unknown; do not retry before checking."
                    .to_string(),
            ),
            None,
        ),
    };
    let _ = state
        .auth
        .auditor
        .record(
            &actor,
            "refund",
            &format!("checkout:{reference}"),
            result,
            json!({"amount": amount.map(|a| a.to_string()), "outcome": format!("{outcome:?}")}),
        )
        .await;
    detail_view(&state, &ctx, &c, reference, error, notice).await
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    nav: Option<Nav>,
    csrf: String,
    url: String,
    has_secret: bool,
    new_secret: Option<String>,
    dead: Vec<OutboxRow>,
    error: Option<String>,
}

fn cipher(state: &AppState) -> FieldCipher {
    FieldCipher::new(state.auth.cipher_keys())
}

async fn settings_view(
    state: &AppState,
    c: &crate::auth::session::Current,
    new_secret: Option<String>,
    error: Option<String>,
) -> Response {
    let store = &state.payments.store;
    let (url, secret, dead) = match (
        store.setting(notify::URL_SETTING).await,
        store.setting(notify::SECRET_SETTING).await,
        store.outbox_dead().await,
    ) {
        (Ok(u), Ok(s), Ok(d)) => (u, s, d),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return internal(e),
    };
    render(&SettingsPage {
        nav: Nav::of(c),
        csrf: c.csrf_token.clone(),
        url: url.unwrap_or_default(),
        has_secret: secret.is_some(),
        new_secret,
        dead,
        error,
    })
}

pub async fn settings(State(state): State<AppState>, ctx: Ctx) -> Response {
    match state.authorize(&ctx, may::MANAGE_SETTINGS, "settings", None).await {
        Ok(c) => settings_view(&state, &c, None, None).await,
        Err(r) => r,
    }
}

#[derive(Deserialize)]
pub struct UrlForm {
    #[serde(default)]
    url: String,
    #[serde(default)]
    csrf_token: String,
}

pub async fn save_settings(State(state): State<AppState>, ctx: Ctx, Form(f): Form<UrlForm>) -> Response {
    let c = match state.authorize(&ctx, may::MANAGE_SETTINGS, "settings", Some(&f.csrf_token)).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let url = match notify::valid_url(&f.url) {
        Ok(u) => u,
        Err(e) => return settings_view(&state, &c, None, Some(e.into())).await,
    };
    let store = &state.payments.store;
    let before = store.setting(notify::URL_SETTING).await.ok().flatten();
    if let Err(e) = store.set_setting(notify::URL_SETTING, &url).await {
        return internal(e);
    }
    let _ = state
        .auth
        .auditor
        .record(
            &c.actor(&ctx.ip, &ctx.user_agent),
            "settings.notify_url",
            "settings",
            Outcome::Success,
            json!({"before": before, "after": url}),
        )
        .await;
    Redirect::to("/admin/settings").into_response()
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf_token: String,
}

pub async fn new_secret(State(state): State<AppState>, ctx: Ctx, Form(f): Form<CsrfOnly>) -> Response {
    let c = match state.authorize(&ctx, may::MANAGE_SETTINGS, "settings", Some(&f.csrf_token)).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let secret = format!("whsec_{}", crate::crypto::random::token());
    let sealed = cipher(&state).seal_str("settings", "value", notify::SECRET_SETTING, &secret);
    if let Err(e) = state.payments.store.set_setting(notify::SECRET_SETTING, &sealed).await {
        return internal(e);
    }
    let _ = state
        .auth
        .auditor
        .record(
            &c.actor(&ctx.ip, &ctx.user_agent),
            "settings.notify_secret",
            "settings",
            Outcome::Success,
            json!({"rotated": true}),
        )
        .await;
    settings_view(&state, &c, Some(secret), None).await
}

pub async fn replay(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Response {
    let c = match state.authorize(&ctx, may::MANAGE_SETTINGS, "notifications", Some(&f.csrf_token)).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    match state.payments.store.outbox_replay(&id).await {
        Ok(done) => {
            let outcome = if done { Outcome::Success } else { Outcome::Failure };
            let _ = state
                .auth
                .auditor
                .record(
                    &c.actor(&ctx.ip, &ctx.user_agent),
                    "notification.replay",
                    &format!("outbox:{id}"),
                    outcome,
                    json!({}),
                )
                .await;
            Redirect::to("/admin/settings").into_response()
        }
        Err(e) => internal(e),
    }
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct WebhooksPage {
    nav: Option<Nav>,
    rows: Vec<(String, String, String, String)>,
    refused: u64,
}

pub async fn webhooks(State(state): State<AppState>, ctx: Ctx) -> Response {
    let c = match state.authorize(&ctx, may::MANAGE_SETTINGS, "webhooks", None).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let store = &state.payments.store;
    let mut rows = Vec::new();
    for s in ["unprocessable", "unmatched", "rejected"] {
        match store.inbox_by_state(s).await {
            Ok(r) => rows.extend(r),
            Err(e) => return internal(e),
        }
    }
    let _ = state
        .auth
        .auditor
        .record(
            &c.actor(&ctx.ip, &ctx.user_agent),
            "webhooks.view",
            "webhook_inbox",
            Outcome::Success,
            json!({"count": rows.len()}),
        )
        .await;
    let cipher = cipher(&state);
    let rows = rows
        .into_iter()
        .map(|r| {
            let body = cipher
                .open("webhook_inbox", "body", &r.id, &r.body_enc)
                .map(|b| String::from_utf8_lossy(&b).chars().take(500).collect())
                .unwrap_or_else(|_| "(cannot be opened)".into());
            (time(r.received_at), r.state, r.note.unwrap_or_default(), body)
        })
        .collect();
    render(&WebhooksPage {
        nav: Nav::of(&c),
        rows,
        refused: state.payments.refused_webhooks.load(std::sync::atomic::Ordering::Relaxed),
    })
}
