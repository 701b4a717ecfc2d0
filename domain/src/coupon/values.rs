//! Coupon codes.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a coupon code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CouponCodeError {
    /// Shorter than [`CouponCode::MIN_LEN`] or longer than [`CouponCode::MAX_LEN`].
    #[error("coupon code must be {min} to {max} characters")]
    Length {
        /// The lower bound.
        min: usize,
        /// The upper bound.
        max: usize,
    },
    /// A character outside `A-Z 0-9 - _`.
    #[error("coupon code may contain only letters, digits, `-` and `_`")]
    InvalidCharacter,
}

/// A coupon code as customers type it, normalised: trimmed and upper case, so
/// `summer-10` and ` SUMMER-10` are one coupon. It is the coupon's aggregate id.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct CouponCode(String);

impl CouponCode {
    /// The shortest code.
    pub const MIN_LEN: usize = 3;
    /// The longest code.
    pub const MAX_LEN: usize = 32;

    /// Validates and normalises a code.
    ///
    /// # Errors
    /// [`CouponCodeError`] naming the broken rule.
    pub fn parse(raw: &str) -> Result<Self, CouponCodeError> {
        let code = raw.trim().to_ascii_uppercase();
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&code.chars().count()) {
            return Err(CouponCodeError::Length {
                min: Self::MIN_LEN,
                max: Self::MAX_LEN,
            });
        }
        if !code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(CouponCodeError::InvalidCharacter);
        }
        Ok(Self(code))
    }

    /// The code, which is also the aggregate id.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CouponCode {
    type Error = CouponCodeError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<CouponCode> for String {
    fn from(c: CouponCode) -> Self {
        c.0
    }
}

impl fmt::Display for CouponCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_normalised_and_validated() {
        assert_eq!(
            CouponCode::parse(" summer-10 ").unwrap().as_str(),
            "SUMMER-10"
        );
        assert_eq!(
            CouponCode::parse("ab"),
            Err(CouponCodeError::Length { min: 3, max: 32 })
        );
        assert!(CouponCode::parse(&"A".repeat(33)).is_err());
        assert_eq!(
            CouponCode::parse("SUM MER"),
            Err(CouponCodeError::InvalidCharacter)
        );
        assert_eq!(
            CouponCode::parse("ÉTÉ10"),
            Err(CouponCodeError::InvalidCharacter)
        );
        assert!(serde_json::from_str::<CouponCode>("\"x\"").is_err());
        assert_eq!(
            serde_json::from_str::<CouponCode>("\"welcome\"")
                .unwrap()
                .as_str(),
            "WELCOME"
        );
    }
}
