//! Event feeds: committed events in commit order, as [`EventEnvelope`]s, read from
//! wherever they are (the seam between a store and the projection framework).
//!
//! In the distributed mode the relay publishes the PostgreSQL store to JetStream and
//! each [`ProjectionRunner`](crate::projection::ProjectionRunner) consumes the stream
//! through a durable consumer. In the embedded mode there is no relay and no stream:
//! a runner reads the store itself through an [`EventFeed`], asking for the events
//! after its checkpoint. The checkpoint stays the truth (it commits with the
//! read-model change), so a feed needs no acknowledgements: a crash re-reads from the
//! checkpoint.
//!
//! A feed must deliver a *gap-free prefix*: once it has returned the event at commit
//! position `p`, no event that sorts before `p` may appear later. [`SqliteFeed`] gets
//! that from SQLite (see its docs); the test `feed_ordering` proves it under racing
//! writers.

use std::future::Future;

#[cfg(feature = "sqlite")]
use anyhow::Context as _;

use crate::envelope::{CommitPosition, EventEnvelope};

/// Committed events in commit order. See the module docs.
pub trait EventFeed: Send + Sync {
    /// Up to `limit` events after `after`, in commit order; empty when caught up.
    /// Sealed fields arrive as null, as on the stream.
    fn read_after(
        &self,
        after: CommitPosition,
        limit: usize,
    ) -> impl Future<Output = anyhow::Result<Vec<EventEnvelope>>> + Send;
}

/// The embedded store's events (`commands::store::SqliteStore`'s `events` table).
///
/// # Why position order is commit order
/// SQLite has one writer at a time: a transaction takes the write lock before its
/// first insert and keeps it until it commits, and `position` (the rowid, AUTOINCREMENT)
/// is assigned under that lock, one above the highest ever used. A later writer
/// therefore gets higher positions and commits later, and a rolled-back writer hands
/// its positions back (the AUTOINCREMENT counter rolls back with it). So positions are
/// dense and committed in order: a reader that sees `p` sees everything up to `p`.
/// There is no transaction id: an envelope's `transaction_id` is its position, so
/// [`CommitPosition`] compares like the position alone.
#[cfg(feature = "sqlite")]
#[derive(Debug, Clone)]
pub struct SqliteFeed {
    pool: sqlx::SqlitePool,
}

#[cfg(feature = "sqlite")]
impl SqliteFeed {
    /// A feed over the store whose pool this is.
    #[must_use]
    pub fn new(pool: sqlx::SqlitePool) -> Self {
        Self { pool }
    }
}

#[cfg(feature = "sqlite")]
impl EventFeed for SqliteFeed {
    async fn read_after(
        &self,
        after: CommitPosition,
        limit: usize,
    ) -> anyhow::Result<Vec<EventEnvelope>> {
        let after = i64::try_from(after.position).context("position fits in an integer")?;
        let limit = i64::try_from(limit).context("limit fits in an integer")?;
        let rows: Vec<SqliteRow> = sqlx::query_as(
            "SELECT position, aggregate_type, aggregate_id, sequence, event_type, event_version,
                    payload, metadata, event_id, recorded_at
               FROM events WHERE position > ? ORDER BY position LIMIT ?",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .context("read events from the embedded store")?;
        rows.into_iter().map(SqliteRow::into_envelope).collect()
    }
}

#[cfg(feature = "sqlite")]
#[derive(sqlx::FromRow)]
struct SqliteRow {
    position: i64,
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: String,
    metadata: String,
    event_id: String,
    recorded_at: String,
}

#[cfg(feature = "sqlite")]
impl SqliteRow {
    fn into_envelope(self) -> anyhow::Result<EventEnvelope> {
        let at = self.position;
        let stored = crate::envelope::StoredEvent {
            payload: Some(
                serde_json::from_str(&self.payload)
                    .with_context(|| format!("payload at position {at} is not JSON"))?,
            ),
            metadata: Some(
                serde_json::from_str(&self.metadata)
                    .with_context(|| format!("metadata at position {at} is not JSON"))?,
            ),
            event_id: self
                .event_id
                .parse()
                .with_context(|| format!("event id at position {at} is not a UUID"))?,
            recorded_at: chrono::DateTime::parse_from_rfc3339(&self.recorded_at)
                .with_context(|| format!("record time at position {at} is not RFC 3339"))?
                .with_timezone(&chrono::Utc),
            aggregate_type: self.aggregate_type,
            aggregate_id: self.aggregate_id,
            sequence: self.sequence,
            event_type: self.event_type,
            event_version: self.event_version,
            position: self.position,
            // One writer at a time: commit order is position order.
            transaction_id: self.position,
        };
        stored.into_envelope()
    }
}
