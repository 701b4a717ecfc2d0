//! The signed-in customer's own things over the read models: notifications (the
//! inbox), orders, and product reviews.
//!
//! Everything here but `productReviews` needs a viewer (`UNAUTHENTICATED` otherwise)
//! and only ever reads the viewer's rows: a foreign notification or order id is
//! answered exactly like a missing one (`NOT_FOUND`). Inputs carry no owner, status,
//! price or verified-purchase flag; those come from the viewer and the read models.

use async_graphql::dataloader::DataLoader;
use async_graphql::{ComplexObject, Context, Enum, ID, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::ContextExt;
use super::loaders::ProductLoader;
use super::shop::{Money, PageInfo, Product};
use crate::error::ApiError;
use crate::shop::{InboxCounts, NotificationRow, OrderPage, OrderRow, ReviewRow};

/// An id argument that names nothing when it is not a UUID (as a missing one would).
fn uuid_arg(id: &ID, what: &'static str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id.as_str()).map_err(|_| ApiError::NotFound { what })
}

/// An in-app notification.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct Notification {
    /// The notification id.
    id: ID,
    /// What happened (`order_placed`, `order_shipped`, `payment_failed`, ...).
    kind: String,
    /// Headline.
    title: String,
    /// Text.
    body: String,
    /// The order it is about, if any.
    order_id: Option<ID>,
    /// When it happened.
    created_at: DateTime<Utc>,
    /// When the viewer read it; null while unread.
    read_at: Option<DateTime<Utc>>,
    /// Whether the viewer has read it.
    read: bool,
}

impl From<NotificationRow> for Notification {
    fn from(n: NotificationRow) -> Self {
        Self {
            id: ID(n.notification_id.to_string()),
            kind: n.kind,
            title: n.title,
            body: n.body,
            order_id: n.order_id.map(|o| ID(o.to_string())),
            created_at: n.created_at,
            read: n.read_at.is_some(),
            read_at: n.read_at,
        }
    }
}

/// The viewer's inbox after a bulk change.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct InboxSummary {
    /// Notifications shown (cleared ones hidden).
    count: i64,
    /// Of which unread.
    unread_count: i64,
}

impl From<InboxCounts> for InboxSummary {
    fn from(c: InboxCounts) -> Self {
        Self {
            count: c.total,
            unread_count: c.unread,
        }
    }
}

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub(crate) enum OrderStatus {
    /// Placed, stock not yet reserved.
    Pending,
    /// Stock reserved.
    Reserved,
    /// Held for a fraud review.
    HeldForReview,
    /// Waiting for payment.
    AwaitingPayment,
    /// Paid.
    Paid,
    /// Shipped.
    Shipped,
    /// Delivered.
    Delivered,
    /// Cancelled.
    Cancelled,
    /// A status this gateway does not know yet.
    Other,
}

impl OrderStatus {
    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "pending" => Self::Pending,
            "reserved" => Self::Reserved,
            "held_for_review" => Self::HeldForReview,
            "awaiting_payment" => Self::AwaitingPayment,
            "paid" => Self::Paid,
            "shipped" => Self::Shipped,
            "delivered" => Self::Delivered,
            "cancelled" => Self::Cancelled,
            _ => Self::Other,
        }
    }
}

/// A line of an order, as it was sold.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(complex)]
pub(crate) struct OrderLine {
    /// The SKU.
    sku: String,
    /// The catalogue product.
    product_id: ID,
    #[graphql(skip)]
    product_uuid: Uuid,
    /// The product's name at the time of sale.
    name: String,
    /// Units.
    quantity: i64,
    /// Price of one unit when sold.
    unit_price: Money,
    /// Unit price times quantity.
    line_total: Money,
}

/// A step of an order's history.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct OrderStatusChange {
    /// The status entered (`pending`, `paid`, `refunded`, ...).
    status: String,
    /// When.
    at: DateTime<Utc>,
}

/// One of the viewer's orders.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct Order {
    /// The order id.
    id: ID,
    /// Where it stands.
    status: OrderStatus,
    /// Its currency.
    currency: String,
    /// What was bought.
    lines: Vec<OrderLine>,
    /// Units over all lines.
    item_count: i64,
    /// The lines' sum.
    subtotal: Money,
    /// Tax.
    tax: Money,
    /// Shipping.
    shipping: Money,
    /// Discounts granted.
    discount: Money,
    /// What was charged.
    grand_total: Money,
    /// Refunded so far.
    refunded: Money,
    /// Where it ships.
    shipping_address: Json<serde_json::Value>,
    /// Where it is billed.
    billing_address: Json<serde_json::Value>,
    /// The carrier's tracking number, once shipped.
    tracking_number: Option<String>,
    /// Why it was cancelled.
    cancellation_reason: Option<String>,
    /// Status history, oldest first.
    history: Vec<OrderStatusChange>,
    /// When it was placed.
    placed_at: DateTime<Utc>,
    /// When it last changed.
    updated_at: DateTime<Utc>,
    /// When it was paid.
    paid_at: Option<DateTime<Utc>>,
    /// When it shipped.
    shipped_at: Option<DateTime<Utc>>,
    /// When it was delivered.
    delivered_at: Option<DateTime<Utc>>,
    /// When it was cancelled.
    cancelled_at: Option<DateTime<Utc>>,
}

impl From<OrderRow> for Order {
    fn from(o: OrderRow) -> Self {
        let c = o.currency.as_str();
        Self {
            id: ID(o.order_id.to_string()),
            status: OrderStatus::parse(&o.status),
            lines: o
                .lines
                .0
                .into_iter()
                .map(|l| OrderLine {
                    sku: l.sku.as_str().to_owned(),
                    product_id: ID(l.product_id.to_string()),
                    product_uuid: l.product_id,
                    name: l.name,
                    quantity: i64::from(l.quantity.get()),
                    unit_price: Money::new(l.unit_price.amount_minor(), c),
                    line_total: Money::new(l.line_total.amount_minor(), c),
                })
                .collect(),
            item_count: o.item_count,
            subtotal: Money::new(o.subtotal_minor, c),
            tax: Money::new(o.tax_minor, c),
            shipping: Money::new(o.shipping_minor, c),
            discount: Money::new(o.discount_minor, c),
            grand_total: Money::new(o.grand_total_minor, c),
            refunded: Money::new(o.refunded_minor, c),
            shipping_address: Json(o.shipping_address.0),
            billing_address: Json(o.billing_address.0),
            tracking_number: o.tracking_number,
            cancellation_reason: o.cancellation_reason,
            history: o
                .history
                .0
                .into_iter()
                .map(|h| OrderStatusChange {
                    status: h.status,
                    at: h.at,
                })
                .collect(),
            placed_at: o.placed_at,
            updated_at: o.updated_at,
            paid_at: o.paid_at,
            shipped_at: o.shipped_at,
            delivered_at: o.delivered_at,
            cancelled_at: o.cancelled_at,
            currency: o.currency,
        }
    }
}

/// An order and where the next page starts after it.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct OrderEdge {
    /// Opaque; pass as `after` for the orders after this one.
    cursor: String,
    /// The order.
    node: Order,
}

/// A page of the viewer's orders.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct OrderConnection {
    /// The orders with cursors.
    edges: Vec<OrderEdge>,
    /// The orders.
    nodes: Vec<Order>,
    /// Paging.
    page_info: PageInfo,
}

impl From<OrderPage> for OrderConnection {
    fn from(page: OrderPage) -> Self {
        let edges: Vec<OrderEdge> = page
            .items
            .into_iter()
            .map(|(cursor, row)| OrderEdge {
                cursor,
                node: row.into(),
            })
            .collect();
        Self {
            page_info: PageInfo::new(page.has_next_page, edges.last().map(|e| e.cursor.clone())),
            nodes: edges.iter().map(|e| e.node.clone()).collect(),
            edges,
        }
    }
}

/// Where a review stands in moderation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub(crate) enum ReviewStatus {
    /// Awaiting moderation.
    Pending,
    /// Shown on the product page.
    Approved,
    /// Sent back to its author.
    Rejected,
    /// Taken down.
    Hidden,
}

impl ReviewStatus {
    fn parse(s: &str) -> Self {
        match s {
            "approved" => Self::Approved,
            "rejected" => Self::Rejected,
            "hidden" => Self::Hidden,
            _ => Self::Pending,
        }
    }
}

/// A product review (its author is not named).
#[derive(Debug, Clone, SimpleObject)]
#[graphql(complex)]
pub(crate) struct Review {
    /// The review id.
    id: ID,
    /// The product reviewed.
    product_id: ID,
    #[graphql(skip)]
    product_uuid: Uuid,
    /// Stars, 1 to 5.
    rating: i32,
    /// Headline.
    title: String,
    /// Text.
    body: String,
    /// Whether the author bought the product (from their orders).
    verified_purchase: bool,
    /// Moderation status.
    status: ReviewStatus,
    /// Helpful votes.
    helpful_votes: i64,
    /// When it was written.
    created_at: DateTime<Utc>,
    /// When it last changed.
    updated_at: DateTime<Utc>,
}

impl From<ReviewRow> for Review {
    fn from(r: ReviewRow) -> Self {
        Self {
            id: ID(r.review_id.to_string()),
            product_id: ID(r.product_id.to_string()),
            product_uuid: r.product_id,
            rating: r.rating,
            title: r.title,
            body: r.body,
            verified_purchase: r.verified_purchase,
            status: ReviewStatus::parse(&r.status),
            helpful_votes: r.helpful_votes,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// The catalogue product `id` as the viewer may see it now (null once it left the
/// catalogue, or is not for sale and the viewer is not staff), through the request's
/// [`ProductLoader`]: every such field of a response is one query.
async fn current_product(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<Option<Product>> {
    let loader = ctx
        .data::<DataLoader<ProductLoader>>()
        .map_err(|_| ApiError::internal(anyhow::anyhow!("product loader missing")))?;
    let staff = ctx.request_context()?.viewer.is_some_and(|v| v.is_staff());
    let row = loader.load_one(id).await.map_err(|e| e.to_graphql())?;
    Ok(row.filter(|p| p.published || staff).map(Product::from))
}

#[ComplexObject]
impl OrderLine {
    /// The product as the catalogue shows it now (null once it is no longer for
    /// sale); `name` and `unitPrice` are what was sold.
    async fn product(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Product>> {
        current_product(ctx, self.product_uuid).await
    }
}

#[ComplexObject]
impl Review {
    /// The product reviewed (null once it is no longer for sale).
    async fn product(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Product>> {
        current_product(ctx, self.product_uuid).await
    }
}

/// The viewer's notifications and orders; product reviews.
#[derive(Debug, Default)]
pub(crate) struct CustomerQuery;

#[Object]
impl CustomerQuery {
    /// The viewer's latest notifications, newest first (cleared ones hidden; at most
    /// 100).
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
        #[graphql(default = false)] unread_only: bool,
    ) -> async_graphql::Result<Vec<Notification>> {
        let viewer = ctx.viewer()?;
        let rows = ctx
            .shop()?
            .notifications(viewer.user_id, i64::from(first), unread_only)
            .await?;
        Ok(rows.into_iter().map(Notification::from).collect())
    }

    /// How many of the viewer's notifications are unread.
    async fn unread_notification_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        let viewer = ctx.viewer()?;
        Ok(ctx.shop()?.inbox_counts(viewer.user_id).await?.unread)
    }

    /// The viewer's orders, newest first (keyset pagination: pass the last `cursor`
    /// as `after`; at most 100 a page).
    async fn my_orders(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<OrderConnection> {
        let viewer = ctx.viewer()?;
        Ok(ctx
            .shop()?
            .my_orders(viewer.user_id, i64::from(first), after.as_deref())
            .await?
            .into())
    }

    /// One of the viewer's orders (`NOT_FOUND` for anyone else's).
    async fn order(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Order> {
        let viewer = ctx.viewer()?;
        let id = uuid_arg(&id, "order")?;
        Ok(ctx.shop()?.my_order(viewer.user_id, id).await?.into())
    }

    /// A product's approved reviews, newest first (at most 100).
    async fn product_reviews(
        &self,
        ctx: &Context<'_>,
        product_id: ID,
        #[graphql(default = 20)] first: i32,
    ) -> async_graphql::Result<Vec<Review>> {
        let Ok(product_id) = Uuid::parse_str(product_id.as_str()) else {
            return Ok(Vec::new());
        };
        let rows = ctx
            .shop()?
            .product_reviews(product_id, i64::from(first))
            .await?;
        Ok(rows.into_iter().map(Review::from).collect())
    }
}

/// Changes to the viewer's inbox and reviews; each answers with the new state, read
/// back once the read model has applied it.
#[derive(Debug, Default)]
pub(crate) struct CustomerMutation;

#[Object]
impl CustomerMutation {
    /// Marks one of the viewer's notifications read.
    async fn mark_notification_read(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Notification> {
        let viewer = ctx.viewer()?;
        let id = uuid_arg(&id, "notification")?;
        Ok(ctx
            .shop()?
            .mark_notification_read(viewer.user_id, id)
            .await?
            .into())
    }

    /// Marks every notification the viewer has read (one arriving meanwhile stays
    /// unread).
    async fn mark_all_notifications_read(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<InboxSummary> {
        let viewer = ctx.viewer()?;
        Ok(ctx
            .shop()?
            .mark_all_notifications_read(viewer.user_id)
            .await?
            .into())
    }

    /// Hides the viewer's read notifications.
    async fn clear_read_notifications(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<InboxSummary> {
        let viewer = ctx.viewer()?;
        Ok(ctx
            .shop()?
            .clear_read_notifications(viewer.user_id)
            .await?
            .into())
    }

    /// Writes the viewer's review of a product (once per product); it is shown after
    /// moderation. Whether it is a verified purchase is found in the viewer's orders.
    async fn write_review(
        &self,
        ctx: &Context<'_>,
        product_id: ID,
        rating: i32,
        title: String,
        body: String,
    ) -> async_graphql::Result<Review> {
        let viewer = ctx.viewer()?;
        let product_id = uuid_arg(&product_id, "product")?;
        Ok(ctx
            .shop()?
            .write_review(viewer.user_id, product_id, i64::from(rating), &title, &body)
            .await?
            .into())
    }

    /// Records that the viewer found an approved review helpful (once per viewer;
    /// not on one's own review).
    async fn mark_review_helpful(
        &self,
        ctx: &Context<'_>,
        review_id: ID,
    ) -> async_graphql::Result<Review> {
        let viewer = ctx.viewer()?;
        let review_id = uuid_arg(&review_id, "review")?;
        Ok(ctx
            .shop()?
            .mark_review_helpful(viewer.user_id, review_id)
            .await?
            .into())
    }
}
