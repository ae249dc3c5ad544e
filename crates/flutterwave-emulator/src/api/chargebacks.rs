//! Chargebacks: raised against a successful transaction through the control
//! surface (the amount is debited and held from the available balance), listed
//! as `GET /v3/chargebacks`, answered once with `PUT /v3/chargebacks/{id}`.
//! Without an answer by the due date (48 h, on the emulator's clock) it is lost
//! ("No merchant response"). A declined one stays declined until the control
//! surface decides it (won: the amount comes back). Each change posts a
//! notification to the webhook URL — its shape is unconfirmed, so Sika treats
//! it only as a hint to look the chargeback up.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::{amount, bad, num, ok, ok_page, page_of, text};
use crate::state::{Chargeback, Shared, lock};
use crate::time::iso;

/// Flutterwave's answer window.
pub const DUE_AFTER: Duration = Duration::from_secs(48 * 3600);

fn entry(action: &str, stage: &str, at_ms: i64, description: &str) -> Value {
    json!({"action": action, "stage": stage, "date": iso(at_ms), "description": description})
}

pub fn chargeback_json(c: &Chargeback) -> Value {
    json!({
        "id": c.id, "amount": num(c.amount), "flw_ref": c.flw_ref, "status": c.status, "stage": c.stage,
        "comment": c.comment, "due_date": iso(c.due_ms), "settlement_id": "N/A", "created_at": iso(c.created_ms),
        "transaction_id": c.transaction_id, "tx_ref": c.tx_ref, "currency": c.currency,
        "meta": {"uploaded_proof": c.proof, "history": c.history},
    })
}

/// The notification Flutterwave's history says it posts (shape unconfirmed).
fn notify(state: &Shared, c: &Chargeback) {
    state
        .outbox
        .send(json!({"event": "chargeback", "data": {"id": c.id, "flw_ref": c.flw_ref, "status": c.status}}), None);
}

/// `POST /_emulator/chargebacks {transaction_id, amount?, due_in_ms?, webhook?}`.
pub fn raise(state: &Shared, body: &Value) -> Result<Chargeback, String> {
    let Some(tx_id) = body.get("transaction_id").and_then(Value::as_i64) else {
        return Err("transaction_id is required".into());
    };
    let due_in = match body.get("due_in_ms").and_then(Value::as_u64) {
        Some(ms) => Duration::from_millis(ms),
        None => DUE_AFTER,
    };
    let now = state.clock.now_ms();
    let c = {
        let mut d = lock(&state.data);
        let Some(t) = d.transactions.get(&tx_id).cloned() else { return Err("no such transaction".into()) };
        if t.status != "successful" {
            return Err("only a successful transaction can be charged back".into());
        }
        let open: Decimal =
            d.chargebacks.values().filter(|c| c.transaction_id == tx_id && c.status != "won").map(|c| c.amount).sum();
        let most = t.amount - t.refunded - open;
        let amount = match body.get("amount") {
            None | Some(Value::Null) => most,
            other => amount(other).ok_or("amount must be a positive number")?,
        };
        if amount <= Decimal::ZERO || amount > most {
            return Err(format!("amount must be at most {most}"));
        }
        let id = d.id();
        d.adjust(&t.currency, -amount);
        let c = Chargeback {
            id,
            transaction_id: tx_id,
            tx_ref: t.tx_ref.clone(),
            flw_ref: t.flw_ref.clone(),
            amount,
            currency: t.currency.clone(),
            status: "initiated".into(),
            stage: "new".into(),
            comment: None,
            proof: None,
            due_ms: now + i64::try_from(due_in.as_millis()).unwrap_or(i64::MAX / 2),
            created_ms: now,
            history: vec![
                json!({"initiator": "merchant", "stage": "new", "date": iso(now), "description": "Dispute transaction"}),
                json!({"action": "initiated", "stage": "new", "date": iso(now),
                       "description": "Debit and hold chargeback amount", "source": "availablebalance"}),
            ],
        };
        d.chargebacks.insert(id, c.clone());
        c
    };
    if body.get("webhook").and_then(Value::as_bool).unwrap_or(true) {
        notify(state, &c);
    }
    let (s, id) = (state.clone(), c.id);
    state.clock.after(due_in, move || {
        if let Some(c) = decide(&s, id, "lost", Some("No merchant response"), &["initiated"]) {
            notify(&s, &c);
        }
    });
    Ok(c)
}

/// Moves a chargeback to a final `won`/`lost` when it is in one of `from`; won gives the amount back.
pub fn decide(state: &Shared, id: i64, to: &str, description: Option<&str>, from: &[&str]) -> Option<Chargeback> {
    let now = state.clock.now_ms();
    let mut d = lock(&state.data);
    let c = d.chargebacks.get_mut(&id)?;
    if !from.contains(&c.status.as_str()) {
        return None;
    }
    c.status = to.into();
    let words = description.unwrap_or(if to == "won" { "Chargeback won" } else { "Chargeback lost" });
    c.history.push(entry(to, &c.stage.clone(), now, words));
    let c = c.clone();
    if to == "won" {
        d.adjust(&c.currency, c.amount);
    }
    Some(c)
}

pub async fn list(State(state): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let page = page_of(&q);
    let d = lock(&state.data);
    let status = q.get("status").map(|s| s.to_ascii_lowercase());
    let flw_ref = q.get("flw_ref");
    let tx_id = q.get("id").and_then(|i| i.parse::<i64>().ok());
    let rows: Vec<&Chargeback> = d
        .chargebacks
        .values()
        .rev()
        // As one integrator reports: without a status (and no other filter) only lost ones come back.
        .filter(|c| match (&status, flw_ref, tx_id) {
            (Some(s), _, _) => &c.status == s,
            (None, None, None) => c.status == "lost",
            _ => true,
        })
        .filter(|c| flw_ref.is_none_or(|r| &c.flw_ref == r))
        .filter(|c| tx_id.is_none_or(|t| c.transaction_id == t))
        .collect();
    let total = rows.len();
    let data = rows.iter().skip((page - 1) * 10).take(10).map(|c| chargeback_json(c)).collect();
    ok_page("Chargebacks fetched", Value::Array(data), page, total, 10)
}

/// `PUT /chargebacks/{id} {action: accept|decline, comment, prooflink?}`: once, before the due date.
pub async fn answer(State(state): State<Shared>, Path(id): Path<String>, raw: Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&raw) else { return bad("Invalid request body") };
    let action = text(&v, "action").map(|a| a.to_ascii_lowercase());
    let (to, words, message) = match action.as_deref() {
        Some("accept") => ("accepted", "Merchant accepts claim", "Chargeback accepted"),
        Some("decline") => ("declined", "Merchant declines claim", "Chargeback declined"),
        _ => return bad("action must be accept or decline"),
    };
    let Some(comment) = text(&v, "comment") else { return bad("comment is required") };
    let proof = text(&v, "prooflink");
    if to == "declined" && proof.is_none() {
        return bad("prooflink is required to decline a chargeback");
    }
    let now = state.clock.now_ms();
    let c = {
        let mut d = lock(&state.data);
        let Some(c) = id.parse::<i64>().ok().and_then(|id| d.chargebacks.get_mut(&id)) else {
            return bad("Chargeback not found");
        };
        if c.status != "initiated" {
            return bad("This chargeback has already been treated");
        }
        if now > c.due_ms {
            return bad("The chargeback is past its due date");
        }
        c.status = to.into();
        c.comment = Some(comment);
        c.proof = proof;
        c.history.push(entry(to, &c.stage.clone(), now, words));
        c.clone()
    };
    notify(&state, &c);
    ok(message, chargeback_json(&c))
}

/// `POST /upload_image` (multipart, field `image`): evidence for an answer; the link to it.
/// A file that is not an image (or a PDF) is refused as Flutterwave words it.
pub async fn upload(State(state): State<Shared>, mut form: axum::extract::Multipart) -> Response {
    let mut file = None;
    while let Ok(Some(field)) = form.next_field().await {
        if field.name() == Some("image") {
            let kind = field.content_type().unwrap_or_default().to_string();
            match field.bytes().await {
                Ok(b) => file = Some((kind, b.to_vec())),
                Err(_) => return bad("Image is not in required format"),
            }
        }
    }
    let Some((kind, bytes)) = file else { return bad("image is required") };
    let known = bytes.starts_with(b"%PDF-")
        || bytes.starts_with(&[0x89, b'P', b'N', b'G'])
        || bytes.starts_with(&[0xff, 0xd8, 0xff]);
    if !known {
        return super::error(http::StatusCode::BAD_REQUEST, "Image is not in required format");
    }
    let id = {
        let mut d = lock(&state.data);
        let id = d.id();
        d.uploads.insert(id, (kind, bytes));
        id
    };
    ok("Image sucessfully uploaded", Value::String(format!("{}/_emulator/uploads/{id}", state.base())))
}
