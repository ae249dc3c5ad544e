//! The test-only control surface under `/_emulator/` (see `../shared/contract.md`).

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use crate::api::transactions::{ChargeRequest, charge_webhook, record_charge, settle_pending};
use crate::api::{amount, cards, transfers};
use crate::checkout::redirect_to;
use crate::rng::Rng;
use crate::state::{Shared, SignatureScheme, lock};

fn problem(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChargeBody {
    tx_ref: String,
    status: String,
    #[serde(default)]
    amount: Option<Value>,
    #[serde(default)]
    currency: Option<String>,
    /// For `pending`: resolve after this many ms (default: never; settle with another call).
    #[serde(default)]
    resolve_after_ms: Option<u64>,
    /// What a pending charge becomes: `successful` (default) or `failed`.
    #[serde(default)]
    resolve_to: Option<String>,
    /// Whether to deliver the webhook(s) now (default true).
    #[serde(default)]
    webhook: Option<bool>,
    /// `card` (default), `account`, `bank_transfer`, `ussd`, `mobilemoneygh` or `mpesa`.
    #[serde(default)]
    payment_type: Option<String>,
    /// What the customer paid, when it differs from `amount`.
    #[serde(default)]
    charged_amount: Option<Value>,
    /// The customer bears the fee: `charged_amount = amount + app_fee`.
    #[serde(default)]
    customer_bears_fee: bool,
}

/// The customer completes the hosted checkout for `tx_ref`, as a script.
pub async fn charge(State(state): State<Shared>, raw: Bytes) -> Response {
    let b: ChargeBody = match serde_json::from_slice(&raw) {
        Ok(b) => b,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &format!("invalid body: {e}")),
    };
    if !matches!(b.status.as_str(), "successful" | "failed" | "pending") {
        return problem(StatusCode::BAD_REQUEST, "status must be successful, failed or pending");
    }
    let amount = match &b.amount {
        None => None,
        Some(v) => match amount(Some(v)) {
            Some(a) => Some(a),
            None => return problem(StatusCode::BAD_REQUEST, "amount must be a positive number"),
        },
    };
    let charged_amount = match &b.charged_amount {
        None => None,
        Some(v) => match crate::api::amount(Some(v)) {
            Some(a) => Some(a),
            None => return problem(StatusCode::BAD_REQUEST, "charged_amount must be a positive number"),
        },
    };
    let req = ChargeRequest {
        tx_ref: &b.tx_ref,
        status: &b.status,
        amount,
        currency: b.currency.clone(),
        card: None,
        payment_type: b.payment_type.clone(),
        charged_amount,
        customer_bears_fee: b.customer_bears_fee,
    };
    let txn = match record_charge(&state, req) {
        Ok(t) => t,
        Err(msg) => return problem(StatusCode::BAD_REQUEST, msg),
    };
    let send_hook = b.webhook.unwrap_or(true);
    let format = state.faults().webhook_format;
    if txn.status != "pending" && send_hook {
        state.outbox.send(charge_webhook(&txn, &format), None);
    }
    if txn.status == "pending"
        && let Some(ms) = b.resolve_after_ms
    {
        let to = b.resolve_to.clone().unwrap_or_else(|| "successful".into());
        let (s, id) = (state.clone(), txn.id);
        state.clock.after(Duration::from_millis(ms), move || {
            if let Some(t) = settle_pending(&s, id, &to)
                && send_hook
            {
                s.outbox.send(charge_webhook(&t, &format), None);
            }
        });
    }
    let redirect = {
        let d = lock(&state.data);
        d.payment_by_ref.get(&txn.tx_ref).and_then(|l| d.payments.get(l)).map(|p| p.redirect_url.clone())
    };
    // Where the hosted page would send the customer: a success redirects with the
    // configured status; a failed attempt keeps the page open (no redirect);
    // a pending one comes back as pending.
    let status = match txn.status.as_str() {
        "successful" => Some(state.faults().redirect_status),
        "pending" => Some("pending".to_string()),
        _ => None,
    };
    let redirect_url = redirect.zip(status).map(|(r, status)| {
        redirect_to(&r, &[("status", status), ("tx_ref", txn.tx_ref.clone()), ("transaction_id", txn.id.to_string())])
    });
    (
        StatusCode::CREATED,
        Json(json!({"transaction_id": txn.id, "tx_ref": txn.tx_ref, "status": txn.status, "flw_ref": txn.flw_ref, "redirect_url": redirect_url})),
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettleBody {
    status: String,
    #[serde(default)]
    complete_message: Option<String>,
}

/// A successful transfer is reversed (the money comes back): its status
/// becomes `REVERSED` and a `transfer.reversed` webhook is sent.
pub async fn reverse_transfer(State(state): State<Shared>, Path(id): Path<i64>) -> Response {
    match transfers::reverse(&state, id) {
        Ok(t) => Json(transfers::transfer_json(&t, transfers::View::Lookup)).into_response(),
        Err(msg) => problem(StatusCode::CONFLICT, msg),
    }
}

/// Settles a transfer and sends `transfer.completed`.
pub async fn complete_transfer(State(state): State<Shared>, Path(id): Path<i64>, raw: Bytes) -> Response {
    let b: SettleBody = match serde_json::from_slice(&raw) {
        Ok(b) => b,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &format!("invalid body: {e}")),
    };
    let success = match b.status.to_ascii_uppercase().as_str() {
        "SUCCESSFUL" => true,
        "FAILED" => false,
        _ => return problem(StatusCode::BAD_REQUEST, "status must be SUCCESSFUL or FAILED"),
    };
    let msg = b.complete_message.unwrap_or_else(|| {
        if success { "Successful".into() } else { "DISBURSE FAILED: Declined by the emulator".into() }
    });
    if !lock(&state.data).transfers.contains_key(&id) {
        return problem(StatusCode::NOT_FOUND, "no such transfer");
    }
    match transfers::complete(&state, id, success, &msg, true) {
        Some(t) => Json(transfers::transfer_json(&t, transfers::View::Lookup)).into_response(),
        None => problem(StatusCode::CONFLICT, "the transfer is already final"),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebitBody {
    amount: Value,
    #[serde(default)]
    description: Option<String>,
}

/// A purchase on a virtual card: sends the flat card webhook.
pub async fn debit_card(State(state): State<Shared>, Path(id): Path<String>, raw: Bytes) -> Response {
    let b: DebitBody = match serde_json::from_slice(&raw) {
        Ok(b) => b,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &format!("invalid body: {e}")),
    };
    let Some(amt) = amount(Some(&b.amount)) else { return problem(StatusCode::BAD_REQUEST, "amount must be positive") };
    match cards::debit(&state, &id, amt, b.description.as_deref().unwrap_or("CHARGE")) {
        Ok(hook) => Json(hook).into_response(),
        Err(msg) => problem(StatusCode::BAD_REQUEST, msg),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BalanceBody {
    currency: String,
    available: Value,
}

/// Sets a wallet's available balance (for drills of short wallets).
pub async fn set_balance(State(state): State<Shared>, raw: Bytes) -> Response {
    let b: BalanceBody = match serde_json::from_slice(&raw) {
        Ok(b) => b,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &format!("invalid body: {e}")),
    };
    let Some(available) = amount(Some(&b.available)) else {
        return problem(StatusCode::BAD_REQUEST, "available must be positive");
    };
    let mut d = crate::state::lock(&state.data);
    let entry = d.balances.entry(b.currency.to_ascii_uppercase()).or_insert((available, available));
    *entry = (available, available);
    Json(serde_json::json!({"currency": b.currency.to_ascii_uppercase(), "available": available.to_string()}))
        .into_response()
}

/// `POST /_emulator/chargebacks {transaction_id, amount?, due_in_ms?, webhook?}`: a customer's bank disputes it.
pub async fn raise_chargeback(State(state): State<Shared>, raw: Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&raw) else { return problem(StatusCode::BAD_REQUEST, "invalid body") };
    match crate::api::chargebacks::raise(&state, &v) {
        Ok(c) => (StatusCode::CREATED, Json(crate::api::chargebacks::chargeback_json(&c))).into_response(),
        Err(why) => problem(StatusCode::BAD_REQUEST, &why),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettlementBody {
    /// Only this currency (default: every currency).
    #[serde(default)]
    currency: Option<String>,
    /// One of `api::settlements::DRILLS`, applied to the first settlement made.
    #[serde(default)]
    drill: Option<String>,
}

/// `POST /_emulator/settlements {currency?, drill?}`: settles every successful transaction not settled yet, now.
pub async fn settle_now(State(state): State<Shared>, raw: Bytes) -> Response {
    let b: SettlementBody = if raw.is_empty() {
        SettlementBody { currency: None, drill: None }
    } else {
        match serde_json::from_slice(&raw) {
            Ok(b) => b,
            Err(e) => return problem(StatusCode::BAD_REQUEST, &format!("invalid body: {e}")),
        }
    };
    if let Some(d) = b.drill.as_deref().filter(|d| !crate::api::settlements::DRILLS.contains(d)) {
        return problem(StatusCode::BAD_REQUEST, &format!("unknown drill `{d}`"));
    }
    let now = state.clock.now_ms();
    let made = crate::api::settlements::settle(
        &mut crate::state::lock(&state.data),
        now,
        i64::MAX,
        b.currency.as_deref(),
        b.drill.as_deref(),
    );
    let rows: Vec<Value> = made.iter().map(|s| crate::api::settlements::settlement_json(s, true)).collect();
    (StatusCode::CREATED, Json(json!({"settlements": rows}))).into_response()
}

/// `GET /_emulator/uploads/{id}`: a file as `upload_image` received it.
pub async fn uploaded(State(state): State<Shared>, Path(id): Path<i64>) -> Response {
    let d = crate::state::lock(&state.data);
    match d.uploads.get(&id) {
        Some((kind, bytes)) => ([(http::header::CONTENT_TYPE, kind.clone())], bytes.clone()).into_response(),
        None => problem(StatusCode::NOT_FOUND, "no such upload"),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecideBody {
    status: String,
}

/// `POST /_emulator/chargebacks/{id}/decide {status: won|lost}`: the bank decides a declined (or open) one.
pub async fn decide_chargeback(State(state): State<Shared>, Path(id): Path<i64>, raw: Bytes) -> Response {
    let b: DecideBody = match serde_json::from_slice(&raw) {
        Ok(b) => b,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &format!("invalid body: {e}")),
    };
    if b.status != "won" && b.status != "lost" {
        return problem(StatusCode::BAD_REQUEST, "status must be won or lost");
    }
    match crate::api::chargebacks::decide(&state, id, &b.status, None, &["initiated", "declined", "accepted"]) {
        Some(c) => {
            state.outbox.send(
                json!({"event": "chargeback", "data": {"id": c.id, "flw_ref": c.flw_ref, "status": c.status}}),
                None,
            );
            Json(crate::api::chargebacks::chargeback_json(&c)).into_response()
        }
        None => problem(StatusCode::CONFLICT, "no such chargeback, or already decided"),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockBody {
    advance_ms: i64,
}

/// Moves the emulator's time forward (`{"advance_ms": N}`, 0 to 400 days): every
/// settlement that became due runs before the answer, webhooks are queued.
pub async fn move_clock(State(state): State<Shared>, raw: Bytes) -> Response {
    let b: ClockBody = match serde_json::from_slice(&raw) {
        Ok(b) => b,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &format!("invalid body: {e}")),
    };
    if !(0..=400 * 86_400_000).contains(&b.advance_ms) {
        return problem(StatusCode::BAD_REQUEST, "advance_ms must be between 0 and 400 days, in milliseconds");
    }
    let now = state.clock.advance(b.advance_ms);
    Json(json!({"now_ms": now, "offset_ms": state.clock.offset_ms()})).into_response()
}

pub async fn read_clock(State(state): State<Shared>) -> Response {
    Json(json!({"now_ms": state.clock.now_ms(), "offset_ms": state.clock.offset_ms()})).into_response()
}

/// Distinguishes an absent field (keep) from `null` (clear).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsBody {
    seed: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    rate_limit_per_second: Option<Option<f64>>,
    error_rate: Option<f64>,
    latency_ms: Option<u64>,
    error_after_commit_rate: Option<f64>,
    webhook_duplicate_rate: Option<f64>,
    webhook_drop_rate: Option<f64>,
    webhook_reorder: Option<bool>,
    webhook_delay_ms: Option<u64>,
    signature: Option<SignatureScheme>,
    webhook_retries: Option<u32>,
    webhook_retry_interval_ms: Option<u64>,
    webhook_format: Option<String>,
    redirect_status: Option<String>,
    minute_ms: Option<u64>,
    webhook_url: Option<String>,
    refund_status: Option<String>,
    #[serde(default, deserialize_with = "present")]
    refund_settle_after_ms: Option<Option<u64>>,
    refund_final_status: Option<String>,
    refund_webhooks: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    transfer_complete_after_ms: Option<Option<u64>>,
    wallet_restricted: Option<bool>,
    transfer_refusals: Option<String>,
    spend_limits: Option<std::collections::BTreeMap<String, Value>>,
    transfers_stay_new: Option<bool>,
    transfer_list_ignores_reference: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    transfer_list_fail_from_page: Option<Option<u32>>,
    transfer_event_type: Option<bool>,
    throttle_next: Option<u32>,
    throttle_retry_after_s: Option<u64>,
}

pub async fn set_faults(State(state): State<Shared>, raw: Bytes) -> Response {
    let b: FaultsBody = match serde_json::from_slice(&raw) {
        Ok(b) => b,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &format!("invalid faults: {e}")),
    };
    for (name, rate) in [
        ("error_rate", b.error_rate),
        ("error_after_commit_rate", b.error_after_commit_rate),
        ("webhook_duplicate_rate", b.webhook_duplicate_rate),
        ("webhook_drop_rate", b.webhook_drop_rate),
    ] {
        if rate.is_some_and(|r| !(0.0..=1.0).contains(&r)) {
            return problem(StatusCode::BAD_REQUEST, &format!("{name} must be between 0 and 1"));
        }
    }
    if let Some(Some(r)) = b.rate_limit_per_second
        && (r.is_nan() || r <= 0.0)
    {
        return problem(StatusCode::BAD_REQUEST, "rate_limit_per_second must be positive or null");
    }
    if b.webhook_format.as_deref().is_some_and(|f| f != "v3" && f != "legacy") {
        return problem(StatusCode::BAD_REQUEST, "webhook_format must be v3 or legacy");
    }
    if b.redirect_status.as_deref().is_some_and(|f| f != "successful" && f != "completed") {
        return problem(StatusCode::BAD_REQUEST, "redirect_status must be successful or completed");
    }
    if b.refund_status.as_deref().is_some_and(|s| {
        !matches!(s, "completed" | "completed-momo" | "processing" | "pending" | "pending-momo" | "failed")
    }) {
        return problem(
            StatusCode::BAD_REQUEST,
            "refund_status must be completed, completed-momo, processing, pending, pending-momo or failed",
        );
    }
    if b.refund_final_status.as_deref().is_some_and(|s| s != "completed" && s != "failed") {
        return problem(StatusCode::BAD_REQUEST, "refund_final_status must be completed or failed");
    }
    if b.transfer_refusals.as_deref().is_some_and(|s| s != "later" && s != "at_once") {
        return problem(StatusCode::BAD_REQUEST, "transfer_refusals must be later or at_once");
    }
    let mut spend_limits = None;
    if let Some(limits) = &b.spend_limits {
        let mut parsed = std::collections::BTreeMap::new();
        for (currency, limit) in limits {
            let Some(l) = amount(Some(limit)) else {
                return problem(StatusCode::BAD_REQUEST, "spend_limits takes positive amounts");
            };
            parsed.insert(currency.to_ascii_uppercase(), l);
        }
        spend_limits = Some(parsed);
    }
    if let Some(url) = &b.webhook_url {
        match url::Url::parse(url) {
            Ok(_) => {
                if let Ok(mut w) = state.webhook_url.write() {
                    *w = Some(url.clone());
                }
            }
            Err(_) => return problem(StatusCode::BAD_REQUEST, "webhook_url is not a URL"),
        }
    }
    let mut g = lock(&state.faults);
    let f = &mut g.0;
    if let Some(s) = b.seed {
        f.seed = s;
    }
    if let Some(r) = b.rate_limit_per_second {
        f.rate_limit_per_second = r;
    }
    if let Some(r) = b.refund_settle_after_ms {
        f.refund_settle_after_ms = r;
    }
    if let Some(r) = b.transfer_complete_after_ms {
        f.transfer_complete_after_ms = r;
    }
    if let Some(r) = b.transfer_list_fail_from_page {
        f.transfer_list_fail_from_page = r;
    }
    if let Some(l) = spend_limits {
        f.spend_limits = l;
    }
    macro_rules! set {
        ($($field:ident),*) => { $(if let Some(v) = b.$field { f.$field = v; })* };
    }
    set!(
        error_rate,
        latency_ms,
        error_after_commit_rate,
        webhook_duplicate_rate,
        webhook_drop_rate,
        webhook_reorder,
        webhook_delay_ms,
        signature,
        webhook_retries,
        webhook_retry_interval_ms,
        webhook_format,
        redirect_status,
        minute_ms,
        refund_status,
        refund_final_status,
        refund_webhooks,
        wallet_restricted,
        transfer_refusals,
        transfers_stay_new,
        transfer_list_ignores_reference,
        transfer_event_type,
        throttle_next,
        throttle_retry_after_s
    );
    let snapshot = f.clone();
    if let Some(s) = b.seed {
        g.1 = Rng::new(s);
    }
    Json(snapshot).into_response()
}

pub async fn get_faults(State(state): State<Shared>) -> Response {
    Json(state.faults()).into_response()
}

pub async fn stats(State(state): State<Shared>) -> Response {
    Json(lock(&state.stats).to_json()).into_response()
}

/// When v3 requests arrived and when 429s were answered (ms since the epoch), for drills.
pub async fn arrivals(State(state): State<Shared>) -> Response {
    let s = lock(&state.stats);
    Json(json!({"arrivals": s.arrivals, "limited_at": s.limited_at})).into_response()
}

/// Zeroes every counter (benchmarks and tests measure a clean window).
pub async fn reset_stats(State(state): State<Shared>) -> Response {
    *lock(&state.stats) = crate::state::Stats::default();
    Json(lock(&state.stats).to_json()).into_response()
}
