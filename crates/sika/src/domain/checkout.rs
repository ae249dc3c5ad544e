//! Checkouts: validated requests, and the money rule that decides what a
//! verified Flutterwave transaction means for a checkout.
//!
//! Only [`judge`] can build a [`Verified`], and only a `Verified` can mark a
//! checkout paid (see `store::checkouts::mark_paid`): value is given on a
//! definite, matching verify answer and nothing else.

use flutterwave::Amount;
use flutterwave::transactions::{Transaction, TxStatus};
use rust_decimal::Decimal;
use serde::Deserialize;

use super::validate;
use super::{Currency, Money, Reference};
/// The largest single checkout, in major units (configurable later; a guard against typos).
pub const DEFAULT_MAX_AMOUNT: i64 = 100_000_000;

/// The API body, decoded strictly: unknown fields are refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    pub reference: String,
    pub amount: Amount,
    pub currency: String,
    pub customer: CustomerRequest,
    #[serde(default)]
    pub redirect_url: Option<String>,
    /// What the payment is for, shown to operators and the customer (≤ 200 characters).
    #[serde(default)]
    pub description: Option<String>,
    /// Close the checkout unpaid this many minutes after creation (5 to 43,200), if sooner than the default.
    #[serde(default)]
    pub expires_in_minutes: Option<i64>,
}

/// The allowed range of a checkout's own expiry, in minutes (30 days at most).
pub const EXPIRES_IN_MINUTES: std::ops::RangeInclusive<i64> = 5..=43_200;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerRequest {
    pub email: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
}

/// A checkout request that passed every rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCheckout {
    pub reference: Reference,
    /// The price: what the customer must pay, in what.
    pub price: Money,
    pub email: String,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub redirect_url: Option<String>,
    pub description: Option<String>,
    pub expires_in_minutes: Option<i64>,
}

/// Which field is wrong, and why (shown to the API caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> Invalid {
    Invalid { field, message: message.into() }
}

/// The `reference` field of a request, checked.
pub fn reference(r: &str) -> Result<Reference, Invalid> {
    Reference::parse(r).map_err(|rule| invalid("reference", rule))
}

impl CheckoutRequest {
    pub fn validate(self, max_amount: Decimal) -> Result<NewCheckout, Invalid> {
        let reference = reference(&self.reference)?;
        let currency: Currency = self.currency.parse().map_err(|m| invalid("currency", m))?;
        let price = Money::checked(self.amount.decimal(), currency, max_amount)
            .map_err(|e| invalid("amount", e.to_string()))?;
        let email = validate::email(&self.customer.email).map_err(|m| invalid("customer.email", m))?;
        let name = match self.customer.name.as_deref().map(validate::name).transpose() {
            Ok(n) => n.filter(|n| !n.is_empty()),
            Err(m) => return Err(invalid("customer.name", m)),
        };
        let phone = match self.customer.phone.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
            None => None,
            Some(p) => {
                let digits = p.strip_prefix('+').unwrap_or(p);
                if !(7..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(invalid("customer.phone", "must be 7 to 15 digits, optionally after +"));
                }
                Some(p.to_string())
            }
        };
        let redirect_url = match self.redirect_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            None => None,
            Some(u) => {
                let parsed = url::Url::parse(u).map_err(|_| invalid("redirect_url", "must be an absolute URL"))?;
                if parsed.scheme() != "https"
                    || parsed.host().is_none()
                    || u.len() > 2048
                    || !parsed.username().is_empty()
                {
                    return Err(invalid("redirect_url", "must be an https:// URL of at most 2048 characters"));
                }
                Some(parsed.to_string())
            }
        };
        let description = match self.description.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
            None => None,
            Some(d) if d.chars().count() > 200 => return Err(invalid("description", "must be at most 200 characters")),
            Some(d) if d.chars().any(char::is_control) => {
                return Err(invalid("description", "must be one line of text without control characters"));
            }
            Some(d) => Some(d.to_string()),
        };
        let expires_in_minutes = match self.expires_in_minutes {
            Some(m) if !EXPIRES_IN_MINUTES.contains(&m) => {
                return Err(invalid("expires_in_minutes", "must be between 5 and 43200 (30 days)"));
            }
            m => m,
        };
        Ok(NewCheckout { reference, price, email, name, phone, redirect_url, description, expires_in_minutes })
    }
}

impl NewCheckout {
    /// What makes two requests "the same body" for idempotency.
    pub fn fingerprint(&self) -> String {
        let canonical = serde_json::json!([
            self.reference,
            self.price.amount().to_string(),
            self.price.currency().code(),
            self.email,
            self.name,
            self.phone,
            self.redirect_url
        ]);
        // Fields added later join only when given, so earlier requests keep their fingerprint.
        let mut canonical = canonical.to_string();
        if self.description.is_some() || self.expires_in_minutes.is_some() {
            canonical.push_str(&serde_json::json!([self.description, self.expires_in_minutes]).to_string());
        }
        crate::crypto::sha256_hex(canonical.as_bytes())
    }
}

/// What Sika expects of a checkout, from its own records.
#[derive(Debug, Clone)]
pub struct Expected {
    pub reference: Reference,
    pub price: Money,
}

/// Proof that Flutterwave's verify endpoint answered, definitely, that this
/// checkout was paid in full. Fields are private; [`judge`] is the only maker.
#[derive(Debug, Clone)]
pub struct Verified {
    reference: Reference,
    transaction_id: i64,
    paid: Money,
}

impl Verified {
    pub fn reference(&self) -> &Reference {
        &self.reference
    }
    pub fn transaction_id(&self) -> i64 {
        self.transaction_id
    }
    /// What Flutterwave says was paid, in the checkout's currency.
    pub fn paid(&self) -> Money {
        self.paid
    }
    pub fn amount(&self) -> Decimal {
        self.paid.amount()
    }
    pub fn currency(&self) -> Currency {
        self.paid.currency()
    }
}

/// What a verified transaction means for the checkout.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Successful, same reference and currency, amount ≥ expected. `overpaid` > 0 is offered for refund.
    Paid { proof: Verified, overpaid: Decimal },
    /// Money arrived but not as agreed: a person must look.
    NeedsReview { transaction_id: i64, reason: String },
    /// This attempt failed; the checkout stays open for another.
    AttemptFailed,
    /// Not final yet: ask again later.
    NotYet,
}

/// The money rule. `tx` must come from Sika's own call to verify.
pub fn judge(expected: &Expected, tx: &Transaction) -> Verdict {
    if expected.reference != tx.tx_ref {
        return Verdict::NeedsReview {
            transaction_id: tx.id,
            reason: "the transaction belongs to another reference".into(),
        };
    }
    match &tx.status {
        TxStatus::Successful => {}
        TxStatus::Failed => return Verdict::AttemptFailed,
        TxStatus::Pending | TxStatus::Other(_) => return Verdict::NotYet,
    }
    let currency = expected.price.currency();
    if !tx.currency.trim().eq_ignore_ascii_case(currency.code()) {
        return Verdict::NeedsReview {
            transaction_id: tx.id,
            reason: format!("paid in {} instead of {currency}", tx.currency),
        };
    }
    let paid = tx.amount.decimal();
    if paid < expected.price.amount() {
        return Verdict::NeedsReview {
            transaction_id: tx.id,
            reason: format!("underpaid: {paid} of {}", expected.price.amount()),
        };
    }
    Verdict::Paid {
        proof: Verified {
            reference: expected.reference.clone(),
            transaction_id: tx.id,
            paid: Money::new(paid, currency),
        },
        overpaid: paid - expected.price.amount(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(json: serde_json::Value) -> Transaction {
        serde_json::from_str(&json.to_string()).unwrap()
    }

    fn expected() -> Expected {
        Expected {
            reference: Reference::parse("order-1").unwrap(),
            price: Money::new(Decimal::new(10050, 2), Currency::NGN),
        }
    }

    #[test]
    fn only_a_full_matching_success_is_paid() {
        let base = |amount: &str, currency: &str, status: &str, tx_ref: &str| {
            tx(
                serde_json::json!({"id": 7, "tx_ref": tx_ref, "amount": serde_json::from_str::<serde_json::Value>(amount).unwrap(), "currency": currency, "status": status}),
            )
        };
        assert!(
            matches!(judge(&expected(), &base("100.50", "NGN", "successful", "order-1")), Verdict::Paid { overpaid, .. } if overpaid.is_zero())
        );
        assert!(
            matches!(judge(&expected(), &base("101", "NGN", "successful", "order-1")), Verdict::Paid { overpaid, .. } if overpaid == Decimal::new(50, 2))
        );
        assert!(
            matches!(judge(&expected(), &base("100.49", "NGN", "successful", "order-1")), Verdict::NeedsReview { reason, .. } if reason.contains("underpaid"))
        );
        assert!(
            matches!(judge(&expected(), &base("100.50", "USD", "successful", "order-1")), Verdict::NeedsReview { reason, .. } if reason.contains("USD"))
        );
        assert!(matches!(
            judge(&expected(), &base("100.50", "NGN", "successful", "order-2")),
            Verdict::NeedsReview { .. }
        ));
        assert!(matches!(judge(&expected(), &base("100.50", "NGN", "failed", "order-1")), Verdict::AttemptFailed));
        assert!(matches!(judge(&expected(), &base("100.50", "NGN", "pending", "order-1")), Verdict::NotYet));
    }

    #[test]
    fn requests_are_validated_strictly() {
        let req = |v: serde_json::Value| serde_json::from_str::<CheckoutRequest>(&v.to_string());
        let ok = req(serde_json::json!({"reference": "o-1", "amount": "100.5", "currency": "ngn", "customer": {"email": "A@B.co"}})).unwrap();
        let c = ok.validate(Decimal::from(DEFAULT_MAX_AMOUNT)).unwrap();
        assert_eq!(
            (c.price.currency().code(), c.email.as_str(), c.price.amount().to_string().as_str()),
            ("NGN", "a@b.co", "100.5")
        );
        assert!(req(serde_json::json!({"reference": "o", "amount": 1, "currency": "NGN", "customer": {"email": "a@b.co"}, "extra": 1})).is_err(), "unknown fields");
        for (bad, field) in [
            (
                serde_json::json!({"reference": "o 1", "amount": 1, "currency": "NGN", "customer": {"email": "a@b.co"}}),
                "reference",
            ),
            (
                serde_json::json!({"reference": "o", "amount": 0, "currency": "NGN", "customer": {"email": "a@b.co"}}),
                "amount",
            ),
            (
                serde_json::json!({"reference": "o", "amount": "1.001", "currency": "NGN", "customer": {"email": "a@b.co"}}),
                "amount",
            ),
            (
                serde_json::json!({"reference": "o", "amount": 1e12, "currency": "NGN", "customer": {"email": "a@b.co"}}),
                "amount",
            ),
            (
                serde_json::json!({"reference": "o", "amount": 1, "currency": "BTC", "customer": {"email": "a@b.co"}}),
                "currency",
            ),
            (
                serde_json::json!({"reference": "o", "amount": "100.5", "currency": "UGX", "customer": {"email": "a@b.co"}}),
                "amount",
            ),
            (
                serde_json::json!({"reference": "o", "amount": 1, "currency": "NGN", "customer": {"email": "<x>"}}),
                "customer.email",
            ),
            (
                serde_json::json!({"reference": "o", "amount": 1, "currency": "NGN", "customer": {"email": "a@b.co", "phone": "12ab"}}),
                "customer.phone",
            ),
            (
                serde_json::json!({"reference": "o", "amount": 1, "currency": "NGN", "customer": {"email": "a@b.co"}, "redirect_url": "http://x.y/"}),
                "redirect_url",
            ),
        ] {
            let e = req(bad).unwrap().validate(Decimal::from(DEFAULT_MAX_AMOUNT)).unwrap_err();
            assert_eq!(e.field, field);
        }
    }
}
