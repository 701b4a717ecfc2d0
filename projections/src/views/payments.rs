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

use super::{aggregate_uuid, enum_text, one_changed};
use crate::args;
use crate::envelope::EventEnvelope;
use crate::projection::{Projection, decode};
use crate::sql::{Backend, Conn};

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

/// SQLite takes the same DDL: its column types are affinities, and it has partial
/// indexes.
const SQLITE_SCHEMA: &str = SCHEMA;

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

    fn sqlite_schema(&self) -> Option<&'static str> {
        Some(SQLITE_SCHEMA)
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &["order", "payment"]
    }

    async fn apply(&self, conn: &mut Conn<'_>, event: &EventEnvelope) -> anyhow::Result<()> {
        match event.aggregate_type.as_str() {
            "order" => order(conn, event).await,
            "payment" => payment(conn, event).await,
            _ => Ok(()),
        }
    }

    /// A payment created in this batch is inserted once as it stands after the
    /// events of it that follow here (a checkout commits created, authorised and
    /// captured together), not an insert and an update per event.
    async fn apply_batch(
        &self,
        conn: &mut Conn<'_>,
        events: &[EventEnvelope],
    ) -> anyhow::Result<()> {
        let mut i = 0;
        while let Some(event) = events.get(i) {
            i += 1;
            if event.aggregate_type != "payment" || event.event_type != "PaymentCreated" {
                self.apply(conn, event).await?;
                continue;
            }
            let mut row = Row::created(event)?;
            while let Some(next) = events.get(i)
                && next.aggregate_type == "payment"
                && next.aggregate_id == event.aggregate_id
            {
                row.fold(decode::<PaymentEvent>(next)?)?;
                i += 1;
            }
            row.insert(conn).await?;
        }
        Ok(())
    }
}

/// A payment row as its events leave it (see [`payment`] for one event at a time).
struct Row {
    payment_id: uuid::Uuid,
    order_id: uuid::Uuid,
    provider: String,
    provider_intent_id: String,
    status: &'static str,
    currency: &'static str,
    amount_minor: i64,
    authorised_minor: i64,
    captured_minor: i64,
    refunded_minor: i64,
    failure_reason: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

impl Row {
    fn created(event: &EventEnvelope) -> anyhow::Result<Self> {
        let PaymentEvent::PaymentCreated {
            order_id,
            provider,
            provider_intent_id,
            amount,
            at,
            ..
        } = decode::<PaymentEvent>(event)?
        else {
            anyhow::bail!("{} is not PaymentCreated", event.event_type);
        };
        Ok(Self {
            payment_id: aggregate_uuid(event)?,
            order_id,
            provider,
            provider_intent_id,
            status: "created",
            currency: amount.currency().code(),
            amount_minor: amount.amount_minor(),
            authorised_minor: 0,
            captured_minor: 0,
            refunded_minor: 0,
            failure_reason: None,
            created_at: at,
            updated_at: at,
        })
    }

    /// What each event's update in [`payment`] does, to this row in memory.
    fn fold(&mut self, event: PaymentEvent) -> anyhow::Result<()> {
        use PaymentEvent as E;
        let at = match event {
            E::PaymentCreated { .. } => anyhow::bail!("payment {} created twice", self.payment_id),
            E::PaymentActionRequired { at, .. } => {
                self.status = "requires_action";
                at
            }
            E::PaymentAuthorised { amount, at, .. } => {
                self.status = "authorised";
                self.authorised_minor = amount.amount_minor();
                at
            }
            E::PaymentCaptured { amount, at, .. } => {
                self.status = "captured";
                self.captured_minor = amount.amount_minor();
                at
            }
            E::PaymentFailed { reason, at, .. } => {
                self.status = "failed";
                self.failure_reason = Some(enum_text(&reason)?);
                at
            }
            E::PaymentVoided { at, .. } => {
                self.status = "voided";
                at
            }
            E::PaymentRefundRequested { at, .. } => at,
            E::PaymentRefunded {
                total_refunded,
                fully_refunded,
                at,
                ..
            } => {
                self.refunded_minor = total_refunded.amount_minor();
                if fully_refunded {
                    self.status = "refunded";
                }
                at
            }
        };
        self.updated_at = at;
        Ok(())
    }

    async fn insert(self, conn: &mut Conn<'_>) -> anyhow::Result<()> {
        conn.execute(
            "INSERT INTO payments (payment_id, order_id, customer_id, provider, provider_intent_id,
                 status, currency, amount_minor, authorised_minor, captured_minor,
                 refunded_minor, failure_reason, created_at, updated_at)
             VALUES ($1, $2, (SELECT customer_id FROM payment_orders WHERE order_id = $2),
                 $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            args![
                self.payment_id,
                self.order_id,
                self.provider,
                self.provider_intent_id,
                self.status,
                self.currency,
                self.amount_minor,
                self.authorised_minor,
                self.captured_minor,
                self.refunded_minor,
                self.failure_reason,
                self.created_at,
                self.updated_at
            ],
        )
        .await?;
        Ok(())
    }
}

async fn order(conn: &mut Conn<'_>, event: &EventEnvelope) -> anyhow::Result<()> {
    // Only the owner matters here; skip the rest without decoding.
    if event.event_type != "OrderPlaced" {
        return Ok(());
    }
    let OrderEvent::OrderPlaced { customer_id, .. } = decode::<OrderEvent>(event)? else {
        anyhow::bail!("{} is not OrderPlaced", event.event_type);
    };
    let order_id = aggregate_uuid(event)?;
    // With it, a payment recorded before its order (never in commit order, but
    // harmless) gets its owner: one statement on PostgreSQL, two on SQLite.
    if conn.backend() == Backend::Postgres {
        conn.execute(
            "WITH owner AS (INSERT INTO payment_orders (order_id, customer_id) VALUES ($1, $2)
                            ON CONFLICT DO NOTHING)
             UPDATE payments SET customer_id = $2 WHERE order_id = $1 AND customer_id IS NULL",
            args![order_id, customer_id],
        )
        .await?;
        return Ok(());
    }
    conn.execute(
        "INSERT INTO payment_orders (order_id, customer_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        args![order_id, customer_id],
    )
    .await?;
    conn.execute(
        "UPDATE payments SET customer_id = $2 WHERE order_id = $1 AND customer_id IS NULL",
        args![order_id, customer_id],
    )
    .await?;
    Ok(())
}

async fn payment(conn: &mut Conn<'_>, event: &EventEnvelope) -> anyhow::Result<()> {
    use PaymentEvent as E;
    let payment_id = aggregate_uuid(event)?;
    let (sql, values) = match decode::<PaymentEvent>(event)? {
        E::PaymentCreated {
            order_id,
            provider,
            provider_intent_id,
            amount,
            at,
            ..
        } => (
            "INSERT INTO payments (payment_id, order_id, customer_id, provider, provider_intent_id,
                 status, currency, amount_minor, created_at, updated_at)
             VALUES ($1, $2, (SELECT customer_id FROM payment_orders WHERE order_id = $2),
                 $3, $4, 'created', $5, $6, $7, $7)",
            args![
                payment_id,
                order_id,
                provider,
                provider_intent_id,
                amount.currency().code(),
                amount.amount_minor(),
                at
            ],
        ),
        E::PaymentActionRequired { at, .. } => (
            "UPDATE payments SET status = 'requires_action', updated_at = $2 WHERE payment_id = $1",
            args![payment_id, at],
        ),
        E::PaymentAuthorised { amount, at, .. } => (
            "UPDATE payments SET status = 'authorised', authorised_minor = $2, updated_at = $3 WHERE payment_id = $1",
            args![payment_id, amount.amount_minor(), at],
        ),
        E::PaymentCaptured { amount, at, .. } => (
            "UPDATE payments SET status = 'captured', captured_minor = $2, updated_at = $3 WHERE payment_id = $1",
            args![payment_id, amount.amount_minor(), at],
        ),
        E::PaymentFailed { reason, at, .. } => (
            "UPDATE payments SET status = 'failed', failure_reason = $2, updated_at = $3 WHERE payment_id = $1",
            args![payment_id, enum_text(&reason)?, at],
        ),
        E::PaymentVoided { at, .. } => (
            "UPDATE payments SET status = 'voided', updated_at = $2 WHERE payment_id = $1",
            args![payment_id, at],
        ),
        // A request changes nothing the customer sees until the provider completes it.
        E::PaymentRefundRequested { at, .. } => (
            "UPDATE payments SET updated_at = $2 WHERE payment_id = $1",
            args![payment_id, at],
        ),
        E::PaymentRefunded {
            total_refunded,
            fully_refunded,
            at,
            ..
        } => (
            "UPDATE payments SET refunded_minor = $2,
                 status = CASE WHEN $3 THEN 'refunded' ELSE status END, updated_at = $4
             WHERE payment_id = $1",
            args![
                payment_id,
                total_refunded.amount_minor(),
                fully_refunded,
                at
            ],
        ),
    };
    one_changed(
        conn.execute(sql, values).await?,
        &format!("{} of payment {payment_id}", event.event_type),
    )
}
