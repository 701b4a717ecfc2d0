//! The gateway's own tables (sessions, one-time tokens) and the migration of the
//! whole database the gateway serves.

use anyhow::Context;
use sqlx::PgPool;

/// Applies every pending migration of the database the platform serves: the event
/// store's, the projections' and the gateway's own. They share `_sqlx_migrations`,
/// so each migrator ignores the others' entries.
///
/// # Errors
/// When the database is unreachable or a migration fails.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    emporium_commands::db::migrate(pool).await?;
    emporium_projections::migrate(pool).await?;
    let mut gateway = sqlx::migrate!("./migrations");
    gateway.set_ignore_missing(true);
    gateway.run(pool).await.context("run gateway migrations")
}

/// Creates the database named in `url` when missing, then [`migrate`]s it.
///
/// # Errors
/// When PostgreSQL is unreachable, the database cannot be created, or a migration
/// fails.
pub async fn prepare(url: &str, pool: &PgPool) -> anyhow::Result<()> {
    emporium_commands::db::ensure_database(url).await?;
    migrate(pool).await
}
