//! Invariants of the inventory over random command sequences.

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use uuid::Uuid;

use super::*;
use crate::{Quantity, Sku};

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::minutes(minute)
}

fn reason() -> impl Strategy<Value = AdjustmentReason> {
    prop_oneof![
        Just(AdjustmentReason::Damaged),
        Just(AdjustmentReason::Lost),
        Just(AdjustmentReason::Found),
        Just(AdjustmentReason::Recount),
        Just(AdjustmentReason::Other),
    ]
}

/// Commands over a handful of reservation and order ids, so collisions, repeats and
/// conflicts happen often. Time is a minute index.
fn command() -> impl Strategy<Value = InventoryCommand> {
    let id = (0u128..6).prop_map(Uuid::from_u128);
    let order = (0u128..3).prop_map(|n| Uuid::from_u128(100 + n));
    let quantity = (1i64..8).prop_map(|n| Quantity::new(n).unwrap());
    let minute = 0i64..60;
    prop_oneof![
        (0u32..10, minute.clone()).prop_map(|(t, m)| InventoryCommand::ChangeLowStockThreshold {
            low_stock_threshold: t,
            at: at(m)
        }),
        (quantity.clone(), minute.clone()).prop_map(|(q, m)| InventoryCommand::ReceiveStock {
            quantity: q,
            at: at(m)
        }),
        (-12i64..12, reason(), minute.clone()).prop_map(|(d, r, m)| {
            InventoryCommand::AdjustStock {
                delta: d,
                reason: r,
                at: at(m),
            }
        }),
        (id.clone(), order, quantity, 1i64..30, minute.clone()).prop_map(|(r, o, q, ttl, m)| {
            InventoryCommand::ReserveStock {
                reservation_id: r,
                order_id: o,
                quantity: q,
                expires_at: at(m + ttl),
                at: at(m),
            }
        }),
        (id.clone(), minute.clone()).prop_map(|(r, m)| InventoryCommand::ReleaseReservation {
            reservation_id: r,
            at: at(m)
        }),
        (id.clone(), minute.clone()).prop_map(|(r, m)| InventoryCommand::ExpireReservation {
            reservation_id: r,
            at: at(m)
        }),
        minute
            .clone()
            .prop_map(|m| InventoryCommand::ExpireDueReservations { at: at(m) }),
        (id, minute).prop_map(|(r, m)| InventoryCommand::CommitReservation {
            reservation_id: r,
            at: at(m)
        }),
    ]
}

fn check_invariants(inv: &Inventory) -> Result<(), TestCaseError> {
    prop_assert!(
        inv.reserved() <= inv.on_hand(),
        "reserved {} > on hand {}",
        inv.reserved(),
        inv.on_hand()
    );
    let held: u32 = inv.reservations().map(|(_, r)| r.quantity().get()).sum();
    prop_assert_eq!(held, inv.reserved());
    prop_assert_eq!(inv.available(), inv.on_hand() - inv.reserved());
    Ok(())
}

/// The levels an event claims are the levels the state reaches.
fn check_reported_levels(event: &InventoryEvent, inv: &Inventory) -> Result<(), TestCaseError> {
    match event {
        InventoryEvent::StockReceived {
            on_hand, available, ..
        }
        | InventoryEvent::StockAdjusted {
            on_hand, available, ..
        }
        | InventoryEvent::ReservationCommitted {
            on_hand, available, ..
        } => {
            prop_assert_eq!(*on_hand, inv.on_hand());
            prop_assert_eq!(*available, inv.available());
        }
        InventoryEvent::StockReserved { available, .. }
        | InventoryEvent::ReservationReleased { available, .. }
        | InventoryEvent::ReservationExpired { available, .. }
        | InventoryEvent::LowStockDetected { available, .. } => {
            prop_assert_eq!(*available, inv.available());
        }
        InventoryEvent::InventoryTracked { .. }
        | InventoryEvent::LowStockThresholdChanged { .. } => {}
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn stock_invariants_hold_and_finishing_is_idempotent(
        threshold in 0u32..10,
        commands in prop::collection::vec(command(), 1..60),
    ) {
        let mut inv = Inventory::default();
        for e in inv
            .handle(InventoryCommand::TrackInventory {
                sku: Sku::parse("SKU-1").unwrap(),
                low_stock_threshold: threshold,
                at: at(0),
            })
            .unwrap()
        {
            inv.apply(&e);
        }
        for command in commands {
            let was_low = inv.available() < inv.low_stock_threshold();
            let Ok(events) = inv.handle(command.clone()) else {
                continue;
            };
            for e in &events {
                inv.apply(e);
                check_reported_levels(e, &inv)?;
            }
            check_invariants(&inv)?;

            // Low stock is reported exactly on the crossing.
            let detected = events
                .iter()
                .any(|e| matches!(e, InventoryEvent::LowStockDetected { .. }));
            let is_low = inv.available() < inv.low_stock_threshold();
            prop_assert_eq!(detected, !was_low && is_low);

            // Finishing a reservation again, or reserving it again, changes nothing.
            let repeat = match &command {
                InventoryCommand::ReleaseReservation { .. }
                | InventoryCommand::CommitReservation { .. }
                | InventoryCommand::ExpireReservation { .. }
                | InventoryCommand::ReserveStock { .. } => Some(command),
                _ => None,
            };
            if let Some(repeat) = repeat {
                prop_assert_eq!(inv.handle(repeat), Ok(vec![]));
            }
        }
    }
}
