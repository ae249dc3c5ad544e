//! The two values every layer passes about money: the shop's [`Reference`]
//! for a movement, and an amount in its currency ([`Money`]). Both are made by
//! checking, so a layer holding one never re-validates it, and an amount never
//! travels without the currency that gives it meaning.

use std::fmt;
use std::ops::Deref;

use rust_decimal::Decimal;

use super::Currency;
use super::currency::AmountError;

/// A shop's (or Sika's) reference for one movement of money: 1 to 64 letters,
/// digits, `_` and `-`. It is the idempotency key at Flutterwave, so nothing
/// else is ever accepted as one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Reference(String);

/// What a reference must look like, in words for the caller.
pub const REFERENCE_RULE: &str = "must be 1 to 64 characters: letters, digits, _ and -";

impl Reference {
    pub const MAX_LEN: usize = 64;

    /// Checks `text` against the rule; nothing is trimmed or changed.
    pub fn parse(text: &str) -> Result<Reference, &'static str> {
        let ok = !text.is_empty()
            && text.len() <= Self::MAX_LEN
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok { Ok(Reference(text.to_string())) } else { Err(REFERENCE_RULE) }
    }

    /// A reference read back from Sika's own database. It was checked on the way in;
    /// rows from before the rule (or written by hand) are still shown and matched as stored.
    pub fn from_stored(text: String) -> Reference {
        Reference(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl Deref for Reference {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Reference {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for Reference {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Reference {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for Reference {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

/// An amount and its currency. Amounts of different currencies never add up:
/// [`Money::plus`] and [`Money::minus`] refuse them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    amount: Decimal,
    currency: Currency,
}

impl Money {
    /// An amount as it was recorded or reported (any sign, any precision): Flutterwave's
    /// fees have more decimals than the currency's minor unit, and a balance may be negative.
    pub fn new(amount: Decimal, currency: Currency) -> Money {
        Money { amount, currency }
    }

    /// An amount someone asks to move: positive, at most `max`, no finer than the
    /// currency's minor unit.
    pub fn checked(amount: Decimal, currency: Currency, max: Decimal) -> Result<Money, AmountError> {
        currency.check_amount(amount, max).map(|amount| Money { amount, currency })
    }

    pub fn zero(currency: Currency) -> Money {
        Money { amount: Decimal::ZERO, currency }
    }

    pub fn amount(self) -> Decimal {
        self.amount
    }

    pub fn currency(self) -> Currency {
        self.currency
    }

    /// The sum, or `None` when the currencies differ (or the sum does not fit).
    pub fn plus(self, other: Money) -> Option<Money> {
        (self.currency == other.currency)
            .then(|| self.amount.checked_add(other.amount))
            .flatten()
            .map(|amount| Money { amount, currency: self.currency })
    }

    /// The difference, or `None` when the currencies differ (or it does not fit).
    pub fn minus(self, other: Money) -> Option<Money> {
        (self.currency == other.currency)
            .then(|| self.amount.checked_sub(other.amount))
            .flatten()
            .map(|amount| Money { amount, currency: self.currency })
    }

    /// `NGN 1,234.50`, as the console shows money.
    pub fn display(self) -> String {
        format!("{} {}", self.currency.code(), self.currency.format(self.amount))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.currency.code(), self.amount.normalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_follow_the_rule_and_nothing_else() {
        for ok in ["a", "order-1", "A_b-9", &"x".repeat(64)] {
            assert_eq!(Reference::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", " a", "a b", "a/b", "ü", "a\n", &"x".repeat(65), "a;DROP"] {
            assert_eq!(Reference::parse(bad), Err(REFERENCE_RULE), "{bad:?}");
        }
    }

    #[test]
    fn money_of_different_currencies_never_adds_up() {
        let ngn = Money::new(Decimal::new(1050, 2), Currency::NGN);
        let kes = Money::new(Decimal::ONE, Currency::KES);
        assert_eq!(ngn.plus(kes), None);
        assert_eq!(ngn.minus(kes), None);
        assert_eq!(ngn.plus(ngn).map(Money::amount), Some(Decimal::new(2100, 2)));
        assert_eq!(ngn.minus(ngn), Some(Money::zero(Currency::NGN)));
        assert_eq!(Money::new(Decimal::MAX, Currency::NGN).plus(ngn), None, "an overflow is refused, not wrapped");
    }

    #[test]
    fn checked_money_fits_its_currency() {
        let max = Decimal::from(1000);
        assert!(Money::checked(Decimal::new(15, 1), Currency::UGX, max).is_err(), "UGX has no minor unit");
        assert!(Money::checked(Decimal::ZERO, Currency::NGN, max).is_err());
        assert!(Money::checked(Decimal::from(1001), Currency::NGN, max).is_err());
        let m = Money::checked(Decimal::new(12_500, 2), Currency::NGN, max).unwrap();
        assert_eq!((m.amount(), m.currency(), m.display()), (Decimal::new(125, 0), Currency::NGN, "NGN 125.00".into()));
        assert_eq!(m.to_string(), "NGN 125");
    }
}
