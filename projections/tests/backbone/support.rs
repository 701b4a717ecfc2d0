//! What the projection tests share: a backbone with the projections' migrations,
//! runners over it, and commands to the catalogue through the real dispatchers.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::Utc;
use emporium_commands::catalog::Products;
use emporium_commands::{Dispatcher, Loading};
use emporium_domain::catalog::{
    AltText, Attributes, CategoryCommand, CategoryName, CategoryTree, Description, ImageSource,
    ProductCommand, ProductName, Slug, Tag, VariantLabel,
};
use emporium_domain::inventory::{Inventory, InventoryCommand};
use emporium_domain::metadata::Actor;
use emporium_domain::{Currency, EventMetadata, Money, Quantity, Sku};
use emporium_projections::projection::{Projection, ProjectionRunner, Rebuild, RunnerConfig};
use emporium_projections::relay::Relay;
use uuid::Uuid;

use crate::helpers::{TestBackbone, spawn_backbone};

/// A backbone whose database also has the projections' tables.
pub(crate) async fn spawn() -> TestBackbone {
    let app = spawn_backbone().await;
    emporium_projections::migrate(&app.pool)
        .await
        .expect("projection migrations");
    app
}

pub(crate) fn meta() -> EventMetadata {
    EventMetadata::new(Uuid::new_v4(), Actor::System("test".into()), Utc::now())
}

pub(crate) fn runner(app: &TestBackbone, projection: Arc<dyn Projection>) -> ProjectionRunner {
    ProjectionRunner::new(
        app.pool.clone(),
        app.jetstream.clone(),
        app.layout.clone(),
        projection,
        RunnerConfig {
            batch_size: 16,
            ..RunnerConfig::default()
        },
    )
}

/// Relays everything committed, then steps each runner until it has applied it.
pub(crate) async fn project(
    app: &TestBackbone,
    relay: &mut Relay,
    runners: &mut [&mut ProjectionRunner],
) {
    app.relay_until_caught_up(relay).await;
    for runner in runners.iter_mut() {
        runner.run_until_caught_up().await.expect("projection runs");
    }
}

/// The rows of `table` in `schema` as JSON, ordered, for comparing read models.
pub(crate) async fn rows(app: &TestBackbone, schema: &str, table: &str) -> Vec<serde_json::Value> {
    sqlx::query_scalar(&format!(
        r#"SELECT to_jsonb(t) FROM "{schema}"."{table}" t ORDER BY to_jsonb(t)::text"#
    ))
    .fetch_all(&app.pool)
    .await
    .expect("read rows")
}

/// Asserts that the live tables of `projection` equal a from-scratch rebuild of it
/// from the event store.
pub(crate) async fn assert_equals_rebuild(app: &TestBackbone, projection: Arc<dyn Projection>) {
    let schema = format!("compare_{}", projection.name());
    let mut rebuild = Rebuild::start_detached(app.pool.clone(), Arc::clone(&projection), &schema)
        .await
        .expect("start a detached rebuild");
    rebuild.run_to_end().await.expect("rebuild");
    for table in projection.tables() {
        let live = rows(app, "public", table).await;
        let rebuilt = rows(app, &schema, table).await;
        assert_eq!(
            live, rebuilt,
            "{table} differs from a rebuild from the event store"
        );
    }
    rebuild.abandon().await.expect("drop the comparison schema");
}

/// Commands to the catalogue and inventory.
pub(crate) struct Shop {
    pub(crate) products: Products,
    pub(crate) categories: Dispatcher<CategoryTree>,
    pub(crate) inventory: Dispatcher<Inventory>,
}

pub(crate) const TREE: &str = "catalog";

impl Shop {
    pub(crate) fn new(app: &TestBackbone) -> Self {
        Self {
            products: Products::new(app.pool.clone()),
            categories: Dispatcher::new(app.pool.clone(), Loading::Replay),
            inventory: Dispatcher::new(app.pool.clone(), Loading::Replay),
        }
    }

    pub(crate) async fn category(&self, name: &str, slug: &str, parent: Option<Uuid>) -> Uuid {
        let id = Uuid::new_v4();
        self.categories
            .execute(
                TREE,
                CategoryCommand::CreateCategory {
                    category_id: id,
                    name: CategoryName::parse(name).unwrap(),
                    slug: Slug::parse(slug).unwrap(),
                    parent_id: parent,
                    at: Utc::now(),
                },
                &meta(),
            )
            .await
            .expect("create category");
        id
    }

    pub(crate) async fn product(&self, sku: &str, category_id: Uuid, price: i64) -> Uuid {
        let id = Uuid::new_v4();
        self.products
            .execute(
                id,
                ProductCommand::CreateProduct {
                    product_id: id,
                    sku: Sku::parse(sku).unwrap(),
                    slug: Slug::parse(&sku.to_ascii_lowercase()).unwrap(),
                    name: ProductName::parse(&format!("Product {sku}")).unwrap(),
                    description: Description::parse("Sturdy and useful.").unwrap(),
                    category_id,
                    tags: BTreeSet::from([
                        Tag::parse("kitchen").unwrap(),
                        Tag::parse("gift").unwrap(),
                    ]),
                    attributes: Attributes::parse([("material", "enamel")]).unwrap(),
                    price: Money::new(price, Currency::EUR),
                    at: Utc::now(),
                },
                &meta(),
            )
            .await
            .expect("create product");
        id
    }

    pub(crate) async fn command(&self, product_id: Uuid, command: ProductCommand) -> i64 {
        self.products
            .execute(product_id, command, &meta())
            .await
            .expect("product command")
            .position
            .expect("recorded")
    }

    pub(crate) async fn variant(&self, product_id: Uuid, sku: &str, price: i64) -> Uuid {
        let id = Uuid::new_v4();
        self.command(
            product_id,
            ProductCommand::AddVariant {
                variant_id: id,
                sku: Sku::parse(sku).unwrap(),
                size: Some(VariantLabel::parse("L").unwrap()),
                colour: None,
                attributes: Attributes::default(),
                price: Money::new(price, Currency::EUR),
                at: Utc::now(),
            },
        )
        .await;
        id
    }

    pub(crate) async fn publish_with_image(&self, product_id: Uuid) -> Uuid {
        let image = Uuid::new_v4();
        self.command(
            product_id,
            ProductCommand::AddImage {
                image_id: image,
                source: ImageSource::key("products/front.jpg").unwrap(),
                alt_text: AltText::parse("The front").unwrap(),
                primary: true,
                at: Utc::now(),
            },
        )
        .await;
        self.command(
            product_id,
            ProductCommand::PublishProduct { at: Utc::now() },
        )
        .await;
        image
    }

    /// Tracks `sku` and receives `units`; returns the position of the receipt.
    pub(crate) async fn stock(&self, sku: &str, units: i64, threshold: u32) -> i64 {
        self.inventory
            .execute(
                sku,
                InventoryCommand::TrackInventory {
                    sku: Sku::parse(sku).unwrap(),
                    low_stock_threshold: threshold,
                    at: Utc::now(),
                },
                &meta(),
            )
            .await
            .expect("track");
        self.receive(sku, units).await
    }

    pub(crate) async fn receive(&self, sku: &str, units: i64) -> i64 {
        self.inventory
            .execute(
                sku,
                InventoryCommand::ReceiveStock {
                    quantity: Quantity::new(units).unwrap(),
                    at: Utc::now(),
                },
                &meta(),
            )
            .await
            .expect("receive")
            .position
            .expect("recorded")
    }

    pub(crate) async fn reserve(&self, sku: &str, units: i64) {
        let at = Utc::now();
        self.inventory
            .execute(
                sku,
                InventoryCommand::ReserveStock {
                    reservation_id: Uuid::new_v4(),
                    order_id: Uuid::new_v4(),
                    quantity: Quantity::new(units).unwrap(),
                    expires_at: at + chrono::Duration::minutes(15),
                    at,
                },
                &meta(),
            )
            .await
            .expect("reserve");
    }
}

/// The tables of the test projections that notice double application (`Ledger` in
/// framework.rs and embedded.rs): each event is a row under a primary key, and a
/// counter counts applications. The same DDL serves PostgreSQL and SQLite.
pub(crate) const LEDGER_SCHEMA: &str =
    "CREATE TABLE ledger (aggregate_id text, sequence bigint, built_by integer NOT NULL,
                          PRIMARY KEY (aggregate_id, sequence));
     CREATE INDEX ledger_built_by ON ledger (built_by);
     CREATE TABLE ledger_count (id integer PRIMARY KEY, applied bigint NOT NULL);";

/// Records `event` in the ledger tables as built by `version`: a second application
/// of one event fails on the primary key.
pub(crate) async fn ledger_record(
    conn: &mut emporium_projections::sql::Conn<'_>,
    event: &emporium_projections::envelope::EventEnvelope,
    version: u32,
) -> anyhow::Result<()> {
    conn.execute(
        "INSERT INTO ledger VALUES ($1, $2, $3)",
        emporium_projections::args![
            &event.aggregate_id,
            i64::try_from(event.sequence)?,
            i32::try_from(version)?
        ],
    )
    .await?;
    conn.execute(
        "INSERT INTO ledger_count VALUES (1, 1)
         ON CONFLICT (id) DO UPDATE SET applied = ledger_count.applied + 1",
        emporium_projections::args![],
    )
    .await?;
    Ok(())
}
