//! The review aggregate: one user's rating and text about one product.
//!
//! **Identity.** The aggregate id is `"<product_id>:<user_id>"`, built by
//! [`Review::id_for`]. One stream per pair makes "one review per user per product"
//! structural: a second `WriteReview` lands on the same stream and is refused with
//! [`ReviewError::AlreadyWritten`].
//!
//! **Rules enforced here.**
//! - Rating 1 to 5, title and body bounded (by the value objects).
//! - Only the author edits, and not once a moderator hid the review; an edit sends
//!   the review back to `pending` moderation, so approved text is always moderated
//!   text.
//! - Moderation: `pending`, `approved`, `rejected` (with a reason; the author may edit
//!   and resubmit), `hidden` (with a reason; locked). A moderator may move a review to
//!   any other status; re-applying the current status is refused.
//! - Helpful votes: only on approved reviews, at most once per voter, never by the
//!   author.
//! - A command that changes nothing (an identical edit) is refused with a typed error.
//!
//! **What the domain cannot enforce alone.** The command layer must build the aggregate
//! id from the same `product_id` and `author_id` it puts in `WriteReview`, check that
//! the product exists, compute `verified_purchase` from the user's orders, and
//! authorise moderators (staff role); the domain trusts those inputs.

mod aggregate;
mod command;
mod error;
mod event;
mod value;

#[cfg(test)]
mod tests;

pub use aggregate::{Review, ReviewState, ReviewStatus};
pub use command::ReviewCommand;
pub use error::ReviewError;
pub use event::ReviewEvent;
pub use value::{ModerationReason, Rating, RatingError, ReviewBody, ReviewTitle};
