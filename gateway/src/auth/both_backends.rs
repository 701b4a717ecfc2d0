//! The gateway's own tables behave the same on PostgreSQL and on the embedded mode's
//! `gateway.db`: each scenario runs against a fresh PostgreSQL database and a fresh
//! SQLite file through the same code.

use std::future::Future;

use chrono::{DateTime, Duration, DurationRound, Utc};
use emporium_commands::sql::Db;
use uuid::Uuid;

use super::one_time::{self, Purpose};
use super::sessions::{self, Rotation};
use crate::notify::templates::{self, TemplateKind};

/// Runs `scenario` on both backends; returns what each produced, PostgreSQL first.
async fn on_both<F, Fut, T>(scenario: F) -> (T, T)
where
    F: Fn(Db) -> Fut,
    Fut: Future<Output = T>,
{
    let pg = emporium_tests::TestDatabase::create(4)
        .await
        .expect("test database");
    crate::db::migrate(pg.pool()).await.expect("migrate");
    let on_pg = scenario(Db::Postgres(pg.pool().clone())).await;
    pg.drop_database().await.expect("drop test database");
    let dir = tempfile::tempdir().expect("tempdir");
    let pool = crate::db::open_local(&dir.path().join("gateway.db"))
        .await
        .expect("open gateway.db");
    let on_sqlite = scenario(Db::Sqlite(pool.clone())).await;
    pool.close().await;
    (on_pg, on_sqlite)
}

/// Now, at PostgreSQL's precision.
fn now() -> DateTime<Utc> {
    Utc::now()
        .duration_trunc(Duration::microseconds(1))
        .expect("truncate")
}

#[tokio::test]
async fn of_two_concurrent_refreshes_with_one_token_exactly_one_rotates_and_the_family_dies() {
    let (pg, sqlite) = on_both(|db| async move {
        let (sid, user, first) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let t = now();
        let expires = t + Duration::days(7);
        sessions::start(&db, sid, user, first, t, expires)
            .await
            .expect("start");
        assert!(sessions::is_live(&db, sid, user).await.expect("live"));
        assert!(
            !sessions::is_live(&db, sid, Uuid::new_v4())
                .await
                .expect("live"),
            "another user's session id proves nothing"
        );
        let (a, b) = tokio::join!(
            sessions::rotate(&db, sid, first, Uuid::new_v4(), t, expires),
            sessions::rotate(&db, sid, first, Uuid::new_v4(), t, expires),
        );
        let mut outcomes = vec![a.expect("rotate"), b.expect("rotate")];
        outcomes.sort_by_key(|o| matches!(o, Rotation::Reused));
        let outcomes: Vec<&str> = outcomes
            .into_iter()
            .map(|o| match o {
                Rotation::Rotated { user_id } if user_id == user => "rotated",
                Rotation::Rotated { .. } => "rotated for another user",
                Rotation::Reused => "reused",
                Rotation::Dead => "dead",
            })
            .collect();
        let live = sessions::is_live(&db, sid, user).await.expect("live");
        // An expired family rotates no more.
        let (old, old_token) = (Uuid::new_v4(), Uuid::new_v4());
        sessions::start(
            &db,
            old,
            user,
            old_token,
            t - Duration::days(8),
            t - Duration::days(1),
        )
        .await
        .expect("start");
        let expired = sessions::rotate(&db, old, old_token, Uuid::new_v4(), t, expires)
            .await
            .expect("rotate");
        (outcomes, live, expired)
    })
    .await;
    assert_eq!(pg, sqlite);
    let (outcomes, live, expired) = sqlite;
    assert_eq!(outcomes, ["rotated", "reused"]);
    assert!(!live, "reusing a rotated token revokes the family");
    assert_eq!(expired, Rotation::Dead);
}

#[tokio::test]
async fn revoking_all_sessions_keeps_only_the_one_asked_for() {
    let (pg, sqlite) = on_both(|db| async move {
        let user = Uuid::new_v4();
        let t = now();
        let sids: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
        for sid in &sids {
            sessions::start(&db, *sid, user, Uuid::new_v4(), t, t + Duration::days(7))
                .await
                .expect("start");
        }
        let other = (Uuid::new_v4(), Uuid::new_v4());
        sessions::start(
            &db,
            other.0,
            other.1,
            Uuid::new_v4(),
            t,
            t + Duration::days(7),
        )
        .await
        .expect("start");
        let revoked = sessions::revoke_all(&db, user, Some(sids[0]), t, "password_changed")
            .await
            .expect("revoke");
        let mut tx = db.begin().await.expect("begin");
        let everywhere = sessions::revoke_all_in(&mut tx.conn(), user, None, t, "password_reset")
            .await
            .expect("revoke");
        tx.commit().await.expect("commit");
        sessions::revoke(&db, other.0, t, "logout")
            .await
            .expect("revoke");
        let mut live = Vec::new();
        for sid in sids.iter().chain([&other.0]) {
            let owner = if *sid == other.0 { other.1 } else { user };
            live.push(sessions::is_live(&db, *sid, owner).await.expect("live"));
        }
        (revoked, everywhere, live)
    })
    .await;
    assert_eq!(pg, sqlite);
    assert_eq!(sqlite, (2, 1, vec![false; 4]));
}

#[tokio::test]
async fn a_one_time_token_works_once_unexpired_and_only_while_it_is_the_newest() {
    let (pg, sqlite) = on_both(|db| async move {
        let user = Uuid::new_v4();
        let t = now();
        let store = |hash: String, expires: DateTime<Utc>| {
            let db = db.clone();
            async move {
                let mut tx = db.begin().await.expect("begin");
                one_time::store(
                    &mut tx.conn(),
                    &hash,
                    Purpose::PasswordReset,
                    user,
                    "ada@example.com",
                    t,
                    expires,
                )
                .await
                .expect("store");
                tx.commit().await.expect("commit");
            }
        };
        let consume = |hash: String, purpose: Purpose| {
            let db = db.clone();
            async move {
                let mut tx = db.begin().await.expect("begin");
                let got = one_time::consume(&mut tx.conn(), &hash, purpose, t)
                    .await
                    .expect("consume");
                tx.commit().await.expect("commit");
                got
            }
        };
        let (_, older) = one_time::generate();
        store(older.clone(), t + Duration::hours(1)).await;
        let (_, newer) = one_time::generate();
        store(newer.clone(), t + Duration::hours(1)).await;
        let superseded = consume(older, Purpose::PasswordReset).await;
        let wrong_purpose = consume(newer.clone(), Purpose::VerifyEmail).await;
        let first = consume(newer.clone(), Purpose::PasswordReset).await;
        let again = consume(newer, Purpose::PasswordReset).await;
        let (_, expired) = one_time::generate();
        store(expired.clone(), t).await;
        let late = consume(expired, Purpose::PasswordReset).await;
        (superseded, wrong_purpose, first, again, late, user)
    })
    .await;
    assert_eq!((&pg.0, &pg.1, &pg.3, &pg.4), (&None, &None, &None, &None));
    assert_eq!(
        pg.2.as_ref().map(|(_, e)| e.as_str()),
        Some("ada@example.com")
    );
    let (superseded, wrong_purpose, first, again, late, user) = sqlite;
    assert_eq!(superseded, None, "a newer token supersedes the older");
    assert_eq!(wrong_purpose, None);
    assert_eq!(first, Some((user, "ada@example.com".to_owned())));
    assert_eq!(again, None, "single use");
    assert_eq!(late, None, "expired");
}

#[tokio::test]
async fn a_staff_template_replaces_the_default_until_it_is_restored() {
    let (pg, sqlite) = on_both(|db| async move {
        let kind = TemplateKind::OrderConfirmation;
        let t = now();
        let before = templates::load(&db, kind).await.expect("load");
        let staff = Uuid::new_v4();
        templates::update(
            &db,
            kind,
            Some(("Paid {{ order.reference }}", "Thanks")),
            staff,
            t,
        )
        .await
        .expect("update");
        templates::update(
            &db,
            kind,
            Some(("Paid: {{ order.reference }}", "Thank you")),
            staff,
            t,
        )
        .await
        .expect("update again");
        let after = templates::load(&db, kind).await.expect("load");
        let listed = templates::all(&db).await.expect("all");
        templates::update(&db, kind, None, staff, t)
            .await
            .expect("restore");
        let restored = templates::load(&db, kind).await.expect("load");
        (
            (before.customised, before.subject),
            (
                after.customised,
                after.subject,
                after.body,
                after.updated_at == Some(t),
            ),
            listed.iter().filter(|t| t.customised).count(),
            (
                restored.customised,
                restored.subject == before_subject(kind),
            ),
        )
    })
    .await;
    assert_eq!(pg, sqlite);
    let (before, after, customised, restored) = sqlite;
    assert!(!before.0);
    assert_eq!(
        after,
        (
            true,
            "Paid: {{ order.reference }}".to_owned(),
            "Thank you".to_owned(),
            true
        )
    );
    assert_eq!(customised, 1);
    assert_eq!(restored, (false, true));
}

fn before_subject(kind: TemplateKind) -> String {
    kind.default_template().0.to_owned()
}
