//! `notifications`: in-app notifications, derived from business events, with the
//! read and cleared state each user records in their inbox.
//!
//! A notification is written for every order event a customer should hear about
//! (placed, paid, shipped, delivered, cancelled, refunded), a failed payment, and, for
//! staff, low stock. Its id is the source event's id, so a rebuild gives the same ids
//! and a client's "mark read" still points at the right row. The inbox's events
//! (`NotificationRead`, `AllNotificationsRead`, `ReadNotificationsCleared`) set
//! `read_at` and `cleared` on the owner's rows only: a foreign or unknown id changes
//! nothing. Staff notifications (`audience = 'staff'`, no `user_id`) are shared and have
//! no per-person read state.
//!
//! Order events after `OrderPlaced`, and payment events, do not repeat the customer, so
//! the projection keeps its own `notification_orders` (order -> customer); it never
//! reads the `orders` projection's table.
//! An order event for an order never placed stops the projection (the log and the
//! read model disagree); a failed payment for an order it never saw is skipped, having
//! no one to tell.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use emporium_domain::inbox::InboxEvent;
use emporium_domain::inventory::InventoryEvent;
use emporium_domain::order::{CancellationReason, OrderEvent};
use emporium_domain::payment::{DeclineCode, PaymentEvent};
use uuid::Uuid;

use super::aggregate_uuid;
use crate::args;
use crate::envelope::EventEnvelope;
use crate::projection::{Projection, decode};
use crate::sql::{Backend, Conn};

/// Builds `notifications` (and its helper `notification_orders`).
#[derive(Debug, Clone, Copy, Default)]
pub struct NotificationsProjection;

const SCHEMA: &str = "
CREATE TABLE notifications (
    notification_id uuid        PRIMARY KEY,
    -- The recipient; null for staff notifications.
    user_id         uuid,
    -- 'customer' (one user) or 'staff' (everyone on staff).
    audience        text        NOT NULL,
    kind            text        NOT NULL,
    title           text        NOT NULL,
    body            text        NOT NULL,
    order_id        uuid,
    created_at      timestamptz NOT NULL,
    read_at         timestamptz,
    cleared         boolean     NOT NULL DEFAULT false,
    CHECK ((audience = 'staff') = (user_id IS NULL))
);
-- My latest 20 (cleared ones hidden).
CREATE INDEX notifications_latest ON notifications (user_id, created_at DESC) WHERE NOT cleared;
-- My unread count.
CREATE INDEX notifications_unread ON notifications (user_id) WHERE read_at IS NULL AND NOT cleared;
-- The staff feed.
CREATE INDEX notifications_staff ON notifications (created_at DESC) WHERE audience = 'staff';
CREATE TABLE notification_orders (
    order_id    uuid PRIMARY KEY,
    customer_id uuid NOT NULL
);
";

/// SQLite takes the same DDL: its column types are affinities (`boolean` holds 0/1),
/// and it has CHECK constraints and partial indexes (`WHERE NOT cleared` included).
const SQLITE_SCHEMA: &str = SCHEMA;

#[async_trait::async_trait]
impl Projection for NotificationsProjection {
    fn name(&self) -> &'static str {
        "notifications"
    }

    fn version(&self) -> u32 {
        1
    }

    fn tables(&self) -> &'static [&'static str] {
        &["notifications", "notification_orders"]
    }

    fn schema(&self) -> &'static str {
        SCHEMA
    }

    fn sqlite_schema(&self) -> Option<&'static str> {
        Some(SQLITE_SCHEMA)
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &["order", "payment", "inventory", "inbox"]
    }

    async fn apply(&self, conn: &mut Conn<'_>, event: &EventEnvelope) -> anyhow::Result<()> {
        match event.aggregate_type.as_str() {
            "order" => order(conn, event).await,
            "payment" => payment(conn, event).await,
            "inventory" => inventory(conn, event).await,
            "inbox" => inbox(conn, event).await,
            _ => Ok(()),
        }
    }
}

/// Who a notification is for.
enum Recipient {
    /// The customer who placed the notice's order, remembered for the order's later
    /// notices.
    PlacedBy(Uuid),
    /// The customer who placed this order, looked up by the insert itself.
    CustomerOf(Uuid),
    Staff,
}

/// A notification about to be written.
struct Notice {
    to: Recipient,
    kind: &'static str,
    title: String,
    body: String,
    order_id: Option<Uuid>,
    created_at: DateTime<Utc>,
}

impl Notice {
    /// Writes it; `false` when it is for the customer of an order this projection
    /// never saw placed (nothing written). One statement either way.
    async fn insert(self, conn: &mut Conn<'_>, event: &EventEnvelope) -> anyhow::Result<bool> {
        let changed = match self.to {
            Recipient::CustomerOf(order_id) => {
                conn.execute(
                    "INSERT INTO notifications
                         (notification_id, user_id, audience, kind, title, body, order_id, created_at)
                     SELECT $1, customer_id, 'customer', $2, $3, $4, $5, $6
                       FROM notification_orders WHERE order_id = $7",
                    args![
                        event.event_id,
                        self.kind,
                        self.title,
                        self.body,
                        self.order_id,
                        self.created_at,
                        order_id
                    ],
                )
                .await?
            }
            Recipient::PlacedBy(user_id) => {
                let order_id = self.order_id.context("an order's notice without the order")?;
                if conn.backend() == Backend::Postgres {
                    // One statement: the owner and the notice.
                    conn.execute(
                        "WITH owner AS (INSERT INTO notification_orders (order_id, customer_id)
                                        VALUES ($7, $2) ON CONFLICT DO NOTHING)
                         INSERT INTO notifications
                             (notification_id, user_id, audience, kind, title, body, order_id,
                              created_at)
                         VALUES ($1, $2, 'customer', $3, $4, $5, $7, $6)",
                        args![
                            event.event_id,
                            user_id,
                            self.kind,
                            self.title,
                            self.body,
                            self.created_at,
                            order_id
                        ],
                    )
                    .await?
                } else {
                    conn.execute(
                        "INSERT INTO notification_orders (order_id, customer_id) VALUES ($1, $2)
                         ON CONFLICT DO NOTHING",
                        args![order_id, user_id],
                    )
                    .await?;
                    Self::insert_for(conn, event, Some(user_id), &self).await?
                }
            }
            Recipient::Staff => Self::insert_for(conn, event, None, &self).await?,
        };
        Ok(changed == 1)
    }

    async fn insert_for(
        conn: &mut Conn<'_>,
        event: &EventEnvelope,
        user_id: Option<Uuid>,
        notice: &Self,
    ) -> anyhow::Result<u64> {
        let audience = if user_id.is_some() {
            "customer"
        } else {
            "staff"
        };
        Ok(conn
            .execute(
                "INSERT INTO notifications
                     (notification_id, user_id, audience, kind, title, body, order_id, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                args![
                    event.event_id,
                    user_id,
                    audience,
                    notice.kind,
                    notice.title.as_str(),
                    notice.body.as_str(),
                    notice.order_id,
                    notice.created_at
                ],
            )
            .await?)
    }
}

/// A short, human reference to an order: the first block of its id.
fn reference(order_id: Uuid) -> String {
    order_id.simple().to_string()[..8].to_ascii_uppercase()
}

async fn order(conn: &mut Conn<'_>, event: &EventEnvelope) -> anyhow::Result<()> {
    use OrderEvent as E;
    let order_id = aggregate_uuid(event)?;
    let order_ref = reference(order_id);
    let mut to = Recipient::CustomerOf(order_id);
    let (kind, title, body, at) = match decode::<OrderEvent>(event)? {
        E::OrderPlaced {
            customer_id,
            lines,
            grand_total,
            at,
            ..
        } => {
            to = Recipient::PlacedBy(customer_id);
            let items: u64 = lines.iter().map(|l| u64::from(l.quantity.get())).sum();
            (
                "order_placed",
                format!("Order {order_ref} placed"),
                format!("We received your order of {items} item(s) for {grand_total}."),
                at,
            )
        }
        E::OrderPaid { amount, at, .. } => (
            "order_paid",
            format!("Order {order_ref} paid"),
            format!("Your payment of {amount} was received; we are preparing your order."),
            at,
        ),
        E::OrderShipped {
            tracking_number,
            at,
        } => (
            "order_shipped",
            format!("Order {order_ref} shipped"),
            match tracking_number {
                Some(tracking) => format!("Your order is on its way (tracking {tracking})."),
                None => "Your order is on its way.".to_owned(),
            },
            at,
        ),
        E::OrderDelivered { at } => (
            "order_delivered",
            format!("Order {order_ref} delivered"),
            "Your order was delivered. Enjoy!".to_owned(),
            at,
        ),
        E::OrderCancelled { reason, at, .. } => (
            "order_cancelled",
            format!("Order {order_ref} cancelled"),
            format!("Your order was cancelled: {}.", cancellation(reason)),
            at,
        ),
        E::OrderRefunded {
            amount,
            fully_refunded,
            at,
            ..
        } => (
            "order_refunded",
            format!("Order {order_ref} refunded"),
            if fully_refunded {
                format!("{amount} was refunded; your order is fully refunded.")
            } else {
                format!("{amount} was refunded.")
            },
            at,
        ),
        // Internal steps (reservation, fraud gate) are not news to the customer; a
        // failed payment is told from the payment's own event, which says why.
        E::OrderStockReserved { .. }
        | E::OrderFraudCheckPassed { .. }
        | E::OrderHeldForReview { .. }
        | E::OrderReleasedFromReview { .. }
        | E::OrderPaymentFailed { .. } => return Ok(()),
    };
    let written = Notice {
        to,
        kind,
        title,
        body,
        order_id: Some(order_id),
        created_at: at,
    }
    .insert(conn, event)
    .await?;
    anyhow::ensure!(
        written,
        "{} for order {order_id}, which was never placed",
        event.event_type
    );
    Ok(())
}

fn cancellation(reason: CancellationReason) -> &'static str {
    match reason {
        CancellationReason::CustomerRequest => "you asked us to",
        CancellationReason::OutOfStock => "some items are out of stock",
        CancellationReason::ReservationExpired => "the items were not paid for in time",
        CancellationReason::PaymentFailed => "the payment failed",
        CancellationReason::FraudRejected | CancellationReason::StaffDecision => {
            "we could not accept it"
        }
    }
}

async fn payment(conn: &mut Conn<'_>, event: &EventEnvelope) -> anyhow::Result<()> {
    let PaymentEvent::PaymentFailed {
        order_id,
        reason,
        at,
    } = decode::<PaymentEvent>(event)?
    else {
        return Ok(());
    };
    let why = match reason {
        DeclineCode::CardDeclined => "the card was declined",
        DeclineCode::InsufficientFunds => "insufficient funds",
        DeclineCode::ExpiredCard => "the card has expired",
        DeclineCode::IncorrectCvc => "the security code was wrong",
        DeclineCode::ProcessingError | DeclineCode::Other => "the payment could not be processed",
    };
    let written = Notice {
        to: Recipient::CustomerOf(order_id),
        kind: "payment_failed",
        title: format!("Payment for order {} failed", reference(order_id)),
        body: format!("Your payment did not go through: {why}. Please try another card."),
        order_id: Some(order_id),
        created_at: at,
    }
    .insert(conn, event)
    .await?;
    if !written {
        // A payment is only ever made for a placed order; one for an order this
        // projection never saw has no one to tell.
        tracing::debug!(%order_id, "payment failed for an order never placed; no notification");
    }
    Ok(())
}

async fn inventory(conn: &mut Conn<'_>, event: &EventEnvelope) -> anyhow::Result<()> {
    // Only low stock is news, and only to staff; skip the rest without decoding.
    if event.event_type != "LowStockDetected" {
        return Ok(());
    }
    let InventoryEvent::LowStockDetected {
        available,
        threshold,
        at,
    } = decode::<InventoryEvent>(event)?
    else {
        anyhow::bail!("{} is not LowStockDetected", event.event_type);
    };
    let sku = &event.aggregate_id;
    Notice {
        to: Recipient::Staff,
        kind: "low_stock",
        title: format!("Low stock: {sku}"),
        body: format!("{available} unit(s) available, at or below the threshold of {threshold}."),
        order_id: None,
        created_at: at,
    }
    .insert(conn, event)
    .await?;
    Ok(())
}

async fn inbox(conn: &mut Conn<'_>, event: &EventEnvelope) -> anyhow::Result<()> {
    use InboxEvent as E;
    let user_id = aggregate_uuid(event)?;
    match decode::<InboxEvent>(event)? {
        E::NotificationRead {
            notification_id,
            at,
        } => {
            // A repeat keeps the first read time; a foreign or unknown id matches nothing.
            conn.execute(
                "UPDATE notifications SET read_at = COALESCE(read_at, $3)
                 WHERE notification_id = $1 AND user_id = $2",
                args![notification_id, user_id, at],
            )
            .await?;
        }
        E::AllNotificationsRead { up_to, at } => {
            // On SQLite times are fixed-width UTC text, so `<=` compares instants.
            conn.execute(
                "UPDATE notifications SET read_at = $3
                 WHERE user_id = $1 AND read_at IS NULL AND created_at <= $2",
                args![user_id, up_to, at],
            )
            .await?;
        }
        E::ReadNotificationsCleared { .. } => {
            conn.execute(
                "UPDATE notifications SET cleared = true
                 WHERE user_id = $1 AND read_at IS NOT NULL AND NOT cleared",
                args![user_id],
            )
            .await?;
        }
    }
    Ok(())
}
