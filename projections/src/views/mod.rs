//! The read models: PostgreSQL tables shaped for the queries that read them, each
//! owned and written by exactly one [`Projection`].
//!
//! | projection  | tables                                                          | serves                                   |
//! |-------------|-----------------------------------------------------------------|------------------------------------------|
//! | `catalog`   | `catalog_products` (+ helpers `catalog_categories`, `catalog_stock`, `catalog_ratings`) | product pages and listings in one indexed query |
//! | `categories`| `categories`                                                    | the category tree, breadcrumbs, slug lookup |
//! | `inventory` | `inventory_levels`                                              | stock per SKU, low-stock report          |
//! | `carts`     | `carts`                                                         | a user's or guest's open cart            |
//! | `orders`    | `orders`                                                        | a customer's orders; staff filters by status, date, customer |
//! | `customers` | `customers`                                                     | profile and address book (never credentials) |
//! | `reviews`   | `product_reviews`                                               | approved reviews per product, moderation queue |
//! | `wishlists` | `wishlist_items`                                                | a user's wishlist                        |
//! | `notifications` | `notifications` (+ helper `notification_orders`)            | my latest 20, my unread count; the staff feed |
//! | `activity`  | `user_activity`                                                 | a visitor's trail, a product's activity  |
//! | `payments`  | `payments` (+ helper `payment_orders`)                          | my payments; a payment by id for its owner |
//!
//! Each projection's SQL names its tables unqualified (the framework decides whether
//! they are the live ones or a rebuild's shadow copies) and touches no other table.

mod activity;
mod carts;
mod catalog;
mod categories;
mod customers;
mod inventory;
mod notifications;
mod orders;
mod payments;
mod reviews;
mod wishlists;

use std::sync::Arc;

use anyhow::Context as _;
use serde::Serialize;
use uuid::Uuid;

pub use activity::ActivityProjection;
pub use carts::CartsProjection;
pub use catalog::CatalogProjection;
pub use categories::CategoriesProjection;
pub use customers::CustomersProjection;
pub use inventory::InventoryProjection;
pub use notifications::NotificationsProjection;
pub use orders::OrdersProjection;
pub use payments::PaymentsProjection;
pub use reviews::ReviewsProjection;
pub use wishlists::WishlistsProjection;

use crate::envelope::EventEnvelope;
use crate::projection::Projection;

/// Every read-model projection.
#[must_use]
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(CatalogProjection),
        Arc::new(CategoriesProjection),
        Arc::new(InventoryProjection),
        Arc::new(CartsProjection),
        Arc::new(OrdersProjection),
        Arc::new(CustomersProjection),
        Arc::new(ReviewsProjection),
        Arc::new(WishlistsProjection),
        Arc::new(NotificationsProjection),
        Arc::new(ActivityProjection),
        Arc::new(PaymentsProjection),
    ]
}

/// The event's aggregate id as a UUID.
fn aggregate_uuid(event: &EventEnvelope) -> anyhow::Result<Uuid> {
    event.aggregate_id.parse().with_context(|| {
        format!(
            "{} aggregate id `{}` is not a uuid",
            event.aggregate_type, event.aggregate_id
        )
    })
}

/// The JSON text of a unit-like enum (`"pending"`), for a text column.
fn enum_text<T: Serialize>(value: &T) -> anyhow::Result<String> {
    match serde_json::to_value(value)? {
        serde_json::Value::String(s) => Ok(s),
        other => anyhow::bail!("expected a string, got {other}"),
    }
}

/// A JSON value for a jsonb column.
fn json<T: Serialize>(value: &T) -> anyhow::Result<serde_json::Value> {
    serde_json::to_value(value).context("encode a read-model document")
}

/// Fails unless exactly one row changed (`changed`, from
/// [`Conn::execute`](crate::sql::Conn::execute)): an event about a row the projection
/// never saw created means the read model and the log disagree, which must stop it.
fn one_changed(changed: u64, what: &str) -> anyhow::Result<()> {
    anyhow::ensure!(changed == 1, "{what}: expected one row, changed {changed}");
    Ok(())
}

/// `column` (an array of text) without `remove`, then with `append` at its end, as an
/// SQL expression: `array_append(array_remove(…))` on PostgreSQL, the same over the
/// JSON array text SQLite keeps arrays as (in order; an empty array stays `[]`).
fn array_remove_append(
    backend: crate::sql::Backend,
    column: &str,
    remove: &str,
    append: &str,
) -> String {
    match backend {
        crate::sql::Backend::Postgres => {
            format!("array_append(array_remove({column}, {remove}), {append})")
        }
        crate::sql::Backend::Sqlite => format!(
            "json_insert((SELECT json_group_array(value ORDER BY key) FROM json_each({column})
                          WHERE value <> {remove}), '$[#]', {append})"
        ),
    }
}

/// SQLite: the hyphenated lower-case text of the 16-byte UUID blob `$blob` (an SQL
/// expression, a string literal), as PostgreSQL writes a `uuid` in JSON or `text`:
/// what the JSON documents and arrays of UUIDs hold on SQLite.
macro_rules! sqlite_uuid_text {
    ($blob:literal) => {
        concat!(
            "lower(hex(substr(",
            $blob,
            ", 1, 4)) || '-' || hex(substr(",
            $blob,
            ", 5, 2)) || '-' || hex(substr(",
            $blob,
            ", 7, 2)) || '-' || hex(substr(",
            $blob,
            ", 9, 2)) || '-' || hex(substr(",
            $blob,
            ", 11, 6)))"
        )
    };
}
pub(crate) use sqlite_uuid_text;
