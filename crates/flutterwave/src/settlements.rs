//! Settlements (v3): Flutterwave pays collected money to the merchant's bank in
//! batches, net of its fees, stamp duty, refunds and chargebacks. There is no
//! settlement webhook: Sika polls. No real payload is in the corpus yet (see
//! the fact sheet §14), so every field is read leniently: ids as numbers or
//! text, id lists as arrays or as a JSON string (`"[1,2]"`), `is_local` as
//! `true` or `1`, and a fee that is absent is read as zero.

use serde::{Deserialize, Deserializer};

use crate::client::{Client, Page, Reply};
use crate::money::{Amount, lenient_amount};

fn zero_if_absent<'de, D: Deserializer<'de>>(d: D) -> Result<Amount, D::Error> {
    Ok(lenient_amount(d)?.unwrap_or(Amount::ZERO))
}

/// A list of ids sent as `[1, "2"]`, as the JSON text `"[1,2]"`, as `"1,2"`, or as null.
fn ids<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i64>, D::Error> {
    fn of(v: &serde_json::Value) -> Option<i64> {
        match v {
            serde_json::Value::Number(n) => n.as_i64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::Array(items)) => items.iter().filter_map(of).collect(),
        Some(serde_json::Value::String(s)) => match serde_json::from_str::<serde_json::Value>(&s) {
            Ok(serde_json::Value::Array(items)) => items.iter().filter_map(of).collect(),
            _ => s.split(',').filter_map(|p| p.trim().parse().ok()).collect(),
        },
        Some(v @ serde_json::Value::Number(_)) => of(&v).into_iter().collect(),
        _ => Vec::new(),
    })
}

/// One transaction a settlement paid out (`transactions` of `GET /settlements/{id}`).
#[derive(Debug, Clone, Deserialize)]
pub struct SettlementLine {
    /// Flutterwave's transaction id.
    #[serde(deserialize_with = "crate::lenient::id")]
    pub id: i64,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub tx_ref: String,
    #[serde(default, deserialize_with = "crate::lenient::opt_text")]
    pub flw_ref: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::opt_text")]
    pub currency: Option<String>,
    pub charged_amount: Amount,
    #[serde(default, deserialize_with = "zero_if_absent")]
    pub app_fee: Amount,
    #[serde(default, deserialize_with = "zero_if_absent")]
    pub merchant_fee: Amount,
    #[serde(default, deserialize_with = "zero_if_absent")]
    pub stampduty_charge: Amount,
    /// What reached the merchant for this transaction, as Flutterwave says it.
    pub settlement_amount: Amount,
    #[serde(default, deserialize_with = "crate::lenient::opt_text")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::opt_text")]
    pub transaction_date: Option<String>,
}

/// A settlement as `GET /settlements` lists it (and `GET /settlements/{id}` with its lines).
#[derive(Debug, Clone, Deserialize)]
pub struct Settlement {
    #[serde(deserialize_with = "crate::lenient::id")]
    pub id: i64,
    /// `completed`, `pending`, `flagged`, or another word, as sent.
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub status: String,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub currency: String,
    pub gross_amount: Amount,
    #[serde(default, deserialize_with = "zero_if_absent")]
    pub app_fee: Amount,
    #[serde(default, deserialize_with = "zero_if_absent")]
    pub merchant_fee: Amount,
    #[serde(default, deserialize_with = "zero_if_absent")]
    pub chargeback: Amount,
    #[serde(default, deserialize_with = "zero_if_absent")]
    pub refund: Amount,
    #[serde(default, deserialize_with = "zero_if_absent")]
    pub stampduty_charge: Amount,
    pub net_amount: Amount,
    #[serde(default, deserialize_with = "crate::lenient::opt_id")]
    pub transaction_count: Option<i64>,
    #[serde(default, deserialize_with = "crate::lenient::opt_text")]
    pub transaction_date: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::opt_text")]
    pub due_date: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::opt_text")]
    pub processed_date: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::opt_text")]
    pub created_at: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::flag")]
    pub is_local: bool,
    /// The transaction ids it settles.
    #[serde(default, deserialize_with = "ids")]
    pub meta: Vec<i64>,
    /// The refunds it netted.
    #[serde(default, deserialize_with = "ids")]
    pub refund_meta: Vec<i64>,
    /// The chargebacks it netted.
    #[serde(default, deserialize_with = "ids")]
    pub chargeback_meta: Vec<i64>,
    /// Only in `GET /settlements/{id}`.
    #[serde(default)]
    pub transactions: Vec<SettlementLine>,
}

impl Settlement {
    /// When it was paid (or, before that, made), in ms since the epoch, when it can be read.
    pub fn settled_at_ms(&self) -> Option<i64> {
        [&self.processed_date, &self.due_date, &self.created_at]
            .into_iter()
            .flatten()
            .find_map(|d| crate::lenient::iso_millis(d))
    }
}

impl Client {
    /// `GET /settlements?page=[&from=&to=]` (dates `YYYY-MM-DD`): one page.
    pub async fn list_settlements(&self, from: Option<&str>, to: Option<&str>, page: u32) -> Reply<Page<Settlement>> {
        let mut q = vec![("page", page.max(1).to_string())];
        if let Some(f) = from {
            q.push(("from", f.to_string()));
        }
        if let Some(t) = to {
            q.push(("to", t.to_string()));
        }
        self.get_page("/settlements", &q).await
    }

    /// `GET /settlements/{id}`: the settlement with the transactions it paid.
    pub async fn settlement(&self, id: i64) -> Reply<Settlement> {
        self.get(&format!("/settlements/{id}"), &[]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_as_the_fact_sheet_shows_it_is_read_leniently() {
        let row = r#"{
            "id": "4471", "account_id": 73, "merchant_name": "Shop", "settlement_account": "0690000031",
            "bank_code": "044", "transaction_date": "2026-11-30", "due_date": "2026-12-01",
            "processed_date": "2026-12-01T09:00:00.000Z", "status": "completed", "is_local": 1,
            "currency": "NGN", "gross_amount": 30620, "app_fee": 620, "merchant_fee": 0, "chargeback": 0,
            "refund": 20114, "stampduty_charge": 0, "net_amount": 9886, "transaction_count": "2",
            "disburse_ref": "SETT-1", "channel": "card", "destination": "account",
            "meta": "[1001, 1002]", "refund_meta": ["77"], "chargeback_meta": null, "created_at": "2026-12-01T08:00:00Z",
            "transactions": [{"customer_email": "c@example.test", "flw_ref": "FLW-1", "tx_ref": "order-1",
                "id": 1001, "charged_amount": "30000", "app_fee": 600, "merchant_fee": 0, "stampduty_charge": null,
                "settlement_amount": 29400, "status": "successful", "payment_entity": "card",
                "transaction_date": "2026-11-30T10:00:00Z", "currency": "NGN", "card_locale": "LOCAL",
                "rrn": "123", "subaccount_settlement": 0}]
        }"#;
        let s: Settlement = serde_json::from_str(row).unwrap();
        assert_eq!((s.id, s.transaction_count, s.is_local), (4471, Some(2), true));
        assert_eq!((s.meta.clone(), s.refund_meta.clone(), s.chargeback_meta.len()), (vec![1001, 1002], vec![77], 0));
        assert_eq!(s.net_amount.to_string(), "9886");
        assert_eq!(s.settled_at_ms(), crate::lenient::iso_millis("2026-12-01T09:00:00.000Z"));
        let line = &s.transactions[0];
        assert_eq!((line.id, line.tx_ref.as_str(), line.stampduty_charge), (1001, "order-1", Amount::ZERO));
        assert_eq!(line.settlement_amount.to_string(), "29400");
    }

    #[test]
    fn comma_lists_and_missing_fees_read_without_a_guess_at_totals() {
        let s: Settlement = serde_json::from_value(serde_json::json!({
            "id": 1, "gross_amount": "10.50", "net_amount": "10.50", "meta": "5, 6", "refund_meta": 9
        }))
        .unwrap();
        assert_eq!((s.meta, s.refund_meta, s.app_fee), (vec![5, 6], vec![9], Amount::ZERO));
        assert!(
            serde_json::from_value::<Settlement>(serde_json::json!({"id": 1, "gross_amount": 10})).is_err(),
            "a settlement without its net is not read as zero"
        );
    }
}
