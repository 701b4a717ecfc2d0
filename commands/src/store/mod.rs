//! The event store port: what the command layer needs from a store, so one
//! [`Dispatcher`](crate::Dispatcher) works over PostgreSQL (the distributed mode) and
//! SQLite (the embedded mode).
//!
//! A store provides
//! - a cqrs-es [`PersistedEventRepository`]: load (replay, snapshot + tail, upcasting)
//!   and commit with optimistic concurrency (a second writer of a sequence is refused by
//!   the `(aggregate_type, aggregate_id, sequence)` key);
//! - the global position of a committed event ([`EventStore::position_of`]), for
//!   read-your-writes waits;
//! - uniqueness claims around a command ([`EventStore::claim`], see
//!   [`reservations`](crate::reservations) for the contract);
//! - the whole log in commit order and an import into an empty store
//!   ([`EventStore::read_log`], [`EventStore::import`]), for `emporium events
//!   export|import` and for feeds.
//!
//! [`PgStore`] is the PostgreSQL store and the default everywhere; `SqliteStore`
//! (feature `sqlite`) is the embedded one; [`AnyStore`] is either, chosen at run time.

use std::future::Future;

use chrono::{DateTime, Utc};
use cqrs_es::persist::PersistedEventRepository;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

mod any;
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use any::{AnyPending, AnyRepository, AnyStore};
pub use postgres::PgStore;
#[cfg(feature = "sqlite")]
pub use sqlite::{Durability, SqlitePending, SqliteRepository, SqliteStore, StoreInUse};

use crate::reservations::Claim;

/// An event store the command layer can run over. Cheap to clone (a pool handle).
pub trait EventStore: Clone + Send + Sync + 'static {
    /// The cqrs-es repository that loads and commits aggregates.
    type Repository: PersistedEventRepository;
    /// A claim held open around its owner's command.
    type Pending: PendingClaim;

    /// A repository over this store.
    fn repository(&self) -> Self::Repository;

    /// The global position of a committed event.
    fn position_of(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        sequence: usize,
    ) -> impl Future<Output = anyhow::Result<i64>> + Send;

    /// Claims `key` in `scope` for `owner_id`; blocks while another claimant of the
    /// same key is in flight. See [`crate::reservations`].
    fn claim(
        &self,
        scope: &str,
        key: &str,
        owner_id: &str,
    ) -> impl Future<Output = anyhow::Result<Claim<Self::Pending>>> + Send;

    /// Gives up a confirmed claim held by `owner_id`.
    fn release(
        &self,
        scope: &str,
        key: &str,
        owner_id: &str,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Who holds `key` in `scope`, if anyone.
    fn holder(
        &self,
        scope: &str,
        key: &str,
    ) -> impl Future<Output = anyhow::Result<Option<String>>> + Send;

    /// Up to `limit` events after global position `after`, in commit order, as stored
    /// (sealed fields included).
    fn read_log(
        &self,
        after: i64,
        limit: usize,
    ) -> impl Future<Output = anyhow::Result<Vec<LoggedEvent>>> + Send;

    /// Every confirmed uniqueness claim.
    fn unique_keys(&self) -> impl Future<Output = anyhow::Result<Vec<UniqueKey>>> + Send;

    /// Whether the store holds no event and no claim.
    fn is_empty(&self) -> impl Future<Output = anyhow::Result<bool>> + Send;

    /// Appends one aggregate's `events` at sequences `first_sequence..` in one
    /// statement (one implicit transaction, one round trip), returning the position of
    /// the last one, or [`Appended::Conflict`] when another writer already holds one
    /// of those sequences (nothing is written then). `Ok(None)`: this store has no
    /// such path, the caller commits through cqrs-es instead.
    fn append(
        &self,
        aggregate_type: &'static str,
        aggregate_id: &str,
        first_sequence: usize,
        events: &[NewEvent],
        metadata: &serde_json::Value,
    ) -> impl Future<Output = anyhow::Result<Option<Appended>>> + Send {
        let _ = (
            aggregate_type,
            aggregate_id,
            first_sequence,
            events,
            metadata,
        );
        std::future::ready(Ok(None))
    }

    /// Appends the events of several aggregates (each row names its aggregate and
    /// sequence) in one statement (PostgreSQL) or one write transaction (SQLite),
    /// in row order: all of them or, when another writer holds any of
    /// those sequences, none ([`Appended::Conflict`]). The position is the last row's.
    /// `Ok(None)`: this store has no such path (the caller commits one by one).
    fn append_unit(
        &self,
        rows: &[UnitRow],
    ) -> impl Future<Output = anyhow::Result<Option<Appended>>> + Send {
        let _ = rows;
        std::future::ready(Ok(None))
    }

    /// Appends `events` (in the given order, keeping their aggregate sequences, event
    /// ids and record times; positions are this store's) and `keys`, all in one
    /// transaction: on any error nothing is written.
    fn import(
        &self,
        events: &[LoggedEvent],
        keys: &[UniqueKey],
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// One event to append, serialised as cqrs-es would (`EsEvent` is transparent, so the
/// payload is the domain's JSON).
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The event type, e.g. `OrderPlaced`.
    pub event_type: String,
    /// The event's schema version.
    pub event_version: String,
    /// The event as stored.
    pub payload: serde_json::Value,
}

/// One event of a multi-aggregate unit ([`EventStore::append_unit`]).
#[derive(Debug, Clone)]
pub struct UnitRow {
    /// The aggregate's type.
    pub aggregate_type: &'static str,
    /// The aggregate's id.
    pub aggregate_id: String,
    /// The event's sequence in its aggregate.
    pub sequence: i64,
    /// The event.
    pub event: NewEvent,
    /// Its command's metadata.
    pub metadata: serde_json::Value,
}

/// What [`EventStore::append`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Recorded; the global position of the last event.
    At(i64),
    /// Another writer holds one of the sequences: nothing was recorded.
    Conflict,
}

/// An open claim (see [`crate::reservations`]).
pub trait PendingClaim: Send + Sized {
    /// Whether a committed event of another aggregate already introduced `key`
    /// (see [`KeyLookup`]): closes the window where an owner's command committed and
    /// its claim did not.
    fn introduced_elsewhere(
        &mut self,
        lookup: &KeyLookup,
        key: &str,
        owner_id: &str,
    ) -> impl Future<Output = anyhow::Result<bool>> + Send;

    /// Makes the claim permanent. Call after the owner's command committed.
    fn confirm(self) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Gives the claim up.
    fn abandon(self) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// Where committed events name a unique key: events of `aggregate_type` whose payload
/// holds the key at `{event_type: {field: key}}`, for each `(event_type, field)`. The
/// names are compile-time constants (each store builds its query from them and
/// indexes the same expressions).
#[derive(Debug, Clone, Copy)]
pub struct KeyLookup {
    /// The owners' aggregate type.
    pub aggregate_type: &'static str,
    /// `(event_type, field)` pairs that introduce the key.
    pub fields: &'static [(&'static str, &'static str)],
}

/// One stored event, as the log holds it: what `emporium events export` writes and
/// `import` reads (JSON Lines), and what store-fed feeds deliver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggedEvent {
    /// The position in the store it was read from (informational: an import assigns
    /// its own positions, in file order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<i64>,
    /// The aggregate type, e.g. `order`.
    pub aggregate_type: String,
    /// The aggregate's id.
    pub aggregate_id: String,
    /// The event's sequence within its aggregate (1-based).
    pub sequence: i64,
    /// The event type, e.g. `OrderPlaced`.
    pub event_type: String,
    /// The event's schema version.
    pub event_version: String,
    /// The event as stored, sealed fields included.
    pub payload: serde_json::Value,
    /// Correlation, causation, actor, time and trace context.
    pub metadata: serde_json::Value,
    /// The event's own id (kept: read models key rows on it).
    pub event_id: Uuid,
    /// When the source store recorded it.
    pub recorded_at: DateTime<Utc>,
}

/// A confirmed uniqueness claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UniqueKey {
    /// The claim's scope, e.g. `user_email`.
    pub scope: String,
    /// The key.
    pub key: String,
    /// The owning aggregate's id.
    pub owner_id: String,
}
