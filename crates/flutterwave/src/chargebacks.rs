//! Chargebacks (v3): a customer's bank disputes a payment; Flutterwave debits
//! and holds the amount and expects the merchant's answer by `due_date`.
//! No real payload is in the corpus yet (see the fact sheet §14): every field
//! is read leniently, and a status or stage Sika does not know is kept as sent.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::client::{Client, Page, Reply, Retry};
use crate::money::Amount;

/// Where a chargeback stands at Flutterwave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargebackStatus {
    Initiated,
    Pending,
    Accepted,
    Declined,
    Won,
    Lost,
    /// Anything else, as Flutterwave wrote it.
    Other(String),
}

impl ChargebackStatus {
    /// Every status Sika asks the list for (one integrator reports that a list
    /// without `status` shows only lost ones).
    pub const LISTED: [&'static str; 6] = ["initiated", "pending", "accepted", "declined", "won", "lost"];

    pub fn parse(s: &str) -> Self {
        match s.trim().to_ascii_lowercase().as_str() {
            "initiated" | "new" | "open" => Self::Initiated,
            "pending" => Self::Pending,
            "accepted" => Self::Accepted,
            "declined" => Self::Declined,
            "won" => Self::Won,
            "lost" => Self::Lost,
            _ => Self::Other(s.trim().to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Initiated => "initiated",
            Self::Pending => "pending",
            Self::Accepted => "accepted",
            Self::Declined => "declined",
            Self::Won => "won",
            Self::Lost => "lost",
            Self::Other(s) => s,
        }
    }

    /// Won or lost: nothing more will happen to it.
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Won | Self::Lost)
    }
}

impl<'de> Deserialize<'de> for ChargebackStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::parse(&crate::lenient::text(d)?))
    }
}

/// One entry of a chargeback's history, as Flutterwave keeps it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct HistoryEntry {
    /// `action` or `initiator`, whichever was sent.
    #[serde(default, alias = "initiator", deserialize_with = "crate::lenient::text")]
    pub action: String,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub stage: String,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub date: String,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub description: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ChargebackMeta {
    #[serde(default, deserialize_with = "crate::lenient::opt_text")]
    pub uploaded_proof: Option<String>,
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
}

fn meta<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ChargebackMeta, D::Error> {
    // `meta` has been seen as an object; tolerate null, an array or a JSON string.
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(v @ serde_json::Value::Object(_)) => serde_json::from_value(v).unwrap_or_default(),
        Some(serde_json::Value::String(s)) => serde_json::from_str(&s).unwrap_or_default(),
        _ => ChargebackMeta::default(),
    })
}

/// A chargeback as `GET /v3/chargebacks` lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct Chargeback {
    #[serde(deserialize_with = "crate::lenient::id")]
    pub id: i64,
    pub amount: Amount,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub flw_ref: String,
    pub status: ChargebackStatus,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub stage: String,
    #[serde(default, deserialize_with = "crate::lenient::opt_text")]
    pub comment: Option<String>,
    /// When the merchant's answer is due (ISO-8601, as sent).
    #[serde(default, deserialize_with = "crate::lenient::opt_text")]
    pub due_date: Option<String>,
    /// `"N/A"` until a settlement nets it.
    #[serde(default, deserialize_with = "crate::lenient::opt_text")]
    pub settlement_id: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::opt_text")]
    pub created_at: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::opt_id")]
    pub transaction_id: Option<i64>,
    #[serde(default, deserialize_with = "crate::lenient::opt_text")]
    pub tx_ref: Option<String>,
    #[serde(default, deserialize_with = "meta")]
    pub meta: ChargebackMeta,
}

impl Chargeback {
    /// The due date in ms since the epoch, when it can be read.
    pub fn due_at_ms(&self) -> Option<i64> {
        self.due_date.as_deref().and_then(crate::lenient::iso_millis)
    }
}

/// The merchant's answer to a chargeback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Answer {
    /// The merchant agrees: the customer keeps the money.
    Accept,
    /// The merchant disputes it, with a comment and evidence.
    Decline,
}

#[derive(Debug, Clone, Serialize)]
pub struct AnswerRequest {
    pub action: Answer,
    pub comment: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prooflink: Option<String>,
}

impl Client {
    /// `GET /chargebacks?page=&status=[&flw_ref=]`: one page, newest first (as Flutterwave orders it).
    pub async fn list_chargebacks(
        &self,
        status: Option<&str>,
        flw_ref: Option<&str>,
        page: u32,
    ) -> Reply<Page<Chargeback>> {
        let mut q = vec![("page", page.max(1).to_string())];
        if let Some(s) = status {
            q.push(("status", s.to_string()));
        }
        if let Some(r) = flw_ref {
            q.push(("flw_ref", r.to_string()));
        }
        self.get_page("/chargebacks", &q).await
    }

    /// `POST /upload_image` (multipart, field `image`): the evidence file; Flutterwave's link to it.
    /// Uploading again is harmless (another copy), so it is retried like a read.
    pub async fn upload_evidence(&self, file_name: &str, content_type: &str, bytes: &[u8]) -> Reply<String> {
        self.send_file("/upload_image", "image", file_name, content_type, bytes).await
    }

    /// `PUT /chargebacks/{id}`: answers once. A timeout is indefinite (looked up
    /// through the list, never sent again).
    pub async fn answer_chargeback(&self, id: i64, answer: &AnswerRequest) -> Reply<Chargeback> {
        self.send(Method::PUT, &format!("/chargebacks/{id}"), Some(answer), Retry::NotProcessedOnly).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_as_the_fact_sheet_shows_it_is_read_leniently() {
        let row = serde_json::json!({
            "id": "1337", "amount": 3000, "flw_ref": "FLW-MOCK-1", "status": "initiated", "stage": "new",
            "comment": null, "due_date": "2026-12-05T10:00:00.000Z", "settlement_id": "N/A",
            "created_at": "2026-12-03T10:00:00.000Z", "transaction_id": "4242", "tx_ref": "order-9",
            "meta": {"uploaded_proof": null, "history": [
                {"initiator": "merchant", "stage": "new", "date": "2026-12-03", "description": "Dispute transaction"},
                {"action": "initiated", "stage": "new", "date": "2026-12-03", "description": "Debit and hold chargeback amount", "source": "availablebalance"}
            ]}
        });
        let c: Chargeback = serde_json::from_value(row).unwrap();
        assert_eq!((c.id, c.transaction_id, c.tx_ref.as_deref()), (1337, Some(4242), Some("order-9")));
        assert_eq!((c.status.clone(), c.settlement_id.clone()), (ChargebackStatus::Initiated, None));
        assert_eq!(c.meta.history.len(), 2);
        assert_eq!(c.meta.history[0].action, "merchant");
        assert_eq!(c.due_at_ms(), crate::lenient::iso_millis("2026-12-05T10:00:00.000Z"));
    }

    #[test]
    fn unknown_statuses_and_odd_meta_are_kept_not_refused() {
        let c: Chargeback = serde_json::from_value(serde_json::json!({
            "id": 1, "amount": "10.50", "status": "Arbitration", "meta": "[]", "due_date": "soon"
        }))
        .unwrap();
        assert_eq!(c.status, ChargebackStatus::Other("Arbitration".into()));
        assert!(c.meta.history.is_empty());
        assert_eq!(c.due_at_ms(), None, "an unreadable due date decides nothing");
        assert!(ChargebackStatus::parse("LOST").is_final());
    }
}
