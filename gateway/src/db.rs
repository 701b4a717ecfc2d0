//! The gateway's own tables (sessions, one-time tokens) and the migration of the
//! whole database the gateway serves.

use anyhow::Context;
use futures::future::BoxFuture;
use sqlx::PgPool;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, Migrator};

/// The gateway's migrations (versions after 20261125000010), embedded at compile
/// time.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// A fixed list of migrations, as a source.
#[derive(Debug)]
struct Migrations(Vec<Migration>);

impl<'s> MigrationSource<'s> for Migrations {
    fn resolve(self) -> BoxFuture<'s, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async move { Ok(self.0) })
    }
}

/// Applies the event store's and the gateway's pending migrations, in version
/// order, ignoring applied migrations that neither knows (other crates' tables share
/// the migrations table).
///
/// # Errors
/// When the database is unreachable or a migration fails.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    let mut all: Vec<Migration> = emporium_commands::db::MIGRATOR
        .iter()
        .chain(MIGRATOR.iter())
        .cloned()
        .collect();
    all.sort_by_key(|m| m.version);
    let mut migrator = Migrator::new(Migrations(all))
        .await
        .context("collect migrations")?;
    migrator.set_ignore_missing(true);
    migrator.run(pool).await.context("run migrations")
}

/// Creates the database named in `url` when missing, then [`migrate`]s it.
///
/// # Errors
/// When PostgreSQL is unreachable, the database cannot be created, or a migration
/// fails.
pub async fn prepare(url: &str, pool: &PgPool) -> anyhow::Result<()> {
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
    migrate(pool).await
}
