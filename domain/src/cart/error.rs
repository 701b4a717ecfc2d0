//! Why the cart aggregate refused a command.

use uuid::Uuid;

use crate::{Currency, Sku};

/// A broken cart rule. Nothing is recorded for a refused command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CartError {
    /// Any command but `OpenCart` before the cart exists.
    #[error("cart is not open")]
    NotOpened,
    /// `OpenCart` on a cart that exists.
    #[error("cart is already open")]
    AlreadyOpened,
    /// Any command on a checked-out cart.
    #[error("cart is already checked out")]
    AlreadyCheckedOut,
    /// Any command on a guest cart that was merged into a user cart (except marking it
    /// merged into the same cart again).
    #[error("cart was merged into cart {into_cart_id}")]
    AlreadyMerged {
        /// The cart it was merged into.
        into_cart_id: Uuid,
    },
    /// A SKU that is not in the cart.
    #[error("sku {sku} is not in the cart")]
    ItemNotInCart {
        /// The SKU.
        sku: Sku,
    },
    /// An addition would take a line above [`crate::Quantity::MAX`].
    #[error("quantity of sku {sku} would exceed {max}")]
    QuantityLimitExceeded {
        /// The SKU.
        sku: Sku,
        /// The bound.
        max: u32,
    },
    /// A new line beyond [`super::Cart::MAX_LINES`].
    #[error("a cart may have at most {max} lines")]
    TooManyLines {
        /// The bound.
        max: usize,
    },
    /// A SKU arrived with another product id than the one its line has.
    #[error("sku {sku} belongs to another product than the one given")]
    SkuProductMismatch {
        /// The SKU.
        sku: Sku,
    },
    /// A merge into a guest cart.
    #[error("only a user's cart can receive a merge")]
    NotAUserCart,
    /// `MarkMerged` on a user's cart.
    #[error("only a guest cart can be merged into another cart")]
    NotAGuestCart,
    /// A merge of a cart into itself.
    #[error("a cart cannot be merged into itself")]
    CannotMergeIntoItself,
    /// Checkout of a cart without lines.
    #[error("cannot check out an empty cart")]
    EmptyCart,
    /// Checkout without a catalog price for a line.
    #[error("no price for sku {sku}")]
    MissingPrice {
        /// The SKU.
        sku: Sku,
    },
    /// Checkout with a price in another currency than the cart's.
    #[error("price of sku {sku} is in {found}, the cart is in {expected}")]
    PriceCurrencyMismatch {
        /// The SKU.
        sku: Sku,
        /// The cart's currency.
        expected: Currency,
        /// The price's currency.
        found: Currency,
    },
    /// Checkout with a negative price.
    #[error("price of sku {sku} is negative")]
    NegativePrice {
        /// The SKU.
        sku: Sku,
    },
    /// A line total or the subtotal does not fit in 64-bit minor units.
    #[error("cart total overflows")]
    TotalOverflow,
}
