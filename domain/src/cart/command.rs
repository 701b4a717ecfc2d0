//! What a cart aggregate can be asked to do.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::values::{CartLine, CartOwner};
use crate::{Currency, Money, Quantity, Sku};

/// A request to the cart aggregate. Every value is already validated; `at` is when the
/// command layer handled the request (the domain has no clock).
#[derive(Debug, Clone, PartialEq)]
pub enum CartCommand {
    /// Opens an empty cart.
    OpenCart {
        /// The aggregate id, chosen by the command layer.
        cart_id: Uuid,
        /// Whose cart.
        owner: CartOwner,
        /// The currency it will be checked out in.
        currency: Currency,
        /// When.
        at: DateTime<Utc>,
    },
    /// Adds units of a SKU; adding a SKU already in the cart increases its quantity.
    AddItem {
        /// What.
        sku: Sku,
        /// The catalog product the SKU belongs to (looked up by the command layer).
        product_id: Uuid,
        /// How many to add.
        quantity: Quantity,
        /// When.
        at: DateTime<Utc>,
    },
    /// Sets the quantity of a line.
    ChangeItemQuantity {
        /// Which line.
        sku: Sku,
        /// The new quantity.
        quantity: Quantity,
        /// When.
        at: DateTime<Utc>,
    },
    /// Removes a line.
    RemoveItem {
        /// Which line.
        sku: Sku,
        /// When.
        at: DateTime<Utc>,
    },
    /// Removes every line.
    ClearCart {
        /// When.
        at: DateTime<Utc>,
    },
    /// Moves a guest cart's lines into this user cart at sign-in. Quantities are
    /// summed per SKU and capped at [`Quantity::MAX`]. Merging the same guest cart
    /// twice records nothing, so the sign-in flow can retry.
    MergeGuestCart {
        /// The guest cart being merged (afterwards closed with
        /// [`CartCommand::MarkMerged`]).
        guest_cart_id: Uuid,
        /// The guest cart's lines, read from its state by the command layer.
        lines: Vec<CartLine>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Closes a guest cart whose lines were merged into a user cart.
    MarkMerged {
        /// The user cart that received the lines.
        into_cart_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// Checks the cart out at catalog prices and closes it.
    CheckOut {
        /// Unit prices the command layer looked up in the catalog for the cart's SKUs.
        /// Never from the client.
        prices: BTreeMap<Sku, Money>,
        /// When.
        at: DateTime<Utc>,
    },
}
