//! What a visitor did. The subject (user id or guest key) is the stream's aggregate
//! id, which every consumer receives with the event.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::command::ActivityKind;
use crate::DomainEvent;

/// A fact about a [`UserActivity`](super::UserActivity).
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, strum::IntoStaticStr,
)]
pub enum ActivityEvent {
    /// One activity happened.
    ActivityRecorded {
        /// The activity.
        activity_id: Uuid,
        /// What happened.
        kind: ActivityKind,
        /// The product concerned, if any.
        product_id: Option<Uuid>,
        /// The search text (trimmed, bounded), if any.
        query: Option<String>,
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for ActivityEvent {
    fn event_type(&self) -> &'static str {
        self.into()
    }

    fn event_version(&self) -> &'static str {
        "1.0"
    }
}
