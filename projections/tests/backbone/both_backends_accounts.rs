//! The account-side read models on both backends: `customers`, `orders`, `payments`,
//! `notifications`, `wishlist_items` and `user_activity`, built by the same projection
//! code from the same events on PostgreSQL and on SQLite, give the same rows.
//!
//! One shop history, written through the real dispatchers into the embedded store,
//! feeds every test: two users with address books and preferences, orders that are
//! paid, shipped, delivered and refunded, held and cancelled, their payments
//! (authorised, captured, refunded, declined, voided, one for an order never placed),
//! inbox reads, wishlist changes and a few hundred activity beacons.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use emporium_commands::store::SqliteStore;
use emporium_commands::{Dispatcher, Loading};
use emporium_domain::Aggregate;
use emporium_domain::activity::{ActivityCommand, ActivityKind, UserActivity};
use emporium_domain::catalog::{Wishlist, WishlistCommand};
use emporium_domain::inbox::{Inbox, InboxCommand};
use emporium_domain::inventory::{Inventory, InventoryCommand};
use emporium_domain::order::{CancellationReason, Order, OrderCommand, OrderLine};
use emporium_domain::payment::{DeclineCode, NextAction, Payment, PaymentCommand};
use emporium_domain::user::{
    Email, Language, PasswordHash, PersonName, PhoneNumber, Preferences, Role, User, UserCommand,
};
use emporium_domain::{Address, AddressInput, Currency, Money, Quantity, Sku};
use emporium_projections::args;
use emporium_projections::projection::Projection;
use emporium_projections::sql::Db;
use emporium_projections::views::{
    ActivityProjection, CustomersProjection, NotificationsProjection, OrdersProjection,
    PaymentsProjection, WishlistsProjection,
};
use emporium_tests::TestDatabase;
use serde::Deserialize;
use serde_json::json;
use sqlx::types::Json;
use uuid::Uuid;

use crate::both_backends::{Scenario, build_both};
use crate::support::meta;

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgRdescudvJCsg";

/// Activity beacons beyond the hand-written ones: more than one SQLite insert's worth.
const BEACONS: usize = 620;

/// Runs `commands` on aggregate `id` through a dispatcher over the embedded store.
async fn run<A: Aggregate>(
    store: &SqliteStore,
    id: &str,
    commands: impl IntoIterator<Item = A::Command>,
) where
    A::Command: Clone,
{
    let dispatcher = Dispatcher::<A, SqliteStore>::over(store.clone(), Loading::Replay);
    for command in commands {
        let shown = format!("{command:?}");
        dispatcher
            .execute(id, command, &meta())
            .await
            .unwrap_or_else(|e| panic!("{} {id}: {shown}: {e}", A::TYPE));
    }
}

/// Distinct, increasing event times, so orderings by time have no ties.
struct Ticks {
    start: DateTime<Utc>,
    next: std::cell::Cell<i64>,
}

impl Ticks {
    fn new() -> Self {
        Self {
            start: Utc::now() - chrono::Duration::hours(2),
            next: std::cell::Cell::new(0),
        }
    }

    fn tick(&self) -> DateTime<Utc> {
        let n = self.next.get() + 1;
        self.next.set(n);
        self.start + chrono::Duration::milliseconds(n * 1_001)
    }
}

fn address(city: &str, country: &str) -> Address {
    Address::parse(AddressInput {
        full_name: "Ada Lovelace".into(),
        line1: "12 St James's Square".into(),
        city: city.into(),
        postal_code: "SW1Y 4JH".into(),
        country: country.into(),
        ..AddressInput::default()
    })
    .expect("a valid address")
}

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

/// The ids the assertions look for.
pub(crate) struct Shop {
    pub(crate) scenario: Scenario,
    ada: Uuid,
    bob: Uuid,
    ada_home: Uuid,
    ada_work: Uuid,
    /// Ada's: paid, shipped, delivered, then refunded in two parts.
    delivered: Uuid,
    /// Ada's: held for review, released, its payment declined, cancelled.
    declined: Uuid,
    /// Bob's: cancelled before payment.
    cancelled: Uuid,
    /// The delivered order's payment.
    refunded_payment: Uuid,
    /// A payment for an order no projection saw placed.
    orphan_payment: Uuid,
    mug: Uuid,
    lamp: Uuid,
    tee: Uuid,
}

/// The account-side shop history (also the first part of `parity.rs`'s).
pub(crate) async fn shop() -> Shop {
    let scenario = Scenario::new().await;
    let store = &scenario.store;
    let t = Ticks::new();
    let (ada, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let (ada_home, ada_work) = (Uuid::new_v4(), Uuid::new_v4());

    // Users: registration, profile, preferences, an address book with defaults.
    run::<User>(
        store,
        &ada.to_string(),
        [
            UserCommand::RegisterUser {
                user_id: ada,
                email: Email::parse("ada@example.org").unwrap(),
                password_hash: PasswordHash::parse(HASH).unwrap(),
                first_name: PersonName::parse("Ada").unwrap(),
                last_name: Some(PersonName::parse("Lovelace").unwrap()),
                role: Role::Customer,
                preferences: Preferences::default(),
                at: t.tick(),
            },
            UserCommand::VerifyEmail {
                email: Email::parse("ada@example.org").unwrap(),
                at: t.tick(),
            },
            UserCommand::UpdateProfile {
                first_name: PersonName::parse("Augusta Ada").unwrap(),
                last_name: Some(PersonName::parse("King").unwrap()),
                phone: Some(PhoneNumber::parse("+44 20 7946 0000").unwrap()),
                at: t.tick(),
            },
            UserCommand::UpdatePreferences {
                newsletter: Some(true),
                language: Some(Language::parse("pt-BR").unwrap()),
                currency: Some(Currency::EUR),
                at: t.tick(),
            },
            UserCommand::AddAddress {
                address_id: ada_home,
                address: address("London", "GB"),
                at: t.tick(),
            },
            UserCommand::AddAddress {
                address_id: ada_work,
                address: address("Paris", "FR"),
                at: t.tick(),
            },
            UserCommand::SetDefaultShippingAddress {
                address_id: ada_home,
                at: t.tick(),
            },
            UserCommand::SetDefaultBillingAddress {
                address_id: ada_work,
                at: t.tick(),
            },
            UserCommand::UpdateAddress {
                address_id: ada_work,
                address: address("Lyon", "FR"),
                at: t.tick(),
            },
            UserCommand::ChangePassword {
                new_password_hash: PasswordHash::parse(HASH).unwrap(),
                at: t.tick(),
            },
            // The default shipping address goes: the default is cleared with it.
            UserCommand::RemoveAddress {
                address_id: ada_home,
                at: t.tick(),
            },
        ],
    )
    .await;
    run::<User>(
        store,
        &bob.to_string(),
        [
            UserCommand::RegisterUser {
                user_id: bob,
                email: Email::parse("bob@example.org").unwrap(),
                password_hash: PasswordHash::parse(HASH).unwrap(),
                first_name: PersonName::parse("Bob").unwrap(),
                last_name: None,
                role: Role::Customer,
                preferences: Preferences::default(),
                at: t.tick(),
            },
            UserCommand::ChangeRole {
                role: Role::Staff,
                at: t.tick(),
            },
            UserCommand::DeactivateUser { at: t.tick() },
        ],
    )
    .await;

    // Orders.
    let (mug, lamp, tee) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let place = |order_id: Uuid, customer_id: Uuid, at: DateTime<Utc>| OrderCommand::PlaceOrder {
        order_id,
        customer_id,
        lines: vec![
            OrderLine {
                sku: Sku::parse("MUG-1").unwrap(),
                product_id: mug,
                name: "Enamel mug".into(),
                unit_price: eur(1_250),
                quantity: Quantity::new(2).unwrap(),
                line_total: eur(2_500),
            },
            OrderLine {
                sku: Sku::parse("LAMP-1").unwrap(),
                product_id: lamp,
                name: "Desk lamp".into(),
                unit_price: eur(4_000),
                quantity: Quantity::new(1).unwrap(),
                line_total: eur(4_000),
            },
        ],
        tax_total: eur(1_300),
        shipping_total: eur(500),
        discount_total: eur(300),
        shipping_address: address("London", "GB"),
        billing_address: address("Lyon", "FR"),
        currency: Currency::EUR,
        at,
    };
    // 2 500 + 4 000 + 1 300 + 500 - 300
    let total = eur(8_000);
    let (delivered, declined, cancelled) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let (refunded_payment, declined_payment) = (Uuid::new_v4(), Uuid::new_v4());
    let (voided_payment, orphan_payment) = (Uuid::new_v4(), Uuid::new_v4());
    run::<Order>(
        store,
        &delivered.to_string(),
        [
            place(delivered, ada, t.tick()),
            OrderCommand::MarkStockReserved { at: t.tick() },
            OrderCommand::PassFraudCheck {
                risk_score: 12,
                reasons: Vec::new(),
                at: t.tick(),
            },
        ],
    )
    .await;
    let create = |payment_id: Uuid, order_id: Uuid, key: &str, at: DateTime<Utc>| {
        PaymentCommand::CreatePayment {
            payment_id,
            order_id,
            provider: "offline".into(),
            provider_intent_id: format!("pi_{key}"),
            amount: total,
            idempotency_key: key.to_owned(),
            at,
        }
    };
    let (first_refund, second_refund) = (Uuid::new_v4(), Uuid::new_v4());
    run::<Payment>(
        store,
        &refunded_payment.to_string(),
        [
            create(refunded_payment, delivered, "key-1", t.tick()),
            PaymentCommand::RequireAction {
                next_action: NextAction::RedirectToUrl {
                    url: "https://bank.example/3ds".into(),
                },
                at: t.tick(),
            },
            PaymentCommand::AuthorisePayment {
                amount: total,
                at: t.tick(),
            },
            PaymentCommand::CapturePayment {
                amount: total,
                at: t.tick(),
            },
        ],
    )
    .await;
    run::<Order>(
        store,
        &delivered.to_string(),
        [
            OrderCommand::MarkPaid {
                payment_id: refunded_payment,
                amount: total,
                at: t.tick(),
            },
            OrderCommand::ShipOrder {
                tracking_number: Some("TRACK-7".into()),
                at: t.tick(),
            },
            OrderCommand::MarkDelivered { at: t.tick() },
        ],
    )
    .await;
    // A partial refund, then the rest.
    run::<Payment>(
        store,
        &refunded_payment.to_string(),
        [
            PaymentCommand::RequestRefund {
                refund_id: first_refund,
                amount: eur(3_000),
                at: t.tick(),
            },
            PaymentCommand::RecordRefund {
                refund_id: first_refund,
                amount: eur(3_000),
                at: t.tick(),
            },
        ],
    )
    .await;
    run::<Order>(
        store,
        &delivered.to_string(),
        [OrderCommand::RefundOrder {
            refund_id: first_refund,
            amount: eur(3_000),
            at: t.tick(),
        }],
    )
    .await;
    run::<Payment>(
        store,
        &refunded_payment.to_string(),
        [PaymentCommand::RecordRefund {
            refund_id: second_refund,
            amount: eur(5_000),
            at: t.tick(),
        }],
    )
    .await;
    run::<Order>(
        store,
        &delivered.to_string(),
        [OrderCommand::RefundOrder {
            refund_id: second_refund,
            amount: eur(5_000),
            at: t.tick(),
        }],
    )
    .await;

    run::<Order>(
        store,
        &declined.to_string(),
        [
            place(declined, ada, t.tick()),
            OrderCommand::MarkStockReserved { at: t.tick() },
            OrderCommand::HoldForReview {
                risk_score: 80,
                reasons: Vec::new(),
                at: t.tick(),
            },
            OrderCommand::ApproveHeldOrder { at: t.tick() },
        ],
    )
    .await;
    run::<Payment>(
        store,
        &declined_payment.to_string(),
        [
            create(declined_payment, declined, "key-2", t.tick()),
            PaymentCommand::FailPayment {
                reason: DeclineCode::InsufficientFunds,
                at: t.tick(),
            },
        ],
    )
    .await;
    run::<Order>(
        store,
        &declined.to_string(),
        [
            OrderCommand::RecordPaymentFailure {
                payment_id: declined_payment,
                at: t.tick(),
            },
            OrderCommand::CancelOrder {
                reason: CancellationReason::PaymentFailed,
                at: t.tick(),
            },
        ],
    )
    .await;

    run::<Order>(
        store,
        &cancelled.to_string(),
        [
            place(cancelled, bob, t.tick()),
            OrderCommand::CancelOrder {
                reason: CancellationReason::CustomerRequest,
                at: t.tick(),
            },
        ],
    )
    .await;
    run::<Payment>(
        store,
        &voided_payment.to_string(),
        [
            create(voided_payment, cancelled, "key-3", t.tick()),
            PaymentCommand::VoidPayment { at: t.tick() },
        ],
    )
    .await;
    run::<Payment>(
        store,
        &orphan_payment.to_string(),
        [
            create(orphan_payment, Uuid::new_v4(), "key-4", t.tick()),
            // A payment failure for an order never placed: no one to tell.
            PaymentCommand::FailPayment {
                reason: DeclineCode::CardDeclined,
                at: t.tick(),
            },
        ],
    )
    .await;

    // Low stock is news for staff.
    let reserved_at = t.tick();
    run::<Inventory>(
        store,
        "LAMP-1",
        [
            InventoryCommand::TrackInventory {
                sku: Sku::parse("LAMP-1").unwrap(),
                low_stock_threshold: 3,
                at: t.tick(),
            },
            InventoryCommand::ReceiveStock {
                quantity: Quantity::new(10).unwrap(),
                at: t.tick(),
            },
            InventoryCommand::ReserveStock {
                reservation_id: Uuid::new_v4(),
                order_id: Uuid::new_v4(),
                quantity: Quantity::new(8).unwrap(),
                expires_at: reserved_at + chrono::Duration::minutes(15),
                at: reserved_at,
            },
        ],
    )
    .await;

    // Wishlists: adds, a removal, a clear and an add after it.
    run::<Wishlist>(
        store,
        &ada.to_string(),
        [
            WishlistCommand::AddToWishlist {
                product_id: mug,
                at: t.tick(),
            },
            WishlistCommand::AddToWishlist {
                product_id: lamp,
                at: t.tick(),
            },
            WishlistCommand::RemoveFromWishlist {
                product_id: mug,
                at: t.tick(),
            },
            WishlistCommand::AddToWishlist {
                product_id: tee,
                at: t.tick(),
            },
        ],
    )
    .await;
    run::<Wishlist>(
        store,
        &bob.to_string(),
        [
            WishlistCommand::AddToWishlist {
                product_id: mug,
                at: t.tick(),
            },
            WishlistCommand::AddToWishlist {
                product_id: lamp,
                at: t.tick(),
            },
            WishlistCommand::ClearWishlist { at: t.tick() },
            WishlistCommand::AddToWishlist {
                product_id: tee,
                at: t.tick(),
            },
        ],
    )
    .await;

    // Activity: a view retried with the same id, a search, a guest's add to cart, then
    // many beacons from a handful of guests.
    let viewed = Uuid::new_v4();
    let record =
        |activity_id, kind, product_id, query: Option<&str>, at| ActivityCommand::RecordActivity {
            activity_id,
            kind,
            product_id,
            query: query.map(str::to_owned),
            at,
        };
    run::<UserActivity>(
        store,
        &ada.to_string(),
        [
            record(viewed, ActivityKind::View, Some(lamp), None, t.tick()),
            record(viewed, ActivityKind::View, Some(lamp), None, t.tick()),
            record(
                Uuid::new_v4(),
                ActivityKind::Search,
                None,
                Some(" desk lamp "),
                t.tick(),
            ),
            record(
                Uuid::new_v4(),
                ActivityKind::Purchase,
                Some(lamp),
                None,
                t.tick(),
            ),
        ],
    )
    .await;
    run::<UserActivity>(
        store,
        "guest:7f3a9c",
        [record(
            Uuid::new_v4(),
            ActivityKind::AddToCart,
            Some(lamp),
            None,
            t.tick(),
        )],
    )
    .await;
    for guest in 0..(BEACONS / 20) {
        let products = [mug, lamp, tee];
        run::<UserActivity>(
            store,
            &format!("guest:{guest:06}"),
            (0..20).map(|n| {
                record(
                    Uuid::new_v4(),
                    if n % 5 == 0 {
                        ActivityKind::Click
                    } else {
                        ActivityKind::View
                    },
                    Some(products[n % 3]),
                    None,
                    t.tick(),
                )
            }),
        )
        .await;
    }

    // The inbox is written last: its commands name notifications by their source
    // events' ids, known once those events exist.
    let events = scenario.events().await;
    let event_id = |aggregate: Uuid, event_type: &str| {
        events
            .iter()
            .find(|e| e.aggregate_id == aggregate.to_string() && e.event_type == event_type)
            .unwrap_or_else(|| panic!("{event_type} of {aggregate}"))
            .event_id
    };
    let paid = event_id(delivered, "OrderPaid");
    let bobs = event_id(cancelled, "OrderPlaced");
    let newest_but_one = event_id(declined, "OrderPlaced");
    let up_to = events
        .iter()
        .find(|e| e.event_id == newest_but_one)
        .map(|e| {
            serde_json::from_value::<DateTime<Utc>>(e.payload["OrderPlaced"]["at"].clone())
                .expect("the order's time")
        })
        .expect("the order's event");
    run::<Inbox>(
        store,
        &ada.to_string(),
        [
            InboxCommand::MarkNotificationRead {
                notification_id: paid,
                at: t.tick(),
            },
            // Bob's: Ada's inbox cannot touch it.
            InboxCommand::MarkNotificationRead {
                notification_id: bobs,
                at: t.tick(),
            },
            InboxCommand::ClearReadNotifications { at: t.tick() },
            InboxCommand::MarkAllNotificationsRead {
                up_to,
                at: t.tick(),
            },
        ],
    )
    .await;

    Shop {
        scenario,
        ada,
        bob,
        ada_home,
        ada_work,
        delivered,
        declined,
        cancelled,
        refunded_payment,
        orphan_payment,
        mug,
        lamp,
        tee,
    }
}

/// Builds `projection` on both backends and reads `sql` from each.
async fn both<T>(shop: &Shop, projection: Arc<dyn Projection>, sql: &str) -> (Vec<T>, Vec<T>)
where
    T: emporium_projections::sql::Rows,
{
    let (pg, pg_db, lite): (TestDatabase, Db, Db) = build_both(&shop.scenario, projection).await;
    let on_pg = pg_db
        .fetch_all(sql, args![])
        .await
        .expect("read PostgreSQL");
    let on_lite = lite.fetch_all(sql, args![]).await.expect("read SQLite");
    pg.drop_database().await.expect("drop the database");
    (on_pg, on_lite)
}

#[derive(Debug, PartialEq, sqlx::FromRow)]
struct CustomerRow {
    user_id: Uuid,
    email: String,
    email_verified: bool,
    first_name: String,
    last_name: Option<String>,
    phone: Option<String>,
    role: String,
    active: bool,
    preferences: Json<serde_json::Value>,
    addresses: Json<serde_json::Value>,
    default_shipping_address_id: Option<Uuid>,
    default_billing_address_id: Option<Uuid>,
    registered_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[tokio::test]
async fn customers_are_the_same_on_postgres_and_sqlite() {
    let shop = shop().await;
    let (on_pg, on_lite): (Vec<CustomerRow>, _) = both(
        &shop,
        Arc::new(CustomersProjection),
        "SELECT user_id, email, email_verified, first_name, last_name, phone, role, active,
                preferences, addresses, default_shipping_address_id,
                default_billing_address_id, registered_at, updated_at
           FROM customers ORDER BY registered_at, user_id",
    )
    .await;
    assert_eq!(on_pg.len(), 2);
    let ada = &on_pg[0];
    assert_eq!(ada.user_id, shop.ada);
    assert!(ada.email_verified);
    assert_eq!(ada.first_name, "Augusta Ada");
    assert_eq!(ada.phone.as_deref(), Some("+442079460000"), "normalised");
    assert_eq!(ada.preferences.0["language"], "pt-BR");
    assert_eq!(ada.preferences.0["newsletter"], true);
    assert_eq!(ada.addresses.0.as_array().map(Vec::len), Some(1));
    assert_eq!(ada.addresses.0[0]["address_id"], json!(shop.ada_work));
    assert_eq!(ada.addresses.0[0]["address"]["city"], "Lyon");
    assert_eq!(ada.default_shipping_address_id, None, "removed with home");
    assert_eq!(ada.default_billing_address_id, Some(shop.ada_work));
    assert_ne!(ada.default_billing_address_id, Some(shop.ada_home));
    let bob = &on_pg[1];
    assert_eq!(
        (bob.role.as_str(), bob.active, bob.last_name.as_deref()),
        ("staff", false, None)
    );
    assert_eq!(on_pg, on_lite, "the same customers on both backends");
}

/// A step of an order's history: its `at` is PostgreSQL's JSON rendering of a
/// `timestamptz` on one backend and RFC 3339 text on the other, the same instant.
#[derive(Debug, PartialEq, Deserialize)]
struct StatusChange {
    status: String,
    at: DateTime<Utc>,
}

#[derive(Debug, PartialEq, sqlx::FromRow)]
struct OrderRow {
    order_id: Uuid,
    customer_id: Uuid,
    status: String,
    currency: String,
    lines: Json<serde_json::Value>,
    item_count: i64,
    subtotal_minor: i64,
    tax_minor: i64,
    shipping_minor: i64,
    discount_minor: i64,
    grand_total_minor: i64,
    refunded_minor: i64,
    shipping_address: Json<serde_json::Value>,
    billing_address: Json<serde_json::Value>,
    shipping_country: String,
    risk_score: Option<i32>,
    payment_id: Option<Uuid>,
    tracking_number: Option<String>,
    cancellation_reason: Option<String>,
    history: Json<Vec<StatusChange>>,
    placed_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    paid_at: Option<DateTime<Utc>>,
    shipped_at: Option<DateTime<Utc>>,
    delivered_at: Option<DateTime<Utc>>,
    cancelled_at: Option<DateTime<Utc>>,
}

#[tokio::test]
async fn orders_are_the_same_on_postgres_and_sqlite() {
    let shop = shop().await;
    let (on_pg, on_lite): (Vec<OrderRow>, _) = both(
        &shop,
        Arc::new(OrdersProjection),
        "SELECT order_id, customer_id, status, currency, lines, item_count, subtotal_minor,
                tax_minor, shipping_minor, discount_minor, grand_total_minor, refunded_minor,
                shipping_address, billing_address, shipping_country, risk_score, payment_id,
                tracking_number, cancellation_reason, history, placed_at, updated_at,
                paid_at, shipped_at, delivered_at, cancelled_at
           FROM orders ORDER BY placed_at, order_id",
    )
    .await;
    let ids: Vec<Uuid> = on_pg.iter().map(|o| o.order_id).collect();
    assert_eq!(ids, [shop.delivered, shop.declined, shop.cancelled]);
    let statuses =
        |o: &OrderRow| -> Vec<String> { o.history.0.iter().map(|h| h.status.clone()).collect() };
    let delivered = &on_pg[0];
    assert_eq!(
        (
            delivered.status.as_str(),
            delivered.grand_total_minor,
            delivered.refunded_minor,
            delivered.item_count,
            delivered.risk_score,
            delivered.payment_id,
            delivered.tracking_number.as_deref(),
            delivered.shipping_country.as_str(),
        ),
        (
            "refunded",
            8_000,
            8_000,
            3,
            Some(12),
            Some(shop.refunded_payment),
            Some("TRACK-7"),
            "GB"
        )
    );
    assert_eq!(
        statuses(delivered),
        [
            "pending",
            "reserved",
            "awaiting_payment",
            "paid",
            "shipped",
            "delivered",
            "refunded"
        ],
        "the partial refund adds no step"
    );
    assert_eq!(delivered.history.0[0].at, delivered.placed_at);
    assert_eq!(delivered.lines.0[1]["name"], "Desk lamp");
    let declined = &on_pg[1];
    assert_eq!(
        (
            declined.status.as_str(),
            declined.risk_score,
            declined.cancellation_reason.as_deref(),
            declined.cancelled_at.is_some(),
        ),
        ("cancelled", Some(80), Some("payment_failed"), true)
    );
    assert_eq!(
        statuses(declined),
        [
            "pending",
            "reserved",
            "held_for_review",
            "awaiting_payment",
            "payment_failed",
            "cancelled"
        ]
    );
    assert_eq!(on_pg[2].customer_id, shop.bob);
    assert_eq!(on_pg, on_lite, "the same orders on both backends");
}

#[derive(Debug, PartialEq, sqlx::FromRow)]
struct PaymentRow {
    payment_id: Uuid,
    order_id: Uuid,
    customer_id: Option<Uuid>,
    provider: String,
    provider_intent_id: String,
    status: String,
    currency: String,
    amount_minor: i64,
    authorised_minor: i64,
    captured_minor: i64,
    refunded_minor: i64,
    failure_reason: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Debug, PartialEq, sqlx::FromRow)]
struct PaymentOrderRow {
    order_id: Uuid,
    customer_id: Uuid,
}

#[tokio::test]
async fn payments_are_the_same_on_postgres_and_sqlite() {
    let shop = shop().await;
    let (pg, pg_db, lite) = build_both(&shop.scenario, Arc::new(PaymentsProjection)).await;
    let mut read = Vec::new();
    for db in [&pg_db, &lite] {
        let payments: Vec<PaymentRow> = db
            .fetch_all(
                "SELECT payment_id, order_id, customer_id, provider, provider_intent_id, status,
                        currency, amount_minor, authorised_minor, captured_minor,
                        refunded_minor, failure_reason, created_at, updated_at
                   FROM payments ORDER BY created_at, payment_id",
                args![],
            )
            .await
            .expect("read payments");
        let owners: Vec<PaymentOrderRow> = db
            .fetch_all(
                "SELECT order_id, customer_id FROM payment_orders ORDER BY order_id",
                args![],
            )
            .await
            .expect("read payment_orders");
        // "My payments": the partial index's query.
        let mine: Vec<Uuid> = db
            .scalar_all(
                "SELECT payment_id FROM payments WHERE customer_id = $1
                 ORDER BY created_at DESC LIMIT 20",
                args![shop.ada],
            )
            .await
            .expect("read my payments");
        read.push((payments, owners, mine));
    }
    pg.drop_database().await.expect("drop the database");
    let (payments, owners, mine) = &read[0];
    assert_eq!(payments.len(), 4);
    assert_eq!(owners.len(), 3, "one owner per order placed");
    let refunded = &payments[0];
    assert_eq!(refunded.payment_id, shop.refunded_payment);
    assert_eq!(
        (
            refunded.status.as_str(),
            refunded.customer_id,
            refunded.authorised_minor,
            refunded.captured_minor,
            refunded.refunded_minor,
        ),
        ("refunded", Some(shop.ada), 8_000, 8_000, 8_000)
    );
    assert_eq!(
        (
            payments[1].status.as_str(),
            payments[1].failure_reason.as_deref()
        ),
        ("failed", Some("insufficient_funds"))
    );
    assert_eq!(
        (payments[2].status.as_str(), payments[2].customer_id),
        ("voided", Some(shop.bob))
    );
    assert_eq!(payments[3].payment_id, shop.orphan_payment);
    assert_eq!(payments[3].customer_id, None, "no order, no owner");
    assert_eq!(mine.len(), 2);
    assert_eq!(mine[1], shop.refunded_payment);
    assert_eq!(read[0], read[1], "the same payments on both backends");
}

/// Orders, payments and notifications fold what a batch holds (an order placed with
/// its next steps, a payment created with its next events, an owner with its notice)
/// into fewer statements: the rows are exactly those that applying event by event,
/// each in its own transaction, leaves.
#[tokio::test]
async fn folded_batches_leave_the_rows_one_event_at_a_time_leaves() {
    let shop = shop().await;
    let events = shop.scenario.events().await;
    let (folded, each) = (
        TestDatabase::create(2).await.expect("a fresh database"),
        TestDatabase::create(2).await.expect("a fresh database"),
    );
    let (folded_db, each_db) = (
        Db::from(folded.pool().clone()),
        Db::from(each.pool().clone()),
    );
    for projection in [
        Arc::new(OrdersProjection) as Arc<dyn Projection>,
        Arc::new(PaymentsProjection),
        Arc::new(NotificationsProjection),
    ] {
        crate::both_backends::build(&folded_db, &*projection, &events).await;
        crate::both_backends::build_each(&each_db, &*projection, &events).await;
    }
    let orders = "SELECT order_id, customer_id, status, currency, lines, item_count,
                subtotal_minor, tax_minor, shipping_minor, discount_minor, grand_total_minor,
                refunded_minor, shipping_address, billing_address, shipping_country, risk_score,
                payment_id, tracking_number, cancellation_reason, history, placed_at,
                updated_at, paid_at, shipped_at, delivered_at, cancelled_at
           FROM orders ORDER BY placed_at, order_id";
    let payments = "SELECT payment_id, order_id, customer_id, provider, provider_intent_id,
                status, currency, amount_minor, authorised_minor, captured_minor,
                refunded_minor, failure_reason, created_at, updated_at
           FROM payments ORDER BY created_at, payment_id";
    let notifications = "SELECT notification_id, user_id, audience, kind, title, body,
                order_id, created_at, read_at, cleared
           FROM notifications ORDER BY created_at, notification_id";
    let (a, b): (Vec<OrderRow>, Vec<OrderRow>) = (
        folded_db.fetch_all(orders, args![]).await.expect("orders"),
        each_db.fetch_all(orders, args![]).await.expect("orders"),
    );
    assert_eq!(a.len(), 3);
    assert_eq!(a, b, "orders");
    // Byte for byte, not only the same instants.
    let history = "SELECT history::text FROM orders ORDER BY placed_at, order_id";
    let (a, b): (Vec<String>, Vec<String>) = (
        folded_db
            .scalar_all(history, args![])
            .await
            .expect("history"),
        each_db.scalar_all(history, args![]).await.expect("history"),
    );
    assert_eq!(a, b, "order histories");
    let (a, b): (Vec<PaymentRow>, Vec<PaymentRow>) = (
        folded_db
            .fetch_all(payments, args![])
            .await
            .expect("payments"),
        each_db
            .fetch_all(payments, args![])
            .await
            .expect("payments"),
    );
    assert_eq!(a.len(), 4);
    assert_eq!(a, b, "payments");
    let (a, b): (Vec<NotificationRow>, Vec<NotificationRow>) = (
        folded_db
            .fetch_all(notifications, args![])
            .await
            .expect("notifications"),
        each_db
            .fetch_all(notifications, args![])
            .await
            .expect("notifications"),
    );
    assert!(!a.is_empty());
    assert_eq!(a, b, "notifications");
    folded.drop_database().await.expect("drop the database");
    each.drop_database().await.expect("drop the database");
}

#[derive(Debug, PartialEq, sqlx::FromRow)]
struct NotificationRow {
    notification_id: Uuid,
    user_id: Option<Uuid>,
    audience: String,
    kind: String,
    title: String,
    body: String,
    order_id: Option<Uuid>,
    created_at: DateTime<Utc>,
    read_at: Option<DateTime<Utc>>,
    cleared: bool,
}

#[tokio::test]
async fn notifications_are_the_same_on_postgres_and_sqlite() {
    let shop = shop().await;
    let (pg, pg_db, lite) = build_both(&shop.scenario, Arc::new(NotificationsProjection)).await;
    let mut read = Vec::new();
    for db in [&pg_db, &lite] {
        let all: Vec<NotificationRow> = db
            .fetch_all(
                "SELECT notification_id, user_id, audience, kind, title, body, order_id,
                        created_at, read_at, cleared
                   FROM notifications ORDER BY created_at, notification_id",
                args![],
            )
            .await
            .expect("read notifications");
        // My unread count, and my latest (cleared ones hidden): the partial indexes'
        // queries.
        let unread: Vec<i64> = db
            .scalar_all(
                "SELECT count(*) FROM notifications
                  WHERE user_id = $1 AND read_at IS NULL AND NOT cleared",
                args![shop.ada],
            )
            .await
            .expect("count unread");
        let latest: Vec<String> = db
            .scalar_all(
                "SELECT kind FROM notifications WHERE user_id = $1 AND NOT cleared
                  ORDER BY created_at DESC LIMIT 20",
                args![shop.ada],
            )
            .await
            .expect("read latest");
        let owners: Vec<PaymentOrderRow> = db
            .fetch_all(
                "SELECT order_id, customer_id FROM notification_orders ORDER BY order_id",
                args![],
            )
            .await
            .expect("read notification_orders");
        read.push((all, unread, latest, owners));
    }
    pg.drop_database().await.expect("drop the database");
    let (all, unread, latest, owners) = &read[0];
    let ada: Vec<(&str, bool, bool)> = all
        .iter()
        .filter(|n| n.user_id == Some(shop.ada))
        .map(|n| (n.kind.as_str(), n.read_at.is_some(), n.cleared))
        .collect();
    assert_eq!(
        ada,
        [
            ("order_placed", true, false),
            ("order_paid", true, true),
            ("order_shipped", true, false),
            ("order_delivered", true, false),
            ("order_refunded", true, false),
            ("order_refunded", true, false),
            ("order_placed", true, false),
            ("payment_failed", false, false),
            ("order_cancelled", false, false),
        ],
        "read one, cleared it, then all up to the second order's placing"
    );
    assert_eq!(unread, &[2]);
    assert_eq!(latest.len(), 8);
    assert_eq!(latest[0], "order_cancelled");
    let bob: Vec<(&str, bool)> = all
        .iter()
        .filter(|n| n.user_id == Some(shop.bob))
        .map(|n| (n.kind.as_str(), n.read_at.is_some()))
        .collect();
    assert_eq!(
        bob,
        [("order_placed", false), ("order_cancelled", false)],
        "Ada's inbox cannot read Bob's"
    );
    let staff: Vec<(&str, &str)> = all
        .iter()
        .filter(|n| n.audience == "staff")
        .map(|n| (n.kind.as_str(), n.title.as_str()))
        .collect();
    assert_eq!(staff, [("low_stock", "Low stock: LAMP-1")]);
    let shipped = all
        .iter()
        .find(|n| n.kind == "order_shipped")
        .expect("shipped");
    assert!(shipped.body.contains("TRACK-7"), "{}", shipped.body);
    assert_eq!(shipped.order_id, Some(shop.delivered));
    assert_eq!(owners.len(), 3);
    assert_eq!(read[0], read[1], "the same notifications on both backends");
}

#[derive(Debug, PartialEq, sqlx::FromRow)]
struct WishlistRow {
    user_id: Uuid,
    product_id: Uuid,
    added_at: DateTime<Utc>,
}

#[tokio::test]
async fn wishlists_are_the_same_on_postgres_and_sqlite() {
    let shop = shop().await;
    let (on_pg, on_lite): (Vec<WishlistRow>, _) = both(
        &shop,
        Arc::new(WishlistsProjection),
        "SELECT user_id, product_id, added_at FROM wishlist_items ORDER BY added_at, user_id",
    )
    .await;
    let rows: Vec<(Uuid, Uuid)> = on_pg.iter().map(|r| (r.user_id, r.product_id)).collect();
    assert_eq!(
        rows,
        [
            (shop.ada, shop.lamp),
            (shop.ada, shop.tee),
            (shop.bob, shop.tee)
        ],
        "the mug removed and Bob's list cleared before the tee"
    );
    assert!(!rows.contains(&(shop.ada, shop.mug)));
    assert_eq!(on_pg, on_lite, "the same wishlists on both backends");
}

#[derive(Debug, PartialEq, sqlx::FromRow)]
struct ActivityRow {
    activity_id: Uuid,
    subject: String,
    kind: String,
    product_id: Option<Uuid>,
    query: Option<String>,
    at: DateTime<Utc>,
}

#[tokio::test]
async fn user_activity_is_the_same_on_postgres_and_sqlite() {
    let shop = shop().await;
    let (on_pg, on_lite): (Vec<ActivityRow>, _) = both(
        &shop,
        Arc::new(ActivityProjection),
        "SELECT activity_id, subject, kind, product_id, query, at
           FROM user_activity ORDER BY at, activity_id",
    )
    .await;
    assert_eq!(on_pg.len(), 4 + BEACONS, "the retried view recorded once");
    let trail: Vec<(&str, Option<Uuid>, Option<&str>)> = on_pg
        .iter()
        .filter(|a| a.subject == shop.ada.to_string())
        .map(|a| (a.kind.as_str(), a.product_id, a.query.as_deref()))
        .collect();
    assert_eq!(
        trail,
        [
            ("view", Some(shop.lamp), None),
            ("search", None, Some("desk lamp")),
            ("purchase", Some(shop.lamp), None),
        ]
    );
    assert_eq!(on_pg[3].subject, "guest:7f3a9c");
    assert_eq!(on_pg[3].kind, "add_to_cart");
    assert_eq!(
        on_pg.iter().filter(|a| a.kind == "click").count(),
        BEACONS / 5
    );
    assert_eq!(on_pg, on_lite, "the same activity on both backends");
}
