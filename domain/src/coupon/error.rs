//! Why a coupon refused a command.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::values::CouponCode;
use crate::{Currency, Money};

/// A broken coupon rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CouponError {
    /// No such coupon (`CreateCoupon` first).
    #[error("no such coupon")]
    NotCreated,
    /// `CreateCoupon` again with other terms.
    #[error("coupon {code} already exists with other terms")]
    AlreadyCreated {
        /// The code.
        code: CouponCode,
    },
    /// `valid_until` not after `valid_from`.
    #[error("coupon validity must end after it starts")]
    InvalidValidityWindow,
    /// A usage limit of zero.
    #[error("usage limits must be at least 1")]
    ZeroUsageLimit,
    /// A negative minimum subtotal.
    #[error("minimum subtotal must not be negative")]
    NegativeMinimum,
    /// A negative subtotal to redeem against.
    #[error("subtotal must not be negative")]
    NegativeSubtotal,
    /// Amounts in different currencies (the subtotal against the minimum or a fixed
    /// discount, or the minimum against the fixed discount).
    #[error("amount in {got} where the coupon is in {expected}")]
    CurrencyMismatch {
        /// The coupon's currency.
        expected: Currency,
        /// The offending amount's currency.
        got: Currency,
    },
    /// The coupon was deactivated.
    #[error("coupon is no longer active")]
    Inactive,
    /// Redeemed before its validity starts.
    #[error("coupon is valid from {valid_from}")]
    NotYetValid {
        /// When it becomes valid.
        valid_from: DateTime<Utc>,
    },
    /// Redeemed after its validity ended.
    #[error("coupon expired at {valid_until}")]
    Expired {
        /// When it stopped being valid.
        valid_until: DateTime<Utc>,
    },
    /// The subtotal is below the coupon's minimum.
    #[error("coupon needs a subtotal of at least {minimum}, got {subtotal}")]
    BelowMinimumSubtotal {
        /// The minimum.
        minimum: Money,
        /// The subtotal.
        subtotal: Money,
    },
    /// Every use is taken.
    #[error("coupon has been used its {limit} times")]
    UsageLimitReached {
        /// The global limit.
        limit: u32,
    },
    /// This customer has used it as often as allowed.
    #[error("coupon may be used {limit} times per customer")]
    CustomerLimitReached {
        /// The per-customer limit.
        limit: u32,
    },
    /// The order already has an outstanding redemption of this coupon.
    #[error("coupon is already applied to order {order_id}")]
    AlreadyAppliedToOrder {
        /// The order.
        order_id: Uuid,
    },
    /// The redemption id is used with other details.
    #[error("redemption {redemption_id} exists with other details")]
    RedemptionConflict {
        /// The redemption.
        redemption_id: Uuid,
    },
    /// The redemption was released; its id cannot be redeemed again.
    #[error("redemption {redemption_id} was released")]
    RedemptionReleased {
        /// The redemption.
        redemption_id: Uuid,
    },
    /// No redemption has this id.
    #[error("no redemption {redemption_id}")]
    UnknownRedemption {
        /// The redemption.
        redemption_id: Uuid,
    },
    /// An amount too large to represent.
    #[error("amounts overflow")]
    Overflow,
}
