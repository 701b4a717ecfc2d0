//! DataLoaders: what a page would otherwise read once per item is read once per
//! page.
//!
//! Most of the storefront needs none: a listing, a cart and a wishlist are built from
//! rows that already hold (or join) what they show. The loaders serve the fields that
//! navigate from one read model to another per item, such as an order line's or a
//! review's current catalogue product: every such field of a response is collected
//! for a moment (the loader's 1 ms delay) and read with one `= ANY($1)` query. The
//! loaders live in the schema's data, so concurrent requests share batches; they keep
//! no cache, so nothing outlives the request that read it.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use uuid::Uuid;

use crate::error::ApiError;
use crate::shop::{ProductRow, Shop};

/// Catalogue products by id (published or not; the field decides what to show).
#[derive(Debug, Clone)]
pub(crate) struct ProductLoader {
    shop: Arc<Shop>,
}

impl Loader<Uuid> for ProductLoader {
    type Value = ProductRow;
    /// Shared by every field of a failed batch (a loader's error must be `Clone`).
    type Error = Arc<ApiError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, ProductRow>, Self::Error> {
        let rows = self.shop.products_by_id(keys).await.map_err(Arc::new)?;
        Ok(rows.into_iter().map(|p| (p.product_id, p)).collect())
    }
}

/// The loaders a schema over `shop` serves with.
pub(crate) fn product_loader(shop: Arc<Shop>) -> DataLoader<ProductLoader> {
    DataLoader::new(ProductLoader { shop }, tokio::spawn)
}
