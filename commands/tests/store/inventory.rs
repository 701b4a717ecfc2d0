//! Dispatch, concurrency, retries, idempotency and snapshots, on the inventory
//! aggregate (the one the checkout hammers hardest).

use std::sync::Arc;

use chrono::{Duration, Utc};
use emporium_commands::{CommandError, Dispatcher, Loading, RetryPolicy};
use emporium_domain::inventory::{Inventory, InventoryCommand, InventoryError};
use emporium_domain::{Aggregate, Quantity, Sku};
use uuid::Uuid;

use crate::helpers::{Fixture, TestStore, for_any_store, for_each_store, meta};

for_each_store!(
    a_command_commits_reloads_and_returns_its_position,
    a_rejected_command_names_the_rule_and_records_nothing,
    a_repeated_reservation_is_idempotent,
    two_concurrent_commands_on_one_aggregate_never_both_commit,
    one_dispatcher_queues_commands_to_one_aggregate_instead_of_conflicting,
    retried_reservations_never_oversell,
    snapshot_plus_tail_equals_full_replay,
    a_stale_cached_aggregate_is_decided_again_on_stored_state,
    a_refusal_on_a_stale_cached_aggregate_is_decided_again_on_stored_state,
    cached_snapshotting_keeps_snapshots_consistent_with_the_stream,
    the_state_answered_with_a_command_is_the_stored_state_after_it,
);

for_any_store!(
    the_state_answered_with_a_command_is_the_stored_state_after_it,
    a_command_commits_reloads_and_returns_its_position,
    two_concurrent_commands_on_one_aggregate_never_both_commit,
    retried_reservations_never_oversell,
    snapshot_plus_tail_equals_full_replay,
    cached_snapshotting_keeps_snapshots_consistent_with_the_stream,
);

async fn count_events<S: TestStore>(store: &S, aggregate_type: &str, id: &str) -> i64 {
    i64::try_from(store.events_of(aggregate_type, id).await.len()).unwrap()
}

fn qty(n: i64) -> Quantity {
    Quantity::new(n).unwrap()
}

async fn stocked<S: TestStore>(dispatcher: &Dispatcher<Inventory, S>, sku: &str, units: i64) {
    let at = Utc::now();
    dispatcher
        .execute(
            sku,
            InventoryCommand::TrackInventory {
                sku: Sku::parse(sku).unwrap(),
                low_stock_threshold: 0,
                at,
            },
            &meta(),
        )
        .await
        .expect("track");
    dispatcher
        .execute(
            sku,
            InventoryCommand::ReceiveStock {
                quantity: qty(units),
                at,
            },
            &meta(),
        )
        .await
        .expect("receive");
}

fn reserve(reservation_id: Uuid, n: i64) -> InventoryCommand {
    let at = Utc::now();
    InventoryCommand::ReserveStock {
        reservation_id,
        order_id: Uuid::new_v4(),
        quantity: qty(n),
        expires_at: at + Duration::minutes(15),
        at,
    }
}

async fn a_command_commits_reloads_and_returns_its_position<S: TestStore>(f: &Fixture<S>) {
    let inventory = Dispatcher::<Inventory, S>::over(f.store.clone(), Loading::Replay);
    stocked(&inventory, "MUG-1", 10).await;

    let first = inventory
        .execute("MUG-1", reserve(Uuid::new_v4(), 3), &meta())
        .await
        .unwrap();
    assert_eq!(first.events, 1);
    assert_eq!(first.last_sequence, 3);
    let state = inventory.load("MUG-1").await.unwrap();
    assert_eq!(state.available(), 7);

    let second = inventory
        .execute("MUG-1", reserve(Uuid::new_v4(), 1), &meta())
        .await
        .unwrap();
    assert!(
        second.position > first.position,
        "{second:?} after {first:?}"
    );

    // The metadata travelled with the event.
    let metadata = f.store.events_of("inventory", "MUG-1").await[2]
        .metadata
        .clone();
    for key in ["correlation_id", "causation_id", "actor", "occurred_at"] {
        assert!(metadata.get(key).is_some(), "{key} missing from {metadata}");
    }
}

async fn a_rejected_command_names_the_rule_and_records_nothing<S: TestStore>(f: &Fixture<S>) {
    let inventory = Dispatcher::<Inventory, S>::over(f.store.clone(), Loading::Replay);
    stocked(&inventory, "MUG-2", 2).await;
    let before = count_events(&f.store, "inventory", "MUG-2").await;

    let err = inventory
        .execute("MUG-2", reserve(Uuid::new_v4(), 3), &meta())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CommandError::Rejected(InventoryError::InsufficientStock {
                requested: 3,
                available: 2
            })
        ),
        "{err:?}"
    );
    assert_eq!(count_events(&f.store, "inventory", "MUG-2").await, before);
}

async fn a_repeated_reservation_is_idempotent<S: TestStore>(f: &Fixture<S>) {
    let inventory = Dispatcher::<Inventory, S>::over(f.store.clone(), Loading::Replay);
    stocked(&inventory, "MUG-3", 5).await;
    let reservation = Uuid::new_v4();
    let command = reserve(reservation, 2);

    let first = inventory
        .execute("MUG-3", command.clone(), &meta())
        .await
        .unwrap();
    let again = inventory.execute("MUG-3", command, &meta()).await.unwrap();
    assert_eq!(first.events, 1);
    assert_eq!(again.events, 0);
    assert_eq!(again.position, None);
    assert_eq!(again.last_sequence, first.last_sequence);
    assert_eq!(inventory.load("MUG-3").await.unwrap().available(), 3);
}

async fn two_concurrent_commands_on_one_aggregate_never_both_commit<S: TestStore>(f: &Fixture<S>) {
    let setup = Dispatcher::<Inventory, S>::over(f.store.clone(), Loading::Replay);
    stocked(&setup, "MUG-4", 1_000).await;

    // Sixteen processes' dispatchers (a dispatcher queues its own commands to one
    // aggregate, so only separate ones can race), each committing once, at once.
    let outcomes = futures::future::join_all((0..16).map(|_| {
        let store = f.store.clone();
        tokio::spawn(async move {
            let inventory = Dispatcher::<Inventory, S>::over(store, Loading::Replay);
            inventory
                .execute("MUG-4", reserve(Uuid::new_v4(), 1), &meta())
                .await
        })
    }))
    .await;
    let (mut committed, mut conflicts) = (0, 0);
    for outcome in outcomes {
        match outcome.unwrap() {
            Ok(c) => committed += c.events,
            Err(CommandError::Conflict { aggregate_type, .. }) => {
                assert_eq!(aggregate_type, "inventory");
                conflicts += 1;
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(committed + conflicts, 16);
    assert!(committed >= 1);
    // Every commit is visible exactly once: the stream and the state agree.
    let reservations = count_events(&f.store, "inventory", "MUG-4").await - 2;
    assert_eq!(usize::try_from(reservations).unwrap(), committed);
    let state = setup.load("MUG-4").await.unwrap();
    assert_eq!(state.reserved(), u32::try_from(committed).unwrap());
}

async fn one_dispatcher_queues_commands_to_one_aggregate_instead_of_conflicting<S: TestStore>(
    f: &Fixture<S>,
) {
    let inventory = Arc::new(Dispatcher::<Inventory, S>::over(
        f.store.clone(),
        Loading::Replay,
    ));
    stocked(&inventory, "MUG-9", 1_000).await;
    let outcomes = futures::future::join_all((0..16).map(|_| {
        let inventory = Arc::clone(&inventory);
        tokio::spawn(async move {
            inventory
                .execute("MUG-9", reserve(Uuid::new_v4(), 1), &meta())
                .await
        })
    }))
    .await;
    for outcome in outcomes {
        outcome.unwrap().expect("no conflict within one dispatcher");
    }
    assert_eq!(inventory.load("MUG-9").await.unwrap().reserved(), 16);
}

async fn retried_reservations_never_oversell<S: TestStore>(f: &Fixture<S>) {
    let setup = Dispatcher::<Inventory, S>::over(f.store.clone(), Loading::Replay);
    stocked(&setup, "MUG-5", 5).await;

    // Separate dispatchers (processes) so conflicts happen and are retried.
    let outcomes = futures::future::join_all((0..16).map(|_| {
        let store = f.store.clone();
        tokio::spawn(async move {
            let inventory =
                Dispatcher::<Inventory, S>::over(store, Loading::Replay).with_retry(RetryPolicy {
                    attempts: 64,
                    ..RetryPolicy::default()
                });
            inventory
                .execute_retrying("MUG-5", reserve(Uuid::new_v4(), 1), &meta())
                .await
        })
    }))
    .await;
    let (mut reserved, mut refused) = (0, 0);
    for outcome in outcomes {
        match outcome.unwrap() {
            Ok(_) => reserved += 1,
            Err(CommandError::Rejected(InventoryError::InsufficientStock { .. })) => refused += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((reserved, refused), (5, 11));
    let state = setup.load("MUG-5").await.unwrap();
    assert_eq!(state.available(), 0);
    assert_eq!(state.reserved(), 5);
}

async fn snapshot_plus_tail_equals_full_replay<S: TestStore>(f: &Fixture<S>) {
    let snapshotting = Dispatcher::<Inventory, S>::over(f.store.clone(), Loading::Snapshot(10));
    stocked(&snapshotting, "MUG-6", 500).await;
    let mut reservations = Vec::new();
    for i in 0..57 {
        let id = Uuid::new_v4();
        snapshotting
            .execute("MUG-6", reserve(id, 1 + i % 3), &meta())
            .await
            .unwrap();
        reservations.push(id);
    }
    for id in reservations.iter().step_by(4) {
        snapshotting
            .execute(
                "MUG-6",
                InventoryCommand::ReleaseReservation {
                    reservation_id: *id,
                    at: Utc::now(),
                },
                &meta(),
            )
            .await
            .unwrap();
    }
    assert!(
        f.store.snapshot_row("MUG-6").await.is_some(),
        "a snapshot was taken"
    );

    let from_snapshot = snapshotting.load("MUG-6").await.unwrap();
    let replaying = Dispatcher::<Inventory, S>::over(f.store.clone(), Loading::Replay);
    let from_replay = replaying.load("MUG-6").await.unwrap();
    assert_eq!(
        serde_json::to_value(&from_snapshot).unwrap(),
        serde_json::to_value(&from_replay).unwrap()
    );
    // And both equal folding the stored events by hand.
    let events: Vec<_> = f
        .store
        .events_of("inventory", "MUG-6")
        .await
        .into_iter()
        .map(|e| serde_json::from_value(e.payload).unwrap())
        .collect();
    let folded = Inventory::from_events(&events);
    assert_eq!(
        serde_json::to_value(&folded).unwrap(),
        serde_json::to_value(&from_replay).unwrap()
    );
}

async fn a_stale_cached_aggregate_is_decided_again_on_stored_state<S: TestStore>(f: &Fixture<S>) {
    // Two processes' dispatchers over one store.
    let here = Dispatcher::<Inventory, S>::over(f.store.clone(), Loading::Replay);
    let there = Dispatcher::<Inventory, S>::over(f.store.clone(), Loading::Replay);
    stocked(&here, "MUG-7", 5).await;
    here.execute("MUG-7", reserve(Uuid::new_v4(), 3), &meta())
        .await
        .unwrap();
    // Here believes 2 are available; there takes them.
    there
        .execute("MUG-7", reserve(Uuid::new_v4(), 2), &meta())
        .await
        .unwrap();

    let err = here
        .execute("MUG-7", reserve(Uuid::new_v4(), 1), &meta())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CommandError::Rejected(InventoryError::InsufficientStock {
                requested: 1,
                available: 0
            })
        ),
        "{err:?}"
    );
    let state = here.load("MUG-7").await.unwrap();
    assert_eq!((state.on_hand(), state.reserved()), (5, 5));
}

async fn a_refusal_on_a_stale_cached_aggregate_is_decided_again_on_stored_state<S: TestStore>(
    f: &Fixture<S>,
) {
    // Two processes' dispatchers over one store.
    let here = Dispatcher::<Inventory, S>::over(f.store.clone(), Loading::Replay);
    let there = Dispatcher::<Inventory, S>::over(f.store.clone(), Loading::Replay);
    stocked(&here, "MUG-8", 5).await;
    let held = Uuid::new_v4();
    here.execute("MUG-8", reserve(held, 3), &meta())
        .await
        .unwrap();
    // Here believes 2 are available; there releases the 3 it holds.
    there
        .execute(
            "MUG-8",
            InventoryCommand::ReleaseReservation {
                reservation_id: held,
                at: Utc::now(),
            },
            &meta(),
        )
        .await
        .unwrap();

    // Refused on the cached state (2 available), granted on the stored one (5).
    here.execute("MUG-8", reserve(Uuid::new_v4(), 4), &meta())
        .await
        .expect("decided on the stored state");
    let state = here.load("MUG-8").await.unwrap();
    assert_eq!((state.on_hand(), state.reserved()), (5, 4));
}

async fn cached_snapshotting_keeps_snapshots_consistent_with_the_stream<S: TestStore>(
    f: &Fixture<S>,
) {
    let snapshotting = Dispatcher::<Inventory, S>::over(f.store.clone(), Loading::Snapshot(5));
    stocked(&snapshotting, "MUG-8", 100).await;
    // Every command after the first goes through the cache; snapshots must keep being
    // written (their optimistic counter must match) and agree with a replay.
    for _ in 0..23 {
        snapshotting
            .execute("MUG-8", reserve(Uuid::new_v4(), 1), &meta())
            .await
            .unwrap();
    }
    let (last_sequence, current_snapshot) = f.store.snapshot_row("MUG-8").await.unwrap();
    assert_eq!((last_sequence, current_snapshot), (25, 5));
    let fresh = Dispatcher::<Inventory, S>::over(f.store.clone(), Loading::Snapshot(5));
    let replay = Dispatcher::<Inventory, S>::over(f.store.clone(), Loading::Replay);
    assert_eq!(
        serde_json::to_value(fresh.load("MUG-8").await.unwrap()).unwrap(),
        serde_json::to_value(replay.load("MUG-8").await.unwrap()).unwrap()
    );
    assert_eq!(fresh.load("MUG-8").await.unwrap().reserved(), 23);
}

/// `execute_with_state` answers the state the command's events were appended to with
/// them applied: after a plain commit, after a commit decided again because the
/// cached state was stale, through a snapshot commit, and for an idempotent repeat
/// (the stored state it was decided on). Each answer equals a fresh load.
async fn the_state_answered_with_a_command_is_the_stored_state_after_it<S: TestStore>(
    f: &Fixture<S>,
) {
    let json = |i: &Inventory| serde_json::to_value(i).unwrap();
    for loading in [Loading::Replay, Loading::Snapshot(2)] {
        let sku = format!("MUG-S{}", matches!(loading, Loading::Snapshot(_)) as u8);
        let here = Dispatcher::<Inventory, S>::over(f.store.clone(), loading);
        let there = Dispatcher::<Inventory, S>::over(f.store.clone(), loading);
        stocked(&here, &sku, 5).await;
        let held = Uuid::new_v4();
        let (first, state) = here
            .execute_with_state(&sku, reserve(held, 3), &meta())
            .await
            .unwrap();
        assert_eq!(first.events, 1);
        assert_eq!(json(&state), stored(&here, &sku).await, "{loading:?}");
        assert_eq!((state.on_hand(), state.reserved()), (5, 3));

        // There takes the last 2; here's cached state is stale, so its next command
        // conflicts and is decided again on the stored state.
        there
            .execute(&sku, reserve(Uuid::new_v4(), 2), &meta())
            .await
            .unwrap();
        let (_, state) = here
            .execute_retrying_with_state(&sku, release(held), &meta())
            .await
            .unwrap();
        assert_eq!(json(&state), stored(&here, &sku).await, "{loading:?}");
        assert_eq!((state.on_hand(), state.reserved()), (5, 2));

        // A repeat records nothing and answers the stored state.
        let (again, state) = here
            .execute_with_state(&sku, release(held), &meta())
            .await
            .unwrap();
        assert_eq!((again.events, again.position), (0, None));
        assert_eq!(json(&state), stored(&here, &sku).await, "{loading:?}");
    }
}

fn release(reservation_id: Uuid) -> InventoryCommand {
    InventoryCommand::ReleaseReservation {
        reservation_id,
        at: Utc::now(),
    }
}

/// The aggregate as the store has it, as JSON.
async fn stored<S: TestStore>(
    dispatcher: &Dispatcher<Inventory, S>,
    sku: &str,
) -> serde_json::Value {
    serde_json::to_value(dispatcher.load(sku).await.unwrap()).unwrap()
}
