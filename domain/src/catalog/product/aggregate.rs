//! The product's state, its decisions and how events evolve it.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::command::ProductCommand;
use super::error::ProductError;
use super::event::ProductEvent;
use super::value::{AltText, Attributes, Description, ImageSource, ProductName, Tag, VariantLabel};
use crate::catalog::Slug;
use crate::{Aggregate, Money, Sku};

/// Where a product is in its life: `Draft -> Published <-> Unpublished -> Archived`
/// (a draft may also be archived directly).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProductStatus {
    /// Being prepared; not visible in the storefront.
    Draft,
    /// Visible in the storefront.
    Published,
    /// Was published, now hidden.
    Unpublished,
    /// Retired for good; refuses every command.
    Archived,
}

/// A sellable variant of a product.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    /// Its id.
    pub id: Uuid,
    /// Its SKU (unique within the product, never the product's own).
    pub sku: Sku,
    /// Size.
    pub size: Option<VariantLabel>,
    /// Colour.
    pub colour: Option<VariantLabel>,
    /// Further options.
    pub attributes: Attributes,
    /// Price, in the product's currency.
    pub price: Money,
}

/// An image of a product.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Image {
    /// Its id.
    pub id: Uuid,
    /// Where it lives.
    pub source: ImageSource,
    /// Alternative text.
    pub alt_text: AltText,
    /// Whether it is the primary image (exactly one is, when there are images).
    pub primary: bool,
}

/// One entry of a product's price history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PriceRecord {
    /// The variant whose price it is, or `None` for the base price.
    pub variant_id: Option<Uuid>,
    /// The price from `at` on.
    pub price: Money,
    /// When it took effect.
    pub at: DateTime<Utc>,
}

/// Everything known about a product that exists. Read it through
/// [`Product::state`]; it changes only by events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProductState {
    /// The product's id.
    pub id: Uuid,
    /// Its SKU.
    pub sku: Sku,
    /// Its URL slug.
    pub slug: Slug,
    /// Display name.
    pub name: ProductName,
    /// Description.
    pub description: Description,
    /// Category.
    pub category_id: Uuid,
    /// Tags.
    pub tags: BTreeSet<Tag>,
    /// Attributes.
    pub attributes: Attributes,
    /// Base price; its currency is the product's currency.
    pub price: Money,
    /// Variants, in the order they were added.
    pub variants: Vec<Variant>,
    /// Images, in the order they were added.
    pub images: Vec<Image>,
    /// Lifecycle status.
    pub status: ProductStatus,
    /// Whether the product is featured.
    pub featured: bool,
    /// The most recent [`Product::PRICE_HISTORY_LEN`] prices, oldest first, starting
    /// with the creation price and each variant's initial price. The full history is
    /// the event stream.
    pub price_history: Vec<PriceRecord>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// A product of the catalog, identified by its UUID. Its rules, and what the command
/// layer must enforce (SKU and slug uniqueness), are documented in
/// `catalog/product/mod.rs`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Product {
    state: Option<ProductState>,
}

impl Product {
    /// The most tags a product may carry.
    pub const MAX_TAGS: usize = 20;
    /// The most variants a product may have.
    pub const MAX_VARIANTS: usize = 100;
    /// The most images a product may have.
    pub const MAX_IMAGES: usize = 20;
    /// How many price records the state keeps (the event stream keeps them all).
    pub const PRICE_HISTORY_LEN: usize = 200;

    /// The product, or `None` before `ProductCreated`.
    #[must_use]
    pub fn state(&self) -> Option<&ProductState> {
        self.state.as_ref()
    }
}

fn check_tags(tags: &BTreeSet<Tag>) -> Result<(), ProductError> {
    if tags.len() > Product::MAX_TAGS {
        return Err(ProductError::TooManyTags {
            max: Product::MAX_TAGS,
        });
    }
    Ok(())
}

impl ProductState {
    /// The variant with this id.
    #[must_use]
    pub fn variant(&self, id: Uuid) -> Option<&Variant> {
        self.variants.iter().find(|v| v.id == id)
    }

    /// The image with this id.
    #[must_use]
    pub fn image(&self, id: Uuid) -> Option<&Image> {
        self.images.iter().find(|i| i.id == id)
    }

    /// The primary image, if there are images.
    #[must_use]
    pub fn primary_image(&self) -> Option<&Image> {
        self.images.iter().find(|i| i.primary)
    }

    fn check_price(&self, price: Money) -> Result<(), ProductError> {
        if price.is_negative() {
            return Err(ProductError::NegativePrice);
        }
        if price.currency() != self.price.currency() {
            return Err(ProductError::CurrencyMismatch {
                expected: self.price.currency(),
                got: price.currency(),
            });
        }
        Ok(())
    }

    /// While published, a product keeps positive prices (a zero price would put a free
    /// item in the storefront by accident; unpublish first to set one up).
    fn check_published_price(&self, price: Money) -> Result<(), ProductError> {
        if self.status == ProductStatus::Published && price.is_zero() {
            return Err(ProductError::PositivePriceRequired);
        }
        Ok(())
    }

    fn existing_variant(&self, id: Uuid) -> Result<&Variant, ProductError> {
        self.variant(id).ok_or(ProductError::VariantNotFound(id))
    }

    fn existing_image(&self, id: Uuid) -> Result<&Image, ProductError> {
        self.image(id).ok_or(ProductError::ImageNotFound(id))
    }

    /// Decides a command for a product that exists and is not archived.
    fn decide(&self, command: ProductCommand) -> Result<Vec<ProductEvent>, ProductError> {
        use ProductCommand as C;
        use ProductEvent as E;
        let event = match command {
            C::CreateProduct { .. } => return Err(ProductError::AlreadyCreated),
            C::UpdateProductDetails {
                name,
                description,
                category_id,
                tags,
                attributes,
                at,
            } => {
                check_tags(&tags)?;
                if name == self.name
                    && description == self.description
                    && category_id == self.category_id
                    && tags == self.tags
                    && attributes == self.attributes
                {
                    return Err(ProductError::DetailsUnchanged);
                }
                E::ProductDetailsUpdated {
                    name,
                    description,
                    category_id,
                    tags,
                    attributes,
                    at,
                }
            }
            C::ChangeSlug { slug, at } => {
                if slug == self.slug {
                    return Err(ProductError::SlugUnchanged);
                }
                E::SlugChanged {
                    old_slug: self.slug.clone(),
                    new_slug: slug,
                    at,
                }
            }
            C::ChangePrice { price, at } => {
                self.check_price(price)?;
                self.check_published_price(price)?;
                if price == self.price {
                    return Err(ProductError::PriceUnchanged);
                }
                E::PriceChanged {
                    old_price: self.price,
                    new_price: price,
                    at,
                }
            }
            C::AddVariant {
                variant_id,
                sku,
                size,
                colour,
                attributes,
                price,
                at,
            } => {
                if self.variant(variant_id).is_some() {
                    return Err(ProductError::VariantAlreadyExists(variant_id));
                }
                if self.variants.len() >= Product::MAX_VARIANTS {
                    return Err(ProductError::TooManyVariants {
                        max: Product::MAX_VARIANTS,
                    });
                }
                if sku == self.sku || self.variants.iter().any(|v| v.sku == sku) {
                    return Err(ProductError::DuplicateSku(sku));
                }
                self.check_price(price)?;
                self.check_published_price(price)?;
                E::VariantAdded {
                    variant_id,
                    sku,
                    size,
                    colour,
                    attributes,
                    price,
                    at,
                }
            }
            C::UpdateVariant {
                variant_id,
                size,
                colour,
                attributes,
                at,
            } => {
                let v = self.existing_variant(variant_id)?;
                if size == v.size && colour == v.colour && attributes == v.attributes {
                    return Err(ProductError::VariantUnchanged);
                }
                E::VariantUpdated {
                    variant_id,
                    sku: v.sku.clone(),
                    size,
                    colour,
                    attributes,
                    at,
                }
            }
            C::RemoveVariant { variant_id, at } => {
                let v = self.existing_variant(variant_id)?;
                E::VariantRemoved {
                    variant_id,
                    sku: v.sku.clone(),
                    at,
                }
            }
            C::ChangeVariantPrice {
                variant_id,
                price,
                at,
            } => {
                let v = self.existing_variant(variant_id)?;
                self.check_price(price)?;
                self.check_published_price(price)?;
                if price == v.price {
                    return Err(ProductError::PriceUnchanged);
                }
                E::VariantPriceChanged {
                    variant_id,
                    sku: v.sku.clone(),
                    old_price: v.price,
                    new_price: price,
                    at,
                }
            }
            C::AddImage {
                image_id,
                source,
                alt_text,
                primary,
                at,
            } => {
                if self.image(image_id).is_some() {
                    return Err(ProductError::ImageAlreadyExists(image_id));
                }
                if self.images.len() >= Product::MAX_IMAGES {
                    return Err(ProductError::TooManyImages {
                        max: Product::MAX_IMAGES,
                    });
                }
                E::ImageAdded {
                    image_id,
                    source,
                    alt_text,
                    // The first image is primary whatever was asked, so that exactly one
                    // image is primary whenever there are images.
                    primary: primary || self.images.is_empty(),
                    at,
                }
            }
            C::RemoveImage { image_id, at } => {
                let removed = self.existing_image(image_id)?;
                if self.status == ProductStatus::Published && self.images.len() == 1 {
                    return Err(ProductError::ImageRequired);
                }
                let promoted_primary = if removed.primary {
                    self.images.iter().find(|i| i.id != image_id).map(|i| i.id)
                } else {
                    None
                };
                E::ImageRemoved {
                    image_id,
                    promoted_primary,
                    at,
                }
            }
            C::SetPrimaryImage { image_id, at } => {
                if self.existing_image(image_id)?.primary {
                    return Err(ProductError::AlreadyPrimaryImage(image_id));
                }
                E::PrimaryImageSet {
                    image_id,
                    previous_primary: self.primary_image().map(|i| i.id),
                    at,
                }
            }
            C::PublishProduct { at } => {
                if self.status == ProductStatus::Published {
                    return Err(ProductError::AlreadyPublished);
                }
                if self.images.is_empty() {
                    return Err(ProductError::ImageRequired);
                }
                if self.price.is_zero() || self.variants.iter().any(|v| v.price.is_zero()) {
                    return Err(ProductError::PositivePriceRequired);
                }
                E::ProductPublished { at }
            }
            C::UnpublishProduct { at } => {
                if self.status != ProductStatus::Published {
                    return Err(ProductError::NotPublished);
                }
                E::ProductUnpublished { at }
            }
            C::FeatureProduct { at } => {
                if self.featured {
                    return Err(ProductError::AlreadyFeatured);
                }
                E::ProductFeatured { at }
            }
            C::UnfeatureProduct { at } => {
                if !self.featured {
                    return Err(ProductError::NotFeatured);
                }
                E::ProductUnfeatured { at }
            }
            C::ArchiveProduct { at } => {
                if self.status == ProductStatus::Published {
                    return Err(ProductError::StillPublished);
                }
                E::ProductArchived { at }
            }
        };
        Ok(vec![event])
    }

    fn record_price(&mut self, variant_id: Option<Uuid>, price: Money, at: DateTime<Utc>) {
        self.price_history.push(PriceRecord {
            variant_id,
            price,
            at,
        });
        if self.price_history.len() > Product::PRICE_HISTORY_LEN {
            let excess = self.price_history.len() - Product::PRICE_HISTORY_LEN;
            self.price_history.drain(..excess);
        }
    }

    /// Evolves an existing product by an event other than `ProductCreated`.
    fn evolve(&mut self, event: &ProductEvent) {
        use ProductEvent as E;
        match event {
            E::ProductCreated { .. } => return,
            E::ProductDetailsUpdated {
                name,
                description,
                category_id,
                tags,
                attributes,
                ..
            } => {
                self.name = name.clone();
                self.description = description.clone();
                self.category_id = *category_id;
                self.tags = tags.clone();
                self.attributes = attributes.clone();
            }
            E::SlugChanged { new_slug, .. } => self.slug = new_slug.clone(),
            E::PriceChanged { new_price, at, .. } => {
                self.price = *new_price;
                self.record_price(None, *new_price, *at);
            }
            E::VariantAdded {
                variant_id,
                sku,
                size,
                colour,
                attributes,
                price,
                at,
            } => {
                self.variants.push(Variant {
                    id: *variant_id,
                    sku: sku.clone(),
                    size: size.clone(),
                    colour: colour.clone(),
                    attributes: attributes.clone(),
                    price: *price,
                });
                self.record_price(Some(*variant_id), *price, *at);
            }
            E::VariantUpdated {
                variant_id,
                size,
                colour,
                attributes,
                ..
            } => {
                if let Some(v) = self.variants.iter_mut().find(|v| v.id == *variant_id) {
                    v.size = size.clone();
                    v.colour = colour.clone();
                    v.attributes = attributes.clone();
                }
            }
            E::VariantRemoved { variant_id, .. } => {
                self.variants.retain(|v| v.id != *variant_id);
            }
            E::VariantPriceChanged {
                variant_id,
                new_price,
                at,
                ..
            } => {
                if let Some(v) = self.variants.iter_mut().find(|v| v.id == *variant_id) {
                    v.price = *new_price;
                }
                self.record_price(Some(*variant_id), *new_price, *at);
            }
            E::ImageAdded {
                image_id,
                source,
                alt_text,
                primary,
                ..
            } => {
                if *primary {
                    for i in &mut self.images {
                        i.primary = false;
                    }
                }
                self.images.push(Image {
                    id: *image_id,
                    source: source.clone(),
                    alt_text: alt_text.clone(),
                    primary: *primary,
                });
            }
            E::ImageRemoved {
                image_id,
                promoted_primary,
                ..
            } => {
                self.images.retain(|i| i.id != *image_id);
                if let Some(p) = promoted_primary {
                    self.set_primary(*p);
                }
            }
            E::PrimaryImageSet { image_id, .. } => self.set_primary(*image_id),
            E::ProductPublished { .. } => self.status = ProductStatus::Published,
            E::ProductUnpublished { .. } => self.status = ProductStatus::Unpublished,
            E::ProductFeatured { .. } => self.featured = true,
            E::ProductUnfeatured { .. } => self.featured = false,
            E::ProductArchived { .. } => self.status = ProductStatus::Archived,
        }
        self.updated_at = event_time(event);
    }

    fn set_primary(&mut self, id: Uuid) {
        for i in &mut self.images {
            i.primary = i.id == id;
        }
    }
}

fn event_time(event: &ProductEvent) -> DateTime<Utc> {
    use ProductEvent as E;
    match event {
        E::ProductCreated { at, .. }
        | E::ProductDetailsUpdated { at, .. }
        | E::SlugChanged { at, .. }
        | E::PriceChanged { at, .. }
        | E::VariantAdded { at, .. }
        | E::VariantUpdated { at, .. }
        | E::VariantRemoved { at, .. }
        | E::VariantPriceChanged { at, .. }
        | E::ImageAdded { at, .. }
        | E::ImageRemoved { at, .. }
        | E::PrimaryImageSet { at, .. }
        | E::ProductPublished { at }
        | E::ProductUnpublished { at }
        | E::ProductFeatured { at }
        | E::ProductUnfeatured { at }
        | E::ProductArchived { at } => *at,
    }
}

impl Aggregate for Product {
    const TYPE: &'static str = "product";
    type Command = ProductCommand;
    type Event = ProductEvent;
    type Error = ProductError;

    fn handle(&self, command: ProductCommand) -> Result<Vec<ProductEvent>, ProductError> {
        let Some(state) = &self.state else {
            let ProductCommand::CreateProduct {
                product_id,
                sku,
                slug,
                name,
                description,
                category_id,
                tags,
                attributes,
                price,
                at,
            } = command
            else {
                return Err(ProductError::NotCreated);
            };
            check_tags(&tags)?;
            if price.is_negative() {
                return Err(ProductError::NegativePrice);
            }
            return Ok(vec![ProductEvent::ProductCreated {
                product_id,
                sku,
                slug,
                name,
                description,
                category_id,
                tags,
                attributes,
                price,
                at,
            }]);
        };
        if state.status == ProductStatus::Archived {
            return Err(ProductError::Archived);
        }
        state.decide(command)
    }

    fn apply(&mut self, event: &ProductEvent) {
        match (&mut self.state, event) {
            (
                None,
                ProductEvent::ProductCreated {
                    product_id,
                    sku,
                    slug,
                    name,
                    description,
                    category_id,
                    tags,
                    attributes,
                    price,
                    at,
                },
            ) => {
                self.state = Some(ProductState {
                    id: *product_id,
                    sku: sku.clone(),
                    slug: slug.clone(),
                    name: name.clone(),
                    description: description.clone(),
                    category_id: *category_id,
                    tags: tags.clone(),
                    attributes: attributes.clone(),
                    price: *price,
                    variants: Vec::new(),
                    images: Vec::new(),
                    status: ProductStatus::Draft,
                    featured: false,
                    price_history: vec![PriceRecord {
                        variant_id: None,
                        price: *price,
                        at: *at,
                    }],
                    created_at: *at,
                    updated_at: *at,
                });
            }
            (Some(state), event) => state.evolve(event),
            // Events before creation cannot come from `handle`; a fact is never refused,
            // so they are ignored.
            (None, _) => {}
        }
    }
}
