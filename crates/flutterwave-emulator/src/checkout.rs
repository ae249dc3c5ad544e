//! The hosted checkout page a customer sees at the link from `POST /payments`:
//! pay with a test card, fail, or cancel, then back to `redirect_url`.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use http::StatusCode;
use serde::Deserialize;

use crate::api::transactions::{ChargeRequest, charge_webhook, record_charge};
use crate::state::{Payment, Shared, TEST_CARDS, lock};

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#x27;")
}

fn page(p: &Payment, notice: Option<&str>) -> Html<String> {
    let cards: String = TEST_CARDS
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let label = match c.decline {
                None => format!("{} •••• {} (approves)", c.brand, &c.number[c.number.len() - 4..]),
                Some(why) => format!("{} •••• {} ({})", c.brand, &c.number[c.number.len() - 4..], why.to_lowercase()),
            };
            format!("<option value=\"{i}\">{}</option>", escape(&label))
        })
        .collect();
    let notice = notice.map(|n| format!("<p class=\"notice\" id=\"notice\">{}</p>", escape(n))).unwrap_or_default();
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Flutterwave emulator · checkout</title>\
         <style>body{{font:16px system-ui;max-width:32rem;margin:2rem auto}}button{{margin:.25rem}}.notice{{color:#9b1c1c}}</style>\
         </head><body><h1>{title}</h1><p>Pay <strong id=\"amount\">{currency} {amount}</strong> to reference <code>{tx_ref}</code></p>\
         <p>Customer: {email}</p>{notice}\
         <form method=\"post\"><label>Test card <select name=\"card\" id=\"card\">{cards}</select></label><br>\
         <button type=\"submit\" name=\"action\" value=\"pay\" id=\"pay\">Pay</button>\
         <button type=\"submit\" name=\"action\" value=\"fail\" id=\"fail\">Fail this attempt</button>\
         <button type=\"submit\" name=\"action\" value=\"cancel\" id=\"cancel\">Cancel</button></form>\
         <p><small>This is Sika's Flutterwave emulator. No real money moves.</small></p></body></html>",
        title = escape(p.title.as_deref().unwrap_or("Checkout")),
        currency = escape(&p.currency),
        amount = p.amount,
        tx_ref = escape(&p.tx_ref),
        email = escape(&p.customer_email),
    ))
}

fn closed() -> Response {
    (StatusCode::GONE, Html("<!doctype html><title>Closed</title><p>This payment link is no longer active.</p>"))
        .into_response()
}

pub async fn show(State(state): State<Shared>, Path(link): Path<String>) -> Response {
    match lock(&state.data).payments.get(&link) {
        Some(p) if !p.closed => page(p, None).into_response(),
        _ => closed(),
    }
}

#[derive(Deserialize)]
pub struct Choice {
    action: String,
    #[serde(default)]
    card: Option<usize>,
}

/// Builds `redirect_url` with Flutterwave's query parameters.
pub fn redirect_to(base: &str, params: &[(&str, String)]) -> String {
    match url::Url::parse(base) {
        Ok(mut u) => {
            u.query_pairs_mut().extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
            u.to_string()
        }
        Err(_) => base.to_string(),
    }
}

pub async fn submit(State(state): State<Shared>, Path(link): Path<String>, Form(choice): Form<Choice>) -> Response {
    let Some(p) = lock(&state.data).payments.get(&link).cloned().filter(|p| !p.closed) else { return closed() };
    if choice.action == "cancel" {
        return Redirect::to(&redirect_to(
            &p.redirect_url,
            &[("status", "cancelled".into()), ("tx_ref", p.tx_ref.clone())],
        ))
        .into_response();
    }
    let card = TEST_CARDS.get(choice.card.unwrap_or(0)).unwrap_or(&TEST_CARDS[0]);
    let status = if choice.action == "pay" && card.decline.is_none() { "successful" } else { "failed" };
    let txn = match record_charge(
        &state,
        ChargeRequest {
            tx_ref: &p.tx_ref,
            status,
            amount: None,
            currency: None,
            card: Some(card),
            payment_type: None,
            charged_amount: None,
            customer_bears_fee: false,
        },
    ) {
        Ok(t) => t,
        Err(msg) => return (StatusCode::BAD_REQUEST, msg).into_response(),
    };
    let faults = state.faults();
    state.outbox.send(charge_webhook(&txn, &faults.webhook_format), None);
    if status == "successful" {
        let params = [
            ("status", faults.redirect_status.clone()),
            ("tx_ref", p.tx_ref.clone()),
            ("transaction_id", txn.id.to_string()),
        ];
        Redirect::to(&redirect_to(&p.redirect_url, &params)).into_response()
    } else {
        // A failed attempt keeps the checkout open: the customer may try again.
        page(&p, Some(&format!("Payment failed: {}. Try another card.", txn.processor_response))).into_response()
    }
}
