//! Given/when/then for every review command.

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use super::*;
use crate::testing::{given, given_no_history};
use crate::{Aggregate, DomainEvent};

use ReviewCommand as C;
use ReviewEvent as E;

const PRODUCT: Uuid = Uuid::from_u128(1);
const AUTHOR: Uuid = Uuid::from_u128(2);
const VOTER: Uuid = Uuid::from_u128(3);
const MODERATOR: Uuid = Uuid::from_u128(4);

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + seconds, 0).unwrap()
}

fn stars(n: i64) -> Rating {
    Rating::new(n).unwrap()
}

fn title(s: &str) -> ReviewTitle {
    ReviewTitle::parse(s).unwrap()
}

fn body(s: &str) -> ReviewBody {
    ReviewBody::parse(s).unwrap()
}

fn reason(s: &str) -> ModerationReason {
    ModerationReason::parse(s).unwrap()
}

fn write() -> ReviewCommand {
    C::WriteReview {
        product_id: PRODUCT,
        author_id: AUTHOR,
        rating: stars(4),
        title: title("Good shirt"),
        body: body("Fits well."),
        verified_purchase: true,
        at: at(0),
    }
}

fn written() -> ReviewEvent {
    E::ReviewWritten {
        product_id: PRODUCT,
        author_id: AUTHOR,
        rating: stars(4),
        title: title("Good shirt"),
        body: body("Fits well."),
        verified_purchase: true,
        at: at(0),
    }
}

fn approved(previous_status: ReviewStatus) -> ReviewEvent {
    E::ReviewApproved {
        product_id: PRODUCT,
        moderator_id: MODERATOR,
        rating: stars(4),
        previous_status,
        at: at(1),
    }
}

fn rejected() -> ReviewEvent {
    E::ReviewRejected {
        product_id: PRODUCT,
        moderator_id: MODERATOR,
        rating: stars(4),
        reason: reason("off topic"),
        previous_status: ReviewStatus::Pending,
        at: at(1),
    }
}

fn hidden() -> ReviewEvent {
    E::ReviewHidden {
        product_id: PRODUCT,
        moderator_id: MODERATOR,
        rating: stars(4),
        reason: reason("abusive"),
        previous_status: ReviewStatus::Pending,
        at: at(1),
    }
}

fn edit(editor_id: Uuid, rating: i64) -> ReviewCommand {
    C::EditReview {
        editor_id,
        rating: stars(rating),
        title: title("Good shirt"),
        body: body("Fits well. Shrinks a little."),
        at: at(5),
    }
}

fn vote(voter_id: Uuid) -> ReviewCommand {
    C::MarkReviewHelpful {
        voter_id,
        at: at(6),
    }
}

fn voted(voter_id: Uuid, helpful_votes: u32) -> ReviewEvent {
    E::ReviewMarkedHelpful {
        product_id: PRODUCT,
        voter_id,
        helpful_votes,
        at: at(6),
    }
}

#[test]
fn the_aggregate_id_pairs_product_and_user() {
    assert_eq!(
        Review::id_for(PRODUCT, AUTHOR),
        "00000000-0000-0000-0000-000000000001:00000000-0000-0000-0000-000000000002"
    );
}

#[test]
fn write_a_review_that_awaits_moderation() {
    let (events, review) = given_no_history::<Review>().when(write()).then_state();
    assert_eq!(events, vec![written()]);
    let s = review.state().unwrap();
    assert_eq!(s.status, ReviewStatus::Pending);
    assert!(s.verified_purchase);
    assert_eq!(s.helpful_votes(), 0);
}

#[test]
fn writing_twice_is_refused() {
    let err = given::<Review>([written()])
        .when(write())
        .then_expect_error();
    assert_eq!(err, ReviewError::AlreadyWritten);
}

#[test]
fn commands_on_an_unwritten_review_are_refused() {
    let commands = [
        edit(AUTHOR, 5),
        vote(VOTER),
        C::ApproveReview {
            moderator_id: MODERATOR,
            at: at(1),
        },
    ];
    for cmd in commands {
        let err = given_no_history::<Review>().when(cmd).then_expect_error();
        assert_eq!(err, ReviewError::NotWritten);
    }
}

#[test]
fn the_author_edits_and_the_review_goes_back_to_moderation() {
    let (events, review) = given::<Review>([written(), approved(ReviewStatus::Pending)])
        .when(edit(AUTHOR, 3))
        .then_state();
    assert_eq!(
        events,
        vec![E::ReviewEdited {
            product_id: PRODUCT,
            previous_rating: stars(4),
            rating: stars(3),
            title: title("Good shirt"),
            body: body("Fits well. Shrinks a little."),
            previous_status: ReviewStatus::Approved,
            at: at(5),
        }]
    );
    let s = review.state().unwrap();
    assert_eq!(s.status, ReviewStatus::Pending);
    assert_eq!(s.rating, stars(3));
    assert_eq!(s.edited_at, Some(at(5)));
}

#[test]
fn a_rejected_review_can_be_edited_and_resubmitted() {
    let (_, review) = given::<Review>([written(), rejected()])
        .when(edit(AUTHOR, 4))
        .then_state();
    let s = review.state().unwrap();
    assert_eq!(s.status, ReviewStatus::Pending);
    assert_eq!(s.moderation_reason, None);
}

#[test]
fn edit_refuses_other_users_hidden_reviews_and_no_change() {
    let err = given::<Review>([written()])
        .when(edit(VOTER, 5))
        .then_expect_error();
    assert_eq!(err, ReviewError::NotAuthor);
    let err = given::<Review>([written(), hidden()])
        .when(edit(AUTHOR, 5))
        .then_expect_error();
    assert_eq!(err, ReviewError::HiddenReviewLocked);
    let err = given::<Review>([written()])
        .when(C::EditReview {
            editor_id: AUTHOR,
            rating: stars(4),
            title: title("Good shirt"),
            body: body("Fits well."),
            at: at(5),
        })
        .then_expect_error();
    assert_eq!(err, ReviewError::ReviewUnchanged);
}

#[test]
fn mark_helpful_counts_each_voter_once() {
    let (events, review) = given::<Review>([written(), approved(ReviewStatus::Pending)])
        .when(vote(VOTER))
        .then_state();
    assert_eq!(events, vec![voted(VOTER, 1)]);
    assert_eq!(review.state().unwrap().helpful_votes(), 1);
    given::<Review>([written(), approved(ReviewStatus::Pending), voted(VOTER, 1)])
        .when(vote(MODERATOR))
        .then_expect_events([voted(MODERATOR, 2)]);
}

#[test]
fn mark_helpful_refuses_a_second_vote_the_author_and_unapproved_reviews() {
    let err = given::<Review>([written(), approved(ReviewStatus::Pending), voted(VOTER, 1)])
        .when(vote(VOTER))
        .then_expect_error();
    assert_eq!(err, ReviewError::AlreadyVoted);
    let err = given::<Review>([written(), approved(ReviewStatus::Pending)])
        .when(vote(AUTHOR))
        .then_expect_error();
    assert_eq!(err, ReviewError::AuthorCannotVote);
    let err = given::<Review>([written()])
        .when(vote(VOTER))
        .then_expect_error();
    assert_eq!(err, ReviewError::NotApproved);
}

#[test]
fn approve_a_pending_or_hidden_review() {
    let (events, review) = given::<Review>([written()])
        .when(C::ApproveReview {
            moderator_id: MODERATOR,
            at: at(1),
        })
        .then_state();
    assert_eq!(events, vec![approved(ReviewStatus::Pending)]);
    assert_eq!(review.state().unwrap().status, ReviewStatus::Approved);
    let (events, review) = given::<Review>([written(), hidden()])
        .when(C::ApproveReview {
            moderator_id: MODERATOR,
            at: at(1),
        })
        .then_state();
    assert_eq!(events, vec![approved(ReviewStatus::Hidden)]);
    assert_eq!(review.state().unwrap().moderation_reason, None);
}

#[test]
fn approve_twice_is_refused() {
    let err = given::<Review>([written(), approved(ReviewStatus::Pending)])
        .when(C::ApproveReview {
            moderator_id: MODERATOR,
            at: at(2),
        })
        .then_expect_error();
    assert_eq!(err, ReviewError::AlreadyApproved);
}

#[test]
fn reject_with_a_reason() {
    let (events, review) = given::<Review>([written()])
        .when(C::RejectReview {
            moderator_id: MODERATOR,
            reason: reason("off topic"),
            at: at(1),
        })
        .then_state();
    assert_eq!(events, vec![rejected()]);
    let s = review.state().unwrap();
    assert_eq!(s.status, ReviewStatus::Rejected);
    assert_eq!(s.moderation_reason, Some(reason("off topic")));
}

#[test]
fn reject_twice_is_refused() {
    let err = given::<Review>([written(), rejected()])
        .when(C::RejectReview {
            moderator_id: MODERATOR,
            reason: reason("still off topic"),
            at: at(2),
        })
        .then_expect_error();
    assert_eq!(err, ReviewError::AlreadyRejected);
}

#[test]
fn hide_an_approved_review() {
    let (events, review) = given::<Review>([written(), approved(ReviewStatus::Pending)])
        .when(C::HideReview {
            moderator_id: MODERATOR,
            reason: reason("abusive"),
            at: at(1),
        })
        .then_state();
    assert_eq!(
        events,
        vec![E::ReviewHidden {
            product_id: PRODUCT,
            moderator_id: MODERATOR,
            rating: stars(4),
            reason: reason("abusive"),
            previous_status: ReviewStatus::Approved,
            at: at(1),
        }]
    );
    assert_eq!(review.state().unwrap().status, ReviewStatus::Hidden);
}

#[test]
fn hide_twice_is_refused() {
    let err = given::<Review>([written(), hidden()])
        .when(C::HideReview {
            moderator_id: MODERATOR,
            reason: reason("abusive"),
            at: at(2),
        })
        .then_expect_error();
    assert_eq!(err, ReviewError::AlreadyHidden);
}

#[test]
fn events_have_stable_names_and_the_state_round_trips() {
    let history = [written(), approved(ReviewStatus::Pending), voted(VOTER, 1)];
    let review = Review::from_events(&history);
    let back: Review = serde_json::from_str(&serde_json::to_string(&review).unwrap()).unwrap();
    assert_eq!(back.state(), review.state());
    for e in &history {
        assert_eq!(e.event_version(), "1.0");
        let json = serde_json::to_value(e).unwrap();
        assert!(json.get(e.event_type()).is_some());
    }
    let json = serde_json::to_value(approved(ReviewStatus::Hidden)).unwrap();
    assert_eq!(json["ReviewApproved"]["previous_status"], "hidden");
    assert_eq!(json["ReviewApproved"]["rating"], 4);
}
