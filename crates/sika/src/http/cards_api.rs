//! The cards API (`/api/v1/cards`, scope `cards`; `read` may read). Every
//! route refuses with 403 `cards_disabled` unless `SIKA_CARDS_ENABLED`. A
//! card's number and CVV are never in an answer: only the masked number.

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
use crate::cards::funding::FundingError;
use crate::cards::{Action, ActionError, CreateError};
use crate::domain::FundingKind;
use crate::domain::card::{CardRequest, FundingRequest};
use crate::store::{CardRow, FundingRow};

fn card_json(c: &CardRow) -> serde_json::Value {
    json!({
        "reference": c.reference, "status": c.status, "currency": c.currency, "amount": c.amount.to_string(),
        "name_on_card": c.name_on_card, "masked_pan": c.masked_pan, "card_type": c.card_type,
        "failure": c.failure, "created_at": c.created_at, "updated_at": c.updated_at,
    })
}

/// The refusal of every card route while cards are off.
fn disabled() -> Response {
    AppError::Refused {
        code: "cards_disabled",
        message: "Virtual cards are turned off on this Sika (SIKA_CARDS_ENABLED).".into(),
    }
    .into_response()
}

pub(crate) fn today() -> (i32, u32, u32) {
    let iso = crate::timefmt::iso(crate::store::now_ms());
    let n = |r: std::ops::Range<usize>| iso.get(r).and_then(|s| s.parse::<u32>().ok()).unwrap_or(1);
    (n(0..4) as i32, n(5..7), n(8..10))
}

/// `POST /api/v1/cards`: stored awaiting approval of its first load, 202
/// with its status; once approved it is asked for once.
pub async fn create(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(cards) = state.cards.as_ref() else { return disabled() };
    let key = match caller(&state, &headers, "cards", false).await {
        Ok(k) => k,
        Err(r) => return r,
    };
    let req: CardRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return AppError::bad_request("invalid_json", e.to_string().chars().take(200).collect::<String>())
                .into_response();
        }
    };
    let new = match req.validate(cards.max_amount, today()) {
        Ok(n) => n,
        Err(e) => return AppError::bad_request("invalid_field", format!("{}: {}", e.field, e.message)).into_response(),
    };
    let actor = crate::audit::Actor::api_key(&key.id, &key.name);
    match cards.create(&actor, &format!("key:{}", key.id), &new).await {
        Ok(row) => (StatusCode::ACCEPTED, Json(card_json(&row))).into_response(),
        Err(CreateError::Conflict) => AppError::Conflict {
            code: "reference_conflict",
            message: "A card with this reference exists with different details.".into(),
        }
        .into_response(),
        Err(CreateError::Store(e)) => AppError::from(e).into_response(),
    }
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    cursor: String,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    status: String,
    /// A reference fragment.
    #[serde(default)]
    q: String,
}

pub async fn list(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<ListQuery>) -> Response {
    let Some(cards) = state.cards.as_ref() else { return disabled() };
    if let Err(r) = caller(&state, &headers, "cards", true).await {
        return r;
    }
    let after = q
        .cursor
        .split_once('.')
        .and_then(|(at, r)| Some((at.parse::<i64>().ok()?, crate::domain::checkout::reference(r).ok()?.into_string())));
    if !q.cursor.is_empty() && after.is_none() {
        return AppError::bad_request("invalid_query", "cursor is not one this API gave").into_response();
    }
    let status = match q.status.as_str() {
        "" => None,
        s => match crate::domain::CardStatus::parse(s) {
            Some(s) => Some(s),
            None => return AppError::bad_request("invalid_query", "status is not a card status").into_response(),
        },
    };
    let search = q.q.trim();
    if search.chars().count() > 64 {
        return AppError::bad_request("invalid_query", "q must be at most 64 characters").into_response();
    }
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let query = crate::store::CardQuery {
        status,
        search: (!search.is_empty()).then(|| search.to_string()),
        after,
        limit: limit + 1,
    };
    match cards.list(&query).await {
        Ok((mut rows, total)) => {
            let next = (rows.len() as i64 > limit).then(|| {
                rows.truncate(limit as usize);
                rows.last().map(|r| format!("{}.{}", r.created_at, r.reference))
            });
            let cards = rows.iter().map(card_json).collect::<Vec<_>>();
            Json(json!({"cards": cards, "next_cursor": next.flatten(), "total": total})).into_response()
        }
        Err(e) => AppError::from(e).into_response(),
    }
}

pub async fn get(State(state): State<AppState>, headers: HeaderMap, Path(reference): Path<String>) -> Response {
    let Some(cards) = state.cards.as_ref() else { return disabled() };
    if let Err(r) = caller(&state, &headers, "cards", true).await {
        return r;
    }
    if crate::domain::checkout::reference(&reference).is_err() {
        return AppError::NotFound.into_response();
    }
    match cards.card(&reference).await {
        Ok(Some(c)) => {
            // The balance is Flutterwave's, read now (null when it cannot be read).
            let mut v = card_json(&c);
            v["balance"] = json!(cards.balance(&c).await.map(|b| b.to_string()));
            Json(v).into_response()
        }
        Ok(None) => AppError::NotFound.into_response(),
        Err(e) => AppError::from(e).into_response(),
    }
}

fn action_error(e: ActionError) -> Response {
    match e {
        ActionError::NotFound => AppError::NotFound.into_response(),
        e @ ActionError::NotNow(..) => {
            AppError::Conflict { code: "card_state", message: e.to_string() }.into_response()
        }
        ActionError::Refused(m) => AppError::bad_request("refused", m).into_response(),
        ActionError::Unavailable => AppError::Unavailable("Flutterwave gave no definite answer".into()).into_response(),
        ActionError::Store(e) => AppError::from(e).into_response(),
    }
}

pub(crate) fn funding_json(f: &FundingRow) -> serde_json::Value {
    json!({
        "reference": f.reference, "card_reference": f.card_reference, "kind": f.kind, "status": f.status,
        "amount": f.amount.to_string(), "currency": f.currency.code(), "approvals_needed": f.approvals_needed,
        "reason": f.reason, "created_at": f.created_at, "updated_at": f.updated_at,
    })
}

/// `POST /api/v1/cards/{reference}/{fund|withdraw}`: recorded awaiting
/// approval (202); approvers consent in the console; sent once approved.
async fn request_funding(
    cards: &crate::cards::Cards,
    key: &crate::auth::apikeys::KeyIdentity,
    reference: &str,
    kind: FundingKind,
    body: &[u8],
) -> Response {
    let req: FundingRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return AppError::bad_request("invalid_json", e.to_string().chars().take(200).collect::<String>())
                .into_response();
        }
    };
    let card = match cards.card(reference).await {
        Ok(Some(c)) => c,
        Ok(None) => return AppError::NotFound.into_response(),
        Err(e) => return AppError::from(e).into_response(),
    };
    let currency = card.currency;
    let new = match req.validate(kind, currency, cards.max_amount) {
        Ok(n) => n,
        Err(e) => return AppError::bad_request("invalid_field", format!("{}: {}", e.field, e.message)).into_response(),
    };
    let actor = crate::audit::Actor::api_key(&key.id, &key.name);
    let result = cards.request_funding(&actor, reference, &format!("key:{}", key.id), &new).await;
    let row = match result {
        Ok(row) => row,
        Err(FundingError::NoSuchCard) => return AppError::NotFound.into_response(),
        Err(e @ FundingError::NotNow(_)) => {
            return AppError::Conflict { code: "card_state", message: e.to_string() }.into_response();
        }
        Err(FundingError::Conflict) => {
            return AppError::Conflict {
                code: "reference_conflict",
                message: "A funding with this reference exists with different details.".into(),
            }
            .into_response();
        }
        Err(FundingError::Store(e)) => return AppError::from(e).into_response(),
    };
    (StatusCode::ACCEPTED, Json(funding_json(&row))).into_response()
}

/// `GET /api/v1/cards/{reference}/fundings`: the first load, fundings and withdrawals.
pub async fn fundings(State(state): State<AppState>, headers: HeaderMap, Path(reference): Path<String>) -> Response {
    let Some(cards) = state.cards.as_ref() else { return disabled() };
    if let Err(r) = caller(&state, &headers, "cards", true).await {
        return r;
    }
    if crate::domain::checkout::reference(&reference).is_err() {
        return AppError::NotFound.into_response();
    }
    match cards.card(&reference).await {
        Ok(Some(_)) => {}
        Ok(None) => return AppError::NotFound.into_response(),
        Err(e) => return AppError::from(e).into_response(),
    }
    match cards.fundings(&reference).await {
        Ok(rows) => Json(json!({"fundings": rows.iter().map(funding_json).collect::<Vec<_>>()})).into_response(),
        Err(e) => AppError::from(e).into_response(),
    }
}

/// `POST /api/v1/cards/{reference}/fund`.
pub async fn fund(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(reference): Path<String>,
    body: Bytes,
) -> Response {
    funding_route(state, headers, reference, FundingKind::Fund, body).await
}

/// `POST /api/v1/cards/{reference}/withdraw`.
pub async fn withdraw(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(reference): Path<String>,
    body: Bytes,
) -> Response {
    funding_route(state, headers, reference, FundingKind::Withdraw, body).await
}

async fn funding_route(
    state: AppState,
    headers: HeaderMap,
    reference: String,
    kind: FundingKind,
    body: Bytes,
) -> Response {
    let Some(cards) = state.cards.as_ref() else { return disabled() };
    let key = match caller(&state, &headers, "cards", false).await {
        Ok(k) => k,
        Err(r) => return r,
    };
    if crate::domain::checkout::reference(&reference).is_err() {
        return AppError::NotFound.into_response();
    }
    request_funding(cards, &key, &reference, kind, &body).await
}

/// `POST /api/v1/cards/{reference}/{block|unblock|terminate}`.
pub async fn act(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((reference, action)): Path<(String, String)>,
) -> Response {
    let Some(cards) = state.cards.as_ref() else { return disabled() };
    let key = match caller(&state, &headers, "cards", false).await {
        Ok(k) => k,
        Err(r) => return r,
    };
    if crate::domain::checkout::reference(&reference).is_err() {
        return AppError::NotFound.into_response();
    }
    let Some(action) = Action::parse(&action) else { return AppError::NotFound.into_response() };
    // Audited by the service: with the card's new status when done, on its own when not.
    let actor = crate::audit::Actor::api_key(&key.id, &key.name);
    match cards.act(&actor, &reference, action).await {
        Ok(c) => Json(card_json(&c)).into_response(),
        Err(e) => action_error(e),
    }
}

/// The card's transactions, read live from Flutterwave.
pub async fn transactions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(reference): Path<String>,
) -> Response {
    let Some(cards) = state.cards.as_ref() else { return disabled() };
    if let Err(r) = caller(&state, &headers, "cards", true).await {
        return r;
    }
    if crate::domain::checkout::reference(&reference).is_err() {
        return AppError::NotFound.into_response();
    }
    match cards.transactions(&reference).await {
        Ok(t) => Json(json!({"transactions": t.iter().map(|t| json!({
            "id": t.id, "amount": t.amount.decimal().to_string(), "currency": t.currency, "indicator": t.indicator,
            "narration": t.narration, "status": t.status, "created_at": t.created_at,
        })).collect::<Vec<_>>()}))
        .into_response(),
        Err(e) => action_error(e),
    }
}
