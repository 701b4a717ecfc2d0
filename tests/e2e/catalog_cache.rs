//! The public catalogue cache over HTTP: a catalogue-only query is answered from
//! memory after its first run (`X-Catalog-Cache: hit`), shows a staff change as soon
//! as the staff mutation has answered, and never serves one viewer's answer to
//! another.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};
use crate::staff::{category, create_product, gql, product_input, product_op, published_product};

const LISTING: &str = "query($first: Int!) { products(first: $first) { nodes { id sku name status price { amountMinor } available inStock } } }";
const PASSWORD: &str = "correct horse battery";

/// Runs `query` as `bearer`; returns the cache header and the data.
async fn run(
    app: &TestApp,
    bearer: Option<&str>,
    query: &str,
    variables: Value,
) -> (Option<String>, Value) {
    let mut request = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request sent");
    let cache = response
        .headers()
        .get("x-catalog-cache")
        .and_then(|v| v.to_str().ok())
        .map(ToOwned::to_owned);
    let body: Value = response.json().await.expect("json");
    assert!(body.get("errors").is_none(), "{body}");
    (cache, body["data"].clone())
}

async fn listing(app: &TestApp, bearer: Option<&str>) -> (Option<String>, Vec<Value>) {
    let (cache, data) = run(app, bearer, LISTING, json!({ "first": 50 })).await;
    let nodes = data["products"]["nodes"].as_array().expect("nodes").clone();
    (cache, nodes)
}

/// Staff sets product `id`'s price (EUR).
async fn change_price(app: &TestApp, staff: &str, id: &str, amount_minor: i64) {
    product_op(
        app,
        staff,
        "changeProductPrice",
        "$p: MoneyInput!",
        "price: $p",
        json!({ "id": id, "p": { "amountMinor": amount_minor, "currency": "EUR" } }),
    )
    .await
    .ok("changeProductPrice");
}

/// Staff unpublishes product `id`.
async fn unpublish(app: &TestApp, staff: &str, id: &str) {
    product_op(app, staff, "unpublishProduct", "", "", json!({ "id": id }))
        .await
        .ok("unpublishProduct");
}

fn find<'a>(nodes: &'a [Value], id: &str) -> Option<&'a Value> {
    nodes.iter().find(|n| n["id"] == id)
}

#[tokio::test]
async fn a_cached_listing_shows_staff_changes_as_soon_as_they_answer() {
    let app = spawn_app().await;
    let staff = app
        .staff_signed_up("cache-staff@example.com", PASSWORD)
        .await;
    let shelf = category(&app, &staff, "cached", None).await;
    let first = published_product(&app, &staff, "CACHE-1", &shelf).await;

    // The first run fills the cache; the second is answered from it, identically.
    let (cache, nodes) = listing(&app, None).await;
    assert_eq!(cache.as_deref(), Some("miss"));
    assert_eq!(
        find(&nodes, &first).expect("listed")["price"]["amountMinor"],
        1_500
    );
    let (cache, again) = listing(&app, None).await;
    assert_eq!(cache.as_deref(), Some("hit"));
    assert_eq!(again, nodes);

    // A price change shows in the very next listing.
    change_price(&app, &staff, &first, 2_500).await;
    let (cache, nodes) = listing(&app, None).await;
    assert_eq!(cache.as_deref(), Some("miss"));
    assert_eq!(
        find(&nodes, &first).expect("listed")["price"]["amountMinor"],
        2_500
    );
    let (cache, _) = listing(&app, None).await;
    assert_eq!(
        cache.as_deref(),
        Some("hit"),
        "cached again until the next change"
    );

    // So does a newly published product...
    let second = published_product(&app, &staff, "CACHE-2", &shelf).await;
    let (_, nodes) = listing(&app, None).await;
    assert!(
        find(&nodes, &second).is_some(),
        "the published product is listed"
    );

    // ...a stock change...
    let available = find(&nodes, &first).expect("listed")["available"]
        .as_i64()
        .expect("available");
    gql(
        &app,
        Some(&staff),
        "mutation { receiveStock(sku: \"CACHE-1\", quantity: 7) { sku available } }",
        json!({}),
    )
    .await
    .ok("receiveStock");
    let (_, nodes) = listing(&app, None).await;
    let listed = find(&nodes, &first).expect("listed");
    assert_eq!(listed["available"].as_i64(), Some(available + 7));
    assert_eq!(listed["inStock"], true);

    // ...and an unpublished one leaves at once.
    unpublish(&app, &staff, &first).await;
    let (_, nodes) = listing(&app, None).await;
    assert!(
        find(&nodes, &first).is_none(),
        "the unpublished product is gone"
    );
    assert!(find(&nodes, &second).is_some());
    app.teardown().await;
}

#[tokio::test]
async fn answers_that_depend_on_the_viewer_are_never_cached() {
    let app = spawn_app().await;
    let staff = app
        .staff_signed_up("viewer-staff@example.com", PASSWORD)
        .await;
    let shelf = category(&app, &staff, "mine", None).await;
    let listed = published_product(&app, &staff, "MINE-1", &shelf).await;
    let draft = create_product(
        &app,
        &staff,
        product_input("DRAFT-1", "draft-1", &shelf, 900),
    )
    .await;
    let draft = draft.ok("createProduct")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (ada, _) = app.signed_up("ada@example.com", PASSWORD).await;
    let (bob, _) = app.signed_up("bob@example.com", PASSWORD).await;
    gql(
        &app,
        Some(&ada),
        "mutation { addToCart(sku: \"MINE-1\", quantity: 2) { id } }",
        json!({}),
    )
    .await
    .ok("addToCart");

    // The catalogue beside the viewer's cart: never looked up nor kept, so each
    // viewer gets their own cart every time.
    let mixed = "query($first: Int!) { products(first: $first) { nodes { id } } myCart { id items { sku quantity } } }";
    for _ in 0..2 {
        let (cache, data) = run(&app, Some(&ada), mixed, json!({ "first": 5 })).await;
        assert_eq!(cache, None);
        assert_eq!(
            data["myCart"]["items"],
            json!([{ "sku": "MINE-1", "quantity": 2 }])
        );
        let ada_cart = data["myCart"]["id"].clone();
        let (cache, data) = run(&app, Some(&bob), mixed, json!({ "first": 5 })).await;
        assert_eq!(cache, None);
        assert_eq!(data["myCart"]["items"], json!([]));
        assert_ne!(data["myCart"]["id"], ada_cart);
    }

    // Staff see drafts: their listings neither fill nor read the public cache.
    for _ in 0..2 {
        let (cache, nodes) = listing(&app, Some(&staff)).await;
        assert_eq!(cache, None);
        assert!(find(&nodes, &draft).is_some(), "staff see the draft");
    }
    let (cache, nodes) = listing(&app, None).await;
    assert_eq!(cache.as_deref(), Some("miss"));
    assert!(
        find(&nodes, &draft).is_none(),
        "the public never sees a draft"
    );
    assert!(find(&nodes, &listed).is_some());
    // A customer shares the public answer; staff still get their own.
    let (cache, nodes) = listing(&app, Some(&ada)).await;
    assert_eq!(cache.as_deref(), Some("hit"));
    assert!(find(&nodes, &draft).is_none());
    let (cache, nodes) = listing(&app, Some(&staff)).await;
    assert_eq!(cache, None);
    assert!(find(&nodes, &draft).is_some());
    app.teardown().await;
}

/// A cart change reads its SKU's product and its lines' products from memory while
/// the catalogue is unchanged (`shop/rows.rs`); a price change, an unpublished SKU
/// and a published one show in the very next cart answer.
#[tokio::test]
async fn cart_answers_show_catalogue_changes_as_soon_as_staff_answer() {
    let app = spawn_app().await;
    let staff = app
        .staff_signed_up("cart-cache-staff@example.com", PASSWORD)
        .await;
    let shelf = category(&app, &staff, "cart-cached", None).await;
    let first = published_product(&app, &staff, "CART-CACHE-1", &shelf).await;
    let (access, _) = app.signed_up("cart-cache@example.com", PASSWORD).await;
    let subtotal = |cart: &Value| cart["subtotal"]["amountMinor"].as_i64();

    // Twice the same SKU: the second change is answered from the cached rows.
    let cart = app.add_to_cart(&access, "CART-CACHE-1", json!(1)).await;
    assert_eq!(subtotal(cart.ok("addToCart")), Some(1_500));
    let cart = app.add_to_cart(&access, "CART-CACHE-1", json!(1)).await;
    assert_eq!(subtotal(cart.ok("addToCart")), Some(3_000));

    // A price change: the next answer prices both units at the new price.
    change_price(&app, &staff, &first, 2_500).await;
    let cart = app.add_to_cart(&access, "CART-CACHE-1", json!(1)).await;
    assert_eq!(subtotal(cart.ok("addToCart")), Some(7_500));
    assert_eq!(
        subtotal(app.my_cart(Some(&access)).await.ok("myCart")),
        Some(7_500)
    );

    // A SKU published after it was refused is for sale at once...
    app.add_to_cart(&access, "CART-CACHE-2", json!(1))
        .await
        .expect_code("NOT_FOUND");
    published_product(&app, &staff, "CART-CACHE-2", &shelf).await;
    let cart = app.add_to_cart(&access, "CART-CACHE-2", json!(1)).await;
    assert_eq!(subtotal(cart.ok("addToCart")), Some(7_500 + 1_500));

    // ...and one unpublished after it was sold is refused at once.
    unpublish(&app, &staff, &first).await;
    app.add_to_cart(&access, "CART-CACHE-1", json!(1))
        .await
        .expect_code("NOT_FOUND");
    app.teardown().await;
}
