//! Why an order refused a command.

use uuid::Uuid;

use super::status::OrderStatus;
use crate::{Currency, Money, Sku};

/// A broken order rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// The order does not exist yet (`PlaceOrder` first).
    #[error("order has not been placed")]
    NotPlaced,
    /// `PlaceOrder` again with a different snapshot.
    #[error("order {order_id} was already placed with different contents")]
    AlreadyPlaced {
        /// The order.
        order_id: Uuid,
    },
    /// An order without lines.
    #[error("an order needs at least one line")]
    EmptyOrder,
    /// An amount in another currency than the order's.
    #[error("amount in {got} where the order is in {expected}")]
    CurrencyMismatch {
        /// The order's currency.
        expected: Currency,
        /// The offending amount's currency.
        got: Currency,
    },
    /// A price, tax, shipping or discount amount below zero.
    #[error("{field} must not be negative")]
    NegativeAmount {
        /// Which amount.
        field: &'static str,
    },
    /// A line whose total is not unit price times quantity.
    #[error("line {sku}: total {got} is not unit price times quantity ({expected})")]
    LineTotalMismatch {
        /// The line's SKU.
        sku: Sku,
        /// `unit_price * quantity`.
        expected: Money,
        /// What the snapshot said.
        got: Money,
    },
    /// A line without a product name.
    #[error("line {sku} has no product name")]
    BlankLineName {
        /// The line's SKU.
        sku: Sku,
    },
    /// Discounts larger than everything else.
    #[error("grand total must not be negative, got {total}")]
    NegativeTotal {
        /// The total computed.
        total: Money,
    },
    /// Totals too large to represent.
    #[error("order amounts overflow")]
    AmountOverflow,
    /// The status machine does not allow this command in the current status.
    #[error("{command} is not allowed when the order is {from}")]
    InvalidTransition {
        /// The current status.
        from: OrderStatus,
        /// The command refused, e.g. `"ShipOrder"`.
        command: &'static str,
    },
    /// A fraud risk score above 100.
    #[error("risk score must be between 0 and 100, got {score}")]
    RiskScoreOutOfRange {
        /// The score.
        score: u8,
    },
    /// A tracking number that is blank or longer than 100 characters.
    #[error("tracking number must be 1 to 100 characters")]
    InvalidTrackingNumber,
    /// A payment for another amount than the grand total.
    #[error("payment of {got} does not match the order total {expected}")]
    PaymentAmountMismatch {
        /// The grand total.
        expected: Money,
        /// The amount paid.
        got: Money,
    },
    /// A refund of an order that was never paid.
    #[error("order was never paid, nothing to refund")]
    NotPaid,
    /// A refund of zero or less.
    #[error("refund amount must be positive")]
    NonPositiveRefund,
    /// Refunds would exceed what was paid.
    #[error("refund of {requested} exceeds the refundable {refundable}")]
    RefundExceedsPaid {
        /// This refund.
        requested: Money,
        /// Paid minus refunded so far.
        refundable: Money,
    },
    /// The refund id is already used with another amount.
    #[error("refund {refund_id} already exists with a different amount")]
    RefundConflict {
        /// The refund.
        refund_id: Uuid,
    },
}
