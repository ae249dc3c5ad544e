//! Sika's HTTP surface: routes, and the hardening every response gets.

pub mod api;
pub mod cards_api;
pub mod console;
pub mod edge;
pub mod error;
pub mod metrics;
pub mod pages;
mod payouts_api;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::get;
use http::StatusCode;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;

use crate::auth::Auth;
use crate::store::Store;

/// How long one request may take, body included, before it is cut off.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Store,
    pub auth: Auth,
    pub max_body_bytes: usize,
    /// `https://host[:port]` as browsers see Sika: the origin CSRF checks expect.
    pub public_origin: String,
    pub payments: crate::payments::Payments,
    pub payouts: crate::payouts::Payouts,
    /// The background workers' health, for `/readyz`.
    pub workers: std::sync::Arc<crate::jobs::Health>,
    /// Virtual cards, when `SIKA_CARDS_ENABLED`; every card route refuses otherwise.
    pub cards: Option<crate::cards::Cards>,
    pub settings: crate::settings::Settings,
    /// The webhook inbox, for the console's view and replays.
    pub inbox: crate::inbox::Inbox,
    /// Settlements reconciled, and the money report.
    pub settlements: crate::settlements::Settlements,
    /// Mail to approvers, admins and every user: the console's outbox and each user's choices.
    pub mail: crate::mail::Mail,
}

/// The full application.
pub fn app(state: AppState) -> Router {
    app_with(state, Router::new())
}

/// The application with `extra` routes behind the same hardening (tests use it
/// to add a failing handler or an echo route).
pub fn app_with(state: AppState, extra: Router<AppState>) -> Router {
    let max_body = state.max_body_bytes;
    let pages = middleware::from_fn_with_state(state.clone(), console::console_pages);
    harden(routes().merge(extra).layer(pages), max_body).with_state(state)
}

fn routes() -> Router<AppState> {
    console::routes()
        .route("/healthz", get(pages::healthz))
        .route("/readyz", get(pages::readyz))
        .route("/static/sika.css", get(pages::stylesheet))
        .route("/api/v1/checkouts", get(api::list_checkouts).post(api::create_checkout))
        .route("/api/v1/checkouts/{reference}", get(api::get_checkout))
        .route("/api/v1/openapi.json", get(api::openapi))
        .route("/api/v1/banks/{country}", get(api::banks))
        .route("/api/v1/accounts/resolve", axum::routing::post(api::resolve_account))
        .route("/api/v1/payouts", get(payouts_api::list).post(payouts_api::create))
        .route("/api/v1/payouts/{reference}", get(payouts_api::get))
        .route("/api/v1/payouts/{reference}/cancel", axum::routing::post(payouts_api::cancel))
        .route("/api/v1/payout-batches", axum::routing::post(payouts_api::create_batch))
        .route("/api/v1/payout-batches/{id}", get(payouts_api::get_batch))
        .route("/api/v1/beneficiaries", get(payouts_api::list_beneficiaries).post(payouts_api::create_beneficiary))
        .route("/api/v1/beneficiaries/{id}", get(payouts_api::get_beneficiary).delete(payouts_api::delete_beneficiary))
        .route("/webhooks/flutterwave", axum::routing::post(api::flutterwave_webhook))
        .route("/checkout/return", get(api::checkout_return))
        .route("/api/v1/cards", get(cards_api::list).post(cards_api::create))
        .route("/api/v1/cards/{reference}", get(cards_api::get))
        .route("/api/v1/cards/{reference}/transactions", get(cards_api::transactions))
        .route("/api/v1/cards/{reference}/fundings", get(cards_api::fundings))
        .route("/api/v1/cards/{reference}/fund", axum::routing::post(cards_api::fund))
        .route("/api/v1/cards/{reference}/withdraw", axum::routing::post(cards_api::withdraw))
        .route("/api/v1/cards/{reference}/{action}", axum::routing::post(cards_api::act))
}

/// Wraps routes in the layers every response relies on.
fn harden(routes: Router<AppState>, max_body_bytes: usize) -> Router<AppState> {
    routes
        .route_layer(middleware::from_fn(edge::record_route))
        // The limit itself is `edge::limit_body` (per route); extractors take what it lets through.
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn(move |req, next| edge::limit_body(max_body_bytes, req, next)))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
        .layer(CatchPanicLayer::custom(|_panic| {
            // The panic's text went to the log through the panic hook; the user sees the generic 500.
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }))
        .layer(middleware::from_fn(edge::gate))
        .layer(middleware::from_fn(edge::edge))
}
