//! Money as exact decimals, never `f64`.
//!
//! Flutterwave sends major units as JSON numbers with decimals (`26.875`) and,
//! for virtual cards, as strings (`"5.00"`). serde_json would turn a number
//! into an `f64` before we saw it, so [`Amount`] reads the raw JSON text and
//! parses that, and writes its exact decimal text back as a JSON number.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(pub Decimal);

impl Amount {
    pub const ZERO: Amount = Amount(Decimal::ZERO);

    pub fn new(d: Decimal) -> Self {
        Amount(d)
    }

    pub fn decimal(self) -> Decimal {
        self.0
    }

    /// Parses plain decimal text (`"100"`, `"26.875"`, `"-1.5"`, `"1e3"`).
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        if t.is_empty() || t.len() > 64 {
            return None;
        }
        Decimal::from_str_exact(t).or_else(|_| Decimal::from_scientific(t)).ok().map(Amount)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for Amount {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Amount::parse(s).ok_or_else(|| format!("`{s}` is not a decimal amount"))
    }
}

impl From<Decimal> for Amount {
    fn from(d: Decimal) -> Self {
        Amount(d)
    }
}

/// Parses a raw JSON value that is a number or a numeric string.
fn from_raw(raw: &str) -> Result<Amount, String> {
    let t = raw.trim();
    let inner = t.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(t);
    Amount::parse(inner).ok_or_else(|| format!("expected a decimal amount, found {}", truncate(t)))
}

fn truncate(s: &str) -> &str {
    s.get(..s.len().min(32)).unwrap_or("")
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: Box<RawValue> = Deserialize::deserialize(d)?;
        from_raw(raw.get()).map_err(D::Error::custom)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw = RawValue::from_string(self.0.to_string()).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

/// For optional money fields that may be absent, `null`, `"N/A"` or malformed
/// while a transaction is pending: anything that is not an amount is `None`.
pub fn lenient_amount<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Amount>, D::Error> {
    let raw: Option<Box<RawValue>> = Deserialize::deserialize(d)?;
    Ok(raw.and_then(|r| from_raw(r.get()).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_strings_decode_exactly() {
        let a: Amount = serde_json::from_str("26.875").unwrap();
        assert_eq!(a.to_string(), "26.875");
        let a: Amount = serde_json::from_str("\"5.00\"").unwrap();
        assert_eq!(a.to_string(), "5.00");
        let a: Amount = serde_json::from_str("0.1").unwrap();
        assert_eq!(a.0, Decimal::new(1, 1));
        let a: Amount = serde_json::from_str("1e3").unwrap();
        assert_eq!(a.0, Decimal::new(1000, 0));
        assert!(serde_json::from_str::<Amount>("\"N/A\"").is_err());
        assert!(serde_json::from_str::<Amount>("null").is_err());
        assert_eq!(serde_json::to_string(&Amount(Decimal::new(10050, 2))).unwrap(), "100.50");
    }
}
