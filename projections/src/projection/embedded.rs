//! The embedded mode's projections: read models in their own SQLite file beside the
//! embedded event store, fed by the store itself (an [`EventFeed`], usually
//! [`SqliteFeed`]) with no relay, no stream and no acks.
//!
//! # The read-model database ([`ReadDb`])
//! One file (`read.db` beside `events.db`), WAL, with `projection_checkpoints` (the
//! SQLite form of PostgreSQL's table: name, live version, commit position, revision,
//! running/failed with the error and the failing position, the live version's tables)
//! created by [`ReadDb::open`]. `synchronous = NORMAL`: read models and their
//! checkpoints are derived data that commit together in one transaction, so a power
//! loss can roll back the last few of those transactions *together* (never split a
//! read-model change from its checkpoint) and the runner simply applies those events
//! again from the store; a process crash loses nothing. Fsyncing every batch would buy
//! nothing the store cannot give back. (The store itself is `FULL` by default; with
//! the store at `NORMAL` a power loss could also roll back events the read models had
//! already applied, leaving a checkpoint ahead of the store: rebuild them, e.g. by
//! deleting `read.db`.)
//!
//! # The runner ([`EmbeddedRunner`])
//! One SQLite transaction per batch: `BEGIN IMMEDIATE` (behind an in-process writer
//! lock shared by every runner on the file, so runners take turns instead of polling
//! SQLite's busy handler), read the checkpoint row, read up to `batch_size` events
//! after it from the feed, upcast and keep those of the projection's aggregate types,
//! `apply_batch` them, move the checkpoint past every event read, commit, then
//! announce the checkpoint in process ([`CheckpointPublisher`]). The checkpoint is the
//! truth and the feed a gap-free prefix, so a crash anywhere before the commit just
//! re-reads from the checkpoint: nothing is applied twice, nothing is missed.
//!
//! When `apply_batch` fails, its work is rolled back to a savepoint and the events are
//! applied again one by one, each under its own savepoint, to pin the event at fault:
//! the events before it and the checkpoint just before it commit, together with the
//! failure (state `failed`, the error with its causes, the failing position and event
//! id) in the same transaction. The runner then stays stopped at that event until
//! [`retry`] (or [`EmbeddedProjections::retry`], which also wakes it).
//!
//! # First start and version bumps
//! A projection whose checkpoint row is missing or of an older version is built in
//! ONE write transaction: drop the live version's tables (as its row lists them) and
//! this version's, create them from [`Projection::sqlite_schema`], replay the whole
//! feed, write the checkpoint, commit. SQLite DDL is transactional and WAL readers
//! keep their snapshot, so readers see the old tables and rows until the commit and
//! the new ones after it: the swap is atomic. The cost: the build holds the read-model
//! database's write lock throughout, so every other projection's runner waits for it
//! (readers do not). An event that fails during a build rolls the whole build back
//! and stops that version (the live one, if any, keeps serving) with the failure
//! recorded in the row (`failed_version`), until a retry builds it again. A
//! projection with no SQLite schema cannot run embedded
//! ([`NotPorted`]); [`EmbeddedProjections::start`] skips it with a warning and
//! [`select`] refuses it by name.
//!
//! # Waking
//! [`WakeHandle::wake`] (the command side calls it after each commit) makes every
//! runner look at the feed at once; until that is wired, runners also poll every
//! [`EmbeddedConfig::poll`].

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use futures::FutureExt as _;
use futures::future::BoxFuture;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqliteConnection, SqlitePool, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard, watch};
use uuid::Uuid;

use super::checkpoint::{Checkpoint, ProjectionState, ProjectionStatus};
use super::rebuild::{DEFAULT_BATCH, check_table, ident};
use super::runner::{RunError, describe};
use super::wait::{CheckpointPublisher, CheckpointWatch};
use super::{
    METRIC_APPLIED, METRIC_BATCH_MESSAGES, METRIC_BATCH_SECONDS, METRIC_POISON, METRIC_REBUILT,
    Projection, check_name, reads, upcast,
};
use crate::envelope::{CommitPosition, EventEnvelope};
use crate::feed::{EventFeed, SqliteFeed};
use crate::sql::{Conn, Db, sqlite_time};

/// The checkpoint table of the read-model database (see the module docs).
const CHECKPOINTS_DDL: &str = "
CREATE TABLE IF NOT EXISTS projection_checkpoints (
    name text PRIMARY KEY,
    version integer NOT NULL,
    transaction_id integer NOT NULL DEFAULT 0,
    position integer NOT NULL DEFAULT 0,
    revision integer NOT NULL DEFAULT 0,
    -- The live version's tables (a JSON array), dropped when another version is built.
    tables text NOT NULL DEFAULT '[]',
    state text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'failed')),
    error text,
    failed_position integer,
    failed_event_id blob,
    failed_at text,
    -- The version that failed: the live one, or one whose build failed (the live
    -- version, possibly 0 for none, stays).
    failed_version integer,
    updated_at text NOT NULL
) STRICT;";

const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The read-model database of the embedded mode (see the module docs). Clones share
/// the pool and the writer lock.
#[derive(Debug, Clone)]
pub struct ReadDb {
    pool: SqlitePool,
    /// Runners' turns at the write lock.
    writer: Arc<Mutex<()>>,
}

impl ReadDb {
    /// Opens (creating) the read-model database in the file at `path`, with its
    /// checkpoint table. One process should own it: the store's file lock (the
    /// read models live beside the store) makes that so.
    ///
    /// # Errors
    /// When the file cannot be created or opened.
    pub async fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("create the data directory {}", dir.display()))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .min_connections(1)
            .connect_with(options)
            .await
            .with_context(|| format!("open the read-model database {}", path.display()))?;
        sqlx::raw_sql(CHECKPOINTS_DDL)
            .execute(&pool)
            .await
            .context("create projection_checkpoints")?;
        Ok(Self {
            pool,
            writer: Arc::default(),
        })
    }

    /// The pool (the gateway reads the read models through it).
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The pool as the read side's store port.
    #[must_use]
    pub fn db(&self) -> Db {
        Db::Sqlite(self.pool.clone())
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A write transaction, holding the writer lock for as long as it lives.
    async fn write(&self) -> anyhow::Result<Write> {
        let turn = Arc::clone(&self.writer).lock_owned().await;
        let tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .context("begin a read-model write")?;
        Ok(Write { tx, _turn: turn })
    }
}

struct Write {
    // Declared first: dropped (rolled back) before the turn is given up.
    tx: Transaction<'static, Sqlite>,
    _turn: OwnedMutexGuard<()>,
}

/// A projection that has no SQLite form yet ([`Projection::sqlite_schema`] is `None`)
/// or no such projection.
#[derive(Debug, thiserror::Error)]
pub enum NotPorted {
    /// The projection exists but cannot run embedded.
    #[error("projection {0} has no SQLite schema yet: it cannot run in the embedded mode")]
    NoSqliteSchema(String),
    /// No projection has that name.
    #[error("unknown projection `{0}`")]
    Unknown(String),
}

/// The projections named `names` from `available` (usually
/// [`projection::all`](super::all)), refusing unknown names and projections that
/// cannot run embedded.
///
/// # Errors
/// [`NotPorted`], for the first name at fault.
pub fn select(
    available: &[Arc<dyn Projection>],
    names: &[&str],
) -> Result<Vec<Arc<dyn Projection>>, NotPorted> {
    names
        .iter()
        .map(|name| {
            let projection = available
                .iter()
                .find(|p| p.name() == *name)
                .ok_or_else(|| NotPorted::Unknown((*name).to_owned()))?;
            if projection.sqlite_schema().is_none() {
                return Err(NotPorted::NoSqliteSchema((*name).to_owned()));
            }
            Ok(Arc::clone(projection))
        })
        .collect()
}

/// Called after a batch is applied and its checkpoint written, right before the
/// commit, with the number of this batch among the runner's. Tests use it to crash
/// a process at that very point.
pub type BeforeCommit = Arc<dyn Fn(u64) + Send + Sync>;

/// How embedded runners batch and wait.
#[derive(Clone)]
pub struct EmbeddedConfig {
    /// Events read from the feed per transaction at most.
    pub batch_size: usize,
    /// Events read and applied per `apply_batch` while building a version.
    pub rebuild_batch: usize,
    /// How often a runner looks at the feed without being woken.
    pub poll: Duration,
    /// The pause after an unexpected error.
    pub error_backoff: Duration,
    /// Test hook; see [`BeforeCommit`].
    pub before_commit: Option<BeforeCommit>,
}

impl std::fmt::Debug for EmbeddedConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedConfig")
            .field("batch_size", &self.batch_size)
            .field("rebuild_batch", &self.rebuild_batch)
            .field("poll", &self.poll)
            .field("error_backoff", &self.error_backoff)
            .field("before_commit", &self.before_commit.is_some())
            .finish()
    }
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        Self {
            batch_size: 500,
            rebuild_batch: DEFAULT_BATCH,
            poll: Duration::from_millis(500),
            error_backoff: Duration::from_secs(1),
            before_commit: None,
        }
    }
}

/// Wakes embedded runners (the command side calls [`wake`](Self::wake) after each
/// commit). A wake is never lost: a runner busy when it comes looks again after.
/// Clones wake the same runners.
#[derive(Debug, Clone)]
pub struct WakeHandle {
    tx: Arc<watch::Sender<u64>>,
}

impl Default for WakeHandle {
    fn default() -> Self {
        Self::new()
    }
}

impl WakeHandle {
    /// A handle no runner listens to yet.
    #[must_use]
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::channel(0).0),
        }
    }

    /// Makes every runner listening look at the feed now.
    pub fn wake(&self) {
        self.tx.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that sees each wake (for other consumers of the store's feed, e.g.
    /// the embedded e-mail sender).
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    name: String,
    version: i64,
    transaction_id: i64,
    position: i64,
    revision: i64,
    tables: String,
    state: String,
    error: Option<String>,
    failed_position: Option<i64>,
    failed_event_id: Option<Uuid>,
    failed_at: Option<String>,
    failed_version: Option<i64>,
    updated_at: String,
}

const COLUMNS: &str = "name, version, transaction_id, position, revision, tables, state, error,
    failed_position, failed_event_id, failed_at, failed_version, updated_at";

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or_default()
}

fn to_i64(v: u64) -> anyhow::Result<i64> {
    i64::try_from(v).context("value beyond an SQLite integer")
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl Row {
    fn checkpoint(&self) -> Checkpoint {
        let position = to_u64(self.position);
        Checkpoint {
            version: u32::try_from(self.version).unwrap_or_default(),
            cursor: CommitPosition {
                transaction_id: to_u64(self.transaction_id),
                position,
            },
            // No stream: the feed's position stands in for the stream sequence.
            stream_sequence: position,
        }
    }

    fn state(&self) -> ProjectionState {
        if self.state == "failed" {
            ProjectionState::Failed {
                error: self.error.clone().unwrap_or_default(),
                stream_sequence: self.failed_position.map(to_u64),
                event_id: self.failed_event_id,
                at: self.failed_at.as_deref().and_then(parse_time),
            }
        } else {
            ProjectionState::Running
        }
    }
}

async fn read_row(conn: &mut SqliteConnection, name: &str) -> anyhow::Result<Option<Row>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM projection_checkpoints WHERE name = $1"
    ))
    .bind(name)
    .fetch_optional(conn)
    .await
    .with_context(|| format!("read the checkpoint of {name}"))
}

/// Moves the checkpoint (and, with `failure`, stops the projection at the failing
/// event); returns the new revision.
async fn move_checkpoint(
    conn: &mut SqliteConnection,
    name: &str,
    to: CommitPosition,
    failure: Option<(&EventEnvelope, &str)>,
) -> anyhow::Result<i64> {
    let now = sqlite_time(Utc::now());
    let query = match failure {
        None => sqlx::query_scalar(
            "UPDATE projection_checkpoints
             SET transaction_id = $2, position = $3, revision = revision + 1, updated_at = $4
             WHERE name = $1 RETURNING revision",
        ),
        Some(_) => sqlx::query_scalar(
            "UPDATE projection_checkpoints
             SET transaction_id = $2, position = $3, revision = revision + 1, updated_at = $4,
                 state = 'failed', error = $5, failed_position = $6, failed_event_id = $7,
                 failed_at = $4, failed_version = version
             WHERE name = $1 RETURNING revision",
        ),
    };
    let mut query = query
        .bind(name)
        .bind(to_i64(to.transaction_id)?)
        .bind(to_i64(to.position)?)
        .bind(now);
    if let Some((event, error)) = failure {
        query = query
            .bind(error.to_owned())
            .bind(to_i64(event.position)?)
            .bind(event.event_id);
    }
    let revision: Option<i64> = query
        .fetch_optional(conn)
        .await
        .with_context(|| format!("write the checkpoint of {name}"))?;
    revision.with_context(|| format!("projection {name} has no checkpoint"))
}

/// Runs `sql` (one or more statements without arguments).
async fn exec(conn: &mut SqliteConnection, sql: &str) -> sqlx::Result<()> {
    // `Executor::execute` with a plain text runs every statement in it.
    sqlx::Executor::execute(conn, sql).await.map(|_| ())
}

/// Makes `version` the live one at `cursor`, running, owning `tables` (a JSON
/// array); returns the new revision.
async fn install(
    conn: &mut SqliteConnection,
    name: &str,
    version: u32,
    cursor: CommitPosition,
    tables: &str,
) -> anyhow::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO projection_checkpoints
             (name, version, transaction_id, position, revision, tables, updated_at)
         VALUES ($1, $2, $3, $4, 1, $5, $6)
         ON CONFLICT (name) DO UPDATE SET
             version = excluded.version, transaction_id = excluded.transaction_id,
             position = excluded.position, revision = projection_checkpoints.revision + 1,
             tables = excluded.tables, state = 'running', error = NULL,
             failed_position = NULL, failed_event_id = NULL, failed_at = NULL,
             failed_version = NULL, updated_at = excluded.updated_at
         RETURNING revision",
    )
    .bind(name)
    .bind(i64::from(version))
    .bind(to_i64(cursor.transaction_id)?)
    .bind(to_i64(cursor.position)?)
    .bind(tables)
    .bind(sqlite_time(Utc::now()))
    .fetch_one(conn)
    .await
    .with_context(|| format!("write the checkpoint of {name}"))
}

/// Records that `version`'s build failed at `event`: the live version's row (or a
/// row of version 0 when none is live) becomes failed for `version`.
async fn record_build_failure(
    conn: &mut SqliteConnection,
    name: &str,
    version: u32,
    event: &EventEnvelope,
    error: &str,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO projection_checkpoints
             (name, version, state, error, failed_position, failed_event_id, failed_at,
              failed_version, updated_at)
         VALUES ($1, 0, 'failed', $2, $3, $4, $5, $6, $5)
         ON CONFLICT (name) DO UPDATE SET
             state = 'failed', error = excluded.error,
             failed_position = excluded.failed_position,
             failed_event_id = excluded.failed_event_id, failed_at = excluded.failed_at,
             failed_version = excluded.failed_version, updated_at = excluded.updated_at",
    )
    .bind(name)
    .bind(error)
    .bind(to_i64(event.position)?)
    .bind(event.event_id)
    .bind(sqlite_time(Utc::now()))
    .bind(i64::from(version))
    .execute(conn)
    .await
    .with_context(|| format!("record the failure of {name}"))?;
    Ok(())
}

/// Why applying a slice of events did not succeed.
enum Pinned {
    /// The event at this index (of the slice) failed; those before it are applied.
    Poison(usize, anyhow::Error),
    /// The database failed around the projection (a savepoint).
    Db(anyhow::Error),
}

async fn savepoint(conn: &mut SqliteConnection, sql: &str) -> Result<(), Pinned> {
    sqlx::query(sql)
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(|e| Pinned::Db(anyhow::Error::new(e).context("savepoint")))
}

/// Applies `events` with `apply_batch`; if that fails, undoes it and applies them one
/// by one, each under a savepoint, keeping those before the first that fails.
async fn apply_pinned(
    projection: &dyn Projection,
    conn: &mut SqliteConnection,
    events: &[EventEnvelope],
) -> Result<(), Pinned> {
    if events.is_empty() {
        return Ok(());
    }
    savepoint(conn, "SAVEPOINT emporium_batch").boxed().await?;
    let batch = projection
        .apply_batch(&mut Conn::Sqlite(&mut *conn), events)
        .await;
    if let Err(error) = batch {
        tracing::debug!(
            projection = projection.name(),
            error = format!("{error:#}"),
            "batch failed; applying one by one"
        );
        savepoint(conn, "ROLLBACK TO emporium_batch")
            .boxed()
            .await?;
        savepoint(conn, "RELEASE emporium_batch").boxed().await?;
        for (index, event) in events.iter().enumerate() {
            savepoint(conn, "SAVEPOINT emporium_event").boxed().await?;
            if let Err(error) = projection.apply(&mut Conn::Sqlite(&mut *conn), event).await {
                savepoint(conn, "ROLLBACK TO emporium_event")
                    .boxed()
                    .await?;
                savepoint(conn, "RELEASE emporium_event").boxed().await?;
                return Err(Pinned::Poison(index, error.context(describe(event))));
            }
            savepoint(conn, "RELEASE emporium_event").boxed().await?;
        }
        return Ok(());
    }
    savepoint(conn, "RELEASE emporium_batch").boxed().await
}

/// The events of `events` that `projection` reads, upcast, with their index in
/// `events`.
fn mine(projection: &dyn Projection, events: &[EventEnvelope]) -> (Vec<usize>, Vec<EventEnvelope>) {
    events
        .iter()
        .enumerate()
        .filter(|(_, e)| reads(projection, &e.aggregate_type))
        .map(|(index, event)| {
            let mut event = event.clone();
            upcast(&mut event);
            (index, event)
        })
        .unzip()
}

/// Drives one projection from an [`EventFeed`] into the read-model database. See the
/// module docs.
pub struct EmbeddedRunner<F> {
    read: ReadDb,
    feed: F,
    projection: Arc<dyn Projection>,
    schema: &'static str,
    config: EmbeddedConfig,
    publisher: CheckpointPublisher,
    prepared: bool,
    /// Batches this runner has written (for [`BeforeCommit`]).
    batches: u64,
}

impl<F> std::fmt::Debug for EmbeddedRunner<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedRunner")
            .field("projection", &self.projection.name())
            .field("version", &self.projection.version())
            .finish_non_exhaustive()
    }
}

impl<F: EventFeed> EmbeddedRunner<F> {
    /// A runner for `projection` over `feed`, announcing its checkpoints to
    /// `publisher`.
    ///
    /// # Errors
    /// [`NotPorted`] when the projection has no SQLite schema.
    pub fn new(
        read: ReadDb,
        feed: F,
        projection: Arc<dyn Projection>,
        config: EmbeddedConfig,
        publisher: CheckpointPublisher,
    ) -> Result<Self, NotPorted> {
        let schema = projection
            .sqlite_schema()
            .ok_or_else(|| NotPorted::NoSqliteSchema(projection.name().to_owned()))?;
        Ok(Self {
            read,
            feed,
            projection,
            schema,
            config,
            publisher,
            prepared: false,
            batches: 0,
        })
    }

    /// The projection this runner drives.
    #[must_use]
    pub fn projection(&self) -> &Arc<dyn Projection> {
        &self.projection
    }

    fn name(&self) -> &'static str {
        self.projection.name()
    }

    fn stopped(&self, state: ProjectionState) -> Option<RunError> {
        match state {
            ProjectionState::Running => None,
            ProjectionState::Failed {
                error,
                stream_sequence,
                ..
            } => Some(RunError::Stopped {
                name: self.name().to_owned(),
                stream_sequence,
                error,
            }),
        }
    }

    /// Makes the projection's live version this one: builds it from the whole feed
    /// when it never ran or an older version is live (see the module docs), and
    /// announces the checkpoint. Called by the other methods; public so a process
    /// can build before serving.
    ///
    /// # Errors
    /// [`RunError::Superseded`] when a newer version is live; [`RunError::Stopped`]
    /// when this version is stopped on a poison event, met while running or while
    /// building (nothing of a failed build is kept); [`RunError::Unexpected`] when
    /// the database or the feed fails.
    pub fn prepare(&mut self) -> BoxFuture<'_, Result<Checkpoint, RunError>> {
        // Boxed with an explicit `Send`: the compiler cannot prove it for the
        // higher-ranked borrows in here when the runner is spawned.
        async move { self.prepare_inner().await }.boxed()
    }

    async fn prepare_inner(&mut self) -> Result<Checkpoint, RunError> {
        check_name(self.name())?;
        let version = self.projection.version();
        let mut conn = self
            .read
            .pool
            .acquire()
            .await
            .context("connect to the read-model database")?;
        let row = read_row(&mut conn, self.name()).await?;
        drop(conn);
        let live = match row {
            Some(row) if to_u64(row.version) > u64::from(version) => {
                return Err(RunError::Superseded {
                    name: self.name().to_owned(),
                    version,
                    live: row.checkpoint().version,
                });
            }
            Some(row) if to_u64(row.version) == u64::from(version) => row,
            // This version's build stopped on a poison event: wait for a retry.
            Some(row) if row.failed_version == Some(i64::from(version)) => {
                return Err(self
                    .stopped(row.state())
                    .context("a failed build is failed")?);
            }
            _ => return self.build().boxed().await,
        };
        let checkpoint = live.checkpoint();
        self.publisher
            .publish(self.name(), live.revision, checkpoint.cursor, true);
        if let Some(stopped) = self.stopped(live.state()) {
            return Err(stopped);
        }
        self.prepared = true;
        Ok(checkpoint)
    }

    /// Builds this version in one write transaction (see the module docs).
    async fn build(&mut self) -> Result<Checkpoint, RunError> {
        let name = self.name();
        let version = self.projection.version();
        let started = Instant::now();
        let mut write = self.read.write().boxed().await?;
        let conn: &mut SqliteConnection = &mut write.tx;
        // Judge again under the write lock: another runner may have built it.
        let row = read_row(conn, name).boxed().await?;
        if let Some(row) = &row
            && (to_u64(row.version) >= u64::from(version)
                || row.failed_version == Some(i64::from(version)))
        {
            drop(write);
            return self.prepare().await;
        }
        let mut tables: Vec<String> = row
            .as_ref()
            .map(|r| serde_json::from_str(&r.tables))
            .transpose()
            .context("read the live version's tables")?
            .unwrap_or_default();
        let own: Vec<String> = self
            .projection
            .tables()
            .iter()
            .map(|t| (*t).to_owned())
            .collect();
        tables.extend(own.iter().cloned());
        tables.sort();
        tables.dedup();
        for table in &tables {
            check_table(table)?;
            exec(conn, &format!("DROP TABLE IF EXISTS {}", ident(table)))
                .boxed()
                .await
                .with_context(|| format!("drop {table}"))?;
        }
        exec(conn, self.schema)
            .boxed()
            .await
            .with_context(|| format!("create the tables of {name} v{version}"))?;
        let mut cursor = CommitPosition::START;
        let mut applied = 0u64;
        loop {
            let events = self
                .feed
                .read_after(cursor, self.config.rebuild_batch)
                .await?;
            let Some(last) = events.last() else { break };
            let last = last.commit_position();
            let (_, batch) = mine(&*self.projection, &events);
            match apply_pinned(&*self.projection, conn, &batch).boxed().await {
                Ok(()) => {}
                Err(Pinned::Poison(index, error)) => {
                    // Nothing of the build is kept; the live version (if any) stays.
                    drop(write);
                    let error = error.context(format!("build {name} v{version}"));
                    return Err(self.stop_build(&batch[index], &error).boxed().await);
                }
                Err(Pinned::Db(error)) => return Err(RunError::Unexpected(error)),
            }
            applied += batch.len() as u64;
            cursor = last;
        }
        let tables = serde_json::to_string(&own).context("list the tables")?;
        let revision = install(conn, name, version, cursor, &tables)
            .boxed()
            .await?;
        write
            .tx
            .commit()
            .boxed()
            .await
            .context("commit the build")?;
        metrics::counter!(METRIC_REBUILT, "projection" => name).increment(applied);
        tracing::info!(
            projection = name,
            version,
            applied,
            position = cursor.position,
            elapsed_ms = started.elapsed().as_millis(),
            "built the read model from the event store"
        );
        self.publisher.publish(name, revision, cursor, true);
        self.prepared = true;
        Ok(Checkpoint {
            version,
            cursor,
            stream_sequence: cursor.position,
        })
    }

    /// Records that this version's build stopped on a poison event, leaving the live
    /// version (if any) as it is, and returns the error to report.
    async fn stop_build(&self, event: &EventEnvelope, error: &anyhow::Error) -> RunError {
        let name = self.name();
        let text = format!("{error:#}");
        tracing::error!(
            projection = name,
            position = event.position,
            event_id = %event.event_id,
            error = %text,
            error_code = "projection_poison_event",
            "projection build stopped on an event it cannot apply"
        );
        metrics::counter!(METRIC_POISON, "projection" => name).increment(1);
        let recorded = async {
            let mut write = self.read.write().boxed().await?;
            record_build_failure(&mut write.tx, name, self.projection.version(), event, &text)
                .boxed()
                .await?;
            write
                .tx
                .commit()
                .boxed()
                .await
                .context("commit the failure")
        };
        if let Err(e) = recorded.await {
            tracing::error!(error = format!("{e:#}"), "could not record the failure");
        }
        RunError::Stopped {
            name: name.to_owned(),
            stream_sequence: Some(event.position),
            error: text,
        }
    }

    /// Applies at most one batch of what the feed holds after the checkpoint now (it
    /// does not wait for more). Returns the events the checkpoint moved over,
    /// including those of aggregate types this projection skips.
    ///
    /// # Errors
    /// [`RunError`]; after any error the next call resumes from the checkpoint.
    pub fn run_once(&mut self) -> BoxFuture<'_, Result<usize, RunError>> {
        async move { self.run_once_inner().await }.boxed()
    }

    async fn run_once_inner(&mut self) -> Result<usize, RunError> {
        if !self.prepared {
            self.prepare().await?;
        }
        let result = self.step().boxed().await;
        if result.is_err() {
            // Judge the row again next time (a newer version may be live).
            self.prepared = false;
        }
        result
    }

    async fn step(&mut self) -> Result<usize, RunError> {
        let name = self.name();
        let version = self.projection.version();
        let started = Instant::now();
        let mut write = self.read.write().boxed().await?;
        let conn: &mut SqliteConnection = &mut write.tx;
        let row = read_row(conn, name)
            .boxed()
            .await?
            .with_context(|| format!("projection {name} has no checkpoint"))?;
        let start = row.checkpoint();
        if start.version != version {
            return Err(RunError::Superseded {
                name: name.to_owned(),
                version,
                live: start.version,
            });
        }
        if let Some(stopped) = self.stopped(row.state()) {
            return Err(stopped);
        }
        let events = self
            .feed
            .read_after(start.cursor, self.config.batch_size)
            .await?;
        let Some(last) = events.last() else {
            return Ok(0);
        };
        let last = last.commit_position();
        #[allow(clippy::cast_precision_loss)] // batches are far below 2^52 events
        metrics::histogram!(METRIC_BATCH_MESSAGES, "projection" => name)
            .record(events.len() as f64);
        let (indexes, batch) = mine(&*self.projection, &events);
        match apply_pinned(&*self.projection, conn, &batch).boxed().await {
            Ok(()) => {
                let revision = move_checkpoint(conn, name, last, None).boxed().await?;
                self.batches += 1;
                if let Some(hook) = &self.config.before_commit {
                    hook(self.batches);
                }
                write
                    .tx
                    .commit()
                    .boxed()
                    .await
                    .context("commit the batch")?;
                self.publisher
                    .publish(name, revision, last, !batch.is_empty());
                metrics::counter!(METRIC_APPLIED, "projection" => name)
                    .increment(batch.len() as u64);
                metrics::histogram!(METRIC_BATCH_SECONDS, "projection" => name)
                    .record(started.elapsed().as_secs_f64());
                Ok(events.len())
            }
            Err(Pinned::Db(error)) => Err(RunError::Unexpected(error)),
            Err(Pinned::Poison(index, error)) => {
                let at = indexes[index];
                let failed = &batch[index];
                // The checkpoint stops right before the failing event.
                let to = at
                    .checked_sub(1)
                    .map_or(start.cursor, |before| events[before].commit_position());
                let text = format!("{error:#}");
                let revision = move_checkpoint(conn, name, to, Some((failed, &text))).await?;
                write
                    .tx
                    .commit()
                    .boxed()
                    .await
                    .context("commit the failure")?;
                self.publisher.publish(name, revision, to, index > 0);
                tracing::error!(
                    projection = name,
                    position = failed.position,
                    event_id = %failed.event_id,
                    error = %text,
                    error_code = "projection_poison_event",
                    "projection stopped on an event it cannot apply"
                );
                metrics::counter!(METRIC_POISON, "projection" => name).increment(1);
                metrics::counter!(METRIC_APPLIED, "projection" => name).increment(index as u64);
                Err(RunError::Stopped {
                    name: name.to_owned(),
                    stream_sequence: Some(failed.position),
                    error: text,
                })
            }
        }
    }

    /// Steps [`run_once`](Self::run_once) until the feed holds nothing more. Returns
    /// the events the checkpoint moved over.
    ///
    /// # Errors
    /// As [`run_once`](Self::run_once).
    pub async fn run_until_caught_up(&mut self) -> Result<usize, RunError> {
        let mut total = 0;
        loop {
            match self.run_once().await? {
                0 => return Ok(total),
                n => total += n,
            }
        }
    }

    /// Runs until `shutdown` resolves: prepares (building when needed), then catches
    /// up whenever `wake` is woken or [`EmbeddedConfig::poll`] passes. A stopped
    /// projection waits for a retry; a superseded one returns.
    ///
    /// # Errors
    /// [`RunError::Superseded`] when a newer version is live.
    pub async fn run(
        mut self,
        wake: WakeHandle,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), RunError> {
        let mut woken = wake.subscribe();
        tokio::pin!(shutdown);
        loop {
            woken.borrow_and_update();
            // Stopping mid-batch is safe: the transaction rolls back.
            let outcome = tokio::select! {
                () = &mut shutdown => return Ok(()),
                outcome = self.run_until_caught_up() => outcome,
            };
            let pause = match outcome {
                Ok(_) | Err(RunError::Stopped { .. }) => self.config.poll,
                Err(e @ RunError::Superseded { .. }) => return Err(e),
                Err(RunError::Unexpected(e)) => {
                    tracing::warn!(
                        projection = self.name(),
                        error = format!("{e:#}"),
                        "projection round failed; resuming from the checkpoint"
                    );
                    self.config.error_backoff
                }
            };
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                _ = woken.changed() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}

/// Clears a projection's failure so its runner resumes at the event that failed
/// (after the cause was fixed). Returns whether it had failed. A runner notices at
/// its next round: wake it ([`EmbeddedProjections::retry`] does).
///
/// # Errors
/// When SQLite fails, or no projection of that name has ever run.
pub async fn retry(read: &ReadDb, name: &str) -> anyhow::Result<bool> {
    let mut write = read.write().boxed().await?;
    let row = read_row(&mut write.tx, name)
        .boxed()
        .await?
        .with_context(|| format!("unknown projection `{name}` (it has never run)"))?;
    sqlx::query(
        "UPDATE projection_checkpoints
         SET state = 'running', error = NULL, failed_position = NULL, failed_event_id = NULL,
             failed_at = NULL, failed_version = NULL, updated_at = $2
         WHERE name = $1",
    )
    .bind(name)
    .bind(sqlite_time(Utc::now()))
    .execute(&mut *write.tx)
    .await
    .with_context(|| format!("clear the failure of {name}"))?;
    write
        .tx
        .commit()
        .boxed()
        .await
        .context("commit the retry")?;
    Ok(row.state == "failed")
}

/// Every projection's checkpoint and state in the read-model database. With
/// `last_position` (the store's last position) each lag is computed; the stream
/// sequence of a [`Checkpoint`] is its position here.
///
/// # Errors
/// When SQLite fails.
pub async fn status(
    read: &ReadDb,
    last_position: Option<u64>,
) -> anyhow::Result<Vec<ProjectionStatus>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM projection_checkpoints ORDER BY name"
    ))
    .fetch_all(&read.pool)
    .await
    .context("read projection checkpoints")?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let checkpoint = row.checkpoint();
            ProjectionStatus {
                version: checkpoint.version,
                lag: last_position.map(|last| last.saturating_sub(checkpoint.cursor.position)),
                state: row.state(),
                rebuilding: None,
                updated_at: parse_time(&row.updated_at).unwrap_or_default(),
                checkpoint,
                name: row.name,
            }
        })
        .collect())
}

type Running = (&'static str, tokio::task::JoinHandle<Result<(), RunError>>);

/// Every embedded projection of a process, running: what the gateway starts beside
/// the embedded store. See [`start`](Self::start).
#[derive(Debug)]
pub struct EmbeddedProjections {
    read: ReadDb,
    watch: CheckpointWatch,
    wake: WakeHandle,
    stop: watch::Sender<bool>,
    runners: Vec<Running>,
    skipped: Vec<&'static str>,
}

impl EmbeddedProjections {
    /// Builds (when needed) and starts a runner for each of `projections` over the
    /// embedded store whose pool is `store`, writing `read`. A projection with no
    /// SQLite schema is skipped with a warning (see [`skipped`](Self::skipped); use
    /// [`select`] to refuse it instead). Returns once every runner has prepared: the
    /// read models are built (a runner whose preparation failed logs it and keeps
    /// trying, or waits for a retry when stopped).
    ///
    /// # Errors
    /// When a projection's name is invalid.
    pub async fn start(
        store: SqlitePool,
        read: ReadDb,
        projections: Vec<Arc<dyn Projection>>,
        config: EmbeddedConfig,
    ) -> anyhow::Result<Self> {
        let (watch, publisher) = CheckpointWatch::embedded(store.clone());
        let wake = WakeHandle::new();
        let (stop, _) = watch::channel(false);
        let mut runners = Vec::new();
        let mut skipped = Vec::new();
        for projection in projections {
            let name = projection.name();
            check_name(name)?;
            let mut runner = match EmbeddedRunner::new(
                read.clone(),
                SqliteFeed::new(store.clone()),
                projection,
                config.clone(),
                publisher.clone(),
            ) {
                Ok(runner) => runner,
                Err(e) => {
                    tracing::warn!(projection = name, "{e}; skipped");
                    skipped.push(name);
                    continue;
                }
            };
            if let Err(e) = runner.prepare().await {
                tracing::error!(
                    projection = name,
                    error = format!("{e:#}"),
                    "projection not ready"
                );
            }
            let mut stopped = stop.subscribe();
            let shutdown = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            let task = tokio::spawn(runner.run(wake.clone(), shutdown));
            runners.push((name, task));
        }
        Ok(Self {
            read,
            watch,
            wake,
            stop,
            runners,
            skipped,
        })
    }

    /// Read-your-writes over these runners' checkpoints.
    #[must_use]
    pub fn watch(&self) -> &CheckpointWatch {
        &self.watch
    }

    /// The handle that wakes every runner (call it after each command's commit).
    #[must_use]
    pub fn wake_handle(&self) -> WakeHandle {
        self.wake.clone()
    }

    /// The read-model database.
    #[must_use]
    pub fn read_db(&self) -> &ReadDb {
        &self.read
    }

    /// The projections running.
    #[must_use]
    pub fn running(&self) -> Vec<&'static str> {
        self.runners.iter().map(|(name, _)| *name).collect()
    }

    /// The projections skipped for having no SQLite schema.
    #[must_use]
    pub fn skipped(&self) -> &[&'static str] {
        &self.skipped
    }

    /// Clears `name`'s failure and wakes the runners, so it resumes at the event that
    /// failed. Returns whether it had failed.
    ///
    /// # Errors
    /// As [`retry`].
    pub async fn retry(&self, name: &str) -> anyhow::Result<bool> {
        let failed = retry(&self.read, name).await?;
        self.wake.wake();
        Ok(failed)
    }

    /// Stops every runner (a batch in flight rolls back) and returns how each ended.
    pub async fn shutdown(self) -> Vec<(&'static str, Result<(), RunError>)> {
        self.stop.send_replace(true);
        let mut ended = Vec::new();
        for (name, task) in self.runners {
            let result = match task.await {
                Ok(result) => result,
                Err(e) => Err(RunError::Unexpected(
                    anyhow::Error::new(e).context("the runner task failed"),
                )),
            };
            ended.push((name, result));
        }
        ended
    }
}
