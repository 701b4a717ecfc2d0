//! Discount terms, as a coupon grants them.

use serde::{Deserialize, Serialize};

use super::error::{PricingConfigError, PricingError, same_currency};
use crate::Money;

/// How much a coupon takes off the merchandise subtotal. Never more than the
/// subtotal, never anything off shipping or tax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "DiscountRepr", into = "DiscountRepr")]
pub struct Discount(DiscountRepr);

/// The serialised shape, validated on the way in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum DiscountRepr {
    /// A share of the subtotal, in basis points (1 to 10000; 1000 = 10 %).
    Percentage {
        /// 1 to 10000.
        #[schemars(range(min = 1, max = 10_000))]
        basis_points: u32,
    },
    /// A fixed amount off (positive), capped at the subtotal.
    Fixed {
        /// The amount.
        amount: Money,
    },
}

impl TryFrom<DiscountRepr> for Discount {
    type Error = PricingConfigError;
    fn try_from(repr: DiscountRepr) -> Result<Self, Self::Error> {
        match repr {
            DiscountRepr::Percentage { basis_points } => Self::percentage(basis_points),
            DiscountRepr::Fixed { amount } => Self::fixed(amount),
        }
    }
}

impl From<Discount> for DiscountRepr {
    fn from(d: Discount) -> Self {
        d.0
    }
}

impl Discount {
    /// A percentage off, in basis points: 1 (0.01 %) to 10000 (100 %).
    ///
    /// # Errors
    /// [`PricingConfigError::PercentageOutOfRange`].
    pub fn percentage(basis_points: u32) -> Result<Self, PricingConfigError> {
        if (1..=10_000).contains(&basis_points) {
            Ok(Self(DiscountRepr::Percentage { basis_points }))
        } else {
            Err(PricingConfigError::PercentageOutOfRange { basis_points })
        }
    }

    /// A fixed amount off; positive.
    ///
    /// # Errors
    /// [`PricingConfigError::NonPositiveFixedDiscount`].
    pub fn fixed(amount: Money) -> Result<Self, PricingConfigError> {
        if amount.amount_minor() > 0 {
            Ok(Self(DiscountRepr::Fixed { amount }))
        } else {
            Err(PricingConfigError::NonPositiveFixedDiscount)
        }
    }

    /// The percentage in basis points, for a percentage discount.
    #[must_use]
    pub fn as_percentage(&self) -> Option<u32> {
        match self.0 {
            DiscountRepr::Percentage { basis_points } => Some(basis_points),
            DiscountRepr::Fixed { .. } => None,
        }
    }

    /// The amount, for a fixed discount.
    #[must_use]
    pub fn as_fixed(&self) -> Option<Money> {
        match self.0 {
            DiscountRepr::Fixed { amount } => Some(amount),
            DiscountRepr::Percentage { .. } => None,
        }
    }

    /// What this discount takes off `subtotal`: the percentage rounded half away from
    /// zero, or the fixed amount; at most the subtotal itself, never negative. The
    /// coupon aggregate and [`Pricing::quote`](super::Pricing::quote) both call this,
    /// so a redemption and a quote agree to the minor unit.
    ///
    /// # Errors
    /// [`PricingError::CurrencyMismatch`] for a fixed discount in another currency,
    /// [`PricingError::Overflow`].
    pub fn amount_for(&self, subtotal: Money) -> Result<Money, PricingError> {
        if subtotal.amount_minor() <= 0 {
            return Ok(Money::zero(subtotal.currency()));
        }
        let off = match self.0 {
            DiscountRepr::Percentage { basis_points } => {
                subtotal.checked_percent_bp(basis_points)?
            }
            DiscountRepr::Fixed { amount } => {
                same_currency(subtotal.currency(), amount)?;
                amount
            }
        };
        Ok(if off.amount_minor() > subtotal.amount_minor() {
            subtotal
        } else {
            off
        })
    }
}
