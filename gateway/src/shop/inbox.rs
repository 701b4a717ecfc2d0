//! The viewer's in-app notifications: read from `notifications` (the viewer's rows
//! only), changed through `Dispatcher<Inbox>` (the aggregate id is the user id).
//!
//! The inbox aggregate never learns which notifications exist, so ownership is checked
//! here against the read model before a command is sent: a foreign notification id is
//! answered exactly like a missing one.

use chrono::{DateTime, Utc};
use emporium_commands::CommandError;
use emporium_domain::inbox::{InboxCommand, InboxError};
use emporium_projections::args;
use uuid::Uuid;

use super::Shop;
use crate::error::ApiError;

/// The projection whose checkpoint an inbox answer waits for.
const PROJECTION: &str = "notifications";

/// The most notifications one page shows.
pub(crate) const MAX_PAGE: i64 = 100;

/// A notification, as its recipient sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct NotificationRow {
    pub(crate) notification_id: Uuid,
    pub(crate) kind: String,
    pub(crate) title: String,
    pub(crate) body: String,
    pub(crate) order_id: Option<Uuid>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) read_at: Option<DateTime<Utc>>,
}

/// The counts a bulk change answers with.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub(crate) struct InboxCounts {
    /// Notifications shown (not cleared).
    pub(crate) total: i64,
    /// Of which unread.
    pub(crate) unread: i64,
}

const COLUMNS: &str = "notification_id, kind, title, body, order_id, created_at, read_at";

fn read_error(e: sqlx::Error, what: &'static str) -> ApiError {
    ApiError::internal(anyhow::Error::from(e).context(what))
}

impl Shop {
    /// The user's latest notifications (cleared ones hidden), newest first.
    ///
    /// # Errors
    /// When the read model cannot be read.
    pub(crate) async fn notifications(
        &self,
        user_id: Uuid,
        first: i64,
        unread_only: bool,
    ) -> Result<Vec<NotificationRow>, ApiError> {
        self.read
            .fetch_all(
                &format!(
                    "SELECT {COLUMNS} FROM notifications
                     WHERE user_id = $1 AND NOT cleared AND (NOT $2 OR read_at IS NULL)
                     ORDER BY created_at DESC, notification_id DESC
                     LIMIT $3"
                ),
                args![user_id, unread_only, first.clamp(1, MAX_PAGE)],
            )
            .await
            .map_err(|e| read_error(e, "read notifications"))
    }

    /// How many notifications the user has, and how many are unread.
    ///
    /// # Errors
    /// When the read model cannot be read.
    pub(crate) async fn inbox_counts(&self, user_id: Uuid) -> Result<InboxCounts, ApiError> {
        self.read
            .fetch_one(
                "SELECT count(*) AS total, count(*) FILTER (WHERE read_at IS NULL) AS unread
                 FROM notifications WHERE user_id = $1 AND NOT cleared",
                args![user_id],
            )
            .await
            .map_err(|e| read_error(e, "count notifications"))
    }

    /// The user's own notification `id` (cleared ones included), if there is one.
    async fn own_notification(
        &self,
        user_id: Uuid,
        id: Uuid,
    ) -> Result<Option<NotificationRow>, ApiError> {
        self.read
            .fetch_optional(
                &format!(
                    "SELECT {COLUMNS} FROM notifications WHERE notification_id = $1 AND user_id = $2"
                ),
                args![id, user_id],
            )
            .await
            .map_err(|e| read_error(e, "read notification"))
    }

    async fn change_inbox(&self, user_id: Uuid, command: InboxCommand) -> Result<(), ApiError> {
        let position = match self
            .inboxes
            .execute_retrying(&user_id.to_string(), command, &self.metadata(user_id))
            .await
        {
            Ok(committed) => committed.position,
            Err(CommandError::Rejected(InboxError::InvalidNotificationId)) => {
                return Err(ApiError::NotFound {
                    what: "notification",
                });
            }
            Err(CommandError::Rejected(e @ InboxError::UpToInFuture { .. })) => {
                return Err(ApiError::internal(anyhow::Error::from(e)));
            }
            Err(CommandError::Conflict { .. }) => return Err(ApiError::Conflict),
            Err(CommandError::Unexpected(e)) => return Err(ApiError::Internal(e)),
        };
        self.read_your_writes(PROJECTION, position).await
    }

    /// Marks one of the user's notifications read and answers with it.
    ///
    /// # Errors
    /// `NOT_FOUND` for an id that is not one of the user's notifications.
    pub(crate) async fn mark_notification_read(
        &self,
        user_id: Uuid,
        id: Uuid,
    ) -> Result<NotificationRow, ApiError> {
        let not_found = || ApiError::NotFound {
            what: "notification",
        };
        let row = self
            .own_notification(user_id, id)
            .await?
            .ok_or_else(not_found)?;
        if row.read_at.is_none() {
            let at = self.clock.now();
            self.change_inbox(
                user_id,
                InboxCommand::MarkNotificationRead {
                    notification_id: id,
                    at,
                },
            )
            .await?;
        }
        self.own_notification(user_id, id)
            .await?
            .ok_or_else(not_found)
    }

    /// Marks every notification the user has been shown read: up to the newest one
    /// the read model holds now, so one arriving meanwhile stays unread.
    ///
    /// # Errors
    /// When the store or the read model fails.
    pub(crate) async fn mark_all_notifications_read(
        &self,
        user_id: Uuid,
    ) -> Result<InboxCounts, ApiError> {
        // An aggregate always answers one row: `None` when there is nothing unread.
        let newest: Option<DateTime<Utc>> = self
            .read
            .scalar_optional::<Option<DateTime<Utc>>>(
                "SELECT max(created_at) FROM notifications
                 WHERE user_id = $1 AND read_at IS NULL AND NOT cleared",
                args![user_id],
            )
            .await
            .map_err(|e| read_error(e, "find newest notification"))?
            .flatten();
        if let Some(up_to) = newest {
            // A notification stamped by a clock ahead of ours is still one shown.
            let at = self.clock.now().max(up_to);
            self.change_inbox(
                user_id,
                InboxCommand::MarkAllNotificationsRead { up_to, at },
            )
            .await?;
        }
        self.inbox_counts(user_id).await
    }

    /// Hides every notification the user has read.
    ///
    /// # Errors
    /// When the store or the read model fails.
    pub(crate) async fn clear_read_notifications(
        &self,
        user_id: Uuid,
    ) -> Result<InboxCounts, ApiError> {
        let at = self.clock.now();
        self.change_inbox(user_id, InboxCommand::ClearReadNotifications { at })
            .await?;
        self.inbox_counts(user_id).await
    }
}
