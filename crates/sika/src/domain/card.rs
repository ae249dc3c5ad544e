//! A virtual card request: the cardholder and billing details Flutterwave
//! requires, checked before anything is stored or sent. A card's number and
//! CVV never pass through here: Sika never stores them.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::checkout::{Invalid, reference};
use super::validate;

fn invalid(field: &'static str, message: impl Into<String>) -> Invalid {
    Invalid { field, message: message.into() }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Cardholder {
    pub first_name: String,
    pub last_name: String,
    /// `YYYY-MM-DD` (or Flutterwave's `YYYY/MM/DD`).
    pub date_of_birth: String,
    pub email: String,
    pub phone: String,
    /// `MR`, `MRS` or `MISS`.
    pub title: String,
    /// `M` or `F`.
    pub gender: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Billing {
    pub address: Option<String>,
    pub city: Option<String>,
    /// Two letters.
    pub state: Option<String>,
    pub postal_code: Option<String>,
    /// Two letters.
    pub country: Option<String>,
}

/// `POST /api/v1/cards`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardRequest {
    pub reference: String,
    pub currency: String,
    /// The first load, taken from the wallet in `debit_currency` (default: the card's currency).
    pub amount: flutterwave::Amount,
    #[serde(default)]
    pub debit_currency: Option<String>,
    pub cardholder: Cardholder,
    #[serde(default)]
    pub billing: Option<Billing>,
}

/// A checked request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCard {
    pub reference: super::Reference,
    /// The first load, in the card's currency: `USD` or `NGN`, the currencies Flutterwave issues cards in.
    pub load: super::Money,
    /// The wallet the load comes from: the card's currency.
    pub debit_currency: super::Currency,
    pub cardholder: Cardholder,
    pub billing: Billing,
}

impl NewCard {
    /// The name Flutterwave prints on the card (and lists it by).
    pub fn name_on_card(&self) -> String {
        format!("{} {}", self.cardholder.first_name, self.cardholder.last_name)
    }
}

fn text(field: &'static str, v: &str, max: usize) -> Result<String, Invalid> {
    let t = v.trim();
    if t.is_empty() || t.chars().count() > max {
        return Err(invalid(field, format!("must be 1 to {max} characters")));
    }
    if !t.chars().all(|c| c.is_alphanumeric() || " .,-'/#".contains(c)) {
        return Err(invalid(field, "may contain letters, digits, spaces and . , - ' / # only"));
    }
    Ok(t.to_string())
}

fn two_letters(field: &'static str, v: &str) -> Result<String, Invalid> {
    let t = v.trim().to_ascii_uppercase();
    if t.len() == 2 && t.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(t)
    } else {
        Err(invalid(field, "must be two letters"))
    }
}

/// `YYYY-MM-DD` or `YYYY/MM/DD`, a real date, an adult born after 1900 → `YYYY/MM/DD`.
fn date_of_birth(v: &str, today: (i32, u32, u32)) -> Result<String, Invalid> {
    let bad = || invalid("cardholder.date_of_birth", "must be a date such as 1990-04-21, of someone 18 or older");
    let t = v.trim().replace('/', "-");
    let parts: Vec<&str> = t.split('-').collect();
    let [y, m, d] = parts.as_slice() else { return Err(bad()) };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let (y, m, d): (i32, u32, u32) =
        (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    let adult = (y + 18, m, d) <= today;
    if y < 1900 || d == 0 || d > days || !adult {
        return Err(bad());
    }
    Ok(format!("{y:04}/{m:02}/{d:02}"))
}

impl CardRequest {
    /// Checks every field; `today` is (year, month, day) in UTC.
    pub fn validate(self, max_amount: Decimal, today: (i32, u32, u32)) -> Result<NewCard, Invalid> {
        let reference = reference(&self.reference)?;
        let currency = self.currency.trim().to_ascii_uppercase();
        if currency != "USD" && currency != "NGN" {
            return Err(invalid("currency", "must be USD or NGN (the currencies Flutterwave issues cards in)"));
        }
        let parsed: super::Currency = currency.parse().map_err(|m| invalid("currency", m))?;
        let load = super::Money::checked(self.amount.decimal(), parsed, max_amount)
            .map_err(|e| invalid("amount", e.to_string()))?;
        let debit_currency = match self.debit_currency.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
            None => parsed,
            Some(c) => {
                let c: super::Currency = c.parse().map_err(|m| invalid("debit_currency", m))?;
                if c.code() != currency {
                    // The hold an approval places is in the wallet's currency; without
                    // Flutterwave's rate Sika cannot know how much to hold.
                    return Err(invalid("debit_currency", "must be the card's currency"));
                }
                c
            }
        };
        let h = self.cardholder;
        let name = |field, v: &str| match validate::name(v) {
            Ok(n) if !n.is_empty() => Ok(n),
            Ok(_) => Err(invalid(field, "is required")),
            Err(m) => Err(invalid(field, m)),
        };
        let phone = {
            let p = h.phone.trim();
            let digits = p.strip_prefix('+').unwrap_or(p);
            if !(7..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid("cardholder.phone", "must be 7 to 15 digits, optionally after +"));
            }
            p.to_string()
        };
        let title = h.title.trim().to_ascii_uppercase();
        if !matches!(title.as_str(), "MR" | "MRS" | "MISS") {
            return Err(invalid("cardholder.title", "must be MR, MRS or MISS"));
        }
        let gender = h.gender.trim().to_ascii_uppercase();
        if gender != "M" && gender != "F" {
            return Err(invalid("cardholder.gender", "must be M or F"));
        }
        let cardholder = Cardholder {
            first_name: name("cardholder.first_name", &h.first_name)?,
            last_name: name("cardholder.last_name", &h.last_name)?,
            date_of_birth: date_of_birth(&h.date_of_birth, today)?,
            email: validate::email(&h.email).map_err(|m| invalid("cardholder.email", m))?,
            phone,
            title,
            gender,
        };
        let b = self.billing.unwrap_or_default();
        let opt = |field, v: &Option<String>, max| v.as_deref().map(|v| text(field, v, max)).transpose();
        let billing = Billing {
            address: opt("billing.address", &b.address, 100)?,
            city: opt("billing.city", &b.city, 60)?,
            state: b.state.as_deref().map(|s| two_letters("billing.state", s)).transpose()?,
            postal_code: opt("billing.postal_code", &b.postal_code, 12)?,
            country: b.country.as_deref().map(|s| two_letters("billing.country", s)).transpose()?,
        };
        Ok(NewCard { reference, load, debit_currency, cardholder, billing })
    }
}

/// `POST /api/v1/cards/{reference}/fund` and `…/withdraw`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FundingRequest {
    /// The shop's own reference for this movement (idempotent).
    pub reference: String,
    pub amount: flutterwave::Amount,
}

/// A checked funding or withdrawal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFunding {
    pub reference: super::Reference,
    pub kind: super::FundingKind,
    /// In the card's currency.
    pub money: super::Money,
}

impl FundingRequest {
    /// `currency` is the card's.
    pub fn validate(
        self,
        kind: super::FundingKind,
        currency: super::Currency,
        max_amount: Decimal,
    ) -> Result<NewFunding, Invalid> {
        let reference = reference(&self.reference)?;
        let money = super::Money::checked(self.amount.decimal(), currency, max_amount)
            .map_err(|e| invalid("amount", e.to_string()))?;
        Ok(NewFunding { reference, kind, money })
    }
}

pub use super::approval::{approve as approve_funding, consent as consent_funding};

/// Card loads, fundings and withdrawals are outgoing money under the one approval rule.
pub enum CardFundings {}

impl super::approval::Outgoing for CardFundings {
    type Status = super::FundingStatus;
    const AWAITING_APPROVAL: super::FundingStatus = super::FundingStatus::AwaitingApproval;
    const QUEUED: super::FundingStatus = super::FundingStatus::Queued;
}

/// What is known of a funding when someone approves it (or before it is sent).
pub type PendingFunding<'a> = super::approval::Pending<'a, CardFundings>;

/// Proof that a card funding or withdrawal has all the consent it needs:
/// only the approval rule makes one, and the dispatcher needs one to claim it
/// (`store::card_fundings::claim_funding`).
pub type FundingApproved = super::approval::Approved<CardFundings>;

/// What an approval of a funding decided.
pub type FundingApproval = super::approval::Approval<CardFundings>;

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: (i32, u32, u32) = (2026, 11, 29);

    fn request(v: serde_json::Value) -> Result<NewCard, Invalid> {
        serde_json::from_value::<CardRequest>(v).unwrap().validate(Decimal::new(10_000, 0), TODAY)
    }

    fn good() -> serde_json::Value {
        serde_json::json!({"reference": "card-1", "currency": "usd", "amount": "5.00",
            "cardholder": {"first_name": "Ada", "last_name": "Obi", "date_of_birth": "1990-04-21",
                "email": "Ada@Example.com", "phone": "+2348012345678", "title": "mrs", "gender": "f"},
            "billing": {"address": "333 Fremont Street", "city": "Lagos", "state": "la", "postal_code": "100001", "country": "ng"}})
    }

    #[test]
    fn a_good_request_is_normalised() {
        let c = request(good()).unwrap();
        assert_eq!((c.load.currency().code(), c.debit_currency.code()), ("USD", "USD"));
        assert_eq!(c.cardholder.date_of_birth, "1990/04/21");
        assert_eq!((c.cardholder.title.as_str(), c.cardholder.gender.as_str()), ("MRS", "F"));
        assert_eq!(c.cardholder.email, "ada@example.com");
        assert_eq!((c.billing.state.as_deref(), c.billing.country.as_deref()), (Some("LA"), Some("NG")));
        assert_eq!(c.name_on_card(), "Ada Obi");
    }

    #[test]
    fn each_bad_field_is_named() {
        for (path, value, field) in [
            ("/currency", serde_json::json!("KES"), "currency"),
            ("/amount", serde_json::json!("0"), "amount"),
            ("/amount", serde_json::json!("1.234"), "amount"),
            ("/cardholder/date_of_birth", serde_json::json!("2015-01-01"), "cardholder.date_of_birth"),
            ("/cardholder/date_of_birth", serde_json::json!("1990-02-30"), "cardholder.date_of_birth"),
            ("/cardholder/email", serde_json::json!("not-mail"), "cardholder.email"),
            ("/cardholder/phone", serde_json::json!("12ab"), "cardholder.phone"),
            ("/cardholder/title", serde_json::json!("DR"), "cardholder.title"),
            ("/cardholder/gender", serde_json::json!("X"), "cardholder.gender"),
            ("/cardholder/first_name", serde_json::json!("<script>"), "cardholder.first_name"),
            ("/billing/country", serde_json::json!("NGA"), "billing.country"),
            ("/billing/address", serde_json::json!("a\"; DROP"), "billing.address"),
            ("/reference", serde_json::json!("has space"), "reference"),
        ] {
            let mut v = good();
            *v.pointer_mut(path).unwrap() = value;
            assert_eq!(request(v).unwrap_err().field, field, "{path}");
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        let mut v = good();
        v["card_pan"] = serde_json::json!("5366130000000000");
        assert!(serde_json::from_value::<CardRequest>(v).is_err());
    }

    #[test]
    fn a_funding_needs_a_checker_who_is_not_its_maker() {
        use super::super::FundingStatus;
        use super::super::approval::{Approver, SteppedUp};
        struct Code(&'static str);
        impl SteppedUp for Code {
            fn user_id(&self) -> &str {
                self.0
            }
        }
        let checker = |c: &'static Code| Approver { proof: c, may_approve: true };
        let p = PendingFunding {
            reference: "f-1",
            status: FundingStatus::AwaitingApproval,
            created_by: "api_key:k1",
            approved_by: &[],
            needed: 1,
        };
        assert!(matches!(approve_funding(&p, &checker(&Code("api_key:k1"))), FundingApproval::Refused(_)));
        let FundingApproval::Complete(ok) = approve_funding(&p, &checker(&Code("u1"))) else { panic!("one approver") };
        assert_eq!(ok.approvers(), ["u1".to_string()]);
        let queued = PendingFunding { status: FundingStatus::Queued, ..p };
        assert!(consent_funding(&queued).is_none(), "queued without approvals is not sent");
        let by = ["u1".to_string()];
        assert!(consent_funding(&PendingFunding { approved_by: &by, ..queued }).is_some());
        let by_maker = ["api_key:k1".to_string()];
        assert!(consent_funding(&PendingFunding { approved_by: &by_maker, ..queued }).is_none());
    }

    #[test]
    fn a_funding_request_is_checked_in_the_cards_currency() {
        let f = |v| serde_json::from_value::<FundingRequest>(v).unwrap();
        let ok = f(serde_json::json!({"reference": "f-1", "amount": "12.50"}))
            .validate(super::super::FundingKind::Fund, super::super::Currency::USD, Decimal::from(100))
            .unwrap();
        assert_eq!(ok.money.amount(), Decimal::new(1250, 2));
        for v in [
            serde_json::json!({"reference": "f-1", "amount": "0"}),
            serde_json::json!({"reference": "f-1", "amount": "1.001"}),
            serde_json::json!({"reference": "f-1", "amount": "101"}),
            serde_json::json!({"reference": "f 1", "amount": "1"}),
        ] {
            assert!(
                f(v.clone())
                    .validate(super::super::FundingKind::Fund, super::super::Currency::USD, Decimal::from(100))
                    .is_err(),
                "{v}"
            );
        }
    }
}
