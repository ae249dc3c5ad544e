//! The home page and the operator's own password.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::authorized::ConsoleError;
use super::charts::{self, Svg};
use super::flash;
use super::forms::FieldErrors;
use super::guard::{Ctx, Nav, internal, render, time};
use crate::auth::AuthError;
use crate::auth::roles::may;
use crate::domain::Currency;
use crate::http::AppState;
use crate::payments::overview::Period;
use crate::store::Health;
use crate::timefmt::Stamp;

/// One currency on the overview, ready to show.
struct CurrencyCard {
    currency: Currency,
    collected: String,
    paid_count: i64,
    created_count: i64,
    success: String,
    refunded: String,
    pending: i64,
    needs_review: i64,
    chart: Svg,
}

#[derive(Template)]
#[template(path = "home.html")]
struct Home {
    nav: Option<Nav>,
    email: String,
    role: String,
    period: Period,
    periods: [Period; 3],
    /// `None` for roles that do not read payments.
    cards: Option<Vec<CurrencyCard>>,
    health: Option<Health>,
    inbox_oldest: Option<Stamp>,
    inbox_last: Option<Stamp>,
    outbox_last: Option<Stamp>,
    approvals: Option<i64>,
    /// Open chargebacks due within 24 hours, and overdue ones (for roles that read payments).
    disputes: Option<(i64, i64)>,
    can_audit: bool,
}

#[derive(Deserialize, Default)]
pub struct HomeQuery {
    #[serde(default)]
    period: String,
}

/// Home: the overview for the chosen period, per currency, with what waits for a person.
pub async fn home(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<HomeQuery>,
) -> Result<Response, ConsoleError> {
    let c = match state.signed_in(&ctx).await {
        Ok(c) => c,
        Err(r) => return Ok(r),
    };
    let period = Period::parse(&q.period);
    let zone = crate::timefmt::console_zone();
    let offset = zone.offset_minutes * 60_000;
    let reads = may::READ_PAYMENTS.contains(&c.role());
    let (cards, health) = if reads {
        let o = state.payments.overview(period, offset).await?;
        let labels: Vec<String> = (0..o.currencies.first().map_or(0, |f| f.series.len()))
            .map(|i| {
                let at = o.start + o.bucket_ms * i64::try_from(i).unwrap_or(0) + offset;
                if period == Period::Today {
                    format!("{}:00", &crate::timefmt::datetime(at)[11..13])
                } else {
                    crate::timefmt::date(at)
                }
            })
            .collect();
        let cards = o
            .currencies
            .iter()
            .map(|f| {
                let cur = f.currency;
                let title = format!("{cur} collected, {}", period.label().to_lowercase());
                CurrencyCard {
                    currency: cur,
                    collected: cur.format(f.collected),
                    paid_count: f.paid_count,
                    created_count: f.created_count,
                    success: f
                        .success_permille
                        .map(|p| format!("{}.{}%", p / 10, p % 10))
                        .unwrap_or_else(|| "no closed payment yet".into()),
                    refunded: cur.format(f.refunded),
                    pending: f.pending,
                    needs_review: f.needs_review,
                    chart: charts::bars(&format!("chart-{}", cur.code()), &title, cur, &f.series, &labels),
                }
            })
            .collect();
        (Some(cards), Some(o.health))
    } else {
        (None, None)
    };
    Ok(render(&Home {
        nav: Nav::of(&c),
        email: c.user.email.clone(),
        role: c.role().as_str().into(),
        period,
        periods: Period::ALL,
        inbox_oldest: health.as_ref().and_then(|h| h.inbox_oldest).map(time),
        inbox_last: health.as_ref().and_then(|h| h.inbox_last_received).map(time),
        outbox_last: health.as_ref().and_then(|h| h.outbox_last_delivered).map(time),
        cards,
        health,
        approvals: c.approvals_waiting,
        disputes: match reads {
            true => {
                let d = state.payments.disputes_due(crate::store::now_ms()).await?;
                Some((d.due_soon, d.overdue)).filter(|(soon, late)| soon + late > 0)
            }
            false => None,
        },
        can_audit: may::READ_AUDIT.contains(&c.role()),
    }))
}

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    nav: Option<Nav>,
    csrf: String,
    errors: FieldErrors,
}

pub async fn password_page(State(state): State<AppState>, ctx: Ctx) -> Response {
    match state.signed_in(&ctx).await {
        Ok(c) => render(&PasswordPage { nav: Nav::of(&c), csrf: c.csrf_token.clone(), errors: FieldErrors::default() }),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    csrf_token: String,
}

pub async fn change_password(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(f): Form<PasswordForm>,
) -> Result<Response, ConsoleError> {
    let c = match state.signed_in(&ctx).await {
        Ok(c) => c,
        Err(r) => return Ok(r),
    };
    if let Err(r) = state.check_csrf(&c, &ctx, &f.csrf_token).await {
        return Ok(r);
    }
    let actor = c.actor(&ctx.ip, &ctx.user_agent);
    Ok(match state.auth.change_password(&actor, &c.user.id, &f.current, &f.new_password, &c.token_hash).await {
        Ok(()) => flash::redirect("/", "password_changed"),
        Err(AuthError::Invalid(field, msg)) => {
            render(&PasswordPage { nav: Nav::of(&c), csrf: c.csrf_token.clone(), errors: FieldErrors::of(field, msg) })
        }
        Err(e) => internal(e),
    })
}
