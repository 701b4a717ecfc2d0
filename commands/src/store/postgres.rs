//! The PostgreSQL event store: postgres-es over the `events` table
//! (`commands/migrations/`), claims in `unique_keys` held by an open transaction.

use std::sync::Arc;

use anyhow::Context;
use postgres_es::PostgresEventRepository;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection as _, PgConnection, PgPool};

use super::{
    Appended, EventStore, KeyLookup, LoggedEvent, NewEvent, PendingClaim, UniqueKey, UnitRow,
};
use crate::reservations::{self, Claim, Pending};

/// Appends whose transaction id is remembered (see [`PgStore::transaction_of`]).
const RECENT_APPENDS: usize = 16_384;

/// The PostgreSQL event store (the distributed mode). Clones share one pool and one
/// memory of recent appends.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Connections for appends (see [`Appenders`]).
    appenders: deadpool::managed::Pool<Appenders>,
    /// The last position of each recent append, with the id of the transaction that
    /// wrote it (from the append's own `RETURNING`).
    recent: Arc<quick_cache::sync::Cache<i64, i64>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// The store in `pool`'s database (migrated by [`crate::db::migrate`]).
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        let size = usize::try_from(pool.options().get_max_connections())
            .unwrap_or(1)
            .max(1);
        let appenders = deadpool::managed::Pool::builder(Appenders {
            options: pool.connect_options().as_ref().clone(),
        })
        .max_size(size)
        .build()
        .expect("a pool without a runtime-bound timeout builds");
        Self {
            pool,
            appenders,
            recent: Arc::new(quick_cache::sync::Cache::new(RECENT_APPENDS)),
        }
    }

    /// An append connection (see [`Appenders`]).
    async fn appender(&self) -> anyhow::Result<Appender> {
        let connection = self
            .appenders
            .get()
            .await
            .map_err(|e| anyhow::anyhow!("connect for an append: {e}"))?;
        Ok(Appender(Some(connection)))
    }

    /// The id of the transaction that recorded the event at `position`, when this
    /// store (or a clone) appended it recently: a read-your-writes wait needs the
    /// event's commit position, and this saves reading it back. `None`: not known
    /// here (look it up).
    #[must_use]
    pub fn transaction_of(&self, position: i64) -> Option<i64> {
        self.recent.get(&position)
    }

    /// Remembers the last of `rows` (position, transaction id) and returns its position.
    fn remember(&self, rows: &[(i64, i64)]) -> Option<i64> {
        let &(position, transaction) = rows.iter().max_by_key(|(p, _)| *p)?;
        self.recent.insert(position, transaction);
        Some(position)
    }

    /// The pool.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// The append connections: the hot path's one statement a command, on connections
/// held outside sqlx's pool, because that pool pings every connection it takes back
/// (`Sync`, wait for `ReadyForQuery`): a second round trip per command, a third of
/// PostgreSQL's work on the addToCart benchmark. A connection is reused without a
/// check; one whose statement failed or was cancelled is closed instead (see
/// [`PgStore::on_appender`]). As many as the pool may open (at most).
struct Appenders {
    options: PgConnectOptions,
}

/// An append connection in use. Dropped without [`Appender::answered`] (the caller's
/// future was dropped mid-statement), or answered with an error other than the
/// database's refusal, it is closed instead of going back: its protocol state is
/// unknown.
struct Appender(Option<deadpool::managed::Object<Appenders>>);

impl Appender {
    fn connection(&mut self) -> &mut PgConnection {
        self.0
            .as_mut()
            .expect("an appender holds its connection until dropped")
    }

    /// Returns the connection to the pool when `result` was an answer.
    fn answered<T>(mut self, result: &sqlx::Result<T>) {
        if matches!(result, Ok(_) | Err(sqlx::Error::Database(_))) {
            drop(self.0.take());
        }
    }
}

impl Drop for Appender {
    fn drop(&mut self) {
        if let Some(connection) = self.0.take() {
            drop(deadpool::managed::Object::take(connection));
        }
    }
}

impl deadpool::managed::Manager for Appenders {
    type Type = PgConnection;
    type Error = sqlx::Error;

    async fn create(&self) -> Result<PgConnection, sqlx::Error> {
        PgConnection::connect_with(&self.options).await
    }

    async fn recycle(
        &self,
        _: &mut PgConnection,
        _: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<sqlx::Error> {
        Ok(())
    }
}

impl From<PgPool> for PgStore {
    fn from(pool: PgPool) -> Self {
        Self::new(pool)
    }
}

impl EventStore for PgStore {
    type Repository = PostgresEventRepository;
    type Pending = Pending;

    fn repository(&self) -> Self::Repository {
        PostgresEventRepository::new(self.pool.clone())
    }

    async fn position_of(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        sequence: usize,
    ) -> anyhow::Result<i64> {
        let sequence = i64::try_from(sequence).context("sequence fits in bigint")?;
        sqlx::query_scalar(
            "SELECT position FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3",
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(sequence)
        .fetch_one(&self.pool)
        .await
        .context("read committed event position")
    }

    async fn append(
        &self,
        aggregate_type: &'static str,
        aggregate_id: &str,
        first_sequence: usize,
        events: &[NewEvent],
        metadata: &serde_json::Value,
    ) -> anyhow::Result<Option<Appended>> {
        let first = i64::try_from(first_sequence).context("sequence fits in bigint")?;
        let count = i64::try_from(events.len()).context("event count fits in bigint")?;
        let sequences: Vec<i64> = (first..first + count).collect();
        let types: Vec<String> = events.iter().map(|e| e.event_type.clone()).collect();
        let versions: Vec<String> = events.iter().map(|e| e.event_version.clone()).collect();
        let payloads: Vec<serde_json::Value> = events.iter().map(|e| e.payload.clone()).collect();
        // One statement: atomic on its own, so no BEGIN/COMMIT round trips; rows are
        // inserted (and numbered) in sequence order; the primary key refuses a second
        // writer of any of the sequences and then nothing is written.
        let mut appender = self.appender().await?;
        let inserted = sqlx::query_as::<_, (i64, i64)>(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                                     event_version, payload, metadata)
                 SELECT $1, $2, u.s, u.t, u.v, u.p, $7
                   FROM unnest($3::bigint[], $4::text[], $5::text[], $6::jsonb[])
                        WITH ORDINALITY AS u(s, t, v, p, o)
                  ORDER BY u.o
                 RETURNING position, transaction_id::text::bigint",
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(&sequences)
        .bind(&types)
        .bind(&versions)
        .bind(&payloads)
        .bind(metadata)
        .fetch_all(appender.connection())
        .await;
        appender.answered(&inserted);
        match inserted {
            Ok(rows) => Ok(self.remember(&rows).map(Appended::At)),
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {
                Ok(Some(Appended::Conflict))
            }
            Err(e) => Err(anyhow::Error::from(e).context("append events")),
        }
    }

    async fn append_unit(&self, rows: &[UnitRow]) -> anyhow::Result<Option<Appended>> {
        let types: Vec<&str> = rows.iter().map(|r| r.aggregate_type).collect();
        let ids: Vec<String> = rows.iter().map(|r| r.aggregate_id.clone()).collect();
        let sequences: Vec<i64> = rows.iter().map(|r| r.sequence).collect();
        let event_types: Vec<String> = rows.iter().map(|r| r.event.event_type.clone()).collect();
        let versions: Vec<String> = rows.iter().map(|r| r.event.event_version.clone()).collect();
        let payloads: Vec<serde_json::Value> =
            rows.iter().map(|r| r.event.payload.clone()).collect();
        let metadata: Vec<serde_json::Value> = rows.iter().map(|r| r.metadata.clone()).collect();
        // As `append`, for rows of several aggregates: one statement, so one
        // transaction, positions in row order, and a second writer of any sequence
        // refused by the primary key, which writes nothing at all.
        let mut appender = self.appender().await?;
        let inserted = sqlx::query_as::<_, (i64, i64)>(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                                     event_version, payload, metadata)
                 SELECT u.a, u.i, u.s, u.t, u.v, u.p, u.m
                   FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[],
                               $5::text[], $6::jsonb[], $7::jsonb[])
                        WITH ORDINALITY AS u(a, i, s, t, v, p, m, o)
                  ORDER BY u.o
                 RETURNING position, transaction_id::text::bigint",
        )
        .bind(&types)
        .bind(&ids)
        .bind(&sequences)
        .bind(&event_types)
        .bind(&versions)
        .bind(&payloads)
        .bind(&metadata)
        .fetch_all(appender.connection())
        .await;
        appender.answered(&inserted);
        match inserted {
            Ok(rows) => Ok(self.remember(&rows).map(Appended::At)),
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {
                Ok(Some(Appended::Conflict))
            }
            Err(e) => Err(anyhow::Error::from(e).context("append a unit of events")),
        }
    }

    async fn claim(&self, scope: &str, key: &str, owner_id: &str) -> anyhow::Result<Claim> {
        reservations::claim(&self.pool, scope, key, owner_id).await
    }

    async fn release(&self, scope: &str, key: &str, owner_id: &str) -> anyhow::Result<()> {
        reservations::release(&self.pool, scope, key, owner_id).await
    }

    async fn holder(&self, scope: &str, key: &str) -> anyhow::Result<Option<String>> {
        reservations::holder(&self.pool, scope, key).await
    }

    async fn read_log(&self, after: i64, limit: usize) -> anyhow::Result<Vec<LoggedEvent>> {
        let limit = i64::try_from(limit).context("limit fits in bigint")?;
        let rows: Vec<LogRow> = sqlx::query_as(
            "SELECT position, aggregate_type, aggregate_id, sequence, event_type, event_version,
                    payload, metadata, event_id, recorded_at
               FROM events WHERE position > $1 ORDER BY position LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .context("read the event log")?;
        Ok(rows.into_iter().map(LogRow::into_logged).collect())
    }

    async fn unique_keys(&self) -> anyhow::Result<Vec<UniqueKey>> {
        let rows: Vec<(String, String, String)> =
            sqlx::query_as("SELECT scope, key, owner_id FROM unique_keys ORDER BY scope, key")
                .fetch_all(&self.pool)
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
        .fetch_one(&self.pool)
        .await
        .context("check whether the event store is empty")
    }

    async fn import(&self, events: &[LoggedEvent], keys: &[UniqueKey]) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await.context("begin import")?;
        // Rows of one statement each, in file order: `position` (bigserial) follows it.
        for event in events {
            sqlx::query(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                                     event_version, payload, metadata, event_id, recorded_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&event.aggregate_type)
            .bind(&event.aggregate_id)
            .bind(event.sequence)
            .bind(&event.event_type)
            .bind(&event.event_version)
            .bind(&event.payload)
            .bind(&event.metadata)
            .bind(event.event_id)
            .bind(event.recorded_at)
            .execute(&mut *tx)
            .await
            .with_context(|| {
                format!(
                    "import {} {} #{}",
                    event.aggregate_type, event.aggregate_id, event.sequence
                )
            })?;
        }
        for key in keys {
            sqlx::query("INSERT INTO unique_keys (scope, key, owner_id) VALUES ($1, $2, $3)")
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

impl PendingClaim for Pending {
    async fn introduced_elsewhere(
        &mut self,
        lookup: &KeyLookup,
        key: &str,
        owner_id: &str,
    ) -> anyhow::Result<bool> {
        // The names are constants (see `KeyLookup`), written out so the expression
        // indexes of `commands/migrations/` apply.
        let any = lookup
            .fields
            .iter()
            .map(|(event_type, field)| {
                format!(
                    "(event_type = '{event_type}' AND payload -> '{event_type}' ->> '{field}' = $1)"
                )
            })
            .collect::<Vec<_>>()
            .join(" OR ");
        let sql = format!(
            "SELECT 1 FROM events WHERE aggregate_type = '{}' AND aggregate_id <> $2 AND ({any}) LIMIT 1",
            lookup.aggregate_type
        );
        let found: Option<i32> = sqlx::query_scalar(&sql)
            .bind(key)
            .bind(owner_id)
            .fetch_optional(&mut **self.transaction())
            .await
            .context("look up a committed owner of the key")?;
        Ok(found.is_some())
    }

    async fn confirm(self) -> anyhow::Result<()> {
        Pending::confirm(self).await
    }

    async fn abandon(self) -> anyhow::Result<()> {
        Pending::abandon(self).await
    }
}

#[derive(sqlx::FromRow)]
struct LogRow {
    position: i64,
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: serde_json::Value,
    metadata: serde_json::Value,
    event_id: uuid::Uuid,
    recorded_at: chrono::DateTime<chrono::Utc>,
}

impl LogRow {
    fn into_logged(self) -> LoggedEvent {
        LoggedEvent {
            position: Some(self.position),
            aggregate_type: self.aggregate_type,
            aggregate_id: self.aggregate_id,
            sequence: self.sequence,
            event_type: self.event_type,
            event_version: self.event_version,
            payload: self.payload,
            metadata: self.metadata,
            event_id: self.event_id,
            recorded_at: self.recorded_at,
        }
    }
}
