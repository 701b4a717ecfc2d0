//! `events export` / `import`: a log moved between stores is the same log, and the
//! aggregates load the same from it; a bad file or a non-empty target changes nothing.

use std::collections::BTreeSet;

use chrono::{Duration, Utc};
use emporium_commands::catalog::Products;
use emporium_commands::log::{self, ImportError, ImportOptions};
use emporium_commands::users::Users;
use emporium_commands::{Dispatcher, Loading};
use emporium_domain::catalog::{Attributes, Description, ProductCommand, ProductName, Slug};
use emporium_domain::inventory::{Inventory, InventoryCommand};
use emporium_domain::user::{Email, PasswordHash, PersonName, Preferences, Role, UserCommand};
use emporium_domain::{Currency, Money, Quantity, Sku};
use uuid::Uuid;

use crate::helpers::{Fixture, TestStore, for_any_store, for_each_store, meta, postgres, sqlite};

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";

for_each_store!(
    an_import_refuses_a_non_empty_store_and_bad_files_and_writes_nothing,
    an_explicit_append_that_collides_writes_nothing,
);

for_any_store!(
    an_import_refuses_a_non_empty_store_and_bad_files_and_writes_nothing,
    an_explicit_append_that_collides_writes_nothing,
);

/// A small shop: accounts (sealed hashes, claimed e-mails), products (claimed SKUs and
/// slugs), a snapshotted inventory stream. Returns the ids to load.
async fn shop<S: TestStore>(store: &S) -> (Vec<Uuid>, Vec<Uuid>) {
    let users = Users::over(store.clone());
    let mut user_ids = Vec::new();
    for i in 0..3 {
        let user_id = Uuid::new_v4();
        users
            .register(
                UserCommand::RegisterUser {
                    user_id,
                    email: Email::parse(&format!("shopper{i}@example.com")).unwrap(),
                    password_hash: PasswordHash::parse(HASH).unwrap(),
                    first_name: PersonName::parse("Ada").unwrap(),
                    last_name: None,
                    role: Role::Customer,
                    preferences: Preferences::default(),
                    at: Utc::now(),
                },
                &meta(),
            )
            .await
            .unwrap();
        user_ids.push(user_id);
    }
    let products = Products::over(store.clone());
    let mut product_ids = Vec::new();
    for i in 0..3 {
        let product_id = Uuid::new_v4();
        products
            .execute(
                product_id,
                ProductCommand::CreateProduct {
                    product_id,
                    sku: Sku::parse(&format!("MUG-{i}")).unwrap(),
                    slug: Slug::parse(&format!("mug-{i}")).unwrap(),
                    name: ProductName::parse("Enamel mug").unwrap(),
                    description: Description::parse("Holds coffee.").unwrap(),
                    category_id: Uuid::new_v4(),
                    tags: BTreeSet::new(),
                    attributes: Attributes::default(),
                    price: Money::new(1_250, Currency::EUR),
                    at: Utc::now(),
                },
                &meta(),
            )
            .await
            .unwrap();
        product_ids.push(product_id);
    }
    let stock = Dispatcher::<Inventory, S>::over(store.clone(), Loading::Snapshot(5));
    let at = Utc::now();
    stock
        .execute(
            "MUG-0",
            InventoryCommand::TrackInventory {
                sku: Sku::parse("MUG-0").unwrap(),
                low_stock_threshold: 2,
                at,
            },
            &meta(),
        )
        .await
        .unwrap();
    stock
        .execute(
            "MUG-0",
            InventoryCommand::ReceiveStock {
                quantity: Quantity::new(100).unwrap(),
                at,
            },
            &meta(),
        )
        .await
        .unwrap();
    for _ in 0..12 {
        stock
            .execute(
                "MUG-0",
                InventoryCommand::ReserveStock {
                    reservation_id: Uuid::new_v4(),
                    order_id: Uuid::new_v4(),
                    quantity: Quantity::new(3).unwrap(),
                    expires_at: at + Duration::minutes(15),
                    at,
                },
                &meta(),
            )
            .await
            .unwrap();
    }
    (user_ids, product_ids)
}

async fn export_of<S: TestStore>(store: &S) -> Vec<u8> {
    let mut out = Vec::new();
    log::export(store, &mut out).await.unwrap();
    out
}

/// The log without the store-assigned positions.
async fn log_of<S: TestStore>(store: &S) -> Vec<emporium_commands::store::LoggedEvent> {
    store
        .log()
        .await
        .into_iter()
        .map(|mut e| {
            e.position = None;
            e
        })
        .collect()
}

async fn round_trip<S: TestStore, T: TestStore>(source: &Fixture<S>, target: &Fixture<T>) {
    let (users, products) = shop(&source.store).await;
    let file = export_of(&source.store).await;
    let summary = log::import(&target.store, file.as_slice(), ImportOptions::default())
        .await
        .unwrap();
    assert_eq!(summary.events, 3 + 3 + 14);
    assert_eq!(summary.unique_keys, 3 + 3 * 2);

    // The same log (sequences, ids, versions, payloads with their sealed hashes,
    // metadata, record times) in the same order, and the same claims.
    let (from, to) = (log_of(&source.store).await, log_of(&target.store).await);
    assert_eq!(from.len(), 20);
    assert_eq!(from, to);
    assert_eq!(
        source.store.unique_keys().await.unwrap(),
        target.store.unique_keys().await.unwrap()
    );
    assert_eq!(
        to.iter()
            .find(|e| e.event_type == "UserRegistered")
            .unwrap()
            .payload["UserRegistered"]["password_hash"],
        HASH
    );
    // Exporting the copy gives the same file's content.
    let again = export_of(&target.store).await;
    let lines = |bytes: &[u8]| -> Vec<serde_json::Value> {
        String::from_utf8(bytes.to_vec())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    assert_eq!(lines(&file), lines(&again));

    // Aggregates load identically (replay and snapshot + tail alike).
    let (from_users, to_users) = (
        Users::over(source.store.clone()),
        Users::over(target.store.clone()),
    );
    for id in users {
        let (a, b) = (
            from_users.load(id).await.unwrap(),
            to_users.load(id).await.unwrap(),
        );
        assert!(a.is_registered());
        assert_eq!(
            serde_json::to_value(a).unwrap(),
            serde_json::to_value(b).unwrap()
        );
    }
    let (from_products, to_products) = (
        Products::over(source.store.clone()),
        Products::over(target.store.clone()),
    );
    for id in products {
        let (a, b) = (
            from_products.load(id).await.unwrap(),
            to_products.load(id).await.unwrap(),
        );
        assert_eq!(
            serde_json::to_value(a).unwrap(),
            serde_json::to_value(b).unwrap()
        );
    }
    let source_stock = Dispatcher::<Inventory, S>::over(source.store.clone(), Loading::Snapshot(5));
    let target_stock = Dispatcher::<Inventory, T>::over(target.store.clone(), Loading::Replay);
    let (a, b) = (
        source_stock.load("MUG-0").await.unwrap(),
        target_stock.load("MUG-0").await.unwrap(),
    );
    assert_eq!(a.reserved(), 36);
    assert_eq!(
        serde_json::to_value(a).unwrap(),
        serde_json::to_value(b).unwrap()
    );

    // The imported claims hold: the e-mail is taken in the target.
    let err = to_users
        .register(
            UserCommand::RegisterUser {
                user_id: Uuid::new_v4(),
                email: Email::parse("shopper0@example.com").unwrap(),
                password_hash: PasswordHash::parse(HASH).unwrap(),
                first_name: PersonName::parse("Eve").unwrap(),
                last_name: None,
                role: Role::Customer,
                preferences: Preferences::default(),
                at: Utc::now(),
            },
            &meta(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, emporium_commands::users::RegisterUserError::EmailTaken),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_log_exported_from_postgres_imports_into_sqlite_identically() {
    let (source, target) = (postgres().await, sqlite().await);
    round_trip(&source, &target).await;
    source.finish().await;
    target.finish().await;
}

#[tokio::test]
async fn a_log_exported_from_sqlite_imports_into_postgres_identically() {
    let (source, target) = (sqlite().await, postgres().await);
    round_trip(&source, &target).await;
    source.finish().await;
    target.finish().await;
}

async fn an_import_refuses_a_non_empty_store_and_bad_files_and_writes_nothing<S: TestStore>(
    f: &Fixture<S>,
) {
    // A file from another store of the same kind.
    let source = sqlite().await;
    shop(&source.store).await;
    let file = String::from_utf8(export_of(&source.store).await).unwrap();
    source.finish().await;
    let lines: Vec<&str> = file.lines().collect();

    let import = |text: String| async move {
        log::import(&f.store, text.as_bytes(), ImportOptions::default()).await
    };
    // Truncated: the end line is missing.
    let truncated = lines[..lines.len() - 1].join("\n");
    let err = import(truncated).await.unwrap_err();
    assert!(matches!(err, ImportError::Incomplete(_)), "{err:?}");
    // A hole in a stream (lines 7.. are the inventory's 14 events).
    let mut holed = lines.clone();
    assert!(holed[10].contains("\"sequence\":4"), "{}", holed[10]);
    holed.remove(10);
    let err = import(holed.join("\n")).await.unwrap_err();
    assert!(matches!(err, ImportError::Malformed { .. }), "{err:?}");
    // Not an event log.
    let err = import("{\"hello\": 1}\n".to_owned()).await.unwrap_err();
    assert!(
        matches!(err, ImportError::Malformed { line: 1, .. }),
        "{err:?}"
    );
    assert!(f.store.is_empty().await.unwrap(), "nothing was written");

    // A store with data is refused unless appending is asked for.
    shop(&f.store).await;
    let before = f.store.log().await.len();
    let err = import(file.clone()).await.unwrap_err();
    assert!(matches!(err, ImportError::NotEmpty), "{err:?}");
    assert_eq!(f.store.log().await.len(), before);
}

async fn an_explicit_append_that_collides_writes_nothing<S: TestStore>(f: &Fixture<S>) {
    shop(&f.store).await;
    let file = export_of(&f.store).await;
    let before = log_of(&f.store).await;
    // The same streams again: sequence 1 of each exists already. The first rows would
    // insert (new aggregates are not in the file), the collision refuses them all.
    let err = log::import(
        &f.store,
        file.as_slice(),
        ImportOptions {
            allow_non_empty: true,
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ImportError::Unexpected(_)), "{err:?}");
    assert_eq!(log_of(&f.store).await, before);
}
