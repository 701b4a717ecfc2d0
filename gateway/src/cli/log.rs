//! `emporium events export|import`: the event log as a JSON Lines file
//! (`emporium_commands::log`), from and into the PostgreSQL store of the configuration
//! or, with `--sqlite FILE`, the embedded SQLite store.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use emporium_commands::PgStore;
use emporium_commands::log::{self, ImportError, ImportOptions, LogSummary};

use super::CliError;
use super::backbone::postgres;
use crate::config::Settings;

/// `emporium events export --out FILE [--sqlite DB]`.
pub(super) async fn export(
    settings: &Settings,
    out: &Path,
    sqlite: Option<&Path>,
) -> Result<(), CliError> {
    // Written beside the target and renamed into place once complete, so a failed
    // export never leaves a file that looks like one.
    let partial = PathBuf::from(format!("{}.partial", out.display()));
    let file = create_private(&partial)?;
    let mut writer = std::io::BufWriter::new(file);
    let summary = match sqlite {
        Some(path) => export_sqlite(path, &mut writer).await,
        None => {
            let pool = postgres(settings, 2).await?;
            ensure_event_store(&pool).await?;
            log::export(&PgStore::new(pool), &mut writer)
                .await
                .map_err(CliError::Failed)
        }
    };
    let summary = match summary {
        Ok(summary) => summary,
        Err(e) => {
            drop(writer);
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    writer
        .into_inner()
        .map_err(|e| anyhow::anyhow!("write {}: {}", partial.display(), e.error()))?
        .sync_all()
        .with_context(|| format!("sync {}", partial.display()))?;
    std::fs::rename(&partial, out)
        .with_context(|| format!("move the export into place at {}", out.display()))?;
    report("exported", &summary, out);
    Ok(())
}

/// `emporium events import --in FILE [--sqlite DB] [--allow-non-empty]`.
pub(super) async fn import(
    settings: &Settings,
    input: &Path,
    sqlite: Option<&Path>,
    allow_non_empty: bool,
) -> Result<(), CliError> {
    let file = std::fs::File::open(input)
        .with_context(|| format!("open {}", input.display()))
        .map_err(CliError::Usage)?;
    let reader = std::io::BufReader::new(file);
    let options = ImportOptions { allow_non_empty };
    let outcome = match sqlite {
        Some(path) => import_sqlite(path, reader, options).await?,
        None => {
            let pool = postgres(settings, 2).await?;
            crate::db::prepare(settings.database.url.expose(), &pool)
                .await
                .map_err(CliError::Failed)?;
            log::import(&PgStore::new(pool), reader, options).await
        }
    };
    match outcome {
        Ok(summary) => {
            report("imported", &summary, input);
            Ok(())
        }
        Err(e @ (ImportError::Malformed { .. } | ImportError::Incomplete(_))) => {
            Err(CliError::Failed(anyhow::Error::from(e).context(format!(
                "{} is not a complete event log",
                input.display()
            ))))
        }
        Err(ImportError::NotEmpty) => Err(CliError::Failed(anyhow::anyhow!(
            "the event store is not empty; import into an empty one, or pass --allow-non-empty to append"
        ))),
        Err(ImportError::Unexpected(e)) => Err(CliError::Failed(
            e.context("import failed; nothing was written"),
        )),
    }
}

#[cfg(feature = "sqlite")]
async fn export_sqlite(path: &Path, out: &mut impl std::io::Write) -> Result<LogSummary, CliError> {
    if !path.exists() {
        return Err(CliError::Usage(anyhow::anyhow!(
            "no event store at {}",
            path.display()
        )));
    }
    let store = open_sqlite(path).await?;
    let summary = log::export(&store, out).await.map_err(CliError::Failed);
    store.close().await;
    summary
}

#[cfg(feature = "sqlite")]
async fn import_sqlite(
    path: &Path,
    reader: impl std::io::BufRead,
    options: ImportOptions,
) -> Result<Result<LogSummary, ImportError>, CliError> {
    let store = open_sqlite(path).await?;
    let outcome = log::import(&store, reader, options).await;
    store.close().await;
    Ok(outcome)
}

#[cfg(feature = "sqlite")]
async fn open_sqlite(path: &Path) -> Result<emporium_commands::store::SqliteStore, CliError> {
    emporium_commands::store::SqliteStore::open(path)
        .await
        .map_err(|e| {
            if e.is::<emporium_commands::store::StoreInUse>() {
                CliError::Unavailable(e.context("stop the process that has it open first"))
            } else {
                CliError::Failed(e)
            }
        })
}

#[cfg(not(feature = "sqlite"))]
async fn export_sqlite(_: &Path, _: &mut impl std::io::Write) -> Result<LogSummary, CliError> {
    Err(no_sqlite())
}

#[cfg(not(feature = "sqlite"))]
async fn import_sqlite(
    _: &Path,
    _: impl std::io::BufRead,
    _: ImportOptions,
) -> Result<Result<LogSummary, ImportError>, CliError> {
    Err(no_sqlite())
}

#[cfg(not(feature = "sqlite"))]
fn no_sqlite() -> CliError {
    CliError::Unavailable(anyhow::anyhow!(
        "this build has no embedded (SQLite) store; build emporium with the `sqlite` feature"
    ))
}

/// Fails unless the database holds the event store.
async fn ensure_event_store(pool: &sqlx::PgPool) -> Result<(), CliError> {
    let migrated: bool = sqlx::query_scalar("SELECT to_regclass('events') IS NOT NULL")
        .fetch_one(pool)
        .await
        .context("inspect the database")?;
    if migrated {
        Ok(())
    } else {
        Err(CliError::Failed(anyhow::anyhow!(
            "the database has no event store; run `emporium migrate` first"
        )))
    }
}

/// The file holds what the database holds, password hashes included: owner only.
fn create_private(path: &Path) -> Result<std::fs::File, CliError> {
    let mut options = std::fs::File::options();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    Ok(options
        .open(path)
        .with_context(|| format!("create {}", path.display()))?)
}

fn report(what: &str, summary: &LogSummary, file: &Path) {
    let line = format!(
        "{what} {} events and {} unique keys ({})",
        summary.events,
        summary.unique_keys,
        file.display()
    );
    // A closed pipe is not worth failing a finished export for.
    let _ = writeln!(std::io::stdout(), "{line}");
}
