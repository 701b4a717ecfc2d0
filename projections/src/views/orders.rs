//! `orders`: one row per order with its lines, totals, addresses and status history.
//! It serves both views: a customer's orders (`orders_customer`: customer, newest
//! first) and the staff list filtered by status, date and customer (`orders_status`,
//! `orders_placed`); the customer view simply leaves out the staff-only columns
//! (`risk_score`).

use anyhow::Context as _;
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

    /// An order placed in this batch is inserted once with the steps that follow it
    /// here (a checkout commits placed, reserved and the fraud decision together),
    /// instead of an insert and an update per step; the rest goes event by event.
    async fn apply_batch(
        &self,
        conn: &mut Conn<'_>,
        events: &[EventEnvelope],
    ) -> anyhow::Result<()> {
        let mut i = 0;
        while let Some(event) = events.get(i) {
            i += 1;
            if event.event_type != "OrderPlaced" {
                self.apply(conn, event).await?;
                continue;
            }
            let placed = decode::<OrderEvent>(event)?;
            let mut steps = Vec::new();
            while let Some(next) = events.get(i)
                && next.aggregate_id == event.aggregate_id
            {
                let step = decode::<OrderEvent>(next)?;
                if Step::of(&step).is_none() {
                    break;
                }
                steps.push(step);
                i += 1;
            }
            insert_placed(conn, &placed, &steps).await?;
        }
        Ok(())
    }

    async fn apply(&self, conn: &mut Conn<'_>, event: &EventEnvelope) -> anyhow::Result<()> {
        use OrderEvent as E;
        let order_id = aggregate_uuid(event)?;
        let backend = conn.backend();
        // (new status, when, extra assignments, their values in order from $4)
        let (status, at, set, values): (&str, DateTime<Utc>, &str, Vec<Value>) =
            match decode::<OrderEvent>(event)? {
                placed @ E::OrderPlaced { .. } => return insert_placed(conn, &placed, &[]).await,
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

/// What a step right after placement sets: the status, when, and the staff-only
/// columns it fills. Shipping, delivery, cancellation and refunds are not folded.
struct Step {
    status: &'static str,
    at: DateTime<Utc>,
    risk_score: Option<i64>,
    payment_id: Option<uuid::Uuid>,
    paid: bool,
}

impl Step {
    fn of(event: &OrderEvent) -> Option<Self> {
        use OrderEvent as E;
        let step = |status, at| Self {
            status,
            at,
            risk_score: None,
            payment_id: None,
            paid: false,
        };
        Some(match *event {
            E::OrderStockReserved { at } => step("reserved", at),
            E::OrderFraudCheckPassed { risk_score, at, .. } => Self {
                risk_score: Some(i64::from(risk_score)),
                ..step("awaiting_payment", at)
            },
            E::OrderHeldForReview { risk_score, at, .. } => Self {
                risk_score: Some(i64::from(risk_score)),
                ..step("held_for_review", at)
            },
            E::OrderReleasedFromReview { at } => step("awaiting_payment", at),
            E::OrderPaymentFailed { payment_id, at } => Self {
                payment_id: Some(payment_id),
                ..step("payment_failed", at)
            },
            E::OrderPaid { payment_id, at, .. } => Self {
                payment_id: Some(payment_id),
                paid: true,
                ..step("paid", at)
            },
            _ => return None,
        })
    }
}

/// Inserts the order `placed` describes as it stands after `steps` (events of the
/// same order that [`Step::of`] folds, in order): one statement, the same row as the
/// insert and one update per step would leave.
async fn insert_placed(
    conn: &mut Conn<'_>,
    placed: &OrderEvent,
    steps: &[OrderEvent],
) -> anyhow::Result<()> {
    let OrderEvent::OrderPlaced {
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
    } = placed
    else {
        anyhow::bail!("expected OrderPlaced");
    };
    let backend = conn.backend();
    let items: i64 = lines.iter().map(|l| i64::from(l.quantity.get())).sum();
    let mut all = args![
        *order_id,
        *customer_id,
        currency.code(),
        json(lines)?,
        items,
        subtotal.amount_minor(),
        tax_total.amount_minor(),
        shipping_total.amount_minor(),
        discount_total.amount_minor(),
        grand_total.amount_minor(),
        json(shipping_address)?,
        json(billing_address)?,
        shipping_address.country().as_str(),
        *at
    ];
    let (mut status, mut updated_at) = ("'pending'".to_owned(), "$14".to_owned());
    let mut history = history_start(backend, "'pending'", "$14");
    let (mut risk_score, mut payment_id, mut paid_at) = (None, None, None);
    for event in steps {
        let step = Step::of(event).context("a step that is not folded")?;
        all.0.push(Value::from(step.status));
        all.0.push(Value::from(step.at));
        let (s, a) = (format!("${}", all.0.len() - 1), format!("${}", all.0.len()));
        history = history_append(backend, &history, &s, &a);
        risk_score = step.risk_score.or(risk_score);
        payment_id = step.payment_id.or(payment_id);
        if step.paid {
            paid_at = Some(a.clone());
        }
        (status, updated_at) = (s, a);
    }
    all.0.push(Value::from(risk_score));
    all.0.push(Value::from(payment_id));
    let n = all.0.len();
    let sql = format!(
        "INSERT INTO orders
             (order_id, customer_id, status, currency, lines, item_count,
              subtotal_minor, tax_minor, shipping_minor, discount_minor,
              grand_total_minor, shipping_address, billing_address,
              shipping_country, history, placed_at, updated_at,
              risk_score, payment_id, paid_at)
         VALUES ($1, $2, {status}, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
                 $13, {history}, $14, {updated_at}, ${risk}, ${payment}, {paid_at})",
        risk = n - 1,
        payment = n,
        paid_at = paid_at.as_deref().unwrap_or("NULL"),
    );
    conn.execute(&sql, all).await?;
    Ok(())
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
    history_append(backend, "history", status, at)
}

/// The JSON array `base` (an SQL expression) with `{status, at}` appended.
fn history_append(backend: Backend, base: &str, status: &str, at: &str) -> String {
    match backend {
        Backend::Postgres => format!(
            "{base} || jsonb_build_object('status', {status}::text, 'at', {at}::timestamptz)"
        ),
        Backend::Sqlite => {
            format!("json_insert({base}, '$[#]', json_object('status', {status}, 'at', {at}))")
        }
    }
}
