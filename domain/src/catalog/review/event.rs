//! What happened to a review.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::aggregate::ReviewStatus;
use super::value::{ModerationReason, Rating, ReviewBody, ReviewTitle};
use crate::DomainEvent;

/// A fact about a [`Review`](super::Review). Every event carries the product id, and
/// the moderation events carry the rating and the previous status, so a projection
/// keeping a product's average of approved ratings needs no lookups.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, strum::IntoStaticStr,
)]
pub enum ReviewEvent {
    /// A review was written; it awaits moderation.
    ReviewWritten {
        /// The product reviewed.
        product_id: Uuid,
        /// Its author.
        author_id: Uuid,
        /// Stars.
        rating: Rating,
        /// Headline.
        title: ReviewTitle,
        /// Text.
        body: ReviewBody,
        /// Whether the author bought the product.
        verified_purchase: bool,
        /// When.
        at: DateTime<Utc>,
    },
    /// The author rewrote the review; it awaits moderation again.
    ReviewEdited {
        /// The product reviewed.
        product_id: Uuid,
        /// Stars before the edit.
        previous_rating: Rating,
        /// Stars now.
        rating: Rating,
        /// Headline.
        title: ReviewTitle,
        /// Text.
        body: ReviewBody,
        /// Status before the edit (now `pending`).
        previous_status: ReviewStatus,
        /// When.
        at: DateTime<Utc>,
    },
    /// A user found the review helpful.
    ReviewMarkedHelpful {
        /// The product reviewed.
        product_id: Uuid,
        /// The voter.
        voter_id: Uuid,
        /// Helpful votes including this one.
        helpful_votes: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// A moderator approved the review.
    ReviewApproved {
        /// The product reviewed.
        product_id: Uuid,
        /// The staff member.
        moderator_id: Uuid,
        /// The review's stars.
        rating: Rating,
        /// Status before.
        previous_status: ReviewStatus,
        /// When.
        at: DateTime<Utc>,
    },
    /// A moderator rejected the review.
    ReviewRejected {
        /// The product reviewed.
        product_id: Uuid,
        /// The staff member.
        moderator_id: Uuid,
        /// The review's stars.
        rating: Rating,
        /// Why.
        reason: ModerationReason,
        /// Status before.
        previous_status: ReviewStatus,
        /// When.
        at: DateTime<Utc>,
    },
    /// A moderator hid the review.
    ReviewHidden {
        /// The product reviewed.
        product_id: Uuid,
        /// The staff member.
        moderator_id: Uuid,
        /// The review's stars.
        rating: Rating,
        /// Why.
        reason: ModerationReason,
        /// Status before.
        previous_status: ReviewStatus,
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for ReviewEvent {
    fn event_type(&self) -> &'static str {
        self.into()
    }

    fn event_version(&self) -> &'static str {
        "1.0"
    }
}
