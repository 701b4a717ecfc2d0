//! Projection runners alone, configured by environment variables: `DATABASE_URL`,
//! `NATS_URL` (default `nats://127.0.0.1:4222`), `STREAM_PREFIX` (default
//! `emporium`), `PROJECTIONS` (comma-separated names, default all), `BATCH_SIZE`, and
//! `CRASH_AFTER_COMMITS=N`, which aborts the process right after its N-th commit and
//! before that batch's ack (a crash at the worst moment, for the tests). Operators run
//! `emporium project`; this binary exists so the tests can kill -9 a real projector.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use emporium_projections::bus::{self, StreamLayout};
use emporium_projections::projection::{self, ProjectionRunner, RunnerConfig};
use sqlx::postgres::PgPoolOptions;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let database_url = std::env::var("DATABASE_URL").context("DATABASE_URL is required")?;
    let nats_url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    let prefix = std::env::var("STREAM_PREFIX").unwrap_or_else(|_| "emporium".to_owned());
    let names = std::env::var("PROJECTIONS").ok();
    let mut config = RunnerConfig::default();
    if let Ok(size) = std::env::var("BATCH_SIZE") {
        config.batch_size = size.parse().context("BATCH_SIZE")?;
    }
    if let Ok(n) = std::env::var("CRASH_AFTER_COMMITS") {
        let n: u64 = n.parse().context("CRASH_AFTER_COMMITS")?;
        config.after_commit = Some(Arc::new(move |commits| {
            if commits >= n {
                std::process::abort();
            }
        }));
    }
    let projections: Vec<_> = match names {
        Some(names) => names
            .split(',')
            .map(|n| {
                projection::by_name(n.trim()).with_context(|| format!("unknown projection `{n}`"))
            })
            .collect::<anyhow::Result<_>>()?,
        None => projection::all(),
    };
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(&database_url)
        .await
        .context("connect to postgres")?;
    let client = bus::connect(&nats_url, Duration::from_secs(2)).await?;
    let jetstream = async_nats::jetstream::new(client);
    let layout = StreamLayout::new(&prefix)?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for p in projections {
        let runner = ProjectionRunner::new(
            pool.clone(),
            jetstream.clone(),
            layout.clone(),
            p,
            config.clone(),
        );
        let mut stopped = stopped.clone();
        tasks.push(tokio::spawn(runner.run(async move {
            let _ = stopped.wait_for(|s| *s).await;
        })));
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("install SIGTERM handler")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    stop.send_replace(true);
    for task in tasks {
        task.await.context("join a runner")??;
    }
    Ok(())
}
