//! The cart aggregate: a user's or a guest's shopping cart, up to checkout.
//!
//! **Aggregate id:** the cart id, a UUID chosen by the command layer and carried in
//! `OpenCart` (the command layer routes that command to the aggregate of the same id;
//! the domain cannot check the routing). The command layer also keeps the lookup from
//! a user id or guest key to their open cart.
//!
//! What the domain enforces: the lifecycle (nothing before `OpenCart`; nothing after
//! checkout or after a guest cart was merged away), one line per SKU, every quantity in
//! `1..=Quantity::MAX` (an addition beyond it is refused; a merge caps the sum), at most
//! [`Cart::MAX_LINES`] lines, a SKU always belonging to the same product, and a checkout
//! priced entirely in the cart's currency with checked arithmetic.
//!
//! What it cannot enforce alone, and who does:
//! - **Prices**: the cart stores none. At checkout the command layer looks the unit
//!   prices up in the catalog and passes them in `CheckOut`; a client never sends one.
//! - **Products exist and are for sale, stock is available**: the command layer checks
//!   the catalog before `AddItem`; stock is reserved later, by the order flow.
//! - **Merging at sign-in** spans two aggregates: the command layer reads the guest
//!   cart's lines, sends `MergeGuestCart` to the user's cart, then `MarkMerged` to the
//!   guest cart. Both steps are idempotent, so the flow can be retried after a crash
//!   between them.
//! - **Time**: every command carries `at`; the domain has no clock.

mod aggregate;
mod command;
mod error;
mod event;
mod values;

#[cfg(test)]
mod tests;

pub use aggregate::Cart;
pub use command::CartCommand;
pub use error::CartError;
pub use event::CartEvent;
pub use values::{CartLine, CartOwner, CartStatus, CheckedOutLine, GuestKey, GuestKeyError};

use crate::Aggregate;
use crate::schema::Upcaster;

/// The JSON Schema of [`CartEvent`], for `schemas/events/cart.json`.
pub(crate) fn event_schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![(Cart::TYPE, schemars::schema_for!(CartEvent))]
}

/// No cart event has an older version yet.
pub(crate) fn upcasters() -> Vec<Upcaster> {
    Vec::new()
}
