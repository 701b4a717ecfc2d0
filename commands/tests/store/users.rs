//! Registration's e-mail uniqueness, and upcasting on load.

use std::sync::Arc;

use chrono::Utc;
use emporium_commands::store::LoggedEvent;
use emporium_commands::users::{EMAIL_SCOPE, RegisterUserError, Users};
use emporium_domain::user::{Email, PasswordHash, PersonName, Preferences, Role, UserCommand};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{Fixture, TestStore, for_any_store, for_each_store, meta};

for_each_store!(
    one_account_per_email_even_under_concurrency,
    an_account_whose_claim_was_lost_still_owns_its_address,
    a_refused_registration_gives_its_claim_back,
    a_version_one_event_is_upcast_on_load,
);

for_any_store!(
    one_account_per_email_even_under_concurrency,
    an_account_whose_claim_was_lost_still_owns_its_address,
);

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

async fn one_account_per_email_even_under_concurrency<S: TestStore>(f: &Fixture<S>) {
    let users = Arc::new(Users::over(f.store.clone()));
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
    let registered = f
        .store
        .log()
        .await
        .into_iter()
        .filter(|e| e.event_type == "UserRegistered")
        .count();
    assert_eq!(registered, 1);
}

async fn an_account_whose_claim_was_lost_still_owns_its_address<S: TestStore>(f: &Fixture<S>) {
    let users = Users::over(f.store.clone());
    let first = Uuid::new_v4();
    users
        .register(registration(first, "grace@example.com"), &meta())
        .await
        .unwrap();
    // The process died after the registration committed and before its claim did.
    f.store.forget_claims().await;

    let err = users
        .register(registration(Uuid::new_v4(), "GRACE@example.com"), &meta())
        .await
        .unwrap_err();
    assert!(matches!(err, RegisterUserError::EmailTaken), "{err:?}");
}

async fn a_refused_registration_gives_its_claim_back<S: TestStore>(f: &Fixture<S>) {
    let users = Users::over(f.store.clone());
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
        f.store
            .holder(EMAIL_SCOPE, "second@example.com")
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
        f.store
            .holder(EMAIL_SCOPE, "first@example.com")
            .await
            .unwrap(),
        Some(id.to_string())
    );
}

async fn a_version_one_event_is_upcast_on_load<S: TestStore>(f: &Fixture<S>) {
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
    let stored = LoggedEvent {
        position: None,
        aggregate_type: "user".into(),
        aggregate_id: id.to_string(),
        sequence: 1,
        event_type: "UserRegistered".into(),
        event_version: "1.0".into(),
        payload: v1,
        metadata: json!({}),
        event_id: Uuid::new_v4(),
        recorded_at: Utc::now(),
    };
    f.store.import(&[stored], &[]).await.unwrap();

    let user = Users::over(f.store.clone()).load(id).await.unwrap();
    assert!(user.is_registered());
    assert_eq!(user.first_name().unwrap().as_str(), "Charles");
    assert_eq!(user.last_name().unwrap().as_str(), "Babbage");
    assert_eq!(user.preferences(), Some(&Preferences::default()));
}
