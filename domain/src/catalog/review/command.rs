//! What a review can be asked to do.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::value::{ModerationReason, Rating, ReviewBody, ReviewTitle};

/// A request to a [`Review`](super::Review).
#[derive(Debug, Clone, PartialEq)]
pub enum ReviewCommand {
    /// Writes the review (once).
    WriteReview {
        /// The product reviewed.
        product_id: Uuid,
        /// The user writing it.
        author_id: Uuid,
        /// Stars.
        rating: Rating,
        /// Headline.
        title: ReviewTitle,
        /// Text.
        body: ReviewBody,
        /// Whether the author bought the product, as the command layer found in the
        /// order history.
        verified_purchase: bool,
        /// When.
        at: DateTime<Utc>,
    },
    /// Rewrites the review; only its author may. The edited review awaits moderation
    /// again.
    EditReview {
        /// The user asking.
        editor_id: Uuid,
        /// New stars.
        rating: Rating,
        /// New headline.
        title: ReviewTitle,
        /// New text.
        body: ReviewBody,
        /// When.
        at: DateTime<Utc>,
    },
    /// Records that a user found the review helpful.
    MarkReviewHelpful {
        /// The user voting.
        voter_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// A moderator approves the review for display.
    ApproveReview {
        /// The staff member.
        moderator_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// A moderator rejects the review; its author may edit and resubmit it.
    RejectReview {
        /// The staff member.
        moderator_id: Uuid,
        /// Why, shown to the author.
        reason: ModerationReason,
        /// When.
        at: DateTime<Utc>,
    },
    /// A moderator takes the review down; its author can no longer edit it.
    HideReview {
        /// The staff member.
        moderator_id: Uuid,
        /// Why.
        reason: ModerationReason,
        /// When.
        at: DateTime<Utc>,
    },
}
