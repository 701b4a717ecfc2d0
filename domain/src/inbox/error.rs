//! Why an inbox refused a command.

use chrono::{DateTime, Utc};

/// A broken inbox rule. Nothing is recorded for a refused command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboxError {
    /// The nil UUID was given as a notification id.
    #[error("the nil uuid is not a notification id")]
    InvalidNotificationId,
    /// "Read everything up to" pointed past the command's own time.
    #[error("cannot mark notifications read up to {up_to}, which is after {at}")]
    UpToInFuture {
        /// The moment asked for.
        up_to: DateTime<Utc>,
        /// The command's time.
        at: DateTime<Utc>,
    },
}
