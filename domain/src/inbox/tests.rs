//! Given/when/then for every inbox command.

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use super::*;
use crate::testing::{given, given_no_history};
use crate::{Aggregate, DomainEvent};

use InboxCommand as C;
use InboxEvent as E;

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + seconds, 0).unwrap()
}

fn notification(n: u128) -> Uuid {
    Uuid::from_u128(0x5000 + n)
}

fn read(n: u128) -> InboxEvent {
    E::NotificationRead {
        notification_id: notification(n),
        at: at(1),
    }
}

fn mark(n: u128) -> InboxCommand {
    C::MarkNotificationRead {
        notification_id: notification(n),
        at: at(1),
    }
}

#[test]
fn mark_a_notification_read() {
    let (events, inbox) = given_no_history::<Inbox>().when(mark(1)).then_state();
    assert_eq!(events, vec![read(1)]);
    assert!(inbox.has_read(notification(1)));
    assert!(inbox.has_read_since_clear());
}

#[test]
fn marking_a_read_notification_again_records_nothing() {
    given::<Inbox>([read(1)])
        .when(mark(1))
        .then_expect_events([]);
}

#[test]
fn the_nil_uuid_is_refused_as_a_notification_id() {
    let err = given_no_history::<Inbox>()
        .when(C::MarkNotificationRead {
            notification_id: Uuid::nil(),
            at: at(1),
        })
        .then_expect_error();
    assert_eq!(err, InboxError::InvalidNotificationId);
}

#[test]
fn remembered_reads_are_bounded_and_forget_the_oldest() {
    let history: Vec<_> = (0..=Inbox::REMEMBERED_READS as u128).map(read).collect();
    let inbox = Inbox::from_events(&history);
    assert!(!inbox.has_read(notification(0)));
    assert!(inbox.has_read(notification(Inbox::REMEMBERED_READS as u128)));
    // A forgotten one is recorded again; the projection keeps its first read time.
    given::<Inbox>(history)
        .when(mark(0))
        .then_expect_events([read(0)]);
}

#[test]
fn mark_all_read_up_to_a_moment() {
    let (events, inbox) = given_no_history::<Inbox>()
        .when(C::MarkAllNotificationsRead {
            up_to: at(5),
            at: at(6),
        })
        .then_state();
    assert_eq!(
        events,
        vec![E::AllNotificationsRead {
            up_to: at(5),
            at: at(6)
        }]
    );
    assert_eq!(inbox.read_up_to(), Some(at(5)));
}

#[test]
fn mark_all_read_again_up_to_the_same_or_an_earlier_moment_records_nothing() {
    let done = E::AllNotificationsRead {
        up_to: at(5),
        at: at(6),
    };
    for up_to in [at(5), at(3)] {
        given::<Inbox>([done.clone()])
            .when(C::MarkAllNotificationsRead { up_to, at: at(7) })
            .then_expect_events([]);
    }
    given::<Inbox>([done])
        .when(C::MarkAllNotificationsRead {
            up_to: at(7),
            at: at(8),
        })
        .then_expect_events([E::AllNotificationsRead {
            up_to: at(7),
            at: at(8),
        }]);
}

#[test]
fn mark_all_read_up_to_the_future_is_refused() {
    let err = given_no_history::<Inbox>()
        .when(C::MarkAllNotificationsRead {
            up_to: at(9),
            at: at(8),
        })
        .then_expect_error();
    assert_eq!(
        err,
        InboxError::UpToInFuture {
            up_to: at(9),
            at: at(8)
        }
    );
}

#[test]
fn clear_read_notifications() {
    let (events, inbox) = given::<Inbox>([read(1)])
        .when(C::ClearReadNotifications { at: at(2) })
        .then_state();
    assert_eq!(events, vec![E::ReadNotificationsCleared { at: at(2) }]);
    assert!(!inbox.has_read_since_clear());
    // What was read stays read: marking it again is still a repeat.
    assert!(inbox.has_read(notification(1)));
}

#[test]
fn clearing_with_nothing_read_since_the_last_clear_records_nothing() {
    given_no_history::<Inbox>()
        .when(C::ClearReadNotifications { at: at(2) })
        .then_expect_events([]);
    given::<Inbox>([read(1), E::ReadNotificationsCleared { at: at(2) }])
        .when(C::ClearReadNotifications { at: at(3) })
        .then_expect_events([]);
    given::<Inbox>([E::ReadNotificationsCleared { at: at(2) }, read(2)])
        .when(C::ClearReadNotifications { at: at(3) })
        .then_expect_events([E::ReadNotificationsCleared { at: at(3) }]);
}

#[test]
fn events_have_stable_names_and_the_state_round_trips() {
    let inbox = Inbox::from_events(&[read(1)]);
    let back: Inbox = serde_json::from_str(&serde_json::to_string(&inbox).unwrap()).unwrap();
    assert!(back.has_read(notification(1)));
    assert_eq!(read(1).event_type(), "NotificationRead");
    assert_eq!(
        E::ReadNotificationsCleared { at: at(0) }.event_type(),
        "ReadNotificationsCleared"
    );
    assert_eq!(read(1).event_version(), "1.0");
    assert!(
        serde_json::to_value(read(1))
            .unwrap()
            .get("NotificationRead")
            .is_some()
    );
    assert_eq!(Inbox::TYPE, "inbox");
}
