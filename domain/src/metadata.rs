//! Metadata that travels with every event.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Who or what caused a command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Actor {
    /// A signed-in user.
    User(Uuid),
    /// A guest identified by an opaque session key.
    Guest(String),
    /// The platform itself (a saga, a scheduler, a worker), named.
    System(String),
}

/// Context recorded with each event of a command.
///
/// The event id itself is assigned per event by the event store; everything here is
/// per command and shared by the events it produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EventMetadata {
    /// Groups every command and event of one business flow (a checkout, say).
    pub correlation_id: Uuid,
    /// The command (or event) that directly caused this one.
    pub causation_id: Uuid,
    /// Who asked.
    pub actor: Actor,
    /// When the command was handled.
    pub occurred_at: DateTime<Utc>,
    /// W3C `traceparent`, so one trace spans gateway, store, bus and worker.
    pub traceparent: Option<String>,
    /// W3C `tracestate`.
    pub tracestate: Option<String>,
}

impl EventMetadata {
    /// Metadata for a command `command_id` that starts a new flow: the command is its
    /// own correlation and causation.
    #[must_use]
    pub fn new(command_id: Uuid, actor: Actor, occurred_at: DateTime<Utc>) -> Self {
        let id = command_id;
        Self {
            correlation_id: id,
            causation_id: id,
            actor,
            occurred_at,
            traceparent: None,
            tracestate: None,
        }
    }
}
