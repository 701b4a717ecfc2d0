//! Why a wallet refused a command, or a card detail was invalid.

use uuid::Uuid;

/// A broken wallet rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalletError {
    /// Not exactly four ASCII digits.
    #[error("last four digits must be exactly 4 digits")]
    InvalidLast4,
    /// A month outside 1 to 12 or a year outside 2000 to 2099.
    #[error("card expiry {month}/{year} is not a valid month and year")]
    InvalidExpiry {
        /// The month given.
        month: u8,
        /// The year given.
        year: u16,
    },
    /// The card's expiry has passed.
    #[error("card expired at the end of {month:02}/{year}")]
    CardExpired {
        /// Expiry month.
        month: u8,
        /// Expiry year.
        year: u16,
    },
    /// No saved method with this id.
    #[error("payment method {payment_method_id} not found")]
    PaymentMethodNotFound {
        /// The id.
        payment_method_id: Uuid,
    },
    /// The id is already used for a card with other details.
    #[error("payment method {payment_method_id} already exists with different details")]
    PaymentMethodConflict {
        /// The id.
        payment_method_id: Uuid,
    },
    /// The wallet is full.
    #[error("a wallet holds at most {max} payment methods")]
    TooManyPaymentMethods {
        /// The bound.
        max: usize,
    },
}
