//! Payments over HTTP: the Stripe webhook endpoint (signatures, dedupe under
//! concurrent redelivery, out-of-order delivery reconciled with the intent) and the
//! customer's payments.
//!
//! The checkout process manager is not needed here: the tests create the state it
//! would (an order awaiting payment, an authorised payment of its offline intent)
//! through `Dispatcher`s on the app's database, with the durable offline provider on
//! that same database, so the app's webhook handler retrieves the same intents. What
//! Stripe would do on its side (a capture, a dashboard refund, 3-D Secure) is done on
//! the provider, and the webhook Stripe would send is signed and POSTed.

use std::time::Duration;

use async_nats::jetstream;
use chrono::Utc;
use emporium_commands::payments::events::StripeEvent;
use emporium_commands::payments::reconcile::{create_intent_key, payment_id_for};
use emporium_commands::payments::webhook::WebhookSecret;
use emporium_commands::payments::{
    CardNumber, Confirmation, CreateIntent, IdempotencyKey, OfflineProvider, PaymentIntent,
    PaymentMethod, PaymentProvider, Simulation,
};
use emporium_commands::{AnyStore, Dispatcher, Loading};
use emporium_domain::metadata::Actor;
use emporium_domain::order::{Order, OrderCommand, OrderLine};
use emporium_domain::payment::{Payment, PaymentCommand, PaymentStatus};
use emporium_domain::{Address, AddressInput, Currency, EventMetadata, Money, Quantity, Sku};
use emporium_gateway::clock::Clock;
use emporium_gateway::config::Secret;
use emporium_projections::bus::StreamLayout;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_app_with};

pub(crate) const SECRET: &str = "whsec_test_current";
pub(crate) const STAFF_INBOX: &str = "stock@shop.test";

/// The platform with a webhook secret and a staff address for low-stock mail.
pub(crate) async fn app() -> TestApp {
    spawn_app_with(|s| {
        s.payments.webhook_secrets = vec![Secret::new(SECRET)];
        s.notifications.staff_emails = vec![STAFF_INBOX.to_owned()];
    })
    .await
}

pub(crate) fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

pub(crate) fn meta() -> EventMetadata {
    EventMetadata::new(
        Uuid::new_v4(),
        Actor::System("test-checkout".into()),
        Utc::now(),
    )
}

fn address() -> Address {
    Address::parse(AddressInput {
        full_name: "Ada Lovelace".into(),
        line1: "12 St James's Square".into(),
        city: "London".into(),
        postal_code: "SW1Y 4JH".into(),
        country: "GB".into(),
        ..AddressInput::default()
    })
    .unwrap()
}

/// What the checkout would have done, done directly.
pub(crate) struct Checkout {
    pub(crate) orders: Dispatcher<Order, AnyStore>,
    pub(crate) payments: Dispatcher<Payment, AnyStore>,
    pub(crate) provider: OfflineProvider,
}

/// An order awaiting payment and its payment.
pub(crate) struct Paying {
    pub(crate) order_id: Uuid,
    pub(crate) payment_id: Uuid,
    pub(crate) intent: PaymentIntent,
}

impl Checkout {
    pub(crate) fn new(app: &TestApp) -> Self {
        let store = app.store().clone();
        Self {
            orders: Dispatcher::over(store.clone(), Loading::Replay),
            payments: Dispatcher::over(store.clone(), Loading::Replay),
            provider: OfflineProvider::durable(store.db()),
        }
    }

    /// Registers a customer: (access token, user id).
    pub(crate) async fn customer(app: &TestApp, email: &str) -> (String, Uuid) {
        let (access, _) = app.signed_up(email, "correct horse battery").await;
        let r = app
            .post_graphql("{ me { id } }", json!({}), Some(&access))
            .await;
        (access, r.ok("me")["id"].as_str().unwrap().parse().unwrap())
    }

    /// Places an order of 2 mugs (grand total 34.00 EUR), reserved and fraud-checked.
    pub(crate) async fn order(&self, customer: Uuid) -> Uuid {
        let order_id = Uuid::new_v4();
        for command in [
            OrderCommand::PlaceOrder {
                order_id,
                customer_id: customer,
                lines: vec![OrderLine {
                    sku: Sku::parse("MUG-1").unwrap(),
                    product_id: Uuid::new_v4(),
                    name: "Enamel mug".into(),
                    unit_price: eur(1_250),
                    quantity: Quantity::new(2).unwrap(),
                    line_total: eur(2_500),
                }],
                tax_total: eur(500),
                shipping_total: eur(400),
                discount_total: eur(0),
                shipping_address: address(),
                billing_address: address(),
                currency: Currency::EUR,
                at: Utc::now(),
            },
            OrderCommand::MarkStockReserved { at: Utc::now() },
            OrderCommand::PassFraudCheck {
                reasons: Vec::new(),
                risk_score: 5,
                at: Utc::now(),
            },
        ] {
            self.orders
                .execute(&order_id.to_string(), command, &meta())
                .await
                .expect("order command");
        }
        order_id
    }

    /// The order's intent (by the shared key convention) confirmed with `card`, and
    /// the payment recorded as the checkout records it (created, then authorised or
    /// requiring action).
    pub(crate) async fn pay(&self, order_id: Uuid, card: &str) -> Paying {
        let payment_id = payment_id_for(order_id);
        let intent = self
            .provider
            .create_intent(
                CreateIntent {
                    amount: eur(3_400),
                    order_id,
                },
                &create_intent_key(payment_id),
            )
            .await
            .unwrap();
        self.payment(
            payment_id,
            PaymentCommand::CreatePayment {
                payment_id,
                order_id,
                provider: "offline".into(),
                provider_intent_id: intent.id.0.clone(),
                amount: intent.amount,
                idempotency_key: create_intent_key(payment_id).as_str().to_owned(),
                at: Utc::now(),
            },
        )
        .await;
        let confirmation = self
            .provider
            .confirm(
                &intent.id,
                PaymentMethod::Card(CardNumber::parse(card).unwrap()),
                &IdempotencyKey::for_command("confirm", payment_id),
            )
            .await
            .unwrap();
        match &confirmation {
            Confirmation::Authorised(i) => {
                self.payment(
                    payment_id,
                    PaymentCommand::AuthorisePayment {
                        amount: i.amount_capturable,
                        at: Utc::now(),
                    },
                )
                .await;
            }
            Confirmation::RequiresAction { next_action, .. } => {
                self.payment(
                    payment_id,
                    PaymentCommand::RequireAction {
                        next_action: next_action.clone(),
                        at: Utc::now(),
                    },
                )
                .await;
            }
            Confirmation::Declined { .. } => {}
        }
        Paying {
            order_id,
            payment_id,
            intent: confirmation.intent().clone(),
        }
    }

    pub(crate) async fn payment(&self, payment_id: Uuid, command: PaymentCommand) {
        self.payments
            .execute(&payment_id.to_string(), command, &meta())
            .await
            .expect("payment command");
    }

    pub(crate) async fn order_command(&self, order_id: Uuid, command: OrderCommand) {
        self.orders
            .execute(&order_id.to_string(), command, &meta())
            .await
            .expect("order command");
    }

    /// Stripe captures (the checkout asked it to).
    pub(crate) async fn capture_at_provider(&self, paying: &Paying) -> PaymentIntent {
        self.provider
            .capture(
                &paying.intent.id,
                None,
                &IdempotencyKey::for_command("capture", paying.payment_id),
            )
            .await
            .unwrap()
    }

    pub(crate) async fn status(&self, payment_id: Uuid) -> Option<PaymentStatus> {
        self.payments
            .load(&payment_id.to_string())
            .await
            .unwrap()
            .status()
    }
}

/// How many events of each type the payment recorded.
pub(crate) async fn payment_events(app: &TestApp, payment_id: Uuid) -> Vec<(String, i64)> {
    app.events_db()
        .fetch_all(
            "SELECT event_type, count(*) FROM events WHERE aggregate_type = 'payment' AND aggregate_id = $1
             GROUP BY event_type ORDER BY event_type",
            emporium_commands::args![payment_id.to_string()],
        )
        .await
        .unwrap()
}

pub(crate) fn count(events: &[(String, i64)], event_type: &str) -> i64 {
    events
        .iter()
        .find(|(t, _)| t == event_type)
        .map_or(0, |(_, n)| *n)
}

/// POSTs a webhook body with a `Stripe-Signature` header (if any): (status, body).
pub(crate) async fn post_webhook(
    app: &TestApp,
    payload: &[u8],
    signature: Option<&str>,
) -> (u16, Value) {
    let mut request = app
        .client
        .post(format!("{}/webhooks/stripe", app.address))
        .header("content-type", "application/json")
        .body(payload.to_vec());
    if let Some(signature) = signature {
        request = request.header("stripe-signature", signature);
    }
    let response = request.send().await.expect("webhook sent");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Sends `event` as Stripe would, signed now (the app's clock) with the secret.
pub(crate) async fn deliver(app: &TestApp, event: &StripeEvent) -> (u16, Value) {
    let signature = event.signature(&WebhookSecret::new(SECRET), app.clock.now().timestamp());
    post_webhook(app, &event.payload, Some(&signature)).await
}

async fn processed_webhooks(app: &TestApp) -> i64 {
    crate::helpers::number(
        &app.events_db(),
        "SELECT count(*) FROM stripe_webhook_events",
        emporium_commands::args![],
    )
    .await
}

/// Waits until every committed event is in the stream and the e-mail sender has
/// acknowledged all of it: after this, every mail the events call for was handed to
/// the SMTP sink (a condition polled with a deadline, not a sleep).
pub(crate) async fn emails_settled(app: &TestApp) {
    if crate::helpers::embedded() {
        return embedded_emails_settled(app).await;
    }
    let nats = async_nats::connect(emporium_tests::nats_url())
        .await
        .expect("nats");
    let js = jetstream::new(nats);
    let layout = StreamLayout::new(&app.settings.nats.stream_prefix).unwrap();
    let consumer_name = emporium_gateway::notify::consumer_name(&layout);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let events = crate::helpers::number(
            &app.events_db(),
            "SELECT count(*) FROM events",
            emporium_commands::args![],
        )
        .await;
        let settled = async {
            let mut stream = js.get_stream(layout.stream_name()).await.ok()?;
            let last = stream.info().await.ok()?.state.last_sequence;
            let mut consumer = stream
                .get_consumer::<jetstream::consumer::pull::Config>(&consumer_name)
                .await
                .ok()?;
            let info = consumer.info().await.ok()?;
            Some(
                i64::try_from(last).ok()? == events
                    && info.num_pending == 0
                    && info.num_ack_pending == 0
                    && info.ack_floor.stream_sequence == last,
            )
        }
        .await
        .unwrap_or(false);
        if settled {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "e-mail sender did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every notification mail the sink holds now (sign-up verification mails aside).
pub(crate) async fn drain_mail(app: &TestApp) -> Vec<crate::smtp::ReceivedMail> {
    let mut mails = Vec::new();
    while let Some(mail) = app.mail.try_next_mail().await {
        if mail.subject() != "Verify your e-mail address" {
            mails.push(mail);
        }
    }
    mails
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_webhook_ten_times_at_once_records_one_capture_and_one_email() {
    let app = app().await;
    let checkout = Checkout::new(&app);
    let (_, customer) = Checkout::customer(&app, "ada@example.com").await;
    let order_id = checkout.order(customer).await;
    let paying = checkout.pay(order_id, "4242424242424242").await;
    assert_eq!(
        checkout.status(paying.payment_id).await,
        Some(PaymentStatus::Authorised)
    );

    // Stripe captured; its success webhook arrives ten times at once.
    let captured = checkout.capture_at_provider(&paying).await;
    let event = StripeEvent::for_intent("payment_intent.succeeded", &captured);
    let deliveries = (0..10).map(|_| deliver(&app, &event));
    for (status, body) in futures::future::join_all(deliveries).await {
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(
        checkout.status(paying.payment_id).await,
        Some(PaymentStatus::Captured)
    );
    let events = payment_events(&app, paying.payment_id).await;
    assert_eq!(count(&events, "PaymentCaptured"), 1, "{events:?}");

    // A dashboard refund: its webhook ten times at once, one refund, one mail.
    let refund = checkout
        .provider
        .simulate(Simulation::DashboardRefund {
            intent: paying.intent.id.clone(),
            amount: None,
        })
        .await
        .unwrap();
    let deliveries = (0..10).map(|_| deliver(&app, &refund.event));
    for (status, body) in futures::future::join_all(deliveries).await {
        assert_eq!(status, 200, "{body}");
    }
    let events = payment_events(&app, paying.payment_id).await;
    assert_eq!(count(&events, "PaymentRefunded"), 1, "{events:?}");
    assert_eq!(
        checkout.status(paying.payment_id).await,
        Some(PaymentStatus::Refunded)
    );
    assert_eq!(processed_webhooks(&app).await, 2);

    emails_settled(&app).await;
    let mails = drain_mail(&app).await;
    let refunds: Vec<_> = mails
        .iter()
        .filter(|m| m.subject().starts_with("Refund of"))
        .collect();
    assert_eq!(refunds.len(), 1, "{mails:#?}");
    assert_eq!(refunds[0].to, vec!["ada@example.com".to_owned()]);
    assert!(refunds[0].data.contains("34.00 EUR"), "{}", refunds[0].data);
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_webhook_before_the_success_webhook_ends_refunded() {
    let app = app().await;
    let checkout = Checkout::new(&app);
    let (_, customer) = Checkout::customer(&app, "grace@example.com").await;
    let paying = checkout
        .pay(checkout.order(customer).await, "4242424242424242")
        .await;
    let captured = checkout.capture_at_provider(&paying).await;
    let success = StripeEvent::for_intent("payment_intent.succeeded", &captured);
    let refund = checkout
        .provider
        .simulate(Simulation::DashboardRefund {
            intent: paying.intent.id.clone(),
            amount: Some(eur(1_000)),
        })
        .await
        .unwrap();

    // The refund's webhook first: the payment is captured and refunded in one go.
    let (status, body) = deliver(&app, &refund.event).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("processed")),
        "{body}"
    );
    let payment = checkout
        .payments
        .load(&paying.payment_id.to_string())
        .await
        .unwrap();
    assert_eq!(payment.status(), Some(PaymentStatus::Captured));
    assert_eq!(payment.captured(), Some(eur(3_400)));
    assert_eq!(payment.refunded_minor(), 1_000);
    // The late success webhook changes nothing.
    let (status, _) = deliver(&app, &success).await;
    assert_eq!(status, 200);
    let events = payment_events(&app, paying.payment_id).await;
    assert_eq!(count(&events, "PaymentCaptured"), 1, "{events:?}");
    assert_eq!(count(&events, "PaymentRefunded"), 1, "{events:?}");
    // The rest refunded later: completes to refunded.
    let rest = checkout
        .provider
        .simulate(Simulation::DashboardRefund {
            intent: paying.intent.id.clone(),
            amount: None,
        })
        .await
        .unwrap();
    assert_eq!(deliver(&app, &rest.event).await.0, 200);
    assert_eq!(
        checkout.status(paying.payment_id).await,
        Some(PaymentStatus::Refunded)
    );
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_missing_or_stale_signatures_are_refused_and_record_nothing() {
    let app = app().await;
    let checkout = Checkout::new(&app);
    let (_, customer) = Checkout::customer(&app, "alan@example.com").await;
    let paying = checkout
        .pay(checkout.order(customer).await, "4242424242424242")
        .await;
    let captured = checkout.capture_at_provider(&paying).await;
    let event = StripeEvent::for_intent("payment_intent.succeeded", &captured);
    let before = payment_events(&app, paying.payment_id).await;
    let now = app.clock.now().timestamp();
    let ours = WebhookSecret::new(SECRET);

    // No header.
    assert_eq!(post_webhook(&app, &event.payload, None).await.0, 400);
    // Signed with another secret.
    let forged = event.signature(&WebhookSecret::new("whsec_attacker"), now);
    assert_eq!(
        post_webhook(&app, &event.payload, Some(&forged)).await.0,
        400
    );
    // A genuine signature over another body.
    let mut tampered = event.payload.clone();
    tampered.extend_from_slice(b" ");
    assert_eq!(
        post_webhook(&app, &tampered, Some(&event.signature(&ours, now)))
            .await
            .0,
        400
    );
    // Genuine but stale (a replay): outside the 300 s tolerance, in either direction.
    let (status, body) = post_webhook(
        &app,
        &event.payload,
        Some(&event.signature(&ours, now - 301)),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_signature");
    assert_eq!(
        post_webhook(
            &app,
            &event.payload,
            Some(&event.signature(&ours, now + 301))
        )
        .await
        .0,
        400
    );
    // Garbage header.
    assert_eq!(
        post_webhook(&app, &event.payload, Some("t=abc,v1=zz"))
            .await
            .0,
        400
    );

    assert_eq!(processed_webhooks(&app).await, 0);
    assert_eq!(payment_events(&app, paying.payment_id).await, before);
    assert_eq!(
        checkout.status(paying.payment_id).await,
        Some(PaymentStatus::Authorised)
    );

    // Within the tolerance it is accepted.
    let (status, _) = post_webhook(
        &app,
        &event.payload,
        Some(&event.signature(&ours, now - 299)),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        checkout.status(paying.payment_id).await,
        Some(PaymentStatus::Captured)
    );
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_v1_signatures_during_secret_rotation_are_accepted() {
    // Our side holds the old and the new secret while rolling.
    let app = spawn_app_with(|s| {
        s.payments.webhook_secrets = vec![Secret::new("whsec_old"), Secret::new(SECRET)];
    })
    .await;
    let checkout = Checkout::new(&app);
    let (_, customer) = Checkout::customer(&app, "ada@example.com").await;
    let paying = checkout
        .pay(checkout.order(customer).await, "4000002760003184")
        .await;
    assert_eq!(
        checkout.status(paying.payment_id).await,
        Some(PaymentStatus::RequiresAction)
    );
    let now = app.clock.now().timestamp();

    // Stripe rolling its secret: two v1 entries, the first under a secret we do not
    // know (async-stripe would look only at the last one; here the order is reversed
    // so only the first one matches).
    let done = checkout
        .provider
        .simulate(Simulation::CompleteAction(paying.intent.id.clone()))
        .await
        .unwrap();
    let unknown = done
        .event
        .signature(&WebhookSecret::new("whsec_unknown"), now);
    let known = done.event.signature(&WebhookSecret::new(SECRET), now);
    let v1 = |h: &str| h.split_once(",v1=").unwrap().1.to_owned();
    let header = format!("t={now},v1={},v1={}", v1(&known), v1(&unknown));
    let (status, body) = post_webhook(&app, &done.event.payload, Some(&header)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        checkout.status(paying.payment_id).await,
        Some(PaymentStatus::Authorised)
    );

    // An event signed only with our old secret still passes.
    let captured = checkout.capture_at_provider(&paying).await;
    let event = StripeEvent::for_intent("payment_intent.succeeded", &captured);
    let old = event.signature(&WebhookSecret::new("whsec_old"), now);
    assert_eq!(post_webhook(&app, &event.payload, Some(&old)).await.0, 200);
    assert_eq!(
        checkout.status(paying.payment_id).await,
        Some(PaymentStatus::Captured)
    );
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_events_are_acknowledged_and_failures_reconciled() {
    let app = app().await;
    let checkout = Checkout::new(&app);
    let (_, customer) = Checkout::customer(&app, "ada@example.com").await;
    let paying = checkout
        .pay(checkout.order(customer).await, "4000002760003184")
        .await;

    // An event type the platform does not handle: 200, nothing recorded.
    let other = StripeEvent::for_intent("payment_intent.created", &paying.intent);
    let (status, body) = deliver(&app, &other).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("ignored")));
    // Not an event at all, but signed: 400.
    let now = app.clock.now().timestamp();
    let junk = b"[1,2,3]";
    let signature = emporium_commands::payments::webhook::signature_header(
        junk,
        &WebhookSecret::new(SECRET),
        now,
    );
    assert_eq!(post_webhook(&app, junk, Some(&signature)).await.0, 400);

    // 3-D Secure failed at the provider: the payment fails with the decline.
    let failed = checkout
        .provider
        .simulate(Simulation::FailAction(paying.intent.id.clone()))
        .await
        .unwrap();
    let (status, body) = deliver(&app, &failed.event).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("processed")),
        "{body}"
    );
    assert_eq!(
        checkout.status(paying.payment_id).await,
        Some(PaymentStatus::Failed)
    );
    // Delivered again: a duplicate.
    let (_, body) = deliver(&app, &failed.event).await;
    assert_eq!(body["outcome"], "duplicate");
    app.teardown().await;
}

const PAYMENT_FIELDS: &str = "id orderId status provider amount { amountMinor currency } captured { amountMinor } refunded { amountMinor } failureReason";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn my_payments_shows_only_my_own() {
    let app = app().await;
    let checkout = Checkout::new(&app);
    let (ada, ada_id) = Checkout::customer(&app, "ada@example.com").await;
    let (bob, _) = Checkout::customer(&app, "bob@example.com").await;
    let paying = checkout
        .pay(checkout.order(ada_id).await, "4242424242424242")
        .await;
    let captured = checkout.capture_at_provider(&paying).await;
    assert_eq!(
        deliver(
            &app,
            &StripeEvent::for_intent("payment_intent.succeeded", &captured)
        )
        .await
        .0,
        200
    );

    // The webhook's commands are recorded when it answers; wait for the read model.
    app.caught_up("payments").await;
    let mine = app
        .post_graphql(
            &format!("{{ myPayments {{ {PAYMENT_FIELDS} }} }}"),
            json!({}),
            Some(&ada),
        )
        .await
        .ok("myPayments")
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(mine[0]["status"], "CAPTURED", "{mine:?}");
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["id"], paying.payment_id.to_string());
    assert_eq!(mine[0]["orderId"], paying.order_id.to_string());
    assert_eq!(mine[0]["provider"], "offline");
    assert_eq!(mine[0]["amount"]["amountMinor"], 3_400);
    assert_eq!(mine[0]["captured"]["amountMinor"], 3_400);

    let one = app
        .post_graphql(
            &format!("query($id: ID!) {{ payment(id: $id) {{ {PAYMENT_FIELDS} }} }}"),
            json!({ "id": paying.payment_id }),
            Some(&ada),
        )
        .await;
    assert_eq!(one.ok("payment")["status"], "CAPTURED");

    // Someone else's payment is exactly as missing as a made-up one.
    let theirs = app
        .post_graphql(
            &format!("query($id: ID!) {{ payment(id: $id) {{ {PAYMENT_FIELDS} }} }}"),
            json!({ "id": paying.payment_id }),
            Some(&bob),
        )
        .await;
    theirs.expect_code("NOT_FOUND");
    let missing = app
        .post_graphql(
            &format!("query($id: ID!) {{ payment(id: $id) {{ {PAYMENT_FIELDS} }} }}"),
            json!({ "id": Uuid::new_v4() }),
            Some(&bob),
        )
        .await;
    missing.expect_code("NOT_FOUND");
    assert_eq!(
        theirs.body["errors"][0]["message"],
        missing.body["errors"][0]["message"]
    );
    let bobs = app
        .post_graphql(
            &format!("{{ myPayments {{ {PAYMENT_FIELDS} }} }}"),
            json!({}),
            Some(&bob),
        )
        .await;
    assert_eq!(bobs.ok("myPayments"), &json!([]));
    app.post_graphql("{ myPayments { id } }", json!({}), None)
        .await
        .expect_code("UNAUTHENTICATED");
    app.teardown().await;
}

/// [`emails_settled`] in the embedded mode: the sender's cursor (in the gateway's own
/// database) has reached the store's last event.
async fn embedded_emails_settled(app: &TestApp) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let last = crate::helpers::number(
            &app.events_db(),
            "SELECT coalesce(max(position), 0) FROM events",
            emporium_commands::args![],
        )
        .await;
        let done = crate::helpers::number(
            app.own_db(),
            "SELECT coalesce(max(position), 0) FROM email_sender_cursor",
            emporium_commands::args![],
        )
        .await;
        if done >= last {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "e-mail sender did not catch up ({done} of {last})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
