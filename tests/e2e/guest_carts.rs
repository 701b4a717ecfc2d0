//! Guest carts over HTTP: an anonymous shopper's first `addToCart` opens a cart and
//! answers its token in `Cart.guestToken`; the token, sent back as `X-Cart-Token`, is
//! the only way to that cart; `mergeCart` moves it into the signed-in user's cart,
//! once.

use serde_json::{Value, json};

use crate::helpers::{Gql, TestApp, spawn_app};
use crate::staff::{category, event_count, published_product};

const CART_FIELDS: &str =
    "id guestToken itemCount items { sku quantity unitPrice { amountMinor } }";

/// POSTs an operation with an optional bearer token and `X-Cart-Token`.
pub(crate) async fn cart_call(
    app: &TestApp,
    query: &str,
    variables: Value,
    bearer: Option<&str>,
    cart_token: Option<&str>,
) -> Gql {
    let mut request = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    if let Some(token) = cart_token {
        request = request.header("x-cart-token", token);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let body = response.json().await.expect("json body");
    Gql {
        status,
        retry_after: None,
        body,
    }
}

async fn add(app: &TestApp, sku: &str, qty: i64, bearer: Option<&str>, token: Option<&str>) -> Gql {
    cart_call(
        app,
        &format!("mutation($s: String!, $q: Quantity!) {{ addToCart(sku: $s, quantity: $q) {{ {CART_FIELDS} }} }}"),
        json!({ "s": sku, "q": qty }),
        bearer,
        token,
    )
    .await
}

async fn my_cart(app: &TestApp, bearer: Option<&str>, token: Option<&str>) -> Gql {
    cart_call(
        app,
        &format!("{{ myCart {{ {CART_FIELDS} }} }}"),
        json!({}),
        bearer,
        token,
    )
    .await
}

async fn merge(app: &TestApp, bearer: &str, guest_token: &str) -> Gql {
    cart_call(
        app,
        &format!("mutation($t: String!) {{ mergeCart(guestToken: $t) {{ {CART_FIELDS} }} }}"),
        json!({ "t": guest_token }),
        Some(bearer),
        None,
    )
    .await
}

async fn shop(app: &TestApp) {
    let staff = app
        .staff_signed_up("staff@example.com", "correct horse battery")
        .await;
    let cat = category(app, &staff, "kitchen", None).await;
    for sku in ["MUG-1", "PLATE-1", "BOWL-1"] {
        published_product(app, &staff, sku, &cat).await;
    }
}

#[tokio::test]
async fn a_guest_gets_a_cart_by_token_and_no_one_else_reaches_it() {
    let app = spawn_app().await;
    shop(&app).await;

    let r = add(&app, "MUG-1", 2, None, None).await;
    let cart = r.ok("addToCart").clone();
    let token = cart["guestToken"]
        .as_str()
        .expect("a token for the guest")
        .to_owned();
    assert_eq!(token.len(), 43);
    assert_eq!(cart["itemCount"], 2);
    assert_eq!(cart["items"][0]["unitPrice"]["amountMinor"], 1_500);

    // The token finds the cart again and adds to it.
    let r = add(&app, "PLATE-1", 1, None, Some(&token)).await;
    let again = r.ok("addToCart");
    assert_eq!(again["id"], cart["id"]);
    assert_eq!(again["itemCount"], 3);
    let r = my_cart(&app, None, Some(&token)).await;
    assert_eq!(r.ok("myCart")["itemCount"], 3);

    // Another guest gets another cart and token.
    let r = add(&app, "BOWL-1", 1, None, None).await;
    let other = r.ok("addToCart").clone();
    assert_ne!(other["id"], cart["id"]);
    assert_ne!(other["guestToken"], cart["guestToken"]);
    assert_eq!(other["itemCount"], 1);

    // A made-up or malformed token finds nothing and opens nothing.
    let before = event_count(&app).await;
    let made_up = {
        let mut t = token.clone();
        let last = if t.ends_with('A') { "B" } else { "A" };
        t.replace_range(42.., last);
        t
    };
    for bad in [
        made_up.as_str(),
        "not-a-token",
        cart["id"].as_str().unwrap(),
    ] {
        my_cart(&app, None, Some(bad))
            .await
            .expect_code("NOT_FOUND");
        add(&app, "MUG-1", 1, None, Some(bad))
            .await
            .expect_code("NOT_FOUND");
    }
    assert_eq!(
        event_count(&app).await,
        before,
        "a bad token recorded something"
    );

    // Without a token an anonymous caller only gets a new cart from addToCart.
    my_cart(&app, None, None)
        .await
        .expect_code("UNAUTHENTICATED");
    let r = cart_call(&app, "mutation { clearCart { id } }", json!({}), None, None).await;
    r.expect_code("UNAUTHENTICATED");

    // Lines change through the token only.
    let r = cart_call(
        &app,
        &format!("mutation {{ updateCartItem(sku: \"MUG-1\", quantity: 5) {{ {CART_FIELDS} }} }}"),
        json!({}),
        None,
        Some(&token),
    )
    .await;
    assert_eq!(r.ok("updateCartItem")["itemCount"], 6);
    let r = cart_call(
        &app,
        &format!("mutation {{ removeFromCart(sku: \"PLATE-1\") {{ {CART_FIELDS} }} }}"),
        json!({}),
        None,
        Some(&token),
    )
    .await;
    assert_eq!(r.ok("removeFromCart")["itemCount"], 5);
    let r = my_cart(&app, None, other["guestToken"].as_str()).await;
    assert_eq!(
        r.ok("myCart")["itemCount"],
        1,
        "the other guest's cart is untouched"
    );

    // A signed-in user's cart ignores a guest token and carries none.
    let (user, _) = app
        .signed_up("ada@example.com", "correct horse battery")
        .await;
    let r = my_cart(&app, Some(&user), Some(&token)).await;
    let mine = r.ok("myCart");
    assert_eq!(mine["itemCount"], 0);
    assert!(mine["guestToken"].is_null());
    app.teardown().await;
}

#[tokio::test]
async fn merge_cart_moves_the_guest_cart_into_the_users_once() {
    let app = spawn_app().await;
    shop(&app).await;
    let (ada, _) = app
        .signed_up("ada@example.com", "correct horse battery")
        .await;
    let (eve, _) = app
        .signed_up("eve@example.com", "correct horse battery")
        .await;
    add(&app, "MUG-1", 1, Some(&ada), None)
        .await
        .ok("addToCart");

    let r = add(&app, "MUG-1", 2, None, None).await;
    let token = r.ok("addToCart")["guestToken"].as_str().unwrap().to_owned();
    add(&app, "BOWL-1", 4, None, Some(&token))
        .await
        .ok("addToCart");

    let r = merge(&app, &ada, &token).await;
    let merged = r.ok("mergeCart").clone();
    assert!(merged["guestToken"].is_null());
    assert_eq!(merged["itemCount"], 7);
    let quantities: Vec<(String, i64)> = merged["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["sku"].as_str().unwrap().to_owned(),
                i["quantity"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(
        quantities.contains(&("MUG-1".to_owned(), 3)),
        "{quantities:?}"
    );
    assert!(
        quantities.contains(&("BOWL-1".to_owned(), 4)),
        "{quantities:?}"
    );

    // Again: the same answer, nothing recorded.
    let before = event_count(&app).await;
    let r = merge(&app, &ada, &token).await;
    assert_eq!(r.ok("mergeCart")["itemCount"], 7);
    assert_eq!(event_count(&app).await, before);
    let r = cart_call(
        &app,
        &format!("{{ myCart {{ {CART_FIELDS} }} }}"),
        json!({}),
        Some(&ada),
        None,
    )
    .await;
    assert_eq!(r.ok("myCart")["itemCount"], 7);

    // The merged guest cart is closed: the token now opens a fresh cart.
    let r = my_cart(&app, None, Some(&token)).await;
    assert_eq!(r.ok("myCart")["itemCount"], 0);

    // Someone else cannot take it, nor merge a token that names nothing.
    merge(&app, &eve, &token).await.expect_code("NOT_FOUND");
    let missing = merge(&app, &eve, &format!("{}A", "B".repeat(42))).await;
    missing.expect_code("NOT_FOUND");
    merge(&app, &eve, "garbage").await.expect_code("NOT_FOUND");
    assert_eq!(
        event_count(&app).await,
        before,
        "a refused merge recorded something"
    );
    let r = cart_call(
        &app,
        "mutation($t: String!) { mergeCart(guestToken: $t) { id } }",
        json!({ "t": token }),
        None,
        None,
    )
    .await;
    r.expect_code("UNAUTHENTICATED");
    app.teardown().await;
}

#[tokio::test]
async fn a_line_the_guest_adds_while_the_cart_merges_is_never_lost() {
    let app = spawn_app().await;
    shop(&app).await;
    let (ada, _) = app
        .signed_up("ada@example.com", "correct horse battery")
        .await;
    let r = add(&app, "MUG-1", 1, None, None).await;
    let token = r.ok("addToCart")["guestToken"].as_str().unwrap().to_owned();

    // The guest keeps adding one mug at a time while the user merges the cart.
    let started = tokio::sync::Notify::new();
    let adding = async {
        let mut acknowledged = 1;
        for i in 0..20 {
            add(&app, "MUG-1", 1, None, Some(&token))
                .await
                .ok("addToCart");
            acknowledged += 1;
            if i == 2 {
                started.notify_one();
            }
        }
        acknowledged
    };
    let merging = async {
        started.notified().await;
        merge(&app, &ada, &token).await
    };
    let (acknowledged, merged) = tokio::join!(adding, merging);
    let moved = merged.ok("mergeCart")["itemCount"].as_i64().unwrap();

    // Every acknowledged mug is in the user's cart or in the guest's next cart.
    let user = my_cart(&app, Some(&ada), None).await;
    let in_user_cart = user.ok("myCart")["itemCount"].as_i64().unwrap();
    let guest = my_cart(&app, None, Some(&token)).await;
    let in_guest_cart = guest.ok("myCart")["itemCount"].as_i64().unwrap();
    assert!(
        moved >= 1 && moved == in_user_cart,
        "merge answered {moved}, cart holds {in_user_cart}"
    );
    assert_eq!(
        in_user_cart + in_guest_cart,
        acknowledged,
        "user cart {in_user_cart} + guest cart {in_guest_cart} != {acknowledged} acknowledged"
    );
    app.teardown().await;
}
