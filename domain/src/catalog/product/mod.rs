//! The product aggregate: what is sold, how it is described, priced and shown.
//!
//! **Identity.** The aggregate id is the product's UUID (`product_id` of
//! `CreateProduct`), chosen by the command layer.
//!
//! **Rules enforced here.**
//! - Lifecycle `Draft -> Published <-> Unpublished -> Archived`; a draft may be archived
//!   directly, a published product must be unpublished first. An archived product
//!   refuses every command ([`ProductError::Archived`]).
//! - A published product has at least one image and positive base and variant prices:
//!   publishing checks it, and while published the last image cannot be removed nor a
//!   zero price set ([`ProductError::ImageRequired`],
//!   [`ProductError::PositivePriceRequired`]). Drafts and unpublished products may have
//!   zero prices and no images while they are being set up.
//! - Prices are never negative, and the product and all its variants share the currency
//!   of the creation price for good.
//! - Variant SKUs are unique within the product and differ from the product's SKU; a
//!   variant's SKU never changes.
//! - Exactly one image is primary whenever there are images: the first image added is
//!   primary, a new primary demotes the old one, removing the primary promotes the
//!   oldest remaining image.
//! - Tags, variants, images and attributes are bounded ([`Product::MAX_TAGS`], ...).
//! - A command that would change nothing (same price, same slug, same details, same
//!   variant options, publishing a published product, featuring a featured one, ...)
//!   is refused with a typed error rather than recording an empty event; the command
//!   layer may treat those particular errors as success if it wants idempotent retries.
//! - The state keeps the last [`Product::PRICE_HISTORY_LEN`] prices (base and
//!   variants); the complete history is the `PriceChanged` / `VariantPriceChanged` /
//!   `VariantAdded` events.
//!
//! **What the domain cannot enforce alone.** The product SKU, every variant SKU and the
//! slug must be unique across *all* products; one aggregate cannot see the others, so
//! the command layer reserves them in a uniqueness table in the same transaction as the
//! events (the domain validates their shape only). Likewise the command layer checks
//! that `category_id` exists in the [`CategoryTree`](crate::catalog::CategoryTree).

mod aggregate;
mod command;
mod error;
mod event;
mod value;

#[cfg(test)]
mod tests;

pub use aggregate::{Image, PriceRecord, Product, ProductState, ProductStatus, Variant};
pub use command::ProductCommand;
pub use error::ProductError;
pub use event::ProductEvent;
pub use value::{
    AltText, Attributes, AttributesError, Description, ImageRef, ImageSource, ImageSourceError,
    ProductName, Tag, TagError, VariantLabel,
};
