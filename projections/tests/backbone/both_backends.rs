//! The read models on both backends: the same events, applied by the same projection
//! code to PostgreSQL and to SQLite, give the same rows.
//!
//! Events are written through the real dispatchers into the embedded (SQLite) store
//! and read back through its feed, so they are exactly what a runner would apply.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use emporium_commands::store::SqliteStore;
use emporium_commands::{Dispatcher, Loading};
use emporium_domain::cart::{Cart, CartCommand, CartOwner, GuestKey};
use emporium_domain::{Currency, Quantity, Sku};
use emporium_projections::envelope::{CommitPosition, EventEnvelope};
use emporium_projections::feed::{EventFeed as _, SqliteFeed};
use emporium_projections::projection::{Projection, upcast};
use emporium_projections::sql::{Conn, Db};
use emporium_projections::views::CartsProjection;
use emporium_tests::TestDatabase;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use uuid::Uuid;

use crate::support::meta;

/// An embedded store in a temporary directory, and its events once written.
pub(crate) struct Scenario {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) store: SqliteStore,
}

impl Scenario {
    pub(crate) async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = SqliteStore::open(&dir.path().join("events.db"))
            .await
            .expect("open the embedded store");
        Self { dir, store }
    }

    pub(crate) async fn events(&self) -> Vec<EventEnvelope> {
        let feed = SqliteFeed::new(self.store.pool().clone());
        let mut events = feed
            .read_after(CommitPosition::START, 100_000)
            .await
            .expect("read the feed");
        events.iter_mut().for_each(upcast);
        events
    }

    /// A read-model database beside the store.
    pub(crate) async fn sqlite(&self) -> Db {
        let options = SqliteConnectOptions::new()
            .filename(self.dir.path().join("read.db"))
            .create_if_missing(true);
        Db::from(
            SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .expect("open the read-model database"),
        )
    }
}

/// Creates the projection's tables on `db` and applies `events` in one transaction,
/// as a runner would.
pub(crate) async fn build(db: &Db, projection: &dyn Projection, events: &[EventEnvelope]) {
    let ddl = match db {
        Db::Postgres(_) => projection.schema(),
        Db::Sqlite(_) => projection
            .sqlite_schema()
            .unwrap_or_else(|| panic!("{} has no SQLite schema", projection.name())),
    };
    match db {
        Db::Postgres(pool) => sqlx::raw_sql(ddl).execute(pool).await.map(|_| ()),
        Db::Sqlite(pool) => sqlx::raw_sql(ddl).execute(pool).await.map(|_| ()),
    }
    .expect("create the tables");
    let mut tx = db.begin().await.expect("begin");
    let mut conn: Conn<'_> = tx.conn();
    let mine: Vec<EventEnvelope> = events
        .iter()
        .filter(|e| {
            projection
                .aggregate_types()
                .contains(&e.aggregate_type.as_str())
        })
        .cloned()
        .collect();
    projection
        .apply_batch(&mut conn, &mine)
        .await
        .unwrap_or_else(|e| panic!("apply {} on {:?}: {e:#}", projection.name(), db.backend()));
    tx.commit().await.expect("commit");
}

/// Creates the projection's tables on `db` and applies `events` one at a time, each
/// in its own transaction (what a runner does after a failed batch): to compare with
/// [`build`], where projections may fold a batch.
pub(crate) async fn build_each(db: &Db, projection: &dyn Projection, events: &[EventEnvelope]) {
    build(db, projection, &[]).await;
    for event in events.iter().filter(|e| {
        projection
            .aggregate_types()
            .contains(&e.aggregate_type.as_str())
    }) {
        let mut tx = db.begin().await.expect("begin");
        let mut conn: Conn<'_> = tx.conn();
        projection
            .apply(&mut conn, event)
            .await
            .unwrap_or_else(|e| panic!("apply {} on {:?}: {e:#}", projection.name(), db.backend()));
        tx.commit().await.expect("commit");
    }
}

/// Builds `projection` from the scenario's events on a fresh PostgreSQL database and
/// on SQLite; returns both databases.
pub(crate) async fn build_both(
    scenario: &Scenario,
    projection: Arc<dyn Projection>,
) -> (TestDatabase, Db, Db) {
    let events = scenario.events().await;
    let pg = TestDatabase::create(2).await.expect("a fresh database");
    let pg_db = Db::from(pg.pool().clone());
    let lite = scenario.sqlite().await;
    build(&pg_db, &*projection, &events).await;
    build(&lite, &*projection, &events).await;
    (pg, pg_db, lite)
}

#[derive(Debug, PartialEq, sqlx::FromRow)]
struct CartRow {
    cart_id: Uuid,
    user_id: Option<Uuid>,
    guest_key: Option<String>,
    currency: String,
    status: String,
    lines: sqlx::types::Json<serde_json::Value>,
    item_count: i64,
    subtotal_minor: Option<i64>,
    merged_into: Option<Uuid>,
    opened_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    closed_at: Option<DateTime<Utc>>,
}

async fn carts(db: &Db) -> Vec<CartRow> {
    db.fetch_all(
        "SELECT cart_id, user_id, guest_key, currency, status, lines, item_count,
                subtotal_minor, merged_into, opened_at, updated_at, closed_at
           FROM carts ORDER BY opened_at, cart_id",
        emporium_projections::args![],
    )
    .await
    .expect("read carts")
}

fn sku(s: &str) -> Sku {
    Sku::parse(s).expect("a valid sku")
}

fn qty(n: i64) -> Quantity {
    Quantity::new(n).expect("a valid quantity")
}

#[tokio::test]
async fn carts_are_the_same_on_postgres_and_sqlite() {
    let scenario = Scenario::new().await;
    let carts_cmd = Dispatcher::<Cart, SqliteStore>::over(scenario.store.clone(), Loading::Replay);
    let (user_cart, guest_cart) = (Uuid::new_v4(), Uuid::new_v4());
    let (user_id, product) = (Uuid::new_v4(), Uuid::new_v4());
    let run = |id: Uuid, command: CartCommand| {
        let carts_cmd = &carts_cmd;
        async move {
            carts_cmd
                .execute(&id.to_string(), command, &meta())
                .await
                .expect("cart command");
        }
    };
    run(
        user_cart,
        CartCommand::OpenCart {
            cart_id: user_cart,
            owner: CartOwner::User { user_id },
            currency: Currency::EUR,
            at: Utc::now(),
        },
    )
    .await;
    for (s, n) in [("MUG-1", 2), ("MUG-2", 1), ("MUG-1", 3)] {
        run(
            user_cart,
            CartCommand::AddItem {
                sku: sku(s),
                product_id: product,
                quantity: qty(n),
                at: Utc::now(),
            },
        )
        .await;
    }
    run(
        user_cart,
        CartCommand::RemoveItem {
            sku: sku("MUG-2"),
            at: Utc::now(),
        },
    )
    .await;
    run(
        guest_cart,
        CartCommand::OpenCart {
            cart_id: guest_cart,
            owner: CartOwner::Guest {
                guest_key: GuestKey::parse("guest-key-0123456789abcdef").expect("a guest key"),
            },
            currency: Currency::EUR,
            at: Utc::now(),
        },
    )
    .await;
    run(
        guest_cart,
        CartCommand::AddItem {
            sku: sku("TEE-1"),
            product_id: product,
            quantity: qty(4),
            at: Utc::now(),
        },
    )
    .await;

    let (pg, pg_db, lite) = build_both(&scenario, Arc::new(CartsProjection)).await;
    let on_pg = carts(&pg_db).await;
    let on_lite = carts(&lite).await;
    assert_eq!(on_pg.len(), 2, "both carts projected");
    assert_eq!(
        on_pg[0].item_count, 5,
        "MUG-1 x5 after the quantity change and the removal"
    );
    assert_eq!(on_pg, on_lite, "the same rows on both backends");
    pg.drop_database().await.expect("drop the database");
}
