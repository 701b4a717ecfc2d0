//! The `emporium` binary, run as a user would.

mod support;

use support::emporium;

#[test]
fn config_print_never_prints_a_secret() {
    let output = emporium()
        .args(["config", "print"])
        .env("EMPORIUM_AUTH__JWT_SECRET", "jwt-very-secret-value")
        .env(
            "DATABASE_URL",
            "postgres://shop:pg-password-123@db.internal:5432/shop",
        )
        .env(
            "EMPORIUM_NATS__URL",
            "nats://bus:nats-token-456@nats.internal:4222",
        )
        .env(
            "EMPORIUM_REDIS__URL",
            "redis://:redis-pass-789@cache:6379/0",
        )
        .output()
        .expect("run emporium");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{stderr}");
    for secret in [
        "jwt-very-secret-value",
        "pg-password-123",
        "nats-token-456",
        "redis-pass-789",
    ] {
        assert!(
            !stdout.contains(secret),
            "secret {secret} printed:\n{stdout}"
        );
        assert!(
            !stderr.contains(secret),
            "secret {secret} logged:\n{stderr}"
        );
    }
    // The layers took effect: the redacted values still say where things point.
    assert!(
        stdout.contains("postgres://shop:***@db.internal:5432/shop"),
        "{stdout}"
    );
    assert!(
        stdout.contains("nats://bus:***@nats.internal:4222"),
        "{stdout}"
    );
    assert!(stdout.contains(r#"jwt_secret = "[redacted]""#), "{stdout}");
}

#[test]
fn flags_win_over_environment() {
    let output = emporium()
        .args(["--port", "9100", "config", "print"])
        .env("EMPORIUM_HTTP__PORT", "9000")
        .output()
        .expect("run emporium");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("port = 9100"), "{stdout}");
}

#[test]
fn a_bad_setting_is_a_configuration_error() {
    let output = emporium()
        .args(["config", "print"])
        .env("EMPORIUM_HTTP__PORT", "not-a-port")
        .output()
        .expect("run emporium");
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("invalid configuration"), "{stderr}");
}

#[test]
fn production_refuses_the_development_signing_key() {
    let output = emporium()
        .args(["--env", "production", "config", "print"])
        .output()
        .expect("run emporium");
    assert_eq!(output.status.code(), Some(3));
}

#[test]
fn every_subcommand_has_help() {
    for sub in [
        vec![],
        vec!["serve"],
        vec!["relay"],
        vec!["project"],
        vec!["worker"],
        vec!["migrate"],
        vec!["seed"],
        vec!["config", "print"],
        vec!["projections"],
        vec!["projections", "list"],
        vec!["projections", "status"],
        vec!["projections", "rebuild"],
        vec!["projections", "retry"],
        vec!["events"],
        vec!["events", "tail"],
        vec!["events", "replay"],
        vec!["events", "export"],
        vec!["events", "import"],
    ] {
        let mut args = sub.clone();
        args.push("--help");
        let output = emporium().args(&args).output().expect("run emporium");
        assert!(output.status.success(), "{sub:?}");
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert!(stdout.contains("Usage: emporium"), "{sub:?}: {stdout}");
    }
}

mod relay {
    //! `emporium relay` as an operator runs it: a process that publishes what is
    //! committed and stops cleanly on SIGTERM.

    use std::time::{Duration, Instant};

    use chrono::Utc;
    use emporium_commands::{Dispatcher, Loading};
    use emporium_domain::inventory::{Inventory, InventoryCommand};
    use emporium_domain::metadata::Actor;
    use emporium_domain::{EventMetadata, Quantity, Sku};
    use emporium_tests::{TestDatabase, nats_url, unique_prefix};
    use uuid::Uuid;

    use super::emporium;

    fn meta() -> EventMetadata {
        EventMetadata::new(Uuid::new_v4(), Actor::System("test".into()), Utc::now())
    }

    /// Waits (bounded: the relay is another process) until the stream holds `n`
    /// messages.
    async fn wait_for_messages(js: &async_nats::jetstream::Context, stream: &str, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut s) = js.get_stream(stream).await
                && s.info().await.map(|i| i.state.messages).unwrap_or(0) >= n
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "stream {stream} never reached {n} messages"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn relay_subcommand_publishes_committed_events_and_stops_on_sigterm() {
        let db = TestDatabase::create(4).await.unwrap();
        emporium_commands::db::migrate(db.pool()).await.unwrap();
        let inventory = Dispatcher::<Inventory>::new(db.pool().clone(), Loading::Replay);
        let track = InventoryCommand::TrackInventory {
            sku: Sku::parse("CLI-1").unwrap(),
            low_stock_threshold: 0,
            at: Utc::now(),
        };
        inventory.execute("CLI-1", track, &meta()).await.unwrap();

        let prefix = unique_prefix();
        let mut child = emporium()
            .arg("relay")
            .env("EMPORIUM_ENV", "test")
            .env("EMPORIUM_DATABASE__URL", db.url())
            .env("EMPORIUM_NATS__URL", nats_url())
            .env("EMPORIUM_NATS__STREAM_PREFIX", &prefix)
            .spawn()
            .expect("start emporium relay");

        let client = async_nats::connect(nats_url()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let stream = emporium_projections::bus::StreamLayout::new(&prefix)
            .unwrap()
            .stream_name();
        wait_for_messages(&js, &stream, 1).await;
        let receive = InventoryCommand::ReceiveStock {
            quantity: Quantity::new(5).unwrap(),
            at: Utc::now(),
        };
        inventory.execute("CLI-1", receive, &meta()).await.unwrap();
        wait_for_messages(&js, &stream, 2).await;

        let pid = child.id().to_string();
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = child.wait().unwrap();
        assert!(status.success(), "relay exited with {status}");

        js.delete_stream(&stream).await.unwrap();
        db.drop_database().await.unwrap();
    }
}

mod backbone {
    //! The backbone's operator commands against a real PostgreSQL and NATS: a fresh
    //! database and stream prefix per test, the real binary.

    use std::collections::BTreeSet;
    use std::process::{Command, Output};

    use chrono::Utc;
    use emporium_commands::catalog::Products;
    use emporium_commands::{Dispatcher, Loading};
    use emporium_domain::catalog::{
        Attributes, CategoryCommand, CategoryName, CategoryTree, Description, ProductCommand,
        ProductName, Slug, Tag,
    };
    use emporium_domain::metadata::Actor;
    use emporium_domain::{Currency, EventMetadata, Money, Sku};
    use emporium_projections::bus::StreamLayout;
    use emporium_projections::relay::{Relay, RelayConfig};
    use emporium_tests::{TestDatabase, nats_url, unique_prefix};
    use uuid::Uuid;

    use super::emporium;

    fn meta() -> EventMetadata {
        EventMetadata::new(Uuid::new_v4(), Actor::System("test".into()), Utc::now())
    }

    /// A fresh database with every migration the platform applies.
    async fn migrated() -> TestDatabase {
        let db = TestDatabase::create(4).await.unwrap();
        emporium_gateway::db::migrate(db.pool()).await.unwrap();
        db
    }

    /// `emporium` pointed at `db` and the stream `prefix`.
    fn against(db: &TestDatabase, prefix: &str) -> Command {
        let mut cmd = emporium();
        cmd.env("EMPORIUM_ENV", "test")
            .env("EMPORIUM_DATABASE__URL", db.url())
            .env("EMPORIUM_NATS__URL", nats_url())
            .env("EMPORIUM_NATS__STREAM_PREFIX", prefix);
        cmd
    }

    fn text(output: &Output) -> (String, String) {
        (
            String::from_utf8(output.stdout.clone()).unwrap(),
            String::from_utf8(output.stderr.clone()).unwrap(),
        )
    }

    /// Commits a category and `n` products in it through the real command path.
    async fn products(db: &TestDatabase, n: usize) {
        let category = Uuid::new_v4();
        Dispatcher::<CategoryTree>::new(db.pool().clone(), Loading::Replay)
            .execute(
                "catalog",
                CategoryCommand::CreateCategory {
                    category_id: category,
                    name: CategoryName::parse("Kitchen").unwrap(),
                    slug: Slug::parse("kitchen").unwrap(),
                    parent_id: None,
                    at: Utc::now(),
                },
                &meta(),
            )
            .await
            .expect("create category");
        let products = Products::new(db.pool().clone());
        for i in 0..n {
            let sku = format!("CLI-{i}");
            let id = Uuid::new_v4();
            products
                .execute(
                    id,
                    ProductCommand::CreateProduct {
                        product_id: id,
                        sku: Sku::parse(&sku).unwrap(),
                        slug: Slug::parse(&sku.to_ascii_lowercase()).unwrap(),
                        name: ProductName::parse(&format!("Product {sku}")).unwrap(),
                        description: Description::parse("Sturdy.").unwrap(),
                        category_id: category,
                        tags: BTreeSet::from([Tag::parse("gift").unwrap()]),
                        attributes: Attributes::parse([("material", "enamel")]).unwrap(),
                        price: Money::new(1_000, Currency::EUR),
                        at: Utc::now(),
                    },
                    &meta(),
                )
                .await
                .expect("create product");
        }
    }

    #[test]
    fn projections_list_names_the_read_models() {
        let output = emporium().args(["projections", "list"]).output().unwrap();
        let (stdout, stderr) = text(&output);
        assert!(output.status.success(), "{stderr}");
        for name in ["catalog", "catalog_products", "orders", "inventory_levels"] {
            assert!(stdout.contains(name), "{name} missing:\n{stdout}");
        }
    }

    #[tokio::test]
    async fn projections_status_shows_every_projection_of_a_migrated_database() {
        let db = migrated().await;
        let output = against(&db, &unique_prefix())
            .args(["projections", "status"])
            .output()
            .unwrap();
        let (stdout, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(0), "{stderr}");
        assert!(stdout.contains("LAG"), "{stdout}");
        for p in emporium_projections::projection::all() {
            assert!(stdout.contains(p.name()), "{} missing:\n{stdout}", p.name());
        }
        db.drop_database().await.unwrap();
    }

    #[test]
    fn unknown_projections_are_usage_errors() {
        for args in [
            vec!["projections", "retry", "nope"],
            vec!["projections", "rebuild", "nope"],
            vec!["project", "nope"],
        ] {
            let output = emporium().args(&args).output().unwrap();
            let (_, stderr) = text(&output);
            assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
            assert!(
                stderr.contains("unknown projection `nope`") && stderr.contains("catalog"),
                "{args:?}: {stderr}"
            );
        }
    }

    #[tokio::test]
    async fn projections_rebuild_builds_the_catalog_and_retry_refuses_a_running_one() {
        let db = migrated().await;
        products(&db, 3).await;
        let prefix = unique_prefix();
        let output = against(&db, &prefix)
            .args(["projections", "rebuild", "catalog"])
            .output()
            .unwrap();
        let (stdout, stderr) = text(&output);
        assert!(output.status.success(), "{stderr}");
        assert!(stdout.contains("rebuilt catalog v2"), "{stdout}");
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM catalog_products")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(rows, 3);

        // Again, over the live version: replaced in place.
        let output = against(&db, &prefix)
            .args(["events", "replay", "--projection", "catalog"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output).1);

        let output = against(&db, &prefix)
            .args(["projections", "retry", "catalog"])
            .output()
            .unwrap();
        let (_, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("not stopped"), "{stderr}");
        db.drop_database().await.unwrap();
    }

    #[tokio::test]
    async fn events_tail_prints_json_envelopes() {
        let db = migrated().await;
        products(&db, 1).await;
        let prefix = unique_prefix();
        let client = async_nats::connect(nats_url()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let layout = StreamLayout::new(&prefix).unwrap();
        let mut relay = Relay::new(
            db.pool().clone(),
            js.clone(),
            layout.clone(),
            RelayConfig::default(),
        );
        // A category and a product, at least two events.
        assert!(relay_all(&mut relay, &db).await >= 2);

        let output = against(&db, &prefix)
            .args(["events", "tail", "--from-start", "--limit", "2"])
            .output()
            .unwrap();
        let (stdout, stderr) = text(&output);
        assert!(output.status.success(), "{stderr}");
        let lines: Vec<serde_json::Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON envelope a line"))
            .collect();
        assert_eq!(lines.len(), 2, "{stdout}");
        assert!(
            lines.iter().all(|e| e["event_type"].is_string()),
            "{stdout}"
        );

        let output = against(&db, &prefix)
            .args(["events", "tail", "--from-start", "--limit", "1"])
            .args(["--aggregate", "product"])
            .output()
            .unwrap();
        let (stdout, stderr) = text(&output);
        assert!(output.status.success(), "{stderr}");
        let envelope: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(envelope["aggregate_type"], "product", "{stdout}");

        js.delete_stream(layout.stream_name()).await.unwrap();
        db.drop_database().await.unwrap();
    }

    /// Polls (bounded: the projector is another process) until `sql` returns true. The
    /// bound is generous: on a loaded 2-core machine the child process, the relay and
    /// a cluster-wide horizon held back by other tests' transactions all add up.
    async fn wait_until(db: &TestDatabase, sql: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let done: Option<bool> = sqlx::query_scalar(sql)
                .fetch_optional(db.pool())
                .await
                .ok()
                .flatten();
            if done == Some(true) {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "never true: {sql}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Steps `relay` until every event in `db` is on the stream; returns how many it
    /// published. One round can publish nothing (or a prefix) while a transaction of
    /// another test, anywhere in the cluster, holds the visibility horizon back.
    async fn relay_all(relay: &mut Relay, db: &TestDatabase) -> usize {
        let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(db.pool())
            .await
            .unwrap();
        let total = usize::try_from(total).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut published = relay.relay_once().await.unwrap();
        loop {
            let on_stream = relay.read_head().await.unwrap().last_sequence;
            if usize::try_from(on_stream).unwrap() >= total {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the relay put {on_stream} of {total} events on the stream"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            published += relay.relay_once().await.unwrap();
        }
        published
    }

    #[tokio::test]
    async fn project_applies_events_survives_a_poison_event_and_stops_on_sigterm() {
        let db = migrated().await;
        products(&db, 2).await;
        let prefix = unique_prefix();
        let client = async_nats::connect(nats_url()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let layout = StreamLayout::new(&prefix).unwrap();
        let mut relay = Relay::new(
            db.pool().clone(),
            js.clone(),
            layout.clone(),
            RelayConfig::default(),
        );
        relay_all(&mut relay, &db).await;
        let mut child = against(&db, &prefix)
            .args(["project", "catalog"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start emporium project");
        wait_until(
            &db,
            "SELECT count(*) = 2 FROM catalog_products WHERE to_regclass('catalog_products') IS NOT NULL",
        )
        .await;

        // An event the catalog cannot decode stops that projection, not the process.
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                                 event_version, payload, metadata)
             VALUES ('product', $1, 1, 'ProductCreated', '1', '{\"bad\": true}', '{}')",
        )
        .bind(Uuid::new_v4().to_string())
        .execute(db.pool())
        .await
        .unwrap();
        relay_all(&mut relay, &db).await;
        wait_until(
            &db,
            "SELECT state = 'failed' FROM projection_checkpoints WHERE name = 'catalog'",
        )
        .await;
        assert!(child.try_wait().unwrap().is_none(), "the projector exited");
        let output = against(&db, &prefix)
            .args(["projections", "status"])
            .output()
            .unwrap();
        let (stdout, _) = text(&output);
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("catalog ") && l.contains("stopped")),
            "{stdout}"
        );
        let output = against(&db, &prefix)
            .args(["projections", "retry", "catalog"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output).1);

        let pid = child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert!(stderr.contains("projection_poison_event"), "{stderr}");

        js.delete_stream(layout.stream_name()).await.unwrap();
        db.drop_database().await.unwrap();
    }

    #[test]
    fn a_dead_database_is_exit_4_naming_postgresql() {
        let output = emporium()
            .args(["--database-url", "postgres://postgres@127.0.0.1:1/nothing"])
            .args(["projections", "status"])
            .output()
            .unwrap();
        let (_, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(4), "{stderr}");
        assert!(stderr.contains("PostgreSQL"), "{stderr}");
    }

    #[test]
    fn a_dead_nats_is_exit_4_naming_nats() {
        let output = emporium()
            .args(["--nats-url", "nats://127.0.0.1:1", "events", "tail"])
            .output()
            .unwrap();
        let (_, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(4), "{stderr}");
        assert!(stderr.contains("cannot reach NATS"), "{stderr}");
    }
}

mod seed {
    //! `emporium seed --demo` as an operator runs it, at a small size.

    use std::process::Output;

    use emporium_tests::TestDatabase;

    use super::emporium;

    /// A small seed: 60 products, 8 customers, 12 orders.
    const SMALL: [&str; 8] = [
        "--products",
        "60",
        "--customers",
        "8",
        "--orders",
        "12",
        "--concurrency",
        "4",
    ];

    async fn migrated() -> TestDatabase {
        let db = TestDatabase::create(2).await.unwrap();
        emporium_gateway::db::migrate(db.pool()).await.unwrap();
        db
    }

    fn seed(db: &TestDatabase, args: &[&str]) -> (Output, String, String) {
        let output = emporium()
            .env("EMPORIUM_ENV", "test")
            .env("EMPORIUM_DATABASE__URL", db.url())
            .arg("seed")
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8(output.stdout.clone()).unwrap();
        let stderr = String::from_utf8(output.stderr.clone()).unwrap();
        (output, stdout, stderr)
    }

    async fn scalar(db: &TestDatabase, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(db.pool()).await.unwrap()
    }

    /// Distinct aggregates and events of one type.
    async fn counts(db: &TestDatabase, aggregate_type: &str) -> (i64, i64) {
        sqlx::query_as(
            "SELECT count(DISTINCT aggregate_id), count(*) FROM events WHERE aggregate_type = $1",
        )
        .bind(aggregate_type)
        .fetch_one(db.pool())
        .await
        .unwrap()
    }

    /// A digest of everything recorded but the store-assigned ids and times.
    async fn digest(db: &TestDatabase) -> String {
        sqlx::query_scalar(
            "SELECT md5(string_agg(aggregate_type || aggregate_id || sequence || event_type
                                   || payload::text || metadata::text, '|'
                                   ORDER BY aggregate_type, aggregate_id, sequence))
               FROM events",
        )
        .fetch_one(db.pool())
        .await
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn seed_demo_writes_a_deterministic_shop_once() {
        let db = migrated().await;

        // Without --demo: the plan, nothing written, a usage error.
        let (output, stdout, stderr) = seed(&db, &SMALL);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stdout.contains("demo@emporium.test"), "{stdout}");
        assert!(stderr.contains("--demo"), "{stderr}");
        assert_eq!(scalar(&db, "SELECT count(*) FROM events").await, 0);

        let mut args = vec!["--demo"];
        args.extend(SMALL);
        let (output, stdout, stderr) = seed(&db, &args);
        assert!(output.status.success(), "{stdout}\n{stderr}");
        assert!(stdout.contains("seeded the demo shop"), "{stdout}");
        assert!(stdout.contains("emporium-demo"), "{stdout}");

        assert_eq!(counts(&db, "category_tree").await, (1, 25));
        let (products, _) = counts(&db, "product").await;
        assert_eq!(products, 60);
        let variants = scalar(
            &db,
            "SELECT count(*) FROM events WHERE event_type = 'VariantAdded'",
        )
        .await;
        assert!(variants > 0);
        let published = scalar(
            &db,
            "SELECT count(*) FROM events WHERE event_type = 'ProductPublished'",
        )
        .await;
        assert_eq!(published, 60);
        assert!(
            scalar(
                &db,
                "SELECT count(*) FROM events WHERE event_type = 'ProductFeatured'"
            )
            .await
                >= 1
        );
        // Every SKU (products' and variants') tracked and received.
        assert_eq!(
            counts(&db, "inventory").await,
            (60 + variants, 2 * (60 + variants))
        );
        let (users, _) = counts(&db, "user").await;
        assert_eq!(users, 8);
        let (orders, _) = counts(&db, "order").await;
        assert_eq!(orders, 12);
        assert_eq!(
            scalar(
                &db,
                "SELECT count(*) FROM events WHERE event_type = 'OrderPaid'"
            )
            .await,
            12
        );
        assert!(
            scalar(
                &db,
                "SELECT count(*) FROM events WHERE event_type = 'OrderDelivered'"
            )
            .await
                >= 1
        );
        let (reviews, review_events) = counts(&db, "review").await;
        assert!(reviews >= 1);
        assert_eq!(
            review_events,
            2 * reviews,
            "every review written and approved"
        );

        // A second run finds the demo account and writes nothing.
        let before = scalar(&db, "SELECT count(*) FROM events").await;
        let (output, stdout, stderr) = seed(&db, &args);
        assert!(output.status.success(), "{stdout}\n{stderr}");
        assert!(stdout.contains("already seeded"), "{stdout}");
        assert_eq!(scalar(&db, "SELECT count(*) FROM events").await, before);

        // Another database gets exactly the same events.
        let other = migrated().await;
        let (output, _, stderr) = seed(&other, &args);
        assert!(output.status.success(), "{stderr}");
        assert_eq!(digest(&db).await, digest(&other).await);

        db.drop_database().await.unwrap();
        other.drop_database().await.unwrap();
    }
}

#[cfg(feature = "sqlite")]
mod event_log {
    //! `emporium events export|import`: a shop moved from the embedded store into
    //! PostgreSQL by the binary, as an operator would.

    use std::collections::BTreeSet;
    use std::process::{Command, Output};

    use chrono::Utc;
    use emporium_commands::catalog::Products;
    use emporium_commands::store::SqliteStore;
    use emporium_domain::catalog::{Attributes, Description, ProductCommand, ProductName, Slug};
    use emporium_domain::metadata::Actor;
    use emporium_domain::{Currency, EventMetadata, Money, Sku};
    use emporium_tests::TestDatabase;
    use uuid::Uuid;

    use super::emporium;

    fn against(db: &TestDatabase) -> Command {
        let mut cmd = emporium();
        cmd.env("EMPORIUM_ENV", "test")
            .env("EMPORIUM_DATABASE__URL", db.url());
        cmd
    }

    fn text(output: &Output) -> (String, String) {
        (
            String::from_utf8(output.stdout.clone()).unwrap(),
            String::from_utf8(output.stderr.clone()).unwrap(),
        )
    }

    fn lines(path: &std::path::Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn a_shop_moves_from_sqlite_to_postgres_and_back_out_identically() {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = dir.path().join("events.db");
        let store = SqliteStore::open(&sqlite).await.unwrap();
        let products = Products::over(store.clone());
        for i in 0..5 {
            let id = Uuid::new_v4();
            let sku = format!("MOVE-{i}");
            products
                .execute(
                    id,
                    ProductCommand::CreateProduct {
                        product_id: id,
                        sku: Sku::parse(&sku).unwrap(),
                        slug: Slug::parse(&sku.to_ascii_lowercase()).unwrap(),
                        name: ProductName::parse("Moved").unwrap(),
                        description: Description::parse("Travels well.").unwrap(),
                        category_id: Uuid::new_v4(),
                        tags: BTreeSet::new(),
                        attributes: Attributes::default(),
                        price: Money::new(990, Currency::EUR),
                        at: Utc::now(),
                    },
                    &EventMetadata::new(Uuid::new_v4(), Actor::System("test".into()), Utc::now()),
                )
                .await
                .unwrap();
        }
        let exported = dir.path().join("shop.jsonl");
        let export = || {
            emporium()
                .args(["events", "export", "--sqlite"])
                .arg(&sqlite)
                .arg("--out")
                .arg(&exported)
                .output()
                .unwrap()
        };

        // The store is open here: the binary may not take it.
        let output = export();
        let (_, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(4), "{stderr}");
        assert!(stderr.contains("in use by another process"), "{stderr}");
        drop(products);
        store.close().await;
        drop(store);

        let output = export();
        let (stdout, stderr) = text(&output);
        assert!(output.status.success(), "{stderr}");
        assert!(
            stdout.contains("exported 5 events and 10 unique keys"),
            "{stdout}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&exported).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "the export holds what the store holds");
        }

        // Into a fresh PostgreSQL database (created and migrated by the import).
        let db = TestDatabase::create(2).await.unwrap();
        let output = against(&db)
            .args(["events", "import", "--in"])
            .arg(&exported)
            .output()
            .unwrap();
        let (stdout, stderr) = text(&output);
        assert!(output.status.success(), "{stderr}");
        assert!(
            stdout.contains("imported 5 events and 10 unique keys"),
            "{stdout}"
        );

        // A second import is refused and changes nothing.
        let output = against(&db)
            .args(["events", "import", "--in"])
            .arg(&exported)
            .output()
            .unwrap();
        let (_, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("not empty"), "{stderr}");

        let again = dir.path().join("again.jsonl");
        let output = against(&db)
            .args(["events", "export", "--out"])
            .arg(&again)
            .output()
            .unwrap();
        let (_, stderr) = text(&output);
        assert!(output.status.success(), "{stderr}");
        assert_eq!(lines(&exported), lines(&again));
        db.drop_database().await.unwrap();
    }
}

mod embedded {
    //! `emporium serve` with no server configured, as a newcomer runs it: the embedded
    //! mode in a fresh data directory, the demo shop seeded on first start (at a small
    //! size), kept across restarts; and the commands around it.

    use std::io::{BufRead as _, BufReader};
    use std::path::Path;
    use std::process::{Child, Command, Output, Stdio};
    use std::sync::mpsc;
    use std::time::Duration;

    use serde_json::{Value, json};

    use super::emporium;
    use super::support::{free_port, graphql};

    /// The first-start seed's size: 60 products, 8 customers, 12 orders.
    const SMALL_SEED: [&str; 6] = [
        "--seed-products",
        "60",
        "--seed-customers",
        "8",
        "--seed-orders",
        "12",
    ];

    /// `emporium` in development with its data under `data`, no server named.
    fn embedded(data: &Path) -> Command {
        let mut cmd = emporium();
        cmd.env("EMPORIUM_ENV", "development")
            .env("EMPORIUM_STORAGE__DATA_DIR", data)
            .env("EMPORIUM_LOG__FILTER", "warn");
        cmd
    }

    /// A running `serve` and what it has printed on stdout so far.
    struct Server {
        child: Child,
        port: u16,
        lines: mpsc::Receiver<String>,
        printed: Vec<String>,
    }

    impl Server {
        fn start(data: &Path) -> Self {
            let port = free_port();
            let mut child = embedded(data)
                .args(["--port", &port.to_string(), "serve"])
                .args(SMALL_SEED)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start emporium serve");
            let stdout = child.stdout.take().expect("stdout");
            let (tx, lines) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            Self {
                child,
                port,
                lines,
                printed: Vec::new(),
            }
        }

        /// Waits (bounded: the server is another process, the seed takes seconds)
        /// until a printed line starts with `prefix`, and returns everything printed.
        fn printed_until(&mut self, prefix: &str) -> String {
            let deadline = std::time::Instant::now() + Duration::from_secs(240);
            while !self.printed.iter().any(|l| l.starts_with(prefix)) {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                match self.lines.recv_timeout(left) {
                    Ok(line) => self.printed.push(line),
                    Err(e) => panic!(
                        "no line starting with {prefix:?} ({e}); printed:\n{}",
                        self.printed.join("\n")
                    ),
                }
            }
            self.printed.join("\n")
        }

        fn graphql(&self, query: &str, variables: Value) -> Value {
            graphql(self.port, query, variables, &[])
        }

        /// Every product name of the storefront listing, page by page.
        fn product_names(&self) -> Vec<String> {
            let mut names = Vec::new();
            let mut after = Value::Null;
            loop {
                let page = self.graphql(
                    "query($after: String) { products(first: 50, after: $after) { \
                     edges { node { name } } pageInfo { hasNextPage endCursor } } }",
                    json!({ "after": after }),
                );
                let products = &page["data"]["products"];
                let edges = products["edges"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{page}"));
                names.extend(
                    edges
                        .iter()
                        .map(|e| e["node"]["name"].as_str().unwrap().to_owned()),
                );
                if products["pageInfo"]["hasNextPage"] != json!(true) {
                    return names;
                }
                after = products["pageInfo"]["endCursor"].clone();
            }
        }

        fn demo_login(&self) -> Value {
            self.graphql(
                "mutation($email: String!, $password: String!) { \
                 login(input: { email: $email, password: $password }) { accessToken tokenType } }",
                json!({
                    "email": emporium_gateway::seed::DEMO_EMAIL,
                    "password": emporium_gateway::seed::DEMO_PASSWORD,
                }),
            )
        }

        /// SIGTERM, then the exit status (a clean stop is success).
        fn stop(mut self) {
            let pid = self.child.id().to_string();
            let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
            assert!(killed.success());
            let status = self.child.wait().unwrap();
            assert!(status.success(), "serve stopped with {status}");
        }
    }

    fn text(output: &Output) -> (String, String) {
        (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    #[test]
    fn serve_seeds_a_fresh_data_dir_once_and_keeps_it_across_restarts() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        assert!(!data.exists());

        let mut server = Server::start(&data);
        let printed = server.printed_until("demo login:");
        assert!(data.join("events.db").is_file(), "no events.db in {data:?}");
        assert!(data.join("read.db").is_file());
        assert!(data.join("gateway.db").is_file());
        assert!(printed.contains("seeded the demo shop"), "{printed}");
        assert!(printed.contains("60 products"), "{printed}");
        assert!(
            printed.contains(&format!(
                "GraphiQL: http://127.0.0.1:{}/graphql",
                server.port
            )),
            "{printed}"
        );
        assert!(
            printed.contains("demo login: demo@emporium.test / emporium-demo"),
            "{printed}"
        );
        // The read models hold the seed once it is announced.
        let names = server.product_names();
        assert_eq!(names.len(), 60, "{names:?}");
        let login = server.demo_login();
        assert_eq!(login["data"]["login"]["tokenType"], "Bearer", "{login}");
        // The demo shop sells: development's carts are in the seed's currency.
        let token = login["data"]["login"]["accessToken"].as_str().unwrap();
        let listing = server.graphql(
            "{ products(first: 1) { edges { node { sku } } } }",
            json!({}),
        );
        let sku = listing["data"]["products"]["edges"][0]["node"]["sku"].clone();
        let cart = graphql(
            server.port,
            "mutation($sku: String!) { addToCart(sku: $sku, quantity: 1) { itemCount } }",
            json!({ "sku": sku }),
            &[("Authorization", &format!("Bearer {token}"))],
        );
        assert_eq!(cart["data"]["addToCart"]["itemCount"], 1, "{cart}");

        // The store is the server's: a second writer is refused, naming the cause.
        let output = embedded(&data).args(["seed", "--demo"]).output().unwrap();
        let (_, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(4), "{stderr}");
        assert!(
            stderr.contains("in use by another process")
                && stderr.contains("running `emporium serve`"),
            "{stderr}"
        );
        server.stop();

        // A restart finds its data and seeds nothing.
        let mut server = Server::start(&data);
        let printed = server.printed_until("demo login:");
        assert!(!printed.contains("seeded"), "{printed}");
        assert!(printed.contains("GraphiQL: http://127.0.0.1:"), "{printed}");
        let mut again = server.product_names();
        let mut before = names;
        again.sort();
        before.sort();
        assert_eq!(again, before);
        assert_eq!(server.demo_login()["data"]["login"]["tokenType"], "Bearer");
        server.stop();

        // With the server stopped, operators' commands work on the same files.
        let output = embedded(&data)
            .args(["users", "set-role", "demo@emporium.test", "staff"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output).1);
        let output = embedded(&data)
            .args(["users", "set-role", "nobody@example.org", "staff"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{}", text(&output).1);
        let output = embedded(&data).args(["seed", "--demo"]).output().unwrap();
        let (stdout, stderr) = text(&output);
        assert!(output.status.success(), "{stderr}");
        assert!(stdout.contains("already seeded"), "{stdout}");
        // The read models' state: every projection caught up with the store (lag 0).
        let output = embedded(&data)
            .args(["projections", "status"])
            .output()
            .unwrap();
        let (stdout, stderr) = text(&output);
        assert!(output.status.success(), "{stderr}");
        let catalog = stdout
            .lines()
            .find(|l| l.starts_with("catalog "))
            .unwrap_or_else(|| panic!("{stdout}"));
        assert!(catalog.contains("running"), "{stdout}");
        let columns: Vec<&str> = catalog.split_whitespace().collect();
        // NAME VERSION STATE POSITION STREAM SEQ LAG ERROR; the set-role above came
        // after the runners stopped, so the catalogue is at least that event behind.
        let lag: u64 = columns[5].parse().unwrap_or_else(|_| panic!("{stdout}"));
        assert!(lag >= 1, "{stdout}");
        let output = embedded(&data)
            .args(["projections", "retry", "catalog"])
            .output()
            .unwrap();
        let (_, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("not stopped"), "{stderr}");
    }

    #[test]
    fn migrate_and_seed_work_in_a_fresh_embedded_data_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("nested").join("data");
        let output = embedded(&data).arg("migrate").output().unwrap();
        assert!(output.status.success(), "{}", text(&output).1);
        for file in ["events.db", "read.db", "gateway.db"] {
            assert!(data.join(file).is_file(), "{file} missing");
        }
        let output = embedded(&data)
            .args(["seed", "--demo", "--products", "5", "--customers", "2"])
            .args(["--orders", "1", "--concurrency", "2"])
            .output()
            .unwrap();
        let (stdout, stderr) = text(&output);
        assert!(output.status.success(), "{stderr}");
        assert!(stdout.contains("5 products"), "{stdout}");
        assert!(stdout.contains("log in as demo@emporium.test"), "{stdout}");
    }

    #[test]
    fn server_only_commands_refuse_the_embedded_mode_without_reaching_postgresql() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        for args in [
            vec!["relay"],
            vec!["project", "all"],
            vec!["project", "catalog"],
            vec!["projections", "rebuild", "catalog"],
            vec!["events", "tail"],
            vec!["events", "replay", "--projection", "catalog"],
        ] {
            let output = embedded(&data).args(&args).output().unwrap();
            let (_, stderr) = text(&output);
            assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
            assert!(
                stderr.contains("embedded mode") && stderr.contains("DATABASE_URL"),
                "{args:?}: {stderr}"
            );
            assert!(!stderr.contains("PostgreSQL at"), "{args:?}: {stderr}");
        }
        // Nothing was created for them.
        assert!(!data.exists());
    }
}
