//! The wallet aggregate: a user's saved payment methods.
//!
//! **Aggregate id: the user id.** A saved method is a brand, the last four digits and
//! the expiry, under an id of our own; the provider's token for it stays with the
//! payment provider adapter. None of these types can hold a full card number.

mod aggregate;
mod card;
mod command;
mod error;
mod event;

#[cfg(test)]
mod tests;

pub use aggregate::{SavedPaymentMethod, Wallet};
pub use card::{CardBrand, CardExpiry, Last4};
pub use command::WalletCommand;
pub use error::WalletError;
pub use event::WalletEvent;
