//! Database connection and migrations for the event store.

use anyhow::Context;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// Opens a connection pool without connecting yet, so a process can start (and report
/// itself not ready) while PostgreSQL is down.
///
/// # Errors
/// When the URL cannot be parsed.
pub fn connect_lazy(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = url.parse().context("parse database url")?;
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        // sqlx pings every connection it hands out by default: one extra round trip
        // per query. A broken connection fails its query instead, which callers
        // already handle.
        .test_before_acquire(false)
        .acquire_timeout(std::time::Duration::from_secs(3))
        .connect_lazy_with(options))
}

/// A pool of one lazily opened connection to `pool`'s server, named
/// `application_name`: for a `LISTEN` that must not hold (or wait for) one of the
/// pool's own connections.
#[must_use]
pub fn own_connection(pool: &PgPool, application_name: &str) -> PgPool {
    PgPoolOptions::new().max_connections(1).connect_lazy_with(
        pool.connect_options()
            .as_ref()
            .clone()
            .application_name(application_name),
    )
}

/// Applies the event store's pending migrations.
///
/// # Errors
/// When the database is unreachable or a migration fails.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    // Other crates (projections, gateway) keep their own migrations in the same
    // `_sqlx_migrations` table: theirs are not "missing" from ours.
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.set_ignore_missing(true);
    migrator
        .run(pool)
        .await
        .context("run event store migrations")
}

/// Creates the database named in `url` when it does not exist yet.
///
/// # Errors
/// When PostgreSQL is unreachable or the database cannot be created.
pub async fn ensure_database(url: &str) -> anyhow::Result<()> {
    use sqlx::migrate::MigrateDatabase;
    if !sqlx::Postgres::database_exists(url)
        .await
        .context("check that the database exists (is PostgreSQL running?)")?
    {
        sqlx::Postgres::create_database(url)
            .await
            .context("create the database")?;
        tracing::info!("created database");
    }
    Ok(())
}
