//! The catalog: products, the category tree, reviews and wishlists.
//!
//! Four aggregates, each in its own folder with its commands, events, typed errors and
//! value objects:
//! - [`Product`] (`"product"`): SKU, slug, details, variants, images, prices and the
//!   publication lifecycle.
//! - [`CategoryTree`] (`"category_tree"`): the whole category hierarchy in one instance,
//!   so "no cycles" and slug uniqueness are checked without I/O.
//! - [`Review`] (`"review"`): one per user per product, with moderation and helpful
//!   votes.
//! - [`Wishlist`] (`"wishlist"`): one per user.
//!
//! Rules that span aggregates (a unique SKU or slug across products, a category that
//! exists, a verified purchase) are the command layer's: each aggregate's module docs
//! say which.

mod category;
mod product;
mod review;
mod slug;
mod text;
mod wishlist;

pub use category::{
    Category, CategoryCommand, CategoryError, CategoryEvent, CategoryName, CategoryTree,
};
pub use product::{
    AltText, Attributes, AttributesError, Description, Image, ImageRef, ImageSource,
    ImageSourceError, PriceRecord, Product, ProductCommand, ProductError, ProductEvent,
    ProductName, ProductState, ProductStatus, Tag, TagError, Variant, VariantLabel,
};
pub use review::{
    ModerationReason, Rating, RatingError, Review, ReviewBody, ReviewCommand, ReviewError,
    ReviewEvent, ReviewState, ReviewStatus, ReviewTitle,
};
pub use slug::{Slug, SlugError};
pub use text::TextError;
pub use wishlist::{Wishlist, WishlistCommand, WishlistError, WishlistEvent, WishlistItem};

use crate::Aggregate;
use crate::schema::Upcaster;

/// `(aggregate type, JSON Schema of its event enum)` for each catalog aggregate.
pub(crate) fn event_schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![
        (Product::TYPE, schemars::schema_for!(ProductEvent)),
        (CategoryTree::TYPE, schemars::schema_for!(CategoryEvent)),
        (Review::TYPE, schemars::schema_for!(ReviewEvent)),
        (Wishlist::TYPE, schemars::schema_for!(WishlistEvent)),
    ]
}

/// Upcasters for older catalog event versions: none yet, every event is at `1.0`.
pub(crate) fn upcasters() -> Vec<Upcaster> {
    Vec::new()
}
