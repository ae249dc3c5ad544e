//! Payouts: transfers, bulk transfers, fees, retries, beneficiaries, balances.

use reqwest::Method;
use serde::{Deserialize, Deserializer, Serialize};

use crate::client::{Client, Page, Reply, Retry, seg};
use crate::lenient;
use crate::money::{Amount, lenient_amount};

/// A transfer's business state (upper case in Flutterwave's payloads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferStatus {
    New,
    Pending,
    Successful,
    Failed,
    /// A successful transfer whose money came back (reported by lookups and reversal events).
    Reversed,
    Other(String),
}

impl TransferStatus {
    /// Flutterwave's own word for the state (`NEW`, `PENDING`, ...), as sent for unknown ones.
    pub fn as_str(&self) -> &str {
        match self {
            TransferStatus::New => "NEW",
            TransferStatus::Pending => "PENDING",
            TransferStatus::Successful => "SUCCESSFUL",
            TransferStatus::Failed => "FAILED",
            TransferStatus::Reversed => "REVERSED",
            TransferStatus::Other(s) => s,
        }
    }

    pub fn is_final(&self) -> bool {
        matches!(self, TransferStatus::Successful | TransferStatus::Failed | TransferStatus::Reversed)
    }
}

impl<'de> Deserialize<'de> for TransferStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = lenient::text(d)?;
        Ok(match s.to_ascii_uppercase().as_str() {
            "NEW" => TransferStatus::New,
            "PENDING" => TransferStatus::Pending,
            "SUCCESSFUL" | "SUCCESS" => TransferStatus::Successful,
            "FAILED" => TransferStatus::Failed,
            "REVERSED" => TransferStatus::Reversed,
            _ => TransferStatus::Other(s),
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TransferRequest {
    pub account_bank: String,
    pub account_number: String,
    pub amount: Amount,
    pub currency: String,
    /// One payout = one reference, forever: never generate a new one to retry.
    pub reference: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debit_currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub narration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beneficiary_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_branch_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Transfer {
    #[serde(deserialize_with = "lenient::id")]
    pub id: i64,
    #[serde(default, deserialize_with = "lenient::text")]
    pub account_number: String,
    #[serde(default, deserialize_with = "lenient::text")]
    pub bank_code: String,
    /// `full_name` in REST, `fullname` in webhooks.
    #[serde(default, alias = "fullname", deserialize_with = "lenient::opt_text")]
    pub full_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub created_at: Option<String>,
    pub currency: String,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub debit_currency: Option<String>,
    pub amount: Amount,
    #[serde(default, deserialize_with = "lenient_amount")]
    pub fee: Option<Amount>,
    pub status: TransferStatus,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub reference: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub narration: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub complete_message: Option<String>,
    #[serde(default, deserialize_with = "lenient::flag")]
    pub requires_approval: bool,
    #[serde(default, deserialize_with = "lenient::flag")]
    pub is_approved: bool,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub bank_name: Option<String>,
    #[serde(default)]
    pub meta: serde_json::Value,
}

impl Transfer {
    /// `created_at` in milliseconds since the epoch, when it can be read.
    pub fn created_at_ms(&self) -> Option<i64> {
        self.created_at.as_deref().and_then(crate::lenient::iso_millis)
    }
}

/// What a lookup by reference found.
#[derive(Debug, Clone)]
pub enum TransferLookup {
    Found(Box<Transfer>),
    /// Definitely not in the list: every page that could hold it was read.
    Absent {
        pages: u32,
    },
    /// The page bound was reached first: nobody knows.
    Incomplete {
        pages: u32,
    },
}

/// Whether the rows read so far came newest first, and the oldest time seen.
/// A cut-off by time is only sound when every row read was in that order.
#[derive(Debug)]
struct Order {
    newest_first: bool,
    oldest: Option<i64>,
}

impl Default for Order {
    fn default() -> Self {
        Order { newest_first: true, oldest: None }
    }
}

impl Order {
    fn read(&mut self, rows: &[Transfer]) {
        for t in rows {
            match t.created_at_ms() {
                Some(at) => {
                    if self.oldest.is_some_and(|o| at > o) {
                        self.newest_first = false;
                    }
                    self.oldest = Some(self.oldest.map_or(at, |o| o.min(at)));
                }
                // A row without a readable time: order cannot be trusted.
                None => self.newest_first = false,
            }
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BulkTransferRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub bulk_data: Vec<BulkItem>,
}

/// Bulk items use `bank_code`, not `account_bank`.
#[derive(Debug, Clone, Serialize)]
pub struct BulkItem {
    pub bank_code: String,
    pub account_number: String,
    pub amount: Amount,
    pub currency: String,
    pub narration: String,
    pub reference: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debit_currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beneficiary_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BulkQueued {
    #[serde(deserialize_with = "lenient::id")]
    pub id: i64,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub created_at: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TransferFee {
    pub currency: String,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub fee_type: Option<String>,
    pub fee: Amount,
}

#[derive(Debug, Clone, Serialize)]
pub struct BeneficiaryRequest {
    pub account_bank: String,
    pub account_number: String,
    pub beneficiary_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bank_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Beneficiary {
    #[serde(deserialize_with = "lenient::id")]
    pub id: i64,
    #[serde(default, deserialize_with = "lenient::text")]
    pub account_number: String,
    #[serde(default, deserialize_with = "lenient::text")]
    pub bank_code: String,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub full_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub bank_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub created_at: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Balance {
    pub currency: String,
    pub available_balance: Amount,
    pub ledger_balance: Amount,
}

impl Client {
    /// `POST /transfers`. A timeout or 5xx comes back indefinite and is never
    /// re-sent: settle it with [`Client::get_transfer`] or a list by status.
    pub async fn create_transfer(&self, req: &TransferRequest) -> Reply<Transfer> {
        self.send(Method::POST, "/transfers", Some(req), Retry::NotProcessedOnly).await
    }

    pub async fn get_transfer(&self, id: i64) -> Reply<Transfer> {
        self.get(&format!("/transfers/{id}"), &[]).await
    }

    /// The transfer with this reference, looked up through `GET /transfers`.
    ///
    /// Whether Flutterwave honours a `reference=` filter is unconfirmed, and
    /// the list answers in pages (ten a page, newest first), so the lookup
    /// asks with the filter and then reads page after page, checking every
    /// row's reference, until it finds the transfer or knows it is absent:
    /// an empty page, the last page, or — when the pages are in newest-first
    /// order — a row created before `not_before_ms` (no later page can hold
    /// the transfer). It reads at most `max_pages` pages; past that it says
    /// [`TransferLookup::Incomplete`], never "absent". Every page goes
    /// through the outbound budget; a page without a definite answer makes
    /// the whole lookup indefinite.
    pub async fn find_transfer(
        &self,
        reference: &str,
        not_before_ms: Option<i64>,
        max_pages: u32,
    ) -> Reply<TransferLookup> {
        let mut order = Order::default();
        for page in 1..=max_pages.max(1) {
            let q = [("reference", reference.to_string()), ("page", page.to_string())];
            let listed = match self.get_page::<Transfer>("/transfers", &q).await {
                Reply::Ok(p) => p,
                Reply::Rejected(e) => return Reply::Rejected(e),
                Reply::Indefinite(i) => return Reply::Indefinite(i),
            };
            if let Some(t) = listed.items.iter().find(|t| t.reference.as_deref() == Some(reference)) {
                return Reply::Ok(TransferLookup::Found(Box::new(t.clone())));
            }
            let last_page = listed
                .page_info
                .and_then(|p| Some((p.current_page.unwrap_or(i64::from(page)), p.total_pages?)))
                .is_some_and(|(current, total)| current >= total);
            order.read(&listed.items);
            let older_than_wanted =
                not_before_ms.is_some_and(|t| order.newest_first && order.oldest.is_some_and(|o| o < t));
            if listed.items.is_empty() || last_page || older_than_wanted {
                return Reply::Ok(TransferLookup::Absent { pages: page });
            }
        }
        Reply::Ok(TransferLookup::Incomplete { pages: max_pages.max(1) })
    }

    /// `GET /transfers?page=&status=` (`status` sent lower case).
    pub async fn list_transfers(&self, status: Option<&str>, page: u32) -> Reply<Page<Transfer>> {
        let mut q = vec![("page", page.max(1).to_string())];
        if let Some(s) = status {
            q.push(("status", s.to_ascii_lowercase()));
        }
        self.get_page("/transfers", &q).await
    }

    /// `GET /transfers/fee?amount=&currency=[&type=]`.
    pub async fn transfer_fee(&self, amount: Amount, currency: &str, kind: Option<&str>) -> Reply<Vec<TransferFee>> {
        let mut q = vec![("amount", amount.to_string()), ("currency", currency.to_string())];
        if let Some(k) = kind {
            q.push(("type", k.to_string()));
        }
        self.get("/transfers/fee", &q).await
    }

    /// `POST /transfers/{id}/retries`: only for a transfer that definitely failed.
    pub async fn retry_transfer(&self, id: i64) -> Reply<Transfer> {
        self.send::<Transfer, ()>(Method::POST, &format!("/transfers/{id}/retries"), None, Retry::NotProcessedOnly)
            .await
    }

    pub async fn bulk_transfer(&self, req: &BulkTransferRequest) -> Reply<BulkQueued> {
        self.send(Method::POST, "/bulk-transfers", Some(req), Retry::NotProcessedOnly).await
    }

    pub async fn create_beneficiary(&self, req: &BeneficiaryRequest) -> Reply<Beneficiary> {
        self.send(Method::POST, "/beneficiaries", Some(req), Retry::NotProcessedOnly).await
    }

    pub async fn list_beneficiaries(&self, page: u32) -> Reply<Page<Beneficiary>> {
        self.get_page("/beneficiaries", &[("page", page.max(1).to_string())]).await
    }

    pub async fn get_beneficiary(&self, id: i64) -> Reply<Beneficiary> {
        self.get(&format!("/beneficiaries/{id}"), &[]).await
    }

    pub async fn delete_beneficiary(&self, id: i64) -> Reply<String> {
        self.send::<String, ()>(Method::DELETE, &format!("/beneficiaries/{id}"), None, Retry::Safe).await
    }

    /// `GET /balances`.
    pub async fn balances(&self) -> Reply<Vec<Balance>> {
        self.get("/balances", &[]).await
    }

    /// `GET /balances/{currency}`.
    pub async fn balance(&self, currency: &str) -> Reply<Balance> {
        self.get(&format!("/balances/{}", seg(currency)), &[]).await
    }
}
