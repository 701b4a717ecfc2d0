//! The checkpoint store: `projection_checkpoints`, one row per projection, written in
//! the same transaction as the read-model change it records.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::envelope::CommitPosition;

/// The channel on which every checkpoint update is announced (`NOTIFY`), with the
/// payload `<name> <revision> <transaction_id> <position> [<changed>]`; `changed` is
/// `0` when the move only skipped events the projection does not read (its tables
/// did not change), `1` or absent otherwise.
pub const CHANNEL: &str = "emporium_projection_checkpoints";

/// How far a projection has applied the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Checkpoint {
    /// The version whose tables are live (0 before the first build).
    pub version: u32,
    /// The last applied event in commit order.
    pub cursor: CommitPosition,
    /// That event's stream sequence.
    pub stream_sequence: u64,
}

/// Whether a projection is applying events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectionState {
    /// Applying events (or waiting for them).
    Running,
    /// Stopped on a poison event until [`retry`] is called.
    Failed {
        /// The error, with its cause chain.
        error: String,
        /// The stream sequence of the event that failed.
        stream_sequence: Option<u64>,
        /// Its event id.
        event_id: Option<Uuid>,
        /// When it failed.
        at: Option<DateTime<Utc>>,
    },
}

/// What `status` reports for one projection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionStatus {
    /// Its name.
    pub name: String,
    /// The live version.
    pub version: u32,
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// Stream messages not applied yet (stream last sequence minus the checkpoint's),
    /// when the stream could be asked.
    pub lag: Option<u64>,
    /// Running or failed.
    pub state: ProjectionState,
    /// A rebuild in progress: the version being built and the position it reached.
    pub rebuilding: Option<(u32, u64)>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct Row {
    name: String,
    version: i32,
    transaction_id: i64,
    position: i64,
    stream_sequence: i64,
    state: String,
    error: Option<String>,
    failed_stream_sequence: Option<i64>,
    failed_event_id: Option<Uuid>,
    failed_at: Option<DateTime<Utc>>,
    rebuilding_version: Option<i32>,
    rebuild_position: Option<i64>,
    updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "name, version, transaction_id, position, stream_sequence, state, error,
    failed_stream_sequence, failed_event_id, failed_at, rebuilding_version, rebuild_position,
    updated_at";

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or_default()
}

fn to_i64(v: u64) -> anyhow::Result<i64> {
    i64::try_from(v).context("value beyond bigint")
}

impl Row {
    fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            version: u32::try_from(self.version).unwrap_or_default(),
            cursor: CommitPosition {
                transaction_id: to_u64(self.transaction_id),
                position: to_u64(self.position),
            },
            stream_sequence: to_u64(self.stream_sequence),
        }
    }

    fn state(&self) -> ProjectionState {
        if self.state == "failed" {
            ProjectionState::Failed {
                error: self.error.clone().unwrap_or_default(),
                stream_sequence: self.failed_stream_sequence.map(to_u64),
                event_id: self.failed_event_id,
                at: self.failed_at,
            }
        } else {
            ProjectionState::Running
        }
    }

    fn into_status(self, lag: Option<u64>) -> ProjectionStatus {
        ProjectionStatus {
            checkpoint: self.checkpoint(),
            state: self.state(),
            version: u32::try_from(self.version).unwrap_or_default(),
            lag,
            rebuilding: self.rebuilding_version.map(|v| {
                (
                    u32::try_from(v).unwrap_or_default(),
                    self.rebuild_position.map_or(0, to_u64),
                )
            }),
            updated_at: self.updated_at,
            name: self.name,
        }
    }
}

/// Reads one projection's checkpoint row; `FOR UPDATE` when `lock` (inside the
/// transaction that is about to move it).
pub(crate) async fn read(
    conn: &mut PgConnection,
    name: &str,
    lock: bool,
) -> anyhow::Result<Option<(Checkpoint, ProjectionState)>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM projection_checkpoints WHERE name = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let row: Option<Row> = sqlx::query_as(&sql)
        .bind(name)
        .fetch_optional(conn)
        .await
        .with_context(|| format!("read the checkpoint of {name}"))?;
    Ok(row.map(|r| (r.checkpoint(), r.state())))
}

/// Moves the checkpoint and announces it, inside the caller's transaction, in one
/// statement. `changed`: the move applied events (the read model changed), rather
/// than only skipping events of aggregates the projection does not read. Returns the
/// row's new revision.
pub(crate) async fn advance(
    conn: &mut PgConnection,
    name: &str,
    checkpoint: &Checkpoint,
    changed: bool,
) -> anyhow::Result<i64> {
    let moved = move_checkpoint(conn, name, None, checkpoint, changed)
        .await
        .with_context(|| format!("write the checkpoint of {name}"))?;
    moved.with_context(|| format!("projection {name} has no checkpoint"))
}

/// Moves the checkpoint from `from` to `to` and announces it, in one statement,
/// only when the row still holds `from` with `from`'s version, running: the caller
/// judged its messages against `from` without reading the row, and this both checks
/// that judgement and locks the row for the rest of the transaction (as reading it
/// `FOR UPDATE` would). Returns the row's new revision when it moved.
pub(crate) async fn advance_from(
    conn: &mut PgConnection,
    name: &str,
    from: &Checkpoint,
    to: &Checkpoint,
    changed: bool,
) -> anyhow::Result<Option<i64>> {
    move_checkpoint(conn, name, Some(from), to, changed)
        .await
        .with_context(|| format!("move the checkpoint of {name}"))
}

async fn move_checkpoint(
    conn: &mut PgConnection,
    name: &str,
    from: Option<&Checkpoint>,
    to: &Checkpoint,
    changed: bool,
) -> anyhow::Result<Option<i64>> {
    // With `from`, the row must still be there; without, any row of that name moves.
    let (expect, version, transaction_id, position, stream_sequence) = match from {
        Some(from) => (
            true,
            i32::try_from(from.version).context("version beyond int")?,
            to_i64(from.cursor.transaction_id)?,
            to_i64(from.cursor.position)?,
            to_i64(from.stream_sequence)?,
        ),
        None => (false, 0, 0, 0, 0),
    };
    let revision: Option<i64> = sqlx::query_scalar(
        "WITH moved AS (
             UPDATE projection_checkpoints
             SET transaction_id = $2, position = $3, stream_sequence = $4,
                 revision = revision + 1, updated_at = now()
             WHERE name = $1
               AND (NOT $6 OR (version = $7 AND state = 'running' AND transaction_id = $8
                               AND position = $9 AND stream_sequence = $10))
             RETURNING revision
         )
         SELECT m.revision FROM moved m,
             LATERAL pg_notify($5, $1 || ' ' || m.revision || ' ' || $2 || ' ' || $3 || ' ' || $11)",
    )
    .bind(name)
    .bind(to_i64(to.cursor.transaction_id)?)
    .bind(to_i64(to.cursor.position)?)
    .bind(to_i64(to.stream_sequence)?)
    .bind(CHANNEL)
    .bind(expect)
    .bind(version)
    .bind(transaction_id)
    .bind(position)
    .bind(stream_sequence)
    .bind(if changed { "1" } else { "0" })
    .fetch_optional(&mut *conn)
    .await?;
    Ok(revision)
}

pub(crate) async fn notify(
    conn: &mut PgConnection,
    name: &str,
    revision: i64,
    cursor: CommitPosition,
) -> anyhow::Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(format!(
            "{name} {revision} {} {}",
            cursor.transaction_id, cursor.position
        ))
        .execute(conn)
        .await
        .context("announce the checkpoint")?;
    Ok(())
}

/// Records that `name` stopped on a poison event.
pub(crate) async fn record_failure(
    pool: &PgPool,
    name: &str,
    error: &str,
    stream_sequence: u64,
    event_id: Option<Uuid>,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE projection_checkpoints
         SET state = 'failed', error = $2, failed_stream_sequence = $3, failed_event_id = $4,
             failed_at = now(), updated_at = now()
         WHERE name = $1",
    )
    .bind(name)
    .bind(error)
    .bind(to_i64(stream_sequence)?)
    .bind(event_id)
    .execute(pool)
    .await
    .with_context(|| format!("record the failure of {name}"))?;
    Ok(())
}

/// Clears a projection's failure so its runner resumes at the event that failed
/// (after the cause was fixed). Returns whether it had failed.
///
/// # Errors
/// When PostgreSQL fails, or no projection of that name has ever run.
pub async fn retry(pool: &PgPool, name: &str) -> anyhow::Result<bool> {
    let row: Option<bool> = sqlx::query_scalar(
        "UPDATE projection_checkpoints p
         SET state = 'running', error = NULL, failed_stream_sequence = NULL,
             failed_event_id = NULL, failed_at = NULL, updated_at = now()
         FROM (SELECT name, state FROM projection_checkpoints WHERE name = $1 FOR UPDATE) old
         WHERE p.name = old.name
         RETURNING old.state = 'failed'",
    )
    .bind(name)
    .fetch_optional(pool)
    .await
    .with_context(|| format!("clear the failure of {name}"))?;
    row.with_context(|| format!("unknown projection `{name}` (it has never run)"))
}

/// Every projection's checkpoint and state. With `stream_last_sequence` (the events
/// stream's last sequence) each lag is computed.
///
/// # Errors
/// When PostgreSQL fails.
pub async fn status(
    pool: &PgPool,
    stream_last_sequence: Option<u64>,
) -> anyhow::Result<Vec<ProjectionStatus>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM projection_checkpoints ORDER BY name"
    ))
    .fetch_all(pool)
    .await
    .context("read projection checkpoints")?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let lag =
                stream_last_sequence.map(|last| last.saturating_sub(to_u64(row.stream_sequence)));
            row.into_status(lag)
        })
        .collect())
}
