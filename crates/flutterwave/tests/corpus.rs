//! Every payload Flutterwave really sent (`corpus/flutterwave-v3/`, one folder
//! per endpoint or event) goes through the client's own parser for that
//! endpoint — served over HTTP and read by the client method Sika calls — and
//! the money fields it decodes (amounts, fees, currency, status, references,
//! ids) must equal the file's. A file dropped into a folder is tested with no
//! code change; a folder the client has no parser for fails the test.

mod support;

use std::sync::{Arc, Mutex};

use flutterwave::banks::ResolveRequest;
use flutterwave::transactions::{RefundRequest, Transaction};
use flutterwave::transfers::{BulkItem, BulkTransferRequest, Transfer, TransferRequest};
use flutterwave::webhook::{self, WebhookEvent};
use flutterwave::{Amount, Client, Config, ErrorKind, Page, Reply, SecretKey};
use rust_decimal::Decimal;
use serde_json::Value;
use support::corpus::{self, Sample};

/// Answers every request with the body it was last given.
struct Stub {
    base: String,
    answer: Arc<Mutex<(u16, Vec<u8>)>>,
}

async fn stub() -> Stub {
    let answer = Arc::new(Mutex::new((200u16, Vec::new())));
    let a = answer.clone();
    let app = axum::Router::new().fallback(move || {
        let a = a.clone();
        async move {
            let (status, body) = a.lock().unwrap().clone();
            (
                axum::http::StatusCode::from_u16(status).unwrap(),
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                body,
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v3", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Stub { base, answer }
}

fn client(base: &str) -> Client {
    let mut c = Config::new(url::Url::parse(base).unwrap(), SecretKey::new("FLWSECK_TEST-corpus-X"));
    c.rate_per_second = 1000;
    c.burst = 1000;
    c.max_retries = 0;
    Client::new(c).unwrap()
}

// What the file says, read the way a person reads it.

/// A money field: a JSON number or numeric string; anything else is absent.
fn money(v: &Value) -> Option<Decimal> {
    match v {
        Value::Number(n) => n.to_string().parse().ok(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn money_of(a: Option<Amount>) -> Option<Decimal> {
    a.map(Amount::decimal)
}

/// Text as sent; `null`, empty and `"N/A"` are absent, numbers are their digits.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() && s != "N/A" => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn id(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn ok<T: std::fmt::Debug>(s: &Sample, r: Reply<T>) -> T {
    match r {
        Reply::Ok(t) => t,
        other => panic!("{}/{}: the client did not decode it: {other:?}", s.folder, s.file),
    }
}

macro_rules! same {
    ($s:expr, $what:expr, $parsed:expr, $file:expr) => {
        assert_eq!($parsed, $file, "{}/{}: {}", $s.folder, $s.file, $what)
    };
}

fn check_transaction(s: &Sample, t: &Transaction, f: &Value) {
    same!(s, "id", Some(t.id), id(&f["id"]));
    same!(s, "tx_ref", Some(t.tx_ref.clone()), text(&f["tx_ref"]));
    same!(s, "flw_ref", t.flw_ref.clone(), text(&f["flw_ref"]));
    same!(s, "amount", Some(t.amount.decimal()), money(&f["amount"]));
    same!(s, "currency", Some(t.currency.clone()), text(&f["currency"]));
    same!(s, "charged_amount", money_of(t.charged_amount), money(&f["charged_amount"]));
    same!(s, "app_fee", money_of(t.app_fee), money(&f["app_fee"]));
    same!(s, "merchant_fee", money_of(t.merchant_fee), money(&f["merchant_fee"]));
    same!(s, "amount_settled", money_of(t.amount_settled), money(&f["amount_settled"]));
    same!(s, "status", t.status.as_str().to_string(), f["status"].as_str().unwrap_or_default().to_ascii_lowercase());
    same!(s, "payment_type", t.payment_type.clone(), text(&f["payment_type"]));
}

fn check_transfer(s: &Sample, t: &Transfer, f: &Value) {
    same!(s, "id", Some(t.id), id(&f["id"]));
    same!(s, "reference", t.reference.clone(), text(&f["reference"]));
    same!(s, "amount", Some(t.amount.decimal()), money(&f["amount"]));
    same!(s, "fee", money_of(t.fee), money(&f["fee"]));
    same!(s, "currency", Some(t.currency.clone()), text(&f["currency"]));
    same!(s, "debit_currency", t.debit_currency.clone(), text(&f["debit_currency"]));
    same!(s, "status", t.status.as_str().to_string(), f["status"].as_str().unwrap_or_default().to_ascii_uppercase());
    same!(s, "complete_message", t.complete_message.clone(), text(&f["complete_message"]));
    same!(s, "bank_code", Some(t.bank_code.clone()), text(&f["bank_code"]));
    same!(s, "account_number", Some(t.account_number.clone()), text(&f["account_number"]));
    same!(s, "requires_approval", t.requires_approval, id(&f["requires_approval"]) == Some(1));
    same!(s, "is_approved", t.is_approved, id(&f["is_approved"]) == Some(1));
}

fn check_page<T>(s: &Sample, page: &Page<T>) {
    let f = &s.json;
    same!(s, "rows", page.items.len(), f["data"].as_array().map_or(0, Vec::len));
    let info = page.page_info.expect("page_info");
    let p = &f["meta"]["page_info"];
    same!(
        s,
        "page_info",
        (info.total, info.current_page, info.total_pages),
        (id(&p["total"]), id(&p["current_page"]), id(&p["total_pages"]))
    );
}

fn transfer_request() -> TransferRequest {
    TransferRequest {
        account_bank: "044".into(),
        account_number: "0690000040".into(),
        amount: "5500".parse().unwrap(),
        currency: "NGN".into(),
        reference: "corpus-1".into(),
        debit_currency: None,
        narration: None,
        callback_url: None,
        beneficiary_name: None,
        destination_branch_code: None,
        meta: None,
    }
}

/// The client method for the folder's endpoint, and the checks of its answer.
async fn parse(c: &Client, s: &Sample) {
    let f = &s.json;
    let data = &f["data"];
    match s.folder.as_str() {
        "accounts-resolve" => {
            let req = ResolveRequest {
                account_number: "0690000032".into(),
                account_bank: "044".into(),
                kind: None,
                country: None,
            };
            let a = ok(s, c.resolve_account(&req).await);
            same!(s, "account_number", Some(a.account_number), text(&data["account_number"]));
            same!(s, "account_name", Some(a.account_name), text(&data["account_name"]));
        }
        "balances" => {
            let all = ok(s, c.balances().await);
            let rows = data.as_array().unwrap();
            same!(s, "rows", all.len(), rows.len());
            for (b, r) in all.iter().zip(rows) {
                same!(s, "currency", Some(b.currency.clone()), text(&r["currency"]));
                same!(s, "available_balance", Some(b.available_balance.decimal()), money(&r["available_balance"]));
                same!(s, "ledger_balance", Some(b.ledger_balance.decimal()), money(&r["ledger_balance"]));
            }
        }
        "balances-currency" => {
            let b = ok(s, c.balance("NGN").await);
            same!(s, "currency", Some(b.currency), text(&data["currency"]));
            same!(s, "available_balance", Some(b.available_balance.decimal()), money(&data["available_balance"]));
            same!(s, "ledger_balance", Some(b.ledger_balance.decimal()), money(&data["ledger_balance"]));
        }
        "banks-branches" => {
            let all = ok(s, c.bank_branches(280).await);
            let rows = data.as_array().unwrap();
            same!(s, "rows", all.len(), rows.len());
            for (b, r) in all.iter().zip(rows) {
                same!(s, "id", Some(b.id), id(&r["id"]));
                same!(s, "branch_code", Some(b.branch_code.clone()), text(&r["branch_code"]));
                same!(s, "bank_id", b.bank_id, id(&r["bank_id"]));
            }
        }
        "banks-list" => {
            let all = ok(s, c.banks("NG").await);
            let rows = data.as_array().unwrap();
            same!(s, "rows", all.len(), rows.len());
            for (b, r) in all.iter().zip(rows) {
                same!(s, "id", Some(b.id), id(&r["id"]));
                same!(s, "code", Some(b.code.clone()), text(&r["code"]));
            }
        }
        "bulk-transfers-create" => {
            let item = BulkItem {
                bank_code: "044".into(),
                account_number: "0690000032".into(),
                amount: "100".parse().unwrap(),
                currency: "NGN".into(),
                narration: "corpus".into(),
                reference: "corpus-bulk-1".into(),
                debit_currency: None,
                beneficiary_name: None,
            };
            let q = ok(s, c.bulk_transfer(&BulkTransferRequest { title: None, bulk_data: vec![item] }).await);
            same!(s, "id", Some(q.id), id(&data["id"]));
        }
        "errors" => match c.verify_transaction(1).await {
            Reply::Rejected(e) => {
                same!(s, "message", Some(e.message.clone()), text(&f["message"]));
                if s.file.contains("not-found") {
                    same!(s, "kind", e.kind, ErrorKind::NotFound);
                }
            }
            other => panic!("{}/{}: an error envelope must be a definite refusal: {other:?}", s.folder, s.file),
        },
        "transactions-list" => {
            let page = ok(s, c.list_transactions(None, None, 1).await);
            check_page(s, &page);
            for (t, r) in page.items.iter().zip(data.as_array().unwrap()) {
                check_transaction(s, t, r);
            }
        }
        "transactions-refund" => {
            let r = ok(s, c.refund(1, &RefundRequest::default()).await);
            same!(s, "id", Some(r.id), id(&data["id"]));
            same!(s, "tx_id", r.tx_id, id(&data["tx_id"]));
            same!(s, "flw_ref", r.flw_ref, text(&data["flw_ref"]));
            same!(s, "amount_refunded", money_of(r.amount_refunded), money(&data["amount_refunded"]));
            same!(s, "status", Some(r.status), text(&data["status"]));
        }
        "transactions-resend-hook" => {
            same!(s, "data", Some(ok(s, c.resend_hook(1).await)), text(data));
        }
        "transactions-verify" => check_transaction(s, &ok(s, c.verify_transaction(1).await), data),
        "transactions-verify-by-reference" => {
            check_transaction(s, &ok(s, c.verify_by_reference("corpus").await), data);
        }
        "transfers-create" => check_transfer(s, &ok(s, c.create_transfer(&transfer_request()).await), data),
        "transfers-get" => check_transfer(s, &ok(s, c.get_transfer(1).await), data),
        "transfers-list" => {
            let page = ok(s, c.list_transfers(None, 1).await);
            check_page(s, &page);
            for (t, r) in page.items.iter().zip(data.as_array().unwrap()) {
                check_transfer(s, t, r);
            }
        }
        "transfers-fee" => {
            let fees = ok(s, c.transfer_fee("100".parse().unwrap(), "NGN", None).await);
            let rows = data.as_array().unwrap();
            same!(s, "rows", fees.len(), rows.len());
            for (fee, r) in fees.iter().zip(rows) {
                same!(s, "currency", Some(fee.currency.clone()), text(&r["currency"]));
                same!(s, "fee_type", fee.fee_type.clone(), text(&r["fee_type"]));
                same!(s, "fee", Some(fee.fee.decimal()), money(&r["fee"]));
            }
        }
        "virtual-cards-create" | "virtual-cards-get" => {
            let card = if s.folder.ends_with("create") {
                let req = flutterwave::cards::CardRequest {
                    currency: "USD".into(),
                    amount: "5".parse().unwrap(),
                    debit_currency: None,
                    billing_name: None,
                    billing_address: None,
                    billing_city: None,
                    billing_state: None,
                    billing_postal_code: None,
                    billing_country: None,
                    first_name: "A".into(),
                    last_name: "B".into(),
                    date_of_birth: "1990/01/01".into(),
                    email: "a@example.com".into(),
                    phone: "0800000000".into(),
                    title: "MR".into(),
                    gender: "M".into(),
                    callback_url: None,
                };
                ok(s, c.create_card(&req).await)
            } else {
                ok(s, c.get_card("x").await)
            };
            check_card(s, &card, data);
        }
        "virtual-cards-list" => {
            let cards = ok(s, c.list_cards().await);
            let rows = data.as_array().unwrap();
            same!(s, "rows", cards.len(), rows.len());
            for (card, r) in cards.iter().zip(rows) {
                check_card(s, card, r);
            }
        }
        "virtual-cards-fund" => ok(s, c.fund_card("x", "USD", "5".parse().unwrap()).await),
        "virtual-cards-withdraw" => ok(s, c.withdraw_from_card("x", "5".parse().unwrap()).await),
        "virtual-cards-block" => ok(s, c.block_card("x").await),
        "virtual-cards-unblock" => ok(s, c.unblock_card("x").await),
        "virtual-cards-terminate" => ok(s, c.terminate_card("x").await),
        "virtual-cards-transactions" => {
            let txns = ok(s, c.card_transactions("x", "2022-01-01", "2022-12-31", 0, 10).await);
            let rows = data.as_array().unwrap();
            same!(s, "rows", txns.len(), rows.len());
            for (t, r) in txns.iter().zip(rows) {
                same!(s, "id", Some(t.id.clone()), text(&r["id"]));
                same!(s, "amount", Some(t.amount.decimal()), money(&r["amount"]));
                same!(s, "fee", money_of(t.fee), money(&r["fee"]));
                same!(s, "reference", t.reference.clone(), text(&r["reference"]));
                same!(s, "indicator", t.indicator.clone(), text(&r["indicator"]));
                same!(s, "status", t.status.clone(), text(&r["status"]));
                same!(s, "currency", t.currency.clone(), text(&r["currency"]));
            }
        }
        "webhook-charge-completed" | "webhook-legacy-charge" => {
            let legacy = s.folder.contains("legacy");
            let Some(WebhookEvent::Charge(e)) = Some(webhook::parse(&s.raw)) else {
                panic!("{}/{}: not read as a charge: {:?}", s.folder, s.file, webhook::parse(&s.raw))
            };
            let d = if legacy { f } else { data };
            same!(s, "legacy", e.legacy, legacy);
            same!(s, "id", Some(e.id), id(&d["id"]));
            same!(s, "tx_ref", Some(e.tx_ref), text(if legacy { &d["txRef"] } else { &d["tx_ref"] }));
            same!(s, "flw_ref", e.flw_ref, text(if legacy { &d["flwRef"] } else { &d["flw_ref"] }));
            same!(s, "amount", money_of(e.amount), money(&d["amount"]));
            same!(s, "currency", e.currency, text(&d["currency"]));
            same!(
                s,
                "status",
                e.status.as_str().to_string(),
                d["status"].as_str().unwrap_or_default().to_ascii_lowercase()
            );
        }
        "webhook-transfer-completed" | "webhook-legacy-transfer" => {
            let d = if s.folder.contains("legacy") { &f["transfer"] } else { data };
            let Some(WebhookEvent::Transfer(e)) = Some(webhook::parse(&s.raw)) else {
                panic!("{}/{}: not read as a transfer: {:?}", s.folder, s.file, webhook::parse(&s.raw))
            };
            same!(s, "id", Some(e.id), id(&d["id"]));
            same!(s, "reference", e.reference, text(&d["reference"]));
            same!(s, "amount", money_of(e.amount), money(&d["amount"]));
            same!(s, "fee", money_of(e.fee), money(&d["fee"]));
            same!(s, "currency", e.currency, text(&d["currency"]));
            same!(
                s,
                "status",
                e.status.as_str().to_string(),
                d["status"].as_str().unwrap_or_default().to_ascii_uppercase()
            );
            same!(s, "complete_message", e.complete_message, text(&d["complete_message"]));
        }
        other => panic!("{other}/{}: the client has no parser for this folder; add one to this test", s.file),
    }
}

fn check_card(s: &Sample, card: &flutterwave::cards::Card, f: &Value) {
    same!(s, "id", Some(card.id.clone()), text(&f["id"]));
    same!(s, "amount", Some(card.amount.decimal()), money(&f["amount"]));
    same!(s, "currency", Some(card.currency.clone()), text(&f["currency"]));
    same!(s, "masked_pan", card.masked_pan.clone(), text(&f["masked_pan"]));
    same!(s, "is_active", card.is_active, f["is_active"].as_bool().unwrap_or(false));
    same!(s, "card_hash", card.card_hash.clone(), text(&f["card_hash"]));
}

#[tokio::test]
async fn every_real_payload_parses_to_the_money_it_carries() {
    let samples = corpus::load();
    assert!(samples.len() >= 46, "the corpus is at {:?}: {} files found", corpus::roots(), samples.len());
    let stub = stub().await;
    let c = client(&stub.base);
    for s in &samples {
        let status = if s.json["status"] == "error" { 400 } else { 200 };
        *stub.answer.lock().unwrap() = (status, s.raw.clone());
        parse(&c, s).await;
    }
}
