//! What happened to a wishlist. The owner is the stream's aggregate id (the user id),
//! which every consumer receives with the event.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::DomainEvent;

/// A fact about a [`Wishlist`](super::Wishlist).
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, strum::IntoStaticStr,
)]
pub enum WishlistEvent {
    /// A product was added.
    ProductAddedToWishlist {
        /// The product.
        product_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// A product was removed.
    ProductRemovedFromWishlist {
        /// The product.
        product_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// Every product was removed.
    WishlistCleared {
        /// The products removed, in the order they were added.
        product_ids: Vec<Uuid>,
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for WishlistEvent {
    fn event_type(&self) -> &'static str {
        self.into()
    }

    fn event_version(&self) -> &'static str {
        "1.0"
    }
}
