//! The viewer's orders, from the `orders` read model: newest first with keyset
//! pagination on `(placed_at, order_id)`, and one order by id. Only the customer's
//! own rows are ever selected, so a foreign order id finds nothing, exactly like a
//! missing one. Staff-only columns (`risk_score`, `payment_id`) are not read.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use emporium_projections::args;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use uuid::Uuid;

use super::Shop;
use crate::error::ApiError;

/// The most orders one page shows.
pub(crate) const MAX_PAGE: i64 = 100;

/// An order as its customer sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct OrderRow {
    pub(crate) order_id: Uuid,
    pub(crate) status: String,
    pub(crate) currency: String,
    pub(crate) lines: Json<Vec<emporium_domain::order::OrderLine>>,
    pub(crate) item_count: i64,
    pub(crate) subtotal_minor: i64,
    pub(crate) tax_minor: i64,
    pub(crate) shipping_minor: i64,
    pub(crate) discount_minor: i64,
    pub(crate) grand_total_minor: i64,
    pub(crate) refunded_minor: i64,
    pub(crate) shipping_address: Json<serde_json::Value>,
    pub(crate) billing_address: Json<serde_json::Value>,
    pub(crate) tracking_number: Option<String>,
    pub(crate) cancellation_reason: Option<String>,
    pub(crate) history: Json<Vec<StatusChange>>,
    pub(crate) placed_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
    pub(crate) paid_at: Option<DateTime<Utc>>,
    pub(crate) shipped_at: Option<DateTime<Utc>>,
    pub(crate) delivered_at: Option<DateTime<Utc>>,
    pub(crate) cancelled_at: Option<DateTime<Utc>>,
}

/// A step of an order's status history.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct StatusChange {
    pub(crate) status: String,
    pub(crate) at: DateTime<Utc>,
}

pub(crate) const COLUMNS: &str =
    "order_id, status, currency, lines, item_count, subtotal_minor, tax_minor,
    shipping_minor, discount_minor, grand_total_minor, refunded_minor, shipping_address,
    billing_address, tracking_number, cancellation_reason, history, placed_at, updated_at,
    paid_at, shipped_at, delivered_at, cancelled_at";

/// Where a page of orders starts: after this order.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cursor {
    t: DateTime<Utc>,
    i: Uuid,
}

impl Cursor {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    fn decode(raw: &str) -> Result<Self, ApiError> {
        let bad = || ApiError::bad_input("after", "invalid_cursor", "not a cursor of this listing");
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
        serde_json::from_slice(&bytes).map_err(|_| bad())
    }
}

/// One page of the customer's orders.
#[derive(Debug)]
pub(crate) struct OrderPage {
    /// The orders with their cursors.
    pub(crate) items: Vec<(String, OrderRow)>,
    /// Whether another page follows.
    pub(crate) has_next_page: bool,
}

fn read_error(e: sqlx::Error, what: &'static str) -> ApiError {
    ApiError::internal(anyhow::Error::from(e).context(what))
}

impl Shop {
    /// The customer's orders, newest first, a page at a time (one query).
    ///
    /// # Errors
    /// `BAD_USER_INPUT` for a malformed cursor; when the read model cannot be read.
    pub(crate) async fn my_orders(
        &self,
        user_id: Uuid,
        first: i64,
        after: Option<&str>,
    ) -> Result<OrderPage, ApiError> {
        let first = first.clamp(1, MAX_PAGE);
        let after = after.map(Cursor::decode).transpose()?;
        let mut rows: Vec<OrderRow> = self
            .read
            .fetch_all(
                &format!(
                    "SELECT {COLUMNS} FROM orders
                     WHERE customer_id = $1
                       AND ($2 IS NULL OR (placed_at, order_id) < ($2, $3))
                     ORDER BY placed_at DESC, order_id DESC
                     LIMIT $4"
                ),
                args![
                    user_id,
                    after.as_ref().map(|c| c.t),
                    after.as_ref().map(|c| c.i),
                    first + 1
                ],
            )
            .await
            .map_err(|e| read_error(e, "read orders"))?;
        let has_next_page = i64::try_from(rows.len()).unwrap_or(i64::MAX) > first;
        rows.truncate(usize::try_from(first).unwrap_or(usize::MAX));
        Ok(OrderPage {
            items: rows
                .into_iter()
                .map(|r| {
                    let cursor = Cursor {
                        t: r.placed_at,
                        i: r.order_id,
                    }
                    .encode();
                    (cursor, r)
                })
                .collect(),
            has_next_page,
        })
    }

    /// One of the customer's orders.
    ///
    /// # Errors
    /// `NOT_FOUND` for a missing or foreign order.
    pub(crate) async fn my_order(
        &self,
        user_id: Uuid,
        order_id: Uuid,
    ) -> Result<OrderRow, ApiError> {
        self.read
            .fetch_optional(
                &format!("SELECT {COLUMNS} FROM orders WHERE order_id = $1 AND customer_id = $2"),
                args![order_id, user_id],
            )
            .await
            .map_err(|e| read_error(e, "read order"))?
            .ok_or(ApiError::NotFound { what: "order" })
    }
}
