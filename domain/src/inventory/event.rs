//! What happened to the inventory of a SKU.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::DomainEvent;
use crate::{Quantity, Sku};

/// Why stock on hand was corrected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AdjustmentReason {
    /// Units were damaged and can no longer be sold.
    Damaged,
    /// Units went missing.
    Lost,
    /// Units turned up.
    Found,
    /// A stock count disagreed with the books.
    Recount,
    /// Anything else.
    Other,
}

/// An event of the inventory aggregate.
///
/// Events that change stock carry the resulting levels (`on_hand`, `available`), so a
/// stock projection never has to recompute them.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, strum::IntoStaticStr,
)]
pub enum InventoryEvent {
    /// Stock of a SKU is now tracked, starting at zero.
    InventoryTracked {
        /// The SKU.
        sku: Sku,
        /// Low-stock threshold (0 = disabled).
        low_stock_threshold: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// The low-stock threshold changed.
    LowStockThresholdChanged {
        /// The new threshold (0 = disabled).
        low_stock_threshold: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// Units arrived.
    StockReceived {
        /// Units received.
        quantity: Quantity,
        /// Units on hand afterwards.
        on_hand: u32,
        /// Units available (on hand minus reserved) afterwards.
        available: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// Units on hand were corrected.
    StockAdjusted {
        /// Units added (positive) or removed (negative).
        delta: i64,
        /// Why.
        reason: AdjustmentReason,
        /// Units on hand afterwards.
        on_hand: u32,
        /// Units available afterwards.
        available: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// Units were set aside for an order.
    StockReserved {
        /// The reservation.
        reservation_id: Uuid,
        /// The order.
        order_id: Uuid,
        /// Units reserved.
        quantity: Quantity,
        /// When it lapses unless committed.
        expires_at: DateTime<Utc>,
        /// Units available afterwards.
        available: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// A reservation was given back.
    ReservationReleased {
        /// The reservation.
        reservation_id: Uuid,
        /// The order it was for.
        order_id: Uuid,
        /// Units given back.
        quantity: Quantity,
        /// Units available afterwards.
        available: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// A reservation lapsed and was given back.
    ReservationExpired {
        /// The reservation.
        reservation_id: Uuid,
        /// The order it was for.
        order_id: Uuid,
        /// Units given back.
        quantity: Quantity,
        /// Units available afterwards.
        available: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// Reserved units shipped and left stock.
    ReservationCommitted {
        /// The reservation.
        reservation_id: Uuid,
        /// The order they shipped for.
        order_id: Uuid,
        /// Units shipped.
        quantity: Quantity,
        /// Units on hand afterwards.
        on_hand: u32,
        /// Units available afterwards (unchanged by a commit).
        available: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// Available stock dropped below the low-stock threshold. Emitted once per crossing,
    /// not on every change while it stays below.
    LowStockDetected {
        /// Units available now.
        available: u32,
        /// The threshold crossed.
        threshold: u32,
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for InventoryEvent {
    fn event_type(&self) -> &'static str {
        self.into()
    }

    fn event_version(&self) -> &'static str {
        "1.0"
    }
}
