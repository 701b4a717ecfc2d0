//! The inventory state and its decisions.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::command::InventoryCommand;
use super::error::InventoryError;
use super::event::InventoryEvent;
use crate::aggregate::Aggregate;
use crate::{Quantity, Sku};

/// Stock of one SKU.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Inventory {
    sku: Option<Sku>,
    on_hand: u32,
    reserved: u32,
    low_stock_threshold: u32,
    /// Reservations holding stock, by id.
    active: BTreeMap<Uuid, Reservation>,
    /// The most recently finished reservations, oldest first, so a retried reserve,
    /// release or commit is recognised as a repeat. Bounded by
    /// [`Inventory::FINISHED_RESERVATIONS_REMEMBERED`].
    finished: VecDeque<FinishedReservation>,
}

/// Units held for an order until they ship or the reservation lapses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    order_id: Uuid,
    quantity: Quantity,
    expires_at: DateTime<Utc>,
}

impl Reservation {
    /// The order the units are for.
    #[must_use]
    pub fn order_id(&self) -> Uuid {
        self.order_id
    }
    /// Units held.
    #[must_use]
    pub fn quantity(&self) -> Quantity {
        self.quantity
    }
    /// When it lapses unless committed.
    #[must_use]
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Outcome {
    Released,
    Committed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FinishedReservation {
    reservation_id: Uuid,
    order_id: Uuid,
    quantity: Quantity,
    outcome: Outcome,
}

impl Inventory {
    /// How many finished reservation ids are remembered for idempotency. A retry that
    /// arrives after this many other reservations finished is no longer recognised;
    /// the checkout saga retries within seconds, far inside that window.
    pub const FINISHED_RESERVATIONS_REMEMBERED: usize = 1024;

    /// The SKU, once tracked.
    #[must_use]
    pub fn sku(&self) -> Option<&Sku> {
        self.sku.as_ref()
    }
    /// Units physically in stock, reserved or not.
    #[must_use]
    pub fn on_hand(&self) -> u32 {
        self.on_hand
    }
    /// Units held by active reservations.
    #[must_use]
    pub fn reserved(&self) -> u32 {
        self.reserved
    }
    /// Units that can still be reserved: on hand minus reserved.
    #[must_use]
    pub fn available(&self) -> u32 {
        self.on_hand.saturating_sub(self.reserved)
    }
    /// The low-stock threshold (0 = disabled).
    #[must_use]
    pub fn low_stock_threshold(&self) -> u32 {
        self.low_stock_threshold
    }
    /// An active reservation.
    #[must_use]
    pub fn reservation(&self, reservation_id: Uuid) -> Option<&Reservation> {
        self.active.get(&reservation_id)
    }
    /// Active reservations, by id.
    pub fn reservations(&self) -> impl Iterator<Item = (&Uuid, &Reservation)> {
        self.active.iter()
    }

    fn finished(&self, reservation_id: Uuid) -> Option<&FinishedReservation> {
        self.finished
            .iter()
            .find(|f| f.reservation_id == reservation_id)
    }

    fn ensure_tracked(&self) -> Result<(), InventoryError> {
        if self.sku.is_some() {
            Ok(())
        } else {
            Err(InventoryError::NotTracked)
        }
    }

    fn is_low(available: u32, threshold: u32) -> bool {
        available < threshold
    }

    /// `LowStockDetected` when available stock goes from at-or-above the threshold to
    /// below it.
    fn low_stock_crossing(
        &self,
        available_after: u32,
        threshold_after: u32,
        at: DateTime<Utc>,
    ) -> Option<InventoryEvent> {
        let was_low = Self::is_low(self.available(), self.low_stock_threshold);
        let is_low = Self::is_low(available_after, threshold_after);
        (!was_low && is_low).then_some(InventoryEvent::LowStockDetected {
            available: available_after,
            threshold: threshold_after,
            at,
        })
    }

    fn finish(&mut self, reservation_id: Uuid, outcome: Outcome) {
        if let Some(r) = self.active.remove(&reservation_id) {
            self.reserved = self.reserved.saturating_sub(r.quantity.get());
            if outcome == Outcome::Committed {
                self.on_hand = self.on_hand.saturating_sub(r.quantity.get());
            }
            self.finished.push_back(FinishedReservation {
                reservation_id,
                order_id: r.order_id,
                quantity: r.quantity,
                outcome,
            });
            while self.finished.len() > Self::FINISHED_RESERVATIONS_REMEMBERED {
                self.finished.pop_front();
            }
        }
    }

    fn track(
        &self,
        sku: Sku,
        low_stock_threshold: u32,
        at: DateTime<Utc>,
    ) -> Result<Vec<InventoryEvent>, InventoryError> {
        if self.sku.is_some() {
            return Err(InventoryError::AlreadyTracked);
        }
        Ok(vec![InventoryEvent::InventoryTracked {
            sku,
            low_stock_threshold,
            at,
        }])
    }

    fn change_threshold(
        &self,
        low_stock_threshold: u32,
        at: DateTime<Utc>,
    ) -> Result<Vec<InventoryEvent>, InventoryError> {
        self.ensure_tracked()?;
        if low_stock_threshold == self.low_stock_threshold {
            return Ok(Vec::new());
        }
        let mut events = vec![InventoryEvent::LowStockThresholdChanged {
            low_stock_threshold,
            at,
        }];
        events.extend(self.low_stock_crossing(self.available(), low_stock_threshold, at));
        Ok(events)
    }

    fn receive(
        &self,
        quantity: Quantity,
        at: DateTime<Utc>,
    ) -> Result<Vec<InventoryEvent>, InventoryError> {
        self.ensure_tracked()?;
        let on_hand = self
            .on_hand
            .checked_add(quantity.get())
            .ok_or(InventoryError::StockOverflow { max: u32::MAX })?;
        Ok(vec![InventoryEvent::StockReceived {
            quantity,
            on_hand,
            available: on_hand - self.reserved,
            at,
        }])
    }

    fn adjust(
        &self,
        delta: i64,
        reason: super::AdjustmentReason,
        at: DateTime<Utc>,
    ) -> Result<Vec<InventoryEvent>, InventoryError> {
        self.ensure_tracked()?;
        if delta == 0 {
            return Err(InventoryError::ZeroAdjustment);
        }
        let after = i64::from(self.on_hand)
            .checked_add(delta)
            .ok_or(InventoryError::StockOverflow { max: u32::MAX })?;
        if after < 0 {
            return Err(InventoryError::NegativeStock {
                on_hand: self.on_hand,
                delta,
            });
        }
        let on_hand =
            u32::try_from(after).map_err(|_| InventoryError::StockOverflow { max: u32::MAX })?;
        if on_hand < self.reserved {
            return Err(InventoryError::BelowReserved {
                on_hand_after: on_hand,
                reserved: self.reserved,
            });
        }
        let available = on_hand - self.reserved;
        let mut events = vec![InventoryEvent::StockAdjusted {
            delta,
            reason,
            on_hand,
            available,
            at,
        }];
        events.extend(self.low_stock_crossing(available, self.low_stock_threshold, at));
        Ok(events)
    }

    fn reserve(
        &self,
        reservation_id: Uuid,
        order_id: Uuid,
        quantity: Quantity,
        expires_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<Vec<InventoryEvent>, InventoryError> {
        self.ensure_tracked()?;
        if let Some(existing) = self.active.get(&reservation_id) {
            let same = existing.order_id == order_id
                && existing.quantity == quantity
                && existing.expires_at == expires_at;
            return if same {
                Ok(Vec::new())
            } else {
                Err(InventoryError::ReservationConflict { reservation_id })
            };
        }
        if let Some(done) = self.finished(reservation_id) {
            // The expiry is not remembered once a reservation finished; order and
            // quantity identify a repeat well enough.
            return if done.order_id == order_id && done.quantity == quantity {
                Ok(Vec::new())
            } else {
                Err(InventoryError::ReservationConflict { reservation_id })
            };
        }
        if expires_at <= at {
            return Err(InventoryError::ExpiryNotInFuture { expires_at, at });
        }
        let available = self.available();
        if quantity.get() > available {
            return Err(InventoryError::InsufficientStock {
                requested: quantity.get(),
                available,
            });
        }
        let available = available - quantity.get();
        let mut events = vec![InventoryEvent::StockReserved {
            reservation_id,
            order_id,
            quantity,
            expires_at,
            available,
            at,
        }];
        events.extend(self.low_stock_crossing(available, self.low_stock_threshold, at));
        Ok(events)
    }

    /// Release or expiry: the reservation's units go back to available stock.
    fn give_back(
        &self,
        reservation_id: Uuid,
        at: DateTime<Utc>,
        expiry: bool,
    ) -> Result<Vec<InventoryEvent>, InventoryError> {
        self.ensure_tracked()?;
        if let Some(r) = self.active.get(&reservation_id) {
            if expiry && at < r.expires_at {
                return Err(InventoryError::ReservationNotExpired {
                    reservation_id,
                    expires_at: r.expires_at,
                });
            }
            return Ok(vec![self.given_back_event(reservation_id, r, at, expiry)]);
        }
        match self.finished(reservation_id) {
            Some(f) if f.outcome == Outcome::Released => Ok(Vec::new()),
            Some(_) => Err(InventoryError::ReservationAlreadyCommitted { reservation_id }),
            None => Err(InventoryError::ReservationNotFound { reservation_id }),
        }
    }

    fn given_back_event(
        &self,
        reservation_id: Uuid,
        r: &Reservation,
        at: DateTime<Utc>,
        expiry: bool,
    ) -> InventoryEvent {
        // Cannot overflow: available + reserved = on_hand, a u32.
        let available = self.available() + r.quantity.get();
        if expiry {
            InventoryEvent::ReservationExpired {
                reservation_id,
                order_id: r.order_id,
                quantity: r.quantity,
                available,
                at,
            }
        } else {
            InventoryEvent::ReservationReleased {
                reservation_id,
                order_id: r.order_id,
                quantity: r.quantity,
                available,
                at,
            }
        }
    }

    fn expire_due(&self, at: DateTime<Utc>) -> Result<Vec<InventoryEvent>, InventoryError> {
        self.ensure_tracked()?;
        let mut available = self.available();
        let mut events = Vec::new();
        for (&reservation_id, r) in self.active.iter().filter(|(_, r)| r.expires_at <= at) {
            available += r.quantity.get();
            events.push(InventoryEvent::ReservationExpired {
                reservation_id,
                order_id: r.order_id,
                quantity: r.quantity,
                available,
                at,
            });
        }
        Ok(events)
    }

    fn commit(
        &self,
        reservation_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<Vec<InventoryEvent>, InventoryError> {
        self.ensure_tracked()?;
        if let Some(r) = self.active.get(&reservation_id) {
            return Ok(vec![InventoryEvent::ReservationCommitted {
                reservation_id,
                order_id: r.order_id,
                quantity: r.quantity,
                on_hand: self.on_hand - r.quantity.get(),
                available: self.available(),
                at,
            }]);
        }
        match self.finished(reservation_id) {
            Some(f) if f.outcome == Outcome::Committed => Ok(Vec::new()),
            Some(_) => Err(InventoryError::ReservationAlreadyReleased { reservation_id }),
            None => Err(InventoryError::ReservationNotFound { reservation_id }),
        }
    }
}

impl Aggregate for Inventory {
    const TYPE: &'static str = "inventory";
    type Command = InventoryCommand;
    type Event = InventoryEvent;
    type Error = InventoryError;

    fn handle(&self, command: InventoryCommand) -> Result<Vec<InventoryEvent>, InventoryError> {
        match command {
            InventoryCommand::TrackInventory {
                sku,
                low_stock_threshold,
                at,
            } => self.track(sku, low_stock_threshold, at),
            InventoryCommand::ChangeLowStockThreshold {
                low_stock_threshold,
                at,
            } => self.change_threshold(low_stock_threshold, at),
            InventoryCommand::ReceiveStock { quantity, at } => self.receive(quantity, at),
            InventoryCommand::AdjustStock { delta, reason, at } => self.adjust(delta, reason, at),
            InventoryCommand::ReserveStock {
                reservation_id,
                order_id,
                quantity,
                expires_at,
                at,
            } => self.reserve(reservation_id, order_id, quantity, expires_at, at),
            InventoryCommand::ReleaseReservation { reservation_id, at } => {
                self.give_back(reservation_id, at, false)
            }
            InventoryCommand::ExpireReservation { reservation_id, at } => {
                self.give_back(reservation_id, at, true)
            }
            InventoryCommand::ExpireDueReservations { at } => self.expire_due(at),
            InventoryCommand::CommitReservation { reservation_id, at } => {
                self.commit(reservation_id, at)
            }
        }
    }

    fn apply(&mut self, event: &InventoryEvent) {
        match event {
            InventoryEvent::InventoryTracked {
                sku,
                low_stock_threshold,
                ..
            } => {
                self.sku = Some(sku.clone());
                self.low_stock_threshold = *low_stock_threshold;
            }
            InventoryEvent::LowStockThresholdChanged {
                low_stock_threshold,
                ..
            } => self.low_stock_threshold = *low_stock_threshold,
            InventoryEvent::StockReceived { quantity, .. } => {
                self.on_hand = self.on_hand.saturating_add(quantity.get());
            }
            InventoryEvent::StockAdjusted { on_hand, .. } => self.on_hand = *on_hand,
            InventoryEvent::StockReserved {
                reservation_id,
                order_id,
                quantity,
                expires_at,
                ..
            } => {
                self.reserved = self.reserved.saturating_add(quantity.get());
                self.active.insert(
                    *reservation_id,
                    Reservation {
                        order_id: *order_id,
                        quantity: *quantity,
                        expires_at: *expires_at,
                    },
                );
            }
            InventoryEvent::ReservationReleased { reservation_id, .. }
            | InventoryEvent::ReservationExpired { reservation_id, .. } => {
                self.finish(*reservation_id, Outcome::Released);
            }
            InventoryEvent::ReservationCommitted { reservation_id, .. } => {
                self.finish(*reservation_id, Outcome::Committed);
            }
            InventoryEvent::LowStockDetected { .. } => {}
        }
    }
}
