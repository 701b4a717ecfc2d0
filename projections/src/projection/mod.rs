//! The projection framework: one generic mechanism that turns the event stream into
//! PostgreSQL read models.
//!
//! A [`Projection`] names itself, declares a version, the tables it owns (and their
//! DDL) and the aggregate types it reads, and applies one event at a time inside a
//! transaction it is handed. Everything else is the framework's:
//!
//! - [`runner::ProjectionRunner`] consumes the stream through a durable JetStream pull
//!   consumer, applies a batch and writes the checkpoint in **one** PostgreSQL
//!   transaction, commits, then acks. The checkpoint (the last applied
//!   [`CommitPosition`] and its stream sequence) is the truth; the consumer is only a
//!   hint, recreated from the checkpoint whenever it disagrees. A redelivered message is
//!   therefore skipped, a gap is never jumped, and a poison event stops the projection
//!   with its error recorded ([`checkpoint::retry`] resumes it).
//! - [`rebuild::Rebuild`] builds a version from the event store into a shadow schema
//!   and swaps its tables in atomically; a projection's first start is a rebuild from
//!   version 0, so read-model tables need no migrations.
//! - [`wait::CheckpointWatch`] lets a caller wait, bounded, until a projection has
//!   applied a given commit (read-your-writes).
//! - `embedded` (feature `sqlite`) is the embedded mode's counterpart: read models
//!   in their own SQLite file, a runner per projection over an
//!   [`EventFeed`](crate::feed::EventFeed) applying a batch and moving the checkpoint
//!   in one SQLite transaction, builds in one transaction, and in-process
//!   announcements to the same `CheckpointWatch`.

pub mod checkpoint;
#[cfg(feature = "sqlite")]
pub mod embedded;
pub mod rebuild;
pub mod runner;
pub mod wait;

use std::sync::{Arc, OnceLock};

use anyhow::Context as _;
use serde::de::DeserializeOwned;

use crate::envelope::EventEnvelope;
use crate::sql::Conn;

pub use checkpoint::{Checkpoint, ProjectionState, ProjectionStatus, retry, status};
pub use rebuild::Rebuild;
pub use runner::{ProjectionRunner, RunError, RunnerConfig};
pub use wait::{CheckpointPublisher, CheckpointWatch, WaitError};

/// Counter: events applied, per projection (`projection` label).
pub const METRIC_APPLIED: &str = "emporium_projection_applied_total";
/// Counter: poison events that stopped a projection.
pub const METRIC_POISON: &str = "emporium_projection_poison_total";
/// Gauge: stream messages the projection has not applied yet.
pub const METRIC_LAG: &str = "emporium_projection_lag_events";
/// Histogram: time to apply and commit one batch.
pub const METRIC_BATCH_SECONDS: &str = "emporium_projection_batch_seconds";
/// Histogram: stream messages per runner transaction (applied and skipped).
pub const METRIC_BATCH_MESSAGES: &str = "emporium_projection_batch_messages";
/// Counter: events applied by rebuilds.
pub const METRIC_REBUILT: &str = "emporium_projection_rebuilt_total";

/// Builds one read model from events.
///
/// `apply` runs inside the transaction that also writes the checkpoint, so it must do
/// all its work through the connection it is given and must not commit. It sees the
/// live tables while running and the shadow tables during a rebuild (the framework
/// sets `search_path`), so its SQL names tables unqualified.
#[async_trait::async_trait]
pub trait Projection: Send + Sync + 'static {
    /// A stable name: lowercase letters, digits and `_`.
    fn name(&self) -> &'static str;

    /// Bumped whenever the tables or what `apply` writes change; a new version is
    /// rebuilt from the event store and swapped in.
    fn version(&self) -> u32;

    /// The tables this projection owns (unqualified). No other projection writes them.
    fn tables(&self) -> &'static [&'static str];

    /// The DDL creating [`tables`](Self::tables) and their indexes, unqualified: it
    /// runs with the target schema first on the `search_path`.
    fn schema(&self) -> &'static str;

    /// The same tables for SQLite (the embedded mode), when they differ from
    /// [`schema`](Self::schema) or are ready at all: `None` means this projection has
    /// no SQLite form yet.
    fn sqlite_schema(&self) -> Option<&'static str> {
        None
    }

    /// The aggregate types whose events this projection reads; the rest are skipped
    /// without being decoded.
    fn aggregate_types(&self) -> &'static [&'static str];

    /// Applies one event (already upcast to the current payload version).
    ///
    /// # Errors
    /// Any error stops the projection at this event (a poison event); nothing of the
    /// batch from this event on is committed.
    async fn apply(&self, conn: &mut Conn<'_>, event: &EventEnvelope) -> anyhow::Result<()>;

    /// Applies several events in order, with the same result as [`apply`](Self::apply)
    /// on each in turn. The default does exactly that; a projection overrides it to
    /// fold a batch into fewer statements (rebuilds and backlogs are bound by
    /// statement round trips). When it fails, the framework applies the batch again
    /// one event at a time, so a poison event is still pinned to itself.
    ///
    /// # Errors
    /// Any error; see above.
    async fn apply_batch(
        &self,
        conn: &mut Conn<'_>,
        events: &[EventEnvelope],
    ) -> anyhow::Result<()> {
        for event in events {
            self.apply(conn, event).await?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for dyn Projection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projection")
            .field("name", &self.name())
            .field("version", &self.version())
            .finish()
    }
}

/// Whether `projection` reads events of `aggregate_type`.
pub(crate) fn reads(projection: &dyn Projection, aggregate_type: &str) -> bool {
    projection.aggregate_types().contains(&aggregate_type)
}

/// Decodes an event's payload into its domain enum.
///
/// # Errors
/// When the payload does not match the enum (a poison event).
pub fn decode<E: DeserializeOwned>(event: &EventEnvelope) -> anyhow::Result<E> {
    E::deserialize(&event.payload).with_context(|| {
        format!(
            "decode {} {} v{} of {} {}",
            event.event_type,
            event.event_id,
            event.event_version,
            event.aggregate_type,
            event.aggregate_id
        )
    })
}

fn upcasters() -> &'static [emporium_domain::schema::Upcaster] {
    static TABLE: OnceLock<Vec<emporium_domain::schema::Upcaster>> = OnceLock::new();
    TABLE.get_or_init(emporium_domain::schema::upcasters)
}

/// Brings a stored payload to the current version with the domain's upcasters (the
/// relay publishes events as stored), chaining them as the event store does.
pub fn upcast(event: &mut EventEnvelope) {
    // Bounded: each step moves to another version and the chains are short.
    for _ in 0..16 {
        let Some(step) = upcasters().iter().find(|u| {
            u.aggregate_type == event.aggregate_type
                && u.event_type == event.event_type
                && u.from_version == event.event_version
        }) else {
            return;
        };
        let payload = std::mem::take(&mut event.payload);
        event.payload = (step.upcast)(payload);
        step.to_version.clone_into(&mut event.event_version);
    }
}

/// Every read-model projection of the platform, for the runners, the CLI and the
/// gateway.
#[must_use]
pub fn all() -> Vec<Arc<dyn Projection>> {
    crate::views::all()
}

/// The projection named `name`, from [`all`].
#[must_use]
pub fn by_name(name: &str) -> Option<Arc<dyn Projection>> {
    all().into_iter().find(|p| p.name() == name)
}

/// Checks a projection's name: it becomes part of schema and consumer names.
pub(crate) fn check_name(name: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !name.is_empty()
            && name.len() <= 40
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
        "projection name `{name}` must be 1 to 40 lowercase letters, digits or `_`"
    );
    Ok(())
}
