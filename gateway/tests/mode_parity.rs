//! A demo shop moved from the embedded mode to the distributed one, as an operator
//! would: `seed::Seeder` writes a small demo seed into the embedded store while the
//! embedded projections build `read.db` beside it; `emporium events export --sqlite`
//! writes the log; `emporium events import` loads it into a fresh PostgreSQL database;
//! the relay publishes it to a JetStream stream of the test's own and every projection
//! runner applies it. Every read-model table then holds the same rows in PostgreSQL
//! as in `read.db` (compared by `projections/tests/backbone/rows.rs`).

use std::time::Duration;

use async_nats::jetstream;
use emporium_commands::store::SqliteStore;
use emporium_gateway::seed::{SeedOutcome, SeedSize, Seeder};
use emporium_projections::bus::StreamLayout;
use emporium_projections::envelope::CommitPosition;
use emporium_projections::projection::embedded::{
    self, EmbeddedConfig, EmbeddedProjections, ReadDb,
};
use emporium_projections::projection::{self, ProjectionRunner, ProjectionState, RunnerConfig};
use emporium_projections::relay::{Relay, RelayConfig};
use emporium_tests::{TestDatabase, nats_url, unique_prefix};
use support::emporium;

#[path = "../../projections/tests/backbone/rows.rs"]
mod rows;
mod support;

const PATIENCE: Duration = Duration::from_secs(60);

fn at(position: i64) -> CommitPosition {
    let position = u64::try_from(position).unwrap();
    CommitPosition {
        transaction_id: position,
        position,
    }
}

#[tokio::test]
async fn a_demo_seed_moved_by_export_and_import_has_identical_read_models() {
    // The embedded mode: the store, and the projections running beside it while the
    // seed is written.
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.db");
    let store = SqliteStore::open(&events).await.unwrap();
    let read = ReadDb::open(&dir.path().join("read.db")).await.unwrap();
    let running = EmbeddedProjections::start(
        store.pool().clone(),
        read.clone(),
        projection::all(),
        EmbeddedConfig {
            batch_size: 64,
            poll: Duration::from_millis(20),
            ..EmbeddedConfig::default()
        },
    )
    .await
    .unwrap();
    assert!(
        running.skipped().is_empty(),
        "every projection runs embedded"
    );
    let size = SeedSize {
        products: 40,
        customers: 8,
        orders: 24,
        concurrency: 4,
    };
    let seeded = Seeder::new(store.clone(), size).run().await.unwrap();
    assert!(matches!(seeded, SeedOutcome::Seeded(_)), "{seeded:?}");
    running.wake_handle().wake();
    let last: i64 = sqlx::query_scalar("SELECT max(position) FROM events")
        .fetch_one(store.pool())
        .await
        .unwrap();
    for name in running.running() {
        let reached = running.watch().wait_for(name, at(last), PATIENCE).await;
        assert!(reached.is_ok(), "{name} did not reach {last}");
    }
    for s in embedded::status(&read, None).await.unwrap() {
        assert_eq!(s.state, ProjectionState::Running, "{}", s.name);
        assert_eq!(s.checkpoint.cursor, at(last), "{}", s.name);
    }
    let ended = running.shutdown().await;
    assert!(ended.iter().all(|(_, r)| r.is_ok()), "{ended:?}");
    store.close().await;
    drop(store);

    // Exported by the binary.
    let exported = dir.path().join("shop.jsonl");
    let output = emporium()
        .args(["events", "export", "--sqlite"])
        .arg(&events)
        .arg("--out")
        .arg(&exported)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // The distributed mode: a fresh database, a stream of the test's own, every
    // runner prepared (tables built, empty) before the import, so every event reaches
    // the read models through the relay and JetStream.
    let db = TestDatabase::create(8).await.unwrap();
    emporium_commands::db::migrate(db.pool()).await.unwrap();
    emporium_projections::migrate(db.pool()).await.unwrap();
    let client = emporium_projections::bus::connect(&nats_url(), Duration::from_secs(5))
        .await
        .unwrap();
    let js = jetstream::new(client);
    let layout = StreamLayout::new(&unique_prefix()).unwrap();
    let mut runners: Vec<ProjectionRunner> = projection::all()
        .into_iter()
        .map(|p| {
            ProjectionRunner::new(
                db.pool().clone(),
                js.clone(),
                layout.clone(),
                p,
                RunnerConfig {
                    batch_size: 64,
                    ..RunnerConfig::default()
                },
            )
        })
        .collect();
    for runner in &mut runners {
        assert_eq!(
            runner.prepare().await.unwrap().cursor,
            CommitPosition::START
        );
    }
    let output = emporium()
        .env("EMPORIUM_ENV", "test")
        .env("EMPORIUM_DATABASE__URL", db.url())
        .args(["events", "import", "--in"])
        .arg(&exported)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let imported: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(imported, last, "every event imported");

    // Relay everything. A round can publish a prefix while a transaction of another
    // test holds the cluster-wide horizon back, so step until the stream is full.
    let mut relay = Relay::new(
        db.pool().clone(),
        js.clone(),
        layout.clone(),
        RelayConfig::default(),
    );
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        relay.relay_once().await.unwrap();
        let on_stream = relay.read_head().await.unwrap().last_sequence;
        if on_stream >= u64::try_from(last).unwrap() {
            assert_eq!(on_stream, u64::try_from(last).unwrap(), "each event once");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the relay put {on_stream} of {last} events on the stream"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for runner in &mut runners {
        runner.run_until_caught_up().await.unwrap();
    }
    for s in projection::status(db.pool(), None).await.unwrap() {
        assert_eq!(s.state, ProjectionState::Running, "{}", s.name);
        assert_eq!(
            s.checkpoint.stream_sequence,
            u64::try_from(last).unwrap(),
            "{} applied the whole stream",
            s.name
        );
    }

    // Every table of every read model, row by row.
    let mut empty = Vec::new();
    for projection in projection::all() {
        let tables = projection.tables();
        empty
            .extend(rows::assert_same_on_postgres_and_sqlite(db.pool(), read.pool(), tables).await);
    }
    // The demo seed writes no carts, payments, wishlists or activity.
    for table in [
        "catalog_products",
        "categories",
        "inventory_levels",
        "customers",
        "orders",
        "product_reviews",
        "notifications",
    ] {
        assert!(!empty.contains(&table), "the seed left {table} empty");
    }
    read.close().await;
    let _ = js.delete_stream(layout.stream_name()).await;
    db.drop_database().await.unwrap();
}
