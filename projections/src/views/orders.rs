//! `orders`: one row per order with its lines, totals, addresses and status history.
//! It serves both views: a customer's orders (`orders_customer`: customer, newest
//! first) and the staff list filtered by status, date and customer (`orders_status`,
//! `orders_placed`); the customer view simply leaves out the staff-only columns
//! (`risk_score`).

use chrono::{DateTime, Utc};
use emporium_domain::order::OrderEvent;

use super::{aggregate_uuid, enum_text, json, one_changed};
use crate::args;
use crate::envelope::EventEnvelope;
use crate::projection::{Projection, decode};
use crate::sql::{Backend, Conn, Value};

/// Builds `orders`.
#[derive(Debug, Clone, Copy, Default)]
pub struct OrdersProjection;

const SCHEMA: &str = "
CREATE TABLE orders (
    order_id            uuid        PRIMARY KEY,
    customer_id         uuid        NOT NULL,
    status              text        NOT NULL,
    currency            text        NOT NULL,
    -- [{sku, product_id, name, unit_price, quantity, line_total}]
    lines               jsonb       NOT NULL,
    item_count          bigint      NOT NULL,
    subtotal_minor      bigint      NOT NULL,
    tax_minor           bigint      NOT NULL,
    shipping_minor      bigint      NOT NULL,
    discount_minor      bigint      NOT NULL,
    grand_total_minor   bigint      NOT NULL,
    refunded_minor      bigint      NOT NULL DEFAULT 0,
    shipping_address    jsonb       NOT NULL,
    billing_address     jsonb       NOT NULL,
    shipping_country    text        NOT NULL,
    -- Staff only.
    risk_score          integer,
    payment_id          uuid,
    tracking_number     text,
    cancellation_reason text,
    -- [{status, at}], oldest first.
    history             jsonb       NOT NULL DEFAULT '[]',
    placed_at           timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    paid_at             timestamptz,
    shipped_at          timestamptz,
    delivered_at        timestamptz,
    cancelled_at        timestamptz
);
CREATE INDEX orders_customer ON orders (customer_id, placed_at DESC);
CREATE INDEX orders_status ON orders (status, placed_at DESC);
CREATE INDEX orders_placed ON orders (placed_at DESC);
";

/// SQLite takes the same DDL (its column types are affinities: `uuid` holds a blob,
/// `jsonb` JSON text, `timestamptz` RFC 3339 text). A `history` entry's `at` is that
/// text on SQLite and PostgreSQL's JSON rendering of a `timestamptz` on PostgreSQL:
/// both parse as the same RFC 3339 instant.
const SQLITE_SCHEMA: &str = SCHEMA;

#[async_trait::async_trait]
impl Projection for OrdersProjection {
    fn name(&self) -> &'static str {
        "orders"
    }

    fn version(&self) -> u32 {
        1
    }

    fn tables(&self) -> &'static [&'static str] {
        &["orders"]
    }

    fn schema(&self) -> &'static str {
        SCHEMA
    }

    fn sqlite_schema(&self) -> Option<&'static str> {
        Some(SQLITE_SCHEMA)
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &["order"]
    }

    async fn apply(&self, conn: &mut Conn<'_>, event: &EventEnvelope) -> anyhow::Result<()> {
        use OrderEvent as E;
        let order_id = aggregate_uuid(event)?;
        let backend = conn.backend();
        // (new status, when, extra assignments, their values in order from $4)
        let (status, at, set, values): (&str, DateTime<Utc>, &str, Vec<Value>) =
            match decode::<OrderEvent>(event)? {
                E::OrderPlaced {
                    order_id,
                    customer_id,
                    lines,
                    currency,
                    subtotal,
                    tax_total,
                    shipping_total,
                    discount_total,
                    grand_total,
                    shipping_address,
                    billing_address,
                    at,
                } => {
                    let items: i64 = lines.iter().map(|l| i64::from(l.quantity.get())).sum();
                    let sql = format!(
                        "INSERT INTO orders
                             (order_id, customer_id, status, currency, lines, item_count,
                              subtotal_minor, tax_minor, shipping_minor, discount_minor,
                              grand_total_minor, shipping_address, billing_address,
                              shipping_country, history, placed_at, updated_at)
                         VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
                                 $13, {}, $14, $14)",
                        history_start(backend, "'pending'", "$14")
                    );
                    conn.execute(
                        &sql,
                        args![
                            order_id,
                            customer_id,
                            currency.code(),
                            json(&lines)?,
                            items,
                            subtotal.amount_minor(),
                            tax_total.amount_minor(),
                            shipping_total.amount_minor(),
                            discount_total.amount_minor(),
                            grand_total.amount_minor(),
                            json(&shipping_address)?,
                            json(&billing_address)?,
                            shipping_address.country().as_str(),
                            at
                        ],
                    )
                    .await?;
                    return Ok(());
                }
                E::OrderStockReserved { at } => ("reserved", at, "", vec![]),
                E::OrderFraudCheckPassed { risk_score, at, .. } => (
                    "awaiting_payment",
                    at,
                    ", risk_score = $4",
                    vec![Value::from(i64::from(risk_score))],
                ),
                E::OrderHeldForReview { risk_score, at, .. } => (
                    "held_for_review",
                    at,
                    ", risk_score = $4",
                    vec![Value::from(i64::from(risk_score))],
                ),
                E::OrderReleasedFromReview { at } => ("awaiting_payment", at, "", vec![]),
                // Typed uuid arguments: no `::uuid` cast, which SQLite lacks.
                E::OrderPaymentFailed { payment_id, at } => (
                    "payment_failed",
                    at,
                    ", payment_id = $4",
                    vec![Value::from(payment_id)],
                ),
                E::OrderPaid { payment_id, at, .. } => (
                    "paid",
                    at,
                    ", payment_id = $4, paid_at = $3",
                    vec![Value::from(payment_id)],
                ),
                E::OrderShipped {
                    tracking_number,
                    at,
                } => (
                    "shipped",
                    at,
                    ", tracking_number = $4, shipped_at = $3",
                    vec![Value::from(tracking_number)],
                ),
                E::OrderDelivered { at } => ("delivered", at, ", delivered_at = $3", vec![]),
                E::OrderCancelled { reason, at, .. } => (
                    "cancelled",
                    at,
                    ", cancellation_reason = $4, cancelled_at = $3",
                    vec![Value::from(enum_text(&reason)?)],
                ),
                E::OrderRefunded {
                    total_refunded,
                    fully_refunded,
                    at,
                    ..
                } => {
                    let sql = format!(
                        "UPDATE orders
                         SET refunded_minor = $2, updated_at = $3,
                             status = CASE WHEN $4 THEN 'refunded' ELSE status END,
                             history = CASE WHEN $4 THEN {} ELSE history END
                         WHERE order_id = $1",
                        history_push(backend, "'refunded'", "$3")
                    );
                    let changed = conn
                        .execute(
                            &sql,
                            args![order_id, total_refunded.amount_minor(), at, fully_refunded],
                        )
                        .await?;
                    return one_changed(changed, "order");
                }
            };
        let sql = format!(
            "UPDATE orders
             SET status = $2, updated_at = $3, history = {}{set}
             WHERE order_id = $1",
            history_push(backend, "$2", "$3")
        );
        let mut all = args![order_id, status, at];
        all.0.extend(values);
        one_changed(conn.execute(&sql, all).await?, "order")
    }
}

/// `[{status, at}]`, the history's first entry, from SQL expressions for a text and a
/// time. Building JSON is where the dialects part: `jsonb` functions on PostgreSQL,
/// JSON1 functions on SQLite (where `at` is already RFC 3339 text).
fn history_start(backend: Backend, status: &str, at: &str) -> String {
    match backend {
        Backend::Postgres => format!(
            "jsonb_build_array(jsonb_build_object('status', {status}::text, 'at', {at}::timestamptz))"
        ),
        Backend::Sqlite => format!("json_array(json_object('status', {status}, 'at', {at}))"),
    }
}

/// `history` with `{status, at}` appended (see [`history_start`]).
fn history_push(backend: Backend, status: &str, at: &str) -> String {
    match backend {
        Backend::Postgres => format!(
            "history || jsonb_build_object('status', {status}::text, 'at', {at}::timestamptz)"
        ),
        Backend::Sqlite => {
            format!("json_insert(history, '$[#]', json_object('status', {status}, 'at', {at}))")
        }
    }
}
