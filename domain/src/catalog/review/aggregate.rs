//! The review's state, its decisions and how events evolve it.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::command::ReviewCommand;
use super::error::ReviewError;
use super::event::ReviewEvent;
use super::value::{ModerationReason, Rating, ReviewBody, ReviewTitle};
use crate::Aggregate;

/// Where a review is in moderation. Only approved reviews are shown and counted in a
/// product's rating.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    /// Written or edited, awaiting a moderator.
    Pending,
    /// Shown in the storefront.
    Approved,
    /// Refused; the author may edit and resubmit.
    Rejected,
    /// Taken down; the author can no longer edit it.
    Hidden,
}

/// Everything known about a written review. Read it through [`Review::state`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReviewState {
    /// The product reviewed.
    pub product_id: Uuid,
    /// Its author.
    pub author_id: Uuid,
    /// Stars.
    pub rating: Rating,
    /// Headline.
    pub title: ReviewTitle,
    /// Text.
    pub body: ReviewBody,
    /// Whether the author bought the product.
    pub verified_purchase: bool,
    /// Moderation status.
    pub status: ReviewStatus,
    /// The reason of the latest rejection or hiding, while rejected or hidden.
    pub moderation_reason: Option<ModerationReason>,
    /// Users who found it helpful.
    pub helpful_voters: BTreeSet<Uuid>,
    /// When it was written.
    pub written_at: DateTime<Utc>,
    /// When it was last edited.
    pub edited_at: Option<DateTime<Utc>>,
}

impl ReviewState {
    /// How many users found it helpful.
    #[must_use]
    pub fn helpful_votes(&self) -> u32 {
        u32::try_from(self.helpful_voters.len()).unwrap_or(u32::MAX)
    }
}

/// One user's review of one product, identified by [`Review::id_for`]. Its rules, and
/// what the command layer must enforce, are documented in `catalog/review/mod.rs`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Review {
    state: Option<ReviewState>,
}

impl Review {
    /// The aggregate id of `user_id`'s review of `product_id`:
    /// `"<product_id>:<user_id>"`. One id per pair is what makes "one review per user
    /// per product" structural.
    #[must_use]
    pub fn id_for(product_id: Uuid, user_id: Uuid) -> String {
        format!("{product_id}:{user_id}")
    }

    /// The review, or `None` before `ReviewWritten`.
    #[must_use]
    pub fn state(&self) -> Option<&ReviewState> {
        self.state.as_ref()
    }
}

impl Aggregate for Review {
    const TYPE: &'static str = "review";
    type Command = ReviewCommand;
    type Event = ReviewEvent;
    type Error = ReviewError;

    fn handle(&self, command: ReviewCommand) -> Result<Vec<ReviewEvent>, ReviewError> {
        use ReviewCommand as C;
        use ReviewEvent as E;
        let Some(s) = &self.state else {
            let C::WriteReview {
                product_id,
                author_id,
                rating,
                title,
                body,
                verified_purchase,
                at,
            } = command
            else {
                return Err(ReviewError::NotWritten);
            };
            return Ok(vec![E::ReviewWritten {
                product_id,
                author_id,
                rating,
                title,
                body,
                verified_purchase,
                at,
            }]);
        };
        let event = match command {
            C::WriteReview { .. } => return Err(ReviewError::AlreadyWritten),
            C::EditReview {
                editor_id,
                rating,
                title,
                body,
                at,
            } => {
                if editor_id != s.author_id {
                    return Err(ReviewError::NotAuthor);
                }
                if s.status == ReviewStatus::Hidden {
                    return Err(ReviewError::HiddenReviewLocked);
                }
                if rating == s.rating && title == s.title && body == s.body {
                    return Err(ReviewError::ReviewUnchanged);
                }
                E::ReviewEdited {
                    product_id: s.product_id,
                    previous_rating: s.rating,
                    rating,
                    title,
                    body,
                    previous_status: s.status,
                    at,
                }
            }
            C::MarkReviewHelpful { voter_id, at } => {
                if voter_id == s.author_id {
                    return Err(ReviewError::AuthorCannotVote);
                }
                if s.status != ReviewStatus::Approved {
                    return Err(ReviewError::NotApproved);
                }
                if s.helpful_voters.contains(&voter_id) {
                    return Err(ReviewError::AlreadyVoted);
                }
                E::ReviewMarkedHelpful {
                    product_id: s.product_id,
                    voter_id,
                    helpful_votes: s.helpful_votes().saturating_add(1),
                    at,
                }
            }
            C::ApproveReview { moderator_id, at } => {
                if s.status == ReviewStatus::Approved {
                    return Err(ReviewError::AlreadyApproved);
                }
                E::ReviewApproved {
                    product_id: s.product_id,
                    moderator_id,
                    rating: s.rating,
                    previous_status: s.status,
                    at,
                }
            }
            C::RejectReview {
                moderator_id,
                reason,
                at,
            } => {
                if s.status == ReviewStatus::Rejected {
                    return Err(ReviewError::AlreadyRejected);
                }
                E::ReviewRejected {
                    product_id: s.product_id,
                    moderator_id,
                    rating: s.rating,
                    reason,
                    previous_status: s.status,
                    at,
                }
            }
            C::HideReview {
                moderator_id,
                reason,
                at,
            } => {
                if s.status == ReviewStatus::Hidden {
                    return Err(ReviewError::AlreadyHidden);
                }
                E::ReviewHidden {
                    product_id: s.product_id,
                    moderator_id,
                    rating: s.rating,
                    reason,
                    previous_status: s.status,
                    at,
                }
            }
        };
        Ok(vec![event])
    }

    fn apply(&mut self, event: &ReviewEvent) {
        use ReviewEvent as E;
        if let E::ReviewWritten {
            product_id,
            author_id,
            rating,
            title,
            body,
            verified_purchase,
            at,
        } = event
        {
            if self.state.is_none() {
                self.state = Some(ReviewState {
                    product_id: *product_id,
                    author_id: *author_id,
                    rating: *rating,
                    title: title.clone(),
                    body: body.clone(),
                    verified_purchase: *verified_purchase,
                    status: ReviewStatus::Pending,
                    moderation_reason: None,
                    helpful_voters: BTreeSet::new(),
                    written_at: *at,
                    edited_at: None,
                });
            }
            return;
        }
        // Other events before `ReviewWritten` cannot come from `handle`; a fact is never
        // refused, so they are ignored.
        let Some(s) = &mut self.state else {
            return;
        };
        match event {
            E::ReviewWritten { .. } => {}
            E::ReviewEdited {
                rating,
                title,
                body,
                at,
                ..
            } => {
                s.rating = *rating;
                s.title = title.clone();
                s.body = body.clone();
                s.status = ReviewStatus::Pending;
                s.moderation_reason = None;
                s.edited_at = Some(*at);
            }
            E::ReviewMarkedHelpful { voter_id, .. } => {
                s.helpful_voters.insert(*voter_id);
            }
            E::ReviewApproved { .. } => {
                s.status = ReviewStatus::Approved;
                s.moderation_reason = None;
            }
            E::ReviewRejected { reason, .. } => {
                s.status = ReviewStatus::Rejected;
                s.moderation_reason = Some(reason.clone());
            }
            E::ReviewHidden { reason, .. } => {
                s.status = ReviewStatus::Hidden;
                s.moderation_reason = Some(reason.clone());
            }
        }
    }
}
