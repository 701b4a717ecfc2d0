//! The quote: every amount of a checkout, computed from catalog prices.

use serde::Serialize;
use uuid::Uuid;

use super::config::{Pricing, ShippingMethodCode, TaxMode, TaxRate};
use super::discount::Discount;
use super::error::{PricingError, same_currency};
use super::rounding::div_round_half_away;
use crate::order::OrderLine;
use crate::{Address, Currency, Money, Quantity, Sku};

/// A line to price. The caller fills `unit_price` and `unit_weight_grams` from the
/// catalog (product or variant), never from the client's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedLine {
    /// What.
    pub sku: Sku,
    /// The catalog product.
    pub product_id: Uuid,
    /// The product's name now.
    pub name: String,
    /// The catalog price of one unit (net or gross, per the tax table's mode).
    pub unit_price: Money,
    /// How many.
    pub quantity: Quantity,
    /// The shipping weight of one unit, in grams (0 when the catalog has none).
    pub unit_weight_grams: u32,
}

/// A priced line of a quote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuotedLine {
    /// What.
    pub sku: Sku,
    /// The catalog product.
    pub product_id: Uuid,
    /// The product's name.
    pub name: String,
    /// The catalog price of one unit.
    pub unit_price: Money,
    /// How many.
    pub quantity: Quantity,
    /// `unit_price * quantity`.
    pub line_total: Money,
    /// This line's share of the order's discount.
    pub discount: Money,
    /// The tax on `line_total - discount`: added (exclusive) or contained (inclusive).
    pub tax: Money,
}

/// Every amount of a checkout. Built only by [`Pricing::quote`], so its parts always
/// add up (see the module documentation for the arithmetic).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quote {
    currency: Currency,
    tax_mode: TaxMode,
    tax_rate: TaxRate,
    shipping_method: ShippingMethodCode,
    weight_grams: u64,
    lines: Vec<QuotedLine>,
    subtotal: Money,
    discount: Money,
    shipping: Money,
    shipping_tax: Money,
    tax: Money,
    total: Money,
}

impl Quote {
    /// The currency of every amount.
    #[must_use]
    pub fn currency(&self) -> Currency {
        self.currency
    }
    /// Whether the prices included tax.
    #[must_use]
    pub fn tax_mode(&self) -> TaxMode {
        self.tax_mode
    }
    /// The rate applied (zero when no rule matched the destination).
    #[must_use]
    pub fn tax_rate(&self) -> TaxRate {
        self.tax_rate
    }
    /// The shipping method.
    #[must_use]
    pub fn shipping_method(&self) -> &ShippingMethodCode {
        &self.shipping_method
    }
    /// The parcel's weight in grams.
    #[must_use]
    pub fn weight_grams(&self) -> u64 {
        self.weight_grams
    }
    /// The priced lines, in the order given.
    #[must_use]
    pub fn lines(&self) -> &[QuotedLine] {
        &self.lines
    }
    /// `Σ line_total`.
    #[must_use]
    pub fn subtotal(&self) -> Money {
        self.subtotal
    }
    /// The coupon's discount (`Σ` of the lines' shares).
    #[must_use]
    pub fn discount(&self) -> Money {
        self.discount
    }
    /// Shipping charged (as configured: net when exclusive, gross when inclusive).
    #[must_use]
    pub fn shipping(&self) -> Money {
        self.shipping
    }
    /// The tax on shipping (part of [`Quote::tax`]).
    #[must_use]
    pub fn shipping_tax(&self) -> Money {
        self.shipping_tax
    }
    /// All tax: `Σ line tax + shipping tax`.
    #[must_use]
    pub fn tax(&self) -> Money {
        self.tax
    }
    /// What the customer pays.
    #[must_use]
    pub fn total(&self) -> Money {
        self.total
    }

    /// The tax charged on top of the prices: all of it when prices exclude tax, none
    /// when they include it. With the subtotal, shipping and discount it gives the
    /// order's grand total (`OrderCommand::PlaceOrder`'s `tax_total`, whose grand
    /// total is `subtotal + tax_total + shipping_total - discount_total`).
    #[must_use]
    pub fn tax_added(&self) -> Money {
        match self.tax_mode {
            TaxMode::TaxExclusive => self.tax,
            TaxMode::TaxInclusive => Money::zero(self.currency),
        }
    }

    /// The lines as an order records them.
    #[must_use]
    pub fn order_lines(&self) -> Vec<OrderLine> {
        self.lines
            .iter()
            .map(|l| OrderLine {
                sku: l.sku.clone(),
                product_id: l.product_id,
                name: l.name.clone(),
                unit_price: l.unit_price,
                quantity: l.quantity,
                line_total: l.line_total,
            })
            .collect()
    }
}

/// Splits `discount` over `totals` in proportion, to the minor unit: floors first,
/// then one unit each to the largest remainders (earlier first on ties). The shares
/// add up to `discount`, and none exceeds its total when `discount <= Σ totals`.
fn allocate(discount: i64, totals: &[i64]) -> Vec<i64> {
    let sum: i128 = totals.iter().map(|t| i128::from(*t)).sum();
    if discount == 0 || sum == 0 {
        return vec![0; totals.len()];
    }
    let d = i128::from(discount);
    let mut shares: Vec<(i128, i128)> = totals
        .iter()
        .map(|t| {
            let exact = d * i128::from(*t);
            (exact / sum, exact % sum)
        })
        .collect();
    let allocated: i128 = shares.iter().map(|(s, _)| s).sum();
    let mut leftover = d - allocated;
    let mut order: Vec<usize> = (0..totals.len()).collect();
    // Stable sort: ties keep the earlier line first.
    order.sort_by(|a, b| shares[*b].1.cmp(&shares[*a].1));
    for i in order {
        if leftover == 0 {
            break;
        }
        if shares[i].1 > 0 {
            shares[i].0 += 1;
            leftover -= 1;
        }
    }
    // Each share is at most `discount <= sum` and so fits in i64.
    shares
        .into_iter()
        .map(|(s, _)| i64::try_from(s).unwrap_or(i64::MAX))
        .collect()
}

/// The tax on `base` at `rate`: added on top (exclusive) or contained (inclusive),
/// rounded half away from zero.
fn tax_on(base: Money, rate: TaxRate, mode: TaxMode) -> Result<Money, PricingError> {
    match mode {
        TaxMode::TaxExclusive => Ok(base.checked_percent_bp(rate.basis_points())?),
        TaxMode::TaxInclusive => {
            let rate = i128::from(rate.basis_points());
            let contained =
                div_round_half_away(i128::from(base.amount_minor()) * rate, 10_000 + rate);
            let contained = i64::try_from(contained).map_err(|_| PricingError::Overflow)?;
            Ok(Money::new(contained, base.currency()))
        }
    }
}

impl Pricing {
    /// Prices a checkout: lines at catalog prices, shipped to `address` by `method`,
    /// with an optional coupon `discount` (whose eligibility the coupon aggregate
    /// decides when it is redeemed; here it is only computed).
    ///
    /// # Errors
    /// [`PricingError`]: no lines, a negative or foreign-currency price, an unknown
    /// method, no shipping to the country, a parcel too heavy, overflow.
    pub fn quote(
        &self,
        lines: &[PricedLine],
        address: &Address,
        method: &ShippingMethodCode,
        discount: Option<&Discount>,
    ) -> Result<Quote, PricingError> {
        let currency = self.currency;
        if lines.is_empty() {
            return Err(PricingError::NoLines);
        }
        let mut line_totals = Vec::with_capacity(lines.len());
        let mut weight_grams: u64 = 0;
        for line in lines {
            same_currency(currency, line.unit_price)?;
            if line.unit_price.is_negative() {
                return Err(PricingError::NegativePrice {
                    sku: line.sku.clone(),
                });
            }
            if line.name.trim().is_empty() {
                return Err(PricingError::BlankLineName {
                    sku: line.sku.clone(),
                });
            }
            let quantity = line.quantity.get();
            line_totals.push(line.unit_price.checked_mul(i64::from(quantity))?);
            let line_weight = u64::from(line.unit_weight_grams) * u64::from(quantity);
            weight_grams = weight_grams
                .checked_add(line_weight)
                .ok_or(PricingError::Overflow)?;
        }
        let subtotal = Money::sum(currency, line_totals.iter().copied())?;

        let discount = match discount {
            Some(d) => d.amount_for(subtotal)?,
            None => Money::zero(currency),
        };
        let minors: Vec<i64> = line_totals.iter().map(|m| m.amount_minor()).collect();
        let shares = allocate(discount.amount_minor(), &minors);
        let merchandise = subtotal.checked_sub(discount)?;

        let shipping_method = self
            .methods
            .iter()
            .find(|m| m.code() == method)
            .ok_or_else(|| PricingError::UnknownShippingMethod {
                method: method.clone(),
            })?;
        let country = address.country();
        let zone_rate =
            shipping_method
                .rate_for(country)
                .ok_or_else(|| PricingError::NoShippingToCountry {
                    method: method.clone(),
                    country: country.clone(),
                })?;
        // A parcel the method cannot carry is refused even when shipping would be free.
        let rate_price = zone_rate
            .rate
            .price_for(weight_grams)
            .map_err(|max_grams| PricingError::TooHeavy {
                method: method.clone(),
                grams: weight_grams,
                max_grams,
            })?;
        let free = zone_rate
            .free_over
            .is_some_and(|threshold| merchandise.amount_minor() >= threshold.amount_minor());
        let shipping = if free {
            Money::zero(currency)
        } else {
            rate_price
        };

        let mode = self.tax.mode();
        let rule = self.tax.rule_for(address);
        let rate = rule.map_or(TaxRate::ZERO, |r| r.rate());
        let mut quoted = Vec::with_capacity(lines.len());
        for ((line, line_total), share) in lines.iter().zip(line_totals).zip(shares) {
            let share = Money::new(share, currency);
            let tax = tax_on(line_total.checked_sub(share)?, rate, mode)?;
            quoted.push(QuotedLine {
                sku: line.sku.clone(),
                product_id: line.product_id,
                name: line.name.trim().to_owned(),
                unit_price: line.unit_price,
                quantity: line.quantity,
                line_total,
                discount: share,
                tax,
            });
        }
        let shipping_tax = if rule.is_some_and(|r| r.shipping_taxable()) {
            tax_on(shipping, rate, mode)?
        } else {
            Money::zero(currency)
        };
        let tax = Money::sum(currency, quoted.iter().map(|l| l.tax))?.checked_add(shipping_tax)?;
        let total = match mode {
            TaxMode::TaxExclusive => merchandise.checked_add(shipping)?.checked_add(tax)?,
            TaxMode::TaxInclusive => merchandise.checked_add(shipping)?,
        };
        Ok(Quote {
            currency,
            tax_mode: mode,
            tax_rate: rate,
            shipping_method: method.clone(),
            weight_grams,
            lines: quoted,
            subtotal,
            discount,
            shipping,
            shipping_tax,
            tax,
            total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::allocate;

    #[test]
    fn allocation_adds_up_and_favours_largest_remainders() {
        assert_eq!(allocate(100, &[1_000, 1_000, 1_000]), vec![34, 33, 33]);
        assert_eq!(allocate(1, &[500, 1_500]), vec![0, 1]);
        assert_eq!(allocate(0, &[500, 1_500]), vec![0, 0]);
        assert_eq!(allocate(2_000, &[500, 1_500]), vec![500, 1_500]);
        assert_eq!(allocate(10, &[0, 0]), vec![0, 0]);
        assert_eq!(allocate(7, &[0, 3, 4]), vec![0, 3, 4]);
    }
}
