//! Payouts: transfers (NEW → PENDING → SUCCESSFUL | FAILED), bulk transfers,
//! fees, retries, beneficiaries and wallet balances.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::banks::{bank_name, resolve_name};
use super::{amount, bad, body, error, num, ok, ok_page, page_of, text};
use crate::state::{Beneficiary, Shared, Transfer, lock};
use crate::time::iso;

const MOBILE_MONEY: [&str; 5] = ["MPS", "MTN", "AIRTEL", "VODAFONE", "FMM"];
const BLACKLISTED: &str = "0690000036";

/// What a transfer goes to, for its fee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeeKind {
    Account,
    MobileMoney,
    /// Flutterwave wallet to wallet (`account_bank: flutterwave`): free in every corpus sample.
    Wallet,
}

impl FeeKind {
    fn of(bank: &str) -> FeeKind {
        if bank.eq_ignore_ascii_case("flutterwave") {
            FeeKind::Wallet
        } else if MOBILE_MONEY.contains(&bank) {
            FeeKind::MobileMoney
        } else {
            FeeKind::Account
        }
    }

    fn from_query(kind: Option<&str>) -> FeeKind {
        match kind.map(str::to_ascii_lowercase).as_deref() {
            Some("mobilemoney") => FeeKind::MobileMoney,
            Some("wallet") | Some("barter") => FeeKind::Wallet,
            _ => FeeKind::Account,
        }
    }
}

/// Flutterwave's transfer fee, flat per currency as the corpus shows it:
/// NGN 10.75 up to 5,000, 26.875 up to 50,000, 53.75 above; KES M-Pesa 45;
/// UGX mobile money 500; EUR 35; USD 40; wallet transfers free. Other
/// currencies are the emulator's guesses (see its README).
pub fn fee_for(amount: Decimal, currency: &str, kind: FeeKind) -> Decimal {
    if kind == FeeKind::Wallet {
        return Decimal::ZERO;
    }
    match currency {
        "NGN" if amount <= Decimal::from(5000) => Decimal::new(1075, 2),
        "NGN" if amount <= Decimal::from(50_000) => Decimal::new(26875, 3),
        "NGN" => Decimal::new(5375, 2),
        "KES" => Decimal::from(45),
        "UGX" => Decimal::from(500),
        "EUR" => Decimal::from(35),
        "USD" => Decimal::from(40),
        "GBP" => Decimal::from(35),
        "GHS" => Decimal::from(3),
        "ZAR" => Decimal::from(10),
        "TZS" => Decimal::from(1000),
        "RWF" => Decimal::from(500),
        _ => Decimal::from(40),
    }
}

/// Where a transfer is shown: its create answer, the REST lookups (`GET
/// /transfers/{id}` and the list), or a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Created,
    Lookup,
    Webhook,
}

/// `meta` as each view shows it: the create answer and webhooks carry it as
/// sent; the lookups return an object wrapped in an array (as the Node SDK's
/// captures show), so nothing may depend on its shape.
fn meta_for(meta: &Value, view: View) -> Value {
    match (meta, view) {
        (Value::Object(_), View::Lookup) => Value::Array(vec![meta.clone()]),
        _ => meta.clone(),
    }
}

pub fn transfer_json(t: &Transfer, view: View) -> Value {
    // A wallet transfer is asked for with `account_bank: flutterwave`; the lookups call it `wallet`.
    let wallet = t.bank_code.eq_ignore_ascii_case("flutterwave");
    let bank_code = if wallet && view == View::Lookup { "wallet".to_string() } else { t.bank_code.clone() };
    let mut v = json!({
        "id": t.id, "account_number": t.account_number, "bank_code": bank_code, "full_name": t.full_name,
        "created_at": iso(t.created_ms), "currency": t.currency, "debit_currency": t.debit_currency,
        "amount": num(t.amount), "fee": num(t.fee), "status": t.status, "reference": t.reference,
        "meta": meta_for(&t.meta, view), "narration": t.narration, "complete_message": t.complete_message,
        "requires_approval": i32::from(t.requires_approval), "is_approved": i32::from(!t.requires_approval),
        "bank_name": t.bank_name,
    });
    if view == View::Lookup
        && let Some(o) = v.as_object_mut()
    {
        o.insert("approver".into(), Value::Null);
    }
    v
}

/// The transfer event in the configured format: `transfer.completed` (or
/// `transfer.reversed`) with `data`, or the legacy `{"event.type": "Transfer", "transfer": {...}}`.
pub fn transfer_event(state: &Shared, t: &Transfer) -> Value {
    let faults = state.faults();
    if faults.webhook_format == "legacy" {
        return json!({
            "event.type": "Transfer",
            "transfer": {
                "id": t.id, "account_number": t.account_number, "bank_code": t.bank_code, "fullname": t.full_name,
                // The v2-era form the corpus shows has no debit currency.
                "date_created": iso(t.created_ms), "currency": t.currency, "debit_currency": null,
                "amount": num(t.amount), "fee": num(t.fee), "status": t.status, "reference": t.reference,
                "meta": t.meta, "narration": t.narration, "approver": null, "complete_message": t.complete_message,
                "requires_approval": i32::from(t.requires_approval), "is_approved": i32::from(!t.requires_approval),
                "bank_name": t.bank_name,
            }
        });
    }
    let mut v = transfer_webhook(t);
    if t.status == "REVERSED" {
        v["event"] = json!("transfer.reversed");
    }
    if !faults.transfer_event_type
        && let Some(o) = v.as_object_mut()
    {
        o.remove("event.type");
    }
    v
}

/// `transfer.completed` (note `fullname`, unlike REST's `full_name`; `meta` as it was sent).
pub fn transfer_webhook(t: &Transfer) -> Value {
    json!({
        "event": "transfer.completed", "event.type": "Transfer",
        "data": {
            "id": t.id, "account_number": t.account_number, "bank_name": t.bank_name, "bank_code": t.bank_code,
            "fullname": t.full_name, "created_at": iso(t.created_ms), "currency": t.currency,
            "debit_currency": t.debit_currency, "amount": num(t.amount), "fee": num(t.fee), "status": t.status,
            "reference": t.reference, "meta": meta_for(&t.meta, View::Webhook), "narration": t.narration,
            "approver": null, "complete_message": t.complete_message,
            "requires_approval": i32::from(t.requires_approval), "is_approved": i32::from(!t.requires_approval),
        }
    })
}

/// Transfer webhooks arrive with this content type (the corpus logs it).
pub const TRANSFER_WEBHOOK_CONTENT_TYPE: &str = "application/json;charset=utf-8";

/// The fate a test reference asks for: (succeeds, after how many emulated minutes).
fn scripted_outcome(reference: &str) -> Option<(bool, u64)> {
    let (_, rest) = reference.rsplit_once("_PMCK")?;
    let (fail, rest) = match rest.strip_prefix("_ST_F") {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let minutes = match rest.strip_prefix("DU_") {
        Some(n) => n.parse().ok()?,
        None if rest.is_empty() => 10,
        None => return None,
    };
    Some((!fail, minutes))
}

struct NewTransfer {
    bank: String,
    number: String,
    amount: Decimal,
    currency: String,
    debit_currency: String,
    reference: String,
    narration: String,
    beneficiary_name: Option<String>,
    meta: Value,
    callback_url: Option<String>,
    batch_id: Option<i64>,
}

/// Why an account rule fails a transfer, in Flutterwave's words.
fn broken_rule(state: &Shared, n: &NewTransfer) -> Option<String> {
    let faults = state.faults();
    let mobile = MOBILE_MONEY.contains(&n.bank.as_str());
    let foreign = n.bank.eq_ignore_ascii_case("FOREIGN-BANK") || matches!(n.currency.as_str(), "EUR" | "GBP");
    if (mobile || foreign || n.currency == "GHS") && n.beneficiary_name.is_none() {
        return Some("beneficiary_name is required".into());
    }
    if faults.wallet_restricted {
        return Some("DISBURSE FAILED: wallet currently restricted. please contact administrator".into());
    }
    if let Some(limit) = faults.spend_limits.get(&n.currency)
        && n.amount > *limit
    {
        return Some(format!("DISBURSE FAILED: You can only spend {} {:.2} at once", n.currency, limit));
    }
    None
}

/// Validates and queues one transfer; the lifecycle runs in the background.
/// Refusals of the request itself (a blacklisted account, a reference used
/// before) are immediate; a broken account rule fails the queued transfer
/// later, unless `transfer_refusals` is `at_once`.
fn queue(state: &Shared, n: NewTransfer) -> Result<Transfer, String> {
    let faults = state.faults();
    if n.number == BLACKLISTED {
        return Err("Payout was made to a blacklisted account number".into());
    }
    let rule = broken_rule(state, &n);
    if faults.transfer_refusals == "at_once"
        && let Some(why) = rule
    {
        return Err(why.trim_start_matches("DISBURSE FAILED: ").to_string());
    }
    let kind = FeeKind::of(&n.bank);
    let mobile = kind == FeeKind::MobileMoney;
    let resolved = if kind == FeeKind::Wallet {
        Some((n.number.clone(), format!("Flutterwave merchant {}", n.number)))
    } else {
        resolve_name(&n.bank, &n.number, mobile.then_some("MOBILEMONEY"), None)
    };
    let mut d = lock(&state.data);
    if !d.transfer_refs.insert(n.reference.clone()) {
        return Err("A transfer with this reference already exists".into());
    }
    let fee = fee_for(n.amount, &n.currency, kind);
    let id = d.id();
    let t = Transfer {
        id,
        account_number: n.number.clone(),
        bank_code: n.bank.clone(),
        bank_name: if kind == FeeKind::Wallet {
            "wallet".into()
        } else {
            bank_name(&n.bank).unwrap_or("N/A").to_uppercase()
        },
        full_name: n.beneficiary_name.clone().or(resolved.map(|r| r.1)).unwrap_or_else(|| "N/A".into()),
        currency: n.currency,
        debit_currency: n.debit_currency,
        amount: n.amount,
        fee,
        status: "NEW".into(),
        reference: n.reference,
        narration: n.narration,
        complete_message: String::new(),
        meta: n.meta,
        created_ms: state.clock.now_ms(),
        batch_id: n.batch_id,
        callback_url: n.callback_url,
        retries: 0,
        requires_approval: faults.transfers_stay_new,
    };
    // The wallet is debited when the transfer is queued; a failure puts the money back.
    let debit = t.amount + t.fee;
    let fails_with = match rule {
        Some(why) => Some(why),
        None if d.available(&t.debit_currency) < debit => {
            Some("DISBURSE FAILED: Insufficient funds in customer wallet".to_string())
        }
        None => None,
    };
    if fails_with.is_none() {
        d.adjust(&t.debit_currency, -debit);
    }
    d.transfers.insert(id, t.clone());
    drop(d);
    if !t.requires_approval {
        spawn_lifecycle(state.clone(), id, fails_with);
    }
    Ok(t)
}

/// `NEW` → `PENDING` → the outcome: failed at once with `fails_with`
/// (nothing was debited), scripted by the reference, or after
/// `transfer_complete_after_ms`; otherwise it stays `PENDING`.
fn spawn_lifecycle(state: Shared, id: i64, fails_with: Option<String>) {
    let minute = state.minute();
    let s = state.clone();
    // Each step is a timer on the emulator's clock, so a test may move time instead of waiting.
    state.clock.after(minute / 10, move || {
        let reference = {
            let mut d = lock(&s.data);
            let Some(t) = d.transfers.get_mut(&id) else { return };
            if t.status == "NEW" {
                t.status = "PENDING".into();
            }
            t.reference.clone()
        };
        if let Some(why) = fails_with {
            complete(&s, id, false, &why, false);
            return;
        }
        let next = s.clone();
        if let Some((success, minutes)) = scripted_outcome(&reference) {
            s.clock.after(minute * u32::try_from(minutes).unwrap_or(u32::MAX), move || {
                let msg = if success { "Successful" } else { "DISBURSE FAILED: Mocked failure" };
                complete(&next, id, success, msg, true);
            });
        } else if let Some(ms) = s.faults().transfer_complete_after_ms {
            s.clock.after(std::time::Duration::from_millis(ms), move || {
                complete(&next, id, true, "Successful", true);
            });
        }
    });
}

/// Settles a transfer once (later calls change nothing) and sends `transfer.completed`.
pub fn complete(state: &Shared, id: i64, success: bool, message: &str, refund_on_failure: bool) -> Option<Transfer> {
    let t = {
        let mut d = lock(&state.data);
        let t = d.transfers.get_mut(&id)?;
        if t.status == "SUCCESSFUL" || t.status == "FAILED" {
            return None;
        }
        t.status = if success { "SUCCESSFUL" } else { "FAILED" }.into();
        t.requires_approval = false;
        t.complete_message = message.into();
        let t = t.clone();
        if !success && refund_on_failure {
            d.adjust(&t.debit_currency, t.amount + t.fee);
        }
        t
    };
    state.outbox.send_as(transfer_event(state, &t), t.callback_url.clone(), TRANSFER_WEBHOOK_CONTENT_TYPE);
    Some(t)
}

/// A successful transfer is reversed: the money comes back and `transfer.reversed` is sent.
pub fn reverse(state: &Shared, id: i64) -> Result<Transfer, &'static str> {
    let t = {
        let mut d = lock(&state.data);
        let t = d.transfers.get_mut(&id).ok_or("no such transfer")?;
        if t.status != "SUCCESSFUL" {
            return Err("only a successful transfer can be reversed");
        }
        t.status = "REVERSED".into();
        t.complete_message = "Transfer reversed by the beneficiary's bank".into();
        let t = t.clone();
        d.adjust(&t.debit_currency, t.amount + t.fee);
        t
    };
    state.outbox.send_as(transfer_event(state, &t), t.callback_url.clone(), TRANSFER_WEBHOOK_CONTENT_TYPE);
    Ok(t)
}

pub async fn create(State(state): State<Shared>, raw: Bytes) -> Response {
    let v: Value = match body(&raw) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let beneficiary =
        v.get("beneficiary").and_then(Value::as_i64).and_then(|id| lock(&state.data).beneficiaries.get(&id).cloned());
    let bank = text(&v, "account_bank").or_else(|| beneficiary.as_ref().map(|b| b.bank_code.clone()));
    let number = text(&v, "account_number").or_else(|| beneficiary.as_ref().map(|b| b.account_number.clone()));
    let (Some(bank), Some(number)) = (bank, number) else { return bad("account_bank and account_number are required") };
    let Some(amount) = amount(v.get("amount")) else { return bad("amount is required and must be greater than 0") };
    let Some(currency) = text(&v, "currency").map(|c| c.to_ascii_uppercase()) else {
        return bad("currency is required");
    };
    let reference = text(&v, "reference").unwrap_or_else(|| format!("flw-{}", state.random_hex(12)));
    let n = NewTransfer {
        debit_currency: text(&v, "debit_currency").map(|c| c.to_ascii_uppercase()).unwrap_or_else(|| currency.clone()),
        bank,
        number,
        amount,
        currency,
        reference,
        narration: text(&v, "narration").unwrap_or_default(),
        beneficiary_name: text(&v, "beneficiary_name").or_else(|| beneficiary.map(|b| b.full_name)),
        meta: v.get("meta").cloned().unwrap_or(Value::Null),
        callback_url: text(&v, "callback_url"),
        batch_id: None,
    };
    match queue(&state, n) {
        Ok(t) => ok("Transfer Queued Successfully", transfer_json(&t, View::Created)),
        Err(msg) => bad(&msg),
    }
}

pub async fn get_one(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    let d = lock(&state.data);
    match id.parse::<i64>().ok().and_then(|id| d.transfers.get(&id)) {
        Some(t) => ok("Transfer fetched", transfer_json(t, View::Lookup)),
        None => bad("Transfer not found"),
    }
}

pub async fn list(State(state): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let page = page_of(&q);
    let faults = state.faults();
    if faults.transfer_list_fail_from_page.is_some_and(|from| page >= from as usize) {
        return error(http::StatusCode::INTERNAL_SERVER_ERROR, "An unexpected error occurred");
    }
    let d = lock(&state.data);
    let status = q.get("status").map(|s| s.to_ascii_uppercase());
    let batch = q.get("batch_id").and_then(|b| b.parse::<i64>().ok());
    // Lookup by reference: unconfirmed; honoured unless `transfer_list_ignores_reference`.
    let reference = q.get("reference").filter(|_| !faults.transfer_list_ignores_reference);
    let rows: Vec<&Transfer> = d
        .transfers
        .values()
        .rev()
        .filter(|t| status.as_ref().is_none_or(|s| &t.status == s))
        .filter(|t| batch.is_none_or(|b| t.batch_id == Some(b)))
        .filter(|t| reference.is_none_or(|r| &t.reference == r))
        .collect();
    let total = rows.len();
    let data = rows.iter().skip((page - 1) * 10).take(10).map(|t| transfer_json(t, View::Lookup)).collect();
    ok_page("Transfers fetched", Value::Array(data), page, total, 10)
}

pub async fn fee(Query(q): Query<HashMap<String, String>>) -> Response {
    let Some(amount) = q.get("amount").and_then(|a| amount(Some(&Value::String(a.clone())))) else {
        return bad("amount is required");
    };
    let currency = q.get("currency").map(|c| c.to_ascii_uppercase()).unwrap_or_else(|| "NGN".into());
    let kind = FeeKind::from_query(q.get("type").map(String::as_str));
    ok(
        "Transfer fee fetched",
        json!([{"currency": currency, "fee_type": "value", "fee": num(fee_for(amount, &currency, kind))}]),
    )
}

/// `GET /transfers/rates?amount=&destination_currency=&source_currency=`: `amount` is the destination amount.
pub async fn rates(Query(q): Query<HashMap<String, String>>) -> Response {
    let (Some(amount), Some(dest), Some(source)) = (
        q.get("amount").and_then(|a| amount(Some(&Value::String(a.clone())))),
        q.get("destination_currency").map(|c| c.to_ascii_uppercase()),
        q.get("source_currency").map(|c| c.to_ascii_uppercase()),
    ) else {
        return bad("amount, destination_currency and source_currency are required");
    };
    let per_usd = |c: &str| match c {
        "USD" => Some(Decimal::ONE),
        "NGN" => Some(Decimal::from(1500)),
        "GHS" => Some(Decimal::from(15)),
        "KES" => Some(Decimal::from(130)),
        "UGX" => Some(Decimal::from(3700)),
        "ZAR" => Some(Decimal::from(18)),
        "EUR" => Some(Decimal::new(92, 2)),
        "GBP" => Some(Decimal::new(79, 2)),
        _ => None,
    };
    let (Some(d), Some(s)) = (per_usd(&dest), per_usd(&source)) else {
        return bad("Unable to fetch rates at the moment");
    };
    let rate = (s / d).round_dp(6);
    ok(
        "Transfer amount fetched",
        json!({"rate": num(rate), "source": {"currency": source, "amount": num((amount * rate).round_dp(2))},
               "destination": {"currency": dest, "amount": num(amount)}}),
    )
}

/// `GET /transfers/{id}/retries`: the retry attempts of a transfer.
pub async fn retries(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    let d = lock(&state.data);
    let Some(t) = id.parse::<i64>().ok().and_then(|id| d.transfers.get(&id)) else {
        return bad("Transfer not found");
    };
    let prefix = format!("{}_RETRY_", t.reference);
    let rows: Vec<Value> = d
        .transfers
        .values()
        .filter(|r| r.reference.starts_with(&prefix))
        .map(|r| transfer_json(r, View::Lookup))
        .collect();
    ok("Transfer retry attempts fetched", Value::Array(rows))
}

pub async fn retry(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    let original = {
        let mut d = lock(&state.data);
        let Some(t) = id.parse::<i64>().ok().and_then(|id| d.transfers.get_mut(&id)) else {
            return bad("Transfer not found");
        };
        if t.status != "FAILED" {
            return bad("Only failed transfers can be retried");
        }
        if t.complete_message.to_ascii_lowercase().contains("insufficient") {
            return bad("This transfer cannot be retried");
        }
        t.retries += 1;
        t.clone()
    };
    let n = NewTransfer {
        bank: original.bank_code.clone(),
        number: original.account_number.clone(),
        amount: original.amount,
        currency: original.currency.clone(),
        debit_currency: original.debit_currency.clone(),
        reference: format!("{}_RETRY_{}", original.reference, original.retries),
        narration: original.narration.clone(),
        beneficiary_name: Some(original.full_name.clone()),
        meta: original.meta.clone(),
        callback_url: original.callback_url.clone(),
        batch_id: None,
    };
    match queue(&state, n) {
        Ok(t) => ok("Transfer retry attempt queued.", transfer_json(&t, View::Created)),
        Err(msg) => bad(&msg),
    }
}

pub async fn bulk(State(state): State<Shared>, raw: Bytes) -> Response {
    let v: Value = match body(&raw) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(items) = v.get("bulk_data").and_then(Value::as_array).filter(|a| !a.is_empty()) else {
        return bad("bulk_data is required");
    };
    // Validate everything before queueing anything.
    let mut plans = Vec::new();
    for item in items {
        let (Some(bank), Some(number), Some(amount), Some(currency)) =
            (text(item, "bank_code"), text(item, "account_number"), amount(item.get("amount")), text(item, "currency"))
        else {
            return bad("each bulk_data item needs bank_code, account_number, amount and currency");
        };
        plans.push(NewTransfer {
            debit_currency: text(item, "debit_currency").unwrap_or_else(|| currency.clone()),
            bank,
            number,
            amount,
            currency: currency.to_ascii_uppercase(),
            reference: text(item, "reference").unwrap_or_else(|| format!("flw-{}", state.random_hex(12))),
            narration: text(item, "narration").unwrap_or_default(),
            beneficiary_name: text(item, "beneficiary_name"),
            meta: item.get("meta").cloned().unwrap_or(Value::Null),
            callback_url: None,
            batch_id: None,
        });
    }
    let batch_id = lock(&state.data).id();
    for mut p in plans {
        p.batch_id = Some(batch_id);
        // A refused item (duplicate reference, blacklisted account) is skipped, as it fails alone upstream.
        let _ = queue(&state, p);
    }
    ok("Bulk transfer queued", json!({"id": batch_id, "created_at": iso(state.clock.now_ms()), "approver": "N/A"}))
}

fn beneficiary_json(b: &Beneficiary, with_meta: bool) -> Value {
    let mut v = json!({
        "id": b.id, "account_number": b.account_number, "bank_code": b.bank_code, "full_name": b.full_name,
        "created_at": iso(b.created_ms), "bank_name": b.bank_name,
    });
    if with_meta && let Some(o) = v.as_object_mut() {
        o.insert("meta".into(), Value::Null);
    }
    v
}

pub async fn create_beneficiary(State(state): State<Shared>, raw: Bytes) -> Response {
    let v: Value = match body(&raw) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let (Some(bank), Some(number), Some(name)) =
        (text(&v, "account_bank"), text(&v, "account_number"), text(&v, "beneficiary_name"))
    else {
        return bad("account_bank, account_number and beneficiary_name are required");
    };
    let mobile = MOBILE_MONEY.contains(&bank.as_str());
    if resolve_name(&bank, &number, mobile.then_some("MOBILEMONEY"), None).is_none() {
        return bad("Account resolve failed");
    }
    let mut d = lock(&state.data);
    let id = d.id();
    let b = Beneficiary {
        id,
        account_number: number,
        bank_name: text(&v, "bank_name").or_else(|| bank_name(&bank).map(str::to_string)).unwrap_or_default(),
        bank_code: bank,
        full_name: name,
        created_ms: state.clock.now_ms(),
    };
    d.beneficiaries.insert(id, b.clone());
    ok("Beneficiary created", beneficiary_json(&b, false))
}

pub async fn list_beneficiaries(State(state): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let page = page_of(&q);
    let d = lock(&state.data);
    let total = d.beneficiaries.len();
    let data =
        d.beneficiaries.values().rev().skip((page - 1) * 10).take(10).map(|b| beneficiary_json(b, true)).collect();
    ok_page("Payout beneficiaries fetched", Value::Array(data), page, total, 10)
}

pub async fn get_beneficiary(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    let d = lock(&state.data);
    match id.parse::<i64>().ok().and_then(|id| d.beneficiaries.get(&id)) {
        Some(b) => ok("Payout beneficiary fetched", beneficiary_json(b, true)),
        None => bad("Beneficiary not found"),
    }
}

pub async fn delete_beneficiary(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    let mut d = lock(&state.data);
    match id.parse::<i64>().ok().and_then(|id| d.beneficiaries.remove(&id)) {
        Some(_) => ok("Beneficiary deleted", json!("Deleted")),
        None => bad("Beneficiary not found"),
    }
}

fn balance_json(currency: &str, (available, ledger): (Decimal, Decimal)) -> Value {
    json!({"currency": currency, "available_balance": num(available), "ledger_balance": num(ledger)})
}

pub async fn balances(State(state): State<Shared>) -> Response {
    let d = lock(&state.data);
    ok("Wallet balances fetched", d.balances.iter().map(|(c, b)| balance_json(c, *b)).collect())
}

pub async fn balance(State(state): State<Shared>, Path(currency): Path<String>) -> Response {
    let d = lock(&state.data);
    match d.balances.get(&currency.to_ascii_uppercase()) {
        Some(b) => ok("Wallet balance fetched", balance_json(&currency.to_ascii_uppercase(), *b)),
        None => bad("Invalid currency"),
    }
}

#[cfg(test)]
mod tests {
    use super::scripted_outcome;

    #[test]
    fn test_reference_suffixes() {
        assert_eq!(scripted_outcome("payout-1_PMCK"), Some((true, 10)));
        assert_eq!(scripted_outcome("payout-1_PMCKDU_1"), Some((true, 1)));
        assert_eq!(scripted_outcome("x_PMCK_ST_F"), Some((false, 10)));
        assert_eq!(scripted_outcome("x_PMCK_ST_FDU_1"), Some((false, 1)));
        assert_eq!(scripted_outcome("plain-ref"), None);
        assert_eq!(scripted_outcome("x_PMCKDU_x"), None);
    }
}
