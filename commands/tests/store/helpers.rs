//! A migrated database per test, and metadata for commands.

use chrono::Utc;
use emporium_domain::EventMetadata;
use emporium_domain::metadata::Actor;
use emporium_tests::TestDatabase;
use uuid::Uuid;

/// A fresh, migrated event store.
pub(crate) async fn event_store() -> TestDatabase {
    let db = TestDatabase::create(20).await.expect("test database");
    emporium_commands::db::migrate(db.pool())
        .await
        .expect("migrations apply");
    db
}

/// Metadata for a command issued by the platform.
pub(crate) fn meta() -> EventMetadata {
    EventMetadata::new(Uuid::new_v4(), Actor::System("test".into()), Utc::now())
}

/// How many events the store holds for one aggregate.
pub(crate) async fn count_events(db: &TestDatabase, aggregate_type: &str, id: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_type = $1 AND aggregate_id = $2",
    )
    .bind(aggregate_type)
    .bind(id)
    .fetch_one(db.pool())
    .await
    .expect("count events")
}
