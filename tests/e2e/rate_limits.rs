//! Rate limits over HTTP, in memory and in Redis: login per account and per
//! address, anonymous and signed-in request rates, 429 with `Retry-After`.

use std::time::Duration;

use emporium_gateway::config::SecretUrl;
use serde_json::json;

use crate::helpers::{TestApp, spawn_app_with};

const PASSWORD: &str = "correct horse battery";

/// The Redis used by the Redis-backed tests: `TEST_REDIS_URL`, default the local one
/// (Redis runs on every development machine; see `./dev services`).
fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

async fn app(redis: bool) -> TestApp {
    spawn_app_with(|s| {
        s.http.trust_forwarded_for = true;
        if redis {
            s.redis.url = Some(SecretUrl::new(redis_url()));
        }
    })
    .await
}

fn ip(i: usize) -> String {
    format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256)
}

/// 101 failed logins on one account, each from a different address: the first five
/// are checked, the rest are refused with 429 before any password is verified.
async fn failed_logins_on_one_account_are_limited_after_five(redis: bool) {
    let app = app(redis).await;
    app.signed_up("target@example.org", PASSWORD).await;
    let before = app.password_verifications();
    for i in 0..101 {
        let response = app
            .login_from(
                "target@example.org",
                &format!("guess {i}"),
                Some(&ip(i + 1)),
            )
            .await;
        if i < 5 {
            assert_eq!(response.status, 200, "attempt {i}: {response:?}");
            response.expect_code("INVALID_CREDENTIALS");
        } else {
            assert_eq!(response.status, 429, "attempt {i}: {response:?}");
            response.expect_code("RATE_LIMITED");
            let retry_after = response.retry_after.expect("Retry-After");
            assert!((1..=60).contains(&retry_after), "{retry_after}");
        }
    }
    assert_eq!(app.password_verifications() - before, 5);
    // Even the right password waits for the window to pass.
    let right = app
        .login_from("target@example.org", PASSWORD, Some(&ip(500)))
        .await;
    assert_eq!(right.status, 429);
    app.advance(Duration::from_secs(60));
    app.login_from("target@example.org", PASSWORD, Some(&ip(501)))
        .await
        .ok("login");
    app.teardown().await;
}

#[tokio::test]
async fn failed_logins_on_one_account_are_limited_after_five_in_memory() {
    failed_logins_on_one_account_are_limited_after_five(false).await;
}

#[tokio::test]
async fn failed_logins_on_one_account_are_limited_after_five_in_redis() {
    failed_logins_on_one_account_are_limited_after_five(true).await;
}

async fn logins_from_one_address_are_limited_across_accounts(redis: bool) {
    let app = app(redis).await;
    for i in 0..5 {
        app.login_from(
            &format!("nobody{i}@example.org"),
            PASSWORD,
            Some("192.0.2.7"),
        )
        .await
        .expect_code("INVALID_CREDENTIALS");
    }
    let sixth = app
        .login_from("nobody5@example.org", PASSWORD, Some("192.0.2.7"))
        .await;
    assert_eq!(sixth.status, 429);
    sixth.expect_code("RATE_LIMITED");
    // Another address is not affected.
    app.login_from("nobody5@example.org", PASSWORD, Some("192.0.2.8"))
        .await
        .expect_code("INVALID_CREDENTIALS");
    app.teardown().await;
}

#[tokio::test]
async fn logins_from_one_address_are_limited_across_accounts_in_memory() {
    logins_from_one_address_are_limited_across_accounts(false).await;
}

#[tokio::test]
async fn logins_from_one_address_are_limited_across_accounts_in_redis() {
    logins_from_one_address_are_limited_across_accounts(true).await;
}

#[tokio::test]
async fn anonymous_callers_get_100_operations_an_hour_and_users_1000() {
    let app = app(false).await;
    let address = Some("198.51.100.1");
    let register = json!({
        "query": "mutation { register(input: {email: \"rate@example.org\", password: \"correct horse battery\", firstName: \"R\"}) { accessToken } }"
    });
    let registered = app.post_json(&register, None, address).await;
    let access = registered.ok("register")["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let version = json!({ "query": "{ version }" });
    for i in 1..100 {
        let response = app.post_json(&version, None, address).await;
        assert_eq!(response.status, 200, "request {i}: {response:?}");
    }
    let over = app.post_json(&version, None, address).await;
    assert_eq!(over.status, 429, "{over:?}");
    over.expect_code("RATE_LIMITED");
    assert!(over.retry_after.is_some_and(|s| (1..=3600).contains(&s)));

    // Signed in, the same address has its own (larger) allowance.
    let me = json!({ "query": "{ me { email } }" });
    for _ in 0..200 {
        assert_eq!(app.post_json(&me, Some(&access), address).await.status, 200);
    }
    // A batch counts each of its operations.
    app.advance(Duration::from_secs(3600));
    let batch = json!([{ "query": "{ version }" }, { "query": "{ version }" }]);
    for _ in 0..50 {
        assert_eq!(app.post_json(&batch, None, address).await.status, 200);
    }
    assert_eq!(app.post_json(&version, None, address).await.status, 429);
    app.teardown().await;
}
