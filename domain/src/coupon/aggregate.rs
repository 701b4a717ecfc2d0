//! The coupon state and its decisions.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::command::CouponCommand;
use super::error::CouponError;
use super::event::CouponEvent;
use super::values::CouponCode;
use crate::aggregate::Aggregate;
use crate::pricing::{Discount, PricingError};
use crate::{Currency, Money};

/// A coupon's terms, as created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CouponTerms {
    /// The code.
    pub code: CouponCode,
    /// What it takes off.
    pub discount: Discount,
    /// The smallest subtotal it applies to.
    pub minimum_subtotal: Option<Money>,
    /// First instant of validity.
    pub valid_from: DateTime<Utc>,
    /// First instant it is no longer valid.
    pub valid_until: Option<DateTime<Utc>>,
    /// Uses in all.
    pub usage_limit: Option<u32>,
    /// Uses per customer.
    pub per_customer_limit: Option<u32>,
}

/// One coupon.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Coupon {
    terms: Option<CouponTerms>,
    active: bool,
    redemptions: BTreeMap<Uuid, Redemption>,
    /// Outstanding (not released) redemptions.
    uses: u32,
    uses_by_customer: BTreeMap<Uuid, u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Redemption {
    customer_id: Uuid,
    order_id: Uuid,
    subtotal: Money,
    discount: Money,
    released: bool,
}

fn same_currency(expected: Currency, amount: Money) -> Result<(), CouponError> {
    if amount.currency() == expected {
        Ok(())
    } else {
        Err(CouponError::CurrencyMismatch {
            expected,
            got: amount.currency(),
        })
    }
}

impl Coupon {
    /// The terms, once created.
    #[must_use]
    pub fn terms(&self) -> Option<&CouponTerms> {
        self.terms.as_ref()
    }

    /// Whether it may be redeemed (created and not deactivated; the validity window
    /// and limits are checked per redemption).
    #[must_use]
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Outstanding uses (released ones excluded).
    #[must_use]
    pub fn uses(&self) -> u32 {
        self.uses
    }

    /// A customer's outstanding uses.
    #[must_use]
    pub fn uses_by(&self, customer_id: Uuid) -> u32 {
        self.uses_by_customer
            .get(&customer_id)
            .copied()
            .unwrap_or(0)
    }

    /// The discount a redemption by `customer_id` of `subtotal` at `at` would get, or
    /// why it would be refused: the same checks as `RedeemCoupon`, for showing a
    /// coupon at checkout before the order exists. Only the redemption itself counts.
    ///
    /// # Errors
    /// The [`CouponError`] `RedeemCoupon` would answer.
    pub fn preview(
        &self,
        customer_id: Uuid,
        subtotal: Money,
        at: DateTime<Utc>,
    ) -> Result<Money, CouponError> {
        let terms = self.terms.as_ref().ok_or(CouponError::NotCreated)?;
        if !self.active {
            return Err(CouponError::Inactive);
        }
        if at < terms.valid_from {
            return Err(CouponError::NotYetValid {
                valid_from: terms.valid_from,
            });
        }
        if let Some(valid_until) = terms.valid_until
            && at >= valid_until
        {
            return Err(CouponError::Expired { valid_until });
        }
        if subtotal.is_negative() {
            return Err(CouponError::NegativeSubtotal);
        }
        if let Some(minimum) = terms.minimum_subtotal {
            same_currency(minimum.currency(), subtotal)?;
            if subtotal.amount_minor() < minimum.amount_minor() {
                return Err(CouponError::BelowMinimumSubtotal { minimum, subtotal });
            }
        }
        if let Some(limit) = terms.usage_limit
            && self.uses >= limit
        {
            return Err(CouponError::UsageLimitReached { limit });
        }
        if let Some(limit) = terms.per_customer_limit
            && self.uses_by(customer_id) >= limit
        {
            return Err(CouponError::CustomerLimitReached { limit });
        }
        terms.discount.amount_for(subtotal).map_err(|e| match e {
            PricingError::CurrencyMismatch { expected, got } => CouponError::CurrencyMismatch {
                // `amount_for` names the subtotal's currency first; the coupon's is the
                // fixed amount's.
                expected: got,
                got: expected,
            },
            _ => CouponError::Overflow,
        })
    }

    fn create(
        &self,
        terms: CouponTerms,
        at: DateTime<Utc>,
    ) -> Result<Vec<CouponEvent>, CouponError> {
        if let Some(until) = terms.valid_until
            && until <= terms.valid_from
        {
            return Err(CouponError::InvalidValidityWindow);
        }
        if terms.usage_limit == Some(0) || terms.per_customer_limit == Some(0) {
            return Err(CouponError::ZeroUsageLimit);
        }
        if let Some(minimum) = terms.minimum_subtotal {
            if minimum.is_negative() {
                return Err(CouponError::NegativeMinimum);
            }
            if let Some(fixed) = terms.discount.as_fixed() {
                same_currency(fixed.currency(), minimum)?;
            }
        }
        if let Some(existing) = &self.terms {
            return if *existing == terms {
                Ok(Vec::new())
            } else {
                Err(CouponError::AlreadyCreated {
                    code: existing.code.clone(),
                })
            };
        }
        let CouponTerms {
            code,
            discount,
            minimum_subtotal,
            valid_from,
            valid_until,
            usage_limit,
            per_customer_limit,
        } = terms;
        Ok(vec![CouponEvent::CouponCreated {
            code,
            discount,
            minimum_subtotal,
            valid_from,
            valid_until,
            usage_limit,
            per_customer_limit,
            at,
        }])
    }

    fn redeem(
        &self,
        redemption_id: Uuid,
        customer_id: Uuid,
        order_id: Uuid,
        subtotal: Money,
        at: DateTime<Utc>,
    ) -> Result<Vec<CouponEvent>, CouponError> {
        let terms = self.terms.as_ref().ok_or(CouponError::NotCreated)?;
        if let Some(existing) = self.redemptions.get(&redemption_id) {
            let same = existing.customer_id == customer_id
                && existing.order_id == order_id
                && existing.subtotal == subtotal;
            return match (same, existing.released) {
                // A retried checkout: the use it already has stands, whatever now.
                (true, false) => Ok(Vec::new()),
                (true, true) => Err(CouponError::RedemptionReleased { redemption_id }),
                (false, _) => Err(CouponError::RedemptionConflict { redemption_id }),
            };
        }
        if self
            .redemptions
            .values()
            .any(|r| r.order_id == order_id && !r.released)
        {
            return Err(CouponError::AlreadyAppliedToOrder { order_id });
        }
        let discount = self.preview(customer_id, subtotal, at)?;
        Ok(vec![CouponEvent::CouponRedeemed {
            code: terms.code.clone(),
            redemption_id,
            customer_id,
            order_id,
            subtotal,
            discount,
            uses: self.uses.saturating_add(1),
            at,
        }])
    }

    fn release(
        &self,
        redemption_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<Vec<CouponEvent>, CouponError> {
        let terms = self.terms.as_ref().ok_or(CouponError::NotCreated)?;
        let redemption = self
            .redemptions
            .get(&redemption_id)
            .ok_or(CouponError::UnknownRedemption { redemption_id })?;
        if redemption.released {
            return Ok(Vec::new());
        }
        Ok(vec![CouponEvent::CouponRedemptionReleased {
            code: terms.code.clone(),
            redemption_id,
            customer_id: redemption.customer_id,
            order_id: redemption.order_id,
            uses: self.uses.saturating_sub(1),
            at,
        }])
    }
}

impl Aggregate for Coupon {
    const TYPE: &'static str = "coupon";
    type Command = CouponCommand;
    type Event = CouponEvent;
    type Error = CouponError;

    fn handle(&self, command: CouponCommand) -> Result<Vec<CouponEvent>, CouponError> {
        match command {
            CouponCommand::CreateCoupon {
                code,
                discount,
                minimum_subtotal,
                valid_from,
                valid_until,
                usage_limit,
                per_customer_limit,
                at,
            } => self.create(
                CouponTerms {
                    code,
                    discount,
                    minimum_subtotal,
                    valid_from,
                    valid_until,
                    usage_limit,
                    per_customer_limit,
                },
                at,
            ),
            CouponCommand::DeactivateCoupon { at } => {
                let terms = self.terms.as_ref().ok_or(CouponError::NotCreated)?;
                if !self.active {
                    return Ok(Vec::new());
                }
                Ok(vec![CouponEvent::CouponDeactivated {
                    code: terms.code.clone(),
                    at,
                }])
            }
            CouponCommand::RedeemCoupon {
                redemption_id,
                customer_id,
                order_id,
                subtotal,
                at,
            } => self.redeem(redemption_id, customer_id, order_id, subtotal, at),
            CouponCommand::ReleaseRedemption { redemption_id, at } => {
                self.release(redemption_id, at)
            }
        }
    }

    fn apply(&mut self, event: &CouponEvent) {
        match event {
            CouponEvent::CouponCreated {
                code,
                discount,
                minimum_subtotal,
                valid_from,
                valid_until,
                usage_limit,
                per_customer_limit,
                ..
            } => {
                self.terms = Some(CouponTerms {
                    code: code.clone(),
                    discount: *discount,
                    minimum_subtotal: *minimum_subtotal,
                    valid_from: *valid_from,
                    valid_until: *valid_until,
                    usage_limit: *usage_limit,
                    per_customer_limit: *per_customer_limit,
                });
                self.active = true;
            }
            CouponEvent::CouponDeactivated { .. } => self.active = false,
            CouponEvent::CouponRedeemed {
                redemption_id,
                customer_id,
                order_id,
                subtotal,
                discount,
                ..
            } => {
                self.redemptions.insert(
                    *redemption_id,
                    Redemption {
                        customer_id: *customer_id,
                        order_id: *order_id,
                        subtotal: *subtotal,
                        discount: *discount,
                        released: false,
                    },
                );
                self.uses = self.uses.saturating_add(1);
                *self.uses_by_customer.entry(*customer_id).or_default() += 1;
            }
            CouponEvent::CouponRedemptionReleased {
                redemption_id,
                customer_id,
                ..
            } => {
                if let Some(r) = self.redemptions.get_mut(redemption_id)
                    && !r.released
                {
                    r.released = true;
                    self.uses = self.uses.saturating_sub(1);
                    if let Some(n) = self.uses_by_customer.get_mut(customer_id) {
                        *n = n.saturating_sub(1);
                        if *n == 0 {
                            self.uses_by_customer.remove(customer_id);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
impl Coupon {
    /// Every outstanding redemption: `(customer, order, subtotal, discount)`.
    pub(super) fn outstanding(&self) -> impl Iterator<Item = (Uuid, Uuid, Money, Money)> + '_ {
        self.redemptions
            .values()
            .filter(|r| !r.released)
            .map(|r| (r.customer_id, r.order_id, r.subtotal, r.discount))
    }
}
