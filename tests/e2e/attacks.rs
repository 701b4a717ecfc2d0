//! The attack suite: query shape limits, request limits, CSRF, forged and misused
//! tokens, refresh-token reuse and races.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use emporium_gateway::clock::Clock;
use emporium_gateway::config::{Environment, Secret};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_with, tokens};

const PASSWORD: &str = "correct horse battery";

/// `{ __type(name: "Query") { ofType { ... name } } }` nested to `depth` fields.
fn query_of_depth(depth: usize) -> String {
    assert!(depth >= 2);
    let inner = depth - 2;
    format!(
        "{{ __type(name: \"Query\") {{ {}name{} }} }}",
        "ofType { ".repeat(inner),
        " }".repeat(inner)
    )
}

#[tokio::test]
async fn one_level_deeper_than_the_limit_is_refused() {
    let app = spawn_app().await;
    let max = app.settings.limits.max_depth;
    let at_limit = app
        .post_graphql(&query_of_depth(max), json!({}), None)
        .await;
    assert!(at_limit.body.get("errors").is_none(), "{at_limit:?}");
    let deeper = app
        .post_graphql(&query_of_depth(max + 1), json!({}), None)
        .await;
    deeper.expect_code("LIMIT_EXCEEDED");
    assert_eq!(deeper.body["errors"][0]["extensions"]["limit"], "depth");
    assert!(deeper.body["data"].is_null(), "{deeper:?}");
    app.teardown().await;
}

#[tokio::test]
async fn a_hundred_aliased_logins_run_no_password_verification() {
    let app = spawn_app().await;
    app.signed_up("victim@example.org", PASSWORD).await;
    let before = app.password_verifications();
    let fields: String = (0..100)
        .map(|i| format!("a{i}: login(input: {{email: \"victim@example.org\", password: \"guess{i}\"}}) {{ accessToken }} "))
        .collect();
    let response = app
        .post_graphql(&format!("mutation {{ {fields} }}"), json!({}), None)
        .await;
    response.expect_code("LIMIT_EXCEEDED");
    assert_eq!(response.body["errors"][0]["extensions"]["limit"], "aliases");
    assert_eq!(
        app.password_verifications(),
        before,
        "no password was verified"
    );

    // Within the alias limit, complexity (login costs 100) still stops a handful.
    let few: String = (0..5)
        .map(|i| format!("a{i}: login(input: {{email: \"victim@example.org\", password: \"guess{i}\"}}) {{ accessToken }} "))
        .collect();
    let response = app
        .post_graphql(&format!("mutation {{ {few} }}"), json!({}), None)
        .await;
    assert_eq!(
        response.body["errors"][0]["extensions"]["limit"], "complexity",
        "{response:?}"
    );
    assert_eq!(app.password_verifications(), before);
    app.teardown().await;
}

#[tokio::test]
async fn a_batch_of_fifty_is_refused_and_a_small_one_runs() {
    let app = spawn_app().await;
    let batch: Vec<Value> = (0..50).map(|_| json!({ "query": "{ version }" })).collect();
    let response = app.post_json(&Value::Array(batch), None, None).await;
    assert_eq!(response.status, 400);
    response.expect_code("LIMIT_EXCEEDED");
    assert_eq!(response.body["errors"][0]["extensions"]["limit"], "batch");

    let small = json!([{ "query": "{ version }" }, { "query": "{ v: version }" }]);
    let response = app.post_json(&small, None, None).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body[1]["data"]["v"], env!("CARGO_PKG_VERSION"));
    app.teardown().await;
}

async fn production_app() -> TestApp {
    spawn_app_with(|s| {
        s.env = Environment::Production;
        s.auth.jwt_secret = Secret::new("a-production-test-secret");
        s.payments.allow_offline_in_production = true;
    })
    .await
}

#[tokio::test]
async fn introspection_is_off_in_production() {
    let app = production_app().await;
    let schema = app
        .post_graphql("{ __schema { types { name } } }", json!({}), None)
        .await;
    assert!(schema.body["data"]["__schema"].is_null(), "{schema:?}");
    let ty = app
        .post_graphql("{ __type(name: \"User\") { name } }", json!({}), None)
        .await;
    assert!(ty.body["data"]["__type"].is_null(), "{ty:?}");
    // GraphiQL is not served either.
    assert_eq!(app.get("/graphql").await.status(), 404);
    app.teardown().await;
}

#[tokio::test]
async fn a_misspelt_field_gets_no_suggestion_in_production() {
    let dev = spawn_app().await;
    let suggested = dev.post_graphql("{ versoin }", json!({}), None).await;
    assert!(
        suggested.body.to_string().contains("Did you mean"),
        "{suggested:?}"
    );
    dev.teardown().await;

    let app = production_app().await;
    let response = app.post_graphql("{ versoin }", json!({}), None).await;
    response.expect_code("GRAPHQL_VALIDATION_FAILED");
    assert!(
        !response.body.to_string().contains("Did you mean"),
        "{response:?}"
    );
    assert!(
        !response.body.to_string().contains("version"),
        "{response:?}"
    );
    app.teardown().await;
}

#[tokio::test]
async fn a_thousand_directives_are_refused() {
    let app = spawn_app().await;
    let directives = "@skip(if: false) ".repeat(1000);
    let response = app
        .post_graphql(&format!("{{ version {directives} }}"), json!({}), None)
        .await;
    response.expect_code("LIMIT_EXCEEDED");
    assert_eq!(
        response.body["errors"][0]["extensions"]["limit"],
        "directives"
    );
    app.teardown().await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let app = spawn_app().await;
    let padding = " ".repeat(app.settings.limits.max_body_bytes);
    let body = format!("{{\"query\": \"{{ version }}{padding}\"}}");
    let response = app.post_raw(body.into_bytes(), "application/json").await;
    assert_eq!(response.status, 413);
    response.expect_code("LIMIT_EXCEEDED");
    assert_eq!(
        response.body["errors"][0]["extensions"]["limit"],
        "body_size"
    );
    app.teardown().await;
}

#[tokio::test]
async fn mutations_over_get_and_form_posts_are_refused() {
    let app = spawn_app().await;
    let query = app.get_graphql("{ version }").await;
    assert_eq!(query.status, 200);
    assert_eq!(query.body["data"]["version"], env!("CARGO_PKG_VERSION"));

    let mutation = app
        .get_graphql("mutation { requestPasswordReset(email: \"a@example.org\") }")
        .await;
    assert_eq!(mutation.status, 405);
    mutation.expect_code("METHOD_NOT_ALLOWED");

    let form = app
        .post_raw(
            b"query=mutation+%7B+requestPasswordReset(email%3A+%22a%40example.org%22)+%7D".to_vec(),
            "application/x-www-form-urlencoded",
        )
        .await;
    assert_eq!(form.status, 415);
    form.expect_code("UNSUPPORTED_MEDIA_TYPE");
    let text = app
        .post_raw(
            br#"{"query":"mutation { requestPasswordReset(email: \"a@example.org\") }"}"#.to_vec(),
            "text/plain",
        )
        .await;
    assert_eq!(text.status, 415);
    assert!(app.mail.try_next_mail().await.is_none());
    app.teardown().await;
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("json")
}

fn sign(app: &TestApp, claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(app.settings.auth.jwt_secret.expose().as_bytes()),
    )
    .expect("sign")
}

#[tokio::test]
async fn forged_and_misused_tokens_are_refused() {
    let app = spawn_app().await;
    let (access, refresh) = app.signed_up("jwt@example.org", PASSWORD).await;
    let claims = claims_of(&access);
    // Control: the same claims, re-signed with the right key, are accepted.
    assert_eq!(app.me(Some(&sign(&app, &claims))).await.status, 200);

    let with = |key: &str, value: Value| {
        let mut c = claims.clone();
        c[key] = value;
        sign(&app, &c)
    };
    let now = app.clock.now().timestamp();
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        access.split('.').nth(1).unwrap()
    );
    let wrong_key = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(b"someone else's key"),
    )
    .unwrap();
    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &claims,
        &EncodingKey::from_secret(app.settings.auth.jwt_secret.expose().as_bytes()),
    )
    .unwrap();
    let cases = [
        ("alg none", alg_none),
        ("wrong key", wrong_key),
        ("HS512", hs512),
        ("wrong aud", with("aud", json!("another-api"))),
        ("wrong iss", with("iss", json!("evil"))),
        ("expired by 61 s", with("exp", json!(now - 61))),
        ("typ refresh", with("typ", json!("refresh"))),
        ("refresh token as access", refresh.clone()),
    ];
    for (name, token) in cases {
        let response = app.me(Some(&token)).await;
        assert_eq!(response.status, 401, "{name}: {response:?}");
        response.expect_code("UNAUTHENTICATED");
    }
    // And an access token is not a refresh token.
    app.refresh_token(&access)
        .await
        .expect_code("UNAUTHENTICATED");
    app.teardown().await;
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_its_family() {
    let app = spawn_app().await;
    let (_, r1) = app.signed_up("reuse@example.org", PASSWORD).await;
    let (a2, r2) = tokens(app.refresh_token(&r1).await.ok("refreshToken"));
    assert_eq!(app.me(Some(&a2)).await.status, 200);

    app.refresh_token(&r1).await.expect_code("UNAUTHENTICATED");
    // The thief's replay took the legitimate holder's session down with it.
    app.refresh_token(&r2).await.expect_code("UNAUTHENTICATED");
    assert_eq!(app.me(Some(&a2)).await.status, 401);
    // Other sessions are unaffected.
    let login = app.login("reuse@example.org", PASSWORD).await;
    let (a3, _) = tokens(login.ok("login"));
    assert_eq!(app.me(Some(&a3)).await.status, 200);
    app.teardown().await;
}

#[tokio::test]
async fn of_two_concurrent_refreshes_with_one_token_exactly_one_wins() {
    let app = spawn_app().await;
    app.signed_up("race@example.org", PASSWORD).await;
    for _ in 0..3 {
        let (_, refresh) = tokens(app.login("race@example.org", PASSWORD).await.ok("login"));
        let (a, b) = tokio::join!(app.refresh_token(&refresh), app.refresh_token(&refresh));
        let winners = [&a, &b]
            .iter()
            .filter(|r| r.body.get("errors").is_none())
            .count();
        assert_eq!(winners, 1, "{a:?}\n{b:?}");
        let loser = if a.body.get("errors").is_some() {
            &a
        } else {
            &b
        };
        loser.expect_code("UNAUTHENTICATED");
    }
    app.teardown().await;
}
