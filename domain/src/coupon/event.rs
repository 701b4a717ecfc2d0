//! What happened to a coupon.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::values::CouponCode;
use crate::Money;
use crate::aggregate::DomainEvent;
use crate::pricing::Discount;

/// An event of the coupon aggregate. Each carries the code, so consumers (analytics,
/// the admin views) need no lookup.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, strum::IntoStaticStr,
)]
pub enum CouponEvent {
    /// A coupon was created, active.
    CouponCreated {
        /// The code.
        code: CouponCode,
        /// What it takes off.
        discount: Discount,
        /// The smallest subtotal it applies to.
        minimum_subtotal: Option<Money>,
        /// First instant of validity.
        valid_from: DateTime<Utc>,
        /// First instant it is no longer valid.
        valid_until: Option<DateTime<Utc>>,
        /// Uses in all.
        usage_limit: Option<u32>,
        /// Uses per customer.
        per_customer_limit: Option<u32>,
        /// When.
        at: DateTime<Utc>,
    },
    /// The coupon can no longer be redeemed.
    CouponDeactivated {
        /// The code.
        code: CouponCode,
        /// When.
        at: DateTime<Utc>,
    },
    /// The coupon was used for an order.
    CouponRedeemed {
        /// The code.
        code: CouponCode,
        /// The redemption.
        redemption_id: Uuid,
        /// Who.
        customer_id: Uuid,
        /// The order.
        order_id: Uuid,
        /// The subtotal it was applied to.
        subtotal: Money,
        /// What it took off (`Discount::amount_for(subtotal)`).
        discount: Money,
        /// Uses outstanding after this one (released uses excluded).
        uses: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// A use was given back (its order was cancelled before payment).
    CouponRedemptionReleased {
        /// The code.
        code: CouponCode,
        /// The redemption.
        redemption_id: Uuid,
        /// Whose.
        customer_id: Uuid,
        /// The order.
        order_id: Uuid,
        /// Uses outstanding after the release.
        uses: u32,
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for CouponEvent {
    fn event_type(&self) -> &'static str {
        self.into()
    }

    fn event_version(&self) -> &'static str {
        "1.0"
    }
}
