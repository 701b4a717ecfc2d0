//! The customer's own things over HTTP: notifications (the inbox), orders, and product
//! reviews with read-your-writes.
//!
//! Orders are seeded through `Dispatcher<Order, AnyStore>` on the test's database, as the shop
//! tests seed the catalogue; the application's in-process relay and projections build
//! the read models, and the tests wait on the projections' checkpoints (never a sleep).

use std::time::Duration;

use chrono::{DateTime, Utc};
use emporium_commands::catalog::Products;
use emporium_commands::{AnyStore, Dispatcher, Loading};
use emporium_domain::catalog::{
    AltText, Attributes, CategoryCommand, CategoryName, CategoryTree, Description, ImageSource,
    ProductCommand, ProductName, Review, ReviewCommand, Slug,
};
use emporium_domain::metadata::Actor;
use emporium_domain::order::{Order, OrderCommand, OrderLine};
use emporium_domain::{Address, AddressInput, Currency, EventMetadata, Money, Quantity, Sku};
use emporium_projections::projection::CheckpointWatch;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Gql, TestApp, spawn_app};

const NOTIFICATION_FIELDS: &str = "id kind title orderId createdAt readAt read";
const ORDER_FIELDS: &str = "id status currency itemCount grandTotal { amountMinor currency } lines { sku productId quantity unitPrice { amountMinor } lineTotal { amountMinor } } history { status } placedAt";
const REVIEW_FIELDS: &str = "id productId rating title body verifiedPurchase status helpfulVotes";

fn meta() -> EventMetadata {
    EventMetadata::new(
        Uuid::new_v4(),
        Actor::System("test-seed".into()),
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

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

/// Writes commands straight into the test's event store and waits for projections.
struct Seeder {
    products: Products<AnyStore>,
    categories: Dispatcher<CategoryTree, AnyStore>,
    orders: Dispatcher<Order, AnyStore>,
    reviews: Dispatcher<Review, AnyStore>,
    watch: CheckpointWatch,
    last: i64,
}

impl Seeder {
    async fn new(app: &TestApp) -> Self {
        let store = app.store().clone();
        Self {
            products: Products::over(store.clone()),
            categories: Dispatcher::over(store.clone(), Loading::Replay),
            orders: Dispatcher::over(store.clone(), Loading::Replay),
            reviews: Dispatcher::over(store.clone(), Loading::Replay),
            watch: app.watch().await,
            last: 0,
        }
    }

    fn track(&mut self, position: Option<i64>) {
        if let Some(p) = position {
            self.last = self.last.max(p);
        }
    }

    /// A published product in a fresh category.
    async fn product(&mut self, sku: &str) -> Uuid {
        let category = Uuid::new_v4();
        let c = self
            .categories
            .execute(
                CategoryTree::ID,
                CategoryCommand::CreateCategory {
                    category_id: category,
                    name: CategoryName::parse("Kitchen").unwrap(),
                    slug: Slug::parse("kitchen").unwrap(),
                    parent_id: None,
                    at: Utc::now(),
                },
                &meta(),
            )
            .await
            .expect("category");
        self.track(c.position);
        let id = Uuid::new_v4();
        for command in [
            ProductCommand::CreateProduct {
                product_id: id,
                sku: Sku::parse(sku).unwrap(),
                slug: Slug::parse(&sku.to_ascii_lowercase()).unwrap(),
                name: ProductName::parse("Enamel mug").unwrap(),
                description: Description::parse("It holds coffee.").unwrap(),
                category_id: category,
                tags: std::collections::BTreeSet::new(),
                attributes: Attributes::default(),
                price: eur(1_250),
                at: Utc::now(),
            },
            ProductCommand::AddImage {
                image_id: Uuid::new_v4(),
                source: ImageSource::key("products/mug/front.jpg").unwrap(),
                alt_text: AltText::parse("Front").unwrap(),
                primary: true,
                at: Utc::now(),
            },
            ProductCommand::PublishProduct { at: Utc::now() },
        ] {
            let c = self
                .products
                .execute(id, command, &meta())
                .await
                .expect("product");
            self.track(c.position);
        }
        id
    }

    /// Places an order for `customer` of 2 units of `product`, then takes it through
    /// `then` (e.g. reserved, fraud check, paid).
    async fn order(
        &mut self,
        customer: Uuid,
        product: Uuid,
        at: DateTime<Utc>,
        then: Vec<OrderCommand>,
    ) -> Uuid {
        let order_id = Uuid::new_v4();
        let mut commands = vec![OrderCommand::PlaceOrder {
            order_id,
            customer_id: customer,
            lines: vec![OrderLine {
                sku: Sku::parse("MUG-1").unwrap(),
                product_id: product,
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
            at,
        }];
        commands.extend(then);
        for command in commands {
            let c = self
                .orders
                .execute(&order_id.to_string(), command, &meta())
                .await
                .expect("order command");
            self.track(c.position);
        }
        order_id
    }

    async fn approve_review(&mut self, product: Uuid, author: Uuid) {
        let c = self
            .reviews
            .execute(
                &Review::id_for(product, author),
                ReviewCommand::ApproveReview {
                    moderator_id: Uuid::new_v4(),
                    at: Utc::now(),
                },
                &meta(),
            )
            .await
            .expect("approve");
        self.track(c.position);
    }

    /// Waits until `projections` have applied everything seeded so far.
    async fn caught_up(&self, projections: &[&str]) {
        for projection in projections {
            self.watch
                .wait_for_position(projection, self.last, Duration::from_secs(30))
                .await
                .unwrap_or_else(|e| panic!("{projection}: {e}"));
        }
    }
}

/// Reserved, fraud-checked and paid.
fn paid(total: i64) -> Vec<OrderCommand> {
    vec![
        OrderCommand::MarkStockReserved { at: Utc::now() },
        OrderCommand::PassFraudCheck {
            risk_score: 5,
            reasons: Vec::new(),
            at: Utc::now(),
        },
        OrderCommand::MarkPaid {
            payment_id: Uuid::new_v4(),
            amount: eur(total),
            at: Utc::now(),
        },
    ]
}

impl TestApp {
    /// Registers a customer: (access token, user id).
    async fn customer(&self, email: &str) -> (String, Uuid) {
        let (access, _) = self.signed_up(email, "correct horse battery").await;
        let r = self
            .post_graphql("{ me { id } }", json!({}), Some(&access))
            .await;
        let id = r.ok("me")["id"].as_str().unwrap().parse().unwrap();
        (access, id)
    }

    async fn notifications(&self, access: Option<&str>, unread_only: bool) -> Gql {
        self.post_graphql(
            &format!(
                "query($u: Boolean!) {{ notifications(unreadOnly: $u) {{ {NOTIFICATION_FIELDS} }} unreadNotificationCount }}"
            ),
            json!({ "u": unread_only }),
            access,
        )
        .await
    }

    async fn mark_read(&self, access: &str, id: &str) -> Gql {
        self.post_graphql(
            &format!(
                "mutation($id: ID!) {{ markNotificationRead(id: $id) {{ {NOTIFICATION_FIELDS} }} }}"
            ),
            json!({ "id": id }),
            Some(access),
        )
        .await
    }

    async fn my_orders(&self, access: Option<&str>, first: i64, after: Option<&str>) -> Gql {
        self.post_graphql(
            &format!(
                "query($f: Int!, $a: String) {{ myOrders(first: $f, after: $a) {{ nodes {{ {ORDER_FIELDS} }} edges {{ cursor }} pageInfo {{ hasNextPage endCursor }} }} }}"
            ),
            json!({ "f": first, "a": after }),
            access,
        )
        .await
    }

    async fn order(&self, access: Option<&str>, id: &str) -> Gql {
        self.post_graphql(
            &format!("query($id: ID!) {{ order(id: $id) {{ {ORDER_FIELDS} }} }}"),
            json!({ "id": id }),
            access,
        )
        .await
    }

    async fn write_review(&self, access: Option<&str>, product: Uuid, rating: i64) -> Gql {
        self.post_graphql(
            &format!(
                "mutation($p: ID!, $r: Int!) {{ writeReview(productId: $p, rating: $r, title: \"Good mug\", body: \"It holds coffee.\") {{ {REVIEW_FIELDS} }} }}"
            ),
            json!({ "p": product.to_string(), "r": rating }),
            access,
        )
        .await
    }

    async fn product_reviews(&self, product: Uuid) -> Vec<Value> {
        let r = self
            .post_graphql(
                &format!(
                    "query($p: ID!) {{ productReviews(productId: $p) {{ {REVIEW_FIELDS} }} }}"
                ),
                json!({ "p": product.to_string() }),
                None,
            )
            .await;
        r.ok("productReviews").as_array().unwrap().clone()
    }

    async fn mark_helpful(&self, access: &str, review: &str) -> Gql {
        self.post_graphql(
            &format!(
                "mutation($id: ID!) {{ markReviewHelpful(reviewId: $id) {{ {REVIEW_FIELDS} }} }}"
            ),
            json!({ "id": review }),
            Some(access),
        )
        .await
    }
}

#[tokio::test]
async fn notifications_follow_an_order_and_are_only_their_owners() {
    let app = spawn_app().await;
    let mut seeder = Seeder::new(&app).await;
    let (access, user) = app.customer("inbox@example.com").await;
    let (other, _) = app.customer("other@example.com").await;
    let product = seeder.product("MUG-1").await;
    let order = seeder.order(user, product, Utc::now(), paid(3_400)).await;
    seeder.caught_up(&["notifications"]).await;

    // Placed and paid: two unread notifications about the order, newest first.
    let r = app.notifications(Some(&access), false).await;
    let list = r.ok("notifications").as_array().unwrap().clone();
    assert_eq!(list.len(), 2, "{list:?}");
    assert!(list.iter().all(|n| n["orderId"] == order.to_string()));
    assert!(list.iter().all(|n| n["read"] == false));
    assert_eq!(r.ok("unreadNotificationCount"), 2);
    let first = list[0]["id"].as_str().unwrap().to_owned();

    // Reading one is read back at once and drops the unread count.
    let r = app.mark_read(&access, &first).await;
    let n = r.ok("markNotificationRead");
    assert_eq!(n["id"], first.as_str());
    assert_eq!(n["read"], true);
    assert!(n["readAt"].is_string());
    let r = app.notifications(Some(&access), true).await;
    assert_eq!(r.ok("unreadNotificationCount"), 1);
    let unread = r.ok("notifications").as_array().unwrap();
    assert_eq!(unread.len(), 1);
    assert_ne!(unread[0]["id"], first.as_str());
    // Reading it again changes nothing.
    assert_eq!(
        app.mark_read(&access, &first)
            .await
            .ok("markNotificationRead")["read"],
        true
    );

    // Someone else's notification looks exactly like a missing one.
    let foreign = app.mark_read(&other, &first).await;
    foreign.expect_code("NOT_FOUND");
    let missing = app.mark_read(&other, &Uuid::new_v4().to_string()).await;
    missing.expect_code("NOT_FOUND");
    assert_eq!(
        foreign.body["errors"][0]["message"],
        missing.body["errors"][0]["message"]
    );
    app.mark_read(&other, "not-a-uuid")
        .await
        .expect_code("NOT_FOUND");
    let r = app.notifications(Some(&other), false).await;
    assert_eq!(r.ok("notifications").as_array().unwrap().len(), 0);
    assert_eq!(r.ok("unreadNotificationCount"), 0);
    // ... and the owner's stays unread.
    assert_eq!(
        app.notifications(Some(&access), false)
            .await
            .ok("unreadNotificationCount"),
        1
    );

    // Anonymous callers are turned away.
    app.notifications(None, false)
        .await
        .expect_code("UNAUTHENTICATED");
    app.post_graphql(
        "mutation { markAllNotificationsRead { count } }",
        json!({}),
        None,
    )
    .await
    .expect_code("UNAUTHENTICATED");

    // Read everything, then clear what is read.
    let r = app
        .post_graphql(
            "mutation { markAllNotificationsRead { count unreadCount } }",
            json!({}),
            Some(&access),
        )
        .await;
    let s = r.ok("markAllNotificationsRead");
    assert_eq!(
        (s["count"].as_i64(), s["unreadCount"].as_i64()),
        (Some(2), Some(0))
    );
    let r = app
        .post_graphql(
            "mutation { clearReadNotifications { count unreadCount } }",
            json!({}),
            Some(&access),
        )
        .await;
    let s = r.ok("clearReadNotifications");
    assert_eq!(
        (s["count"].as_i64(), s["unreadCount"].as_i64()),
        (Some(0), Some(0))
    );
    let r = app.notifications(Some(&access), false).await;
    assert_eq!(r.ok("notifications").as_array().unwrap().len(), 0);
    app.teardown().await;
}

#[tokio::test]
async fn my_orders_page_newest_first_and_an_order_is_only_its_owners() {
    let app = spawn_app().await;
    let mut seeder = Seeder::new(&app).await;
    let (access, user) = app.customer("orders@example.com").await;
    let (other, other_id) = app.customer("other@example.com").await;
    let product = seeder.product("MUG-1").await;
    let base = Utc::now() - chrono::Duration::hours(1);
    let mut mine = Vec::new();
    for i in 0..3 {
        let at = base + chrono::Duration::minutes(i);
        mine.push(seeder.order(user, product, at, vec![]).await);
    }
    let paid_order = seeder
        .order(
            user,
            product,
            base + chrono::Duration::minutes(10),
            paid(3_400),
        )
        .await;
    mine.push(paid_order);
    let theirs = seeder.order(other_id, product, base, vec![]).await;
    seeder.caught_up(&["orders"]).await;

    // Newest first, two a page, every order once.
    let newest_first: Vec<String> = mine.iter().rev().map(ToString::to_string).collect();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    for page in 0..2 {
        let r = app.my_orders(Some(&access), 2, after.as_deref()).await;
        let conn = r.ok("myOrders");
        let nodes = conn["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), 2);
        seen.extend(nodes.iter().map(|n| n["id"].as_str().unwrap().to_owned()));
        assert_eq!(conn["pageInfo"]["hasNextPage"], page == 0);
        after = conn["pageInfo"]["endCursor"]
            .as_str()
            .map(ToOwned::to_owned);
    }
    assert_eq!(seen, newest_first);
    let r = app.my_orders(Some(&access), 2, after.as_deref()).await;
    assert_eq!(r.ok("myOrders")["nodes"].as_array().unwrap().len(), 0);
    app.my_orders(Some(&access), 2, Some("garbage"))
        .await
        .expect_code("BAD_USER_INPUT");

    // The paid order in detail.
    let r = app.order(Some(&access), &paid_order.to_string()).await;
    let o = r.ok("order");
    assert_eq!(o["status"], "PAID");
    assert_eq!(o["itemCount"], 2);
    assert_eq!(o["grandTotal"]["amountMinor"], 3_400);
    assert_eq!(o["lines"][0]["sku"], "MUG-1");
    assert_eq!(o["lines"][0]["productId"], product.to_string());
    assert_eq!(o["lines"][0]["lineTotal"]["amountMinor"], 2_500);
    let history: Vec<&str> = o["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(history.first(), Some(&"pending"));
    assert_eq!(history.last(), Some(&"paid"));

    // Another customer's order looks exactly like a missing one.
    let foreign = app.order(Some(&access), &theirs.to_string()).await;
    foreign.expect_code("NOT_FOUND");
    let missing = app.order(Some(&access), &Uuid::new_v4().to_string()).await;
    missing.expect_code("NOT_FOUND");
    assert_eq!(
        foreign.body["errors"][0]["message"],
        missing.body["errors"][0]["message"]
    );
    app.order(Some(&other), &paid_order.to_string())
        .await
        .expect_code("NOT_FOUND");
    let r = app.my_orders(Some(&other), 10, None).await;
    let theirs_listed: Vec<&str> = r.ok("myOrders")["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(theirs_listed, vec![theirs.to_string().as_str()]);

    app.my_orders(None, 2, None)
        .await
        .expect_code("UNAUTHENTICATED");
    app.order(None, &paid_order.to_string())
        .await
        .expect_code("UNAUTHENTICATED");
    app.teardown().await;
}

#[tokio::test]
async fn a_review_round_trip_with_a_verified_purchase_and_helpful_votes() {
    let app = spawn_app().await;
    let mut seeder = Seeder::new(&app).await;
    let (buyer_access, buyer) = app.customer("buyer@example.com").await;
    let (voter_access, voter) = app.customer("voter@example.com").await;
    let product = seeder.product("MUG-1").await;
    // The buyer paid for the mug; the voter only placed an order for it.
    seeder.order(buyer, product, Utc::now(), paid(3_400)).await;
    seeder.order(voter, product, Utc::now(), vec![]).await;
    seeder.caught_up(&["catalog", "orders"]).await;

    app.write_review(None, product, 5)
        .await
        .expect_code("UNAUTHENTICATED");
    app.write_review(Some(&buyer_access), product, 6)
        .await
        .expect_code("BAD_USER_INPUT");
    app.write_review(Some(&buyer_access), Uuid::new_v4(), 5)
        .await
        .expect_code("NOT_FOUND");

    // Written, read back at once, pending moderation; verified from the orders.
    let r = app.write_review(Some(&buyer_access), product, 5).await;
    let review = r.ok("writeReview").clone();
    assert_eq!(review["status"], "PENDING");
    assert_eq!(review["verifiedPurchase"], true);
    assert_eq!(review["rating"], 5);
    assert_eq!(review["productId"], product.to_string());
    let r = app.write_review(Some(&voter_access), product, 3).await;
    assert_eq!(
        r.ok("writeReview")["verifiedPurchase"],
        false,
        "unpaid order"
    );
    // One review per customer per product.
    app.write_review(Some(&buyer_access), product, 4)
        .await
        .expect_code("BAD_USER_INPUT");

    // Only approved reviews are listed, and only approved ones take votes.
    assert!(app.product_reviews(product).await.is_empty());
    let id = review["id"].as_str().unwrap();
    app.mark_helpful(&voter_access, id)
        .await
        .expect_code("NOT_FOUND");
    seeder.approve_review(product, buyer).await;
    seeder.caught_up(&["reviews"]).await;
    let listed = app.product_reviews(product).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id);
    assert_eq!(listed[0]["status"], "APPROVED");

    let r = app.mark_helpful(&voter_access, id).await;
    assert_eq!(r.ok("markReviewHelpful")["helpfulVotes"], 1);
    // A second vote changes nothing; the author cannot vote.
    let r = app.mark_helpful(&voter_access, id).await;
    assert_eq!(r.ok("markReviewHelpful")["helpfulVotes"], 1);
    app.mark_helpful(&buyer_access, id)
        .await
        .expect_code("BAD_USER_INPUT");
    app.mark_helpful(&voter_access, &Uuid::new_v4().to_string())
        .await
        .expect_code("NOT_FOUND");
    assert_eq!(app.product_reviews(product).await[0]["helpfulVotes"], 1);
    app.teardown().await;
}
