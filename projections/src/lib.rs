//! Emporium's event backbone.
//!
//! This crate owns the JetStream side of the platform: the stream layout (names and
//! subjects derived from a configurable prefix), the relay that publishes committed
//! events in commit order, and the projections that consume the stream to build read
//! models, search indexes and analytics, each writing its checkpoint in the same
//! transaction as its read-model change. [`feed`] is the seam for the embedded mode,
//! where projections read the (SQLite) store itself instead of a stream.
//!
//! It deliberately does **not** decide business rules (that is `domain`) or accept
//! commands (that is `commands`); it only reads the event store and the stream.

pub mod bus;
pub mod envelope;
pub mod feed;
pub mod projection;
pub mod relay;
pub use emporium_commands::{args, sql};
pub mod stream;
pub mod views;

use anyhow::Context as _;

/// The projections' own tables (checkpoints), embedded at compile time. They share
/// `_sqlx_migrations` with the event store's migrations (numbered after them), so
/// each migrator ignores the other's entries.
pub static MIGRATOR: sqlx::migrate::Migrator = {
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.ignore_missing = true;
    migrator
};

/// Applies the projections' pending migrations (after the event store's).
///
/// # Errors
/// When the database is unreachable or a migration fails.
pub async fn migrate(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    MIGRATOR
        .run(pool)
        .await
        .context("run projection migrations")
}
