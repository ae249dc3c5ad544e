//! The merchant API (`/api/v1`, JSON, `Authorization: Bearer <api key>`),
//! the Flutterwave webhook intake, and the customer's return page.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::error::AppError;
use crate::auth::apikeys::KeyIdentity;
use crate::domain::CheckoutStatus;
use crate::domain::checkout::{self, CheckoutRequest};
use crate::payments::{CreateError, Refusal};
use crate::store::{CheckoutRow, RefundRow};

/// The calling key, if it is valid and carries `scope` (or `read` for reads).
pub(crate) async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    scope: &str,
    read: bool,
) -> Result<KeyIdentity, Response> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let unauthorized = || {
        let mut r = AppError::Unauthorized.into_response();
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        r
    };
    let Some(presented) = presented else { return Err(unauthorized()) };
    match state.auth.authenticate_key(presented).await {
        Ok(Some(k)) if k.scopes.iter().any(|s| s == scope || (read && s == "read")) => Ok(k),
        Ok(Some(_)) => Err(AppError::Forbidden.into_response()),
        Ok(None) => Err(unauthorized()),
        Err(e) => Err(AppError::Internal(Box::new(e)).into_response()),
    }
}

/// A checkout as the API shows it. Amounts are decimal strings (exact);
/// `refunded` counts completed refunds, `net` is paid less refunded.
fn checkout_json(c: &CheckoutRow, refunds: &[RefundRow]) -> serde_json::Value {
    let refunds: Vec<serde_json::Value> = refunds
        .iter()
        .map(|r| {
            json!({"id": r.id, "amount": r.amount.to_string(), "status": r.status,
                   "created_at": r.created_at, "updated_at": r.updated_at})
        })
        .collect();
    json!({
        "reference": c.reference, "status": c.status, "amount": c.amount.to_string(), "currency": c.currency,
        "checkout_url": c.checkout_url, "transaction_id": c.transaction_id,
        "paid_amount": c.paid_amount.map(|p| p.to_string()),
        "refunded": c.refunded.to_string(), "net": c.net().map(|n| n.to_string()), "refunds": refunds,
        "review_reason": c.review_reason, "created_at": c.created_at, "updated_at": c.updated_at,
        "description": c.description, "expires_at": c.link_expires_at,
        "payment": {
            "method": c.payment.payment_type, "card_brand": c.payment.card_brand,
            "card_last4": c.payment.card_last4, "fee": c.payment.fee.map(|f| f.to_string()),
            "charged_amount": c.payment.charged_amount.map(|f| f.to_string()),
            "settled_amount": c.payment.settled_amount.map(|f| f.to_string()),
        },
    })
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    limit: Option<String>,
}

/// `GET /api/v1/checkouts`: newest first, filtered, a page at a time.
/// `from` is inclusive and `to` exclusive (dates are UTC midnights).
pub async fn list_checkouts(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<ListQuery>) -> Response {
    if let Err(r) = caller(&state, &headers, "checkouts", true).await {
        return r;
    }
    let bad =
        |field: &str, why: &str| AppError::bad_request("invalid_query", format!("{field}: {why}")).into_response();
    fn given(v: &Option<String>) -> Option<&str> {
        v.as_deref().map(str::trim).filter(|v| !v.is_empty())
    }
    let status = match given(&q.status) {
        None => None,
        Some(s) => match CheckoutStatus::parse(s) {
            Some(s) => Some(s),
            None => return bad("status", "must be pending, paid, needs_review, failed or cancelled"),
        },
    };
    let currency = match given(&q.currency) {
        None => None,
        Some(c) => match crate::domain::Currency::parse(c) {
            Some(c) => Some(c),
            None => return bad("currency", "is not a currency Sika accepts"),
        },
    };
    let instant = |v: &Option<String>| match given(v) {
        None => Ok(None),
        Some(t) => crate::timefmt::parse_instant(t).map(Some).ok_or(()),
    };
    let Ok(from_ms) = instant(&q.from) else {
        return bad("from", "must be a date (2026-11-29) or a UTC time (2026-11-29T10:00:00Z)");
    };
    let Ok(to_ms) = instant(&q.to) else {
        return bad("to", "must be a date (2026-11-29) or a UTC time (2026-11-29T10:00:00Z)");
    };
    let cursor = match given(&q.cursor) {
        None => None,
        Some(c) => match crate::payments::list::Cursor::parse(c) {
            Some(c) => Some(c),
            None => return bad("cursor", "is not a cursor this API gave"),
        },
    };
    let limit = match given(&q.limit) {
        None => 50,
        Some(l) => match l.parse::<i64>() {
            Ok(l) if (1..=crate::payments::list::MAX_PAGE).contains(&l) => l,
            _ => return bad("limit", "must be a whole number from 1 to 200"),
        },
    };
    let filter = crate::payments::list::ListFilter {
        status,
        currency,
        from_ms,
        to_ms,
        search: given(&q.q).unwrap_or("").to_string(),
        cursor,
        limit,
    };
    match state.payments.list(&filter).await {
        Ok(page) => {
            let data: Vec<serde_json::Value> = page
                .rows
                .iter()
                .map(|c| {
                    let mut v = checkout_json(c, &[]);
                    if let Some(o) = v.as_object_mut() {
                        o.remove("refunds");
                    }
                    v
                })
                .collect();
            Json(json!({"checkouts": data, "total": page.total, "next_cursor": page.next.map(|c| c.encode())}))
                .into_response()
        }
        Err(e) => AppError::from(e).into_response(),
    }
}

pub async fn create_checkout(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let key = match caller(&state, &headers, "checkouts", false).await {
        Ok(k) => k,
        Err(r) => return r,
    };
    let req: CheckoutRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            // serde's message speaks only of the caller's own input.
            let msg: String = e.to_string().chars().take(200).collect();
            return AppError::bad_request("invalid_json", msg).into_response();
        }
    };
    let new = match req.validate(state.payments.max_amount) {
        Ok(n) => n,
        Err(e) => return AppError::bad_request("invalid_field", format!("{}: {}", e.field, e.message)).into_response(),
    };
    match state.payments.create(&key.id, &new, None).await {
        Ok(c) => (StatusCode::CREATED, Json(checkout_json(&c, &[]))).into_response(),
        Err(CreateError::Conflict) => AppError::Conflict {
            code: "reference_conflict",
            message: "A checkout with this reference exists with different details.".into(),
        }
        .into_response(),
        Err(CreateError::Refused(msg)) => AppError::bad_request(
            "provider_refused",
            format!("Flutterwave refused the checkout: {}", msg.chars().take(200).collect::<String>()),
        )
        .into_response(),
        Err(CreateError::Unavailable) => {
            AppError::Unavailable("Flutterwave gave no definite answer".into()).into_response()
        }
        Err(CreateError::Store(e)) => AppError::from(e).into_response(),
    }
}

pub async fn get_checkout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(reference): Path<String>,
) -> Response {
    if let Err(r) = caller(&state, &headers, "checkouts", true).await {
        return r;
    }
    if checkout::reference(&reference).is_err() {
        return AppError::NotFound.into_response();
    }
    let (c, refunds) = match state.payments.checkout_with_refunds(&reference).await {
        Ok(Some(found)) => found,
        Ok(None) => return AppError::NotFound.into_response(),
        Err(e) => return AppError::from(e).into_response(),
    };
    let chargebacks = match state.payments.chargebacks_of(&reference).await {
        Ok(c) => c,
        Err(e) => return AppError::from(e).into_response(),
    };
    let mut v = checkout_json(&c, &refunds);
    let charged_back = crate::store::charged_back(&chargebacks);
    let listed: Vec<serde_json::Value> = chargebacks
        .iter()
        .map(|k| {
            json!({"id": k.facts.id, "amount": k.facts.amount.to_string(), "status": k.facts.status,
                   "stage": k.facts.stage, "due_at": k.facts.due_at, "first_seen_at": k.first_seen_at,
                   "updated_at": k.updated_at})
        })
        .collect();
    if let Some(o) = v.as_object_mut() {
        o.insert("chargebacks".into(), json!(listed));
        o.insert("charged_back".into(), json!(charged_back.to_string()));
        o.insert("net_after_chargebacks".into(), json!(c.net().map(|n| (n - charged_back).to_string())));
    }
    Json(v).into_response()
}

/// Flutterwave's webhook: signature first (401, nothing stored), then the
/// inbox, then 200. No call to Flutterwave happens here.
pub async fn flutterwave_webhook(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let h = |n: &str| headers.get(n).map(|v| v.as_bytes());
    match state
        .payments
        .receive(h(flutterwave::webhook::VERIF_HASH_HEADER), h(flutterwave::webhook::SIGNATURE_HEADER), &body)
        .await
    {
        Ok(_) => Json(json!({"status": "received"})).into_response(),
        Err(Refusal::Signature) => AppError::Unauthorized.into_response(),
        Err(Refusal::Store(e)) => AppError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
pub struct ReturnQuery {
    #[serde(default)]
    tx_ref: Option<String>,
    /// Flutterwave's hint (`cancelled` when the customer closed its page): wording only.
    #[serde(default)]
    status: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "return.html")]
struct ReturnPage {
    merchant: String,
    status: &'static str,
    tone: &'static str,
    heading: &'static str,
    text: &'static str,
    amount: String,
    currency: crate::domain::Currency,
    reference: String,
    description: Option<String>,
    back: Option<String>,
    /// Flutterwave's page again, while the payment is still open.
    pay_again: Option<String>,
    check_again: bool,
}

/// Where Flutterwave sends the customer back. The query string is a hint:
/// only the reference is read for state (a `transaction_id` is ignored), a
/// pending checkout is verified by its own reference at most once per short
/// interval, and the page shows the verified state, the merchant and the
/// amount, and links back to the shop with only the reference and status.
pub async fn checkout_return(State(state): State<AppState>, Query(q): Query<ReturnQuery>) -> Response {
    let Some(reference) = q.tx_ref.as_deref().and_then(|r| checkout::reference(r).ok()) else {
        return AppError::NotFound.into_response();
    };
    let c = match state.payments.return_visit(&reference).await {
        Ok(Some(c)) => c,
        Ok(None) => return AppError::NotFound.into_response(),
        Err(e) => return AppError::from(e).into_response(),
    };
    let left = matches!(q.status.as_deref(), Some("cancelled"));
    let (tone, heading, text) = match c.status {
        CheckoutStatus::Paid => ("ok", "Payment confirmed", "Thank you: your payment is confirmed."),
        CheckoutStatus::NeedsReview => {
            ("warn", "Payment under review", "We received a payment that needs a check; the shop will be in touch.")
        }
        CheckoutStatus::Pending if left => {
            ("info", "You left before paying", "Nothing was charged. You can pay now, or go back to the shop.")
        }
        CheckoutStatus::Pending => (
            "info",
            "Confirming your payment",
            "Your payment is not confirmed yet. This page does not change anything: check again in a moment.",
        ),
        CheckoutStatus::Cancelled => (
            "bad",
            "Payment cancelled",
            "This payment was closed before it was paid; nothing was charged. Go back to the shop to try again.",
        ),
        CheckoutStatus::Failed => (
            "bad",
            "Payment not completed",
            "The payment did not go through and nothing was charged. Go back to the shop to try again.",
        ),
    };
    let back = c.redirect_url.as_deref().and_then(|u| url::Url::parse(u).ok()).map(|mut u| {
        u.query_pairs_mut().append_pair("reference", &c.reference).append_pair("status", c.status.as_str());
        u.to_string()
    });
    let merchant = match state.payments.merchant_name().await {
        Ok(m) => m,
        Err(e) => return AppError::from(e).into_response(),
    };
    let pending = c.status == CheckoutStatus::Pending;
    let page = ReturnPage {
        merchant,
        status: c.status.as_str(),
        tone,
        heading,
        text,
        amount: c.currency.format(c.amount),
        currency: c.currency,
        description: c.description.clone(),
        back,
        // Only a web address is ever a link (never `javascript:` or the like).
        pay_again: c
            .checkout_url
            .clone()
            .filter(|u| pending && url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "https" | "http"))),
        check_again: pending,
        reference: c.reference,
    };
    match askama::Template::render(&page) {
        Ok(html) => Html(html).into_response(),
        Err(e) => AppError::Internal(Box::new(e)).into_response(),
    }
}

/// The OpenAPI document of this API (no key needed: it holds no secret).
pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], include_str!("../../assets/openapi.json")).into_response()
}

/// `GET /api/v1/banks/{country}` (`payouts` or `read` scope): Flutterwave's bank list.
pub async fn banks(State(state): State<AppState>, headers: HeaderMap, Path(country): Path<String>) -> Response {
    if let Err(r) = caller(&state, &headers, "payouts", true).await {
        return r;
    }
    let Some(country) = country_code(&country) else {
        return AppError::bad_request("invalid_field", "country: must be a two-letter ISO code such as NG")
            .into_response();
    };
    match state.payments.flutterwave().banks(&country).await {
        flutterwave::Reply::Ok(list) => Json(json!({"country": country, "banks": list})).into_response(),
        flutterwave::Reply::Rejected(e) => {
            AppError::bad_request("provider_refused", e.message.chars().take(200).collect::<String>()).into_response()
        }
        flutterwave::Reply::Indefinite(_) => {
            AppError::Unavailable("Flutterwave gave no definite answer".into()).into_response()
        }
    }
}

fn country_code(c: &str) -> Option<String> {
    (c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic())).then(|| c.to_ascii_uppercase())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    account_number: String,
    bank_code: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    country: Option<String>,
}

/// `POST /api/v1/accounts/resolve` (`payouts` or `read` scope). The bank code
/// must be one of the country's banks (the checklist: check `/banks` first);
/// M-Pesa numbers resolve with `{bank_code: "MPS", type: "MOBILEMONEY", country: "KE"}`.
pub async fn resolve_account(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = caller(&state, &headers, "payouts", true).await {
        return r;
    }
    let b: ResolveBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return AppError::bad_request("invalid_json", e.to_string().chars().take(200).collect::<String>())
                .into_response();
        }
    };
    let mobile = b.kind.as_deref().map(str::to_ascii_uppercase);
    if mobile.as_deref().is_some_and(|k| k != "MOBILEMONEY") {
        return AppError::bad_request("invalid_field", "type: the only type is MOBILEMONEY").into_response();
    }
    let country = match b.country.as_deref() {
        None => "NG".to_string(),
        Some(c) => match country_code(c) {
            Some(c) => c,
            None => {
                return AppError::bad_request("invalid_field", "country: must be a two-letter ISO code")
                    .into_response();
            }
        },
    };
    let number = b.account_number.trim();
    let digits = number.strip_prefix('+').unwrap_or(number);
    if !(6..=20).contains(&digits.len()) || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return AppError::bad_request(
            "invalid_field",
            "account_number: must be 6 to 20 digits (a mobile number may start with +)",
        )
        .into_response();
    }
    let code = b.bank_code.trim().to_ascii_uppercase();
    if code.is_empty() || code.len() > 10 || !code.bytes().all(|c| c.is_ascii_alphanumeric()) {
        return AppError::bad_request("invalid_field", "bank_code: must be a bank code from /api/v1/banks/{country}")
            .into_response();
    }
    if mobile.is_some() && (code != "MPS" || country != "KE") {
        return AppError::bad_request(
            "invalid_field",
            "type MOBILEMONEY resolves M-Pesa numbers: bank_code MPS and country KE",
        )
        .into_response();
    }
    let flw = state.payments.flutterwave();
    // The checklist: pass correct bank codes — check the country's bank list first.
    match flw.banks(&country).await {
        flutterwave::Reply::Ok(list) if list.iter().any(|bank| bank.code.eq_ignore_ascii_case(&code)) => {}
        flutterwave::Reply::Ok(_) => {
            return AppError::bad_request("unknown_bank", format!("bank_code: {code} is not a bank in {country}"))
                .into_response();
        }
        flutterwave::Reply::Rejected(e) => {
            return AppError::bad_request("provider_refused", e.message.chars().take(200).collect::<String>())
                .into_response();
        }
        flutterwave::Reply::Indefinite(_) => {
            return AppError::Unavailable("Flutterwave gave no definite answer".into()).into_response();
        }
    }
    let req = flutterwave::banks::ResolveRequest {
        account_number: number.to_string(),
        account_bank: code,
        kind: mobile,
        country: b.kind.as_ref().map(|_| country.clone()),
    };
    match flw.resolve_account(&req).await {
        flutterwave::Reply::Ok(a) => {
            Json(json!({"account_number": a.account_number, "account_name": a.account_name})).into_response()
        }
        flutterwave::Reply::Rejected(e) => AppError::bad_request(
            "account_not_resolved",
            format!("The account could not be resolved: {}", e.message.chars().take(200).collect::<String>()),
        )
        .into_response(),
        flutterwave::Reply::Indefinite(_) => {
            AppError::Unavailable("Flutterwave gave no definite answer".into()).into_response()
        }
    }
}
