//! Why a payment refused a command.

use uuid::Uuid;

use super::event::PaymentStatus;
use crate::{Currency, Money};

/// A broken payment rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// The payment does not exist yet (`CreatePayment` first).
    #[error("payment has not been created")]
    NotCreated,
    /// `CreatePayment` again with different details.
    #[error("payment {payment_id} was already created with different details")]
    AlreadyCreated {
        /// The payment.
        payment_id: Uuid,
    },
    /// A required text field is blank.
    #[error("{field} must not be blank")]
    BlankField {
        /// Which field.
        field: &'static str,
    },
    /// An amount of zero or less.
    #[error("amount must be positive")]
    NonPositiveAmount,
    /// An amount in another currency than the payment's.
    #[error("amount in {got} where the payment is in {expected}")]
    CurrencyMismatch {
        /// The payment's currency.
        expected: Currency,
        /// The offending amount's currency.
        got: Currency,
    },
    /// The command is not allowed in the current status.
    #[error("{command} is not allowed when the payment is {from}")]
    InvalidTransition {
        /// The current status.
        from: PaymentStatus,
        /// The command refused, e.g. `"CapturePayment"`.
        command: &'static str,
    },
    /// An authorisation above the payment amount.
    #[error("authorisation of {requested} does not fit the payment amount {amount}")]
    AuthorisationExceedsAmount {
        /// The amount authorised.
        requested: Money,
        /// The payment amount.
        amount: Money,
    },
    /// A capture above the authorised amount.
    #[error("capture of {requested} exceeds the authorised {authorised}")]
    CaptureExceedsAuthorised {
        /// The capture.
        requested: Money,
        /// The authorised amount.
        authorised: Money,
    },
    /// Refunds would exceed what was captured.
    #[error("refund of {requested} exceeds the refundable {refundable}")]
    RefundExceedsCaptured {
        /// This refund.
        requested: Money,
        /// Captured minus refunds requested or completed so far.
        refundable: Money,
    },
    /// The refund id is already used with another amount.
    #[error("refund {refund_id} already exists with a different amount")]
    RefundConflict {
        /// The refund.
        refund_id: Uuid,
    },
}
