//! Pricing: what a checkout costs, computed on the server from catalog prices.
//!
//! [`Pricing::quote`] turns priced lines (unit prices and weights the caller looked up
//! in the catalog; a client never sends a price that is trusted), a shipping address,
//! a shipping method and an optional coupon discount into a [`Quote`]: per-line
//! totals, discount shares and taxes, shipping, and the grand total. It is pure
//! arithmetic on [`Money`](crate::Money): no clock, no I/O, no floats.
//!
//! **Configuration.** A [`Pricing`] is one currency's price list of adjustments:
//! - a [`TaxTable`]: rates in basis points by country and, optionally, region
//!   (the region rule wins over the country rule), with prices either tax-exclusive
//!   (tax is added) or tax-inclusive (tax is contained), and per rule whether
//!   shipping is taxed; a destination without a rule is taxed at zero;
//! - [`ShippingMethod`]s, each with rates per [`ShippingZone`] (a set of countries):
//!   a flat price or weight tiers by grams, optionally free at or above a threshold.
//!
//! **Arithmetic, in order.**
//! 1. `line_total = unit_price * quantity`; `subtotal = Σ line_total`.
//! 2. `discount = coupon.amount_for(subtotal)`, never more than the subtotal, then
//!    allocated to the lines in proportion to their totals (floor, then the leftover
//!    minor units one each to the lines with the largest remainders, earlier lines
//!    first on ties), so the shares add up to the discount exactly and none exceeds
//!    its line.
//! 3. `shipping`: the method's rate for the destination's zone, zero when
//!    `subtotal - discount` reaches the zone's free-shipping threshold.
//! 4. Tax, **per line** on `line_total - line discount` and on shipping when the rule
//!    taxes it, each rounded to the minor unit **half away from zero**
//!    ([`Money::checked_percent_bp`](crate::Money::checked_percent_bp) for exclusive
//!    prices; the same rounding of `gross * rate / (10_000 + rate)` for the tax an
//!    inclusive price contains). The order's tax is the sum of those rounded amounts,
//!    never a separately rounded total, so the parts always add up.
//! 5. Tax-exclusive: `total = subtotal - discount + shipping + tax`.
//!    Tax-inclusive: `total = subtotal - discount + shipping` and `tax` is the part of
//!    it that is tax. Either way the total is never negative.

mod config;
mod discount;
mod error;
mod quote;
mod rounding;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use config::{
    Pricing, ShippingMethod, ShippingMethodCode, ShippingRate, ShippingZone, TaxMode, TaxRate,
    TaxRule, TaxTable, WeightTier, ZoneRate,
};
pub use discount::Discount;
pub use error::{PricingConfigError, PricingError};
pub use quote::{PricedLine, Quote, QuotedLine};
