//! The gateway under load over HTTP: the products listing (20 per page over 10,000
//! seeded products) and the `addToCart` mutation, driven by an open-loop generator at
//! fixed rates (each request is due at its slot whether or not earlier ones have
//! answered, and its latency is counted from that slot, so a stalled server cannot
//! hide its queue), next to pgbench's single-insert transaction at 16 clients on the
//! same server in the same run (into `pgbench_events`, a copy of `events` that is not
//! relayed). Each step prints the deltas of the platform's histograms: where the time
//! went. `addToCart` answers from the cart aggregate without waiting for the read
//! model, so the 16-client step ends only when every projection has applied its
//! events, and its rate counts that catch-up.
//!
//! `cargo bench -p emporium-gateway --bench graphql` (or `./dev bench`). Knobs:
//! `BENCH_SECONDS` per step (default 10), `BENCH_PRODUCTS` (default 10000),
//! `BENCH_LIST_RATES` (default `500,1000,2000`), `BENCH_CART_RATES`
//! (default `100,200,400,800`), `BENCH_CATALOG_CACHE` (the catalogue cache's bytes;
//! 0 turns it off), `BENCH_WORKERS` (the platform runtime's worker threads, default 2).
//!
//! The gateway runs in this process on its own 2-thread runtime (the whole platform:
//! gateway, relay, projections); the generator runs on another thread.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use emporium_gateway::app::Application;
use emporium_gateway::config::{Environment, Overrides, SecretUrl, Settings};
use emporium_gateway::seed::{SeedSize, Seeder};
use emporium_projections::projection::CheckpointWatch;
use emporium_tests::{TestDatabase, nats_url, unique_prefix};
use serde_json::{Value, json};
use uuid::Uuid;

/// The `emporium` binary's allocator, so the platform is measured as it runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const LISTING: &str = "query($after: String, $sort: ProductSort) {
  products(first: 20, after: $after, sort: $sort) {
    edges { cursor node { id sku slug name price { amountMinor currency formatted }
      minPrice { amountMinor } rating { average count } inStock primaryImage { source altText } } }
    pageInfo { hasNextPage endCursor }
  }
}";

const ADD_TO_CART: &str = "mutation($sku: String!) { addToCart(sku: $sku, quantity: 1) { id itemCount subtotal { amountMinor } } }";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn rates(name: &str, default: &[u32]) -> Vec<u32> {
    std::env::var(name).ok().map_or_else(
        || default.to_vec(),
        |s| s.split(',').filter_map(|r| r.trim().parse().ok()).collect(),
    )
}

/// One step's outcome.
#[derive(Debug)]
struct Step {
    target: u32,
    sent: usize,
    ok: usize,
    failed: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Step {
    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i]
    }

    fn achieved(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let ok = self.ok as f64;
        ok / self.elapsed.as_secs_f64()
    }

    fn print(&self, what: &str) {
        println!(
            "{what:<12} target {:>5}/s  sent {:>6}  achieved {:>7.1}/s  ok {:>6}  failed {:>5}  p50 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms",
            self.target,
            self.sent,
            self.achieved(),
            self.ok,
            self.failed,
            ms(self.percentile(0.50)),
            ms(self.percentile(0.99)),
            ms(self.latencies.last().copied().unwrap_or_default()),
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

/// Sends `make(i)` at `rate` per second for `seconds`, open loop; every request that
/// has not answered 5 s after the step ends counts as failed.
async fn open_loop<F>(client: &reqwest::Client, url: &str, rate: u32, seconds: u64, make: F) -> Step
where
    F: Fn(usize) -> (Value, Option<String>),
{
    let total = usize::try_from(u64::from(rate) * seconds).unwrap_or(usize::MAX);
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let started = tokio::time::Instant::now();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        #[allow(clippy::cast_possible_truncation)]
        let due = started + interval * (i as u32);
        tokio::time::sleep_until(due).await;
        let (body, bearer) = make(i);
        let mut request = client.post(url).json(&body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let in_flight = Arc::clone(&in_flight);
        in_flight.fetch_add(1, Ordering::Relaxed);
        tasks.push(tokio::spawn(async move {
            let result = tokio::time::timeout(Duration::from_secs(seconds + 5), async {
                let response = request.send().await.map_err(|e| e.to_string())?;
                let status = response.status();
                let body: Value = response.json().await.map_err(|e| e.to_string())?;
                if status.is_success() && body.get("errors").is_none() {
                    Ok(())
                } else {
                    Err(format!("{status}: {body}"))
                }
            })
            .await
            .unwrap_or_else(|_| Err("timed out".to_owned()));
            in_flight.fetch_sub(1, Ordering::Relaxed);
            // Measured from the slot it was due in, not from when it was sent.
            (result, due.elapsed())
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    let mut failed = 0;
    let mut first_error = None;
    for task in tasks {
        match task.await {
            Ok((Ok(()), latency)) => latencies.push(latency),
            Ok((Err(e), _)) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    if let Some(e) = first_error {
        eprintln!("first failure: {}", e.chars().take(300).collect::<String>());
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    Step {
        target: rate,
        sent: total,
        ok: latencies.len(),
        failed,
        elapsed,
        latencies,
    }
}

/// `clients` connections adding to carts back to back for `seconds`: the most the
/// path sustains, to compare with pgbench at the same concurrency.
async fn closed_loop(
    client: &reqwest::Client,
    url: &str,
    clients: usize,
    seconds: u64,
    tokens: &Arc<Vec<String>>,
    skus: &Arc<Vec<String>>,
) -> Step {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let client = client.clone();
            let url = url.to_owned();
            let tokens = Arc::clone(tokens);
            let skus = Arc::clone(skus);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut failed = 0;
                let mut n = c;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let ok = client
                        .post(&url)
                        .bearer_auth(&tokens[c % tokens.len()])
                        .json(&json!({ "query": ADD_TO_CART, "variables": { "sku": skus[n % skus.len()] } }))
                        .send()
                        .await
                        .ok()
                        .filter(|r| r.status().is_success());
                    let ok = match ok {
                        Some(r) => r.json::<Value>().await.is_ok_and(|b| b.get("errors").is_none()),
                        None => false,
                    };
                    if ok {
                        latencies.push(t.elapsed());
                    } else {
                        failed += 1;
                    }
                    n += clients;
                }
                (latencies, failed)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut failed = 0;
    for task in tasks {
        let (l, f) = task.await.expect("client");
        latencies.extend(l);
        failed += f;
    }
    latencies.sort_unstable();
    Step {
        target: 0,
        sent: latencies.len() + failed,
        ok: latencies.len(),
        failed,
        elapsed: started.elapsed(),
        latencies,
    }
}

/// Waits until every projection has applied every event committed so far; answers
/// how long that took.
async fn drain(url: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await?;
    let last: i64 = sqlx::query_scalar("SELECT max(position) FROM events")
        .fetch_one(&pool)
        .await?;
    let watch = CheckpointWatch::start(pool.clone()).await?;
    for projection in emporium_projections::projection::all() {
        watch
            .wait_for_position(projection.name(), last, Duration::from_secs(600))
            .await?;
    }
    drop(watch);
    pool.close().await;
    Ok(started.elapsed())
}

/// pgbench, `clients` connections, one event row per transaction (as the command
/// layer's bench does), into `pgbench_events`: a copy of `events` with the same
/// columns, defaults (the same position sequence) and indexes, so the insert costs
/// what an event's does, but not relayed: the reference's rows must not become a
/// backlog the relay and eleven projections work through while `addToCart` is
/// measured.
fn pgbench(url: &str, clients: usize, seconds: u64) -> anyhow::Result<f64> {
    let script = std::env::temp_dir().join(format!("emporium-pgbench-{}.sql", Uuid::new_v4()));
    std::fs::write(
        &script,
        "BEGIN;\n\
         INSERT INTO pgbench_events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('pgbench', gen_random_uuid()::text, 1, 'ItemAddedToCart', '1.0', \
         '{\"ItemAddedToCart\": {\"sku\": \"SKU-1\", \"product_id\": \"9b2f7d8e-0000-4000-8000-000000000000\", \"quantity\": 1}}', \
         '{\"correlation_id\": \"9b2f7d8e-0000-4000-8000-000000000000\", \"actor\": \"bench\"}');\n\
         COMMIT;\n",
    )?;
    let output = Command::new("pgbench")
        .args(["-n", "-c", &clients.to_string(), "-j", "2"])
        .args(["-T", &seconds.to_string(), "-f"])
        .arg(&script)
        .arg(url)
        .output()
        .context("run pgbench (Debian package postgresql-client)")?;
    let _ = std::fs::remove_file(&script);
    if !output.status.success() {
        bail!(
            "pgbench failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|l| {
            l.strip_prefix("tps = ")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        })
        .context("parse pgbench tps")
}

/// The `_sum` and `_count` series of the platform's histograms, from `/metrics`.
async fn histogram_totals(
    client: &reqwest::Client,
    graphql_url: &str,
) -> anyhow::Result<std::collections::BTreeMap<String, f64>> {
    let url = graphql_url.replace("/graphql", "/metrics");
    let text = client.get(url).send().await?.text().await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("emporium_"))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let name = series.split('{').next()?;
            (name.ends_with("_sum") || name.ends_with("_count"))
                .then(|| Some((series.to_owned(), value.parse().ok()?)))?
        })
        .collect())
}

/// Prints, for every histogram that moved between two snapshots, how many values
/// it took and their mean: where an operation's time went during a step.
fn print_breakdown(
    before: &std::collections::BTreeMap<String, f64>,
    after: &std::collections::BTreeMap<String, f64>,
) {
    for (series, sum) in after {
        let Some((name, labels)) = series.split_once("_sum") else {
            continue;
        };
        let count_series = format!("{name}_count{labels}");
        let count = after.get(&count_series).copied().unwrap_or_default()
            - before.get(&count_series).copied().unwrap_or_default();
        if count <= 0.0 {
            continue;
        }
        let total = sum - before.get(series).copied().unwrap_or_default();
        let mean = total / count;
        let shown = if name.ends_with("_seconds") {
            format!("mean {:>9.3} ms", mean * 1_000.0)
        } else {
            format!("mean {mean:>9.2}   ")
        };
        println!("  {name}{labels:<40} n {count:>8.0}  {shown}");
    }
}

async fn graphql(
    client: &reqwest::Client,
    url: &str,
    query: &str,
    variables: Value,
    bearer: Option<&str>,
) -> anyhow::Result<Value> {
    let mut request = client
        .post(url)
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let body: Value = request.send().await?.json().await?;
    if let Some(errors) = body.get("errors") {
        bail!("{query}: {errors}");
    }
    Ok(body["data"].clone())
}

fn main() -> anyhow::Result<()> {
    let seconds: u64 = env_or("BENCH_SECONDS", 10);
    let products: usize = env_or("BENCH_PRODUCTS", 10_000);
    let list_rates = rates("BENCH_LIST_RATES", &[500, 1_000, 2_000]);
    let cart_rates = rates("BENCH_CART_RATES", &[100, 200, 400, 800]);

    // The platform: its own runtime with two workers (the machine has two cores);
    // `BENCH_WORKERS` tries another count.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(env_or("BENCH_WORKERS", 2))
        .thread_name("gateway")
        .enable_all()
        .build()?;
    let (db, address, stop) = server_rt.block_on(async {
        let db = TestDatabase::create(4).await?;
        let config_dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config");
        let overrides = Overrides {
            port: Some(0),
            ..Overrides::default()
        };
        let mut settings = Settings::load(&config_dir, Environment::Test, &overrides)?;
        settings.storage.mode = emporium_gateway::config::StorageMode::Distributed;
        settings.database.url = SecretUrl::new(db.url());
        settings.database.max_connections = 32;
        settings.nats.url = SecretUrl::new(nats_url());
        settings.nats.stream_prefix = unique_prefix();
        settings.limits.rate.enabled = false;
        // The demo seed prices everything in USD.
        settings.shop.currency = "USD".to_owned();
        // `BENCH_CATALOG_CACHE=0` measures the listing without the catalogue cache.
        settings.shop.catalog_cache_bytes =
            env_or("BENCH_CATALOG_CACHE", settings.shop.catalog_cache_bytes);
        settings.log.filter = "error".to_owned();
        emporium_gateway::telemetry::init_tracing(settings.log_format(), &settings.log.filter);
        let app = Application::build(settings, true).await?;
        let address = format!("http://{}/graphql", app.local_addr()?);

        eprintln!("seeding {products} products through the command layer...");
        let started = Instant::now();
        let seed_pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(32)
            .connect(db.url())
            .await?;
        let seeder = Seeder::new(
            emporium_commands::PgStore::new(seed_pool.clone()),
            SeedSize {
                products,
                customers: 1,
                orders: 0,
                concurrency: 8,
            },
        );
        seeder.run().await?;
        let last: i64 = sqlx::query_scalar("SELECT max(position) FROM events")
            .fetch_one(&seed_pool)
            .await?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until(async {
            let _ = stop_rx.await;
        }));
        let watch = CheckpointWatch::start(seed_pool.clone()).await?;
        watch
            .wait_for_position("catalog", last, Duration::from_secs(600))
            .await?;
        eprintln!(
            "seeded and projected in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        sqlx::query("CREATE TABLE pgbench_events (LIKE events INCLUDING ALL)")
            .execute(&seed_pool)
            .await?;
        // Its idle connections would count against the server's limit when pgbench
        // connects its 16 clients.
        drop(watch);
        seed_pool.close().await;
        anyhow::Ok((db, address, stop_tx))
    })?;

    let load_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = load_rt.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(512)
            .timeout(Duration::from_secs(30))
            .build()?;
        // Cursors of a few pages in every order, so the listing is not one page.
        let mut pages: Vec<Value> = Vec::new();
        for sort in ["NEWEST", "PRICE_ASC", "PRICE_DESC", "RATING", "NAME"] {
            let mut after = Value::Null;
            for _ in 0..10 {
                pages.push(json!({ "query": LISTING, "variables": { "sort": sort, "after": after } }));
                let data = graphql(&client, &address, LISTING, json!({ "sort": sort, "after": after }), None).await?;
                after = data["products"]["pageInfo"]["endCursor"].clone();
            }
        }
        let first = graphql(&client, &address, LISTING, json!({ "sort": "NAME" }), None).await?;
        let skus: Arc<Vec<String>> = Arc::new(
            first["products"]["edges"]
                .as_array()
                .context("edges")?
                .iter()
                .filter_map(|e| e["node"]["sku"].as_str().map(ToOwned::to_owned))
                .collect(),
        );
        let mut tokens = Vec::new();
        for i in 0..64 {
            let data = graphql(
                &client,
                &address,
                "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
                json!({ "i": { "email": format!("bench{i}@example.com"), "password": "correct horse battery", "firstName": "Bench" } }),
                None,
            )
            .await?;
            tokens.push(data["register"]["accessToken"].as_str().context("token")?.to_owned());
        }
        let tokens = Arc::new(tokens);

        println!("\n## products listing, 20 per page over {products} products (open loop, {seconds} s per step)");
        let pages = Arc::new(pages);
        let mut listing = Vec::new();
        for &rate in &list_rates {
            let pages = Arc::clone(&pages);
            let before = histogram_totals(&client, &address).await?;
            let step = open_loop(&client, &address, rate, seconds, |i| (pages[i % pages.len()].clone(), None)).await;
            step.print("products");
            print_breakdown(&before, &histogram_totals(&client, &address).await?);
            listing.push(step);
        }

        println!("\n## addToCart (open loop, {seconds} s per step, 64 users)");
        for &rate in &cart_rates {
            let tokens = Arc::clone(&tokens);
            let skus = Arc::clone(&skus);
            let step = open_loop(&client, &address, rate, seconds, |i| {
                (
                    json!({ "query": ADD_TO_CART, "variables": { "sku": skus[(i / 64) % skus.len()] } }),
                    Some(tokens[i % tokens.len()].clone()),
                )
            })
            .await;
            step.print("addToCart");
        }

        println!("\n## addToCart at 16 clients back to back vs pgbench -c 16 -j 2 (single-insert transaction)");
        // The overloaded open-loop steps leave committed events behind: let the
        // pipeline drain them first, so the step measures itself.
        let drained = drain(db.url()).await?;
        println!(
            "(the projections caught up with the open-loop steps in {:.1} s)",
            drained.as_secs_f64()
        );
        let pg = pgbench(db.url(), 16, seconds)?;
        let before = histogram_totals(&client, &address).await?;
        let closed = closed_loop(&client, &address, 16, seconds, &tokens, &skus).await;
        closed.print("addToCart16");
        // addToCart answers without waiting for the read model: the step is only
        // done when every projection has applied its events too, and its rate
        // counts that time.
        let behind = drain(db.url()).await?;
        let sustained = closed.ok as f64 / (closed.elapsed + behind).as_secs_f64();
        println!(
            "every projection caught up {:.0} ms after the last answer: {sustained:.1}/s over the step and the catch-up",
            behind.as_secs_f64() * 1e3
        );
        let after = histogram_totals(&client, &address).await?;
        println!("where the time went during the 16-client step (histogram deltas):");
        print_breakdown(&before, &after);
        let pg_after = pgbench(db.url(), 16, seconds)?;
        let reference = f64::midpoint(pg, pg_after);
        println!(
            "pgbench tps {pg:.0} before, {pg_after:.0} after; addToCart {sustained:.1}/s = {:.2}x the mean",
            sustained / reference
        );
        if let Some(step) = listing.iter().find(|s| s.target == 2_000) {
            println!(
                "goal listing p99 < 20 ms at 2000/s: p99 {:.2} ms, achieved {:.0}/s -> {}",
                ms(step.percentile(0.99)),
                step.achieved(),
                if step.percentile(0.99) < Duration::from_millis(20) && step.failed == 0 { "met" } else { "MISSED" }
            );
        }
        println!(
            "goal addToCart >= 0.3x pgbench at 16 clients: {:.2}x -> {}",
            sustained / reference,
            if sustained >= 0.3 * reference && closed.failed == 0 { "met" } else { "MISSED" }
        );
        anyhow::Ok(())
    });
    let _ = stop.send(());
    server_rt.block_on(async { drop(db.drop_database().await) });
    result
}
