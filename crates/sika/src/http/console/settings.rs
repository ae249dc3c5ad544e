//! The console's settings (the shop's notification URL and signing secret,
//! the merchant's name, the time zone, the two-approver thresholds), the
//! shop's delivery log and test event, and the webhooks that need a person.
//! Every change goes through `crate::settings` (typed, audited with it).

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::json;

use super::authorized::{Authorized, AuthorizedForm, ConsoleError, ManageSettings, csrf_forms};
use super::flash;
use super::guard::{Nav, render, time};
use crate::audit::Outcome;
use crate::auth::session::Current;
use crate::crypto::field::FieldCipher;
use crate::domain::{Currency, InboxState};
use crate::http::AppState;
use crate::http::error::AppError;
use crate::payments::notify;
use crate::settings::Change;
use crate::store::OutboxRow;
use crate::timefmt::Stamp;

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    nav: Option<Nav>,
    csrf: String,
    url: String,
    has_secret: bool,
    new_secret: Option<String>,
    dead: Vec<OutboxRow>,
    /// Per currency: the amount above which a payout needs two approvers ("" = never).
    thresholds: Vec<(Currency, String)>,
    zones: &'static [crate::timefmt::Zone],
    zone: &'static str,
    merchant: String,
    deliveries: Vec<DeliveryLine>,
    error: Option<String>,
}

/// One attempt in the delivery log.
struct DeliveryLine {
    id: String,
    at: Stamp,
    event: String,
    reference: String,
    url: String,
    status: String,
    latency_ms: i64,
    outcome: String,
    ok: bool,
}

fn cipher(state: &AppState) -> FieldCipher {
    FieldCipher::new(state.auth.cipher_keys())
}

async fn settings_view(
    state: &AppState,
    c: &Current,
    typed_url: Option<String>,
    new_secret: Option<String>,
    error: Option<String>,
) -> Result<Response, ConsoleError> {
    let (view, dead) = match (state.settings.view().await, state.payments.outbox_dead().await) {
        (Ok(v), Ok(d)) => (v, d),
        (Err(e), _) | (_, Err(e)) => return Err(ConsoleError::internal(e)),
    };
    let log = state.payments.delivery_log(50).await?;
    let deliveries = log
        .into_iter()
        .map(|a| DeliveryLine {
            ok: a.outcome == "delivered",
            id: a.outbox_id,
            at: time(a.at),
            event: a.event,
            reference: a.reference,
            url: a.url,
            status: a.status.map(|s| s.to_string()).unwrap_or_else(|| "none".into()),
            latency_ms: a.latency_ms,
            outcome: a.outcome,
        })
        .collect();
    Ok(render(&SettingsPage {
        nav: Nav::of(c),
        csrf: c.csrf_token.clone(),
        url: typed_url.or(view.notify_url).unwrap_or_default(),
        has_secret: view.has_notify_secret,
        new_secret,
        dead,
        thresholds: view.two_approvers_above,
        zones: crate::timefmt::ZONES,
        zone: crate::timefmt::console_zone().id,
        merchant: view.merchant_name.unwrap_or_default(),
        deliveries,
        error,
    }))
}

/// Saves one change (audited with it) and goes back to the settings with `flash`.
async fn saved(
    state: &AppState,
    c: &Current,
    ctx: &super::guard::Ctx,
    change: Change,
    flash: &'static str,
) -> Result<Response, ConsoleError> {
    let () = state.settings.save(&c.actor(&ctx.ip, &ctx.user_agent), change).await?;
    Ok(flash::redirect("/admin/settings", flash))
}

pub async fn settings(State(state): State<AppState>, a: Authorized<ManageSettings>) -> Result<Response, ConsoleError> {
    settings_view(&state, &a.current, None, None, None).await
}

#[derive(Deserialize)]
pub struct UrlForm {
    #[serde(default)]
    url: String,
    #[serde(default)]
    csrf_token: String,
}

pub async fn save_settings(
    State(state): State<AppState>,
    a: AuthorizedForm<ManageSettings, UrlForm>,
) -> Result<Response, ConsoleError> {
    let AuthorizedForm { current: c, ctx, form: f, .. } = a;
    let url = match notify::valid_url(&f.url, state.payments.notify_allow_loopback) {
        Ok(u) => u,
        Err(e) => {
            let typed: String = f.url.chars().take(2048).collect();
            return settings_view(&state, &c, Some(typed), None, Some(e.into())).await;
        }
    };
    saved(&state, &c, &ctx, Change::NotifyUrl(url), "settings_saved").await
}

#[derive(Deserialize)]
pub struct ThresholdForm {
    #[serde(default)]
    currency: String,
    /// Empty: one approver whatever the amount.
    #[serde(default)]
    amount: String,
    #[serde(default)]
    csrf_token: String,
}

/// An admin sets the amount above which a payout in a currency needs two approvers.
pub async fn save_threshold(
    State(state): State<AppState>,
    a: AuthorizedForm<ManageSettings, ThresholdForm>,
) -> Result<Response, ConsoleError> {
    let AuthorizedForm { current: c, ctx, form: f, .. } = a;
    let Some(currency) = Currency::parse(&f.currency) else {
        return settings_view(&state, &c, None, None, Some("Choose a currency.".into())).await;
    };
    let typed = f.amount.trim().replace(',', "");
    let amount = if typed.is_empty() {
        None
    } else {
        match typed.parse::<Decimal>().ok().and_then(|a| currency.check_amount(a, state.payouts.max_amount).ok()) {
            Some(a) => Some(a),
            None => {
                let why = format!("The {currency} threshold must be an amount such as 100000.");
                return settings_view(&state, &c, None, None, Some(why)).await;
            }
        }
    };
    saved(&state, &c, &ctx, Change::TwoApproversAbove(currency, amount), "threshold_saved").await
}

/// An admin queues a `test.ping` to the shop's endpoint; the log shows how it went.
pub async fn send_test(
    State(state): State<AppState>,
    a: AuthorizedForm<ManageSettings, CsrfOnly>,
) -> Result<Response, ConsoleError> {
    let AuthorizedForm { current: c, ctx, form: _, .. } = a;
    let actor = c.actor(&ctx.ip, &ctx.user_agent);
    state.payments.send_test_event(&actor).await.map_err(ConsoleError::internal)?;
    Ok(flash::redirect("/admin/settings#deliveries", "test_event_sent"))
}

#[derive(Deserialize)]
pub struct MerchantForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    csrf_token: String,
}

/// The merchant's name, shown to customers on the return page and Flutterwave's page.
pub async fn save_merchant(
    State(state): State<AppState>,
    a: AuthorizedForm<ManageSettings, MerchantForm>,
) -> Result<Response, ConsoleError> {
    let AuthorizedForm { current: c, ctx, form: f, .. } = a;
    let name = f.name.trim();
    if name.is_empty() || name.chars().count() > 80 || name.chars().any(char::is_control) {
        let why = "The merchant's name must be 1 to 80 characters on one line.".to_string();
        return settings_view(&state, &c, None, None, Some(why)).await;
    }
    saved(&state, &c, &ctx, Change::MerchantName(name.to_string()), "settings_saved").await
}

#[derive(Deserialize)]
pub struct ZoneForm {
    #[serde(default)]
    zone: String,
    #[serde(default)]
    csrf_token: String,
}

/// An admin sets the time zone the console shows times in (records stay UTC).
pub async fn save_zone(
    State(state): State<AppState>,
    a: AuthorizedForm<ManageSettings, ZoneForm>,
) -> Result<Response, ConsoleError> {
    let AuthorizedForm { current: c, ctx, form: f, .. } = a;
    let Some(zone) = crate::timefmt::Zone::parse(&f.zone) else {
        return settings_view(&state, &c, None, None, Some("Choose one of the listed time zones.".into())).await;
    };
    saved(&state, &c, &ctx, Change::TimeZone(zone), "settings_saved").await
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf_token: String,
    /// `yes` once the confirmation screen was seen (destructive actions).
    #[serde(default)]
    confirmed: String,
}

/// A new signing secret, after a confirmation: the shop must switch to it.
pub async fn new_secret(
    State(state): State<AppState>,
    a: AuthorizedForm<ManageSettings, CsrfOnly>,
) -> Result<Response, ConsoleError> {
    let AuthorizedForm { current: c, ctx, form: f, .. } = a;
    if f.confirmed != "yes" {
        return Ok(super::forms::Confirm {
            heading: "Generate a new notification signing secret?",
            consequences: "The old secret stops signing at once: until the shop uses the new one, it will refuse Sika's notifications (they are retried, not lost).",
            action: "/admin/settings/secret",
            button: "Generate a new secret",
            back: "/admin/settings",
        }
        .page(&c));
    }
    let actor = c.actor(&ctx.ip, &ctx.user_agent);
    let secret = format!("whsec_{}", crate::crypto::random::token());
    let sealed = cipher(&state).seal_str("settings", "value", notify::SECRET_SETTING, &secret);
    if let Err(e) = state.settings.save(&actor, Change::NotifySecret { sealed }).await {
        return Err(ConsoleError::internal(e));
    }
    settings_view(&state, &c, None, Some(secret), None).await
}

pub async fn replay(
    State(state): State<AppState>,
    Path(id): Path<String>,
    a: AuthorizedForm<ManageSettings, CsrfOnly>,
) -> Result<Response, ConsoleError> {
    let AuthorizedForm { current: c, ctx, form: _, .. } = a;
    if id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(AppError::NotFound.into_response());
    }
    let actor = c.actor(&ctx.ip, &ctx.user_agent);
    state.payments.replay_notification(&actor, &id).await?;
    Ok(flash::redirect("/admin/settings", "notification_replayed"))
}

struct InboxLine {
    id: String,
    received: Stamp,
    state: InboxState,
    attempts: i64,
    note: String,
    body: String,
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct WebhooksPage {
    nav: Option<Nav>,
    csrf: String,
    rows: Vec<InboxLine>,
    refused: u64,
    backlog: i64,
    oldest: Option<Stamp>,
}

pub async fn webhooks(State(state): State<AppState>, a: Authorized<ManageSettings>) -> Result<Response, ConsoleError> {
    let (c, ctx) = (a.current, a.ctx);
    let (rows, (backlog, oldest)) = state.inbox.attention().await?;
    let actor = c.actor(&ctx.ip, &ctx.user_agent);
    let details = json!({"count": rows.len()});
    if let Err(r) = state.audited(&actor, "webhooks.view", "webhook_inbox", Outcome::Success, details).await {
        return Ok(r);
    }
    let cipher = cipher(&state);
    let rows = rows
        .into_iter()
        .map(|r| {
            let body = cipher
                .open("webhook_inbox", "body", &r.id, &r.body_enc)
                .map(|b| String::from_utf8_lossy(&b).chars().take(500).collect())
                .unwrap_or_else(|_| "(cannot be opened)".into());
            InboxLine {
                received: time(r.received_at),
                state: r.state,
                attempts: r.attempts,
                note: r.note.unwrap_or_default(),
                body,
                id: r.id,
            }
        })
        .collect();
    Ok(render(&WebhooksPage {
        nav: Nav::of(&c),
        csrf: c.csrf_token.clone(),
        rows,
        refused: state.payments.refused_webhooks.load(std::sync::atomic::Ordering::Relaxed),
        backlog,
        oldest: oldest.map(time),
    }))
}

/// An admin replays a dead-lettered (or otherwise stuck) webhook: it is processed again from scratch.
pub async fn replay_webhook(
    State(state): State<AppState>,
    Path(id): Path<String>,
    a: AuthorizedForm<ManageSettings, CsrfOnly>,
) -> Result<Response, ConsoleError> {
    let AuthorizedForm { current: c, ctx, form: _, .. } = a;
    if id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(AppError::NotFound.into_response());
    }
    let actor = c.actor(&ctx.ip, &ctx.user_agent);
    state.inbox.replay(&actor, &id).await.map_err(ConsoleError::internal)?;
    Ok(flash::redirect("/admin/webhooks", "webhook_replayed"))
}

csrf_forms!(CsrfOnly, MerchantForm, ThresholdForm, UrlForm, ZoneForm);
