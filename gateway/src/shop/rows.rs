//! Catalogue rows a cart change needs, kept in memory while the catalogue does not
//! change: a SKU's product (to add it to a cart) and the products of a cart's lines
//! (to answer with the cart). Without it every `addToCart` read the SKU's product and
//! every line's whole product row from the read model (the heaviest statement of a
//! cart change, measured in BENCHMARKS.md, "Gateway run 12").
//!
//! # Why it is never stale after a write
//! As the catalogue cache of whole answers (`graphql/cache.rs`): an entry is stamped
//! with the catalogue's version, the positions at which the `catalog` and
//! `categories` projections last *changed* their tables as the process's checkpoint
//! watch follows them, read *before* the rows are, so a row that may already hold a
//! newer change is stamped older and misses next time. Any change of the catalogue
//! (a price, a publish, a stock level) moves the version, and an entry of another
//! version is never served. Events the catalogue only skips (carts, orders...) do
//! not move it, so a burst of cart changes reads the catalogue once.
//!
//! Without a version (the watch has not heard of both projections yet) nothing is
//! read from or kept in the cache.

use std::collections::HashMap;
use std::sync::Arc;

use emporium_projections::envelope::CommitPosition;
use uuid::Uuid;

use super::{ProductRow, Shop};
use crate::error::ApiError;

/// The projections whose tables the rows come from.
const SOURCES: [&str; 2] = ["catalog", "categories"];

/// Where each source projection last changed its tables.
type Version = [CommitPosition; SOURCES.len()];

/// Products kept (a product row is a few kilobytes at most).
const PRODUCTS: usize = 4_096;
/// SKUs kept (a few dozen bytes each).
const SKUS: usize = 16_384;

/// A published SKU's product and the currency it sells in (`None`: not for sale).
pub(crate) type SkuProduct = Option<(Uuid, String)>;

/// The cache. See the module docs.
pub(crate) struct CatalogRows {
    products: quick_cache::sync::Cache<Uuid, (Version, Arc<ProductRow>)>,
    skus: quick_cache::sync::Cache<String, (Version, SkuProduct)>,
}

impl std::fmt::Debug for CatalogRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogRows")
            .field("products", &self.products.len())
            .field("skus", &self.skus.len())
            .finish()
    }
}

impl Default for CatalogRows {
    fn default() -> Self {
        Self {
            products: quick_cache::sync::Cache::new(PRODUCTS),
            skus: quick_cache::sync::Cache::new(SKUS),
        }
    }
}

impl Shop {
    /// The catalogue's version as this process's watch knows it (`None`: unknown,
    /// or the catalogue rows cache is off).
    async fn catalog_version(&self) -> Option<Version> {
        self.catalog_rows.as_ref()?;
        let watch = self.checkpoint_watch().await.ok()?;
        let [a, b] = SOURCES.map(|name| watch.changed(name));
        Some([a?, b?])
    }

    /// The product and currency of a published SKU (`None`: not for sale).
    ///
    /// # Errors
    /// When the read model cannot be read.
    pub(crate) async fn sku_product(&self, sku: &str) -> Result<SkuProduct, ApiError> {
        let version = self.catalog_version().await;
        if let (Some(version), Some(rows)) = (version, &self.catalog_rows)
            && let Some((at, found)) = rows.skus.get(sku)
            && at == version
        {
            return Ok(found);
        }
        let found: SkuProduct = self
            .read
            .fetch_optional(
                "SELECT p.product_id, p.currency
                 FROM catalog_stock s JOIN catalog_products p ON p.product_id = s.product_id
                 WHERE s.sku = $1 AND p.published",
                emporium_projections::args![sku],
            )
            .await
            .map_err(|e| ApiError::internal(anyhow::Error::from(e).context("look up sku")))?;
        if let (Some(version), Some(rows)) = (version, &self.catalog_rows) {
            rows.skus.insert(sku.to_owned(), (version, found.clone()));
        }
        Ok(found)
    }

    /// The products of `ids` that the catalogue holds, by id (absent: not in it).
    ///
    /// # Errors
    /// When the read model cannot be read.
    pub(crate) async fn products_for_lines(
        &self,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Arc<ProductRow>>, ApiError> {
        let version = self.catalog_version().await;
        let mut found = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        for id in ids {
            let cached = version
                .zip(self.catalog_rows.as_ref())
                .and_then(|(version, rows)| {
                    rows.products
                        .get(id)
                        .filter(|(at, _)| *at == version)
                        .map(|(_, row)| row)
                });
            match cached {
                Some(row) => {
                    found.insert(*id, row);
                }
                None => missing.push(*id),
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        for row in self.products_by_id(&missing).await? {
            let row = Arc::new(row);
            if let (Some(version), Some(rows)) = (version, &self.catalog_rows) {
                rows.products
                    .insert(row.product_id, (version, Arc::clone(&row)));
            }
            found.insert(row.product_id, row);
        }
        Ok(found)
    }
}
