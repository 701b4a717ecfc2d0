//! `orders`: one row per order with its lines, totals, addresses and status history.
//! It serves both views: a customer's orders (`orders_customer`: customer, newest
//! first) and the staff list filtered by status, date and customer (`orders_status`,
//! `orders_placed`); the customer view simply leaves out the staff-only columns
//! (`risk_score`).

use chrono::{DateTime, Utc};
use emporium_domain::order::OrderEvent;

use super::{aggregate_uuid, enum_text, json, one_row};
use crate::envelope::EventEnvelope;
use crate::projection::{Projection, decode};
use crate::sql::Conn;

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

    fn aggregate_types(&self) -> &'static [&'static str] {
        &["order"]
    }

    async fn apply(&self, conn: &mut Conn<'_>, event: &EventEnvelope) -> anyhow::Result<()> {
        let conn = conn.postgres("the orders read model")?;
        use OrderEvent as E;
        let order_id = aggregate_uuid(event)?;
        // (new status, when, extra assignments, their binds in order from $4)
        let (status, at, set, binds): (&str, DateTime<Utc>, &str, Vec<Bind>) = match decode::<
            OrderEvent,
        >(
            event
        )? {
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
                sqlx::query(
                        "INSERT INTO orders
                             (order_id, customer_id, status, currency, lines, item_count,
                              subtotal_minor, tax_minor, shipping_minor, discount_minor,
                              grand_total_minor, shipping_address, billing_address,
                              shipping_country, history, placed_at, updated_at)
                         VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                                 jsonb_build_array(jsonb_build_object('status', 'pending', 'at', $14::timestamptz)),
                                 $14, $14)",
                    )
                    .bind(order_id)
                    .bind(customer_id)
                    .bind(currency.code())
                    .bind(json(&lines)?)
                    .bind(items)
                    .bind(subtotal.amount_minor())
                    .bind(tax_total.amount_minor())
                    .bind(shipping_total.amount_minor())
                    .bind(discount_total.amount_minor())
                    .bind(grand_total.amount_minor())
                    .bind(json(&shipping_address)?)
                    .bind(json(&billing_address)?)
                    .bind(shipping_address.country().as_str())
                    .bind(at)
                    .execute(conn)
                    .await?;
                return Ok(());
            }
            E::OrderStockReserved { at } => ("reserved", at, "", vec![]),
            E::OrderFraudCheckPassed { risk_score, at, .. } => (
                "awaiting_payment",
                at,
                ", risk_score = $4",
                vec![Bind::Int(i64::from(risk_score))],
            ),
            E::OrderHeldForReview { risk_score, at, .. } => (
                "held_for_review",
                at,
                ", risk_score = $4",
                vec![Bind::Int(i64::from(risk_score))],
            ),
            E::OrderReleasedFromReview { at } => ("awaiting_payment", at, "", vec![]),
            E::OrderPaymentFailed { payment_id, at } => (
                "payment_failed",
                at,
                ", payment_id = $4::uuid",
                vec![Bind::Text(payment_id.to_string())],
            ),
            E::OrderPaid { payment_id, at, .. } => (
                "paid",
                at,
                ", payment_id = $4::uuid, paid_at = $3",
                vec![Bind::Text(payment_id.to_string())],
            ),
            E::OrderShipped {
                tracking_number,
                at,
            } => (
                "shipped",
                at,
                ", tracking_number = $4, shipped_at = $3",
                vec![Bind::OptText(tracking_number)],
            ),
            E::OrderDelivered { at } => ("delivered", at, ", delivered_at = $3", vec![]),
            E::OrderCancelled { reason, at, .. } => (
                "cancelled",
                at,
                ", cancellation_reason = $4, cancelled_at = $3",
                vec![Bind::Text(enum_text(&reason)?)],
            ),
            E::OrderRefunded {
                total_refunded,
                fully_refunded,
                at,
                ..
            } => {
                let r = sqlx::query(
                        "UPDATE orders
                         SET refunded_minor = $2, updated_at = $3,
                             status = CASE WHEN $4 THEN 'refunded' ELSE status END,
                             history = CASE WHEN $4
                                 THEN history || jsonb_build_object('status', 'refunded', 'at', $3::timestamptz)
                                 ELSE history END
                         WHERE order_id = $1",
                    )
                    .bind(order_id)
                    .bind(total_refunded.amount_minor())
                    .bind(at)
                    .bind(fully_refunded)
                    .execute(conn)
                    .await?;
                return one_row(r, "order");
            }
        };
        let sql = format!(
            "UPDATE orders
             SET status = $2, updated_at = $3,
                 history = history || jsonb_build_object('status', $2::text, 'at', $3::timestamptz){set}
             WHERE order_id = $1"
        );
        let mut query = sqlx::query(&sql).bind(order_id).bind(status).bind(at);
        for bind in binds {
            query = match bind {
                Bind::Int(v) => query.bind(v),
                Bind::Text(v) => query.bind(v),
                Bind::OptText(v) => query.bind(v),
            };
        }
        one_row(query.execute(conn).await?, "order")
    }
}

/// An extra value for a status update.
enum Bind {
    Int(i64),
    Text(String),
    OptText(Option<String>),
}
