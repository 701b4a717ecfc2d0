//! The storefront: catalogue queries, the viewer's cart and wishlist.
//!
//! Types here are the gateway's own, built from the read-model rows in
//! [`crate::shop`]. Inputs carry no price, owner or status: carts and wishlists are
//! always the viewer's, and prices come from the catalogue.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::{
    ComplexObject, Context, Enum, ID, InputObject, InputValueError, InputValueResult, Json, Object,
    Scalar, ScalarType, SimpleObject, Value,
};
use chrono::{DateTime, Utc};
use emporium_domain::Currency;
use uuid::Uuid;

use super::ContextExt;
use crate::error::ApiError;
use crate::shop::{self, CartState, CategoryRow, ProductRow, Shopper, WishlistEntry};

/// An amount of money in minor units with its currency.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(complex)]
pub(crate) struct Money {
    /// Integer minor units (cents for EUR).
    amount_minor: i64,
    /// ISO 4217 code.
    currency: String,
}

#[ComplexObject]
impl Money {
    // Formatted only when selected: a product or cart answer holds many amounts and
    // most queries select few of them formatted.
    /// For display, e.g. `12.34 EUR` (no locale applied).
    async fn formatted(&self) -> String {
        self.display()
    }
}

impl Money {
    pub(crate) fn new(amount_minor: i64, currency: &str) -> Self {
        Self {
            amount_minor,
            currency: currency.to_owned(),
        }
    }

    fn display(&self) -> String {
        let exponent = Currency::parse(&self.currency).map_or(2, Currency::exponent);
        format_minor(self.amount_minor, exponent, &self.currency)
    }
}

fn format_minor(amount_minor: i64, exponent: u8, code: &str) -> String {
    let sign = if amount_minor < 0 { "-" } else { "" };
    let abs = amount_minor.unsigned_abs();
    if exponent == 0 {
        return format!("{sign}{abs} {code}");
    }
    let scale = 10_u64.pow(u32::from(exponent));
    let width = usize::from(exponent);
    format!("{sign}{}.{:0width$} {code}", abs / scale, abs % scale)
}

/// A step of a product's category path.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct CategoryRef {
    /// The category id.
    id: ID,
    /// Display name.
    name: String,
    /// URL slug.
    slug: String,
}

/// A purchasable variant.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct Variant {
    /// The variant id.
    id: ID,
    /// Its SKU (what `addToCart` takes).
    sku: String,
    /// Size, if sized.
    size: Option<String>,
    /// Colour, if coloured.
    colour: Option<String>,
    /// Further options.
    attributes: Json<serde_json::Value>,
    /// Unit price.
    price: Money,
    /// Units available.
    available: i64,
    /// Whether any unit is available.
    in_stock: bool,
}

/// A product image.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct Image {
    /// The image id.
    id: ID,
    /// An object-store key or an external URL.
    source: String,
    /// Alternative text.
    alt_text: String,
    /// Whether it is the product's primary image.
    primary: bool,
}

/// Rating from approved reviews.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct Rating {
    /// Average stars, two decimals; null without reviews.
    average: Option<f64>,
    /// Approved reviews counted.
    count: i64,
}

/// Where a product is in its life (customers only ever see `PUBLISHED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub(crate) enum ProductStatus {
    /// Being set up; not for sale.
    Draft,
    /// For sale.
    Published,
    /// Taken out of the storefront.
    Unpublished,
    /// Retired for good.
    Archived,
}

impl ProductStatus {
    fn parse(s: &str) -> Self {
        match s {
            "published" => Self::Published,
            "unpublished" => Self::Unpublished,
            "archived" => Self::Archived,
            _ => Self::Draft,
        }
    }
}

/// A catalogue product.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct Product {
    /// The product id.
    id: ID,
    /// The product's own SKU.
    sku: String,
    /// URL slug.
    slug: String,
    /// Display name.
    name: String,
    /// Long description.
    description: String,
    /// The category it is listed under.
    category_id: ID,
    /// Root first, its category last (breadcrumbs).
    category_path: Vec<CategoryRef>,
    /// Labels.
    tags: Vec<String>,
    /// Free-form attributes.
    attributes: Json<serde_json::Value>,
    /// Base price.
    price: Money,
    /// Lowest price over the product and its variants ("from").
    min_price: Money,
    /// Highest price over the product and its variants.
    max_price: Money,
    /// Variants.
    variants: Vec<Variant>,
    /// Images.
    images: Vec<Image>,
    /// The primary image.
    primary_image: Option<Image>,
    /// Rating.
    rating: Rating,
    /// Units available over the product and its variants.
    available: i64,
    /// Whether any unit is available.
    in_stock: bool,
    /// Featured on the storefront.
    featured: bool,
    /// Where it is in its life.
    status: ProductStatus,
    /// When it was created.
    created_at: DateTime<Utc>,
    /// When it was first published.
    published_at: Option<DateTime<Utc>>,
}

fn image_source(source: &serde_json::Value) -> String {
    match source {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(map) => map
            .values()
            .find_map(|v| v.as_str().map(ToOwned::to_owned))
            .unwrap_or_default(),
        other => other.to_string(),
    }
}

impl From<ProductRow> for Product {
    fn from(p: ProductRow) -> Self {
        let currency = p.currency.as_str();
        let images: Vec<Image> = p
            .images
            .0
            .into_iter()
            .map(|i| Image {
                id: ID(i.image_id.to_string()),
                source: image_source(&i.source),
                alt_text: i.alt_text,
                primary: i.primary,
            })
            .collect();
        Self {
            id: ID(p.product_id.to_string()),
            sku: p.sku,
            slug: p.slug,
            name: p.name,
            description: p.description,
            category_id: ID(p.category_id.to_string()),
            category_path: p
                .category_path
                .0
                .into_iter()
                .map(|c| CategoryRef {
                    id: ID(c.category_id.to_string()),
                    name: c.name,
                    slug: c.slug,
                })
                .collect(),
            tags: p.tags.0,
            attributes: Json(p.attributes.0),
            price: Money::new(p.price_minor, currency),
            min_price: Money::new(p.min_price_minor, currency),
            max_price: Money::new(p.max_price_minor, currency),
            variants: p
                .variants
                .0
                .into_iter()
                .map(|v| Variant {
                    id: ID(v.variant_id.to_string()),
                    sku: v.sku,
                    size: v.size,
                    colour: v.colour,
                    attributes: Json(v.attributes),
                    price: Money::new(v.price_minor, currency),
                    available: v.available,
                    in_stock: v.available > 0,
                })
                .collect(),
            primary_image: images.iter().find(|i| i.primary).cloned(),
            images,
            rating: Rating {
                average: p.rating_average,
                count: p.rating_count,
            },
            available: p.available,
            in_stock: p.in_stock,
            featured: p.featured,
            status: ProductStatus::parse(&p.status),
            created_at: p.created_at,
            published_at: p.published_at,
        }
    }
}

/// A product and where the next page starts after it.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct ProductEdge {
    /// Opaque; pass as `after` for the products after this one.
    cursor: String,
    /// The product.
    node: Product,
}

/// Whether more follows.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct PageInfo {
    /// Another page follows.
    has_next_page: bool,
    /// The last edge's cursor.
    end_cursor: Option<String>,
}

impl PageInfo {
    pub(crate) fn new(has_next_page: bool, end_cursor: Option<String>) -> Self {
        Self {
            has_next_page,
            end_cursor,
        }
    }
}

/// A page of products.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct ProductConnection {
    /// The products with cursors.
    edges: Vec<ProductEdge>,
    /// The products.
    nodes: Vec<Product>,
    /// Paging.
    page_info: PageInfo,
}

/// Listing orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Default)]
pub(crate) enum ProductSort {
    /// Cheapest "from" price first.
    PriceAsc,
    /// Dearest "from" price first.
    PriceDesc,
    /// Newest first.
    #[default]
    Newest,
    /// Best rated first; unrated last.
    Rating,
    /// By name.
    Name,
}

impl From<ProductSort> for shop::ProductSort {
    fn from(s: ProductSort) -> Self {
        match s {
            ProductSort::PriceAsc => Self::PriceAsc,
            ProductSort::PriceDesc => Self::PriceDesc,
            ProductSort::Newest => Self::Newest,
            ProductSort::Rating => Self::Rating,
            ProductSort::Name => Self::Name,
        }
    }
}

/// Which products a listing shows; every field narrows it.
#[derive(Debug, Clone, Default, InputObject)]
pub(crate) struct ProductFilter {
    /// In this category or any category below it.
    category_id: Option<ID>,
    /// "From" price at least this, in minor units.
    min_price: Option<i64>,
    /// "From" price at most this, in minor units.
    max_price: Option<i64>,
    /// Only products with stock (true) or without (false).
    in_stock: Option<bool>,
    /// Carrying every one of these tags.
    tags: Option<Vec<String>>,
    /// Name or description contains this (case-insensitive).
    search: Option<String>,
}

/// A category with its children.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct Category {
    /// The category id.
    id: ID,
    /// Display name.
    name: String,
    /// URL slug.
    slug: String,
    /// Slug path from the root, e.g. `men/shoes/running`.
    path: String,
    /// 0 for a root.
    depth: i32,
    /// The parent, null for a root.
    parent_id: Option<ID>,
    /// Sub-categories, by name.
    children: Vec<Category>,
}

/// Builds the subtree under `id` from rows grouped by parent.
fn subtree(row: &CategoryRow, by_parent: &HashMap<Option<Uuid>, Vec<&CategoryRow>>) -> Category {
    Category {
        id: ID(row.category_id.to_string()),
        name: row.name.clone(),
        slug: row.slug.clone(),
        path: row.path_slugs.clone(),
        depth: row.depth,
        parent_id: row.parent_id.map(|p| ID(p.to_string())),
        children: by_parent
            .get(&Some(row.category_id))
            .map(|kids| kids.iter().map(|k| subtree(k, by_parent)).collect())
            .unwrap_or_default(),
    }
}

/// The category `id` with its subtree, from every category's row.
pub(crate) fn category_node(rows: &[CategoryRow], id: Uuid) -> Option<Category> {
    let by_parent = group_by_parent(rows);
    rows.iter()
        .find(|r| r.category_id == id)
        .map(|r| subtree(r, &by_parent))
}

/// The whole tree: the roots with their subtrees.
pub(crate) fn category_roots(rows: &[CategoryRow]) -> Vec<Category> {
    let by_parent = group_by_parent(rows);
    by_parent
        .get(&None)
        .map(|roots| roots.iter().map(|r| subtree(r, &by_parent)).collect())
        .unwrap_or_default()
}

fn group_by_parent(rows: &[CategoryRow]) -> HashMap<Option<Uuid>, Vec<&CategoryRow>> {
    let mut by_parent: HashMap<Option<Uuid>, Vec<&CategoryRow>> = HashMap::new();
    for row in rows {
        by_parent.entry(row.parent_id).or_default().push(row);
    }
    by_parent
}

/// A count of units: 1 to 100,000. Any integer is accepted here and checked by the
/// resolver, so an out-of-range value is answered with the rule it breaks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QuantityInput(i64);

#[Scalar(name = "Quantity")]
impl ScalarType for QuantityInput {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::Number(n) => n
                .as_i64()
                .map(Self)
                .ok_or_else(|| InputValueError::custom("quantity must be a whole number")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::from(self.0)
    }
}

/// A line of the cart, priced from the catalogue.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(complex)]
pub(crate) struct CartItem {
    /// The SKU.
    sku: String,
    /// Units.
    quantity: i64,
    /// The catalogue's current unit price (null when the product left it).
    unit_price: Option<Money>,
    /// Unit price times quantity.
    line_total: Option<Money>,
    /// The product's row, shared with the catalogue rows cache; turned into a
    /// `Product` only when a query asks for it.
    #[graphql(skip)]
    row: Option<Arc<ProductRow>>,
}

#[ComplexObject]
impl CartItem {
    /// The product (null once it left the catalogue).
    async fn product(&self) -> Option<Product> {
        self.row.as_deref().cloned().map(Product::from)
    }
}

/// The viewer's cart.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "Cart")]
pub(crate) struct CartView {
    /// The cart id.
    id: ID,
    /// The currency it is checked out in.
    currency: String,
    /// Lines, in the order they were added.
    items: Vec<CartItem>,
    /// Units over all lines.
    item_count: i64,
    /// The sum of the priced lines at current catalogue prices.
    subtotal: Money,
    /// When it last changed (null for a cart not opened yet).
    updated_at: Option<DateTime<Utc>>,
    /// A guest cart's token: send it back as the `X-Cart-Token` header to use this
    /// cart, and to `mergeCart` after signing in. Null for a signed-in user's cart.
    guest_token: Option<String>,
}

impl From<CartState> for CartView {
    fn from(c: CartState) -> Self {
        let mut subtotal: i64 = 0;
        let items: Vec<CartItem> = c
            .lines
            .into_iter()
            .map(|l| {
                let unit = l
                    .product
                    .as_ref()
                    .filter(|p| p.currency == c.currency)
                    .map(|p| p.unit_price_minor(&l.sku));
                let total = unit.map(|u| u.saturating_mul(l.quantity));
                subtotal = subtotal.saturating_add(total.unwrap_or(0));
                CartItem {
                    unit_price: unit.map(|u| Money::new(u, &c.currency)),
                    line_total: total.map(|t| Money::new(t, &c.currency)),
                    row: l.product,
                    sku: l.sku,
                    quantity: l.quantity,
                }
            })
            .collect();
        Self {
            id: ID(c.cart_id.to_string()),
            item_count: items.iter().map(|i| i.quantity).sum(),
            subtotal: Money::new(subtotal, &c.currency),
            currency: c.currency,
            items,
            updated_at: c.updated_at,
            guest_token: None,
        }
    }
}

/// The `X-Cart-Token` header of the request (a guest's cart token), when one came.
#[derive(Debug, Clone)]
pub(crate) struct CartToken(pub(crate) String);

/// Whose cart a cart operation works on: the signed-in viewer's; else the guest's
/// whose token came in `X-Cart-Token`; else, when `mint`, a new guest's (the token is
/// minted here and answered in `Cart.guestToken`). The token found or minted is
/// returned with the shopper.
fn shopper(ctx: &Context<'_>, mint: bool) -> Result<(Shopper, Option<String>), ApiError> {
    if let Some(viewer) = ctx.request_context()?.viewer {
        return Ok((Shopper::User(viewer.user_id), None));
    }
    if let Some(CartToken(token)) = ctx.data_opt::<CartToken>() {
        let key = shop::guest_key_for(token)?;
        return Ok((Shopper::Guest { key, fresh: false }, Some(token.clone())));
    }
    if mint {
        let token = shop::mint_guest_token();
        let key = shop::guest_key_for(&token)?;
        return Ok((Shopper::Guest { key, fresh: true }, Some(token)));
    }
    Err(ApiError::Unauthenticated)
}

fn with_token(state: CartState, token: Option<String>) -> CartView {
    let mut view = CartView::from(state);
    view.guest_token = token;
    view
}

/// A product on the wishlist.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct WishlistItem {
    /// The product.
    product: Product,
    /// When it was added.
    added_at: DateTime<Utc>,
}

/// The viewer's wishlist.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "Wishlist")]
pub(crate) struct WishlistView {
    /// Newest first.
    items: Vec<WishlistItem>,
    /// How many.
    count: i64,
}

impl From<Vec<WishlistEntry>> for WishlistView {
    fn from(entries: Vec<WishlistEntry>) -> Self {
        let items: Vec<WishlistItem> = entries
            .into_iter()
            .map(|e| WishlistItem {
                added_at: e.added_at,
                product: e.product.into(),
            })
            .collect();
        Self {
            count: i64::try_from(items.len()).unwrap_or(i64::MAX),
            items,
        }
    }
}

/// An id argument that names nothing when it is not a UUID (as a missing one would).
fn uuid_arg(id: &ID, what: &'static str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id.as_str()).map_err(|_| ApiError::NotFound { what })
}

fn can_see_unpublished(ctx: &Context<'_>) -> Result<bool, ApiError> {
    Ok(ctx.request_context()?.viewer.is_some_and(|v| v.is_staff()))
}

/// Storefront queries.
#[derive(Debug, Default)]
pub(crate) struct ShopQuery;

#[Object]
impl ShopQuery {
    /// Products, a page at a time (keyset pagination: pass the last `cursor` as
    /// `after`). Customers see published products only.
    async fn products(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
        filter: Option<ProductFilter>,
        #[graphql(default)] sort: ProductSort,
    ) -> async_graphql::Result<ProductConnection> {
        let filter = filter.unwrap_or_default();
        let category_id = filter
            .category_id
            .as_ref()
            .map(|id| {
                Uuid::parse_str(id.as_str()).map_err(|_| {
                    ApiError::bad_input("filter.categoryId", "id_format", "not a category id")
                })
            })
            .transpose()?;
        let filter = shop::ProductFilter {
            category_id,
            min_price_minor: filter.min_price,
            max_price_minor: filter.max_price,
            in_stock: filter.in_stock,
            tags: filter.tags.unwrap_or_default(),
            search: filter.search,
        };
        let page = ctx
            .shop()?
            .list_products(
                &filter,
                sort.into(),
                i64::from(first),
                after.as_deref(),
                can_see_unpublished(ctx)?,
            )
            .await?;
        let edges: Vec<ProductEdge> = page
            .items
            .into_iter()
            .map(|(cursor, row)| ProductEdge {
                cursor,
                node: row.into(),
            })
            .collect();
        Ok(ProductConnection {
            page_info: PageInfo {
                has_next_page: page.has_next_page,
                end_cursor: edges.last().map(|e| e.cursor.clone()),
            },
            nodes: edges.iter().map(|e| e.node.clone()).collect(),
            edges,
        })
    }

    /// A product by id or by slug (a former slug finds it too); null when there is
    /// none for sale.
    async fn product(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
        slug: Option<String>,
    ) -> async_graphql::Result<Option<Product>> {
        let id = match &id {
            Some(id) => match Uuid::parse_str(id.as_str()) {
                Ok(id) => Some(id),
                Err(_) => return Ok(None),
            },
            None if slug.is_none() => {
                return Err(ApiError::bad_input("id", "id_or_slug", "give an id or a slug").into());
            }
            None => None,
        };
        let row = ctx
            .shop()?
            .product(id, slug.as_deref(), can_see_unpublished(ctx)?)
            .await?;
        Ok(row.map(Product::from))
    }

    /// Featured products, most recently changed first.
    async fn featured_products(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 8)] first: i32,
    ) -> async_graphql::Result<Vec<Product>> {
        let rows = ctx.shop()?.featured_products(i64::from(first)).await?;
        Ok(rows.into_iter().map(Product::from).collect())
    }

    /// The category tree: the roots, each with its children.
    async fn categories(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Category>> {
        let rows = ctx.shop()?.categories().await?;
        let by_parent = group_by_parent(&rows);
        Ok(by_parent
            .get(&None)
            .map(|roots| roots.iter().map(|r| subtree(r, &by_parent)).collect())
            .unwrap_or_default())
    }

    /// A category by slug path (`men/shoes`) or slug, with its subtree.
    async fn category(
        &self,
        ctx: &Context<'_>,
        slug: String,
    ) -> async_graphql::Result<Option<Category>> {
        let rows = ctx.shop()?.categories().await?;
        let by_parent = group_by_parent(&rows);
        let found = rows
            .iter()
            .find(|r| r.path_slugs == slug)
            .or_else(|| rows.iter().find(|r| r.slug == slug));
        Ok(found.map(|r| subtree(r, &by_parent)))
    }

    /// The viewer's open cart (empty until something is added); for a guest, the
    /// cart of the `X-Cart-Token` header.
    async fn my_cart(&self, ctx: &Context<'_>) -> async_graphql::Result<CartView> {
        let (shopper, token) = shopper(ctx, false)?;
        Ok(with_token(ctx.shop()?.my_cart(&shopper).await?, token))
    }

    /// The viewer's wishlist.
    async fn my_wishlist(&self, ctx: &Context<'_>) -> async_graphql::Result<WishlistView> {
        let viewer = ctx.viewer()?;
        Ok(ctx.shop()?.my_wishlist(viewer.user_id).await?.into())
    }
}

/// Storefront mutations. Each answers with the new state: cart changes with the cart
/// as the command left it (the aggregate's state, which the `carts` read model
/// reaches moments later; the shopper's next `cart` read waits for it), the others
/// read back from the read model once it has applied the change.
#[derive(Debug, Default)]
pub(crate) struct ShopMutation;

#[Object]
impl ShopMutation {
    /// Adds units of a SKU (a product's or a variant's) to the viewer's cart, opening
    /// one on first use. Without a viewer: to the cart of the `X-Cart-Token` header,
    /// or without one to a new guest cart whose token `Cart.guestToken` answers.
    async fn add_to_cart(
        &self,
        ctx: &Context<'_>,
        sku: String,
        quantity: QuantityInput,
    ) -> async_graphql::Result<CartView> {
        let (shopper, token) = shopper(ctx, true)?;
        let state = ctx.shop()?.add_to_cart(&shopper, &sku, quantity.0).await?;
        Ok(with_token(state, token))
    }

    /// Sets the quantity of a line of the viewer's cart.
    async fn update_cart_item(
        &self,
        ctx: &Context<'_>,
        sku: String,
        quantity: QuantityInput,
    ) -> async_graphql::Result<CartView> {
        let (shopper, token) = shopper(ctx, false)?;
        let state = ctx
            .shop()?
            .update_cart_item(&shopper, &sku, quantity.0)
            .await?;
        Ok(with_token(state, token))
    }

    /// Removes a line from the viewer's cart.
    async fn remove_from_cart(
        &self,
        ctx: &Context<'_>,
        sku: String,
    ) -> async_graphql::Result<CartView> {
        let (shopper, token) = shopper(ctx, false)?;
        let state = ctx.shop()?.remove_from_cart(&shopper, &sku).await?;
        Ok(with_token(state, token))
    }

    /// Empties the viewer's cart.
    async fn clear_cart(&self, ctx: &Context<'_>) -> async_graphql::Result<CartView> {
        let (shopper, token) = shopper(ctx, false)?;
        Ok(with_token(ctx.shop()?.clear_cart(&shopper).await?, token))
    }

    /// Merges the guest cart of `guestToken` into the signed-in viewer's cart and
    /// closes it (quantities summed per SKU). Repeating it changes nothing.
    /// `NOT_FOUND` for a token that names no cart (or one merged into someone
    /// else's).
    async fn merge_cart(
        &self,
        ctx: &Context<'_>,
        guest_token: String,
    ) -> async_graphql::Result<CartView> {
        let viewer = ctx.viewer()?;
        Ok(ctx
            .shop()?
            .merge_guest_cart(viewer.user_id, guest_token.trim())
            .await?
            .into())
    }

    /// Adds a product to the viewer's wishlist (already there: unchanged).
    async fn add_to_wishlist(
        &self,
        ctx: &Context<'_>,
        product_id: ID,
    ) -> async_graphql::Result<WishlistView> {
        let viewer = ctx.viewer()?;
        let product_id = uuid_arg(&product_id, "product")?;
        Ok(ctx
            .shop()?
            .add_to_wishlist(viewer.user_id, product_id)
            .await?
            .into())
    }

    /// Removes a product from the viewer's wishlist (not there: unchanged).
    async fn remove_from_wishlist(
        &self,
        ctx: &Context<'_>,
        product_id: ID,
    ) -> async_graphql::Result<WishlistView> {
        let viewer = ctx.viewer()?;
        let product_id = uuid_arg(&product_id, "product")?;
        Ok(ctx
            .shop()?
            .remove_from_wishlist(viewer.user_id, product_id)
            .await?
            .into())
    }

    /// Empties the viewer's wishlist.
    async fn clear_wishlist(&self, ctx: &Context<'_>) -> async_graphql::Result<WishlistView> {
        let viewer = ctx.viewer()?;
        Ok(ctx.shop()?.clear_wishlist(viewer.user_id).await?.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_formats_by_the_currency_exponent() {
        assert_eq!(Money::new(1234, "EUR").display(), "12.34 EUR");
        assert_eq!(Money::new(-5, "EUR").display(), "-0.05 EUR");
        assert_eq!(format_minor(500, 0, "JPY"), "500 JPY");
    }
}
