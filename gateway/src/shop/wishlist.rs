//! The viewer's wishlist: commands through `Dispatcher<Wishlist>` (the aggregate id
//! is the user id), answers from `wishlist_items` joined with `catalog_products`.

use chrono::{DateTime, Utc};
use emporium_commands::CommandError;
use emporium_domain::catalog::{WishlistCommand, WishlistError};
use emporium_projections::args;
use uuid::Uuid;

use super::{ProductRow, Shop};
use crate::error::ApiError;

/// The projection whose checkpoint a wishlist answer waits for.
const PROJECTION: &str = "wishlists";

/// A product on a wishlist.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct WishlistEntry {
    pub(crate) added_at: DateTime<Utc>,
    #[sqlx(flatten)]
    pub(crate) product: ProductRow,
}

impl Shop {
    /// The user's wishlist, newest first, published products only (one query).
    ///
    /// # Errors
    /// When the read model cannot be read.
    pub(crate) async fn my_wishlist(&self, user_id: Uuid) -> Result<Vec<WishlistEntry>, ApiError> {
        self.read
            .fetch_all(
                &format!(
                    "SELECT w.added_at, {} FROM wishlist_items w
                     JOIN catalog_products p ON p.product_id = w.product_id
                     WHERE w.user_id = $1 AND p.published
                     ORDER BY w.added_at DESC, w.product_id",
                    super::catalog::product_columns(self.read.backend())
                ),
                args![user_id],
            )
            .await
            .map_err(|e| ApiError::internal(anyhow::Error::from(e).context("read wishlist")))
    }

    /// Runs a wishlist command; the refusals that only say "already so" are answers,
    /// not errors, so the buttons are idempotent.
    async fn change_wishlist(
        &self,
        user_id: Uuid,
        command: WishlistCommand,
    ) -> Result<Vec<WishlistEntry>, ApiError> {
        let position = match self
            .wishlists
            .execute_retrying(&user_id.to_string(), command, &self.metadata(user_id))
            .await
        {
            Ok(committed) => committed.position,
            Err(CommandError::Rejected(
                WishlistError::AlreadyInWishlist(_)
                | WishlistError::NotInWishlist(_)
                | WishlistError::AlreadyEmpty,
            )) => None,
            Err(CommandError::Rejected(WishlistError::WishlistFull { max })) => {
                return Err(ApiError::bad_input(
                    "productId",
                    "wishlist_max_items",
                    format!("a wishlist holds at most {max} products"),
                ));
            }
            Err(CommandError::Conflict { .. }) => return Err(ApiError::Conflict),
            Err(CommandError::Unexpected(e)) => return Err(ApiError::Internal(e)),
        };
        self.read_your_writes(PROJECTION, position).await?;
        self.my_wishlist(user_id).await
    }

    /// Adds a published product.
    ///
    /// # Errors
    /// `NOT_FOUND` for a product that is not for sale.
    pub(crate) async fn add_to_wishlist(
        &self,
        user_id: Uuid,
        product_id: Uuid,
    ) -> Result<Vec<WishlistEntry>, ApiError> {
        let published: Option<bool> = self
            .read
            .scalar_optional(
                "SELECT published FROM catalog_products WHERE product_id = $1",
                args![product_id],
            )
            .await
            .map_err(|e| ApiError::internal(anyhow::Error::from(e).context("find product")))?;
        if published != Some(true) {
            return Err(ApiError::NotFound { what: "product" });
        }
        let at = self.clock.now();
        self.change_wishlist(user_id, WishlistCommand::AddToWishlist { product_id, at })
            .await
    }

    /// Removes a product (absent already: nothing to do).
    ///
    /// # Errors
    /// When the store or the read model fails.
    pub(crate) async fn remove_from_wishlist(
        &self,
        user_id: Uuid,
        product_id: Uuid,
    ) -> Result<Vec<WishlistEntry>, ApiError> {
        let at = self.clock.now();
        self.change_wishlist(
            user_id,
            WishlistCommand::RemoveFromWishlist { product_id, at },
        )
        .await
    }

    /// Removes every product.
    ///
    /// # Errors
    /// When the store or the read model fails.
    pub(crate) async fn clear_wishlist(
        &self,
        user_id: Uuid,
    ) -> Result<Vec<WishlistEntry>, ApiError> {
        let at = self.clock.now();
        self.change_wishlist(user_id, WishlistCommand::ClearWishlist { at })
            .await
    }
}
