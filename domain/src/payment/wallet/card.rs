//! What is kept of a card: brand, last four digits, expiry. Never the number.

use std::fmt;

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};

use super::error::WalletError;

/// The card network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CardBrand {
    /// Visa.
    Visa,
    /// Mastercard.
    Mastercard,
    /// American Express.
    Amex,
    /// Discover.
    Discover,
    /// Diners Club.
    Diners,
    /// JCB.
    Jcb,
    /// UnionPay.
    Unionpay,
    /// A brand the provider did not name.
    Unknown,
}

/// The last four digits of a card number: exactly four ASCII digits, so a full card
/// number cannot be stored in it by mistake.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Last4([u8; 4]);

impl Last4 {
    /// Validates four digits.
    ///
    /// # Errors
    /// [`WalletError::InvalidLast4`] for anything but exactly four ASCII digits.
    pub fn parse(raw: &str) -> Result<Self, WalletError> {
        match raw.as_bytes() {
            &[a, b, c, d] if [a, b, c, d].iter().all(u8::is_ascii_digit) => Ok(Self([a, b, c, d])),
            _ => Err(WalletError::InvalidLast4),
        }
    }

    /// The four digits.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("????")
    }
}

impl fmt::Debug for Last4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Last4({})", self.as_str())
    }
}

impl fmt::Display for Last4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for Last4 {
    type Error = WalletError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Last4> for String {
    fn from(l: Last4) -> Self {
        l.as_str().to_owned()
    }
}

impl schemars::JsonSchema for Last4 {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Last4".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "The last four digits of a card number",
            "pattern": "^[0-9]{4}$",
        })
    }
}

/// A card's expiry month and year. The card is valid through the end of that month.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(try_from = "RawExpiry")]
pub struct CardExpiry {
    /// Four-digit year.
    year: u16,
    /// 1 to 12.
    month: u8,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct RawExpiry {
    /// Four-digit year, 2000 to 2099.
    #[schemars(range(min = 2000, max = 2099))]
    year: u16,
    /// 1 to 12.
    #[schemars(range(min = 1, max = 12))]
    month: u8,
}

impl TryFrom<RawExpiry> for CardExpiry {
    type Error = WalletError;
    fn try_from(raw: RawExpiry) -> Result<Self, Self::Error> {
        Self::new(raw.month, raw.year)
    }
}

impl CardExpiry {
    /// Validates a month (1 to 12) and a four-digit year (2000 to 2099).
    ///
    /// # Errors
    /// [`WalletError::InvalidExpiry`].
    pub fn new(month: u8, year: u16) -> Result<Self, WalletError> {
        if (1..=12).contains(&month) && (2000..=2099).contains(&year) {
            Ok(Self { year, month })
        } else {
            Err(WalletError::InvalidExpiry { month, year })
        }
    }

    /// The month, 1 to 12.
    #[must_use]
    pub fn month(self) -> u8 {
        self.month
    }

    /// The year.
    #[must_use]
    pub fn year(self) -> u16 {
        self.year
    }

    /// Whether the card has expired at `at`: after the last day of its expiry month.
    #[must_use]
    pub fn is_expired_at(self, at: DateTime<Utc>) -> bool {
        let now = (at.year(), at.month());
        now > (i32::from(self.year), u32::from(self.month))
    }
}

impl fmt::Display for CardExpiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}/{}", self.month, self.year)
    }
}
