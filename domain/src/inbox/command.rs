//! What an inbox can be asked to do.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A request to an [`Inbox`](super::Inbox).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboxCommand {
    /// Marks one notification read.
    MarkNotificationRead {
        /// The notification (its id in the `notifications` read model).
        notification_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// Marks every notification created up to `up_to` read (the "mark all read" button:
    /// `up_to` is the newest notification the user was shown, so one that arrives
    /// meanwhile stays unread).
    MarkAllNotificationsRead {
        /// The newest creation time covered.
        up_to: DateTime<Utc>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Hides every notification read so far.
    ClearReadNotifications {
        /// When.
        at: DateTime<Utc>,
    },
}
