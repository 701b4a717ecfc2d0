//! What a coupon can be asked to do.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::values::CouponCode;
use crate::Money;
use crate::pricing::Discount;

/// A command to one coupon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum CouponCommand {
    /// Creates the coupon (staff). Repeating it with the same terms is a no-op.
    CreateCoupon {
        /// The code (the aggregate id).
        code: CouponCode,
        /// What it takes off.
        discount: Discount,
        /// The smallest merchandise subtotal it applies to, if any.
        minimum_subtotal: Option<Money>,
        /// First instant it may be used.
        valid_from: DateTime<Utc>,
        /// First instant it may no longer be used; open-ended if absent.
        valid_until: Option<DateTime<Utc>>,
        /// Uses in all (released uses do not count); unlimited if absent.
        usage_limit: Option<u32>,
        /// Uses per customer; unlimited if absent.
        per_customer_limit: Option<u32>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Stops the coupon from being redeemed (staff). Releases are still accepted.
    DeactivateCoupon {
        /// When.
        at: DateTime<Utc>,
    },
    /// Uses the coupon for one order's checkout.
    RedeemCoupon {
        /// Chosen deterministically by the checkout; the idempotency key.
        redemption_id: Uuid,
        /// Who.
        customer_id: Uuid,
        /// For which order.
        order_id: Uuid,
        /// The order's merchandise subtotal, computed on the server.
        subtotal: Money,
        /// When (checked against the validity window).
        at: DateTime<Utc>,
    },
    /// Gives a use back: its order was cancelled before payment.
    ReleaseRedemption {
        /// The redemption to release.
        redemption_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
}
