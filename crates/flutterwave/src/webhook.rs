//! Webhooks: verifying that Flutterwave sent them, and parsing every payload
//! family into one enum. Parsing never fails: what is not understood is kept,
//! raw, as [`WebhookEvent::Unknown`]. A webhook is a hint, never proof of
//! payment: verify the transaction before giving value.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

use crate::lenient;
use crate::money::{Amount, lenient_amount};
use crate::transactions::TxStatus;
use crate::transfers::TransferStatus;

/// Header carrying the secret hash verbatim.
pub const VERIF_HASH_HEADER: &str = "verif-hash";
/// Newer header: base64 HMAC-SHA256 of the raw body keyed by the secret hash
/// (some accounts send the plain secret hash here instead; both are accepted).
pub const SIGNATURE_HEADER: &str = "flutterwave-signature";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureCheck {
    Valid,
    /// Neither header was present.
    Missing,
    /// A header was present and did not match.
    Invalid,
    /// No secret hash is configured: nothing can be trusted (fail closed).
    NoSecretConfigured,
}

/// Checks the headers of a delivery against the configured secret hash, in
/// constant time. Valid when any present header proves knowledge of the secret.
pub fn verify_signature(
    secret_hash: Option<&str>,
    verif_hash: Option<&[u8]>,
    signature: Option<&[u8]>,
    raw_body: &[u8],
) -> SignatureCheck {
    let Some(secret) = secret_hash.filter(|s| !s.is_empty()) else {
        return SignatureCheck::NoSecretConfigured;
    };
    if verif_hash.is_none() && signature.is_none() {
        return SignatureCheck::Missing;
    }
    let mut valid = false;
    if let Some(h) = verif_hash {
        valid |= bool::from(h.ct_eq(secret.as_bytes()));
    }
    if let Some(sig) = signature {
        let expected = hmac_signature(secret, raw_body);
        valid |= bool::from(sig.ct_eq(expected.as_bytes())) | bool::from(sig.ct_eq(secret.as_bytes()));
    }
    if valid { SignatureCheck::Valid } else { SignatureCheck::Invalid }
}

/// `base64(HMAC-SHA256(key = secret hash, message = raw body))`.
pub fn hmac_signature(secret_hash: &str, raw_body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret_hash.as_bytes()) else {
        return String::new(); // HMAC takes keys of any length; this cannot happen.
    };
    mac.update(raw_body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[derive(Debug, Clone, PartialEq)]
pub enum WebhookEvent {
    /// `charge.completed` (success and failure alike), or the legacy flat form.
    Charge(ChargeEvent),
    /// `transfer.completed` (success and failure alike).
    Transfer(TransferEvent),
    /// Virtual-card debit/OTP events: no `event` key, PascalCase fields.
    Card(CardEvent),
    Refund(RefundEvent),
    /// Something that looks like a chargeback notification (its shape is
    /// unconfirmed): only a hint to look the chargeback up by `flw_ref`.
    ChargebackHint {
        flw_ref: String,
    },
    /// Anything else, kept byte for byte.
    Unknown {
        event: Option<String>,
        raw: Vec<u8>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChargeEvent {
    pub id: i64,
    pub tx_ref: String,
    pub flw_ref: Option<String>,
    pub amount: Option<Amount>,
    pub currency: Option<String>,
    pub status: TxStatus,
    /// The legacy flat payload (no `event`/`data` wrapper).
    pub legacy: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TransferEvent {
    pub id: i64,
    pub reference: Option<String>,
    pub status: TransferStatus,
    pub amount: Option<Amount>,
    pub currency: Option<String>,
    pub fee: Option<Amount>,
    pub complete_message: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CardEvent {
    pub card_id: String,
    pub amount: Option<Amount>,
    pub transaction_id: Option<String>,
    pub status: Option<String>,
    /// `Debit` or `Credit`.
    pub kind: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RefundEvent {
    pub id: i64,
    pub transaction_id: Option<i64>,
    pub amount_refunded: Option<Amount>,
    pub status: Option<String>,
}

#[derive(Deserialize)]
struct Probe {
    #[serde(default, deserialize_with = "lenient::opt_text")]
    event: Option<String>,
    #[serde(default)]
    data: Option<Box<RawValue>>,
    #[serde(default, rename = "txRef")]
    tx_ref: Option<IgnoredAny>,
    #[serde(default, rename = "CardId")]
    card_id: Option<IgnoredAny>,
    #[serde(default, rename = "AmountRefunded")]
    amount_refunded: Option<IgnoredAny>,
    /// The legacy transfer shape: `{"event.type": "Transfer", "transfer": {...}}`.
    #[serde(default)]
    transfer: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct HintFields {
    #[serde(deserialize_with = "lenient::text")]
    flw_ref: String,
}

/// The charge fields of both the wrapped form and the legacy flat one
/// (`txRef`/`flwRef` there).
#[derive(Deserialize)]
struct ChargeFields {
    #[serde(deserialize_with = "lenient::id")]
    id: i64,
    #[serde(alias = "txRef", deserialize_with = "lenient::text")]
    tx_ref: String,
    #[serde(default, alias = "flwRef", deserialize_with = "lenient::opt_text")]
    flw_ref: Option<String>,
    #[serde(default, deserialize_with = "lenient_amount")]
    amount: Option<Amount>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    currency: Option<String>,
    status: TxStatus,
}

impl ChargeFields {
    fn into_event(self, legacy: bool) -> WebhookEvent {
        WebhookEvent::Charge(ChargeEvent {
            id: self.id,
            tx_ref: self.tx_ref,
            flw_ref: self.flw_ref,
            amount: self.amount,
            currency: self.currency,
            status: self.status,
            legacy,
        })
    }
}

#[derive(Deserialize)]
struct WrappedTransfer {
    #[serde(deserialize_with = "lenient::id")]
    id: i64,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    reference: Option<String>,
    status: TransferStatus,
    #[serde(default, deserialize_with = "lenient_amount")]
    amount: Option<Amount>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    currency: Option<String>,
    #[serde(default, deserialize_with = "lenient_amount")]
    fee: Option<Amount>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    complete_message: Option<String>,
}

impl WrappedTransfer {
    fn into_event(self) -> WebhookEvent {
        WebhookEvent::Transfer(TransferEvent {
            id: self.id,
            reference: self.reference,
            status: self.status,
            amount: self.amount,
            currency: self.currency,
            fee: self.fee,
            complete_message: self.complete_message,
        })
    }
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct FlatCard {
    #[serde(deserialize_with = "lenient::text")]
    CardId: String,
    #[serde(default, deserialize_with = "lenient_amount")]
    Amount: Option<Amount>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    TransactionId: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    Status: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    Type: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    Description: Option<String>,
}

#[derive(Deserialize)]
struct FlatRefund {
    #[serde(deserialize_with = "lenient::id")]
    id: i64,
    #[serde(default, rename = "TransactionId", alias = "tx_id", deserialize_with = "lenient::opt_id")]
    transaction_id: Option<i64>,
    #[serde(default, rename = "AmountRefunded", alias = "amount_refunded", deserialize_with = "lenient_amount")]
    amount_refunded: Option<Amount>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    status: Option<String>,
}

/// Parses any delivery. Never fails and never panics.
pub fn parse(raw: &[u8]) -> WebhookEvent {
    let unknown = |event: Option<String>| WebhookEvent::Unknown { event, raw: raw.to_vec() };
    let Ok(probe) = serde_json::from_slice::<Probe>(raw) else { return unknown(None) };
    let event = probe.event.clone();
    let data = probe.data.as_deref().map(RawValue::get);
    let parsed = match (event.as_deref(), data) {
        (Some("charge.completed"), Some(d)) => {
            serde_json::from_str::<ChargeFields>(d).ok().map(|c| c.into_event(false))
        }
        (Some(e), Some(d)) if e.starts_with("transfer.") => {
            serde_json::from_str::<WrappedTransfer>(d).ok().map(WrappedTransfer::into_event)
        }
        (Some(e), Some(d)) if e.contains("refund") => serde_json::from_str::<FlatRefund>(d).ok().map(refund),
        (Some(e), Some(d)) if e.to_ascii_lowercase().contains("chargeback") => serde_json::from_str::<HintFields>(d)
            .ok()
            .map(|h| h.flw_ref.trim().chars().take(100).collect::<String>())
            .filter(|r| !r.is_empty())
            .map(|flw_ref| WebhookEvent::ChargebackHint { flw_ref }),
        (None, _) if probe.transfer.is_some() => probe
            .transfer
            .as_deref()
            .and_then(|t| serde_json::from_str::<WrappedTransfer>(t.get()).ok())
            .map(WrappedTransfer::into_event),
        (None, _) if probe.tx_ref.is_some() => {
            serde_json::from_slice::<ChargeFields>(raw).ok().map(|c| c.into_event(true))
        }
        (None, _) if probe.card_id.is_some() => serde_json::from_slice::<FlatCard>(raw).ok().map(|c| {
            WebhookEvent::Card(CardEvent {
                card_id: c.CardId,
                amount: c.Amount,
                transaction_id: c.TransactionId,
                status: c.Status,
                kind: c.Type,
                description: c.Description,
            })
        }),
        (None, _) if probe.amount_refunded.is_some() => serde_json::from_slice::<FlatRefund>(raw).ok().map(refund),
        _ => None,
    };
    parsed.unwrap_or_else(|| unknown(event))
}

fn refund(r: FlatRefund) -> WebhookEvent {
    WebhookEvent::Refund(RefundEvent {
        id: r.id,
        transaction_id: r.transaction_id,
        amount_refunded: r.amount_refunded,
        status: r.status,
    })
}
