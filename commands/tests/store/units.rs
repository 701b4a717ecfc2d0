//! Multi-aggregate units (`EventStore::append_unit`): all the rows or none, in
//! row order, a collision with any committed sequence refusing the whole unit.

use emporium_commands::store::{Appended, NewEvent, UnitRow};
use serde_json::json;

use crate::helpers::{Fixture, TestStore, for_each_store};

for_each_store!(a_unit_commits_all_its_rows_in_order_or_none);

fn row(aggregate_id: &str, sequence: i64, n: u32) -> UnitRow {
    UnitRow {
        aggregate_type: "unit_test",
        aggregate_id: aggregate_id.to_owned(),
        sequence,
        event: NewEvent {
            event_type: "Happened".to_owned(),
            event_version: "1".to_owned(),
            payload: json!({ "Happened": { "n": n } }),
        },
        metadata: json!({ "actor": "test" }),
    }
}

async fn a_unit_commits_all_its_rows_in_order_or_none<S: TestStore>(f: &Fixture<S>) {
    let first = f
        .store
        .append_unit(&[row("a", 1, 1), row("b", 1, 2), row("a", 2, 3)])
        .await
        .unwrap();
    let log = f.store.log().await;
    let Some(Appended::At(position)) = first else {
        panic!("the store appends units: {first:?}");
    };
    assert_eq!(log.last().and_then(|e| e.position), Some(position));
    let written: Vec<(&str, i64, &serde_json::Value)> = log
        .iter()
        .map(|e| {
            (
                e.aggregate_id.as_str(),
                e.sequence,
                &e.payload["Happened"]["n"],
            )
        })
        .collect();
    assert_eq!(
        written,
        vec![
            ("a", 1, &json!(1)),
            ("b", 1, &json!(2)),
            ("a", 2, &json!(3))
        ]
    );

    // `c` is new, `b` #1 is taken: nothing of the unit is written.
    let second = f
        .store
        .append_unit(&[row("c", 1, 4), row("b", 1, 5)])
        .await
        .unwrap();
    assert_eq!(second, Some(Appended::Conflict));
    assert_eq!(f.store.log().await, log);
}

/// An append whose caller gives up while PostgreSQL holds the statement (the future is
/// dropped mid-way, as when a client disconnects) leaves the store answering: with a
/// single connection allowed, the next appends get a connection and each is answered
/// with its own event's position, not a stale answer. (The append connection is
/// closed, which also covers a statement dropped half-written; sqlx would drain a
/// pending answer on a reused one, so this checks the outcome, not the closing.)
#[tokio::test]
async fn a_cancelled_append_leaves_the_store_answering() {
    use emporium_commands::{EventStore as _, PgStore};

    let db = crate::helpers::event_store().await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(db.pool().connect_options().as_ref().clone())
        .await
        .expect("pool");
    let store = PgStore::new(pool);
    store.append_unit(&[row("a", 1, 1)]).await.expect("append");

    // Hold the table so the next append waits inside PostgreSQL, then give it up.
    let mut holder = db.pool().begin().await.expect("begin");
    sqlx::query("LOCK TABLE events IN EXCLUSIVE MODE")
        .execute(&mut *holder)
        .await
        .expect("lock");
    let rows = [row("b", 1, 2)];
    // Boxed, so that dropping it below drops the append itself.
    let mut cancelled = Box::pin(store.append_unit(&rows));
    let waiting = async {
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity
                  WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(db.pool())
            .await
            .expect("activity");
            if waiting > 0 {
                return;
            }
        }
    };
    tokio::select! {
        done = &mut cancelled => panic!("the append finished under the lock: {done:?}"),
        () = waiting => {}
    }
    drop(cancelled);
    holder.commit().await.expect("release the table");

    for (n, id) in [(3, "c"), (4, "d")] {
        let answer = store.append_unit(&[row(id, 1, n)]).await.expect("append");
        let Some(Appended::At(position)) = answer else {
            panic!("not appended: {answer:?}");
        };
        let found: (String, i64) = sqlx::query_as(
            "SELECT aggregate_id, (payload -> 'Happened' ->> 'n')::bigint FROM events
              WHERE position = $1",
        )
        .bind(position)
        .fetch_one(db.pool())
        .await
        .expect("the answered position holds the event");
        assert_eq!(found, (id.to_owned(), i64::from(n)));
    }
    db.drop_database().await.expect("drop test database");
}
