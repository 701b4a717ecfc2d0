//! Command dispatch: load, decide, commit, with optimistic concurrency and bounded
//! retries for the commands that are safe to retry.

use std::collections::HashMap;
use std::time::Duration;

use cqrs_es::persist::{EventStoreAggregateContext, PersistedEventStore};
use cqrs_es::{AggregateContext, AggregateError, EventStore as _};
use emporium_domain::{Aggregate, DomainEvent as _, EventMetadata};
use sqlx::PgPool;

use crate::es::{Es, upcasters_for};
use crate::store::{Appended, EventStore, NewEvent, PgStore, UnitRow};

/// Why a command did not commit.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error> {
    /// The aggregate refused: a business rule is broken. Nothing was recorded.
    #[error(transparent)]
    Rejected(E),
    /// Another command changed the aggregate between load and commit (after the
    /// retries, where the command is retried). Nothing was recorded.
    #[error("{aggregate_type} {aggregate_id} was changed concurrently; try again")]
    Conflict {
        /// The aggregate's type.
        aggregate_type: &'static str,
        /// The aggregate's id.
        aggregate_id: String,
    },
    /// Infrastructure failed (database down, a stored event that no longer
    /// deserialises). Nothing was recorded.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// What a committed command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Events recorded (0 for an idempotent repeat).
    pub events: usize,
    /// The aggregate's sequence after the commit.
    pub last_sequence: usize,
    /// Global position of the last recorded event, for read-your-writes waits. `None`
    /// when nothing was recorded.
    pub position: Option<i64>,
}

/// An aggregate being decided on for a multi-aggregate unit of work: commands are
/// decided on `state` one after another ([`Draft::decide`]), their events kept until
/// the unit commits them all in one statement ([`Dispatcher::rows`],
/// [`EventStore::append_unit`]) and the dispatcher accepts the new state
/// ([`Dispatcher::accept`]). The starting state may be this process's cached guess:
/// a stale one makes the unit's commit conflict, and the caller then evicts
/// ([`Dispatcher::forget`]) and decides again on stored state.
#[derive(Debug, Clone)]
pub struct Draft<A: Aggregate> {
    aggregate_id: String,
    state: A,
    base_sequence: usize,
    snapshot: Option<usize>,
    pending: Vec<(A::Event, serde_json::Value)>,
}

impl<A: Aggregate> Draft<A> {
    /// The aggregate's id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.aggregate_id
    }

    /// The state with every decided command applied.
    #[must_use]
    pub fn state(&self) -> &A {
        &self.state
    }

    /// The events decided so far, not yet committed.
    #[must_use]
    pub fn events(&self) -> Vec<&A::Event> {
        self.pending.iter().map(|(e, _)| e).collect()
    }

    /// Decides `command` on the current state and applies its events; returns how
    /// many it produced (0: a no-op).
    ///
    /// # Errors
    /// The aggregate's refusal; nothing is kept then.
    pub fn decide(
        &mut self,
        command: A::Command,
        metadata: &EventMetadata,
    ) -> Result<usize, CommandError<A::Error>> {
        let events = self.state.handle(command).map_err(CommandError::Rejected)?;
        let meta = serde_json::to_value(metadata_map(metadata))
            .map_err(|e| CommandError::Unexpected(anyhow::Error::from(e)))?;
        for event in &events {
            self.state.apply(event);
        }
        let n = events.len();
        self.pending
            .extend(events.into_iter().map(|e| (e, meta.clone())));
        Ok(n)
    }
}

/// How the store loads aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loading {
    /// Replay every event (short streams).
    Replay,
    /// Start from a snapshot taken every `n` events, then replay the tail (long
    /// streams such as a busy SKU's inventory).
    Snapshot(usize),
}

/// Bounded retries on optimistic-concurrency conflicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Base of the exponential backoff between attempts (jittered).
    pub base_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 12,
            base_delay: Duration::from_millis(1),
        }
    }
}

/// Executes commands against one aggregate type.
///
/// Commands to the same aggregate take turns within the process (striped locks).
/// Aggregates are cached in memory after each commit, so
/// the next command to the same aggregate skips the load. The cache is only ever a
/// guess: the commit's optimistic-concurrency check is what decides, and a conflict
/// on a cached state (another process wrote meanwhile) evicts it and decides again on
/// freshly loaded state, exactly as a first attempt would have. A refusal or a no-op
/// decided on a cached state commits nothing, so no check can catch it: it too is
/// decided again on loaded state before it is answered.
///
/// `S` is the event store (see [`crate::store`]): PostgreSQL unless said otherwise.
pub struct Dispatcher<A: Aggregate, S: EventStore = PgStore> {
    store: PersistedEventStore<S::Repository, Es<A>>,
    backend: S,
    retry: RetryPolicy,
    loading: Loading,
    cache: quick_cache::sync::Cache<String, Cached<A>>,
    stripes: Box<[tokio::sync::Mutex<()>]>,
}

/// An aggregate as of its last commit by this process.
#[derive(Clone)]
struct Cached<A> {
    aggregate: A,
    sequence: usize,
    snapshot: Option<usize>,
}

/// Aggregates kept in memory per dispatcher.
const CACHE_CAPACITY: usize = 10_000;

/// Commands to one aggregate queue behind one of these locks within a process, so
/// they meet the cache instead of each other: optimistic concurrency then only has
/// to settle races between processes.
const STRIPES: usize = 256;

impl<A: Aggregate, S: EventStore> std::fmt::Debug for Dispatcher<A, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("aggregate_type", &A::TYPE)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl<A: Aggregate> Dispatcher<A, PgStore>
where
    A::Command: Clone,
{
    /// A dispatcher over the PostgreSQL `events` and `snapshots` tables.
    #[must_use]
    pub fn new(pool: PgPool, loading: Loading) -> Self {
        Self::over(PgStore::new(pool), loading)
    }
}

impl<A: Aggregate, S: EventStore> Dispatcher<A, S>
where
    A::Command: Clone,
{
    /// A dispatcher over `store`.
    #[must_use]
    pub fn over(store: S, loading: Loading) -> Self {
        let repo = store.repository();
        let backend = store;
        let store = match loading {
            Loading::Replay => PersistedEventStore::new_event_store(repo),
            Loading::Snapshot(n) => PersistedEventStore::new_snapshot_store(repo, n),
        }
        .with_upcasters(upcasters_for(A::TYPE));
        Self {
            store,
            backend,
            retry: RetryPolicy::default(),
            loading,
            cache: quick_cache::sync::Cache::new(CACHE_CAPACITY),
            stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }

    /// The event store.
    #[must_use]
    pub fn event_store(&self) -> &S {
        &self.backend
    }

    /// Replaces the retry policy.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Loads the aggregate's current state (the default state when it has no events).
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn load(&self, aggregate_id: &str) -> Result<A, CommandError<A::Error>> {
        let mut context = self
            .store
            .load_aggregate(aggregate_id)
            .await
            .map_err(|e| self.map_error(aggregate_id, e))?;
        Ok(context.aggregate().0.clone())
    }

    /// Loads the aggregate's current state from the store and remembers it as this
    /// process's latest guess (what [`Dispatcher::current`] answers next).
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn refresh(&self, aggregate_id: &str) -> Result<A, CommandError<A::Error>> {
        let mut context = self
            .store
            .load_aggregate(aggregate_id)
            .await
            .map_err(|e| self.map_error(aggregate_id, e))?;
        let aggregate = context.aggregate().0.clone();
        self.cache.insert(
            aggregate_id.to_owned(),
            Cached {
                aggregate: aggregate.clone(),
                sequence: context.current_sequence,
                snapshot: context.current_snapshot,
            },
        );
        Ok(aggregate)
    }

    /// The state this process last committed or loaded (no read), else
    /// [`Dispatcher::refresh`]. Only a guess when another process or dispatcher may
    /// have written since: for callers that refreshed it themselves moments ago and
    /// hold the aggregate's turn (the checkout's per-order run), a commit decided on
    /// it is still checked by optimistic concurrency.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn current(&self, aggregate_id: &str) -> Result<A, CommandError<A::Error>> {
        match self.cache.get(aggregate_id) {
            Some(cached) => Ok(cached.aggregate),
            None => self.refresh(aggregate_id).await,
        }
    }

    /// Remembers `aggregate_id` as never commanded (no read), unless this process
    /// already holds a state for it: for a caller that derived the id for a record it
    /// has just created itself. Only a guess as far as the store goes: a commit decided
    /// on it still names the sequence it expects, and a conflict forgets it.
    pub fn assume_new(&self, aggregate_id: &str) {
        if self.cache.get(aggregate_id).is_none() {
            self.cache.insert(
                aggregate_id.to_owned(),
                Cached {
                    aggregate: A::default(),
                    sequence: 0,
                    snapshot: None,
                },
            );
        }
    }

    /// A [`Draft`] of the aggregate from this process's latest state (cached, else
    /// loaded).
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn draft(&self, aggregate_id: &str) -> Result<Draft<A>, CommandError<A::Error>> {
        let cached = match self.cache.get(aggregate_id) {
            Some(cached) => cached,
            None => {
                self.refresh(aggregate_id).await?;
                match self.cache.get(aggregate_id) {
                    Some(cached) => cached,
                    None => {
                        // Evicted at once by a concurrent writer: read it again.
                        let mut context = self
                            .store
                            .load_aggregate(aggregate_id)
                            .await
                            .map_err(|e| self.map_error(aggregate_id, e))?;
                        Cached {
                            aggregate: context.aggregate().0.clone(),
                            sequence: context.current_sequence,
                            snapshot: context.current_snapshot,
                        }
                    }
                }
            }
        };
        Ok(Draft {
            aggregate_id: aggregate_id.to_owned(),
            state: cached.aggregate,
            base_sequence: cached.sequence,
            snapshot: cached.snapshot,
            pending: Vec::new(),
        })
    }

    /// The rows that commit `draft`'s decided events, or `None` when they would reach
    /// a snapshot (which a unit does not write: commit through
    /// [`Dispatcher::execute`] instead).
    ///
    /// # Errors
    /// When an event does not serialise.
    pub fn rows(&self, draft: &Draft<A>) -> anyhow::Result<Option<Vec<UnitRow>>> {
        let count = draft.pending.len();
        if let Loading::Snapshot(n) = self.loading
            && count > 0
            && count >= n - draft.base_sequence % n
        {
            return Ok(None);
        }
        let mut rows = Vec::with_capacity(count);
        for (i, (event, metadata)) in draft.pending.iter().enumerate() {
            rows.push(UnitRow {
                aggregate_type: A::TYPE,
                aggregate_id: draft.aggregate_id.clone(),
                sequence: i64::try_from(draft.base_sequence + i + 1)?,
                event: NewEvent {
                    event_type: event.event_type().to_owned(),
                    event_version: event.event_version().to_owned(),
                    payload: serde_json::to_value(event)?,
                },
                metadata: metadata.clone(),
            });
        }
        Ok(Some(rows))
    }

    /// After the unit holding `draft` committed: its state is this process's latest.
    pub fn accept(&self, draft: Draft<A>) {
        let sequence = draft.base_sequence + draft.pending.len();
        if draft.pending.is_empty() {
            return;
        }
        metrics::counter!("emporium_commands_committed_total", "aggregate" => A::TYPE).increment(1);
        self.cache.insert(
            draft.aggregate_id,
            Cached {
                aggregate: draft.state,
                sequence,
                snapshot: draft.snapshot,
            },
        );
    }

    /// After the unit holding a draft of `aggregate_id` conflicted: forget the guess.
    pub fn forget(&self, aggregate_id: &str) {
        self.evict(aggregate_id);
    }

    /// Executes `command` once. A concurrent change is reported as
    /// [`CommandError::Conflict`].
    ///
    /// # Errors
    /// [`CommandError`]: rejected, conflict, or unexpected.
    #[tracing::instrument(skip_all, fields(aggregate_type = A::TYPE, aggregate_id))]
    pub async fn execute(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &EventMetadata,
    ) -> Result<Committed, CommandError<A::Error>> {
        self.execute_keeping(aggregate_id, command, metadata, false)
            .await
            .map(|(committed, _)| committed)
    }

    /// [`Dispatcher::execute`], answering also the aggregate's state right after the
    /// command: the state its events were appended to, with them applied (for an
    /// idempotent repeat, the stored state it was decided on). A caller can answer
    /// from it at once instead of waiting for a read model.
    ///
    /// # Errors
    /// As [`Dispatcher::execute`].
    #[tracing::instrument(skip_all, fields(aggregate_type = A::TYPE, aggregate_id))]
    pub async fn execute_with_state(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &EventMetadata,
    ) -> Result<(Committed, A), CommandError<A::Error>> {
        let kept = self
            .execute_keeping(aggregate_id, command, metadata, true)
            .await?;
        Self::with_state(kept)
    }

    /// The state a `keep: true` execution answered (it always answers one).
    fn with_state(
        (committed, state): (Committed, Option<A>),
    ) -> Result<(Committed, A), CommandError<A::Error>> {
        let state = state.ok_or_else(|| {
            CommandError::Unexpected(anyhow::anyhow!("{} state was not kept", A::TYPE))
        })?;
        Ok((committed, state))
    }

    async fn execute_keeping(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &EventMetadata,
        keep: bool,
    ) -> Result<(Committed, Option<A>), CommandError<A::Error>> {
        let _turn = self.stripe(aggregate_id).lock().await;
        let cached = self.cache.get(aggregate_id);
        let from_cache = cached.is_some();
        let first = self
            .execute_on(aggregate_id, cached, command.clone(), metadata, keep)
            .await;
        match first {
            // A commit from the cache that lost to another writer: the cached state
            // was stale, so decide again on the stored state. A refusal or a no-op
            // decided on cached state may be stale too (another process may have
            // changed what the rule looks at) without any commit to notice it, so it
            // is only believed once the stored state agrees.
            Err(CommandError::Conflict { .. } | CommandError::Rejected(_))
            | Ok((Committed { events: 0, .. }, _))
                if from_cache =>
            {
                self.evict(aggregate_id);
                self.execute_on(aggregate_id, None, command, metadata, keep)
                    .await
            }
            other => other,
        }
    }

    async fn execute_on(
        &self,
        aggregate_id: &str,
        cached: Option<Cached<A>>,
        command: A::Command,
        metadata: &EventMetadata,
        keep: bool,
    ) -> Result<(Committed, Option<A>), CommandError<A::Error>> {
        let mut context = match cached {
            Some(cached) => EventStoreAggregateContext {
                aggregate_id: aggregate_id.to_owned(),
                aggregate: Es(cached.aggregate),
                current_sequence: cached.sequence,
                current_snapshot: cached.snapshot,
            },
            None => self
                .store
                .load_aggregate(aggregate_id)
                .await
                .map_err(|e| self.map_error(aggregate_id, e))?,
        };
        let events = context
            .aggregate()
            .0
            .handle(command)
            .map_err(CommandError::Rejected)?;
        if events.is_empty() {
            let last_sequence = context.current_sequence;
            return Ok((
                Committed {
                    events: 0,
                    last_sequence,
                    position: None,
                },
                keep.then_some(context.aggregate.0),
            ));
        }
        let count = events.len();
        let mut next_state = context.aggregate.0.clone();
        for event in &events {
            next_state.apply(event);
        }
        let next_snapshot = match self.loading {
            // cqrs-es takes a snapshot when the commit reaches the next multiple of n,
            // and numbers snapshots 1, 2, ...
            Loading::Snapshot(n) if count >= n - context.current_sequence % n => {
                Some(context.current_snapshot.map_or(1, |s| s + 1))
            }
            _ => context.current_snapshot,
        };
        // No snapshot due: one INSERT statement (no BEGIN/COMMIT, the position comes
        // back with it), where the store has that path. A snapshot goes through
        // cqrs-es, which writes it in the events' transaction.
        let appended = if next_snapshot == context.current_snapshot {
            let rows = events
                .iter()
                .map(|e| {
                    Ok(NewEvent {
                        event_type: e.event_type().to_owned(),
                        event_version: e.event_version().to_owned(),
                        payload: serde_json::to_value(e)?,
                    })
                })
                .collect::<Result<Vec<_>, serde_json::Error>>()
                .map_err(|e| CommandError::Unexpected(anyhow::Error::from(e)))?;
            let metadata = serde_json::to_value(metadata_map(metadata))
                .map_err(|e| CommandError::Unexpected(anyhow::Error::from(e)))?;
            self.backend
                .append(
                    A::TYPE,
                    aggregate_id,
                    context.current_sequence + 1,
                    &rows,
                    &metadata,
                )
                .await
                .inspect_err(|_| self.evict(aggregate_id))
                .map_err(CommandError::Unexpected)?
        } else {
            None
        };
        let (last_sequence, position) = match appended {
            Some(Appended::At(position)) => (context.current_sequence + count, Some(position)),
            Some(Appended::Conflict) => {
                self.evict(aggregate_id);
                return Err(self.map_error(aggregate_id, AggregateError::AggregateConflict));
            }
            None => {
                let committed = self
                    .store
                    .commit(
                        events.into_iter().map(crate::es::EsEvent).collect(),
                        context,
                        metadata_map(metadata),
                    )
                    .await;
                match committed {
                    Ok(envelopes) => (envelopes.last().map_or(0, |e| e.sequence), None),
                    Err(e) => {
                        self.evict(aggregate_id);
                        return Err(self.map_error(aggregate_id, e));
                    }
                }
            }
        };
        let kept = keep.then(|| next_state.clone());
        self.cache.insert(
            aggregate_id.to_owned(),
            Cached {
                aggregate: next_state,
                sequence: last_sequence,
                snapshot: next_snapshot,
            },
        );
        let position = match position {
            Some(p) => p,
            None => self.position_of(aggregate_id, last_sequence).await?,
        };
        metrics::counter!("emporium_commands_committed_total", "aggregate" => A::TYPE).increment(1);
        Ok((
            Committed {
                events: count,
                last_sequence,
                position: Some(position),
            },
            kept,
        ))
    }

    fn stripe(&self, aggregate_id: &str) -> &tokio::sync::Mutex<()> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(aggregate_id);
        // The modulo keeps the value below STRIPES, so it fits in usize.
        let index = usize::try_from(hash % STRIPES as u64).unwrap_or(0);
        &self.stripes[index]
    }

    fn evict(&self, aggregate_id: &str) {
        self.cache.remove(aggregate_id);
    }

    /// Executes `command`, retrying on conflicts up to the policy's attempts with a
    /// jittered exponential backoff. Only for commands whose decision may safely be
    /// re-made against newer state (a stock reservation, say): each attempt reloads the
    /// aggregate and decides again.
    ///
    /// # Errors
    /// [`CommandError`]; `Conflict` once the attempts are used up.
    pub async fn execute_retrying(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &EventMetadata,
    ) -> Result<Committed, CommandError<A::Error>> {
        self.retrying(aggregate_id, command, metadata, false)
            .await
            .map(|(committed, _)| committed)
    }

    /// [`Dispatcher::execute_retrying`] answering the state after the command, as
    /// [`Dispatcher::execute_with_state`] does.
    ///
    /// # Errors
    /// As [`Dispatcher::execute_retrying`].
    pub async fn execute_retrying_with_state(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &EventMetadata,
    ) -> Result<(Committed, A), CommandError<A::Error>> {
        let kept = self.retrying(aggregate_id, command, metadata, true).await?;
        Self::with_state(kept)
    }

    async fn retrying(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &EventMetadata,
        keep: bool,
    ) -> Result<(Committed, Option<A>), CommandError<A::Error>> {
        let mut attempt = 1;
        loop {
            match self
                .execute_keeping(aggregate_id, command.clone(), metadata, keep)
                .await
            {
                Err(CommandError::Conflict { .. }) if attempt < self.retry.attempts => {
                    metrics::counter!("emporium_command_retries_total", "aggregate" => A::TYPE)
                        .increment(1);
                    tokio::time::sleep(backoff(self.retry.base_delay, attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn map_error(&self, aggregate_id: &str, e: AggregateError<A::Error>) -> CommandError<A::Error> {
        match e {
            AggregateError::UserError(e) => CommandError::Rejected(e),
            AggregateError::AggregateConflict => {
                metrics::counter!("emporium_command_conflicts_total", "aggregate" => A::TYPE)
                    .increment(1);
                CommandError::Conflict {
                    aggregate_type: A::TYPE,
                    aggregate_id: aggregate_id.to_owned(),
                }
            }
            AggregateError::DatabaseConnectionError(e) => CommandError::Unexpected(
                anyhow::anyhow!(e).context(format!("event store unavailable ({})", A::TYPE)),
            ),
            AggregateError::DeserializationError(e) => CommandError::Unexpected(
                anyhow::anyhow!(e)
                    .context(format!("stored {} event does not deserialise", A::TYPE)),
            ),
            AggregateError::UnexpectedError(e) => CommandError::Unexpected(
                anyhow::anyhow!(e).context(format!("event store failed ({})", A::TYPE)),
            ),
        }
    }

    async fn position_of(
        &self,
        aggregate_id: &str,
        sequence: usize,
    ) -> Result<i64, CommandError<A::Error>> {
        self.backend
            .position_of(A::TYPE, aggregate_id, sequence)
            .await
            .map_err(CommandError::Unexpected)
    }
}

/// Exponential backoff with full jitter, capped at 64 x base.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let ceiling = base * 2_u32.pow(attempt.min(6));
    // Jitter from the clock's low bits: good enough to de-synchronise retriers,
    // and avoids a dependency on a random number generator here.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let fraction = f64::from(nanos % 1_000) / 1_000.0;
    ceiling.mul_f64(fraction.max(0.1))
}

/// Flattens event metadata into cqrs-es's string map.
#[must_use]
pub fn metadata_map(m: &EventMetadata) -> HashMap<String, String> {
    let mut map = HashMap::with_capacity(6);
    map.insert("correlation_id".to_owned(), m.correlation_id.to_string());
    map.insert("causation_id".to_owned(), m.causation_id.to_string());
    map.insert(
        "actor".to_owned(),
        serde_json::to_string(&m.actor).unwrap_or_default(),
    );
    map.insert("occurred_at".to_owned(), m.occurred_at.to_rfc3339());
    if let Some(tp) = &m.traceparent {
        map.insert("traceparent".to_owned(), tp.clone());
    }
    if let Some(ts) = &m.tracestate {
        map.insert("tracestate".to_owned(), ts.clone());
    }
    map
}
