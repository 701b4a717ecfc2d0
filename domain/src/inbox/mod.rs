//! The inbox aggregate: the in-app notification state one user controls.
//!
//! **Identity.** The aggregate id is the owner's user id (a UUID); events do not repeat
//! it.
//!
//! **What it holds, and what it does not.** Notifications themselves are *derived*:
//! the `notifications` projection writes one per business event the user should hear
//! about (order placed, paid, shipped, ... payment failed; low stock for staff), with
//! the source event's id as the notification id, so a rebuild gives the same ids. The
//! inbox records only what the user does to them: read one, read everything up to a
//! moment, clear what is read. It never learns which notifications exist, so it
//! cannot refuse an unknown id; the read model simply has no row to mark.
//!
//! **Rules enforced here.**
//! - Idempotent repeats yield no events: marking a notification read again (among the
//!   last [`Inbox::REMEMBERED_READS`] marked one by one), marking everything read up to
//!   a moment not after the last such moment, clearing when nothing was read since the
//!   last clear. An older repeat beyond the remembered window records an event the
//!   projection absorbs (a read notification keeps its first `read_at`).
//! - The nil UUID is not a notification id ([`InboxError::InvalidNotificationId`]).
//! - "Read everything up to" may not point past the command's own time
//!   ([`InboxError::UpToInFuture`]): notifications that do not exist yet cannot have
//!   been seen.

mod aggregate;
mod command;
mod error;
mod event;

#[cfg(test)]
mod tests;

pub use aggregate::Inbox;
pub use command::InboxCommand;
pub use error::InboxError;
pub use event::InboxEvent;

use crate::aggregate::Aggregate;
use crate::schema::Upcaster;

pub(crate) fn event_schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![(Inbox::TYPE, schemars::schema_for!(InboxEvent))]
}

/// Upcasters for older inbox event versions: none yet, every event is at `1.0`.
pub(crate) fn upcasters() -> Vec<Upcaster> {
    Vec::new()
}
