//! The inbox's state, its decisions and how events evolve it.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::command::InboxCommand;
use super::error::InboxError;
use super::event::InboxEvent;
use crate::Aggregate;

/// One user's notification state, identified by the user's id. Its rules are
/// documented in `inbox/mod.rs`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Inbox {
    /// Notifications marked read one by one, oldest first, at most
    /// [`Inbox::REMEMBERED_READS`].
    read: VecDeque<Uuid>,
    /// The latest "read everything up to".
    read_up_to: Option<DateTime<Utc>>,
    /// Whether anything was read since the last clear (or ever, before one).
    read_since_clear: bool,
}

impl Inbox {
    /// How many individually read notification ids the inbox remembers, so a repeated
    /// "mark read" is recognised without the state growing for ever.
    pub const REMEMBERED_READS: usize = 1_000;

    /// Whether `notification_id` is among the remembered individually read ones.
    #[must_use]
    pub fn has_read(&self, notification_id: Uuid) -> bool {
        self.read.contains(&notification_id)
    }

    /// The latest "read everything up to" moment, if any.
    #[must_use]
    pub fn read_up_to(&self) -> Option<DateTime<Utc>> {
        self.read_up_to
    }

    /// Whether a clear would hide anything.
    #[must_use]
    pub fn has_read_since_clear(&self) -> bool {
        self.read_since_clear
    }
}

impl Aggregate for Inbox {
    const TYPE: &'static str = "inbox";
    type Command = InboxCommand;
    type Event = InboxEvent;
    type Error = InboxError;

    fn handle(&self, command: InboxCommand) -> Result<Vec<InboxEvent>, InboxError> {
        let event = match command {
            InboxCommand::MarkNotificationRead {
                notification_id,
                at,
            } => {
                if notification_id.is_nil() {
                    return Err(InboxError::InvalidNotificationId);
                }
                if self.has_read(notification_id) {
                    return Ok(Vec::new());
                }
                InboxEvent::NotificationRead {
                    notification_id,
                    at,
                }
            }
            InboxCommand::MarkAllNotificationsRead { up_to, at } => {
                if up_to > at {
                    return Err(InboxError::UpToInFuture { up_to, at });
                }
                if self.read_up_to.is_some_and(|done| up_to <= done) {
                    return Ok(Vec::new());
                }
                InboxEvent::AllNotificationsRead { up_to, at }
            }
            InboxCommand::ClearReadNotifications { at } => {
                if !self.read_since_clear {
                    return Ok(Vec::new());
                }
                InboxEvent::ReadNotificationsCleared { at }
            }
        };
        Ok(vec![event])
    }

    fn apply(&mut self, event: &InboxEvent) {
        match event {
            InboxEvent::NotificationRead {
                notification_id, ..
            } => {
                if !self.has_read(*notification_id) {
                    if self.read.len() >= Self::REMEMBERED_READS {
                        self.read.pop_front();
                    }
                    self.read.push_back(*notification_id);
                }
                self.read_since_clear = true;
            }
            InboxEvent::AllNotificationsRead { up_to, .. } => {
                self.read_up_to = Some(self.read_up_to.map_or(*up_to, |done| done.max(*up_to)));
                self.read_since_clear = true;
            }
            InboxEvent::ReadNotificationsCleared { .. } => self.read_since_clear = false,
        }
    }
}
