//! The relay: publishes every committed event from PostgreSQL to JetStream, in commit
//! order, exactly once in effect.
//!
//! # Why it cannot skip
//! `position` is assigned at insert, so transactions commit out of position order. The
//! relay therefore reads only rows whose inserting transaction is older than every
//! transaction still in flight that could write them ([`HORIZON`]), sorted by
//! `(transaction_id, position)`. Any row committed later belongs to a transaction at
//! or above that horizon, so it sorts after everything already published: the
//! published events are always a prefix of the commit order, and that prefix never
//! changes.
//!
//! The horizon is not the cluster-wide `pg_snapshot_xmin`: a transaction of *another
//! database* on the same server cannot insert into this one's `events`, so it must
//! not hold publication back (a shared server's other databases, their migrations
//! and `CREATE DATABASE`s delayed every event by hundreds of milliseconds).
//!
//! # Why it is exactly once
//! The stream is the checkpoint. Each message carries its `(transaction_id, position)`
//! in headers; the relay resumes after the stream's last message. Every publish also
//! carries `Nats-Expected-Last-Sequence`, so JetStream appends message *n* only right
//! after message *n-1*: a pipelined batch can fail part-way but never leave a hole, and
//! a second (zombie) relay cannot interleave. `Nats-Msg-Id` deduplicates the rest.
//! Republishing after a lost stream tail or a deleted stream yields the same
//! sequence-to-event mapping, because the order is deterministic.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream::{self, context::PublishAckFuture};
use sqlx::postgres::PgListener;
use sqlx::{Connection, PgConnection, PgPool};

use crate::bus::StreamLayout;
use crate::envelope::{CommitPosition, EventEnvelope, StoredEvent};
use crate::stream::{StreamSettings, events_stream_config};

/// The relay's horizon, as an SQL expression evaluated once per statement (an
/// uncorrelated subquery): the oldest transaction in flight in the statement's
/// snapshot that could have written this database's events, or the snapshot's `xmax`
/// when there is none. An in-flight xid is ignored only when `pg_stat_activity` shows
/// it as the transaction of a backend connected to *another* database (a backend
/// never touches another database's tables); every xid it cannot classify so (a
/// backend of this database, one that ended or moved on meanwhile, a prepared
/// transaction, a row hidden from this role) counts. A transaction that takes its
/// xid after the snapshot gets one at or above `xmax`.
pub const HORIZON: &str = "(SELECT coalesce(min(x), pg_snapshot_xmax(pg_current_snapshot()))
       FROM pg_snapshot_xip(pg_current_snapshot()) AS x
      WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity a
                         WHERE a.backend_xid = xid(x)
                           AND a.datname IS DISTINCT FROM current_database()))";

/// Whether any committed event lies after a commit position (`$1` its transaction id
/// as text, `$2` its position): the relay's probe after a round that found nothing.
///
/// It is written as `ORDER BY ... LIMIT 1` over the commit-order index, not as
/// `EXISTS (...)`: sqlx prepares it, and under PostgreSQL's generic plan the row
/// comparison is guessed to match a third of the table, so the planner answered
/// `EXISTS` with a sequential scan expecting an early hit; when the relay is caught up
/// nothing matches and the scan read the whole table (12.6 ms a call, half of
/// PostgreSQL's time under the addToCart benchmark; BENCHMARKS.md gateway run 13).
/// The ordered form can only be answered by walking the index from the cursor.
pub const PENDING_PROBE: &str = "SELECT 1 FROM events
     WHERE (transaction_id, position) > ($1::text::xid8, $2)
     ORDER BY transaction_id, position
     LIMIT 1";

/// The relay's read of the next batch: committed events below [`HORIZON`] after a
/// commit position (`$1` its transaction id as text, `$2` its position), in commit
/// order, at most `$3`. Built once: the relay runs it every round.
#[must_use]
pub fn read_visible_sql() -> &'static str {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version,
                    payload, metadata, position,
                    transaction_id::text::bigint AS transaction_id, event_id, recorded_at
             FROM events
             WHERE transaction_id < {HORIZON}
               AND (transaction_id, position) > ($1::text::xid8, $2)
             ORDER BY events.transaction_id, events.position
             LIMIT $3"
        )
    });
    &SQL
}

/// Counter: events appended to the stream (duplicates excluded).
pub const METRIC_PUBLISHED: &str = "emporium_relay_published_total";
/// Gauge: committed events not yet on the stream.
pub const METRIC_LAG: &str = "emporium_relay_lag_events";
/// How often at most the lag behind [`METRIC_LAG`] is counted while events wait.
const LAG_COUNT_INTERVAL: Duration = Duration::from_secs(1);
/// Histogram: time to publish one batch and collect its acks.
pub const METRIC_BATCH_SECONDS: &str = "emporium_relay_batch_seconds";
/// Histogram: events per published batch.
pub const METRIC_BATCH_EVENTS: &str = "emporium_relay_batch_events";
/// Histogram: from the oldest event's `recorded_at` (its transaction's start) to the
/// relay reading it: how long committed events wait for the relay.
pub const METRIC_PICKUP_SECONDS: &str = "emporium_relay_pickup_seconds";

/// The channel on which another process asks the relay to look for new events now
/// (`NOTIFY emporium_relay_wake`, see [`wake_over_postgres`]).
pub const WAKE_CHANNEL: &str = "emporium_relay_wake";

/// Wakes an idle relay at once instead of at its next poll: whoever commits events
/// and wants them on the stream promptly (a mutation about to wait for
/// read-your-writes) calls [`RelayWake::wake`]. Cloning shares the same relay.
///
/// A wake-up only shortens the wait; it carries nothing and is never needed for
/// correctness (the poll still finds everything), so a lost one costs at most one
/// poll interval.
#[derive(Debug, Clone, Default)]
pub struct RelayWake(Arc<tokio::sync::Notify>);

impl RelayWake {
    /// A wake-up not yet tied to a relay (give it to [`Relay::with_wake`]).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the relay to run a round now (or right after the one it is running).
    pub fn wake(&self) {
        self.0.notify_one();
    }

    async fn woken(&self) {
        self.0.notified().await;
    }
}

/// Wakes the relay of another process (or this one) through PostgreSQL: what a
/// gateway whose relay runs elsewhere calls after a command commits. One round trip.
///
/// # Errors
/// When PostgreSQL fails; the relay's poll still finds the events.
pub async fn wake_over_postgres(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(WAKE_CHANNEL)
        .execute(pool)
        .await
        .context("wake the relay")?;
    Ok(())
}

/// How the relay batches, wakes up and retries.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Events read and published per round trip; also the most acks in flight.
    pub batch_size: usize,
    /// The stream's retention and duplicate window.
    pub stream: StreamSettings,
    /// How often an idle relay looks for new events when nobody wakes it. Writers
    /// in this process wake it through [`RelayWake`], other processes through
    /// [`WAKE_CHANNEL`]; the poll stays as the fallback, and is what notices an old
    /// transaction that wrote no events ending and unblocking newer ones.
    pub poll_interval: Duration,
    /// The first pause before looking again when committed events are waiting
    /// behind an older transaction still in flight (the xmin horizon); it doubles
    /// while they keep waiting, up to `poll_interval`.
    pub horizon_retry: Duration,
    /// How often an idle relay re-reads the stream's last message, to notice a deleted
    /// stream or a lost tail even when no new event arrives.
    pub verify_interval: Duration,
    /// How long to wait for one ack.
    pub ack_timeout: Duration,
    /// How often a standby tries to take the lock.
    pub standby_retry: Duration,
    /// The pause after a failed round.
    pub error_backoff: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch_size: 256,
            stream: StreamSettings::default(),
            poll_interval: Duration::from_millis(20),
            horizon_retry: Duration::from_millis(1),
            verify_interval: Duration::from_secs(1),
            ack_timeout: Duration::from_secs(10),
            standby_retry: Duration::from_millis(500),
            error_backoff: Duration::from_millis(250),
        }
    }
}

/// The stream's last message, as far as the relay is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamHead {
    /// The stream's last sequence (0 when empty).
    pub last_sequence: u64,
    /// The commit position of the event at `last_sequence`.
    pub cursor: CommitPosition,
}

/// Publishes committed events to JetStream. See the module docs for the guarantees.
#[derive(Debug)]
pub struct Relay {
    pool: PgPool,
    jetstream: jetstream::Context,
    layout: StreamLayout,
    config: RelayConfig,
    /// The head after the last successful round; `None` forces a re-read from the
    /// stream (at start, after any error, and every `verify_interval`).
    head: Option<StreamHead>,
    /// What makes an idle relay look now.
    wake: RelayWake,
    /// Committed events left behind the horizon by the last round (at least 1 while
    /// any are, between counts).
    waiting: u64,
    /// When the lag was last counted (see `relay_pending`).
    lag_counted: Option<Instant>,
}

/// The advisory lock that makes one relay active per stream, held on a connection of
/// its own for as long as this value lives.
#[derive(Debug)]
pub struct RelayLock {
    conn: PgConnection,
}

impl RelayLock {
    /// Confirms the session holding the lock is alive (and so still holds it).
    ///
    /// # Errors
    /// When the lock's connection is gone: the lock is then lost.
    pub async fn check(&mut self) -> anyhow::Result<()> {
        self.conn.ping().await.context("relay lock connection lost")
    }

    /// Releases the lock by closing its connection.
    ///
    /// # Errors
    /// When the connection cannot be closed cleanly (the lock is released anyway).
    pub async fn release(self) -> anyhow::Result<()> {
        self.conn
            .close()
            .await
            .context("close relay lock connection")
    }
}

/// Binds a commit position for SQL: xid8 has no sqlx type, so it travels as text.
fn cursor_binds(cursor: CommitPosition) -> anyhow::Result<(String, i64)> {
    Ok((
        cursor.transaction_id.to_string(),
        i64::try_from(cursor.position).context("position beyond i64")?,
    ))
}

impl Relay {
    /// A relay publishing the events in `pool` to the stream named by `layout`.
    #[must_use]
    pub fn new(
        pool: PgPool,
        jetstream: jetstream::Context,
        layout: StreamLayout,
        config: RelayConfig,
    ) -> Self {
        Self {
            pool,
            jetstream,
            layout,
            config,
            head: None,
            wake: RelayWake::new(),
            waiting: 0,
            lag_counted: None,
        }
    }

    /// The relay woken by `wake` (shared with the writers of this process).
    #[must_use]
    pub fn with_wake(mut self, wake: RelayWake) -> Self {
        self.wake = wake;
        self
    }

    /// What wakes this relay.
    #[must_use]
    pub fn wake_handle(&self) -> RelayWake {
        self.wake.clone()
    }

    /// The stream layout this relay publishes to.
    #[must_use]
    pub fn layout(&self) -> &StreamLayout {
        &self.layout
    }

    /// Creates the events stream when it does not exist; an existing one is left as is.
    ///
    /// # Errors
    /// When JetStream is unreachable or refuses the definition.
    pub async fn ensure_stream(&self) -> anyhow::Result<jetstream::stream::Stream> {
        self.jetstream
            .get_or_create_stream(events_stream_config(&self.layout, &self.config.stream))
            .await
            .with_context(|| format!("ensure stream {}", self.layout.stream_name()))
    }

    /// Reads where the stream ends: its last sequence and the commit position carried
    /// by its last message. Creates the stream when missing.
    ///
    /// # Errors
    /// When NATS or PostgreSQL fails, or the last message lacks the relay's headers.
    #[tracing::instrument(skip_all, fields(stream = %self.layout.stream_name()))]
    pub async fn read_head(&self) -> anyhow::Result<StreamHead> {
        let stream = self.ensure_stream().await?;
        let last_sequence = stream.cached_info().state.last_sequence;
        if last_sequence == 0 {
            return Ok(StreamHead {
                last_sequence,
                cursor: CommitPosition::START,
            });
        }
        match stream.get_raw_message(last_sequence).await {
            Ok(message) => {
                let cursor = CommitPosition::from_headers(&message.headers).with_context(|| {
                    format!("read the commit position of stream message {last_sequence}")
                })?;
                self.ensure_same_store(&message.headers, cursor).await?;
                Ok(StreamHead {
                    last_sequence,
                    cursor,
                })
            }
            Err(error) if is_no_message(&error) => {
                // Retention removed the last message. The stream's sequence n is the
                // n-th event in commit order (the order is deterministic and the
                // stream starts at the first event), so PostgreSQL can say where it is.
                tracing::warn!(
                    last_sequence,
                    "last stream message expired; locating it by commit order"
                );
                let cursor = self.nth_in_commit_order(last_sequence).await?;
                Ok(StreamHead {
                    last_sequence,
                    cursor,
                })
            }
            Err(error) => {
                Err(error).with_context(|| format!("read stream message {last_sequence}"))
            }
        }
    }

    /// The stream's last message must be an event of this store: a stream left over
    /// from another database (reset, restored from an older backup, or a prefix
    /// shared by mistake) would otherwise make the relay resume after a position this
    /// store never reached and silently never publish its events.
    async fn ensure_same_store(
        &self,
        headers: &async_nats::HeaderMap,
        cursor: CommitPosition,
    ) -> anyhow::Result<()> {
        let Some(event_id) = headers.get(crate::envelope::headers::EVENT_ID) else {
            anyhow::bail!("the stream's last message has no event id header");
        };
        let event_id: uuid::Uuid = event_id
            .as_str()
            .parse()
            .context("the stream's last event id is not a uuid")?;
        let position = i64::try_from(cursor.position).context("position beyond i64")?;
        let known: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM events WHERE position = $1 AND event_id = $2")
                .bind(position)
                .bind(event_id)
                .fetch_optional(&self.pool)
                .await
                .context("look up the stream's last event in the event store")?;
        anyhow::ensure!(
            known.is_some(),
            "stream {} ends with event {event_id} at position {}, which this event store \
             never recorded: the stream belongs to another database (reset or restored?); \
             delete the stream (the relay rebuilds it from PostgreSQL) or use another prefix",
            self.layout.stream_name(),
            cursor.position
        );
        Ok(())
    }

    async fn nth_in_commit_order(&self, n: u64) -> anyhow::Result<CommitPosition> {
        let offset = i64::try_from(n - 1).context("sequence beyond i64")?;
        let row: Option<(i64, i64)> = sqlx::query_as(&format!(
            "SELECT transaction_id::text::bigint, position FROM events
             WHERE transaction_id < {HORIZON}
             ORDER BY events.transaction_id, events.position OFFSET $1 LIMIT 1"
        ))
        .bind(offset)
        .fetch_optional(&self.pool)
        .await
        .context("locate an event by commit order")?;
        let (transaction_id, position) =
            row.with_context(|| format!("the stream is longer ({n}) than the event store"))?;
        Ok(CommitPosition {
            transaction_id: u64::try_from(transaction_id)?,
            position: u64::try_from(position)?,
        })
    }

    /// Publishes every event committed and visible now (everything below the oldest
    /// transaction still in flight), starting after the stream's last message.
    /// Returns how many events were appended to the stream.
    ///
    /// It does not take the relay lock: tests step it directly, and the expected-last-
    /// sequence guard keeps even concurrent callers from corrupting the stream.
    ///
    /// # Errors
    /// When PostgreSQL or NATS fails, or an ack is negative or late; the next call
    /// resumes from what the stream holds.
    pub async fn relay_once(&mut self) -> anyhow::Result<usize> {
        self.head = None;
        self.relay_pending().await
    }

    /// Whether any committed event lies after `cursor`: after a round that found
    /// nothing, such events are held back by an older transaction still in flight.
    async fn anything_after(&self, cursor: CommitPosition) -> anyhow::Result<bool> {
        let (txid, position) = cursor_binds(cursor)?;
        let found: Option<i32> = sqlx::query_scalar(PENDING_PROBE)
            .bind(txid)
            .bind(position)
            .fetch_optional(&self.pool)
            .await
            .context("look for unpublished events")?;
        Ok(found.is_some())
    }

    /// Committed events not yet on the stream (the lag), counted after `cursor`.
    ///
    /// # Errors
    /// When PostgreSQL fails.
    pub async fn lag(&self, cursor: CommitPosition) -> anyhow::Result<u64> {
        let (txid, position) = cursor_binds(cursor)?;
        let lag: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM events
             WHERE (transaction_id, position) > ($1::text::xid8, $2)",
        )
        .bind(txid)
        .bind(position)
        .fetch_one(&self.pool)
        .await
        .context("count unpublished events")?;
        Ok(u64::try_from(lag).unwrap_or_default())
    }

    /// One round: batches until nothing visible is left. Keeps the head for the next
    /// round only when the round succeeded.
    async fn relay_pending(&mut self) -> anyhow::Result<usize> {
        let mut head = match self.head.take() {
            Some(head) => head,
            None => self.read_head().await?,
        };
        let mut total = 0;
        let mut batch = self.read_visible(head.cursor).await?;
        while !batch.is_empty() {
            let full = batch.len() == self.config.batch_size;
            let next_after = batch
                .last()
                .map_or(head.cursor, EventEnvelope::commit_position);
            let started = Instant::now();
            #[allow(clippy::cast_precision_loss)] // batches are far below 2^52 events
            metrics::histogram!(METRIC_BATCH_EVENTS).record(batch.len() as f64);
            if let Some(oldest) = batch.iter().map(|e| e.recorded_at).min() {
                let waited = (chrono::Utc::now() - oldest).to_std().unwrap_or_default();
                metrics::histogram!(METRIC_PICKUP_SECONDS).record(waited.as_secs_f64());
            }
            let acks = self.send_batch(&head, batch).await?;
            // Read the next batch while this one's acks come back. It is discarded if
            // an ack fails (the error returns before it is used).
            let (published, next) = tokio::join!(self.check_acks(&mut head, acks), async {
                if full {
                    self.read_visible(next_after).await
                } else {
                    Ok(Vec::new())
                }
            });
            total += published?;
            metrics::histogram!(METRIC_BATCH_SECONDS).record(started.elapsed().as_secs_f64());
            batch = next?;
        }
        self.head = Some(head);
        // Whether anything is held back matters when a round finds nothing (an older
        // transaction still in flight: look again soon); after a round that
        // published, the next one follows at once, so a busy relay spends no
        // statement on it. The check is one index probe; the exact count behind the
        // lag gauge scans the whole backlog, so it runs at most once per
        // `LAG_COUNT_INTERVAL` (under a held-back checkout load it was the costliest
        // statement of the run: 3.3 ms, BENCHMARKS.md checkout run 8).
        if total == 0 {
            let waiting = self.anything_after(head.cursor).await?;
            if !waiting {
                self.waiting = 0;
                metrics::gauge!(METRIC_LAG).set(0.0);
            } else if self
                .lag_counted
                .is_none_or(|at| at.elapsed() >= LAG_COUNT_INTERVAL)
            {
                let lag = self.lag(head.cursor).await?;
                self.lag_counted = Some(Instant::now());
                self.waiting = lag;
                #[allow(clippy::cast_precision_loss)] // a lag beyond 2^52 events is not a concern
                metrics::gauge!(METRIC_LAG).set(lag as f64);
            } else {
                self.waiting = self.waiting.max(1);
            }
        }
        Ok(total)
    }

    async fn read_visible(&self, after: CommitPosition) -> anyhow::Result<Vec<EventEnvelope>> {
        let (txid, position) = cursor_binds(after)?;
        let rows: Vec<StoredEvent> = sqlx::query_as(read_visible_sql())
            .bind(txid)
            .bind(position)
            .bind(i64::try_from(self.config.batch_size).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .context("read committed events")?;
        rows.into_iter().map(StoredEvent::into_envelope).collect()
    }

    /// Publishes `batch` pipelined, each message expecting its predecessor's stream
    /// sequence; returns the ack futures in publish order.
    async fn send_batch(
        &self,
        head: &StreamHead,
        batch: Vec<EventEnvelope>,
    ) -> anyhow::Result<Vec<(CommitPosition, PublishAckFuture)>> {
        let mut pending: Vec<(CommitPosition, PublishAckFuture)> = Vec::with_capacity(batch.len());
        for (offset, envelope) in (0_u64..).zip(&batch) {
            let subject = self
                .layout
                .subject(&envelope.aggregate_type, &envelope.event_type);
            let mut message_headers = envelope.to_headers();
            let expected_last = head.last_sequence + offset;
            // JetStream reads 0 as "no expectation"; the first message into an empty
            // stream cannot be out of order anyway.
            if expected_last > 0 {
                message_headers.insert(
                    async_nats::header::NATS_EXPECTED_LAST_SEQUENCE,
                    expected_last.to_string(),
                );
            }
            let payload = serde_json::to_vec(envelope).context("encode event envelope")?;
            let ack = self
                .jetstream
                .publish_with_headers(subject, message_headers, payload.into())
                .await
                .with_context(|| format!("publish event {}", envelope.message_id()))?;
            pending.push((envelope.commit_position(), ack));
        }
        Ok(pending)
    }

    /// Checks every ack in order, advancing `head` past each stored event. The first
    /// failure aborts the batch.
    async fn check_acks(
        &self,
        head: &mut StreamHead,
        pending: Vec<(CommitPosition, PublishAckFuture)>,
    ) -> anyhow::Result<usize> {
        let mut published = 0;
        for (cursor, ack) in pending {
            let ack = tokio::time::timeout(self.config.ack_timeout, ack)
                .await
                .map_err(|_| anyhow::anyhow!("no ack within {:?}", self.config.ack_timeout))?
                .context("publish rejected")?;
            anyhow::ensure!(
                !ack.duplicate,
                "stream already holds the event at sequence {} (another publisher?)",
                ack.sequence
            );
            anyhow::ensure!(
                ack.sequence == head.last_sequence + 1,
                "stream stored sequence {} where {} was expected",
                ack.sequence,
                head.last_sequence + 1
            );
            head.last_sequence = ack.sequence;
            head.cursor = cursor;
            published += 1;
            metrics::counter!(METRIC_PUBLISHED).increment(1);
        }
        Ok(published)
    }

    /// Tries once to become the active relay for this stream.
    ///
    /// # Errors
    /// When PostgreSQL is unreachable.
    pub async fn try_lock(&self) -> anyhow::Result<Option<RelayLock>> {
        let mut conn = self.lock_connection().await?;
        if self.try_lock_on(&mut conn).await? {
            Ok(Some(RelayLock { conn }))
        } else {
            Ok(None)
        }
    }

    async fn lock_connection(&self) -> anyhow::Result<PgConnection> {
        let options = self
            .pool
            .connect_options()
            .as_ref()
            .clone()
            .application_name("emporium-relay-lock");
        PgConnection::connect_with(&options)
            .await
            .context("open the relay lock connection")
    }

    async fn try_lock_on(&self, conn: &mut PgConnection) -> anyhow::Result<bool> {
        // hashtextextended is stable across PostgreSQL versions (hash partitioning
        // depends on it), so every relay of a stream derives the same key.
        sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
            .bind(self.lock_name())
            .fetch_one(conn)
            .await
            .context("try the relay lock")
    }

    /// The text the advisory lock key is hashed from.
    #[must_use]
    pub fn lock_name(&self) -> String {
        format!("emporium.relay.{}", self.layout.stream_name())
    }

    /// Waits, as a standby, until this relay holds the lock.
    async fn acquire_lock(&self) -> RelayLock {
        let mut conn: Option<PgConnection> = None;
        let mut announced = false;
        loop {
            let attempt = async {
                if conn.is_none() {
                    conn = Some(self.lock_connection().await?);
                }
                let c = conn.as_mut().expect("connection just opened");
                self.try_lock_on(c).await
            }
            .await;
            match attempt {
                Ok(true) => {
                    return RelayLock {
                        conn: conn.take().expect("locked on this connection"),
                    };
                }
                Ok(false) => {
                    if !announced {
                        tracing::info!("another relay is active; standing by");
                        announced = true;
                    }
                }
                Err(error) => {
                    conn = None;
                    tracing::warn!(error = format!("{error:#}"), "relay lock attempt failed");
                }
            }
            tokio::time::sleep(self.config.standby_retry).await;
        }
    }

    /// Runs until `shutdown` resolves: stands by until it holds the lock, then relays
    /// continuously, re-reading the stream head after every error and every
    /// `verify_interval`. Losing the lock's connection sends it back to standby.
    ///
    /// # Errors
    /// None today: failures are logged and retried; the result leaves room for fatal
    /// configuration errors.
    #[tracing::instrument(skip_all, fields(stream = %self.layout.stream_name()))]
    pub async fn run(mut self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        loop {
            let mut lock = tokio::select! {
                () = &mut shutdown => return Ok(()),
                lock = self.acquire_lock() => lock,
            };
            tracing::info!("relay active");
            self.head = None;
            let error = tokio::select! {
                () = &mut shutdown => {
                    let _ = lock.release().await;
                    return Ok(());
                }
                error = self.active(&mut lock) => error,
            };
            tracing::error!(
                error = format!("{error:#}"),
                "relay lost its lock; standing by"
            );
            self.head = None;
            tokio::time::sleep(self.config.error_backoff).await;
        }
    }

    /// The active relay's loop; returns only when the lock is lost.
    async fn active(&mut self, lock: &mut RelayLock) -> anyhow::Error {
        let _listener = TaskGuard(tokio::spawn(listen_for_wakes(
            self.pool.clone(),
            self.wake.clone(),
        )));
        let mut verified_at = Instant::now();
        let mut horizon_pause = self.config.horizon_retry;
        loop {
            if verified_at.elapsed() >= self.config.verify_interval {
                self.head = None;
                verified_at = Instant::now();
            }
            if self.head.is_none()
                && let Err(error) = lock.check().await
            {
                return error;
            }
            match self.relay_pending().await {
                Ok(0) => {
                    // Committed events held back by an older transaction: look
                    // again soon (backing off), since that transaction may write
                    // no events and so wake nobody when it ends.
                    let pause = if self.waiting > 0 {
                        let pause = horizon_pause;
                        horizon_pause = (horizon_pause * 2).min(self.config.poll_interval);
                        pause
                    } else {
                        horizon_pause = self.config.horizon_retry;
                        self.config.poll_interval
                    };
                    tokio::select! {
                        () = self.wake.woken() => {}
                        () = tokio::time::sleep(pause) => {}
                    }
                }
                Ok(published) => {
                    horizon_pause = self.config.horizon_retry;
                    tracing::debug!(published, "relayed");
                }
                Err(error) => {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "relay round failed; resuming from the stream"
                    );
                    self.head = None;
                    if let Err(error) = lock.check().await {
                        return error;
                    }
                    tokio::time::sleep(self.config.error_backoff).await;
                }
            }
        }
    }
}

/// Aborts a spawned task when dropped.
struct TaskGuard(tokio::task::JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Turns `NOTIFY emporium_relay_wake` from other processes into wake-ups, for as
/// long as the relay is active. Best effort: the poll covers any gap.
async fn listen_for_wakes(pool: PgPool, wake: RelayWake) {
    loop {
        let listening = async {
            // A connection of its own, not one of the relay's.
            let own = emporium_commands::db::own_connection(&pool, "emporium-relay-wake");
            let mut listener = PgListener::connect_with(&own)
                .await
                .context("open the relay wake listener")?;
            listener
                .listen(WAKE_CHANNEL)
                .await
                .context("listen for relay wake-ups")?;
            loop {
                // `None`: the connection was re-established; a wake-up may have
                // been missed, so look anyway.
                listener.try_recv().await.context("receive a wake-up")?;
                wake.wake();
            }
        };
        let error: anyhow::Result<()> = listening.await;
        if let Err(error) = error {
            tracing::warn!(
                error = format!("{error:#}"),
                "relay wake listener failed; polling meanwhile"
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn is_no_message(error: &async_nats::jetstream::stream::RawMessageError) -> bool {
    use async_nats::jetstream::stream::RawMessageErrorKind;
    match error.kind() {
        RawMessageErrorKind::NoMessageFound => true,
        RawMessageErrorKind::JetStream(e) => {
            e.error_code() == async_nats::jetstream::ErrorCode::NO_MESSAGE_FOUND
        }
        _ => false,
    }
}
