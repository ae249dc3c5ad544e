//! `POST /payments` and the transaction endpoints, plus charges (what a customer
//! does on the hosted page, or a script through `/_emulator/charges`).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::{amount, bad, body, num, ok, ok_page, page_of, text};
use crate::state::{Data, Payment, Refund, Shared, TEST_CARDS, TestCard, Txn, lock};
use crate::time::{date, iso, now_ms};

pub async fn create_payment(State(state): State<Shared>, raw: Bytes) -> Response {
    let v: Value = match body(&raw) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(tx_ref) = text(&v, "tx_ref") else { return bad("tx_ref is required") };
    let Some(amount) = amount(v.get("amount")) else { return bad("amount is required") };
    let currency = text(&v, "currency").unwrap_or_else(|| "NGN".into()).to_ascii_uppercase();
    let Some(redirect_url) = text(&v, "redirect_url") else { return bad("redirect_url is required") };
    let customer = v.get("customer").cloned().unwrap_or(Value::Null);
    let Some(email) = text(&customer, "email") else { return bad("customer.email is required") };
    let link_id = format!("flwlnk-{}", state.random_hex(20));
    let payment = Payment {
        link_id: link_id.clone(),
        tx_ref: tx_ref.clone(),
        amount,
        currency,
        redirect_url,
        customer_email: email,
        customer_name: text(&customer, "name"),
        customer_phone: text(&customer, "phonenumber"),
        title: v.get("customizations").and_then(|c| text(c, "title")),
        meta: v.get("meta").cloned().unwrap_or(Value::Null),
        closed: false,
    };
    {
        let mut d = lock(&state.data);
        d.payment_by_ref.insert(tx_ref, link_id.clone());
        d.payments.insert(link_id.clone(), payment);
    }
    ok("Hosted Link", json!({"link": format!("{}/hosted/pay/{link_id}", state.base())}))
}

fn parse_id(id: &str) -> Option<i64> {
    id.parse().ok()
}

const NOT_FOUND: &str = "No transaction was found for this id";

pub async fn verify(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    let d = lock(&state.data);
    match parse_id(&id).and_then(|id| d.transactions.get(&id)) {
        Some(t) => ok("Transaction fetched successfully", txn_json(t, Shape::Verify)),
        None => bad(NOT_FOUND),
    }
}

pub async fn verify_by_reference(State(state): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let Some(tx_ref) = q.get("tx_ref") else { return bad("tx_ref is required") };
    let d = lock(&state.data);
    // Several attempts may share a tx_ref (which one Flutterwave returns is
    // unconfirmed): the emulator answers the successful one if any, else the latest.
    let attempts = d.transactions.values().filter(|t| &t.tx_ref == tx_ref);
    let chosen = attempts.clone().rev().find(|t| t.status == "successful").or_else(|| attempts.clone().next_back());
    match chosen {
        Some(t) => ok("Transaction fetched successfully", txn_json(t, Shape::Verify)),
        None => bad(NOT_FOUND),
    }
}

pub async fn list(State(state): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let page = page_of(&q);
    let d = lock(&state.data);
    let rows: Vec<&Txn> = d
        .transactions
        .values()
        .rev()
        .filter(|t| q.get("from").is_none_or(|f| date(t.created_ms) >= *f))
        .filter(|t| q.get("to").is_none_or(|to| date(t.created_ms) <= *to))
        .filter(|t| q.get("status").is_none_or(|s| &t.status == s))
        .collect();
    let total = rows.len();
    let data: Vec<Value> = rows.iter().skip((page - 1) * 10).take(10).map(|t| txn_json(t, Shape::ListRow)).collect();
    ok_page("Transactions fetched", Value::Array(data), page, total, 10)
}

pub async fn refund(State(state): State<Shared>, Path(id): Path<String>, raw: Bytes) -> Response {
    let v: Value = if raw.is_empty() {
        json!({})
    } else {
        match body(&raw) {
            Ok(v) => v,
            Err(r) => return r,
        }
    };
    let faults = state.faults();
    let refund = {
        let mut d = lock(&state.data);
        let Some(t) = parse_id(&id).and_then(|id| d.transactions.get(&id)).cloned() else { return bad(NOT_FOUND) };
        if t.status != "successful" {
            return bad("Only successful transactions can be refunded");
        }
        let remaining = t.amount - t.refunded;
        let requested = match v.get("amount") {
            None | Some(Value::Null) => remaining,
            other => match amount(other) {
                Some(a) => a,
                None => return bad("amount must be a positive number"),
            },
        };
        if requested > remaining {
            return bad("Refund amount cannot be greater than the amount left to refund");
        }
        if d.available(&t.currency) < requested {
            return bad("Insufficient balance to process this refund");
        }
        let status = faults.refund_status.clone();
        // A refund that fails at once moves no money; every other holds it until it fails.
        if status != "failed" {
            d.adjust(&t.currency, -requested);
            if let Some(tx) = d.transactions.get_mut(&t.id) {
                tx.refunded += requested;
            }
        }
        let refund = Refund {
            id: d.id(),
            tx_id: t.id,
            flw_ref: t.flw_ref.clone(),
            amount: requested,
            currency: t.currency.clone(),
            status,
            comments: v.get("comments").and_then(Value::as_str).map(str::to_string),
            created_ms: now_ms(),
        };
        d.refunds.insert(refund.id, refund.clone());
        refund
    };
    let final_now = is_final(&refund.status);
    if final_now && faults.refund_webhooks {
        state.outbox.send(refund_webhook(&refund), None);
    }
    if !final_now && let Some(after) = faults.refund_settle_after_ms {
        let (state, id, to) = (state.clone(), refund.id, faults.refund_final_status.clone());
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(after)).await;
            if let Some(r) = settle_refund(&state, id, &to)
                && state.faults().refund_webhooks
            {
                state.outbox.send(refund_webhook(&r), None);
            }
        });
    }
    ok("Transaction refund initiated", refund_json(&refund))
}

fn is_final(status: &str) -> bool {
    status.starts_with("completed") || status == "failed"
}

/// Moves a non-final refund to `to` (`completed` or `failed`; a failure returns the money).
pub fn settle_refund(state: &Shared, id: i64, to: &str) -> Option<Refund> {
    let mut d = lock(&state.data);
    let r = d.refunds.get_mut(&id)?;
    if is_final(&r.status) {
        return None;
    }
    r.status = to.to_string();
    let r = r.clone();
    if to == "failed" {
        d.adjust(&r.currency, r.amount);
        if let Some(t) = d.transactions.get_mut(&r.tx_id) {
            t.refunded -= r.amount;
        }
    }
    Some(r)
}

pub fn refund_json(r: &Refund) -> Value {
    json!({
        "id": r.id, "account_id": 17321, "tx_id": r.tx_id, "flw_ref": r.flw_ref, "wallet_id": 17321,
        "amount_refunded": num(r.amount), "status": r.status, "destination": "payment_source",
        "comments": r.comments, "meta": {"source": "availablebalance"}, "created_at": iso(r.created_ms),
    })
}

/// The flat refund webhook (no `event` key), as reported for v3 accounts that enable it.
pub fn refund_webhook(r: &Refund) -> Value {
    json!({
        "id": r.id, "AmountRefunded": num(r.amount), "status": r.status, "FlwRef": r.flw_ref,
        "destination": "payment_source", "comments": r.comments,
        "meta": "{\"source\":\"availablebalance\"}", "createdAt": iso(r.created_ms),
        "walletId": 17321, "AccountId": 17321, "TransactionId": r.tx_id,
    })
}

/// `GET /refunds/{id}`.
pub async fn get_refund(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    let d = lock(&state.data);
    match parse_id(&id).and_then(|id| d.refunds.get(&id)) {
        Some(r) => ok("Refund fetched", refund_json(r)),
        None => bad("Refund not found"),
    }
}

/// `GET /refunds?page=&from=` (newest first, 10 a page).
pub async fn list_refunds(State(state): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let page = page_of(&q);
    let d = lock(&state.data);
    let rows: Vec<&Refund> =
        d.refunds.values().rev().filter(|r| q.get("from").is_none_or(|f| date(r.created_ms) >= *f)).collect();
    let total = rows.len();
    let data: Vec<Value> = rows.iter().skip((page - 1) * 10).take(10).map(|r| refund_json(r)).collect();
    ok_page("Refunds fetched", Value::Array(data), page, total, 10)
}

pub async fn resend_hook(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    let t = {
        let d = lock(&state.data);
        match parse_id(&id).and_then(|id| d.transactions.get(&id)) {
            Some(t) => t.clone(),
            None => return bad(NOT_FOUND),
        }
    };
    if t.status == "pending" {
        return bad("Transaction is still pending");
    }
    state.outbox.send(charge_webhook(&t, &state.faults().webhook_format), None);
    let mut res = ok("hook sent successfully", json!("hook sent"));
    *res.status_mut() = http::StatusCode::OK;
    res
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Verify,
    Webhook,
    ListRow,
}

fn app_fee(amount: Decimal, currency: &str) -> Decimal {
    let fee = (amount * Decimal::new(14, 3)).round_dp(2);
    if currency == "NGN" { fee.min(Decimal::from(2000)) } else { fee }
}

pub fn txn_json(t: &Txn, shape: Shape) -> Value {
    let settled = t.amount - t.app_fee;
    let mut v = json!({
        "id": t.id, "tx_ref": t.tx_ref, "flw_ref": t.flw_ref, "device_fingerprint": "N/A",
        "amount": num(t.amount), "currency": t.currency, "charged_amount": num(t.amount),
        "app_fee": if t.status == "pending" { Value::Null } else { num(t.app_fee) }, "merchant_fee": 0,
        "processor_response": t.processor_response, "auth_model": "PIN", "ip": "203.0.113.5",
        "narration": "CARD Transaction ", "status": t.status, "payment_type": "card",
        "created_at": iso(t.created_ms), "account_id": 17321, "meta": t.meta,
    });
    let customer = json!({
        "id": 987, "name": t.customer_name.clone().unwrap_or_else(|| "Anonymous customer".into()),
        "phone_number": if shape == Shape::Webhook { t.customer_phone.clone().map(Value::String).unwrap_or(Value::Null) }
                        else { json!(t.customer_phone.clone().unwrap_or_else(|| "N/A".into())) },
        "email": t.customer_email, "created_at": iso(t.created_ms),
    });
    let obj = v.as_object_mut().expect("json! object");
    match shape {
        Shape::Verify | Shape::Webhook => {
            if shape == Shape::Verify {
                obj.insert("amount_settled".into(), if t.status == "successful" { num(settled) } else { Value::Null });
            }
            if let Some(c) = &t.card {
                let mut card = json!({
                    "first_6digits": &c.number[..6], "last_4digits": &c.number[c.number.len() - 4..],
                    "issuer": format!("{} CREDIT", c.brand), "country": "NIGERIA NG", "type": c.brand, "expiry": c.expiry,
                });
                if shape == Shape::Verify
                    && let Some(m) = card.as_object_mut()
                {
                    m.insert("token".into(), json!(format!("flw-t1nf-{}-m03k", &t.flw_ref[9..])));
                }
                obj.insert("card".into(), card);
            }
            obj.insert("customer".into(), customer);
        }
        Shape::ListRow => {
            // The list endpoint's samples show ids as strings; the emulator reproduces that quirk.
            obj.insert("id".into(), json!(t.id.to_string()));
            obj.insert("account_id".into(), json!("17321"));
            obj.insert("customer_name".into(), customer["name"].clone());
            obj.insert("customer_email".into(), json!(t.customer_email));
            obj.insert("amount_settled".into(), num(settled));
        }
    }
    v
}

/// `charge.completed` (or the legacy flat form) for a transaction.
pub fn charge_webhook(t: &Txn, format: &str) -> Value {
    if format == "legacy" {
        return json!({
            "id": t.id, "txRef": t.tx_ref, "flwRef": t.flw_ref, "orderRef": format!("URF_{}", t.id),
            "paymentPlan": null, "createdAt": iso(t.created_ms), "amount": num(t.amount),
            "charged_amount": num(t.amount), "status": t.status, "IP": "203.0.113.5", "currency": t.currency,
            "appfee": num(t.app_fee), "merchantfee": 0, "merchantbearsfee": 1, "charge_type": "normal",
            "customer": {"id": 987, "phone": t.customer_phone, "fullName": t.customer_name, "email": t.customer_email,
                         "createdAt": iso(t.created_ms), "AccountId": 17321},
            "entity": t.card.as_ref().map(|c| json!({"card6": &c.number[..6], "card_last4": &c.number[c.number.len() - 4..]}))
                .unwrap_or_else(|| json!({"id": "NO-ENTITY"})),
            "event.type": "CARD_TRANSACTION",
        });
    }
    json!({
        "event": "charge.completed",
        "data": txn_json(t, Shape::Webhook),
        "event.type": "CARD_TRANSACTION",
        "meta_data": t.meta,
    })
}

/// What a customer's attempt asks for.
pub struct ChargeRequest<'a> {
    pub tx_ref: &'a str,
    pub status: &'a str,
    pub amount: Option<Decimal>,
    pub currency: Option<String>,
    pub card: Option<&'static TestCard>,
}

/// Records one attempt under `tx_ref` (each attempt is its own transaction id)
/// and moves the balance when it succeeds. Webhooks are the caller's to send.
pub fn record_charge(state: &Shared, req: ChargeRequest<'_>) -> Result<Txn, &'static str> {
    let flw_ref = format!("FLW-MOCK-{}", state.random_hex(32));
    let mut d = lock(&state.data);
    let payment = d.payment_by_ref.get(req.tx_ref).and_then(|l| d.payments.get(l)).cloned();
    let (amount, currency) = match (&payment, req.amount, req.currency.clone()) {
        (_, Some(a), Some(c)) => (a, c),
        (Some(p), a, c) => (a.unwrap_or(p.amount), c.unwrap_or_else(|| p.currency.clone())),
        (None, _, _) => return Err("amount and currency are required for a tx_ref without a checkout"),
    };
    let card = req.card.unwrap_or(&TEST_CARDS[0]).clone();
    let processor_response = match (req.status, card.decline) {
        ("successful", _) => "Approved".to_string(),
        ("pending", _) => "Pending validation".to_string(),
        (_, Some(reason)) => reason.to_string(),
        _ => "Declined".to_string(),
    };
    let id = d.id();
    let txn = Txn {
        id,
        tx_ref: req.tx_ref.to_string(),
        flw_ref,
        amount,
        currency: currency.to_ascii_uppercase(),
        app_fee: app_fee(amount, &currency),
        status: req.status.to_string(),
        processor_response,
        card: Some(card),
        customer_email: payment
            .as_ref()
            .map(|p| p.customer_email.clone())
            .unwrap_or_else(|| "customer@example.com".into()),
        customer_name: payment.as_ref().and_then(|p| p.customer_name.clone()),
        customer_phone: payment.as_ref().and_then(|p| p.customer_phone.clone()),
        meta: payment.as_ref().map(|p| p.meta.clone()).unwrap_or(Value::Null),
        created_ms: now_ms(),
        refunded: Decimal::ZERO,
    };
    if txn.status == "successful" {
        credit(&mut d, &txn);
        if let Some(p) = payment.and_then(|p| d.payments.get_mut(&p.link_id)) {
            p.closed = true;
        }
    }
    d.transactions.insert(id, txn.clone());
    Ok(txn)
}

fn credit(d: &mut Data, t: &Txn) {
    d.adjust(&t.currency, t.amount - t.app_fee);
}

/// Settles a pending transaction (used when a pending charge resolves later).
pub fn settle_pending(state: &Shared, id: i64, status: &str) -> Option<Txn> {
    let mut d = lock(&state.data);
    let t = d.transactions.get_mut(&id)?;
    if t.status != "pending" {
        return None;
    }
    t.status = status.to_string();
    t.processor_response = if status == "successful" { "Approved".into() } else { "Declined".into() };
    let t = t.clone();
    if status == "successful" {
        credit(&mut d, &t);
    }
    Some(t)
}
