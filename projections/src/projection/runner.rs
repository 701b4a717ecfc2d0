//! The runner: a durable JetStream pull consumer per projection, a batch applied and
//! checkpointed in one PostgreSQL transaction, then acked.
//!
//! # Why a redelivery or a crash is harmless
//! The checkpoint row (last applied commit position and stream sequence) commits with
//! the read-model change. Every consumed message is judged against it inside the
//! transaction, with the row locked: a message at or before it is a redelivery and is
//! skipped (and acked); only the message right after it is applied; anything further
//! ahead is a gap (the consumer delivered past messages it lost track of, e.g. after a
//! crash before commit) and the consumer is recreated from the checkpoint. The runner
//! consumes every subject of the stream so its sequences are dense and a gap is plain
//! to see; events of aggregate types the projection does not read are skipped by their
//! headers without being decoded. Acks use `AckPolicy::All`: one ack per batch, sent
//! only after the commit; if the process dies in between, the batch is redelivered and
//! skipped.
//!
//! # Batches it only skips
//! Every runner sees every event, and most events belong to aggregates a given
//! projection does not read. A batch with nothing to apply is not written: the runner
//! remembers the checkpoint it reached (judging the next batch from there), announces
//! it in memory to the process's [`CheckpointWatch`](super::CheckpointWatch)es so
//! read-your-writes waiters wake, and writes it with its next applying batch, or on
//! its own once it is [`RunnerConfig::skip_flush`] old or the stream is idle. Nor is
//! it acked: the ack of the write (its last message, which under `AckPolicy::All`
//! acks every one before it) covers it, so a runner that only skips acks ten times a
//! second, not once a batch. A crash loses only that memory: the consumer is reopened
//! at the written checkpoint, and the skipped messages are delivered and skipped
//! again.
//!
//! # Poison events
//! When `apply` fails, the batch is rolled back, the events before the bad one are
//! applied and committed again, and the projection is marked failed with the error and
//! the event (`emporium_projection_poison_total`). It stays stopped, never skipping,
//! until [`retry`](super::checkpoint::retry) clears the failure; it then resumes at
//! the event that failed.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream::{self, Message, consumer::PullConsumer};
use futures::{FutureExt as _, StreamExt as _};
use sqlx::PgPool;

use super::checkpoint::{self, Checkpoint, ProjectionState};
use super::rebuild::{self, DEFAULT_BATCH};
use super::{
    METRIC_APPLIED, METRIC_BATCH_MESSAGES, METRIC_BATCH_SECONDS, METRIC_LAG, METRIC_POISON,
    Projection, check_name, reads, upcast,
};
use crate::bus::StreamLayout;
use crate::envelope::{CommitPosition, EventEnvelope, headers};
use crate::sql::Conn;
use crate::stream::{StreamSettings, events_stream_config};

/// Called after a batch commits and before it is acked, with the number of batches
/// this runner has committed. Tests use it to crash a projector at that very point.
pub type AfterCommit = Arc<dyn Fn(u64) + Send + Sync>;

/// How a runner batches and waits.
#[derive(Clone)]
pub struct RunnerConfig {
    /// Messages applied per transaction at most.
    pub batch_size: usize,
    /// How long JetStream waits for an ack before redelivering.
    pub ack_wait: Duration,
    /// Events per transaction when (re)building from the event store.
    pub rebuild_batch: usize,
    /// How often a stopped (failed) projection checks whether it was retried.
    pub failed_poll: Duration,
    /// The pause after an unexpected error in [`ProjectionRunner::run`].
    pub error_backoff: Duration,
    /// How long progress over messages the projection only skips may stay unwritten
    /// (see the module docs); zero writes a checkpoint for every batch. Watches in
    /// this process hear of it at once; those in other processes when it is written.
    pub skip_flush: Duration,
    /// Under load, how long after its last write a runner gathers what arrives
    /// before the next one: a runner writing more often than this waits out the rest
    /// of it, collecting, so a busy projection commits fewer, larger batches (each
    /// transaction costs three round trips of its own). An idle runner applies the
    /// first event at once; zero never waits.
    pub min_batch_interval: Duration,
    /// Test hook; see [`AfterCommit`].
    pub after_commit: Option<AfterCommit>,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            batch_size: 500,
            ack_wait: Duration::from_secs(30),
            rebuild_batch: DEFAULT_BATCH,
            failed_poll: Duration::from_secs(1),
            error_backoff: Duration::from_millis(250),
            skip_flush: Duration::from_millis(100),
            min_batch_interval: Duration::from_millis(10),
            after_commit: None,
        }
    }
}

impl std::fmt::Debug for RunnerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunnerConfig")
            .field("batch_size", &self.batch_size)
            .field("ack_wait", &self.ack_wait)
            .field("rebuild_batch", &self.rebuild_batch)
            .field("failed_poll", &self.failed_poll)
            .field("skip_flush", &self.skip_flush)
            .field("min_batch_interval", &self.min_batch_interval)
            .field("after_commit", &self.after_commit.is_some())
            .finish_non_exhaustive()
    }
}

/// Why a runner did not apply.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A poison event stopped the projection; `retry` resumes it after a fix.
    #[error("projection {name} is stopped at stream sequence {stream_sequence:?}: {error}")]
    Stopped {
        /// The projection.
        name: String,
        /// The stream sequence of the event that failed.
        stream_sequence: Option<u64>,
        /// The error and its causes.
        error: String,
    },
    /// Another version's tables are live; this runner must not write them.
    #[error("projection {name} v{version} is not live: version {live} is")]
    Superseded {
        /// The projection.
        name: String,
        /// This runner's version.
        version: u32,
        /// The live version.
        live: u32,
    },
    /// PostgreSQL, NATS or the stream failed; the next run resumes from the checkpoint.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Drives one projection from the stream. See the module docs.
pub struct ProjectionRunner {
    pool: PgPool,
    jetstream: jetstream::Context,
    layout: StreamLayout,
    projection: Arc<dyn Projection>,
    config: RunnerConfig,
    consumer: Option<PullConsumer>,
    commits: u64,
    /// When this runner last wrote an applying batch.
    last_write: Option<Instant>,
    /// The checkpoint as this runner last read or wrote it (live version, running):
    /// batches are judged against it without reading the row, and the write checks
    /// the row still holds it. `None` after any error, so the row is read again.
    known: Option<Checkpoint>,
    /// The row's revision at `known`, when this runner wrote it.
    revision: Option<i64>,
    /// Progress past `known` over messages the projection only skips, not written
    /// yet, and since when it waits (see the module docs).
    skipped: Option<(Checkpoint, Instant)>,
    /// The last of those skipped messages: acked (and so every one before it, under
    /// `AckPolicy::All`) once the progress is written, not one ack per batch.
    unacked: Option<Message>,
    /// Names the database for in-process announcements.
    database: String,
}

impl std::fmt::Debug for ProjectionRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionRunner")
            .field("projection", &self.projection.name())
            .field("version", &self.projection.version())
            .field("stream", &self.layout.stream_name())
            .finish_non_exhaustive()
    }
}

/// What one transaction did.
struct Applied {
    /// The checkpoint it committed, or judged without writing (`written` is `None`).
    checkpoint: Checkpoint,
    /// The row's revision after the commit; `None` when nothing was written (only
    /// redeliveries, or only skipped events, held in memory).
    written: Option<i64>,
    /// Messages that moved the checkpoint.
    advanced: usize,
    /// Events handed to the projection.
    applied: usize,
    /// The last message covered by the commit (to ack).
    ack: Option<usize>,
    /// A message beyond the checkpoint's successor was met.
    gap: bool,
}

enum Attempt {
    /// The checkpoint row was not where this runner last left it: judge again
    /// against the row itself.
    Moved,
    /// `apply_batch` failed somewhere in the batch.
    Batch(anyhow::Error),
    Poison {
        index: usize,
        error: anyhow::Error,
    },
    Fatal(RunError),
}

impl From<anyhow::Error> for Attempt {
    fn from(e: anyhow::Error) -> Self {
        Self::Fatal(RunError::Unexpected(e))
    }
}

impl From<sqlx::Error> for Attempt {
    fn from(e: sqlx::Error) -> Self {
        Self::Fatal(RunError::Unexpected(e.into()))
    }
}

fn decode_message(message: &Message) -> anyhow::Result<EventEnvelope> {
    let mut event: EventEnvelope =
        serde_json::from_slice(&message.payload).context("decode the event envelope")?;
    upcast(&mut event);
    Ok(event)
}

/// Names an event in an error.
pub(crate) fn describe(event: &EventEnvelope) -> String {
    format!(
        "apply {} {} ({} {} #{}, position {})",
        event.event_type,
        event.event_id,
        event.aggregate_type,
        event.aggregate_id,
        event.sequence,
        event.position
    )
}

/// The durable consumer's name for a projection version on a stream layout.
#[must_use]
pub fn consumer_name(layout: &StreamLayout, projection: &dyn Projection) -> String {
    format!(
        "{}_{}_v{}",
        layout.stream_name().trim_end_matches("_EVENTS"),
        projection.name(),
        projection.version()
    )
}

/// The durable pull consumer of a projection, delivering from `start_sequence`.
/// `infra/nats/projection-consumers.json` mirrors it (a test keeps them in step).
#[must_use]
pub fn consumer_config(
    name: &str,
    projection: &dyn Projection,
    start_sequence: u64,
    ack_wait: Duration,
) -> jetstream::consumer::pull::Config {
    jetstream::consumer::pull::Config {
        durable_name: Some(name.to_owned()),
        description: Some(format!(
            "projection {} v{}",
            projection.name(),
            projection.version()
        )),
        deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence { start_sequence },
        ack_policy: jetstream::consumer::AckPolicy::All,
        ack_wait,
        max_ack_pending: 10_000,
        ..Default::default()
    }
}

impl ProjectionRunner {
    /// A runner for `projection` over the events stream named by `layout`.
    #[must_use]
    pub fn new(
        pool: PgPool,
        jetstream: jetstream::Context,
        layout: StreamLayout,
        projection: Arc<dyn Projection>,
        config: RunnerConfig,
    ) -> Self {
        Self {
            database: super::wait::database_key(&pool),
            pool,
            jetstream,
            layout,
            projection,
            config,
            consumer: None,
            commits: 0,
            last_write: None,
            known: None,
            revision: None,
            skipped: None,
            unacked: None,
        }
    }

    /// The projection this runner drives.
    #[must_use]
    pub fn projection(&self) -> &Arc<dyn Projection> {
        &self.projection
    }

    /// The durable consumer's name.
    #[must_use]
    pub fn consumer_name(&self) -> String {
        consumer_name(&self.layout, &*self.projection)
    }

    fn name(&self) -> &'static str {
        self.projection.name()
    }

    /// Makes the projection ready to consume: builds it from the event store when its
    /// live version is older (or it never ran), refuses when it is stopped or a newer
    /// version is live, and opens the consumer right after the checkpoint. Called by
    /// the other methods; public so a process can do it before serving.
    ///
    /// # Errors
    /// [`RunError`].
    pub fn prepare<'a>(
        &'a mut self,
    ) -> futures::future::BoxFuture<'a, Result<Checkpoint, RunError>> {
        async move { self.prepare_inner().await }.boxed()
    }

    async fn prepare_inner(&mut self) -> Result<Checkpoint, RunError> {
        check_name(self.name())?;
        let version = self.projection.version();
        let mut conn = self.pool.acquire().await.context("connect to postgres")?;
        let row = checkpoint::read(&mut conn, self.name(), false).await?;
        drop(conn);
        let checkpoint = match row {
            Some((checkpoint, _)) if checkpoint.version > version => {
                return Err(RunError::Superseded {
                    name: self.name().to_owned(),
                    version,
                    live: checkpoint.version,
                });
            }
            Some((
                checkpoint,
                ProjectionState::Failed {
                    error,
                    stream_sequence,
                    ..
                },
            )) if checkpoint.version == version => {
                return Err(RunError::Stopped {
                    name: self.name().to_owned(),
                    stream_sequence,
                    error,
                });
            }
            Some((checkpoint, ProjectionState::Running)) if checkpoint.version == version => {
                checkpoint
            }
            // Never built, or an older version is live: build this one beside it.
            _ => {
                self.consumer = None;
                let checkpoint = rebuild::rebuild(
                    &self.pool,
                    Arc::clone(&self.projection),
                    self.config.rebuild_batch,
                )
                .await?;
                self.delete_older_consumers().await;
                checkpoint
            }
        };
        if self.consumer.is_none() {
            self.consumer = Some(self.open_consumer(&checkpoint).await?);
        }
        self.known = Some(checkpoint);
        self.revision = None;
        self.skipped = None;
        self.unacked = None;
        Ok(checkpoint)
    }

    async fn stream(&self) -> anyhow::Result<jetstream::stream::Stream> {
        // The relay usually creates the stream; a projector started first creates it
        // with the default settings rather than fail.
        self.jetstream
            .get_or_create_stream(events_stream_config(
                &self.layout,
                &StreamSettings::default(),
            ))
            .await
            .with_context(|| format!("open stream {}", self.layout.stream_name()))
    }

    /// Opens the durable consumer, recreating it at the checkpoint's successor unless
    /// it already stands there with nothing in flight.
    async fn open_consumer(&self, checkpoint: &Checkpoint) -> anyhow::Result<PullConsumer> {
        let stream = self.stream().await?;
        let state = &stream.cached_info().state;
        anyhow::ensure!(
            state.first_sequence <= checkpoint.stream_sequence + 1 || state.messages == 0,
            "the stream starts at sequence {} but {} needs {}: rebuild it from the event store",
            state.first_sequence,
            self.name(),
            checkpoint.stream_sequence + 1
        );
        let name = self.consumer_name();
        if let Ok(mut existing) = stream
            .get_consumer::<jetstream::consumer::pull::Config>(&name)
            .await
        {
            let info = existing.info().await.context("read consumer info")?;
            if info.delivered.stream_sequence <= checkpoint.stream_sequence
                && info.num_ack_pending == 0
                && info.ack_floor.stream_sequence <= checkpoint.stream_sequence
            {
                return Ok(existing);
            }
            stream
                .delete_consumer(&name)
                .await
                .with_context(|| format!("delete consumer {name}"))?;
        }
        let config = consumer_config(
            &name,
            self.projection.as_ref(),
            checkpoint.stream_sequence + 1,
            self.config.ack_wait,
        );
        stream
            .create_consumer(config)
            .await
            .with_context(|| format!("create consumer {name}"))
    }

    async fn delete_older_consumers(&self) {
        let Ok(stream) = self.stream().await else {
            return;
        };
        for older in 1..self.projection.version() {
            let name = format!(
                "{}_{}_v{older}",
                self.layout.stream_name().trim_end_matches("_EVENTS"),
                self.name()
            );
            let _ = stream.delete_consumer(&name).await;
        }
    }

    /// Applies at most one batch of what the stream holds now (it does not wait for
    /// more). Returns the number of stream messages that moved the checkpoint,
    /// including events of aggregate types this projection skips.
    ///
    /// # Errors
    /// [`RunError`]; after any error the next call resumes from the checkpoint.
    pub fn run_once<'a>(&'a mut self) -> futures::future::BoxFuture<'a, Result<usize, RunError>> {
        async move { self.step().await.map(|(_, advanced)| advanced) }.boxed()
    }

    /// One batch: (messages fetched, messages that moved the checkpoint).
    fn step(&mut self) -> futures::future::BoxFuture<'_, Result<(usize, usize), RunError>> {
        async move { self.step_inner().await }.boxed()
    }

    async fn step_inner(&mut self) -> Result<(usize, usize), RunError> {
        if self.consumer.is_none() {
            self.prepare().await?;
        }
        let consumer = self.consumer.as_ref().context("consumer opened")?;
        let fetched = async {
            let mut batch = consumer
                .fetch()
                .max_messages(self.config.batch_size)
                .messages()
                .await
                .map_err(|e| anyhow::anyhow!(e).context("fetch from the consumer"))?;
            let mut messages = Vec::new();
            while let Some(message) = batch.next().await {
                messages.push(message.map_err(|e| anyhow::anyhow!(e).context("fetch a message"))?);
            }
            anyhow::Ok(messages)
        }
        .await;
        let messages = match fetched {
            Ok(messages) => messages,
            Err(e) => {
                self.consumer = None;
                return Err(e.into());
            }
        };
        if messages.is_empty() {
            // Idle: write what was only skipped.
            self.write_skipped().await?;
            return Ok((0, 0));
        }
        let advanced = self.apply_messages(&messages).await?;
        Ok((messages.len(), advanced))
    }

    /// Steps [`run_once`](Self::run_once) until the stream holds nothing more for this
    /// projection. Returns the messages applied.
    ///
    /// # Errors
    /// As [`run_once`](Self::run_once).
    pub async fn run_until_caught_up(&mut self) -> Result<usize, RunError> {
        let mut total = 0;
        loop {
            let (fetched, advanced) = self.step().await?;
            total += advanced;
            // A gap drops the consumer without moving; go round to reopen it.
            if fetched == 0 && self.consumer.is_some() {
                return Ok(total);
            }
        }
    }

    /// Applies `messages` (in stream order) and acks them; see the module docs.
    fn apply_messages<'a>(
        &'a mut self,
        messages: &'a [Message],
    ) -> futures::future::BoxFuture<'a, Result<usize, RunError>> {
        async move { self.apply_messages_inner(messages).await }.boxed()
    }

    async fn apply_messages_inner(&mut self, messages: &[Message]) -> Result<usize, RunError> {
        let started = Instant::now();
        #[allow(clippy::cast_precision_loss)] // batches are far below 2^52 messages
        metrics::histogram!(METRIC_BATCH_MESSAGES, "projection" => self.name())
            .record(messages.len() as f64);
        let mut limit = messages.len();
        let mut poison: Option<(usize, anyhow::Error)> = None;
        // The batch goes to `apply_batch` in one piece; if that fails, it is applied
        // again event by event to find the one at fault.
        let mut one_by_one = false;
        let applied = loop {
            match self.try_apply(&messages[..limit], one_by_one).await {
                Ok(applied) => break applied,
                Err(Attempt::Moved) => {
                    tracing::debug!(
                        projection = self.name(),
                        "checkpoint moved elsewhere; judging against the row"
                    );
                    self.forget();
                }
                Err(Attempt::Batch(error)) => {
                    tracing::debug!(
                        error = format!("{error:#}"),
                        "batch failed; applying one by one"
                    );
                    one_by_one = true;
                }
                Err(Attempt::Poison { index, error }) => {
                    // Keep what came before the bad event, then stop at it.
                    limit = index;
                    poison = Some((index, error));
                }
                Err(Attempt::Fatal(error)) => {
                    self.consumer = None;
                    self.forget();
                    return Err(error);
                }
            }
        };
        let mut held = false;
        if let Some(revision) = applied.written {
            self.known = Some(applied.checkpoint);
            self.revision = Some(revision);
            self.skipped = None;
            self.commits += 1;
            self.last_write = Some(Instant::now());
            if let Some(hook) = &self.config.after_commit {
                hook(self.commits);
            }
        } else if applied.advanced > 0
            && let Some(revision) = self.revision
        {
            // Only skipped: held in memory, announced here, written later.
            let since = self.skipped.map_or(started, |(_, since)| since);
            self.skipped = Some((applied.checkpoint, since));
            held = true;
            super::wait::announce_skipped(
                &self.database,
                self.name(),
                revision,
                applied.checkpoint.cursor,
            );
        }
        if let Some(last) = applied.ack {
            // (With a `skip_flush` near `ack_wait`, held messages would be redelivered.)
            if held && self.config.skip_flush < self.config.ack_wait / 2 {
                // Acked with the write of this progress (at most `skip_flush` on),
                // or by the next batch's ack: on skip-only runners, per-batch acks
                // were most of what nats-server did for them.
                self.unacked = Some(messages[last].clone());
            } else {
                self.unacked = None;
                self.ack(&messages[last]).await;
            }
            if let Ok(info) = messages[last].info() {
                #[allow(clippy::cast_precision_loss)] // lag far below 2^52
                metrics::gauge!(METRIC_LAG, "projection" => self.name()).set(info.pending as f64);
            }
        }
        metrics::counter!(METRIC_APPLIED, "projection" => self.name())
            .increment(applied.applied as u64);
        metrics::histogram!(METRIC_BATCH_SECONDS, "projection" => self.name())
            .record(started.elapsed().as_secs_f64());
        if applied.gap {
            tracing::warn!(
                projection = self.name(),
                "the consumer skipped ahead of the checkpoint; reopening it there"
            );
            self.consumer = None;
        }
        if let Some((index, error)) = poison {
            self.consumer = None;
            self.forget();
            return Err(self.stop(&messages[index], &error).await);
        }
        if self
            .skipped
            .is_some_and(|(_, since)| since.elapsed() >= self.config.skip_flush)
        {
            self.write_skipped().await?;
        }
        Ok(applied.advanced)
    }

    /// Forgets the checkpoint as remembered and any unwritten progress: the next
    /// batch is judged against the row (a crash would forget the same). Messages not
    /// acked are redelivered (after `ack_wait`, or by a reopened consumer) and judged
    /// again.
    fn forget(&mut self) {
        self.known = None;
        self.revision = None;
        self.skipped = None;
        self.unacked = None;
    }

    /// Acks `message` and, under `AckPolicy::All`, every message before it.
    async fn ack(&self, message: &Message) {
        if let Err(e) = message.ack().await {
            // The commit stands; the batch will be redelivered and skipped.
            tracing::warn!(error = %e, projection = self.name(), "ack failed");
        }
    }

    /// Writes the progress held over skipped messages, if any. The row must still
    /// hold the checkpoint this runner wrote; if it moved, the memory is dropped and
    /// the next batch is judged against the row.
    fn write_skipped(&mut self) -> futures::future::BoxFuture<'_, Result<(), RunError>> {
        async move {
            let (Some((to, _)), Some(from)) = (self.skipped, self.known) else {
                return Ok(());
            };
            let result = async {
                let mut tx = self
                    .pool
                    .begin_with("BEGIN; SET LOCAL synchronous_commit TO off")
                    .await?;
                let revision =
                    checkpoint::advance_from(&mut tx, self.name(), &from, &to, false).await?;
                tx.commit().await?;
                anyhow::Ok(revision)
            }
            .await;
            match result {
                Ok(Some(revision)) => {
                    self.known = Some(to);
                    self.revision = Some(revision);
                    self.skipped = None;
                    if let Some(message) = self.unacked.take() {
                        self.ack(&message).await;
                    }
                    Ok(())
                }
                Ok(None) => {
                    tracing::debug!(
                        projection = self.name(),
                        "checkpoint moved elsewhere; dropping the skipped progress"
                    );
                    self.forget();
                    Ok(())
                }
                Err(e) => {
                    self.consumer = None;
                    self.forget();
                    Err(RunError::Unexpected(e))
                }
            }
        }
        .boxed()
    }

    /// Records a poison event and returns the error to report.
    async fn stop(&self, message: &Message, error: &anyhow::Error) -> RunError {
        let stream_sequence = message.info().map(|i| i.stream_sequence).ok();
        let event_id = message
            .headers
            .as_ref()
            .and_then(|h| h.get(headers::EVENT_ID))
            .and_then(|v| v.as_str().parse().ok());
        let text = format!("{error:#}");
        tracing::error!(
            projection = self.name(),
            stream_sequence,
            ?event_id,
            error = %text,
            error_code = "projection_poison_event",
            "projection stopped on an event it cannot apply"
        );
        metrics::counter!(METRIC_POISON, "projection" => self.name()).increment(1);
        if let Err(e) = checkpoint::record_failure(
            &self.pool,
            self.name(),
            &text,
            stream_sequence.unwrap_or_default(),
            event_id,
        )
        .await
        {
            tracing::error!(error = format!("{e:#}"), "could not record the failure");
        }
        RunError::Stopped {
            name: self.name().to_owned(),
            stream_sequence,
            error: text,
        }
    }

    /// One transaction over `messages`: judge each against the locked checkpoint,
    /// apply, move the checkpoint, commit.
    fn try_apply<'a>(
        &'a self,
        messages: &'a [Message],
        one_by_one: bool,
    ) -> futures::future::BoxFuture<'a, Result<Applied, Attempt>> {
        // Boxed with an explicit `Send`: the compiler cannot prove it for the
        // higher-ranked borrows in here when the runner is spawned.
        async move { self.try_apply_inner(messages, one_by_one).await }.boxed()
    }

    async fn try_apply_inner(
        &self,
        messages: &[Message],
        one_by_one: bool,
    ) -> Result<Applied, Attempt> {
        let name = self.name();
        // Judge against the checkpoint this runner last wrote, and what it skipped
        // since, when it has one (the write below checks the row still holds it);
        // otherwise read it, locked, inside the transaction.
        let Some(known) = self.known else {
            return self.try_apply_locked(messages, one_by_one).await;
        };
        let start = self.skipped.map_or(known, |(skipped, _)| skipped);
        let (mut result, batch) = self.judge(messages, start)?;
        if result.checkpoint == start {
            // Only redeliveries (or a gap right away): nothing to write.
            return Ok(result);
        }
        if batch.is_empty() && !self.config.skip_flush.is_zero() && self.revision.is_some() {
            // Only skipped events: held in memory (see the module docs).
            return Ok(result);
        }
        // The read model and its checkpoint are derived data that commit together: a
        // crash may lose the last few commits, never split them, and the consumer is
        // reopened from whatever checkpoint survived. So skip the wait for fsync.
        let mut tx = self
            .pool
            .begin_with("BEGIN; SET LOCAL synchronous_commit TO off")
            .await
            .map_err(anyhow::Error::from)?;
        // Move the checkpoint first: this is what checks the judgement above and takes
        // the row's lock for the rest of the transaction.
        let changed = !batch.is_empty();
        let Some(revision) =
            checkpoint::advance_from(&mut tx, name, &known, &result.checkpoint, changed).await?
        else {
            return Err(Attempt::Moved);
        };
        self.apply_judged(&mut tx, batch, one_by_one).await?;
        tx.commit().await?;
        result.written = Some(revision);
        Ok(result)
    }

    /// [`try_apply`](Self::try_apply) judging against the row, read locked.
    async fn try_apply_locked(
        &self,
        messages: &[Message],
        one_by_one: bool,
    ) -> Result<Applied, Attempt> {
        let name = self.name();
        let version = self.projection.version();
        let mut tx = self
            .pool
            .begin_with("BEGIN; SET LOCAL synchronous_commit TO off")
            .await
            .map_err(anyhow::Error::from)?;
        let Some((start, state)) = checkpoint::read(&mut tx, name, true).await? else {
            return Err(Attempt::Fatal(RunError::Unexpected(anyhow::anyhow!(
                "projection {name} has no checkpoint"
            ))));
        };
        if start.version != version {
            return Err(Attempt::Fatal(RunError::Superseded {
                name: name.to_owned(),
                version,
                live: start.version,
            }));
        }
        if let ProjectionState::Failed {
            error,
            stream_sequence,
            ..
        } = state
        {
            return Err(Attempt::Fatal(RunError::Stopped {
                name: name.to_owned(),
                stream_sequence,
                error,
            }));
        }
        let (mut result, batch) = self.judge(messages, start)?;
        if result.checkpoint == start {
            tx.rollback().await?;
            return Ok(result);
        }
        let revision =
            checkpoint::advance(&mut tx, name, &result.checkpoint, !batch.is_empty()).await?;
        self.apply_judged(&mut tx, batch, one_by_one).await?;
        tx.commit().await?;
        result.written = Some(revision);
        Ok(result)
    }

    /// Judges every message against `checkpoint`: redeliveries are skipped, the
    /// successor moves it (decoded for applying when the projection reads its
    /// aggregate type), anything further ahead is a gap. Returns the result (with the
    /// checkpoint the messages lead to, nothing written) and the events to apply.
    fn judge(
        &self,
        messages: &[Message],
        mut checkpoint: Checkpoint,
    ) -> Result<(Applied, Vec<(usize, EventEnvelope)>), Attempt> {
        let mut result = Applied {
            checkpoint,
            written: None,
            advanced: 0,
            applied: 0,
            ack: None,
            gap: false,
        };
        let mut batch: Vec<(usize, EventEnvelope)> = Vec::new();
        for (index, message) in messages.iter().enumerate() {
            let sequence = message
                .info()
                .map_err(|e| anyhow::anyhow!("message without jetstream info: {e}"))?
                .stream_sequence;
            if sequence <= checkpoint.stream_sequence {
                // A redelivery of something already applied.
                result.ack = Some(index);
                continue;
            }
            if sequence != checkpoint.stream_sequence + 1 {
                result.gap = true;
                break;
            }
            // Borrowed, not cloned: every runner judges every message of the stream.
            let no_headers = async_nats::HeaderMap::new();
            let headers_map = message.headers.as_ref().unwrap_or(&no_headers);
            let cursor = match CommitPosition::from_headers(headers_map) {
                Ok(cursor) => cursor,
                Err(error) => return Err(Attempt::Poison { index, error }),
            };
            if cursor > checkpoint.cursor {
                let aggregate_type = headers_map
                    .get(headers::AGGREGATE_TYPE)
                    .map_or("", |v| v.as_str());
                if reads(&*self.projection, aggregate_type) {
                    match decode_message(message) {
                        Ok(event) => batch.push((index, event)),
                        Err(error) => return Err(Attempt::Poison { index, error }),
                    }
                }
                checkpoint.cursor = cursor;
            }
            checkpoint.stream_sequence = sequence;
            result.advanced += 1;
            result.ack = Some(index);
        }
        result.applied = batch.len();
        result.checkpoint = checkpoint;
        Ok((result, batch))
    }

    /// Hands the judged events to the projection inside the caller's transaction.
    async fn apply_judged(
        &self,
        tx: &mut sqlx::PgConnection,
        batch: Vec<(usize, EventEnvelope)>,
        one_by_one: bool,
    ) -> Result<(), Attempt> {
        if one_by_one {
            for (index, event) in &batch {
                if let Err(error) = self.projection.apply(&mut Conn::Postgres(tx), event).await {
                    return Err(Attempt::Poison {
                        index: *index,
                        error: error.context(describe(event)),
                    });
                }
            }
        } else if !batch.is_empty() {
            let events: Vec<EventEnvelope> = batch.into_iter().map(|(_, e)| e).collect();
            if let Err(error) = self
                .projection
                .apply_batch(&mut Conn::Postgres(tx), &events)
                .await
            {
                return Err(Attempt::Batch(error));
            }
        }
        Ok(())
    }

    /// Runs until `shutdown` resolves: prepares (building from the event store when
    /// needed), then applies messages as they arrive, in batches of whatever is
    /// waiting. A stopped projection waits for `retry`; a superseded one returns.
    ///
    /// # Errors
    /// [`RunError::Superseded`] when another version is live.
    #[tracing::instrument(skip_all, fields(projection = self.projection.name(), version = self.projection.version()))]
    pub async fn run(mut self, shutdown: impl Future<Output = ()> + Send) -> Result<(), RunError> {
        tokio::pin!(shutdown);
        loop {
            let outcome = tokio::select! {
                () = &mut shutdown => return Ok(()),
                outcome = self.consume() => outcome,
            };
            match outcome {
                Err(e @ RunError::Superseded { .. }) => return Err(e),
                Err(RunError::Stopped { .. }) => {
                    tokio::select! {
                        () = &mut shutdown => return Ok(()),
                        () = tokio::time::sleep(self.config.failed_poll) => {}
                    }
                }
                Err(RunError::Unexpected(e)) => {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "projection round failed; resuming from the checkpoint"
                    );
                    tokio::select! {
                        () = &mut shutdown => return Ok(()),
                        () = tokio::time::sleep(self.config.error_backoff) => {}
                    }
                }
                Ok(()) => {}
            }
        }
    }

    /// Consumes until the consumer must be reopened (`Ok`) or an error.
    fn consume<'a>(&'a mut self) -> futures::future::BoxFuture<'a, Result<(), RunError>> {
        async move { self.consume_inner().await }.boxed()
    }

    async fn consume_inner(&mut self) -> Result<(), RunError> {
        self.prepare().await?;
        let consumer = self.consumer.clone().context("consumer opened")?;
        let mut stream = consumer
            .stream()
            .max_messages_per_batch(self.config.batch_size)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .map_err(|e| anyhow::anyhow!(e).context("open the message stream"))?;
        loop {
            let next = match self.skipped {
                // Progress held over skipped messages is written once it is
                // `skip_flush` old, if nothing to apply carries it first.
                Some((_, since)) => {
                    let due = tokio::time::Instant::from_std(since + self.config.skip_flush);
                    tokio::select! {
                        next = stream.next() => next,
                        () = tokio::time::sleep_until(due) => {
                            self.write_skipped().await?;
                            continue;
                        }
                    }
                }
                None => stream.next().await,
            };
            let Some(first) = next else {
                self.consumer = None;
                return Ok(());
            };
            let mut batch = vec![first.map_err(|e| anyhow::anyhow!(e).context("receive"))?];
            // Whatever else is already here joins the batch: batches grow with load
            // and a lone event is applied at once; a runner that wrote less than
            // `min_batch_interval` ago gathers until then.
            let gather_until = self
                .last_write
                .map(|at| tokio::time::Instant::from_std(at + self.config.min_batch_interval));
            while batch.len() < self.config.batch_size {
                let next = match stream.next().now_or_never() {
                    Some(next) => next,
                    None => match gather_until {
                        Some(until) if tokio::time::Instant::now() < until => {
                            match tokio::time::timeout_at(until, stream.next()).await {
                                Ok(next) => next,
                                Err(_) => break,
                            }
                        }
                        _ => break,
                    },
                };
                match next {
                    Some(message) => {
                        batch.push(message.map_err(|e| anyhow::anyhow!(e).context("receive"))?);
                    }
                    None => break,
                }
            }
            self.apply_messages(&batch).await?;
            if self.consumer.is_none() {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod infra_tests {
    use serde_json::Value;

    use super::*;

    #[test]
    fn infra_consumer_definitions_mirror_the_code() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../infra/nats/projection-consumers.json"
        );
        let layout = StreamLayout::new("emporium").unwrap();
        if std::env::var_os("UPDATE_SCHEMAS").is_some() {
            let consumers: Vec<Value> = crate::projection::all()
                .iter()
                .map(|p| {
                    let name = consumer_name(&layout, p.as_ref());
                    serde_json::to_value(consumer_config(
                        &name,
                        p.as_ref(),
                        1,
                        RunnerConfig::default().ack_wait,
                    ))
                    .unwrap()
                })
                .collect();
            let doc = serde_json::json!({
                "stream": layout.stream_name(),
                "note": "One durable pull consumer per projection version, as ProjectionRunner creates them for the default prefix. The runner sets opt_start_seq to the projection's checkpoint + 1; 1 is shown.",
                "consumers": consumers,
            });
            std::fs::write(path, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
        }
        let infra: Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("infra file")).unwrap();
        let consumers = infra["consumers"].as_array().expect("consumers list");
        let projections = crate::projection::all();
        assert_eq!(
            consumers.len(),
            projections.len(),
            "one consumer per projection"
        );
        for projection in projections {
            let name = consumer_name(&layout, projection.as_ref());
            let code = serde_json::to_value(consumer_config(
                &name,
                projection.as_ref(),
                1,
                RunnerConfig::default().ack_wait,
            ))
            .unwrap();
            let mirrored = consumers
                .iter()
                .find(|c| c["durable_name"] == Value::String(name.clone()))
                .unwrap_or_else(|| panic!("{name} missing from {path}"));
            for key in [
                "durable_name",
                "description",
                "deliver_policy",
                "opt_start_seq",
                "ack_policy",
                "ack_wait",
                "max_ack_pending",
            ] {
                assert_eq!(
                    mirrored.get(key),
                    code.get(key),
                    "{name}: field `{key}` differs"
                );
            }
        }
    }
}
