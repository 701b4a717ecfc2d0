//! Stock-keeping units.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a SKU was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkuError {
    /// Empty after trimming.
    #[error("sku must not be empty")]
    Empty,
    /// Longer than [`Sku::MAX_LEN`].
    #[error("sku must be at most {max} characters")]
    TooLong {
        /// The bound.
        max: usize,
    },
    /// A character outside `A-Z 0-9 - _ .`.
    #[error("sku may contain only letters, digits, `-`, `_` and `.`")]
    InvalidCharacter,
}

/// A stock-keeping unit: the identity of something that is stocked and sold, e.g.
/// `TSHIRT-RED-M`. Normalised to upper case.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct Sku(String);

impl Sku {
    /// The longest SKU accepted.
    pub const MAX_LEN: usize = 64;

    /// Validates and normalises a SKU.
    ///
    /// # Errors
    /// [`SkuError`] naming the broken rule.
    pub fn parse(raw: &str) -> Result<Self, SkuError> {
        let s = raw.trim().to_ascii_uppercase();
        if s.is_empty() {
            return Err(SkuError::Empty);
        }
        if s.chars().count() > Self::MAX_LEN {
            return Err(SkuError::TooLong { max: Self::MAX_LEN });
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(SkuError::InvalidCharacter);
        }
        Ok(Self(s))
    }

    /// The SKU text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Sku {
    type Error = SkuError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Sku> for String {
    fn from(s: Sku) -> Self {
        s.0
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skus_are_normalised_and_validated() {
        assert_eq!(
            Sku::parse(" tshirt-red-m ").unwrap().as_str(),
            "TSHIRT-RED-M"
        );
        assert_eq!(Sku::parse("  "), Err(SkuError::Empty));
        assert_eq!(Sku::parse("a b"), Err(SkuError::InvalidCharacter));
        assert!(matches!(
            Sku::parse(&"x".repeat(65)),
            Err(SkuError::TooLong { .. })
        ));
    }
}
