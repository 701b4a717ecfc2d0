//! `wishlist_items`: a user's wishlist, one row per product, newest first.

use emporium_domain::catalog::WishlistEvent;

use super::aggregate_uuid;
use crate::args;
use crate::envelope::EventEnvelope;
use crate::projection::{Projection, decode};
use crate::sql::Conn;

/// Builds `wishlist_items`.
#[derive(Debug, Clone, Copy, Default)]
pub struct WishlistsProjection;

const SCHEMA: &str = "
CREATE TABLE wishlist_items (
    user_id    uuid        NOT NULL,
    product_id uuid        NOT NULL,
    added_at   timestamptz NOT NULL,
    PRIMARY KEY (user_id, product_id)
);
CREATE INDEX wishlist_items_newest ON wishlist_items (user_id, added_at DESC);
CREATE INDEX wishlist_items_product ON wishlist_items (product_id);
";

/// SQLite takes the same DDL (its column types are affinities).
const SQLITE_SCHEMA: &str = SCHEMA;

#[async_trait::async_trait]
impl Projection for WishlistsProjection {
    fn name(&self) -> &'static str {
        "wishlists"
    }

    fn version(&self) -> u32 {
        1
    }

    fn tables(&self) -> &'static [&'static str] {
        &["wishlist_items"]
    }

    fn schema(&self) -> &'static str {
        SCHEMA
    }

    fn sqlite_schema(&self) -> Option<&'static str> {
        Some(SQLITE_SCHEMA)
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &["wishlist"]
    }

    async fn apply(&self, conn: &mut Conn<'_>, event: &EventEnvelope) -> anyhow::Result<()> {
        use WishlistEvent as E;
        let user_id = aggregate_uuid(event)?;
        match decode::<WishlistEvent>(event)? {
            E::ProductAddedToWishlist { product_id, at } => {
                conn.execute(
                    "INSERT INTO wishlist_items (user_id, product_id, added_at) VALUES ($1, $2, $3)
                     ON CONFLICT DO NOTHING",
                    args![user_id, product_id, at],
                )
                .await?;
            }
            E::ProductRemovedFromWishlist { product_id, .. } => {
                conn.execute(
                    "DELETE FROM wishlist_items WHERE user_id = $1 AND product_id = $2",
                    args![user_id, product_id],
                )
                .await?;
            }
            E::WishlistCleared { .. } => {
                conn.execute(
                    "DELETE FROM wishlist_items WHERE user_id = $1",
                    args![user_id],
                )
                .await?;
            }
        }
        Ok(())
    }
}
