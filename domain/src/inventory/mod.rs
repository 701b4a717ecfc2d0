//! The inventory aggregate: stock of one SKU.
//!
//! **Aggregate id: the SKU** (`Sku::as_str`), one stream per stock-keeping unit.
//!
//! It tracks units on hand and units reserved for orders; `available = on_hand -
//! reserved`. Stock is received, adjusted with a reason, reserved for an order with an
//! expiry, released (or expired) when the order does not go ahead, and committed when it
//! ships. The rules: on hand never goes negative, reserved never exceeds on hand, and a
//! reservation id applies at most once (a repeated reserve, release or commit is a no-op,
//! so the checkout saga can retry freely). `LowStockDetected` is emitted when available
//! stock crosses below the low-stock threshold.

mod aggregate;
mod command;
mod error;
mod event;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use aggregate::{Inventory, Reservation};
pub use command::InventoryCommand;
pub use error::InventoryError;
pub use event::{AdjustmentReason, InventoryEvent};

use crate::aggregate::Aggregate;
use crate::schema::Upcaster;

pub(crate) fn event_schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![(Inventory::TYPE, schemars::schema_for!(InventoryEvent))]
}

pub(crate) fn upcasters() -> Vec<Upcaster> {
    Vec::new()
}
