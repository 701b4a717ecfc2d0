//! Checkouts per second through the checkout process manager at fixed open-loop
//! arrival rates, with p50/p99 from the start of a checkout to its order paid, next
//! to the raw command rate of the same database in the same run.
//!
//! What runs: the platform in-process (relay, projections, the checkout driver) on a
//! fresh database; 64 published products with ample stock; one prepared cart per
//! checkout (a customer each). Each arrival calls `Checkouts::start` on the
//! application's own process manager (`Application::checkouts`: what the `checkout`
//! mutation runs after parsing, and what the checkout driver resumes with, over the
//! durable offline provider): catalogue prices from the read model, quote, row, cart
//! checkout, order, reservation, fraud rules, provider intent/confirm/capture, paid. Latency is measured from the arrival's scheduled
//! time (no coordinated omission) to the answer saying `paid`. Not included: HTTP,
//! GraphQL parsing and the mutation's read-your-writes wait on the `orders`
//! projection.
//!
//! `cargo bench -p emporium-gateway --bench checkout` (or `just bench`);
//! `BENCH_SECONDS` (default 5) per rate, `BENCH_RATES` (default `50,100,200,300`),
//! `BENCH_POOL` (the platform's connection pool, default 16), `BENCH_LOG_STATEMENTS=1`
//! (log every statement of the bench's database between markers, to count them).
//! Before each rate, every projection catches up with what the seeding, the
//! reference and the cart preparation committed (tens of thousands of events), so
//! the rate measures checkouts, not that backlog; `BENCH_BACKLOG=1` starts the
//! arrivals with it still pending, as runs before checkout run 13 did. Before the
//! first rate, `BENCH_WARMUP` seconds (default 2, 0 for none) of checkouts at that
//! rate warm the platform up and are not reported (new in checkout run 13 as well).

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::cast_precision_loss
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::Utc;
use emporium_commands::checkout::{CheckoutRequest, Checkouts, ids};
use emporium_commands::payments::{CardNumber, PaymentMethod};
use emporium_commands::{Dispatcher, Loading};
use emporium_domain::cart::{Cart, CartCommand, CartOwner};
use emporium_domain::metadata::Actor;
use emporium_domain::order::OrderStatus;
use emporium_domain::pricing::ShippingMethodCode;
use emporium_domain::{Address, AddressInput, Currency, EventMetadata, Money, Sku};
use emporium_gateway::app::Application;
use emporium_gateway::config::{Environment, Overrides, SecretUrl, Settings};
use emporium_projections::projection::CheckpointWatch;
use emporium_tests::{TestDatabase, nats_url, unique_prefix};
use uuid::Uuid;

/// The `emporium` binary's allocator, so the platform is measured as it runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SKUS: usize = 64;

fn meta() -> EventMetadata {
    EventMetadata::new(Uuid::new_v4(), Actor::System("bench".into()), Utc::now())
}

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn address() -> Address {
    Address::parse(AddressInput {
        full_name: "Ada Lovelace".into(),
        line1: "Unter den Linden 1".into(),
        city: "Berlin".into(),
        postal_code: "10117".into(),
        country: "DE".into(),
        ..AddressInput::default()
    })
    .expect("address")
}

async fn seed(pool: &sqlx::PgPool) -> anyhow::Result<(Vec<(Sku, Uuid)>, i64)> {
    emporium_gateway::seed::stocked_products(
        pool,
        "Bench",
        SKUS,
        100_000,
        Money::new(1_000, Currency::EUR),
    )
    .await
}

/// `n` open carts, one line each, round-robin over the SKUs.
async fn carts(
    pool: &sqlx::PgPool,
    skus: &[(Sku, Uuid)],
    n: usize,
) -> anyhow::Result<Vec<(Uuid, Uuid)>> {
    let dispatcher = Arc::new(Dispatcher::<Cart>::new(pool.clone(), Loading::Replay));
    let mut tasks = tokio::task::JoinSet::new();
    let chunk = n.div_ceil(8);
    for worker in 0..8 {
        let dispatcher = Arc::clone(&dispatcher);
        let skus = skus.to_vec();
        tasks.spawn(async move {
            let mut made = Vec::new();
            for i in worker * chunk..((worker + 1) * chunk).min(n) {
                let (sku, product) = &skus[i % skus.len()];
                let (user, cart) =
                    emporium_gateway::seed::one_line_cart(&dispatcher, sku, *product).await?;
                made.push((user, cart));
            }
            anyhow::Ok(made)
        });
    }
    let mut all = Vec::with_capacity(n);
    while let Some(made) = tasks.join_next().await {
        all.extend(made??);
    }
    Ok(all)
}

struct Measured {
    rate: u32,
    offered: usize,
    paid: usize,
    failed: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

async fn run_rate(checkouts: &Arc<Checkouts>, rate: u32, carts: Vec<(Uuid, Uuid)>) -> Measured {
    let offered = carts.len();
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (user, cart)) in carts.into_iter().enumerate() {
        let due = started + interval * u32::try_from(i).unwrap_or(u32::MAX);
        tokio::time::sleep_until(due.into()).await;
        let checkouts = Arc::clone(checkouts);
        tasks.spawn(async move {
            let request = CheckoutRequest {
                order_id: ids::order_for_cart(cart),
                cart_id: cart,
                customer_id: user,
                email: Some(format!("{user}@bench.test")),
                client_ip: None,
                shipping_address: address(),
                billing_address: address(),
                shipping_method: ShippingMethodCode::parse("standard").unwrap(),
                coupon: None,
                payment_method: PaymentMethod::Card(CardNumber::parse("4242424242424242").unwrap()),
            };
            let view = checkouts.start(request, Utc::now()).await;
            let paid = matches!(view, Ok(ref v) if v.status == Some(OrderStatus::Paid));
            if let Err(e) = &view {
                eprintln!("checkout failed: {e:#}");
            }
            (paid, due.elapsed(), Instant::now())
        });
    }
    let mut latencies = Vec::with_capacity(offered);
    let (mut paid, mut failed) = (0, 0);
    let mut last = started;
    while let Some(done) = tasks.join_next().await {
        let (ok, latency, at) = done.expect("checkout task");
        last = last.max(at);
        if ok {
            paid += 1;
            latencies.push(latency);
        } else {
            failed += 1;
        }
    }
    latencies.sort();
    Measured {
        rate,
        offered,
        paid,
        failed,
        elapsed: last - started,
        latencies,
    }
}

/// The reference: single commands (`OpenCart`, one event each) by 16 concurrent
/// clients on the same database, for `seconds`.
async fn raw_command_rate(pool: &sqlx::PgPool, seconds: u64) -> anyhow::Result<f64> {
    let dispatcher = Arc::new(Dispatcher::<Cart>::new(pool.clone(), Loading::Replay));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let dispatcher = Arc::clone(&dispatcher);
        tasks.spawn(async move {
            let mut n = 0_u64;
            while Instant::now() < deadline {
                let cart = Uuid::new_v4();
                dispatcher
                    .execute(
                        &cart.to_string(),
                        CartCommand::OpenCart {
                            cart_id: cart,
                            owner: CartOwner::User {
                                user_id: Uuid::new_v4(),
                            },
                            currency: Currency::EUR,
                            at: Utc::now(),
                        },
                        &meta(),
                    )
                    .await?;
                n += 1;
            }
            anyhow::Ok(n)
        });
    }
    let mut total = 0;
    while let Some(n) = tasks.join_next().await {
        total += n??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// Waits until every projection has applied (or skipped past) everything committed
/// so far: the seeding, the reference's carts and the prepared ones, so that the
/// measured rate is the checkouts' own and not a backlog's.
async fn caught_up(pool: &sqlx::PgPool, watch: &CheckpointWatch) -> anyhow::Result<()> {
    let head: Option<i64> = sqlx::query_scalar("SELECT max(position) FROM events")
        .fetch_one(pool)
        .await?;
    let Some(head) = head else {
        return Ok(());
    };
    for projection in emporium_projections::projection::all() {
        watch
            .wait_for_position(projection.name(), head, Duration::from_secs(300))
            .await?;
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(bench())
}

async fn bench() -> anyhow::Result<()> {
    let seconds: u64 = env_or("BENCH_SECONDS", 5);
    let rates: Vec<u32> = std::env::var("BENCH_RATES")
        .unwrap_or_else(|_| "50,100,200,300".to_owned())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    let db = TestDatabase::create(2).await.context("bench database")?;
    // `BENCH_LOG_STATEMENTS=1`: every statement on this database goes to the server
    // log (`log_statement = all`, set before any connection of the platform), with
    // markers around each rate and an idle window, to count statements per checkout.
    let log_statements = std::env::var("BENCH_LOG_STATEMENTS").is_ok_and(|v| v == "1");
    if log_statements {
        sqlx::query(
            "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET log_statement = ''all''', current_database()); END $$",
        )
        .execute(db.pool())
        .await?;
    }
    let config_dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config");
    let mut settings = Settings::load(
        &config_dir,
        Environment::Test,
        &Overrides {
            port: Some(0),
            ..Overrides::default()
        },
    )?;
    settings.storage.mode = emporium_gateway::config::StorageMode::Distributed;
    settings.database.url = SecretUrl::new(db.url());
    // The platform's pool, which the checkouts use too (`BENCH_POOL`, default 16).
    settings.database.max_connections = env_or("BENCH_POOL", 16);
    settings.nats.url = SecretUrl::new(nats_url());
    settings.nats.stream_prefix = unique_prefix();
    let app = Application::build(settings.clone(), true).await?;
    // The application's own process manager: the one its checkout driver resumes
    // with, over the provider the settings select (the durable offline one). A second
    // `Checkouts` with a provider of its own raced the driver on checkouts older than
    // `resume_after` (10 s, reached once the queue grew) and failed with
    // `no payment intent` (the other provider's intent).
    let checkouts = app.checkouts();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));

    // Seeding, cart preparation and the reference (16 clients); the checkouts run on
    // the platform's own pool.
    let pool = emporium_commands::db::connect_lazy(db.url(), 16)?;
    let (skus, last) = seed(&pool).await?;
    let watch = CheckpointWatch::start(pool.clone()).await?;
    watch
        .wait_for_position("catalog", last, Duration::from_secs(120))
        .await?;

    let marker = |label: String| {
        let pool = pool.clone();
        async move {
            if log_statements {
                sqlx::query(&format!("SELECT 'bench-marker {label}'"))
                    .execute(&pool)
                    .await?;
            }
            anyhow::Ok(())
        }
    };
    if log_statements {
        // The platform's own background statements (relay, projections, driver) over
        // an idle second, to subtract.
        marker("idle-start".into()).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        marker("idle-end".into()).await?;
    }
    let keep_backlog = std::env::var("BENCH_BACKLOG").is_ok_and(|v| v == "1");
    let reference = raw_command_rate(&pool, seconds).await?;
    println!("reference: raw single-event commands, 16 clients: {reference:.0}/s");
    // A warm-up at the first rate, not reported (`BENCH_WARMUP` seconds, default 2; 0
    // skips it): the platform's fresh connections prepare their statements and
    // PostgreSQL vacuums after the reference's inserts, which otherwise lands in the
    // first measured rate.
    let warmup: u64 = env_or("BENCH_WARMUP", 2);
    if let Some(&rate) = rates.first()
        && warmup > 0
    {
        let n = usize::try_from(u64::from(rate) * warmup).unwrap_or(usize::MAX);
        let prepared = carts(&pool, &skus, n).await?;
        if !keep_backlog {
            caught_up(&pool, &watch).await?;
        }
        let m = run_rate(&checkouts, rate, prepared).await;
        eprintln!(
            "warm-up at {rate}/s for {warmup} s: {} paid, {} failed",
            m.paid, m.failed
        );
    }
    println!("| offered rate | checkouts | paid | failed | achieved (paid/s) | p50 | p99 |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for rate in rates {
        let n = usize::try_from(u64::from(rate) * seconds).unwrap_or(usize::MAX);
        let prepared = carts(&pool, &skus, n).await?;
        // The reference's carts and these are projected before the clock starts
        // (`BENCH_BACKLOG=1` keeps the old way: arrivals start with them pending).
        if !keep_backlog {
            caught_up(&pool, &watch).await?;
        }
        marker(format!("rate-{rate}-start")).await?;
        // For a profiler sampling only the arrivals.
        eprintln!("arrivals at {rate}/s start");
        let m = run_rate(&checkouts, rate, prepared).await;
        marker(format!("rate-{rate}-end")).await?;
        println!(
            "| {}/s | {} | {} | {} | {:.0} | {:.1} ms | {:.1} ms |",
            m.rate,
            m.offered,
            m.paid,
            m.failed,
            m.paid as f64 / m.elapsed.as_secs_f64(),
            percentile(&m.latencies, 0.50).as_secs_f64() * 1e3,
            percentile(&m.latencies, 0.99).as_secs_f64() * 1e3,
        );
    }
    let _ = stop.send(());
    server.await??;
    pool.close().await;
    db.drop_database().await?;
    Ok(())
}
