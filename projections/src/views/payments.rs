//! `payments`: one row per payment (one per order), mirroring the payment aggregate:
//! status, amounts authorised, captured and refunded, the decline reason, and the
//! customer who owns it, so "my payments" is one indexed query.
//!
//! Payment events do not name the customer; the projection keeps its own
//! `payment_orders` (order -> customer) from `OrderPlaced`, which always precedes the
//! order's payment in the stream. A payment for an order it never saw has no owner
//! (`customer_id` null) and is shown to no customer.

use emporium_domain::order::OrderEvent;
use emporium_domain::payment::PaymentEvent;
use sqlx::PgConnection;

use super::{aggregate_uuid, enum_text, one_row};
use crate::envelope::EventEnvelope;
use crate::projection::{Projection, decode};
use crate::sql::Conn;

/// Builds `payments` (and its helper `payment_orders`).
#[derive(Debug, Clone, Copy, Default)]
pub struct PaymentsProjection;

const SCHEMA: &str = "
CREATE TABLE payments (
    payment_id         uuid        PRIMARY KEY,
    order_id           uuid        NOT NULL,
    customer_id        uuid,
    provider           text        NOT NULL,
    provider_intent_id text        NOT NULL,
    status             text        NOT NULL,
    currency           text        NOT NULL,
    amount_minor       bigint      NOT NULL,
    authorised_minor   bigint      NOT NULL DEFAULT 0,
    captured_minor     bigint      NOT NULL DEFAULT 0,
    refunded_minor     bigint      NOT NULL DEFAULT 0,
    failure_reason     text,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL
);
CREATE INDEX payments_customer ON payments (customer_id, created_at DESC) WHERE customer_id IS NOT NULL;
CREATE INDEX payments_order ON payments (order_id);
CREATE TABLE payment_orders (
    order_id    uuid PRIMARY KEY,
    customer_id uuid NOT NULL
);
";

#[async_trait::async_trait]
impl Projection for PaymentsProjection {
    fn name(&self) -> &'static str {
        "payments"
    }

    fn version(&self) -> u32 {
        1
    }

    fn tables(&self) -> &'static [&'static str] {
        &["payments", "payment_orders"]
    }

    fn schema(&self) -> &'static str {
        SCHEMA
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &["order", "payment"]
    }

    async fn apply(&self, conn: &mut Conn<'_>, event: &EventEnvelope) -> anyhow::Result<()> {
        let conn = conn.postgres("the payments read model")?;
        match event.aggregate_type.as_str() {
            "order" => order(conn, event).await,
            "payment" => payment(conn, event).await,
            _ => Ok(()),
        }
    }
}

async fn order(conn: &mut PgConnection, event: &EventEnvelope) -> anyhow::Result<()> {
    // Only the owner matters here; skip the rest without decoding.
    if event.event_type != "OrderPlaced" {
        return Ok(());
    }
    let OrderEvent::OrderPlaced { customer_id, .. } = decode::<OrderEvent>(event)? else {
        anyhow::bail!("{} is not OrderPlaced", event.event_type);
    };
    let order_id = aggregate_uuid(event)?;
    sqlx::query(
        "INSERT INTO payment_orders (order_id, customer_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(order_id)
    .bind(customer_id)
    .execute(&mut *conn)
    .await?;
    // A payment recorded before its order (never in commit order, but harmless).
    sqlx::query("UPDATE payments SET customer_id = $2 WHERE order_id = $1 AND customer_id IS NULL")
        .bind(order_id)
        .bind(customer_id)
        .execute(conn)
        .await?;
    Ok(())
}

async fn payment(conn: &mut PgConnection, event: &EventEnvelope) -> anyhow::Result<()> {
    use PaymentEvent as E;
    let payment_id = aggregate_uuid(event)?;
    let update = |sql: &'static str| sqlx::query(sql).bind(payment_id);
    let result = match decode::<PaymentEvent>(event)? {
        E::PaymentCreated {
            order_id,
            provider,
            provider_intent_id,
            amount,
            at,
            ..
        } => {
            sqlx::query(
                "INSERT INTO payments (payment_id, order_id, customer_id, provider, provider_intent_id,
                     status, currency, amount_minor, created_at, updated_at)
                 VALUES ($1, $2, (SELECT customer_id FROM payment_orders WHERE order_id = $2),
                     $3, $4, 'created', $5, $6, $7, $7)",
            )
            .bind(payment_id)
            .bind(order_id)
            .bind(provider)
            .bind(provider_intent_id)
            .bind(amount.currency().code())
            .bind(amount.amount_minor())
            .bind(at)
            .execute(conn)
            .await?
        }
        E::PaymentActionRequired { at, .. } => {
            update("UPDATE payments SET status = 'requires_action', updated_at = $2 WHERE payment_id = $1")
                .bind(at)
                .execute(conn)
                .await?
        }
        E::PaymentAuthorised { amount, at, .. } => {
            update("UPDATE payments SET status = 'authorised', authorised_minor = $2, updated_at = $3 WHERE payment_id = $1")
                .bind(amount.amount_minor())
                .bind(at)
                .execute(conn)
                .await?
        }
        E::PaymentCaptured { amount, at, .. } => {
            update("UPDATE payments SET status = 'captured', captured_minor = $2, updated_at = $3 WHERE payment_id = $1")
                .bind(amount.amount_minor())
                .bind(at)
                .execute(conn)
                .await?
        }
        E::PaymentFailed { reason, at, .. } => {
            update("UPDATE payments SET status = 'failed', failure_reason = $2, updated_at = $3 WHERE payment_id = $1")
                .bind(enum_text(&reason)?)
                .bind(at)
                .execute(conn)
                .await?
        }
        E::PaymentVoided { at, .. } => {
            update("UPDATE payments SET status = 'voided', updated_at = $2 WHERE payment_id = $1")
                .bind(at)
                .execute(conn)
                .await?
        }
        // A request changes nothing the customer sees until the provider completes it.
        E::PaymentRefundRequested { at, .. } => {
            update("UPDATE payments SET updated_at = $2 WHERE payment_id = $1")
                .bind(at)
                .execute(conn)
                .await?
        }
        E::PaymentRefunded {
            total_refunded,
            fully_refunded,
            at,
            ..
        } => {
            update(
                "UPDATE payments SET refunded_minor = $2,
                     status = CASE WHEN $3 THEN 'refunded' ELSE status END, updated_at = $4
                 WHERE payment_id = $1",
            )
            .bind(total_refunded.amount_minor())
            .bind(fully_refunded)
            .bind(at)
            .execute(conn)
            .await?
        }
    };
    one_row(
        result,
        &format!("{} of payment {payment_id}", event.event_type),
    )
}
