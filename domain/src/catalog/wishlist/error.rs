//! Why a wishlist refused a command.

use uuid::Uuid;

/// A broken wishlist rule. Nothing is recorded for a refused command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WishlistError {
    /// Adding a product that is already on the wishlist.
    #[error("product {0} is already on the wishlist")]
    AlreadyInWishlist(Uuid),
    /// Removing a product that is not on the wishlist.
    #[error("product {0} is not on the wishlist")]
    NotInWishlist(Uuid),
    /// Adding to a wishlist holding [`Wishlist::MAX_ITEMS`](super::Wishlist::MAX_ITEMS)
    /// products.
    #[error("a wishlist may hold at most {max} products")]
    WishlistFull {
        /// The bound.
        max: usize,
    },
    /// Clearing an empty wishlist.
    #[error("wishlist is already empty")]
    AlreadyEmpty,
}
