//! Standard (hosted) checkout: `POST /payments`.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::client::{Client, Reply, Retry};
use crate::money::Amount;

#[derive(Debug, Clone, Serialize)]
pub struct PaymentRequest {
    pub tx_ref: String,
    pub amount: Amount,
    pub currency: String,
    pub redirect_url: String,
    pub customer: PaymentCustomer,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customizations: Option<Customizations>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_options: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_duration: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_retry_attempt: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PaymentCustomer {
    pub email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// No underscore here, unlike elsewhere in the API.
    #[serde(rename = "phonenumber", skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Customizations {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HostedLink {
    pub link: String,
}

impl Client {
    /// Creates a hosted checkout link. Safe to retry: a second link for the same
    /// `tx_ref` moves no money, and verification is by `tx_ref` anyway.
    pub async fn create_payment(&self, req: &PaymentRequest) -> Reply<HostedLink> {
        self.send(Method::POST, "/payments", Some(req), Retry::Safe).await
    }
}
