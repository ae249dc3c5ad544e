//! The payouts API (`/api/v1/payouts`, scope `payouts`; `read` may read).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::api::caller;
use super::error::AppError;
use crate::domain::PayoutStatus;
use crate::domain::payout::PayoutRequest;
use crate::payouts::{CreateError, PayoutView};

/// A payout as the API shows it: the account masked, amounts as exact decimal strings.
pub fn payout_json(v: &PayoutView) -> serde_json::Value {
    let p = &v.row;
    json!({
        "reference": p.reference, "status": p.status, "amount": p.amount.to_string(), "currency": p.currency,
        "fee": p.fee.to_string(), "total": p.total().to_string(), "narration": p.narration,
        "beneficiary": {
            "country": p.country, "bank_code": p.bank_code, "bank_name": p.bank_name, "account_number": p.account_mask,
            "type": p.kind.as_str(), "branch_code": p.branch_code, "name": v.given_name,
            "resolved_name": v.resolved_name, "name_mismatch": p.name_mismatch,
        },
        "approvals_needed": p.approvals_needed, "transfer_id": p.transfer_id, "complete_message": p.complete_message,
        "reason": p.reason, "created_at": p.created_at, "updated_at": p.updated_at,
    })
}

fn body_error(e: serde_json::Error) -> Response {
    AppError::bad_request("invalid_json", e.to_string().chars().take(200).collect::<String>()).into_response()
}

/// `POST /api/v1/payouts`: checked, resolved and quoted, then 202 awaiting approval.
pub async fn create(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let key = match caller(&state, &headers, "payouts", false).await {
        Ok(k) => k,
        Err(r) => return r,
    };
    let req: PayoutRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return body_error(e),
    };
    let new = match req.validate(state.payouts.max_amount) {
        Ok(n) => n,
        Err(e) => return AppError::bad_request("invalid_field", format!("{}: {}", e.field, e.message)).into_response(),
    };
    let actor = crate::audit::Actor::api_key(&key.id, &key.name);
    match state.payouts.create(&actor, &format!("key:{}", key.id), &new).await {
        Ok(row) => (StatusCode::ACCEPTED, Json(payout_json(&state.payouts.view(row)))).into_response(),
        Err(CreateError::Conflict) => AppError::Conflict {
            code: "reference_conflict",
            message: "A payout with this reference exists with different details.".into(),
        }
        .into_response(),
        Err(CreateError::Refused { field, message }) => {
            AppError::bad_request("refused", format!("{field}: {}", message.chars().take(300).collect::<String>()))
                .into_response()
        }
        Err(CreateError::Unavailable) => {
            AppError::Unavailable("Flutterwave gave no definite answer".into()).into_response()
        }
        Err(CreateError::Store(e)) => AppError::from(e).into_response(),
    }
}

pub async fn get(State(state): State<AppState>, headers: HeaderMap, Path(reference): Path<String>) -> Response {
    if let Err(r) = caller(&state, &headers, "payouts", true).await {
        return r;
    }
    if crate::domain::checkout::reference(&reference).is_err() {
        return AppError::NotFound.into_response();
    }
    match state.payouts.payout(&reference).await {
        Ok(Some(p)) => Json(payout_json(&state.payouts.view(p))).into_response(),
        Ok(None) => AppError::NotFound.into_response(),
        Err(e) => AppError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
}

/// A page's cursor: the last row's creation time and reference, opaque to callers.
fn encode_cursor(at: i64, reference: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{at}:{reference}"))
}

fn decode_cursor(c: &str) -> Option<(i64, String)> {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c.as_bytes()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (at, reference) = text.split_once(':')?;
    Some((at.parse().ok()?, crate::domain::checkout::reference(reference).ok()?.into_string()))
}

/// `GET /api/v1/payouts?status=&cursor=&limit=`: newest first, cursor pagination.
pub async fn list(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<ListQuery>) -> Response {
    if let Err(r) = caller(&state, &headers, "payouts", true).await {
        return r;
    }
    let status = match q.status.as_deref().map(|s| PayoutStatus::parse(s).ok_or(s)) {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(_)) => return AppError::bad_request("invalid_field", "status: not a payout status").into_response(),
    };
    let cursor = match q.cursor.as_deref().map(|c| decode_cursor(c).ok_or(())) {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(())) => {
            return AppError::bad_request("invalid_field", "cursor: not a cursor from this API").into_response();
        }
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return AppError::bad_request("invalid_field", "limit: must be between 1 and 200").into_response();
    }
    match state.payouts.page(status, None, cursor, limit).await {
        Ok(rows) => {
            let next = (rows.len() as i64 == limit)
                .then(|| rows.last().map(|r| encode_cursor(r.created_at, &r.reference)))
                .flatten();
            let items: Vec<_> = rows.into_iter().map(|r| payout_json(&state.payouts.view(r))).collect();
            Json(json!({"payouts": items, "next_cursor": next})).into_response()
        }
        Err(e) => AppError::from(e).into_response(),
    }
}

/// `POST /api/v1/payouts/{reference}/cancel`: only before approval.
pub async fn cancel(State(state): State<AppState>, headers: HeaderMap, Path(reference): Path<String>) -> Response {
    let key = match caller(&state, &headers, "payouts", false).await {
        Ok(k) => k,
        Err(r) => return r,
    };
    if crate::domain::checkout::reference(&reference).is_err() {
        return AppError::NotFound.into_response();
    }
    match state.payouts.cancel(&crate::audit::Actor::api_key(&key.id, &key.name), &reference).await {
        Ok(true) => match state.payouts.payout(&reference).await {
            Ok(Some(p)) => Json(payout_json(&state.payouts.view(p))).into_response(),
            Ok(None) => AppError::NotFound.into_response(),
            Err(e) => AppError::from(e).into_response(),
        },
        Ok(false) => match state.payouts.payout(&reference).await {
            Ok(Some(_)) => AppError::Conflict {
                code: "not_cancellable",
                message: "Only a payout awaiting approval can be cancelled.".into(),
            }
            .into_response(),
            Ok(None) => AppError::NotFound.into_response(),
            Err(e) => AppError::from(e).into_response(),
        },
        Err(e) => AppError::from(e).into_response(),
    }
}

fn beneficiary_json(v: &crate::payouts::BeneficiaryView) -> serde_json::Value {
    let b = &v.row;
    json!({
        "id": b.id, "country": b.country, "bank_code": b.bank_code, "bank_name": b.bank_name,
        "account_number": b.account_mask, "type": b.kind.as_str(), "branch_code": b.branch_code,
        "name": v.name, "resolved_name": v.resolved_name, "created_at": b.created_at,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewBeneficiary {
    /// The currency it will be paid in (its corridor's rules apply).
    currency: String,
    #[serde(default)]
    country: Option<String>,
    bank_code: String,
    account_number: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    branch_code: Option<String>,
}

/// `POST /api/v1/beneficiaries`: checked and resolved like a payout's destination, sealed at rest.
pub async fn create_beneficiary(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let key = match caller(&state, &headers, "payouts", false).await {
        Ok(k) => k,
        Err(r) => return r,
    };
    let b: NewBeneficiary = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return body_error(e),
    };
    let Some(currency) = crate::domain::Currency::parse(&b.currency) else {
        return AppError::bad_request(
            "invalid_field",
            format!("currency: must be one of {}", crate::domain::Currency::list()),
        )
        .into_response();
    };
    let req = crate::domain::payout::BeneficiaryRequest {
        country: b.country,
        bank_code: b.bank_code,
        account_number: b.account_number,
        name: b.name,
        kind: b.kind,
        branch_code: b.branch_code,
    };
    let actor = crate::audit::Actor::api_key(&key.id, &key.name);
    match state.payouts.create_beneficiary(&actor, &format!("key:{}", key.id), req, currency).await {
        Ok(v) => (StatusCode::CREATED, Json(beneficiary_json(&v))).into_response(),
        Err(CreateError::Refused { field, message }) => {
            AppError::bad_request("refused", format!("{field}: {}", message.chars().take(300).collect::<String>()))
                .into_response()
        }
        Err(CreateError::Unavailable) => {
            AppError::Unavailable("Flutterwave gave no definite answer".into()).into_response()
        }
        Err(CreateError::Conflict) => AppError::bad_request("refused", "conflict").into_response(),
        Err(CreateError::Store(e)) => AppError::from(e).into_response(),
    }
}

pub async fn list_beneficiaries(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = caller(&state, &headers, "payouts", true).await {
        return r;
    }
    match state.payouts.beneficiaries(500).await {
        Ok(rows) => {
            let items: Vec<_> =
                rows.into_iter().map(|b| beneficiary_json(&state.payouts.beneficiary_view(b))).collect();
            Json(json!({"beneficiaries": items})).into_response()
        }
        Err(e) => AppError::from(e).into_response(),
    }
}

fn beneficiary_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

pub async fn get_beneficiary(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = caller(&state, &headers, "payouts", true).await {
        return r;
    }
    if !beneficiary_id(&id) {
        return AppError::NotFound.into_response();
    }
    match state.payouts.beneficiary(&id).await {
        Ok(Some(b)) => Json(beneficiary_json(&state.payouts.beneficiary_view(b))).into_response(),
        Ok(None) => AppError::NotFound.into_response(),
        Err(e) => AppError::from(e).into_response(),
    }
}

pub async fn delete_beneficiary(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let key = match caller(&state, &headers, "payouts", false).await {
        Ok(k) => k,
        Err(r) => return r,
    };
    if !beneficiary_id(&id) {
        return AppError::NotFound.into_response();
    }
    let actor = crate::audit::Actor::api_key(&key.id, &key.name);
    match state.payouts.delete_beneficiary(&actor, &id).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => AppError::NotFound.into_response(),
        Err(e) => AppError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewBatch {
    #[serde(default)]
    title: Option<String>,
    /// The CSV text, with the same header and rules as the console's upload.
    csv: String,
}

fn batch_json(s: &crate::payouts::batches::BatchSummary) -> serde_json::Value {
    let totals: serde_json::Map<String, serde_json::Value> = s
        .totals
        .iter()
        .map(|(c, (n, amount, fee))| {
            (c.code().to_string(), json!({"payouts": n, "amount": amount.to_string(), "fees": fee.to_string()}))
        })
        .collect();
    json!({
        "id": s.batch.id, "title": s.batch.title, "status": s.batch.status, "items": s.batch.total_items,
        "prepared": s.batch.prepared, "totals": totals, "by_status": s.by_status, "name_mismatches": s.mismatches,
        "errors": s.errors.iter().map(|e| json!({"row": e.row, "message": e.message})).collect::<Vec<_>>(),
        "payouts": s.items.iter().map(|p| p.reference.clone()).collect::<Vec<_>>(),
    })
}

/// `POST /api/v1/payout-batches`: a CSV checked all or nothing (every error
/// with its row), then prepared item by item; approved as one in the console.
pub async fn create_batch(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let key = match caller(&state, &headers, "payouts", false).await {
        Ok(k) => k,
        Err(r) => return r,
    };
    let b: NewBatch = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return body_error(e),
    };
    let actor = crate::audit::Actor::api_key(&key.id, &key.name);
    match state.payouts.create_batch(&actor, &format!("key:{}", key.id), b.title.as_deref(), b.csv.as_bytes()).await {
        Ok(row) => match state.payouts.batch_summary(&row.id).await {
            Ok(Some(s)) => (StatusCode::ACCEPTED, Json(batch_json(&s))).into_response(),
            Ok(None) => AppError::NotFound.into_response(),
            Err(e) => AppError::from(e).into_response(),
        },
        Err(crate::payouts::batches::BatchError::Rows(errors)) => {
            let listed: Vec<String> = errors.iter().take(50).map(|e| format!("row {}: {}", e.row, e.message)).collect();
            let more = errors.len().saturating_sub(50);
            let tail = if more > 0 { format!("; and {more} more") } else { String::new() };
            AppError::bad_request("invalid_rows", format!("{}{tail}", listed.join("; "))).into_response()
        }
        Err(crate::payouts::batches::BatchError::Store(e)) => AppError::from(e).into_response(),
    }
}

pub async fn get_batch(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = caller(&state, &headers, "payouts", true).await {
        return r;
    }
    if !beneficiary_id(&id) {
        return AppError::NotFound.into_response();
    }
    match state.payouts.batch_summary(&id).await {
        Ok(Some(s)) => Json(batch_json(&s)).into_response(),
        Ok(None) => AppError::NotFound.into_response(),
        Err(e) => AppError::from(e).into_response(),
    }
}
