//! What the inventory of a SKU can be asked to do.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::event::AdjustmentReason;
use crate::{Quantity, Sku};

/// A command to the inventory of one SKU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum InventoryCommand {
    /// Starts tracking stock of a SKU, with zero units on hand.
    TrackInventory {
        /// The SKU; also the aggregate id.
        sku: Sku,
        /// `LowStockDetected` fires when available stock drops below this; 0 disables it.
        low_stock_threshold: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// Changes the low-stock threshold.
    ChangeLowStockThreshold {
        /// The new threshold; 0 disables low-stock alerts.
        low_stock_threshold: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// Books units delivered into the warehouse.
    ReceiveStock {
        /// Units received.
        quantity: Quantity,
        /// When.
        at: DateTime<Utc>,
    },
    /// Corrects the units on hand (damage, loss, a recount ...).
    AdjustStock {
        /// Units added (positive) or removed (negative); never zero.
        delta: i64,
        /// Why.
        reason: AdjustmentReason,
        /// When.
        at: DateTime<Utc>,
    },
    /// Sets units aside for an order until `expires_at`. Repeating it with the same
    /// reservation id and payload is a no-op.
    ReserveStock {
        /// Chosen by the caller (deterministic per order line), the idempotency key.
        reservation_id: Uuid,
        /// The order the units are for.
        order_id: Uuid,
        /// Units to reserve.
        quantity: Quantity,
        /// When the reservation lapses unless committed.
        expires_at: DateTime<Utc>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Gives reserved units back (the order did not go ahead). Idempotent.
    ReleaseReservation {
        /// The reservation.
        reservation_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// Gives reserved units back because the reservation's expiry has passed at `at`.
    /// Idempotent.
    ExpireReservation {
        /// The reservation.
        reservation_id: Uuid,
        /// Now, as the caller's clock says; must not be before the expiry.
        at: DateTime<Utc>,
    },
    /// Expires every active reservation whose expiry is at or before `at` (a sweep).
    ExpireDueReservations {
        /// Now, as the caller's clock says.
        at: DateTime<Utc>,
    },
    /// Takes reserved units out of stock because they shipped. Idempotent.
    CommitReservation {
        /// The reservation.
        reservation_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
}
