//! [`AnyStore`]: the event store chosen at run time (PostgreSQL, or SQLite with the
//! `sqlite` feature), for code that runs in either mode without being generic over
//! [`EventStore`] (the checkout process manager, the gateway's services).
//!
//! Every operation delegates to the store inside; a repository or a pending claim of
//! one backend never meets the other's. [`AnyStore::db`] is the same database as the
//! events (the PostgreSQL pool, or the SQLite file's pool), where the tables kept
//! beside the event store live (checkouts, the durable offline payment provider, the
//! processed webhook events).

use cqrs_es::Aggregate;
use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use postgres_es::PostgresEventRepository;
use serde_json::Value;

use super::{
    Appended, EventStore, KeyLookup, LoggedEvent, NewEvent, PendingClaim, PgStore, UniqueKey,
    UnitRow,
};
#[cfg(feature = "sqlite")]
use super::{SqlitePending, SqliteRepository, SqliteStore};
use crate::reservations::{Claim, Pending};
use crate::sql::{Backend, Db};

/// An event store of either backend. Cheap to clone.
#[derive(Debug, Clone)]
pub enum AnyStore {
    /// The PostgreSQL store (the distributed mode).
    Postgres(PgStore),
    /// The SQLite store (the embedded mode).
    #[cfg(feature = "sqlite")]
    Sqlite(SqliteStore),
}

impl From<PgStore> for AnyStore {
    fn from(store: PgStore) -> Self {
        Self::Postgres(store)
    }
}

/// The PostgreSQL store over `pool` (a clone of the pool).
impl From<&sqlx::PgPool> for AnyStore {
    fn from(pool: &sqlx::PgPool) -> Self {
        Self::Postgres(PgStore::new(pool.clone()))
    }
}

#[cfg(feature = "sqlite")]
impl From<SqliteStore> for AnyStore {
    fn from(store: SqliteStore) -> Self {
        Self::Sqlite(store)
    }
}

impl AnyStore {
    /// The id of the transaction that recorded the event at `position`, when known
    /// without a read: an append of this store (or a clone) on PostgreSQL
    /// ([`PgStore::transaction_of`]); on SQLite, where commit order is position
    /// order, the position itself.
    #[must_use]
    pub fn transaction_of(&self, position: i64) -> Option<i64> {
        match self {
            Self::Postgres(store) => store.transaction_of(position),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => Some(position),
        }
    }

    /// The events' database, for the tables kept beside the event store.
    #[must_use]
    pub fn db(&self) -> Db {
        match self {
            Self::Postgres(store) => Db::Postgres(store.pool().clone()),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(store) => Db::Sqlite(store.pool().clone()),
        }
    }

    /// The backend behind this store.
    #[must_use]
    pub fn backend(&self) -> Backend {
        match self {
            Self::Postgres(_) => Backend::Postgres,
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => Backend::Sqlite,
        }
    }
}

/// Runs `$body` with `$s` bound to the store inside `$self`, whichever it is.
macro_rules! each {
    ($self:expr, |$s:ident| $body:expr) => {
        match $self {
            AnyStore::Postgres($s) => $body,
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite($s) => $body,
        }
    };
}

/// The repository of an [`AnyStore`].
pub enum AnyRepository {
    /// postgres-es.
    Postgres(PostgresEventRepository),
    /// The SQLite store's.
    #[cfg(feature = "sqlite")]
    Sqlite(SqliteRepository),
}

impl std::fmt::Debug for AnyRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match self {
            Self::Postgres(_) => "postgres",
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => "sqlite",
        };
        f.debug_struct("AnyRepository")
            .field("backend", &backend)
            .finish_non_exhaustive()
    }
}

/// As `each!`, for the repository.
macro_rules! each_repo {
    ($self:expr, |$r:ident| $body:expr) => {
        match $self {
            AnyRepository::Postgres($r) => $body,
            #[cfg(feature = "sqlite")]
            AnyRepository::Sqlite($r) => $body,
        }
    };
}

impl PersistedEventRepository for AnyRepository {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        each_repo!(self, |r| r.get_events::<A>(aggregate_id).await)
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        each_repo!(self, |r| r
            .get_last_events::<A>(aggregate_id, last_sequence)
            .await)
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        each_repo!(self, |r| r.get_snapshot::<A>(aggregate_id).await)
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        each_repo!(self, |r| r.persist::<A>(events, snapshot_update).await)
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        each_repo!(self, |r| r.stream_events::<A>(aggregate_id).await)
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        each_repo!(self, |r| r.stream_all_events::<A>().await)
    }
}

/// A claim open on an [`AnyStore`].
#[derive(Debug)]
pub enum AnyPending {
    /// A PostgreSQL claim (its open transaction).
    Postgres(Pending),
    /// An SQLite claim (its key's lock).
    #[cfg(feature = "sqlite")]
    Sqlite(SqlitePending),
}

/// As `each!`, for the pending claim.
macro_rules! each_pending {
    ($self:expr, |$p:ident| $body:expr) => {
        match $self {
            AnyPending::Postgres($p) => $body,
            #[cfg(feature = "sqlite")]
            AnyPending::Sqlite($p) => $body,
        }
    };
}

impl PendingClaim for AnyPending {
    async fn introduced_elsewhere(
        &mut self,
        lookup: &KeyLookup,
        key: &str,
        owner_id: &str,
    ) -> anyhow::Result<bool> {
        each_pending!(self, |p| p
            .introduced_elsewhere(lookup, key, owner_id)
            .await)
    }

    async fn confirm(self) -> anyhow::Result<()> {
        each_pending!(self, |p| PendingClaim::confirm(p).await)
    }

    async fn abandon(self) -> anyhow::Result<()> {
        each_pending!(self, |p| PendingClaim::abandon(p).await)
    }
}

fn wrap_claim<P>(claim: Claim<P>, wrap: impl FnOnce(P) -> AnyPending) -> Claim<AnyPending> {
    match claim {
        Claim::Pending {
            pending,
            already_ours,
        } => Claim::Pending {
            pending: wrap(pending),
            already_ours,
        },
        Claim::TakenBy(holder) => Claim::TakenBy(holder),
    }
}

impl EventStore for AnyStore {
    type Repository = AnyRepository;
    type Pending = AnyPending;

    fn repository(&self) -> Self::Repository {
        match self {
            Self::Postgres(s) => AnyRepository::Postgres(s.repository()),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(s) => AnyRepository::Sqlite(s.repository()),
        }
    }

    async fn position_of(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        sequence: usize,
    ) -> anyhow::Result<i64> {
        each!(self, |s| s
            .position_of(aggregate_type, aggregate_id, sequence)
            .await)
    }

    async fn claim(
        &self,
        scope: &str,
        key: &str,
        owner_id: &str,
    ) -> anyhow::Result<Claim<AnyPending>> {
        Ok(match self {
            Self::Postgres(s) => wrap_claim(s.claim(scope, key, owner_id).await?, |p| {
                AnyPending::Postgres(p)
            }),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(s) => wrap_claim(s.claim(scope, key, owner_id).await?, |p| {
                AnyPending::Sqlite(p)
            }),
        })
    }

    async fn release(&self, scope: &str, key: &str, owner_id: &str) -> anyhow::Result<()> {
        each!(self, |s| s.release(scope, key, owner_id).await)
    }

    async fn holder(&self, scope: &str, key: &str) -> anyhow::Result<Option<String>> {
        each!(self, |s| s.holder(scope, key).await)
    }

    async fn read_log(&self, after: i64, limit: usize) -> anyhow::Result<Vec<LoggedEvent>> {
        each!(self, |s| s.read_log(after, limit).await)
    }

    async fn unique_keys(&self) -> anyhow::Result<Vec<UniqueKey>> {
        each!(self, |s| s.unique_keys().await)
    }

    async fn is_empty(&self) -> anyhow::Result<bool> {
        each!(self, |s| s.is_empty().await)
    }

    async fn append(
        &self,
        aggregate_type: &'static str,
        aggregate_id: &str,
        first_sequence: usize,
        events: &[NewEvent],
        metadata: &Value,
    ) -> anyhow::Result<Option<Appended>> {
        each!(self, |s| s
            .append(
                aggregate_type,
                aggregate_id,
                first_sequence,
                events,
                metadata
            )
            .await)
    }

    async fn append_unit(&self, rows: &[UnitRow]) -> anyhow::Result<Option<Appended>> {
        each!(self, |s| s.append_unit(rows).await)
    }

    async fn import(&self, events: &[LoggedEvent], keys: &[UniqueKey]) -> anyhow::Result<()> {
        each!(self, |s| s.import(events, keys).await)
    }
}
