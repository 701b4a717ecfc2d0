//! Read models built from real commands: dispatcher -> event store -> relay ->
//! JetStream -> projection runner -> rows.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use emporium_commands::{Dispatcher, Loading};
use emporium_domain::activity::{ActivityCommand, ActivityKind, UserActivity};
use emporium_domain::cart::{Cart, CartCommand, CartOwner};
use emporium_domain::catalog::{
    CategoryCommand, CategoryName, ModerationReason, ProductCommand, Rating, Review, ReviewBody,
    ReviewCommand, ReviewTitle, Slug, Wishlist, WishlistCommand,
};
use emporium_domain::inbox::{Inbox, InboxCommand};
use emporium_domain::order::{Order, OrderCommand, OrderLine};
use emporium_domain::payment::{DeclineCode, Payment, PaymentCommand};
use emporium_domain::user::{
    Email, PasswordHash, PersonName, PhoneNumber, Preferences, Role, User, UserCommand,
};
use emporium_domain::{Address, AddressInput, Currency, Money, Quantity, Sku};
use emporium_projections::projection::Projection;
use emporium_projections::views::{
    ActivityProjection, CartsProjection, CatalogProjection, CategoriesProjection,
    CustomersProjection, InventoryProjection, NotificationsProjection, OrdersProjection,
    ReviewsProjection, WishlistsProjection,
};
use serde_json::json;
use sqlx::Row as _;
use uuid::Uuid;

use crate::support::{Shop, TREE, assert_equals_rebuild, meta, project, runner, spawn};

#[tokio::test]
async fn catalog_categories_inventory_and_reviews_follow_the_commands() {
    let app = spawn().await;
    let shop = Shop::new(&app);
    let mut relay = app.relay();
    let mut catalog = runner(&app, Arc::new(CatalogProjection));
    let mut categories = runner(&app, Arc::new(CategoriesProjection));
    let mut inventory = runner(&app, Arc::new(InventoryProjection));
    let mut reviews = runner(&app, Arc::new(ReviewsProjection));

    // Some history exists before the projections first run: they build it from the
    // event store, then follow the stream.
    let kitchen = shop.category("Kitchen", "kitchen", None).await;
    let mugs = shop.category("Mugs", "mugs", Some(kitchen)).await;
    let mug = shop.product("MUG-1", mugs, 1_250).await;
    project(
        &app,
        &mut relay,
        &mut [&mut catalog, &mut categories, &mut inventory, &mut reviews],
    )
    .await;

    let large = shop.variant(mug, "MUG-1-L", 1_500).await;
    let image = shop.publish_with_image(mug).await;
    shop.command(mug, ProductCommand::FeatureProduct { at: Utc::now() })
        .await;
    shop.stock("MUG-1", 10, 0).await;
    shop.stock("MUG-1-L", 3, 5).await;
    shop.reserve("MUG-1-L", 1).await;

    let review_dispatcher = Dispatcher::<Review>::new(app.pool.clone(), Loading::Replay);
    let mut review_ids = Vec::new();
    for stars in [5, 4, 1] {
        let id = Uuid::new_v4();
        review_ids.push(id);
        review_dispatcher
            .execute(
                &id.to_string(),
                ReviewCommand::WriteReview {
                    product_id: mug,
                    author_id: Uuid::new_v4(),
                    rating: Rating::new(stars).unwrap(),
                    title: ReviewTitle::parse("My mug").unwrap(),
                    body: ReviewBody::parse("It holds coffee.").unwrap(),
                    verified_purchase: true,
                    at: Utc::now(),
                },
                &meta(),
            )
            .await
            .unwrap();
        review_dispatcher
            .execute(
                &id.to_string(),
                ReviewCommand::ApproveReview {
                    moderator_id: Uuid::new_v4(),
                    at: Utc::now(),
                },
                &meta(),
            )
            .await
            .unwrap();
    }
    // The one-star review is hidden after approval: it leaves the average.
    review_dispatcher
        .execute(
            &review_ids[2].to_string(),
            ReviewCommand::HideReview {
                moderator_id: Uuid::new_v4(),
                reason: ModerationReason::parse("off topic").unwrap(),
                at: Utc::now(),
            },
            &meta(),
        )
        .await
        .unwrap();
    project(
        &app,
        &mut relay,
        &mut [&mut catalog, &mut categories, &mut inventory, &mut reviews],
    )
    .await;

    // A listing is one indexed query over one table.
    let listing = sqlx::query(
        "SELECT product_id, name, category_path, category_ids, tags, min_price_minor,
                max_price_minor, variants, images, primary_image, rating_count,
                rating_average::float8 AS rating_average, available, in_stock, published,
                featured, status
         FROM catalog_products
         WHERE published AND category_ids @> ARRAY[$1::uuid] AND tags @> ARRAY['gift']
         ORDER BY created_at DESC LIMIT 20",
    )
    .bind(kitchen)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(listing.len(), 1);
    let row = &listing[0];
    assert_eq!(row.get::<Uuid, _>("product_id"), mug);
    assert_eq!(
        row.get::<serde_json::Value, _>("category_path"),
        json!([
            {"category_id": kitchen, "name": "Kitchen", "slug": "kitchen"},
            {"category_id": mugs, "name": "Mugs", "slug": "mugs"},
        ])
    );
    assert_eq!(row.get::<i64, _>("min_price_minor"), 1_250);
    assert_eq!(row.get::<i64, _>("max_price_minor"), 1_500);
    let variants = row.get::<serde_json::Value, _>("variants");
    assert_eq!(variants[0]["variant_id"], json!(large));
    assert_eq!(variants[0]["sku"], "MUG-1-L");
    assert_eq!(variants[0]["size"], "L");
    assert_eq!(variants[0]["available"], 2);
    assert_eq!(
        row.get::<serde_json::Value, _>("primary_image")["image_id"],
        json!(image)
    );
    assert_eq!(row.get::<i64, _>("rating_count"), 2);
    assert!((row.get::<f64, _>("rating_average") - 4.5).abs() < 1e-9);
    assert_eq!(row.get::<i64, _>("available"), 12);
    assert!(row.get::<bool, _>("in_stock"));
    assert!(row.get::<bool, _>("featured"));
    assert_eq!(row.get::<String, _>("status"), "published");

    let levels: Vec<(String, i64, i64, i64, bool)> = sqlx::query_as(
        "SELECT sku, on_hand, reserved, available, low_stock FROM inventory_levels ORDER BY sku",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        levels,
        [
            ("MUG-1".to_owned(), 10, 0, 10, false),
            ("MUG-1-L".to_owned(), 3, 1, 2, true),
        ]
    );

    let shown: Vec<(i32, String)> = sqlx::query_as(
        "SELECT rating, status FROM product_reviews WHERE product_id = $1 ORDER BY rating DESC",
    )
    .bind(mug)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        shown,
        [
            (5, "approved".to_owned()),
            (4, "approved".to_owned()),
            (1, "hidden".to_owned())
        ]
    );

    // Renaming and moving a category rewrites the paths below it, on products too.
    let home = shop.category("Home", "home", None).await;
    shop.categories
        .execute(
            TREE,
            CategoryCommand::RenameCategory {
                category_id: kitchen,
                name: CategoryName::parse("Cooking").unwrap(),
                slug: Slug::parse("cooking").unwrap(),
                at: Utc::now(),
            },
            &meta(),
        )
        .await
        .unwrap();
    shop.categories
        .execute(
            TREE,
            CategoryCommand::MoveCategory {
                category_id: kitchen,
                new_parent_id: Some(home),
                at: Utc::now(),
            },
            &meta(),
        )
        .await
        .unwrap();
    project(
        &app,
        &mut relay,
        &mut [&mut catalog, &mut categories, &mut inventory, &mut reviews],
    )
    .await;
    let path: serde_json::Value =
        sqlx::query_scalar("SELECT category_path FROM catalog_products WHERE product_id = $1")
            .bind(mug)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let names: Vec<&str> = path
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Home", "Cooking", "Mugs"]);
    let tree: Vec<(String, i32, Vec<String>)> =
        sqlx::query_as("SELECT path_slugs, depth, old_slugs FROM categories ORDER BY path_slugs")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        tree,
        [
            ("home".to_owned(), 0, vec![]),
            ("home/cooking".to_owned(), 1, vec!["kitchen".to_owned()]),
            ("home/cooking/mugs".to_owned(), 2, vec![]),
        ]
    );

    for projection in [
        Arc::new(CatalogProjection) as Arc<dyn Projection>,
        Arc::new(CategoriesProjection),
        Arc::new(InventoryProjection),
        Arc::new(ReviewsProjection),
    ] {
        assert_equals_rebuild(&app, projection).await;
    }
    app.teardown().await;
}

fn address(city: &str) -> Address {
    Address::parse(AddressInput {
        full_name: "Ada Lovelace".into(),
        line1: "12 St James's Square".into(),
        city: city.into(),
        postal_code: "SW1Y 4JH".into(),
        country: "GB".into(),
        ..AddressInput::default()
    })
    .unwrap()
}

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgRdescudvJCsg";

#[tokio::test]
async fn customers_carts_orders_and_wishlists_follow_the_commands() {
    let app = spawn().await;
    let mut relay = app.relay();
    let mut customers = runner(&app, Arc::new(CustomersProjection));
    let mut carts = runner(&app, Arc::new(CartsProjection));
    let mut orders = runner(&app, Arc::new(OrdersProjection));
    let mut wishlists = runner(&app, Arc::new(WishlistsProjection));
    let users = Dispatcher::<User>::new(app.pool.clone(), Loading::Replay);
    let cart_dispatcher = Dispatcher::<Cart>::new(app.pool.clone(), Loading::Replay);
    let order_dispatcher = Dispatcher::<Order>::new(app.pool.clone(), Loading::Replay);
    let wishlist_dispatcher = Dispatcher::<Wishlist>::new(app.pool.clone(), Loading::Replay);

    let user_id = Uuid::new_v4();
    let user = user_id.to_string();
    users
        .execute(
            &user,
            UserCommand::RegisterUser {
                user_id,
                email: Email::parse("ada@example.org").unwrap(),
                password_hash: PasswordHash::parse(HASH).unwrap(),
                first_name: PersonName::parse("Ada").unwrap(),
                last_name: Some(PersonName::parse("Lovelace").unwrap()),
                role: Role::Customer,
                preferences: Preferences::default(),
                at: Utc::now(),
            },
            &meta(),
        )
        .await
        .unwrap();
    let home = Uuid::new_v4();
    for command in [
        UserCommand::UpdateProfile {
            first_name: PersonName::parse("Augusta Ada").unwrap(),
            last_name: Some(PersonName::parse("King").unwrap()),
            phone: Some(PhoneNumber::parse("+44 20 7946 0000").unwrap()),
            at: Utc::now(),
        },
        UserCommand::AddAddress {
            address_id: home,
            address: address("London"),
            at: Utc::now(),
        },
        UserCommand::ChangePassword {
            new_password_hash: PasswordHash::parse(HASH).unwrap(),
            at: Utc::now(),
        },
    ] {
        users.execute(&user, command, &meta()).await.unwrap();
    }

    let cart_id = Uuid::new_v4();
    let mug = Uuid::new_v4();
    let sku = Sku::parse("MUG-1").unwrap();
    for command in [
        CartCommand::OpenCart {
            cart_id,
            owner: CartOwner::User { user_id },
            currency: Currency::EUR,
            at: Utc::now(),
        },
        CartCommand::AddItem {
            sku: sku.clone(),
            product_id: mug,
            quantity: Quantity::new(2).unwrap(),
            at: Utc::now(),
        },
        CartCommand::AddItem {
            sku: sku.clone(),
            product_id: mug,
            quantity: Quantity::new(1).unwrap(),
            at: Utc::now(),
        },
    ] {
        cart_dispatcher
            .execute(&cart_id.to_string(), command, &meta())
            .await
            .unwrap();
    }
    wishlist_dispatcher
        .execute(
            &user,
            WishlistCommand::AddToWishlist {
                product_id: mug,
                at: Utc::now(),
            },
            &meta(),
        )
        .await
        .unwrap();
    project(
        &app,
        &mut relay,
        &mut [&mut customers, &mut carts, &mut orders, &mut wishlists],
    )
    .await;

    let open: (i64, serde_json::Value, String) = sqlx::query_as(
        "SELECT item_count, lines, status FROM carts WHERE user_id = $1 AND status = 'open'",
    )
    .bind(user_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(open.0, 3);
    assert_eq!(
        open.1,
        json!([{"sku": "MUG-1", "product_id": mug, "quantity": 3}])
    );

    cart_dispatcher
        .execute(
            &cart_id.to_string(),
            CartCommand::CheckOut {
                prices: BTreeMap::from([(sku.clone(), Money::new(1_250, Currency::EUR))]),
                at: Utc::now(),
            },
            &meta(),
        )
        .await
        .unwrap();
    let order_id = Uuid::new_v4();
    let order = order_id.to_string();
    order_dispatcher
        .execute(
            &order,
            OrderCommand::PlaceOrder {
                order_id,
                customer_id: user_id,
                lines: vec![OrderLine {
                    sku: sku.clone(),
                    product_id: mug,
                    name: "Enamel mug".into(),
                    unit_price: Money::new(1_250, Currency::EUR),
                    quantity: Quantity::new(3).unwrap(),
                    line_total: Money::new(3_750, Currency::EUR),
                }],
                tax_total: Money::new(750, Currency::EUR),
                shipping_total: Money::new(500, Currency::EUR),
                discount_total: Money::new(0, Currency::EUR),
                shipping_address: address("London"),
                billing_address: address("London"),
                currency: Currency::EUR,
                at: Utc::now(),
            },
            &meta(),
        )
        .await
        .unwrap();
    let payment_id = Uuid::new_v4();
    for command in [
        OrderCommand::MarkStockReserved { at: Utc::now() },
        OrderCommand::PassFraudCheck {
            risk_score: 12,
            reasons: Vec::new(),
            at: Utc::now(),
        },
        OrderCommand::MarkPaid {
            payment_id,
            amount: Money::new(5_000, Currency::EUR),
            at: Utc::now(),
        },
        OrderCommand::ShipOrder {
            tracking_number: Some("TRACK-1".into()),
            at: Utc::now(),
        },
    ] {
        order_dispatcher
            .execute(&order, command, &meta())
            .await
            .unwrap();
    }
    wishlist_dispatcher
        .execute(
            &user,
            WishlistCommand::RemoveFromWishlist {
                product_id: mug,
                at: Utc::now(),
            },
            &meta(),
        )
        .await
        .unwrap();
    project(
        &app,
        &mut relay,
        &mut [&mut customers, &mut carts, &mut orders, &mut wishlists],
    )
    .await;

    let customer = sqlx::query(
        "SELECT email, first_name, last_name, phone, role, addresses, to_jsonb(c)::text AS whole
         FROM customers c WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(customer.get::<String, _>("email"), "ada@example.org");
    assert_eq!(customer.get::<String, _>("first_name"), "Augusta Ada");
    assert_eq!(customer.get::<String, _>("role"), "customer");
    let addresses = customer.get::<serde_json::Value, _>("addresses");
    assert_eq!(addresses[0]["address_id"], json!(home));
    assert_eq!(addresses[0]["address"]["city"], "London");
    assert!(
        !customer.get::<String, _>("whole").contains("argon2"),
        "a password hash reached the read model"
    );
    // Nor the stream: sealed fields leave the store as null.
    let published = app.stream_messages().await;
    let credentials: Vec<_> = published
        .iter()
        .filter(|m| ["UserRegistered", "PasswordChanged"].contains(&m.envelope.event_type.as_str()))
        .collect();
    assert_eq!(credentials.len(), 2);
    for message in credentials {
        let body = serde_json::to_string(&message.envelope.payload).unwrap();
        assert!(
            !body.contains("argon2"),
            "a password hash was published: {body}"
        );
        assert_eq!(
            message.envelope.payload[&message.envelope.event_type]["password_hash"],
            json!(null)
        );
    }
    // The event store itself keeps it: the aggregate needs it to check a login.
    let stored: serde_json::Value = sqlx::query_scalar(
        "SELECT payload FROM events WHERE aggregate_id = $1 AND event_type = 'UserRegistered'",
    )
    .bind(&user)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(stored["UserRegistered"]["password_hash"], json!(HASH));

    let (status, total, lines, country): (String, i64, serde_json::Value, String) = sqlx::query_as(
        "SELECT status, grand_total_minor, lines, shipping_country FROM orders
         WHERE customer_id = $1 ORDER BY placed_at DESC LIMIT 20",
    )
    .bind(user_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        (status.as_str(), total, country.as_str()),
        ("shipped", 5_000, "GB")
    );
    assert_eq!(lines[0]["quantity"], 3);
    // The staff view: filter by status and date.
    let staff: Vec<(Uuid, Option<i32>, serde_json::Value)> = sqlx::query_as(
        "SELECT order_id, risk_score, history FROM orders
         WHERE status = 'shipped' AND placed_at > now() - interval '1 day'
         ORDER BY placed_at DESC",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(staff.len(), 1);
    assert_eq!(staff[0].1, Some(12));
    let history: Vec<&str> = staff[0]
        .2
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        history,
        ["pending", "reserved", "awaiting_payment", "paid", "shipped"]
    );

    let (cart_status, subtotal): (String, Option<i64>) =
        sqlx::query_as("SELECT status, subtotal_minor FROM carts WHERE cart_id = $1")
            .bind(cart_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        (cart_status.as_str(), subtotal),
        ("checked_out", Some(3_750))
    );
    let wished: i64 = sqlx::query_scalar("SELECT count(*) FROM wishlist_items WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(wished, 0);

    for projection in [
        Arc::new(CustomersProjection) as Arc<dyn Projection>,
        Arc::new(CartsProjection),
        Arc::new(OrdersProjection),
        Arc::new(WishlistsProjection),
    ] {
        assert_equals_rebuild(&app, projection).await;
    }
    app.teardown().await;
}

/// Places an order of one mug for `customer_id` through the dispatcher.
async fn place_order(orders: &Dispatcher<Order>, customer_id: Uuid, at: DateTime<Utc>) -> Uuid {
    let order_id = Uuid::new_v4();
    orders
        .execute(
            &order_id.to_string(),
            OrderCommand::PlaceOrder {
                order_id,
                customer_id,
                lines: vec![OrderLine {
                    sku: Sku::parse("MUG-1").unwrap(),
                    product_id: Uuid::new_v4(),
                    name: "Enamel mug".into(),
                    unit_price: Money::new(1_250, Currency::EUR),
                    quantity: Quantity::new(2).unwrap(),
                    line_total: Money::new(2_500, Currency::EUR),
                }],
                tax_total: Money::new(500, Currency::EUR),
                shipping_total: Money::new(0, Currency::EUR),
                discount_total: Money::new(0, Currency::EUR),
                shipping_address: address("London"),
                billing_address: address("London"),
                currency: Currency::EUR,
                at,
            },
            &meta(),
        )
        .await
        .unwrap();
    order_id
}

/// Distinct, increasing event times in the past, so "newest first" is well defined
/// (times taken with `Utc::now()` in one breath can tie at microsecond precision).
struct Ticks {
    start: DateTime<Utc>,
    next: std::cell::Cell<i64>,
}

impl Ticks {
    fn new() -> Self {
        Self {
            start: Utc::now() - chrono::Duration::hours(1),
            next: std::cell::Cell::new(0),
        }
    }

    fn tick(&self) -> DateTime<Utc> {
        let n = self.next.get() + 1;
        self.next.set(n);
        self.start + chrono::Duration::seconds(n)
    }
}

/// `(kind, read, cleared)` of a user's notifications, oldest first.
async fn notices(app: &crate::helpers::TestBackbone, user_id: Uuid) -> Vec<(String, bool, bool)> {
    sqlx::query_as(
        "SELECT kind, read_at IS NOT NULL, cleared FROM notifications
         WHERE user_id = $1 ORDER BY created_at, notification_id",
    )
    .bind(user_id)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

async fn unread(app: &crate::helpers::TestBackbone, user_id: Uuid) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL AND NOT cleared",
    )
    .bind(user_id)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn notifications_and_user_activity_follow_the_commands() {
    let app = spawn().await;
    let mut relay = app.relay();
    let mut notifications = runner(&app, Arc::new(NotificationsProjection));
    let mut activity = runner(&app, Arc::new(ActivityProjection));
    let shop = Shop::new(&app);
    let orders = Dispatcher::<Order>::new(app.pool.clone(), Loading::Replay);
    let payments = Dispatcher::<Payment>::new(app.pool.clone(), Loading::Replay);
    let inboxes = Dispatcher::<Inbox>::new(app.pool.clone(), Loading::Replay);
    let activities = Dispatcher::<UserActivity>::new(app.pool.clone(), Loading::Replay);

    let t = Ticks::new();
    let ada = Uuid::new_v4();
    let bob = Uuid::new_v4();
    // Ada's first order goes all the way to shipped.
    let first = place_order(&orders, ada, t.tick()).await;
    for command in [
        OrderCommand::MarkStockReserved { at: t.tick() },
        OrderCommand::PassFraudCheck {
            risk_score: 3,
            reasons: Vec::new(),
            at: t.tick(),
        },
        OrderCommand::MarkPaid {
            payment_id: Uuid::new_v4(),
            amount: Money::new(3_000, Currency::EUR),
            at: t.tick(),
        },
        OrderCommand::ShipOrder {
            tracking_number: Some("TRACK-7".into()),
            at: t.tick(),
        },
    ] {
        orders
            .execute(&first.to_string(), command, &meta())
            .await
            .unwrap();
    }
    // Her second order's payment is declined.
    let second = place_order(&orders, ada, t.tick()).await;
    let payment_id = Uuid::new_v4();
    for command in [
        PaymentCommand::CreatePayment {
            payment_id,
            order_id: second,
            provider: "offline".into(),
            provider_intent_id: "pi_1".into(),
            amount: Money::new(3_000, Currency::EUR),
            idempotency_key: "key-1".into(),
            at: t.tick(),
        },
        PaymentCommand::FailPayment {
            reason: DeclineCode::InsufficientFunds,
            at: t.tick(),
        },
    ] {
        payments
            .execute(&payment_id.to_string(), command, &meta())
            .await
            .unwrap();
    }
    let bobs = place_order(&orders, bob, t.tick()).await;
    // Low stock is for staff.
    shop.stock("LAMP-1", 10, 3).await;
    shop.reserve("LAMP-1", 8).await;

    // Activity: Ada views and searches, a guest adds to cart; a retried beacon is
    // recorded once.
    let lamp = Uuid::new_v4();
    let guest = "guest:7f3a9c";
    let viewed = Uuid::new_v4();
    for (subject, activity_id, kind, product_id, query) in [
        (
            ada.to_string(),
            viewed,
            ActivityKind::View,
            Some(lamp),
            None,
        ),
        (
            ada.to_string(),
            viewed,
            ActivityKind::View,
            Some(lamp),
            None,
        ),
        (
            ada.to_string(),
            Uuid::new_v4(),
            ActivityKind::Search,
            None,
            Some(" desk lamp ".to_owned()),
        ),
        (
            guest.to_owned(),
            Uuid::new_v4(),
            ActivityKind::AddToCart,
            Some(lamp),
            None,
        ),
    ] {
        activities
            .execute(
                &subject,
                ActivityCommand::RecordActivity {
                    activity_id,
                    kind,
                    product_id,
                    query,
                    at: t.tick(),
                },
                &meta(),
            )
            .await
            .unwrap();
    }
    project(&app, &mut relay, &mut [&mut notifications, &mut activity]).await;

    let kinds = |rows: &[(String, bool, bool)]| -> Vec<String> {
        rows.iter().map(|(k, _, _)| k.clone()).collect()
    };
    assert_eq!(
        kinds(&notices(&app, ada).await),
        [
            "order_placed",
            "order_paid",
            "order_shipped",
            "order_placed",
            "payment_failed"
        ]
    );
    assert_eq!(kinds(&notices(&app, bob).await), ["order_placed"]);
    assert_eq!(unread(&app, ada).await, 5);
    let (title, body, order_id): (String, String, Option<Uuid>) = sqlx::query_as(
        "SELECT title, body, order_id FROM notifications WHERE user_id = $1 AND kind = 'order_shipped'",
    )
    .bind(ada)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(title.contains("shipped"), "{title}");
    assert!(body.contains("TRACK-7"), "{body}");
    assert_eq!(order_id, Some(first));
    let staff: Vec<(Option<Uuid>, String, String)> = sqlx::query_as(
        "SELECT user_id, kind, title FROM notifications WHERE audience = 'staff'
         ORDER BY created_at DESC",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        staff,
        [(None, "low_stock".to_owned(), "Low stock: LAMP-1".to_owned())]
    );
    // A notification's id is its source event's, so it is known before projection.
    let paid_id: Uuid = sqlx::query_scalar(
        "SELECT notification_id FROM notifications WHERE user_id = $1 AND kind = 'order_paid'",
    )
    .bind(ada)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let source: Uuid = sqlx::query_scalar(
        "SELECT event_id FROM events WHERE aggregate_id = $1 AND event_type = 'OrderPaid'",
    )
    .bind(first.to_string())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(paid_id, source);
    let bobs_id: Uuid =
        sqlx::query_scalar("SELECT notification_id FROM notifications WHERE order_id = $1")
            .bind(bobs)
            .fetch_one(&app.pool)
            .await
            .unwrap();

    // Ada reads one; marking it again records nothing; her inbox cannot touch Bob's.
    let inbox = ada.to_string();
    let mark = |notification_id| InboxCommand::MarkNotificationRead {
        notification_id,
        at: t.tick(),
    };
    assert_eq!(
        inboxes
            .execute(&inbox, mark(paid_id), &meta())
            .await
            .unwrap()
            .events,
        1
    );
    assert_eq!(
        inboxes
            .execute(&inbox, mark(paid_id), &meta())
            .await
            .unwrap()
            .events,
        0
    );
    inboxes
        .execute(&inbox, mark(bobs_id), &meta())
        .await
        .unwrap();
    project(&app, &mut relay, &mut [&mut notifications]).await;
    assert_eq!(unread(&app, ada).await, 4);
    assert_eq!(unread(&app, bob).await, 1);
    let read_at: Option<chrono::DateTime<Utc>> =
        sqlx::query_scalar("SELECT read_at FROM notifications WHERE notification_id = $1")
            .bind(paid_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(read_at.is_some());

    // Clearing hides the read one from "my latest 20".
    inboxes
        .execute(
            &inbox,
            InboxCommand::ClearReadNotifications { at: t.tick() },
            &meta(),
        )
        .await
        .unwrap();
    project(&app, &mut relay, &mut [&mut notifications]).await;
    let latest: Vec<String> = sqlx::query_scalar(
        "SELECT kind FROM notifications WHERE user_id = $1 AND NOT cleared
         ORDER BY created_at DESC LIMIT 20",
    )
    .bind(ada)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        latest,
        [
            "payment_failed",
            "order_placed",
            "order_shipped",
            "order_placed"
        ]
    );

    // "Mark all read" up to the newest she was shown.
    let newest: chrono::DateTime<Utc> =
        sqlx::query_scalar("SELECT max(created_at) FROM notifications WHERE user_id = $1")
            .bind(ada)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    inboxes
        .execute(
            &inbox,
            InboxCommand::MarkAllNotificationsRead {
                up_to: newest,
                at: t.tick(),
            },
            &meta(),
        )
        .await
        .unwrap();
    project(&app, &mut relay, &mut [&mut notifications]).await;
    assert_eq!(unread(&app, ada).await, 0);
    assert_eq!(
        notices(&app, ada).await,
        [
            ("order_placed".to_owned(), true, false),
            ("order_paid".to_owned(), true, true),
            ("order_shipped".to_owned(), true, false),
            ("order_placed".to_owned(), true, false),
            ("payment_failed".to_owned(), true, false),
        ]
    );
    assert_eq!(unread(&app, bob).await, 1);

    let trail: Vec<(String, Option<Uuid>, Option<String>)> = sqlx::query_as(
        "SELECT kind, product_id, query FROM user_activity WHERE subject = $1
         ORDER BY at DESC",
    )
    .bind(ada.to_string())
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        trail,
        [
            ("search".to_owned(), None, Some("desk lamp".to_owned())),
            ("view".to_owned(), Some(lamp), None),
        ]
    );
    let lamp_activity: Vec<(String, String)> =
        sqlx::query_as("SELECT subject, kind FROM user_activity WHERE product_id = $1 ORDER BY at")
            .bind(lamp)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        lamp_activity,
        [
            (ada.to_string(), "view".to_owned()),
            (guest.to_owned(), "add_to_cart".to_owned()),
        ]
    );

    for projection in [
        Arc::new(NotificationsProjection) as Arc<dyn Projection>,
        Arc::new(ActivityProjection),
    ] {
        assert_equals_rebuild(&app, projection).await;
    }
    app.teardown().await;
}
