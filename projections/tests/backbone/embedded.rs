//! The embedded projection framework on real SQLite files: the embedded store written
//! through the real dispatchers, runners over its feed writing `read.db` beside it.
//! Builds, wakes and read-your-writes, restarts and a crash mid-batch (nothing twice,
//! nothing missed), poison events and retry, and a version bump swapped in atomically
//! under a reader on another connection.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use emporium_commands::store::SqliteStore;
use emporium_commands::{Dispatcher, Loading};
use emporium_domain::cart::{Cart, CartCommand, CartOwner};
use emporium_domain::{Currency, Quantity, Sku};
use emporium_projections::args;
use emporium_projections::envelope::{CommitPosition, EventEnvelope};
use emporium_projections::feed::SqliteFeed;
use emporium_projections::projection::embedded::{
    self, EmbeddedConfig, EmbeddedProjections, EmbeddedRunner, NotPorted, ReadDb,
};
use emporium_projections::projection::{
    self, CheckpointWatch, Projection, ProjectionState, RunError, WaitError,
};
use emporium_projections::sql::Conn;
use emporium_projections::views::CartsProjection;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::both_backends::Scenario;
use crate::helpers::PATIENCE;
use crate::support::meta;

/// Pauses `apply` at one event until released (to stop a runner mid-batch or a
/// build mid-transaction).
#[derive(Default)]
struct Stall {
    at: u64,
    entered: Notify,
    release: Notify,
}

/// A projection of cart events that notices double application: each event is a row
/// under a primary key, and a counter counts applications.
struct Ledger {
    version: u32,
    /// Events of this aggregate fail while set.
    poison: Mutex<Option<String>>,
    stall: Option<Arc<Stall>>,
}

impl Ledger {
    fn new(version: u32) -> Arc<Self> {
        Arc::new(Self {
            version,
            poison: Mutex::new(None),
            stall: None,
        })
    }

    fn stalling(version: u32, at: u64) -> (Arc<Self>, Arc<Stall>) {
        let stall = Arc::new(Stall {
            at,
            ..Stall::default()
        });
        let ledger = Arc::new(Self {
            version,
            poison: Mutex::new(None),
            stall: Some(Arc::clone(&stall)),
        });
        (ledger, stall)
    }
}

#[async_trait::async_trait]
impl Projection for Ledger {
    fn name(&self) -> &'static str {
        "ledger"
    }

    fn version(&self) -> u32 {
        self.version
    }

    fn tables(&self) -> &'static [&'static str] {
        &["ledger", "ledger_count"]
    }

    fn schema(&self) -> &'static str {
        crate::support::LEDGER_SCHEMA
    }

    fn sqlite_schema(&self) -> Option<&'static str> {
        Some(self.schema())
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &["cart"]
    }

    async fn apply(&self, conn: &mut Conn<'_>, event: &EventEnvelope) -> anyhow::Result<()> {
        let poisoned = self.poison.lock().unwrap().as_deref() == Some(&event.aggregate_id);
        anyhow::ensure!(
            !poisoned,
            "cannot apply the event of {}",
            event.aggregate_id
        );
        if let Some(stall) = &self.stall
            && stall.at == event.position
        {
            stall.entered.notify_one();
            stall.release.notified().await;
        }
        crate::support::ledger_record(conn, event, self.version).await
    }
}

/// A projection with no SQLite form.
struct PgOnly;

#[async_trait::async_trait]
impl Projection for PgOnly {
    fn name(&self) -> &'static str {
        "pg_only"
    }
    fn version(&self) -> u32 {
        1
    }
    fn tables(&self) -> &'static [&'static str] {
        &["pg_only"]
    }
    fn schema(&self) -> &'static str {
        "CREATE TABLE pg_only (id text[])"
    }
    fn aggregate_types(&self) -> &'static [&'static str] {
        &["cart"]
    }
    async fn apply(&self, _: &mut Conn<'_>, _: &EventEnvelope) -> anyhow::Result<()> {
        Ok(())
    }
}

/// The embedded store with a cart dispatcher over it.
struct Shop {
    scenario: Scenario,
    carts: Dispatcher<Cart, SqliteStore>,
}

impl Shop {
    async fn new() -> Self {
        let scenario = Scenario::new().await;
        let carts = Dispatcher::<Cart, SqliteStore>::over(scenario.store.clone(), Loading::Replay);
        Self { scenario, carts }
    }

    fn store(&self) -> SqlitePool {
        self.scenario.store.pool().clone()
    }

    fn feed(&self) -> SqliteFeed {
        SqliteFeed::new(self.store())
    }

    fn read_path(&self) -> std::path::PathBuf {
        self.scenario.dir.path().join("read.db")
    }

    async fn read(&self) -> ReadDb {
        ReadDb::open(&self.read_path())
            .await
            .expect("open the read-model database")
    }

    /// Another connection to the read models, as the gateway would have.
    async fn reader(&self) -> SqlitePool {
        SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(SqliteConnectOptions::new().filename(self.read_path()))
            .await
            .expect("a reader")
    }

    async fn run(&self, cart: Uuid, command: CartCommand) -> i64 {
        self.carts
            .execute(&cart.to_string(), command, &meta())
            .await
            .expect("cart command")
            .position
            .expect("an event recorded")
    }

    async fn open(&self) -> (Uuid, i64) {
        let cart = Uuid::new_v4();
        let position = self
            .run(
                cart,
                CartCommand::OpenCart {
                    cart_id: cart,
                    owner: CartOwner::User {
                        user_id: Uuid::new_v4(),
                    },
                    currency: Currency::EUR,
                    at: Utc::now(),
                },
            )
            .await;
        (cart, position)
    }

    async fn add(&self, cart: Uuid, sku: &str, quantity: i64) -> i64 {
        self.run(
            cart,
            CartCommand::AddItem {
                sku: Sku::parse(sku).expect("a sku"),
                product_id: Uuid::new_v4(),
                quantity: Quantity::new(quantity).expect("a quantity"),
                at: Utc::now(),
            },
        )
        .await
    }

    /// A cart with `events` events (opened, then items added); their last position.
    async fn cart_with(&self, events: usize) -> (Uuid, i64) {
        let (cart, mut last) = self.open().await;
        for i in 1..events {
            last = self.add(cart, &format!("SKU-{i}"), 1).await;
        }
        (cart, last)
    }

    fn runner(
        &self,
        read: &ReadDb,
        projection: Arc<dyn Projection>,
        batch_size: usize,
    ) -> (EmbeddedRunner<SqliteFeed>, CheckpointWatch) {
        let (watch, publisher) = CheckpointWatch::embedded(self.store());
        let runner = EmbeddedRunner::new(
            read.clone(),
            self.feed(),
            projection,
            EmbeddedConfig {
                batch_size,
                ..EmbeddedConfig::default()
            },
            publisher,
        )
        .expect("a SQLite projection");
        (runner, watch)
    }
}

/// Rows of the ledger and applications counted.
async fn ledger_rows(pool: &SqlitePool) -> (i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM ledger), coalesce((SELECT applied FROM ledger_count), 0)",
    )
    .fetch_one(pool)
    .await
    .expect("read the ledger")
}

async fn ledger_status(read: &ReadDb) -> projection::ProjectionStatus {
    embedded::status(read, None)
        .await
        .expect("status")
        .into_iter()
        .find(|s| s.name == "ledger")
        .expect("the ledger's checkpoint")
}

fn at(position: i64) -> CommitPosition {
    let position = u64::try_from(position).unwrap();
    CommitPosition {
        transaction_id: position,
        position,
    }
}

async fn item_count(read: &ReadDb, cart: Uuid) -> i64 {
    read.db()
        .scalar_optional::<i64>(
            "SELECT item_count FROM carts WHERE cart_id = $1",
            args![cart],
        )
        .await
        .expect("read the cart")
        .expect("the cart is projected")
}

#[tokio::test]
async fn embedded_projections_build_carts_and_a_waiter_wakes_when_woken() {
    let shop = Shop::new().await;
    let (cart, _) = shop.open().await;
    shop.add(cart, "MUG-1", 2).await;

    let all = projection::all();
    // An hour's poll: only the wake can bring the runner to the new command.
    let config = EmbeddedConfig {
        poll: Duration::from_secs(3600),
        ..EmbeddedConfig::default()
    };
    let running = EmbeddedProjections::start(shop.store(), shop.read().await, all.clone(), config)
        .await
        .expect("start the embedded projections");
    // Every read model of the platform has its SQLite form.
    assert!(
        running.skipped().is_empty(),
        "skipped: {:?}",
        running.skipped()
    );
    assert_eq!(running.running().len(), all.len(), "every projection runs");
    // Built from the whole store at start.
    assert_eq!(item_count(running.read_db(), cart).await, 2);

    let position = shop.add(cart, "MUG-2", 3).await;
    let watch = running.watch().clone();
    assert!(
        watch.checkpoint("carts").expect("announced at start") < at(position),
        "not applied before the wake"
    );
    let waiter = {
        let watch = watch.clone();
        tokio::spawn(async move { watch.wait_for_position("carts", position, PATIENCE).await })
    };
    running.wake_handle().wake();
    waiter.await.unwrap().expect("the waiter wakes");
    // Read-your-writes: the row is there once the wait returns.
    assert_eq!(item_count(running.read_db(), cart).await, 5);
    assert!(watch.changed("carts").unwrap() >= at(position));
    // The others skip cart events but still move past them, so a wait on any of
    // them for this position is answered too.
    for p in &all {
        watch
            .wait_for_position(p.name(), position, PATIENCE)
            .await
            .unwrap_or_else(|e| panic!("{} never reached the cart's position: {e}", p.name()));
    }
    assert!(matches!(
        watch
            .wait_for_position("carts", position + 1_000, Duration::from_millis(10))
            .await,
        Err(WaitError::UnknownPosition(_))
    ));
    let status = embedded::status(running.read_db(), Some(u64::try_from(position).unwrap()))
        .await
        .unwrap();
    let carts = status.iter().find(|s| s.name == "carts").unwrap();
    assert_eq!(carts.state, ProjectionState::Running);
    assert_eq!(carts.lag, Some(0));
    assert_eq!(carts.version, CartsProjection.version());

    for (name, ended) in running.shutdown().await {
        ended.unwrap_or_else(|e| panic!("{name} ended with {e}"));
    }
}

#[tokio::test]
async fn a_projection_without_a_sqlite_schema_is_skipped_or_refused() {
    let shop = Shop::new().await;
    let available: Vec<Arc<dyn Projection>> = vec![Ledger::new(1), Arc::new(PgOnly)];
    assert!(matches!(
        embedded::select(&available, &["ledger", "pg_only"]),
        Err(NotPorted::NoSqliteSchema(name)) if name == "pg_only"
    ));
    assert!(matches!(
        embedded::select(&available, &["nope"]),
        Err(NotPorted::Unknown(name)) if name == "nope"
    ));
    assert_eq!(embedded::select(&available, &["ledger"]).unwrap().len(), 1);
    let read = shop.read().await;
    let (_, publisher) = CheckpointWatch::embedded(shop.store());
    assert!(
        EmbeddedRunner::new(
            read.clone(),
            shop.feed(),
            Arc::new(PgOnly),
            EmbeddedConfig::default(),
            publisher,
        )
        .is_err()
    );
    let running =
        EmbeddedProjections::start(shop.store(), read, available, EmbeddedConfig::default())
            .await
            .unwrap();
    assert_eq!(running.running(), ["ledger"]);
    assert_eq!(running.skipped(), ["pg_only"]);
    running.shutdown().await;
}

#[tokio::test]
async fn a_crash_mid_batch_and_restarts_apply_nothing_twice_and_miss_nothing() {
    let shop = Shop::new().await;
    let read = shop.read().await;
    let events = 20;
    // Built empty first, so the events below go through batches of 5.
    let (mut first, watch) = shop.runner(&read, Ledger::new(1), 5);
    first.prepare().await.unwrap();
    assert_eq!(watch.checkpoint("ledger"), Some(CommitPosition::START));
    shop.cart_with(events).await;
    let positions: Vec<u64> = shop
        .scenario
        .events()
        .await
        .iter()
        .map(|e| e.position)
        .collect();
    assert_eq!(positions.len(), events);

    // A runner that stops at the 13th event, inside the third batch (11..15): the
    // first two batches are committed, 11 and 12 are applied in the open transaction.
    let (ledger, stall) = Ledger::stalling(1, positions[12]);
    let (mut crashing, _) = shop.runner(&read, ledger, 5);
    let task = tokio::spawn(async move { crashing.run_until_caught_up().await });
    stall.entered.notified().await;
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    read.close().await;

    let read = shop.read().await;
    assert_eq!(
        ledger_rows(read.pool()).await,
        (10, 10),
        "only commits stay"
    );
    assert_eq!(
        ledger_status(&read).await.checkpoint.cursor.position,
        positions[9]
    );

    // Restart: a new runner on the same files.
    let (mut restarted, watch) = shop.runner(&read, Ledger::new(1), 5);
    assert_eq!(restarted.run_until_caught_up().await.unwrap(), 10);
    assert_eq!(ledger_rows(read.pool()).await, (20, 20));
    assert_eq!(watch.checkpoint("ledger").unwrap().position, positions[19]);
    drop(restarted);

    // More events, another restart.
    let (_, last) = shop.cart_with(5).await;
    let (mut again, watch) = shop.runner(&read, Ledger::new(1), 7);
    assert_eq!(again.run_until_caught_up().await.unwrap(), 5);
    assert_eq!(again.run_until_caught_up().await.unwrap(), 0);
    assert_eq!(ledger_rows(read.pool()).await, (25, 25));
    assert_eq!(watch.checkpoint("ledger"), Some(at(last)));
}

#[tokio::test]
async fn a_poison_event_stops_the_runner_with_its_error_until_retried() {
    let shop = Shop::new().await;
    let read = shop.read().await;
    let ledger = Ledger::new(1);
    let (mut runner, watch) = shop.runner(&read, Arc::clone(&ledger) as Arc<dyn Projection>, 500);
    runner.prepare().await.unwrap();

    let (good, before) = shop.cart_with(3).await;
    let (bad, poison_at) = shop.open().await;
    shop.add(good, "AFTER-1", 1).await;
    let last = shop.add(good, "AFTER-2", 1).await;
    *ledger.poison.lock().unwrap() = Some(bad.to_string());

    // One batch of six: apply_batch fails, the events before the bad one are kept.
    let stopped = runner.run_until_caught_up().await;
    match stopped {
        Err(RunError::Stopped {
            stream_sequence,
            error,
            ..
        }) => {
            assert_eq!(stream_sequence, Some(u64::try_from(poison_at).unwrap()));
            assert!(error.contains("cannot apply the event of"), "{error}");
        }
        other => panic!("expected a stop, got {other:?}"),
    }
    assert_eq!(ledger_rows(read.pool()).await, (3, 3));
    assert_eq!(watch.checkpoint("ledger"), Some(at(before)));
    let status = ledger_status(&read).await;
    assert_eq!(status.checkpoint.cursor, at(before));
    match status.state {
        ProjectionState::Failed {
            error,
            stream_sequence,
            event_id,
            at,
        } => {
            assert!(error.contains(&bad.to_string()), "{error}");
            assert_eq!(stream_sequence, Some(u64::try_from(poison_at).unwrap()));
            assert!(event_id.is_some() && at.is_some());
        }
        ProjectionState::Running => panic!("not recorded as failed"),
    }
    // It stays stopped, skipping nothing.
    assert!(matches!(
        runner.run_until_caught_up().await,
        Err(RunError::Stopped { .. })
    ));
    assert_eq!(ledger_rows(read.pool()).await, (3, 3));
    drop(runner);

    // Fixed; the handle's retry clears the failure and wakes the runner.
    *ledger.poison.lock().unwrap() = None;
    let running = EmbeddedProjections::start(
        shop.store(),
        read.clone(),
        vec![Arc::clone(&ledger) as Arc<dyn Projection>],
        EmbeddedConfig {
            poll: Duration::from_secs(3600),
            ..EmbeddedConfig::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(running.watch().checkpoint("ledger"), Some(at(before)));
    assert!(running.retry("ledger").await.unwrap(), "it had failed");
    running
        .watch()
        .wait_for_position("ledger", last, PATIENCE)
        .await
        .expect("resumed after the retry");
    assert_eq!(ledger_rows(read.pool()).await, (6, 6));
    assert_eq!(ledger_status(&read).await.state, ProjectionState::Running);
    assert!(!running.retry("ledger").await.unwrap(), "nothing to retry");
    assert!(running.retry("nope").await.is_err());
    running.shutdown().await;
}

#[tokio::test]
async fn a_version_bump_rebuilds_in_one_transaction_while_readers_keep_the_old_rows() {
    let shop = Shop::new().await;
    let (_, last) = shop.cart_with(10).await;
    let read = shop.read().await;
    let (mut v1, _) = shop.runner(&read, Ledger::new(1), 500);
    assert_eq!(v1.prepare().await.unwrap().cursor, at(last));
    let reader = shop.reader().await;
    let built_by = |pool: SqlitePool| async move {
        sqlx::query_as::<_, (i64, i64, i64, i64, i64)>(
            "SELECT count(*), min(built_by), max(built_by),
                    (SELECT applied FROM ledger_count),
                    (SELECT version FROM projection_checkpoints WHERE name = 'ledger')
               FROM ledger",
        )
        .fetch_one(&pool)
        .await
        .expect("read the ledger")
    };
    assert_eq!(built_by(reader.clone()).await, (10, 1, 1, 10, 1));

    // Version 2 stops half-way through its build: its tables are dropped, recreated
    // and half filled inside the open transaction.
    let positions: Vec<u64> = shop
        .scenario
        .events()
        .await
        .iter()
        .map(|e| e.position)
        .collect();
    let (ledger, stall) = Ledger::stalling(2, positions[5]);
    let (mut v2, watch) = shop.runner(&read, ledger, 500);
    let build = tokio::spawn(async move {
        let checkpoint = v2.prepare().await;
        (v2, checkpoint)
    });
    stall.entered.notified().await;
    assert_eq!(
        built_by(reader.clone()).await,
        (10, 1, 1, 10, 1),
        "the reader sees version 1 during the build"
    );
    stall.release.notify_one();
    let (mut v2, checkpoint) = build.await.unwrap();
    assert_eq!(checkpoint.unwrap().version, 2);
    assert_eq!(
        built_by(reader.clone()).await,
        (10, 2, 2, 10, 2),
        "the reader sees version 2 after the swap"
    );
    assert_eq!(watch.checkpoint("ledger"), Some(at(last)));

    // Version 1 no longer writes; version 2 goes on.
    assert!(matches!(
        v1.run_once().await,
        Err(RunError::Superseded { live: 2, .. })
    ));
    shop.cart_with(2).await;
    assert_eq!(v2.run_until_caught_up().await.unwrap(), 2);
    assert_eq!(built_by(reader).await, (12, 2, 2, 12, 2));
}

#[tokio::test]
async fn a_build_that_meets_a_poison_event_keeps_the_live_version_until_retried() {
    let shop = Shop::new().await;
    shop.cart_with(4).await;
    let (bad, poison_at) = shop.open().await;
    let poison_at = u64::try_from(poison_at).unwrap();
    let read = shop.read().await;
    let (mut v1, _) = shop.runner(&read, Ledger::new(1), 500);
    v1.prepare().await.unwrap();
    assert_eq!(ledger_rows(read.pool()).await, (5, 5));
    drop(v1);

    let v2 = Ledger::new(2);
    *v2.poison.lock().unwrap() = Some(bad.to_string());
    let (mut runner, _) = shop.runner(&read, Arc::clone(&v2) as Arc<dyn Projection>, 500);
    for attempt in 0..2 {
        match runner.prepare().await {
            Err(RunError::Stopped {
                stream_sequence,
                error,
                ..
            }) => {
                assert_eq!(stream_sequence, Some(poison_at));
                assert!(error.contains("build ledger v2"), "{error}");
            }
            other => panic!("attempt {attempt}: expected a stop, got {other:?}"),
        }
    }
    // The whole build rolled back: version 1's tables and rows stay.
    let built_by: Vec<i64> = sqlx::query_scalar("SELECT DISTINCT built_by FROM ledger")
        .fetch_all(read.pool())
        .await
        .unwrap();
    assert_eq!(built_by, [1]);
    assert_eq!(ledger_rows(read.pool()).await, (5, 5));
    let status = ledger_status(&read).await;
    assert_eq!(status.version, 1);
    assert!(matches!(
        status.state,
        ProjectionState::Failed { stream_sequence: Some(p), .. } if p == poison_at
    ));

    // Fixed and retried: version 2 is built.
    *v2.poison.lock().unwrap() = None;
    assert!(embedded::retry(&read, "ledger").await.unwrap());
    assert_eq!(runner.prepare().await.unwrap().version, 2);
    let built_by: Vec<i64> = sqlx::query_scalar("SELECT DISTINCT built_by FROM ledger")
        .fetch_all(read.pool())
        .await
        .unwrap();
    assert_eq!(built_by, [2]);
    assert_eq!(ledger_rows(read.pool()).await, (5, 5));
    assert_eq!(ledger_status(&read).await.state, ProjectionState::Running);

    // A first build that fails leaves no tables, and a failed row of version 0.
    let first = ReadDb::open(&shop.scenario.dir.path().join("first.db"))
        .await
        .unwrap();
    let (mut runner, watch) = shop.runner(&first, Arc::clone(&v2) as Arc<dyn Projection>, 500);
    *v2.poison.lock().unwrap() = Some(bad.to_string());
    assert!(matches!(
        runner.prepare().await,
        Err(RunError::Stopped { .. })
    ));
    let tables: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE name LIKE 'ledger%'")
            .fetch_one(first.pool())
            .await
            .unwrap();
    assert_eq!(tables, 0);
    assert_eq!(ledger_status(&first).await.version, 0);
    assert_eq!(watch.checkpoint("ledger"), None, "nothing to announce");
    *v2.poison.lock().unwrap() = None;
    assert!(embedded::retry(&first, "ledger").await.unwrap());
    assert_eq!(runner.prepare().await.unwrap().version, 2);
    assert_eq!(ledger_rows(first.pool()).await, (5, 5));
}

type CartRow = (Uuid, i64, String, String, String);

async fn cart_rows(pool: &SqlitePool) -> Vec<CartRow> {
    sqlx::query_as(
        "SELECT cart_id, item_count, lines, status, updated_at FROM carts ORDER BY cart_id",
    )
    .fetch_all(pool)
    .await
    .expect("read carts")
}

#[tokio::test]
async fn a_projector_killed_between_apply_and_commit_loses_nothing() {
    use std::os::unix::process::ExitStatusExt as _;

    let shop = Shop::new().await;
    let read = shop.read().await;
    // Built empty first, so the events below go through batches.
    let (mut runner, _) = shop.runner(&read, Arc::new(CartsProjection), 4);
    runner.prepare().await.unwrap();
    drop(runner);
    for _ in 0..3 {
        shop.cart_with(10).await;
    }
    let positions: Vec<u64> = shop
        .scenario
        .events()
        .await
        .iter()
        .map(|e| e.position)
        .collect();
    assert_eq!(positions.len(), 30);

    // A real process, killed with SIGKILL once its third batch is applied and
    // checkpointed but not committed.
    let mut projector =
        std::process::Command::new(env!("CARGO_BIN_EXE_emporium-embedded-projector"));
    projector
        .env("EVENTS_DB", shop.scenario.dir.path().join("events.db"))
        .env("READ_DB", shop.read_path())
        .env("PROJECTIONS", "carts")
        .env("BATCH_SIZE", "4")
        .env("CRASH_BEFORE_COMMIT", "3");
    let output = tokio::task::spawn_blocking(move || projector.output())
        .await
        .unwrap()
        .expect("run the projector");
    assert_eq!(
        output.status.signal(),
        Some(9),
        "killed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let status = embedded::status(&read, None).await.unwrap();
    let carts = status.iter().find(|s| s.name == "carts").unwrap();
    assert_eq!(
        carts.checkpoint.cursor.position, positions[7],
        "two batches committed, the third lost with the process"
    );

    // Restarted on the same files, it applies the rest, and the read model equals a
    // build from scratch.
    let (mut restarted, _) = shop.runner(&read, Arc::new(CartsProjection), 4);
    assert_eq!(restarted.run_until_caught_up().await.unwrap(), 22);
    let fresh = ReadDb::open(&shop.scenario.dir.path().join("fresh.db"))
        .await
        .unwrap();
    let (mut rebuilt, _) = shop.runner(&fresh, Arc::new(CartsProjection), 500);
    rebuilt.prepare().await.unwrap();
    let rows = cart_rows(read.pool()).await;
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|row| row.1 == 9), "nine items in each cart");
    assert_eq!(rows, cart_rows(fresh.pool()).await);
}
