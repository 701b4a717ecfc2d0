//! The back office: what staff do to the catalogue, the stock and orders, and what
//! they look up (customers, every order, inventory levels).
//!
//! Every change is a command through the command layer (`Products` for anything that
//! claims a SKU or slug, `Dispatcher<A>` otherwise), validated into domain values
//! first so a bad input records nothing; the answer is read back from the read model
//! once its projection has passed the command's position (the storefront's
//! `CheckpointWatch`, shared through [`Shop`]). Refusals that only say "already so"
//! (publishing a published product, the same price again) are answered with the
//! current state, so staff buttons are idempotent.
//!
//! Resolvers guard every operation with `RoleGuard::staff()`; nothing here checks a
//! role again.

mod catalog;
mod customers;
mod inventory;
mod orders;

use std::sync::Arc;

use emporium_commands::catalog::Products;
use emporium_commands::{AnyStore, Dispatcher, Loading};
use emporium_domain::EventMetadata;
use emporium_domain::catalog::CategoryTree;
use emporium_domain::inventory::Inventory;
use emporium_domain::metadata::Actor;
use emporium_domain::order::Order;
use emporium_projections::sql::Db;
use uuid::Uuid;

pub(crate) use catalog::{
    AttributeEntry, CategoryChange, NewProduct, NewVariant, ProductChange, VariantChange,
};
pub(crate) use customers::{CustomerFilter, CustomerRow};
pub(crate) use inventory::{InventoryFilter, LevelRow, StockReason};
pub(crate) use orders::{StaffOrderFilter, StaffOrderRow};

use crate::clock::Clock;
use crate::error::ApiError;
use crate::shop::Shop;

/// The back office's services.
pub(crate) struct Staff {
    shop: Arc<Shop>,
    /// The read models (the storefront's): every listing and lookup goes through it.
    read: Db,
    clock: Arc<dyn Clock>,
    products: Products<AnyStore>,
    categories: Dispatcher<CategoryTree, AnyStore>,
    inventory: Dispatcher<Inventory, AnyStore>,
    orders: Dispatcher<Order, AnyStore>,
    store: AnyStore,
}

impl std::fmt::Debug for Staff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staff").finish_non_exhaustive()
    }
}

impl Staff {
    /// The back office beside the storefront `shop` (same pool, read models, clock
    /// and read-your-writes watch).
    #[must_use]
    pub(crate) fn new(shop: Arc<Shop>) -> Self {
        let store = shop.store().clone();
        Self {
            clock: Arc::clone(shop.clock()),
            products: Products::over(store.clone()),
            categories: Dispatcher::over(store.clone(), Loading::Replay),
            inventory: Dispatcher::over(store.clone(), Loading::Replay),
            orders: Dispatcher::over(store.clone(), Loading::Replay),
            store,
            read: shop.read().clone(),
            shop,
        }
    }

    /// Metadata of a command a staff member gave.
    fn metadata(&self, staff_id: Uuid) -> EventMetadata {
        EventMetadata::new(Uuid::new_v4(), Actor::User(staff_id), self.clock.now())
    }
}

/// The most rows one staff listing page shows.
pub(crate) const MAX_PAGE: i64 = 100;

/// Checks a page size.
fn page_size(first: i64) -> Result<i64, ApiError> {
    if (1..=MAX_PAGE).contains(&first) {
        Ok(first)
    } else {
        Err(ApiError::bad_input(
            "first",
            "page_size",
            format!("must be between 1 and {MAX_PAGE}"),
        ))
    }
}

fn read_error(e: sqlx::Error, what: &'static str) -> ApiError {
    ApiError::internal(anyhow::Error::from(e).context(what))
}

/// Opaque keyset cursors: base64url of a small JSON value.
mod cursor {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde::Serialize;
    use serde::de::DeserializeOwned;

    use crate::error::ApiError;

    pub(super) fn encode(value: &impl Serialize) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap_or_default())
    }

    pub(super) fn decode<T: DeserializeOwned>(raw: &str) -> Result<T, ApiError> {
        let bad = || ApiError::bad_input("after", "invalid_cursor", "not a cursor of this listing");
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
        serde_json::from_slice(&bytes).map_err(|_| bad())
    }
}
