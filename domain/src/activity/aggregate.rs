//! The activity record's state, its decisions and how events evolve it.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::command::{ActivityCommand, ActivityKind};
use super::error::ActivityError;
use super::event::ActivityEvent;
use crate::Aggregate;

/// One visitor's activity, identified by user id or guest key. Its rules are
/// documented in `activity/mod.rs`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct UserActivity {
    /// The latest activity ids, oldest first, at most [`UserActivity::REMEMBERED`].
    recent: VecDeque<Uuid>,
    /// Activities recorded in all.
    recorded: u64,
}

impl UserActivity {
    /// How many recent activity ids are remembered to recognise a retry.
    pub const REMEMBERED: usize = 256;
    /// The longest search query kept, in characters.
    pub const MAX_QUERY_CHARS: usize = 200;

    /// Whether `activity_id` is among the remembered recent ones.
    #[must_use]
    pub fn remembers(&self, activity_id: Uuid) -> bool {
        self.recent.contains(&activity_id)
    }

    /// How many activities were recorded.
    #[must_use]
    pub fn recorded(&self) -> u64 {
        self.recorded
    }
}

/// Trims a query and checks its bounds.
fn checked_query(query: Option<String>) -> Result<Option<String>, ActivityError> {
    let Some(query) = query else {
        return Ok(None);
    };
    let trimmed = query.trim();
    if trimmed.is_empty() {
        return Err(ActivityError::BlankQuery);
    }
    let got = trimmed.chars().count();
    if got > UserActivity::MAX_QUERY_CHARS {
        return Err(ActivityError::QueryTooLong {
            max: UserActivity::MAX_QUERY_CHARS,
            got,
        });
    }
    Ok(Some(trimmed.to_owned()))
}

impl Aggregate for UserActivity {
    const TYPE: &'static str = "activity";
    type Command = ActivityCommand;
    type Event = ActivityEvent;
    type Error = ActivityError;

    fn handle(&self, command: ActivityCommand) -> Result<Vec<ActivityEvent>, ActivityError> {
        let ActivityCommand::RecordActivity {
            activity_id,
            kind,
            product_id,
            query,
            at,
        } = command;
        if activity_id.is_nil() {
            return Err(ActivityError::InvalidActivityId);
        }
        if self.remembers(activity_id) {
            return Ok(Vec::new());
        }
        let query = match (kind, checked_query(query)) {
            (ActivityKind::Search, Ok(None) | Err(ActivityError::BlankQuery)) => {
                return Err(ActivityError::MissingQuery);
            }
            (_, result) => result?,
        };
        if matches!(kind, ActivityKind::View | ActivityKind::AddToCart) && product_id.is_none() {
            return Err(ActivityError::MissingProduct(kind));
        }
        Ok(vec![ActivityEvent::ActivityRecorded {
            activity_id,
            kind,
            product_id,
            query,
            at,
        }])
    }

    fn apply(&mut self, event: &ActivityEvent) {
        let ActivityEvent::ActivityRecorded { activity_id, .. } = event;
        if !self.remembers(*activity_id) {
            if self.recent.len() >= Self::REMEMBERED {
                self.recent.pop_front();
            }
            self.recent.push_back(*activity_id);
        }
        self.recorded += 1;
    }
}
