//! Why the inventory refused a command.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A broken inventory rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InventoryError {
    /// The SKU's stock is not tracked yet (`TrackInventory` first).
    #[error("inventory is not tracked for this sku")]
    NotTracked,
    /// `TrackInventory` on a SKU already tracked.
    #[error("inventory is already tracked for this sku")]
    AlreadyTracked,
    /// An adjustment of zero units.
    #[error("an adjustment must change stock by at least one unit")]
    ZeroAdjustment,
    /// The change would take units on hand below zero.
    #[error("stock on hand cannot go negative: {on_hand} on hand, adjustment {delta}")]
    NegativeStock {
        /// Units on hand now.
        on_hand: u32,
        /// The adjustment asked for.
        delta: i64,
    },
    /// The change would leave fewer units on hand than are reserved.
    #[error(
        "stock on hand cannot drop below reserved: {on_hand_after} after adjustment, {reserved} reserved"
    )]
    BelowReserved {
        /// Units on hand the change would leave.
        on_hand_after: u32,
        /// Units reserved.
        reserved: u32,
    },
    /// The change would take units on hand beyond what can be counted.
    #[error("stock on hand would exceed {max} units")]
    StockOverflow {
        /// The bound.
        max: u32,
    },
    /// Not enough available stock for the reservation.
    #[error("insufficient stock: requested {requested}, available {available}")]
    InsufficientStock {
        /// Units asked for.
        requested: u32,
        /// Units available.
        available: u32,
    },
    /// The reservation id is already used for a different order, quantity or expiry.
    #[error("reservation {reservation_id} already exists with a different payload")]
    ReservationConflict {
        /// The reservation id.
        reservation_id: Uuid,
    },
    /// The reservation would expire no later than it is made.
    #[error("reservation expiry {expires_at} must be after {at}")]
    ExpiryNotInFuture {
        /// The expiry asked for.
        expires_at: DateTime<Utc>,
        /// When it was asked.
        at: DateTime<Utc>,
    },
    /// No such reservation, active or remembered.
    #[error("reservation {reservation_id} not found")]
    ReservationNotFound {
        /// The reservation id.
        reservation_id: Uuid,
    },
    /// Expiry asked for before the reservation's expiry time.
    #[error("reservation {reservation_id} does not expire until {expires_at}")]
    ReservationNotExpired {
        /// The reservation id.
        reservation_id: Uuid,
        /// Its expiry.
        expires_at: DateTime<Utc>,
    },
    /// Release or expiry of a reservation whose units already shipped.
    #[error("reservation {reservation_id} was already committed")]
    ReservationAlreadyCommitted {
        /// The reservation id.
        reservation_id: Uuid,
    },
    /// Commit of a reservation that was released or expired.
    #[error("reservation {reservation_id} was already released")]
    ReservationAlreadyReleased {
        /// The reservation id.
        reservation_id: Uuid,
    },
}
