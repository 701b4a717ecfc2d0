//! What the cart aggregate records.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::values::{CartLine, CartOwner, CheckedOutLine};
use crate::{Currency, DomainEvent, Money, Quantity, Sku};

/// A fact about a cart.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, strum::IntoStaticStr,
)]
pub enum CartEvent {
    /// An empty cart was opened.
    CartOpened {
        /// The cart's id (the aggregate id).
        cart_id: Uuid,
        /// Whose cart.
        owner: CartOwner,
        /// Checkout currency.
        currency: Currency,
        /// When.
        opened_at: DateTime<Utc>,
    },
    /// Units of a SKU were added.
    ItemAddedToCart {
        /// What.
        sku: Sku,
        /// The catalog product.
        product_id: Uuid,
        /// How many were added.
        quantity: Quantity,
        /// The line's quantity after the addition.
        line_quantity: Quantity,
        /// When.
        added_at: DateTime<Utc>,
    },
    /// A line's quantity was set.
    ItemQuantityChanged {
        /// Which line.
        sku: Sku,
        /// The catalog product.
        product_id: Uuid,
        /// The quantity before.
        previous_quantity: Quantity,
        /// The quantity now.
        quantity: Quantity,
        /// When.
        changed_at: DateTime<Utc>,
    },
    /// A line was removed.
    ItemRemovedFromCart {
        /// Which line.
        sku: Sku,
        /// The catalog product.
        product_id: Uuid,
        /// When.
        removed_at: DateTime<Utc>,
    },
    /// Every line was removed.
    CartCleared {
        /// When.
        cleared_at: DateTime<Utc>,
    },
    /// A guest cart's lines were merged into this user cart.
    GuestCartMerged {
        /// The guest cart.
        guest_cart_id: Uuid,
        /// Every line the merge touched, with its quantity after the merge.
        lines: Vec<CartLine>,
        /// When.
        merged_at: DateTime<Utc>,
    },
    /// This guest cart was merged into a user cart and is closed.
    CartMergedInto {
        /// The user cart that received the lines.
        into_cart_id: Uuid,
        /// When.
        merged_at: DateTime<Utc>,
    },
    /// The cart was checked out at catalog prices and is closed: the snapshot an order
    /// is placed from.
    CartCheckedOut {
        /// Whose cart (the customer of the order).
        owner: CartOwner,
        /// Every line, priced, in SKU order.
        lines: Vec<CheckedOutLine>,
        /// Sum of the line totals.
        subtotal: Money,
        /// The cart's currency (every price is in it).
        currency: Currency,
        /// When.
        checked_out_at: DateTime<Utc>,
    },
}

impl DomainEvent for CartEvent {
    fn event_type(&self) -> &'static str {
        self.into()
    }

    fn event_version(&self) -> &'static str {
        "1.0"
    }
}
