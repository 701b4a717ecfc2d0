//! The order aggregate: one customer order from placement to delivery or refund.
//!
//! **Aggregate id: the order id** (a `Uuid` chosen by the checkout saga, carried in
//! `PlaceOrder`).
//!
//! An order is placed from a checkout snapshot whose prices were computed on the
//! server; the aggregate re-checks the arithmetic (line totals, grand total) and the
//! currency, then walks the status machine
//!
//! ```text
//! pending -> reserved -> awaiting_payment -> paid -> shipped -> delivered
//!               |  \-> held_for_review -/ (approved)
//!               |          \-> cancelled (rejected)
//!               awaiting_payment -> payment_failed
//! any status before shipped -> cancelled;  paid, shipped, delivered, cancelled -> refunded
//! ```
//!
//! [`OrderStatus::can_transition_to`] is the whole table; every command is guarded by
//! it. Refunds may be partial; their sum never exceeds the amount paid, and the order
//! becomes `refunded` once it is fully refunded.

mod aggregate;
mod command;
mod error;
mod event;
mod status;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use aggregate::Order;
pub use command::OrderCommand;
pub use error::OrderError;
pub use event::{CancellationReason, OrderEvent, OrderLine};
pub use status::OrderStatus;

use crate::aggregate::Aggregate;
use crate::schema::Upcaster;

pub(crate) fn event_schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![(Order::TYPE, schemars::schema_for!(OrderEvent))]
}

/// `OrderFraudCheckPassed` and `OrderHeldForReview` 1.0 -> 1.1: the fraud reasons
/// were added; a 1.0 event had none recorded.
pub(crate) fn upcasters() -> Vec<Upcaster> {
    ["OrderFraudCheckPassed", "OrderHeldForReview"]
        .into_iter()
        .map(|event_type| Upcaster {
            aggregate_type: Order::TYPE,
            event_type,
            from_version: "1.0",
            to_version: "1.1",
            upcast: add_empty_reasons,
        })
        .collect()
}

/// Adds `"reasons": []` to a 1.0 fraud event; anything else passes unchanged.
fn add_empty_reasons(payload: serde_json::Value) -> serde_json::Value {
    let serde_json::Value::Object(mut outer) = payload else {
        return payload;
    };
    for variant in ["OrderFraudCheckPassed", "OrderHeldForReview"] {
        if let Some(serde_json::Value::Object(fields)) = outer.get_mut(variant) {
            fields
                .entry("reasons")
                .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        }
    }
    serde_json::Value::Object(outer)
}
