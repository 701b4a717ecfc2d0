//! What a wishlist can be asked to do.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A request to a [`Wishlist`](super::Wishlist).
#[derive(Debug, Clone, PartialEq)]
pub enum WishlistCommand {
    /// Adds a product.
    AddToWishlist {
        /// The product.
        product_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// Removes a product.
    RemoveFromWishlist {
        /// The product.
        product_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// Removes every product.
    ClearWishlist {
        /// When.
        at: DateTime<Utc>,
    },
}
