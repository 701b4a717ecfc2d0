//! What happened to a product.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::value::{AltText, Attributes, Description, ImageSource, ProductName, Tag, VariantLabel};
use crate::catalog::Slug;
use crate::{DomainEvent, Money, Sku};

/// A fact about a [`Product`](super::Product). Each carries what the catalog read
/// models and the search index need, so their projections stay thin.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, strum::IntoStaticStr,
)]
pub enum ProductEvent {
    /// A product was created as a draft.
    ProductCreated {
        /// The product's id.
        product_id: Uuid,
        /// Its SKU.
        sku: Sku,
        /// Its URL slug.
        slug: Slug,
        /// Display name.
        name: ProductName,
        /// Description.
        description: Description,
        /// Category.
        category_id: Uuid,
        /// Tags.
        tags: BTreeSet<Tag>,
        /// Attributes.
        attributes: Attributes,
        /// Base price (and so the product's currency).
        price: Money,
        /// When.
        at: DateTime<Utc>,
    },
    /// The descriptive details were replaced (the full new set).
    ProductDetailsUpdated {
        /// Display name.
        name: ProductName,
        /// Description.
        description: Description,
        /// Category.
        category_id: Uuid,
        /// Tags.
        tags: BTreeSet<Tag>,
        /// Attributes.
        attributes: Attributes,
        /// When.
        at: DateTime<Utc>,
    },
    /// The URL slug changed (the old one is kept for redirects).
    SlugChanged {
        /// The previous slug.
        old_slug: Slug,
        /// The new slug.
        new_slug: Slug,
        /// When.
        at: DateTime<Utc>,
    },
    /// The base price changed.
    PriceChanged {
        /// The previous price.
        old_price: Money,
        /// The new price.
        new_price: Money,
        /// When.
        at: DateTime<Utc>,
    },
    /// A variant was added.
    VariantAdded {
        /// Its id.
        variant_id: Uuid,
        /// Its SKU.
        sku: Sku,
        /// Size.
        size: Option<VariantLabel>,
        /// Colour.
        colour: Option<VariantLabel>,
        /// Further options.
        attributes: Attributes,
        /// Price.
        price: Money,
        /// When.
        at: DateTime<Utc>,
    },
    /// A variant's options were replaced.
    VariantUpdated {
        /// Its id.
        variant_id: Uuid,
        /// Its (unchanged) SKU.
        sku: Sku,
        /// Size.
        size: Option<VariantLabel>,
        /// Colour.
        colour: Option<VariantLabel>,
        /// Further options.
        attributes: Attributes,
        /// When.
        at: DateTime<Utc>,
    },
    /// A variant was removed.
    VariantRemoved {
        /// Its id.
        variant_id: Uuid,
        /// Its SKU, no longer sold under this product.
        sku: Sku,
        /// When.
        at: DateTime<Utc>,
    },
    /// A variant's price changed.
    VariantPriceChanged {
        /// Its id.
        variant_id: Uuid,
        /// Its SKU.
        sku: Sku,
        /// The previous price.
        old_price: Money,
        /// The new price.
        new_price: Money,
        /// When.
        at: DateTime<Utc>,
    },
    /// An image was added. When `primary` is true every other image stops being
    /// primary.
    ImageAdded {
        /// Its id.
        image_id: Uuid,
        /// Where it lives.
        source: ImageSource,
        /// Alternative text.
        alt_text: AltText,
        /// Whether it is now the primary image.
        primary: bool,
        /// When.
        at: DateTime<Utc>,
    },
    /// An image was removed.
    ImageRemoved {
        /// Its id.
        image_id: Uuid,
        /// The image promoted to primary because the removed one was primary.
        promoted_primary: Option<Uuid>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Another image became the primary one.
    PrimaryImageSet {
        /// The new primary image.
        image_id: Uuid,
        /// The image that was primary before.
        previous_primary: Option<Uuid>,
        /// When.
        at: DateTime<Utc>,
    },
    /// The product became visible in the storefront.
    ProductPublished {
        /// When.
        at: DateTime<Utc>,
    },
    /// The product was taken out of the storefront.
    ProductUnpublished {
        /// When.
        at: DateTime<Utc>,
    },
    /// The product was marked as featured.
    ProductFeatured {
        /// When.
        at: DateTime<Utc>,
    },
    /// The featured mark was removed.
    ProductUnfeatured {
        /// When.
        at: DateTime<Utc>,
    },
    /// The product was retired for good.
    ProductArchived {
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for ProductEvent {
    fn event_type(&self) -> &'static str {
        self.into()
    }

    fn event_version(&self) -> &'static str {
        "1.0"
    }
}
