//! Rebuilding a projection from the event store into a shadow schema, then swapping
//! its tables in.
//!
//! A rebuild reads the `events` table directly, in commit order
//! `(transaction_id, position)` and only below the visibility horizon
//! (`transaction_id < pg_snapshot_xmin(pg_current_snapshot())`, cluster-wide, so at or
//! below the relay's own horizon), so what it has read is always a prefix of the
//! stream. It applies the events
//! to the projection's tables created afresh in the schema `rebuild_<name>_v<version>`
//! (the projection's SQL is unqualified; the framework puts that schema alone on the
//! `search_path`). Meanwhile the live tables keep serving reads. [`Rebuild::swap`]
//! then, in one transaction, drops the live tables, moves the shadow ones into
//! `public`, and sets the checkpoint to the rebuilt cursor and its stream sequence, so
//! the runner continues from the stream right after it.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use futures::FutureExt as _;
use sqlx::{Connection as _, Executor, PgConnection, PgPool};

use super::checkpoint::{self, Checkpoint};
use super::{METRIC_REBUILT, Projection, check_name, upcast};
use crate::envelope::{CommitPosition, StoredEvent};
use crate::sql::Conn;

/// Events read from the store and applied per transaction.
pub const DEFAULT_BATCH: usize = 2_000;

/// How often a caught-up rebuild looks whether the horizon has passed the events
/// committed before it started (see [`Rebuild::run_to_end`]).
const HORIZON_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// A rebuild in progress. See the module docs.
pub struct Rebuild {
    pool: PgPool,
    projection: Arc<dyn Projection>,
    schema: String,
    cursor: CommitPosition,
    /// Events of every type read so far: the stream sequence of `cursor`, since a
    /// rebuild reads from the first event and the stream's n-th message is the n-th
    /// event in commit order.
    read: u64,
    applied: u64,
    batch_size: usize,
    started: Instant,
    /// Not recorded in the projection's status and never swapped in.
    detached: bool,
    /// Events at a global position below this are read (they keep the cursor and the
    /// stream sequence exact) but not applied: a partial replay.
    apply_from: u64,
}

impl std::fmt::Debug for Rebuild {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rebuild")
            .field("projection", &self.projection.name())
            .field("version", &self.projection.version())
            .field("schema", &self.schema)
            .field("cursor", &self.cursor)
            .field("applied", &self.applied)
            .finish_non_exhaustive()
    }
}

/// Quotes an identifier the framework built itself (validated names only).
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub(crate) fn check_table(name: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
        "table name `{name}` must use only lowercase letters, digits and `_`"
    );
    Ok(())
}

/// The schema a projection version is rebuilt into.
#[must_use]
pub fn shadow_schema(projection: &dyn Projection) -> String {
    format!("rebuild_{}_v{}", projection.name(), projection.version())
}

/// Runs the projection's DDL in `schema` (created afresh).
pub(crate) async fn create_tables(
    conn: &mut PgConnection,
    projection: &dyn Projection,
    schema: &str,
) -> anyhow::Result<()> {
    let mut tx = conn.begin().await?;
    Executor::execute(
        &mut *tx,
        format!(
            "DROP SCHEMA IF EXISTS {s} CASCADE; CREATE SCHEMA {s}; SET LOCAL search_path TO {s};",
            s = ident(schema)
        )
        .as_str(),
    )
    .await
    .with_context(|| format!("create schema {schema}"))?;
    Executor::execute(&mut *tx, projection.schema())
        .await
        .with_context(|| format!("create the tables of {} in {schema}", projection.name()))?;
    tx.commit().await?;
    Ok(())
}

impl Rebuild {
    /// Creates the shadow schema and the projection's tables in it, and records the
    /// rebuild in the projection's status.
    ///
    /// # Errors
    /// When PostgreSQL fails or the projection's DDL does.
    pub async fn start(
        pool: PgPool,
        projection: Arc<dyn Projection>,
        batch_size: usize,
    ) -> anyhow::Result<Self> {
        Self::start_in(pool, projection, batch_size, None).await
    }

    /// Like [`start`](Self::start), into a schema of the caller's choosing and
    /// without touching the projection's status: for comparing a live read model with
    /// a from-scratch rebuild. Such a rebuild can be inspected and abandoned, not
    /// swapped.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub async fn start_detached(
        pool: PgPool,
        projection: Arc<dyn Projection>,
        schema: &str,
    ) -> anyhow::Result<Self> {
        Self::start_in(pool, projection, DEFAULT_BATCH, Some(schema)).await
    }

    fn start_in(
        pool: PgPool,
        projection: Arc<dyn Projection>,
        batch_size: usize,
        schema: Option<&str>,
    ) -> futures::future::BoxFuture<'static, anyhow::Result<Self>> {
        let schema = schema.map(str::to_owned);
        async move { Self::start_boxed(pool, projection, batch_size, schema).await }.boxed()
    }

    async fn start_boxed(
        pool: PgPool,
        projection: Arc<dyn Projection>,
        batch_size: usize,
        schema: Option<String>,
    ) -> anyhow::Result<Self> {
        check_name(projection.name())?;
        for table in projection.tables() {
            check_table(table)?;
        }
        let detached = schema.is_some();
        let schema = schema.unwrap_or_else(|| shadow_schema(&*projection));
        check_table(&schema)?;
        let mut conn = pool.acquire().await.context("connect for a rebuild")?;
        create_tables(&mut conn, &*projection, &schema).await?;
        if !detached {
            sqlx::query(
                "INSERT INTO projection_checkpoints (name, version, rebuilding_version, rebuild_position)
                 VALUES ($1, 0, $2, 0)
                 ON CONFLICT (name) DO UPDATE
                 SET rebuilding_version = $2, rebuild_position = 0, updated_at = now()",
            )
            .bind(projection.name())
            .bind(i32::try_from(projection.version()).context("version beyond int")?)
            .execute(&mut *conn)
            .await
            .context("record the rebuild")?;
        }
        tracing::info!(
            projection = projection.name(),
            version = projection.version(),
            schema,
            "rebuild started"
        );
        Ok(Self {
            pool,
            projection,
            schema,
            cursor: CommitPosition::START,
            read: 0,
            applied: 0,
            batch_size: batch_size.max(1),
            started: Instant::now(),
            detached,
            apply_from: 0,
        })
    }

    /// The schema holding the shadow tables.
    #[must_use]
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Makes this a partial replay: events whose global position is below `position`
    /// are still read, so the cursor and the stream sequence stay exact, but are not
    /// applied. Only sound for a projection whose rows do not depend on earlier
    /// events; one that does fails on the first event it cannot apply, and the live
    /// tables stay untouched.
    pub fn apply_from(&mut self, position: u64) {
        self.apply_from = position;
    }

    /// The last event applied, in commit order.
    #[must_use]
    pub fn cursor(&self) -> CommitPosition {
        self.cursor
    }

    /// Events of every type read so far (the stream sequence of the cursor).
    #[must_use]
    pub fn read(&self) -> u64 {
        self.read
    }

    /// Events applied so far.
    #[must_use]
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Applies the next batch of committed events to the shadow tables, in one
    /// transaction. Returns how many events it read, its own and others' (0: caught
    /// up with the horizon).
    ///
    /// # Errors
    /// When PostgreSQL fails or the projection refuses an event (the rebuild stops
    /// there; the live tables are untouched).
    pub fn step(&mut self) -> futures::future::BoxFuture<'_, anyhow::Result<usize>> {
        async move { self.step_inner().await }.boxed()
    }

    async fn step_inner(&mut self) -> anyhow::Result<usize> {
        let mut conn = self.pool.acquire().await.context("connect for a rebuild")?;
        // Every event is read, so the cursor and the stream sequence follow the whole
        // stream, but only the projection's own events carry their payload.
        let rows: Vec<StoredEvent> = sqlx::query_as(
            "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version,
                    CASE WHEN aggregate_type = ANY($3) AND position >= $5 THEN payload END
                        AS payload,
                    CASE WHEN aggregate_type = ANY($3) AND position >= $5 THEN metadata END
                        AS metadata,
                    position, transaction_id::text::bigint AS transaction_id,
                    event_id, recorded_at
             FROM events
             WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
               AND (transaction_id, position) > ($1::text::xid8, $2)
             ORDER BY events.transaction_id, events.position
             LIMIT $4",
        )
        .bind(self.cursor.transaction_id.to_string())
        .bind(i64::try_from(self.cursor.position).context("position beyond bigint")?)
        .bind(self.projection.aggregate_types())
        .bind(i64::try_from(self.batch_size).unwrap_or(i64::MAX))
        .bind(i64::try_from(self.apply_from).unwrap_or(i64::MAX))
        .fetch_all(&mut *conn)
        .await
        .context("read events for the rebuild")?;
        let Some(last) = rows.last() else {
            return Ok(0);
        };
        let last = CommitPosition {
            transaction_id: u64::try_from(last.transaction_id).context("xid8 beyond i64")?,
            position: u64::try_from(last.position).context("negative position")?,
        };
        let read = rows.len();
        let mut tx = conn.begin().await?;
        Executor::execute(
            &mut *tx,
            format!(
                "SET LOCAL search_path TO {}; SET LOCAL synchronous_commit TO off",
                ident(&self.schema)
            )
            .as_str(),
        )
        .await
        .context("enter the shadow schema")?;
        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            if row.payload.is_none() {
                continue;
            }
            let mut event = row.into_envelope()?;
            upcast(&mut event);
            events.push(event);
        }
        let applied = events.len() as u64;
        if let Err(batch_error) = self
            .projection
            .apply_batch(&mut Conn::Postgres(&mut tx), &events)
            .await
        {
            // Find the event at fault, one at a time, for a useful error.
            drop(tx);
            let mut tx = conn.begin().await?;
            Executor::execute(
                &mut *tx,
                format!(
                    "SET LOCAL search_path TO {}; SET LOCAL synchronous_commit TO off",
                    ident(&self.schema)
                )
                .as_str(),
            )
            .await
            .context("enter the shadow schema")?;
            for event in &events {
                if let Err(error) = self
                    .projection
                    .apply(&mut Conn::Postgres(&mut tx), event)
                    .await
                {
                    return Err(error.context(format!(
                        "rebuild of {} v{} stopped: {}",
                        self.projection.name(),
                        self.projection.version(),
                        super::runner::describe(event)
                    )));
                }
            }
            return Err(batch_error.context(format!(
                "rebuild of {} v{}: the batch failed but every event applies alone",
                self.projection.name(),
                self.projection.version()
            )));
        }
        tx.commit().await.context("commit a rebuild batch")?;
        self.cursor = last;
        self.read += read as u64;
        self.applied += applied;
        metrics::counter!(METRIC_REBUILT, "projection" => self.projection.name())
            .increment(applied);
        Ok(read)
    }

    /// Steps until the rebuild holds every event committed before this call (waiting,
    /// when an unrelated open transaction holds the cluster-wide horizon back, until
    /// the horizon passes them). Returns the events read by this call.
    ///
    /// # Errors
    /// As [`step`](Self::step).
    pub async fn run_to_end(&mut self) -> anyhow::Result<u64> {
        self.run_to_end_with(|_| {}).await
    }

    /// [`run_to_end`](Self::run_to_end), calling `progress` after every step (for a
    /// progress bar).
    ///
    /// # Errors
    /// As [`step`](Self::step).
    pub async fn run_to_end_with(
        &mut self,
        mut progress: impl FnMut(&Self) + Send,
    ) -> anyhow::Result<u64> {
        // Every event committed before this call must be in the rebuild. The horizon
        // is cluster-wide, so an unrelated open transaction can hold it below events
        // that are already committed: "nothing more below the horizon" is then not
        // the end; wait (polling, as the relay does) until the horizon passes the
        // newest transaction committed now.
        let newest: Option<String> =
            sqlx::query_scalar("SELECT max(transaction_id)::text FROM events")
                .fetch_one(&self.pool)
                .await
                .context("read the newest committed transaction")?;
        let mut total = 0;
        loop {
            let n = self.step().await?;
            total += n as u64;
            progress(self);
            if n == 0 {
                let Some(newest) = newest.as_deref() else {
                    return Ok(total);
                };
                let passed: bool =
                    sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot()) > $1::xid8")
                        .bind(newest)
                        .fetch_one(&self.pool)
                        .await
                        .context("read the visibility horizon")?;
                if passed {
                    // One more step reads what the horizon released since the last.
                    let n = self.step().await?;
                    total += n as u64;
                    progress(self);
                    if n == 0 {
                        return Ok(total);
                    }
                } else {
                    tokio::time::sleep(HORIZON_POLL).await;
                }
                continue;
            }
            if self.detached {
                continue;
            }
            // Progress for `status`; a failure to record it is not worth stopping for.
            let _ = sqlx::query(
                "UPDATE projection_checkpoints SET rebuild_position = $2 WHERE name = $1
                 AND rebuilding_version IS NOT NULL",
            )
            .bind(self.projection.name())
            .bind(i64::try_from(self.cursor.position).unwrap_or(i64::MAX))
            .execute(&self.pool)
            .await;
        }
    }

    /// Replaces the live tables with the shadow ones and moves the checkpoint to the
    /// rebuilt cursor, in one transaction; readers see the old tables until it
    /// commits and the new ones after.
    ///
    /// # Errors
    /// When PostgreSQL fails, or the live version is already this one or newer.
    pub fn swap(self) -> futures::future::BoxFuture<'static, anyhow::Result<Checkpoint>> {
        async move { self.swap_inner(false).await }.boxed()
    }

    /// Like [`swap`](Self::swap), but also when this very version is live: an
    /// operator's rebuild (`emporium projections rebuild`) of the current version. A
    /// runner of that version keeps going: its next transaction waits for the swap's
    /// lock on the checkpoint, then continues from the rebuilt checkpoint (reopening
    /// its consumer there if it had gone further).
    ///
    /// # Errors
    /// When PostgreSQL fails, or a newer version is live.
    pub fn swap_replacing(self) -> futures::future::BoxFuture<'static, anyhow::Result<Checkpoint>> {
        async move { self.swap_inner(true).await }.boxed()
    }

    async fn swap_inner(self, replace_same: bool) -> anyhow::Result<Checkpoint> {
        let name = self.projection.name();
        let version = self.projection.version();
        anyhow::ensure!(!self.detached, "a detached rebuild is never swapped in");
        let mut tx = self.pool.begin().await.context("begin the swap")?;
        let live: Option<(i32, Vec<String>)> = sqlx::query_as(
            "SELECT version, tables FROM projection_checkpoints WHERE name = $1 FOR UPDATE",
        )
        .bind(name)
        .fetch_optional(&mut *tx)
        .await
        .context("lock the checkpoint for the swap")?;
        let (live_version, live_tables) = live.unwrap_or_default();
        anyhow::ensure!(
            u32::try_from(live_version).unwrap_or_default() < version
                || (replace_same && u32::try_from(live_version).unwrap_or_default() == version),
            "{name} is already at version {live_version}; not swapping in version {version}"
        );
        let mut statements = String::new();
        for table in live_tables
            .iter()
            .map(String::as_str)
            .chain(self.projection.tables().iter().copied())
        {
            check_table(table)?;
            statements.push_str(&format!(
                "DROP TABLE IF EXISTS public.{} CASCADE;",
                ident(table)
            ));
        }
        for table in self.projection.tables() {
            statements.push_str(&format!(
                "ALTER TABLE {}.{} SET SCHEMA public;",
                ident(&self.schema),
                ident(table)
            ));
        }
        statements.push_str(&format!("DROP SCHEMA {} CASCADE;", ident(&self.schema)));
        Executor::execute(&mut *tx, statements.as_str())
            .await
            .context("swap the shadow tables in")?;
        let stream_sequence = i64::try_from(self.read).context("sequence beyond bigint")?;
        let checkpoint = Checkpoint {
            version,
            cursor: self.cursor,
            stream_sequence: self.read,
        };
        let revision: i64 = sqlx::query_scalar(
            "INSERT INTO projection_checkpoints
                 (name, version, tables, transaction_id, position, stream_sequence)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (name) DO UPDATE
             SET version = $2, tables = $3, transaction_id = $4, position = $5,
                 stream_sequence = $6, state = 'running', error = NULL,
                 failed_stream_sequence = NULL, failed_event_id = NULL, failed_at = NULL,
                 rebuilding_version = NULL, rebuild_position = NULL,
                 revision = projection_checkpoints.revision + 1, updated_at = now()
             RETURNING revision",
        )
        .bind(name)
        .bind(i32::try_from(version).context("version beyond int")?)
        .bind(self.projection.tables())
        .bind(i64::try_from(self.cursor.transaction_id).context("xid beyond bigint")?)
        .bind(i64::try_from(self.cursor.position).context("position beyond bigint")?)
        .bind(stream_sequence)
        .fetch_one(&mut *tx)
        .await
        .context("move the checkpoint to the rebuilt cursor")?;
        checkpoint::notify(&mut tx, name, revision, self.cursor).await?;
        tx.commit().await.context("commit the swap")?;
        #[allow(clippy::cast_precision_loss)] // a rate for the log
        let rate = self.applied as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        tracing::info!(
            projection = name,
            version,
            applied = self.applied,
            events_per_second = rate as u64,
            "rebuild swapped in"
        );
        Ok(checkpoint)
    }

    /// Drops the shadow schema and forgets the rebuild.
    ///
    /// # Errors
    /// When PostgreSQL fails.
    pub async fn abandon(self) -> anyhow::Result<()> {
        Executor::execute(
            &self.pool,
            format!("DROP SCHEMA IF EXISTS {} CASCADE", ident(&self.schema)).as_str(),
        )
        .await
        .context("drop the shadow schema")?;
        if self.detached {
            return Ok(());
        }
        sqlx::query(
            "UPDATE projection_checkpoints SET rebuilding_version = NULL, rebuild_position = NULL
             WHERE name = $1 AND rebuilding_version = $2",
        )
        .bind(self.projection.name())
        .bind(i32::try_from(self.projection.version()).unwrap_or(i32::MAX))
        .execute(&self.pool)
        .await
        .context("forget the rebuild")?;
        Ok(())
    }
}

/// Rebuilds `projection` from the event store and swaps it in: the whole procedure.
///
/// # Errors
/// As [`Rebuild::step`] and [`Rebuild::swap`].
pub fn rebuild(
    pool: &PgPool,
    projection: Arc<dyn Projection>,
    batch_size: usize,
) -> futures::future::BoxFuture<'static, anyhow::Result<Checkpoint>> {
    // Boxed with an explicit `Send` so callers can be spawned: the compiler cannot
    // prove it through the higher-ranked borrows of sqlx's executors.
    let pool = pool.clone();
    async move {
        let mut rebuild = Rebuild::start(pool, projection, batch_size).await?;
        rebuild.run_to_end().await?;
        rebuild.swap().await
    }
    .boxed()
}
