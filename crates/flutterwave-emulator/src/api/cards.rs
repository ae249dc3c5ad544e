//! Virtual cards: created active (as Flutterwave's answers show), funded
//! from and withdrawn to the wallet, blocked, unblocked, terminated.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::{amount, bad, body, num, ok, text};
use crate::state::{Card, CardTxn, Shared, lock};
use crate::time::{date, iso};

/// A card as `GET` shows it; the create answer has no `card_hash` (as Flutterwave's does not).
fn card_json(c: &Card) -> Value {
    let mut v = created_json(c);
    if let Some(o) = v.as_object_mut() {
        o.insert("card_hash".into(), json!(c.id));
    }
    v
}

fn created_json(c: &Card) -> Value {
    json!({
        "id": c.id, "account_id": 118661, "amount": format!("{:.2}", c.amount), "currency": c.currency,
        "card_pan": c.pan, "masked_pan": format!("{}*******{}", &c.pan[..6], &c.pan[12..]),
        "city": "San Francisco", "state": "CA", "address_1": "333 Fremont Street", "address_2": null,
        "zip_code": "94105", "cvv": c.cvv, "expiration": c.expiration, "send_to": null, "bin_check_name": null,
        "card_type": "mastercard", "name_on_card": c.name_on_card,
        "created_at": iso(c.created_ms).replace('Z', "0000+00:00"),
        "is_active": c.active && !c.blocked && !c.terminated, "callback_url": c.callback_url,
    })
}

/// Flat card event, as Flutterwave sends it: no `event` key, PascalCase fields.
pub fn card_webhook(c: &Card, t: &CardTxn) -> Value {
    json!({
        "CardId": c.id, "Amount": num(t.amount), "Balance": num(c.amount), "TransactionId": t.id.to_string(),
        "MaskedPan": format!("{}*******{}", &c.pan[..6], &c.pan[12..]),
        "Status": if t.declined.is_some() { "Declined" } else { "Successful" },
        "Type": if t.indicator == "D" { "Debit" } else { "Credit" }, "Description": t.narration,
    })
}

pub async fn create(State(state): State<Shared>, raw: Bytes) -> Response {
    let v: Value = match body(&raw) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let currency = text(&v, "currency").map(|c| c.to_ascii_uppercase());
    let Some(currency) = currency.filter(|c| c == "USD" || c == "NGN") else {
        return bad("currency must be USD or NGN");
    };
    let Some(load) = amount(v.get("amount")) else { return bad("amount is required") };
    for field in ["first_name", "last_name", "date_of_birth", "email", "phone", "title", "gender"] {
        if text(&v, field).is_none() {
            return bad(&format!("{field} is required"));
        }
    }
    if text(&v, "date_of_birth").is_some_and(|d| d.len() != 10) {
        return bad("date_of_birth must be YYYY/MM/DD");
    }
    if !matches!(text(&v, "title").as_deref(), Some("MR" | "MRS" | "MISS")) {
        return bad("title must be MR, MRS or MISS");
    }
    if !matches!(text(&v, "gender").as_deref(), Some("M" | "F")) {
        return bad("gender must be M or F");
    }
    let debit_currency = text(&v, "debit_currency").map(|c| c.to_ascii_uppercase()).unwrap_or_else(|| currency.clone());
    let pan = format!("536613{}", state.random_digits(10));
    let cvv = state.random_digits(3);
    let id = format!(
        "{}-{}-4{}-a{}-{}",
        state.random_hex(8),
        state.random_hex(4),
        state.random_hex(3),
        state.random_hex(3),
        state.random_hex(12)
    );
    let card = {
        let mut d = lock(&state.data);
        if d.available(&debit_currency) < load {
            return bad("Insufficient funds in your wallet to fund this card");
        }
        d.adjust(&debit_currency, -load);
        let txn_id = d.id();
        let c = Card {
            id: id.clone(),
            amount: load,
            currency,
            pan,
            cvv,
            expiration: "2029-09".into(),
            name_on_card: format!(
                "{} {}",
                text(&v, "first_name").unwrap_or_default(),
                text(&v, "last_name").unwrap_or_default()
            ),
            created_ms: state.clock.now_ms(),
            active: true,
            blocked: false,
            terminated: false,
            callback_url: text(&v, "callback_url"),
            transactions: vec![CardTxn {
                id: txn_id,
                amount: load,
                indicator: "C",
                narration: "Card funding".into(),
                created_ms: state.clock.now_ms(),
                declined: None,
            }],
        };
        d.cards.insert(id.clone(), c.clone());
        c
    };
    ok("Card created successfully", created_json(&card))
}

pub async fn list(State(state): State<Shared>) -> Response {
    let d = lock(&state.data);
    ok("Cards fetched successfully", d.cards.values().map(card_json).collect())
}

pub async fn get_one(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    match lock(&state.data).cards.get(&id) {
        Some(c) => ok("Card fetched successfully", card_json(c)),
        None => bad("Card not found"),
    }
}

/// Applies a balance move to a usable card, or explains why not.
fn with_card(
    state: &Shared,
    id: &str,
    f: impl FnOnce(&mut Card, &mut i64) -> Result<Decimal, &'static str>,
) -> Result<(), Response> {
    let mut d = lock(&state.data);
    let mut txn_id = d.id();
    let Some(card) = d.cards.get_mut(id) else { return Err(bad("Card not found")) };
    if card.terminated {
        return Err(bad("This card has been terminated"));
    }
    if !card.active {
        return Err(bad("This card is not active yet"));
    }
    let (currency, delta) = match f(card, &mut txn_id) {
        Ok(delta) => (card.currency.clone(), delta),
        Err(msg) => return Err(bad(msg)),
    };
    d.adjust(&currency, delta);
    Ok(())
}

pub async fn fund(State(state): State<Shared>, Path(id): Path<String>, raw: Bytes) -> Response {
    let v: Value = match body(&raw) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(amt) = amount(v.get("amount")) else { return bad("amount is required") };
    let available = {
        let d = lock(&state.data);
        let currency = d.cards.get(&id).map(|c| c.currency.clone()).unwrap_or_default();
        d.available(&text(&v, "debit_currency").unwrap_or(currency))
    };
    if available < amt {
        return bad("Insufficient funds in your wallet to fund this card");
    }
    let r = with_card(&state, &id, |c, txn| {
        if c.blocked {
            return Err("This card is blocked");
        }
        c.amount += amt;
        c.transactions.push(CardTxn {
            id: *txn,
            amount: amt,
            indicator: "C",
            narration: "Card funding".into(),
            created_ms: state.clock.now_ms(),
            declined: None,
        });
        Ok(-amt)
    });
    match r {
        Ok(()) => ok("Card funded successfully", Value::Null),
        Err(res) => res,
    }
}

pub async fn withdraw(State(state): State<Shared>, Path(id): Path<String>, raw: Bytes) -> Response {
    let v: Value = match body(&raw) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(amt) = amount(v.get("amount")) else { return bad("amount is required") };
    let r = with_card(&state, &id, |c, txn| {
        if c.amount < amt {
            return Err("Insufficient card balance");
        }
        c.amount -= amt;
        c.transactions.push(CardTxn {
            id: *txn,
            amount: amt,
            indicator: "D",
            narration: "Card withdrawal".into(),
            created_ms: state.clock.now_ms(),
            declined: None,
        });
        Ok(amt)
    });
    match r {
        // Flutterwave's published answer to a withdrawal says this, oddly.
        Ok(()) => ok("Card transactions fetched successfully", Value::Null),
        Err(res) => res,
    }
}

pub async fn set_status(State(state): State<Shared>, Path((id, action)): Path<(String, String)>) -> Response {
    let mut d = lock(&state.data);
    let Some(card) = d.cards.get_mut(&id) else { return bad("Card not found") };
    if card.terminated {
        return bad("This card has been terminated");
    }
    match action.as_str() {
        "block" => {
            card.blocked = true;
            ok("Card blocked successfully", Value::Null)
        }
        "unblock" => {
            card.blocked = false;
            ok("Card unblocked successfully", Value::Null)
        }
        _ => bad("status must be block or unblock"),
    }
}

pub async fn terminate(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    let mut d = lock(&state.data);
    let Some(card) = d.cards.get_mut(&id) else { return bad("Card not found") };
    if card.terminated {
        return bad("This card has been terminated");
    }
    card.terminated = true;
    // What was left on the card goes back to the wallet.
    let (currency, left) = (card.currency.clone(), card.amount);
    card.amount = Decimal::ZERO;
    d.adjust(&currency, left);
    ok("Card terminated successfully", Value::Null)
}

pub async fn transactions(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let d = lock(&state.data);
    let Some(card) = d.cards.get(&id) else { return bad("Card not found") };
    let index = q.get("index").and_then(|i| i.parse::<usize>().ok()).unwrap_or(0);
    let size = q.get("size").and_then(|s| s.parse::<usize>().ok()).unwrap_or(10).clamp(1, 100);
    let rows: Vec<Value> = card
        .transactions
        .iter()
        .filter(|t| q.get("from").is_none_or(|f| date(t.created_ms) >= *f))
        .filter(|t| q.get("to").is_none_or(|to| date(t.created_ms) <= *to))
        .skip(index * size)
        .take(size)
        .map(|t| {
            json!({
                "id": t.id, "amount": num(t.amount), "fee": 0,
                "product": if t.indicator == "C" { "Card Funding" } else { "Card Transaction" },
                "gateway_reference_details": format!("{}-{:012}", card.id.get(..23).unwrap_or(&card.id), t.id),
                "gateway_reference": format!("{}*******{}", &card.pan[..6], &card.pan[12..]),
                "reference": format!("CF-EMULATOR-{}", t.id),
                "response_code": 5, "amount_confirmed": 0, "narration": t.narration,
                "indicator": t.indicator, "created_at": iso(t.created_ms),
                "status": if t.declined.is_some() { "Declined" } else { "Successful" },
                "response_message": t.declined.unwrap_or("Transaction successful"), "currency": card.currency,
            })
        })
        .collect();
    ok("Card transactions fetched successfully", Value::Array(rows))
}

/// A merchant-side debit on the card (a purchase), for card-webhook drills.
/// A blocked or inactive card, or one without the balance, declines it: the
/// declined transaction is listed and sent as an event, and moves nothing.
pub fn debit(state: &Shared, id: &str, amt: Decimal, description: &str) -> Result<Value, &'static str> {
    let (card, txn) = {
        let mut d = lock(&state.data);
        let txn_id = d.id();
        let card = d.cards.get_mut(id).ok_or("Card not found")?;
        if card.terminated {
            return Err("This card has been terminated");
        }
        let declined = if card.blocked || !card.active {
            Some("Card is not active")
        } else if card.amount < amt {
            Some("Insufficient card balance")
        } else {
            None
        };
        if declined.is_none() {
            card.amount -= amt;
        }
        let t = CardTxn {
            id: txn_id,
            amount: amt,
            indicator: "D",
            narration: description.into(),
            created_ms: state.clock.now_ms(),
            declined,
        };
        card.transactions.push(t.clone());
        (card.clone(), t)
    };
    let hook = card_webhook(&card, &txn);
    state.outbox.send(hook.clone(), card.callback_url.clone());
    Ok(hook)
}
