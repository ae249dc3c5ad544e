//! Collections: verify, list, refund, resend webhook.

use reqwest::Method;
use serde::{Deserialize, Deserializer, Serialize};

use crate::client::{Client, Page, Reply, Retry};
use crate::lenient;
use crate::money::{Amount, lenient_amount};

/// A transaction's business state (lower case in Flutterwave's payloads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxStatus {
    Successful,
    Failed,
    Pending,
    Other(String),
}

impl TxStatus {
    /// Flutterwave's own word for the state, as sent for unknown ones.
    pub fn as_str(&self) -> &str {
        match self {
            TxStatus::Successful => "successful",
            TxStatus::Failed => "failed",
            TxStatus::Pending => "pending",
            TxStatus::Other(s) => s,
        }
    }
}

impl<'de> Deserialize<'de> for TxStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = lenient::text(d)?;
        Ok(match s.to_ascii_lowercase().as_str() {
            "successful" | "success" => TxStatus::Successful,
            "failed" => TxStatus::Failed,
            "pending" => TxStatus::Pending,
            _ => TxStatus::Other(s),
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Transaction {
    #[serde(deserialize_with = "lenient::id")]
    pub id: i64,
    pub tx_ref: String,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub flw_ref: Option<String>,
    pub amount: Amount,
    pub currency: String,
    #[serde(default, deserialize_with = "lenient_amount")]
    pub charged_amount: Option<Amount>,
    #[serde(default, deserialize_with = "lenient_amount")]
    pub app_fee: Option<Amount>,
    #[serde(default, deserialize_with = "lenient_amount")]
    pub merchant_fee: Option<Amount>,
    #[serde(default, deserialize_with = "lenient_amount")]
    pub amount_settled: Option<Amount>,
    pub status: TxStatus,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub payment_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub processor_response: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub created_at: Option<String>,
    #[serde(default)]
    pub customer: Option<TxCustomer>,
    #[serde(default)]
    pub card: Option<CardSummary>,
    /// `null`, an object, or a one-element array, as sent.
    #[serde(default)]
    pub meta: serde_json::Value,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TxCustomer {
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub id: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub phone_number: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CardSummary {
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub first_6digits: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub last_4digits: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub issuer: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub country: Option<String>,
    #[serde(default, rename = "type", deserialize_with = "lenient::opt_text")]
    pub card_type: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RefundRequest {
    /// `None` refunds in full.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<Amount>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comments: Option<String>,
}

/// A refund as the create call, `GET /refunds/{id}` and `GET /refunds` show it.
/// The lookups' shapes are unconfirmed: field names of the flat refund webhook
/// are accepted too, and only `id` and `status` are required.
#[derive(Debug, Clone, Deserialize)]
pub struct Refund {
    #[serde(deserialize_with = "lenient::id")]
    pub id: i64,
    #[serde(default, alias = "TransactionId", alias = "transaction_id", deserialize_with = "lenient::opt_id")]
    pub tx_id: Option<i64>,
    #[serde(default, alias = "FlwRef", deserialize_with = "lenient::opt_text")]
    pub flw_ref: Option<String>,
    #[serde(default, alias = "AmountRefunded", alias = "amount", deserialize_with = "lenient_amount")]
    pub amount_refunded: Option<Amount>,
    #[serde(deserialize_with = "lenient::text")]
    pub status: String,
    #[serde(default, alias = "createdAt", deserialize_with = "lenient::opt_text")]
    pub created_at: Option<String>,
}

impl Client {
    /// `GET /transactions/{id}/verify`.
    pub async fn verify_transaction(&self, id: i64) -> Reply<Transaction> {
        self.get(&format!("/transactions/{id}/verify"), &[]).await
    }

    /// `GET /transactions/verify_by_reference?tx_ref=`.
    pub async fn verify_by_reference(&self, tx_ref: &str) -> Reply<Transaction> {
        self.get("/transactions/verify_by_reference", &[("tx_ref", tx_ref.to_string())]).await
    }

    /// `GET /transactions?from=&to=&page=` (dates as `YYYY-MM-DD`).
    pub async fn list_transactions(&self, from: Option<&str>, to: Option<&str>, page: u32) -> Reply<Page<Transaction>> {
        let mut q = vec![("page", page.max(1).to_string())];
        if let Some(f) = from {
            q.push(("from", f.to_string()));
        }
        if let Some(t) = to {
            q.push(("to", t.to_string()));
        }
        self.get_page("/transactions", &q).await
    }

    /// `POST /transactions/{id}/refund`. Moves money: never re-sent after a timeout.
    pub async fn refund(&self, id: i64, req: &RefundRequest) -> Reply<Refund> {
        self.send(Method::POST, &format!("/transactions/{id}/refund"), Some(req), Retry::NotProcessedOnly).await
    }

    /// `GET /refunds/{id}`: one refund's current state.
    pub async fn get_refund(&self, id: i64) -> Reply<Refund> {
        self.get(&format!("/refunds/{id}"), &[]).await
    }

    /// `GET /refunds?page=` (newest first), optionally from a date (`YYYY-MM-DD`).
    pub async fn list_refunds(&self, from: Option<&str>, page: u32) -> Reply<Page<Refund>> {
        let mut q = vec![("page", page.max(1).to_string())];
        if let Some(f) = from {
            q.push(("from", f.to_string()));
        }
        self.get_page("/refunds", &q).await
    }

    /// `POST /transactions/{id}/resend-hook`.
    pub async fn resend_hook(&self, id: i64) -> Reply<String> {
        self.send::<String, ()>(Method::POST, &format!("/transactions/{id}/resend-hook"), None, Retry::Safe).await
    }
}
