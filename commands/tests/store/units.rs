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
