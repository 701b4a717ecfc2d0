//! Projection throughput and latency, with references measured in the same run:
//!
//! - **apply rate**: the runner consuming a backlog from JetStream (batches of 500,
//!   checkpoint in the same transaction), events/s. For reference, the relay's
//!   publish rate of the same backlog, and the inventory projection's UPDATE issued
//!   once per event straight to PostgreSQL in transactions of 500 (what a projection
//!   without batch folding is bound by).
//! - **rebuild rate**: a version rebuilt from the event store into shadow tables.
//! - **commit-to-read-model lag** p50/p99 at a fixed open-loop 1,000 events/s: a
//!   writer commits one event per millisecond, a relay and a runner run as they do in
//!   production, and a listener records when each checkpoint becomes visible.
//!
//! `cargo bench -p emporium-projections --bench projections` (or `./dev bench`).
//! `BENCH_EVENTS` sets the backlog (default 50,000), `BENCH_SECONDS` the lag run's
//! length (default 10).

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use emporium_domain::inventory::InventoryEvent;
use emporium_domain::{Quantity, Sku};
use emporium_projections::bus::{self, StreamLayout};
use emporium_projections::envelope::CommitPosition;
use emporium_projections::projection::{Projection, ProjectionRunner, Rebuild, RunnerConfig};
use emporium_projections::relay::{Relay, RelayConfig};
use emporium_projections::views::{CatalogProjection, InventoryProjection};
use emporium_tests::{TestDatabase, nats_url, unique_prefix};
use sqlx::PgPool;
use sqlx::postgres::PgListener;

const SKUS: usize = 1_000;
/// Connections writing the open-loop events.
const WRITERS: usize = 8;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One stock movement for `sku`: alternately received and reserved.
fn movement(i: usize) -> (String, serde_json::Value) {
    let sku = format!("SKU-{}", i % SKUS);
    let round = u32::try_from(i / SKUS).unwrap_or(u32::MAX);
    let event = if i.is_multiple_of(2) {
        InventoryEvent::StockReceived {
            quantity: Quantity::new(2).unwrap(),
            on_hand: 100 + round,
            available: 90 + round,
            at: Utc::now(),
        }
    } else {
        InventoryEvent::StockReserved {
            reservation_id: uuid::Uuid::new_v4(),
            order_id: uuid::Uuid::new_v4(),
            quantity: Quantity::new(1).unwrap(),
            expires_at: Utc::now(),
            available: 89 + round,
            at: Utc::now(),
        }
    };
    (sku, serde_json::to_value(event).unwrap())
}

/// Writes `count` inventory events after tracking every SKU, in transactions of 1,000.
async fn backlog(pool: &PgPool, count: usize) -> anyhow::Result<()> {
    let mut rows: Vec<(String, i64, String, serde_json::Value)> = (0..SKUS)
        .map(|s| {
            let sku = format!("SKU-{s}");
            let tracked = InventoryEvent::InventoryTracked {
                sku: Sku::parse(&sku).unwrap(),
                low_stock_threshold: 5,
                at: Utc::now(),
            };
            (
                sku,
                1,
                "InventoryTracked".to_owned(),
                serde_json::to_value(tracked).unwrap(),
            )
        })
        .collect();
    for i in 0..count {
        let (sku, payload) = movement(i);
        let sequence = i64::try_from(2 + i / SKUS)?;
        let kind = payload.as_object().unwrap().keys().next().unwrap().clone();
        rows.push((sku, sequence, kind, payload));
    }
    for chunk in rows.chunks(1_000) {
        let (ids, rest): (Vec<_>, Vec<_>) = chunk
            .iter()
            .map(|(a, b, c, d)| (a.clone(), (*b, c.clone(), d.clone())))
            .unzip();
        let (sequences, rest): (Vec<i64>, Vec<_>) =
            rest.into_iter().map(|(b, c, d)| (b, (c, d))).unzip();
        let (types, payloads): (Vec<String>, Vec<serde_json::Value>) = rest.into_iter().unzip();
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                                 payload, metadata)
             SELECT 'inventory', id, seq, kind, '1.0', payload, '{}'
             FROM unnest($1::text[], $2::bigint[], $3::text[], $4::jsonb[]) AS t(id, seq, kind, payload)",
        )
        .bind(&ids)
        .bind(&sequences)
        .bind(&types)
        .bind(&payloads)
        .execute(pool)
        .await
        .context("write the backlog")?;
    }
    Ok(())
}

struct Setup {
    db: TestDatabase,
    jetstream: async_nats::jetstream::Context,
    layout: StreamLayout,
}

impl Setup {
    async fn new() -> anyhow::Result<Self> {
        let db = TestDatabase::create(16).await?;
        emporium_commands::db::migrate(db.pool()).await?;
        emporium_projections::migrate(db.pool()).await?;
        let client = bus::connect(&nats_url(), Duration::from_secs(5)).await?;
        Ok(Self {
            db,
            jetstream: async_nats::jetstream::new(client),
            layout: StreamLayout::new(&unique_prefix())?,
        })
    }

    fn relay(&self) -> Relay {
        Relay::new(
            self.db.pool().clone(),
            self.jetstream.clone(),
            self.layout.clone(),
            RelayConfig {
                batch_size: 1_024,
                poll_interval: Duration::from_millis(1),
                ..RelayConfig::default()
            },
        )
    }

    fn runner(&self, projection: Arc<dyn Projection>) -> ProjectionRunner {
        ProjectionRunner::new(
            self.db.pool().clone(),
            self.jetstream.clone(),
            self.layout.clone(),
            projection,
            RunnerConfig::default(),
        )
    }

    async fn teardown(self) -> anyhow::Result<()> {
        let _ = self
            .jetstream
            .delete_stream(self.layout.stream_name())
            .await;
        self.db.drop_database().await
    }
}

async fn relay_all(relay: &mut Relay) -> anyhow::Result<()> {
    loop {
        relay.relay_once().await?;
        let head = relay.read_head().await?;
        if relay.lag(head.cursor).await? == 0 {
            return Ok(());
        }
    }
}

/// The reference: the inventory projection's UPDATE, once per event, 500 per transaction.
async fn raw_updates(pool: &PgPool, count: usize) -> anyhow::Result<Duration> {
    sqlx::query(
        "CREATE TABLE raw_levels (sku text PRIMARY KEY, on_hand bigint NOT NULL DEFAULT 0,
                                  reserved bigint NOT NULL DEFAULT 0, available bigint NOT NULL DEFAULT 0,
                                  updated_at timestamptz)",
    )
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO raw_levels (sku) SELECT 'SKU-' || g FROM generate_series(0, $1 - 1) g",
    )
    .bind(i64::try_from(SKUS)?)
    .execute(pool)
    .await?;
    let started = Instant::now();
    let mut conn = pool.acquire().await?;
    for chunk in (0..count).collect::<Vec<_>>().chunks(500) {
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        for &i in chunk {
            sqlx::query(
                "UPDATE raw_levels SET on_hand = coalesce($2, on_hand), available = $3,
                                       reserved = coalesce($2, on_hand) - $3, updated_at = $4
                 WHERE sku = $1",
            )
            .bind(format!("SKU-{}", i % SKUS))
            .bind(Some(100_i64))
            .bind(90_i64)
            .bind(Utc::now())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
    }
    Ok(started.elapsed())
}

struct Lag {
    events: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
    rate: f64,
}

/// Open loop at 1,000 events/s for `seconds`: relay and runner running, lag measured
/// from each commit to the first checkpoint announcement covering it.
async fn lag_run(seconds: u64) -> anyhow::Result<Lag> {
    let setup = Setup::new().await?;
    let pool = setup.db.pool().clone();
    backlog(&pool, 0).await?;
    let mut warm = setup.runner(Arc::new(InventoryProjection));
    warm.prepare().await?;
    drop(warm);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let relay = tokio::spawn(setup.relay().run(stopped(stop_rx.clone())));
    let runner = tokio::spawn(
        setup
            .runner(Arc::new(InventoryProjection))
            .run(stopped(stop_rx.clone())),
    );
    let mut listener = PgListener::connect_with(&pool).await?;
    listener
        .listen(emporium_projections::projection::checkpoint::CHANNEL)
        .await?;
    let seen: Arc<std::sync::Mutex<Vec<(Instant, CommitPosition)>>> = Arc::default();
    let listening = {
        let seen = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok(n) = listener.recv().await {
                let at = Instant::now();
                let parts: Vec<&str> = n.payload().split(' ').collect();
                if parts.first() == Some(&"inventory")
                    && let (Some(Ok(t)), Some(Ok(p))) = (
                        parts.get(2).map(|s| s.parse()),
                        parts.get(3).map(|s| s.parse()),
                    )
                {
                    seen.lock().unwrap().push((
                        at,
                        CommitPosition {
                            transaction_id: t,
                            position: p,
                        },
                    ));
                }
            }
        })
    };

    // The writers: one event per millisecond overall, each on its schedule (open
    // loop), spread over a few connections so a commit's fsync does not hold up the
    // next one.
    let total = usize::try_from(seconds * 1_000)?;
    let started = Instant::now();
    let writers: Vec<_> = (0..WRITERS)
        .map(|k| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut committed: Vec<(Instant, CommitPosition)> = Vec::new();
                let mut conn = pool.acquire().await?;
                for i in (k..total).step_by(WRITERS) {
                    let due = started + Duration::from_millis(u64::try_from(i)?);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        tokio::time::sleep(wait).await;
                    }
                    let (sku, payload) = movement(i);
                    let kind = payload.as_object().unwrap().keys().next().unwrap().clone();
                    // Aggregate per writer and event, so writers never collide.
                    let (txid, position): (i64, i64) = sqlx::query_as(
                        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                                             event_version, payload, metadata)
                         VALUES ('inventory', $1, 2 + $2, $3, '1.0', $4, '{}')
                         RETURNING transaction_id::text::bigint, position",
                    )
                    .bind(sku)
                    .bind(i64::try_from(i)?)
                    .bind(kind)
                    .bind(payload)
                    .fetch_one(&mut *conn)
                    .await?;
                    committed.push((
                        Instant::now(),
                        CommitPosition {
                            transaction_id: u64::try_from(txid)?,
                            position: u64::try_from(position)?,
                        },
                    ));
                }
                anyhow::Ok(committed)
            })
        })
        .collect();
    let mut committed: Vec<(Instant, CommitPosition)> = Vec::with_capacity(total);
    for writer in writers {
        committed.extend(writer.await??);
    }
    committed.sort_by_key(|(_, cursor)| *cursor);
    let writing = started.elapsed();
    // Wait (bounded) for the last event to be projected.
    let last = committed.last().map(|(_, c)| *c).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done: Option<(i64, i64)> = sqlx::query_as(
            "SELECT transaction_id, position FROM projection_checkpoints WHERE name = 'inventory'",
        )
        .fetch_optional(&pool)
        .await?;
        if let Some((t, p)) = done
            && (CommitPosition {
                transaction_id: u64::try_from(t)?,
                position: u64::try_from(p)?,
            }) >= last
        {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the projection did not catch up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    listening.abort();
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    stop_tx.send_replace(true);
    relay.await??;
    runner.await??;

    let mut lags = Vec::with_capacity(committed.len());
    let mut j = 0;
    for (at, cursor) in &committed {
        while j < seen.len() && seen[j].1 < *cursor {
            j += 1;
        }
        if let Some((visible, _)) = seen.get(j) {
            lags.push(visible.saturating_duration_since(*at));
        }
    }
    lags.sort();
    anyhow::ensure!(!lags.is_empty(), "no checkpoint announcement was recorded");
    let pick = |p: f64| {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let i = ((lags.len() - 1) as f64 * p).round() as usize;
        lags[i]
    };
    let result = Lag {
        events: lags.len(),
        p50: pick(0.5),
        p99: pick(0.99),
        max: *lags.last().unwrap(),
        rate: committed.len() as f64 / writing.as_secs_f64(),
    };
    setup.teardown().await?;
    Ok(result)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let events = usize::try_from(env_number("BENCH_EVENTS", 50_000))?;
    let seconds = env_number("BENCH_SECONDS", 10);
    let mut table: Vec<(String, f64, String)> = Vec::new();

    // Apply rate and rebuild rate over one backlog.
    let setup = Setup::new().await?;
    let pool = setup.db.pool().clone();
    backlog(&pool, events).await?;
    let total = events + SKUS;
    let mut relay = setup.relay();
    let relay_started = Instant::now();
    relay_all(&mut relay).await?;
    let relay_rate = total as f64 / relay_started.elapsed().as_secs_f64();
    table.push((
        "relay publish (reference)".into(),
        relay_rate,
        format!("{total} events"),
    ));

    for projection in [
        Arc::new(InventoryProjection) as Arc<dyn Projection>,
        Arc::new(CatalogProjection),
    ] {
        // Start the projection at the head (an empty build), then make it consume the
        // backlog from the stream by resetting its checkpoint to the start.
        let name = projection.name();
        let mut runner = setup.runner(Arc::clone(&projection));
        runner.prepare().await?;
        sqlx::query(
            "UPDATE projection_checkpoints SET transaction_id = 0, position = 0, stream_sequence = 0
             WHERE name = $1",
        )
        .bind(name)
        .execute(&pool)
        .await?;
        sqlx::raw_sql(&format!("TRUNCATE {}", projection.tables().join(", ")))
            .execute(&pool)
            .await?;
        let stream = setup
            .jetstream
            .get_stream(setup.layout.stream_name())
            .await?;
        stream.delete_consumer(&runner.consumer_name()).await?;
        let mut runner = setup.runner(Arc::clone(&projection));
        let started = Instant::now();
        let applied = runner.run_until_caught_up().await?;
        let rate = applied as f64 / started.elapsed().as_secs_f64();
        table.push((
            format!("apply from stream: {name}"),
            rate,
            format!("{applied} messages, batches of 500"),
        ));

        let started = Instant::now();
        let mut rebuild = Rebuild::start_detached(
            pool.clone(),
            Arc::clone(&projection),
            &format!("bench_{name}"),
        )
        .await?;
        let read = rebuild.run_to_end().await?;
        let rate = read as f64 / started.elapsed().as_secs_f64();
        table.push((
            format!("rebuild from store: {name}"),
            rate,
            format!("{read} events, batches of 2,000"),
        ));
        rebuild.abandon().await?;
    }
    let raw = raw_updates(&pool, events).await?;
    table.push((
        "reference: one UPDATE per event, 500/tx".into(),
        events as f64 / raw.as_secs_f64(),
        format!("{events} statements"),
    ));
    setup.teardown().await?;

    let lag = lag_run(seconds).await?;

    println!("\n{:<40} {:>14}  notes", "measurement", "events/s");
    for (name, rate, notes) in &table {
        println!("{name:<40} {rate:>14.0}  {notes}");
    }
    println!(
        "\ncommit-to-read-model lag, open loop {:.0} events/s for {seconds} s ({} events, inventory):",
        lag.rate, lag.events
    );
    println!(
        "  p50 {:.1} ms   p99 {:.1} ms   max {:.1} ms",
        lag.p50.as_secs_f64() * 1e3,
        lag.p99.as_secs_f64() * 1e3,
        lag.max.as_secs_f64() * 1e3
    );
    Ok(())
}
