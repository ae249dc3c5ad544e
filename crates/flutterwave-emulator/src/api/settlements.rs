//! Settlements: the emulator pays out its successful transactions the next day
//! (on its own clock — made when the list or a settlement is read), or at once
//! through the control surface (`POST /_emulator/settlements`). One settlement
//! per currency nets Flutterwave's fee with its VAT, stamp duty, and the
//! refunds and chargebacks not netted before. Drills make the discrepancies a
//! reconciler must find: a line dropped (that transaction is never settled), a
//! foreign line, an amount changed, a refund or chargeback nobody made.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::transactions::{amount_settled, stamp_duty};
use super::{bad, num, ok, ok_page, page_of};
use crate::state::{Data, Settlement, SettlementLine, Shared, lock};
use crate::time::{date, iso};

const DAY_MS: i64 = 86_400_000;

/// The discrepancies a drill makes in the next settlement.
pub const DRILLS: [&str; 5] = ["drop_line", "foreign_line", "change_amount", "foreign_refund", "foreign_chargeback"];

fn line_of(t: &crate::state::Txn) -> SettlementLine {
    let settled = amount_settled(t).unwrap_or_default();
    let stamp = stamp_duty(t);
    SettlementLine {
        transaction_id: t.id,
        tx_ref: t.tx_ref.clone(),
        flw_ref: t.flw_ref.clone(),
        customer_email: t.customer_email.clone(),
        payment_type: t.payment_type.clone(),
        charged_amount: t.charged_amount,
        // What is not settled and not stamp duty is Flutterwave's fee with its VAT.
        app_fee: t.charged_amount - settled - stamp,
        stampduty: stamp,
        settlement_amount: settled,
        created_ms: t.created_ms,
    }
}

/// Makes one settlement per currency of the successful transactions made before
/// `before_ms` and not settled yet; applies `drill` to the first one made.
pub fn settle(d: &mut Data, now: i64, before_ms: i64, currency: Option<&str>, drill: Option<&str>) -> Vec<Settlement> {
    let mut by_currency: std::collections::BTreeMap<String, Vec<SettlementLine>> = Default::default();
    for t in d.transactions.values() {
        if t.status == "successful"
            && t.created_ms < before_ms
            && !d.settled.contains(&t.id)
            && currency.is_none_or(|c| c.eq_ignore_ascii_case(&t.currency))
        {
            by_currency.entry(t.currency.clone()).or_default().push(line_of(t));
        }
    }
    let mut made = Vec::new();
    for (cur, lines) in by_currency {
        let refunds: Vec<(i64, Decimal)> = d
            .refunds
            .values()
            .filter(|r| r.currency == cur && r.status == "completed" && !d.netted_refunds.contains(&r.id))
            .map(|r| (r.id, r.amount))
            .collect();
        let chargebacks: Vec<(i64, Decimal)> = d
            .chargebacks
            .values()
            .filter(|c| c.currency == cur && c.status != "won" && !d.netted_chargebacks.contains(&c.id))
            .map(|c| (c.id, c.amount))
            .collect();
        for l in &lines {
            d.settled.insert(l.transaction_id);
        }
        d.netted_refunds.extend(refunds.iter().map(|r| r.0));
        d.netted_chargebacks.extend(chargebacks.iter().map(|c| c.0));
        let id = d.id();
        made.push(Settlement { id, currency: cur, created_ms: now, lines, refunds, chargebacks });
    }
    if let (Some(drill), Some(first)) = (drill, made.first_mut()) {
        let foreign = d.next_id + 500_000;
        d.next_id += 1;
        match drill {
            "drop_line" => {
                // The transaction stays marked settled: it is withheld from every later settlement.
                first.lines.pop();
            }
            "foreign_line" => first.lines.push(SettlementLine {
                transaction_id: foreign,
                tx_ref: format!("foreign-{foreign}"),
                flw_ref: format!("FLW-FOREIGN-{foreign}"),
                customer_email: "someone-else@example.com".into(),
                payment_type: "card".into(),
                charged_amount: Decimal::from(1000),
                app_fee: Decimal::from(14),
                stampduty: Decimal::ZERO,
                settlement_amount: Decimal::from(986),
                created_ms: now,
            }),
            "change_amount" => {
                // One more unit of fee: the line still adds up, but differs from verify's `amount_settled`.
                if let Some(l) = first.lines.first_mut() {
                    l.settlement_amount -= Decimal::ONE;
                    l.app_fee += Decimal::ONE;
                }
            }
            "foreign_refund" => first.refunds.push((foreign, Decimal::from(100))),
            "foreign_chargeback" => first.chargebacks.push((foreign, Decimal::from(100))),
            _ => {}
        }
    }
    for s in &made {
        d.settlements.insert(s.id, s.clone());
    }
    made
}

/// Transactions of days before today (on the emulator's clock) are settled when anything asks.
fn settle_due(state: &Shared) {
    let now = state.clock.now_ms();
    let today = now.div_euclid(DAY_MS) * DAY_MS;
    settle(&mut lock(&state.data), now, today, None, None);
}

pub fn settlement_json(s: &Settlement, with_lines: bool) -> Value {
    let sum = |f: fn(&SettlementLine) -> Decimal| s.lines.iter().map(f).sum::<Decimal>();
    let gross = sum(|l| l.charged_amount);
    let (fee, stamp) = (sum(|l| l.app_fee), sum(|l| l.stampduty));
    let refund: Decimal = s.refunds.iter().map(|r| r.1).sum();
    let chargeback: Decimal = s.chargebacks.iter().map(|c| c.1).sum();
    let first = s.lines.iter().map(|l| l.created_ms).min().unwrap_or(s.created_ms);
    let ids: Vec<i64> = s.lines.iter().map(|l| l.transaction_id).collect();
    let mut v = json!({
        "id": s.id, "account_id": 73, "merchant_name": "Emulated merchant", "settlement_account": "0690000031",
        "bank_code": "044", "transaction_date": date(first), "due_date": date(s.created_ms),
        "processed_date": iso(s.created_ms), "status": "completed", "is_local": 1, "currency": s.currency,
        "gross_amount": num(gross), "app_fee": num(fee), "merchant_fee": 0, "chargeback": num(chargeback),
        "refund": num(refund), "stampduty_charge": num(stamp),
        "net_amount": num(gross - fee - stamp - refund - chargeback), "transaction_count": s.lines.len(),
        "disburse_ref": format!("SETT-{}", s.id), "channel": "card", "destination": "account",
        // Real answers have sent `meta` as a JSON string.
        "meta": serde_json::to_string(&ids).unwrap_or_default(),
        "refund_meta": s.refunds.iter().map(|r| r.0).collect::<Vec<_>>(),
        "chargeback_meta": s.chargebacks.iter().map(|c| c.0).collect::<Vec<_>>(),
        "created_at": iso(s.created_ms),
    });
    if with_lines {
        v["transactions"] = s
            .lines
            .iter()
            .map(|l| {
                json!({
                    "customer_email": l.customer_email, "flw_ref": l.flw_ref, "tx_ref": l.tx_ref,
                    "id": l.transaction_id, "charged_amount": num(l.charged_amount), "app_fee": num(l.app_fee),
                    "merchant_fee": 0, "stampduty_charge": num(l.stampduty),
                    "settlement_amount": num(l.settlement_amount), "status": "successful",
                    "payment_entity": l.payment_type, "transaction_date": iso(l.created_ms),
                    "currency": s.currency, "card_locale": "LOCAL", "rrn": format!("{}", l.transaction_id),
                    "subaccount_settlement": 0,
                })
            })
            .collect();
    }
    v
}

/// `GET /settlements?page=&from=&to=` (by the day it was made, inclusive), newest first, ten a page.
pub async fn list(State(state): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    settle_due(&state);
    let page = page_of(&q);
    let (from, to) = (q.get("from").cloned(), q.get("to").cloned());
    let d = lock(&state.data);
    let rows: Vec<&Settlement> = d
        .settlements
        .values()
        .rev()
        .filter(|s| from.as_deref().is_none_or(|f| date(s.created_ms).as_str() >= f))
        .filter(|s| to.as_deref().is_none_or(|t| date(s.created_ms).as_str() <= t))
        .collect();
    let total = rows.len();
    let data = rows.iter().skip((page - 1) * 10).take(10).map(|s| settlement_json(s, false)).collect();
    ok_page("Settlements fetched", Value::Array(data), page, total, 10)
}

/// `GET /settlements/{id}`: with its transactions.
pub async fn get_one(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    settle_due(&state);
    let d = lock(&state.data);
    match id.parse::<i64>().ok().and_then(|id| d.settlements.get(&id)) {
        Some(s) => ok("Settlement fetched", settlement_json(s, true)),
        None => bad("Settlement not found"),
    }
}
