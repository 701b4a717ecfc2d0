//! Why a product refused a command.

use uuid::Uuid;

use crate::{Currency, Sku};

/// A broken product rule. Nothing is recorded for a refused command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProductError {
    /// A command other than `CreateProduct` on a product that does not exist.
    #[error("product does not exist")]
    NotCreated,
    /// `CreateProduct` on a product that already exists.
    #[error("product already exists")]
    AlreadyCreated,
    /// Any command on an archived product.
    #[error("product is archived and cannot change")]
    Archived,
    /// A price below zero.
    #[error("price must not be negative")]
    NegativePrice,
    /// A price in another currency than the product's.
    #[error("price must be in the product's currency {expected}, got {got}")]
    CurrencyMismatch {
        /// The product's currency.
        expected: Currency,
        /// The currency given.
        got: Currency,
    },
    /// A price change to the current price.
    #[error("price is unchanged")]
    PriceUnchanged,
    /// More tags than [`Product::MAX_TAGS`](super::Product::MAX_TAGS).
    #[error("a product may have at most {max} tags")]
    TooManyTags {
        /// The bound.
        max: usize,
    },
    /// A details update that changes nothing.
    #[error("product details are unchanged")]
    DetailsUnchanged,
    /// A slug change to the current slug.
    #[error("slug is unchanged")]
    SlugUnchanged,
    /// A variant id that is already used.
    #[error("variant {0} already exists")]
    VariantAlreadyExists(Uuid),
    /// A variant id that is not part of the product.
    #[error("variant {0} does not exist")]
    VariantNotFound(Uuid),
    /// More variants than [`Product::MAX_VARIANTS`](super::Product::MAX_VARIANTS).
    #[error("a product may have at most {max} variants")]
    TooManyVariants {
        /// The bound.
        max: usize,
    },
    /// A variant SKU equal to the product's SKU or another variant's.
    #[error("sku {0} is already used by this product or one of its variants")]
    DuplicateSku(Sku),
    /// A variant update that changes nothing.
    #[error("variant is unchanged")]
    VariantUnchanged,
    /// An image id that is already used.
    #[error("image {0} already exists")]
    ImageAlreadyExists(Uuid),
    /// An image id that is not part of the product.
    #[error("image {0} does not exist")]
    ImageNotFound(Uuid),
    /// More images than [`Product::MAX_IMAGES`](super::Product::MAX_IMAGES).
    #[error("a product may have at most {max} images")]
    TooManyImages {
        /// The bound.
        max: usize,
    },
    /// Making the primary image primary.
    #[error("image {0} is already the primary image")]
    AlreadyPrimaryImage(Uuid),
    /// Publishing a product that is published.
    #[error("product is already published")]
    AlreadyPublished,
    /// Publishing a product without any image, or removing the last image of a
    /// published product.
    #[error("a published product needs at least one image")]
    ImageRequired,
    /// Publishing a product whose base price or a variant's price is zero, or setting a
    /// zero price on a published product.
    #[error("a published product needs a positive price, and so does each variant")]
    PositivePriceRequired,
    /// Unpublishing a product that is not published.
    #[error("product is not published")]
    NotPublished,
    /// Archiving a product that is still published: unpublish it first.
    #[error("a published product must be unpublished before it is archived")]
    StillPublished,
    /// Featuring a featured product.
    #[error("product is already featured")]
    AlreadyFeatured,
    /// Unfeaturing a product that is not featured.
    #[error("product is not featured")]
    NotFeatured,
}
