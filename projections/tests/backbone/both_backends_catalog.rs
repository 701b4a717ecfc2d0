//! The catalogue read models (`categories`, `inventory`, `catalog`, `reviews`) on both
//! backends: one realistic command sequence, written through the real dispatchers
//! into the embedded store, projected by the same code on PostgreSQL and on SQLite,
//! gives the same rows: applied as a runner's batch and applied event by event.
//!
//! Columns that are arrays on PostgreSQL are JSON array text on SQLite; the reads
//! below turn the PostgreSQL arrays into JSON (`to_jsonb`) so both decode into the
//! same `Json<Vec<_>>`.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use emporium_commands::catalog::Products;
use emporium_commands::store::SqliteStore;
use emporium_commands::{Dispatcher, Loading};
use emporium_domain::catalog::{
    AltText, Attributes, CategoryCommand, CategoryName, CategoryTree, Description, ImageSource,
    ModerationReason, ProductCommand, ProductName, Rating, Review, ReviewBody, ReviewCommand,
    ReviewTitle, Slug, Tag, VariantLabel,
};
use emporium_domain::inventory::{Inventory, InventoryCommand};
use emporium_domain::{Currency, Money, Quantity, Sku};
use emporium_projections::args;
use emporium_projections::envelope::EventEnvelope;
use emporium_projections::projection::Projection;
use emporium_projections::sql::{Conn, Db};
use emporium_projections::views::{
    CatalogProjection, CategoriesProjection, InventoryProjection, ReviewsProjection,
};
use emporium_tests::TestDatabase;
use serde_json::json;
use sqlx::types::Json;
use uuid::Uuid;

use crate::both_backends::{Scenario, build_both};
use crate::support::{TREE, meta};

/// `column`, an array on PostgreSQL, as JSON array text on both backends.
fn array(db: &Db, column: &str) -> String {
    match db {
        Db::Postgres(_) => format!("to_jsonb({column}) AS {column}"),
        Db::Sqlite(_) => column.to_owned(),
    }
}

#[derive(Debug, PartialEq, sqlx::FromRow)]
struct CategoryRow {
    category_id: Uuid,
    parent_id: Option<Uuid>,
    name: String,
    slug: String,
    old_slugs: Json<Vec<String>>,
    path_ids: Json<Vec<Uuid>>,
    path_names: Json<Vec<String>>,
    path_slugs: String,
    depth: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

async fn categories(db: &Db) -> Vec<CategoryRow> {
    db.fetch_all(
        &format!(
            "SELECT category_id, parent_id, name, slug, {}, {}, {}, path_slugs, depth,
                    created_at, updated_at
             FROM categories ORDER BY path_slugs",
            array(db, "old_slugs"),
            array(db, "path_ids"),
            array(db, "path_names"),
        ),
        args![],
    )
    .await
    .expect("read categories")
}

#[derive(Debug, PartialEq, sqlx::FromRow)]
struct LevelRow {
    sku: String,
    on_hand: i64,
    reserved: i64,
    available: i64,
    low_stock_threshold: i64,
    low_stock: bool,
    tracked_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

async fn levels(db: &Db) -> Vec<LevelRow> {
    db.fetch_all(
        "SELECT sku, on_hand, reserved, available, low_stock_threshold, low_stock, tracked_at,
                updated_at
         FROM inventory_levels ORDER BY sku",
        args![],
    )
    .await
    .expect("read inventory levels")
}

#[derive(Debug, PartialEq, sqlx::FromRow)]
struct ProductRow {
    product_id: Uuid,
    sku: String,
    slug: String,
    old_slugs: Json<Vec<String>>,
    name: String,
    description: String,
    category_id: Uuid,
    category_path: Json<serde_json::Value>,
    category_ids: Json<Vec<Uuid>>,
    tags: Json<Vec<String>>,
    attributes: Json<serde_json::Value>,
    currency: String,
    price_minor: i64,
    min_price_minor: i64,
    max_price_minor: i64,
    variants: Json<serde_json::Value>,
    images: Json<serde_json::Value>,
    primary_image: Option<Json<serde_json::Value>>,
    skus: Json<Vec<String>>,
    rating_count: i64,
    rating_sum: i64,
    rating_average: Option<f64>,
    available: i64,
    in_stock: bool,
    status: String,
    published: bool,
    featured: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    published_at: Option<DateTime<Utc>>,
}

async fn products(db: &Db) -> Vec<ProductRow> {
    db.fetch_all(
        &format!(
            "SELECT product_id, sku, slug, {}, name, description, category_id, category_path,
                    {}, {}, attributes, currency, price_minor, min_price_minor,
                    max_price_minor, variants, images, primary_image, {}, rating_count,
                    rating_sum, CAST(rating_average AS double precision) AS rating_average,
                    available, in_stock, status, published, featured, created_at, updated_at,
                    published_at
             FROM catalog_products ORDER BY sku",
            array(db, "old_slugs"),
            array(db, "category_ids"),
            array(db, "tags"),
            array(db, "skus"),
        ),
        args![],
    )
    .await
    .expect("read catalog products")
}

/// The catalog's helper tables, one tuple per row, ordered.
type CatalogHelpers = (
    Vec<(Uuid, Option<Uuid>, String, String)>,
    Vec<(String, Option<Uuid>, i64)>,
    Vec<(Uuid, i64, i64)>,
);

async fn catalog_helpers(db: &Db) -> CatalogHelpers {
    (
        db.fetch_all(
            "SELECT category_id, parent_id, name, slug FROM catalog_categories ORDER BY slug",
            args![],
        )
        .await
        .expect("read catalog_categories"),
        db.fetch_all(
            "SELECT sku, product_id, available FROM catalog_stock ORDER BY sku",
            args![],
        )
        .await
        .expect("read catalog_stock"),
        db.fetch_all(
            "SELECT product_id, rating_count, rating_sum FROM catalog_ratings ORDER BY rating_sum",
            args![],
        )
        .await
        .expect("read catalog_ratings"),
    )
}

#[derive(Debug, PartialEq, sqlx::FromRow)]
struct ReviewRow {
    review_id: Uuid,
    product_id: Uuid,
    author_id: Uuid,
    rating: i32,
    title: String,
    body: String,
    verified_purchase: bool,
    status: String,
    helpful_votes: i64,
    moderation_reason: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

async fn reviews(db: &Db) -> Vec<ReviewRow> {
    db.fetch_all(
        "SELECT review_id, product_id, author_id, rating, title, body, verified_purchase, status,
                helpful_votes, moderation_reason, created_at, updated_at
         FROM product_reviews ORDER BY created_at, review_id",
        args![],
    )
    .await
    .expect("read reviews")
}

/// Another SQLite read-model database beside the scenario's store.
async fn sqlite_file(scenario: &Scenario, name: &str) -> Db {
    Db::from(
        sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(scenario.dir.path().join(name))
                    .create_if_missing(true),
            )
            .await
            .expect("open a read-model database"),
    )
}

/// Builds `projection` on a fresh database applying `events` one at a time (the
/// runner's path when a batch is retried event by event).
async fn build_one_by_one(db: &Db, projection: &dyn Projection, events: &[EventEnvelope]) {
    let ddl = match db {
        Db::Postgres(_) => projection.schema(),
        Db::Sqlite(_) => projection.sqlite_schema().expect("a SQLite schema"),
    };
    match db {
        Db::Postgres(pool) => sqlx::raw_sql(ddl).execute(pool).await.map(|_| ()),
        Db::Sqlite(pool) => sqlx::raw_sql(ddl).execute(pool).await.map(|_| ()),
    }
    .expect("create the tables");
    let mut tx = db.begin().await.expect("begin");
    let mut conn: Conn<'_> = tx.conn();
    for event in events.iter().filter(|e| {
        projection
            .aggregate_types()
            .contains(&e.aggregate_type.as_str())
    }) {
        projection
            .apply(&mut conn, event)
            .await
            .unwrap_or_else(|e| panic!("apply {} on {:?}: {e:#}", projection.name(), db.backend()));
    }
    tx.commit().await.expect("commit");
}

/// The commands of a small shop's history, through the real dispatchers.
pub(crate) struct Shop {
    products: Products<SqliteStore>,
    categories: Dispatcher<CategoryTree, SqliteStore>,
    inventory: Dispatcher<Inventory, SqliteStore>,
    reviews: Dispatcher<Review, SqliteStore>,
}

impl Shop {
    pub(crate) fn new(store: &SqliteStore) -> Self {
        Self {
            products: Products::over(store.clone()),
            categories: Dispatcher::over(store.clone(), Loading::Replay),
            inventory: Dispatcher::over(store.clone(), Loading::Replay),
            reviews: Dispatcher::over(store.clone(), Loading::Replay),
        }
    }

    pub(crate) async fn category_command(&self, command: CategoryCommand) {
        self.categories
            .execute(TREE, command, &meta())
            .await
            .expect("category command");
    }

    pub(crate) async fn category(&self, name: &str, slug: &str, parent_id: Option<Uuid>) -> Uuid {
        let category_id = Uuid::new_v4();
        self.category_command(CategoryCommand::CreateCategory {
            category_id,
            name: CategoryName::parse(name).unwrap(),
            slug: Slug::parse(slug).unwrap(),
            parent_id,
            at: Utc::now(),
        })
        .await;
        category_id
    }

    pub(crate) async fn product(
        &self,
        sku: &str,
        category_id: Uuid,
        price: i64,
        tags: &[&str],
    ) -> Uuid {
        let product_id = Uuid::new_v4();
        self.command(
            product_id,
            ProductCommand::CreateProduct {
                product_id,
                sku: Sku::parse(sku).unwrap(),
                slug: Slug::parse(&sku.to_ascii_lowercase()).unwrap(),
                name: ProductName::parse(&format!("Product {sku}")).unwrap(),
                description: Description::parse("Sturdy and useful.").unwrap(),
                category_id,
                tags: tags.iter().map(|t| Tag::parse(t).unwrap()).collect(),
                attributes: Attributes::parse([("material", "enamel")]).unwrap(),
                price: Money::new(price, Currency::EUR),
                at: Utc::now(),
            },
        )
        .await;
        product_id
    }

    pub(crate) async fn command(&self, product_id: Uuid, command: ProductCommand) {
        self.products
            .execute(product_id, command, &meta())
            .await
            .expect("product command");
    }

    pub(crate) async fn variant(
        &self,
        product_id: Uuid,
        sku: &str,
        size: &str,
        price: i64,
    ) -> Uuid {
        let variant_id = Uuid::new_v4();
        self.command(
            product_id,
            ProductCommand::AddVariant {
                variant_id,
                sku: Sku::parse(sku).unwrap(),
                size: Some(VariantLabel::parse(size).unwrap()),
                colour: None,
                attributes: Attributes::default(),
                price: Money::new(price, Currency::EUR),
                at: Utc::now(),
            },
        )
        .await;
        variant_id
    }

    pub(crate) async fn image(&self, product_id: Uuid, key: &str, primary: bool) -> Uuid {
        let image_id = Uuid::new_v4();
        self.command(
            product_id,
            ProductCommand::AddImage {
                image_id,
                source: ImageSource::key(key).unwrap(),
                alt_text: AltText::parse("The front").unwrap(),
                primary,
                at: Utc::now(),
            },
        )
        .await;
        image_id
    }

    pub(crate) async fn stock(&self, sku: &str, command: InventoryCommand) {
        self.inventory
            .execute(sku, command, &meta())
            .await
            .expect("inventory command");
    }

    pub(crate) async fn track(&self, sku: &str, units: i64, threshold: u32) {
        self.stock(
            sku,
            InventoryCommand::TrackInventory {
                sku: Sku::parse(sku).unwrap(),
                low_stock_threshold: threshold,
                at: Utc::now(),
            },
        )
        .await;
        self.stock(
            sku,
            InventoryCommand::ReceiveStock {
                quantity: Quantity::new(units).unwrap(),
                at: Utc::now(),
            },
        )
        .await;
    }

    pub(crate) async fn reserve(&self, sku: &str, units: i64) {
        let at = Utc::now();
        self.stock(
            sku,
            InventoryCommand::ReserveStock {
                reservation_id: Uuid::new_v4(),
                order_id: Uuid::new_v4(),
                quantity: Quantity::new(units).unwrap(),
                expires_at: at + chrono::Duration::minutes(15),
                at,
            },
        )
        .await;
    }

    pub(crate) async fn review(&self, product_id: Uuid, author_id: Uuid, command: ReviewCommand) {
        self.reviews
            .execute(&Review::id_for(product_id, author_id), command, &meta())
            .await
            .expect("review command");
    }

    pub(crate) async fn write_review(&self, product_id: Uuid, stars: i64, approve: bool) -> Uuid {
        let author_id = Uuid::new_v4();
        self.review(
            product_id,
            author_id,
            ReviewCommand::WriteReview {
                product_id,
                author_id,
                rating: Rating::new(stars).unwrap(),
                title: ReviewTitle::parse("My mug").unwrap(),
                body: ReviewBody::parse("It holds coffee.").unwrap(),
                verified_purchase: stars > 2,
                at: Utc::now(),
            },
        )
        .await;
        if approve {
            self.review(
                product_id,
                author_id,
                ReviewCommand::ApproveReview {
                    moderator_id: Uuid::new_v4(),
                    at: Utc::now(),
                },
            )
            .await;
        }
        author_id
    }
}

#[tokio::test]
async fn catalogue_read_models_are_the_same_on_postgres_and_sqlite() {
    let scenario = Scenario::new().await;
    let shop = Shop::new(&scenario.store);

    // A tree: kitchen > mugs, home, and a category created then deleted.
    let kitchen = shop.category("Kitchen", "kitchen", None).await;
    let mugs = shop.category("Mugs", "mugs", Some(kitchen)).await;
    let home = shop.category("Home", "home", None).await;
    let temp = shop.category("Temporary", "temporary", Some(home)).await;

    // Stock for a variant SKU arrives before the variant exists.
    shop.track("MUG-1-M", 6, 2).await;

    let mug = shop
        .product("MUG-1", mugs, 1_250, &["kitchen", "gift"])
        .await;
    let tee = shop.product("TEE-1", home, 900, &["apparel"]).await;
    let large = shop.variant(mug, "MUG-1-L", "L", 1_500).await;
    let extra = shop.variant(mug, "MUG-1-XL", "XL", 1_700).await;
    shop.variant(mug, "MUG-1-M", "M", 1_100).await;
    shop.command(
        mug,
        ProductCommand::ChangePrice {
            price: Money::new(1_300, Currency::EUR),
            at: Utc::now(),
        },
    )
    .await;
    shop.command(
        mug,
        ProductCommand::ChangeVariantPrice {
            variant_id: extra,
            price: Money::new(1_800, Currency::EUR),
            at: Utc::now(),
        },
    )
    .await;
    shop.command(
        mug,
        ProductCommand::UpdateVariant {
            variant_id: large,
            size: Some(VariantLabel::parse("L").unwrap()),
            colour: Some(VariantLabel::parse("Blue").unwrap()),
            attributes: Attributes::parse([("glaze", "matte")]).unwrap(),
            at: Utc::now(),
        },
    )
    .await;
    shop.command(
        mug,
        ProductCommand::RemoveVariant {
            variant_id: extra,
            at: Utc::now(),
        },
    )
    .await;
    let front = shop.image(mug, "products/front.jpg", true).await;
    let side = shop.image(mug, "products/side.jpg", false).await;
    shop.image(mug, "products/top.jpg", false).await;
    shop.command(
        mug,
        ProductCommand::SetPrimaryImage {
            image_id: side,
            at: Utc::now(),
        },
    )
    .await;
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
        ProductCommand::ChangeSlug {
            slug: Slug::parse("giant-mug").unwrap(),
            at: Utc::now(),
        },
    ] {
        shop.command(mug, command).await;
    }
    shop.image(tee, "products/tee.jpg", true).await;
    for command in [
        ProductCommand::PublishProduct { at: Utc::now() },
        ProductCommand::UnpublishProduct { at: Utc::now() },
        ProductCommand::UpdateProductDetails {
            name: ProductName::parse("Tea towel").unwrap(),
            description: Description::parse("Dries mugs.").unwrap(),
            category_id: mugs,
            tags: BTreeSet::from([Tag::parse("kitchen").unwrap(), Tag::parse("linen").unwrap()]),
            attributes: Attributes::parse([("material", "linen")]).unwrap(),
            at: Utc::now(),
        },
    ] {
        shop.command(tee, command).await;
    }

    // A run of stock movements (folded by the catalog's batch), some on SKUs of no
    // product.
    shop.track("MUG-1", 10, 0).await;
    shop.track("MUG-1-L", 3, 5).await;
    shop.reserve("MUG-1-L", 1).await;
    shop.track("TEE-1", 4, 1).await;
    shop.reserve("TEE-1", 4).await;
    shop.track("LOOSE-1", 7, 0).await;
    shop.stock(
        "MUG-1",
        InventoryCommand::ChangeLowStockThreshold {
            low_stock_threshold: 12,
            at: Utc::now(),
        },
    )
    .await;
    shop.reserve("MUG-1-M", 2).await;

    // Reviews: approved, hidden after approval, edited after approval (back to
    // pending), rejected, and one voted helpful.
    let five = shop.write_review(mug, 5, true).await;
    shop.write_review(mug, 4, true).await;
    let one = shop.write_review(mug, 1, true).await;
    shop.review(
        mug,
        one,
        ReviewCommand::HideReview {
            moderator_id: Uuid::new_v4(),
            reason: ModerationReason::parse("off topic").unwrap(),
            at: Utc::now(),
        },
    )
    .await;
    let three = shop.write_review(mug, 3, true).await;
    shop.review(
        mug,
        three,
        ReviewCommand::EditReview {
            editor_id: three,
            rating: Rating::new(2).unwrap(),
            title: ReviewTitle::parse("Chipped").unwrap(),
            body: ReviewBody::parse("It chipped.").unwrap(),
            at: Utc::now(),
        },
    )
    .await;
    shop.review(
        mug,
        five,
        ReviewCommand::MarkReviewHelpful {
            voter_id: Uuid::new_v4(),
            at: Utc::now(),
        },
    )
    .await;
    let spam = shop.write_review(tee, 2, false).await;
    shop.review(
        tee,
        spam,
        ReviewCommand::RejectReview {
            moderator_id: Uuid::new_v4(),
            reason: ModerationReason::parse("spam").unwrap(),
            at: Utc::now(),
        },
    )
    .await;
    shop.write_review(tee, 4, false).await;

    // The tree changes after products are in it: paths are rewritten below.
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
    shop.category_command(CategoryCommand::DeleteCategory {
        category_id: temp,
        at: Utc::now(),
    })
    .await;
    // More stock after the tree change: a second run for the fold.
    shop.reserve("MUG-1", 3).await;

    let events = scenario.events().await;

    // categories
    let (pg, pg_db, lite) = build_both(&scenario, Arc::new(CategoriesProjection)).await;
    let on_pg = categories(&pg_db).await;
    assert_eq!(
        on_pg
            .iter()
            .map(|c| (c.path_slugs.as_str(), c.depth, c.old_slugs.0.clone()))
            .collect::<Vec<_>>(),
        [
            ("home", 0, vec![]),
            ("home/cooking", 1, vec!["kitchen".to_owned()]),
            ("home/cooking/mugs", 2, vec![]),
        ]
    );
    assert_eq!(on_pg[2].path_ids.0, [home, kitchen, mugs]);
    assert_eq!(on_pg[2].path_names.0, ["Home", "Cooking", "Mugs"]);
    assert_eq!(
        on_pg,
        categories(&lite).await,
        "categories on both backends"
    );
    pg.drop_database().await.expect("drop the database");

    // inventory
    let (pg, pg_db, lite) = build_both(&scenario, Arc::new(InventoryProjection)).await;
    let on_pg = levels(&pg_db).await;
    let summary: Vec<(&str, i64, i64, i64, bool)> = on_pg
        .iter()
        .map(|l| {
            (
                l.sku.as_str(),
                l.on_hand,
                l.reserved,
                l.available,
                l.low_stock,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("LOOSE-1", 7, 0, 7, false),
            ("MUG-1", 10, 3, 7, true),
            ("MUG-1-L", 3, 1, 2, true),
            ("MUG-1-M", 6, 2, 4, false),
            ("TEE-1", 4, 4, 0, true),
        ]
    );
    assert_eq!(
        on_pg,
        levels(&lite).await,
        "inventory levels on both backends"
    );
    let one_by_one = sqlite_file(&scenario, "inventory-one-by-one.db").await;
    build_one_by_one(&one_by_one, &InventoryProjection, &events).await;
    assert_eq!(on_pg, levels(&one_by_one).await, "event by event on SQLite");
    pg.drop_database().await.expect("drop the database");

    // catalog, as a batch and event by event, on both backends
    let (pg, pg_db, lite) = build_both(&scenario, Arc::new(CatalogProjection)).await;
    let on_pg = products(&pg_db).await;
    assert_eq!(on_pg.len(), 2);
    let m = &on_pg[0];
    assert_eq!(m.product_id, mug);
    assert_eq!(m.slug, "giant-mug");
    assert_eq!(m.old_slugs.0, ["mug-1", "big-mug"]);
    assert_eq!(
        m.category_path.0,
        json!([
            {"category_id": home, "name": "Home", "slug": "home"},
            {"category_id": kitchen, "name": "Cooking", "slug": "cooking"},
            {"category_id": mugs, "name": "Mugs", "slug": "mugs"},
        ])
    );
    assert_eq!(m.category_ids.0, [home, kitchen, mugs]);
    assert_eq!(m.skus.0, ["MUG-1", "MUG-1-L", "MUG-1-M"]);
    assert_eq!(
        (m.price_minor, m.min_price_minor, m.max_price_minor),
        (1_300, 1_100, 1_500)
    );
    let stock: Vec<(&str, i64)> = m
        .variants
        .0
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["sku"].as_str().unwrap(), v["available"].as_i64().unwrap()))
        .collect();
    assert_eq!(stock, [("MUG-1-L", 2), ("MUG-1-M", 4)]);
    assert_eq!(m.variants.0[0]["colour"], "Blue");
    assert_eq!(m.available, 7 + 2 + 4);
    assert_eq!(m.primary_image.as_ref().unwrap().0["image_id"], json!(side));
    assert_eq!(m.images.0.as_array().unwrap().len(), 2);
    assert_eq!(
        (m.rating_count, m.rating_sum, m.rating_average),
        (2, 9, Some(4.5))
    );
    assert!(m.published && m.featured && m.in_stock);
    let t = &on_pg[1];
    assert_eq!(
        (t.name.as_str(), t.status.as_str()),
        ("Tea towel", "unpublished")
    );
    assert_eq!(t.tags.0, ["kitchen", "linen"]);
    assert_eq!(
        (t.available, t.in_stock, t.rating_average),
        (0, false, None)
    );
    assert_eq!(
        on_pg,
        products(&lite).await,
        "catalog_products on both backends"
    );
    let helpers = catalog_helpers(&pg_db).await;
    assert_eq!(helpers.1.len(), 6, "every SKU with stock or a product");
    assert_eq!(
        helpers,
        catalog_helpers(&lite).await,
        "catalog helpers on both backends"
    );
    pg.drop_database().await.expect("drop the database");

    let pg = TestDatabase::create(2).await.expect("a fresh database");
    let pg_db = Db::from(pg.pool().clone());
    let lite = sqlite_file(&scenario, "catalog-one-by-one.db").await;
    build_one_by_one(&pg_db, &CatalogProjection, &events).await;
    build_one_by_one(&lite, &CatalogProjection, &events).await;
    let one_by_one = products(&pg_db).await;
    assert_eq!(one_by_one, on_pg, "event by event gives the batch's rows");
    assert_eq!(
        one_by_one,
        products(&lite).await,
        "event by event on SQLite"
    );
    assert_eq!(catalog_helpers(&lite).await, helpers);
    pg.drop_database().await.expect("drop the database");

    // reviews
    let (pg, pg_db, lite) = build_both(&scenario, Arc::new(ReviewsProjection)).await;
    let on_pg = reviews(&pg_db).await;
    let summary: Vec<(i32, &str, i64)> = on_pg
        .iter()
        .map(|r| (r.rating, r.status.as_str(), r.helpful_votes))
        .collect();
    assert_eq!(
        summary,
        [
            (5, "approved", 1),
            (4, "approved", 0),
            (1, "hidden", 0),
            (2, "pending", 0),
            (2, "rejected", 0),
            (4, "pending", 0),
        ]
    );
    assert_eq!(on_pg[2].moderation_reason.as_deref(), Some("off topic"));
    assert_eq!(
        on_pg,
        reviews(&lite).await,
        "product_reviews on both backends"
    );
    pg.drop_database().await.expect("drop the database");
}

/// The SQLite forms of the storefront's catalogue reads (what the gateway's port
/// runs) use the SQLite schema's indexes as the PostgreSQL listing does its own:
/// each listing order scans its partial index with no sort, a cursor bounds the scan,
/// and a former slug scans only the products that have one.
#[tokio::test]
async fn catalogue_reads_use_their_indexes_on_sqlite() {
    let scenario = Scenario::new().await;
    let lite = scenario.sqlite().await;
    let Db::Sqlite(pool) = &lite else {
        unreachable!("the scenario's read-model database is SQLite")
    };
    sqlx::raw_sql(CatalogProjection.sqlite_schema().expect("a SQLite schema"))
        .execute(pool)
        .await
        .expect("create the tables");
    lite.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
         INSERT INTO catalog_products
             (product_id, sku, slug, old_slugs, name, description, category_id, currency,
              price_minor, min_price_minor, max_price_minor, rating_count, rating_sum, published,
              featured, created_at, updated_at)
         SELECT randomblob(16), 'SKU-' || i, 'p-' || i,
                CASE WHEN i % 50 = 0 THEN json_array('old-' || i) ELSE '[]' END,
                'Product ' || (i * 7919 % 1000), '', randomblob(16), 'EUR',
                100 + i * 7919 % 100000, 100 + i * 7919 % 100000, 100 + i * 7919 % 100000,
                i % 7, (i % 7) * (1 + i % 5), i % 10 <> 0, i % 20 = 0,
                printf('2026-01-01T%02d:%02d:00.000000Z', i / 60 % 24, i % 60),
                '2026-01-01T00:00:00.000000Z'
         FROM n",
        args![],
    )
    .await
    .expect("insert products");
    lite.execute("ANALYZE", args![]).await.expect("analyze");

    let at = Utc::now();
    let id = Uuid::new_v4();
    let cases: [(&str, emporium_projections::sql::Args, &str, bool); 12] = [
        (
            "p.published ORDER BY p.created_at DESC, p.product_id DESC",
            args![],
            "catalog_products_newest",
            false,
        ),
        (
            "p.published AND (p.created_at, p.product_id) < ($1, $2)
             ORDER BY p.created_at DESC, p.product_id DESC",
            args![at, id],
            "catalog_products_newest",
            true,
        ),
        (
            "p.published ORDER BY p.min_price_minor, p.product_id",
            args![],
            "catalog_products_price",
            false,
        ),
        (
            "p.published AND (p.min_price_minor, p.product_id) > ($1, $2)
             ORDER BY p.min_price_minor, p.product_id",
            args![500_i64, id],
            "catalog_products_price",
            true,
        ),
        (
            "p.published ORDER BY p.min_price_minor DESC, p.product_id DESC",
            args![],
            "catalog_products_price",
            false,
        ),
        (
            "p.published AND (p.min_price_minor, p.product_id) < ($1, $2)
             ORDER BY p.min_price_minor DESC, p.product_id DESC",
            args![500_i64, id],
            "catalog_products_price",
            true,
        ),
        (
            "p.published ORDER BY coalesce(p.rating_average, -1) DESC, p.product_id DESC",
            args![],
            "catalog_products_rating",
            false,
        ),
        // SQLite bounds an expression index by a row value only with the leading
        // term beside it.
        (
            "p.published AND coalesce(p.rating_average, -1) <= $1
             AND (coalesce(p.rating_average, -1), p.product_id) < ($1, $2)
             ORDER BY coalesce(p.rating_average, -1) DESC, p.product_id DESC",
            args![3.5_f64, id],
            "catalog_products_rating",
            true,
        ),
        (
            "p.published ORDER BY p.name, p.product_id",
            args![],
            "catalog_products_name",
            false,
        ),
        (
            "p.published AND (p.name, p.product_id) > ($1, $2) ORDER BY p.name, p.product_id",
            args!["Product 5", id],
            "catalog_products_name",
            true,
        ),
        (
            "p.published AND p.featured ORDER BY p.updated_at DESC",
            args![],
            "catalog_products_featured",
            false,
        ),
        (
            "p.old_slugs <> '[]' AND EXISTS (SELECT 1 FROM json_each(p.old_slugs) WHERE value = $1)",
            args!["old-50"],
            "catalog_products_old_slugs",
            false,
        ),
    ];
    for (filter, args, index, bounded) in cases {
        let plan: Vec<(i64, i64, i64, String)> = lite
            .fetch_all(
                &format!(
                    "EXPLAIN QUERY PLAN SELECT p.product_id FROM catalog_products p
                     WHERE {filter} LIMIT 21"
                ),
                args,
            )
            .await
            .expect("explain");
        let steps: Vec<&str> = plan.iter().map(|(.., detail)| detail.as_str()).collect();
        assert!(
            !steps.iter().any(|s| s.contains("TEMP B-TREE")),
            "{filter}: sorts: {steps:?}"
        );
        let verb = if bounded { "SEARCH" } else { "SCAN" };
        assert!(
            steps
                .iter()
                .any(|s| s.starts_with(&format!("{verb} p USING INDEX {index}"))),
            "{filter}: {steps:?}"
        );
    }
    let plan: Vec<(i64, i64, i64, String)> = lite
        .fetch_all(
            "EXPLAIN QUERY PLAN SELECT p.product_id FROM catalog_products p WHERE p.slug = $1",
            args!["p-7"],
        )
        .await
        .expect("explain");
    assert!(
        plan[0]
            .3
            .starts_with("SEARCH p USING INDEX catalog_products_slug"),
        "{plan:?}"
    );
}
