//! Staff catalogue operations: products, variants, prices, images, publication and
//! the category tree.
//!
//! Inputs are parsed into domain values before anything is dispatched, so a bad
//! field is a `BAD_USER_INPUT` naming it and records nothing. SKUs and slugs are
//! claimed by `Products` around the command: a taken one is a `CONFLICT` and leaves
//! no event and no claim. Answers come from `catalog_products` / `categories` after
//! the `catalog` / `categories` projection has applied the change.

use std::collections::BTreeSet;

use emporium_commands::CommandError;
use emporium_commands::catalog::ProductCommandError;
use emporium_domain::catalog::{
    AltText, Attributes, CategoryCommand, CategoryError, CategoryName, CategoryTree, Description,
    ImageSource, ProductCommand, ProductError, ProductName, ProductState, ProductStatus, Slug, Tag,
    VariantLabel,
};
use emporium_domain::{Currency, Money, Sku};
use uuid::Uuid;

use super::{Staff, read_error};
use crate::error::ApiError;
use crate::shop::{CategoryRow, ProductRow};

/// The projection a product answer waits for.
const CATALOG: &str = "catalog";
/// The projection a category answer waits for.
const CATEGORIES: &str = "categories";

/// One `name -> value` attribute as the client sends it.
#[derive(Debug, Clone)]
pub(crate) struct AttributeEntry {
    pub(crate) name: String,
    pub(crate) value: String,
}

/// A new product, unvalidated.
#[derive(Debug, Clone)]
pub(crate) struct NewProduct {
    pub(crate) sku: String,
    pub(crate) slug: String,
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) category_id: Uuid,
    pub(crate) tags: Vec<String>,
    pub(crate) attributes: Vec<AttributeEntry>,
    pub(crate) price_minor: i64,
    pub(crate) currency: String,
}

/// Changes to a product's descriptive details; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProductChange {
    pub(crate) slug: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) category_id: Option<Uuid>,
    pub(crate) tags: Option<Vec<String>>,
    pub(crate) attributes: Option<Vec<AttributeEntry>>,
}

/// A new variant, unvalidated.
#[derive(Debug, Clone)]
pub(crate) struct NewVariant {
    pub(crate) sku: String,
    pub(crate) size: Option<String>,
    pub(crate) colour: Option<String>,
    pub(crate) attributes: Vec<AttributeEntry>,
    pub(crate) price_minor: i64,
    pub(crate) currency: String,
}

/// A variant's options, replacing the current ones.
#[derive(Debug, Clone)]
pub(crate) struct VariantChange {
    pub(crate) size: Option<String>,
    pub(crate) colour: Option<String>,
    pub(crate) attributes: Vec<AttributeEntry>,
}

/// A category's new name and (optionally) slug.
#[derive(Debug, Clone)]
pub(crate) struct CategoryChange {
    pub(crate) name: String,
    pub(crate) slug: Option<String>,
}

/// Parses an amount and currency from the client (integer minor units, never a
/// float).
pub(crate) fn parse_money(
    amount_minor: i64,
    currency: &str,
    amount_field: &'static str,
    currency_field: &'static str,
) -> Result<Money, ApiError> {
    let currency = Currency::parse(currency)
        .map_err(|e| ApiError::bad_input(currency_field, "currency_invalid", e))?;
    if amount_minor < 0 {
        return Err(ApiError::bad_input(
            amount_field,
            "price_negative",
            "must not be negative",
        ));
    }
    Ok(Money::new(amount_minor, currency))
}

fn parse_sku(raw: &str, field: &'static str) -> Result<Sku, ApiError> {
    Sku::parse(raw).map_err(|e| ApiError::bad_input(field, "sku_format", e))
}

fn parse_slug(raw: &str, field: &'static str) -> Result<Slug, ApiError> {
    Slug::parse(raw).map_err(|e| ApiError::bad_input(field, "slug_format", e))
}

fn parse_tags(raw: &[String]) -> Result<BTreeSet<Tag>, ApiError> {
    raw.iter()
        .map(|t| Tag::parse(t).map_err(|e| ApiError::bad_input("input.tags", "tag_invalid", e)))
        .collect()
}

fn parse_attributes(raw: &[AttributeEntry], field: &'static str) -> Result<Attributes, ApiError> {
    Attributes::parse(raw.iter().map(|a| (a.name.as_str(), a.value.as_str())))
        .map_err(|e| ApiError::bad_input(field, "attributes_invalid", e))
}

fn parse_label(raw: Option<&str>, field: &'static str) -> Result<Option<VariantLabel>, ApiError> {
    raw.map(|s| VariantLabel::parse(s).map_err(|e| ApiError::bad_input(field, "text_invalid", e)))
        .transpose()
}

/// An image source: an `http(s)` URL, or an object-store key.
fn parse_image_source(raw: &str) -> Result<ImageSource, ApiError> {
    let lower = raw.trim().to_ascii_lowercase();
    let parsed = if lower.starts_with("http://") || lower.starts_with("https://") {
        ImageSource::url(raw)
    } else {
        ImageSource::key(raw)
    };
    parsed.map_err(|e| ApiError::bad_input("source", "image_source", e))
}

/// Refusals that only say the product is already as asked: answered with the
/// current state.
fn is_no_op(e: &ProductError) -> bool {
    matches!(
        e,
        ProductError::PriceUnchanged
            | ProductError::DetailsUnchanged
            | ProductError::SlugUnchanged
            | ProductError::VariantUnchanged
            | ProductError::AlreadyPrimaryImage(_)
            | ProductError::AlreadyPublished
            | ProductError::NotPublished
            | ProductError::AlreadyFeatured
            | ProductError::NotFeatured
    )
}

fn product_error(e: ProductCommandError) -> ApiError {
    match e {
        ProductCommandError::SkuTaken(sku) => ApiError::Taken {
            field: "input.sku",
            message: format!("sku `{sku}` is already in use"),
        },
        ProductCommandError::SlugTaken(slug) => ApiError::Taken {
            field: "input.slug",
            message: format!("slug `{slug}` is already in use"),
        },
        ProductCommandError::Rejected(e) => rejected_product(e),
        ProductCommandError::Conflict(_) => ApiError::Conflict,
        ProductCommandError::Unexpected(e) => ApiError::Internal(e),
    }
}

fn rejected_product(e: ProductError) -> ApiError {
    let message = e.to_string();
    match e {
        ProductError::NotCreated => ApiError::NotFound { what: "product" },
        ProductError::VariantNotFound(_) => ApiError::NotFound { what: "variant" },
        ProductError::ImageNotFound(_) => ApiError::NotFound { what: "image" },
        ProductError::DuplicateSku(_) => ApiError::Taken {
            field: "input.sku",
            message,
        },
        ProductError::NegativePrice => {
            ApiError::bad_input("price.amountMinor", "price_negative", message)
        }
        ProductError::CurrencyMismatch { .. } => {
            ApiError::bad_input("price.currency", "currency_mismatch", message)
        }
        ProductError::TooManyTags { .. } => ApiError::bad_input("input.tags", "tags_max", message),
        ProductError::Archived => ApiError::Precondition {
            rule: "product_archived",
            message,
        },
        ProductError::TooManyVariants { .. } => ApiError::Precondition {
            rule: "variants_max",
            message,
        },
        ProductError::TooManyImages { .. } => ApiError::Precondition {
            rule: "images_max",
            message,
        },
        ProductError::ImageRequired => ApiError::Precondition {
            rule: "image_required",
            message,
        },
        ProductError::PositivePriceRequired => ApiError::Precondition {
            rule: "positive_price_required",
            message,
        },
        ProductError::StillPublished => ApiError::Precondition {
            rule: "product_published",
            message,
        },
        other => ApiError::internal(anyhow::anyhow!("product refused: {other}")),
    }
}

fn category_error(e: CommandError<CategoryError>) -> ApiError {
    match e {
        CommandError::Rejected(e) => {
            let message = e.to_string();
            match e {
                CategoryError::CategoryNotFound(_) => ApiError::NotFound { what: "category" },
                CategoryError::ParentNotFound(_) => {
                    ApiError::bad_input("parentId", "category_unknown", message)
                }
                CategoryError::SlugTaken(_) => ApiError::Taken {
                    field: "slug",
                    message,
                },
                CategoryError::WouldCreateCycle { .. } => {
                    ApiError::bad_input("parentId", "category_cycle", message)
                }
                CategoryError::TooDeep { .. } => {
                    ApiError::bad_input("parentId", "category_depth", message)
                }
                CategoryError::HasChildren(_) => ApiError::Precondition {
                    rule: "category_has_children",
                    message,
                },
                other => ApiError::internal(anyhow::anyhow!("category refused: {other}")),
            }
        }
        CommandError::Conflict { .. } => ApiError::Conflict,
        CommandError::Unexpected(e) => ApiError::Internal(e),
    }
}

impl Staff {
    /// Dispatches a product command; a refusal meaning "already so" records nothing
    /// and is not an error. Returns the position to wait for.
    async fn run_product(
        &self,
        staff_id: Uuid,
        product_id: Uuid,
        command: ProductCommand,
    ) -> Result<Option<i64>, ApiError> {
        match self
            .products
            .execute(product_id, command, &self.metadata(staff_id))
            .await
        {
            Ok(committed) => Ok(committed.position),
            Err(ProductCommandError::Rejected(e)) if is_no_op(&e) => Ok(None),
            Err(e) => Err(product_error(e)),
        }
    }

    /// The product as the read model has it once it shows `position`.
    async fn product_answer(
        &self,
        product_id: Uuid,
        position: Option<i64>,
    ) -> Result<ProductRow, ApiError> {
        self.shop.read_your_writes(CATALOG, position).await?;
        self.shop
            .product(Some(product_id), None, true)
            .await?
            .ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!(
                    "product {product_id} is not in the read model yet"
                ))
            })
    }

    /// The product's current state (`NOT_FOUND` when there is none).
    async fn product_state(&self, product_id: Uuid) -> Result<ProductState, ApiError> {
        let product = self
            .products
            .load(product_id)
            .await
            .map_err(|e| ApiError::internal(anyhow::anyhow!("load product: {e}")))?;
        product
            .state()
            .cloned()
            .ok_or(ApiError::NotFound { what: "product" })
    }

    /// The category tree as the event store has it.
    async fn tree(&self) -> Result<CategoryTree, ApiError> {
        self.categories
            .load(CategoryTree::ID)
            .await
            .map_err(category_error)
    }

    async fn ensure_category(&self, id: Uuid, field: &'static str) -> Result<(), ApiError> {
        if self.tree().await?.get(id).is_some() {
            Ok(())
        } else {
            Err(ApiError::bad_input(
                field,
                "category_unknown",
                "no such category",
            ))
        }
    }

    /// Creates a draft product.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` naming the field, `CONFLICT` for a SKU or slug in use.
    pub(crate) async fn create_product(
        &self,
        staff_id: Uuid,
        input: NewProduct,
    ) -> Result<ProductRow, ApiError> {
        let command_at = self.clock.now();
        let product_id = Uuid::new_v4();
        let command = ProductCommand::CreateProduct {
            product_id,
            sku: parse_sku(&input.sku, "input.sku")?,
            slug: parse_slug(&input.slug, "input.slug")?,
            name: ProductName::parse(&input.name)
                .map_err(|e| ApiError::bad_input("input.name", "text_invalid", e))?,
            description: Description::parse(&input.description)
                .map_err(|e| ApiError::bad_input("input.description", "text_invalid", e))?,
            category_id: input.category_id,
            tags: parse_tags(&input.tags)?,
            attributes: parse_attributes(&input.attributes, "input.attributes")?,
            price: parse_money(
                input.price_minor,
                &input.currency,
                "input.price.amountMinor",
                "input.price.currency",
            )?,
            at: command_at,
        };
        self.ensure_category(input.category_id, "input.categoryId")
            .await?;
        let position = self.run_product(staff_id, product_id, command).await?;
        self.product_answer(product_id, position).await
    }

    /// Changes a product's details and slug (the slug first: it is the part that can
    /// be refused as taken).
    ///
    /// # Errors
    /// `NOT_FOUND`, `BAD_USER_INPUT`, `CONFLICT` for a slug in use.
    pub(crate) async fn update_product(
        &self,
        staff_id: Uuid,
        product_id: Uuid,
        change: ProductChange,
    ) -> Result<ProductRow, ApiError> {
        let state = self.product_state(product_id).await?;
        let slug = change
            .slug
            .as_deref()
            .map(|s| parse_slug(s, "input.slug"))
            .transpose()?;
        let name = match &change.name {
            Some(n) => ProductName::parse(n)
                .map_err(|e| ApiError::bad_input("input.name", "text_invalid", e))?,
            None => state.name.clone(),
        };
        let description = match &change.description {
            Some(d) => Description::parse(d)
                .map_err(|e| ApiError::bad_input("input.description", "text_invalid", e))?,
            None => state.description.clone(),
        };
        let tags = match &change.tags {
            Some(t) => parse_tags(t)?,
            None => state.tags.clone(),
        };
        let attributes = match &change.attributes {
            Some(a) => parse_attributes(a, "input.attributes")?,
            None => state.attributes.clone(),
        };
        let category_id = change.category_id.unwrap_or(state.category_id);
        if category_id != state.category_id {
            self.ensure_category(category_id, "input.categoryId")
                .await?;
        }
        let mut position = None;
        if let Some(slug) = slug.filter(|s| *s != state.slug) {
            let at = self.clock.now();
            position = self
                .run_product(
                    staff_id,
                    product_id,
                    ProductCommand::ChangeSlug { slug, at },
                )
                .await?
                .or(position);
        }
        let unchanged = name == state.name
            && description == state.description
            && tags == state.tags
            && attributes == state.attributes
            && category_id == state.category_id;
        if !unchanged {
            let at = self.clock.now();
            position = self
                .run_product(
                    staff_id,
                    product_id,
                    ProductCommand::UpdateProductDetails {
                        name,
                        description,
                        category_id,
                        tags,
                        attributes,
                        at,
                    },
                )
                .await?
                .or(position);
        }
        self.product_answer(product_id, position).await
    }

    /// Runs one product command built from the clock's time and answers the product.
    ///
    /// # Errors
    /// As the command is refused.
    pub(crate) async fn change_product(
        &self,
        staff_id: Uuid,
        product_id: Uuid,
        command: impl FnOnce(chrono::DateTime<chrono::Utc>) -> ProductCommand,
    ) -> Result<ProductRow, ApiError> {
        let position = self
            .run_product(staff_id, product_id, command(self.clock.now()))
            .await?;
        self.product_answer(product_id, position).await
    }

    /// Changes the base price.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` for a negative amount or another currency.
    pub(crate) async fn change_price(
        &self,
        staff_id: Uuid,
        product_id: Uuid,
        amount_minor: i64,
        currency: &str,
    ) -> Result<ProductRow, ApiError> {
        let price = parse_money(
            amount_minor,
            currency,
            "price.amountMinor",
            "price.currency",
        )?;
        self.change_product(staff_id, product_id, |at| ProductCommand::ChangePrice {
            price,
            at,
        })
        .await
    }

    /// Adds a variant with its own SKU and price.
    ///
    /// # Errors
    /// `BAD_USER_INPUT`, `CONFLICT` for a SKU in use.
    pub(crate) async fn add_variant(
        &self,
        staff_id: Uuid,
        product_id: Uuid,
        input: NewVariant,
    ) -> Result<ProductRow, ApiError> {
        let sku = parse_sku(&input.sku, "input.sku")?;
        let size = parse_label(input.size.as_deref(), "input.size")?;
        let colour = parse_label(input.colour.as_deref(), "input.colour")?;
        let attributes = parse_attributes(&input.attributes, "input.attributes")?;
        let price = parse_money(
            input.price_minor,
            &input.currency,
            "input.price.amountMinor",
            "input.price.currency",
        )?;
        // A missing product is NOT_FOUND before any SKU is claimed.
        self.product_state(product_id).await?;
        let variant_id = Uuid::new_v4();
        self.change_product(staff_id, product_id, |at| ProductCommand::AddVariant {
            variant_id,
            sku,
            size,
            colour,
            attributes,
            price,
            at,
        })
        .await
    }

    /// Replaces a variant's options.
    ///
    /// # Errors
    /// `NOT_FOUND` for an unknown variant, `BAD_USER_INPUT`.
    pub(crate) async fn update_variant(
        &self,
        staff_id: Uuid,
        product_id: Uuid,
        variant_id: Uuid,
        change: VariantChange,
    ) -> Result<ProductRow, ApiError> {
        let size = parse_label(change.size.as_deref(), "input.size")?;
        let colour = parse_label(change.colour.as_deref(), "input.colour")?;
        let attributes = parse_attributes(&change.attributes, "input.attributes")?;
        self.change_product(staff_id, product_id, |at| ProductCommand::UpdateVariant {
            variant_id,
            size,
            colour,
            attributes,
            at,
        })
        .await
    }

    /// Changes a variant's price.
    ///
    /// # Errors
    /// `NOT_FOUND`, `BAD_USER_INPUT`.
    pub(crate) async fn change_variant_price(
        &self,
        staff_id: Uuid,
        product_id: Uuid,
        variant_id: Uuid,
        amount_minor: i64,
        currency: &str,
    ) -> Result<ProductRow, ApiError> {
        let price = parse_money(
            amount_minor,
            currency,
            "price.amountMinor",
            "price.currency",
        )?;
        self.change_product(staff_id, product_id, |at| {
            ProductCommand::ChangeVariantPrice {
                variant_id,
                price,
                at,
            }
        })
        .await
    }

    /// Adds an image (a URL or an object-store key).
    ///
    /// # Errors
    /// `BAD_USER_INPUT`, `FAILED_PRECONDITION` when the product has its maximum.
    pub(crate) async fn add_image(
        &self,
        staff_id: Uuid,
        product_id: Uuid,
        source: &str,
        alt_text: &str,
        primary: bool,
    ) -> Result<ProductRow, ApiError> {
        let source = parse_image_source(source)?;
        let alt_text = AltText::parse(alt_text)
            .map_err(|e| ApiError::bad_input("altText", "text_invalid", e))?;
        let image_id = Uuid::new_v4();
        self.change_product(staff_id, product_id, |at| ProductCommand::AddImage {
            image_id,
            source,
            alt_text,
            primary,
            at,
        })
        .await
    }

    /// Retires a product: unpublished first when it is published, then archived.
    ///
    /// # Errors
    /// `NOT_FOUND`; `FAILED_PRECONDITION` when it is archived already.
    pub(crate) async fn archive_product(
        &self,
        staff_id: Uuid,
        product_id: Uuid,
    ) -> Result<ProductRow, ApiError> {
        let state = self.product_state(product_id).await?;
        let mut position = None;
        if state.status == ProductStatus::Published {
            let at = self.clock.now();
            position = self
                .run_product(
                    staff_id,
                    product_id,
                    ProductCommand::UnpublishProduct { at },
                )
                .await?;
        }
        let at = self.clock.now();
        position = self
            .run_product(staff_id, product_id, ProductCommand::ArchiveProduct { at })
            .await?
            .or(position);
        self.product_answer(product_id, position).await
    }

    // Categories.

    async fn run_category(
        &self,
        staff_id: Uuid,
        command: CategoryCommand,
    ) -> Result<Option<i64>, ApiError> {
        match self
            .categories
            .execute(CategoryTree::ID, command, &self.metadata(staff_id))
            .await
        {
            Ok(committed) => Ok(committed.position),
            Err(CommandError::Rejected(
                CategoryError::CategoryUnchanged | CategoryError::AlreadyUnderParent,
            )) => Ok(None),
            Err(e) => Err(category_error(e)),
        }
    }

    /// Every category once the `categories` projection shows `position`.
    async fn categories_answer(&self, position: Option<i64>) -> Result<Vec<CategoryRow>, ApiError> {
        self.shop.read_your_writes(CATEGORIES, position).await?;
        self.shop.categories().await
    }

    /// Creates a category at the root or under `parent_id`. Returns its id and every
    /// category.
    ///
    /// # Errors
    /// `BAD_USER_INPUT`, `CONFLICT` for a slug in use.
    pub(crate) async fn create_category(
        &self,
        staff_id: Uuid,
        name: &str,
        slug: &str,
        parent_id: Option<Uuid>,
    ) -> Result<(Uuid, Vec<CategoryRow>), ApiError> {
        let name = CategoryName::parse(name)
            .map_err(|e| ApiError::bad_input("name", "text_invalid", e))?;
        let slug = parse_slug(slug, "slug")?;
        let category_id = Uuid::new_v4();
        let position = self
            .run_category(
                staff_id,
                CategoryCommand::CreateCategory {
                    category_id,
                    name,
                    slug,
                    parent_id,
                    at: self.clock.now(),
                },
            )
            .await?;
        Ok((category_id, self.categories_answer(position).await?))
    }

    /// Renames a category (and changes its slug when one is given).
    ///
    /// # Errors
    /// `NOT_FOUND`, `BAD_USER_INPUT`, `CONFLICT` for a slug in use.
    pub(crate) async fn rename_category(
        &self,
        staff_id: Uuid,
        category_id: Uuid,
        change: CategoryChange,
    ) -> Result<Vec<CategoryRow>, ApiError> {
        let name = CategoryName::parse(&change.name)
            .map_err(|e| ApiError::bad_input("name", "text_invalid", e))?;
        let slug = match change.slug.as_deref() {
            Some(s) => parse_slug(s, "slug")?,
            None => self
                .tree()
                .await?
                .get(category_id)
                .map(|c| c.slug.clone())
                .ok_or(ApiError::NotFound { what: "category" })?,
        };
        let position = self
            .run_category(
                staff_id,
                CategoryCommand::RenameCategory {
                    category_id,
                    name,
                    slug,
                    at: self.clock.now(),
                },
            )
            .await?;
        self.categories_answer(position).await
    }

    /// Moves a category with its subtree (`None`: to the root).
    ///
    /// # Errors
    /// `NOT_FOUND`; `BAD_USER_INPUT` for a cycle, an unknown parent or too deep a tree.
    pub(crate) async fn move_category(
        &self,
        staff_id: Uuid,
        category_id: Uuid,
        new_parent_id: Option<Uuid>,
    ) -> Result<Vec<CategoryRow>, ApiError> {
        let position = self
            .run_category(
                staff_id,
                CategoryCommand::MoveCategory {
                    category_id,
                    new_parent_id,
                    at: self.clock.now(),
                },
            )
            .await?;
        self.categories_answer(position).await
    }

    /// Deletes a category without children that no live product is listed under.
    ///
    /// # Errors
    /// `NOT_FOUND`; `FAILED_PRECONDITION` when it has children or products.
    pub(crate) async fn delete_category(
        &self,
        staff_id: Uuid,
        category_id: Uuid,
    ) -> Result<Vec<CategoryRow>, ApiError> {
        if self.tree().await?.get(category_id).is_none() {
            return Err(ApiError::NotFound { what: "category" });
        }
        // The tree cannot see products; the catalogue read model can (it lags by
        // at most the projection's delay).
        let in_use: Option<i32> = self
            .read
            .scalar_optional(
                "SELECT 1 FROM catalog_products WHERE category_id = $1 AND status <> 'archived' LIMIT 1",
                emporium_projections::args![category_id],
            )
            .await
            .map_err(|e| read_error(e, "look up products of a category"))?;
        if in_use.is_some() {
            return Err(ApiError::Precondition {
                rule: "category_in_use",
                message: "products are listed under this category; move or archive them first"
                    .to_owned(),
            });
        }
        let position = self
            .run_category(
                staff_id,
                CategoryCommand::DeleteCategory {
                    category_id,
                    at: self.clock.now(),
                },
            )
            .await?;
        self.categories_answer(position).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_inputs_name_the_broken_rule() {
        match parse_money(-1, "EUR", "a", "c") {
            Err(ApiError::BadUserInput { field, rule, .. }) => {
                assert_eq!((field, rule), ("a", "price_negative"));
            }
            other => panic!("{other:?}"),
        }
        match parse_money(1, "EURO", "a", "c") {
            Err(ApiError::BadUserInput { field, rule, .. }) => {
                assert_eq!((field, rule), ("c", "currency_invalid"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse_money(1250, "eur", "a", "c").unwrap(),
            Money::new(1250, Currency::EUR)
        );
    }

    #[test]
    fn image_sources_are_urls_or_keys() {
        assert!(matches!(
            parse_image_source("https://cdn.example/x.jpg"),
            Ok(ImageSource::Url(_))
        ));
        assert!(matches!(
            parse_image_source("products/1/x.jpg"),
            Ok(ImageSource::Key(_))
        ));
        assert!(parse_image_source("has space").is_err());
    }
}
