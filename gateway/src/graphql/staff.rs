//! The back office: staff catalogue, category, stock and order operations, and the
//! staff listings (customers, every order, inventory levels, low stock).
//!
//! Every field here takes `RoleGuard::staff()`: a customer gets `FORBIDDEN` and an
//! anonymous caller `UNAUTHENTICATED` before anything runs. Money arrives as integer
//! minor units with a currency, never as a float. Mutations answer with the new
//! state, read back once the read model has applied the change.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::ContextExt;
use super::customer::{Order, OrderStatus};
use super::guard::RoleGuard;
use super::shop::{Category, PageInfo, Product, category_node, category_roots};
use crate::error::ApiError;
use crate::staff::{
    AttributeEntry, CategoryChange, CustomerFilter, CustomerRow, InventoryFilter, LevelRow,
    NewProduct, NewVariant, ProductChange, Staff, StaffOrderFilter, StaffOrderRow, StockReason,
    VariantChange,
};

fn staff<'a>(ctx: &Context<'a>) -> Result<&'a Arc<Staff>, ApiError> {
    ctx.data::<Arc<Staff>>()
        .map_err(|_| ApiError::internal(anyhow::anyhow!("staff service missing")))
}

/// An id argument that names nothing when it is not a UUID (as a missing one would).
fn uuid_arg(id: &ID, what: &'static str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id.as_str()).map_err(|_| ApiError::NotFound { what })
}

/// An id inside an input that must name something: a malformed one is bad input.
fn uuid_field(id: &ID, field: &'static str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id.as_str()).map_err(|_| ApiError::bad_input(field, "id_format", "not an id"))
}

/// An amount of money: integer minor units (cents for EUR) and an ISO 4217 code.
#[derive(Debug, Clone, InputObject)]
pub(crate) struct MoneyInput {
    /// Minor units; never negative.
    amount_minor: i64,
    /// ISO 4217 code, e.g. `EUR`.
    currency: String,
}

/// One `name -> value` specification.
#[derive(Debug, Clone, InputObject)]
pub(crate) struct AttributeInput {
    /// Attribute name, e.g. `material`.
    name: String,
    /// Its value, e.g. `cotton`.
    value: String,
}

fn attributes(input: Vec<AttributeInput>) -> Vec<AttributeEntry> {
    input
        .into_iter()
        .map(|a| AttributeEntry {
            name: a.name,
            value: a.value,
        })
        .collect()
}

/// A new product (created as a draft).
#[derive(Debug, Clone, InputObject)]
pub(crate) struct CreateProductInput {
    /// The product's own SKU; unique across products and variants.
    sku: String,
    /// URL slug; unique across products.
    slug: String,
    /// Display name.
    name: String,
    /// Long description.
    #[graphql(default)]
    description: String,
    /// The category it is listed under.
    category_id: ID,
    /// Labels.
    #[graphql(default)]
    tags: Vec<String>,
    /// Specifications.
    #[graphql(default)]
    attributes: Vec<AttributeInput>,
    /// Base price; its currency is the product's for good.
    price: MoneyInput,
}

/// Changes to a product's details; an omitted field keeps its value.
#[derive(Debug, Clone, Default, InputObject)]
pub(crate) struct UpdateProductInput {
    /// New URL slug (the old one keeps finding the product).
    slug: Option<String>,
    /// New display name.
    name: Option<String>,
    /// New description.
    description: Option<String>,
    /// New category.
    category_id: Option<ID>,
    /// New labels (replacing the old ones).
    tags: Option<Vec<String>>,
    /// New specifications (replacing the old ones).
    attributes: Option<Vec<AttributeInput>>,
}

/// A new variant.
#[derive(Debug, Clone, InputObject)]
pub(crate) struct AddVariantInput {
    /// Its SKU; unique across products and variants, never changes.
    sku: String,
    /// Size, if sized.
    size: Option<String>,
    /// Colour, if coloured.
    colour: Option<String>,
    /// Further options.
    #[graphql(default)]
    attributes: Vec<AttributeInput>,
    /// Its price, in the product's currency.
    price: MoneyInput,
}

/// A variant's options, replacing the current ones (the SKU and price change
/// elsewhere).
#[derive(Debug, Clone, InputObject)]
pub(crate) struct UpdateVariantInput {
    /// Size (null: none).
    size: Option<String>,
    /// Colour (null: none).
    colour: Option<String>,
    /// Further options.
    #[graphql(default)]
    attributes: Vec<AttributeInput>,
}

/// Why stock was adjusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub(crate) enum StockAdjustmentReason {
    /// Damaged, no longer sellable.
    Damaged,
    /// Went missing.
    Lost,
    /// Turned up.
    Found,
    /// A count disagreed with the books.
    Recount,
    /// Anything else.
    Other,
}

impl From<StockAdjustmentReason> for StockReason {
    fn from(r: StockAdjustmentReason) -> Self {
        match r {
            StockAdjustmentReason::Damaged => Self::Damaged,
            StockAdjustmentReason::Lost => Self::Lost,
            StockAdjustmentReason::Found => Self::Found,
            StockAdjustmentReason::Recount => Self::Recount,
            StockAdjustmentReason::Other => Self::Other,
        }
    }
}

/// A SKU's stock.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct InventoryLevel {
    /// The SKU.
    sku: String,
    /// The product it belongs to (null while the catalogue read model has not seen
    /// it).
    product_id: Option<ID>,
    /// Units in the warehouse.
    on_hand: i64,
    /// Units set aside for orders.
    reserved: i64,
    /// On hand minus reserved.
    available: i64,
    /// Alerts fire below this (0: off).
    low_stock_threshold: i64,
    /// Whether available is below the threshold.
    low_stock: bool,
    /// When it last changed.
    updated_at: DateTime<Utc>,
}

impl From<LevelRow> for InventoryLevel {
    fn from(l: LevelRow) -> Self {
        Self {
            sku: l.sku,
            product_id: l.product_id.map(|p| ID(p.to_string())),
            on_hand: l.on_hand,
            reserved: l.reserved,
            available: l.available,
            low_stock_threshold: l.low_stock_threshold,
            low_stock: l.low_stock,
            updated_at: l.updated_at,
        }
    }
}

/// A level and where the next page starts after it.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct InventoryLevelEdge {
    /// Opaque; pass as `after`.
    cursor: String,
    /// The level.
    node: InventoryLevel,
}

/// A page of inventory levels, by SKU.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct InventoryLevelConnection {
    /// The levels with cursors.
    edges: Vec<InventoryLevelEdge>,
    /// The levels.
    nodes: Vec<InventoryLevel>,
    /// Paging.
    page_info: PageInfo,
}

/// Which levels to list.
#[derive(Debug, Clone, Default, InputObject)]
pub(crate) struct InventoryFilterInput {
    /// SKUs starting with this.
    sku_prefix: Option<String>,
    /// Only SKUs below their threshold.
    #[graphql(default)]
    low_stock_only: bool,
}

/// An order with what only staff see.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct StaffOrder {
    /// The order as its customer sees it.
    order: Order,
    /// The customer.
    customer_id: ID,
    /// The fraud gate's score, 0 to 100 (null before it ran).
    risk_score: Option<i32>,
    /// The payment, once one was made.
    payment_id: Option<ID>,
}

impl From<StaffOrderRow> for StaffOrder {
    fn from(r: StaffOrderRow) -> Self {
        Self {
            order: r.order.into(),
            customer_id: ID(r.customer_id.to_string()),
            risk_score: r.risk_score,
            payment_id: r.payment_id.map(|p| ID(p.to_string())),
        }
    }
}

/// An order and where the next page starts after it.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct StaffOrderEdge {
    /// Opaque; pass as `after`.
    cursor: String,
    /// The order.
    node: StaffOrder,
}

/// A page of orders, newest first.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct StaffOrderConnection {
    /// The orders with cursors.
    edges: Vec<StaffOrderEdge>,
    /// The orders.
    nodes: Vec<StaffOrder>,
    /// Paging.
    page_info: PageInfo,
}

/// Which orders to list; every field narrows it.
#[derive(Debug, Clone, Default, InputObject)]
pub(crate) struct OrderFilterInput {
    /// In this status.
    status: Option<OrderStatus>,
    /// Of this customer.
    customer_id: Option<ID>,
    /// Placed at or after.
    placed_from: Option<DateTime<Utc>>,
    /// Placed before.
    placed_to: Option<DateTime<Utc>>,
}

fn status_text(s: OrderStatus) -> Result<&'static str, ApiError> {
    Ok(match s {
        OrderStatus::Pending => "pending",
        OrderStatus::Reserved => "reserved",
        OrderStatus::HeldForReview => "held_for_review",
        OrderStatus::AwaitingPayment => "awaiting_payment",
        OrderStatus::Paid => "paid",
        OrderStatus::Shipped => "shipped",
        OrderStatus::Delivered => "delivered",
        OrderStatus::Cancelled => "cancelled",
        OrderStatus::Other => {
            return Err(ApiError::bad_input(
                "filter.status",
                "status_filter",
                "OTHER is not a status to filter by",
            ));
        }
    })
}

/// A customer account as staff see it (never credentials).
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct Customer {
    /// The user id.
    id: ID,
    /// E-mail address.
    email: String,
    /// Whether it was verified.
    email_verified: bool,
    /// Given name.
    first_name: String,
    /// Family name.
    last_name: Option<String>,
    /// Contact phone.
    phone: Option<String>,
    /// `customer`, `staff` or `admin`.
    role: String,
    /// False once deactivated.
    active: bool,
    /// Addresses in the address book.
    address_count: i64,
    /// When the account was created.
    registered_at: DateTime<Utc>,
}

impl From<CustomerRow> for Customer {
    fn from(c: CustomerRow) -> Self {
        Self {
            id: ID(c.user_id.to_string()),
            email: c.email,
            email_verified: c.email_verified,
            first_name: c.first_name,
            last_name: c.last_name,
            phone: c.phone,
            role: c.role,
            active: c.active,
            address_count: c.address_count,
            registered_at: c.registered_at,
        }
    }
}

/// A customer and where the next page starts after it.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct CustomerEdge {
    /// Opaque; pass as `after`.
    cursor: String,
    /// The customer.
    node: Customer,
}

/// A page of customers, newest first.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct CustomerConnection {
    /// The customers with cursors.
    edges: Vec<CustomerEdge>,
    /// The customers.
    nodes: Vec<Customer>,
    /// Paging.
    page_info: PageInfo,
}

/// Which customers to list.
#[derive(Debug, Clone, Default, InputObject)]
pub(crate) struct CustomerFilterInput {
    /// E-mail or name contains this (case-insensitive).
    search: Option<String>,
    /// With this role (`customer`, `staff`, `admin`).
    role: Option<String>,
}

/// Builds a connection's edges, nodes and page info from `(cursor, row)` pairs.
macro_rules! connection {
    ($conn:ident, $edge:ident, $items:expr, $has_next:expr) => {{
        let edges: Vec<$edge> = $items
            .into_iter()
            .map(|(cursor, row)| $edge {
                cursor,
                node: row.into(),
            })
            .collect();
        $conn {
            page_info: PageInfo::new($has_next, edges.last().map(|e| e.cursor.clone())),
            nodes: edges.iter().map(|e| e.node.clone()).collect(),
            edges,
        }
    }};
}

/// Staff listings.
#[derive(Debug, Default)]
pub(crate) struct StaffQuery;

#[Object]
impl StaffQuery {
    /// Customer accounts, newest first (keyset pagination; at most 100 a page).
    #[graphql(guard = "RoleGuard::staff()")]
    async fn customers(
        &self,
        ctx: &Context<'_>,
        filter: Option<CustomerFilterInput>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<CustomerConnection> {
        let filter = filter.unwrap_or_default();
        let page = staff(ctx)?
            .customers(
                &CustomerFilter {
                    search: filter.search,
                    role: filter.role.map(|r| r.trim().to_ascii_lowercase()),
                },
                i64::from(first),
                after.as_deref(),
            )
            .await?;
        Ok(connection!(
            CustomerConnection,
            CustomerEdge,
            page.items,
            page.has_next_page
        ))
    }

    /// Every order, newest first, filtered by status, customer and placement date.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn orders(
        &self,
        ctx: &Context<'_>,
        filter: Option<OrderFilterInput>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<StaffOrderConnection> {
        let filter = filter.unwrap_or_default();
        let filter = StaffOrderFilter {
            status: filter
                .status
                .map(status_text)
                .transpose()?
                .map(ToOwned::to_owned),
            customer_id: filter
                .customer_id
                .as_ref()
                .map(|id| uuid_field(id, "filter.customerId"))
                .transpose()?,
            placed_from: filter.placed_from,
            placed_to: filter.placed_to,
        };
        let page = staff(ctx)?
            .all_orders(&filter, i64::from(first), after.as_deref())
            .await?;
        Ok(connection!(
            StaffOrderConnection,
            StaffOrderEdge,
            page.items,
            page.has_next_page
        ))
    }

    /// Any order by id, with its staff-only fields (null when there is none).
    #[graphql(guard = "RoleGuard::staff()")]
    async fn staff_order(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<StaffOrder>> {
        let Ok(id) = Uuid::parse_str(id.as_str()) else {
            return Ok(None);
        };
        Ok(staff(ctx)?.order(id).await?.map(StaffOrder::from))
    }

    /// Stock per SKU, by SKU (keyset pagination; at most 100 a page).
    #[graphql(guard = "RoleGuard::staff()")]
    async fn inventory_levels(
        &self,
        ctx: &Context<'_>,
        filter: Option<InventoryFilterInput>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<InventoryLevelConnection> {
        let filter = filter.unwrap_or_default();
        let page = staff(ctx)?
            .inventory_levels(
                &InventoryFilter {
                    sku_prefix: filter.sku_prefix,
                    low_stock_only: filter.low_stock_only,
                },
                i64::from(first),
                after.as_deref(),
            )
            .await?;
        Ok(connection!(
            InventoryLevelConnection,
            InventoryLevelEdge,
            page.items,
            page.has_next_page
        ))
    }

    /// SKUs whose available stock is below their threshold, least available first.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn low_stock(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i32,
    ) -> async_graphql::Result<Vec<InventoryLevel>> {
        let rows = staff(ctx)?.low_stock(i64::from(first)).await?;
        Ok(rows.into_iter().map(InventoryLevel::from).collect())
    }
}

/// Staff changes; each answers with the new state from the read model.
#[derive(Debug, Default)]
pub(crate) struct StaffMutation;

#[Object]
impl StaffMutation {
    /// Creates a draft product (`CONFLICT` when its SKU or slug is in use).
    #[graphql(guard = "RoleGuard::staff()")]
    async fn create_product(
        &self,
        ctx: &Context<'_>,
        input: CreateProductInput,
    ) -> async_graphql::Result<Product> {
        let viewer = ctx.viewer()?;
        let input = NewProduct {
            category_id: uuid_field(&input.category_id, "input.categoryId")?,
            sku: input.sku,
            slug: input.slug,
            name: input.name,
            description: input.description,
            tags: input.tags,
            attributes: attributes(input.attributes),
            price_minor: input.price.amount_minor,
            currency: input.price.currency,
        };
        Ok(staff(ctx)?
            .create_product(viewer.user_id, input)
            .await?
            .into())
    }

    /// Changes a product's details and slug.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn update_product(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateProductInput,
    ) -> async_graphql::Result<Product> {
        let viewer = ctx.viewer()?;
        let id = uuid_arg(&id, "product")?;
        let change = ProductChange {
            category_id: input
                .category_id
                .as_ref()
                .map(|c| uuid_field(c, "input.categoryId"))
                .transpose()?,
            slug: input.slug,
            name: input.name,
            description: input.description,
            tags: input.tags,
            attributes: input.attributes.map(attributes),
        };
        Ok(staff(ctx)?
            .update_product(viewer.user_id, id, change)
            .await?
            .into())
    }

    /// Retires a product for good (unpublishing it first); it stays readable by
    /// staff with status `ARCHIVED`.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn delete_product(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Product> {
        let viewer = ctx.viewer()?;
        let id = uuid_arg(&id, "product")?;
        Ok(staff(ctx)?
            .archive_product(viewer.user_id, id)
            .await?
            .into())
    }

    /// Changes a product's base price.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn change_product_price(
        &self,
        ctx: &Context<'_>,
        id: ID,
        price: MoneyInput,
    ) -> async_graphql::Result<Product> {
        let viewer = ctx.viewer()?;
        let id = uuid_arg(&id, "product")?;
        Ok(staff(ctx)?
            .change_price(viewer.user_id, id, price.amount_minor, &price.currency)
            .await?
            .into())
    }

    /// Makes a product visible in the storefront (it needs an image and positive
    /// prices).
    #[graphql(guard = "RoleGuard::staff()")]
    async fn publish_product(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Product> {
        product_command(ctx, &id, |at| {
            emporium_domain::catalog::ProductCommand::PublishProduct { at }
        })
        .await
    }

    /// Takes a product out of the storefront.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn unpublish_product(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Product> {
        product_command(ctx, &id, |at| {
            emporium_domain::catalog::ProductCommand::UnpublishProduct { at }
        })
        .await
    }

    /// Marks a product as featured.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn feature_product(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Product> {
        product_command(ctx, &id, |at| {
            emporium_domain::catalog::ProductCommand::FeatureProduct { at }
        })
        .await
    }

    /// Removes a product's featured mark.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn unfeature_product(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Product> {
        product_command(ctx, &id, |at| {
            emporium_domain::catalog::ProductCommand::UnfeatureProduct { at }
        })
        .await
    }

    /// Adds a variant with its own SKU and price (`CONFLICT` when the SKU is in use).
    #[graphql(guard = "RoleGuard::staff()")]
    async fn add_variant(
        &self,
        ctx: &Context<'_>,
        product_id: ID,
        input: AddVariantInput,
    ) -> async_graphql::Result<Product> {
        let viewer = ctx.viewer()?;
        let product_id = uuid_arg(&product_id, "product")?;
        let input = NewVariant {
            sku: input.sku,
            size: input.size,
            colour: input.colour,
            attributes: attributes(input.attributes),
            price_minor: input.price.amount_minor,
            currency: input.price.currency,
        };
        Ok(staff(ctx)?
            .add_variant(viewer.user_id, product_id, input)
            .await?
            .into())
    }

    /// Replaces a variant's options.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn update_variant(
        &self,
        ctx: &Context<'_>,
        product_id: ID,
        variant_id: ID,
        input: UpdateVariantInput,
    ) -> async_graphql::Result<Product> {
        let viewer = ctx.viewer()?;
        let product_id = uuid_arg(&product_id, "product")?;
        let variant_id = uuid_arg(&variant_id, "variant")?;
        let change = VariantChange {
            size: input.size,
            colour: input.colour,
            attributes: attributes(input.attributes),
        };
        Ok(staff(ctx)?
            .update_variant(viewer.user_id, product_id, variant_id, change)
            .await?
            .into())
    }

    /// Removes a variant (its SKU stays retired).
    #[graphql(guard = "RoleGuard::staff()")]
    async fn remove_variant(
        &self,
        ctx: &Context<'_>,
        product_id: ID,
        variant_id: ID,
    ) -> async_graphql::Result<Product> {
        let variant_id = uuid_arg(&variant_id, "variant")?;
        product_command(ctx, &product_id, |at| {
            emporium_domain::catalog::ProductCommand::RemoveVariant { variant_id, at }
        })
        .await
    }

    /// Changes a variant's price.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn change_variant_price(
        &self,
        ctx: &Context<'_>,
        product_id: ID,
        variant_id: ID,
        price: MoneyInput,
    ) -> async_graphql::Result<Product> {
        let viewer = ctx.viewer()?;
        let product_id = uuid_arg(&product_id, "product")?;
        let variant_id = uuid_arg(&variant_id, "variant")?;
        Ok(staff(ctx)?
            .change_variant_price(
                viewer.user_id,
                product_id,
                variant_id,
                price.amount_minor,
                &price.currency,
            )
            .await?
            .into())
    }

    /// Adds an image: an `http(s)` URL or an object-store key.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn add_product_image(
        &self,
        ctx: &Context<'_>,
        product_id: ID,
        source: String,
        alt_text: String,
        #[graphql(default)] primary: bool,
    ) -> async_graphql::Result<Product> {
        let viewer = ctx.viewer()?;
        let product_id = uuid_arg(&product_id, "product")?;
        Ok(staff(ctx)?
            .add_image(viewer.user_id, product_id, &source, &alt_text, primary)
            .await?
            .into())
    }

    /// Removes an image (removing the primary one promotes the oldest left).
    #[graphql(guard = "RoleGuard::staff()")]
    async fn remove_product_image(
        &self,
        ctx: &Context<'_>,
        product_id: ID,
        image_id: ID,
    ) -> async_graphql::Result<Product> {
        let image_id = uuid_arg(&image_id, "image")?;
        product_command(ctx, &product_id, |at| {
            emporium_domain::catalog::ProductCommand::RemoveImage { image_id, at }
        })
        .await
    }

    /// Makes an image the primary one.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn set_primary_product_image(
        &self,
        ctx: &Context<'_>,
        product_id: ID,
        image_id: ID,
    ) -> async_graphql::Result<Product> {
        let image_id = uuid_arg(&image_id, "image")?;
        product_command(ctx, &product_id, |at| {
            emporium_domain::catalog::ProductCommand::SetPrimaryImage { image_id, at }
        })
        .await
    }

    /// Creates a category at the root or under `parentId`; answers it with its
    /// subtree.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn create_category(
        &self,
        ctx: &Context<'_>,
        name: String,
        slug: String,
        parent_id: Option<ID>,
    ) -> async_graphql::Result<Category> {
        let viewer = ctx.viewer()?;
        let parent_id = parent_id
            .as_ref()
            .map(|p| uuid_field(p, "parentId"))
            .transpose()?;
        let (id, rows) = staff(ctx)?
            .create_category(viewer.user_id, &name, &slug, parent_id)
            .await?;
        Ok(category_answer(&rows, id)?)
    }

    /// Renames a category (and changes its slug when one is given).
    #[graphql(guard = "RoleGuard::staff()")]
    async fn rename_category(
        &self,
        ctx: &Context<'_>,
        id: ID,
        name: String,
        slug: Option<String>,
    ) -> async_graphql::Result<Category> {
        let viewer = ctx.viewer()?;
        let id = uuid_arg(&id, "category")?;
        let rows = staff(ctx)?
            .rename_category(viewer.user_id, id, CategoryChange { name, slug })
            .await?;
        Ok(category_answer(&rows, id)?)
    }

    /// Moves a category with its subtree under another parent (null: to the root).
    /// Moving it under itself or a descendant is refused (`category_cycle`).
    #[graphql(guard = "RoleGuard::staff()")]
    async fn move_category(
        &self,
        ctx: &Context<'_>,
        id: ID,
        parent_id: Option<ID>,
    ) -> async_graphql::Result<Category> {
        let viewer = ctx.viewer()?;
        let id = uuid_arg(&id, "category")?;
        let parent_id = parent_id
            .as_ref()
            .map(|p| uuid_field(p, "parentId"))
            .transpose()?;
        let rows = staff(ctx)?
            .move_category(viewer.user_id, id, parent_id)
            .await?;
        Ok(category_answer(&rows, id)?)
    }

    /// Deletes a category without children or products; answers the remaining tree.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn delete_category(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Vec<Category>> {
        let viewer = ctx.viewer()?;
        let id = uuid_arg(&id, "category")?;
        let rows = staff(ctx)?.delete_category(viewer.user_id, id).await?;
        Ok(category_roots(&rows))
    }

    /// Books units received into the warehouse (tracking the SKU from now on).
    #[graphql(guard = "RoleGuard::staff()")]
    async fn receive_stock(
        &self,
        ctx: &Context<'_>,
        sku: String,
        quantity: i64,
    ) -> async_graphql::Result<InventoryLevel> {
        let viewer = ctx.viewer()?;
        Ok(staff(ctx)?
            .receive_stock(viewer.user_id, &sku, quantity)
            .await?
            .into())
    }

    /// Corrects units on hand by `delta` with a reason; never below zero nor below
    /// what is reserved.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn adjust_stock(
        &self,
        ctx: &Context<'_>,
        sku: String,
        delta: i64,
        reason: StockAdjustmentReason,
    ) -> async_graphql::Result<InventoryLevel> {
        let viewer = ctx.viewer()?;
        Ok(staff(ctx)?
            .adjust_stock(viewer.user_id, &sku, delta, reason.into())
            .await?
            .into())
    }

    /// Sets a SKU's low-stock threshold (0 turns alerts off).
    #[graphql(guard = "RoleGuard::staff()")]
    async fn set_low_stock_threshold(
        &self,
        ctx: &Context<'_>,
        sku: String,
        threshold: i64,
    ) -> async_graphql::Result<InventoryLevel> {
        let viewer = ctx.viewer()?;
        Ok(staff(ctx)?
            .set_low_stock_threshold(viewer.user_id, &sku, threshold)
            .await?
            .into())
    }

    /// Hands a paid order to the carrier.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn ship_order(
        &self,
        ctx: &Context<'_>,
        id: ID,
        tracking_number: Option<String>,
    ) -> async_graphql::Result<StaffOrder> {
        let viewer = ctx.viewer()?;
        let id = uuid_arg(&id, "order")?;
        Ok(staff(ctx)?
            .ship_order(viewer.user_id, id, tracking_number)
            .await?
            .into())
    }

    /// Records that a shipped order was delivered.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn mark_order_delivered(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<StaffOrder> {
        let viewer = ctx.viewer()?;
        let id = uuid_arg(&id, "order")?;
        Ok(staff(ctx)?.mark_delivered(viewer.user_id, id).await?.into())
    }
}

/// Runs a plain product command for the viewer and answers the product.
async fn product_command(
    ctx: &Context<'_>,
    id: &ID,
    command: impl FnOnce(DateTime<Utc>) -> emporium_domain::catalog::ProductCommand,
) -> async_graphql::Result<Product> {
    let viewer = ctx.viewer()?;
    let id = uuid_arg(id, "product")?;
    Ok(staff(ctx)?
        .change_product(viewer.user_id, id, command)
        .await?
        .into())
}

fn category_answer(rows: &[crate::shop::CategoryRow], id: Uuid) -> Result<Category, ApiError> {
    category_node(rows, id).ok_or_else(|| {
        ApiError::internal(anyhow::anyhow!(
            "category {id} is not in the read model yet"
        ))
    })
}
