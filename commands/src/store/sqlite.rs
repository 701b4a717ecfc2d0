//! The embedded event store: one SQLite file in WAL mode, loaded through sqlite-es.
//!
//! # One process, one writer
//! [`SqliteStore::open`] takes an exclusive OS lock on `<file>.lock` for as long as
//! the store lives (the OS drops it when the process dies, kill -9 included), so one
//! process owns a store; a second gets [`StoreInUse`]. Within it, SQLite admits one
//! writer at a time, so writers take turns on an in-process lock before `BEGIN
//! IMMEDIATE` (SQLite's own busy handler would make them poll with sleeps of up to
//! 100 ms; the busy timeout, 30 s, remains for readers meeting a checkpoint).
//! Optimistic concurrency between dispatchers still comes from the
//! `(aggregate_type, aggregate_id, sequence)` key.
//!
//! # Durability
//! `synchronous = FULL` by default ([`Durability::Full`]): every commit fsyncs the WAL
//! before it is acknowledged, so an acknowledged command survives a process crash
//! *and* a power loss or kernel panic (as far as the disk honours fsync). With
//! [`Durability::Normal`] the WAL is fsynced only at checkpoints: a process crash
//! still loses nothing (the WAL is in the OS page cache, which outlives the process),
//! but a power loss can roll back the transactions committed since the last
//! checkpoint (up to ~1,000 pages of WAL by default); the file stays consistent either
//! way. `BENCHMARKS.md` has the price of each.
//!
//! # Positions
//! `position` is the rowid (see `commands/migrations-sqlite/`): assigned inside the
//! one write transaction, so position order is commit order and positions are dense.
//!
//! # Claims
//! A claim cannot hold a write transaction open around its command (the command's
//! commit would wait for it), so a claim here is an in-process lock on the key: the
//! holder checks `unique_keys`, runs its command, then writes the claim (confirm) or
//! writes nothing (abandon, or a crash). The store's file lock makes that lock
//! sufficient; the window between the command's commit and the claim's is closed by
//! [`PendingClaim::introduced_elsewhere`], as in PostgreSQL.
//!
//! # Why the commit is not sqlite-es's
//! sqlite-es 0.5 commits the events before it checks the snapshot row's optimistic
//! counter, so a lost snapshot race reports a conflict for events that were in fact
//! recorded (a retry would record them twice). [`SqliteRepository::persist`] checks
//! inside the transaction and writes the store's own columns (event id, record time);
//! loading (replay, snapshot + tail) is sqlite-es's.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use cqrs_es::Aggregate;
use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use serde_json::Value;
use sqlite_es::SqliteEventRepository;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::OwnedMutexGuard;
use uuid::Uuid;

use super::{Appended, EventStore, KeyLookup, LoggedEvent, PendingClaim, UniqueKey, UnitRow};
use crate::reservations::Claim;

/// When an acknowledged commit is on disk. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous = FULL`: fsync the WAL at every commit. Survives power loss.
    #[default]
    Full,
    /// `synchronous = NORMAL`: fsync at checkpoints only. Survives a process crash; a
    /// power loss can lose the last commits.
    Normal,
}

/// Another process holds the store.
#[derive(Debug, thiserror::Error)]
#[error("the event store {0} is in use by another process")]
pub struct StoreInUse(pub PathBuf);

/// The SQLite event store (the embedded mode). Clones share the pool, the key locks
/// and the file lock.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: SqlitePool,
    path: PathBuf,
    keys: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Writers' turns (see the module docs).
    writer: Arc<tokio::sync::Mutex<()>>,
    // Held, never read: the OS lock lives as long as the open file.
    _lock: std::fs::File,
}

const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

impl SqliteStore {
    /// Opens (creating and migrating) the store in the file at `path` with
    /// [`Durability::Full`]. The migrations (`commands/migrations-sqlite/`) also
    /// create the tables kept beside the events (checkouts, the durable offline
    /// payment provider, processed webhooks), reached through [`crate::sql::Db`].
    ///
    /// # Errors
    /// [`StoreInUse`] when another process holds it; when the file cannot be created,
    /// opened or migrated.
    pub async fn open(path: &Path) -> anyhow::Result<Self> {
        Self::open_with(path, Durability::Full).await
    }

    /// Opens the store with the given durability.
    ///
    /// # Errors
    /// As [`SqliteStore::open`].
    pub async fn open_with(path: &Path, durability: Durability) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("create the data directory {}", dir.display()))?;
        }
        let lock_path = PathBuf::from(format!("{}.lock", path.display()));
        let lock = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("open the lock file {}", lock_path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreInUse(path.to_owned()).into());
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("lock the event store {}", path.display())));
            }
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match durability {
                Durability::Full => SqliteSynchronous::Full,
                Durability::Normal => SqliteSynchronous::Normal,
            })
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            // Readers keep their connection; a fresh connection re-reads the schema.
            .min_connections(1)
            .connect_with(options)
            .await
            .with_context(|| format!("open the event store {}", path.display()))?;
        sqlx::migrate!("./migrations-sqlite")
            .run(&pool)
            .await
            .context("run the embedded event store's migrations")?;
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                path: path.to_owned(),
                keys: std::sync::Mutex::default(),
                writer: Arc::default(),
                _lock: lock,
            }),
        })
    }

    /// The pool (feeds and tests read the tables directly).
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.inner.pool
    }

    /// The database file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Closes the pool (checkpointing the WAL); the file lock goes with the last clone.
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }

    async fn lock_key(&self, name: String) -> KeyGuard {
        let mutex = {
            let mut keys = self
                .inner
                .keys
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(keys.entry(name.clone()).or_default())
        };
        let guard = mutex.lock_owned().await;
        KeyGuard {
            store: self.clone(),
            name,
            guard: Some(guard),
        }
    }
}

/// Holds one key's in-process lock; forgets the lock once nobody waits for it.
#[derive(Debug)]
struct KeyGuard {
    store: SqliteStore,
    name: String,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Drop for KeyGuard {
    fn drop(&mut self) {
        let mutex = self.guard.take().map(|guard| {
            let mutex = Arc::clone(OwnedMutexGuard::mutex(&guard));
            drop(guard);
            mutex
        });
        let mut keys = self
            .store
            .inner
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        drop(mutex);
        // Waiters clone the entry under this lock, so a count of one (the map's) means
        // nobody is waiting.
        if keys
            .get(&self.name)
            .is_some_and(|m| Arc::strong_count(m) == 1)
        {
            keys.remove(&self.name);
        }
    }
}

/// A claim in progress on the SQLite store: the key's in-process lock, written to
/// `unique_keys` on [`PendingClaim::confirm`].
#[derive(Debug)]
pub struct SqlitePending {
    key: UniqueKey,
    already_ours: bool,
    guard: KeyGuard,
}

impl PendingClaim for SqlitePending {
    async fn introduced_elsewhere(
        &mut self,
        lookup: &KeyLookup,
        key: &str,
        owner_id: &str,
    ) -> anyhow::Result<bool> {
        // Constants only (see `KeyLookup`), matching the indexes' expressions.
        let any = lookup
            .fields
            .iter()
            .map(|(event_type, field)| {
                format!(
                    "(event_type = '{event_type}' AND json_extract(payload, '$.{event_type}.{field}') = ?1)"
                )
            })
            .collect::<Vec<_>>()
            .join(" OR ");
        let sql = format!(
            "SELECT 1 FROM events WHERE aggregate_type = '{}' AND aggregate_id <> ?2 AND ({any}) LIMIT 1",
            lookup.aggregate_type
        );
        let found: Option<i32> = sqlx::query_scalar(&sql)
            .bind(key)
            .bind(owner_id)
            .fetch_optional(self.guard.store.pool())
            .await
            .context("look up a committed owner of the key")?;
        Ok(found.is_some())
    }

    async fn confirm(self) -> anyhow::Result<()> {
        if !self.already_ours {
            let _turn = self.guard.store.inner.writer.lock().await;
            sqlx::query("INSERT INTO unique_keys (scope, key, owner_id) VALUES (?, ?, ?)")
                .bind(&self.key.scope)
                .bind(&self.key.key)
                .bind(&self.key.owner_id)
                .execute(self.guard.store.pool())
                .await
                .context("confirm unique key claim")?;
        }
        drop(self.guard);
        Ok(())
    }

    async fn abandon(self) -> anyhow::Result<()> {
        drop(self.guard);
        Ok(())
    }
}

impl EventStore for SqliteStore {
    type Repository = SqliteRepository;
    type Pending = SqlitePending;

    fn repository(&self) -> Self::Repository {
        SqliteRepository {
            loader: SqliteEventRepository::new(self.inner.pool.clone()),
            pool: self.inner.pool.clone(),
            writer: Arc::clone(&self.inner.writer),
        }
    }

    async fn position_of(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        sequence: usize,
    ) -> anyhow::Result<i64> {
        let sequence = i64::try_from(sequence).context("sequence fits in an integer")?;
        sqlx::query_scalar(
            "SELECT position FROM events WHERE aggregate_type = ? AND aggregate_id = ? AND sequence = ?",
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(sequence)
        .fetch_one(self.pool())
        .await
        .context("read committed event position")
    }

    async fn claim(
        &self,
        scope: &str,
        key: &str,
        owner_id: &str,
    ) -> anyhow::Result<Claim<SqlitePending>> {
        let guard = self.lock_key(format!("{scope}\u{0}{key}")).await;
        let holder = self.holder(scope, key).await?;
        let key = UniqueKey {
            scope: scope.to_owned(),
            key: key.to_owned(),
            owner_id: owner_id.to_owned(),
        };
        Ok(match holder {
            Some(holder) if holder != owner_id => Claim::TakenBy(holder),
            held => Claim::Pending {
                pending: SqlitePending {
                    key,
                    already_ours: held.is_some(),
                    guard,
                },
                already_ours: held.is_some(),
            },
        })
    }

    async fn release(&self, scope: &str, key: &str, owner_id: &str) -> anyhow::Result<()> {
        let _claim = self.lock_key(format!("{scope}\u{0}{key}")).await;
        let _turn = self.inner.writer.lock().await;
        sqlx::query("DELETE FROM unique_keys WHERE scope = ? AND key = ? AND owner_id = ?")
            .bind(scope)
            .bind(key)
            .bind(owner_id)
            .execute(self.pool())
            .await
            .context("release unique key")?;
        Ok(())
    }

    async fn holder(&self, scope: &str, key: &str) -> anyhow::Result<Option<String>> {
        sqlx::query_scalar("SELECT owner_id FROM unique_keys WHERE scope = ? AND key = ?")
            .bind(scope)
            .bind(key)
            .fetch_optional(self.pool())
            .await
            .context("read unique key holder")
    }

    async fn read_log(&self, after: i64, limit: usize) -> anyhow::Result<Vec<LoggedEvent>> {
        read_log(self.pool(), after, limit).await
    }

    async fn unique_keys(&self) -> anyhow::Result<Vec<UniqueKey>> {
        let rows: Vec<(String, String, String)> =
            sqlx::query_as("SELECT scope, key, owner_id FROM unique_keys ORDER BY scope, key")
                .fetch_all(self.pool())
                .await
                .context("read unique keys")?;
        Ok(rows
            .into_iter()
            .map(|(scope, key, owner_id)| UniqueKey {
                scope,
                key,
                owner_id,
            })
            .collect())
    }

    async fn is_empty(&self) -> anyhow::Result<bool> {
        sqlx::query_scalar(
            "SELECT NOT EXISTS (SELECT 1 FROM events) AND NOT EXISTS (SELECT 1 FROM unique_keys)",
        )
        .fetch_one(self.pool())
        .await
        .context("check whether the event store is empty")
    }

    async fn append_unit(&self, rows: &[UnitRow]) -> anyhow::Result<Option<Appended>> {
        let _turn = self.inner.writer.lock().await;
        // One write transaction: the rows in order (positions follow them), and a
        // second writer of any sequence refused by the UNIQUE key, which rolls back
        // every row of the unit.
        let mut tx = self
            .pool()
            .begin_with("BEGIN IMMEDIATE")
            .await
            .context("begin a unit of events")?;
        let recorded_at = Utc::now();
        let mut last = None;
        for row in rows {
            let inserted = insert_event(
                &mut tx,
                row.aggregate_type,
                &row.aggregate_id,
                row.sequence,
                &row.event.event_type,
                &row.event.event_version,
                &row.event.payload,
                &row.metadata,
                Uuid::new_v4(),
                recorded_at,
            )
            .await;
            match inserted {
                Ok(position) => last = Some(position),
                Err(e) if is_conflict(&e) => return Ok(Some(Appended::Conflict)),
                Err(e) => return Err(anyhow::Error::from(e).context("append a unit of events")),
            }
        }
        tx.commit().await.context("commit a unit of events")?;
        Ok(last.map(Appended::At))
    }

    async fn import(&self, events: &[LoggedEvent], keys: &[UniqueKey]) -> anyhow::Result<()> {
        let _turn = self.inner.writer.lock().await;
        let mut tx = self
            .pool()
            .begin_with("BEGIN IMMEDIATE")
            .await
            .context("begin import")?;
        for event in events {
            insert_event(
                &mut tx,
                &event.aggregate_type,
                &event.aggregate_id,
                event.sequence,
                &event.event_type,
                &event.event_version,
                &event.payload,
                &event.metadata,
                event.event_id,
                event.recorded_at,
            )
            .await
            .with_context(|| {
                format!(
                    "import {} {} #{}",
                    event.aggregate_type, event.aggregate_id, event.sequence
                )
            })?;
        }
        for key in keys {
            sqlx::query("INSERT INTO unique_keys (scope, key, owner_id) VALUES (?, ?, ?)")
                .bind(&key.scope)
                .bind(&key.key)
                .bind(&key.owner_id)
                .execute(&mut *tx)
                .await
                .with_context(|| format!("import unique key {} {}", key.scope, key.key))?;
        }
        tx.commit().await.context("commit import")
    }
}

/// Up to `limit` events after position `after`, in position (= commit) order.
///
/// # Errors
/// When the database fails or a row is malformed.
pub(crate) async fn read_log(
    pool: &SqlitePool,
    after: i64,
    limit: usize,
) -> anyhow::Result<Vec<LoggedEvent>> {
    let limit = i64::try_from(limit).context("limit fits in an integer")?;
    let rows: Vec<LogRow> = sqlx::query_as(
        "SELECT position, aggregate_type, aggregate_id, sequence, event_type, event_version,
                payload, metadata, event_id, recorded_at
           FROM events WHERE position > ? ORDER BY position LIMIT ?",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
    .context("read the event log")?;
    rows.into_iter().map(LogRow::into_logged).collect()
}

#[derive(sqlx::FromRow)]
struct LogRow {
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

impl LogRow {
    fn into_logged(self) -> anyhow::Result<LoggedEvent> {
        let at = self.position;
        Ok(LoggedEvent {
            position: Some(self.position),
            aggregate_type: self.aggregate_type,
            aggregate_id: self.aggregate_id,
            sequence: self.sequence,
            event_type: self.event_type,
            event_version: self.event_version,
            payload: serde_json::from_str(&self.payload)
                .with_context(|| format!("payload at position {at} is not JSON"))?,
            metadata: serde_json::from_str(&self.metadata)
                .with_context(|| format!("metadata at position {at} is not JSON"))?,
            event_id: self
                .event_id
                .parse()
                .with_context(|| format!("event id at position {at} is not a UUID"))?,
            recorded_at: DateTime::parse_from_rfc3339(&self.recorded_at)
                .with_context(|| format!("record time at position {at} is not RFC 3339"))?
                .with_timezone(&Utc),
        })
    }
}

#[allow(clippy::too_many_arguments)]
async fn insert_event(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: i64,
    event_type: &str,
    event_version: &str,
    payload: &Value,
    metadata: &Value,
    event_id: Uuid,
    recorded_at: DateTime<Utc>,
) -> Result<i64, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata, event_id, recorded_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(sequence)
    .bind(event_type)
    .bind(event_version)
    .bind(payload.to_string())
    .bind(metadata.to_string())
    .bind(event_id.hyphenated().to_string())
    .bind(recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true))
    .execute(&mut **tx)
    .await?;
    // The rowid is the position.
    Ok(done.last_insert_rowid())
}

/// The cqrs-es repository of [`SqliteStore`]: sqlite-es loads, the store commits.
pub struct SqliteRepository {
    loader: SqliteEventRepository,
    pool: SqlitePool,
    writer: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for SqliteRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteRepository").finish_non_exhaustive()
    }
}

/// SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE: the sequence (or the first
/// snapshot) was written by another command first.
fn is_conflict(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("1555" | "2067")))
}

fn persistence_error(e: sqlx::Error) -> PersistenceError {
    if is_conflict(&e) {
        return PersistenceError::OptimisticLockError;
    }
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
            PersistenceError::ConnectionError(Box::new(e))
        }
        other => PersistenceError::UnknownError(Box::new(other)),
    }
}

impl PersistedEventRepository for SqliteRepository {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.loader.get_events::<A>(aggregate_id).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.loader
            .get_last_events::<A>(aggregate_id, last_sequence)
            .await
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        self.loader.get_snapshot::<A>(aggregate_id).await
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let _turn = self.writer.lock().await;
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(persistence_error)?;
        let recorded_at = Utc::now();
        let mut last_sequence = 0;
        for event in events {
            last_sequence = i64::try_from(event.sequence)
                .map_err(|e| PersistenceError::UnknownError(Box::new(e)))?;
            insert_event(
                &mut tx,
                A::TYPE,
                &event.aggregate_id,
                last_sequence,
                &event.event_type,
                &event.event_version,
                &event.payload,
                &event.metadata,
                Uuid::new_v4(),
                recorded_at,
            )
            .await
            .map_err(persistence_error)?;
        }
        if let Some((aggregate_id, aggregate, current_snapshot)) = snapshot_update {
            let current = i64::try_from(current_snapshot)
                .map_err(|e| PersistenceError::UnknownError(Box::new(e)))?;
            let written = if current_snapshot == 1 {
                sqlx::query(
                    "INSERT INTO snapshots (aggregate_type, aggregate_id, last_sequence, current_snapshot, payload)
                     VALUES (?, ?, ?, ?, ?)",
                )
                .bind(A::TYPE)
                .bind(&aggregate_id)
                .bind(last_sequence)
                .bind(current)
                .bind(aggregate.to_string())
                .execute(&mut *tx)
                .await
            } else {
                sqlx::query(
                    "UPDATE snapshots SET last_sequence = ?, payload = ?, current_snapshot = ?
                      WHERE aggregate_type = ? AND aggregate_id = ? AND current_snapshot = ?",
                )
                .bind(last_sequence)
                .bind(aggregate.to_string())
                .bind(current)
                .bind(A::TYPE)
                .bind(&aggregate_id)
                .bind(current - 1)
                .execute(&mut *tx)
                .await
            }
            .map_err(persistence_error)?;
            if written.rows_affected() != 1 {
                // Dropping the transaction rolls the events back too.
                return Err(PersistenceError::OptimisticLockError);
            }
        }
        tx.commit().await.map_err(persistence_error)
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        self.loader.stream_events::<A>(aggregate_id).await
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        self.loader.stream_all_events::<A>().await
    }
}
