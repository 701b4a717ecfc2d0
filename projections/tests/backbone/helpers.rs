//! A backbone of one's own, per test: a fresh database (migrated by the event store's
//! migrator), a unique stream prefix on the shared NATS, and helpers to write events and
//! read the stream back.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use emporium_projections::bus::StreamLayout;
use emporium_projections::envelope::{CommitPosition, EventEnvelope, headers};
use emporium_projections::relay::{Relay, RelayConfig};
use emporium_tests::{TestDatabase, unique_prefix};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

pub(crate) use emporium_tests::nats_url;

/// How long a test waits on something outside its control (another process, a
/// transaction of another test on the same server) before failing.
pub(crate) const PATIENCE: Duration = Duration::from_secs(60);

pub(crate) struct TestBackbone {
    pub(crate) pool: PgPool,
    pub(crate) database_url: String,
    db: TestDatabase,
    pub(crate) prefix: String,
    pub(crate) layout: StreamLayout,
    pub(crate) jetstream: jetstream::Context,
}

/// A message as read back from the stream.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub(crate) sequence: u64,
    pub(crate) message_id: String,
    pub(crate) cursor: CommitPosition,
    pub(crate) envelope: EventEnvelope,
}

pub(crate) async fn spawn_backbone() -> TestBackbone {
    spawn_backbone_on(&nats_url()).await
}

pub(crate) async fn spawn_backbone_on(nats: &str) -> TestBackbone {
    let db = TestDatabase::create(16).await.expect("test database");
    let pool = db.pool().clone();
    let database_url = db.url().to_owned();
    emporium_commands::db::migrate(&pool)
        .await
        .expect("migrate");
    let client = emporium_projections::bus::connect(nats, Duration::from_secs(5))
        .await
        .expect("nats");
    let prefix = unique_prefix();
    TestBackbone {
        pool,
        database_url,
        db,
        layout: StreamLayout::new(&prefix).expect("layout"),
        prefix,
        jetstream: jetstream::new(client),
    }
}

/// A relay configuration for tests: quick to notice trouble.
pub(crate) fn test_config() -> RelayConfig {
    RelayConfig {
        ack_timeout: Duration::from_secs(2),
        verify_interval: Duration::from_millis(200),
        standby_retry: Duration::from_millis(50),
        error_backoff: Duration::from_millis(50),
        ..RelayConfig::default()
    }
}

impl TestBackbone {
    pub(crate) fn relay(&self) -> Relay {
        Relay::new(
            self.pool.clone(),
            self.jetstream.clone(),
            self.layout.clone(),
            test_config(),
        )
    }

    /// Inserts one event for `aggregate_id` at `sequence` on `conn` (inside whatever
    /// transaction it has open); returns its event id.
    pub(crate) async fn insert_event(
        conn: &mut PgConnection,
        aggregate_id: &str,
        sequence: i64,
    ) -> Uuid {
        sqlx::query_scalar(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                                 event_version, payload, metadata)
             VALUES ('order', $1, $2, 'OrderPlaced', '1', $3, $4)
             RETURNING event_id",
        )
        .bind(aggregate_id)
        .bind(sequence)
        .bind(serde_json::json!({ "aggregate": aggregate_id, "sequence": sequence }))
        .bind(serde_json::json!({
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        }))
        .fetch_one(conn)
        .await
        .expect("insert event")
    }

    /// Commits `count` events, one transaction each, to fresh aggregates.
    pub(crate) async fn append(&self, count: usize) {
        let mut conn = self.pool.acquire().await.expect("connection");
        for _ in 0..count {
            let id = Uuid::new_v4().to_string();
            Self::insert_event(&mut conn, &id, 1).await;
        }
    }

    /// The committed events' dedupe ids in commit order.
    pub(crate) async fn committed_order(&self) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT aggregate_type || ':' || aggregate_id || ':' || sequence FROM events
             ORDER BY transaction_id, position",
        )
        .fetch_all(&self.pool)
        .await
        .expect("read committed events")
    }

    /// Every message in the stream, in stream order.
    pub(crate) async fn stream_messages(&self) -> Vec<Stored> {
        let Ok(mut stream) = self.jetstream.get_stream(self.layout.stream_name()).await else {
            return Vec::new();
        };
        let state = stream.info().await.expect("stream info").state.clone();
        let mut out = Vec::new();
        for sequence in state.first_sequence..=state.last_sequence {
            if sequence == 0 {
                continue;
            }
            let message = stream
                .get_raw_message(sequence)
                .await
                .expect("stream message");
            out.push(Stored {
                sequence: message.sequence,
                message_id: message
                    .headers
                    .get(headers::MESSAGE_ID)
                    .expect("message id header")
                    .to_string(),
                cursor: CommitPosition::from_headers(&message.headers).expect("cursor headers"),
                envelope: serde_json::from_slice(&message.payload).expect("envelope body"),
            });
        }
        out
    }

    /// The stream holds exactly the committed events, in commit order, each once, with
    /// dense sequences from 1. Returns the messages.
    pub(crate) async fn assert_stream_matches_store(&self) -> Vec<Stored> {
        let committed = self.committed_order().await;
        let messages = self.stream_messages().await;
        let ids: Vec<String> = messages.iter().map(|m| m.message_id.clone()).collect();
        let unique: HashSet<&String> = ids.iter().collect();
        assert_eq!(
            unique.len(),
            ids.len(),
            "a message id appears twice in the stream"
        );
        assert_eq!(
            ids.len(),
            committed.len(),
            "stream and store differ in length"
        );
        assert_eq!(ids, committed, "stream order differs from commit order");
        for (expected, message) in (1_u64..).zip(&messages) {
            assert_eq!(message.sequence, expected, "stream sequence is not dense");
            assert_eq!(message.envelope.message_id(), message.message_id);
            assert_eq!(message.envelope.commit_position(), message.cursor);
        }
        for pair in messages.windows(2) {
            assert!(
                pair[0].cursor < pair[1].cursor,
                "commit order not increasing"
            );
        }
        messages
    }

    /// Committed events the stream does not hold yet.
    pub(crate) async fn lag(&self, relay: &Relay) -> u64 {
        let head = relay.read_head().await.expect("stream head");
        relay.lag(head.cursor).await.expect("lag")
    }

    /// Steps `relay` until the stream holds every committed event. Transactions of
    /// other tests on this PostgreSQL hold the visibility horizon back for a moment,
    /// so this may take a few steps; it gives up after [`PATIENCE`].
    pub(crate) async fn relay_until_caught_up(&self, relay: &mut Relay) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let stepped = relay.relay_once().await;
            if stepped.is_ok() && self.lag(relay).await == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "relay did not catch up: {stepped:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits (bounded) until a relay running elsewhere has published every committed
    /// event.
    pub(crate) async fn wait_until_published(&self) {
        let probe = self.relay();
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(head) = probe.read_head().await
                && probe.lag(head.cursor).await.expect("lag") == 0
            {
                return;
            }
            assert!(Instant::now() < deadline, "the relay did not catch up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Deletes the test's stream and database.
    pub(crate) async fn teardown(self) {
        let _ = self
            .jetstream
            .delete_stream(self.layout.stream_name())
            .await;
        self.db.drop_database().await.expect("drop test database");
    }
}
