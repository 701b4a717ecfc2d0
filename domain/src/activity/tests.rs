//! Given/when/then for the activity command.

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use super::*;
use crate::testing::{given, given_no_history};
use crate::{Aggregate, DomainEvent};

use ActivityCommand as C;
use ActivityEvent as E;

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + seconds, 0).unwrap()
}

fn activity(n: u128) -> Uuid {
    Uuid::from_u128(0x7000 + n)
}

fn product() -> Uuid {
    Uuid::from_u128(0x3001)
}

fn record(n: u128, kind: ActivityKind, product_id: Option<Uuid>, query: Option<&str>) -> C {
    C::RecordActivity {
        activity_id: activity(n),
        kind,
        product_id,
        query: query.map(str::to_owned),
        at: at(0),
    }
}

fn view(n: u128) -> E {
    E::ActivityRecorded {
        activity_id: activity(n),
        kind: ActivityKind::View,
        product_id: Some(product()),
        query: None,
        at: at(0),
    }
}

#[test]
fn record_a_product_view() {
    let (events, state) = given_no_history::<UserActivity>()
        .when(record(1, ActivityKind::View, Some(product()), None))
        .then_state();
    assert_eq!(events, vec![view(1)]);
    assert!(state.remembers(activity(1)));
    assert_eq!(state.recorded(), 1);
}

#[test]
fn record_a_search_with_its_query_trimmed() {
    given_no_history::<UserActivity>()
        .when(record(2, ActivityKind::Search, None, Some("  enamel mug ")))
        .then_expect_events([E::ActivityRecorded {
            activity_id: activity(2),
            kind: ActivityKind::Search,
            product_id: None,
            query: Some("enamel mug".into()),
            at: at(0),
        }]);
}

#[test]
fn record_clicks_and_purchases_with_or_without_a_product() {
    for kind in [ActivityKind::Click, ActivityKind::Purchase] {
        let (events, _) = given_no_history::<UserActivity>()
            .when(record(3, kind, None, None))
            .then_state();
        assert_eq!(events.len(), 1);
    }
}

#[test]
fn a_repeated_activity_id_records_nothing() {
    given::<UserActivity>([view(1)])
        .when(record(1, ActivityKind::View, Some(product()), None))
        .then_expect_events([]);
}

#[test]
fn the_remembered_ids_are_bounded() {
    let history: Vec<_> = (0..=UserActivity::REMEMBERED as u128).map(view).collect();
    let state = UserActivity::from_events(&history);
    assert!(!state.remembers(activity(0)));
    assert!(state.remembers(activity(UserActivity::REMEMBERED as u128)));
    assert_eq!(state.recorded(), UserActivity::REMEMBERED as u64 + 1);
}

#[test]
fn the_nil_activity_id_is_refused() {
    let err = given_no_history::<UserActivity>()
        .when(C::RecordActivity {
            activity_id: Uuid::nil(),
            kind: ActivityKind::Click,
            product_id: None,
            query: None,
            at: at(0),
        })
        .then_expect_error();
    assert_eq!(err, ActivityError::InvalidActivityId);
}

#[test]
fn a_view_or_add_to_cart_without_a_product_is_refused() {
    for kind in [ActivityKind::View, ActivityKind::AddToCart] {
        let err = given_no_history::<UserActivity>()
            .when(record(1, kind, None, None))
            .then_expect_error();
        assert_eq!(err, ActivityError::MissingProduct(kind));
    }
}

#[test]
fn a_search_without_a_query_is_refused() {
    for query in [None, Some("   ")] {
        let err = given_no_history::<UserActivity>()
            .when(record(1, ActivityKind::Search, None, query))
            .then_expect_error();
        assert_eq!(err, ActivityError::MissingQuery);
    }
}

#[test]
fn a_blank_query_is_refused() {
    let err = given_no_history::<UserActivity>()
        .when(record(1, ActivityKind::Click, None, Some(" ")))
        .then_expect_error();
    assert_eq!(err, ActivityError::BlankQuery);
}

#[test]
fn an_overlong_query_is_refused() {
    let long = "é".repeat(UserActivity::MAX_QUERY_CHARS + 1);
    let err = given_no_history::<UserActivity>()
        .when(record(1, ActivityKind::Search, None, Some(&long)))
        .then_expect_error();
    assert_eq!(err, ActivityError::QueryTooLong { max: 200, got: 201 });
    let fits = "é".repeat(UserActivity::MAX_QUERY_CHARS);
    let (events, _) = given_no_history::<UserActivity>()
        .when(record(1, ActivityKind::Search, None, Some(&fits)))
        .then_state();
    assert_eq!(events.len(), 1);
}

#[test]
fn events_have_stable_names_and_the_state_round_trips() {
    let state = UserActivity::from_events(&[view(1)]);
    let back: UserActivity = serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
    assert!(back.remembers(activity(1)));
    assert_eq!(view(1).event_type(), "ActivityRecorded");
    assert_eq!(view(1).event_version(), "1.0");
    assert_eq!(
        serde_json::to_value(view(1)).unwrap()["ActivityRecorded"]["kind"],
        "view"
    );
    assert_eq!(UserActivity::TYPE, "activity");
}
