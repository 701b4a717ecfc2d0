//! `catalog_products`: one row per product with everything a product page or a
//! listing shows (variants and images as JSONB, the category path, tags, price range,
//! rating from approved reviews, availability from inventory, the storefront flags),
//! indexed for the listing queries, so a page of 20 products is one indexed query.
//!
//! It reads four aggregates. Facts that arrive keyed by something other than the
//! product (a category's name, a SKU's stock, a product's approved ratings) are kept
//! in small helper tables this projection owns, so a product created after them (or a
//! rebuild) still finds them, and a change to them is copied onto the products it
//! concerns.

use chrono::{DateTime, Utc};
use emporium_domain::catalog::{CategoryEvent, ProductEvent, ReviewEvent, ReviewStatus};
use emporium_domain::inventory::InventoryEvent;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use uuid::Uuid;

use super::{array_remove_append, json, one_changed, sqlite_uuid_text};
use crate::args;
use crate::envelope::EventEnvelope;
use crate::projection::{Projection, decode};
use crate::sql::{Backend, Conn, Value};

/// Builds `catalog_products` and its helper tables.
#[derive(Debug, Clone, Copy, Default)]
pub struct CatalogProjection;

/// The helper tables, the same DDL on both backends.
macro_rules! helper_tables {
    () => {
        "
CREATE TABLE catalog_categories (
    category_id uuid PRIMARY KEY,
    parent_id   uuid,
    name        text NOT NULL,
    slug        text NOT NULL
);
CREATE INDEX catalog_categories_parent ON catalog_categories (parent_id);

CREATE TABLE catalog_stock (
    sku        text   PRIMARY KEY,
    product_id uuid,
    available  bigint NOT NULL DEFAULT 0
);
CREATE INDEX catalog_stock_product ON catalog_stock (product_id);

CREATE TABLE catalog_ratings (
    product_id   uuid   PRIMARY KEY,
    rating_count bigint NOT NULL DEFAULT 0,
    rating_sum   bigint NOT NULL DEFAULT 0
);
"
    };
}

const SCHEMA: &str = concat!(
    "
CREATE TABLE catalog_products (
    product_id      uuid        PRIMARY KEY,
    sku             text        NOT NULL,
    slug            text        NOT NULL,
    old_slugs       text[]      NOT NULL DEFAULT '{}',
    name            text        NOT NULL,
    description     text        NOT NULL,
    category_id     uuid        NOT NULL,
    -- Root first: [{category_id, name, slug}, ...]; empty until the category is known.
    category_path   jsonb       NOT NULL DEFAULT '[]',
    -- The category and its ancestors, for \"in this category or below\".
    category_ids    uuid[]      NOT NULL DEFAULT '{}',
    tags            text[]      NOT NULL DEFAULT '{}',
    attributes      jsonb       NOT NULL DEFAULT '{}',
    currency        text        NOT NULL,
    price_minor     bigint      NOT NULL,
    -- Over the base price and every variant's, for price filters and \"from\" prices.
    min_price_minor bigint      NOT NULL,
    max_price_minor bigint      NOT NULL,
    -- [{variant_id, sku, size, colour, attributes, price_minor, available}]
    variants        jsonb       NOT NULL DEFAULT '[]',
    -- [{image_id, source, alt_text, primary}]
    images          jsonb       NOT NULL DEFAULT '[]',
    primary_image   jsonb,
    -- The product's SKU and its variants'.
    skus            text[]      NOT NULL DEFAULT '{}',
    rating_count    bigint      NOT NULL DEFAULT 0,
    rating_sum      bigint      NOT NULL DEFAULT 0,
    rating_average  numeric(3, 2) GENERATED ALWAYS AS
                        (CASE WHEN rating_count > 0 THEN round(rating_sum::numeric / rating_count, 2) END) STORED,
    available       bigint      NOT NULL DEFAULT 0,
    in_stock        boolean     GENERATED ALWAYS AS (available > 0) STORED,
    status          text        NOT NULL DEFAULT 'draft',
    published       boolean     NOT NULL DEFAULT false,
    featured        boolean     NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    published_at    timestamptz
);
CREATE UNIQUE INDEX catalog_products_slug ON catalog_products (slug);
CREATE INDEX catalog_products_old_slugs ON catalog_products USING gin (old_slugs);
-- One index per storefront listing order, each exactly the listing's ORDER BY (key,
-- then product id, same direction; PRICE_DESC scans the price index backwards), so a
-- keyset page is an index range scan with no sort (v2; see gateway/src/shop/catalog.rs).
CREATE INDEX catalog_products_newest ON catalog_products (created_at DESC, product_id DESC) WHERE published;
CREATE INDEX catalog_products_price ON catalog_products (min_price_minor, product_id) WHERE published;
CREATE INDEX catalog_products_rating ON catalog_products ((coalesce(rating_average, -1)) DESC, product_id DESC) WHERE published;
CREATE INDEX catalog_products_name ON catalog_products (name, product_id) WHERE published;
CREATE INDEX catalog_products_featured ON catalog_products (updated_at DESC) WHERE published AND featured;
CREATE INDEX catalog_products_categories ON catalog_products USING gin (category_ids);
CREATE INDEX catalog_products_tags ON catalog_products USING gin (tags);
CREATE INDEX catalog_products_category ON catalog_products (category_id);
",
    helper_tables!()
);

/// `catalog_products` on SQLite: the same columns, arrays as JSON array text
/// (`old_slugs`, `tags`, `skus` of strings; `category_ids` of hyphenated UUIDs);
/// `rating_average` a `real` rounded like PostgreSQL's `numeric(3, 2)` (half away
/// from zero, done in integers so no binary fraction decides a tie); `in_stock`,
/// `published` and `featured` 0 or 1. The listing indexes are the same partial
/// indexes. SQLite has no GIN: the category and tag filters are tested per row along
/// the listing index, and a former slug is found by scanning the partial index of
/// the products that have one.
const SQLITE_SCHEMA: &str = concat!(
    "
CREATE TABLE catalog_products (
    product_id      uuid        PRIMARY KEY,
    sku             text        NOT NULL,
    slug            text        NOT NULL,
    old_slugs       text        NOT NULL DEFAULT '[]',
    name            text        NOT NULL,
    description     text        NOT NULL,
    category_id     uuid        NOT NULL,
    -- Root first: [{category_id, name, slug}, ...]; empty until the category is known.
    category_path   jsonb       NOT NULL DEFAULT '[]',
    -- The category and its ancestors, for \"in this category or below\".
    category_ids    text        NOT NULL DEFAULT '[]',
    tags            text        NOT NULL DEFAULT '[]',
    attributes      jsonb       NOT NULL DEFAULT '{}',
    currency        text        NOT NULL,
    price_minor     bigint      NOT NULL,
    min_price_minor bigint      NOT NULL,
    max_price_minor bigint      NOT NULL,
    variants        jsonb       NOT NULL DEFAULT '[]',
    images          jsonb       NOT NULL DEFAULT '[]',
    primary_image   jsonb,
    skus            text        NOT NULL DEFAULT '[]',
    rating_count    bigint      NOT NULL DEFAULT 0,
    rating_sum      bigint      NOT NULL DEFAULT 0,
    rating_average  real        GENERATED ALWAYS AS
                        (CASE WHEN rating_count > 0
                              THEN ((rating_sum * 200 + rating_count) / (2 * rating_count)) / 100.0 END) STORED,
    available       bigint      NOT NULL DEFAULT 0,
    in_stock        boolean     GENERATED ALWAYS AS (available > 0) STORED,
    status          text        NOT NULL DEFAULT 'draft',
    published       boolean     NOT NULL DEFAULT false,
    featured        boolean     NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    published_at    timestamptz
);
CREATE UNIQUE INDEX catalog_products_slug ON catalog_products (slug);
CREATE INDEX catalog_products_old_slugs ON catalog_products (old_slugs) WHERE old_slugs <> '[]';
CREATE INDEX catalog_products_newest ON catalog_products (created_at DESC, product_id DESC) WHERE published;
CREATE INDEX catalog_products_price ON catalog_products (min_price_minor, product_id) WHERE published;
CREATE INDEX catalog_products_rating ON catalog_products ((coalesce(rating_average, -1)) DESC, product_id DESC) WHERE published;
CREATE INDEX catalog_products_name ON catalog_products (name, product_id) WHERE published;
CREATE INDEX catalog_products_featured ON catalog_products (updated_at DESC) WHERE published AND featured;
CREATE INDEX catalog_products_category ON catalog_products (category_id);
",
    helper_tables!()
);

/// The walks both path statements share: `down` is `$1`'s subtree (rooted at
/// `$root`, `$1` cast as each backend needs), `up` every category's ancestors with
/// their depth.
macro_rules! subtree_paths {
    ($root:literal) => {
        concat!(
            "
WITH RECURSIVE down(category_id) AS (
    SELECT ",
            $root,
            "
    UNION
    SELECT c.category_id FROM catalog_categories c JOIN down d ON c.parent_id = d.category_id
),
up(origin, category_id, parent_id, name, slug, depth) AS (
    SELECT c.category_id, c.category_id, c.parent_id, c.name, c.slug, 0
    FROM catalog_categories c JOIN down USING (category_id)
    UNION ALL
    SELECT up.origin, c.category_id, c.parent_id, c.name, c.slug, up.depth + 1
    FROM catalog_categories c JOIN up ON c.category_id = up.parent_id
    WHERE up.depth < 64
),"
        )
    };
}

/// The ancestors of `$2` (a product's category) with their depth, as `up`.
macro_rules! product_up {
    () => {
        "
WITH RECURSIVE up(category_id, parent_id, name, slug, depth) AS (
    SELECT category_id, parent_id, name, slug, 0 FROM catalog_categories WHERE category_id = $2
    UNION ALL
    SELECT c.category_id, c.parent_id, c.name, c.slug, up.depth + 1
    FROM catalog_categories c JOIN up ON c.category_id = up.parent_id
    WHERE up.depth < 64
)"
    };
}

/// The category path of every category in `$1`'s subtree, root first, written onto
/// the products in those categories.
const REFRESH_PATHS: &str = concat!(
    subtree_paths!("$1::uuid"),
    "
paths AS (
    SELECT origin,
           jsonb_agg(jsonb_build_object('category_id', category_id, 'name', name, 'slug', slug)
                     ORDER BY depth DESC) AS path,
           array_agg(category_id ORDER BY depth DESC) AS ids
    FROM up GROUP BY origin
)
UPDATE catalog_products p
SET category_path = paths.path, category_ids = paths.ids
FROM paths
WHERE p.category_id = paths.origin"
);

/// The same for one product (`$1`), whose category is `$2`.
const PRODUCT_PATH: &str = concat!(
    product_up!(),
    "
UPDATE catalog_products p
SET category_path = coalesce((SELECT jsonb_agg(jsonb_build_object('category_id', category_id, 'name', name, 'slug', slug)
                                               ORDER BY depth DESC) FROM up), '[]'),
    category_ids = coalesce((SELECT array_agg(category_id ORDER BY depth DESC) FROM up), '{}')
WHERE p.product_id = $1"
);

/// [`REFRESH_PATHS`] on SQLite: the path and the ids are JSON arrays built with
/// `json_group_array(… ORDER BY depth DESC)`, UUIDs written as PostgreSQL writes them.
const SQLITE_REFRESH_PATHS: &str = concat!(
    subtree_paths!("$1"),
    "
paths AS (
    SELECT origin,
           json_group_array(json_object('category_id', ",
    sqlite_uuid_text!("category_id"),
    ", 'name', name, 'slug', slug)
                            ORDER BY depth DESC) AS path,
           json_group_array(",
    sqlite_uuid_text!("category_id"),
    " ORDER BY depth DESC) AS ids
    FROM up GROUP BY origin
)
UPDATE catalog_products AS p
SET category_path = paths.path, category_ids = paths.ids
FROM paths
WHERE p.category_id = paths.origin"
);

/// [`PRODUCT_PATH`] on SQLite (an aggregate over no rows is already `[]`).
const SQLITE_PRODUCT_PATH: &str = concat!(
    product_up!(),
    "
UPDATE catalog_products
SET category_path = (SELECT json_group_array(json_object('category_id', ",
    sqlite_uuid_text!("category_id"),
    ", 'name', name, 'slug', slug)
                                             ORDER BY depth DESC) FROM up),
    category_ids = (SELECT json_group_array(",
    sqlite_uuid_text!("category_id"),
    " ORDER BY depth DESC) FROM up)
WHERE product_id = $1"
);

/// Upserts the stock of `$1` (a SKU) to `$2` units; returns the product it belongs to.
const SET_STOCK: &str = "INSERT INTO catalog_stock (sku, available) VALUES ($1, $2)
     ON CONFLICT (sku) DO UPDATE SET available = $2
     RETURNING product_id";

/// Sets variant `$2`'s `available` to `$3` in product `$1`'s document and the
/// product's total.
const VARIANT_STOCK: &str = "
UPDATE catalog_products
SET variants = (SELECT coalesce(jsonb_agg(CASE WHEN v ->> 'sku' = $2
                                               THEN jsonb_set(v, '{available}', to_jsonb($3::bigint))
                                               ELSE v END ORDER BY ord), '[]')
                FROM jsonb_array_elements(variants) WITH ORDINALITY AS x(v, ord)),
    available = (SELECT coalesce(sum(available), 0)::bigint FROM catalog_stock
                 WHERE product_id = $1)
WHERE product_id = $1";

/// [`VARIANT_STOCK`] on SQLite: the document's elements by `json_each`, in array order.
const SQLITE_VARIANT_STOCK: &str = "
UPDATE catalog_products
SET variants = (SELECT json_group_array(CASE WHEN x.value ->> 'sku' = $2
                                             THEN json_set(x.value, '$.available', $3)
                                             ELSE json(x.value) END ORDER BY x.key)
                FROM json_each(variants) AS x),
    available = (SELECT CAST(coalesce(sum(available), 0) AS bigint) FROM catalog_stock
                 WHERE product_id = $1)
WHERE product_id = $1";

/// A run of stock movements (`$1` SKUs, `$2` their last availability, in step) into
/// `catalog_stock`; returns the products concerned.
const FOLD_STOCK: &str = "
INSERT INTO catalog_stock (sku, available)
SELECT * FROM unnest($1::text[], $2::bigint[])
ON CONFLICT (sku) DO UPDATE SET available = EXCLUDED.available
RETURNING product_id";

/// [`FOLD_STOCK`] on SQLite: the arrays are JSON, zipped by index (`WHERE true` lets
/// SQLite parse the upsert after a `SELECT`).
const SQLITE_FOLD_STOCK: &str = "
INSERT INTO catalog_stock (sku, available)
SELECT s.value, a.value FROM json_each($1) AS s JOIN json_each($2) AS a ON a.key = s.key
WHERE true
ON CONFLICT (sku) DO UPDATE SET available = excluded.available
RETURNING product_id";

/// Copies `catalog_stock` onto the variants and totals of the products in `$1`: a
/// variant's `available` always mirrors its SKU's stock row.
const FOLD_PRODUCTS: &str = "
UPDATE catalog_products p
SET variants = (SELECT coalesce(jsonb_agg(CASE WHEN s.sku IS NULL THEN v
                                               ELSE jsonb_set(v, '{available}', to_jsonb(s.available)) END
                                          ORDER BY ord), '[]')
                FROM jsonb_array_elements(p.variants) WITH ORDINALITY AS x(v, ord)
                LEFT JOIN catalog_stock s ON s.sku = v ->> 'sku'),
    available = (SELECT coalesce(sum(available), 0)::bigint FROM catalog_stock s
                 WHERE s.product_id = p.product_id)
WHERE p.product_id = ANY($1)";

/// [`FOLD_PRODUCTS`] on SQLite: `$1` is a JSON array of hyphenated UUIDs, turned
/// back into the 16-byte keys so the primary key finds the products.
const SQLITE_FOLD_PRODUCTS: &str = "
UPDATE catalog_products AS p
SET variants = (SELECT json_group_array(CASE WHEN s.sku IS NULL THEN json(x.value)
                                             ELSE json_set(x.value, '$.available', s.available) END
                                        ORDER BY x.key)
                FROM json_each(p.variants) AS x
                LEFT JOIN catalog_stock s ON s.sku = x.value ->> 'sku'),
    available = (SELECT CAST(coalesce(sum(available), 0) AS bigint) FROM catalog_stock s
                 WHERE s.product_id = p.product_id)
WHERE p.product_id IN (SELECT unhex(replace(value, '-', '')) FROM json_each($1))";

/// One variant as listed in `catalog_products.variants`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct VariantView {
    variant_id: Uuid,
    sku: String,
    size: Option<String>,
    colour: Option<String>,
    attributes: serde_json::Value,
    price_minor: i64,
    available: i64,
}

/// One image as listed in `catalog_products.images`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ImageView {
    image_id: Uuid,
    source: serde_json::Value,
    alt_text: String,
    primary: bool,
}

#[async_trait::async_trait]
impl Projection for CatalogProjection {
    fn name(&self) -> &'static str {
        "catalog"
    }

    fn version(&self) -> u32 {
        // v2: listing indexes that match every sort order (NEWEST and RATING did not,
        // NAME had none).
        2
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "catalog_products",
            "catalog_categories",
            "catalog_stock",
            "catalog_ratings",
        ]
    }

    fn schema(&self) -> &'static str {
        SCHEMA
    }

    fn sqlite_schema(&self) -> Option<&'static str> {
        Some(SQLITE_SCHEMA)
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &["product", "category_tree", "review", "inventory"]
    }

    /// Stock movements dominate the log; runs of them fold into one upsert of the
    /// last availability per SKU and one refresh of the products they concern. Other
    /// events are applied one by one, in order.
    async fn apply_batch(
        &self,
        conn: &mut Conn<'_>,
        events: &[EventEnvelope],
    ) -> anyhow::Result<()> {
        let mut stock = StockFold::default();
        for event in events {
            if event.aggregate_type == "inventory" {
                if let Some(available) = available_after(event)? {
                    stock.push(&event.aggregate_id, available);
                }
                continue;
            }
            stock.flush(conn).await?;
            self.apply(conn, event).await?;
        }
        stock.flush(conn).await
    }

    async fn apply(&self, conn: &mut Conn<'_>, event: &EventEnvelope) -> anyhow::Result<()> {
        match event.aggregate_type.as_str() {
            "product" => product(conn, event).await,
            "category_tree" => category(conn, event).await,
            "review" => review(conn, event).await,
            "inventory" => inventory(conn, event).await,
            _ => Ok(()),
        }
    }
}

async fn product(conn: &mut Conn<'_>, event: &EventEnvelope) -> anyhow::Result<()> {
    use ProductEvent as E;
    let id: Uuid = super::aggregate_uuid(event)?;
    match decode::<ProductEvent>(event)? {
        E::ProductCreated {
            product_id,
            sku,
            slug,
            name,
            description,
            category_id,
            tags,
            attributes,
            price,
            at,
        } => {
            let tags: Vec<String> = tags.iter().map(|t| t.as_str().to_owned()).collect();
            conn.execute(
                "INSERT INTO catalog_stock (sku, product_id) VALUES ($1, $2)
                 ON CONFLICT (sku) DO UPDATE SET product_id = $2",
                args![sku.as_str(), product_id],
            )
            .await?;
            // `$12` is `skus`: the product's own SKU as a one-element array.
            conn.execute(
                "INSERT INTO catalog_products
                     (product_id, sku, slug, name, description, category_id, tags, attributes,
                      currency, price_minor, min_price_minor, max_price_minor, skus,
                      rating_count, rating_sum, available, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $10, $12,
                         coalesce((SELECT rating_count FROM catalog_ratings WHERE product_id = $1), 0),
                         coalesce((SELECT rating_sum FROM catalog_ratings WHERE product_id = $1), 0),
                         coalesce((SELECT available FROM catalog_stock WHERE sku = $2), 0),
                         $11, $11)",
                args![
                    product_id,
                    sku.as_str(),
                    slug.as_str(),
                    name.as_str(),
                    description.as_str(),
                    category_id,
                    tags,
                    json(&attributes)?,
                    price.currency().code(),
                    price.amount_minor(),
                    at,
                    vec![sku.as_str().to_owned()]
                ],
            )
            .await?;
            product_path(conn, product_id, category_id).await
        }
        E::ProductDetailsUpdated {
            name,
            description,
            category_id,
            tags,
            attributes,
            at,
        } => {
            let tags: Vec<String> = tags.iter().map(|t| t.as_str().to_owned()).collect();
            let changed = conn
                .execute(
                    "UPDATE catalog_products
                     SET name = $2, description = $3, category_id = $4, tags = $5, attributes = $6,
                         updated_at = $7
                     WHERE product_id = $1",
                    args![
                        id,
                        name.as_str(),
                        description.as_str(),
                        category_id,
                        tags,
                        json(&attributes)?,
                        at
                    ],
                )
                .await?;
            one_changed(changed, "product details")?;
            product_path(conn, id, category_id).await
        }
        E::SlugChanged {
            old_slug,
            new_slug,
            at,
        } => {
            let sql = format!(
                "UPDATE catalog_products
                 SET slug = $2, old_slugs = {}, updated_at = $4
                 WHERE product_id = $1",
                array_remove_append(conn.backend(), "old_slugs", "$2", "$3")
            );
            let changed = conn
                .execute(&sql, args![id, new_slug.as_str(), old_slug.as_str(), at])
                .await?;
            one_changed(changed, "product slug")
        }
        E::PriceChanged { new_price, at, .. } => {
            let mut doc = Doc::load(conn, id).await?;
            doc.price_minor = new_price.amount_minor();
            doc.save(conn, at).await
        }
        E::VariantAdded {
            variant_id,
            sku,
            size,
            colour,
            attributes,
            price,
            at,
        } => {
            let (available,): (i64,) = conn
                .fetch_one(
                    "INSERT INTO catalog_stock (sku, product_id) VALUES ($1, $2)
                     ON CONFLICT (sku) DO UPDATE SET product_id = $2
                     RETURNING available",
                    args![sku.as_str(), id],
                )
                .await?;
            let mut doc = Doc::load(conn, id).await?;
            doc.variants.push(VariantView {
                variant_id,
                sku: sku.as_str().to_owned(),
                size: size.map(|s| s.as_str().to_owned()),
                colour: colour.map(|c| c.as_str().to_owned()),
                attributes: json(&attributes)?,
                price_minor: price.amount_minor(),
                available,
            });
            doc.save(conn, at).await
        }
        E::VariantUpdated {
            variant_id,
            size,
            colour,
            attributes,
            at,
            ..
        } => {
            let mut doc = Doc::load(conn, id).await?;
            let variant = doc.variant(variant_id)?;
            variant.size = size.map(|s| s.as_str().to_owned());
            variant.colour = colour.map(|c| c.as_str().to_owned());
            variant.attributes = json(&attributes)?;
            doc.save(conn, at).await
        }
        E::VariantRemoved {
            variant_id,
            sku,
            at,
        } => {
            conn.execute(
                "UPDATE catalog_stock SET product_id = NULL WHERE sku = $1 AND product_id = $2",
                args![sku.as_str(), id],
            )
            .await?;
            let mut doc = Doc::load(conn, id).await?;
            doc.variants.retain(|v| v.variant_id != variant_id);
            doc.save(conn, at).await
        }
        E::VariantPriceChanged {
            variant_id,
            new_price,
            at,
            ..
        } => {
            let mut doc = Doc::load(conn, id).await?;
            doc.variant(variant_id)?.price_minor = new_price.amount_minor();
            doc.save(conn, at).await
        }
        E::ImageAdded {
            image_id,
            source,
            alt_text,
            primary,
            at,
        } => {
            let mut doc = Doc::load(conn, id).await?;
            if primary {
                for image in &mut doc.images {
                    image.primary = false;
                }
            }
            doc.images.push(ImageView {
                image_id,
                source: json(&source)?,
                alt_text: alt_text.as_str().to_owned(),
                primary,
            });
            doc.save(conn, at).await
        }
        E::ImageRemoved {
            image_id,
            promoted_primary,
            at,
        } => {
            let mut doc = Doc::load(conn, id).await?;
            doc.images.retain(|i| i.image_id != image_id);
            if let Some(promoted) = promoted_primary {
                doc.set_primary(promoted);
            }
            doc.save(conn, at).await
        }
        E::PrimaryImageSet { image_id, at, .. } => {
            let mut doc = Doc::load(conn, id).await?;
            doc.set_primary(image_id);
            doc.save(conn, at).await
        }
        E::ProductPublished { at } => {
            flags(
                conn,
                id,
                "published = true, status = 'published', published_at = coalesce(published_at, $2)",
                at,
            )
            .await
        }
        E::ProductUnpublished { at } => {
            flags(conn, id, "published = false, status = 'unpublished'", at).await
        }
        E::ProductFeatured { at } => flags(conn, id, "featured = true", at).await,
        E::ProductUnfeatured { at } => flags(conn, id, "featured = false", at).await,
        E::ProductArchived { at } => {
            flags(
                conn,
                id,
                "published = false, featured = false, status = 'archived'",
                at,
            )
            .await
        }
    }
}

/// Writes the category path of product `product_id`, whose category is `category_id`.
async fn product_path(
    conn: &mut Conn<'_>,
    product_id: Uuid,
    category_id: Uuid,
) -> anyhow::Result<()> {
    let sql = match conn.backend() {
        Backend::Postgres => PRODUCT_PATH,
        Backend::Sqlite => SQLITE_PRODUCT_PATH,
    };
    conn.execute(sql, args![product_id, category_id]).await?;
    Ok(())
}

async fn flags(
    conn: &mut Conn<'_>,
    id: Uuid,
    set: &'static str,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    let changed = conn
        .execute(
            &format!("UPDATE catalog_products SET {set}, updated_at = $2 WHERE product_id = $1"),
            args![id, at],
        )
        .await?;
    one_changed(changed, "product flags")
}

type DocRow = (String, i64, Json<Vec<VariantView>>, Json<Vec<ImageView>>);

/// The parts of a product row that variant and image events rewrite.
struct Doc {
    product_id: Uuid,
    sku: String,
    price_minor: i64,
    variants: Vec<VariantView>,
    images: Vec<ImageView>,
}

impl Doc {
    async fn load(conn: &mut Conn<'_>, product_id: Uuid) -> anyhow::Result<Self> {
        let row: Option<DocRow> = conn
            .fetch_optional(
                "SELECT sku, price_minor, variants, images FROM catalog_products WHERE product_id = $1",
                args![product_id],
            )
            .await?;
        let (sku, price_minor, variants, images) =
            row.ok_or_else(|| anyhow::anyhow!("product {product_id} is not in the catalog"))?;
        Ok(Self {
            product_id,
            sku,
            price_minor,
            variants: variants.0,
            images: images.0,
        })
    }

    fn variant(&mut self, variant_id: Uuid) -> anyhow::Result<&mut VariantView> {
        self.variants
            .iter_mut()
            .find(|v| v.variant_id == variant_id)
            .ok_or_else(|| anyhow::anyhow!("variant {variant_id} is not in the catalog"))
    }

    fn set_primary(&mut self, image_id: Uuid) {
        for image in &mut self.images {
            image.primary = image.image_id == image_id;
        }
    }

    async fn save(self, conn: &mut Conn<'_>, at: DateTime<Utc>) -> anyhow::Result<()> {
        let prices =
            std::iter::once(self.price_minor).chain(self.variants.iter().map(|v| v.price_minor));
        let min = prices.clone().min().unwrap_or(self.price_minor);
        let max = prices.max().unwrap_or(self.price_minor);
        let skus: Vec<String> = std::iter::once(self.sku.clone())
            .chain(self.variants.iter().map(|v| v.sku.clone()))
            .collect();
        let primary = self
            .images
            .iter()
            .find(|i| i.primary)
            .map(json)
            .transpose()?;
        let changed = conn
            .execute(
                "UPDATE catalog_products
                 SET price_minor = $2, min_price_minor = $3, max_price_minor = $4, variants = $5,
                     images = $6, primary_image = $7, skus = $8,
                     available = (SELECT CAST(coalesce(sum(available), 0) AS bigint) FROM catalog_stock
                                  WHERE product_id = $1),
                     updated_at = $9
                 WHERE product_id = $1",
                args![
                    self.product_id,
                    self.price_minor,
                    min,
                    max,
                    Value::json(&self.variants)?,
                    Value::json(&self.images)?,
                    primary,
                    skus,
                    at
                ],
            )
            .await?;
        one_changed(changed, "product document")
    }
}

async fn category(conn: &mut Conn<'_>, event: &EventEnvelope) -> anyhow::Result<()> {
    use CategoryEvent as E;
    let touched = match decode::<CategoryEvent>(event)? {
        E::CategoryCreated {
            category_id,
            name,
            slug,
            parent_id,
            ..
        } => {
            conn.execute(
                "INSERT INTO catalog_categories (category_id, parent_id, name, slug)
                 VALUES ($1, $2, $3, $4)",
                args![category_id, parent_id, name.as_str(), slug.as_str()],
            )
            .await?;
            category_id
        }
        E::CategoryRenamed {
            category_id,
            name,
            slug,
            ..
        } => {
            let changed = conn
                .execute(
                    "UPDATE catalog_categories SET name = $2, slug = $3 WHERE category_id = $1",
                    args![category_id, name.as_str(), slug.as_str()],
                )
                .await?;
            one_changed(changed, "catalog category")?;
            category_id
        }
        E::CategoryMoved {
            category_id,
            new_parent_id,
            ..
        } => {
            let changed = conn
                .execute(
                    "UPDATE catalog_categories SET parent_id = $2 WHERE category_id = $1",
                    args![category_id, new_parent_id],
                )
                .await?;
            one_changed(changed, "catalog category")?;
            category_id
        }
        // Products keep the path they had; a childless category with products in it
        // is the catalog's business, not the read model's.
        E::CategoryDeleted { category_id, .. } => {
            conn.execute(
                "DELETE FROM catalog_categories WHERE category_id = $1",
                args![category_id],
            )
            .await?;
            return Ok(());
        }
    };
    let sql = match conn.backend() {
        Backend::Postgres => REFRESH_PATHS,
        Backend::Sqlite => SQLITE_REFRESH_PATHS,
    };
    conn.execute(sql, args![touched]).await?;
    Ok(())
}

async fn review(conn: &mut Conn<'_>, event: &EventEnvelope) -> anyhow::Result<()> {
    use ReviewEvent as E;
    let approved = |s: ReviewStatus| s == ReviewStatus::Approved;
    // (product, change in count, change in the sum of stars)
    let (product_id, count, sum): (Uuid, i64, i64) = match decode::<ReviewEvent>(event)? {
        E::ReviewApproved {
            product_id,
            rating,
            previous_status,
            ..
        } if !approved(previous_status) => (product_id, 1, i64::from(rating.stars())),
        E::ReviewEdited {
            product_id,
            previous_rating,
            previous_status,
            ..
        } if approved(previous_status) => (product_id, -1, -i64::from(previous_rating.stars())),
        E::ReviewRejected {
            product_id,
            rating,
            previous_status,
            ..
        }
        | E::ReviewHidden {
            product_id,
            rating,
            previous_status,
            ..
        } if approved(previous_status) => (product_id, -1, -i64::from(rating.stars())),
        _ => return Ok(()),
    };
    conn.execute(
        "INSERT INTO catalog_ratings (product_id, rating_count, rating_sum) VALUES ($1, $2, $3)
         ON CONFLICT (product_id) DO UPDATE
         SET rating_count = catalog_ratings.rating_count + $2,
             rating_sum = catalog_ratings.rating_sum + $3",
        args![product_id, count, sum],
    )
    .await?;
    conn.execute(
        "UPDATE catalog_products
         SET rating_count = rating_count + $2, rating_sum = rating_sum + $3
         WHERE product_id = $1",
        args![product_id, count, sum],
    )
    .await?;
    Ok(())
}

/// The units available after an inventory event, when it changes them.
fn available_after(event: &EventEnvelope) -> anyhow::Result<Option<u32>> {
    use InventoryEvent as E;
    Ok(match decode::<InventoryEvent>(event)? {
        E::StockReceived { available, .. }
        | E::StockAdjusted { available, .. }
        | E::StockReserved { available, .. }
        | E::ReservationReleased { available, .. }
        | E::ReservationExpired { available, .. }
        | E::ReservationCommitted { available, .. } => Some(available),
        E::InventoryTracked { .. }
        | E::LowStockThresholdChanged { .. }
        | E::LowStockDetected { .. } => None,
    })
}

/// The last availability per SKU over a run of stock movements.
#[derive(Default)]
struct StockFold {
    skus: Vec<String>,
    available: Vec<i64>,
    index: std::collections::HashMap<String, usize>,
}

impl StockFold {
    fn push(&mut self, sku: &str, available: u32) {
        match self.index.get(sku) {
            Some(&i) => self.available[i] = i64::from(available),
            None => {
                self.index.insert(sku.to_owned(), self.skus.len());
                self.skus.push(sku.to_owned());
                self.available.push(i64::from(available));
            }
        }
    }

    async fn flush(&mut self, conn: &mut Conn<'_>) -> anyhow::Result<()> {
        if self.skus.is_empty() {
            return Ok(());
        }
        let (fold_stock, fold_products) = match conn.backend() {
            Backend::Postgres => (FOLD_STOCK, FOLD_PRODUCTS),
            Backend::Sqlite => (SQLITE_FOLD_STOCK, SQLITE_FOLD_PRODUCTS),
        };
        let skus = std::mem::take(&mut self.skus);
        let available = std::mem::take(&mut self.available);
        self.index.clear();
        let products: Vec<Uuid> = conn
            .scalar_all::<Option<Uuid>>(fold_stock, args![skus, available])
            .await?
            .into_iter()
            .flatten()
            .collect::<std::collections::BTreeSet<Uuid>>()
            .into_iter()
            .collect();
        if !products.is_empty() {
            conn.execute(fold_products, args![products]).await?;
        }
        Ok(())
    }
}

async fn inventory(conn: &mut Conn<'_>, event: &EventEnvelope) -> anyhow::Result<()> {
    let Some(available) = available_after(event)? else {
        return Ok(());
    };
    let sku = event.aggregate_id.as_str();
    let (product_id,): (Option<Uuid>,) = conn
        .fetch_one(SET_STOCK, args![sku, i64::from(available)])
        .await?;
    let Some(product_id) = product_id else {
        return Ok(());
    };
    let sql = match conn.backend() {
        Backend::Postgres => VARIANT_STOCK,
        Backend::Sqlite => SQLITE_VARIANT_STOCK,
    };
    conn.execute(sql, args![product_id, sku, i64::from(available)])
        .await?;
    Ok(())
}
