//! Money: integer minor units plus an ISO 4217 currency. Never floats.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a money value or operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The code is not a supported ISO 4217 currency.
    #[error("unknown currency code `{0}`")]
    UnknownCurrency(String),
    /// Two amounts in different currencies were combined.
    #[error("currency mismatch: {left} vs {right}")]
    CurrencyMismatch {
        /// Left operand's currency.
        left: Currency,
        /// Right operand's currency.
        right: Currency,
    },
    /// The result does not fit in 64-bit minor units.
    #[error("amount overflow")]
    Overflow,
    /// A negative amount where only zero or more is allowed.
    #[error("amount must not be negative")]
    Negative,
}

/// ISO 4217 currencies the platform accepts, with their minor-unit exponent.
const CURRENCIES: &[(&str, u8)] = &[
    ("AUD", 2),
    ("BRL", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CNY", 2),
    ("CZK", 2),
    ("DKK", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("HKD", 2),
    ("INR", 2),
    ("JPY", 0),
    ("KRW", 0),
    ("MXN", 2),
    ("NOK", 2),
    ("NZD", 2),
    ("PLN", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("USD", 2),
    ("ZAR", 2),
];

/// An ISO 4217 currency code, validated against the supported list.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency(&'static str);

impl Currency {
    /// US dollar.
    pub const USD: Self = Self("USD");
    /// Euro.
    pub const EUR: Self = Self("EUR");
    /// Pound sterling.
    pub const GBP: Self = Self("GBP");
    /// Japanese yen (no minor unit).
    pub const JPY: Self = Self("JPY");

    /// Parses an ISO 4217 code, case-insensitively.
    ///
    /// # Errors
    /// [`MoneyError::UnknownCurrency`] when the code is not supported.
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        let upper = code.trim().to_ascii_uppercase();
        CURRENCIES
            .iter()
            .find(|(c, _)| *c == upper)
            .map(|(c, _)| Self(c))
            .ok_or_else(|| MoneyError::UnknownCurrency(code.to_owned()))
    }

    /// The three-letter code.
    #[must_use]
    pub fn code(self) -> &'static str {
        self.0
    }

    /// Digits after the decimal point (2 for EUR, 0 for JPY).
    #[must_use]
    pub fn exponent(self) -> u8 {
        CURRENCIES
            .iter()
            .find(|(c, _)| *c == self.0)
            .map_or(2, |(_, e)| *e)
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        Self::parse(&code).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for Currency {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Currency".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let codes: Vec<&str> = CURRENCIES.iter().map(|(c, _)| *c).collect();
        schemars::json_schema!({
            "type": "string",
            "description": "ISO 4217 currency code",
            "enum": codes,
        })
    }
}

/// An amount of money in integer minor units (cents) of one currency.
///
/// Arithmetic is checked: it refuses to mix currencies or overflow instead of
/// silently wrapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Money {
    amount_minor: i64,
    currency: Currency,
}

impl Money {
    /// Builds an amount from minor units.
    #[must_use]
    pub const fn new(amount_minor: i64, currency: Currency) -> Self {
        Self {
            amount_minor,
            currency,
        }
    }

    /// Builds a non-negative amount, as a price or a payment must be.
    ///
    /// # Errors
    /// [`MoneyError::Negative`] for a negative amount.
    pub fn non_negative(amount_minor: i64, currency: Currency) -> Result<Self, MoneyError> {
        if amount_minor < 0 {
            return Err(MoneyError::Negative);
        }
        Ok(Self::new(amount_minor, currency))
    }

    /// Zero in `currency`.
    #[must_use]
    pub const fn zero(currency: Currency) -> Self {
        Self::new(0, currency)
    }

    /// The amount in minor units.
    #[must_use]
    pub const fn amount_minor(self) -> i64 {
        self.amount_minor
    }

    /// The currency.
    #[must_use]
    pub const fn currency(self) -> Currency {
        self.currency
    }

    /// Whether the amount is below zero.
    #[must_use]
    pub const fn is_negative(self) -> bool {
        self.amount_minor < 0
    }

    /// Whether the amount is exactly zero.
    #[must_use]
    pub const fn is_zero(self) -> bool {
        self.amount_minor == 0
    }

    fn same_currency(self, other: Self) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }

    /// `self + other`.
    ///
    /// # Errors
    /// Currency mismatch or overflow.
    pub fn checked_add(self, other: Self) -> Result<Self, MoneyError> {
        self.same_currency(other)?;
        self.amount_minor
            .checked_add(other.amount_minor)
            .map(|a| Self::new(a, self.currency))
            .ok_or(MoneyError::Overflow)
    }

    /// `self - other`.
    ///
    /// # Errors
    /// Currency mismatch or overflow.
    pub fn checked_sub(self, other: Self) -> Result<Self, MoneyError> {
        self.same_currency(other)?;
        self.amount_minor
            .checked_sub(other.amount_minor)
            .map(|a| Self::new(a, self.currency))
            .ok_or(MoneyError::Overflow)
    }

    /// `self * factor` (a line total from a unit price and a quantity, say).
    ///
    /// # Errors
    /// Overflow.
    pub fn checked_mul(self, factor: i64) -> Result<Self, MoneyError> {
        self.amount_minor
            .checked_mul(factor)
            .map(|a| Self::new(a, self.currency))
            .ok_or(MoneyError::Overflow)
    }

    /// `self * basis_points / 10_000`, rounded half away from zero: taxes and
    /// percentage discounts. 1 basis point = 0.01 %.
    ///
    /// # Errors
    /// Overflow.
    pub fn checked_percent_bp(self, basis_points: u32) -> Result<Self, MoneyError> {
        let product = i128::from(self.amount_minor) * i128::from(basis_points);
        let half = if product >= 0 { 5_000 } else { -5_000 };
        let rounded = (product + half) / 10_000;
        i64::try_from(rounded)
            .map(|a| Self::new(a, self.currency))
            .map_err(|_| MoneyError::Overflow)
    }

    /// Sums amounts in one currency; the sum of nothing is zero in `currency`.
    ///
    /// # Errors
    /// Currency mismatch or overflow.
    pub fn sum<I: IntoIterator<Item = Self>>(
        currency: Currency,
        items: I,
    ) -> Result<Self, MoneyError> {
        items
            .into_iter()
            .try_fold(Self::zero(currency), Self::checked_add)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exp = u32::from(self.currency.exponent());
        if exp == 0 {
            return write!(f, "{} {}", self.amount_minor, self.currency);
        }
        let scale = 10_i64.pow(exp);
        let sign = if self.amount_minor < 0 { "-" } else { "" };
        let abs = self.amount_minor.unsigned_abs();
        let scale = scale.unsigned_abs();
        write!(
            f,
            "{sign}{}.{:0width$} {}",
            abs / scale,
            abs % scale,
            self.currency,
            width = exp as usize
        )
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn currency_is_validated_and_normalised() {
        assert_eq!(Currency::parse("eur").unwrap(), Currency::EUR);
        assert_eq!(
            Currency::parse("XXX"),
            Err(MoneyError::UnknownCurrency("XXX".into()))
        );
        let json = serde_json::to_string(&Currency::JPY).unwrap();
        assert_eq!(json, "\"JPY\"");
        assert!(serde_json::from_str::<Currency>("\"ABC\"").is_err());
    }

    #[test]
    fn mixing_currencies_is_refused() {
        let a = Money::new(100, Currency::EUR);
        let b = Money::new(100, Currency::USD);
        assert!(matches!(
            a.checked_add(b),
            Err(MoneyError::CurrencyMismatch { .. })
        ));
    }

    #[test]
    fn overflow_is_refused() {
        let a = Money::new(i64::MAX, Currency::EUR);
        assert_eq!(
            a.checked_add(Money::new(1, Currency::EUR)),
            Err(MoneyError::Overflow)
        );
        assert_eq!(a.checked_mul(2), Err(MoneyError::Overflow));
    }

    #[test]
    fn percent_rounds_half_away_from_zero() {
        let a = Money::new(1_005, Currency::EUR);
        // 10.05 * 20 % = 2.01
        assert_eq!(a.checked_percent_bp(2_000).unwrap().amount_minor(), 201);
        // 0.05 * 10 % = 0.005 -> 0.01
        assert_eq!(
            Money::new(5, Currency::EUR)
                .checked_percent_bp(1_000)
                .unwrap()
                .amount_minor(),
            1
        );
    }

    #[test]
    fn display_uses_the_currency_exponent() {
        assert_eq!(Money::new(-1_234, Currency::EUR).to_string(), "-12.34 EUR");
        assert_eq!(Money::new(500, Currency::JPY).to_string(), "500 JPY");
    }

    proptest! {
        #[test]
        fn add_then_sub_round_trips(a in -1_000_000_000_000i64..1_000_000_000_000, b in -1_000_000_000_000i64..1_000_000_000_000) {
            let x = Money::new(a, Currency::USD);
            let y = Money::new(b, Currency::USD);
            prop_assert_eq!(x.checked_add(y).unwrap().checked_sub(y).unwrap(), x);
        }
    }
}
