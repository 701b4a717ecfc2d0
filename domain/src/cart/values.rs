//! The cart's value objects and plain data.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Money, Quantity, Sku};

/// Why a guest key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuestKeyError {
    /// Fewer than [`GuestKey::MIN_LEN`] or more than [`GuestKey::MAX_LEN`] characters.
    #[error("guest key must be {min} to {max} characters long")]
    Length {
        /// Lower bound.
        min: usize,
        /// Upper bound.
        max: usize,
    },
    /// A character outside `A-Z a-z 0-9 - _`.
    #[error("guest key may contain only letters, digits, `-` and `_`")]
    InvalidCharacter,
}

/// The opaque session key that identifies a guest (a signed-cookie value, say),
/// URL-safe and long enough not to be guessed.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct GuestKey(String);

impl GuestKey {
    /// Shortest key accepted.
    pub const MIN_LEN: usize = 16;
    /// Longest key accepted.
    pub const MAX_LEN: usize = 128;

    /// Validates a key (case-sensitive, not trimmed: it is machine-made).
    ///
    /// # Errors
    /// [`GuestKeyError`] naming the broken rule.
    pub fn parse(raw: &str) -> Result<Self, GuestKeyError> {
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&raw.len()) {
            return Err(GuestKeyError::Length {
                min: Self::MIN_LEN,
                max: Self::MAX_LEN,
            });
        }
        if !raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(GuestKeyError::InvalidCharacter);
        }
        Ok(Self(raw.to_owned()))
    }

    /// The key.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for GuestKey {
    type Error = GuestKeyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<GuestKey> for String {
    fn from(k: GuestKey) -> Self {
        k.0
    }
}

impl fmt::Display for GuestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whose cart it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CartOwner {
    /// A signed-in user.
    User {
        /// The user's id.
        user_id: Uuid,
    },
    /// A guest, until they sign in and the cart is merged into theirs.
    Guest {
        /// The guest's session key.
        guest_key: GuestKey,
    },
}

/// Where a cart is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CartStatus {
    /// Accepts changes.
    Open,
    /// Checked out: closed for good.
    CheckedOut,
    /// A guest cart whose lines moved into a user's cart: closed for good.
    Merged,
}

/// One line of a cart: a SKU, the product it belongs to and how many. Carts hold no
/// prices; those come from the catalog at checkout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CartLine {
    /// What.
    pub sku: Sku,
    /// The catalog product the SKU belongs to.
    pub product_id: Uuid,
    /// How many.
    pub quantity: Quantity,
}

/// A priced line of a checked-out cart: the snapshot an order is placed from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CheckedOutLine {
    /// What.
    pub sku: Sku,
    /// The catalog product the SKU belongs to.
    pub product_id: Uuid,
    /// How many.
    pub quantity: Quantity,
    /// Catalog price of one unit at checkout.
    pub unit_price: Money,
    /// `unit_price * quantity`.
    pub line_total: Money,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_keys_are_url_safe_and_bounded() {
        assert_eq!(
            GuestKey::parse("gk_0123456789abcdef").unwrap().as_str(),
            "gk_0123456789abcdef"
        );
        assert_eq!(
            GuestKey::parse("short"),
            Err(GuestKeyError::Length { min: 16, max: 128 })
        );
        assert_eq!(
            GuestKey::parse(&"k".repeat(129)),
            Err(GuestKeyError::Length { min: 16, max: 128 })
        );
        assert_eq!(
            GuestKey::parse("gk 0123456789abcdef"),
            Err(GuestKeyError::InvalidCharacter)
        );
        assert!(serde_json::from_str::<GuestKey>("\"tiny\"").is_err());
    }

    #[test]
    fn owners_serialise_with_a_kind_tag() {
        let owner = CartOwner::Guest {
            guest_key: GuestKey::parse("gk_0123456789abcdef").unwrap(),
        };
        assert_eq!(
            serde_json::to_value(&owner).unwrap(),
            serde_json::json!({"kind": "guest", "guest_key": "gk_0123456789abcdef"})
        );
    }
}
