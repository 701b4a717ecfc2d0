//! The e-mail sender: a durable JetStream consumer that turns business events into
//! mails, each sent once per (event, recipient).
//!
//! | event                          | mail                 | to                          |
//! | ------------------------------ | -------------------- | --------------------------- |
//! | `order` `OrderPaid`            | order confirmation   | the customer                |
//! | `payment` `PaymentFailed`      | payment failed       | the customer                |
//! | `order` `OrderShipped`         | shipped              | the customer                |
//! | `payment` `PaymentRefunded`    | refunded             | the customer                |
//! | `inventory` `LowStockDetected` | low stock            | `notifications.staff_emails` |
//!
//! The confirmation goes out on `OrderPaid`, not `OrderPlaced`: a placed order may
//! still fail its stock, fraud or payment step, and "confirmed" must not be taken back.
//! Refunds are mailed from the payment's `PaymentRefunded`, which both a refund the
//! staff asked for and one made in the provider's dashboard produce.
//!
//! The customer and the order details come from the event store (the `Order` and
//! `User` aggregates, loaded), never from a read model that may lag behind the
//! stream. A customer with no account (no `User` stream) gets no mail.
//!
//! **Once per event.** For each mail the sender claims `(event_id, recipient)` in
//! `email_ledger` with an insert in a transaction that stays open while SMTP accepts
//! the message, and commits after: a concurrent sender (another replica, a redelivery)
//! blocks on the uncommitted row and then finds it taken; a failed send rolls the
//! claim back and the message is redelivered later. The one window left is a crash or
//! a lost database connection between SMTP's acceptance and the commit: the mail is
//! then sent again on redelivery (at least once, never silently dropped).
//!
//! **Where it starts.** The consumer (`<PREFIX>_email_sender`) is durable and reads the
//! whole stream once, skipping events that happened (metadata `occurred_at`) more than
//! `notifications.max_event_age_seconds` ago (default a day), so a new deployment does
//! not mail the shop's history (nor `seed --demo`'s past orders) and a sender down for
//! less than that catches up.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, AckKind};
use emporium_commands::args;
use emporium_commands::dispatch::Loading;
use emporium_commands::sql::Db;
use emporium_commands::{AnyStore, Dispatcher};
use emporium_domain::inventory::InventoryEvent;
use emporium_domain::order::{Order, OrderEvent};
use emporium_domain::payment::{DeclineCode, PaymentEvent};
use emporium_domain::user::User;
use emporium_projections::bus::StreamLayout;
use emporium_projections::envelope::EventEnvelope;
use emporium_projections::stream::{StreamSettings, events_stream_config};
use futures::StreamExt as _;
use serde_json::{Value, json};
use uuid::Uuid;

use super::templates::{self, TemplateKind};
use crate::clock::Clock;
use crate::config::NotificationSettings;
use crate::mailer::{Mail, Mailer};

/// One mail to send for an event.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// What kind.
    pub kind: TemplateKind,
    /// The recipient's address.
    pub to: String,
    /// The template's variables.
    pub context: Value,
}

/// Turns events into mails; see the module documentation.
pub struct EmailSender {
    /// The ledger and the templates: PostgreSQL, or `gateway.db` embedded.
    db: Db,
    mailer: Arc<dyn Mailer>,
    clock: Arc<dyn Clock>,
    settings: NotificationSettings,
    orders: Dispatcher<Order, AnyStore>,
    users: Dispatcher<User, AnyStore>,
}

impl std::fmt::Debug for EmailSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSender").finish_non_exhaustive()
    }
}

/// The sender's durable consumer name on `layout`.
#[must_use]
pub fn consumer_name(layout: &StreamLayout) -> String {
    format!(
        "{}_email_sender",
        layout.stream_name().trim_end_matches("_EVENTS")
    )
}

/// When the event happened: its metadata's `occurred_at` (a backdated import or seed
/// keeps its business time), else when it was recorded.
fn occurred_at(event: &EventEnvelope) -> chrono::DateTime<chrono::Utc> {
    event
        .metadata
        .get("occurred_at")
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map_or(event.recorded_at, |t| t.with_timezone(&chrono::Utc))
}

fn reference(order_id: Uuid) -> String {
    order_id.simple().to_string()[..8].to_ascii_uppercase()
}

fn reason_text(reason: DeclineCode) -> &'static str {
    match reason {
        DeclineCode::CardDeclined => "the card was declined",
        DeclineCode::InsufficientFunds => "insufficient funds",
        DeclineCode::ExpiredCard => "the card has expired",
        DeclineCode::IncorrectCvc => "the security code was wrong",
        DeclineCode::ProcessingError => "a processing error at the bank",
        DeclineCode::Other => "the bank did not authorise it",
    }
}

impl EmailSender {
    /// A sender over the event store `store`, keeping its ledger in `db`.
    #[must_use]
    pub fn new(
        store: AnyStore,
        db: Db,
        mailer: Arc<dyn Mailer>,
        clock: Arc<dyn Clock>,
        settings: NotificationSettings,
    ) -> Self {
        Self {
            orders: Dispatcher::over(store.clone(), Loading::Replay),
            users: Dispatcher::over(store, Loading::Replay),
            db,
            mailer,
            clock,
            settings,
        }
    }

    /// Consumes the stream until `stop` resolves. Failures (NATS or PostgreSQL down,
    /// SMTP refusing) are logged and retried; a message is acknowledged only once its
    /// mails are sent (or it needs none).
    ///
    /// # Errors
    /// Never in practice: it retries until stopped.
    pub async fn run(
        self,
        jetstream: jetstream::Context,
        layout: StreamLayout,
        stop: impl std::future::Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        tokio::pin!(stop);
        let mut consumer = None;
        loop {
            let step = async {
                if consumer.is_none() {
                    consumer = Some(open_consumer(&jetstream, &layout).await?);
                }
                let Some(open) = consumer.as_ref() else {
                    anyhow::bail!("consumer not open");
                };
                self.step(open).await
            };
            tokio::select! {
                () = &mut stop => return Ok(()),
                result = step => {
                    if let Err(e) = result {
                        consumer = None;
                        tracing::warn!(error_code = "email_sender_failed", error = format!("{e:#}"), "e-mail sender step failed; retrying");
                        tokio::select! {
                            () = &mut stop => return Ok(()),
                            () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                    }
                }
            }
        }
    }

    /// The embedded mode's loop: reads the event store's feed after the cursor kept
    /// in `email_sender_cursor` (in this sender's database), handles each event and
    /// moves the cursor past it, until `stop` resolves. It looks again when `wake`
    /// fires (after each command) or after a second. An event whose mails fail stops
    /// the cursor there and is retried after a second: nothing is skipped, and the
    /// ledger keeps a retried event from mailing twice.
    ///
    /// # Errors
    /// Never in practice: it retries until stopped.
    #[cfg(feature = "sqlite")]
    pub async fn run_embedded(
        self,
        feed: emporium_projections::feed::SqliteFeed,
        wake: emporium_projections::projection::embedded::WakeHandle,
        stop: impl std::future::Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        use emporium_projections::feed::EventFeed as _;
        tokio::pin!(stop);
        let mut woken = wake.subscribe();
        loop {
            let step = async {
                let after: Option<i64> = self
                    .db
                    .scalar_optional(
                        "SELECT position FROM email_sender_cursor WHERE id = 1",
                        args![],
                    )
                    .await
                    .context("read the e-mail sender's cursor")?;
                let after = u64::try_from(after.unwrap_or(0)).unwrap_or(0);
                let events = feed
                    .read_after(
                        emporium_projections::envelope::CommitPosition {
                            transaction_id: after,
                            position: after,
                        },
                        64,
                    )
                    .await?;
                let mut done = None;
                let mut failed = None;
                for event in &events {
                    if let Err(e) = self.handle(event).await {
                        failed = Some(e);
                        break;
                    }
                    done = Some(event.position);
                }
                if let Some(position) = done {
                    self.db
                        .execute(
                            "INSERT INTO email_sender_cursor (id, position) VALUES (1, $1)
                             ON CONFLICT (id) DO UPDATE SET position = excluded.position",
                            args![i64::try_from(position).unwrap_or(i64::MAX)],
                        )
                        .await
                        .context("move the e-mail sender's cursor")?;
                }
                match failed {
                    Some(e) => Err(e),
                    None => Ok(events.len()),
                }
            };
            let idle = match step.await {
                Ok(n) => n == 0,
                Err(e) => {
                    metrics::counter!("emporium_email_failures_total").increment(1);
                    tracing::warn!(
                        error_code = "email_send_failed",
                        error = format!("{e:#}"),
                        "e-mail not sent; will retry"
                    );
                    true
                }
            };
            if idle {
                tokio::select! {
                    () = &mut stop => return Ok(()),
                    _ = woken.changed() => {}
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }

    /// One fetch: handles each message, acks what is done, naks the rest for later.
    async fn step(&self, consumer: &jetstream::consumer::PullConsumer) -> anyhow::Result<usize> {
        let mut batch = consumer
            .fetch()
            .max_messages(64)
            .expires(Duration::from_secs(1))
            .messages()
            .await
            .map_err(|e| anyhow::anyhow!(e).context("fetch from the e-mail consumer"))?;
        let mut handled = 0;
        while let Some(message) = batch.next().await {
            let message = message.map_err(|e| anyhow::anyhow!(e).context("fetch a message"))?;
            let outcome = match serde_json::from_slice::<EventEnvelope>(&message.payload) {
                Ok(envelope) => self.handle(&envelope).await.map(|_| ()),
                Err(e) => {
                    tracing::error!(error_code = "email_undecodable_event", error = %e, "not an event envelope; skipped");
                    Ok(())
                }
            };
            match outcome {
                Ok(()) => message
                    .ack()
                    .await
                    .map_err(|e| anyhow::anyhow!(e).context("ack"))?,
                Err(e) => {
                    metrics::counter!("emporium_email_failures_total").increment(1);
                    tracing::warn!(
                        error_code = "email_send_failed",
                        error = format!("{e:#}"),
                        "e-mail not sent; will retry"
                    );
                    message
                        .ack_with(AckKind::Nak(Some(Duration::from_secs(5))))
                        .await
                        .map_err(|e| anyhow::anyhow!(e).context("nak"))?;
                }
            }
            handled += 1;
        }
        Ok(handled)
    }

    /// Sends the mails `event` calls for that were not sent before; returns how many
    /// were sent now.
    ///
    /// # Errors
    /// When the event store, the ledger or the mailer fails: nothing claimed stays
    /// claimed, so handling the event again sends what is missing.
    pub async fn handle(&self, event: &EventEnvelope) -> anyhow::Result<usize> {
        let max_age = chrono::Duration::seconds(
            i64::try_from(self.settings.max_event_age_seconds).unwrap_or(i64::MAX),
        );
        if self.clock.now() - occurred_at(event) > max_age {
            return Ok(0);
        }
        let mut sent = 0;
        for mail in self.mails_for(event).await? {
            sent += usize::from(self.send_once(event.event_id, mail).await?);
        }
        Ok(sent)
    }

    /// The mails an event calls for.
    ///
    /// # Errors
    /// When the event cannot be decoded or the event store read.
    pub async fn mails_for(&self, event: &EventEnvelope) -> anyhow::Result<Vec<Outgoing>> {
        let decode = |what| format!("decode {} {} as {what}", event.event_type, event.event_id);
        match (event.aggregate_type.as_str(), event.event_type.as_str()) {
            ("order", "OrderPaid" | "OrderShipped") => {
                let order_id: Uuid = event.aggregate_id.parse().context("order id")?;
                let (kind, extra) =
                    match serde_json::from_value::<OrderEvent>(event.payload.clone())
                        .with_context(|| decode("OrderEvent"))?
                    {
                        OrderEvent::OrderPaid { amount, .. } => (
                            TemplateKind::OrderConfirmation,
                            json!({ "payment": { "amount": amount.to_string() } }),
                        ),
                        OrderEvent::OrderShipped {
                            tracking_number, ..
                        } => (
                            TemplateKind::OrderShipped,
                            json!({ "shipment": { "tracking_number": tracking_number } }),
                        ),
                        _ => return Ok(Vec::new()),
                    };
                self.to_customer(order_id, kind, extra).await
            }
            ("payment", "PaymentFailed" | "PaymentRefunded") => {
                match serde_json::from_value::<PaymentEvent>(event.payload.clone())
                    .with_context(|| decode("PaymentEvent"))?
                {
                    PaymentEvent::PaymentFailed {
                        order_id, reason, ..
                    } => {
                        let reason_code = serde_json::to_value(reason)?;
                        let extra = json!({ "payment": { "reason": reason_code, "reason_text": reason_text(reason) } });
                        self.to_customer(order_id, TemplateKind::PaymentFailed, extra)
                            .await
                    }
                    PaymentEvent::PaymentRefunded {
                        order_id,
                        amount,
                        total_refunded,
                        fully_refunded,
                        ..
                    } => {
                        let extra = json!({ "refund": {
                            "amount": amount.to_string(),
                            "total_refunded": total_refunded.to_string(),
                            "fully_refunded": fully_refunded,
                        } });
                        self.to_customer(order_id, TemplateKind::OrderRefunded, extra)
                            .await
                    }
                    _ => Ok(Vec::new()),
                }
            }
            ("inventory", "LowStockDetected") => {
                let InventoryEvent::LowStockDetected {
                    available,
                    threshold,
                    ..
                } = serde_json::from_value::<InventoryEvent>(event.payload.clone())
                    .with_context(|| decode("InventoryEvent"))?
                else {
                    return Ok(Vec::new());
                };
                let context = json!({
                    "shop_name": self.settings.shop_name,
                    "stock": { "sku": event.aggregate_id, "available": available, "threshold": threshold },
                });
                Ok(self
                    .settings
                    .staff_emails
                    .iter()
                    .map(|to| Outgoing {
                        kind: TemplateKind::LowStock,
                        to: to.clone(),
                        context: context.clone(),
                    })
                    .collect())
            }
            _ => Ok(Vec::new()),
        }
    }

    /// The customer's mail about an order, with the order's details and `extra`.
    async fn to_customer(
        &self,
        order_id: Uuid,
        kind: TemplateKind,
        extra: Value,
    ) -> anyhow::Result<Vec<Outgoing>> {
        let order = self
            .orders
            .load(&order_id.to_string())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("load the order")?;
        let Some(customer_id) = order.customer_id() else {
            tracing::warn!(%order_id, kind = kind.as_str(), "mail about an order never placed; skipped");
            return Ok(Vec::new());
        };
        let user = self
            .users
            .load(&customer_id.to_string())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("load the customer")?;
        let Some(email) = user.email() else {
            tracing::info!(%order_id, kind = kind.as_str(), "the customer has no account; no mail");
            return Ok(Vec::new());
        };
        let money =
            |m: Option<emporium_domain::Money>| m.map(|m| m.to_string()).unwrap_or_default();
        let (tax, shipping, discount) = order
            .adjustments()
            .map_or((None, None, None), |(t, s, d)| (Some(t), Some(s), Some(d)));
        let lines: Vec<Value> = order
            .lines()
            .iter()
            .map(|l| {
                json!({
                    "name": l.name,
                    "sku": l.sku.to_string(),
                    "quantity": l.quantity.get(),
                    "unit_price": l.unit_price.to_string(),
                    "total": l.line_total.to_string(),
                })
            })
            .collect();
        let mut context = json!({
            "shop_name": self.settings.shop_name,
            "customer": {
                "email": email.to_string(),
                "first_name": user.first_name().map(ToString::to_string).unwrap_or_default(),
            },
            "order": {
                "id": order_id.to_string(),
                "reference": reference(order_id),
                "total": money(order.grand_total()),
                "subtotal": money(order.subtotal()),
                "tax": money(tax),
                "shipping": money(shipping),
                "discount": money(discount),
                "lines": lines,
            },
        });
        if let (Some(target), Value::Object(extra)) = (context.as_object_mut(), extra) {
            target.extend(extra);
        }
        Ok(vec![Outgoing {
            kind,
            to: email.to_string(),
            context,
        }])
    }

    /// Sends `mail` unless the ledger holds it; `true` when sent now.
    async fn send_once(&self, event_id: Uuid, mail: Outgoing) -> anyhow::Result<bool> {
        let mut claim = self.db.begin().await.context("begin the ledger claim")?;
        let claimed = claim
            .conn()
            .execute(
                "INSERT INTO email_ledger (event_id, recipient, kind, sent_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (event_id, recipient) DO NOTHING",
                args![event_id, mail.to.as_str(), mail.kind.as_str(), self.clock.now()],
            )
            .await
            .context("claim the mail in the ledger")?
            == 1;
        if !claimed {
            return Ok(false);
        }
        let template = templates::load(&self.db, mail.kind).await?;
        let rendered = match templates::render(&template.subject, &template.body, &mail.context) {
            Ok(rendered) => rendered,
            Err(e) => {
                tracing::error!(kind = mail.kind.as_str(), error = %e, "stored e-mail template failed; the default is used");
                let (subject, body) = mail.kind.default_template();
                templates::render(subject, body, &mail.context)
                    .context("render the default template")?
            }
        };
        self.mailer
            .send(Mail {
                to: mail.to.clone(),
                subject: rendered.subject,
                body: rendered.body,
            })
            .await
            .context("send the mail")?;
        // At-least-once window: the relay accepted the mail; a failure here resends it.
        claim.commit().await.context("mark the mail sent")?;
        metrics::counter!("emporium_emails_sent_total", "kind" => mail.kind.as_str()).increment(1);
        Ok(true)
    }
}

async fn open_consumer(
    jetstream: &jetstream::Context,
    layout: &StreamLayout,
) -> anyhow::Result<jetstream::consumer::PullConsumer> {
    let stream = jetstream
        .get_or_create_stream(events_stream_config(layout, &StreamSettings::default()))
        .await
        .with_context(|| format!("open stream {}", layout.stream_name()))?;
    let name = consumer_name(layout);
    stream
        .get_or_create_consumer(
            &name,
            jetstream::consumer::pull::Config {
                durable_name: Some(name.clone()),
                description: Some("e-mail notifications".to_owned()),
                filter_subject: layout.all_subjects(),
                deliver_policy: jetstream::consumer::DeliverPolicy::All,
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(60),
                max_ack_pending: 1_000,
                ..Default::default()
            },
        )
        .await
        .with_context(|| format!("open consumer {name}"))
}
