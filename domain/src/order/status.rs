//! The order status machine.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Placed; stock not yet reserved.
    Pending,
    /// Stock reserved for every line; fraud not yet assessed.
    Reserved,
    /// Held by the fraud gate for staff review.
    HeldForReview,
    /// Cleared for payment.
    AwaitingPayment,
    /// The payment failed; stock is released.
    PaymentFailed,
    /// Paid in full.
    Paid,
    /// Handed to the carrier.
    Shipped,
    /// Received by the customer.
    Delivered,
    /// Cancelled before shipment.
    Cancelled,
    /// Fully refunded.
    Refunded,
}

impl OrderStatus {
    /// Every status, for tests and exhaustive tables.
    pub const ALL: [Self; 10] = [
        Self::Pending,
        Self::Reserved,
        Self::HeldForReview,
        Self::AwaitingPayment,
        Self::PaymentFailed,
        Self::Paid,
        Self::Shipped,
        Self::Delivered,
        Self::Cancelled,
        Self::Refunded,
    ];

    /// Whether the status machine allows going from `self` to `next`. The whole table
    /// of legal transitions; the aggregate adds the conditions that depend on amounts
    /// (a cancelled order is refundable only if it was paid).
    #[must_use]
    pub const fn can_transition_to(self, next: Self) -> bool {
        use OrderStatus::{
            AwaitingPayment, Cancelled, Delivered, HeldForReview, Paid, PaymentFailed, Pending,
            Refunded, Reserved, Shipped,
        };
        matches!(
            (self, next),
            (Pending, Reserved | Cancelled)
                | (Reserved, AwaitingPayment | HeldForReview | Cancelled)
                | (HeldForReview, AwaitingPayment | Cancelled)
                | (AwaitingPayment, Paid | PaymentFailed | Cancelled)
                | (PaymentFailed, Cancelled)
                | (Paid, Shipped | Cancelled | Refunded)
                | (Shipped, Delivered | Refunded)
                | (Delivered | Cancelled, Refunded)
        )
    }

    /// Whether the goods have left the warehouse (no cancellation any more).
    #[must_use]
    pub const fn is_shipped(self) -> bool {
        matches!(self, Self::Shipped | Self::Delivered)
    }

    /// The snake_case name used in events and APIs.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Reserved => "reserved",
            Self::HeldForReview => "held_for_review",
            Self::AwaitingPayment => "awaiting_payment",
            Self::PaymentFailed => "payment_failed",
            Self::Paid => "paid",
            Self::Shipped => "shipped",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
            Self::Refunded => "refunded",
        }
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
