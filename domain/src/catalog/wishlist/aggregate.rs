//! The wishlist's state, its decisions and how events evolve it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::command::WishlistCommand;
use super::error::WishlistError;
use super::event::WishlistEvent;
use crate::Aggregate;

/// A product on a wishlist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WishlistItem {
    /// The product.
    pub product_id: Uuid,
    /// When it was added.
    pub added_at: DateTime<Utc>,
}

/// One user's wishlist, identified by the user's id. Its rules are documented in
/// `catalog/wishlist/mod.rs`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Wishlist {
    items: Vec<WishlistItem>,
}

impl Wishlist {
    /// The most products a wishlist may hold.
    pub const MAX_ITEMS: usize = 500;

    /// The products, in the order they were added.
    #[must_use]
    pub fn items(&self) -> &[WishlistItem] {
        &self.items
    }

    /// Whether `product_id` is on the wishlist.
    #[must_use]
    pub fn contains(&self, product_id: Uuid) -> bool {
        self.items.iter().any(|i| i.product_id == product_id)
    }
}

impl Aggregate for Wishlist {
    const TYPE: &'static str = "wishlist";
    type Command = WishlistCommand;
    type Event = WishlistEvent;
    type Error = WishlistError;

    fn handle(&self, command: WishlistCommand) -> Result<Vec<WishlistEvent>, WishlistError> {
        let event = match command {
            WishlistCommand::AddToWishlist { product_id, at } => {
                if self.contains(product_id) {
                    return Err(WishlistError::AlreadyInWishlist(product_id));
                }
                if self.items.len() >= Self::MAX_ITEMS {
                    return Err(WishlistError::WishlistFull {
                        max: Self::MAX_ITEMS,
                    });
                }
                WishlistEvent::ProductAddedToWishlist { product_id, at }
            }
            WishlistCommand::RemoveFromWishlist { product_id, at } => {
                if !self.contains(product_id) {
                    return Err(WishlistError::NotInWishlist(product_id));
                }
                WishlistEvent::ProductRemovedFromWishlist { product_id, at }
            }
            WishlistCommand::ClearWishlist { at } => {
                if self.items.is_empty() {
                    return Err(WishlistError::AlreadyEmpty);
                }
                WishlistEvent::WishlistCleared {
                    product_ids: self.items.iter().map(|i| i.product_id).collect(),
                    at,
                }
            }
        };
        Ok(vec![event])
    }

    fn apply(&mut self, event: &WishlistEvent) {
        match event {
            WishlistEvent::ProductAddedToWishlist { product_id, at } => {
                if !self.contains(*product_id) {
                    self.items.push(WishlistItem {
                        product_id: *product_id,
                        added_at: *at,
                    });
                }
            }
            WishlistEvent::ProductRemovedFromWishlist { product_id, .. } => {
                self.items.retain(|i| i.product_id != *product_id);
            }
            WishlistEvent::WishlistCleared { .. } => self.items.clear(),
        }
    }
}
