//! The viewer's address book over HTTP: add, update, remove and the two defaults,
//! each answering from the account itself; someone else's address id is answered
//! exactly like a missing one.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Gql, TestApp, spawn_app};
use crate::staff::event_count;

const ADDRESS_FIELDS: &str =
    "id fullName line1 line2 city region postalCode country phone defaultShipping defaultBilling";

pub(crate) fn address(name: &str) -> Value {
    json!({
        "fullName": name,
        "line1": "12 St James's Square",
        "city": "London",
        "postalCode": "SW1Y 4JH",
        "country": "gb",
    })
}

pub(crate) async fn add_address(app: &TestApp, access: &str, input: Value) -> Gql {
    app.post_graphql(
        &format!("mutation($i: AddressInput!) {{ addAddress(input: $i) {{ {ADDRESS_FIELDS} }} }}"),
        json!({ "i": input }),
        Some(access),
    )
    .await
}

async fn by_id(app: &TestApp, access: &str, op: &str, id: &str, input: Option<Value>) -> Gql {
    let (params, args) = match &input {
        Some(_) => ("$id: ID!, $i: AddressInput!", "id: $id, input: $i"),
        None => ("$id: ID!", "id: $id"),
    };
    app.post_graphql(
        &format!("mutation({params}) {{ {op}({args}) {{ {ADDRESS_FIELDS} }} }}"),
        json!({ "id": id, "i": input }),
        Some(access),
    )
    .await
}

async fn my_addresses(app: &TestApp, access: Option<&str>) -> Gql {
    app.post_graphql(
        &format!("{{ myAddresses {{ {ADDRESS_FIELDS} }} }}"),
        json!({}),
        access,
    )
    .await
}

#[tokio::test]
async fn the_address_book_is_kept_with_defaults_and_reads_its_own_writes() {
    let app = spawn_app().await;
    let (access, _) = app
        .signed_up("ada@example.com", "correct horse battery")
        .await;
    assert_eq!(
        my_addresses(&app, Some(&access)).await.ok("myAddresses"),
        &json!([])
    );

    let r = add_address(&app, &access, address("Ada Lovelace")).await;
    let home = r.ok("addAddress").clone();
    assert_eq!(home["country"], "GB");
    assert_eq!(
        (
            home["defaultShipping"].as_bool(),
            home["defaultBilling"].as_bool()
        ),
        (Some(true), Some(true)),
        "the first address is the default"
    );
    let home_id = home["id"].as_str().unwrap().to_owned();
    let r = add_address(&app, &access, json!({ "fullName": "Ada at work", "line1": "1 Office Road", "line2": "Floor 3", "city": "Cambridge", "postalCode": "CB1 1AA", "country": "GB", "phone": "+44 1223 000000" })).await;
    let work = r.ok("addAddress").clone();
    assert_eq!(
        (work["defaultShipping"].as_bool(), work["line2"].as_str()),
        (Some(false), Some("Floor 3"))
    );
    let work_id = work["id"].as_str().unwrap().to_owned();

    let r = by_id(&app, &access, "setDefaultShippingAddress", &work_id, None).await;
    assert_eq!(r.ok("setDefaultShippingAddress")["defaultShipping"], true);
    let r = by_id(&app, &access, "setDefaultBillingAddress", &work_id, None).await;
    assert_eq!(r.ok("setDefaultBillingAddress")["defaultBilling"], true);
    let book = my_addresses(&app, Some(&access)).await;
    let book = book.ok("myAddresses").as_array().unwrap().clone();
    let home_now = book.iter().find(|a| a["id"] == home_id.as_str()).unwrap();
    assert_eq!(
        (
            home_now["defaultShipping"].as_bool(),
            home_now["defaultBilling"].as_bool()
        ),
        (Some(false), Some(false))
    );

    let r = by_id(&app, &access, "updateAddress", &home_id, Some(json!({ "fullName": "Ada King", "line1": "St James's Square 12", "city": "London", "postalCode": "SW1Y 4JH", "country": "GB" }))).await;
    let updated = r.ok("updateAddress");
    assert_eq!(
        (updated["fullName"].as_str(), updated["line1"].as_str()),
        (Some("Ada King"), Some("St James's Square 12"))
    );

    let r = app
        .post_graphql(
            &format!("mutation($id: ID!) {{ removeAddress(id: $id) {{ {ADDRESS_FIELDS} }} }}"),
            json!({ "id": work_id }),
            Some(&access),
        )
        .await;
    let left = r.ok("removeAddress").as_array().unwrap().clone();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["id"], home_id.as_str());
    assert_eq!(
        left[0]["defaultShipping"], false,
        "the removed default is cleared, not moved"
    );
    let r = by_id(&app, &access, "setDefaultShippingAddress", &work_id, None).await;
    r.expect_code("NOT_FOUND");
    app.teardown().await;
}

#[tokio::test]
async fn bad_addresses_name_the_field_and_foreign_ids_look_missing() {
    let app = spawn_app().await;
    let (ada, _) = app
        .signed_up("ada@example.com", "correct horse battery")
        .await;
    let (eve, _) = app
        .signed_up("eve@example.com", "correct horse battery")
        .await;
    let r = add_address(&app, &ada, address("Ada Lovelace")).await;
    let ada_address = r.ok("addAddress")["id"].as_str().unwrap().to_owned();

    let before = event_count(&app).await;
    for (input, field, rule) in [
        (
            json!({ "fullName": " ", "line1": "x", "city": "x", "postalCode": "x", "country": "GB" }),
            "input.fullName",
            "required",
        ),
        (
            json!({ "fullName": "x", "line1": "x", "city": "x", "postalCode": "x", "country": "Britain" }),
            "input.country",
            "country_code",
        ),
        (
            json!({ "fullName": "x", "line1": "x".repeat(201), "city": "x", "postalCode": "x", "country": "GB" }),
            "input.line1",
            "too_long",
        ),
    ] {
        let r = add_address(&app, &eve, input).await;
        r.expect_code("BAD_USER_INPUT");
        let ext = &r.body["errors"][0]["extensions"];
        assert_eq!(
            (ext["field"].as_str(), ext["rule"].as_str()),
            (Some(field), Some(rule)),
            "{}",
            r.body
        );
    }
    assert_eq!(event_count(&app).await, before);

    // Eve using Ada's address id gets exactly what a missing id gets, and nothing
    // changes for Ada.
    for op in [
        "setDefaultShippingAddress",
        "setDefaultBillingAddress",
        "removeAddress",
        "updateAddress",
    ] {
        let input = (op == "updateAddress").then(|| address("Eve"));
        let foreign = by_id(&app, &eve, op, &ada_address, input.clone()).await;
        let missing = by_id(&app, &eve, op, &Uuid::new_v4().to_string(), input.clone()).await;
        let malformed = by_id(&app, &eve, op, "nope", input).await;
        foreign.expect_code("NOT_FOUND");
        assert_eq!(foreign.body, missing.body, "{op}");
        assert_eq!(foreign.body, malformed.body, "{op}");
    }
    assert_eq!(
        event_count(&app).await,
        before,
        "a foreign id recorded something"
    );
    let r = my_addresses(&app, Some(&ada)).await;
    assert_eq!(r.ok("myAddresses")[0]["fullName"], "Ada Lovelace");
    assert_eq!(
        my_addresses(&app, Some(&eve)).await.ok("myAddresses"),
        &json!([])
    );
    my_addresses(&app, None)
        .await
        .expect_code("UNAUTHENTICATED");
    app.teardown().await;
}
