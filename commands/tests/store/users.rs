//! Registration's e-mail uniqueness, and upcasting on load.

use std::sync::Arc;

use chrono::Utc;
use emporium_commands::reservations;
use emporium_commands::users::{EMAIL_SCOPE, RegisterUserError, Users};
use emporium_domain::user::{Email, PasswordHash, PersonName, Preferences, Role, UserCommand};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{event_store, meta};

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";

fn registration(user_id: Uuid, email: &str) -> UserCommand {
    UserCommand::RegisterUser {
        user_id,
        email: Email::parse(email).unwrap(),
        password_hash: PasswordHash::parse(HASH).unwrap(),
        first_name: PersonName::parse("Ada").unwrap(),
        last_name: Some(PersonName::parse("Lovelace").unwrap()),
        role: Role::Customer,
        preferences: Preferences::default(),
        at: Utc::now(),
    }
}

#[tokio::test]
async fn one_account_per_email_even_under_concurrency() {
    let db = event_store().await;
    let users = Arc::new(Users::new(db.pool().clone()));
    let spellings = ["ada@example.com", "ADA@example.com", " Ada@Example.com "];
    let outcomes = futures::future::join_all((0..12).map(|i| {
        let users = Arc::clone(&users);
        let email = spellings[i % spellings.len()];
        tokio::spawn(async move {
            users
                .register(registration(Uuid::new_v4(), email), &meta())
                .await
        })
    }))
    .await;
    let mut ok = 0;
    for outcome in outcomes {
        match outcome.unwrap() {
            Ok(_) => ok += 1,
            Err(RegisterUserError::EmailTaken) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ok, 1);
    let registered: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'UserRegistered'")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(registered, 1);
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn an_account_whose_claim_was_lost_still_owns_its_address() {
    let db = event_store().await;
    let users = Users::new(db.pool().clone());
    let first = Uuid::new_v4();
    users
        .register(registration(first, "grace@example.com"), &meta())
        .await
        .unwrap();
    // The process died after the registration committed and before its claim did.
    sqlx::query("DELETE FROM unique_keys")
        .execute(db.pool())
        .await
        .unwrap();

    let err = users
        .register(registration(Uuid::new_v4(), "GRACE@example.com"), &meta())
        .await
        .unwrap_err();
    assert!(matches!(err, RegisterUserError::EmailTaken), "{err:?}");
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn a_refused_registration_gives_its_claim_back() {
    let db = event_store().await;
    let users = Users::new(db.pool().clone());
    let id = Uuid::new_v4();
    users
        .register(registration(id, "first@example.com"), &meta())
        .await
        .unwrap();
    // The same account id again, with another address: refused, and the address is
    // not left claimed.
    let err = users
        .register(registration(id, "second@example.com"), &meta())
        .await
        .unwrap_err();
    assert!(matches!(err, RegisterUserError::Rejected(_)), "{err:?}");
    assert_eq!(
        reservations::holder(db.pool(), EMAIL_SCOPE, "second@example.com")
            .await
            .unwrap(),
        None
    );
    // A retried registration (same id, same address) keeps its claim.
    let err = users
        .register(registration(id, "first@example.com"), &meta())
        .await
        .unwrap_err();
    assert!(matches!(err, RegisterUserError::Rejected(_)), "{err:?}");
    assert_eq!(
        reservations::holder(db.pool(), EMAIL_SCOPE, "first@example.com")
            .await
            .unwrap(),
        Some(id.to_string())
    );
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn a_version_one_event_is_upcast_on_load() {
    let db = event_store().await;
    let id = Uuid::new_v4();
    // A UserRegistered as version 1.0 wrote it: one `name`, no preferences.
    let v1 = json!({ "UserRegistered": {
        "user_id": id,
        "email": "charles@example.com",
        "password_hash": HASH,
        "name": "Charles Babbage",
        "role": "customer",
        "registered_at": "2025-01-01T00:00:00Z",
    }});
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('user', $1, 1, 'UserRegistered', '1.0', $2, '{}')",
    )
    .bind(id.to_string())
    .bind(&v1)
    .execute(db.pool())
    .await
    .unwrap();

    let user = Users::new(db.pool().clone()).load(id).await.unwrap();
    assert!(user.is_registered());
    assert_eq!(user.first_name().unwrap().as_str(), "Charles");
    assert_eq!(user.last_name().unwrap().as_str(), "Babbage");
    assert_eq!(user.preferences(), Some(&Preferences::default()));
    db.drop_database().await.unwrap();
}
