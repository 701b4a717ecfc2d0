//! What a product can be asked to do.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::value::{AltText, Attributes, Description, ImageSource, ProductName, Tag, VariantLabel};
use crate::catalog::Slug;
use crate::{Money, Sku};

/// A request to a [`Product`](super::Product). Every command carries the time it was
/// handled (`at`); identifiers of new parts (the product, a variant, an image) are
/// chosen by the command layer.
#[derive(Debug, Clone, PartialEq)]
pub enum ProductCommand {
    /// Creates the product as a draft.
    CreateProduct {
        /// The product's id (also its aggregate id).
        product_id: Uuid,
        /// The product's own SKU.
        sku: Sku,
        /// URL slug.
        slug: Slug,
        /// Display name.
        name: ProductName,
        /// Long description.
        description: Description,
        /// The category it is listed under (must exist in the category tree: the
        /// command layer checks).
        category_id: Uuid,
        /// Labels for filtering, at most [`Product::MAX_TAGS`](super::Product::MAX_TAGS).
        tags: BTreeSet<Tag>,
        /// Specifications.
        attributes: Attributes,
        /// Base price; its currency becomes the product's currency for good.
        price: Money,
        /// When.
        at: DateTime<Utc>,
    },
    /// Replaces the descriptive details (everything shown but not sold).
    UpdateProductDetails {
        /// New display name.
        name: ProductName,
        /// New description.
        description: Description,
        /// New category.
        category_id: Uuid,
        /// New tags.
        tags: BTreeSet<Tag>,
        /// New attributes.
        attributes: Attributes,
        /// When.
        at: DateTime<Utc>,
    },
    /// Gives the product a new URL slug.
    ChangeSlug {
        /// The new slug.
        slug: Slug,
        /// When.
        at: DateTime<Utc>,
    },
    /// Changes the base price (same currency).
    ChangePrice {
        /// The new price.
        price: Money,
        /// When.
        at: DateTime<Utc>,
    },
    /// Adds a sellable variant with its own SKU and price.
    AddVariant {
        /// The variant's id.
        variant_id: Uuid,
        /// Its SKU: unique within the product and different from the product's SKU.
        sku: Sku,
        /// Size, if the variant is sized.
        size: Option<VariantLabel>,
        /// Colour, if the variant comes in colours.
        colour: Option<VariantLabel>,
        /// Further options (e.g. `material -> wool`).
        attributes: Attributes,
        /// Its price, in the product's currency.
        price: Money,
        /// When.
        at: DateTime<Utc>,
    },
    /// Replaces a variant's options. Its SKU is its inventory identity and never
    /// changes (remove it and add another instead); its price changes through
    /// [`ProductCommand::ChangeVariantPrice`], so it enters the price history.
    UpdateVariant {
        /// Which variant.
        variant_id: Uuid,
        /// New size.
        size: Option<VariantLabel>,
        /// New colour.
        colour: Option<VariantLabel>,
        /// New attributes.
        attributes: Attributes,
        /// When.
        at: DateTime<Utc>,
    },
    /// Removes a variant.
    RemoveVariant {
        /// Which variant.
        variant_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// Changes a variant's price (product currency).
    ChangeVariantPrice {
        /// Which variant.
        variant_id: Uuid,
        /// The new price.
        price: Money,
        /// When.
        at: DateTime<Utc>,
    },
    /// Adds an image. The first image is always primary; a later image asked to be
    /// primary takes over from the current one.
    AddImage {
        /// The image's id.
        image_id: Uuid,
        /// Where it lives.
        source: ImageSource,
        /// Alternative text.
        alt_text: AltText,
        /// Whether it should become the primary image.
        primary: bool,
        /// When.
        at: DateTime<Utc>,
    },
    /// Removes an image. Removing the primary image promotes the oldest remaining one.
    RemoveImage {
        /// Which image.
        image_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// Makes an image the primary one.
    SetPrimaryImage {
        /// Which image.
        image_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// Makes the product visible in the storefront.
    PublishProduct {
        /// When.
        at: DateTime<Utc>,
    },
    /// Takes the product out of the storefront.
    UnpublishProduct {
        /// When.
        at: DateTime<Utc>,
    },
    /// Marks the product as featured (shown only while published).
    FeatureProduct {
        /// When.
        at: DateTime<Utc>,
    },
    /// Removes the featured mark.
    UnfeatureProduct {
        /// When.
        at: DateTime<Utc>,
    },
    /// Retires the product for good.
    ArchiveProduct {
        /// When.
        at: DateTime<Utc>,
    },
}
