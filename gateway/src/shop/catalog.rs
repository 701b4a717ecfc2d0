//! Catalogue reads over `catalog_products` and `categories`, through the read-model
//! port (`sql::Db`): the same statements on PostgreSQL and on SQLite, except where
//! the dialects part (array containment, a former slug, the cursor's key type).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use emporium_projections::args;
use emporium_projections::sql::{Args, Backend, Value};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use uuid::Uuid;

use super::{Shop, is_bad_cursor_value};
use crate::error::ApiError;

/// The columns of a product as every storefront read selects them (alias `p`), with
/// `$tags` the expression that reads `tags` as a JSON array.
macro_rules! product_columns {
    ($tags:literal) => {
        concat!(
            "p.product_id, p.sku, p.slug, p.name, p.description, p.category_id, p.category_path, ",
            $tags,
            ", p.attributes, p.currency, p.price_minor, p.min_price_minor, p.max_price_minor, \
             p.variants, p.images, p.rating_count, \
             CAST(p.rating_average AS double precision) AS rating_average, p.available, \
             p.in_stock, p.published, p.featured, p.status, p.created_at, p.published_at"
        )
    };
}

/// The columns of a product (alias `p`) as [`ProductRow`] decodes them on `backend`:
/// `tags` is a `text[]` on PostgreSQL and JSON array text on SQLite, read as JSON on
/// both.
pub(super) fn product_columns(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => product_columns!("to_jsonb(p.tags) AS tags"),
        Backend::Sqlite => product_columns!("p.tags"),
    }
}

/// One step of a product's category path.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct PathEntry {
    pub(crate) category_id: Uuid,
    pub(crate) name: String,
    pub(crate) slug: String,
}

/// A variant as `catalog_products.variants` holds it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct VariantRow {
    pub(crate) variant_id: Uuid,
    pub(crate) sku: String,
    pub(crate) size: Option<String>,
    pub(crate) colour: Option<String>,
    pub(crate) attributes: serde_json::Value,
    pub(crate) price_minor: i64,
    pub(crate) available: i64,
}

/// An image as `catalog_products.images` holds it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ImageRow {
    pub(crate) image_id: Uuid,
    pub(crate) source: serde_json::Value,
    pub(crate) alt_text: String,
    pub(crate) primary: bool,
}

/// A `catalog_products` row, as the storefront shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct ProductRow {
    pub(crate) product_id: Uuid,
    pub(crate) sku: String,
    pub(crate) slug: String,
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) category_id: Uuid,
    pub(crate) category_path: Json<Vec<PathEntry>>,
    pub(crate) tags: Json<Vec<String>>,
    pub(crate) attributes: Json<serde_json::Value>,
    pub(crate) currency: String,
    pub(crate) price_minor: i64,
    pub(crate) min_price_minor: i64,
    pub(crate) max_price_minor: i64,
    pub(crate) variants: Json<Vec<VariantRow>>,
    pub(crate) images: Json<Vec<ImageRow>>,
    pub(crate) rating_count: i64,
    pub(crate) rating_average: Option<f64>,
    pub(crate) available: i64,
    pub(crate) in_stock: bool,
    pub(crate) published: bool,
    pub(crate) featured: bool,
    /// `draft`, `published`, `unpublished` or `archived`.
    pub(crate) status: String,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) published_at: Option<DateTime<Utc>>,
}

impl ProductRow {
    /// The unit price of `sku`: the variant's when it is a variant's SKU, else the
    /// product's.
    pub(crate) fn unit_price_minor(&self, sku: &str) -> i64 {
        self.variants
            .0
            .iter()
            .find(|v| v.sku == sku)
            .map_or(self.price_minor, |v| v.price_minor)
    }
}

#[derive(Debug, sqlx::FromRow)]
struct ListedRow {
    #[sqlx(flatten)]
    product: ProductRow,
    sort_key: String,
}

/// The orders a listing can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum ProductSort {
    /// Cheapest "from" price first.
    PriceAsc,
    /// Dearest "from" price first.
    PriceDesc,
    /// Most recently created first.
    Newest,
    /// Best rated first; unrated last.
    Rating,
    /// By name.
    Name,
}

impl ProductSort {
    /// The key expression, its SQL type (for the cursor's value) and whether it
    /// ascends. The product id breaks ties in the same direction, so the key plus id
    /// is a total order and a keyset cursor never skips or repeats a product.
    fn key(self) -> (&'static str, &'static str, bool) {
        match self {
            Self::PriceAsc => ("p.min_price_minor", "bigint", true),
            Self::PriceDesc => ("p.min_price_minor", "bigint", false),
            Self::Newest => ("p.created_at", "timestamptz", false),
            Self::Rating => ("coalesce(p.rating_average, -1)", "numeric", false),
            Self::Name => ("p.name", "text", true),
        }
    }
}

/// Which products a listing shows.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProductFilter {
    /// In this category or any below it.
    pub(crate) category_id: Option<Uuid>,
    /// "From" price at least this (minor units).
    pub(crate) min_price_minor: Option<i64>,
    /// "From" price at most this (minor units).
    pub(crate) max_price_minor: Option<i64>,
    /// Only products with (or without) stock.
    pub(crate) in_stock: Option<bool>,
    /// Carrying every one of these tags.
    pub(crate) tags: Vec<String>,
    /// Name or description contains this (case-insensitive).
    pub(crate) search: Option<String>,
}

/// Where a page starts: after this sort key and product id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Cursor {
    s: ProductSort,
    k: String,
    i: Uuid,
}

impl Cursor {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    pub(super) fn decode(raw: &str, sort: ProductSort) -> Result<Self, ApiError> {
        let bad = || ApiError::bad_input("after", "invalid_cursor", "not a cursor of this listing");
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
        let cursor: Self = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        if cursor.s == sort {
            Ok(cursor)
        } else {
            Err(bad())
        }
    }
}

/// One page of a listing.
#[derive(Debug)]
pub(crate) struct ListedProducts {
    /// The products with their cursors.
    pub(crate) items: Vec<(String, ProductRow)>,
    /// Whether another page follows.
    pub(crate) has_next_page: bool,
}

/// A `categories` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct CategoryRow {
    pub(crate) category_id: Uuid,
    pub(crate) parent_id: Option<Uuid>,
    pub(crate) name: String,
    pub(crate) slug: String,
    pub(crate) path_slugs: String,
    pub(crate) depth: i32,
}

/// The largest page a listing serves.
pub(crate) const MAX_PAGE: i64 = 100;

fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('%');
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// A statement being built: its text and its arguments, `$n` numbered as bound.
#[derive(Debug, Default)]
pub(super) struct Statement {
    pub(super) text: String,
    pub(super) args: Args,
}

impl Statement {
    fn push(&mut self, sql: &str) -> &mut Self {
        self.text.push_str(sql);
        self
    }

    /// Adds `value` as the next argument; returns its placeholder.
    fn bind(&mut self, value: impl Into<Value>) -> String {
        self.args.0.push(value.into());
        format!("${}", self.args.0.len())
    }
}

/// A cursor's sort key as an argument of `sort`'s key type, for SQLite (PostgreSQL
/// casts the text in the statement); `None` when it is not one.
fn sqlite_cursor_key(sort: ProductSort, key: &str) -> Option<Value> {
    match sort {
        ProductSort::PriceAsc | ProductSort::PriceDesc => key.parse::<i64>().ok().map(Value::from),
        ProductSort::Newest => DateTime::parse_from_rfc3339(key)
            .ok()
            .map(|t| Value::from(t.with_timezone(&Utc))),
        ProductSort::Rating => key
            .parse::<f64>()
            .ok()
            .filter(|k| k.is_finite())
            .map(Value::from),
        ProductSort::Name => Some(Value::from(key)),
    }
}

/// The listing query (one statement whatever the filter and sort), after `prefix`
/// (`EXPLAIN ...` in the index tests). It orders by the sort key then the product id,
/// both in the sort's direction: exactly the column order of the catalog projection's
/// listing indexes (on both backends), so a page is an index range scan that stops
/// after `first + 1` rows, with no sort. `None` for a cursor whose key SQLite cannot
/// read as the sort's type (PostgreSQL reports that as a database error).
pub(super) fn listing_query(
    backend: Backend,
    prefix: &str,
    filter: &ProductFilter,
    sort: ProductSort,
    first: i64,
    after: Option<&Cursor>,
    include_unpublished: bool,
) -> Option<Statement> {
    let (key, key_type, ascending) = sort.key();
    let mut q = Statement::default();
    q.push(&format!(
        "{prefix}SELECT {}, CAST(({key}) AS text) AS sort_key FROM catalog_products p WHERE true",
        product_columns(backend)
    ));
    if !include_unpublished {
        q.push(" AND p.published");
    }
    if let Some(category) = filter.category_id {
        // `category_ids` holds the product's category and its ancestors (hyphenated
        // text in SQLite's JSON array).
        let condition = match backend {
            Backend::Postgres => {
                format!(" AND p.category_ids @> ARRAY[{}]::uuid[]", q.bind(category))
            }
            Backend::Sqlite => format!(
                " AND EXISTS (SELECT 1 FROM json_each(p.category_ids) WHERE value = {})",
                q.bind(category.to_string())
            ),
        };
        q.push(&condition);
    }
    if let Some(min) = filter.min_price_minor {
        let min = q.bind(min);
        q.push(&format!(" AND p.min_price_minor >= {min}"));
    }
    if let Some(max) = filter.max_price_minor {
        let max = q.bind(max);
        q.push(&format!(" AND p.min_price_minor <= {max}"));
    }
    if let Some(in_stock) = filter.in_stock {
        let in_stock = q.bind(in_stock);
        q.push(&format!(" AND p.in_stock = {in_stock}"));
    }
    if !filter.tags.is_empty() {
        let tags = q.bind(filter.tags.clone());
        let condition = match backend {
            Backend::Postgres => format!(" AND p.tags @> {tags}"),
            Backend::Sqlite => format!(
                " AND NOT EXISTS (SELECT 1 FROM json_each({tags}) AS t
                                  WHERE t.value NOT IN (SELECT value FROM json_each(p.tags)))"
            ),
        };
        q.push(&condition);
    }
    if let Some(search) = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        // `lower(…) LIKE lower(…)` is what PostgreSQL's ILIKE does; SQLite has no
        // ILIKE and no default escape character.
        let pattern = q.bind(escape_like(search));
        q.push(&format!(
            " AND (lower(p.name) LIKE lower({pattern}) ESCAPE '\\'
                   OR lower(p.description) LIKE lower({pattern}) ESCAPE '\\')"
        ));
    }
    if let Some(cursor) = after {
        let op = if ascending { ">" } else { "<" };
        let condition = match backend {
            Backend::Postgres => {
                let (k, i) = (q.bind(cursor.k.clone()), q.bind(cursor.i));
                format!(" AND (({key}), p.product_id) {op} ({k}::{key_type}, {i})")
            }
            // SQLite bounds an expression index by a row value only with the leading
            // term beside it.
            Backend::Sqlite => {
                let (k, i) = (
                    q.bind(sqlite_cursor_key(sort, &cursor.k)?),
                    q.bind(cursor.i),
                );
                format!(" AND ({key}) {op}= {k} AND (({key}), p.product_id) {op} ({k}, {i})")
            }
        };
        q.push(&condition);
    }
    let dir = if ascending { "ASC" } else { "DESC" };
    let limit = q.bind(first + 1);
    q.push(&format!(
        " ORDER BY {key} {dir}, p.product_id {dir} LIMIT {limit}"
    ));
    Some(q)
}

impl Shop {
    /// One page of products: one query, whatever the filter and sort.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` for a page size outside 1..=100 or a foreign cursor.
    pub(crate) async fn list_products(
        &self,
        filter: &ProductFilter,
        sort: ProductSort,
        first: i64,
        after: Option<&str>,
        include_unpublished: bool,
    ) -> Result<ListedProducts, ApiError> {
        if !(1..=MAX_PAGE).contains(&first) {
            return Err(ApiError::bad_input(
                "first",
                "page_size",
                format!("must be between 1 and {MAX_PAGE}"),
            ));
        }
        let bad_cursor =
            || ApiError::bad_input("after", "invalid_cursor", "not a cursor of this listing");
        let after = after.map(|a| Cursor::decode(a, sort)).transpose()?;
        let q = listing_query(
            self.read.backend(),
            "",
            filter,
            sort,
            first,
            after.as_ref(),
            include_unpublished,
        )
        .ok_or_else(bad_cursor)?;
        let mut rows: Vec<ListedRow> = self.read.fetch_all(&q.text, q.args).await.map_err(|e| {
            if after.is_some() && is_bad_cursor_value(&e) {
                bad_cursor()
            } else {
                ApiError::internal(anyhow::Error::from(e).context("list products"))
            }
        })?;
        let has_next_page = rows.len() > usize::try_from(first).unwrap_or(usize::MAX);
        rows.truncate(usize::try_from(first).unwrap_or(usize::MAX));
        let items = rows
            .into_iter()
            .map(|row| {
                let cursor = Cursor {
                    s: sort,
                    k: row.sort_key,
                    i: row.product.product_id,
                };
                (cursor.encode(), row.product)
            })
            .collect();
        Ok(ListedProducts {
            items,
            has_next_page,
        })
    }

    /// A product by id or by slug (current or former).
    ///
    /// # Errors
    /// When the read model cannot be read.
    pub(crate) async fn product(
        &self,
        id: Option<Uuid>,
        slug: Option<&str>,
        include_unpublished: bool,
    ) -> Result<Option<ProductRow>, ApiError> {
        let backend = self.read.backend();
        let columns = product_columns(backend);
        let row: Option<ProductRow> = match (id, slug) {
            (Some(id), _) => {
                self.read
                    .fetch_optional(
                        &format!(
                            "SELECT {columns} FROM catalog_products p WHERE p.product_id = $1"
                        ),
                        args![id],
                    )
                    .await
            }
            (None, Some(slug)) => {
                // A former slug: the GIN-indexed array on PostgreSQL; on SQLite the
                // partial index of the products that have one.
                let former = match backend {
                    Backend::Postgres => "p.old_slugs @> ARRAY[$1]",
                    Backend::Sqlite => {
                        "(p.old_slugs <> '[]'
                          AND EXISTS (SELECT 1 FROM json_each(p.old_slugs) WHERE value = $1))"
                    }
                };
                self.read
                    .fetch_optional(
                        &format!(
                            "SELECT {columns} FROM catalog_products p
                             WHERE p.slug = $1 OR {former}
                             ORDER BY p.slug = $1 DESC LIMIT 1"
                        ),
                        args![slug],
                    )
                    .await
            }
            (None, None) => return Ok(None),
        }
        .map_err(|e| ApiError::internal(anyhow::Error::from(e).context("read product")))?;
        Ok(row.filter(|p| p.published || include_unpublished))
    }

    /// Published, featured products, most recently changed first.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` for a size outside 1..=100.
    pub(crate) async fn featured_products(&self, first: i64) -> Result<Vec<ProductRow>, ApiError> {
        if !(1..=MAX_PAGE).contains(&first) {
            return Err(ApiError::bad_input(
                "first",
                "page_size",
                format!("must be between 1 and {MAX_PAGE}"),
            ));
        }
        self.read
            .fetch_all(
                &format!(
                    "SELECT {} FROM catalog_products p
                     WHERE p.published AND p.featured ORDER BY p.updated_at DESC LIMIT $1",
                    product_columns(self.read.backend())
                ),
                args![first],
            )
            .await
            .map_err(|e| ApiError::internal(anyhow::Error::from(e).context("featured products")))
    }

    /// Products by id, in no particular order (one query).
    pub(crate) async fn products_by_id(&self, ids: &[Uuid]) -> Result<Vec<ProductRow>, ApiError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let backend = self.read.backend();
        // SQLite gets the ids as a JSON array of hyphenated text; its keys are blobs.
        let among = match backend {
            Backend::Postgres => "p.product_id = ANY($1)",
            Backend::Sqlite => {
                "p.product_id IN (SELECT unhex(replace(value, '-', '')) FROM json_each($1))"
            }
        };
        self.read
            .fetch_all(
                &format!(
                    "SELECT {} FROM catalog_products p WHERE {among}",
                    product_columns(backend)
                ),
                args![ids.to_vec()],
            )
            .await
            .map_err(|e| ApiError::internal(anyhow::Error::from(e).context("read products")))
    }

    /// Every category, parents before children, siblings by name.
    ///
    /// # Errors
    /// When the read model cannot be read.
    pub(crate) async fn categories(&self) -> Result<Vec<CategoryRow>, ApiError> {
        self.read
            .fetch_all(
                "SELECT category_id, parent_id, name, slug, path_slugs, depth
                 FROM categories ORDER BY depth, name, category_id",
                args![],
            )
            .await
            .map_err(|e| ApiError::internal(anyhow::Error::from(e).context("read categories")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_belong_to_their_sort() {
        let c = Cursor {
            s: ProductSort::Newest,
            k: "2024-01-01 00:00:00+00".to_owned(),
            i: Uuid::nil(),
        };
        let raw = c.encode();
        assert_eq!(Cursor::decode(&raw, ProductSort::Newest).unwrap().k, c.k);
        assert!(Cursor::decode(&raw, ProductSort::Name).is_err());
        assert!(Cursor::decode("garbage!", ProductSort::Name).is_err());
    }

    /// Every node of an `EXPLAIN (FORMAT JSON)` plan.
    fn nodes(plan: &serde_json::Value, out: &mut Vec<serde_json::Value>) {
        out.push(plan.clone());
        for child in plan["Plans"].as_array().into_iter().flatten() {
            nodes(child, out);
        }
    }

    /// Over 10,000 published products, each listing order (first page and a later
    /// page) is an index scan on its own index with no sort node.
    #[tokio::test]
    async fn every_listing_order_is_an_index_scan_without_a_sort() {
        use std::sync::Arc;

        let db = emporium_tests::TestDatabase::create(2).await.unwrap();
        crate::db::prepare(db.url(), db.pool()).await.unwrap();
        emporium_projections::projection::rebuild::rebuild(
            db.pool(),
            Arc::new(emporium_projections::views::CatalogProjection),
            100,
        )
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO catalog_products
                 (product_id, sku, slug, name, description, category_id, currency, price_minor,
                  min_price_minor, max_price_minor, rating_count, rating_sum, published,
                  created_at, updated_at)
             SELECT gen_random_uuid(), 'SKU-' || i, 'p-' || i, 'Product ' || md5(i::text), '',
                    gen_random_uuid(), 'EUR', 100 + (i * 7919) % 100000, 100 + (i * 7919) % 100000,
                    100 + (i * 7919) % 100000, i % 7, (i % 7) * (1 + i % 5), true,
                    now() - make_interval(secs => i), now()
             FROM generate_series(1, 10000) AS i",
        )
        .execute(db.pool())
        .await
        .unwrap();
        sqlx::query("ANALYZE catalog_products")
            .execute(db.pool())
            .await
            .unwrap();

        let read = emporium_projections::sql::Db::Postgres(db.pool().clone());
        let filter = ProductFilter::default();
        for (sort, index) in [
            (ProductSort::Newest, "catalog_products_newest"),
            (ProductSort::PriceAsc, "catalog_products_price"),
            (ProductSort::PriceDesc, "catalog_products_price"),
            (ProductSort::Rating, "catalog_products_rating"),
            (ProductSort::Name, "catalog_products_name"),
        ] {
            // A cursor from the middle of the listing, as a client would hold it.
            let q =
                listing_query(Backend::Postgres, "", &filter, sort, 5_000, None, false).unwrap();
            let rows: Vec<ListedRow> = read.fetch_all(&q.text, q.args).await.unwrap();
            let last = rows.last().unwrap();
            let cursor = Cursor {
                s: sort,
                k: last.sort_key.clone(),
                i: last.product.product_id,
            };
            for after in [None, Some(&cursor)] {
                let q = listing_query(
                    Backend::Postgres,
                    "EXPLAIN (FORMAT JSON) ",
                    &filter,
                    sort,
                    20,
                    after,
                    false,
                )
                .unwrap();
                let (plan,): (Json<serde_json::Value>,) =
                    read.fetch_one(&q.text, q.args).await.unwrap();
                let mut all = Vec::new();
                nodes(&plan.0[0]["Plan"], &mut all);
                let types: Vec<&str> = all.iter().filter_map(|n| n["Node Type"].as_str()).collect();
                assert!(
                    !types.iter().any(|t| t.contains("Sort")),
                    "{sort:?} (cursor: {}): {types:?}",
                    after.is_some()
                );
                let scan = all
                    .iter()
                    .find(|n| n["Node Type"] == "Index Scan")
                    .unwrap_or_else(|| panic!("{sort:?}: no index scan in {types:?}"));
                assert_eq!(scan["Index Name"], index, "{sort:?}");
                if after.is_some() {
                    // The cursor bounds the scan, rather than filtering it.
                    assert!(
                        scan["Index Cond"]
                            .as_str()
                            .is_some_and(|c| c.contains("product_id")),
                        "{sort:?}: {scan}"
                    );
                }
            }
        }
        drop(db.drop_database().await);
    }

    #[test]
    fn like_patterns_are_escaped() {
        assert_eq!(escape_like("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}
