//! Issue 7's two tests of the embedded mode against itself and against the
//! distributed mode, on real SQLite files, PostgreSQL and JetStream:
//!
//! - kill -9 during a burst of commands with the embedded projections running beside
//!   them (`emporium-embedded-burst`): after a restart on the same files every
//!   acknowledged command's effect is in the read models, every checkpoint is at the
//!   store's last position, and the read models equal a from-scratch build (nothing
//!   applied twice, nothing missed);
//! - a shop's history written into the embedded store with the embedded projections
//!   running, exported (`emporium_commands::log`, what `emporium events export` runs),
//!   imported into a fresh PostgreSQL store, relayed to its own JetStream stream and
//!   projected by every runner: every read-model table holds the same rows on both.
//!
//! Rows are compared whole, every column, normalising only representation (see
//! `rows.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use emporium_commands::PgStore;
use emporium_commands::log::{self, ImportOptions};
use emporium_commands::store::{EventStore as _, SqliteStore};
use emporium_commands::{Dispatcher, Loading};
use emporium_domain::cart::{Cart, CartCommand, CartOwner, GuestKey};
use emporium_domain::catalog::{
    CategoryCommand, CategoryName, ProductCommand, ReviewCommand, Slug,
};
use emporium_domain::inventory::InventoryCommand;
use emporium_domain::{Currency, Money, Quantity, Sku};
use emporium_projections::args;
use emporium_projections::envelope::CommitPosition;
use emporium_projections::projection::embedded::{
    self, EmbeddedConfig, EmbeddedProjections, ReadDb,
};
use emporium_projections::projection::{self, Projection, ProjectionState};
use serde_json::Value;
use sqlx::SqlitePool;
use uuid::Uuid;

use crate::helpers::PATIENCE;
use crate::rows;
use crate::support::{self, meta};

/// Every projection that runs embedded (today: every projection).
fn embedded_projections() -> Vec<Arc<dyn Projection>> {
    let all = projection::all();
    let ported: Vec<_> = all
        .iter()
        .filter(|p| p.sqlite_schema().is_some())
        .cloned()
        .collect();
    assert_eq!(ported.len(), all.len(), "every projection runs embedded");
    ported
}

fn at(position: i64) -> CommitPosition {
    let position = u64::try_from(position).expect("a position");
    CommitPosition {
        transaction_id: position,
        position,
    }
}

/// The embedded store's last position (0 when empty).
async fn last_position(store: &SqlitePool) -> i64 {
    sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events")
        .fetch_one(store)
        .await
        .expect("the store's last position")
}

fn embedded_config() -> EmbeddedConfig {
    EmbeddedConfig {
        batch_size: 16,
        poll: Duration::from_millis(50),
        error_backoff: Duration::from_millis(50),
        ..EmbeddedConfig::default()
    }
}

/// Waits (bounded) until every runner of `running` has announced a checkpoint at
/// `last`, then checks the checkpoint rows say the same: running, at `last`.
async fn caught_up(running: &EmbeddedProjections, last: i64) {
    for name in running.running() {
        let reached = running.watch().wait_for(name, at(last), PATIENCE).await;
        if reached.is_err() {
            let status = embedded::status(running.read_db(), None).await;
            panic!("{name} did not reach {last}: {status:#?}");
        }
    }
    let status = embedded::status(running.read_db(), Some(u64::try_from(last).unwrap()))
        .await
        .expect("embedded status");
    assert_eq!(status.len(), running.running().len(), "{status:?}");
    for s in &status {
        assert_eq!(
            s.state,
            ProjectionState::Running,
            "{}: {:?}",
            s.name,
            s.state
        );
        assert_eq!(
            s.checkpoint.cursor,
            at(last),
            "{}'s checkpoint is the store's last position",
            s.name
        );
        assert_eq!(s.lag, Some(0), "{}", s.name);
    }
}

// ---------------------------------------------------------------------------------
// kill -9 mid-burst, with the embedded projections beside the commands.

/// Acknowledgements to see before each kill.
const ACKS_BEFORE_KILL: usize = 400;

/// What the burst acknowledged.
#[derive(Debug, Default)]
struct Acked {
    /// Every acknowledged position.
    positions: BTreeSet<i64>,
    products: BTreeSet<Uuid>,
    /// SKU -> units received by the last acknowledged stock command.
    stock: BTreeMap<String, i64>,
    /// Cart -> SKUs acknowledged added (opened carts have none yet).
    carts: BTreeMap<Uuid, BTreeSet<String>>,
}

impl Acked {
    fn record(&mut self, line: &str) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let position: i64 = parts
            .last()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{line}"));
        self.positions.insert(position);
        match parts.as_slice() {
            ["product", id, _] => {
                self.products.insert(id.parse().expect("a product id"));
            }
            ["stock", sku, received, _] => {
                let received: i64 = received.parse().expect("units");
                let known = self.stock.entry((*sku).to_owned()).or_default();
                *known = (*known).max(received);
            }
            ["cart", id, sku, _] => {
                let skus = self
                    .carts
                    .entry(id.parse().expect("a cart id"))
                    .or_default();
                if *sku != "-" {
                    skus.insert((*sku).to_owned());
                }
            }
            _ => panic!("unexpected line {line}"),
        }
    }
}

/// Runs the burst on the files in `dir` until `acks` acknowledgements are read, kills
/// it with SIGKILL, and records what it acknowledged (every line it flushed).
fn burst_until_killed(dir: &std::path::Path, acks: usize, acked: &mut Acked) {
    use std::os::unix::process::ExitStatusExt as _;

    let mut child = Command::new(env!("CARGO_BIN_EXE_emporium-embedded-burst"))
        .env("EVENTS_DB", dir.join("events.db"))
        .env("READ_DB", dir.join("read.db"))
        .env("WRITERS", "4")
        .env("BATCH_SIZE", "16")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the burst");
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = 0;
    while seen < acks {
        match rx.recv_timeout(PATIENCE) {
            Ok(line) => {
                acked.record(&line);
                seen += 1;
            }
            Err(e) => panic!(
                "the burst stopped acknowledging after {seen}: {e}; exit {:?}",
                child.try_wait()
            ),
        }
    }
    // Mid-burst: four writers are committing and the runners applying behind them.
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("wait for the burst");
    assert_eq!(status.signal(), Some(9), "killed, not exited: {status:?}");
    reader.join().expect("the reader thread");
    // Whatever it flushed before dying was acknowledged too.
    for line in rx.try_iter() {
        acked.record(&line);
    }
}

#[tokio::test]
async fn after_a_kill_9_mid_burst_the_embedded_read_models_catch_up_exactly_once() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut acked = Acked::default();
    for round in 1..=2 {
        let before = acked.positions.len();
        burst_until_killed(dir.path(), ACKS_BEFORE_KILL, &mut acked);
        assert!(acked.positions.len() >= before + ACKS_BEFORE_KILL);

        // Restart on the same files: the store first (the kill released its lock).
        let store = SqliteStore::open(&dir.path().join("events.db"))
            .await
            .expect("reopen the store after kill -9");
        let log = store.read_log(0, 1_000_000).await.expect("the log");
        let last = last_position(store.pool()).await;
        let stored: BTreeSet<i64> = log.iter().filter_map(|e| e.position).collect();
        let missing: Vec<_> = acked.positions.difference(&stored).collect();
        assert!(
            missing.is_empty(),
            "acknowledged but not stored: {missing:?}"
        );

        // The read models as the kill left them: behind (or at) the store, never ahead.
        let read = ReadDb::open(&dir.path().join("read.db"))
            .await
            .expect("reopen read.db");
        let left = embedded::status(&read, None).await.expect("status");
        assert!(
            left.iter()
                .all(|s| s.checkpoint.cursor.position <= u64::try_from(last).unwrap()),
            "a checkpoint ahead of the store: {left:?}"
        );

        // The embedded projections restarted beside it catch up to the last position.
        let running = EmbeddedProjections::start(
            store.pool().clone(),
            read.clone(),
            embedded_projections(),
            embedded_config(),
        )
        .await
        .expect("restart the embedded projections");
        assert!(running.skipped().is_empty());
        caught_up(&running, last).await;

        // Every acknowledged command's effect is in the read models.
        let db = read.db();
        for product in &acked.products {
            let sku: Option<String> = db
                .scalar_optional(
                    "SELECT sku FROM catalog_products WHERE product_id = $1",
                    args![*product],
                )
                .await
                .expect("read catalog_products");
            assert!(
                sku.is_some(),
                "acknowledged product {product} not in the catalogue"
            );
        }
        for (sku, received) in &acked.stock {
            let on_hand: Option<i64> = db
                .scalar_optional(
                    "SELECT on_hand FROM inventory_levels WHERE sku = $1",
                    args![sku.as_str()],
                )
                .await
                .expect("read inventory_levels");
            let on_hand = on_hand.unwrap_or_else(|| panic!("acknowledged stock of {sku} missing"));
            // At least what was acknowledged; a receipt committed but not yet
            // acknowledged when the kill came may be there too (at most 3 + 4).
            assert!(
                (*received..=7).contains(&on_hand),
                "{sku}: {on_hand} on hand, {received} acknowledged"
            );
        }
        for (cart, skus) in &acked.carts {
            let lines: Option<String> = db
                .scalar_optional("SELECT lines FROM carts WHERE cart_id = $1", args![*cart])
                .await
                .expect("read carts");
            let lines: Value = serde_json::from_str(
                &lines.unwrap_or_else(|| panic!("acknowledged cart {cart} missing")),
            )
            .expect("cart lines");
            let projected: BTreeSet<String> = lines
                .as_array()
                .expect("an array of lines")
                .iter()
                .map(|l| l["sku"].as_str().expect("a sku").to_owned())
                .collect();
            assert!(
                skus.is_subset(&projected),
                "cart {cart}: acknowledged {skus:?}, projected {projected:?}"
            );
        }

        // Nothing applied twice or missed: the read models equal a build from scratch.
        let ended = running.shutdown().await;
        assert!(ended.iter().all(|(_, r)| r.is_ok()), "{ended:?}");
        let fresh_path = dir.path().join(format!("fresh-{round}.db"));
        let fresh = ReadDb::open(&fresh_path).await.expect("a fresh read.db");
        let built = EmbeddedProjections::start(
            store.pool().clone(),
            fresh.clone(),
            embedded_projections(),
            embedded_config(),
        )
        .await
        .expect("build from scratch");
        caught_up(&built, last).await;
        built.shutdown().await;
        let mut compared = 0;
        for projection in embedded_projections() {
            compared +=
                rows::assert_same_on_sqlite(read.pool(), fresh.pool(), projection.tables()).await;
        }
        assert!(compared > 0);
        read.close().await;
        fresh.close().await;
        store.close().await;
    }
}

// ---------------------------------------------------------------------------------
// Export from embedded, import into PostgreSQL + JetStream.

/// The catalogue and carts on top of the account history: categories moved and
/// renamed, products with variants, images, price and slug changes, stock and
/// reservations, reviews in every state, and carts, written while the embedded
/// projections run.
async fn catalogue_and_carts(store: &SqliteStore) {
    let shop = crate::both_backends_catalog::Shop::new(store);
    let kitchen = shop.category("Kitchen", "kitchen", None).await;
    let mugs = shop.category("Mugs", "mugs", Some(kitchen)).await;
    let home = shop.category("Home", "home", None).await;
    let temp = shop.category("Temporary", "temporary", Some(home)).await;
    shop.track("MUG-1-M", 6, 2).await;
    let mug = shop
        .product("MUG-1", mugs, 1_250, &["kitchen", "gift"])
        .await;
    let large = shop.variant(mug, "MUG-1-L", "L", 1_500).await;
    shop.variant(mug, "MUG-1-M", "M", 1_100).await;
    shop.command(
        mug,
        ProductCommand::ChangeVariantPrice {
            variant_id: large,
            price: Money::new(1_550, Currency::EUR),
            at: Utc::now(),
        },
    )
    .await;
    let front = shop.image(mug, "products/front.jpg", true).await;
    shop.image(mug, "products/side.jpg", false).await;
    shop.command(
        mug,
        ProductCommand::RemoveImage {
            image_id: front,
            at: Utc::now(),
        },
    )
    .await;
    for command in [
        ProductCommand::PublishProduct { at: Utc::now() },
        ProductCommand::FeatureProduct { at: Utc::now() },
        ProductCommand::ChangeSlug {
            slug: Slug::parse("big-mug").unwrap(),
            at: Utc::now(),
        },
    ] {
        shop.command(mug, command).await;
    }
    shop.track("MUG-1", 10, 0).await;
    shop.reserve("MUG-1", 3).await;
    shop.track("MUG-1-L", 3, 5).await;
    // A product for the SKU the account history already stocks and ordered.
    let lamp = shop.product("LAMP-1", home, 4_000, &["lighting"]).await;
    shop.image(lamp, "products/lamp.jpg", true).await;
    shop.command(lamp, ProductCommand::PublishProduct { at: Utc::now() })
        .await;
    // A run of products with stock and reviews: more than a batch of each.
    let mut products = Vec::new();
    for i in 0..40 {
        let category = [mugs, home, temp][i % 3];
        let sku = format!("GOOD-{i:03}");
        let product = shop
            .product(
                &sku,
                category,
                500 + i64::try_from(i).unwrap() * 37,
                &["bulk"],
            )
            .await;
        shop.image(product, &format!("products/{i}.jpg"), true)
            .await;
        shop.command(product, ProductCommand::PublishProduct { at: Utc::now() })
            .await;
        shop.track(&sku, i64::try_from(i % 7).unwrap() + 1, 3).await;
        if i % 4 == 0 {
            shop.reserve(&sku, 1).await;
        }
        shop.write_review(product, i64::try_from(i % 5).unwrap() + 1, i % 3 != 0)
            .await;
        products.push(product);
    }
    let five = shop.write_review(mug, 5, true).await;
    shop.review(
        mug,
        five,
        ReviewCommand::MarkReviewHelpful {
            voter_id: Uuid::new_v4(),
            at: Utc::now(),
        },
    )
    .await;
    // The tree changes after products are in it.
    shop.category_command(CategoryCommand::RenameCategory {
        category_id: kitchen,
        name: CategoryName::parse("Cooking").unwrap(),
        slug: Slug::parse("cooking").unwrap(),
        at: Utc::now(),
    })
    .await;
    shop.category_command(CategoryCommand::MoveCategory {
        category_id: kitchen,
        new_parent_id: Some(home),
        at: Utc::now(),
    })
    .await;

    // Carts: a user's and a guest's, with changes, one merged into the other.
    let carts = Dispatcher::<Cart, SqliteStore>::over(store.clone(), Loading::Replay);
    let (user_cart, guest_cart) = (Uuid::new_v4(), Uuid::new_v4());
    let run = |id: Uuid, command: CartCommand| {
        let carts = &carts;
        async move {
            carts
                .execute(&id.to_string(), command, &meta())
                .await
                .expect("cart command");
        }
    };
    run(
        user_cart,
        CartCommand::OpenCart {
            cart_id: user_cart,
            owner: CartOwner::User {
                user_id: Uuid::new_v4(),
            },
            currency: Currency::EUR,
            at: Utc::now(),
        },
    )
    .await;
    run(
        guest_cart,
        CartCommand::OpenCart {
            cart_id: guest_cart,
            owner: CartOwner::Guest {
                guest_key: GuestKey::parse("guest-key-0123456789abcdef").unwrap(),
            },
            currency: Currency::EUR,
            at: Utc::now(),
        },
    )
    .await;
    for (cart, sku, n) in [
        (user_cart, "MUG-1", 2),
        (user_cart, "GOOD-001", 1),
        (guest_cart, "GOOD-002", 3),
        (user_cart, "MUG-1", 1),
    ] {
        run(
            cart,
            CartCommand::AddItem {
                sku: Sku::parse(sku).unwrap(),
                product_id: mug,
                quantity: Quantity::new(n).unwrap(),
                at: Utc::now(),
            },
        )
        .await;
    }
    run(
        user_cart,
        CartCommand::RemoveItem {
            sku: Sku::parse("GOOD-001").unwrap(),
            at: Utc::now(),
        },
    )
    .await;
    shop.stock(
        "GOOD-005",
        InventoryCommand::ChangeLowStockThreshold {
            low_stock_threshold: 9,
            at: Utc::now(),
        },
    )
    .await;
}

#[tokio::test]
async fn a_shop_exported_from_embedded_and_imported_into_postgres_has_identical_read_models() {
    // The account history (users, orders, payments, inbox, wishlists, activity), then
    // the embedded projections start (a build), then the catalogue and carts are
    // written while they run (batches).
    let shop = crate::both_backends_accounts::shop().await;
    let scenario = &shop.scenario;
    let store = &scenario.store;
    let read = ReadDb::open(&scenario.dir.path().join("read.db"))
        .await
        .expect("open read.db");
    let running = EmbeddedProjections::start(
        store.pool().clone(),
        read.clone(),
        embedded_projections(),
        embedded_config(),
    )
    .await
    .expect("start the embedded projections");
    catalogue_and_carts(store).await;
    running.wake_handle().wake();
    let last = last_position(store.pool()).await;
    caught_up(&running, last).await;
    let ended = running.shutdown().await;
    assert!(ended.iter().all(|(_, r)| r.is_ok()), "{ended:?}");

    // Export, as `emporium events export --sqlite` does.
    let mut file = Vec::new();
    let exported = log::export(store, &mut file).await.expect("export");
    assert_eq!(exported.events, u64::try_from(last).unwrap());

    // A fresh distributed platform: its own database and stream prefix, every
    // projection's runner started (its tables built, empty) before the import, so
    // every event reaches the read models through the relay and JetStream.
    let app = support::spawn().await;
    let mut runners: Vec<_> = projection::all()
        .into_iter()
        .map(|p| support::runner(&app, p))
        .collect();
    for runner in &mut runners {
        let checkpoint = runner.prepare().await.expect("prepare a runner");
        assert_eq!(checkpoint.cursor, CommitPosition::START);
    }
    let imported = log::import(
        &PgStore::new(app.pool.clone()),
        file.as_slice(),
        ImportOptions::default(),
    )
    .await
    .expect("import into PostgreSQL");
    assert_eq!(imported, exported);
    let mut relay = app.relay();
    let mut refs: Vec<_> = runners.iter_mut().collect();
    support::project(&app, &mut relay, &mut refs).await;
    let messages = app.assert_stream_matches_store().await;
    assert_eq!(messages.len(), usize::try_from(last).unwrap());
    let status = projection::status(&app.pool, None).await.expect("status");
    assert_eq!(status.len(), runners.len());
    for s in &status {
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
            .extend(rows::assert_same_on_postgres_and_sqlite(&app.pool, read.pool(), tables).await);
    }
    assert!(
        empty.is_empty(),
        "the history leaves tables empty: {empty:?}"
    );
    read.close().await;
    app.teardown().await;
}
