//! Payouts: validated requests, corridor rules, and the approval rule.
//!
//! Only [`approve`] can build an [`Approved`], and only an `Approved` can be
//! dispatched (see `store::payouts::claim_for_dispatch`): money leaves only
//! with the consent of approvers who did not create the payout — two of them
//! above the currency's threshold — each after a fresh step-up code.

use rust_decimal::Decimal;
use serde::Deserialize;

use super::validate;
use super::{Currency, status::PayoutStatus};

/// The largest single payout, in major units (a guard against typos).
pub const DEFAULT_MAX_PAYOUT: i64 = 50_000_000;

/// Countries whose bank transfers need a branch code.
pub const BRANCH_CODE_COUNTRIES: [&str; 5] = ["GH", "UG", "TZ", "RW", "ZM"];

/// The API body, decoded strictly. Both the contract's flat shape
/// (`bank_code`, `account_number`, `beneficiary_name`) and the nested
/// `beneficiary` object (or a saved `beneficiary_id`) are accepted.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayoutRequest {
    pub reference: String,
    pub amount: flutterwave::Amount,
    pub currency: String,
    #[serde(default)]
    pub narration: Option<String>,
    #[serde(default)]
    pub beneficiary: Option<BeneficiaryRequest>,
    #[serde(default)]
    pub beneficiary_id: Option<String>,
    #[serde(default)]
    pub bank_code: Option<String>,
    #[serde(default)]
    pub account_number: Option<String>,
    #[serde(default)]
    pub beneficiary_name: Option<String>,
    #[serde(default)]
    pub meta: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeneficiaryRequest {
    #[serde(default)]
    pub country: Option<String>,
    pub bank_code: String,
    pub account_number: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub branch_code: Option<String>,
}

/// Bank account or mobile-money wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    Bank,
    MobileMoney,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Bank => "BANK",
            AccountKind::MobileMoney => "MOBILEMONEY",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "BANK" => Some(AccountKind::Bank),
            "MOBILEMONEY" => Some(AccountKind::MobileMoney),
            _ => None,
        }
    }
}

/// Where the money goes, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub country: String,
    pub bank_code: String,
    pub account_number: String,
    /// The name the caller gave (compared with the resolved one).
    pub name: Option<String>,
    pub kind: AccountKind,
    pub branch_code: Option<String>,
}

/// A payout request that passed every rule Sika can check without Flutterwave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPayout {
    pub reference: super::Reference,
    /// What the beneficiary receives (Flutterwave's fee comes on top).
    pub money: super::Money,
    pub narration: Option<String>,
    pub destination: Option<Destination>,
    pub beneficiary_id: Option<String>,
    pub meta: Option<serde_json::Value>,
}

pub use super::checkout::Invalid;

fn invalid(field: &'static str, message: impl Into<String>) -> Invalid {
    Invalid { field, message: message.into() }
}

/// The country a currency's payouts go to by default.
fn home_country(c: Currency) -> &'static str {
    match c {
        Currency::NGN => "NG",
        Currency::GHS => "GH",
        Currency::KES => "KE",
        Currency::UGX => "UG",
        Currency::TZS => "TZ",
        Currency::RWF => "RW",
        Currency::ZAR => "ZA",
        Currency::ZMW => "ZM",
        Currency::MWK => "MW",
        Currency::XAF => "CM",
        Currency::XOF => "SN",
        Currency::EGP => "EG",
        Currency::USD | Currency::EUR | Currency::GBP | Currency::CAD => "US",
    }
}

/// A bank code as Flutterwave lists them (`044`, `999992`, `MPS`).
pub fn bank_code(s: &str) -> Result<String, Invalid> {
    let code = s.trim().to_ascii_uppercase();
    if code.is_empty() || code.len() > 10 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(invalid("bank_code", "must be a bank code from /api/v1/banks/{country}"));
    }
    Ok(code)
}

/// An account number, or a mobile number with its country code.
pub fn account_number(s: &str) -> Result<String, Invalid> {
    let n = s.trim();
    let digits = n.strip_prefix('+').unwrap_or(n);
    if !(6..=20).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("account_number", "must be 6 to 20 digits (a mobile number may start with +)"));
    }
    Ok(digits.to_string())
}

pub fn country(s: &str) -> Result<String, Invalid> {
    let c = s.trim();
    if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(invalid("beneficiary.country", "must be a two-letter ISO code such as NG"));
    }
    Ok(c.to_ascii_uppercase())
}

impl PayoutRequest {
    pub fn validate(self, max_amount: Decimal) -> Result<NewPayout, Invalid> {
        let reference = super::checkout::reference(&self.reference)?;
        let currency: Currency = self.currency.parse().map_err(|m| invalid("currency", m))?;
        let money = super::Money::checked(self.amount.decimal(), currency, max_amount)
            .map_err(|e| invalid("amount", e.to_string()))?;
        let narration = match self.narration.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
            None => None,
            Some(n) if n.chars().count() > 100 => return Err(invalid("narration", "must be at most 100 characters")),
            Some(n) if !n.chars().all(|c| c.is_alphanumeric() || " .,-_/#()&'".contains(c)) => {
                return Err(invalid("narration", "may contain letters, digits, spaces and . , - _ / # ( ) & ' only"));
            }
            Some(n) => Some(n.to_string()),
        };
        let flat = self.bank_code.is_some() || self.account_number.is_some() || self.beneficiary_name.is_some();
        let nested = match (self.beneficiary, flat) {
            (Some(_), true) => {
                return Err(invalid(
                    "beneficiary",
                    "give either beneficiary or bank_code and account_number, not both",
                ));
            }
            (Some(b), false) => Some(b),
            (None, true) => Some(BeneficiaryRequest {
                country: None,
                bank_code: self.bank_code.unwrap_or_default(),
                account_number: self.account_number.unwrap_or_default(),
                name: self.beneficiary_name,
                kind: None,
                branch_code: None,
            }),
            (None, false) => None,
        };
        let (destination, beneficiary_id) = match (nested, self.beneficiary_id) {
            (Some(_), Some(_)) => {
                return Err(invalid("beneficiary_id", "give either a beneficiary or a beneficiary_id, not both"));
            }
            (None, None) => return Err(invalid("beneficiary", "is required (or beneficiary_id)")),
            (None, Some(id)) => {
                let ok = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !ok {
                    return Err(invalid("beneficiary_id", "is not a beneficiary id"));
                }
                (None, Some(id))
            }
            (Some(b), None) => (Some(destination(b, currency)?), None),
        };
        let meta = match self.meta {
            None | Some(serde_json::Value::Null) => None,
            Some(m @ serde_json::Value::Object(_)) if m.to_string().len() <= 2048 => Some(m),
            Some(_) => return Err(invalid("meta", "must be a JSON object of at most 2048 bytes")),
        };
        Ok(NewPayout { reference, money, narration, destination, beneficiary_id, meta })
    }
}

/// Checks a destination and the corridor's rules: a name for GHS and mobile
/// money, a branch code for bank transfers where Flutterwave needs one.
pub fn destination(b: BeneficiaryRequest, currency: Currency) -> Result<Destination, Invalid> {
    let country = match b.country.as_deref() {
        Some(c) => country(c)?,
        None => home_country(currency).to_string(),
    };
    let bank_code = bank_code(&b.bank_code)?;
    let account_number = account_number(&b.account_number)?;
    let kind = match b.kind.as_deref() {
        None => {
            if ["MPS", "MTN", "AIRTEL", "VODAFONE", "FMM", "TIGO"].contains(&bank_code.as_str()) {
                AccountKind::MobileMoney
            } else {
                AccountKind::Bank
            }
        }
        Some(k) => AccountKind::parse(k).ok_or_else(|| invalid("beneficiary.type", "must be BANK or MOBILEMONEY"))?,
    };
    let name = match b.name.as_deref().map(validate::name).transpose() {
        Ok(n) => n.filter(|n| !n.is_empty()),
        Err(m) => return Err(invalid("beneficiary.name", m)),
    };
    if name.is_none() && (kind == AccountKind::MobileMoney || currency == Currency::GHS) {
        return Err(invalid("beneficiary.name", "is required for mobile money and for GHS payouts"));
    }
    let branch_code = match b.branch_code.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        None => None,
        Some(c) if c.len() <= 20 && c.bytes().all(|b| b.is_ascii_alphanumeric()) => Some(c.to_ascii_uppercase()),
        Some(_) => return Err(invalid("beneficiary.branch_code", "must be 1 to 20 letters and digits")),
    };
    if branch_code.is_none() && kind == AccountKind::Bank && BRANCH_CODE_COUNTRIES.contains(&country.as_str()) {
        return Err(invalid("beneficiary.branch_code", format!("is required for bank payouts to {country}")));
    }
    Ok(Destination { country, bank_code, account_number, name, kind, branch_code })
}

/// `0690000032` → `******0032`: what is shown everywhere but the audited reveal.
pub fn mask(account: &str) -> String {
    let n = account.chars().count();
    let keep = if n > 6 { 4 } else { 2 };
    let tail: String = account.chars().skip(n.saturating_sub(keep)).collect();
    format!("{}{tail}", "*".repeat(n.saturating_sub(keep)))
}

/// Whether a given name and the bank's resolved name disagree (case, spacing,
/// punctuation and word order aside).
pub fn names_differ(given: &str, resolved: &str) -> bool {
    let words = |s: &str| {
        let mut w: Vec<String> =
            s.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(|w| w.to_lowercase()).collect();
        w.sort();
        w
    };
    words(given) != words(resolved)
}

pub use super::approval::{Approver, approve, consent};

/// Payouts are outgoing money under the one approval rule.
pub enum Payouts {}

impl super::approval::Outgoing for Payouts {
    type Status = PayoutStatus;
    const AWAITING_APPROVAL: PayoutStatus = PayoutStatus::AwaitingApproval;
    const QUEUED: PayoutStatus = PayoutStatus::Queued;
}

/// What is known of the payout when someone approves it (or before it is sent).
pub type PendingApproval<'a> = super::approval::Pending<'a, Payouts>;

/// Proof that a payout has all the consent it needs: only the approval rule
/// makes one, and dispatch needs one (see `store::payouts::claim_for_dispatch`).
pub type Approved = super::approval::Approved<Payouts>;

/// What an approval of a payout decided.
pub type Approval = super::approval::Approval<Payouts>;

#[cfg(test)]
mod tests {
    use super::*;

    fn req(v: serde_json::Value) -> Result<NewPayout, Invalid> {
        serde_json::from_value::<PayoutRequest>(v)
            .map_err(|e| invalid("body", e.to_string()))?
            .validate(Decimal::from(DEFAULT_MAX_PAYOUT))
    }

    #[test]
    fn both_request_shapes_and_corridor_rules() {
        let flat = req(serde_json::json!({"reference": "p-1", "amount": "5000", "currency": "NGN", "bank_code": "044", "account_number": "0690000032"})).unwrap();
        let d = flat.destination.unwrap();
        assert_eq!((d.country.as_str(), d.kind, d.name), ("NG", AccountKind::Bank, None));
        let nested = req(serde_json::json!({"reference": "p-2", "amount": 10, "currency": "KES",
            "beneficiary": {"country": "KE", "bank_code": "MPS", "account_number": "+254709929220", "name": "Ann Wanjiru"}})).unwrap();
        assert_eq!(nested.destination.unwrap().kind, AccountKind::MobileMoney);
        for (body, field) in [
            (
                serde_json::json!({"reference": "p", "amount": 1, "currency": "KES", "beneficiary": {"bank_code": "MPS", "account_number": "254709929220"}}),
                "beneficiary.name",
            ),
            (
                serde_json::json!({"reference": "p", "amount": 1, "currency": "GHS", "beneficiary": {"bank_code": "GH280100", "account_number": "0031625807099"}}),
                "beneficiary.name",
            ),
            (
                serde_json::json!({"reference": "p", "amount": 1, "currency": "GHS", "beneficiary": {"bank_code": "GH280100", "account_number": "0031625807099", "name": "Kofi Mensah"}}),
                "beneficiary.branch_code",
            ),
            (
                serde_json::json!({"reference": "p", "amount": "1.5", "currency": "UGX", "bank_code": "MTN", "account_number": "256700000000", "beneficiary_name": "A B"}),
                "amount",
            ),
            (serde_json::json!({"reference": "p", "amount": 1, "currency": "NGN"}), "beneficiary"),
            (
                serde_json::json!({"reference": "p", "amount": 1, "currency": "NGN", "bank_code": "0 44", "account_number": "0690000032"}),
                "bank_code",
            ),
            (
                serde_json::json!({"reference": "p", "amount": 1, "currency": "NGN", "bank_code": "044", "account_number": "12ab"}),
                "account_number",
            ),
            (
                serde_json::json!({"reference": "p", "amount": 1, "currency": "NGN", "bank_code": "044", "account_number": "0690000032", "narration": "<script>"}),
                "narration",
            ),
        ] {
            assert_eq!(req(body.clone()).unwrap_err().field, field, "{body}");
        }
        assert!(
            serde_json::from_value::<PayoutRequest>(
                serde_json::json!({"reference": "p", "amount": 1, "currency": "NGN", "x": 1})
            )
            .is_err()
        );
    }

    #[test]
    fn masks_and_name_checks() {
        assert_eq!(mask("0690000032"), "******0032");
        assert_eq!(mask("12345"), "***45");
        assert!(!names_differ("ADA  LOVELACE", "Lovelace, Ada"));
        assert!(names_differ("Ada Lovelace", "Grace Hopper"));
    }

    #[test]
    fn a_payout_is_approved_only_awaiting_approval_and_sent_only_queued() {
        struct Code;
        impl crate::domain::approval::SteppedUp for Code {
            fn user_id(&self) -> &str {
                "checker"
            }
        }
        let p = PendingApproval {
            reference: "p-1",
            status: PayoutStatus::AwaitingApproval,
            created_by: "maker",
            approved_by: &[],
            needed: 1,
        };
        let Approval::Complete(a) = approve(&p, &Approver { proof: &Code, may_approve: true }) else {
            panic!("one approver suffices")
        };
        assert_eq!(a.approvers(), ["checker".to_string()]);
        for s in [PayoutStatus::Queued, PayoutStatus::Submitted, PayoutStatus::Rejected] {
            let done = PendingApproval { status: s, ..p };
            assert!(matches!(approve(&done, &Approver { proof: &Code, may_approve: true }), Approval::Refused(_)));
        }
        let by = ["checker".to_string()];
        assert!(consent(&PendingApproval { status: PayoutStatus::Queued, approved_by: &by, ..p }).is_some());
        assert!(consent(&PendingApproval { status: PayoutStatus::Submitted, approved_by: &by, ..p }).is_none());
    }
}
