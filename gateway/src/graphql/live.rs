//! Subscriptions (graphql-ws over WebSocket at `/graphql/ws`): the viewer's order
//! status changes and new notifications, fed by the read models' change feed
//! (`crate::shop::live`).
//!
//! The connection is authorised once, by the access token in the `connection_init`
//! payload (see `crate::ws`); every subscription serves only the viewer's rows (a
//! foreign order id is `NOT_FOUND`, exactly like a missing one, and yields nothing),
//! and ends with `UNAUTHENTICATED` when the token expires. Depth and complexity limits
//! apply as to any operation.

use std::time::Duration;

use async_graphql::{ComplexObject, Context, ID, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use uuid::Uuid;

use super::ContextExt;
use super::customer::{Notification, Order, OrderStatus};
use crate::error::ApiError;
use crate::shop::OrderUpdate;

/// When the connection's access token expires (set at `connection_init`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionDeadline(pub(crate) tokio::time::Instant);

impl SessionDeadline {
    /// The deadline `valid_for` from now.
    pub(crate) fn after(valid_for: Duration) -> Self {
        Self(tokio::time::Instant::now() + valid_for)
    }
}

/// A step one of the viewer's orders entered.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(complex)]
pub(crate) struct OrderStatusUpdate {
    /// The order.
    order_id: ID,
    #[graphql(skip)]
    order_uuid: Uuid,
    /// The status the step entered (`OTHER` for one that is not a status, such as a
    /// refund).
    status: OrderStatus,
    /// The step as recorded in the order's history (`paid`, `shipped`, `refunded`,
    /// ...).
    step: String,
    /// When it happened.
    at: DateTime<Utc>,
    /// The order's status now (later steps may already have happened).
    current_status: OrderStatus,
}

impl From<OrderUpdate> for OrderStatusUpdate {
    fn from(u: OrderUpdate) -> Self {
        Self {
            order_id: ID(u.order_id.to_string()),
            order_uuid: u.order_id,
            status: OrderStatus::parse(&u.step.status),
            step: u.step.status,
            at: u.step.at,
            current_status: OrderStatus::parse(&u.current),
        }
    }
}

#[ComplexObject]
impl OrderStatusUpdate {
    /// The order as it is now (read when this update is sent).
    async fn order(&self, ctx: &Context<'_>) -> async_graphql::Result<Order> {
        let viewer = ctx.viewer()?;
        Ok(ctx
            .shop()?
            .my_order(viewer.user_id, self.order_uuid)
            .await?
            .into())
    }
}

/// Ends `stream` with `UNAUTHENTICATED` once the connection's token has expired.
fn until_expired<T: Send + 'static>(
    stream: impl Stream<Item = Result<T, ApiError>> + Send + 'static,
    deadline: Option<SessionDeadline>,
) -> impl Stream<Item = async_graphql::Result<T>> + Send + 'static {
    let deadline = deadline.map_or_else(
        || tokio::time::Instant::now() + Duration::from_secs(u64::from(u32::MAX)),
        |d| d.0,
    );
    let expired = futures::stream::once(async move {
        Err::<T, _>(async_graphql::Error::from(ApiError::Unauthenticated))
    })
    .filter(move |_| futures::future::ready(tokio::time::Instant::now() >= deadline));
    stream
        .map(|r| r.map_err(async_graphql::Error::from))
        .take_until(tokio::time::sleep_until(deadline))
        .chain(expired)
}

fn deadline(ctx: &Context<'_>) -> Option<SessionDeadline> {
    ctx.data_opt::<SessionDeadline>().copied()
}

/// The viewer's live changes.
#[derive(Debug, Default)]
pub(crate) struct LiveSubscription;

#[Subscription]
impl LiveSubscription {
    /// One of the viewer's orders: the step it is at now, then every status step it
    /// enters. `NOT_FOUND` (and nothing else) for an order that is not the viewer's.
    async fn my_order_status(
        &self,
        ctx: &Context<'_>,
        order_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<OrderStatusUpdate>>> {
        let viewer = ctx.viewer()?;
        let order_id =
            Uuid::parse_str(order_id.as_str()).map_err(|_| ApiError::NotFound { what: "order" })?;
        let stream = ctx
            .shop()?
            .live()
            .order_updates(viewer.user_id, Some(order_id))
            .await?;
        Ok(until_expired(
            stream.map(|r| r.map(OrderStatusUpdate::from)),
            deadline(ctx),
        ))
    }

    /// Every status step any of the viewer's orders enters from now on (orders placed
    /// later included).
    async fn my_order_updates(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<OrderStatusUpdate>>> {
        let viewer = ctx.viewer()?;
        let stream = ctx
            .shop()?
            .live()
            .order_updates(viewer.user_id, None)
            .await?;
        Ok(until_expired(
            stream.map(|r| r.map(OrderStatusUpdate::from)),
            deadline(ctx),
        ))
    }

    /// The viewer's new in-app notifications, as they arrive.
    async fn my_notifications(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Notification>>> {
        let viewer = ctx.viewer()?;
        let stream = ctx.shop()?.live().notifications(viewer.user_id).await?;
        Ok(until_expired(
            stream.map(|r| r.map(Notification::from)),
            deadline(ctx),
        ))
    }
}
