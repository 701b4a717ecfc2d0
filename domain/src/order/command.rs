//! What an order can be asked to do.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::event::{CancellationReason, OrderLine};
use crate::fraud::FraudReason;
use crate::{Address, Currency, Money};

/// A command to one order.
#[allow(
    clippy::large_enum_variant,
    reason = "the placement snapshot is big and rare; boxing it would only complicate matching"
)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum OrderCommand {
    /// Places the order from a checkout snapshot whose prices the server computed.
    /// Repeating it with the same snapshot is a no-op.
    PlaceOrder {
        /// The order id (the aggregate id), deterministic per checkout.
        order_id: Uuid,
        /// The customer (a registered user or a guest's customer record).
        customer_id: Uuid,
        /// What was bought; at least one line.
        lines: Vec<OrderLine>,
        /// Tax over the whole order.
        tax_total: Money,
        /// Shipping charged.
        shipping_total: Money,
        /// Discounts granted (a positive amount that is subtracted).
        discount_total: Money,
        /// Where to ship.
        shipping_address: Address,
        /// Where to bill.
        billing_address: Address,
        /// The currency of every amount above.
        currency: Currency,
        /// When.
        at: DateTime<Utc>,
    },
    /// Records that stock is reserved for every line.
    MarkStockReserved {
        /// When.
        at: DateTime<Utc>,
    },
    /// Records that the fraud gate let the order through to payment.
    PassFraudCheck {
        /// Risk score 0 (safe) to 100 (certain fraud).
        risk_score: u8,
        /// What made up the score (empty when nothing fired).
        reasons: Vec<FraudReason>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Holds the order for staff review (the fraud gate found it risky).
    HoldForReview {
        /// Risk score 0 to 100.
        risk_score: u8,
        /// What made up the score.
        reasons: Vec<FraudReason>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Staff approved a held order: it proceeds to payment.
    ApproveHeldOrder {
        /// When.
        at: DateTime<Utc>,
    },
    /// Staff rejected a held order: it is cancelled.
    RejectHeldOrder {
        /// When.
        at: DateTime<Utc>,
    },
    /// Records that the payment failed.
    RecordPaymentFailure {
        /// The payment that failed.
        payment_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// Records that the order is paid in full. Repeating it with the same payment is a
    /// no-op.
    MarkPaid {
        /// The payment.
        payment_id: Uuid,
        /// The amount captured; must equal the grand total.
        amount: Money,
        /// When.
        at: DateTime<Utc>,
    },
    /// Hands the order to the carrier.
    ShipOrder {
        /// The carrier's tracking number, if any (1 to 100 characters).
        tracking_number: Option<String>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Records that the customer received the order.
    MarkDelivered {
        /// When.
        at: DateTime<Utc>,
    },
    /// Cancels the order before it ships. With [`CancellationReason::ReservationExpired`]
    /// only an unpaid order (pending, reserved, awaiting payment) can be cancelled: an
    /// expiry sweep racing a payment must lose to it.
    CancelOrder {
        /// Why.
        reason: CancellationReason,
        /// When.
        at: DateTime<Utc>,
    },
    /// Refunds part or all of what was paid. Repeating it with the same refund id and
    /// amount is a no-op.
    RefundOrder {
        /// Chosen by the caller, the idempotency key.
        refund_id: Uuid,
        /// How much; positive, in the order's currency.
        amount: Money,
        /// When.
        at: DateTime<Utc>,
    },
}
