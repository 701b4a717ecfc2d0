//! The storefront over HTTP: catalogue listings, product pages and the category
//! tree; the viewer's cart and wishlist with read-your-writes.
//!
//! The catalogue is seeded through the command layer on the test's database; the
//! application's in-process relay and projection runners build the read models, and
//! the seeding waits on the projections' checkpoints (never a sleep).

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use emporium_commands::catalog::Products;
use emporium_commands::{AnyStore, Dispatcher, Loading};
use emporium_domain::catalog::{
    AltText, Attributes, CategoryCommand, CategoryName, CategoryTree, Description, ImageSource,
    ProductCommand, ProductName, Slug, Tag,
};
use emporium_domain::inventory::{Inventory, InventoryCommand};
use emporium_domain::metadata::Actor;
use emporium_domain::{Currency, EventMetadata, Money, Quantity, Sku};
use emporium_projections::projection::CheckpointWatch;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_app};

const PRODUCTS: usize = 30;
const PRODUCT_FIELDS: &str = "id sku slug name categoryId categoryPath { slug } tags price { amountMinor currency formatted } minPrice { amountMinor } inStock available featured createdAt variants { sku price { amountMinor } }";
const CART_FIELDS: &str = "id currency itemCount subtotal { amountMinor currency formatted } items { sku quantity unitPrice { amountMinor } lineTotal { amountMinor } product { id slug } }";
const WISHLIST_FIELDS: &str = "count items { addedAt product { id slug } }";

/// Writes commands straight into the test's event store and waits for projections.
struct Seeder {
    products: Products<AnyStore>,
    categories: Dispatcher<CategoryTree, AnyStore>,
    inventory: Dispatcher<Inventory, AnyStore>,
    watch: CheckpointWatch,
    last: i64,
}

fn meta() -> EventMetadata {
    EventMetadata::new(
        Uuid::new_v4(),
        Actor::System("test-seed".into()),
        Utc::now(),
    )
}

/// The seeded catalogue's facts, as the tests expect them.
struct Seeded {
    categories: [(Uuid, &'static str); 4],
    products: Vec<SeededProduct>,
}

#[derive(Debug, Clone)]
struct SeededProduct {
    id: Uuid,
    index: usize,
    category: usize,
    price: i64,
    tags: Vec<&'static str>,
    in_stock: bool,
    published: bool,
    at: DateTime<Utc>,
}

impl Seeder {
    async fn new(app: &TestApp) -> Self {
        let store = app.store().clone();
        Self {
            products: Products::over(store.clone()),
            categories: Dispatcher::over(store.clone(), Loading::Replay),
            inventory: Dispatcher::over(store.clone(), Loading::Replay),
            watch: app.watch().await,
            last: 0,
        }
    }

    fn track(&mut self, position: Option<i64>) {
        if let Some(p) = position {
            self.last = self.last.max(p);
        }
    }

    async fn category(&mut self, name: &str, slug: &str, parent: Option<Uuid>) -> Uuid {
        let id = Uuid::new_v4();
        let c = self
            .categories
            .execute(
                CategoryTree::ID,
                CategoryCommand::CreateCategory {
                    category_id: id,
                    name: CategoryName::parse(name).unwrap(),
                    slug: Slug::parse(slug).unwrap(),
                    parent_id: parent,
                    at: Utc::now(),
                },
                &meta(),
            )
            .await
            .expect("category");
        self.track(c.position);
        id
    }

    async fn product(&mut self, id: Uuid, command: ProductCommand) {
        let c = self
            .products
            .execute(id, command, &meta())
            .await
            .expect("product command");
        self.track(c.position);
    }

    async fn stock(&mut self, sku: &str, units: i64) {
        let sku = Sku::parse(sku).unwrap();
        for command in [
            InventoryCommand::TrackInventory {
                sku: sku.clone(),
                low_stock_threshold: 0,
                at: Utc::now(),
            },
            InventoryCommand::ReceiveStock {
                quantity: Quantity::new(units).unwrap(),
                at: Utc::now(),
            },
        ] {
            let c = self
                .inventory
                .execute(sku.as_str(), command, &meta())
                .await
                .expect("inventory");
            self.track(c.position);
        }
    }

    /// Waits until every storefront projection has applied what was seeded.
    async fn caught_up(&self) {
        for projection in ["catalog", "categories"] {
            self.watch
                .wait_for_position(projection, self.last, Duration::from_secs(30))
                .await
                .unwrap_or_else(|e| panic!("{projection}: {e}"));
        }
    }
}

/// Four categories (clothing > shoes > running; books) and 30 products: prices in
/// equal pairs (so ties are broken by id), every other one on sale, every fourth in
/// stock, the last one a draft, product 0 with a dearer variant, 3 and 5 featured.
async fn seed(app: &TestApp) -> (Seeder, Seeded) {
    let mut s = Seeder::new(app).await;
    let clothing = s.category("Clothing", "clothing", None).await;
    let shoes = s.category("Shoes", "shoes", Some(clothing)).await;
    let running = s.category("Running", "running", Some(shoes)).await;
    let books = s.category("Books", "books", None).await;
    let categories = [
        (clothing, "clothing"),
        (shoes, "shoes"),
        (running, "running"),
        (books, "books"),
    ];
    let base = Utc::now() - chrono::Duration::hours(1);
    let mut products = Vec::new();
    for i in 0..PRODUCTS {
        // running, shoes, books in turn
        let category = [2, 1, 3][i % 3];
        let price = 1_000 + i64::try_from(i / 2).unwrap() * 100;
        let tags = if i % 2 == 0 { vec!["sale"] } else { vec![] };
        let id = Uuid::new_v4();
        let at = base + chrono::Duration::seconds(i64::try_from(i).unwrap());
        s.product(
            id,
            ProductCommand::CreateProduct {
                product_id: id,
                sku: Sku::parse(&format!("SKU-{i}")).unwrap(),
                slug: Slug::parse(&format!("product-{i}")).unwrap(),
                name: ProductName::parse(&format!("Product {i:02}")).unwrap(),
                description: Description::parse(&format!("Seeded product number {i}")).unwrap(),
                category_id: categories[category].0,
                tags: tags.iter().map(|t| Tag::parse(t).unwrap()).collect(),
                attributes: Attributes::default(),
                price: Money::new(price, Currency::parse("EUR").unwrap()),
                at,
            },
        )
        .await;
        s.product(
            id,
            ProductCommand::AddImage {
                image_id: Uuid::new_v4(),
                source: ImageSource::key(&format!("products/{i}/front.jpg")).unwrap(),
                alt_text: AltText::parse("Front").unwrap(),
                primary: true,
                at,
            },
        )
        .await;
        let published = i != PRODUCTS - 1;
        if published {
            s.product(id, ProductCommand::PublishProduct { at }).await;
        }
        if i == 3 || i == 5 {
            s.product(id, ProductCommand::FeatureProduct { at }).await;
        }
        let in_stock = i % 4 == 0;
        if in_stock {
            s.stock(&format!("SKU-{i}"), 5).await;
        }
        products.push(SeededProduct {
            id,
            index: i,
            category,
            price,
            tags,
            in_stock,
            published,
            at,
        });
    }
    s.product(
        products[0].id,
        ProductCommand::AddVariant {
            variant_id: Uuid::new_v4(),
            sku: Sku::parse("SKU-0-L").unwrap(),
            size: None,
            colour: None,
            attributes: Attributes::default(),
            price: Money::new(2_500, Currency::parse("EUR").unwrap()),
            at: Utc::now(),
        },
    )
    .await;
    s.caught_up().await;
    (
        s,
        Seeded {
            categories,
            products,
        },
    )
}

impl TestApp {
    /// `products`, one page.
    pub(crate) async fn products(&self, args: Value) -> crate::helpers::Gql {
        self.post_graphql(
            &format!(
                "query($first: Int, $after: String, $filter: ProductFilter, $sort: ProductSort) {{
                   products(first: $first, after: $after, filter: $filter, sort: $sort) {{
                     edges {{ cursor node {{ {PRODUCT_FIELDS} }} }}
                     pageInfo {{ hasNextPage endCursor }}
                   }} }}"
            ),
            args,
            None,
        )
        .await
    }

    /// Every page of `products` with `filter` and `sort`, `first` at a time.
    async fn all_products(&self, filter: Value, sort: &str, first: i64) -> Vec<Value> {
        let mut after: Option<String> = None;
        let mut all = Vec::new();
        for _ in 0..100 {
            let r = self
                .products(json!({ "first": first, "after": after, "filter": filter, "sort": sort }))
                .await;
            let page = r.ok("products");
            let edges = page["edges"].as_array().expect("edges");
            assert!(edges.len() <= usize::try_from(first).unwrap());
            all.extend(edges.iter().map(|e| e["node"].clone()));
            if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
                return all;
            }
            after = Some(page["pageInfo"]["endCursor"].as_str().unwrap().to_owned());
        }
        panic!("pagination never ended");
    }

    /// A cart operation by name, answering with the cart's fields.
    async fn cart_op(&self, access: &str, op: &str, vars: Value) -> crate::helpers::Gql {
        let query = match op {
            "clearCart" => format!("mutation {{ clearCart {{ {CART_FIELDS} }} }}"),
            "addToCart" | "updateCartItem" => format!(
                "mutation($sku: String!, $q: Quantity!) {{ {op}(sku: $sku, quantity: $q) {{ {CART_FIELDS} }} }}"
            ),
            "removeFromCart" => format!(
                "mutation($sku: String!) {{ removeFromCart(sku: $sku) {{ {CART_FIELDS} }} }}"
            ),
            other => panic!("unknown cart operation {other}"),
        };
        self.post_graphql(&query, vars, Some(access)).await
    }

    /// `addToCart`.
    pub(crate) async fn add_to_cart(
        &self,
        access: &str,
        sku: &str,
        quantity: Value,
    ) -> crate::helpers::Gql {
        self.cart_op(access, "addToCart", json!({ "sku": sku, "q": quantity }))
            .await
    }

    /// `myCart`.
    pub(crate) async fn my_cart(&self, access: Option<&str>) -> crate::helpers::Gql {
        self.post_graphql(
            &format!("{{ myCart {{ {CART_FIELDS} }} }}"),
            json!({}),
            access,
        )
        .await
    }

    /// `addToWishlist` / `removeFromWishlist`.
    async fn wishlist_op(&self, access: &str, op: &str, product_id: &str) -> crate::helpers::Gql {
        self.post_graphql(
            &format!("mutation($p: ID!) {{ {op}(productId: $p) {{ {WISHLIST_FIELDS} }} }}"),
            json!({ "p": product_id }),
            Some(access),
        )
        .await
    }
}

fn ids(nodes: &[Value]) -> Vec<String> {
    nodes
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect()
}

fn expected_ids(products: &[SeededProduct]) -> Vec<String> {
    products.iter().map(|p| p.id.to_string()).collect()
}

#[tokio::test]
async fn listings_filter_sort_and_paginate_without_gaps_or_repeats() {
    let app = spawn_app().await;
    let (_seeder, seeded) = seed(&app).await;
    let published: Vec<SeededProduct> = seeded
        .products
        .iter()
        .filter(|p| p.published)
        .cloned()
        .collect();

    // Every sort, 7 at a time: the whole published catalogue, each product once, in
    // the sort's order (ties by id in the sort's direction).
    let by = |mut v: Vec<SeededProduct>,
              f: &dyn Fn(&SeededProduct, &SeededProduct) -> std::cmp::Ordering| {
        v.sort_by(|a, b| f(a, b));
        expected_ids(&v)
    };
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "PRICE_ASC",
            by(published.clone(), &|a, b| {
                (a.price, a.id).cmp(&(b.price, b.id))
            }),
        ),
        (
            "PRICE_DESC",
            by(published.clone(), &|a, b| {
                (b.price, b.id).cmp(&(a.price, a.id))
            }),
        ),
        (
            "NEWEST",
            by(published.clone(), &|a, b| (b.at, b.id).cmp(&(a.at, a.id))),
        ),
        ("NAME", by(published.clone(), &|a, b| a.index.cmp(&b.index))),
        // No reviews: every rating ties, so the order is by id, descending.
        ("RATING", by(published.clone(), &|a, b| b.id.cmp(&a.id))),
    ];
    for (sort, expected) in cases {
        let got = ids(&app.all_products(json!({}), sort, 7).await);
        assert_eq!(
            got.len(),
            got.iter().collect::<HashSet<_>>().len(),
            "{sort}: repeats"
        );
        assert_eq!(got, expected, "{sort}");
    }

    // The draft never shows.
    let draft = seeded.products.last().unwrap().id.to_string();
    let all = ids(&app.all_products(json!({}), "NEWEST", 100).await);
    assert!(!all.contains(&draft));

    // A category includes its descendants: clothing = shoes + running.
    let clothing = seeded.categories[0].0;
    let got: HashSet<String> = ids(&app
        .all_products(
            json!({ "categoryId": clothing.to_string() }),
            "PRICE_ASC",
            5,
        )
        .await)
    .into_iter()
    .collect();
    let expected: HashSet<String> = published
        .iter()
        .filter(|p| p.category == 1 || p.category == 2)
        .map(|p| p.id.to_string())
        .collect();
    assert_eq!(got, expected);
    let running = seeded.categories[2].0;
    let got = app
        .all_products(json!({ "categoryId": running.to_string() }), "NAME", 50)
        .await;
    assert_eq!(
        got.len(),
        published.iter().filter(|p| p.category == 2).count()
    );

    // Price range, stock and tags narrow it together.
    let filter = json!({ "minPrice": 1_200, "maxPrice": 2_000, "inStock": true, "tags": ["sale"] });
    let got: HashSet<String> = ids(&app.all_products(filter, "PRICE_ASC", 3).await)
        .into_iter()
        .collect();
    let expected: HashSet<String> = published
        .iter()
        .filter(|p| (1_200..=2_000).contains(&p.price) && p.in_stock && p.tags.contains(&"sale"))
        .map(|p| p.id.to_string())
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(got, expected);

    // Search by name.
    let got = app
        .all_products(json!({ "search": "product 1" }), "NAME", 50)
        .await;
    assert_eq!(got.len(), 10, "Product 10..19");

    // Money comes formatted by the gateway; the variant carries its own price.
    let first = &app
        .all_products(json!({ "search": "Product 00" }), "NAME", 1)
        .await[0];
    assert_eq!(
        first["price"],
        json!({ "amountMinor": 1000, "currency": "EUR", "formatted": "10.00 EUR" })
    );
    assert_eq!(first["variants"][0]["price"]["amountMinor"], 2500);
    assert_eq!(first["inStock"], true);

    // Page sizes and cursors are checked.
    app.products(json!({ "first": 0 }))
        .await
        .expect_code("BAD_USER_INPUT");
    app.products(json!({ "first": 101 }))
        .await
        .expect_code("BAD_USER_INPUT");
    app.products(json!({ "after": "bm90LWEtY3Vyc29y" }))
        .await
        .expect_code("BAD_USER_INPUT");
    let page = app.products(json!({ "first": 1, "sort": "NAME" })).await;
    let cursor = page.ok("products")["pageInfo"]["endCursor"].clone();
    app.products(json!({ "after": cursor, "sort": "PRICE_ASC" }))
        .await
        .expect_code("BAD_USER_INPUT");
    app.teardown().await;
}

#[tokio::test]
async fn product_pages_featured_and_the_category_tree() {
    let app = spawn_app().await;
    let (_seeder, seeded) = seed(&app).await;
    let p4 = &seeded.products[4];

    let by_slug = app
        .post_graphql(
            &format!("{{ product(slug: \"product-4\") {{ {PRODUCT_FIELDS} }} }}"),
            json!({}),
            None,
        )
        .await;
    let product = by_slug.ok("product");
    assert_eq!(product["id"], p4.id.to_string());
    assert_eq!(product["sku"], "SKU-4");
    let path: Vec<&str> = product["categoryPath"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["slug"].as_str().unwrap())
        .collect();
    assert_eq!(path, ["clothing", "shoes"]);

    let by_id = app
        .post_graphql(
            "query($id: ID!) { product(id: $id) { slug } }",
            json!({ "id": p4.id.to_string() }),
            None,
        )
        .await;
    assert_eq!(by_id.ok("product")["slug"], "product-4");

    // A draft, an unknown slug and a malformed id all look missing.
    for query in [
        "{ product(slug: \"product-29\") { id } }",
        "{ product(slug: \"no-such-thing\") { id } }",
        "{ product(id: \"not-a-uuid\") { id } }",
    ] {
        let r = app.post_graphql(query, json!({}), None).await;
        assert!(r.ok("product").is_null(), "{query}");
    }

    let featured = app
        .post_graphql(
            "{ featuredProducts(first: 10) { slug featured } }",
            json!({}),
            None,
        )
        .await;
    let slugs: HashSet<&str> = featured
        .ok("featuredProducts")
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, HashSet::from(["product-3", "product-5"]));

    let tree = app
        .post_graphql(
            "{ categories { slug path depth children { slug path children { slug path children { slug } } } } }",
            json!({}),
            None,
        )
        .await;
    let roots = tree.ok("categories").as_array().unwrap().clone();
    let root_slugs: Vec<&str> = roots.iter().map(|c| c["slug"].as_str().unwrap()).collect();
    assert_eq!(root_slugs, ["books", "clothing"]);
    assert_eq!(roots[1]["children"][0]["slug"], "shoes");
    assert_eq!(
        roots[1]["children"][0]["children"][0]["path"],
        "clothing/shoes/running"
    );

    let category = app
        .post_graphql(
            "{ category(slug: \"clothing/shoes\") { id slug depth children { slug } } }",
            json!({}),
            None,
        )
        .await;
    let category = category.ok("category");
    assert_eq!(category["id"], seeded.categories[1].0.to_string());
    assert_eq!(category["depth"], 1);
    assert_eq!(category["children"][0]["slug"], "running");
    let by_slug = app
        .post_graphql("{ category(slug: \"running\") { path } }", json!({}), None)
        .await;
    assert_eq!(by_slug.ok("category")["path"], "clothing/shoes/running");
    app.teardown().await;
}

#[tokio::test]
async fn cart_mutations_read_their_own_writes_with_server_prices() {
    let app = spawn_app().await;
    let (_seeder, seeded) = seed(&app).await;
    let (access, _) = app
        .signed_up("shopper@example.com", "correct horse battery")
        .await;

    // Empty before first use; nothing is written by looking.
    let empty = app.my_cart(Some(&access)).await;
    assert_eq!(empty.ok("myCart")["itemCount"], 0);

    // The answer already holds the line: read-your-writes, priced by the server.
    let added = app.add_to_cart(&access, "SKU-0-L", json!(2)).await;
    let cart = added.ok("addToCart");
    assert_eq!(cart["itemCount"], 2);
    assert_eq!(cart["items"][0]["sku"], "SKU-0-L");
    assert_eq!(cart["items"][0]["unitPrice"]["amountMinor"], 2500);
    assert_eq!(cart["items"][0]["lineTotal"]["amountMinor"], 5000);
    assert_eq!(
        cart["items"][0]["product"]["id"],
        seeded.products[0].id.to_string()
    );
    assert_eq!(
        cart["subtotal"],
        json!({ "amountMinor": 5000, "currency": "EUR", "formatted": "50.00 EUR" })
    );
    let cart_id = cart["id"].clone();

    let added = app.add_to_cart(&access, "SKU-4", json!(1)).await;
    let cart = added.ok("addToCart");
    assert_eq!(cart["id"], cart_id, "one cart per user");
    assert_eq!(cart["itemCount"], 3);
    assert_eq!(
        cart["subtotal"]["amountMinor"],
        5000 + seeded.products[4].price
    );
    assert_eq!(app.my_cart(Some(&access)).await.ok("myCart"), cart);

    let updated = app
        .cart_op(&access, "updateCartItem", json!({ "sku": "SKU-4", "q": 3 }))
        .await;
    assert_eq!(updated.ok("updateCartItem")["itemCount"], 5);
    let removed = app
        .cart_op(&access, "removeFromCart", json!({ "sku": "SKU-0-L" }))
        .await;
    let cart = removed.ok("removeFromCart");
    assert_eq!(cart["itemCount"], 3);
    assert_eq!(cart["items"].as_array().unwrap().len(), 1);
    let cleared = app.cart_op(&access, "clearCart", json!({})).await;
    assert_eq!(cleared.ok("clearCart")["itemCount"], 0);

    // Unknown, draft and line-less SKUs.
    app.add_to_cart(&access, "NO-SUCH-SKU", json!(1))
        .await
        .expect_code("NOT_FOUND");
    app.add_to_cart(&access, "SKU-29", json!(1))
        .await
        .expect_code("NOT_FOUND");
    app.cart_op(&access, "updateCartItem", json!({ "sku": "SKU-4", "q": 1 }))
        .await
        .expect_code("NOT_FOUND");
    app.teardown().await;
}

/// Every field a cart answer has, `updatedAt` included.
const FULL_CART: &str = "id currency itemCount updatedAt guestToken subtotal { amountMinor currency formatted } items { sku quantity unitPrice { amountMinor } lineTotal { amountMinor } product { id slug name } }";

/// The `emporium_read_your_writes_timeouts_total` count for `carts` on `/metrics`.
async fn carts_wait_timeouts(app: &TestApp) -> u64 {
    let text = app.get("/metrics").await.text().await.expect("metrics");
    text.lines()
        .filter(|l| {
            l.starts_with("emporium_read_your_writes_timeouts_total")
                && l.contains("projection=\"carts\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// A cart change answers with the cart as the command left it, without waiting for
/// the `carts` read model, and the shopper's next cart read waits for the read model
/// to reach that change. The read model is held still by a lock on its table (a
/// write lock on its file on the embedded mode): the change still answers with its
/// line; the cart read made meanwhile waits, times out (counted on `/metrics`) and
/// falls back to what the read model has; once released, the read model answers
/// exactly what every change answered (line order, totals, `updatedAt`).
#[tokio::test]
async fn a_cart_change_answers_from_the_cart_and_the_next_read_waits_for_it() {
    let app =
        crate::helpers::spawn_app_with(|s| s.backbone.read_your_writes_timeout_ms = 300).await;
    let (_seeder, _) = seed(&app).await;
    let (access, _) = app
        .signed_up("answers@example.com", "correct horse battery")
        .await;
    let op = |query: String, vars: Value| {
        let app = &app;
        let access = access.clone();
        async move { app.post_graphql(&query, vars, Some(&access)).await }
    };
    let add = |sku: &str, q: i64| {
        op(
            format!(
                "mutation($sku: String!, $q: Quantity!) {{ addToCart(sku: $sku, quantity: $q) {{ {FULL_CART} }} }}"
            ),
            json!({ "sku": sku, "q": q }),
        )
    };
    let read = || op(format!("{{ myCart {{ {FULL_CART} }} }}"), json!({}));

    // Line order is the order lines were added in; an added-again SKU keeps its place,
    // a removed and re-added one goes last. Each answer is what the read model then
    // answers.
    let mut answers = Vec::new();
    for (sku, q) in [("SKU-4", 1), ("SKU-0-L", 2), ("SKU-2", 1), ("SKU-4", 2)] {
        answers.push(add(sku, q).await.ok("addToCart").clone());
    }
    answers.push(
        op(
            format!("mutation($sku: String!) {{ removeFromCart(sku: $sku) {{ {FULL_CART} }} }}"),
            json!({ "sku": "SKU-0-L" }),
        )
        .await
        .ok("removeFromCart")
        .clone(),
    );
    answers.push(add("SKU-0-L", 1).await.ok("addToCart").clone());
    let last = answers.last().unwrap().clone();
    let order: Vec<(&str, i64)> = last["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["sku"].as_str().unwrap(), i["quantity"].as_i64().unwrap()))
        .collect();
    assert_eq!(order, [("SKU-4", 3), ("SKU-2", 1), ("SKU-0-L", 1)]);
    assert_eq!(
        read().await.ok("myCart").clone(),
        last,
        "the read model answers what the change did"
    );

    // Hold the read model still.
    let mut hold = app.read_db().begin_write().await.expect("begin");
    if !crate::helpers::embedded() {
        hold.conn()
            .execute(
                "LOCK TABLE carts IN EXCLUSIVE MODE",
                emporium_commands::args![],
            )
            .await
            .expect("lock carts");
    }
    let timeouts = carts_wait_timeouts(&app).await;
    app.advance(Duration::from_millis(1_500));
    let changed = add("SKU-2", 4).await.ok("addToCart").clone();
    assert_eq!(
        changed["itemCount"],
        last["itemCount"].as_i64().unwrap() + 4
    );
    assert_eq!(changed["items"][1]["quantity"], 5, "{changed}");
    assert_ne!(changed["updatedAt"], last["updatedAt"]);
    // The read made now cannot see the change: it waits for it, gives up after the
    // timeout and answers what the read model has.
    let stale = read().await.ok("myCart").clone();
    assert_eq!(stale, last, "the read model is held at the change before");
    assert_eq!(
        carts_wait_timeouts(&app).await,
        timeouts + 1,
        "the read waited for the change"
    );

    hold.commit().await.expect("release (nothing was written)");
    assert_eq!(read().await.ok("myCart").clone(), changed);
    app.teardown().await;
}

#[tokio::test]
async fn tampered_cart_inputs_are_refused_and_record_nothing() {
    let app = spawn_app().await;
    let (_seeder, _) = seed(&app).await;
    let (access, _) = app
        .signed_up("tamper@example.com", "correct horse battery")
        .await;

    for (quantity, rule) in [
        (json!(0), "quantity_min"),
        (json!(-1), "quantity_min"),
        (json!(2_147_483_648_i64), "quantity_max"),
    ] {
        let r = app.add_to_cart(&access, "SKU-4", quantity.clone()).await;
        r.expect_code("BAD_USER_INPUT");
        assert_eq!(
            r.body["errors"][0]["extensions"]["rule"], rule,
            "{quantity}: {}",
            r.body
        );
    }
    // A price (or an owner) is not an input at all.
    let r = app
        .post_graphql(
            "mutation { addToCart(sku: \"SKU-4\", quantity: 1, price: 1) { id } }",
            json!({}),
            Some(&access),
        )
        .await;
    r.expect_code("GRAPHQL_VALIDATION_FAILED");

    let cart_events = crate::helpers::number(
        &app.events_db(),
        "SELECT count(*) FROM events WHERE aggregate_type = 'cart'",
        emporium_commands::args![],
    )
    .await;
    assert_eq!(cart_events, 0);
    app.teardown().await;
}

#[tokio::test]
async fn a_cart_is_only_ever_its_owners() {
    let app = spawn_app().await;
    let (_seeder, _) = seed(&app).await;
    let (alice, _) = app
        .signed_up("alice@example.com", "correct horse battery")
        .await;
    let (bob, _) = app
        .signed_up("bob@example.com", "correct horse battery")
        .await;

    let alices = app.add_to_cart(&alice, "SKU-4", json!(1)).await;
    let alices_id = alices.ok("addToCart")["id"].clone();

    let bobs = app.my_cart(Some(&bob)).await;
    let bobs = bobs.ok("myCart");
    assert_eq!(bobs["itemCount"], 0);
    assert_ne!(bobs["id"], alices_id);
    let bobs = app.add_to_cart(&bob, "SKU-8", json!(2)).await;
    let bobs = bobs.ok("addToCart");
    assert_ne!(bobs["id"], alices_id);
    assert_eq!(bobs["items"].as_array().unwrap().len(), 1);
    let alices = app.my_cart(Some(&alice)).await;
    assert_eq!(alices.ok("myCart")["items"][0]["sku"], "SKU-4");
    assert_eq!(alices.ok("myCart")["itemCount"], 1);

    app.my_cart(None).await.expect_code("UNAUTHENTICATED");
    // Anonymous: a guest cart of its own (see guest_carts.rs), never a user's.
    let r = app
        .post_graphql(
            "mutation { addToCart(sku: \"SKU-4\", quantity: 1) { id guestToken } }",
            json!({}),
            None,
        )
        .await;
    let guest = r.ok("addToCart");
    assert_ne!(guest["id"], alices_id);
    assert!(guest["guestToken"].is_string());
    let r = app
        .post_graphql(
            &format!("{{ myWishlist {{ {WISHLIST_FIELDS} }} }}"),
            json!({}),
            None,
        )
        .await;
    r.expect_code("UNAUTHENTICATED");
    app.teardown().await;
}

#[tokio::test]
async fn wishlist_add_remove_and_clear_read_their_own_writes() {
    let app = spawn_app().await;
    let (_seeder, seeded) = seed(&app).await;
    let (access, _) = app
        .signed_up("wish@example.com", "correct horse battery")
        .await;
    let (other, _) = app
        .signed_up("other@example.com", "correct horse battery")
        .await;
    let p1 = seeded.products[1].id.to_string();
    let p2 = seeded.products[2].id.to_string();

    let r = app.wishlist_op(&access, "addToWishlist", &p1).await;
    assert_eq!(r.ok("addToWishlist")["count"], 1);
    // The app's clock is the test's: move it so the two additions are ordered.
    app.advance(Duration::from_secs(1));
    let r = app.wishlist_op(&access, "addToWishlist", &p2).await;
    let list = r.ok("addToWishlist");
    assert_eq!(list["count"], 2);
    assert_eq!(list["items"][0]["product"]["id"], p2, "newest first");
    // Adding again changes nothing.
    let r = app.wishlist_op(&access, "addToWishlist", &p2).await;
    assert_eq!(r.ok("addToWishlist")["count"], 2);

    let r = app.wishlist_op(&access, "removeFromWishlist", &p1).await;
    let list = r.ok("removeFromWishlist");
    assert_eq!(list["count"], 1);
    assert_eq!(list["items"][0]["product"]["id"], p2);

    // Someone else's wishlist is their own.
    let r = app
        .post_graphql(
            &format!("{{ myWishlist {{ {WISHLIST_FIELDS} }} }}"),
            json!({}),
            Some(&other),
        )
        .await;
    assert_eq!(r.ok("myWishlist")["count"], 0);

    // Drafts and unknown products cannot be added.
    let draft = seeded.products[PRODUCTS - 1].id.to_string();
    app.wishlist_op(&access, "addToWishlist", &draft)
        .await
        .expect_code("NOT_FOUND");
    app.wishlist_op(&access, "addToWishlist", &Uuid::new_v4().to_string())
        .await
        .expect_code("NOT_FOUND");

    let r = app
        .post_graphql(
            &format!("mutation {{ clearWishlist {{ {WISHLIST_FIELDS} }} }}"),
            json!({}),
            Some(&access),
        )
        .await;
    assert_eq!(r.ok("clearWishlist")["count"], 0);
    let r = app
        .post_graphql(
            &format!("{{ myWishlist {{ {WISHLIST_FIELDS} }} }}"),
            json!({}),
            Some(&access),
        )
        .await;
    assert_eq!(r.ok("myWishlist")["count"], 0);
    app.teardown().await;
}
