//! Given/when/then for every inventory command, accepted and refused.

use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

use super::*;
use crate::testing::{given, given_no_history};
use crate::{Quantity, Sku};

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap() + Duration::minutes(minute)
}

fn sku() -> Sku {
    Sku::parse("TSHIRT-RED-M").unwrap()
}

fn qty(n: i64) -> Quantity {
    Quantity::new(n).unwrap()
}

const RES: Uuid = Uuid::from_u128(1);
const RES2: Uuid = Uuid::from_u128(2);
const ORDER: Uuid = Uuid::from_u128(100);
const ORDER2: Uuid = Uuid::from_u128(200);

fn tracked(threshold: u32) -> InventoryEvent {
    InventoryEvent::InventoryTracked {
        sku: sku(),
        low_stock_threshold: threshold,
        at: at(0),
    }
}

fn received(n: u32, on_hand: u32, available: u32) -> InventoryEvent {
    InventoryEvent::StockReceived {
        quantity: qty(n.into()),
        on_hand,
        available,
        at: at(1),
    }
}

fn reserved(id: Uuid, order: Uuid, n: u32, available: u32) -> InventoryEvent {
    InventoryEvent::StockReserved {
        reservation_id: id,
        order_id: order,
        quantity: qty(n.into()),
        expires_at: at(15),
        available,
        at: at(0),
    }
}

fn reserve(id: Uuid, order: Uuid, n: i64) -> InventoryCommand {
    InventoryCommand::ReserveStock {
        reservation_id: id,
        order_id: order,
        quantity: qty(n),
        expires_at: at(15),
        at: at(0),
    }
}

/// Tracked with threshold 2, 10 on hand, 3 reserved under `RES`: available 7.
fn stocked() -> Vec<InventoryEvent> {
    vec![tracked(2), received(10, 10, 10), reserved(RES, ORDER, 3, 7)]
}

// --- TrackInventory -----------------------------------------------------------------

#[test]
fn track_starts_at_zero() {
    let (events, state) = given_no_history::<Inventory>()
        .when(InventoryCommand::TrackInventory {
            sku: sku(),
            low_stock_threshold: 5,
            at: at(0),
        })
        .then_state();
    assert_eq!(events, vec![tracked(5)]);
    assert_eq!(state.sku(), Some(&sku()));
    assert_eq!(
        (state.on_hand(), state.reserved(), state.available()),
        (0, 0, 0)
    );
}

#[test]
fn track_twice_is_refused() {
    let err = given::<Inventory>([tracked(5)])
        .when(InventoryCommand::TrackInventory {
            sku: sku(),
            low_stock_threshold: 5,
            at: at(0),
        })
        .then_expect_error();
    assert_eq!(err, InventoryError::AlreadyTracked);
}

#[test]
fn commands_on_untracked_stock_are_refused() {
    let commands = [
        InventoryCommand::ChangeLowStockThreshold {
            low_stock_threshold: 1,
            at: at(0),
        },
        InventoryCommand::ReceiveStock {
            quantity: qty(1),
            at: at(0),
        },
        InventoryCommand::AdjustStock {
            delta: 1,
            reason: AdjustmentReason::Found,
            at: at(0),
        },
        reserve(RES, ORDER, 1),
        InventoryCommand::ReleaseReservation {
            reservation_id: RES,
            at: at(0),
        },
        InventoryCommand::ExpireReservation {
            reservation_id: RES,
            at: at(0),
        },
        InventoryCommand::ExpireDueReservations { at: at(0) },
        InventoryCommand::CommitReservation {
            reservation_id: RES,
            at: at(0),
        },
    ];
    for command in commands {
        let err = given_no_history::<Inventory>()
            .when(command)
            .then_expect_error();
        assert_eq!(err, InventoryError::NotTracked);
    }
}

// --- ChangeLowStockThreshold ----------------------------------------------------------

#[test]
fn raising_the_threshold_above_available_detects_low_stock() {
    given::<Inventory>(stocked())
        .when(InventoryCommand::ChangeLowStockThreshold {
            low_stock_threshold: 8,
            at: at(2),
        })
        .then_expect_events([
            InventoryEvent::LowStockThresholdChanged {
                low_stock_threshold: 8,
                at: at(2),
            },
            InventoryEvent::LowStockDetected {
                available: 7,
                threshold: 8,
                at: at(2),
            },
        ]);
}

#[test]
fn lowering_the_threshold_emits_only_the_change_and_same_value_nothing() {
    given::<Inventory>(stocked())
        .when(InventoryCommand::ChangeLowStockThreshold {
            low_stock_threshold: 1,
            at: at(2),
        })
        .then_expect_events([InventoryEvent::LowStockThresholdChanged {
            low_stock_threshold: 1,
            at: at(2),
        }]);
    given::<Inventory>(stocked())
        .when(InventoryCommand::ChangeLowStockThreshold {
            low_stock_threshold: 2,
            at: at(2),
        })
        .then_expect_events([]);
}

// --- ReceiveStock -----------------------------------------------------------------------

#[test]
fn receive_adds_to_on_hand_and_available() {
    let (events, state) = given::<Inventory>(stocked())
        .when(InventoryCommand::ReceiveStock {
            quantity: qty(5),
            at: at(1),
        })
        .then_state();
    assert_eq!(events, vec![received(5, 15, 12)]);
    assert_eq!(
        (state.on_hand(), state.reserved(), state.available()),
        (15, 3, 12)
    );
}

#[test]
fn receive_beyond_the_counter_is_refused() {
    let err = given::<Inventory>([
        tracked(0),
        InventoryEvent::StockAdjusted {
            delta: i64::from(u32::MAX),
            reason: AdjustmentReason::Recount,
            on_hand: u32::MAX,
            available: u32::MAX,
            at: at(0),
        },
    ])
    .when(InventoryCommand::ReceiveStock {
        quantity: qty(1),
        at: at(1),
    })
    .then_expect_error();
    assert_eq!(err, InventoryError::StockOverflow { max: u32::MAX });
}

// --- AdjustStock ------------------------------------------------------------------------

#[test]
fn adjust_down_records_reason_and_detects_the_low_stock_crossing_once() {
    let adjusted = InventoryEvent::StockAdjusted {
        delta: -6,
        reason: AdjustmentReason::Damaged,
        on_hand: 4,
        available: 1,
        at: at(2),
    };
    let (events, state) = given::<Inventory>(stocked())
        .when(InventoryCommand::AdjustStock {
            delta: -6,
            reason: AdjustmentReason::Damaged,
            at: at(2),
        })
        .then_state();
    assert_eq!(
        events,
        vec![
            adjusted.clone(),
            InventoryEvent::LowStockDetected {
                available: 1,
                threshold: 2,
                at: at(2),
            }
        ]
    );
    assert_eq!(state.on_hand(), 4);

    // Already below the threshold: no second alert.
    let mut history = stocked();
    history.push(adjusted);
    given::<Inventory>(history)
        .when(InventoryCommand::AdjustStock {
            delta: -1,
            reason: AdjustmentReason::Lost,
            at: at(3),
        })
        .then_expect_events([InventoryEvent::StockAdjusted {
            delta: -1,
            reason: AdjustmentReason::Lost,
            on_hand: 3,
            available: 0,
            at: at(3),
        }]);
}

#[test]
fn adjust_up_is_accepted() {
    given::<Inventory>(stocked())
        .when(InventoryCommand::AdjustStock {
            delta: 2,
            reason: AdjustmentReason::Found,
            at: at(2),
        })
        .then_expect_events([InventoryEvent::StockAdjusted {
            delta: 2,
            reason: AdjustmentReason::Found,
            on_hand: 12,
            available: 9,
            at: at(2),
        }]);
}

#[test]
fn adjust_by_zero_is_refused() {
    let err = given::<Inventory>(stocked())
        .when(InventoryCommand::AdjustStock {
            delta: 0,
            reason: AdjustmentReason::Recount,
            at: at(2),
        })
        .then_expect_error();
    assert_eq!(err, InventoryError::ZeroAdjustment);
}

#[test]
fn adjust_below_zero_is_refused() {
    let err = given::<Inventory>(stocked())
        .when(InventoryCommand::AdjustStock {
            delta: -11,
            reason: AdjustmentReason::Lost,
            at: at(2),
        })
        .then_expect_error();
    assert_eq!(
        err,
        InventoryError::NegativeStock {
            on_hand: 10,
            delta: -11
        }
    );
}

#[test]
fn adjust_below_reserved_is_refused() {
    let err = given::<Inventory>(stocked())
        .when(InventoryCommand::AdjustStock {
            delta: -8,
            reason: AdjustmentReason::Other,
            at: at(2),
        })
        .then_expect_error();
    assert_eq!(
        err,
        InventoryError::BelowReserved {
            on_hand_after: 2,
            reserved: 3
        }
    );
}

#[test]
fn adjust_beyond_the_counter_is_refused() {
    for delta in [i64::from(u32::MAX), i64::MAX] {
        let err = given::<Inventory>(stocked())
            .when(InventoryCommand::AdjustStock {
                delta,
                reason: AdjustmentReason::Found,
                at: at(2),
            })
            .then_expect_error();
        assert_eq!(err, InventoryError::StockOverflow { max: u32::MAX });
    }
}

// --- ReserveStock -----------------------------------------------------------------------

#[test]
fn reserve_holds_units() {
    let (events, state) = given::<Inventory>(stocked())
        .when(reserve(RES2, ORDER2, 4))
        .then_state();
    assert_eq!(events, vec![reserved(RES2, ORDER2, 4, 3)]);
    assert_eq!(
        (state.on_hand(), state.reserved(), state.available()),
        (10, 7, 3)
    );
    let r = state.reservation(RES2).unwrap();
    assert_eq!(
        (r.order_id(), r.quantity(), r.expires_at()),
        (ORDER2, qty(4), at(15))
    );
}

#[test]
fn reserve_that_crosses_the_threshold_detects_low_stock() {
    given::<Inventory>(stocked())
        .when(reserve(RES2, ORDER2, 6))
        .then_expect_events([
            reserved(RES2, ORDER2, 6, 1),
            InventoryEvent::LowStockDetected {
                available: 1,
                threshold: 2,
                at: at(0),
            },
        ]);
}

#[test]
fn reserve_more_than_available_is_refused() {
    let err = given::<Inventory>(stocked())
        .when(reserve(RES2, ORDER2, 8))
        .then_expect_error();
    assert_eq!(
        err,
        InventoryError::InsufficientStock {
            requested: 8,
            available: 7
        }
    );
}

#[test]
fn reserve_repeated_with_the_same_payload_is_a_no_op() {
    given::<Inventory>(stocked())
        .when(reserve(RES, ORDER, 3))
        .then_expect_events([]);
}

#[test]
fn reserve_repeated_after_release_or_commit_is_a_no_op() {
    for finish in [
        InventoryEvent::ReservationReleased {
            reservation_id: RES,
            order_id: ORDER,
            quantity: qty(3),
            available: 10,
            at: at(2),
        },
        InventoryEvent::ReservationCommitted {
            reservation_id: RES,
            order_id: ORDER,
            quantity: qty(3),
            on_hand: 7,
            available: 7,
            at: at(2),
        },
    ] {
        let mut history = stocked();
        history.push(finish);
        given::<Inventory>(history)
            .when(reserve(RES, ORDER, 3))
            .then_expect_events([]);
    }
}

#[test]
fn reserve_reusing_an_id_with_another_payload_is_refused() {
    let err = given::<Inventory>(stocked())
        .when(reserve(RES, ORDER2, 3))
        .then_expect_error();
    assert_eq!(
        err,
        InventoryError::ReservationConflict {
            reservation_id: RES
        }
    );

    let mut history = stocked();
    history.push(InventoryEvent::ReservationReleased {
        reservation_id: RES,
        order_id: ORDER,
        quantity: qty(3),
        available: 10,
        at: at(2),
    });
    let err = given::<Inventory>(history)
        .when(reserve(RES, ORDER, 4))
        .then_expect_error();
    assert_eq!(
        err,
        InventoryError::ReservationConflict {
            reservation_id: RES
        }
    );
}

#[test]
fn reserve_expiring_in_the_past_is_refused() {
    let err = given::<Inventory>(stocked())
        .when(InventoryCommand::ReserveStock {
            reservation_id: RES2,
            order_id: ORDER2,
            quantity: qty(1),
            expires_at: at(5),
            at: at(5),
        })
        .then_expect_error();
    assert_eq!(
        err,
        InventoryError::ExpiryNotInFuture {
            expires_at: at(5),
            at: at(5)
        }
    );
}

// --- ReleaseReservation -----------------------------------------------------------------

fn released() -> InventoryEvent {
    InventoryEvent::ReservationReleased {
        reservation_id: RES,
        order_id: ORDER,
        quantity: qty(3),
        available: 10,
        at: at(2),
    }
}

fn committed() -> InventoryEvent {
    InventoryEvent::ReservationCommitted {
        reservation_id: RES,
        order_id: ORDER,
        quantity: qty(3),
        on_hand: 7,
        available: 7,
        at: at(2),
    }
}

#[test]
fn release_gives_units_back_once() {
    let release = InventoryCommand::ReleaseReservation {
        reservation_id: RES,
        at: at(2),
    };
    let (events, state) = given::<Inventory>(stocked())
        .when(release.clone())
        .then_state();
    assert_eq!(events, vec![released()]);
    assert_eq!(
        (state.on_hand(), state.reserved(), state.available()),
        (10, 0, 10)
    );
    assert!(state.reservation(RES).is_none());

    let mut history = stocked();
    history.push(released());
    given::<Inventory>(history)
        .when(release)
        .then_expect_events([]);
}

#[test]
fn release_of_an_unknown_reservation_is_refused() {
    let err = given::<Inventory>(stocked())
        .when(InventoryCommand::ReleaseReservation {
            reservation_id: RES2,
            at: at(2),
        })
        .then_expect_error();
    assert_eq!(
        err,
        InventoryError::ReservationNotFound {
            reservation_id: RES2
        }
    );
}

#[test]
fn release_of_a_committed_reservation_is_refused() {
    let mut history = stocked();
    history.push(committed());
    let err = given::<Inventory>(history)
        .when(InventoryCommand::ReleaseReservation {
            reservation_id: RES,
            at: at(3),
        })
        .then_expect_error();
    assert_eq!(
        err,
        InventoryError::ReservationAlreadyCommitted {
            reservation_id: RES
        }
    );
}

// --- ExpireReservation / ExpireDueReservations -----------------------------------------

#[test]
fn expire_after_the_expiry_gives_units_back_once() {
    let expire = InventoryCommand::ExpireReservation {
        reservation_id: RES,
        at: at(15),
    };
    let expired = InventoryEvent::ReservationExpired {
        reservation_id: RES,
        order_id: ORDER,
        quantity: qty(3),
        available: 10,
        at: at(15),
    };
    let (events, state) = given::<Inventory>(stocked())
        .when(expire.clone())
        .then_state();
    assert_eq!(events, vec![expired.clone()]);
    assert_eq!(state.reserved(), 0);

    let mut history = stocked();
    history.push(expired);
    given::<Inventory>(history.clone())
        .when(expire)
        .then_expect_events([]);
    // Released by expiry counts as released.
    given::<Inventory>(history)
        .when(InventoryCommand::ReleaseReservation {
            reservation_id: RES,
            at: at(16),
        })
        .then_expect_events([]);
}

#[test]
fn expire_before_the_expiry_is_refused() {
    let err = given::<Inventory>(stocked())
        .when(InventoryCommand::ExpireReservation {
            reservation_id: RES,
            at: at(14),
        })
        .then_expect_error();
    assert_eq!(
        err,
        InventoryError::ReservationNotExpired {
            reservation_id: RES,
            expires_at: at(15)
        }
    );
}

#[test]
fn expire_of_a_committed_or_unknown_reservation_is_refused() {
    let mut history = stocked();
    history.push(committed());
    let err = given::<Inventory>(history)
        .when(InventoryCommand::ExpireReservation {
            reservation_id: RES,
            at: at(20),
        })
        .then_expect_error();
    assert_eq!(
        err,
        InventoryError::ReservationAlreadyCommitted {
            reservation_id: RES
        }
    );
    let err = given::<Inventory>(stocked())
        .when(InventoryCommand::ExpireReservation {
            reservation_id: RES2,
            at: at(20),
        })
        .then_expect_error();
    assert_eq!(
        err,
        InventoryError::ReservationNotFound {
            reservation_id: RES2
        }
    );
}

#[test]
fn expire_due_sweeps_only_lapsed_reservations() {
    let mut history = stocked();
    history.push(InventoryEvent::StockReserved {
        reservation_id: RES2,
        order_id: ORDER2,
        quantity: qty(2),
        expires_at: at(30),
        available: 5,
        at: at(1),
    });
    let (events, state) = given::<Inventory>(history.clone())
        .when(InventoryCommand::ExpireDueReservations { at: at(20) })
        .then_state();
    assert_eq!(
        events,
        vec![InventoryEvent::ReservationExpired {
            reservation_id: RES,
            order_id: ORDER,
            quantity: qty(3),
            available: 8,
            at: at(20),
        }]
    );
    assert_eq!((state.reserved(), state.available()), (2, 8));
    given::<Inventory>(history)
        .when(InventoryCommand::ExpireDueReservations { at: at(10) })
        .then_expect_events([]);
}

// --- CommitReservation ------------------------------------------------------------------

#[test]
fn commit_takes_units_out_of_stock_once() {
    let commit = InventoryCommand::CommitReservation {
        reservation_id: RES,
        at: at(2),
    };
    let (events, state) = given::<Inventory>(stocked())
        .when(commit.clone())
        .then_state();
    assert_eq!(events, vec![committed()]);
    assert_eq!(
        (state.on_hand(), state.reserved(), state.available()),
        (7, 0, 7)
    );

    let mut history = stocked();
    history.push(committed());
    given::<Inventory>(history)
        .when(commit)
        .then_expect_events([]);
}

#[test]
fn commit_of_a_released_or_unknown_reservation_is_refused() {
    let mut history = stocked();
    history.push(released());
    let err = given::<Inventory>(history)
        .when(InventoryCommand::CommitReservation {
            reservation_id: RES,
            at: at(3),
        })
        .then_expect_error();
    assert_eq!(
        err,
        InventoryError::ReservationAlreadyReleased {
            reservation_id: RES
        }
    );
    let err = given::<Inventory>(stocked())
        .when(InventoryCommand::CommitReservation {
            reservation_id: RES2,
            at: at(3),
        })
        .then_expect_error();
    assert_eq!(
        err,
        InventoryError::ReservationNotFound {
            reservation_id: RES2
        }
    );
}

// --- Bounded memory, serialisation --------------------------------------------------------

#[test]
fn finished_reservations_are_remembered_up_to_the_bound() {
    let mut inv = Inventory::from_events(&[tracked(0), received(10, 10, 10)]);
    let n = Inventory::FINISHED_RESERVATIONS_REMEMBERED + 1;
    for i in 0..n {
        let id = Uuid::from_u128(1_000 + i as u128);
        for cmd in [
            reserve(id, ORDER, 1),
            InventoryCommand::ReleaseReservation {
                reservation_id: id,
                at: at(1),
            },
        ] {
            for e in inv.handle(cmd).unwrap() {
                inv.apply(&e);
            }
        }
    }
    // The oldest one is forgotten; the newest still a no-op.
    let oldest = InventoryCommand::ReleaseReservation {
        reservation_id: Uuid::from_u128(1_000),
        at: at(2),
    };
    assert!(matches!(
        inv.handle(oldest),
        Err(InventoryError::ReservationNotFound { .. })
    ));
    let newest = InventoryCommand::ReleaseReservation {
        reservation_id: Uuid::from_u128(1_000 + n as u128 - 1),
        at: at(2),
    };
    assert_eq!(inv.handle(newest), Ok(vec![]));
}

#[test]
fn events_and_state_round_trip_through_json() {
    use crate::aggregate::DomainEvent;
    for e in stocked() {
        let json = serde_json::to_value(&e).unwrap();
        assert!(
            json.get(e.event_type()).is_some(),
            "externally tagged: {json}"
        );
        assert_eq!(e.event_version(), "1.0");
        assert_eq!(serde_json::from_value::<InventoryEvent>(json).unwrap(), e);
    }
    let state = Inventory::from_events(&stocked());
    let back: Inventory = serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
    assert_eq!(back.available(), 7);
    assert_eq!(back.reservation(RES), state.reservation(RES));
}
