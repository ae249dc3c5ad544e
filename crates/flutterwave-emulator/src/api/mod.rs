//! The v3 REST surface: Flutterwave's envelopes, status codes and quirks,
//! behind a Bearer secret key and the fault injector.

pub mod banks;
pub mod cards;
pub mod chargebacks;
pub mod settlements;
pub mod transactions;
pub mod transfers;

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post, put};
use http::{HeaderValue, StatusCode};
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::state::{Shared, lock};
use crate::time::now_ms;

pub fn router(state: Shared) -> Router<Shared> {
    Router::new()
        .route("/payments", m(post(transactions::create_payment)))
        .route("/transactions", m(get(transactions::list)))
        .route("/transactions/verify_by_reference", m(get(transactions::verify_by_reference)))
        .route("/transactions/{id}/verify", m(get(transactions::verify)))
        .route("/transactions/{id}/refund", m(post(transactions::refund)))
        .route("/transactions/{id}/resend-hook", m(post(transactions::resend_hook)))
        .route("/refunds", m(get(transactions::list_refunds)))
        .route("/refunds/{id}", m(get(transactions::get_refund)))
        .route("/banks/{country}", m(get(banks::list)))
        .route("/banks/{id}/branches", m(get(banks::branches)))
        .route("/accounts/resolve", m(post(banks::resolve)))
        .route("/transfers", m(post(transfers::create).get(transfers::list)))
        .route("/chargebacks", m(get(chargebacks::list)))
        .route("/upload_image", m(post(chargebacks::upload)))
        .route("/settlements", m(get(settlements::list)))
        .route("/settlements/{id}", m(get(settlements::get_one)))
        .route("/chargebacks/{id}", m(axum::routing::put(chargebacks::answer)))
        .route("/transfers/fee", m(get(transfers::fee)))
        .route("/transfers/rates", m(get(transfers::rates)))
        .route("/transfers/{id}/retries", m(post(transfers::retry).get(transfers::retries)))
        .route("/transfers/{id}", m(get(transfers::get_one)))
        .route("/bulk-transfers", m(post(transfers::bulk)))
        .route("/beneficiaries", m(post(transfers::create_beneficiary).get(transfers::list_beneficiaries)))
        .route("/beneficiaries/{id}", m(get(transfers::get_beneficiary).delete(transfers::delete_beneficiary)))
        .route("/balances", m(get(transfers::balances)))
        .route("/balances/{currency}", m(get(transfers::balance)))
        .route("/virtual-cards", m(post(cards::create).get(cards::list)))
        .route("/virtual-cards/{id}", m(get(cards::get_one)))
        .route("/virtual-cards/{id}/fund", m(post(cards::fund)))
        .route("/virtual-cards/{id}/withdraw", m(post(cards::withdraw)))
        .route("/virtual-cards/{id}/status/{action}", m(put(cards::set_status)))
        .route("/virtual-cards/{id}/terminate", m(put(cards::terminate)))
        .route("/virtual-cards/{id}/transactions", m(get(cards::transactions)))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), after_commit))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(middleware::from_fn_with_state(state, faults_layer))
}

/// Any method a path does not serve answers like an unknown route does (Express's `Cannot GET`).
fn m(route: MethodRouter<Shared>) -> MethodRouter<Shared> {
    route.fallback(not_found)
}

/// A request with this header observes: see `faults_layer`.
pub const OBSERVER_HEADER: &str = "x-emulator-observer";

/// Wraps the v3 router: counts, rate-limits, delays and fails requests as the faults say.
pub async fn faults_layer(State(state): State<Shared>, req: Request, next: Next) -> Response {
    // A test's own look at the emulator's state: never faulted, counted or limited,
    // and it draws nothing from the fault generator (seeded runs stay the same).
    if req.headers().contains_key(OBSERVER_HEADER) {
        return next.run(req).await;
    }
    let endpoint = format!(
        "{} /v3{}",
        req.method(),
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().trim_start_matches("/v3")).unwrap_or("/*")
    );
    let faults = state.faults();
    let now = now_ms();
    let in_this_second = lock(&state.stats).count(&endpoint, now);
    let throttled = {
        let mut g = lock(&state.faults);
        let t = g.0.throttle_next > 0;
        if t {
            g.0.throttle_next -= 1;
        }
        t
    };
    let over = faults.rate_limit_per_second.is_some_and(|limit| in_this_second as f64 > limit);
    if throttled || over {
        let mut stats = lock(&state.stats);
        stats.rate_limited += 1;
        stats.limited_at.push(now);
        drop(stats);
        let mut res = error(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded. Please try again later.");
        let after = if throttled { faults.throttle_retry_after_s } else { 1 };
        if let Ok(v) = HeaderValue::from_str(&after.to_string()) {
            res.headers_mut().insert(http::header::RETRY_AFTER, v);
        }
        return res;
    }
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    if state.chance(|f| f.error_rate) {
        lock(&state.stats).errors_injected += 1;
        let id = format!("ERRNO{}T{}", state.random_digits(6), now_ms());
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(
                json!({"error_id": id, "status": "error", "message": "An unexpected error occurred", "data": null}),
            ),
        )
            .into_response();
    }
    next.run(req).await
}

/// After the handler ran (its change is applied), sometimes answer 503 anyway.
async fn after_commit(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let observer = req.headers().contains_key(OBSERVER_HEADER);
    let res = next.run(req).await;
    if observer {
        return res;
    }
    if state.chance(|f| f.error_after_commit_rate) {
        lock(&state.stats).errors_injected += 1;
        return error(StatusCode::SERVICE_UNAVAILABLE, "An error occurred. Please contact support");
    }
    res
}

async fn authenticate(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let header = req.headers().get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match header.and_then(|h| h.strip_prefix("Bearer ")) {
        None => error(StatusCode::UNAUTHORIZED, "Authorization required"),
        Some(key) if key != state.secret_key => error(StatusCode::UNAUTHORIZED, "Invalid authorization key"),
        Some(_) => next.run(req).await,
    }
}

/// Unknown routes answer like Flutterwave's: plain text `Cannot GET /v3/...`.
async fn not_found(axum::extract::OriginalUri(uri): axum::extract::OriginalUri, req: Request) -> Response {
    let path = uri.path().to_string();
    (
        StatusCode::NOT_FOUND,
        [(http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
        format!("Cannot {} {path}", req.method()),
    )
        .into_response()
}

pub fn ok(message: &str, data: Value) -> Response {
    axum::Json(json!({"status": "success", "message": message, "data": data})).into_response()
}

pub fn ok_page(message: &str, data: Value, page: usize, total: usize, per_page: usize) -> Response {
    let total_pages = total.div_ceil(per_page).max(1);
    axum::Json(json!({
        "status": "success",
        "message": message,
        "meta": {"page_info": {"total": total, "current_page": page, "total_pages": total_pages}},
        "data": data,
    }))
    .into_response()
}

pub fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({"status": "error", "message": message, "data": null}))).into_response()
}

pub fn bad(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, message)
}

/// Parses a JSON body, answering malformed input like Flutterwave does (400 envelope).
pub fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, Response> {
    serde_json::from_slice(bytes).map_err(|_| bad("Invalid request body"))
}

/// A money field: a JSON number or numeric string, > 0.
pub fn amount(v: Option<&Value>) -> Option<Decimal> {
    let text = match v? {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => return None,
    };
    let d = Decimal::from_str_exact(&text).or_else(|_| Decimal::from_scientific(&text)).ok()?;
    (d > Decimal::ZERO).then_some(d)
}

pub fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// JSON number for a decimal, exact.
pub fn num(d: Decimal) -> Value {
    serde_json::from_str(&d.normalize().to_string()).unwrap_or(Value::Null)
}

pub fn page_of(query: &std::collections::HashMap<String, String>) -> usize {
    query.get("page").and_then(|p| p.parse::<usize>().ok()).filter(|p| *p >= 1).unwrap_or(1)
}
