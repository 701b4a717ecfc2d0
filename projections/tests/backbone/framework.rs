//! The projection framework against real PostgreSQL and NATS: redelivery, poison
//! events and retry, a version bump rebuilt into shadow tables and swapped in while
//! the old tables serve, read-your-writes, and projector processes killed between
//! their commit and their ack.

use std::os::unix::process::ExitStatusExt as _;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use emporium_projections::envelope::EventEnvelope;
use emporium_projections::projection::{
    self, CheckpointWatch, Projection, ProjectionRunner, ProjectionState, Rebuild, RunError,
    RunnerConfig, WaitError,
};
use emporium_projections::sql::Conn;
use emporium_projections::views::{CatalogProjection, InventoryProjection};

use crate::helpers::{PATIENCE, TestBackbone};
use crate::support::{Shop, assert_equals_rebuild, project, runner, spawn};

/// A projection of the test events (`order` aggregates written by
/// `TestBackbone::insert_event`) that notices double application: each event is a
/// row under a primary key, and a counter counts applications.
struct Ledger {
    version: u32,
    /// While set, events of aggregates named `poison...` fail.
    broken: Arc<AtomicBool>,
}

impl Ledger {
    fn new(version: u32) -> Arc<Self> {
        Arc::new(Self {
            version,
            broken: Arc::new(AtomicBool::new(false)),
        })
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

    fn aggregate_types(&self) -> &'static [&'static str] {
        &["order"]
    }

    async fn apply(&self, conn: &mut Conn<'_>, event: &EventEnvelope) -> anyhow::Result<()> {
        anyhow::ensure!(
            !(self.broken.load(Ordering::SeqCst) && event.aggregate_id.starts_with("poison")),
            "cannot apply the event of {}",
            event.aggregate_id
        );
        crate::support::ledger_record(conn, event, self.version).await
    }
}

async fn ledger_rows(app: &TestBackbone) -> (i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM ledger), coalesce((SELECT applied FROM ledger_count), 0)",
    )
    .fetch_one(&app.pool)
    .await
    .expect("read the ledger")
}

async fn insert(app: &TestBackbone, aggregate: &str) {
    let mut conn = app.pool.acquire().await.unwrap();
    TestBackbone::insert_event(&mut conn, aggregate, 1).await;
}

#[tokio::test]
async fn a_redelivered_stream_applies_once() {
    let app = spawn().await;
    let mut relay = app.relay();
    let mut ledger = runner(&app, Ledger::new(1));
    // Nothing yet: the first run builds the (empty) projection and opens the consumer.
    assert_eq!(ledger.run_until_caught_up().await.unwrap(), 0);
    app.append(40).await;
    app.relay_until_caught_up(&mut relay).await;
    assert_eq!(ledger.run_until_caught_up().await.unwrap(), 40);
    assert_eq!(ledger_rows(&app).await, (40, 40));

    // JetStream forgets every ack and delivers the whole stream again.
    let stream = app
        .jetstream
        .get_stream(app.layout.stream_name())
        .await
        .unwrap();
    let name = ledger.consumer_name();
    stream.delete_consumer(&name).await.unwrap();
    stream
        .create_consumer(pull::Config {
            durable_name: Some(name.clone()),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::All,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ledger.run_until_caught_up().await.unwrap(), 0);
    assert_eq!(
        ledger_rows(&app).await,
        (40, 40),
        "a redelivery applied twice"
    );
    let mut consumer: async_nats::jetstream::consumer::PullConsumer =
        stream.get_consumer(&name).await.unwrap();
    let info = consumer.info().await.unwrap();
    assert_eq!(info.num_ack_pending, 0, "the skipped messages were acked");
    assert_eq!(info.num_pending, 0);

    // And the projection goes on from there.
    app.append(5).await;
    app.relay_until_caught_up(&mut relay).await;
    assert_eq!(ledger.run_until_caught_up().await.unwrap(), 5);
    assert_eq!(ledger_rows(&app).await, (45, 45));
    app.teardown().await;
}

#[tokio::test]
async fn a_runner_whose_checkpoint_moved_elsewhere_judges_again_and_applies_once() {
    let app = spawn().await;
    let mut relay = app.relay();
    let projection = Ledger::new(1);
    let mut first = runner(&app, Arc::clone(&projection) as Arc<dyn Projection>);
    // The first run builds the (empty) projection and opens the consumer.
    assert_eq!(first.run_until_caught_up().await.unwrap(), 0);
    app.append(40).await;
    app.relay_until_caught_up(&mut relay).await;
    assert_eq!(first.run_until_caught_up().await.unwrap(), 40);

    // A second runner of the same projection (another process, say) moves the
    // checkpoint past what the first one remembers.
    let mut second = runner(&app, Arc::clone(&projection) as Arc<dyn Projection>);
    app.append(5).await;
    app.relay_until_caught_up(&mut relay).await;
    assert_eq!(second.run_until_caught_up().await.unwrap(), 5);
    assert_eq!(ledger_rows(&app).await, (45, 45));

    // The whole stream comes to the first runner again: by its memory, 41..45 follow
    // its checkpoint; the row says otherwise, and the row wins.
    let stream = app
        .jetstream
        .get_stream(app.layout.stream_name())
        .await
        .unwrap();
    let name = first.consumer_name();
    stream.delete_consumer(&name).await.unwrap();
    stream
        .create_consumer(pull::Config {
            durable_name: Some(name.clone()),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::All,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(first.run_until_caught_up().await.unwrap(), 0);
    assert_eq!(ledger_rows(&app).await, (45, 45), "applied twice");

    // Both go on from the row.
    app.append(3).await;
    app.relay_until_caught_up(&mut relay).await;
    assert_eq!(first.run_until_caught_up().await.unwrap(), 3);
    app.append(2).await;
    app.relay_until_caught_up(&mut relay).await;
    assert_eq!(second.run_until_caught_up().await.unwrap(), 2);
    assert_eq!(ledger_rows(&app).await, (50, 50));
    app.teardown().await;
}

#[tokio::test]
async fn a_poison_event_stops_the_projection_until_retried() {
    let app = spawn().await;
    let mut relay = app.relay();
    let ledger = Ledger::new(1);
    ledger.broken.store(true, Ordering::SeqCst);
    let mut runner = runner(&app, Arc::clone(&ledger) as Arc<dyn Projection>);
    runner.run_until_caught_up().await.unwrap();
    for aggregate in ["a", "b", "poison-1", "c"] {
        insert(&app, aggregate).await;
    }
    app.relay_until_caught_up(&mut relay).await;

    let error = runner.run_until_caught_up().await.unwrap_err();
    assert!(
        matches!(&error, RunError::Stopped { stream_sequence: Some(3), error, .. }
            if error.contains("cannot apply the event of poison-1")),
        "{error}"
    );
    // The events before the bad one were kept; nothing after it was applied.
    assert_eq!(ledger_rows(&app).await, (2, 2));
    let status = projection::status(&app.pool, Some(4)).await.unwrap();
    let ledger_status = status.iter().find(|s| s.name == "ledger").unwrap();
    assert_eq!(ledger_status.checkpoint.stream_sequence, 2);
    assert_eq!(ledger_status.lag, Some(2));
    assert!(
        matches!(&ledger_status.state, ProjectionState::Failed { error, stream_sequence: Some(3), event_id: Some(_), .. }
            if error.contains("poison-1")),
        "{:?}",
        ledger_status.state
    );

    // It stays stopped: no skipping past the event, not even by a new runner.
    assert!(matches!(
        runner.run_once().await,
        Err(RunError::Stopped { .. })
    ));
    let mut other = crate::support::runner(&app, Arc::clone(&ledger) as Arc<dyn Projection>);
    assert!(matches!(
        other.run_until_caught_up().await,
        Err(RunError::Stopped { .. })
    ));
    assert_eq!(ledger_rows(&app).await, (2, 2));

    // Fixed and retried, it resumes at the event that failed.
    ledger.broken.store(false, Ordering::SeqCst);
    assert!(projection::retry(&app.pool, "ledger").await.unwrap());
    assert_eq!(runner.run_until_caught_up().await.unwrap(), 2);
    assert_eq!(ledger_rows(&app).await, (4, 4));
    let status = projection::status(&app.pool, None).await.unwrap();
    assert_eq!(status[0].state, ProjectionState::Running);
    assert!(!projection::retry(&app.pool, "ledger").await.unwrap());
    assert!(projection::retry(&app.pool, "nonexistent").await.is_err());
    app.teardown().await;
}

#[tokio::test]
async fn a_version_bump_rebuilds_into_shadow_tables_and_swaps_while_reads_go_on() {
    let app = spawn().await;
    let mut relay = app.relay();
    let mut v1 = runner(&app, Ledger::new(1));
    app.append(30).await;
    project(&app, &mut relay, &mut [&mut v1]).await;
    app.append(20).await;
    app.relay_until_caught_up(&mut relay).await;

    let built_by = |app: &TestBackbone| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_as::<_, (i32, i64)>(
                "SELECT built_by, count(*) FROM ledger GROUP BY built_by ORDER BY built_by",
            )
            .fetch_all(&pool)
            .await
            .expect("the live table answers")
        }
    };
    let mut rebuild = Rebuild::start(app.pool.clone(), Ledger::new(2), 10)
        .await
        .unwrap();
    assert_eq!(rebuild.schema(), "rebuild_ledger_v2");
    assert_eq!(rebuild.step().await.unwrap(), 10);
    // Mid-rebuild: the old version serves, the shadow table fills.
    assert_eq!(built_by(&app).await, [(1, 30)]);
    let shadow: i64 = sqlx::query_scalar("SELECT count(*) FROM rebuild_ledger_v2.ledger")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(shadow, 10);
    let status = projection::status(&app.pool, None).await.unwrap();
    assert_eq!(status[0].version, 1);
    assert_eq!(status[0].rebuilding.map(|(v, _)| v), Some(2));

    // A reader holding the old table across the swap sees it whole, then the new one.
    let reader = {
        let pool = app.pool.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..50 {
                let rows: Vec<(i32, i64)> = sqlx::query_as(
                    "SELECT built_by, count(*) FROM ledger GROUP BY built_by ORDER BY built_by",
                )
                .fetch_all(&pool)
                .await
                .expect("reads keep working during the swap");
                seen.push(rows);
                tokio::task::yield_now().await;
            }
            seen
        })
    };
    assert_eq!(rebuild.run_to_end().await.unwrap(), 40);
    let checkpoint = rebuild.swap().await.unwrap();
    assert_eq!(checkpoint.version, 2);
    assert_eq!(checkpoint.stream_sequence, 50);
    for rows in reader.await.unwrap() {
        assert!(
            rows == [(1, 30)] || rows == [(2, 50)],
            "a reader saw a half-swapped table: {rows:?}"
        );
    }
    assert_eq!(built_by(&app).await, [(2, 50)]);
    let schemas: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'rebuild_%'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(schemas, 0, "the shadow schema is gone");

    // The new version continues from the stream after the rebuilt cursor...
    let mut v2 = runner(&app, Ledger::new(2));
    app.append(5).await;
    app.relay_until_caught_up(&mut relay).await;
    assert_eq!(v2.run_until_caught_up().await.unwrap(), 5);
    assert_eq!(built_by(&app).await, [(2, 55)]);
    assert_eq!(ledger_rows(&app).await, (55, 55));
    // ...and the old one may no longer write.
    assert!(matches!(
        v1.run_until_caught_up().await,
        Err(RunError::Superseded { live: 2, .. })
    ));
    assert_eq!(ledger_rows(&app).await, (55, 55));
    app.teardown().await;
}

#[tokio::test]
async fn read_your_writes_waits_until_the_projection_passed_the_commit() {
    let app = spawn().await;
    let shop = Shop::new(&app);
    let mut relay = app.relay();
    let mut inventory = runner(&app, Arc::new(InventoryProjection));
    let watch = CheckpointWatch::start(app.pool.clone()).await.unwrap();
    inventory.run_until_caught_up().await.unwrap();

    let position = shop.stock("MUG-1", 7, 0).await;
    // Committed but not projected: the wait gives up at its bound.
    let started = Instant::now();
    let timeout = Duration::from_millis(300);
    assert!(matches!(
        watch
            .wait_for_position("inventory", position, timeout)
            .await,
        Err(WaitError::Timeout { .. })
    ));
    assert!(started.elapsed() >= timeout);
    assert!(matches!(
        watch
            .wait_for_position("inventory", position + 1_000, timeout)
            .await,
        Err(WaitError::UnknownPosition(_))
    ));

    // A waiter parked before the projection runs is released by its commit.
    let waiter = {
        let watch = watch.clone();
        tokio::spawn(async move {
            watch
                .wait_for_position("inventory", position, PATIENCE)
                .await
        })
    };
    project(&app, &mut relay, &mut [&mut inventory]).await;
    waiter.await.unwrap().expect("released once projected");
    let on_hand: i64 =
        sqlx::query_scalar("SELECT on_hand FROM inventory_levels WHERE sku = 'MUG-1'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(on_hand, 7, "the write is readable once the wait returns");
    // Already passed: at once.
    watch
        .wait_for_position("inventory", position, Duration::from_millis(1))
        .await
        .unwrap();
    app.teardown().await;
}

/// Commits `count` events of a `cart` aggregate (which `Ledger` does not read);
/// returns the last one's position.
async fn insert_carts(app: &TestBackbone, count: i64) -> i64 {
    let cart = uuid::Uuid::new_v4().to_string();
    let mut last = 0;
    for sequence in 1..=count {
        last = sqlx::query_scalar(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                                 event_version, payload, metadata)
             VALUES ('cart', $1, $2, 'ItemAdded', '1', '{}', '{}')
             RETURNING position",
        )
        .bind(&cart)
        .bind(sequence)
        .fetch_one(&app.pool)
        .await
        .expect("insert a cart event");
    }
    last
}

async fn ledger_checkpoint(app: &TestBackbone) -> projection::Checkpoint {
    projection::status(&app.pool, None)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.name == "ledger")
        .expect("the ledger's checkpoint")
        .checkpoint
}

#[tokio::test]
async fn a_waiter_for_an_event_the_projection_skips_wakes_without_a_write_and_a_restart_loses_nothing()
 {
    let app = spawn().await;
    let mut relay = app.relay();
    let mut ledger = runner(&app, Ledger::new(1));
    assert_eq!(ledger.run_until_caught_up().await.unwrap(), 0);
    app.append(3).await;
    app.relay_until_caught_up(&mut relay).await;
    assert_eq!(ledger.run_until_caught_up().await.unwrap(), 3);
    let watch = CheckpointWatch::start(app.pool.clone()).await.unwrap();
    let written = ledger_checkpoint(&app).await;
    assert_eq!(written.stream_sequence, 3);

    // Events the ledger only skips: judged, acked and announced, not written.
    let skipped = insert_carts(&app, 5).await;
    app.relay_until_caught_up(&mut relay).await;
    let waiter = {
        let watch = watch.clone();
        tokio::spawn(async move { watch.wait_for_position("ledger", skipped, PATIENCE).await })
    };
    assert_eq!(ledger.run_once().await.unwrap(), 5);
    waiter
        .await
        .unwrap()
        .expect("a waiter for a skipped event is answered");
    assert_eq!(
        ledger_checkpoint(&app).await,
        written,
        "nothing was written"
    );
    assert_eq!(
        watch.checkpoint("ledger").unwrap().position,
        u64::try_from(skipped).unwrap()
    );

    // The next applying batch writes the skipped progress with its own.
    app.append(2).await;
    app.relay_until_caught_up(&mut relay).await;
    assert_eq!(ledger.run_once().await.unwrap(), 2);
    assert_eq!(ledger_checkpoint(&app).await.stream_sequence, 10);
    assert_eq!(ledger_rows(&app).await, (5, 5));

    // Skipped again, then the runner dies before writing it (dropped, as a crash
    // would leave it): its successor is delivered those events again (they are acked
    // only with the write of their progress), skips them, applies what follows once.
    let skipped = insert_carts(&app, 4).await;
    app.relay_until_caught_up(&mut relay).await;
    assert_eq!(ledger.run_once().await.unwrap(), 4);
    watch
        .wait_for_position("ledger", skipped, PATIENCE)
        .await
        .unwrap();
    assert_eq!(ledger_checkpoint(&app).await.stream_sequence, 10);
    let consumer = ledger.consumer_name();
    drop(ledger);
    assert_eq!(
        ack_floor(&app, &consumer).await,
        10,
        "skipped messages were acked before their progress was written"
    );
    app.append(1).await;
    app.relay_until_caught_up(&mut relay).await;
    let mut successor = runner(&app, Ledger::new(1));
    assert_eq!(successor.run_until_caught_up().await.unwrap(), 5);
    assert_eq!(
        ledger_rows(&app).await,
        (6, 6),
        "nothing applied twice or lost"
    );
    assert_eq!(ledger_checkpoint(&app).await.stream_sequence, 15);

    // Caught up on skipped events alone, the checkpoint is written when idle.
    insert_carts(&app, 2).await;
    app.relay_until_caught_up(&mut relay).await;
    assert_eq!(successor.run_until_caught_up().await.unwrap(), 2);
    assert_eq!(ledger_checkpoint(&app).await.stream_sequence, 17);
    assert_eq!(ledger_rows(&app).await, (6, 6));
    app.teardown().await;
}

/// A runner of the ledger with `config`, its (empty) projection built and its
/// consumer open: what a running test starts from.
async fn built_ledger(app: &TestBackbone, config: RunnerConfig) -> ProjectionRunner {
    let mut ledger = ProjectionRunner::new(
        app.pool.clone(),
        app.jetstream.clone(),
        app.layout.clone(),
        Ledger::new(1),
        config,
    );
    assert_eq!(ledger.run_until_caught_up().await.unwrap(), 0);
    ledger
}

#[tokio::test]
async fn a_running_runner_writes_skipped_progress_within_skip_flush() {
    let app = spawn().await;
    let mut relay = app.relay();
    let config = RunnerConfig {
        skip_flush: Duration::from_millis(50),
        ..RunnerConfig::default()
    };
    let ledger = built_ledger(&app, config).await;
    let consumer_name = ledger.consumer_name();
    // Another process's view: only what is written and announced in PostgreSQL.
    let mut listener = sqlx::postgres::PgListener::connect_with(&app.pool)
        .await
        .unwrap();
    listener
        .listen(projection::checkpoint::CHANNEL)
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(ledger.run(async move {
        let _ = stopped.await;
    }));
    // One applying batch first, so the runner knows its row's revision; then skips.
    let watch = CheckpointWatch::start(app.pool.clone()).await.unwrap();
    app.append(1).await;
    app.relay_until_caught_up(&mut relay).await;
    let applied: i64 = sqlx::query_scalar("SELECT max(position) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    watch
        .wait_for_position("ledger", applied, PATIENCE)
        .await
        .unwrap();
    let skipped = insert_carts(&app, 3).await;
    app.relay_until_caught_up(&mut relay).await;
    let announced = tokio::time::timeout(PATIENCE, async {
        loop {
            let notification = listener.recv().await.unwrap();
            let parts: Vec<&str> = notification.payload().split(' ').collect();
            if parts[0] == "ledger" && parts[3] == skipped.to_string() {
                return parts[4].to_owned();
            }
        }
    })
    .await
    .expect("the skipped progress is written");
    assert_eq!(announced, "0", "announced as a move that changed nothing");
    assert_eq!(ledger_checkpoint(&app).await.stream_sequence, 4);
    assert_eq!(ledger_rows(&app).await, (1, 1));
    // The skipped messages are acked with that write: one ack, not one a batch.
    let deadline = Instant::now() + PATIENCE;
    while ack_floor(&app, &consumer_name).await < 4 {
        assert!(
            Instant::now() < deadline,
            "the skipped messages were not acked with their progress"
        );
    }
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
    app.teardown().await;
}

/// The stream sequence a durable consumer's acks cover.
async fn ack_floor(app: &TestBackbone, consumer: &str) -> u64 {
    let stream = app
        .jetstream
        .get_stream(app.layout.stream_name())
        .await
        .unwrap();
    let mut consumer: async_nats::jetstream::consumer::PullConsumer =
        stream.get_consumer(consumer).await.unwrap();
    consumer.info().await.unwrap().ack_floor.stream_sequence
}

fn spawn_projector(app: &TestBackbone, crash_after_commits: Option<u64>) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_emporium-projector"));
    command
        .env("DATABASE_URL", &app.database_url)
        .env("NATS_URL", crate::helpers::nats_url())
        .env("STREAM_PREFIX", &app.prefix)
        .env("PROJECTIONS", "catalog,inventory")
        .env("BATCH_SIZE", "7")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(n) = crash_after_commits {
        command.env("CRASH_AFTER_COMMITS", n.to_string());
    }
    command.spawn().expect("spawn the projector process")
}

/// Waits (bounded) for a child to exit on its own.
async fn exited(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.try_wait().expect("poll the projector") {
            return status;
        }
        assert!(Instant::now() < deadline, "the projector did not crash");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Some catalogue traffic: a product with a variant and stock movements.
async fn traffic(shop: &Shop, category: uuid::Uuid, round: usize) {
    let sku = format!("SKU-{round}");
    let product = shop
        .product(&sku, category, 1_000 + i64::try_from(round).unwrap())
        .await;
    shop.variant(product, &format!("{sku}-L"), 1_200).await;
    shop.publish_with_image(product).await;
    shop.stock(&sku, 20, 3).await;
    shop.stock(&format!("{sku}-L"), 5, 3).await;
    for _ in 0..3 {
        shop.reserve(&sku, 2).await;
        shop.receive(&format!("{sku}-L"), 1).await;
    }
}

#[tokio::test]
async fn projectors_killed_between_commit_and_ack_leave_read_models_equal_to_a_rebuild() {
    let app = spawn().await;
    let shop = Shop::new(&app);
    let mut relay = app.relay();
    let category = shop.category("Kitchen", "kitchen", None).await;
    traffic(&shop, category, 0).await;
    // Built once here, so every round's traffic reaches the projector by the stream.
    project(
        &app,
        &mut relay,
        &mut [
            &mut runner(&app, Arc::new(CatalogProjection)),
            &mut runner(&app, Arc::new(InventoryProjection)),
        ],
    )
    .await;

    let mut rng = fastrand::Rng::with_seed(7);
    let mut caught_between = 0;
    for round in 1..=8 {
        traffic(&shop, category, round).await;
        app.relay_until_caught_up(&mut relay).await;
        let mut child = if round % 2 == 1 {
            // Deterministic: abort right after a commit, before its ack.
            let mut child = spawn_projector(&app, Some(rng.u64(1..3)));
            let status = exited(&mut child).await;
            assert_eq!(
                status.signal(),
                Some(6),
                "the projector aborted: {status:?}"
            );
            child
        } else {
            // At a random point of its life.
            let mut child = spawn_projector(&app, None);
            tokio::time::sleep(Duration::from_millis(rng.u64(5..300))).await;
            child.kill().expect("SIGKILL the projector");
            child.wait().expect("reap the projector");
            child
        };
        let _ = child.wait();
        // Was a commit left unacked? (Committed checkpoint beyond the ack floor.)
        let statuses = projection::status(&app.pool, None).await.unwrap();
        let stream = app
            .jetstream
            .get_stream(app.layout.stream_name())
            .await
            .unwrap();
        for name in ["catalog", "inventory"] {
            let Some(status) = statuses.iter().find(|s| s.name == name) else {
                continue;
            };
            let consumer = format!(
                "{}_{name}_v1",
                app.layout.stream_name().trim_end_matches("_EVENTS")
            );
            if let Ok(mut consumer) = stream.get_consumer::<pull::Config>(&consumer).await {
                let info = consumer.info().await.unwrap();
                if status.checkpoint.stream_sequence > info.ack_floor.stream_sequence {
                    caught_between += 1;
                }
            }
        }
    }
    assert!(
        caught_between > 0,
        "no projector died between a commit and its ack"
    );

    let mut catalog = runner(&app, Arc::new(CatalogProjection));
    let mut inventory = runner(&app, Arc::new(InventoryProjection));
    project(&app, &mut relay, &mut [&mut catalog, &mut inventory]).await;
    assert_equals_rebuild(&app, Arc::new(CatalogProjection)).await;
    assert_equals_rebuild(&app, Arc::new(InventoryProjection)).await;
    let products: i64 = sqlx::query_scalar("SELECT count(*) FROM catalog_products WHERE published")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(products, 9);
    app.teardown().await;
}

/// `ProjectionRunner` is what the gateway and the CLI drive; it stays `Send` so it
/// can be spawned.
#[allow(dead_code)]
fn runner_is_send(runner: ProjectionRunner) -> impl Send {
    runner.run(async {})
}

/// An idle runner applies an event at once; one that wrote less than
/// `min_batch_interval` ago gathers what arrives until then into one write.
#[tokio::test]
async fn a_busy_runner_gathers_what_arrives_within_min_batch_interval_into_one_write() {
    let app = spawn().await;
    let mut relay = app.relay();
    let interval = Duration::from_secs(3);
    let config = RunnerConfig {
        min_batch_interval: interval,
        ..RunnerConfig::default()
    };
    let ledger = built_ledger(&app, config).await;
    // Every write bumps the checkpoint row's revision (committed with it, so read
    // after the watch saw the position, it cannot lag behind).
    let revision = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT revision FROM projection_checkpoints WHERE name = 'ledger'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap()
    };
    let before = revision().await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(ledger.run(async move {
        let _ = stopped.await;
    }));
    let watch = CheckpointWatch::start(app.pool.clone()).await.unwrap();
    let last = || async {
        sqlx::query_scalar::<_, i64>("SELECT max(position) FROM events")
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    // Idle: applied at once, well within the interval.
    app.append(1).await;
    app.relay_until_caught_up(&mut relay).await;
    let started = Instant::now();
    watch
        .wait_for_position("ledger", last().await, PATIENCE)
        .await
        .unwrap();
    assert!(started.elapsed() < interval, "an idle runner does not wait");
    assert_eq!(revision().await, before + 1);
    // Two more, published apart, right after that write: one write for both.
    app.append(1).await;
    app.relay_until_caught_up(&mut relay).await;
    app.append(1).await;
    app.relay_until_caught_up(&mut relay).await;
    watch
        .wait_for_position("ledger", last().await, PATIENCE)
        .await
        .unwrap();
    assert_eq!(revision().await, before + 2, "gathered into one write");
    assert_eq!(ledger_rows(&app).await, (3, 3));
    let _ = stop.send(());
    running.await.unwrap().unwrap();
    app.teardown().await;
}
