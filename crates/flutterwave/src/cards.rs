//! Virtual cards (issuing). Card PAN and CVV arrive in clear: `Card`'s
//! `Debug` masks them, and callers should store neither.

use std::fmt;

use reqwest::Method;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use crate::client::{Client, Reply, Retry, seg};
use crate::lenient;
use crate::money::{Amount, lenient_amount};

#[derive(Debug, Clone, Serialize)]
pub struct CardRequest {
    pub currency: String,
    pub amount: Amount,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debit_currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub billing_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub billing_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub billing_city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub billing_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub billing_postal_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub billing_country: Option<String>,
    pub first_name: String,
    pub last_name: String,
    /// `YYYY/MM/DD`.
    pub date_of_birth: String,
    pub email: String,
    pub phone: String,
    /// `MR`, `MRS` or `MISS`.
    pub title: String,
    /// `M` or `F`.
    pub gender: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
}

#[derive(Clone, Deserialize)]
pub struct Card {
    #[serde(deserialize_with = "lenient::text")]
    pub id: String,
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub account_id: Option<i64>,
    /// Sent as a string (`"5.00"`).
    pub amount: Amount,
    pub currency: String,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub card_hash: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub card_pan: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub masked_pan: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub cvv: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub expiration: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub card_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub name_on_card: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub created_at: Option<String>,
    #[serde(default, deserialize_with = "lenient::flag")]
    pub is_active: bool,
}

impl fmt::Debug for Card {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Card")
            .field("id", &self.id)
            .field("masked_pan", &self.masked_pan)
            .field("amount", &self.amount)
            .field("currency", &self.currency)
            .field("is_active", &self.is_active)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct CardTransaction {
    #[serde(deserialize_with = "lenient::text")]
    pub id: String,
    pub amount: Amount,
    #[serde(default, deserialize_with = "lenient_amount")]
    pub fee: Option<Amount>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub reference: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub narration: Option<String>,
    /// `C` (credit) or `D` (debit).
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub indicator: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub status: Option<String>,
    /// Why it was declined, when it was.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub response_message: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub currency: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub created_at: Option<String>,
}

#[derive(Serialize)]
struct FundRequest<'a> {
    debit_currency: &'a str,
    amount: Amount,
}

#[derive(Serialize)]
struct WithdrawRequest {
    amount: Amount,
}

impl Client {
    pub async fn create_card(&self, req: &CardRequest) -> Reply<Card> {
        self.send(Method::POST, "/virtual-cards", Some(req), Retry::NotProcessedOnly).await
    }

    pub async fn get_card(&self, id: &str) -> Reply<Card> {
        self.get(&format!("/virtual-cards/{}", seg(id)), &[]).await
    }

    pub async fn list_cards(&self) -> Reply<Vec<Card>> {
        self.get("/virtual-cards", &[]).await
    }

    pub async fn fund_card(&self, id: &str, debit_currency: &str, amount: Amount) -> Reply<()> {
        let body = FundRequest { debit_currency, amount };
        self.send(Method::POST, &format!("/virtual-cards/{}/fund", seg(id)), Some(&body), Retry::NotProcessedOnly)
            .await
            .map(|_: IgnoredAny| ())
    }

    pub async fn withdraw_from_card(&self, id: &str, amount: Amount) -> Reply<()> {
        let body = WithdrawRequest { amount };
        self.send(Method::POST, &format!("/virtual-cards/{}/withdraw", seg(id)), Some(&body), Retry::NotProcessedOnly)
            .await
            .map(|_: IgnoredAny| ())
    }

    pub async fn block_card(&self, id: &str) -> Reply<()> {
        self.send::<IgnoredAny, ()>(Method::PUT, &format!("/virtual-cards/{}/status/block", seg(id)), None, Retry::Safe)
            .await
            .map(|_| ())
    }

    pub async fn unblock_card(&self, id: &str) -> Reply<()> {
        self.send::<IgnoredAny, ()>(
            Method::PUT,
            &format!("/virtual-cards/{}/status/unblock", seg(id)),
            None,
            Retry::Safe,
        )
        .await
        .map(|_| ())
    }

    pub async fn terminate_card(&self, id: &str) -> Reply<()> {
        self.send::<IgnoredAny, ()>(Method::PUT, &format!("/virtual-cards/{}/terminate", seg(id)), None, Retry::Safe)
            .await
            .map(|_| ())
    }

    /// `GET /virtual-cards/{id}/transactions?from=&to=&index=&size=`.
    pub async fn card_transactions(
        &self,
        id: &str,
        from: &str,
        to: &str,
        index: u32,
        size: u32,
    ) -> Reply<Vec<CardTransaction>> {
        let q = [
            ("from", from.to_string()),
            ("to", to.to_string()),
            ("index", index.to_string()),
            ("size", size.to_string()),
        ];
        self.get(&format!("/virtual-cards/{}/transactions", seg(id)), &q).await
    }
}
