//! Command throughput through the command layer, next to pgbench running the same
//! shape (BEGIN; INSERT one event row; COMMIT) on the same server in the same run,
//! and `AddItemToCart` over the embedded SQLite store (synchronous FULL and NORMAL)
//! in the same rounds.
//!
//! `cargo bench -p emporium-commands --bench commands` (or `./dev bench`).
//! `BENCH_SECONDS` sets each measurement's length (default 5).

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use emporium_commands::store::{Durability, SqliteStore};
use emporium_commands::{Dispatcher, EventStore, Loading, PgStore};
use emporium_domain::cart::{Cart, CartCommand, CartOwner};
use emporium_domain::inventory::{Inventory, InventoryCommand};
use emporium_domain::metadata::Actor;
use emporium_domain::{Currency, EventMetadata, Quantity, Sku};
use emporium_tests::TestDatabase;
use uuid::Uuid;

const CLIENTS: [usize; 3] = [1, 4, 16];
fn skus() -> usize {
    std::env::var("BENCH_SKUS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64)
}
const ITEMS_PER_CART: usize = 20;

fn meta() -> EventMetadata {
    EventMetadata::new(Uuid::new_v4(), Actor::System("bench".into()), Utc::now())
}

#[derive(Debug)]
struct Run {
    name: String,
    ops: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        self.latencies[i]
    }
}

/// pgbench, `clients` connections, one event row per transaction.
fn pgbench(db: &TestDatabase, clients: usize, seconds: u64) -> anyhow::Result<f64> {
    let script = std::env::temp_dir().join(format!("emporium-pgbench-{}.sql", Uuid::new_v4()));
    std::fs::write(
        &script,
        "BEGIN;\n\
         INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('pgbench', gen_random_uuid()::text, 1, 'ItemAddedToCart', '1.0', \
         '{\"ItemAddedToCart\": {\"sku\": \"SKU-1\", \"product_id\": \"9b2f7d8e-0000-4000-8000-000000000000\", \"quantity\": 1}}', \
         '{\"correlation_id\": \"9b2f7d8e-0000-4000-8000-000000000000\", \"actor\": \"bench\"}');\n\
         COMMIT;\n",
    )?;
    let url = db.url();
    let output = Command::new("pgbench")
        .args([
            "-n",
            "-c",
            &clients.to_string(),
            "-j",
            &clients.min(2).to_string(),
        ])
        .args(["-T", &seconds.to_string(), "-f"])
        .arg(&script)
        .arg(url)
        .output()
        .context("run pgbench (Debian package postgresql-contrib / postgresql-client)")?;
    let _ = std::fs::remove_file(&script);
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "pgbench failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix("tps = ")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        })
        .context("parse pgbench tps")
}

async fn add_to_cart<S: EventStore>(name: &str, store: S, clients: usize, seconds: u64) -> Run {
    let carts = Arc::new(Dispatcher::<Cart, S>::over(store, Loading::Replay));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let carts = Arc::clone(&carts);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                'outer: while Instant::now() < deadline {
                    // A fresh cart every ITEMS_PER_CART items: carts are short streams.
                    let cart_id = Uuid::new_v4();
                    let id = cart_id.to_string();
                    carts
                        .execute(
                            &id,
                            CartCommand::OpenCart {
                                cart_id,
                                owner: CartOwner::User {
                                    user_id: Uuid::new_v4(),
                                },
                                currency: Currency::EUR,
                                at: Utc::now(),
                            },
                            &meta(),
                        )
                        .await
                        .expect("open cart");
                    for i in 0..ITEMS_PER_CART {
                        if Instant::now() >= deadline {
                            break 'outer;
                        }
                        let command = CartCommand::AddItem {
                            sku: Sku::parse(&format!("SKU-{}", i % 7)).unwrap(),
                            product_id: Uuid::from_u128(i as u128 % 7),
                            quantity: Quantity::new(1).unwrap(),
                            at: Utc::now(),
                        };
                        let t = Instant::now();
                        carts
                            .execute(&id, command, &meta())
                            .await
                            .expect("add item");
                        latencies.push(t.elapsed());
                    }
                }
                latencies
            })
        })
        .collect();
    collect(name, started, tasks).await
}

async fn reserve_stock(pool: &sqlx::PgPool, clients: usize, seconds: u64) -> Run {
    let stock = Arc::new(Dispatcher::<Inventory>::new(
        pool.clone(),
        Loading::Snapshot(50),
    ));
    let run = Uuid::new_v4().simple().to_string();
    let skus: Arc<Vec<String>> =
        Arc::new((0..skus()).map(|i| format!("B{}-{i}", &run[..8])).collect());
    for sku in skus.iter() {
        stock
            .execute(
                sku,
                InventoryCommand::TrackInventory {
                    sku: Sku::parse(sku).unwrap(),
                    low_stock_threshold: 0,
                    at: Utc::now(),
                },
                &meta(),
            )
            .await
            .expect("track");
        stock
            .execute(
                sku,
                InventoryCommand::ReceiveStock {
                    quantity: Quantity::new(i64::from(Quantity::MAX)).unwrap(),
                    at: Utc::now(),
                },
                &meta(),
            )
            .await
            .expect("receive");
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let stock = Arc::clone(&stock);
            let skus = Arc::clone(&skus);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = c * 7919;
                while Instant::now() < deadline {
                    n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    let sku = &skus[(n >> 8) % skus.len()];
                    let at = Utc::now();
                    let command = InventoryCommand::ReserveStock {
                        reservation_id: Uuid::new_v4(),
                        order_id: Uuid::new_v4(),
                        quantity: Quantity::new(1).unwrap(),
                        expires_at: at + chrono::Duration::minutes(15),
                        at,
                    };
                    let t = Instant::now();
                    stock
                        .execute_retrying(sku, command, &meta())
                        .await
                        .expect("reserve");
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    collect("ReserveStock", started, tasks).await
}

async fn collect(
    name: &str,
    started: Instant,
    tasks: Vec<tokio::task::JoinHandle<Vec<Duration>>>,
) -> Run {
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.expect("client task"));
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    Run {
        name: name.to_owned(),
        ops: latencies.len(),
        elapsed,
        latencies,
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let db = TestDatabase::create(32).await?;
    emporium_commands::db::migrate(db.pool()).await?;
    let dir = tempfile::tempdir()?;
    let sqlite_full = SqliteStore::open_with(&dir.path().join("full.db"), Durability::Full).await?;
    let sqlite_normal =
        SqliteStore::open_with(&dir.path().join("normal.db"), Durability::Normal).await?;

    // The machine is shared and noisy: measure the reference and the command layer
    // back to back, several rounds, and report medians and the median of the
    // per-round ratios.
    let mut rows: Vec<(String, usize, Vec<Run>, Vec<f64>)> = Vec::new();
    for _ in 0..rounds {
        for clients in CLIENTS {
            let pg = pgbench(&db, clients, seconds)?;
            let store = PgStore::new(db.pool().clone());
            let cart = add_to_cart("AddItemToCart", store, clients, seconds).await;
            let stock = reserve_stock(db.pool(), clients, seconds).await;
            let full = add_to_cart(
                "AddItemToCart SQLite FULL",
                sqlite_full.clone(),
                clients,
                seconds,
            )
            .await;
            let normal = add_to_cart(
                "AddItemToCart SQLite NORMAL",
                sqlite_normal.clone(),
                clients,
                seconds,
            )
            .await;
            for run in [cart, stock, full, normal] {
                let key = (run.name.clone(), clients);
                match rows.iter_mut().find(|r| (r.0.clone(), r.1) == key) {
                    Some(row) => {
                        row.3.push(pg);
                        row.2.push(run);
                    }
                    None => rows.push((key.0, key.1, vec![run], vec![pg])),
                }
            }
        }
    }
    db.drop_database().await?;
    sqlite_full.close().await;
    sqlite_normal.close().await;

    println!(
        "| workload | clients | commands/s | p50 ms | p99 ms | pgbench tps (same clients) | ratio |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (name, clients, runs, pgs) in &rows {
        let ratios = runs.iter().zip(pgs).map(|(r, pg)| r.rate() / pg).collect();
        println!(
            "| {name} | {clients} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} |",
            median(runs.iter().map(Run::rate).collect()),
            median(
                runs.iter()
                    .map(|r| r.percentile(0.50).as_secs_f64() * 1e3)
                    .collect()
            ),
            median(
                runs.iter()
                    .map(|r| r.percentile(0.99).as_secs_f64() * 1e3)
                    .collect()
            ),
            median(pgs.clone()),
            median(ratios),
        );
    }
    Ok(())
}
