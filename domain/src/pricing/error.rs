//! Why a pricing configuration or a quote was refused.

use super::config::ShippingMethodCode;
use crate::{CountryCode, Currency, Money, MoneyError, Sku};

/// A pricing configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingConfigError {
    /// A tax rate above 100 %.
    #[error("tax rate must be at most 10000 basis points, got {basis_points}")]
    TaxRateOutOfRange {
        /// The rate asked for.
        basis_points: u32,
    },
    /// A percentage discount of 0 or above 100 %.
    #[error("percentage discount must be 1 to 10000 basis points, got {basis_points}")]
    PercentageOutOfRange {
        /// The percentage asked for.
        basis_points: u32,
    },
    /// A fixed discount of zero or less.
    #[error("fixed discount must be positive")]
    NonPositiveFixedDiscount,
    /// Two tax rules for the same country and region.
    #[error("more than one tax rule for {}{}", country.as_str(), region.as_deref().map(|r| format!("/{r}")).unwrap_or_default())]
    DuplicateTaxRule {
        /// The country.
        country: CountryCode,
        /// The region, if the rule has one.
        region: Option<String>,
    },
    /// A region that is blank or longer than 64 characters.
    #[error("tax rule region must be 1 to 64 characters")]
    InvalidRegion,
    /// A shipping method code outside `[a-z0-9_-]{1,32}`.
    #[error("shipping method code must be 1 to 32 of `a-z 0-9 _ -`, got `{0}`")]
    InvalidMethodCode(String),
    /// A blank name (of a zone or a method).
    #[error("{what} name must not be blank")]
    BlankName {
        /// What was named.
        what: &'static str,
    },
    /// A zone without countries.
    #[error("shipping zone `{zone}` has no countries")]
    EmptyZone {
        /// The zone.
        zone: String,
    },
    /// A method without rates.
    #[error("shipping method `{method}` has no rates")]
    NoRates {
        /// The method.
        method: ShippingMethodCode,
    },
    /// A country in two zones of the same method, so its rate would be ambiguous.
    #[error("shipping method `{method}` has {} in more than one zone", country.as_str())]
    OverlappingZones {
        /// The method.
        method: ShippingMethodCode,
        /// The country in two zones.
        country: CountryCode,
    },
    /// Two methods with the same code.
    #[error("shipping method `{method}` is defined twice")]
    DuplicateMethod {
        /// The method.
        method: ShippingMethodCode,
    },
    /// Weight tiers that are empty or not strictly ascending.
    #[error("weight tiers must be non-empty and strictly ascending by weight")]
    InvalidWeightTiers,
    /// A negative price or threshold.
    #[error("shipping prices and thresholds must not be negative")]
    NegativeAmount,
    /// An amount in another currency than the pricing's.
    #[error("amount in {got} where the pricing is in {expected}")]
    CurrencyMismatch {
        /// The pricing's currency.
        expected: Currency,
        /// The offending amount's currency.
        got: Currency,
    },
}

/// Why a quote could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    /// Nothing to price.
    #[error("a quote needs at least one line")]
    NoLines,
    /// A line whose catalog price is negative.
    #[error("line {sku} has a negative unit price")]
    NegativePrice {
        /// The line's SKU.
        sku: Sku,
    },
    /// A line name that is blank.
    #[error("line {sku} has no product name")]
    BlankLineName {
        /// The line's SKU.
        sku: Sku,
    },
    /// An amount in another currency than the pricing's (a line or a fixed coupon).
    #[error("amount in {got} where the pricing is in {expected}")]
    CurrencyMismatch {
        /// The pricing's currency.
        expected: Currency,
        /// The offending amount's currency.
        got: Currency,
    },
    /// No shipping method has this code.
    #[error("unknown shipping method `{method}`")]
    UnknownShippingMethod {
        /// The code asked for.
        method: ShippingMethodCode,
    },
    /// The method does not ship to the destination.
    #[error("shipping method `{method}` does not ship to {}", country.as_str())]
    NoShippingToCountry {
        /// The method.
        method: ShippingMethodCode,
        /// The destination.
        country: CountryCode,
    },
    /// The parcel is heavier than the method's heaviest weight tier.
    #[error("shipping method `{method}` takes at most {max_grams} g, the order weighs {grams} g")]
    TooHeavy {
        /// The method.
        method: ShippingMethodCode,
        /// The order's weight.
        grams: u64,
        /// The heaviest tier.
        max_grams: u32,
    },
    /// An amount too large to represent.
    #[error("amounts overflow")]
    Overflow,
}

impl From<MoneyError> for PricingError {
    fn from(e: MoneyError) -> Self {
        match e {
            MoneyError::CurrencyMismatch { left, right } => Self::CurrencyMismatch {
                expected: left,
                got: right,
            },
            // Only overflow is left: pricing never parses currencies, and negative
            // amounts are refused before any arithmetic.
            MoneyError::Overflow | MoneyError::UnknownCurrency(_) | MoneyError::Negative => {
                Self::Overflow
            }
        }
    }
}

/// The single check that an amount is in the expected currency.
pub(super) fn same_currency(expected: Currency, amount: Money) -> Result<(), PricingError> {
    if amount.currency() == expected {
        Ok(())
    } else {
        Err(PricingError::CurrencyMismatch {
            expected,
            got: amount.currency(),
        })
    }
}
