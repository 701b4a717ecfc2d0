//! The relay alone, configured by environment variables:
//! `DATABASE_URL`, `NATS_URL` (default `nats://127.0.0.1:4222`) and `STREAM_PREFIX`
//! (default `emporium`). Operators run `emporium relay`; this binary exists so the
//! backbone tests can kill -9 a real relay process. It stops on SIGINT/SIGTERM.

use std::time::Duration;

use anyhow::Context;
use emporium_projections::bus::{self, StreamLayout};
use emporium_projections::relay::{Relay, RelayConfig};
use sqlx::postgres::PgPoolOptions;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let database_url = std::env::var("DATABASE_URL").context("DATABASE_URL is required")?;
    let nats_url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    let prefix = std::env::var("STREAM_PREFIX").unwrap_or_else(|_| "emporium".to_owned());
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&database_url)
        .await
        .context("connect to postgres")?;
    let client = bus::connect(&nats_url, Duration::from_secs(2)).await?;
    let relay = Relay::new(
        pool,
        async_nats::jetstream::new(client),
        StreamLayout::new(&prefix)?,
        RelayConfig::default(),
    );
    relay
        .run(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("install SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        })
        .await
}
