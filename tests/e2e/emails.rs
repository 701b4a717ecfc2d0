//! Notification e-mails over a real SMTP sink: each kind to the right recipient with
//! the right content, once per event even when the stream is delivered again, with
//! staff-edited templates, which customers cannot edit.

use async_nats::jetstream;
use chrono::Utc;
use emporium_commands::payments::Simulation;
use emporium_commands::payments::events::StripeEvent;
use emporium_commands::{AnyStore, Dispatcher, Loading};
use emporium_domain::inventory::{Inventory, InventoryCommand};
use emporium_domain::order::OrderCommand;
use emporium_domain::payment::PaymentStatus;
use emporium_domain::{Quantity, Sku};
use emporium_projections::bus::StreamLayout;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::TestApp;
use crate::payments::{Checkout, STAFF_INBOX, app, deliver, drain_mail, emails_settled, eur, meta};
use crate::smtp::ReceivedMail;

fn one_to<'a>(mails: &'a [ReceivedMail], to: &str, subject_prefix: &str) -> &'a ReceivedMail {
    let found: Vec<_> = mails
        .iter()
        .filter(|m| m.to == vec![to.to_owned()] && m.subject().starts_with(subject_prefix))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one `{subject_prefix}` mail to {to}: {mails:#?}"
    );
    found[0]
}

/// Drives one order through paid and shipped, a refund, a failed payment and low
/// stock; returns (customer e-mail, the paid order, the failed order).
async fn every_kind_of_event(app: &TestApp, checkout: &Checkout) -> (Uuid, Uuid) {
    let (_, customer) = Checkout::customer(app, "ada@example.com").await;
    // Paid, shipped, partly refunded.
    let paying = checkout
        .pay(checkout.order(customer).await, "4242424242424242")
        .await;
    let captured = checkout.capture_at_provider(&paying).await;
    assert_eq!(
        deliver(
            app,
            &StripeEvent::for_intent("payment_intent.succeeded", &captured)
        )
        .await
        .0,
        200
    );
    checkout
        .order_command(
            paying.order_id,
            OrderCommand::MarkPaid {
                payment_id: paying.payment_id,
                amount: eur(3_400),
                at: Utc::now(),
            },
        )
        .await;
    checkout
        .order_command(
            paying.order_id,
            OrderCommand::ShipOrder {
                tracking_number: Some("1Z999AA10123456784".into()),
                at: Utc::now(),
            },
        )
        .await;
    let refund = checkout
        .provider
        .simulate(Simulation::DashboardRefund {
            intent: paying.intent.id.clone(),
            amount: Some(eur(1_000)),
        })
        .await
        .unwrap();
    assert_eq!(deliver(app, &refund.event).await.0, 200);
    // A second order whose card is declined.
    let declined = checkout
        .pay(checkout.order(customer).await, "4000000000009995")
        .await;
    let failed = StripeEvent::for_intent("payment_intent.payment_failed", &declined.intent);
    assert_eq!(deliver(app, &failed).await.0, 200);
    assert_eq!(
        checkout.status(declined.payment_id).await,
        Some(PaymentStatus::Failed)
    );
    // Low stock: 10 on hand, threshold 5, 6 reserved.
    let inventory: Dispatcher<Inventory, AnyStore> =
        Dispatcher::over(app.store().clone(), Loading::Replay);
    let sku = Sku::parse("MUG-1").unwrap();
    for command in [
        InventoryCommand::TrackInventory {
            sku: sku.clone(),
            low_stock_threshold: 5,
            at: Utc::now(),
        },
        InventoryCommand::ReceiveStock {
            quantity: Quantity::new(10).unwrap(),
            at: Utc::now(),
        },
        InventoryCommand::ReserveStock {
            reservation_id: Uuid::new_v4(),
            order_id: Uuid::new_v4(),
            quantity: Quantity::new(6).unwrap(),
            expires_at: Utc::now() + chrono::Duration::minutes(15),
            at: Utc::now(),
        },
    ] {
        inventory
            .execute(sku.as_str(), command, &meta())
            .await
            .expect("inventory command");
    }
    (paying.order_id, declined.order_id)
}

fn reference(order_id: Uuid) -> String {
    order_id.simple().to_string()[..8].to_ascii_uppercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_notification_reaches_its_recipient_once_even_when_redelivered() {
    let app = app().await;
    let checkout = Checkout::new(&app);
    let (paid, declined) = every_kind_of_event(&app, &checkout).await;
    emails_settled(&app).await;
    let mails = drain_mail(&app).await;
    let ada = "ada@example.com";

    let confirmation = one_to(&mails, ada, &format!("Order {} confirmed", reference(paid)));
    assert!(
        confirmation
            .data
            .contains("2 x Enamel mug (MUG-1): 25.00 EUR"),
        "{}",
        confirmation.data
    );
    assert!(
        confirmation.data.contains("Total: 34.00 EUR"),
        "{}",
        confirmation.data
    );
    let shipped = one_to(&mails, ada, &format!("Order {} shipped", reference(paid)));
    assert!(
        shipped.data.contains("Tracking number: 1Z999AA10123456784"),
        "{}",
        shipped.data
    );
    let refunded = one_to(&mails, ada, "Refund of 10.00 EUR");
    assert!(
        refunded.data.contains("refunded so far: 10.00 EUR"),
        "{}",
        refunded.data
    );
    let failed = one_to(
        &mails,
        ada,
        &format!("Payment for order {} failed", reference(declined)),
    );
    assert!(
        failed.data.contains("insufficient funds"),
        "{}",
        failed.data
    );
    let low = one_to(&mails, STAFF_INBOX, "Low stock: MUG-1 (4 left)");
    assert!(low.data.contains("threshold of 5"), "{}", low.data);
    assert_eq!(mails.len(), 5, "{mails:#?}");

    if crate::helpers::embedded() {
        // Redelivery: the sender's cursor is forgotten, so the whole store is read
        // again from the start. Nothing is sent twice.
        app.own_db()
            .execute(
                "DELETE FROM email_sender_cursor",
                emporium_commands::args![],
            )
            .await
            .expect("forget the cursor");
    } else {
        // Redelivery: the sender's consumer is deleted, so the whole stream is delivered
        // again from the start. Nothing is sent twice.
        let nats = async_nats::connect(emporium_tests::nats_url())
            .await
            .unwrap();
        let layout = StreamLayout::new(&app.settings.nats.stream_prefix).unwrap();
        let stream = jetstream::new(nats)
            .get_stream(layout.stream_name())
            .await
            .unwrap();
        stream
            .delete_consumer(&emporium_gateway::notify::consumer_name(&layout))
            .await
            .unwrap();
        // Wait for the sender to recreate its consumer and go through everything again.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        while stream
            .get_consumer::<jetstream::consumer::pull::Config>(
                &emporium_gateway::notify::consumer_name(&layout),
            )
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "sender did not reopen its consumer"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    emails_settled(&app).await;
    assert!(drain_mail(&app).await.is_empty());
    let ledger = crate::helpers::number(
        app.own_db(),
        "SELECT count(*) FROM email_ledger",
        emporium_commands::args![],
    )
    .await;
    assert_eq!(ledger, 5);
    app.teardown().await;
}

const TEMPLATE_FIELDS: &str = "kind subject body customised updatedAt";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_edit_templates_and_the_edit_is_used() {
    let app = app().await;
    let checkout = Checkout::new(&app);
    let staff = app
        .staff_signed_up("staff@shop.test", "correct horse battery")
        .await;
    let (customer_token, customer) = Checkout::customer(&app, "ada@example.com").await;

    let list = app
        .post_graphql(
            &format!("{{ emailTemplates {{ {TEMPLATE_FIELDS} }} }}"),
            json!({}),
            Some(&staff),
        )
        .await;
    let templates = list.ok("emailTemplates").as_array().unwrap().clone();
    assert_eq!(templates.len(), 5);
    assert!(templates.iter().all(|t| t["customised"] == false));

    let update = "mutation($k: EmailTemplateKind!, $s: String, $b: String) { updateEmailTemplate(kind: $k, subject: $s, body: $b) { kind subject body customised updatedAt } }";
    // A template that does not render is refused, and nothing changes.
    let bad = app
        .post_graphql(
            update,
            json!({ "k": "ORDER_SHIPPED", "s": "Shipped {{ order.refrence }}", "b": "x" }),
            Some(&staff),
        )
        .await;
    bad.expect_code("BAD_USER_INPUT");
    assert_eq!(bad.body["errors"][0]["extensions"]["field"], "subject");
    let bad = app
        .post_graphql(
            update,
            json!({ "k": "ORDER_SHIPPED", "s": "ok", "b": "{% for %}" }),
            Some(&staff),
        )
        .await;
    bad.expect_code("BAD_USER_INPUT");

    // Customers cannot edit (or read) templates; anonymous callers are not signed in.
    let forbidden = app
        .post_graphql(
            update,
            json!({ "k": "ORDER_SHIPPED", "s": "Pwned", "b": "pwned" }),
            Some(&customer_token),
        )
        .await;
    forbidden.expect_code("FORBIDDEN");
    app.post_graphql(
        "{ emailTemplates { kind } }",
        json!({}),
        Some(&customer_token),
    )
    .await
    .expect_code("FORBIDDEN");
    app.post_graphql(
        update,
        json!({ "k": "ORDER_SHIPPED", "s": "Pwned", "b": "pwned" }),
        None,
    )
    .await
    .expect_code("UNAUTHENTICATED");

    let saved = app
        .post_graphql(
            update,
            json!({
                "k": "ORDER_SHIPPED",
                "s": "On its way: {{ order.reference }}",
                "b": "Dear {{ customer.first_name }}, parcel {{ shipment.tracking_number }} left {{ shop_name }} today.",
            }),
            Some(&staff),
        )
        .await;
    assert_eq!(saved.ok("updateEmailTemplate")["customised"], true);

    let paying = checkout
        .pay(checkout.order(customer).await, "4242424242424242")
        .await;
    checkout.capture_at_provider(&paying).await;
    checkout
        .order_command(
            paying.order_id,
            OrderCommand::MarkPaid {
                payment_id: paying.payment_id,
                amount: eur(3_400),
                at: Utc::now(),
            },
        )
        .await;
    checkout
        .order_command(
            paying.order_id,
            OrderCommand::ShipOrder {
                tracking_number: Some("TRACK-42".into()),
                at: Utc::now(),
            },
        )
        .await;
    emails_settled(&app).await;
    let mails = drain_mail(&app).await;
    let shipped = one_to(
        &mails,
        "ada@example.com",
        &format!("On its way: {}", reference(paying.order_id)),
    );
    assert!(
        shipped
            .data
            .contains("Dear Ada, parcel TRACK-42 left Emporium today."),
        "{}",
        shipped.data
    );

    // Restoring the default.
    let reset = app
        .post_graphql(update, json!({ "k": "ORDER_SHIPPED" }), Some(&staff))
        .await;
    assert_eq!(reset.ok("updateEmailTemplate")["customised"], false);
    assert_eq!(
        reset.ok("updateEmailTemplate")["subject"],
        "Order {{ order.reference }} shipped"
    );
    app.teardown().await;
}
