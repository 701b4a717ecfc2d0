//! What happened to an order.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::status::OrderStatus;
use crate::aggregate::DomainEvent;
use crate::fraud::FraudReason;
use crate::{Address, Currency, Money, Quantity, Sku};

/// One line of an order: a snapshot of the product as it was sold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OrderLine {
    /// What was sold.
    pub sku: Sku,
    /// The catalog product it belongs to.
    pub product_id: Uuid,
    /// The product's name at the time of sale.
    pub name: String,
    /// Price of one unit, from the catalog.
    pub unit_price: Money,
    /// Units.
    pub quantity: Quantity,
    /// `unit_price * quantity`.
    pub line_total: Money,
}

/// Why an order was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CancellationReason {
    /// The customer asked.
    CustomerRequest,
    /// Stock could not be reserved for every line.
    OutOfStock,
    /// The stock reservation lapsed before payment.
    ReservationExpired,
    /// The payment failed.
    PaymentFailed,
    /// Staff rejected the order after a fraud review.
    FraudRejected,
    /// Staff cancelled it for another reason.
    StaffDecision,
}

/// An event of the order aggregate.
#[allow(
    clippy::large_enum_variant,
    reason = "the placement snapshot is big and rare; boxing it would only complicate matching"
)]
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, strum::IntoStaticStr,
)]
pub enum OrderEvent {
    /// An order was placed; status `pending`. Carries the whole snapshot so read
    /// models, notifications and the checkout saga need nothing else.
    OrderPlaced {
        /// The order.
        order_id: Uuid,
        /// The customer.
        customer_id: Uuid,
        /// What was bought.
        lines: Vec<OrderLine>,
        /// The currency of every amount.
        currency: Currency,
        /// Sum of the line totals.
        subtotal: Money,
        /// Tax.
        tax_total: Money,
        /// Shipping.
        shipping_total: Money,
        /// Discounts (subtracted).
        discount_total: Money,
        /// `subtotal + tax_total + shipping_total - discount_total`: what the customer pays.
        grand_total: Money,
        /// Where to ship.
        shipping_address: Address,
        /// Where to bill.
        billing_address: Address,
        /// When.
        at: DateTime<Utc>,
    },
    /// Stock is reserved for every line; status `reserved`.
    OrderStockReserved {
        /// When.
        at: DateTime<Utc>,
    },
    /// The fraud gate let the order through; status `awaiting_payment`.
    OrderFraudCheckPassed {
        /// Risk score 0 to 100.
        risk_score: u8,
        /// What made up the score (v1.1; empty in upcast v1.0 events).
        #[serde(default)]
        reasons: Vec<FraudReason>,
        /// When.
        at: DateTime<Utc>,
    },
    /// The fraud gate held the order; status `held_for_review`.
    OrderHeldForReview {
        /// Risk score 0 to 100.
        risk_score: u8,
        /// What made up the score (v1.1; empty in upcast v1.0 events).
        #[serde(default)]
        reasons: Vec<FraudReason>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Staff approved a held order; status `awaiting_payment`.
    OrderReleasedFromReview {
        /// When.
        at: DateTime<Utc>,
    },
    /// The payment failed; status `payment_failed`.
    OrderPaymentFailed {
        /// The payment.
        payment_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// Paid in full; status `paid`.
    OrderPaid {
        /// The payment.
        payment_id: Uuid,
        /// The amount paid (the grand total).
        amount: Money,
        /// When.
        at: DateTime<Utc>,
    },
    /// Handed to the carrier; status `shipped`.
    OrderShipped {
        /// Tracking number, if any.
        tracking_number: Option<String>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Received; status `delivered`.
    OrderDelivered {
        /// When.
        at: DateTime<Utc>,
    },
    /// Cancelled; status `cancelled`. `from` tells the saga what to compensate: stock
    /// to release (reserved onwards) and a payment to refund (`paid`).
    OrderCancelled {
        /// Why.
        reason: CancellationReason,
        /// The status it was cancelled from.
        from: OrderStatus,
        /// When.
        at: DateTime<Utc>,
    },
    /// Part or all of the payment was refunded; once `fully_refunded`, status `refunded`.
    OrderRefunded {
        /// The refund.
        refund_id: Uuid,
        /// This refund's amount.
        amount: Money,
        /// All refunds so far, this one included.
        total_refunded: Money,
        /// Whether everything paid is now refunded.
        fully_refunded: bool,
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for OrderEvent {
    fn event_type(&self) -> &'static str {
        self.into()
    }

    fn event_version(&self) -> &'static str {
        match self {
            Self::OrderFraudCheckPassed { .. } | Self::OrderHeldForReview { .. } => "1.1",
            _ => "1.0",
        }
    }
}
