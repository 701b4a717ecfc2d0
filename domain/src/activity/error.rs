//! Why a user-activity record refused a command.

use super::command::ActivityKind;

/// A broken activity rule. Nothing is recorded for a refused command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActivityError {
    /// The nil UUID was given as an activity id.
    #[error("the nil uuid is not an activity id")]
    InvalidActivityId,
    /// A `view` or `add_to_cart` without a product.
    #[error("a {0} activity needs a product")]
    MissingProduct(ActivityKind),
    /// A `search` without a query (or with a blank one).
    #[error("a search activity needs a query")]
    MissingQuery,
    /// A blank query on another kind of activity.
    #[error("a query may not be blank")]
    BlankQuery,
    /// A query longer than [`UserActivity::MAX_QUERY_CHARS`](super::UserActivity::MAX_QUERY_CHARS).
    #[error("a query may have at most {max} characters, got {got}")]
    QueryTooLong {
        /// The bound.
        max: usize,
        /// The length given (characters, after trimming).
        got: usize,
    },
}
