//! The payment aggregate, and the wallet of saved payment methods.
//!
//! **Payment aggregate id: the payment id** (a `Uuid` chosen by the checkout saga; one
//! payment per provider PaymentIntent). A payment mirrors the provider's intent:
//!
//! ```text
//! created -> requires_action -> authorised -> captured -> refunded (fully)
//!    |  \_________|_____________/    |
//!    |            \-> failed         \-> voided (before capture)
//!    \-> failed | voided
//! ```
//!
//! Captures never exceed the authorised amount, and refunds (requested or completed)
//! never exceed the captured amount. Provider webhooks arrive duplicated and out of
//! order, so recording a fact the payment already holds (the same authorisation,
//! capture, failure, void or refund id) is a no-op rather than an error.
//!
//! **Wallet aggregate id: the user id.** A wallet keeps a user's saved cards as brand,
//! last four digits and expiry only: its types cannot hold a card number.

mod aggregate;
mod command;
mod error;
mod event;
mod wallet;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use aggregate::Payment;
pub use command::PaymentCommand;
pub use error::PaymentError;
pub use event::{DeclineCode, NextAction, PaymentEvent, PaymentStatus};
pub use wallet::{
    CardBrand, CardExpiry, Last4, SavedPaymentMethod, Wallet, WalletCommand, WalletError,
    WalletEvent,
};

use crate::aggregate::Aggregate;
use crate::schema::Upcaster;

pub(crate) fn event_schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![
        (Payment::TYPE, schemars::schema_for!(PaymentEvent)),
        (Wallet::TYPE, schemars::schema_for!(WalletEvent)),
    ]
}

pub(crate) fn upcasters() -> Vec<Upcaster> {
    Vec::new()
}
