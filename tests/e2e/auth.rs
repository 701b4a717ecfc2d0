//! Accounts over HTTP: register, login, refresh, logout, me, e-mail verification and
//! password reset through a real SMTP server, password change, preferences.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{TestApp, distributed_only, replica, spawn_app, tokens};

const PASSWORD: &str = "correct horse battery";

#[tokio::test]
async fn register_login_refresh_logout_and_me() {
    let app = spawn_app().await;

    let registered = app.register("Ada@Example.org", PASSWORD).await;
    let payload = registered.ok("register");
    assert_eq!(payload["tokenType"], "Bearer");
    assert_eq!(payload["expiresIn"], 900);
    assert_eq!(payload["refreshExpiresIn"], 604_800);
    assert_eq!(payload["user"]["email"], "ada@example.org");
    assert_eq!(payload["user"]["role"], "CUSTOMER");
    assert_eq!(payload["user"]["emailVerified"], false);
    let (access, _) = tokens(payload);

    let me = app.me(Some(&access)).await;
    assert_eq!(me.ok("me")["email"], "ada@example.org");
    assert_eq!(me.ok("me")["preferences"]["currency"], "USD");
    let anonymous = app.me(None).await;
    assert_eq!(anonymous.status, 200);
    anonymous.expect_code("UNAUTHENTICATED");

    let login = app.login("ada@example.org", PASSWORD).await;
    let (access, refresh) = tokens(login.ok("login"));
    let refreshed = app.refresh_token(&refresh).await;
    let (access2, refresh2) = tokens(refreshed.ok("refreshToken"));
    assert_ne!(refresh, refresh2);
    assert_eq!(
        app.me(Some(&access2)).await.ok("me")["email"],
        "ada@example.org"
    );
    // The previous access token of the same session stays valid until it expires.
    assert_eq!(
        app.me(Some(&access)).await.ok("me")["email"],
        "ada@example.org"
    );

    assert_eq!(app.logout(&access2, false).await.ok("logout"), true);
    let after = app.me(Some(&access2)).await;
    assert_eq!(after.status, 401, "{after:?}");
    after.expect_code("UNAUTHENTICATED");
    app.refresh_token(&refresh2)
        .await
        .expect_code("UNAUTHENTICATED");
    // The registration's session is another one: still signed in.
    let (first_access, _) = tokens(payload);
    assert_eq!(app.me(Some(&first_access)).await.status, 200);

    app.teardown().await;
}

#[tokio::test]
async fn stored_hash_is_argon2id_at_owasp_parameters() {
    let app = spawn_app().await;
    app.signed_up("hash@example.org", PASSWORD).await;
    let (hash,): (String,) = app
        .events_db()
        .fetch_one(
            "SELECT payload -> 'UserRegistered' ->> 'password_hash' FROM events
              WHERE aggregate_type = 'user' AND event_type = 'UserRegistered'",
            emporium_commands::args![],
        )
        .await
        .unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    app.teardown().await;
}

#[tokio::test]
async fn registration_rules_and_taken_addresses() {
    let app = spawn_app().await;
    app.signed_up("taken@example.org", PASSWORD).await;
    app.register("TAKEN@example.org ", PASSWORD)
        .await
        .expect_code("EMAIL_TAKEN");

    let short = app.register("short@example.org", "short").await;
    short.expect_code("BAD_USER_INPUT");
    assert_eq!(
        short.body["errors"][0]["extensions"]["rule"],
        "password_min_length"
    );
    assert_eq!(short.body["errors"][0]["extensions"]["field"], "password");
    let bad_email = app.register("not-an-address", PASSWORD).await;
    assert_eq!(
        bad_email.body["errors"][0]["extensions"]["rule"],
        "email_invalid"
    );

    // A customer cannot choose a role: the input type has no such field.
    let with_role = app
        .post_graphql(
            "mutation { register(input: {email: \"r@example.org\", password: \"long enough\", firstName: \"R\", role: ADMIN}) { accessToken } }",
            json!({}),
            None,
        )
        .await;
    with_role.expect_code("GRAPHQL_VALIDATION_FAILED");
    app.teardown().await;
}

#[tokio::test]
async fn email_is_verified_with_the_mailed_code_once() {
    let app = spawn_app().await;
    let (access, _) = app.signed_up("verify@example.org", PASSWORD).await;
    let mail = app.mail.next_mail().await;
    assert_eq!(mail.to, vec!["verify@example.org".to_owned()]);
    assert_eq!(mail.subject(), "Verify your e-mail address");
    let code = mail.code();
    assert!(
        mail.data.contains(&format!("/verify-email?token={code}")),
        "{}",
        mail.data
    );

    let verified = app.verify_email(&code).await;
    assert_eq!(verified.ok("verifyEmail")["emailVerified"], true);
    assert_eq!(app.me(Some(&access)).await.ok("me")["emailVerified"], true);
    app.verify_email(&code).await.expect_code("INVALID_TOKEN");
    app.verify_email("made-up-code")
        .await
        .expect_code("INVALID_TOKEN");
    app.teardown().await;
}

#[tokio::test]
async fn verification_codes_expire() {
    let app = spawn_app().await;
    app.signed_up("late@example.org", PASSWORD).await;
    let code = app.mail.next_mail().await.code();
    app.advance(Duration::from_secs(24 * 3600));
    app.verify_email(&code).await.expect_code("INVALID_TOKEN");
    app.teardown().await;
}

#[tokio::test]
async fn password_reset_revokes_every_session_and_does_not_sign_in() {
    let app = spawn_app().await;
    let (access_a, refresh_a) = app.signed_up("reset@example.org", PASSWORD).await;
    app.mail.next_mail().await; // verification
    let (access_b, _) = tokens(app.login("reset@example.org", PASSWORD).await.ok("login"));

    assert_eq!(
        app.request_password_reset("reset@example.org")
            .await
            .ok("requestPasswordReset"),
        true
    );
    let mail = app.mail.next_mail().await;
    assert_eq!(mail.subject(), "Reset your password");
    let code = mail.code();

    let weak = app.confirm_password_reset(&code, "weak").await;
    assert_eq!(
        weak.body["errors"][0]["extensions"]["rule"],
        "password_min_length"
    );
    let confirmed = app
        .confirm_password_reset(&code, "a brand new secret")
        .await;
    assert_eq!(confirmed.ok("confirmPasswordReset"), true);
    assert_eq!(
        confirmed.body["data"].as_object().unwrap().len(),
        1,
        "no tokens handed out"
    );

    for access in [&access_a, &access_b] {
        assert_eq!(app.me(Some(access)).await.status, 401);
    }
    app.refresh_token(&refresh_a)
        .await
        .expect_code("UNAUTHENTICATED");
    app.confirm_password_reset(&code, "another new secret")
        .await
        .expect_code("INVALID_TOKEN");
    app.login("reset@example.org", PASSWORD)
        .await
        .expect_code("INVALID_CREDENTIALS");
    app.login("reset@example.org", "a brand new secret")
        .await
        .ok("login");
    app.teardown().await;
}

#[tokio::test]
async fn reset_requests_answer_the_same_for_unknown_accounts_and_expire() {
    let app = spawn_app().await;
    app.signed_up("known@example.org", PASSWORD).await;
    app.mail.next_mail().await; // verification

    let unknown = app.request_password_reset("nobody@example.org").await;
    let known = app.request_password_reset("known@example.org").await;
    assert_eq!(unknown.status, known.status);
    assert_eq!(unknown.body, known.body);
    assert_eq!(
        known.body,
        json!({ "data": { "requestPasswordReset": true } })
    );

    // Only the known account gets a mail.
    let mail = app.mail.next_mail().await;
    assert_eq!(mail.to, vec!["known@example.org".to_owned()]);
    assert!(app.mail.try_next_mail().await.is_none());

    app.advance(Duration::from_secs(3600));
    app.confirm_password_reset(&mail.code(), "a brand new secret")
        .await
        .expect_code("INVALID_TOKEN");
    app.teardown().await;
}

#[tokio::test]
async fn change_password_checks_the_current_one_and_signs_out_other_sessions() {
    let app = spawn_app().await;
    let (other_access, _) = app.signed_up("change@example.org", PASSWORD).await;
    let (access, _) = tokens(app.login("change@example.org", PASSWORD).await.ok("login"));

    app.change_password(&access, "wrong password", "a new password")
        .await
        .expect_code("INVALID_CREDENTIALS");
    let changed = app
        .change_password(&access, PASSWORD, "a new password")
        .await;
    assert_eq!(changed.ok("changePassword")["email"], "change@example.org");
    assert_eq!(
        app.me(Some(&access)).await.status,
        200,
        "this session stays"
    );
    assert_eq!(app.me(Some(&other_access)).await.status, 401, "others end");
    app.login("change@example.org", "a new password")
        .await
        .ok("login");
    app.teardown().await;
}

#[tokio::test]
async fn update_preferences_returns_the_new_state() {
    let app = spawn_app().await;
    let (access, _) = app.signed_up("prefs@example.org", PASSWORD).await;
    let updated = app
        .update_preferences(&access, json!({ "currency": "EUR", "language": "pt_br" }))
        .await;
    let prefs = &updated.ok("updatePreferences")["preferences"];
    assert_eq!(prefs["currency"], "EUR");
    assert_eq!(prefs["language"], "pt-BR");
    assert_eq!(prefs["newsletter"], false);
    let bad = app
        .update_preferences(&access, json!({ "currency": "XXX" }))
        .await;
    assert_eq!(
        bad.body["errors"][0]["extensions"]["rule"],
        "currency_invalid"
    );
    app.update_preferences("not-a-token", json!({}))
        .await
        .expect_code("UNAUTHENTICATED");
    app.teardown().await;
}

#[tokio::test]
async fn access_tokens_expire_after_15_minutes_and_refresh_tokens_after_7_days() {
    let app = spawn_app().await;
    let (access, refresh) = app.signed_up("expiry@example.org", PASSWORD).await;
    app.advance(Duration::from_secs(15 * 60 - 1));
    assert_eq!(app.me(Some(&access)).await.status, 200);
    app.advance(Duration::from_secs(1));
    assert_eq!(app.me(Some(&access)).await.status, 401);

    let (_, refresh2) = tokens(app.refresh_token(&refresh).await.ok("refreshToken"));
    app.advance(Duration::from_secs(7 * 24 * 3600));
    app.refresh_token(&refresh2)
        .await
        .expect_code("UNAUTHENTICATED");
    app.teardown().await;
}

#[tokio::test]
async fn an_operator_makes_a_staff_member_whose_new_tokens_carry_the_role() {
    let app = spawn_app().await;
    let staff = app
        .staff_signed_up("clerk@example.org", "long enough pw")
        .await;
    assert_eq!(app.me(Some(&staff)).await.ok("me")["role"], "STAFF");
    // An unknown address is NOT_FOUND, and changes nothing.
    let missing = emporium_gateway::auth::set_role(
        app.store(),
        "nobody@example.org",
        emporium_domain::user::Role::Admin,
        emporium_gateway::clock::Clock::now(app.clock.as_ref()),
    )
    .await;
    assert!(matches!(
        missing,
        Err(emporium_gateway::error::ApiError::NotFound { .. })
    ));
    app.teardown().await;
}

/// `me` through the gateway at `address`: the HTTP status.
async fn me_at(app: &TestApp, address: &str, access: &str) -> u16 {
    app.client
        .post(format!("{address}/graphql"))
        .bearer_auth(access)
        .json(&json!({ "query": "{ me { id } }" }))
        .send()
        .await
        .expect("request sent")
        .status()
        .as_u16()
}

/// The `emporium_auth_session_checks_total` count answered `answer` (this process's
/// gateways share one metrics registry).
async fn session_checks(app: &TestApp, answer: &str) -> u64 {
    let text = app.get("/metrics").await.text().await.expect("metrics");
    text.lines()
        .filter(|l| {
            l.starts_with("emporium_auth_session_checks_total")
                && l.contains(&format!("answer=\"{answer}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Signs in, then asks `me` through `address` until the session is known live there
/// (its listener connects in the background): a check answered without a statement.
async fn kept_at(app: &TestApp, address: &str, email: &str) -> String {
    let (access, _) = tokens(app.login(email, PASSWORD).await.ok("login"));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert_eq!(me_at(app, address, &access).await, 200);
        let before = session_checks(app, "kept").await;
        assert_eq!(me_at(app, address, &access).await, 200);
        if session_checks(app, "kept").await > before {
            return access;
        }
        assert!(
            Instant::now() < deadline,
            "the gateway at {address} never answered a session check without a statement"
        );
    }
}

/// Asks `me` through `address` until it is refused; fails after `within`.
async fn refused_at(app: &TestApp, address: &str, access: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while me_at(app, address, access).await != 401 {
        assert!(
            Instant::now() < deadline,
            "{address} still accepts a revoked session after {within:?}"
        );
    }
}

/// A gateway answers a session it found live without asking PostgreSQL again, and
/// still hears every revocation at once: a logout through another replica, and a
/// revocation written by hand in SQL, are refused by every replica within moments
/// (far inside `auth.session_cache_seconds`, 60 s), and the replica that logged out
/// refuses the very next request.
#[tokio::test]
async fn a_revocation_anywhere_is_heard_by_every_replica() {
    if distributed_only("a second gateway replica on one PostgreSQL database") {
        return;
    }
    let app = spawn_app().await;
    let (other, stop, server) = replica(&app).await;
    app.signed_up("kept@example.org", PASSWORD).await;

    // Logged out through the first gateway: it refuses at once, the replica soon.
    let access = kept_at(&app, &other, "kept@example.org").await;
    assert_eq!(me_at(&app, &app.address, &access).await, 200);
    assert_eq!(app.logout(&access, false).await.ok("logout"), true);
    assert_eq!(me_at(&app, &app.address, &access).await, 401);
    refused_at(&app, &other, &access, Duration::from_secs(5)).await;

    // Revoked by hand: each gateway has one session kept, both hear it.
    let there = kept_at(&app, &other, "kept@example.org").await;
    let here = kept_at(&app, &app.address, "kept@example.org").await;
    let revoked = app
        .own_db()
        .execute(
            "UPDATE auth_sessions SET revoked_at = now(), revoked_reason = 'operator'
              WHERE revoked_at IS NULL",
            emporium_commands::args![],
        )
        .await
        .expect("revoke by hand");
    assert!(revoked >= 2, "{revoked}");
    refused_at(&app, &other, &there, Duration::from_secs(5)).await;
    refused_at(&app, &app.address, &here, Duration::from_secs(5)).await;

    let _ = stop.send(());
    server.await.expect("replica task").expect("replica stops");
    app.teardown().await;
}
