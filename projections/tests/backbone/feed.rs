//! The embedded store's feed: committed events in commit order without a relay.
//!
//! `position order is commit order` is the claim everything else rests on; here
//! writers race (some on one aggregate, so conflicts roll transactions back) while
//! readers poll the feed, and every reader must see a gap-free prefix at every read.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use emporium_commands::store::{EventStore as _, SqliteStore};
use emporium_commands::{CommandError, Dispatcher, Loading};
use emporium_domain::cart::{Cart, CartCommand, CartOwner};
use emporium_domain::inventory::{Inventory, InventoryCommand};
use emporium_domain::metadata::Actor;
use emporium_domain::user::{Email, PasswordHash, PersonName, Preferences, Role, UserCommand};
use emporium_domain::{Currency, EventMetadata, Quantity, Sku};
use emporium_projections::envelope::{CommitPosition, EventEnvelope};
use emporium_projections::feed::{EventFeed, SqliteFeed};
use uuid::Uuid;

fn meta() -> EventMetadata {
    EventMetadata::new(Uuid::new_v4(), Actor::System("test".into()), Utc::now())
}

const CART_WRITERS: usize = 4;
const STOCK_WRITERS: usize = 4;
const COMMANDS_PER_WRITER: usize = 40;
const READERS: usize = 3;

async fn write_carts(store: SqliteStore) {
    let carts = Dispatcher::<Cart, SqliteStore>::over(store, Loading::Replay);
    let cart_id = Uuid::new_v4();
    let id = cart_id.to_string();
    let open = CartCommand::OpenCart {
        cart_id,
        owner: CartOwner::User {
            user_id: Uuid::new_v4(),
        },
        currency: Currency::EUR,
        at: Utc::now(),
    };
    carts.execute(&id, open, &meta()).await.expect("open cart");
    for i in 1..COMMANDS_PER_WRITER {
        let add = CartCommand::AddItem {
            sku: Sku::parse(&format!("SKU-{}", i % 5)).unwrap(),
            product_id: Uuid::from_u128(i as u128 % 5),
            quantity: Quantity::new(1).unwrap(),
            at: Utc::now(),
        };
        carts.execute(&id, add, &meta()).await.expect("add item");
    }
}

/// Separate dispatchers on one SKU: their commits conflict and roll back. Returns the
/// conflicts met.
async fn write_stock(store: SqliteStore) -> usize {
    let stock = Dispatcher::<Inventory, SqliteStore>::over(store, Loading::Replay);
    let mut conflicts = 0;
    let mut done = 0;
    while done < COMMANDS_PER_WRITER {
        let at = Utc::now();
        let reserve = InventoryCommand::ReserveStock {
            reservation_id: Uuid::new_v4(),
            order_id: Uuid::new_v4(),
            quantity: Quantity::new(1).unwrap(),
            expires_at: at + chrono::Duration::minutes(15),
            at,
        };
        match stock.execute("FEED-1", reserve, &meta()).await {
            Ok(_) => done += 1,
            Err(CommandError::Conflict { .. }) => {
                conflicts += 1;
                tokio::task::yield_now().await;
            }
            Err(e) => panic!("reserve: {e}"),
        }
    }
    conflicts
}

/// Polls the feed until `done` and caught up, asserting a gap-free prefix at every
/// read; returns what it saw.
async fn read(feed: SqliteFeed, done: Arc<AtomicBool>, batch: usize) -> Vec<EventEnvelope> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen: Vec<EventEnvelope> = Vec::new();
    let mut after = CommitPosition::START;
    loop {
        let finished = done.load(Ordering::Acquire);
        let events = feed.read_after(after, batch).await.expect("read the feed");
        for event in &events {
            assert_eq!(
                event.position,
                after.position + 1,
                "a reader at {after:?} saw position {} next: a gap",
                event.position
            );
            assert!(event.commit_position() > after, "commit order went back");
            after = event.commit_position();
        }
        let caught_up = events.is_empty();
        seen.extend(events);
        // `finished` was read before this read began: every write had committed, so
        // an empty read means the reader has everything.
        if finished && caught_up {
            return seen;
        }
        assert!(Instant::now() < deadline, "reader never caught up");
        if caught_up {
            tokio::task::yield_now().await;
        }
    }
}

#[tokio::test]
async fn every_reader_sees_a_gap_free_prefix_while_writers_race() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("events.db"))
        .await
        .unwrap();
    let setup = Dispatcher::<Inventory, SqliteStore>::over(store.clone(), Loading::Replay);
    let at = Utc::now();
    setup
        .execute(
            "FEED-1",
            InventoryCommand::TrackInventory {
                sku: Sku::parse("FEED-1").unwrap(),
                low_stock_threshold: 0,
                at,
            },
            &meta(),
        )
        .await
        .unwrap();
    setup
        .execute(
            "FEED-1",
            InventoryCommand::ReceiveStock {
                quantity: Quantity::new(10_000).unwrap(),
                at,
            },
            &meta(),
        )
        .await
        .unwrap();

    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..READERS)
        .map(|r| {
            let feed = SqliteFeed::new(store.pool().clone());
            tokio::spawn(read(feed, Arc::clone(&done), 3 + r * 5))
        })
        .collect();
    let carts: Vec<_> = (0..CART_WRITERS)
        .map(|_| tokio::spawn(write_carts(store.clone())))
        .collect();
    let stock: Vec<_> = (0..STOCK_WRITERS)
        .map(|_| tokio::spawn(write_stock(store.clone())))
        .collect();
    for writer in carts {
        writer.await.unwrap();
    }
    let mut conflicts = 0;
    for writer in stock {
        conflicts += writer.await.unwrap();
    }
    done.store(true, Ordering::Release);
    // Rolled-back commits are part of what the readers must not see as gaps.
    assert!(conflicts > 0, "the stock writers never collided");

    let log = store.read_log(0, 100_000).await.unwrap();
    let expected = 2 + (CART_WRITERS + STOCK_WRITERS) * COMMANDS_PER_WRITER;
    assert_eq!(log.len(), expected, "every command recorded one event");
    for reader in readers {
        let seen = reader.await.unwrap();
        assert_eq!(seen.len(), expected);
        // The same events as the store, in the same order.
        for (envelope, stored) in seen.iter().zip(&log) {
            assert_eq!(
                Some(i64::try_from(envelope.position).unwrap()),
                stored.position
            );
            assert_eq!(envelope.event_id, stored.event_id);
        }
        // Each aggregate's events in sequence order, none missing.
        let mut next: HashMap<&str, u64> = HashMap::new();
        for envelope in &seen {
            let expected = next.entry(envelope.aggregate_id.as_str()).or_insert(1);
            assert_eq!(envelope.sequence, *expected, "{}", envelope.aggregate_id);
            *expected += 1;
        }
    }
    store.close().await;
}

#[tokio::test]
async fn the_feed_carries_envelopes_with_sealed_fields_nulled() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("events.db"))
        .await
        .unwrap();
    let users = emporium_commands::users::Users::over(store.clone());
    let user_id = Uuid::new_v4();
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";
    let committed = users
        .register(
            UserCommand::RegisterUser {
                user_id,
                email: Email::parse("ada@example.com").unwrap(),
                password_hash: PasswordHash::parse(hash).unwrap(),
                first_name: PersonName::parse("Ada").unwrap(),
                last_name: None,
                role: Role::Customer,
                preferences: Preferences::default(),
                at: Utc::now(),
            },
            &meta(),
        )
        .await
        .unwrap();

    let feed = SqliteFeed::new(store.pool().clone());
    let events = feed.read_after(CommitPosition::START, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(
        Some(i64::try_from(event.position).unwrap()),
        committed.position
    );
    assert_eq!(event.aggregate_type, "user");
    assert_eq!(event.aggregate_id, user_id.to_string());
    assert_eq!(
        (event.sequence, event.event_type.as_str()),
        (1, "UserRegistered")
    );
    assert_eq!(event.payload["UserRegistered"]["email"], "ada@example.com");
    assert!(event.payload["UserRegistered"]["password_hash"].is_null());
    assert!(event.metadata.get("correlation_id").is_some());
    // The store itself keeps the hash (an aggregate needs it to be rebuilt).
    let stored = store.read_log(0, 10).await.unwrap();
    assert_eq!(stored[0].payload["UserRegistered"]["password_hash"], hash);
    assert!(
        feed.read_after(event.commit_position(), 10)
            .await
            .unwrap()
            .is_empty()
    );
    store.close().await;
}
