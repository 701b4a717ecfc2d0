//! The checkout over HTTP against real PostgreSQL and NATS: concurrency for the last
//! units and the last coupon use, duplicate submissions, every Stripe test card,
//! 3-D Secure, reservation expiry on the manual clock, the fraud hold, cancellations
//! (void before capture, refund after) and price tampering.
//!
//! Outcomes are checked on the aggregates (the truth) and, where the API answers from
//! them, on the read models after waiting for their checkpoints; never a sleep.

use std::time::Duration;

use chrono::Utc;
use emporium_commands::catalog::Products;
use emporium_commands::checkout::ids;
use emporium_commands::payments::IntentId;
use emporium_commands::{AnyStore, Dispatcher, Loading, args};
use emporium_domain::catalog::{
    AltText, Attributes, CategoryCommand, CategoryName, CategoryTree, Description, ImageSource,
    ProductCommand, ProductName, Slug,
};
use emporium_domain::coupon::{Coupon, CouponCode, CouponCommand};
use emporium_domain::inventory::{Inventory, InventoryCommand};
use emporium_domain::metadata::Actor;
use emporium_domain::order::{Order, OrderStatus};
use emporium_domain::payment::{Payment, PaymentStatus};
use emporium_domain::pricing::Discount;
use emporium_domain::{Currency, EventMetadata, Money, Quantity, Sku};
use emporium_projections::projection::CheckpointWatch;
use futures::StreamExt as _;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Gql, TestApp, spawn_app_with};

const PASSWORD: &str = "correct horse battery staple";
const OK_CARD: &str = "4242424242424242";
const THREE_DS_CARD: &str = "4000002760003184";
const RESULT_FIELDS: &str = "orderId status requiresAction nextAction { kind clientSecret } order { id grandTotal { amountMinor } discount { amountMinor } tax { amountMinor } shipping { amountMinor } }";

fn meta() -> EventMetadata {
    EventMetadata::new(
        Uuid::new_v4(),
        Actor::System("test-seed".into()),
        Utc::now(),
    )
}

/// A shop with one product per SKU, stock, and checkouts' helpers.
struct Shop {
    app: TestApp,
    store: AnyStore,
    watch: CheckpointWatch,
    last: i64,
    category: Uuid,
}

async fn shop_with(customise: impl FnOnce(&mut emporium_gateway::config::Settings)) -> Shop {
    let app = spawn_app_with(|s| {
        s.limits.rate.enabled = false;
        s.database.max_connections = 16;
        // Several of these tests run at once on two cores: let read models lag.
        s.backbone.read_your_writes_timeout_ms = 15_000;
        customise(s);
    })
    .await;
    let store = app.store().clone();
    let watch = app.watch().await;
    let category = Uuid::new_v4();
    let c = Dispatcher::<CategoryTree, AnyStore>::over(store.clone(), Loading::Replay)
        .execute(
            CategoryTree::ID,
            CategoryCommand::CreateCategory {
                category_id: category,
                name: CategoryName::parse("Things").unwrap(),
                slug: Slug::parse("things").unwrap(),
                parent_id: None,
                at: Utc::now(),
            },
            &meta(),
        )
        .await
        .expect("category");
    Shop {
        app,
        store,
        watch,
        last: c.position.unwrap_or(0),
        category,
    }
}

impl Shop {
    fn track(&mut self, position: Option<i64>) {
        if let Some(p) = position {
            self.last = self.last.max(p);
        }
    }

    /// A published product `sku` at `price` cents with `units` in stock.
    async fn product(&mut self, sku: &str, price: i64, units: i64) {
        let products = Products::over(self.store.clone());
        let id = Uuid::new_v4();
        for command in [
            ProductCommand::CreateProduct {
                product_id: id,
                sku: Sku::parse(sku).unwrap(),
                slug: Slug::parse(&sku.to_lowercase()).unwrap(),
                name: ProductName::parse(&format!("Product {sku}")).unwrap(),
                description: Description::parse("A thing").unwrap(),
                category_id: self.category,
                tags: std::collections::BTreeSet::new(),
                attributes: Attributes::default(),
                price: Money::new(price, Currency::EUR),
                at: Utc::now(),
            },
            ProductCommand::AddImage {
                image_id: Uuid::new_v4(),
                source: ImageSource::key(&format!("products/{sku}/front.jpg")).unwrap(),
                alt_text: AltText::parse("Front").unwrap(),
                primary: true,
                at: Utc::now(),
            },
            ProductCommand::PublishProduct { at: Utc::now() },
        ] {
            let c = products
                .execute(id, command, &meta())
                .await
                .expect("product");
            self.track(c.position);
        }
        let inventory =
            Dispatcher::<Inventory, AnyStore>::over(self.store.clone(), Loading::Replay);
        let sku = Sku::parse(sku).unwrap();
        let mut commands = vec![InventoryCommand::TrackInventory {
            sku: sku.clone(),
            low_stock_threshold: 0,
            at: Utc::now(),
        }];
        if units > 0 {
            commands.push(InventoryCommand::ReceiveStock {
                quantity: Quantity::new(units).unwrap(),
                at: Utc::now(),
            });
        }
        for command in commands {
            let c = inventory
                .execute(sku.as_str(), command, &meta())
                .await
                .expect("inventory");
            self.track(c.position);
        }
    }

    async fn caught_up(&self) {
        for projection in ["catalog", "inventory"] {
            self.watch
                .wait_for_position(projection, self.last, Duration::from_secs(30))
                .await
                .unwrap_or_else(|e| panic!("{projection}: {e}"));
        }
    }

    /// `n` customers, each with `quantity` of `sku` in their cart.
    async fn customers_with(&self, n: usize, sku: &str, quantity: i64) -> Vec<String> {
        let tag = Uuid::new_v4().simple().to_string();
        futures::stream::iter(0..n)
            .map(|i| {
                let email = format!("c{i}-{tag}@example.com");
                async move {
                    let (access, _) = self.app.signed_up(&email, PASSWORD).await;
                    self.add(&access, sku, json!(quantity))
                        .await
                        .ok("addToCart");
                    access
                }
            })
            .buffer_unordered(8)
            .collect()
            .await
    }

    async fn add(&self, access: &str, sku: &str, quantity: Value) -> Gql {
        self.app
            .post_graphql(
                "mutation($s: String!, $q: Int!) { addToCart(sku: $s, quantity: $q) { itemCount } }",
                json!({ "s": sku, "q": quantity }),
                Some(access),
            )
            .await
    }

    async fn checkout(&self, access: &str, input: Value) -> Gql {
        self.app
            .post_graphql(
                &format!(
                    "mutation($i: CheckoutInput!) {{ checkout(input: $i) {{ {RESULT_FIELDS} }} }}"
                ),
                json!({ "i": input }),
                Some(access),
            )
            .await
    }

    async fn confirm(&self, access: &str, order_id: &str) -> Gql {
        self.app
            .post_graphql(
                &format!("mutation($o: ID!) {{ confirmCheckoutPayment(orderId: $o) {{ {RESULT_FIELDS} }} }}"),
                json!({ "o": order_id }),
                Some(access),
            )
            .await
    }

    async fn order_op(&self, access: &str, op: &str, id: &str) -> Gql {
        self.app
            .post_graphql(
                &format!("mutation($id: ID!) {{ {op}(id: $id) {{ id status }} }}"),
                json!({ "id": id }),
                Some(access),
            )
            .await
    }

    async fn order(&self, id: Uuid) -> Order {
        Dispatcher::<Order, AnyStore>::over(self.store.clone(), Loading::Replay)
            .load(&id.to_string())
            .await
            .expect("order")
    }

    async fn payment(&self, order_id: Uuid) -> Payment {
        Dispatcher::<Payment, AnyStore>::over(self.store.clone(), Loading::Replay)
            .load(&ids::payment(order_id).to_string())
            .await
            .expect("payment")
    }

    async fn stock(&self, sku: &str) -> Inventory {
        Dispatcher::<Inventory, AnyStore>::over(self.store.clone(), Loading::Replay)
            .load(sku)
            .await
            .expect("inventory")
    }

    async fn count_events(&self, event_type: &str) -> i64 {
        self.app
            .events_db()
            .fetch_one::<(i64,)>(
                "SELECT count(*) FROM events WHERE event_type = $1",
                args![event_type],
            )
            .await
            .expect("count events")
            .0
    }

    async fn all_events(&self) -> i64 {
        self.app
            .events_db()
            .fetch_one::<(i64,)>("SELECT count(*) FROM events", args![])
            .await
            .expect("count events")
            .0
    }

    /// Waits until the inventory read model has applied everything recorded so far.
    async fn inventory_read_model(&self, sku: &str) -> (i64, i64, i64) {
        let (last,): (i64,) = self
            .app
            .events_db()
            .fetch_one("SELECT coalesce(max(position), 0) FROM events", args![])
            .await
            .unwrap();
        self.watch
            .wait_for_position("inventory", last, Duration::from_secs(30))
            .await
            .expect("inventory projection caught up");
        self.app
            .read_db()
            .fetch_one(
                "SELECT on_hand, reserved, available FROM inventory_levels WHERE sku = $1",
                args![sku],
            )
            .await
            .expect("inventory level")
    }

    async fn teardown(self) {
        self.app.teardown().await;
    }
}

fn address(country: &str) -> Value {
    json!({
        "fullName": "Ada Lovelace",
        "line1": "Unter den Linden 1",
        "city": "Berlin",
        "postalCode": "10117",
        "country": country,
    })
}

fn input(card: &str) -> Value {
    json!({
        "shippingAddress": address("DE"),
        "shippingMethod": "standard",
        "paymentMethod": { "card": card },
    })
}

fn order_id_of(r: &Gql) -> Uuid {
    Uuid::parse_str(r.ok("checkout")["orderId"].as_str().unwrap()).unwrap()
}

/// Polls `check` until it holds (the driver works on its own schedule).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_last_five_units_go_to_exactly_five_of_a_hundred_checkouts() {
    let mut shop = shop_with(|_| {}).await;
    shop.product("LAST-5", 1_000, 5).await;
    shop.caught_up().await;
    let customers = shop.customers_with(100, "LAST-5", 1).await;

    let answers: Vec<Gql> = futures::future::join_all(
        customers
            .iter()
            .map(|access| shop.checkout(access, input(OK_CARD))),
    )
    .await;

    let paid: Vec<&Gql> = answers.iter().filter(|a| a.code().is_none()).collect();
    let out_of_stock = answers
        .iter()
        .filter(|a| a.code() == Some("OUT_OF_STOCK"))
        .count();
    assert_eq!(
        paid.len(),
        5,
        "{:?}",
        answers.iter().map(|a| &a.body).collect::<Vec<_>>()
    );
    assert_eq!(out_of_stock, 95);
    for answer in &paid {
        assert_eq!(answer.data("checkout")["status"], "paid", "{}", answer.body);
        // 10.00 incl. 19 % VAT, 4.99 shipping under the 50.00 free-shipping line.
        assert_eq!(
            answer.data("checkout")["order"]["grandTotal"]["amountMinor"],
            1_499
        );
    }
    assert_eq!(shop.count_events("OrderPaid").await, 5);
    assert_eq!(shop.count_events("PaymentCaptured").await, 5);
    let stock = shop.stock("LAST-5").await;
    assert_eq!(
        (stock.on_hand(), stock.reserved(), stock.available()),
        (5, 5, 0)
    );
    assert_eq!(shop.inventory_read_model("LAST-5").await, (5, 5, 0));
    // No reservation ever went past the stock: every StockReserved saw available >= 0
    // (u32 in the event), and the ones that lost were released.
    let released = shop.count_events("ReservationReleased").await;
    let reserved = shop.count_events("StockReserved").await;
    assert_eq!(reserved - released, 5);
    shop.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_coupon_with_one_use_discounts_exactly_one_of_fifty_checkouts() {
    let mut shop = shop_with(|_| {}).await;
    shop.product("COUPON-1", 2_000, 100).await;
    let coupons = Dispatcher::<Coupon, AnyStore>::over(shop.store.clone(), Loading::Replay);
    let code = CouponCode::parse("ONCE").unwrap();
    let c = coupons
        .execute(
            code.as_str(),
            CouponCommand::CreateCoupon {
                code: code.clone(),
                discount: Discount::percentage(1_000).unwrap(),
                minimum_subtotal: None,
                valid_from: Utc::now() - chrono::Duration::days(1),
                valid_until: None,
                usage_limit: Some(1),
                per_customer_limit: None,
                at: Utc::now(),
            },
            &meta(),
        )
        .await
        .expect("coupon");
    shop.track(c.position);
    shop.caught_up().await;
    let customers = shop.customers_with(50, "COUPON-1", 1).await;
    let mut with_coupon = input(OK_CARD);
    with_coupon["couponCode"] = json!("once");

    let answers: Vec<Gql> = futures::future::join_all(
        customers
            .iter()
            .map(|access| shop.checkout(access, with_coupon.clone())),
    )
    .await;

    let discounted: Vec<&Gql> = answers.iter().filter(|a| a.code().is_none()).collect();
    assert_eq!(
        discounted.len(),
        1,
        "{:?}",
        answers.iter().map(|a| &a.body).collect::<Vec<_>>()
    );
    assert_eq!(
        discounted[0].data("checkout")["order"]["discount"]["amountMinor"],
        200
    );
    assert_eq!(
        answers
            .iter()
            .filter(|a| a.code() == Some("COUPON_USAGE_LIMIT_REACHED"))
            .count(),
        49
    );
    let coupon = coupons.load(code.as_str()).await.unwrap();
    assert_eq!(coupon.uses(), 1);
    assert_eq!(shop.count_events("CouponRedeemed").await, 1);
    // The refused customers' carts stayed open: they can check out without it.
    let refused = answers.iter().position(|a| a.code().is_some()).unwrap();
    let retry = shop.checkout(&customers[refused], input(OK_CARD)).await;
    assert_eq!(retry.ok("checkout")["status"], "paid", "{}", retry.body);
    assert_eq!(
        retry.data("checkout")["order"]["discount"]["amountMinor"],
        0
    );
    shop.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_checkout_submitted_twice_at_once_is_one_order_and_one_intent() {
    let mut shop = shop_with(|_| {}).await;
    shop.product("TWICE", 1_500, 10).await;
    shop.caught_up().await;
    let customer = shop.customers_with(1, "TWICE", 2).await.remove(0);

    let (a, b) = tokio::join!(
        shop.checkout(&customer, input(OK_CARD)),
        shop.checkout(&customer, input(OK_CARD))
    );

    let (a, b) = (order_id_of(&a), order_id_of(&b));
    assert_eq!(a, b);
    assert_eq!(shop.app.payments.intent_count().await.expect("intents"), 1);
    assert_eq!(shop.count_events("OrderPlaced").await, 1);
    assert_eq!(shop.count_events("PaymentCaptured").await, 1);
    assert_eq!(shop.stock("TWICE").await.reserved(), 2);
    shop.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_test_card_pays_declines_with_its_code_or_asks_for_3d_secure() {
    let mut shop = shop_with(|_| {}).await;
    shop.product("CARDS", 1_000, 100).await;
    shop.caught_up().await;
    let declines = [
        ("4000000000000002", "card_declined"),
        ("4000000000009995", "insufficient_funds"),
        ("4000000000000069", "expired_card"),
        ("4000000000000127", "incorrect_cvc"),
        ("4000000000000119", "processing_error"),
    ];
    let customers = shop.customers_with(declines.len() + 2, "CARDS", 3).await;

    for ((card, code), access) in declines.iter().zip(&customers) {
        let r = shop.checkout(access, input(card)).await;
        r.expect_code("PAYMENT_DECLINED");
        let ext = &r.body["errors"][0]["extensions"];
        assert_eq!(ext["declineCode"], *code, "{card}");
        let order_id = Uuid::parse_str(ext["orderId"].as_str().unwrap()).unwrap();
        assert_eq!(
            shop.order(order_id).await.status(),
            Some(OrderStatus::PaymentFailed)
        );
        assert_eq!(
            shop.payment(order_id).await.status(),
            Some(PaymentStatus::Failed)
        );
    }
    // Every declined order's stock went back.
    assert_eq!(shop.stock("CARDS").await.available(), 100);

    let ok = shop.checkout(&customers[5], input(OK_CARD)).await;
    assert_eq!(ok.ok("checkout")["status"], "paid");
    assert_eq!(shop.stock("CARDS").await.reserved(), 3);

    let access = &customers[6];
    let r = shop.checkout(access, input(THREE_DS_CARD)).await;
    let result = r.ok("checkout");
    assert_eq!(result["requiresAction"], true, "{}", r.body);
    assert_eq!(result["status"], "awaiting_payment");
    assert_eq!(result["nextAction"]["kind"], "use_sdk");
    assert!(
        result["nextAction"]["clientSecret"]
            .as_str()
            .unwrap()
            .contains("_secret_")
    );
    let order_id = order_id_of(&r);
    // Still waiting: confirming before the customer acted changes nothing.
    let again = shop.confirm(access, &order_id.to_string()).await;
    assert_eq!(again.ok("confirmCheckoutPayment")["requiresAction"], true);
    let intent = shop
        .payment(order_id)
        .await
        .provider_intent_id()
        .unwrap()
        .to_owned();
    shop.app
        .payments
        .complete_action(&IntentId(intent))
        .await
        .expect("3-D Secure completed");
    let done = shop.confirm(access, &order_id.to_string()).await;
    assert_eq!(
        done.ok("confirmCheckoutPayment")["status"],
        "paid",
        "{}",
        done.body
    );
    assert_eq!(shop.order(order_id).await.status(), Some(OrderStatus::Paid));
    assert_eq!(shop.stock("CARDS").await.reserved(), 6);
    shop.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_reservation_releases_stock_and_cancels_the_unpaid_order() {
    let mut shop = shop_with(|s| s.checkout.sweep_interval_ms = 20).await;
    shop.product("EXPIRE", 1_000, 3).await;
    shop.caught_up().await;
    let access = shop.customers_with(1, "EXPIRE", 2).await.remove(0);
    // 3-D Secure never completed: the order waits for payment with stock reserved.
    let r = shop.checkout(&access, input(THREE_DS_CARD)).await;
    let order_id = order_id_of(&r);
    assert_eq!(shop.stock("EXPIRE").await.available(), 1);

    shop.app.advance(Duration::from_secs(14 * 60));
    // Before the expiry nothing happens; after it the driver cancels.
    assert_eq!(
        shop.order(order_id).await.status(),
        Some(OrderStatus::AwaitingPayment)
    );
    shop.app.advance(Duration::from_secs(2 * 60));
    eventually("the expired order to be cancelled", || async {
        shop.order(order_id).await.status() == Some(OrderStatus::Cancelled)
            && shop.payment(order_id).await.status() == Some(PaymentStatus::Voided)
    })
    .await;
    let order = shop.order(order_id).await;
    assert_eq!(
        order.cancellation_reason(),
        Some(emporium_domain::order::CancellationReason::ReservationExpired)
    );
    eventually("the stock to come back", || async {
        shop.stock("EXPIRE").await.available() == 3
    })
    .await;
    assert_eq!(shop.count_events("ReservationExpired").await, 1);
    assert_eq!(shop.inventory_read_model("EXPIRE").await, (3, 0, 3));
    shop.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prices_cannot_be_sent_and_bad_quantities_record_nothing() {
    let mut shop = shop_with(|_| {}).await;
    shop.product("TAMPER", 1_000, 10).await;
    shop.caught_up().await;
    let access = shop.customers_with(1, "TAMPER", 1).await.remove(0);
    let before = shop.all_events().await;

    for quantity in [json!(-1), json!(0), json!(2_147_483_648_i64)] {
        let r = shop.add(&access, "TAMPER", quantity.clone()).await;
        assert!(r.code().is_some(), "{quantity}: {}", r.body);
    }
    let mut priced = input(OK_CARD);
    priced["price"] = json!({ "amountMinor": 1, "currency": "EUR" });
    let r = shop.checkout(&access, priced).await;
    assert!(r.code().is_some(), "{}", r.body);
    let mut priced_line = input(OK_CARD);
    priced_line["grandTotal"] = json!(1);
    assert!(shop.checkout(&access, priced_line).await.code().is_some());
    assert_eq!(
        shop.all_events().await,
        before,
        "refused input recorded events"
    );

    // The real checkout charges the catalogue price.
    let r = shop.checkout(&access, input(OK_CARD)).await;
    assert_eq!(
        r.ok("checkout")["order"]["grandTotal"]["amountMinor"],
        1_499
    );
    shop.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_held_order_is_approved_to_paid_or_rejected_with_its_stock_released() {
    // Billing and shipping countries differ (20 points): held at 20.
    let mut shop = shop_with(|s| s.checkout.fraud.review_threshold = 20).await;
    shop.product("HOLD", 1_000, 10).await;
    shop.caught_up().await;
    let customers = shop.customers_with(2, "HOLD", 2).await;
    let staff = shop
        .app
        .staff_signed_up("staff@example.com", PASSWORD)
        .await;
    let mut risky = input(OK_CARD);
    risky["billingAddress"] = address("FR");

    let first = shop.checkout(&customers[0], risky.clone()).await;
    assert_eq!(first.ok("checkout")["status"], "held_for_review");
    let second = shop.checkout(&customers[1], risky).await;
    let (first, second) = (order_id_of(&first), order_id_of(&second));
    assert_eq!(shop.stock("HOLD").await.reserved(), 4);

    let queue = shop
        .app
        .post_graphql(
            "{ heldOrders { order { id } riskScore reasons } }",
            json!({}),
            Some(&staff),
        )
        .await;
    let held = queue.ok("heldOrders").as_array().unwrap().clone();
    assert_eq!(held.len(), 2, "{}", queue.body);
    assert_eq!(held[0]["riskScore"], 20);
    assert_eq!(held[0]["reasons"][0]["signal"]["rule"], "country_mismatch");
    // Customers cannot see the queue or decide.
    shop.app
        .post_graphql(
            "{ heldOrders { riskScore } }",
            json!({}),
            Some(&customers[0]),
        )
        .await
        .expect_code("FORBIDDEN");
    shop.order_op(&customers[0], "approveHeldOrder", &first.to_string())
        .await
        .expect_code("FORBIDDEN");

    let approved = shop
        .order_op(&staff, "approveHeldOrder", &first.to_string())
        .await;
    assert_eq!(
        approved.ok("approveHeldOrder")["status"],
        "PAID",
        "{}",
        approved.body
    );
    assert_eq!(shop.order(first).await.status(), Some(OrderStatus::Paid));
    let rejected = shop
        .order_op(&staff, "rejectHeldOrder", &second.to_string())
        .await;
    assert_eq!(rejected.ok("rejectHeldOrder")["status"], "CANCELLED");
    assert_eq!(
        shop.order(second).await.status(),
        Some(OrderStatus::Cancelled)
    );
    let stock = shop.stock("HOLD").await;
    assert_eq!((stock.reserved(), stock.available()), (2, 8));
    // A decided order cannot be decided again.
    shop.order_op(&staff, "rejectHeldOrder", &first.to_string())
        .await
        .expect_code("INVALID_ORDER_STATUS");
    shop.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancel_before_capture_voids_and_after_capture_refunds() {
    let mut shop = shop_with(|_| {}).await;
    shop.product("CANCEL", 1_000, 10).await;
    shop.caught_up().await;
    let customers = shop.customers_with(3, "CANCEL", 1).await;

    // Before capture: a 3-D Secure payment waiting on the customer.
    let waiting = order_id_of(&shop.checkout(&customers[0], input(THREE_DS_CARD)).await);
    let r = shop
        .order_op(&customers[0], "cancelOrder", &waiting.to_string())
        .await;
    assert_eq!(r.ok("cancelOrder")["status"], "CANCELLED", "{}", r.body);
    assert_eq!(
        shop.payment(waiting).await.status(),
        Some(PaymentStatus::Voided)
    );

    // After capture: refunded in full.
    let paid = order_id_of(&shop.checkout(&customers[1], input(OK_CARD)).await);
    let r = shop
        .order_op(&customers[1], "cancelOrder", &paid.to_string())
        .await;
    r.ok("cancelOrder");
    assert_eq!(shop.order(paid).await.status(), Some(OrderStatus::Refunded));
    assert_eq!(
        shop.payment(paid).await.status(),
        Some(PaymentStatus::Refunded)
    );
    assert_eq!(shop.app.payments.refunds().await.expect("refunds").len(), 1);
    assert_eq!(shop.stock("CANCEL").await.available(), 10);

    // Someone else's order looks missing.
    shop.order_op(&customers[2], "cancelOrder", &paid.to_string())
        .await
        .expect_code("NOT_FOUND");
    shop.teardown().await;
}

/// The customer completes 3-D Secure out of band and Stripe's webhook reports it: the
/// checkout captures and marks the order paid while handling the webhook, not at the
/// driver's next recheck (the clock never moves here, and nobody confirms again).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_3d_secure_completed_out_of_band_is_paid_when_its_webhook_arrives() {
    use emporium_commands::payments::Simulation;
    let mut shop = shop_with(|s| {
        s.payments.webhook_secrets = vec![emporium_gateway::config::Secret::new(
            crate::payments::SECRET,
        )];
    })
    .await;
    shop.product("WEBHOOK-3DS", 1_000, 10).await;
    shop.caught_up().await;
    let customers = shop.customers_with(1, "WEBHOOK-3DS", 1).await;
    let r = shop.checkout(&customers[0], input(THREE_DS_CARD)).await;
    assert_eq!(r.ok("checkout")["requiresAction"], true, "{}", r.body);
    let order_id = order_id_of(&r);
    let intent = shop
        .payment(order_id)
        .await
        .provider_intent_id()
        .unwrap()
        .to_owned();
    let done = shop
        .app
        .payments
        .simulate(Simulation::CompleteAction(IntentId(intent)))
        .await
        .expect("3-D Secure completed at the provider");
    let (status, body) = crate::payments::deliver(&shop.app, &done.event).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], "processed", "{body}");
    // Answered only after the checkout moved on: captured and paid already.
    assert_eq!(
        shop.payment(order_id).await.status(),
        Some(PaymentStatus::Captured)
    );
    assert_eq!(shop.order(order_id).await.status(), Some(OrderStatus::Paid));
    assert_eq!(shop.stock("WEBHOOK-3DS").await.reserved(), 1);
    shop.teardown().await;
}
