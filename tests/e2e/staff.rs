//! The back office over HTTP: staff catalogue, category, stock and order operations
//! and the staff listings, each answering with its own write; customers and
//! anonymous callers are refused before anything is recorded.
//!
//! Everything is created through the staff mutations themselves, except orders,
//! which only checkout creates: those are seeded through `Dispatcher<Order, AnyStore>` on the
//! test's database, and the tests wait on the `orders` checkpoint (never a sleep).

use std::time::Duration;

use chrono::Utc;
use emporium_commands::{AnyStore, Dispatcher, Loading};
use emporium_domain::metadata::Actor;
use emporium_domain::order::{Order, OrderCommand, OrderLine};
use emporium_domain::{Address, AddressInput, Currency, EventMetadata, Money, Quantity, Sku};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Gql, TestApp, spawn_app};

pub(crate) const PRODUCT_FIELDS: &str = "id sku slug name description status featured categoryId tags price { amountMinor currency } minPrice { amountMinor } maxPrice { amountMinor } variants { id sku size colour price { amountMinor } } images { id source altText primary } primaryImage { id }";
const CATEGORY_FIELDS: &str =
    "id name slug path depth parentId children { id slug children { id slug } }";
const LEVEL_FIELDS: &str =
    "sku productId onHand reserved available lowStockThreshold lowStock updatedAt";
const STAFF_ORDER_FIELDS: &str = "customerId riskScore paymentId order { id status trackingNumber grandTotal { amountMinor } history { status } }";

/// Every event recorded so far.
pub(crate) async fn event_count(app: &TestApp) -> i64 {
    crate::helpers::number(
        &app.events_db(),
        "SELECT count(*) FROM events",
        emporium_commands::args![],
    )
    .await
}

/// Runs `query` with `variables` as `bearer`.
pub(crate) async fn gql(app: &TestApp, bearer: Option<&str>, query: &str, variables: Value) -> Gql {
    app.post_graphql(query, variables, bearer).await
}

/// Creates a root category as staff; returns its id.
pub(crate) async fn category(
    app: &TestApp,
    staff: &str,
    slug: &str,
    parent: Option<&str>,
) -> String {
    let r = gql(
        app,
        Some(staff),
        &format!("mutation($n: String!, $s: String!, $p: ID) {{ createCategory(name: $n, slug: $s, parentId: $p) {{ {CATEGORY_FIELDS} }} }}"),
        json!({ "n": slug.to_uppercase(), "s": slug, "p": parent }),
    )
    .await;
    r.ok("createCategory")["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

/// Creates a draft product as staff.
pub(crate) async fn create_product(app: &TestApp, staff: &str, input: Value) -> Gql {
    gql(
        app,
        Some(staff),
        &format!("mutation($i: CreateProductInput!) {{ createProduct(input: $i) {{ {PRODUCT_FIELDS} }} }}"),
        json!({ "i": input }),
    )
    .await
}

pub(crate) fn product_input(sku: &str, slug: &str, category: &str, price: i64) -> Value {
    json!({
        "sku": sku,
        "slug": slug,
        "name": format!("Product {sku}"),
        "description": "Made for tests.",
        "categoryId": category,
        "tags": ["Sale"],
        "attributes": [{ "name": "material", "value": "wool" }],
        "price": { "amountMinor": price, "currency": "EUR" },
    })
}

/// A published product (with an image) as staff; returns its id.
pub(crate) async fn published_product(
    app: &TestApp,
    staff: &str,
    sku: &str,
    category: &str,
) -> String {
    let r = create_product(
        app,
        staff,
        product_input(sku, &sku.to_ascii_lowercase(), category, 1_500),
    )
    .await;
    let id = r.ok("createProduct")["id"].as_str().unwrap().to_owned();
    let r = product_op(
        app,
        staff,
        "addProductImage",
        "$source: String!, $alt: String!",
        "source: $source, altText: $alt",
        json!({ "productId": id, "source": "products/x/front.jpg", "alt": "Front" }),
    )
    .await;
    r.ok("addProductImage");
    let r = product_op(app, staff, "publishProduct", "", "", json!({ "id": id })).await;
    assert_eq!(r.ok("publishProduct")["status"], "PUBLISHED");
    id
}

/// Runs a product mutation `op` whose id argument is `id` (or `productId` when the
/// variables carry it) with extra arguments.
pub(crate) async fn product_op(
    app: &TestApp,
    staff: &str,
    op: &str,
    extra_params: &str,
    extra_args: &str,
    variables: Value,
) -> Gql {
    let (id_param, id_arg) = if variables.get("productId").is_some() {
        ("$productId: ID!", "productId: $productId")
    } else {
        ("$id: ID!", "id: $id")
    };
    let params = if extra_params.is_empty() {
        id_param.to_owned()
    } else {
        format!("{id_param}, {extra_params}")
    };
    let args = if extra_args.is_empty() {
        id_arg.to_owned()
    } else {
        format!("{id_arg}, {extra_args}")
    };
    gql(
        app,
        Some(staff),
        &format!("mutation({params}) {{ {op}({args}) {{ {PRODUCT_FIELDS} }} }}"),
        variables,
    )
    .await
}

fn field(r: &Gql) -> Option<&str> {
    r.body["errors"][0]["extensions"]["field"].as_str()
}

fn rule(r: &Gql) -> Option<&str> {
    r.body["errors"][0]["extensions"]["rule"].as_str()
}

fn meta() -> EventMetadata {
    EventMetadata::new(
        Uuid::new_v4(),
        Actor::System("test-seed".into()),
        Utc::now(),
    )
}

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

/// Places a paid order of `customer` through the command layer and waits until the
/// `orders` and `notifications` read models have it. With `paid: false` it stays
/// pending.
pub(crate) async fn seed_order(app: &TestApp, customer: Uuid, paid: bool) -> Uuid {
    let store = app.store().clone();
    let orders: Dispatcher<Order, AnyStore> = Dispatcher::over(store.clone(), Loading::Replay);
    let watch = app.watch().await;
    let address = Address::parse(AddressInput {
        full_name: "Ada Lovelace".into(),
        line1: "12 St James's Square".into(),
        city: "London".into(),
        postal_code: "SW1Y 4JH".into(),
        country: "GB".into(),
        ..AddressInput::default()
    })
    .unwrap();
    let order_id = Uuid::new_v4();
    let mut commands = vec![OrderCommand::PlaceOrder {
        order_id,
        customer_id: customer,
        lines: vec![OrderLine {
            sku: Sku::parse("SEED-1").unwrap(),
            product_id: Uuid::new_v4(),
            name: "Seeded thing".into(),
            unit_price: eur(1_000),
            quantity: Quantity::new(2).unwrap(),
            line_total: eur(2_000),
        }],
        tax_total: eur(0),
        shipping_total: eur(500),
        discount_total: eur(0),
        shipping_address: address.clone(),
        billing_address: address,
        currency: Currency::EUR,
        at: Utc::now(),
    }];
    if paid {
        commands.extend([
            OrderCommand::MarkStockReserved { at: Utc::now() },
            OrderCommand::PassFraudCheck {
                reasons: Vec::new(),
                risk_score: 7,
                at: Utc::now(),
            },
            OrderCommand::MarkPaid {
                payment_id: Uuid::new_v4(),
                amount: eur(2_500),
                at: Utc::now(),
            },
        ]);
    }
    let mut last = 0;
    for command in commands {
        let c = orders
            .execute(&order_id.to_string(), command, &meta())
            .await
            .expect("order command");
        last = last.max(c.position.unwrap_or(0));
    }
    for projection in ["orders", "notifications"] {
        watch
            .wait_for_position(projection, last, Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("{projection}: {e}"));
    }
    order_id
}

/// Runs `query` until `done` holds for its answer or 30 s pass (a read model that
/// the operation under test did not wait for may lag a little).
pub(crate) async fn poll(
    app: &TestApp,
    bearer: Option<&str>,
    query: &str,
    variables: Value,
    done: impl Fn(&Gql) -> bool,
) -> Gql {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = gql(app, bearer, query, variables.clone()).await;
        if done(&r) || std::time::Instant::now() > deadline {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The user id of an access token (its `sub`), from `me`.
pub(crate) async fn user_id(app: &TestApp, access: &str) -> Uuid {
    let r = app.me(Some(access)).await;
    r.ok("me")["id"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn customers_and_anonymous_callers_cannot_use_staff_operations_and_record_nothing() {
    let app = spawn_app().await;
    let (customer, _) = app
        .signed_up("cust@example.com", "correct horse battery")
        .await;
    let staff = app
        .staff_signed_up("staff@example.com", "correct horse battery")
        .await;
    let category_id = category(&app, &staff, "kitchen", None).await;
    let product_id = published_product(&app, &staff, "MUG-1", &category_id).await;
    let order_id = seed_order(&app, user_id(&app, &customer).await, true).await;
    let before = event_count(&app).await;

    let calls: Vec<(String, Value)> = vec![
        ("mutation($i: CreateProductInput!) { createProduct(input: $i) { id } }".into(), json!({ "i": product_input("NEW-1", "new-1", &category_id, 100) })),
        ("mutation($id: ID!) { updateProduct(id: $id, input: { name: \"X\" }) { id } }".into(), json!({ "id": product_id })),
        ("mutation($id: ID!) { deleteProduct(id: $id) { id } }".into(), json!({ "id": product_id })),
        ("mutation($id: ID!) { changeProductPrice(id: $id, price: { amountMinor: 1, currency: \"EUR\" }) { id } }".into(), json!({ "id": product_id })),
        ("mutation($id: ID!) { unpublishProduct(id: $id) { id } }".into(), json!({ "id": product_id })),
        ("mutation($id: ID!) { featureProduct(id: $id) { id } }".into(), json!({ "id": product_id })),
        ("mutation($id: ID!) { addVariant(productId: $id, input: { sku: \"V-1\", price: { amountMinor: 1, currency: \"EUR\" } }) { id } }".into(), json!({ "id": product_id })),
        ("mutation($id: ID!) { addProductImage(productId: $id, source: \"a/b.jpg\", altText: \"x\") { id } }".into(), json!({ "id": product_id })),
        ("mutation { createCategory(name: \"X\", slug: \"x\") { id } }".into(), json!({})),
        ("mutation($id: ID!) { renameCategory(id: $id, name: \"Y\") { id } }".into(), json!({ "id": category_id })),
        ("mutation($id: ID!) { moveCategory(id: $id) { id } }".into(), json!({ "id": category_id })),
        ("mutation($id: ID!) { deleteCategory(id: $id) { id } }".into(), json!({ "id": category_id })),
        ("mutation { receiveStock(sku: \"MUG-1\", quantity: 5) { sku } }".into(), json!({})),
        ("mutation { adjustStock(sku: \"MUG-1\", delta: 5, reason: FOUND) { sku } }".into(), json!({})),
        ("mutation { setLowStockThreshold(sku: \"MUG-1\", threshold: 5) { sku } }".into(), json!({})),
        ("mutation($id: ID!) { shipOrder(id: $id, trackingNumber: \"T1\") { customerId } }".into(), json!({ "id": order_id })),
        ("mutation($id: ID!) { markOrderDelivered(id: $id) { customerId } }".into(), json!({ "id": order_id })),
        ("{ customers { nodes { email } } }".into(), json!({})),
        ("{ orders { nodes { customerId } } }".into(), json!({})),
        ("query($id: ID!) { staffOrder(id: $id) { customerId } }".into(), json!({ "id": order_id })),
        ("{ inventoryLevels { nodes { sku } } }".into(), json!({})),
        ("{ lowStock { sku } }".into(), json!({})),
    ];
    for (query, variables) in &calls {
        let r = gql(&app, Some(&customer), query, variables.clone()).await;
        r.expect_code("FORBIDDEN");
        assert!(
            r.body["data"].is_null()
                || r.body["data"]
                    .as_object()
                    .is_some_and(|d| d.values().all(Value::is_null)),
            "{query}: {}",
            r.body
        );
        let r = gql(&app, None, query, variables.clone()).await;
        r.expect_code("UNAUTHENTICATED");
    }
    assert_eq!(
        event_count(&app).await,
        before,
        "a refused call recorded something"
    );
    // The product is untouched.
    let r = gql(
        &app,
        None,
        "query($id: ID!) { product(id: $id) { status name } }",
        json!({ "id": product_id }),
    )
    .await;
    assert_eq!(r.ok("product")["status"], "PUBLISHED");
    app.teardown().await;
}

#[tokio::test]
async fn staff_build_a_product_and_each_change_answers_with_itself() {
    let app = spawn_app().await;
    let staff = app
        .staff_signed_up("staff@example.com", "correct horse battery")
        .await;
    let clothing = category(&app, &staff, "clothing", None).await;
    let knitwear = category(&app, &staff, "knitwear", Some(&clothing)).await;

    let r = create_product(
        &app,
        &staff,
        product_input("JUMPER-1", "wool-jumper", &knitwear, 4_900),
    )
    .await;
    let p = r.ok("createProduct");
    let id = p["id"].as_str().unwrap().to_owned();
    assert_eq!(p["status"], "DRAFT");
    assert_eq!(p["sku"], "JUMPER-1");
    assert_eq!(p["tags"], json!(["sale"]));
    assert_eq!(
        p["price"],
        json!({ "amountMinor": 4_900, "currency": "EUR" })
    );
    // A draft is not for sale.
    let r = gql(
        &app,
        None,
        "query($s: String!) { product(slug: $s) { id } }",
        json!({ "s": "wool-jumper" }),
    )
    .await;
    assert!(r.ok("product").is_null());

    let r = product_op(&app, &staff, "addVariant", "$i: AddVariantInput!", "input: $i", json!({
        "productId": id,
        "i": { "sku": "JUMPER-1-M", "size": "M", "colour": "Navy", "price": { "amountMinor": 5_200, "currency": "EUR" } },
    })).await;
    let p = r.ok("addVariant");
    assert_eq!(p["variants"][0]["sku"], "JUMPER-1-M");
    assert_eq!(p["maxPrice"]["amountMinor"], 5_200);
    let variant = p["variants"][0]["id"].as_str().unwrap().to_owned();

    let r = product_op(
        &app,
        &staff,
        "changeVariantPrice",
        "$v: ID!, $p: MoneyInput!",
        "variantId: $v, price: $p",
        json!({
            "productId": id, "v": variant, "p": { "amountMinor": 5_500, "currency": "EUR" },
        }),
    )
    .await;
    assert_eq!(
        r.ok("changeVariantPrice")["variants"][0]["price"]["amountMinor"],
        5_500
    );
    let r = product_op(
        &app,
        &staff,
        "updateVariant",
        "$v: ID!, $i: UpdateVariantInput!",
        "variantId: $v, input: $i",
        json!({
            "productId": id, "v": variant, "i": { "size": "L", "colour": null },
        }),
    )
    .await;
    let v = &r.ok("updateVariant")["variants"][0];
    assert_eq!(
        (v["size"].as_str(), v["colour"].as_str()),
        (Some("L"), None)
    );

    let r = product_op(
        &app,
        &staff,
        "changeProductPrice",
        "$p: MoneyInput!",
        "price: $p",
        json!({
            "id": id, "p": { "amountMinor": 4_500, "currency": "EUR" },
        }),
    )
    .await;
    let p = r.ok("changeProductPrice");
    assert_eq!(p["price"]["amountMinor"], 4_500);
    assert_eq!(p["minPrice"]["amountMinor"], 4_500);
    // The same price again is not an error and records nothing.
    let before = event_count(&app).await;
    let r = product_op(
        &app,
        &staff,
        "changeProductPrice",
        "$p: MoneyInput!",
        "price: $p",
        json!({
            "id": id, "p": { "amountMinor": 4_500, "currency": "EUR" },
        }),
    )
    .await;
    r.ok("changeProductPrice");
    assert_eq!(event_count(&app).await, before);
    // A float or another currency is refused.
    let r = product_op(
        &app,
        &staff,
        "changeProductPrice",
        "$p: MoneyInput!",
        "price: $p",
        json!({
            "id": id, "p": { "amountMinor": 45.5, "currency": "EUR" },
        }),
    )
    .await;
    assert!(r.body["errors"].is_array(), "{}", r.body);
    let r = product_op(
        &app,
        &staff,
        "changeProductPrice",
        "$p: MoneyInput!",
        "price: $p",
        json!({
            "id": id, "p": { "amountMinor": 4_000, "currency": "USD" },
        }),
    )
    .await;
    r.expect_code("BAD_USER_INPUT");
    assert_eq!(rule(&r), Some("currency_mismatch"));

    // Publishing needs an image.
    let r = product_op(&app, &staff, "publishProduct", "", "", json!({ "id": id })).await;
    r.expect_code("FAILED_PRECONDITION");
    assert_eq!(rule(&r), Some("image_required"));
    let image = |source: &'static str, primary: bool| json!({ "productId": id, "s": source, "a": "Front", "p": primary });
    let params = "$s: String!, $a: String!, $p: Boolean!";
    let args = "source: $s, altText: $a, primary: $p";
    let r = product_op(
        &app,
        &staff,
        "addProductImage",
        params,
        args,
        image("https://cdn.example/jumper-front.jpg", false),
    )
    .await;
    let p = r.ok("addProductImage");
    assert_eq!(
        p["images"][0]["primary"], true,
        "the first image is primary"
    );
    let first_image = p["images"][0]["id"].as_str().unwrap().to_owned();
    let r = product_op(
        &app,
        &staff,
        "addProductImage",
        params,
        args,
        image("products/jumper/back.jpg", false),
    )
    .await;
    let p = r.ok("addProductImage");
    let second_image = p["images"][1]["id"].as_str().unwrap().to_owned();
    let r = product_op(
        &app,
        &staff,
        "setPrimaryProductImage",
        "$i: ID!",
        "imageId: $i",
        json!({ "productId": id, "i": second_image }),
    )
    .await;
    assert_eq!(
        r.ok("setPrimaryProductImage")["primaryImage"]["id"],
        second_image.as_str()
    );
    let r = product_op(
        &app,
        &staff,
        "removeProductImage",
        "$i: ID!",
        "imageId: $i",
        json!({ "productId": id, "i": first_image }),
    )
    .await;
    assert_eq!(
        r.ok("removeProductImage")["images"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let r = product_op(
        &app,
        &staff,
        "removeProductImage",
        "$i: ID!",
        "imageId: $i",
        json!({ "productId": id, "i": first_image }),
    )
    .await;
    r.expect_code("NOT_FOUND");

    let r = product_op(&app, &staff, "publishProduct", "", "", json!({ "id": id })).await;
    assert_eq!(r.ok("publishProduct")["status"], "PUBLISHED");
    let r = product_op(&app, &staff, "featureProduct", "", "", json!({ "id": id })).await;
    assert_eq!(r.ok("featureProduct")["featured"], true);
    let r = gql(&app, None, "{ featuredProducts { id } }", json!({})).await;
    assert_eq!(r.ok("featuredProducts")[0]["id"], id.as_str());

    let r = product_op(&app, &staff, "updateProduct", "$i: UpdateProductInput!", "input: $i", json!({
        "id": id, "i": { "name": "Navy wool jumper", "slug": "navy-wool-jumper", "categoryId": clothing },
    })).await;
    let p = r.ok("updateProduct");
    assert_eq!(p["name"], "Navy wool jumper");
    assert_eq!(p["slug"], "navy-wool-jumper");
    assert_eq!(p["categoryId"], clothing.as_str());
    assert_eq!(
        p["description"], "Made for tests.",
        "omitted fields are kept"
    );
    for slug in ["navy-wool-jumper", "wool-jumper"] {
        let r = gql(
            &app,
            None,
            "query($s: String!) { product(slug: $s) { id name } }",
            json!({ "s": slug }),
        )
        .await;
        assert_eq!(r.ok("product")["id"], id.as_str(), "{slug}");
    }

    let r = product_op(
        &app,
        &staff,
        "removeVariant",
        "$v: ID!",
        "variantId: $v",
        json!({ "productId": id, "v": variant }),
    )
    .await;
    assert_eq!(r.ok("removeVariant")["variants"], json!([]));
    let r = product_op(
        &app,
        &staff,
        "unfeatureProduct",
        "",
        "",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(r.ok("unfeatureProduct")["featured"], false);
    let r = product_op(&app, &staff, "deleteProduct", "", "", json!({ "id": id })).await;
    assert_eq!(r.ok("deleteProduct")["status"], "ARCHIVED");
    let r = gql(
        &app,
        None,
        "query($id: ID!) { product(id: $id) { id } }",
        json!({ "id": id }),
    )
    .await;
    assert!(
        r.ok("product").is_null(),
        "an archived product is not for sale"
    );
    let r = product_op(&app, &staff, "publishProduct", "", "", json!({ "id": id })).await;
    r.expect_code("FAILED_PRECONDITION");
    assert_eq!(rule(&r), Some("product_archived"));
    let r = product_op(
        &app,
        &staff,
        "publishProduct",
        "",
        "",
        json!({ "id": Uuid::new_v4() }),
    )
    .await;
    r.expect_code("NOT_FOUND");
    app.teardown().await;
}

#[tokio::test]
async fn a_taken_sku_or_slug_is_a_conflict_and_bad_input_names_its_field_with_nothing_recorded() {
    let app = spawn_app().await;
    let staff = app
        .staff_signed_up("staff@example.com", "correct horse battery")
        .await;
    let cat = category(&app, &staff, "kitchen", None).await;
    let r = create_product(&app, &staff, product_input("MUG-1", "mug", &cat, 1_200)).await;
    let mug = r.ok("createProduct")["id"].as_str().unwrap().to_owned();
    let keys = || async {
        crate::helpers::number(
            &app.events_db(),
            "SELECT count(*) FROM unique_keys",
            emporium_commands::args![],
        )
        .await
    };
    let (events, claims) = (event_count(&app).await, keys().await);

    // Same SKU, fresh slug: refused, and the fresh slug is not left claimed.
    let r = create_product(
        &app,
        &staff,
        product_input("MUG-1", "other-mug", &cat, 1_200),
    )
    .await;
    r.expect_code("CONFLICT");
    assert_eq!(field(&r), Some("input.sku"));
    assert!(r.body["data"].is_null(), "{}", r.body);
    // Same slug, fresh SKU.
    let r = create_product(&app, &staff, product_input("MUG-2", "mug", &cat, 1_200)).await;
    r.expect_code("CONFLICT");
    assert_eq!(field(&r), Some("input.slug"));
    // A variant cannot take a product's SKU either.
    let r = product_op(&app, &staff, "addVariant", "$i: AddVariantInput!", "input: $i", json!({
        "productId": mug, "i": { "sku": "MUG-1", "price": { "amountMinor": 1, "currency": "EUR" } },
    })).await;
    r.expect_code("CONFLICT");
    assert_eq!(field(&r), Some("input.sku"));

    for (input, expected_field, expected_rule) in [
        (
            product_input("BAD SKU!", "s1", &cat, 1),
            "input.sku",
            "sku_format",
        ),
        (
            product_input("OK-1", "Not A Slug", &cat, 1),
            "input.slug",
            "slug_format",
        ),
        (
            product_input("OK-2", "s2", &cat, -5),
            "input.price.amountMinor",
            "price_negative",
        ),
        (
            product_input("OK-3", "s3", &Uuid::new_v4().to_string(), 1),
            "input.categoryId",
            "category_unknown",
        ),
        (
            json!({ "sku": "OK-4", "slug": "s4", "name": " ", "categoryId": cat, "price": { "amountMinor": 1, "currency": "EUR" } }),
            "input.name",
            "text_invalid",
        ),
        (
            json!({ "sku": "OK-5", "slug": "s5", "name": "n", "categoryId": cat, "price": { "amountMinor": 1, "currency": "XXX" } }),
            "input.price.currency",
            "currency_invalid",
        ),
    ] {
        let r = create_product(&app, &staff, input).await;
        r.expect_code("BAD_USER_INPUT");
        assert_eq!(
            (field(&r), rule(&r)),
            (Some(expected_field), Some(expected_rule)),
            "{}",
            r.body
        );
    }
    assert_eq!(
        event_count(&app).await,
        events,
        "a refused create recorded something"
    );
    assert_eq!(keys().await, claims, "a refused create left a claim");

    // The slug and SKU that were refused along with a taken partner are still free.
    let r = create_product(
        &app,
        &staff,
        product_input("MUG-2", "other-mug", &cat, 1_200),
    )
    .await;
    assert_eq!(r.ok("createProduct")["slug"], "other-mug");
    let r = product_op(
        &app,
        &staff,
        "updateProduct",
        "$i: UpdateProductInput!",
        "input: $i",
        json!({
            "id": mug, "i": { "slug": "other-mug", "name": "Renamed" },
        }),
    )
    .await;
    r.expect_code("CONFLICT");
    assert_eq!(field(&r), Some("input.slug"));
    let r = gql(
        &app,
        Some(&staff),
        "query($id: ID!) { product(id: $id) { name slug } }",
        json!({ "id": mug }),
    )
    .await;
    assert_eq!(
        r.ok("product"),
        &json!({ "name": "Product MUG-1", "slug": "mug" }),
        "no partial update"
    );
    app.teardown().await;
}

#[tokio::test]
async fn categories_are_renamed_moved_and_deleted_and_a_cycle_is_refused() {
    let app = spawn_app().await;
    let staff = app
        .staff_signed_up("staff@example.com", "correct horse battery")
        .await;
    let a = category(&app, &staff, "a", None).await;
    let b = category(&app, &staff, "b", Some(&a)).await;
    let c = category(&app, &staff, "c", Some(&b)).await;
    let r = gql(
        &app,
        None,
        "{ categories { slug children { slug children { slug path depth } } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        r.ok("categories")[0]["children"][0]["children"][0]["path"],
        "a/b/c"
    );

    let before = event_count(&app).await;
    for (id, parent) in [(&a, &c), (&a, &a), (&b, &c)] {
        let r = gql(
            &app,
            Some(&staff),
            "mutation($id: ID!, $p: ID) { moveCategory(id: $id, parentId: $p) { id } }",
            json!({ "id": id, "p": parent }),
        )
        .await;
        r.expect_code("BAD_USER_INPUT");
        assert_eq!(rule(&r), Some("category_cycle"), "{}", r.body);
    }
    let r = gql(
        &app,
        Some(&staff),
        "mutation($id: ID!, $p: ID) { moveCategory(id: $id, parentId: $p) { id } }",
        json!({ "id": a, "p": Uuid::new_v4() }),
    )
    .await;
    assert_eq!(rule(&r), Some("category_unknown"));
    assert_eq!(
        event_count(&app).await,
        before,
        "a refused move recorded something"
    );

    let r = gql(
        &app,
        Some(&staff),
        &format!("mutation($id: ID!) {{ moveCategory(id: $id) {{ {CATEGORY_FIELDS} }} }}"),
        json!({ "id": c }),
    )
    .await;
    let moved = r.ok("moveCategory");
    assert_eq!(
        (
            moved["depth"].as_i64(),
            moved["path"].as_str(),
            moved["parentId"].as_str()
        ),
        (Some(0), Some("c"), None)
    );
    let r = gql(&app, Some(&staff), &format!("mutation($id: ID!) {{ renameCategory(id: $id, name: \"Bee\", slug: \"bee\") {{ {CATEGORY_FIELDS} }} }}"), json!({ "id": b })).await;
    let renamed = r.ok("renameCategory");
    assert_eq!(
        (renamed["name"].as_str(), renamed["path"].as_str()),
        (Some("Bee"), Some("a/bee"))
    );
    let r = gql(
        &app,
        Some(&staff),
        "mutation($id: ID!) { renameCategory(id: $id, name: \"C\", slug: \"a\") { id } }",
        json!({ "id": c }),
    )
    .await;
    r.expect_code("CONFLICT");
    assert_eq!(field(&r), Some("slug"));

    let r = gql(
        &app,
        Some(&staff),
        "mutation($id: ID!) { deleteCategory(id: $id) { id } }",
        json!({ "id": a }),
    )
    .await;
    r.expect_code("FAILED_PRECONDITION");
    assert_eq!(rule(&r), Some("category_has_children"));
    let r = create_product(&app, &staff, product_input("P-1", "p-1", &c, 100)).await;
    r.ok("createProduct");
    let r = gql(
        &app,
        Some(&staff),
        "mutation($id: ID!) { deleteCategory(id: $id) { id } }",
        json!({ "id": c }),
    )
    .await;
    r.expect_code("FAILED_PRECONDITION");
    assert_eq!(rule(&r), Some("category_in_use"));
    let r = gql(
        &app,
        Some(&staff),
        "mutation($id: ID!) { deleteCategory(id: $id) { slug children { slug } } }",
        json!({ "id": b }),
    )
    .await;
    let roots = r.ok("deleteCategory");
    assert!(
        roots
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["children"] == json!([])),
        "{roots}"
    );
    let r = gql(
        &app,
        Some(&staff),
        "mutation($id: ID!) { deleteCategory(id: $id) { id } }",
        json!({ "id": b }),
    )
    .await;
    r.expect_code("NOT_FOUND");
    app.teardown().await;
}

#[tokio::test]
async fn stock_is_received_adjusted_and_listed_and_never_goes_below_zero() {
    let app = spawn_app().await;
    let staff = app
        .staff_signed_up("staff@example.com", "correct horse battery")
        .await;
    let cat = category(&app, &staff, "kitchen", None).await;
    let product = published_product(&app, &staff, "MUG-1", &cat).await;
    published_product(&app, &staff, "PLATE-1", &cat).await;
    let level = |op: &str, args: &str| format!("mutation {{ {op}({args}) {{ {LEVEL_FIELDS} }} }}");

    let r = gql(
        &app,
        Some(&staff),
        &level("receiveStock", "sku: \"MUG-1\", quantity: 10"),
        json!({}),
    )
    .await;
    let l = r.ok("receiveStock");
    assert_eq!(
        (l["onHand"].as_i64(), l["available"].as_i64()),
        (Some(10), Some(10))
    );
    assert_eq!(l["productId"], product.as_str());
    let r = gql(
        &app,
        Some(&staff),
        &level("adjustStock", "sku: \"MUG-1\", delta: -3, reason: DAMAGED"),
        json!({}),
    )
    .await;
    assert_eq!(r.ok("adjustStock")["onHand"], 7);

    let before = event_count(&app).await;
    let r = gql(
        &app,
        Some(&staff),
        &level("adjustStock", "sku: \"MUG-1\", delta: -8, reason: LOST"),
        json!({}),
    )
    .await;
    r.expect_code("BAD_USER_INPUT");
    assert_eq!(
        (field(&r), rule(&r)),
        (Some("delta"), Some("stock_negative"))
    );
    let r = gql(
        &app,
        Some(&staff),
        &level("adjustStock", "sku: \"PLATE-1\", delta: -1, reason: LOST"),
        json!({}),
    )
    .await;
    assert_eq!(
        rule(&r),
        Some("stock_negative"),
        "an untracked SKU has nothing to take away"
    );
    let r = gql(
        &app,
        Some(&staff),
        &level("adjustStock", "sku: \"MUG-1\", delta: 0, reason: RECOUNT"),
        json!({}),
    )
    .await;
    assert_eq!(rule(&r), Some("adjustment_zero"));
    let r = gql(
        &app,
        Some(&staff),
        &level("receiveStock", "sku: \"MUG-1\", quantity: 0"),
        json!({}),
    )
    .await;
    assert_eq!(rule(&r), Some("quantity_min"));
    let r = gql(
        &app,
        Some(&staff),
        &level("receiveStock", "sku: \"NOPE-1\", quantity: 1"),
        json!({}),
    )
    .await;
    r.expect_code("NOT_FOUND");
    assert_eq!(
        event_count(&app).await,
        before,
        "a refused stock change recorded something"
    );
    let r = gql(
        &app,
        Some(&staff),
        "{ inventoryLevels(filter: { skuPrefix: \"MUG\" }) { nodes { onHand } } }",
        json!({}),
    )
    .await;
    assert_eq!(r.ok("inventoryLevels")["nodes"][0]["onHand"], 7);

    let r = gql(
        &app,
        Some(&staff),
        &level("setLowStockThreshold", "sku: \"MUG-1\", threshold: 8"),
        json!({}),
    )
    .await;
    let l = r.ok("setLowStockThreshold");
    assert_eq!(
        (l["lowStockThreshold"].as_i64(), l["lowStock"].as_bool()),
        (Some(8), Some(true))
    );
    let r = gql(
        &app,
        Some(&staff),
        &level("setLowStockThreshold", "sku: \"PLATE-1\", threshold: 3"),
        json!({}),
    )
    .await;
    assert_eq!(
        r.ok("setLowStockThreshold")["onHand"],
        0,
        "the first operation tracks the SKU"
    );
    let r = gql(
        &app,
        Some(&staff),
        "{ lowStock { sku available } }",
        json!({}),
    )
    .await;
    assert_eq!(
        r.ok("lowStock"),
        &json!([{ "sku": "PLATE-1", "available": 0 }, { "sku": "MUG-1", "available": 7 }])
    );
    // The storefront sees the stock too, once the catalogue projection has it.
    let r = poll(
        &app,
        None,
        "query($id: ID!) { product(id: $id) { available } }",
        json!({ "id": product }),
        |r| r.data("product")["available"] == 7,
    )
    .await;
    assert_eq!(r.ok("product")["available"], 7);

    // Pages by SKU.
    let r = gql(
        &app,
        Some(&staff),
        "{ inventoryLevels(first: 1) { nodes { sku } pageInfo { hasNextPage endCursor } } }",
        json!({}),
    )
    .await;
    let page = r.ok("inventoryLevels");
    assert_eq!(page["nodes"][0]["sku"], "MUG-1");
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let r = gql(&app, Some(&staff), "query($a: String) { inventoryLevels(first: 1, after: $a) { nodes { sku } pageInfo { hasNextPage } } }", json!({ "a": page["pageInfo"]["endCursor"] })).await;
    let page = r.ok("inventoryLevels");
    assert_eq!(
        (
            page["nodes"][0]["sku"].as_str(),
            page["pageInfo"]["hasNextPage"].as_bool()
        ),
        (Some("PLATE-1"), Some(false))
    );
    let r = gql(
        &app,
        Some(&staff),
        "{ inventoryLevels(filter: { lowStockOnly: true, skuPrefix: \"PL\" }) { nodes { sku } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        r.ok("inventoryLevels")["nodes"],
        json!([{ "sku": "PLATE-1" }])
    );
    app.teardown().await;
}

#[tokio::test]
async fn staff_ship_and_deliver_orders_through_the_status_machine_and_list_customers_and_orders() {
    let app = spawn_app().await;
    let staff = app
        .staff_signed_up("staff@example.com", "correct horse battery")
        .await;
    let (alice, _) = app
        .signed_up("alice@example.com", "correct horse battery")
        .await;
    let (bob, _) = app
        .signed_up("bob@example.com", "correct horse battery")
        .await;
    let (alice_id, bob_id) = (user_id(&app, &alice).await, user_id(&app, &bob).await);
    let paid = seed_order(&app, alice_id, true).await;
    let pending = seed_order(&app, bob_id, false).await;

    let ship = format!(
        "mutation($id: ID!, $t: String) {{ shipOrder(id: $id, trackingNumber: $t) {{ {STAFF_ORDER_FIELDS} }} }}"
    );
    let deliver =
        format!("mutation($id: ID!) {{ markOrderDelivered(id: $id) {{ {STAFF_ORDER_FIELDS} }} }}");
    let before = event_count(&app).await;
    let r = gql(
        &app,
        Some(&staff),
        &ship,
        json!({ "id": pending, "t": "TRACK-1" }),
    )
    .await;
    r.expect_code("FAILED_PRECONDITION");
    assert_eq!(rule(&r), Some("order_transition"));
    let r = gql(&app, Some(&staff), &deliver, json!({ "id": paid })).await;
    assert_eq!(rule(&r), Some("order_transition"), "not shipped yet");
    let r = gql(&app, Some(&staff), &ship, json!({ "id": paid, "t": " " })).await;
    assert_eq!(
        (field(&r), rule(&r)),
        (Some("trackingNumber"), Some("tracking_number"))
    );
    for id in [Uuid::new_v4().to_string(), "not-an-id".to_owned()] {
        gql(&app, Some(&staff), &ship, json!({ "id": id, "t": "T" }))
            .await
            .expect_code("NOT_FOUND");
    }
    assert_eq!(event_count(&app).await, before);

    let r = gql(
        &app,
        Some(&staff),
        &ship,
        json!({ "id": paid, "t": "TRACK-1" }),
    )
    .await;
    let o = r.ok("shipOrder");
    assert_eq!(
        (
            o["order"]["status"].as_str(),
            o["order"]["trackingNumber"].as_str()
        ),
        (Some("SHIPPED"), Some("TRACK-1"))
    );
    assert_eq!(
        (o["customerId"].as_str(), o["riskScore"].as_i64()),
        (Some(alice_id.to_string().as_str()), Some(7))
    );
    let r = gql(&app, Some(&staff), &deliver, json!({ "id": paid })).await;
    assert_eq!(r.ok("markOrderDelivered")["order"]["status"], "DELIVERED");
    gql(&app, Some(&staff), &deliver, json!({ "id": paid }))
        .await
        .expect_code("FAILED_PRECONDITION");
    // The customer sees it too.
    let r = gql(
        &app,
        Some(&alice),
        "query($id: ID!) { order(id: $id) { status trackingNumber } }",
        json!({ "id": paid }),
    )
    .await;
    assert_eq!(
        r.ok("order"),
        &json!({ "status": "DELIVERED", "trackingNumber": "TRACK-1" })
    );

    // Every order, filtered.
    let list = "query($f: OrderFilterInput, $a: String) { orders(filter: $f, first: 1, after: $a) { nodes { customerId order { id status } } pageInfo { hasNextPage endCursor } } }";
    let r = gql(&app, Some(&staff), list, json!({ "f": null })).await;
    let page = r.ok("orders");
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let first_id = page["nodes"][0]["order"]["id"].clone();
    let r = gql(
        &app,
        Some(&staff),
        list,
        json!({ "f": null, "a": page["pageInfo"]["endCursor"] }),
    )
    .await;
    let page2 = r.ok("orders");
    assert_ne!(page2["nodes"][0]["order"]["id"], first_id);
    assert_eq!(page2["pageInfo"]["hasNextPage"], false);
    let r = gql(
        &app,
        Some(&staff),
        list,
        json!({ "f": { "status": "PENDING" } }),
    )
    .await;
    assert_eq!(
        r.ok("orders")["nodes"][0]["order"]["id"],
        pending.to_string().as_str()
    );
    let r = gql(
        &app,
        Some(&staff),
        list,
        json!({ "f": { "customerId": alice_id } }),
    )
    .await;
    assert_eq!(
        r.ok("orders")["nodes"][0]["order"]["id"],
        paid.to_string().as_str()
    );
    let r = gql(
        &app,
        Some(&staff),
        list,
        json!({ "f": { "placedFrom": (Utc::now() + chrono::Duration::days(1)).to_rfc3339() } }),
    )
    .await;
    assert_eq!(r.ok("orders")["nodes"], json!([]));
    let r = gql(
        &app,
        Some(&staff),
        "query($id: ID!) { staffOrder(id: $id) { paymentId order { status } } }",
        json!({ "id": paid }),
    )
    .await;
    assert!(r.ok("staffOrder")["paymentId"].is_string());

    // Customers, newest first, searchable; never a credential. (Sign-ups answer
    // from the account itself, so the `customers` read model may still be behind.)
    let everyone = "{ customers(first: 100) { nodes { id email emailVerified firstName lastName phone role active addressCount registeredAt } } }";
    let r = poll(&app, Some(&staff), everyone, json!({}), |r| {
        r.data("customers")["nodes"]
            .as_array()
            .is_some_and(|n| n.len() == 3)
    })
    .await;
    let all = r.ok("customers")["nodes"].as_array().unwrap().clone();
    assert_eq!(all.len(), 3);
    assert!(
        !r.body.to_string().contains("$argon2"),
        "a hash leaked: {}",
        r.body
    );
    let r = gql(
        &app,
        Some(&staff),
        "{ customers(filter: { role: \"staff\" }) { nodes { email } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        r.ok("customers")["nodes"],
        json!([{ "email": "staff@example.com" }])
    );
    let r = gql(&app, Some(&staff), "query($s: String) { customers(filter: { search: $s }) { nodes { id email role firstName registeredAt } } }", json!({ "s": "ALICE" })).await;
    let nodes = r.ok("customers")["nodes"].as_array().unwrap().clone();
    assert_eq!(nodes.len(), 1);
    assert_eq!(
        (nodes[0]["email"].as_str(), nodes[0]["role"].as_str()),
        (Some("alice@example.com"), Some("customer"))
    );
    let sdl = emporium_gateway::graphql::sdl();
    let customer_type = sdl
        .split("type Customer {")
        .nth(1)
        .unwrap()
        .split('}')
        .next()
        .unwrap();
    assert!(
        !customer_type.to_lowercase().contains("password"),
        "{customer_type}"
    );
    app.teardown().await;
}
