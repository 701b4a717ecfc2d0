//! Embedded projection runners alone, over an embedded store's files, configured by
//! environment variables: `EVENTS_DB` (the store's file, read through its feed),
//! `READ_DB` (the read-model database), `PROJECTIONS` (comma-separated names, default
//! every ported one), `BATCH_SIZE`, and `CRASH_BEFORE_COMMIT=N`, which kills the
//! process with SIGKILL after its N-th batch is applied and checkpointed and before
//! that transaction commits (a crash at the worst moment, for the tests). It applies
//! what the store holds and exits. The gateway runs `EmbeddedProjections` in process;
//! this binary exists so the tests can kill a real embedded projector.

use std::sync::Arc;

use anyhow::Context;
use emporium_projections::feed::SqliteFeed;
use emporium_projections::projection::embedded::{self, EmbeddedConfig, EmbeddedRunner, ReadDb};
use emporium_projections::projection::{self, CheckpointWatch, Projection};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let events = std::env::var("EVENTS_DB").context("EVENTS_DB is required")?;
    let read = std::env::var("READ_DB").context("READ_DB is required")?;
    let mut config = EmbeddedConfig::default();
    if let Ok(size) = std::env::var("BATCH_SIZE") {
        config.batch_size = size.parse().context("BATCH_SIZE")?;
    }
    if let Ok(n) = std::env::var("CRASH_BEFORE_COMMIT") {
        let n: u64 = n.parse().context("CRASH_BEFORE_COMMIT")?;
        config.before_commit = Some(Arc::new(move |batch| {
            if batch >= n {
                // SIGKILL, as an operator's kill -9 or the OOM killer would.
                let _ = std::process::Command::new("kill")
                    .args(["-9", &std::process::id().to_string()])
                    .status();
                std::process::abort();
            }
        }));
    }
    let all = projection::all();
    let projections: Vec<Arc<dyn Projection>> = match std::env::var("PROJECTIONS") {
        Ok(names) => {
            let names: Vec<&str> = names.split(',').map(str::trim).collect();
            embedded::select(&all, &names)?
        }
        Err(_) => all
            .into_iter()
            .filter(|p| p.sqlite_schema().is_some())
            .collect(),
    };
    let store = SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(SqliteConnectOptions::new().filename(&events))
        .await
        .with_context(|| format!("open {events}"))?;
    let read = ReadDb::open(read.as_ref()).await?;
    let (_watch, publisher) = CheckpointWatch::embedded(store.clone());
    for projection in projections {
        let mut runner = EmbeddedRunner::new(
            read.clone(),
            SqliteFeed::new(store.clone()),
            projection,
            config.clone(),
            publisher.clone(),
        )?;
        runner
            .run_until_caught_up()
            .await
            .map_err(anyhow::Error::new)?;
    }
    read.close().await;
    Ok(())
}
