//! The checkout process manager over [`AnyStore`]: the same checkouts on a fresh
//! PostgreSQL database and on a fresh SQLite store file, with its `checkouts` table,
//! the durable offline provider's tables and the events in that one database.
//! Products, stock, customers, carts and coupons are seeded through the dispatchers.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use emporium_commands::catalog::Products;
use emporium_commands::checkout::{
    Catalog, CatalogItem, CheckoutConfig, CheckoutError, CheckoutFailure, CheckoutRequest,
    CheckoutView, Checkouts, ids,
};
use emporium_commands::payments::events::StripeEvent;
use emporium_commands::payments::sync::{Outcome, WebhookProcessor};
use emporium_commands::payments::{
    CardNumber, IntentId, OfflineProvider, PaymentMethod, Simulation,
};
use emporium_commands::store::{EventStore as _, LoggedEvent};
use emporium_commands::users::Users;
use emporium_commands::{AnyStore, Dispatcher, Loading};
use emporium_domain::cart::{Cart, CartCommand, CartOwner};
use emporium_domain::catalog::{
    AltText, Attributes, Description, ImageSource, ProductCommand, ProductName, Slug,
};
use emporium_domain::coupon::{Coupon, CouponCode, CouponCommand};
use emporium_domain::fraud::FraudRules;
use emporium_domain::inventory::{Inventory, InventoryCommand};
use emporium_domain::order::{Order, OrderCommand, OrderStatus};
use emporium_domain::payment::{Payment, PaymentStatus};
use emporium_domain::pricing::{Discount, Pricing, ShippingMethodCode};
use emporium_domain::user::{Email, PasswordHash, PersonName, Preferences, Role, UserCommand};
use emporium_domain::{Address, AddressInput, Currency, Money, Quantity, Sku};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{Fixture, for_any_store, meta};

for_any_store!(
    multi_thread;
    a_card_checkout_is_paid_and_holds_its_stock_until_shipment_commits_it,
    a_declined_card_fails_the_payment_and_releases_the_stock,
    the_last_units_go_to_exactly_that_many_concurrent_checkouts,
    the_same_checkout_submitted_twice_at_once_is_one_order_and_one_intent,
    a_coupon_with_one_use_is_used_once_under_concurrency,
    a_3d_secure_completed_out_of_band_is_paid_once_through_its_webhook,
);

const OK_CARD: &str = "4242424242424242";
const DECLINED_CARD: &str = "4000000000000002";
const THREE_D_SECURE_CARD: &str = "4000002760003184";
const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";

/// The catalogue port over the products this test created.
#[derive(Debug, Default)]
struct Seeded(std::sync::Mutex<HashMap<Sku, CatalogItem>>);

#[async_trait]
impl Catalog for Seeded {
    async fn items(&self, skus: &[Sku]) -> anyhow::Result<HashMap<Sku, CatalogItem>> {
        let all = self.0.lock().unwrap();
        Ok(skus
            .iter()
            .filter_map(|s| all.get(s).map(|i| (s.clone(), i.clone())))
            .collect())
    }
}

/// A shop over one store: its process manager, provider and dispatchers.
struct Shop {
    store: AnyStore,
    checkouts: Arc<Checkouts>,
    provider: Arc<OfflineProvider>,
    catalog: Arc<Seeded>,
    carts: Dispatcher<Cart, AnyStore>,
    inventory: Dispatcher<Inventory, AnyStore>,
}

fn pricing() -> Pricing {
    serde_json::from_value(json!({
        "currency": "EUR",
        "tax": { "mode": "tax_inclusive", "rules": [{ "country": "DE", "rate_bp": 1900 }] },
        "methods": [{
            "code": "standard",
            "name": "Standard",
            "rates": [{
                "zone": { "name": "EU", "countries": ["DE"] },
                "rate": { "flat": { "amount_minor": 499, "currency": "EUR" } },
            }],
        }],
    }))
    .expect("pricing")
}

fn address() -> Address {
    Address::parse(AddressInput {
        full_name: "Ada Lovelace".into(),
        line1: "Unter den Linden 1".into(),
        city: "Berlin".into(),
        postal_code: "10117".into(),
        country: "DE".into(),
        ..AddressInput::default()
    })
    .unwrap()
}

impl Shop {
    fn new(store: &AnyStore) -> Self {
        let provider = Arc::new(OfflineProvider::durable(store.db()));
        let catalog = Arc::new(Seeded::default());
        let config = CheckoutConfig {
            pricing: pricing(),
            reservation_ttl: chrono::Duration::minutes(15),
            resume_after: chrono::Duration::seconds(10),
            recheck_after: chrono::Duration::seconds(60),
            crash_after: None,
        };
        let checkouts = Checkouts::new(
            store.clone(),
            Arc::clone(&provider) as _,
            Arc::clone(&catalog) as _,
            Arc::new(FraudRules::with_defaults(Money::new(
                100_000_000,
                Currency::EUR,
            ))),
            config,
        );
        Self {
            store: store.clone(),
            checkouts: Arc::new(checkouts),
            provider,
            catalog,
            carts: Dispatcher::over(store.clone(), Loading::Replay),
            inventory: Dispatcher::over(store.clone(), Loading::Snapshot(100)),
        }
    }

    /// A published product `sku` at `price` cents with `units` in stock.
    async fn product(&self, sku: &str, price: i64, units: i64) {
        let products = Products::over(self.store.clone());
        let product_id = Uuid::new_v4();
        let sku = Sku::parse(sku).unwrap();
        for command in [
            ProductCommand::CreateProduct {
                product_id,
                sku: sku.clone(),
                slug: Slug::parse(&sku.as_str().to_lowercase()).unwrap(),
                name: ProductName::parse(&format!("Product {}", sku.as_str())).unwrap(),
                description: Description::parse("A thing").unwrap(),
                category_id: Uuid::new_v4(),
                tags: std::collections::BTreeSet::new(),
                attributes: Attributes::default(),
                price: Money::new(price, Currency::EUR),
                at: Utc::now(),
            },
            ProductCommand::AddImage {
                image_id: Uuid::new_v4(),
                source: ImageSource::key(&format!("products/{}/front.jpg", sku.as_str())).unwrap(),
                alt_text: AltText::parse("Front").unwrap(),
                primary: true,
                at: Utc::now(),
            },
            ProductCommand::PublishProduct { at: Utc::now() },
        ] {
            products
                .execute(product_id, command, &meta())
                .await
                .expect("product");
        }
        self.catalog.0.lock().unwrap().insert(
            sku.clone(),
            CatalogItem {
                product_id,
                name: format!("Product {}", sku.as_str()),
                unit_price: Money::new(price, Currency::EUR),
                weight_grams: 0,
            },
        );
        self.inventory
            .execute(
                sku.as_str(),
                InventoryCommand::TrackInventory {
                    sku: sku.clone(),
                    low_stock_threshold: 0,
                    at: Utc::now(),
                },
                &meta(),
            )
            .await
            .expect("track");
        self.inventory
            .execute(
                sku.as_str(),
                InventoryCommand::ReceiveStock {
                    quantity: Quantity::new(units).unwrap(),
                    at: Utc::now(),
                },
                &meta(),
            )
            .await
            .expect("stock");
    }

    /// A registered customer with an open cart holding `quantity` of `sku`:
    /// (customer, cart).
    async fn customer_with(&self, sku: &str, quantity: i64) -> (Uuid, Uuid) {
        let customer_id = Uuid::new_v4();
        Users::over(self.store.clone())
            .register(
                UserCommand::RegisterUser {
                    user_id: customer_id,
                    email: Email::parse(&format!("{customer_id}@example.com")).unwrap(),
                    password_hash: PasswordHash::parse(HASH).unwrap(),
                    first_name: PersonName::parse("Ada").unwrap(),
                    last_name: None,
                    role: Role::Customer,
                    preferences: Preferences::default(),
                    at: Utc::now(),
                },
                &meta(),
            )
            .await
            .expect("customer");
        let cart_id = Uuid::new_v4();
        let product_id = self.catalog.0.lock().unwrap()[&Sku::parse(sku).unwrap()].product_id;
        for command in [
            CartCommand::OpenCart {
                cart_id,
                owner: CartOwner::User {
                    user_id: customer_id,
                },
                currency: Currency::EUR,
                at: Utc::now(),
            },
            CartCommand::AddItem {
                sku: Sku::parse(sku).unwrap(),
                product_id,
                quantity: Quantity::new(quantity).unwrap(),
                at: Utc::now(),
            },
        ] {
            self.carts
                .execute(&cart_id.to_string(), command, &meta())
                .await
                .expect("cart");
        }
        (customer_id, cart_id)
    }

    fn request(
        customer_id: Uuid,
        cart_id: Uuid,
        card: &str,
        coupon: Option<&str>,
    ) -> CheckoutRequest {
        CheckoutRequest {
            order_id: ids::order_for_cart(cart_id),
            cart_id,
            customer_id,
            email: Some(format!("{customer_id}@example.com")),
            client_ip: None,
            shipping_address: address(),
            billing_address: address(),
            shipping_method: ShippingMethodCode::parse("standard").unwrap(),
            coupon: coupon.map(|c| CouponCode::parse(c).unwrap()),
            payment_method: PaymentMethod::Card(CardNumber::parse(card).unwrap()),
        }
    }

    async fn checkout(
        &self,
        customer_id: Uuid,
        cart_id: Uuid,
        card: &str,
        coupon: Option<&str>,
    ) -> Result<CheckoutView, CheckoutError> {
        self.checkouts
            .start(
                Self::request(customer_id, cart_id, card, coupon),
                Utc::now(),
            )
            .await
    }

    async fn order(&self, order_id: Uuid) -> Order {
        Dispatcher::<Order, AnyStore>::over(self.store.clone(), Loading::Replay)
            .load(&order_id.to_string())
            .await
            .unwrap()
    }

    async fn payment(&self, order_id: Uuid) -> Payment {
        Dispatcher::<Payment, AnyStore>::over(self.store.clone(), Loading::Replay)
            .load(&ids::payment(order_id).to_string())
            .await
            .unwrap()
    }

    async fn stock(&self, sku: &str) -> Inventory {
        Dispatcher::<Inventory, AnyStore>::over(self.store.clone(), Loading::Snapshot(100))
            .load(sku)
            .await
            .unwrap()
    }

    /// The events of `event_type`, in commit order.
    async fn events(&self, event_type: &str) -> Vec<LoggedEvent> {
        let mut found = Vec::new();
        let mut after = 0;
        loop {
            let page = self.store.read_log(after, 1_000).await.unwrap();
            let Some(last) = page.last() else {
                return found;
            };
            after = last.position.unwrap();
            found.extend(page.into_iter().filter(|e| e.event_type == event_type));
        }
    }

    async fn count_events(&self, event_type: &str) -> usize {
        self.events(event_type).await.len()
    }
}

fn is_out_of_stock(outcome: &Result<CheckoutView, CheckoutError>) -> bool {
    match outcome {
        Ok(view) => matches!(view.failure, Some(CheckoutFailure::OutOfStock { .. })),
        Err(CheckoutError::Refused(CheckoutFailure::OutOfStock { .. })) => true,
        Err(_) => false,
    }
}

async fn a_card_checkout_is_paid_and_holds_its_stock_until_shipment_commits_it(
    f: &Fixture<AnyStore>,
) {
    let shop = Shop::new(&f.store);
    shop.product("MUG", 1_250, 10).await;
    let (customer, cart) = shop.customer_with("MUG", 3).await;

    let view = shop.checkout(customer, cart, OK_CARD, None).await.unwrap();

    assert_eq!(view.status, Some(OrderStatus::Paid), "{view:?}");
    assert_eq!(view.payment_status, Some(PaymentStatus::Captured));
    // 3 x 12.50 + 4.99 shipping, VAT included.
    assert_eq!(view.grand_total, Some(Money::new(4_249, Currency::EUR)));
    let order_id = ids::order_for_cart(cart);
    assert_eq!(shop.order(order_id).await.status(), Some(OrderStatus::Paid));
    let intent = shop.payment(order_id).await;
    assert_eq!(intent.status(), Some(PaymentStatus::Captured));
    assert_eq!(shop.provider.intent_count().await.unwrap(), 1);
    let stock = shop.stock("MUG").await;
    assert_eq!(
        (stock.on_hand(), stock.reserved(), stock.available()),
        (10, 3, 7)
    );
    // The happy path's first unit: the cart checked out, the order placed and the
    // stock reserved were committed together (one record time).
    let mut unit: Vec<LoggedEvent> = Vec::new();
    for event_type in [
        "CartCheckedOut",
        "OrderPlaced",
        "StockReserved",
        "OrderStockReserved",
    ] {
        let mut events = shop.events(event_type).await;
        assert_eq!(events.len(), 1, "{event_type}");
        unit.push(events.remove(0));
    }
    assert!(
        unit.iter().all(|e| e.recorded_at == unit[0].recorded_at),
        "{unit:#?}"
    );
    // The checkout's row reads back (its failure, its owner) from the store's file.
    assert_eq!(
        shop.checkouts.owner(order_id).await.unwrap(),
        Some(customer)
    );
    assert!(shop.checkouts.created_at(cart).await.unwrap().is_some());

    // Shipping commits the reservation at the next sweep: the stock leaves.
    Dispatcher::<Order, AnyStore>::over(f.store.clone(), Loading::Replay)
        .execute(
            &order_id.to_string(),
            OrderCommand::ShipOrder {
                tracking_number: Some("T1".into()),
                at: Utc::now(),
            },
            &meta(),
        )
        .await
        .unwrap();
    shop.checkouts.sweep(Utc::now()).await.unwrap();
    let stock = shop.stock("MUG").await;
    assert_eq!(
        (stock.on_hand(), stock.reserved(), stock.available()),
        (7, 0, 7)
    );
    // Committed once: a second sweep finds nothing left to commit.
    shop.checkouts.sweep(Utc::now()).await.unwrap();
    assert_eq!(shop.count_events("ReservationCommitted").await, 1);
}

async fn a_declined_card_fails_the_payment_and_releases_the_stock(f: &Fixture<AnyStore>) {
    let shop = Shop::new(&f.store);
    shop.product("DECLINE", 2_000, 5).await;
    let (customer, cart) = shop.customer_with("DECLINE", 2).await;

    let view = shop
        .checkout(customer, cart, DECLINED_CARD, None)
        .await
        .unwrap();

    assert_eq!(view.status, Some(OrderStatus::PaymentFailed), "{view:?}");
    assert_eq!(view.payment_status, Some(PaymentStatus::Failed));
    assert_eq!(
        view.decline,
        Some(emporium_domain::payment::DeclineCode::CardDeclined)
    );
    let order_id = ids::order_for_cart(cart);
    assert_eq!(
        shop.order(order_id).await.status(),
        Some(OrderStatus::PaymentFailed)
    );
    let stock = shop.stock("DECLINE").await;
    assert_eq!(
        (stock.on_hand(), stock.reserved(), stock.available()),
        (5, 0, 5)
    );
    assert_eq!(shop.count_events("PaymentCaptured").await, 0);
}

async fn the_last_units_go_to_exactly_that_many_concurrent_checkouts(f: &Fixture<AnyStore>) {
    let shop = Arc::new(Shop::new(&f.store));
    shop.product("LAST-3", 1_000, 3).await;
    let mut customers = Vec::new();
    for _ in 0..12 {
        customers.push(shop.customer_with("LAST-3", 1).await);
    }

    let outcomes = futures::future::join_all(customers.iter().map(|&(customer, cart)| {
        let shop = Arc::clone(&shop);
        tokio::spawn(async move { shop.checkout(customer, cart, OK_CARD, None).await })
    }))
    .await;
    let outcomes: Vec<_> = outcomes.into_iter().map(Result::unwrap).collect();

    let paid = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(v) if v.status == Some(OrderStatus::Paid)))
        .count();
    let out_of_stock = outcomes.iter().filter(|o| is_out_of_stock(o)).count();
    assert_eq!((paid, out_of_stock), (3, 9), "{outcomes:?}");
    assert_eq!(shop.count_events("OrderPaid").await, 3);
    assert_eq!(shop.count_events("PaymentCaptured").await, 3);
    let stock = shop.stock("LAST-3").await;
    assert_eq!(
        (stock.on_hand(), stock.reserved(), stock.available()),
        (3, 3, 0)
    );
}

async fn the_same_checkout_submitted_twice_at_once_is_one_order_and_one_intent(
    f: &Fixture<AnyStore>,
) {
    let shop = Arc::new(Shop::new(&f.store));
    shop.product("TWICE", 1_500, 10).await;
    let (customer, cart) = shop.customer_with("TWICE", 2).await;

    let (a, b) = tokio::join!(
        {
            let shop = Arc::clone(&shop);
            tokio::spawn(async move { shop.checkout(customer, cart, OK_CARD, None).await })
        },
        {
            let shop = Arc::clone(&shop);
            tokio::spawn(async move { shop.checkout(customer, cart, OK_CARD, None).await })
        },
    );
    let (a, b) = (a.unwrap().unwrap(), b.unwrap().unwrap());

    assert_eq!(a.order_id, b.order_id);
    assert_eq!(a.status, Some(OrderStatus::Paid), "{a:?}");
    assert_eq!(b.status, Some(OrderStatus::Paid), "{b:?}");
    assert_eq!(shop.provider.intent_count().await.unwrap(), 1);
    assert_eq!(shop.count_events("OrderPlaced").await, 1);
    assert_eq!(shop.count_events("PaymentCaptured").await, 1);
    assert_eq!(shop.stock("TWICE").await.reserved(), 2);
}

async fn a_coupon_with_one_use_is_used_once_under_concurrency(f: &Fixture<AnyStore>) {
    let shop = Arc::new(Shop::new(&f.store));
    shop.product("COUPON-1", 2_000, 100).await;
    let coupons = Dispatcher::<Coupon, AnyStore>::over(f.store.clone(), Loading::Snapshot(100));
    let code = CouponCode::parse("ONCE").unwrap();
    coupons
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
    let mut customers = Vec::new();
    for _ in 0..10 {
        customers.push(shop.customer_with("COUPON-1", 1).await);
    }

    let outcomes = futures::future::join_all(customers.iter().map(|&(customer, cart)| {
        let shop = Arc::clone(&shop);
        tokio::spawn(async move { shop.checkout(customer, cart, OK_CARD, Some("once")).await })
    }))
    .await;
    let outcomes: Vec<_> = outcomes.into_iter().map(Result::unwrap).collect();

    let discounted: Vec<&CheckoutView> = outcomes
        .iter()
        .filter_map(|o| o.as_ref().ok())
        .filter(|v| v.status == Some(OrderStatus::Paid))
        .collect();
    assert_eq!(discounted.len(), 1, "{outcomes:?}");
    // 20.00 - 10 % + 4.99 shipping.
    assert_eq!(
        discounted[0].grand_total,
        Some(Money::new(2_299, Currency::EUR))
    );
    let limit_reached = outcomes
        .iter()
        .filter(|o| {
            let failure = match o {
                Ok(view) => view.failure.as_ref(),
                Err(CheckoutError::Refused(failure)) => Some(failure),
                Err(_) => None,
            };
            matches!(failure, Some(CheckoutFailure::CouponRefused { code, .. }) if code == "COUPON_USAGE_LIMIT_REACHED")
        })
        .count();
    assert_eq!(limit_reached, 9, "{outcomes:?}");
    assert_eq!(coupons.load(code.as_str()).await.unwrap().uses(), 1);
    assert_eq!(shop.count_events("CouponRedeemed").await, 1);
    // A refused customer's cart stayed open: it checks out without the coupon.
    let refused = outcomes
        .iter()
        .position(|o| !matches!(o, Ok(v) if v.status == Some(OrderStatus::Paid)))
        .unwrap();
    let (customer, cart) = customers[refused];
    let retry = shop.checkout(customer, cart, OK_CARD, None).await.unwrap();
    assert_eq!(retry.status, Some(OrderStatus::Paid), "{retry:?}");
}

async fn a_3d_secure_completed_out_of_band_is_paid_once_through_its_webhook(f: &Fixture<AnyStore>) {
    let shop = Shop::new(&f.store);
    shop.product("WEBHOOK-3DS", 1_000, 4).await;
    let (customer, cart) = shop.customer_with("WEBHOOK-3DS", 1).await;
    let view = shop
        .checkout(customer, cart, THREE_D_SECURE_CARD, None)
        .await
        .unwrap();
    assert_eq!(view.status, Some(OrderStatus::AwaitingPayment), "{view:?}");
    assert!(view.next_action.is_some(), "{view:?}");
    let order_id = ids::order_for_cart(cart);
    let intent = IntentId(
        shop.payment(order_id)
            .await
            .provider_intent_id()
            .expect("the payment names its intent")
            .to_owned(),
    );

    // The customer completes 3-D Secure at "Stripe", which sends a webhook.
    let done = shop
        .provider
        .simulate(Simulation::CompleteAction(intent))
        .await
        .unwrap();
    let event = StripeEvent::parse(&done.event.payload).unwrap();
    let processor = WebhookProcessor::new(f.store.clone(), Arc::clone(&shop.provider) as _);
    let (first, second) = tokio::join!(
        processor.process(&event, Utc::now()),
        processor.process(&event, Utc::now()),
    );
    let mut outcomes = [first.unwrap(), second.unwrap()];
    outcomes.sort_by_key(|o| matches!(o, Outcome::Duplicate));
    assert!(
        matches!(outcomes[0], Outcome::Processed { order_id: o, changes: 1.., .. } if o == order_id),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[1], Outcome::Duplicate, "{outcomes:?}");
    assert_eq!(
        processor.process(&event, Utc::now()).await.unwrap(),
        Outcome::Duplicate
    );
    assert_eq!(shop.count_events("PaymentAuthorised").await, 1);

    let paid = shop.checkouts.advance(order_id, Utc::now()).await.unwrap();
    assert_eq!(paid.status, Some(OrderStatus::Paid), "{paid:?}");
    assert_eq!(shop.stock("WEBHOOK-3DS").await.reserved(), 1);
}
