//! Currencies Sika accepts, each knowing its minor unit: a UGX amount has no
//! decimals, an NGN amount at most two. Amounts are checked against it
//! wherever money enters (API, console, refunds).

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

macro_rules! currencies {
    ($($code:ident = $digits:literal, $name:literal;)*) => {
        /// A Flutterwave collection currency (ISO 4217).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Currency { $($code),* }

        impl Currency {
            pub const ALL: &'static [Currency] = &[$(Currency::$code),*];

            pub fn code(self) -> &'static str {
                match self { $(Currency::$code => stringify!($code)),* }
            }

            /// Digits after the decimal point (ISO 4217 minor unit).
            pub fn minor_units(self) -> u32 {
                match self { $(Currency::$code => $digits),* }
            }

            pub fn name(self) -> &'static str {
                match self { $(Currency::$code => $name),* }
            }
        }
    };
}

currencies! {
    NGN = 2, "Nigerian naira";
    GHS = 2, "Ghanaian cedi";
    KES = 2, "Kenyan shilling";
    UGX = 0, "Ugandan shilling";
    TZS = 2, "Tanzanian shilling";
    RWF = 0, "Rwandan franc";
    ZAR = 2, "South African rand";
    ZMW = 2, "Zambian kwacha";
    MWK = 2, "Malawian kwacha";
    XAF = 0, "Central African CFA franc";
    XOF = 0, "West African CFA franc";
    EGP = 2, "Egyptian pound";
    USD = 2, "US dollar";
    EUR = 2, "Euro";
    GBP = 2, "Pound sterling";
    CAD = 2, "Canadian dollar";
}

/// Why an amount does not fit its currency, in words for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AmountError {
    NotPositive,
    TooPrecise { currency: Currency },
    TooLarge { max: Decimal },
}

impl fmt::Display for AmountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AmountError::NotPositive => f.write_str("must be greater than 0"),
            AmountError::TooPrecise { currency } => match currency.minor_units() {
                0 => write!(f, "must be a whole number: {} has no minor unit", currency.code()),
                n => write!(f, "must have at most {n} decimal places for {}", currency.code()),
            },
            AmountError::TooLarge { max } => write!(f, "must not exceed {max}"),
        }
    }
}

impl Currency {
    pub fn parse(s: &str) -> Option<Currency> {
        let s = s.trim();
        Currency::ALL.iter().copied().find(|c| c.code().eq_ignore_ascii_case(s))
    }

    /// Checks that `amount` is positive, at most `max`, and has no more
    /// decimals than this currency's minor unit; returns it normalized.
    pub fn check_amount(self, amount: Decimal, max: Decimal) -> Result<Decimal, AmountError> {
        if amount <= Decimal::ZERO {
            return Err(AmountError::NotPositive);
        }
        let amount = amount.normalize();
        if amount.scale() > self.minor_units() {
            return Err(AmountError::TooPrecise { currency: self });
        }
        if amount > max {
            return Err(AmountError::TooLarge { max });
        }
        Ok(amount)
    }

    /// `1,234.50` for NGN, `1,234` for UGX: grouped, with the minor-unit
    /// digits — and never rounded: a figure with more decimals (Flutterwave's
    /// `26.875` fee) is shown with all of them.
    pub fn format(self, amount: Decimal) -> String {
        let rounded = amount.normalize();
        let digits = self.minor_units().max(rounded.scale());
        let text = format!("{:.*}", digits as usize, rounded.abs());
        let (int, frac) = text.split_once('.').map_or((text.as_str(), None), |(i, f)| (i, Some(f)));
        let mut grouped = String::new();
        for (i, ch) in int.chars().enumerate() {
            if i > 0 && (int.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(ch);
        }
        let sign = if rounded.is_sign_negative() && !rounded.is_zero() { "-" } else { "" };
        match frac {
            Some(f) => format!("{sign}{grouped}.{f}"),
            None => format!("{sign}{grouped}"),
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::parse(s).ok_or_else(|| format!("must be one of {}", Currency::list()))
    }
}

impl Currency {
    /// `NGN, GHS, ...` for messages.
    pub fn list() -> String {
        Currency::ALL.iter().map(|c| c.code()).collect::<Vec<_>>().join(", ")
    }
}

impl serde::Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_units_decide_the_decimals() {
        let max = Decimal::from(1_000_000);
        assert_eq!(Currency::NGN.check_amount(Decimal::new(15005, 1), max), Ok(Decimal::new(15005, 1)));
        assert_eq!(
            Currency::NGN.check_amount(Decimal::new(1001, 3), max),
            Err(AmountError::TooPrecise { currency: Currency::NGN })
        );
        for zero in [Currency::UGX, Currency::XAF, Currency::XOF, Currency::RWF] {
            assert!(zero.check_amount(Decimal::new(15, 1), max).is_err(), "{zero} takes no decimals");
            assert_eq!(zero.check_amount(Decimal::new(1500, 2), max), Ok(Decimal::from(15)), "15.00 is 15");
        }
        assert_eq!(Currency::USD.check_amount(Decimal::ZERO, max), Err(AmountError::NotPositive));
        assert!(Currency::USD.check_amount(Decimal::from(2_000_000), max).is_err());
        assert_eq!(Currency::parse(" ngn "), Some(Currency::NGN));
        assert_eq!(Currency::parse("BTC"), None);
        assert!(AmountError::TooPrecise { currency: Currency::UGX }.to_string().contains("whole number"));
    }

    #[test]
    fn amounts_are_formatted_with_groups_and_minor_digits() {
        assert_eq!(Currency::NGN.format(Decimal::new(150005, 1)), "15,000.50");
        assert_eq!(Currency::NGN.format(Decimal::from(1)), "1.00");
        assert_eq!(Currency::UGX.format(Decimal::from(1_234_567)), "1,234,567");
        assert_eq!(Currency::USD.format(Decimal::new(-12345, 2)), "-123.45");
        assert_eq!(Currency::USD.format(Decimal::new(999, 0)), "999.00");
        assert_eq!(Currency::NGN.format(Decimal::new(26875, 3)), "26.875", "never rounded");
    }

    #[test]
    fn every_currency_shows_its_own_minor_unit() {
        // ISO 4217, independently of the table above: these have no minor unit.
        let whole = ["UGX", "RWF", "XAF", "XOF"];
        for c in Currency::ALL {
            let shown = c.format(Decimal::new(123_456_789, 0));
            let expected = if whole.contains(&c.code()) { "123,456,789" } else { "123,456,789.00" };
            assert_eq!(shown, expected, "{c}");
            assert_eq!(c.format(Decimal::ZERO), if whole.contains(&c.code()) { "0" } else { "0.00" }, "{c}");
            assert_eq!(c.format(Decimal::new(1000, 0)), if whole.contains(&c.code()) { "1,000" } else { "1,000.00" });
        }
        assert_eq!(Currency::KES.format(Decimal::new(5, 1)), "0.50");
        assert_eq!(Currency::GHS.format(Decimal::new(-100_000_005, 2)), "-1,000,000.05");
    }
}
