//! Staff order work: shipping and delivery (the order's own status machine decides
//! whether the transition is allowed; the checkout process manager reacts to the
//! events), and the list of every order with filters, over `orders`.

use chrono::{DateTime, Utc};
use emporium_commands::CommandError;
use emporium_domain::order::{OrderCommand, OrderError};
use emporium_projections::args;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Staff, cursor, page_size, read_error};
use crate::error::ApiError;
use crate::shop::{ORDER_COLUMNS, OrderRow};

/// The projection an order answer waits for.
const PROJECTION: &str = "orders";

/// An order with the columns only staff see.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct StaffOrderRow {
    #[sqlx(flatten)]
    pub(crate) order: OrderRow,
    pub(crate) customer_id: Uuid,
    pub(crate) risk_score: Option<i32>,
    pub(crate) payment_id: Option<Uuid>,
}

/// Which orders the staff list shows; every field narrows it.
#[derive(Debug, Clone, Default)]
pub(crate) struct StaffOrderFilter {
    /// In this status (snake_case, as the read model stores it).
    pub(crate) status: Option<String>,
    /// Of this customer.
    pub(crate) customer_id: Option<Uuid>,
    /// Placed at or after.
    pub(crate) placed_from: Option<DateTime<Utc>>,
    /// Placed before.
    pub(crate) placed_to: Option<DateTime<Utc>>,
}

/// One page of orders, newest first.
#[derive(Debug)]
pub(crate) struct StaffOrderPage {
    pub(crate) items: Vec<(String, StaffOrderRow)>,
    pub(crate) has_next_page: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct OrderCursor {
    t: DateTime<Utc>,
    i: Uuid,
}

fn order_error(e: CommandError<OrderError>) -> ApiError {
    match e {
        CommandError::Rejected(e) => {
            let message = e.to_string();
            match e {
                OrderError::NotPlaced => ApiError::NotFound { what: "order" },
                OrderError::InvalidTransition { .. } => ApiError::Precondition {
                    rule: "order_transition",
                    message,
                },
                OrderError::InvalidTrackingNumber => {
                    ApiError::bad_input("trackingNumber", "tracking_number", message)
                }
                other => ApiError::internal(anyhow::anyhow!("order refused: {other}")),
            }
        }
        CommandError::Conflict { .. } => ApiError::Conflict,
        CommandError::Unexpected(e) => ApiError::Internal(e),
    }
}

impl Staff {
    async fn transition(
        &self,
        staff_id: Uuid,
        order_id: Uuid,
        command: OrderCommand,
    ) -> Result<StaffOrderRow, ApiError> {
        let committed = self
            .orders
            .execute_retrying(&order_id.to_string(), command, &self.metadata(staff_id))
            .await
            .map_err(order_error)?;
        self.shop
            .read_your_writes(PROJECTION, committed.position)
            .await?;
        self.order(order_id).await?.ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!(
                "order {order_id} is not in the read model yet"
            ))
        })
    }

    /// Hands a paid order to the carrier.
    ///
    /// # Errors
    /// `NOT_FOUND`; `FAILED_PRECONDITION` (`order_transition`) unless it is paid;
    /// `BAD_USER_INPUT` for a blank or overlong tracking number.
    pub(crate) async fn ship_order(
        &self,
        staff_id: Uuid,
        order_id: Uuid,
        tracking_number: Option<String>,
    ) -> Result<StaffOrderRow, ApiError> {
        let at = self.clock.now();
        self.transition(
            staff_id,
            order_id,
            OrderCommand::ShipOrder {
                tracking_number,
                at,
            },
        )
        .await
    }

    /// Records that a shipped order arrived.
    ///
    /// # Errors
    /// `NOT_FOUND`; `FAILED_PRECONDITION` (`order_transition`) unless it is shipped.
    pub(crate) async fn mark_delivered(
        &self,
        staff_id: Uuid,
        order_id: Uuid,
    ) -> Result<StaffOrderRow, ApiError> {
        let at = self.clock.now();
        self.transition(staff_id, order_id, OrderCommand::MarkDelivered { at })
            .await
    }

    /// Any order by id.
    ///
    /// # Errors
    /// When the read model cannot be read.
    pub(crate) async fn order(&self, order_id: Uuid) -> Result<Option<StaffOrderRow>, ApiError> {
        self.read
            .fetch_optional(
                &format!(
                    "SELECT {ORDER_COLUMNS}, customer_id, risk_score, payment_id FROM orders
                     WHERE order_id = $1"
                ),
                args![order_id],
            )
            .await
            .map_err(|e| read_error(e, "read order"))
    }

    /// Every order matching `filter`, newest first, a page at a time.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` for a page size outside 1..=100 or a foreign cursor.
    pub(crate) async fn all_orders(
        &self,
        filter: &StaffOrderFilter,
        first: i64,
        after: Option<&str>,
    ) -> Result<StaffOrderPage, ApiError> {
        let first = page_size(first)?;
        let after: Option<OrderCursor> = after.map(cursor::decode).transpose()?;
        let mut rows: Vec<StaffOrderRow> = self
            .read
            .fetch_all(
                &format!(
                    "SELECT {ORDER_COLUMNS}, customer_id, risk_score, payment_id FROM orders
                     WHERE ($1 IS NULL OR status = $1)
                       AND ($2 IS NULL OR customer_id = $2)
                       AND ($3 IS NULL OR placed_at >= $3)
                       AND ($4 IS NULL OR placed_at < $4)
                       AND ($5 IS NULL OR (placed_at, order_id) < ($5, $6))
                     ORDER BY placed_at DESC, order_id DESC
                     LIMIT $7"
                ),
                args![
                    filter.status.as_deref(),
                    filter.customer_id,
                    filter.placed_from,
                    filter.placed_to,
                    after.as_ref().map(|c| c.t),
                    after.as_ref().map(|c| c.i),
                    first + 1
                ],
            )
            .await
            .map_err(|e| read_error(e, "list orders"))?;
        let has_next_page = i64::try_from(rows.len()).unwrap_or(i64::MAX) > first;
        rows.truncate(usize::try_from(first).unwrap_or(usize::MAX));
        Ok(StaffOrderPage {
            items: rows
                .into_iter()
                .map(|r| {
                    let c = cursor::encode(&OrderCursor {
                        t: r.order.placed_at,
                        i: r.order.order_id,
                    });
                    (c, r)
                })
                .collect(),
            has_next_page,
        })
    }
}
