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
use crate::time::{date, iso};

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
            created_ms: state.clock.now_ms(),
        };
        d.refunds.insert(refund.id, refund.clone());
        refund
    };
    let final_now = is_final(&refund.status);
    if final_now && faults.refund_webhooks {
        state.outbox.send(refund_webhook(&refund), None);
    }
    if !final_now && let Some(after) = faults.refund_settle_after_ms {
        let (s, id, to) = (state.clone(), refund.id, faults.refund_final_status.clone());
        state.clock.after(std::time::Duration::from_millis(after), move || {
            if let Some(r) = settle_refund(&s, id, &to)
                && s.faults().refund_webhooks
            {
                s.outbox.send(refund_webhook(&r), None);
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
        "meta": {"source": "availablebalance"}, "created_at": iso(r.created_ms),
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

/// The ways to pay the emulator knows, with Flutterwave's names for them.
pub const PAYMENT_TYPES: [&str; 6] = ["card", "account", "bank_transfer", "ussd", "mobilemoneygh", "mpesa"];

fn app_fee(amount: Decimal, currency: &str) -> Decimal {
    let fee = (amount * Decimal::new(14, 3)).round_dp(2);
    if currency == "NGN" { fee.min(Decimal::from(2000)) } else { fee }
}

/// What Flutterwave settles to the merchant: the charged amount less its
/// fee, VAT on the fee for cards (7.5 %), and stamp duty (NGN 50) on NGN
/// payments of 100,000 or more — below `amount − app_fee`, as real answers
/// are (2500 − 35 → 2462.37; 100000 − 1400 → 98550). `None` until the
/// transaction succeeds: unsettled rows carry `null`.
pub fn amount_settled(t: &Txn) -> Option<Decimal> {
    if t.status != "successful" {
        return None;
    }
    let vat = if t.payment_type == "card" {
        (t.app_fee * Decimal::new(75, 3))
            .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
    } else {
        Decimal::ZERO
    };
    Some(t.charged_amount - t.app_fee - vat - stamp_duty(t))
}

/// NGN 50 on NGN payments of 100,000 or more.
pub fn stamp_duty(t: &Txn) -> Decimal {
    if t.currency == "NGN" && t.amount >= Decimal::from(100_000) { Decimal::from(50) } else { Decimal::ZERO }
}

/// `event.type` of a charge webhook, by how the customer paid.
fn event_type(payment_type: &str) -> &'static str {
    match payment_type {
        "account" => "ACCOUNT_TRANSACTION",
        "bank_transfer" => "BANK_TRANSFER_TRANSACTION",
        "ussd" => "USSD_TRANSACTION",
        "mobilemoneygh" => "MOBILEMONEYGH_TRANSACTION",
        "mpesa" => "MPESA_TRANSACTION",
        _ => "CARD_TRANSACTION",
    }
}

/// The paying account's details a bank-transfer payment carries (in
/// verify's `meta` and the webhook's `meta_data`).
fn originator() -> Value {
    json!({"originatoraccountnumber": "069*******31", "originatorname": "EMULATED PAYER",
           "bankname": "Access Bank", "originatoramount": "N/A"})
}

/// The checkout's meta, with the originator's fields for a bank transfer.
fn meta_of(t: &Txn) -> Value {
    if t.payment_type != "bank_transfer" {
        return t.meta.clone();
    }
    let mut m = match &t.meta {
        Value::Object(o) => o.clone(),
        _ => serde_json::Map::new(),
    };
    if let Value::Object(o) = originator() {
        m.extend(o);
    }
    Value::Object(m)
}

fn opt_num(d: Option<Decimal>) -> Value {
    d.map(num).unwrap_or(Value::Null)
}

pub fn txn_json(t: &Txn, shape: Shape) -> Value {
    let pending = t.status == "pending";
    let (auth_model, narration) = match t.payment_type.as_str() {
        "card" => ("PIN", "CARD Transaction ".to_string()),
        "mobilemoneygh" | "mpesa" => ("MOBILEMONEY", "Mobile money payment".to_string()),
        "ussd" => ("USSD", "USSD Transaction".to_string()),
        _ => ("AUTH", "Flutterwave Developers".to_string()),
    };
    let mut v = json!({
        "id": t.id, "tx_ref": t.tx_ref, "flw_ref": if pending { "N/A" } else { t.flw_ref.as_str() },
        "device_fingerprint": "N/A", "amount": num(t.amount), "currency": t.currency,
        "charged_amount": num(t.charged_amount),
        // Unsettled rows (pending, failed) have no fee yet.
        "app_fee": if t.status == "successful" { num(t.app_fee) } else { Value::Null }, "merchant_fee": 0,
        "processor_response": if pending { Value::Null } else { json!(t.processor_response) },
        "auth_model": auth_model, "ip": "203.0.113.5", "narration": narration, "status": t.status,
        "payment_type": t.payment_type, "created_at": iso(t.created_ms), "account_id": 17321,
    });
    let customer = json!({
        "id": 987, "name": t.customer_name.clone().unwrap_or_else(|| "Anonymous customer".into()),
        "phone_number": if shape == Shape::Webhook { t.customer_phone.clone().map(Value::String).unwrap_or(Value::Null) }
                        else { json!(t.customer_phone.clone().unwrap_or_else(|| "N/A".into())) },
        "email": t.customer_email, "created_at": iso(t.created_ms),
    });
    let Some(obj) = v.as_object_mut() else { return v };
    match shape {
        Shape::Verify | Shape::Webhook => {
            if let Some(c) = t.card.as_ref().filter(|_| t.payment_type == "card") {
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
            // Verify carries the checkout's meta and the settled amount; the
            // webhook carries neither (its meta goes to the top-level `meta_data`).
            if shape == Shape::Verify {
                obj.insert("meta".into(), meta_of(t));
                obj.insert("amount_settled".into(), opt_num(amount_settled(t)));
            }
            obj.insert("customer".into(), customer);
        }
        Shape::ListRow => {
            // The list endpoint's samples show ids as strings; the emulator reproduces that quirk.
            obj.insert("id".into(), json!(t.id.to_string()));
            obj.insert("account_id".into(), json!("17321"));
            obj.insert("amount_settled".into(), opt_num(amount_settled(t)));
            if t.payment_type == "account" {
                obj.insert("account".into(), json!({"nuban": "0690000031", "bank": "ACCESS BANK NIGERIA"}));
            }
            obj.insert("customer_name".into(), customer["name"].clone());
            obj.insert("customer_email".into(), json!(t.customer_email));
        }
    }
    v
}

/// `charge.completed` (or the legacy flat form) for a transaction.
pub fn charge_webhook(t: &Txn, format: &str) -> Value {
    if format == "legacy" {
        let entity = match (t.payment_type.as_str(), &t.card) {
            ("card", Some(c)) => json!({"card6": &c.number[..6], "card_last4": &c.number[c.number.len() - 4..]}),
            ("account", _) => json!({"account_number": "0690000031", "first_name": "Forrest", "last_name": "Green"}),
            _ => json!({"id": "NO-ENTITY"}),
        };
        return json!({
            "id": t.id, "txRef": t.tx_ref, "flwRef": t.flw_ref, "orderRef": format!("URF_{}", t.id),
            "paymentPlan": null, "createdAt": iso(t.created_ms), "amount": num(t.amount),
            "charged_amount": num(t.charged_amount), "status": t.status, "IP": "203.0.113.5", "currency": t.currency,
            "customer": {"id": 987, "phone": t.customer_phone, "fullName": t.customer_name, "customertoken": null,
                         "email": t.customer_email, "createdAt": iso(t.created_ms), "updatedAt": iso(t.created_ms),
                         "deletedAt": null, "AccountId": 17321},
            "entity": entity,
            "event.type": event_type(&t.payment_type),
        });
    }
    json!({
        "event": "charge.completed",
        "data": txn_json(t, Shape::Webhook),
        "event.type": event_type(&t.payment_type),
        "meta_data": meta_of(t),
    })
}

/// What a customer's attempt asks for.
pub struct ChargeRequest<'a> {
    pub tx_ref: &'a str,
    pub status: &'a str,
    pub amount: Option<Decimal>,
    pub currency: Option<String>,
    pub card: Option<&'static TestCard>,
    /// `card` when unset.
    pub payment_type: Option<String>,
    /// What the customer paid, when not `amount` (a fee the customer bore).
    pub charged_amount: Option<Decimal>,
    /// The customer bears Flutterwave's fee: `charged_amount = amount + app_fee`.
    pub customer_bears_fee: bool,
}

/// Records one attempt under `tx_ref` (each attempt is its own transaction id)
/// and moves the balance when it succeeds. Webhooks are the caller's to send.
pub fn record_charge(state: &Shared, req: ChargeRequest<'_>) -> Result<Txn, &'static str> {
    let payment_type = req.payment_type.clone().unwrap_or_else(|| "card".into());
    if !PAYMENT_TYPES.contains(&payment_type.as_str()) {
        return Err("payment_type must be card, account, bank_transfer, ussd, mobilemoneygh or mpesa");
    }
    let flw_ref = format!("FLW-MOCK-{}", state.random_hex(32));
    let mut d = lock(&state.data);
    let payment = d.payment_by_ref.get(req.tx_ref).and_then(|l| d.payments.get(l)).cloned();
    let (amount, currency) = match (&payment, req.amount, req.currency.clone()) {
        (_, Some(a), Some(c)) => (a, c),
        (Some(p), a, c) => (a.unwrap_or(p.amount), c.unwrap_or_else(|| p.currency.clone())),
        (None, _, _) => return Err("amount and currency are required for a tx_ref without a checkout"),
    };
    let card = req.card.unwrap_or(&TEST_CARDS[0]).clone();
    let processor_response = match (req.status, card.decline, payment_type.as_str()) {
        ("successful", _, "card") => "Approved by Financial Institution".to_string(),
        ("successful", _, _) => "success".to_string(),
        ("pending", _, _) => "Pending validation".to_string(),
        (_, Some(reason), "card") => reason.to_string(),
        _ => "Declined".to_string(),
    };
    let fee = app_fee(amount, &currency);
    let charged_amount = match (req.charged_amount, req.customer_bears_fee) {
        (Some(c), _) => c,
        (None, true) => amount + fee,
        (None, false) => amount,
    };
    let id = d.id();
    let txn = Txn {
        id,
        tx_ref: req.tx_ref.to_string(),
        flw_ref,
        amount,
        charged_amount,
        currency: currency.to_ascii_uppercase(),
        app_fee: fee,
        payment_type,
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
        created_ms: state.clock.now_ms(),
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

/// The wallet receives what Flutterwave settles.
fn credit(d: &mut Data, t: &Txn) {
    d.adjust(&t.currency, amount_settled(t).unwrap_or_default());
}

/// Settles a pending transaction (used when a pending charge resolves later).
pub fn settle_pending(state: &Shared, id: i64, status: &str) -> Option<Txn> {
    let mut d = lock(&state.data);
    let t = d.transactions.get_mut(&id)?;
    if t.status != "pending" {
        return None;
    }
    t.status = status.to_string();
    t.processor_response = match (status, t.payment_type.as_str()) {
        ("successful", "card") => "Approved by Financial Institution".into(),
        ("successful", _) => "success".into(),
        _ => "Declined".into(),
    };
    let t = t.clone();
    if status == "successful" {
        credit(&mut d, &t);
    }
    Some(t)
}
