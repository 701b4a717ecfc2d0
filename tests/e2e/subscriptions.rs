//! Subscriptions over a real WebSocket (`graphql-transport-ws` at `/graphql/ws`):
//! order status changes and new notifications reach the viewer, and only the viewer;
//! a connection without a valid token is refused; an expired token ends the stream;
//! the query-shape limits apply.
//!
//! Orders are placed and moved through `Dispatcher<Order, AnyStore>` on the test's database; the
//! application's in-process relay and projections carry the change to the read model
//! the subscription follows. Every wait is for a message, bounded by a deadline.

use std::time::Duration;

use chrono::Utc;
use emporium_commands::{AnyStore, Dispatcher, Loading};
use emporium_domain::metadata::Actor;
use emporium_domain::order::{Order, OrderCommand, OrderLine};
use emporium_domain::{Address, AddressInput, Currency, EventMetadata, Money, Quantity, Sku};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

use crate::helpers::{TestApp, replica, spawn_app, spawn_app_with};

const WAIT: Duration = Duration::from_secs(30);
const UPDATE_FIELDS: &str = "orderId status step at currentStatus order { id status }";

/// What the server sent.
#[derive(Debug)]
enum Incoming {
    Json(Value),
    Closed(u16, String),
}

struct Ws {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    async fn connect(app: &TestApp) -> Self {
        Self::connect_to(&app.address).await
    }

    async fn connect_to(address: &str) -> Self {
        let url = format!("{}/graphql/ws", address.replacen("http://", "ws://", 1));
        let mut request = url.into_client_request().expect("request");
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().expect("header"),
        );
        let (socket, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("websocket upgrade");
        assert_eq!(
            response
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some("graphql-transport-ws")
        );
        Self { socket }
    }

    /// Connects and sends `connection_init` with `payload`; returns the first answer.
    async fn open(app: &TestApp, payload: Value) -> (Self, Incoming) {
        let mut ws = Self::connect(app).await;
        ws.send(json!({ "type": "connection_init", "payload": payload }))
            .await;
        let answer = ws.recv().await;
        (ws, answer)
    }

    /// A connection acknowledged for `access`.
    async fn signed_in(app: &TestApp, access: &str) -> Self {
        let (ws, answer) =
            Self::open(app, json!({ "authorization": format!("Bearer {access}") })).await;
        match answer {
            Incoming::Json(v) => assert_eq!(v["type"], "connection_ack", "{v}"),
            other => panic!("not acknowledged: {other:?}"),
        }
        ws
    }

    async fn send(&mut self, value: Value) {
        self.socket
            .send(Message::Text(value.to_string().into()))
            .await
            .expect("send");
    }

    async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({
            "id": id,
            "type": "subscribe",
            "payload": { "query": query, "variables": variables },
        }))
        .await;
    }

    /// The next protocol message (pings answered), or how the connection closed.
    async fn recv(&mut self) -> Incoming {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let message = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .expect("a message within the deadline");
            match message {
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(&text).expect("json");
                    if value["type"] == "ping" {
                        self.send(json!({ "type": "pong" })).await;
                        continue;
                    }
                    return Incoming::Json(value);
                }
                Some(Ok(Message::Close(frame))) => {
                    return frame.map_or((1005, String::new()).into(), |f| {
                        (u16::from(f.code), f.reason.to_string()).into()
                    });
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Incoming::Closed(1006, String::new()),
            }
        }
    }

    /// The next message, which must be `next` for subscription `id`: its payload.
    async fn next(&mut self, id: &str) -> Value {
        match self.recv().await {
            Incoming::Json(v) if v["type"] == "next" && v["id"] == id => v["payload"].clone(),
            other => panic!("expected next for {id}, got {other:?}"),
        }
    }

    /// The next message, which must be `complete` for `id`.
    async fn complete(&mut self, id: &str) {
        match self.recv().await {
            Incoming::Json(v) if v["type"] == "complete" && v["id"] == id => {}
            other => panic!("expected complete for {id}, got {other:?}"),
        }
    }
}

impl From<(u16, String)> for Incoming {
    fn from((code, reason): (u16, String)) -> Self {
        Self::Closed(code, reason)
    }
}

fn meta() -> EventMetadata {
    EventMetadata::new(Uuid::new_v4(), Actor::System("test".into()), Utc::now())
}

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

/// Orders written straight into the test's event store.
struct Orders(Dispatcher<Order, AnyStore>);

impl Orders {
    async fn new(app: &TestApp) -> Self {
        Self(Dispatcher::over(app.store().clone(), Loading::Replay))
    }

    async fn run(&self, order_id: Uuid, command: OrderCommand) {
        self.0
            .execute(&order_id.to_string(), command, &meta())
            .await
            .expect("order command");
    }

    async fn place(&self, customer: Uuid) -> Uuid {
        let address = Address::parse(AddressInput {
            full_name: "Ada Lovelace".into(),
            line1: "12 St James's Square".into(),
            city: "London".into(),
            postal_code: "SW1Y 4JH".into(),
            country: "GB".into(),
            ..AddressInput::default()
        })
        .expect("address");
        let order_id = Uuid::new_v4();
        self.run(
            order_id,
            OrderCommand::PlaceOrder {
                order_id,
                customer_id: customer,
                lines: vec![OrderLine {
                    sku: Sku::parse("MUG-1").expect("sku"),
                    product_id: Uuid::new_v4(),
                    name: "Enamel mug".into(),
                    unit_price: eur(1_250),
                    quantity: Quantity::new(2).expect("quantity"),
                    line_total: eur(2_500),
                }],
                tax_total: eur(500),
                shipping_total: eur(400),
                discount_total: eur(0),
                shipping_address: address.clone(),
                billing_address: address,
                currency: Currency::EUR,
                at: Utc::now(),
            },
        )
        .await;
        order_id
    }
}

/// Registers a customer: (access token, user id).
async fn customer(app: &TestApp, email: &str) -> (String, Uuid) {
    let (access, _) = app.signed_up(email, "correct horse battery").await;
    let r = app
        .post_graphql("{ me { id } }", json!({}), Some(&access))
        .await;
    let id = r.ok("me")["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    (access, id)
}

/// Waits until `n` subscriptions to `feed` have read their starting point in this
/// process (both replicas of a test share it) (each e2e test runs in a process of its own under nextest): from then on
/// nothing they should see can be missed.
async fn started(app: &TestApp, feed: &str, n: u64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    let prefix = format!("emporium_subscriptions_started_total{{feed=\"{feed}\"}} ");
    loop {
        let metrics = app.get("/metrics").await.text().await.expect("metrics");
        let count: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if count >= n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{feed}: {count} of {n} subscriptions started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until `projection` has applied every event recorded so far.
async fn caught_up(app: &TestApp, projection: &str) {
    let last = crate::helpers::number(
        &app.events_db(),
        "SELECT coalesce(max(position), 0) FROM events",
        emporium_commands::args![],
    )
    .await;
    app.watch()
        .await
        .wait_for_position(projection, last, WAIT)
        .await
        .expect("caught up");
}

/// Polls `myOrders` until the order is in the read model.
async fn order_visible(app: &TestApp, access: &str, order_id: Uuid) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = app
            .post_graphql(
                "query($id: ID!) { order(id: $id) { id } }",
                json!({ "id": order_id.to_string() }),
                Some(access),
            )
            .await;
        if r.body["data"]["order"]["id"] == order_id.to_string() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "order never projected: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn order_status_changes_and_notifications_reach_the_viewer() {
    let app = spawn_app().await;
    let (access, user) = customer(&app, "ada@example.com").await;
    let orders = Orders::new(&app).await;
    let order = orders.place(user).await;
    order_visible(&app, &access, order).await;
    // The placed order's notification is in before the inbox subscription starts, so
    // only what follows is "new".
    caught_up(&app, "notifications").await;

    let mut ws = Ws::signed_in(&app, &access).await;
    ws.subscribe(
        "status",
        &format!("subscription($id: ID!) {{ myOrderStatus(orderId: $id) {{ {UPDATE_FIELDS} }} }}"),
        json!({ "id": order.to_string() }),
    )
    .await;
    // The order's current step comes first, so nothing before "subscribe" is lost.
    let first = ws.next("status").await;
    assert_eq!(
        first["data"]["myOrderStatus"]["orderId"],
        order.to_string(),
        "{first}"
    );
    assert_eq!(first["data"]["myOrderStatus"]["step"], "pending");
    assert_eq!(first["data"]["myOrderStatus"]["status"], "PENDING");
    assert_eq!(
        first["data"]["myOrderStatus"]["order"]["id"],
        order.to_string()
    );

    ws.subscribe(
        "inbox",
        "subscription { myNotifications { id kind title orderId read } }",
        json!({}),
    )
    .await;
    ws.subscribe(
        "all",
        &format!("subscription {{ myOrderUpdates {{ {UPDATE_FIELDS} }} }}"),
        json!({}),
    )
    .await;
    started(&app, "notifications", 1).await;
    started(&app, "orders", 2).await;
    for command in [
        OrderCommand::MarkStockReserved { at: Utc::now() },
        OrderCommand::PassFraudCheck {
            reasons: Vec::new(),
            risk_score: 5,
            at: Utc::now(),
        },
        OrderCommand::MarkPaid {
            payment_id: Uuid::new_v4(),
            amount: eur(3_400),
            at: Utc::now(),
        },
    ] {
        orders.run(order, command).await;
    }
    let mut steps = Vec::new();
    let mut all_steps = Vec::new();
    let mut notification = None;
    while steps.len() < 3 || all_steps.len() < 3 || notification.is_none() {
        match ws.recv().await {
            Incoming::Json(v) if v["type"] == "next" && v["id"] == "status" => {
                steps.push(v["payload"]["data"]["myOrderStatus"]["step"].clone());
            }
            Incoming::Json(v) if v["type"] == "next" && v["id"] == "all" => {
                let update = &v["payload"]["data"]["myOrderUpdates"];
                assert_eq!(update["orderId"], order.to_string());
                all_steps.push(update["step"].clone());
            }
            Incoming::Json(v) if v["type"] == "next" && v["id"] == "inbox" => {
                notification = Some(v["payload"]["data"]["myNotifications"].clone());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(steps, vec!["reserved", "awaiting_payment", "paid"]);
    assert_eq!(all_steps, steps);
    let notification = notification.expect("notification");
    assert_eq!(notification["kind"], "order_paid", "{notification}");
    assert_eq!(notification["orderId"], order.to_string());
    assert_eq!(notification["read"], false);
    app.teardown().await;
}

#[tokio::test]
async fn a_subscription_opened_before_the_orders_view_installs_starts_empty() {
    if crate::helpers::distributed_only("the embedded mode builds every view before it serves") {
        return;
    }
    let app = spawn_app().await;
    let (access, _) = customer(&app, "ada@example.com").await;
    // What a replica sees on a fresh database whose runner has not built the orders
    // view yet: no table and no checkpoint. (The app serves only once the view is
    // installed, and the runner does not build again while it runs.)
    let installed: Option<String> = sqlx::query_scalar("SELECT to_regclass('orders')::text")
        .fetch_one(app.db())
        .await
        .expect("look for the view");
    assert!(
        installed.is_some(),
        "the app serves with every view installed"
    );
    sqlx::query("DELETE FROM projection_checkpoints WHERE name = 'orders'")
        .execute(app.db())
        .await
        .expect("forget the checkpoint");
    sqlx::query("DROP TABLE orders")
        .execute(app.db())
        .await
        .expect("drop the view");
    let mut ws = Ws::signed_in(&app, &access).await;
    ws.subscribe(
        "all",
        &format!("subscription {{ myOrderUpdates {{ {UPDATE_FIELDS} }} }}"),
        json!({}),
    )
    .await;
    started(&app, "orders", 1).await;
    ws.subscribe(
        "one",
        &format!("subscription($id: ID!) {{ myOrderStatus(orderId: $id) {{ {UPDATE_FIELDS} }} }}"),
        json!({ "id": Uuid::new_v4().to_string() }),
    )
    .await;
    let missing = ws.next("one").await;
    assert_eq!(
        missing["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{missing}"
    );
    app.teardown().await;
}

#[tokio::test]
async fn another_users_order_is_not_found_and_their_changes_never_arrive() {
    let app = spawn_app().await;
    let (ada_access, ada) = customer(&app, "ada@example.com").await;
    let (bob_access, bob) = customer(&app, "bob@example.com").await;
    let orders = Orders::new(&app).await;
    let adas = orders.place(ada).await;
    order_visible(&app, &ada_access, adas).await;

    let mut bob_ws = Ws::signed_in(&app, &bob_access).await;
    bob_ws
        .subscribe(
            "foreign",
            &format!(
                "subscription($id: ID!) {{ myOrderStatus(orderId: $id) {{ {UPDATE_FIELDS} }} }}"
            ),
            json!({ "id": adas.to_string() }),
        )
        .await;
    let refused = bob_ws.next("foreign").await;
    assert_eq!(refused["data"], Value::Null, "{refused}");
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{refused}"
    );
    bob_ws.complete("foreign").await;
    // A missing order answers the same.
    bob_ws
        .subscribe(
            "missing",
            &format!(
                "subscription($id: ID!) {{ myOrderStatus(orderId: $id) {{ {UPDATE_FIELDS} }} }}"
            ),
            json!({ "id": Uuid::new_v4().to_string() }),
        )
        .await;
    let missing = bob_ws.next("missing").await;
    assert_eq!(missing["errors"][0]["extensions"]["code"], "NOT_FOUND");
    assert_eq!(
        missing["errors"][0]["message"],
        refused["errors"][0]["message"]
    );
    bob_ws.complete("missing").await;

    // Bob follows his own orders and notifications; Ada's change and then Bob's own
    // happen in that order, so Ada's would arrive first if it leaked.
    bob_ws
        .subscribe(
            "mine",
            &format!("subscription {{ myOrderUpdates {{ {UPDATE_FIELDS} }} }}"),
            json!({}),
        )
        .await;
    bob_ws
        .subscribe(
            "inbox",
            "subscription { myNotifications { id kind orderId } }",
            json!({}),
        )
        .await;
    started(&app, "orders", 1).await;
    started(&app, "notifications", 1).await;
    let mut ada_ws = Ws::signed_in(&app, &ada_access).await;
    ada_ws
        .subscribe(
            "ada",
            &format!(
                "subscription($id: ID!) {{ myOrderStatus(orderId: $id) {{ {UPDATE_FIELDS} }} }}"
            ),
            json!({ "id": adas.to_string() }),
        )
        .await;
    assert_eq!(
        ada_ws.next("ada").await["data"]["myOrderStatus"]["step"],
        "pending"
    );
    orders
        .run(adas, OrderCommand::MarkStockReserved { at: Utc::now() })
        .await;
    orders
        .run(
            adas,
            OrderCommand::CancelOrder {
                reason: emporium_domain::order::CancellationReason::CustomerRequest,
                at: Utc::now(),
            },
        )
        .await;
    assert_eq!(
        ada_ws.next("ada").await["data"]["myOrderStatus"]["step"],
        "reserved"
    );
    assert_eq!(
        ada_ws.next("ada").await["data"]["myOrderStatus"]["step"],
        "cancelled"
    );

    let bobs = orders.place(bob).await;
    let mut got_order = false;
    let mut got_notice = false;
    while !(got_order && got_notice) {
        match bob_ws.recv().await {
            Incoming::Json(v) if v["type"] == "next" && v["id"] == "mine" => {
                let update = &v["payload"]["data"]["myOrderUpdates"];
                assert_eq!(
                    update["orderId"],
                    bobs.to_string(),
                    "Ada's change leaked: {v}"
                );
                assert_eq!(update["step"], "pending");
                got_order = true;
            }
            Incoming::Json(v) if v["type"] == "next" && v["id"] == "inbox" => {
                let notice = &v["payload"]["data"]["myNotifications"];
                assert_eq!(
                    notice["orderId"],
                    bobs.to_string(),
                    "Ada's notice leaked: {v}"
                );
                assert_eq!(notice["kind"], "order_placed");
                got_notice = true;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    app.teardown().await;
}

#[tokio::test]
async fn a_connection_without_a_valid_token_is_refused() {
    let app = spawn_app().await;
    for payload in [
        json!({}),
        json!({ "authorization": "Bearer not-a-token" }),
        json!({ "authorization": "Basic YWRhOnB3" }),
    ] {
        let (_, answer) = Ws::open(&app, payload.clone()).await;
        match answer {
            Incoming::Closed(code, reason) => {
                assert_eq!(code, 1002, "{payload}: {reason}");
            }
            Incoming::Json(v) => panic!("{payload}: not refused: {v}"),
        }
    }
    // Subscribing before `connection_init` is refused too.
    let mut ws = Ws::connect(&app).await;
    ws.subscribe("x", "subscription { myNotifications { id } }", json!({}))
        .await;
    assert!(matches!(ws.recv().await, Incoming::Closed(..)));
    app.teardown().await;
}

#[tokio::test]
async fn an_expired_token_ends_the_stream() {
    let app = spawn_app_with(|s| s.auth.access_token_ttl_seconds = 2).await;
    let (access, _) = customer(&app, "ada@example.com").await;
    let mut ws = Ws::signed_in(&app, &access).await;
    ws.subscribe(
        "inbox",
        "subscription { myNotifications { id } }",
        json!({}),
    )
    .await;
    let ended = ws.next("inbox").await;
    assert_eq!(
        ended["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{ended}"
    );
    ws.complete("inbox").await;
    // A new subscription on the connection ends at once.
    ws.subscribe(
        "again",
        "subscription { myNotifications { id } }",
        json!({}),
    )
    .await;
    let again = ws.next("again").await;
    assert_eq!(again["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    ws.complete("again").await;
    app.teardown().await;
}

#[tokio::test]
async fn subscriptions_obey_the_query_shape_limits() {
    // Deep enough to sign up (`register { user { id } }`), not for this.
    let app = spawn_app_with(|s| s.limits.max_depth = 3).await;
    let (access, _) = customer(&app, "ada@example.com").await;
    let mut ws = Ws::signed_in(&app, &access).await;
    ws.subscribe(
        "deep",
        "subscription($id: ID!) { myOrderStatus(orderId: $id) { order { lines { sku } } } }",
        json!({ "id": Uuid::new_v4().to_string() }),
    )
    .await;
    let refused = ws.next("deep").await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "LIMIT_EXCEEDED",
        "{refused}"
    );
    assert_eq!(refused["errors"][0]["extensions"]["limit"], "depth");
    ws.complete("deep").await;
    app.teardown().await;
}

#[tokio::test]
async fn a_replica_without_a_backbone_serves_subscriptions_from_the_same_feed() {
    if crate::helpers::distributed_only("one process owns the embedded mode's files") {
        return;
    }
    let app = spawn_app().await;
    let (access, user) = customer(&app, "ada@example.com").await;
    let (address, stop, server) = replica(&app).await;
    let mut ws = Ws::connect_to(&address).await;
    ws.send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {access}") } }))
        .await;
    match ws.recv().await {
        Incoming::Json(v) => assert_eq!(v["type"], "connection_ack", "{v}"),
        other => panic!("not acknowledged: {other:?}"),
    }
    ws.subscribe(
        "all",
        &format!("subscription {{ myOrderUpdates {{ {UPDATE_FIELDS} }} }}"),
        json!({}),
    )
    .await;
    ws.subscribe(
        "inbox",
        "subscription { myNotifications { kind orderId } }",
        json!({}),
    )
    .await;
    started(&app, "orders", 1).await;
    started(&app, "notifications", 1).await;
    // The change is projected by the first app's backbone; the replica hears the
    // checkpoint through PostgreSQL.
    let orders = Orders::new(&app).await;
    let order = orders.place(user).await;
    let mut got = (false, false);
    while got != (true, true) {
        match ws.recv().await {
            Incoming::Json(v) if v["type"] == "next" && v["id"] == "all" => {
                let update = &v["payload"]["data"]["myOrderUpdates"];
                assert_eq!(update["orderId"], order.to_string(), "{v}");
                assert_eq!(update["step"], "pending");
                got.0 = true;
            }
            Incoming::Json(v) if v["type"] == "next" && v["id"] == "inbox" => {
                assert_eq!(
                    v["payload"]["data"]["myNotifications"]["kind"], "order_placed",
                    "{v}"
                );
                got.1 = true;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let _ = stop.send(());
    server
        .await
        .expect("replica task")
        .expect("replica stopped");
    app.teardown().await;
}
