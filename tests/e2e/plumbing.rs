//! The gateway's plumbing over HTTP: W3C trace context carried from the request into
//! the stored event and the published message, CORS preflights, per-operation
//! metrics, and DataLoaders keeping a page's queries constant.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull::OrderedConfig};
use chrono::Utc;
use emporium_commands::catalog::Products;
use emporium_commands::{AnyStore, Dispatcher, Loading};
use emporium_domain::catalog::{
    AltText, Attributes, Description, ImageSource, ProductCommand, ProductName, Slug,
};
use emporium_domain::metadata::Actor;
use emporium_domain::order::{Order, OrderCommand, OrderLine};
use emporium_domain::{Address, AddressInput, Currency, EventMetadata, Money, Quantity, Sku};
use emporium_projections::bus::StreamLayout;
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use tracing_subscriber::layer::SubscriberExt;
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

#[tokio::test]
async fn the_callers_traceparent_reaches_the_stored_event_and_the_bus() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("traceparent", format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"))
        .header("tracestate", "vendor=opaque")
        .json(&json!({
            "query": "mutation($i: RegisterInput!) { register(input: $i) { user { id } } }",
            "variables": { "i": { "email": "ada@example.com", "password": "correct horse battery", "firstName": "Ada" } },
        }))
        .send()
        .await
        .expect("sent");
    let body: Value = response.json().await.expect("json");
    assert!(body.get("errors").is_none(), "{body}");
    let user_id = body["data"]["register"]["user"]["id"].as_str().expect("id");

    let (traceparent, tracestate): (Option<String>, Option<String>) = app
        .events_db()
        .fetch_one(
            "SELECT metadata->>'traceparent', metadata->>'tracestate' FROM events
             WHERE aggregate_type = 'user' AND aggregate_id = $1 AND sequence = 1",
            emporium_commands::args![user_id],
        )
        .await
        .expect("event");
    let traceparent = traceparent.expect("a traceparent in the metadata");
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(parts[0], "00");
    // The caller's trace; the gateway's own span as the parent of what follows.
    assert_eq!(parts[1], CLIENT_TRACE);
    assert_ne!(parts[2], CLIENT_SPAN);
    assert_eq!(parts[2].len(), 16);
    assert_eq!(parts[3], "01");
    assert_eq!(tracestate.as_deref(), Some("vendor=opaque"));

    if crate::helpers::distributed_only("the embedded mode has no bus to carry the header") {
        app.teardown().await;
        return;
    }
    // The relay publishes it as a header and in the envelope.
    let nats = async_nats::connect(app.settings.nats.url.expose())
        .await
        .expect("nats");
    let layout = StreamLayout::new(&app.settings.nats.stream_prefix).expect("layout");
    let js = jetstream::new(nats);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let stream = loop {
        // The relay creates the stream on its first run.
        if let Ok(stream) = js.get_stream(layout.stream_name()).await {
            break stream;
        }
        assert!(tokio::time::Instant::now() < deadline, "no stream");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: layout.subject("user", "UserRegistered"),
            deliver_policy: DeliverPolicy::All,
            ..OrderedConfig::default()
        })
        .await
        .expect("consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let message = tokio::time::timeout(Duration::from_secs(30), messages.next())
        .await
        .expect("published within the deadline")
        .expect("a message")
        .expect("no error");
    let header = message
        .headers
        .as_ref()
        .and_then(|h| h.get("traceparent"))
        .map(|v| v.as_str().to_owned());
    assert_eq!(header.as_deref(), Some(traceparent.as_str()));
    let envelope: Value = serde_json::from_slice(&message.payload).expect("envelope");
    assert_eq!(envelope["metadata"]["traceparent"], traceparent.as_str());

    // Without a (valid) traceparent a request starts a trace of its own.
    let r = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("traceparent", "00-not-a-trace-01")
        .json(&json!({
            "query": "mutation($i: RegisterInput!) { register(input: $i) { user { id } } }",
            "variables": { "i": { "email": "bob@example.com", "password": "correct horse battery", "firstName": "Bob" } },
        }))
        .send()
        .await
        .expect("sent");
    let body: Value = r.json().await.expect("json");
    let bob = body["data"]["register"]["user"]["id"].as_str().expect("id");
    let (own,): (Option<String>,) = app
        .events_db()
        .fetch_one(
            "SELECT metadata->>'traceparent' FROM events
             WHERE aggregate_type = 'user' AND aggregate_id = $1 AND sequence = 1",
            emporium_commands::args![bob],
        )
        .await
        .expect("event");
    let own = own.expect("a traceparent");
    assert!(own.starts_with("00-") && own.len() == 55, "{own}");
    assert!(!own.contains(CLIENT_TRACE));
    app.teardown().await;
}

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(Method::OPTIONS, format!("{}/graphql", app.address))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,authorization,x-cart-token",
        )
        .send()
        .await
        .expect("sent")
}

fn allowed_origin(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("access-control-allow-origin")
        .and_then(|v| v.to_str().ok())
        .map(ToOwned::to_owned)
}

#[tokio::test]
async fn cors_preflights_are_answered_for_configured_origins_only() {
    let app = spawn_app_with(|s| {
        s.http.cors_allowed_origins = vec![
            "https://shop.example.com".to_owned(),
            "http://localhost:*".to_owned(),
        ];
    })
    .await;
    let ok = preflight(&app, "https://shop.example.com").await;
    assert!(ok.status().is_success(), "{}", ok.status());
    assert_eq!(
        allowed_origin(&ok).as_deref(),
        Some("https://shop.example.com")
    );
    let headers = ok
        .headers()
        .get("access-control-allow-headers")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        headers.contains("authorization")
            && headers.contains("content-type")
            && headers.contains("x-cart-token"),
        "{headers}"
    );
    assert!(
        ok.headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
    let local = preflight(&app, "http://localhost:5173").await;
    assert_eq!(
        allowed_origin(&local).as_deref(),
        Some("http://localhost:5173")
    );

    for refused in [
        "https://evil.example.com",
        "https://shop.example.com.evil.test",
        "null",
    ] {
        let r = preflight(&app, refused).await;
        assert_eq!(allowed_origin(&r), None, "{refused}");
    }
    // The actual request carries the header too.
    let r = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("origin", "https://shop.example.com")
        .json(&json!({ "query": "{ version }" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(
        allowed_origin(&r).as_deref(),
        Some("https://shop.example.com")
    );
    app.teardown().await;

    // The test (and production) configuration allows no origin.
    let app = spawn_app().await;
    let r = preflight(&app, "http://localhost:3000").await;
    assert_eq!(allowed_origin(&r), None);
    app.teardown().await;
}

#[tokio::test]
async fn operations_are_counted_by_name_and_outcome() {
    let app = spawn_app().await;
    let ok = app
        .post_graphql("query Whatever { version }", json!({}), None)
        .await;
    assert!(ok.body.get("errors").is_none(), "{:?}", ok.body);
    app.post_graphql("{ me { id } version }", json!({}), None)
        .await
        .expect_code("UNAUTHENTICATED");
    app.post_graphql("{ nope }", json!({}), None).await;
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    let counted = |parts: &[&str]| {
        metrics.lines().any(|l| {
            l.starts_with("emporium_graphql_operations_total{")
                && parts.iter().all(|p| l.contains(p))
        })
    };
    // Named by its root fields, not by the client's operation name.
    assert!(
        counted(&[
            "operation=\"version\"",
            "operation_type=\"query\"",
            "status=\"ok\""
        ]),
        "{metrics}"
    );
    assert!(!metrics.contains("Whatever"));
    assert!(
        counted(&["operation=\"me,version\"", "status=\"error\""]),
        "{metrics}"
    );
    // A field that does not exist never becomes a label.
    assert!(
        counted(&["operation=\"invalid\"", "status=\"rejected\""]),
        "{metrics}"
    );
    assert!(!metrics.contains("nope"));
    assert!(
        metrics.lines().any(
            |l| l.starts_with("emporium_graphql_operation_duration_seconds")
                && l.contains("operation=\"version\"")
        ),
        "{metrics}"
    );
    app.teardown().await;
}

/// Counts the SQL statements that read `catalog_products`, from sqlx's own
/// per-statement events (target `sqlx::query`), on this test's thread.
#[derive(Clone, Default)]
struct CatalogReads(Arc<AtomicUsize>);

struct StatementVisitor(bool);

impl tracing::field::Visit for StatementVisitor {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if matches!(field.name(), "summary" | "db.statement") && value.contains("catalog_products")
        {
            self.0 = true;
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if matches!(field.name(), "summary" | "db.statement")
            && format!("{value:?}").contains("catalog_products")
        {
            self.0 = true;
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CatalogReads {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() == "sqlx::query" {
            let mut visitor = StatementVisitor(false);
            event.record(&mut visitor);
            if visitor.0 {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

fn meta() -> EventMetadata {
    EventMetadata::new(Uuid::new_v4(), Actor::System("test".into()), Utc::now())
}

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

#[tokio::test]
async fn a_page_of_orders_reads_their_products_in_one_query() {
    if crate::helpers::distributed_only(
        "SQLite's driver logs statements on its worker thread, out of reach of this test's \
         thread-local counting subscriber",
    ) {
        return;
    }
    let app = spawn_app().await;
    let (access, _) = app
        .signed_up("ada@example.com", "correct horse battery")
        .await;
    let me = app
        .post_graphql("{ me { id } }", json!({}), Some(&access))
        .await;
    let customer: Uuid = me.ok("me")["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");

    let store = app.store().clone();
    let products = Products::over(store.clone());
    let orders = Dispatcher::<Order, AnyStore>::over(store.clone(), Loading::Replay);
    let mut last = 0;
    let mut ids = Vec::new();
    for i in 0..10 {
        let id = Uuid::new_v4();
        for command in [
            ProductCommand::CreateProduct {
                product_id: id,
                sku: Sku::parse(&format!("DL-{i}")).expect("sku"),
                slug: Slug::parse(&format!("dl-{i}")).expect("slug"),
                name: ProductName::parse(&format!("Loaded {i}")).expect("name"),
                description: Description::parse("Batched.").expect("description"),
                category_id: Uuid::new_v4(),
                tags: std::collections::BTreeSet::new(),
                attributes: Attributes::default(),
                price: eur(1_000 + i),
                at: Utc::now(),
            },
            ProductCommand::AddImage {
                image_id: Uuid::new_v4(),
                source: ImageSource::key("products/dl/front.jpg").expect("source"),
                alt_text: AltText::parse("Front").expect("alt"),
                primary: true,
                at: Utc::now(),
            },
            ProductCommand::PublishProduct { at: Utc::now() },
        ] {
            let c = products
                .execute(id, command, &meta())
                .await
                .expect("product");
            last = last.max(c.position.unwrap_or(0));
        }
        ids.push(id);
    }
    let address = Address::parse(AddressInput {
        full_name: "Ada Lovelace".into(),
        line1: "12 St James's Square".into(),
        city: "London".into(),
        postal_code: "SW1Y 4JH".into(),
        country: "GB".into(),
        ..AddressInput::default()
    })
    .expect("address");
    for pair in ids.chunks(2) {
        let order_id = Uuid::new_v4();
        let lines = pair
            .iter()
            .enumerate()
            .map(|(n, product)| OrderLine {
                sku: Sku::parse(&format!("DL-LINE-{n}")).expect("sku"),
                product_id: *product,
                name: "As sold".into(),
                unit_price: eur(1_000),
                quantity: Quantity::new(1).expect("quantity"),
                line_total: eur(1_000),
            })
            .collect();
        let c = orders
            .execute(
                &order_id.to_string(),
                OrderCommand::PlaceOrder {
                    order_id,
                    customer_id: customer,
                    lines,
                    tax_total: eur(0),
                    shipping_total: eur(0),
                    discount_total: eur(0),
                    shipping_address: address.clone(),
                    billing_address: address.clone(),
                    currency: Currency::EUR,
                    at: Utc::now(),
                },
                &meta(),
            )
            .await
            .expect("order");
        last = last.max(c.position.unwrap_or(0));
    }
    let watch = app.watch().await;
    for projection in ["catalog", "orders"] {
        watch
            .wait_for_position(projection, last, Duration::from_secs(30))
            .await
            .expect("projected");
    }

    let reads = CatalogReads::default();
    let _counting =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(reads.clone()));
    let page = |first: i64| {
        app.post_graphql(
            "query($f: Int!) { myOrders(first: $f) { nodes { lines { productId product { id name price { amountMinor } } } } } }",
            json!({ "f": first }),
            Some(&access),
        )
    };
    for (first, lines) in [(5, 10), (1, 2), (5, 10)] {
        let before = reads.0.load(Ordering::SeqCst);
        let r = page(first).await;
        let read = reads.0.load(Ordering::SeqCst) - before;
        let nodes = r.ok("myOrders")["nodes"].as_array().expect("nodes").clone();
        let seen: Vec<&Value> = nodes
            .iter()
            .flat_map(|o| o["lines"].as_array().expect("lines"))
            .collect();
        assert_eq!(seen.len(), lines);
        for line in &seen {
            assert_eq!(line["product"]["id"], line["productId"], "{line}");
            assert!(
                line["product"]["name"]
                    .as_str()
                    .expect("name")
                    .starts_with("Loaded")
            );
        }
        assert_eq!(
            read, 1,
            "{first} orders with {lines} lines read catalog_products {read} times"
        );
    }
    app.teardown().await;
}
