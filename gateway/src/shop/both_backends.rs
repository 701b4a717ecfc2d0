//! The storefront's and the back office's reads on both backends: the read models
//! are built from the same events on PostgreSQL and on SQLite (the embedded mode's
//! `read.db`), by the same projection code, and every ported read answers the same
//! on each.
//!
//! Events are written through the real dispatchers into the embedded (SQLite) store
//! and read back through its feed, so they are exactly what a runner would apply
//! (as in the projections' `tests/backbone/both_backends.rs`). Answers are compared
//! by their `Debug` text, which shows every field.

use std::fmt::Debug;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use emporium_commands::catalog::Products;
use emporium_commands::store::SqliteStore;
use emporium_commands::{Dispatcher, Loading};
use emporium_domain::cart::{Cart, CartCommand, CartOwner};
use emporium_domain::catalog::{
    AltText, Attributes, CategoryCommand, CategoryName, CategoryTree, Description, ImageSource,
    ProductCommand, ProductName, Rating, Review, ReviewBody, ReviewCommand, ReviewTitle, Slug, Tag,
    VariantLabel, Wishlist, WishlistCommand,
};
use emporium_domain::inbox::{Inbox, InboxCommand};
use emporium_domain::inventory::{Inventory, InventoryCommand};
use emporium_domain::metadata::Actor;
use emporium_domain::order::{CancellationReason, Order, OrderCommand, OrderLine};
use emporium_domain::payment::{Payment, PaymentCommand};
use emporium_domain::user::{
    Email, PasswordHash, PersonName, Preferences, Role, User, UserCommand,
};
use emporium_domain::{
    Address, AddressInput, Aggregate, Currency, EventMetadata, Money, Quantity, Sku,
};
use emporium_projections::envelope::{CommitPosition, EventEnvelope};
use emporium_projections::feed::{EventFeed as _, SqliteFeed};
use emporium_projections::projection::upcast;
use emporium_projections::sql::{Backend, Db};
use emporium_tests::TestDatabase;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use uuid::Uuid;

use super::catalog::{ProductFilter, ProductSort, listing_query};
use super::{ProductRow, Shop, Shopper};
use crate::error::ApiError;
use crate::staff::{CustomerFilter, InventoryFilter, Staff, StaffOrderFilter};

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgRdescudvJCsg";

fn meta() -> EventMetadata {
    EventMetadata::new(Uuid::new_v4(), Actor::System("test".into()), Utc::now())
}

/// Distinct, increasing event times a second apart, so orders by time have no ties.
struct Ticks {
    start: DateTime<Utc>,
    next: std::cell::Cell<i64>,
}

impl Ticks {
    fn new() -> Self {
        Self {
            start: Utc::now() - chrono::Duration::hours(3),
            next: std::cell::Cell::new(0),
        }
    }

    fn tick(&self) -> DateTime<Utc> {
        let n = self.next.get() + 1;
        self.next.set(n);
        self.start + chrono::Duration::milliseconds(n * 1_001)
    }
}

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

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

fn sku(s: &str) -> Sku {
    Sku::parse(s).unwrap()
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

/// A product as the scenario creates it.
struct NewProduct<'a> {
    sku: &'a str,
    name: &'a str,
    description: &'a str,
    category: Uuid,
    price: i64,
    tags: &'a [&'a str],
}

/// The ids the assertions look for.
struct Ids {
    kitchen: Uuid,
    mugs: Uuid,
    home: Uuid,
    /// "Alpha mug": in mugs, 12.50 (a variant at 15.00), rated 5 and 4, featured.
    alpha: Uuid,
    /// "beta bowl": in kitchen, 9.00, rated 4 and 5, out of stock.
    beta: Uuid,
    /// "Gamma lamp": at home, 40.00, unrated, featured, slug changed, low stock.
    gamma: Uuid,
    /// "Delta tee": at home, 9.00, rated 2.
    delta: Uuid,
    /// "Epsilon draft": in mugs, 5.00, never published.
    epsilon: Uuid,
    /// "Zeta mug 50% off": in mugs, 20.00, unrated.
    zeta: Uuid,
    ada: Uuid,
    bob: Uuid,
    carol: Uuid,
    /// Ada's: paid and shipped.
    shipped: Uuid,
    /// Ada's: cancelled.
    cancelled: Uuid,
    /// Ada's: paid.
    paid: Uuid,
    /// Bob's: placed.
    bobs: Uuid,
    /// The shipped order's payment.
    payment: Uuid,
}

/// One shop's history, written into the embedded store in `dir`.
async fn history(store: &SqliteStore) -> Ids {
    let t = Ticks::new();
    let tree = CategoryTree::ID;
    let category = |name: &str, slug: &str, parent_id: Option<Uuid>, at| {
        let category_id = Uuid::new_v4();
        (
            category_id,
            CategoryCommand::CreateCategory {
                category_id,
                name: CategoryName::parse(name).unwrap(),
                slug: Slug::parse(slug).unwrap(),
                parent_id,
                at,
            },
        )
    };
    let (kitchen, c1) = category("Kitchen", "kitchen", None, t.tick());
    let (mugs, c2) = category("Mugs", "mugs", Some(kitchen), t.tick());
    let (home, c3) = category("Home", "home", None, t.tick());
    run::<CategoryTree>(store, tree, [c1, c2, c3]).await;

    let products = Products::over(store.clone());
    let product = async |p: NewProduct<'_>| {
        let product_id = Uuid::new_v4();
        products
            .execute(
                product_id,
                ProductCommand::CreateProduct {
                    product_id,
                    sku: sku(p.sku),
                    slug: Slug::parse(&p.sku.to_ascii_lowercase()).unwrap(),
                    name: ProductName::parse(p.name).unwrap(),
                    description: Description::parse(p.description).unwrap(),
                    category_id: p.category,
                    tags: p.tags.iter().map(|t| Tag::parse(t).unwrap()).collect(),
                    attributes: Attributes::parse([("material", "enamel")]).unwrap(),
                    price: eur(p.price),
                    at: t.tick(),
                },
                &meta(),
            )
            .await
            .expect("create product");
        // Nothing is published without an image.
        products
            .execute(
                product_id,
                ProductCommand::AddImage {
                    image_id: Uuid::new_v4(),
                    source: ImageSource::key(&format!("products/{}.jpg", p.sku)).unwrap(),
                    alt_text: AltText::parse("The front").unwrap(),
                    primary: true,
                    at: t.tick(),
                },
                &meta(),
            )
            .await
            .expect("add an image");
        product_id
    };
    let change = async |product_id: Uuid, commands: Vec<ProductCommand>| {
        for command in commands {
            products
                .execute(product_id, command, &meta())
                .await
                .expect("product command");
        }
    };
    let alpha = product(NewProduct {
        sku: "MUG-A",
        name: "Alpha mug",
        description: "Holds coffee.",
        category: mugs,
        price: 1_250,
        tags: &["kitchen", "gift"],
    })
    .await;
    let beta = product(NewProduct {
        sku: "BOWL-B",
        name: "beta bowl",
        description: "A MUG for soup.",
        category: kitchen,
        price: 900,
        tags: &["kitchen"],
    })
    .await;
    let gamma = product(NewProduct {
        sku: "LAMP-G",
        name: "Gamma lamp",
        description: "Lights a desk, serious.",
        category: home,
        price: 4_000,
        tags: &["gift"],
    })
    .await;
    let delta = product(NewProduct {
        sku: "TEE-D",
        name: "Delta tee",
        description: "Cotton.",
        category: home,
        price: 900,
        tags: &["apparel", "gift"],
    })
    .await;
    let epsilon = product(NewProduct {
        sku: "DRAFT-E",
        name: "Epsilon draft",
        description: "Not yet.",
        category: mugs,
        price: 500,
        tags: &[],
    })
    .await;
    let zeta = product(NewProduct {
        sku: "MUG-Z",
        name: "Zeta mug 50% off",
        description: "Half price_ish.",
        category: mugs,
        price: 2_000,
        tags: &["gift", "kitchen"],
    })
    .await;
    let publish = || ProductCommand::PublishProduct { at: t.tick() };
    change(
        alpha,
        vec![
            ProductCommand::AddVariant {
                variant_id: Uuid::new_v4(),
                sku: sku("MUG-A-L"),
                size: Some(VariantLabel::parse("L").unwrap()),
                colour: None,
                attributes: Attributes::default(),
                price: eur(1_500),
                at: t.tick(),
            },
            publish(),
            ProductCommand::FeatureProduct { at: t.tick() },
        ],
    )
    .await;
    change(beta, vec![publish()]).await;
    change(
        gamma,
        vec![
            publish(),
            ProductCommand::ChangeSlug {
                slug: Slug::parse("desk-lamp").unwrap(),
                at: t.tick(),
            },
            ProductCommand::FeatureProduct { at: t.tick() },
        ],
    )
    .await;
    change(delta, vec![publish()]).await;
    change(zeta, vec![publish()]).await;

    // Stock: BOWL-B tracked with none; LAMP-G below its threshold.
    for (s, units, threshold) in [
        ("MUG-A", 10, 2),
        ("MUG-A-L", 4, 5),
        ("BOWL-B", 0, 1),
        ("LAMP-G", 3, 5),
        ("TEE-D", 7, 0),
        ("MUG-Z", 1, 0),
    ] {
        let mut commands = vec![InventoryCommand::TrackInventory {
            sku: sku(s),
            low_stock_threshold: threshold,
            at: t.tick(),
        }];
        if units > 0 {
            commands.push(InventoryCommand::ReceiveStock {
                quantity: Quantity::new(units).unwrap(),
                at: t.tick(),
            });
        }
        run::<Inventory>(store, s, commands).await;
    }

    // Approved reviews: alpha and beta both average 4.5 (a tie the product id
    // breaks), delta 2; one pending review shows nowhere.
    for (product_id, stars, approve) in [
        (alpha, 5, true),
        (alpha, 4, true),
        (beta, 4, true),
        (beta, 5, true),
        (delta, 2, true),
        (alpha, 1, false),
    ] {
        let author_id = Uuid::new_v4();
        let mut commands = vec![ReviewCommand::WriteReview {
            product_id,
            author_id,
            rating: Rating::new(stars).unwrap(),
            title: ReviewTitle::parse("My view").unwrap(),
            body: ReviewBody::parse("Worth it.").unwrap(),
            verified_purchase: stars > 3,
            at: t.tick(),
        }];
        if approve {
            commands.push(ReviewCommand::ApproveReview {
                moderator_id: Uuid::new_v4(),
                at: t.tick(),
            });
        }
        run::<Review>(store, &Review::id_for(product_id, author_id), commands).await;
    }

    // Customers.
    let (ada, bob, carol) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    for (user_id, email, first, last, role) in [
        (
            ada,
            "ada@example.org",
            "Ada",
            Some("Lovelace"),
            Role::Customer,
        ),
        (bob, "bob@example.org", "Bob", Some("Keel"), Role::Staff),
        (
            carol,
            "carol@example.org",
            "Carol",
            Some("Love_lace"),
            Role::Customer,
        ),
    ] {
        run::<User>(
            store,
            &user_id.to_string(),
            [UserCommand::RegisterUser {
                user_id,
                email: Email::parse(email).unwrap(),
                password_hash: PasswordHash::parse(HASH).unwrap(),
                first_name: PersonName::parse(first).unwrap(),
                last_name: last.map(|l| PersonName::parse(l).unwrap()),
                role,
                preferences: Preferences::default(),
                at: t.tick(),
            }],
        )
        .await;
    }
    run::<User>(
        store,
        &ada.to_string(),
        [UserCommand::AddAddress {
            address_id: Uuid::new_v4(),
            address: address("London"),
            at: t.tick(),
        }],
    )
    .await;

    // Orders and a payment.
    let place =
        |order_id: Uuid, customer_id: Uuid, product_id: Uuid, at| OrderCommand::PlaceOrder {
            order_id,
            customer_id,
            lines: vec![OrderLine {
                sku: sku("MUG-A"),
                product_id,
                name: "Alpha mug".into(),
                unit_price: eur(1_250),
                quantity: Quantity::new(2).unwrap(),
                line_total: eur(2_500),
            }],
            tax_total: eur(500),
            shipping_total: eur(400),
            discount_total: eur(0),
            shipping_address: address("London"),
            billing_address: address("London"),
            currency: Currency::EUR,
            at,
        };
    let total = eur(3_400);
    let (shipped, cancelled, paid, bobs) = (
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    );
    let (payment, second_payment) = (Uuid::new_v4(), Uuid::new_v4());
    let pay = |payment_id: Uuid, order_id: Uuid, key: &str| {
        vec![
            PaymentCommand::CreatePayment {
                payment_id,
                order_id,
                provider: "offline".into(),
                provider_intent_id: format!("pi_{key}"),
                amount: total,
                idempotency_key: key.to_owned(),
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
        ]
    };
    let reserved = |at| OrderCommand::MarkStockReserved { at };
    let fraud = |at| OrderCommand::PassFraudCheck {
        risk_score: 7,
        reasons: Vec::new(),
        at,
    };
    run::<Order>(
        store,
        &shipped.to_string(),
        [
            place(shipped, ada, alpha, t.tick()),
            reserved(t.tick()),
            fraud(t.tick()),
        ],
    )
    .await;
    run::<Payment>(store, &payment.to_string(), pay(payment, shipped, "k1")).await;
    run::<Order>(
        store,
        &shipped.to_string(),
        [
            OrderCommand::MarkPaid {
                payment_id: payment,
                amount: total,
                at: t.tick(),
            },
            OrderCommand::ShipOrder {
                tracking_number: Some("TRACK-1".into()),
                at: t.tick(),
            },
        ],
    )
    .await;
    run::<Order>(
        store,
        &cancelled.to_string(),
        [
            place(cancelled, ada, beta, t.tick()),
            OrderCommand::CancelOrder {
                reason: CancellationReason::CustomerRequest,
                at: t.tick(),
            },
        ],
    )
    .await;
    run::<Order>(
        store,
        &paid.to_string(),
        [
            place(paid, ada, gamma, t.tick()),
            reserved(t.tick()),
            fraud(t.tick()),
        ],
    )
    .await;
    run::<Payment>(
        store,
        &second_payment.to_string(),
        pay(second_payment, paid, "k2"),
    )
    .await;
    run::<Order>(
        store,
        &paid.to_string(),
        [OrderCommand::MarkPaid {
            payment_id: second_payment,
            amount: total,
            at: t.tick(),
        }],
    )
    .await;
    run::<Order>(
        store,
        &bobs.to_string(),
        [place(bobs, bob, alpha, t.tick())],
    )
    .await;

    // Ada's wishlist (epsilon is not for sale: not shown) and cart (a line whose
    // product is unknown to the catalogue, two lines of one product).
    run::<Wishlist>(
        store,
        &ada.to_string(),
        [alpha, epsilon, gamma].map(|product_id| WishlistCommand::AddToWishlist {
            product_id,
            at: t.tick(),
        }),
    )
    .await;
    let cart_id = Uuid::new_v4();
    let mut cart = vec![CartCommand::OpenCart {
        cart_id,
        owner: CartOwner::User { user_id: ada },
        currency: Currency::EUR,
        at: t.tick(),
    }];
    for (s, product_id, n) in [
        ("MUG-A", alpha, 2),
        ("LAMP-G", gamma, 1),
        ("MUG-A-L", alpha, 1),
        ("GONE-1", Uuid::new_v4(), 3),
    ] {
        cart.push(CartCommand::AddItem {
            sku: sku(s),
            product_id,
            quantity: Quantity::new(n).unwrap(),
            at: t.tick(),
        });
    }
    run::<Cart>(store, &cart_id.to_string(), cart).await;

    // Ada reads the notification of her first order's payment.
    let events = events(store).await;
    let read = events
        .iter()
        .find(|e| e.aggregate_id == shipped.to_string() && e.event_type == "OrderPaid")
        .expect("the order's payment event")
        .event_id;
    run::<Inbox>(
        store,
        &ada.to_string(),
        [InboxCommand::MarkNotificationRead {
            notification_id: read,
            at: t.tick(),
        }],
    )
    .await;

    Ids {
        kitchen,
        mugs,
        home,
        alpha,
        beta,
        gamma,
        delta,
        epsilon,
        zeta,
        ada,
        bob,
        carol,
        shipped,
        cancelled,
        paid,
        bobs,
        payment,
    }
}

/// Every event of the store, as a runner reads it.
async fn events(store: &SqliteStore) -> Vec<EventEnvelope> {
    let mut events = SqliteFeed::new(store.pool().clone())
        .read_after(CommitPosition::START, 100_000)
        .await
        .expect("read the feed");
    events.iter_mut().for_each(upcast);
    events
}

/// Creates every read model on `db` and applies `events`, one transaction per
/// projection, as a runner would.
async fn build(db: &Db, events: &[EventEnvelope]) {
    for projection in emporium_projections::views::all() {
        let ddl = match db {
            Db::Postgres(_) => projection.schema(),
            Db::Sqlite(_) => projection
                .sqlite_schema()
                .unwrap_or_else(|| panic!("{} has no SQLite schema", projection.name())),
        };
        match db {
            Db::Postgres(pool) => sqlx::raw_sql(ddl).execute(pool).await.map(|_| ()),
            Db::Sqlite(pool) => sqlx::raw_sql(ddl).execute(pool).await.map(|_| ()),
        }
        .expect("create the tables");
        let mine: Vec<EventEnvelope> = events
            .iter()
            .filter(|e| {
                projection
                    .aggregate_types()
                    .contains(&e.aggregate_type.as_str())
            })
            .cloned()
            .collect();
        let mut tx = db.begin().await.expect("begin");
        projection
            .apply_batch(&mut tx.conn(), &mine)
            .await
            .unwrap_or_else(|e| panic!("apply {} on {:?}: {e:#}", projection.name(), db.backend()));
        tx.commit().await.expect("commit");
    }
}

/// The storefront and back office over each backend's read models.
struct Backends {
    pg: TestDatabase,
    _dir: tempfile::TempDir,
    ids: Ids,
    /// PostgreSQL's, then SQLite's.
    shops: [Arc<Shop>; 2],
    staff: [Staff; 2],
    lite: Db,
}

async fn backends() -> Backends {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::open(&dir.path().join("events.db"))
        .await
        .expect("open the embedded store");
    let ids = history(&store).await;
    let events = events(&store).await;

    let pg = TestDatabase::create(4).await.expect("a fresh database");
    let on_pg = Db::Postgres(pg.pool().clone());
    let lite = Db::from(
        SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                SqliteConnectOptions::new()
                    .filename(dir.path().join("read.db"))
                    .create_if_missing(true),
            )
            .await
            .expect("open read.db"),
    );
    build(&on_pg, &events).await;
    build(&lite, &events).await;

    let settings = crate::config::Settings::default();
    let shop = |read: Db| {
        Arc::new(
            Shop::new(
                emporium_commands::AnyStore::from(emporium_commands::PgStore::new(
                    pg.pool().clone(),
                )),
                pg.pool().clone(),
                read,
                Arc::new(crate::clock::SystemClock),
                &settings,
            )
            .expect("a shop"),
        )
    };
    let shops = [shop(on_pg), shop(lite.clone())];
    let staff = [
        Staff::new(Arc::clone(&shops[0])),
        Staff::new(Arc::clone(&shops[1])),
    ];
    assert_eq!(shops[1].read().backend(), Backend::Sqlite);
    Backends {
        pg,
        _dir: dir,
        ids,
        shops,
        staff,
        lite,
    }
}

/// Asserts both answers are the same, field by field; returns PostgreSQL's.
#[track_caller]
fn same<T: Debug>(what: &str, [pg, lite]: [T; 2]) -> T {
    assert_eq!(
        format!("{pg:#?}"),
        format!("{lite:#?}"),
        "{what}: PostgreSQL (left) and SQLite (right) differ"
    );
    pg
}

/// Runs `read` on both backends' shops.
async fn both<'a, T, F>(shops: &'a [Arc<Shop>; 2], read: impl Fn(&'a Shop) -> F) -> [T; 2]
where
    F: std::future::Future<Output = Result<T, ApiError>>,
{
    let pg = read(&shops[0]).await.expect("PostgreSQL answers");
    let lite = read(&shops[1]).await.expect("SQLite answers");
    [pg, lite]
}

/// Runs `read` on both backends' back offices.
async fn both_staff<'a, T, F>(staff: &'a [Staff; 2], read: impl Fn(&'a Staff) -> F) -> [T; 2]
where
    F: std::future::Future<Output = Result<T, ApiError>>,
{
    let pg = read(&staff[0]).await.expect("PostgreSQL answers");
    let lite = read(&staff[1]).await.expect("SQLite answers");
    [pg, lite]
}

/// Every page of a listing, two products a page, following the listing's cursors.
async fn pages(
    shop: &Shop,
    filter: &ProductFilter,
    sort: ProductSort,
    include_unpublished: bool,
) -> Result<Vec<(Vec<ProductRow>, bool)>, ApiError> {
    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = shop
            .list_products(filter, sort, 2, after.as_deref(), include_unpublished)
            .await?;
        after = page.items.last().map(|(cursor, _)| cursor.clone());
        let more = page.has_next_page;
        pages.push((page.items.into_iter().map(|(_, p)| p).collect(), more));
        assert!(pages.len() <= 10, "a listing of a few products never ends");
        if !more {
            return Ok(pages);
        }
    }
}

fn ids_of(pages: &[(Vec<ProductRow>, bool)]) -> Vec<Uuid> {
    pages
        .iter()
        .flat_map(|(products, _)| products.iter().map(|p| p.product_id))
        .collect()
}

const SORTS: [ProductSort; 5] = [
    ProductSort::PriceAsc,
    ProductSort::PriceDesc,
    ProductSort::Newest,
    ProductSort::Rating,
    ProductSort::Name,
];

#[tokio::test]
async fn product_listings_are_the_same_on_postgres_and_sqlite() {
    let b = backends().await;
    let i = &b.ids;
    let published = [i.alpha, i.beta, i.gamma, i.delta, i.zeta];

    // Every sort without a filter, page by page; the expected orders by hand.
    let by = |key: &dyn Fn(Uuid) -> i64, ascending: bool| {
        let mut ids = published.to_vec();
        ids.sort_by_key(|id| (key(*id), *id));
        if !ascending {
            ids.reverse();
        }
        ids
    };
    let price = |id: Uuid| {
        [
            (i.alpha, 1_250),
            (i.beta, 900),
            (i.gamma, 4_000),
            (i.delta, 900),
            (i.zeta, 2_000),
        ]
        .into_iter()
        .find(|(p, _)| *p == id)
        .map_or(0, |(_, price)| price)
    };
    let rating = |id: Uuid| {
        [(i.alpha, 450), (i.beta, 450), (i.delta, 200)]
            .into_iter()
            .find(|(p, _)| *p == id)
            .map_or(-100, |(_, r)| r)
    };
    let created = |id: Uuid| {
        published.iter().position(|p| *p == id).map_or(0, |n| {
            // Created in the order of `published`, except epsilon (not listed).
            i64::try_from(n).unwrap()
        })
    };
    let expected = [
        by(&price, true),
        by(&price, false),
        by(&created, false),
        by(&rating, false),
        // Byte order: capitals before lower case, on both backends.
        vec![i.alpha, i.delta, i.gamma, i.zeta, i.beta],
    ];
    let everything = ProductFilter::default();
    for (sort, expected) in SORTS.into_iter().zip(expected) {
        let answers = both(&b.shops, |s| pages(s, &everything, sort, false)).await;
        let on_pg = same(&format!("{sort:?}"), answers);
        assert_eq!(ids_of(&on_pg), expected, "{sort:?}");
        assert_eq!(on_pg.len(), 3, "{sort:?}: five products, two a page");
    }

    // Every filter, with every sort.
    let filter = |f: ProductFilter| f;
    let cases: Vec<(&str, ProductFilter, bool, Vec<Uuid>)> = vec![
        (
            "kitchen and below",
            filter(ProductFilter {
                category_id: Some(i.kitchen),
                ..ProductFilter::default()
            }),
            false,
            vec![i.alpha, i.beta, i.zeta],
        ),
        (
            "mugs",
            ProductFilter {
                category_id: Some(i.mugs),
                ..ProductFilter::default()
            },
            false,
            vec![i.alpha, i.zeta],
        ),
        (
            "mugs with drafts",
            ProductFilter {
                category_id: Some(i.mugs),
                ..ProductFilter::default()
            },
            true,
            vec![i.alpha, i.epsilon, i.zeta],
        ),
        (
            "home",
            ProductFilter {
                category_id: Some(i.home),
                ..ProductFilter::default()
            },
            false,
            vec![i.gamma, i.delta],
        ),
        (
            "9.00 to 20.00",
            ProductFilter {
                min_price_minor: Some(900),
                max_price_minor: Some(2_000),
                ..ProductFilter::default()
            },
            false,
            vec![i.alpha, i.beta, i.delta, i.zeta],
        ),
        (
            "from 10.00",
            ProductFilter {
                min_price_minor: Some(1_000),
                ..ProductFilter::default()
            },
            false,
            vec![i.alpha, i.gamma, i.zeta],
        ),
        (
            "in stock",
            ProductFilter {
                in_stock: Some(true),
                ..ProductFilter::default()
            },
            false,
            vec![i.alpha, i.gamma, i.delta, i.zeta],
        ),
        (
            "out of stock",
            ProductFilter {
                in_stock: Some(false),
                ..ProductFilter::default()
            },
            false,
            vec![i.beta],
        ),
        (
            "gift",
            ProductFilter {
                tags: vec!["gift".into()],
                ..ProductFilter::default()
            },
            false,
            vec![i.alpha, i.gamma, i.delta, i.zeta],
        ),
        (
            "gift and kitchen",
            ProductFilter {
                tags: vec!["kitchen".into(), "gift".into()],
                ..ProductFilter::default()
            },
            false,
            vec![i.alpha, i.zeta],
        ),
        (
            "a tag nobody has",
            ProductFilter {
                tags: vec!["gift".into(), "garden".into()],
                ..ProductFilter::default()
            },
            false,
            vec![],
        ),
        (
            "mug, any case, name or description",
            ProductFilter {
                search: Some(" mUg ".into()),
                ..ProductFilter::default()
            },
            false,
            vec![i.alpha, i.beta, i.zeta],
        ),
        (
            "50% literally",
            ProductFilter {
                search: Some("50%".into()),
                ..ProductFilter::default()
            },
            false,
            vec![i.zeta],
        ),
        (
            "an underscore literally",
            ProductFilter {
                search: Some("e_i".into()),
                ..ProductFilter::default()
            },
            false,
            vec![i.zeta],
        ),
        (
            "everything with drafts",
            ProductFilter::default(),
            true,
            vec![i.alpha, i.beta, i.gamma, i.delta, i.epsilon, i.zeta],
        ),
        (
            "gifts in stock at home from 9.00",
            ProductFilter {
                category_id: Some(i.home),
                min_price_minor: Some(900),
                in_stock: Some(true),
                tags: vec!["gift".into()],
                ..ProductFilter::default()
            },
            false,
            vec![i.gamma, i.delta],
        ),
    ];
    for (what, filter, drafts, mut expected) in cases {
        for sort in SORTS {
            let answers = both(&b.shops, |s| pages(s, &filter, sort, drafts)).await;
            let mut found = ids_of(&same(&format!("{what}, {sort:?}"), answers));
            found.sort();
            expected.sort();
            assert_eq!(found, expected, "{what}, {sort:?}");
        }
    }

    // A cursor of another sort, or whose key is not of its sort's type, is refused
    // on both.
    for shop in &b.shops {
        for sort in ["PriceAsc", "Newest", "Rating"] {
            let forged = base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                serde_json::json!({ "s": sort, "k": "garbage", "i": Uuid::nil() }).to_string(),
            );
            let sort = match sort {
                "PriceAsc" => ProductSort::PriceAsc,
                "Newest" => ProductSort::Newest,
                _ => ProductSort::Rating,
            };
            let refused = shop
                .list_products(&ProductFilter::default(), sort, 2, Some(&forged), false)
                .await;
            assert!(
                matches!(
                    refused,
                    Err(ApiError::BadUserInput {
                        rule: "invalid_cursor",
                        ..
                    })
                ),
                "{:?} {sort:?}: {refused:?}",
                shop.read().backend()
            );
        }
        let page = shop
            .list_products(&ProductFilter::default(), ProductSort::Name, 2, None, false)
            .await
            .unwrap();
        let cursor = page.items[1].0.clone();
        let refused = shop
            .list_products(
                &ProductFilter::default(),
                ProductSort::Newest,
                2,
                Some(&cursor),
                false,
            )
            .await;
        assert!(
            matches!(refused, Err(ApiError::BadUserInput { field: "after", .. })),
            "{refused:?}"
        );
    }
    b.pg.drop_database().await.expect("drop the database");
}

#[tokio::test]
async fn product_and_category_reads_are_the_same_on_postgres_and_sqlite() {
    let b = backends().await;
    let i = &b.ids;

    let alpha = same(
        "alpha by id",
        both(&b.shops, |s| s.product(Some(i.alpha), None, false)).await,
    )
    .expect("alpha is for sale");
    assert_eq!(alpha.tags.0, ["gift", "kitchen"]);
    assert_eq!(alpha.rating_average, Some(4.5));
    assert_eq!(
        (alpha.min_price_minor, alpha.max_price_minor),
        (1_250, 1_500)
    );
    assert_eq!(alpha.category_path.0.len(), 2, "kitchen > mugs");
    assert_eq!(alpha.variants.0.len(), 1);
    assert_eq!(alpha.images.0.len(), 1);
    for (what, id, slug, drafts, found) in [
        ("a draft, hidden", Some(i.epsilon), None, false, None),
        (
            "a draft for staff",
            Some(i.epsilon),
            None,
            true,
            Some(i.epsilon),
        ),
        ("an unknown id", Some(Uuid::new_v4()), None, true, None),
        ("by slug", None, Some("mug-z"), false, Some(i.zeta)),
        (
            "by a former slug",
            None,
            Some("lamp-g"),
            false,
            Some(i.gamma),
        ),
        (
            "by the new slug",
            None,
            Some("desk-lamp"),
            false,
            Some(i.gamma),
        ),
        ("an unknown slug", None, Some("nothing"), false, None),
    ] {
        let row = same(what, both(&b.shops, |s| s.product(id, slug, drafts)).await);
        assert_eq!(row.map(|p| p.product_id), found, "{what}");
    }

    let featured = same(
        "featured",
        both(&b.shops, |s| s.featured_products(10)).await,
    );
    let mut shown: Vec<Uuid> = featured.iter().map(|p| p.product_id).collect();
    shown.sort();
    let mut expected = vec![i.alpha, i.gamma];
    expected.sort();
    assert_eq!(shown, expected);

    let unknown = Uuid::new_v4();
    let ids = [i.gamma, i.epsilon, unknown, i.alpha];
    let [mut pg, mut lite] = both(&b.shops, |s| s.products_by_id(&ids)).await;
    pg.sort_by_key(|p| p.product_id);
    lite.sort_by_key(|p| p.product_id);
    let found = same("products by id", [pg, lite]);
    let mut expected = vec![i.gamma, i.epsilon, i.alpha];
    expected.sort();
    assert_eq!(
        found.iter().map(|p| p.product_id).collect::<Vec<_>>(),
        expected
    );

    let tree = same("categories", both(&b.shops, |s| s.categories()).await);
    assert_eq!(
        tree.iter()
            .map(|c| (c.path_slugs.as_str(), c.depth))
            .collect::<Vec<_>>(),
        [("home", 0), ("kitchen", 0), ("kitchen/mugs", 1)]
    );

    let reviews = same(
        "alpha's reviews",
        both(&b.shops, |s| s.product_reviews(i.alpha, 10)).await,
    );
    assert_eq!(
        reviews.iter().map(|r| r.rating).collect::<Vec<_>>(),
        [4, 5],
        "approved only, newest first"
    );
    same(
        "a page of one review",
        both(&b.shops, |s| s.product_reviews(i.beta, 1)).await,
    );
    for (product_id, bought) in [(i.alpha, true), (i.beta, false), (i.gamma, true)] {
        let answer = same(
            "bought",
            both(&b.shops, |s| s.bought(i.ada, product_id)).await,
        );
        assert_eq!(answer, bought, "cancelled orders prove nothing");
    }
    b.pg.drop_database().await.expect("drop the database");
}

#[tokio::test]
async fn customer_reads_are_the_same_on_postgres_and_sqlite() {
    let b = backends().await;
    let i = &b.ids;

    let wishlist = same("wishlist", both(&b.shops, |s| s.my_wishlist(i.ada)).await);
    assert_eq!(
        wishlist
            .iter()
            .map(|w| w.product.product_id)
            .collect::<Vec<_>>(),
        [i.gamma, i.alpha],
        "newest first, drafts hidden"
    );

    let ada = Shopper::User(i.ada);
    let cart = same("cart", both(&b.shops, |s| s.my_cart(&ada)).await);
    assert_eq!(
        cart.lines
            .iter()
            .map(|l| (
                l.sku.as_str(),
                l.quantity,
                l.product.as_ref().map(|p| p.product_id)
            ))
            .collect::<Vec<_>>(),
        [
            ("MUG-A", 2, Some(i.alpha)),
            ("LAMP-G", 1, Some(i.gamma)),
            ("MUG-A-L", 1, Some(i.alpha)),
            ("GONE-1", 3, None),
        ]
    );
    let bob = Shopper::User(i.bob);
    let empty = same("no cart", both(&b.shops, |s| s.my_cart(&bob)).await);
    assert!(empty.lines.is_empty());

    // My orders, two a page.
    let mut after: [Option<String>; 2] = [None, None];
    let mut seen = Vec::new();
    loop {
        let [pg, lite] = [
            b.shops[0]
                .my_orders(i.ada, 2, after[0].as_deref())
                .await
                .unwrap(),
            b.shops[1]
                .my_orders(i.ada, 2, after[1].as_deref())
                .await
                .unwrap(),
        ];
        after = [
            pg.items.last().map(|(c, _)| c.clone()),
            lite.items.last().map(|(c, _)| c.clone()),
        ];
        let more = pg.has_next_page;
        let rows = same(
            "a page of my orders",
            [
                (
                    pg.items.into_iter().map(|(_, o)| o).collect::<Vec<_>>(),
                    more,
                ),
                (
                    lite.items.into_iter().map(|(_, o)| o).collect::<Vec<_>>(),
                    lite.has_next_page,
                ),
            ],
        );
        seen.extend(rows.0.iter().map(|o| o.order_id));
        if !more {
            break;
        }
    }
    assert_eq!(seen, [i.paid, i.cancelled, i.shipped], "newest first");
    let order = same(
        "my order",
        both(&b.shops, |s| s.my_order(i.ada, i.shipped)).await,
    );
    assert_eq!(order.status, "shipped");
    assert_eq!(
        order.history.0.last().map(|h| h.status.as_str()),
        Some("shipped")
    );
    for shop in &b.shops {
        let foreign = shop.my_order(i.ada, i.bobs).await;
        assert!(
            matches!(foreign, Err(ApiError::NotFound { what: "order" })),
            "{foreign:?}"
        );
    }

    let payments = same(
        "my payments",
        both(&b.shops, |s| s.my_payments(i.ada, 20)).await,
    );
    assert_eq!(payments.len(), 2);
    assert_eq!(payments[1].payment_id, i.payment, "newest first");
    let payment = same(
        "my payment",
        both(&b.shops, |s| s.my_payment(i.ada, i.payment)).await,
    );
    assert_eq!(payment.map(|p| p.captured_minor), Some(3_400));
    let foreign = same(
        "someone else's payment",
        both(&b.shops, |s| s.my_payment(i.bob, i.payment)).await,
    );
    assert!(foreign.is_none());

    let all = same(
        "notifications",
        both(&b.shops, |s| s.notifications(i.ada, 20, false)).await,
    );
    let unread = same(
        "unread notifications",
        both(&b.shops, |s| s.notifications(i.ada, 20, true)).await,
    );
    let counts = same(
        "inbox counts",
        both(&b.shops, |s| s.inbox_counts(i.ada)).await,
    );
    assert!(all.len() > unread.len(), "one was read");
    assert_eq!(
        (counts.total, counts.unread),
        (
            i64::try_from(all.len()).unwrap(),
            i64::try_from(unread.len()).unwrap()
        )
    );
    same(
        "the newest notification",
        both(&b.shops, |s| s.notifications(i.ada, 1, false)).await,
    );
    b.pg.drop_database().await.expect("drop the database");
}

#[tokio::test]
async fn back_office_reads_are_the_same_on_postgres_and_sqlite() {
    let b = backends().await;
    let i = &b.ids;

    // Customers: every filter, two a page.
    for (what, filter, expected) in [
        (
            "everyone",
            CustomerFilter::default(),
            vec![i.carol, i.bob, i.ada],
        ),
        (
            "love, any case, literally",
            CustomerFilter {
                search: Some("LOVE".into()),
                role: None,
            },
            vec![i.carol, i.ada],
        ),
        (
            "an underscore literally",
            CustomerFilter {
                search: Some("e_l".into()),
                role: None,
            },
            vec![i.carol],
        ),
        (
            "staff",
            CustomerFilter {
                search: None,
                role: Some("staff".into()),
            },
            vec![i.bob],
        ),
    ] {
        let mut after: [Option<String>; 2] = [None, None];
        let mut seen = Vec::new();
        loop {
            let [pg, lite] = [
                b.staff[0]
                    .customers(&filter, 2, after[0].as_deref())
                    .await
                    .unwrap(),
                b.staff[1]
                    .customers(&filter, 2, after[1].as_deref())
                    .await
                    .unwrap(),
            ];
            after = [
                pg.items.last().map(|(c, _)| c.clone()),
                lite.items.last().map(|(c, _)| c.clone()),
            ];
            let more = pg.has_next_page;
            let rows = same(
                what,
                [
                    (
                        pg.items.into_iter().map(|(_, c)| c).collect::<Vec<_>>(),
                        more,
                    ),
                    (
                        lite.items.into_iter().map(|(_, c)| c).collect::<Vec<_>>(),
                        lite.has_next_page,
                    ),
                ],
            );
            seen.extend(rows.0.iter().map(|c| (c.user_id, c.address_count)));
            if !more {
                break;
            }
        }
        assert_eq!(
            seen.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            expected,
            "{what}"
        );
        if let Some((_, addresses)) = seen.iter().find(|(id, _)| *id == i.ada) {
            assert_eq!(*addresses, 1);
        }
    }

    // Orders: every filter, two a page.
    let window = b.shops[0]
        .my_order(i.ada, i.cancelled)
        .await
        .unwrap()
        .placed_at;
    for (what, filter, expected) in [
        (
            "all",
            StaffOrderFilter::default(),
            vec![i.bobs, i.paid, i.cancelled, i.shipped],
        ),
        (
            "paid",
            StaffOrderFilter {
                status: Some("paid".into()),
                ..StaffOrderFilter::default()
            },
            vec![i.paid],
        ),
        (
            "bob's",
            StaffOrderFilter {
                customer_id: Some(i.bob),
                ..StaffOrderFilter::default()
            },
            vec![i.bobs],
        ),
        (
            "from the cancelled one",
            StaffOrderFilter {
                placed_from: Some(window),
                ..StaffOrderFilter::default()
            },
            vec![i.bobs, i.paid, i.cancelled],
        ),
        (
            "before the cancelled one",
            StaffOrderFilter {
                placed_to: Some(window),
                ..StaffOrderFilter::default()
            },
            vec![i.shipped],
        ),
        (
            "ada's from the cancelled one, cancelled",
            StaffOrderFilter {
                status: Some("cancelled".into()),
                customer_id: Some(i.ada),
                placed_from: Some(window),
                placed_to: Some(window + chrono::Duration::days(1)),
            },
            vec![i.cancelled],
        ),
    ] {
        let mut after: [Option<String>; 2] = [None, None];
        let mut seen = Vec::new();
        loop {
            let [pg, lite] = [
                b.staff[0]
                    .all_orders(&filter, 2, after[0].as_deref())
                    .await
                    .unwrap(),
                b.staff[1]
                    .all_orders(&filter, 2, after[1].as_deref())
                    .await
                    .unwrap(),
            ];
            after = [
                pg.items.last().map(|(c, _)| c.clone()),
                lite.items.last().map(|(c, _)| c.clone()),
            ];
            let more = pg.has_next_page;
            let rows = same(
                what,
                [
                    (
                        pg.items.into_iter().map(|(_, o)| o).collect::<Vec<_>>(),
                        more,
                    ),
                    (
                        lite.items.into_iter().map(|(_, o)| o).collect::<Vec<_>>(),
                        lite.has_next_page,
                    ),
                ],
            );
            seen.extend(rows.0.iter().map(|o| o.order.order_id));
            if !more {
                break;
            }
        }
        assert_eq!(seen, expected, "{what}");
    }
    let order = same(
        "an order",
        both_staff(&b.staff, |s| s.order(i.shipped)).await,
    )
    .expect("the order");
    assert_eq!(
        (order.customer_id, order.payment_id, order.risk_score),
        (i.ada, Some(i.payment), Some(7))
    );

    // Inventory: every filter, two a page.
    for (what, filter, expected) in [
        (
            "all",
            InventoryFilter::default(),
            vec!["BOWL-B", "LAMP-G", "MUG-A", "MUG-A-L", "MUG-Z", "TEE-D"],
        ),
        (
            "MUG-A",
            InventoryFilter {
                sku_prefix: Some("MUG-A".into()),
                low_stock_only: false,
            },
            vec!["MUG-A", "MUG-A-L"],
        ),
        (
            "lower case finds nothing",
            InventoryFilter {
                sku_prefix: Some("mug".into()),
                low_stock_only: false,
            },
            vec![],
        ),
        (
            "a wildcard is literal",
            InventoryFilter {
                sku_prefix: Some("MUG_".into()),
                low_stock_only: false,
            },
            vec![],
        ),
        (
            "low",
            InventoryFilter {
                sku_prefix: None,
                low_stock_only: true,
            },
            vec!["BOWL-B", "LAMP-G", "MUG-A-L"],
        ),
        (
            "low mugs",
            InventoryFilter {
                sku_prefix: Some("MUG".into()),
                low_stock_only: true,
            },
            vec!["MUG-A-L"],
        ),
    ] {
        let mut after: [Option<String>; 2] = [None, None];
        let mut seen = Vec::new();
        loop {
            let [pg, lite] = [
                b.staff[0]
                    .inventory_levels(&filter, 2, after[0].as_deref())
                    .await
                    .unwrap(),
                b.staff[1]
                    .inventory_levels(&filter, 2, after[1].as_deref())
                    .await
                    .unwrap(),
            ];
            after = [
                pg.items.last().map(|(c, _)| c.clone()),
                lite.items.last().map(|(c, _)| c.clone()),
            ];
            let more = pg.has_next_page;
            let rows = same(
                what,
                [
                    (
                        pg.items.into_iter().map(|(_, l)| l).collect::<Vec<_>>(),
                        more,
                    ),
                    (
                        lite.items.into_iter().map(|(_, l)| l).collect::<Vec<_>>(),
                        lite.has_next_page,
                    ),
                ],
            );
            seen.extend(rows.0.into_iter().map(|l| l.sku));
            if !more {
                break;
            }
        }
        assert_eq!(seen, expected, "{what}");
    }
    let low = same("low stock", both_staff(&b.staff, |s| s.low_stock(10)).await);
    assert_eq!(
        low.iter()
            .map(|l| (l.sku.as_str(), l.available))
            .collect::<Vec<_>>(),
        [("BOWL-B", 0), ("LAMP-G", 3), ("MUG-A-L", 4)],
        "least available first"
    );
    let level = same(
        "a level",
        both_staff(&b.staff, |s| s.level("MUG-A-L")).await,
    )
    .expect("tracked");
    assert_eq!(level.product_id, Some(i.alpha), "a variant's SKU");
    assert!(level.low_stock);
    b.pg.drop_database().await.expect("drop the database");
}

/// On SQLite, as on PostgreSQL (`every_listing_order_is_an_index_scan_without_a_sort`),
/// a storefront page, first or later, walks its order's listing index without a sort.
#[tokio::test]
async fn sqlite_listings_walk_their_index_without_a_sort() {
    let b = backends().await;
    for (sort, index) in [
        (ProductSort::Newest, "catalog_products_newest"),
        (ProductSort::PriceAsc, "catalog_products_price"),
        (ProductSort::PriceDesc, "catalog_products_price"),
        (ProductSort::Rating, "catalog_products_rating"),
        (ProductSort::Name, "catalog_products_name"),
    ] {
        let page = b.shops[1]
            .list_products(&ProductFilter::default(), sort, 2, None, false)
            .await
            .unwrap();
        let cursor = super::catalog::Cursor::decode(&page.items[1].0, sort).unwrap();
        for after in [None, Some(&cursor)] {
            let q = listing_query(
                Backend::Sqlite,
                "EXPLAIN QUERY PLAN ",
                &ProductFilter {
                    tags: vec!["gift".into()],
                    ..ProductFilter::default()
                },
                sort,
                20,
                after,
                false,
            )
            .unwrap();
            let plan: Vec<(i64, i64, i64, String)> =
                b.lite.fetch_all(&q.text, q.args).await.unwrap();
            let steps: Vec<&str> = plan.iter().map(|(.., detail)| detail.as_str()).collect();
            assert!(
                !steps.iter().any(|s| s.contains("TEMP B-TREE")),
                "{sort:?}: sorts: {steps:?}"
            );
            let verb = if after.is_some() { "SEARCH" } else { "SCAN" };
            assert!(
                steps
                    .iter()
                    .any(|s| s.starts_with(&format!("{verb} p USING INDEX {index}"))),
                "{sort:?} (cursor: {}): {steps:?}",
                after.is_some()
            );
        }
    }
    b.pg.drop_database().await.expect("drop the database");
}
