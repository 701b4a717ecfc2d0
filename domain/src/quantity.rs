//! Bounded positive quantities.

use serde::{Deserialize, Serialize};

/// Why a quantity was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// Zero or negative.
    #[error("quantity must be at least 1, got {0}")]
    NotPositive(i64),
    /// Above [`Quantity::MAX`].
    #[error("quantity must be at most {max}, got {got}")]
    TooLarge {
        /// The bound.
        max: u32,
        /// What was asked for.
        got: i64,
    },
}

/// A count of units in `1..=Quantity::MAX`. Built by `Quantity::new`, so a value of
/// this type is always valid.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(try_from = "i64", into = "u32")]
pub struct Quantity(u32);

impl Quantity {
    /// The largest quantity one line or one movement may carry.
    pub const MAX: u32 = 100_000;

    /// Validates a count.
    ///
    /// # Errors
    /// [`QuantityError`] when `n` is not in `1..=MAX`.
    pub fn new(n: i64) -> Result<Self, QuantityError> {
        if n < 1 {
            return Err(QuantityError::NotPositive(n));
        }
        if n > i64::from(Self::MAX) {
            return Err(QuantityError::TooLarge {
                max: Self::MAX,
                got: n,
            });
        }
        // In range 1..=MAX, so it fits in u32.
        Ok(Self(u32::try_from(n).unwrap_or(Self::MAX)))
    }

    /// The count.
    #[must_use]
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<i64> for Quantity {
    type Error = QuantityError;
    fn try_from(n: i64) -> Result<Self, Self::Error> {
        Self::new(n)
    }
}

impl From<Quantity> for u32 {
    fn from(q: Quantity) -> Self {
        q.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_enforced() {
        assert_eq!(Quantity::new(0), Err(QuantityError::NotPositive(0)));
        assert_eq!(Quantity::new(-1), Err(QuantityError::NotPositive(-1)));
        assert!(matches!(
            Quantity::new(1 << 31),
            Err(QuantityError::TooLarge { .. })
        ));
        assert_eq!(Quantity::new(3).unwrap().get(), 3);
        assert!(serde_json::from_str::<Quantity>("0").is_err());
        assert_eq!(serde_json::from_str::<Quantity>("7").unwrap().get(), 7);
    }
}
