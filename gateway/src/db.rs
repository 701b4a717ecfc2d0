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

/// Opens (creating and migrating) the embedded mode's file for the gateway's own
/// tables (`gateway.db`: sessions, one-time tokens, e-mail templates and ledger), in
/// WAL mode. Its own file, not the event store's: a transaction here (a token
/// consumed, a mail being handed to SMTP) never holds up a command's commit.
///
/// # Errors
/// When the file cannot be created, opened or migrated.
#[cfg(feature = "sqlite")]
pub async fn open_local(path: &std::path::Path) -> anyhow::Result<sqlx::SqlitePool> {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("create the data directory {}", dir.display()))?;
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // A crash loses nothing (the WAL outlives the process); a power loss may roll
        // back the last sessions and tokens, which only signs people out.
        .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
        .busy_timeout(std::time::Duration::from_secs(30));
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .with_context(|| format!("open {}", path.display()))?;
    sqlx::migrate!("./migrations-sqlite")
        .run(&pool)
        .await
        .context("run the gateway's embedded migrations")?;
    Ok(pool)
}
