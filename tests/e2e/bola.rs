//! Broken object-level authorization, across every field that takes an id, derived
//! from the schema.
//!
//! `id_taking_fields` parses the SDL the gateway serves and lists every query and
//! mutation field with an `ID` argument, or an input object that holds one (at any
//! depth). Each must have a row in [`CASES`] saying what the id names:
//!
//! - `Owned`: something one user owns. User B calling with user A's id must get
//!   exactly what a missing id gets (same data, same errors: `NOT_FOUND` or null),
//!   record nothing, and A must still succeed with it (so the id was valid).
//! - `Staff`: staff-only. A customer gets `FORBIDDEN` and nothing is recorded.
//! - `Public`: the id names a public catalogue object, or the field acts only on
//!   the caller's own things; the reason is written in the row.
//!
//! A new id-taking field without a row fails `every_id_taking_field_is_covered`
//! with the row to add, so a new resolver is covered as soon as it exists.

use std::collections::BTreeSet;

use async_graphql::parser::parse_schema;
use async_graphql::parser::types::{BaseType, Type, TypeKind, TypeSystemDefinition};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::addresses::{add_address, address};
use crate::helpers::{Gql, spawn_app};
use crate::staff::{event_count, seed_order, user_id};

/// What user A owns, for the `Owned` rows.
struct Owned {
    order: String,
    payment: String,
    notification: String,
    address: String,
}

/// Which of A's ids an `Owned` row uses.
#[derive(Debug, Clone, Copy)]
enum Mine {
    Order,
    /// The payment of A's order (`Uuid::new_v5(order, b"payment")`).
    Payment,
    Notification,
    Address,
}

impl Owned {
    fn id(&self, which: Mine) -> &str {
        match which {
            Mine::Order => &self.order,
            Mine::Payment => &self.payment,
            Mine::Notification => &self.notification,
            Mine::Address => &self.address,
        }
    }
}

/// How a field's id is protected, with a call that uses `$id`.
#[derive(Debug, Clone, Copy)]
enum Case {
    /// Owned by one user; `query` takes `$id` (and `$input` when `input` is set).
    Owned {
        id: Mine,
        query: &'static str,
        input: bool,
    },
    /// Owned, but the owner's own call needs a fixture this suite does not build (an
    /// order that went through checkout, a payment): a foreign id must still answer
    /// exactly like a missing one and record nothing; `covered_by` names the test that
    /// exercises the owner's call.
    OwnedElsewhere {
        id: Mine,
        query: &'static str,
        covered_by: &'static str,
    },
    /// Staff only; `query` takes `$id`.
    Staff { query: &'static str },
    /// Not owned; why.
    Public { why: &'static str },
}

const CATALOGUE: &str = "names a public catalogue object (the same for every caller)";

/// Every id-taking field of the schema and how it is covered (`Root.field`).
const CASES: &[(&str, Case)] = &[
    // Public catalogue objects, or the caller's own things.
    ("QueryRoot.product", Case::Public { why: CATALOGUE }),
    (
        "QueryRoot.products",
        Case::Public {
            why: "filter.categoryId names a public category",
        },
    ),
    (
        "QueryRoot.productReviews",
        Case::Public {
            why: "approved reviews of a public product are public",
        },
    ),
    (
        "MutationRoot.addToWishlist",
        Case::Public {
            why: "adds a public product to the caller's own wishlist",
        },
    ),
    (
        "MutationRoot.removeFromWishlist",
        Case::Public {
            why: "removes a product from the caller's own wishlist",
        },
    ),
    (
        "MutationRoot.writeReview",
        Case::Public {
            why: "writes the caller's own review (one per user and product by construction)",
        },
    ),
    (
        "MutationRoot.markReviewHelpful",
        Case::Public {
            why: "votes on an approved, public review, once per caller",
        },
    ),
    // Owned.
    (
        "QueryRoot.order",
        Case::Owned {
            id: Mine::Order,
            query: "query($id: ID!) { order(id: $id) { id status } }",
            input: false,
        },
    ),
    (
        "MutationRoot.markNotificationRead",
        Case::Owned {
            id: Mine::Notification,
            query: "mutation($id: ID!) { markNotificationRead(id: $id) { id read } }",
            input: false,
        },
    ),
    (
        "MutationRoot.updateAddress",
        Case::Owned {
            id: Mine::Address,
            query: "mutation($id: ID!, $input: AddressInput!) { updateAddress(id: $id, input: $input) { id fullName } }",
            input: true,
        },
    ),
    (
        "MutationRoot.setDefaultShippingAddress",
        Case::Owned {
            id: Mine::Address,
            query: "mutation($id: ID!) { setDefaultShippingAddress(id: $id) { id defaultShipping } }",
            input: false,
        },
    ),
    (
        "MutationRoot.setDefaultBillingAddress",
        Case::Owned {
            id: Mine::Address,
            query: "mutation($id: ID!) { setDefaultBillingAddress(id: $id) { id defaultBilling } }",
            input: false,
        },
    ),
    // Last of the address rows: it removes A's address.
    (
        "MutationRoot.removeAddress",
        Case::Owned {
            id: Mine::Address,
            query: "mutation($id: ID!) { removeAddress(id: $id) { id } }",
            input: false,
        },
    ),
    // Staff only.
    (
        "QueryRoot.orders",
        Case::Staff {
            query: "query($id: ID!) { orders(filter: { customerId: $id }) { nodes { customerId } } }",
        },
    ),
    (
        "QueryRoot.staffOrder",
        Case::Staff {
            query: "query($id: ID!) { staffOrder(id: $id) { customerId } }",
        },
    ),
    (
        "MutationRoot.createProduct",
        Case::Staff {
            query: "mutation($id: ID!) { createProduct(input: { sku: \"B-1\", slug: \"b-1\", name: \"B\", categoryId: $id, price: { amountMinor: 1, currency: \"EUR\" } }) { id } }",
        },
    ),
    (
        "MutationRoot.updateProduct",
        Case::Staff {
            query: "mutation($id: ID!) { updateProduct(id: $id, input: { name: \"B\" }) { id } }",
        },
    ),
    (
        "MutationRoot.deleteProduct",
        Case::Staff {
            query: "mutation($id: ID!) { deleteProduct(id: $id) { id } }",
        },
    ),
    (
        "MutationRoot.changeProductPrice",
        Case::Staff {
            query: "mutation($id: ID!) { changeProductPrice(id: $id, price: { amountMinor: 1, currency: \"EUR\" }) { id } }",
        },
    ),
    (
        "MutationRoot.publishProduct",
        Case::Staff {
            query: "mutation($id: ID!) { publishProduct(id: $id) { id } }",
        },
    ),
    (
        "MutationRoot.unpublishProduct",
        Case::Staff {
            query: "mutation($id: ID!) { unpublishProduct(id: $id) { id } }",
        },
    ),
    (
        "MutationRoot.featureProduct",
        Case::Staff {
            query: "mutation($id: ID!) { featureProduct(id: $id) { id } }",
        },
    ),
    (
        "MutationRoot.unfeatureProduct",
        Case::Staff {
            query: "mutation($id: ID!) { unfeatureProduct(id: $id) { id } }",
        },
    ),
    (
        "MutationRoot.addVariant",
        Case::Staff {
            query: "mutation($id: ID!) { addVariant(productId: $id, input: { sku: \"B-2\", price: { amountMinor: 1, currency: \"EUR\" } }) { id } }",
        },
    ),
    (
        "MutationRoot.updateVariant",
        Case::Staff {
            query: "mutation($id: ID!) { updateVariant(productId: $id, variantId: $id, input: {}) { id } }",
        },
    ),
    (
        "MutationRoot.removeVariant",
        Case::Staff {
            query: "mutation($id: ID!) { removeVariant(productId: $id, variantId: $id) { id } }",
        },
    ),
    (
        "MutationRoot.changeVariantPrice",
        Case::Staff {
            query: "mutation($id: ID!) { changeVariantPrice(productId: $id, variantId: $id, price: { amountMinor: 1, currency: \"EUR\" }) { id } }",
        },
    ),
    (
        "MutationRoot.addProductImage",
        Case::Staff {
            query: "mutation($id: ID!) { addProductImage(productId: $id, source: \"a/b.jpg\", altText: \"b\") { id } }",
        },
    ),
    (
        "MutationRoot.removeProductImage",
        Case::Staff {
            query: "mutation($id: ID!) { removeProductImage(productId: $id, imageId: $id) { id } }",
        },
    ),
    (
        "MutationRoot.setPrimaryProductImage",
        Case::Staff {
            query: "mutation($id: ID!) { setPrimaryProductImage(productId: $id, imageId: $id) { id } }",
        },
    ),
    (
        "MutationRoot.createCategory",
        Case::Staff {
            query: "mutation($id: ID!) { createCategory(name: \"B\", slug: \"b\", parentId: $id) { id } }",
        },
    ),
    (
        "MutationRoot.renameCategory",
        Case::Staff {
            query: "mutation($id: ID!) { renameCategory(id: $id, name: \"B\") { id } }",
        },
    ),
    (
        "MutationRoot.moveCategory",
        Case::Staff {
            query: "mutation($id: ID!) { moveCategory(id: $id) { id } }",
        },
    ),
    (
        "MutationRoot.deleteCategory",
        Case::Staff {
            query: "mutation($id: ID!) { deleteCategory(id: $id) { id } }",
        },
    ),
    (
        "MutationRoot.shipOrder",
        Case::Staff {
            query: "mutation($id: ID!) { shipOrder(id: $id, trackingNumber: \"T\") { customerId } }",
        },
    ),
    (
        "MutationRoot.markOrderDelivered",
        Case::Staff {
            query: "mutation($id: ID!) { markOrderDelivered(id: $id) { customerId } }",
        },
    ),
    (
        "MutationRoot.cancelOrder",
        Case::OwnedElsewhere {
            id: Mine::Order,
            query: "mutation($id: ID!) { cancelOrder(id: $id) { id status } }",
            covered_by: "checkout::a_cancel_before_capture_voids_and_after_capture_refunds",
        },
    ),
    (
        "MutationRoot.confirmCheckoutPayment",
        Case::OwnedElsewhere {
            id: Mine::Order,
            query: "mutation($id: ID!) { confirmCheckoutPayment(orderId: $id) { __typename } }",
            covered_by: "checkout::every_test_card_pays_declines_with_its_code_or_asks_for_3d_secure",
        },
    ),
    (
        "QueryRoot.payment",
        Case::OwnedElsewhere {
            id: Mine::Payment,
            query: "query($id: ID!) { payment(id: $id) { id } }",
            covered_by: "payments::my_payments_shows_only_my_own",
        },
    ),
    (
        "MutationRoot.approveHeldOrder",
        Case::Staff {
            query: "mutation($id: ID!) { approveHeldOrder(id: $id) { id } }",
        },
    ),
    (
        "MutationRoot.rejectHeldOrder",
        Case::Staff {
            query: "mutation($id: ID!) { rejectHeldOrder(id: $id) { id } }",
        },
    ),
    (
        "MutationRoot.refundOrder",
        Case::Staff {
            query: "mutation($id: ID!) { refundOrder(id: $id, reason: \"r\") { id } }",
        },
    ),
];

/// The innermost named type of `ty`.
fn named(ty: &Type) -> &str {
    match &ty.base {
        BaseType::Named(name) => name.as_str(),
        BaseType::List(inner) => named(inner),
    }
}

/// Every `Root.field` of the query and mutation roots that takes an `ID`, directly or
/// inside an input object.
fn id_taking_fields(sdl: &str) -> BTreeSet<String> {
    let doc = parse_schema(sdl).expect("the served SDL parses");
    let mut inputs: std::collections::HashMap<String, Vec<String>> = Default::default();
    let mut roots = Vec::new();
    for def in &doc.definitions {
        let TypeSystemDefinition::Type(t) = def else {
            continue;
        };
        let t = &t.node;
        match &t.kind {
            TypeKind::InputObject(io) => {
                inputs.insert(
                    t.name.node.to_string(),
                    io.fields
                        .iter()
                        .map(|f| named(&f.node.ty.node).to_owned())
                        .collect(),
                );
            }
            TypeKind::Object(o)
                if ["QueryRoot", "MutationRoot"].contains(&t.name.node.as_str()) =>
            {
                for f in &o.fields {
                    let args: Vec<String> = f
                        .node
                        .arguments
                        .iter()
                        .map(|a| named(&a.node.ty.node).to_owned())
                        .collect();
                    roots.push((format!("{}.{}", t.name.node, f.node.name.node), args));
                }
            }
            _ => {}
        }
    }
    fn holds_id(
        ty: &str,
        inputs: &std::collections::HashMap<String, Vec<String>>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        if ty == "ID" {
            return true;
        }
        if !seen.insert(ty.to_owned()) {
            return false;
        }
        inputs
            .get(ty)
            .is_some_and(|fields| fields.iter().any(|f| holds_id(f, inputs, seen)))
    }
    roots
        .into_iter()
        .filter(|(_, args)| {
            args.iter()
                .any(|a| holds_id(a, &inputs, &mut BTreeSet::new()))
        })
        .map(|(name, _)| name)
        .collect()
}

#[test]
fn every_id_taking_field_is_covered() {
    let fields = id_taking_fields(&emporium_gateway::graphql::sdl());
    assert!(fields.contains("QueryRoot.order"), "{fields:?}");
    assert!(
        fields.contains("QueryRoot.products"),
        "ids inside inputs count: {fields:?}"
    );
    let covered: BTreeSet<String> = CASES.iter().map(|(f, _)| (*f).to_owned()).collect();
    let missing: Vec<String> = fields
        .difference(&covered)
        .map(|f| {
            format!(
                "`{f}` takes an id but tests/e2e/bola.rs has no row for it: add to CASES \
                 (\"{f}\", Case::Owned {{ id, query, input }}) when the id names something a user \
                 owns (and give Owned/Mine the fixture), Case::Staff {{ query }} when it is \
                 staff-only, or Case::Public {{ why }} when the id names a public object"
            )
        })
        .collect();
    assert!(missing.is_empty(), "{}", missing.join("\n"));
    let stale: Vec<&String> = covered.difference(&fields).collect();
    assert!(
        stale.is_empty(),
        "rows for fields that take no id (any more): {stale:?}"
    );
}

/// The answer without what legitimately differs between two calls (nothing, today:
/// error locations and paths are the same for the same query).
fn shape(r: &Gql) -> (u16, Value) {
    (r.status, r.body.clone())
}

#[tokio::test]
async fn another_users_id_answers_exactly_like_a_missing_one_on_every_id_taking_field() {
    let app = spawn_app().await;
    let (alice, _) = app
        .signed_up("alice@example.com", "correct horse battery")
        .await;
    let (bob, _) = app
        .signed_up("bob@example.com", "correct horse battery")
        .await;
    let order = seed_order(&app, user_id(&app, &alice).await, true).await;
    let r = app
        .post_graphql("{ notifications { id } }", json!({}), Some(&alice))
        .await;
    let notification = r.ok("notifications")[0]["id"]
        .as_str()
        .expect("a notification")
        .to_owned();
    let r = add_address(&app, &alice, address("Alice")).await;
    let owned = Owned {
        order: order.to_string(),
        payment: Uuid::new_v5(&order, b"payment").to_string(),
        notification,
        address: r.ok("addAddress")["id"].as_str().unwrap().to_owned(),
    };

    let fields = id_taking_fields(&emporium_gateway::graphql::sdl());
    for (field, case) in CASES {
        assert!(fields.contains(*field), "{field} is not an id-taking field");
        match *case {
            Case::Owned { id, query, input } => {
                let vars = |id: &str| {
                    let mut v = json!({ "id": id });
                    if input {
                        v["input"] = address("Mallory");
                    }
                    v
                };
                let before = event_count(&app).await;
                let foreign = app
                    .post_graphql(query, vars(owned.id(id)), Some(&bob))
                    .await;
                let missing = app
                    .post_graphql(query, vars(&Uuid::new_v4().to_string()), Some(&bob))
                    .await;
                assert_eq!(
                    shape(&foreign),
                    shape(&missing),
                    "{field}: a foreign id differs from a missing one"
                );
                assert!(
                    foreign.code() == Some("NOT_FOUND")
                        || foreign.body["data"]
                            .as_object()
                            .is_some_and(|d| d.values().all(Value::is_null)),
                    "{field}: {}",
                    foreign.body
                );
                assert_eq!(
                    event_count(&app).await,
                    before,
                    "{field}: a foreign id recorded something"
                );
                let own = app
                    .post_graphql(query, vars(owned.id(id)), Some(&alice))
                    .await;
                assert!(
                    own.body.get("errors").is_none(),
                    "{field}: the owner's own call failed: {}",
                    own.body
                );
            }
            Case::OwnedElsewhere {
                id,
                query,
                covered_by,
            } => {
                assert!(!covered_by.is_empty());
                let before = event_count(&app).await;
                let foreign = app
                    .post_graphql(query, json!({ "id": owned.id(id) }), Some(&bob))
                    .await;
                let missing = app
                    .post_graphql(
                        query,
                        json!({ "id": Uuid::new_v4().to_string() }),
                        Some(&bob),
                    )
                    .await;
                assert_eq!(
                    shape(&foreign),
                    shape(&missing),
                    "{field}: a foreign id differs from a missing one"
                );
                assert_eq!(
                    foreign.code(),
                    Some("NOT_FOUND"),
                    "{field}: {}",
                    foreign.body
                );
                assert_eq!(
                    event_count(&app).await,
                    before,
                    "{field}: a foreign id recorded something"
                );
            }
            Case::Staff { query } => {
                let before = event_count(&app).await;
                let r = app
                    .post_graphql(query, json!({ "id": owned.order }), Some(&bob))
                    .await;
                r.expect_code("FORBIDDEN");
                assert_eq!(
                    event_count(&app).await,
                    before,
                    "{field}: a customer's call recorded something"
                );
            }
            Case::Public { why } => assert!(!why.is_empty()),
        }
    }
    app.teardown().await;
}
