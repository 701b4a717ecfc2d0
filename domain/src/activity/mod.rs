//! The user-activity aggregate: what one visitor did (viewed, clicked, added to cart,
//! searched, bought), for analytics and recommendations (the seed's
//! `POST /analytics/user-activities/`).
//!
//! **Identity.** The aggregate id is the subject: a signed-in user's id, or a guest's
//! session key for anonymous visitors. Events do not repeat it.
//!
//! **Rules enforced here.**
//! - Recording is idempotent by `activity_id` (a client retrying a beacon): a repeat of
//!   one of the last [`UserActivity::REMEMBERED`] ids records nothing. The memory is
//!   bounded so a busy visitor's state stays small.
//! - A `view` or `add_to_cart` names a product ([`ActivityError::MissingProduct`]); a
//!   `search` carries a query ([`ActivityError::MissingQuery`]); a query is at most
//!   [`UserActivity::MAX_QUERY_CHARS`] characters after trimming
//!   ([`ActivityError::QueryTooLong`]) and never blank.
//! - The nil UUID is not an activity id ([`ActivityError::InvalidActivityId`]).
//!
//! **Not enforced here.** That the product exists, and that a guest key is well formed,
//! are the command layer's; the stream of a long-lived visitor grows, so its
//! dispatcher should load from snapshots.

mod aggregate;
mod command;
mod error;
mod event;

#[cfg(test)]
mod tests;

pub use aggregate::UserActivity;
pub use command::{ActivityCommand, ActivityKind};
pub use error::ActivityError;
pub use event::ActivityEvent;

use crate::aggregate::Aggregate;
use crate::schema::Upcaster;

pub(crate) fn event_schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![(UserActivity::TYPE, schemars::schema_for!(ActivityEvent))]
}

/// Upcasters for older activity event versions: none yet, every event is at `1.0`.
pub(crate) fn upcasters() -> Vec<Upcaster> {
    Vec::new()
}
