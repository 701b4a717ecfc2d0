//! What happened to an inbox. The owner is the stream's aggregate id (the user id),
//! which every consumer receives with the event.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::DomainEvent;

/// A fact about an [`Inbox`](super::Inbox).
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, strum::IntoStaticStr,
)]
pub enum InboxEvent {
    /// One notification was read.
    NotificationRead {
        /// The notification.
        notification_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// Every notification created up to `up_to` was read.
    AllNotificationsRead {
        /// The newest creation time covered.
        up_to: DateTime<Utc>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Every notification read by then was hidden.
    ReadNotificationsCleared {
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for InboxEvent {
    fn event_type(&self) -> &'static str {
        self.into()
    }

    fn event_version(&self) -> &'static str {
        "1.0"
    }
}
