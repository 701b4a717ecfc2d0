//! kill -9 of the process running the checkout, mid-way, then a restart: the checkout
//! completes exactly once.
//!
//! `emporium serve` runs as a child process against the test's database and stream
//! prefix. The first child is told (`checkout.crash_after = stock_reserved`) to park
//! the checkout right after the stock is reserved; once the event store shows the
//! reservation the test kills it with SIGKILL. The second child's driver finds the
//! open checkout and finishes it: one order, one reservation, one payment, one
//! capture, one `OrderPaid`.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use emporium_commands::catalog::Products;
use emporium_commands::{Dispatcher, Loading};
use emporium_domain::catalog::{
    AltText, Attributes, CategoryCommand, CategoryName, CategoryTree, Description, ImageSource,
    ProductCommand, ProductName, Slug,
};
use emporium_domain::inventory::{Inventory, InventoryCommand};
use emporium_domain::metadata::Actor;
use emporium_domain::{Currency, EventMetadata, Money, Quantity, Sku};
use emporium_tests::{TestDatabase, nats_url, unique_prefix};
use serde_json::{Value, json};
use uuid::Uuid;

fn meta() -> EventMetadata {
    EventMetadata::new(
        Uuid::new_v4(),
        Actor::System("test-seed".into()),
        Utc::now(),
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn serve(db: &str, prefix: &str, port: u16, crash_after: Option<&str>) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_emporium"));
    cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    for (key, _) in std::env::vars() {
        if key.starts_with("EMPORIUM_") || key.ends_with("_URL") {
            cmd.env_remove(key);
        }
    }
    cmd.args(["--env", "test", "--port", &port.to_string(), "serve"])
        .env("DATABASE_URL", db)
        .env("NATS_URL", nats_url())
        .env("EMPORIUM_NATS__STREAM_PREFIX", prefix)
        .env("EMPORIUM_LIMITS__RATE__ENABLED", "false")
        .env("EMPORIUM_CHECKOUT__RESUME_AFTER_MS", "300")
        .env("EMPORIUM_CHECKOUT__SWEEP_INTERVAL_MS", "50")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(step) = crash_after {
        cmd.env("EMPORIUM_CHECKOUT__CRASH_AFTER", step);
    }
    cmd.spawn().expect("start emporium serve")
}

/// One GraphQL POST over a plain socket (the gateway's crate has no HTTP client).
fn graphql(port: u16, query: &str, variables: Value, bearer: Option<&str>) -> Value {
    let body = json!({ "query": query, "variables": variables }).to_string();
    let auth = bearer.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!(
        "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (_, body) = response.split_once("\r\n\r\n").expect("http response");
    serde_json::from_str(body).unwrap_or_else(|_| panic!("json body: {body}"))
}

fn until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn count(pool: &sqlx::PgPool, event_type: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = $1")
        .bind(event_type)
        .fetch_one(pool)
        .await
        .expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_killed_mid_way_completes_exactly_once_after_restart() {
    let db = TestDatabase::create(4).await.expect("database");
    emporium_gateway::db::prepare(db.url(), db.pool())
        .await
        .expect("migrate");
    let pool = db.pool().clone();

    // A product with stock, through the command layer.
    let category = Uuid::new_v4();
    Dispatcher::<CategoryTree>::new(pool.clone(), Loading::Replay)
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
        .unwrap();
    let product = Uuid::new_v4();
    let products = Products::new(pool.clone());
    for command in [
        ProductCommand::CreateProduct {
            product_id: product,
            sku: Sku::parse("CRASH-1").unwrap(),
            slug: Slug::parse("crash-1").unwrap(),
            name: ProductName::parse("Crash test dummy").unwrap(),
            description: Description::parse("Survives").unwrap(),
            category_id: category,
            tags: std::collections::BTreeSet::new(),
            attributes: Attributes::default(),
            price: Money::new(2_000, Currency::EUR),
            at: Utc::now(),
        },
        ProductCommand::AddImage {
            image_id: Uuid::new_v4(),
            source: ImageSource::key("products/crash/front.jpg").unwrap(),
            alt_text: AltText::parse("Front").unwrap(),
            primary: true,
            at: Utc::now(),
        },
        ProductCommand::PublishProduct { at: Utc::now() },
    ] {
        products.execute(product, command, &meta()).await.unwrap();
    }
    let inventory = Dispatcher::<Inventory>::new(pool.clone(), Loading::Replay);
    for command in [
        InventoryCommand::TrackInventory {
            sku: Sku::parse("CRASH-1").unwrap(),
            low_stock_threshold: 0,
            at: Utc::now(),
        },
        InventoryCommand::ReceiveStock {
            quantity: Quantity::new(3).unwrap(),
            at: Utc::now(),
        },
    ] {
        inventory
            .execute("CRASH-1", command, &meta())
            .await
            .unwrap();
    }

    let prefix = unique_prefix();
    let port = free_port();
    let mut first = serve(db.url(), &prefix, port, Some("stock_reserved"));
    let ready = until("the first server", Duration::from_secs(60), || {
        TcpStream::connect(("127.0.0.1", port)).ok()
    });
    drop(ready);

    let registered = tokio::task::spawn_blocking(move || {
        graphql(
            port,
            "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
            json!({ "i": { "email": "crash@example.com", "password": "correct horse battery staple", "firstName": "Ada", "lastName": "Lovelace" } }),
            None,
        )
    })
    .await
    .unwrap();
    let token = registered["data"]["register"]["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("{registered}"))
        .to_owned();
    // The catalogue read model must know the SKU before it can go in a cart.
    let t = token.clone();
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let last = graphql(
                port,
                "mutation { addToCart(sku: \"CRASH-1\", quantity: 1) { itemCount } }",
                json!({}),
                Some(&t),
            );
            if last["data"]["addToCart"]["itemCount"] == 1 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the product never reached the catalogue: {last}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await
    .unwrap();

    // The checkout parks after the reservation; its request never answers.
    let t = token.clone();
    let _hanging = std::thread::spawn(move || {
        let _ = std::panic::catch_unwind(|| {
            graphql(
                port,
                "mutation($i: CheckoutInput!) { checkout(input: $i) { status } }",
                json!({ "i": {
                    "shippingAddress": { "fullName": "Ada Lovelace", "line1": "Unter den Linden 1", "city": "Berlin", "postalCode": "10117", "country": "DE" },
                    "shippingMethod": "standard",
                    "paymentMethod": { "card": "4242424242424242" },
                } }),
                Some(&t),
            )
        });
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&pool, "OrderStockReserved").await < 1 {
        assert!(
            Instant::now() < deadline,
            "the checkout never reserved stock"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        count(&pool, "PaymentCreated").await,
        0,
        "parked before payment"
    );
    first.kill().expect("kill -9");
    first.wait().expect("reaped");

    let mut second = serve(db.url(), &prefix, port, None);
    let deadline = Instant::now() + Duration::from_secs(90);
    while count(&pool, "OrderPaid").await < 1 {
        assert!(
            Instant::now() < deadline,
            "the restarted driver never finished the checkout"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Give a duplicate a chance to show before counting: one more full sweep cycle
    // is observable as the checkout row closing.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state: String = sqlx::query_scalar("SELECT state FROM checkouts")
            .fetch_one(&pool)
            .await
            .unwrap();
        if state == "closed" {
            break;
        }
        assert!(Instant::now() < deadline, "checkout row never closed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    second.kill().expect("stop the second server");
    second.wait().expect("reaped");

    for (event, expected) in [
        ("OrderPlaced", 1),
        ("StockReserved", 1),
        ("OrderStockReserved", 1),
        ("PaymentCreated", 1),
        ("PaymentAuthorised", 1),
        ("PaymentCaptured", 1),
        ("OrderPaid", 1),
    ] {
        assert_eq!(count(&pool, event).await, expected, "{event}");
    }
    let stock = inventory.load("CRASH-1").await.unwrap();
    assert_eq!((stock.on_hand(), stock.reserved()), (3, 1));
    db.drop_database().await.expect("drop database");
}
