//! Banks, branches and account resolution.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::client::{Client, Reply, Retry, seg};
use crate::lenient;

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Bank {
    #[serde(deserialize_with = "lenient::id")]
    pub id: i64,
    /// 3 to 6 characters: `"044"`, `"999992"`, `"MPS"`.
    #[serde(deserialize_with = "lenient::text")]
    pub code: String,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Branch {
    #[serde(deserialize_with = "lenient::id")]
    pub id: i64,
    #[serde(deserialize_with = "lenient::text")]
    pub branch_code: String,
    pub branch_name: String,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub swift_code: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub bic: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub bank_id: Option<i64>,
}

/// `POST /accounts/resolve`. For M-Pesa set `kind: Some("MOBILEMONEY")`,
/// `country: Some("KE")` and `account_bank: "MPS"`.
#[derive(Debug, Clone, Serialize)]
pub struct ResolveRequest {
    pub account_number: String,
    pub account_bank: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ResolvedAccount {
    #[serde(deserialize_with = "lenient::text")]
    pub account_number: String,
    pub account_name: String,
}

impl Client {
    /// `GET /banks/{country}` (ISO-2).
    pub async fn banks(&self, country: &str) -> Reply<Vec<Bank>> {
        self.get(&format!("/banks/{}", seg(country)), &[]).await
    }

    /// `GET /banks/{id}/branches`: `id` is the bank's id, not its code.
    pub async fn bank_branches(&self, bank_id: i64) -> Reply<Vec<Branch>> {
        self.get(&format!("/banks/{bank_id}/branches"), &[]).await
    }

    pub async fn resolve_account(&self, req: &ResolveRequest) -> Reply<ResolvedAccount> {
        self.send(Method::POST, "/accounts/resolve", Some(req), Retry::Safe).await
    }
}
