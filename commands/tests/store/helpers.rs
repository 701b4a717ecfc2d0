//! A fresh, migrated event store per test, for each store, and metadata for commands.
//!
//! Tests that hold for every store are written once, generic over [`TestStore`], and
//! instantiated per store by [`for_each_store!`]: `<module>::postgres::<test>` runs on
//! a fresh PostgreSQL database, `<module>::sqlite::<test>` on a fresh SQLite file in a
//! temporary directory. [`for_any_store!`] runs a selection of them once more through
//! [`AnyStore`] on each backend (`<module>::any_postgres::<test>`,
//! `<module>::any_sqlite::<test>`).

use std::future::Future;

use chrono::Utc;
use emporium_commands::store::{EventStore, LoggedEvent, SqliteStore};
use emporium_commands::{AnyStore, PgStore};
use emporium_domain::EventMetadata;
use emporium_domain::metadata::Actor;
use emporium_tests::TestDatabase;
use uuid::Uuid;

/// A fresh, migrated PostgreSQL event store.
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

/// A store under test and what to clean up after it.
pub(crate) struct Fixture<S> {
    pub(crate) store: S,
    cleanup: Cleanup,
}

enum Cleanup {
    Postgres(TestDatabase),
    Sqlite(tempfile::TempDir),
}

impl<S: TestStore> Fixture<S> {
    /// Drops the database or the directory.
    pub(crate) async fn finish(self) {
        self.store.close().await;
        match self.cleanup {
            Cleanup::Postgres(db) => db.drop_database().await.expect("drop test database"),
            Cleanup::Sqlite(dir) => dir.close().expect("remove test directory"),
        }
    }
}

impl<S: TestStore + Into<AnyStore>> Fixture<S> {
    /// The same store behind [`AnyStore`].
    pub(crate) fn into_any(self) -> Fixture<AnyStore> {
        Fixture {
            store: self.store.into(),
            cleanup: self.cleanup,
        }
    }
}

/// A fresh PostgreSQL store.
pub(crate) async fn postgres() -> Fixture<PgStore> {
    let db = event_store().await;
    Fixture {
        store: PgStore::new(db.pool().clone()),
        cleanup: Cleanup::Postgres(db),
    }
}

/// A fresh SQLite store in its own temporary directory.
pub(crate) async fn sqlite() -> Fixture<SqliteStore> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(&dir.path().join("events.db"))
        .await
        .expect("open sqlite store");
    Fixture {
        store,
        cleanup: Cleanup::Sqlite(dir),
    }
}

/// What the generic tests need beyond the port.
pub(crate) trait TestStore: EventStore {
    /// `(last_sequence, current_snapshot)` of the aggregate's snapshot row.
    fn snapshot_row(&self, aggregate_id: &str) -> impl Future<Output = Option<(i64, i64)>>;
    /// Deletes every claim (simulates a claim lost to a crash).
    fn forget_claims(&self) -> impl Future<Output = ()>;
    /// Closes the store's connections.
    fn close(&self) -> impl Future<Output = ()>;

    /// The whole log, in commit order.
    fn log(&self) -> impl Future<Output = Vec<LoggedEvent>> {
        async {
            let mut all = Vec::new();
            loop {
                let after = all
                    .last()
                    .and_then(|e: &LoggedEvent| e.position)
                    .unwrap_or(0);
                let page = self.read_log(after, 1_000).await.expect("read the log");
                if page.is_empty() {
                    return all;
                }
                all.extend(page);
            }
        }
    }

    /// The events of one aggregate, in sequence order.
    fn events_of(&self, aggregate_type: &str, id: &str) -> impl Future<Output = Vec<LoggedEvent>> {
        async move {
            let mut events: Vec<_> = self
                .log()
                .await
                .into_iter()
                .filter(|e| e.aggregate_type == aggregate_type && e.aggregate_id == id)
                .collect();
            events.sort_by_key(|e| e.sequence);
            events
        }
    }
}

impl TestStore for PgStore {
    async fn snapshot_row(&self, aggregate_id: &str) -> Option<(i64, i64)> {
        sqlx::query_as(
            "SELECT last_sequence, current_snapshot FROM snapshots WHERE aggregate_id = $1",
        )
        .bind(aggregate_id)
        .fetch_optional(self.pool())
        .await
        .expect("read snapshot")
    }

    async fn forget_claims(&self) {
        sqlx::query("DELETE FROM unique_keys")
            .execute(self.pool())
            .await
            .expect("delete claims");
    }

    async fn close(&self) {
        self.pool().close().await;
    }
}

impl TestStore for SqliteStore {
    async fn snapshot_row(&self, aggregate_id: &str) -> Option<(i64, i64)> {
        sqlx::query_as(
            "SELECT last_sequence, current_snapshot FROM snapshots WHERE aggregate_id = ?",
        )
        .bind(aggregate_id)
        .fetch_optional(self.pool())
        .await
        .expect("read snapshot")
    }

    async fn forget_claims(&self) {
        sqlx::query("DELETE FROM unique_keys")
            .execute(self.pool())
            .await
            .expect("delete claims");
    }

    async fn close(&self) {
        SqliteStore::close(self).await;
    }
}

impl TestStore for AnyStore {
    async fn snapshot_row(&self, aggregate_id: &str) -> Option<(i64, i64)> {
        match self {
            Self::Postgres(s) => s.snapshot_row(aggregate_id).await,
            Self::Sqlite(s) => s.snapshot_row(aggregate_id).await,
        }
    }

    async fn forget_claims(&self) {
        match self {
            Self::Postgres(s) => s.forget_claims().await,
            Self::Sqlite(s) => s.forget_claims().await,
        }
    }

    async fn close(&self) {
        match self {
            Self::Postgres(s) => TestStore::close(s).await,
            Self::Sqlite(s) => TestStore::close(s).await,
        }
    }
}

/// Instantiates generic tests `async fn name<S: TestStore>(f: &Fixture<S>)` once per
/// store, each on a fresh store that is cleaned up afterwards.
macro_rules! for_each_store {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let fixture = $crate::helpers::postgres().await;
                    super::$name(&fixture).await;
                    fixture.finish().await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let fixture = $crate::helpers::sqlite().await;
                    super::$name(&fixture).await;
                    fixture.finish().await;
                }
            )*
        }
    };
}
pub(crate) use for_each_store;

/// Instantiates generic tests (as [`for_each_store!`]) over [`AnyStore`], once with
/// a PostgreSQL store inside and once with an SQLite one.
/// `for_any_store!(multi_thread; …)` runs them on a two-worker runtime, for tests
/// whose concurrency should be parallel.
macro_rules! for_any_store {
    (multi_thread; $($name:ident),* $(,)?) => {
        $crate::helpers::for_any_store!(@flavor (flavor = "multi_thread", worker_threads = 2); $($name),*);
    };
    ($($name:ident),* $(,)?) => {
        $crate::helpers::for_any_store!(@flavor (); $($name),*);
    };
    (@flavor $flavor:tt; $($name:ident),* $(,)?) => {
        mod any_postgres {
            $(
                #[tokio::test $flavor]
                async fn $name() {
                    let fixture = $crate::helpers::postgres().await.into_any();
                    super::$name(&fixture).await;
                    fixture.finish().await;
                }
            )*
        }
        mod any_sqlite {
            $(
                #[tokio::test $flavor]
                async fn $name() {
                    let fixture = $crate::helpers::sqlite().await.into_any();
                    super::$name(&fixture).await;
                    fixture.finish().await;
                }
            )*
        }
    };
}
pub(crate) use for_any_store;
