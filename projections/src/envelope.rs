//! What the relay puts on the stream: a JSON [`EventEnvelope`] body and headers that let
//! a consumer route, deduplicate and trace an event without decoding the body.

use async_nats::HeaderMap;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Header names the relay sets on every message.
pub mod headers {
    /// JetStream's deduplication id: `<aggregate_type>:<aggregate_id>:<sequence>`.
    pub const MESSAGE_ID: &str = "Nats-Msg-Id";
    /// The event's global position (insert order, not commit order).
    pub const POSITION: &str = "Emporium-Position";
    /// The inserting transaction (`xid8`); with the position it is the commit order.
    pub const TRANSACTION_ID: &str = "Emporium-Transaction-Id";
    /// The event's own id.
    pub const EVENT_ID: &str = "Emporium-Event-Id";
    /// The event type, e.g. `OrderPlaced`.
    pub const EVENT_TYPE: &str = "Emporium-Event-Type";
    /// The event's schema version.
    pub const EVENT_VERSION: &str = "Emporium-Event-Version";
    /// The aggregate type, e.g. `order`.
    pub const AGGREGATE_TYPE: &str = "Emporium-Aggregate-Type";
    /// The aggregate's id.
    pub const AGGREGATE_ID: &str = "Emporium-Aggregate-Id";
    /// The event's sequence within its aggregate.
    pub const SEQUENCE: &str = "Emporium-Sequence";
    /// W3C trace context, copied from the event metadata when present.
    pub const TRACEPARENT: &str = "traceparent";
    /// W3C trace state, copied from the event metadata when present.
    pub const TRACESTATE: &str = "tracestate";
}

/// A place in commit order: events are published sorted by the inserting transaction's
/// id, then by position within it. Every event published before the relay reached a
/// given place sorts before it, which is why the relay can resume after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct CommitPosition {
    /// The inserting transaction's `xid8`.
    pub transaction_id: u64,
    /// The event's global position.
    pub position: u64,
}

impl CommitPosition {
    /// Before the first event.
    pub const START: Self = Self {
        transaction_id: 0,
        position: 0,
    };

    /// Reads the place carried in a relayed message's headers.
    ///
    /// # Errors
    /// When a header is missing or not a number.
    pub fn from_headers(headers: &HeaderMap) -> anyhow::Result<Self> {
        let number = |name: &str| -> anyhow::Result<u64> {
            let value = headers
                .get(name)
                .ok_or_else(|| anyhow::anyhow!("message lacks the {name} header"))?;
            value
                .as_str()
                .parse()
                .map_err(|e| anyhow::anyhow!("header {name} `{value}` is not a number: {e}"))
        };
        Ok(Self {
            transaction_id: number(headers::TRANSACTION_ID)?,
            position: number(headers::POSITION)?,
        })
    }
}

/// The body of every relayed message (JSON). Projectors and outside subscribers decode
/// it with `serde_json::from_slice::<EventEnvelope>(&message.payload)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    /// The event's own id.
    pub event_id: Uuid,
    /// The aggregate type, e.g. `order`.
    pub aggregate_type: String,
    /// The aggregate's id.
    pub aggregate_id: String,
    /// The event's sequence within its aggregate.
    pub sequence: u64,
    /// The event's global position (insert order).
    pub position: u64,
    /// The inserting transaction's `xid8`.
    pub transaction_id: u64,
    /// The event type, e.g. `OrderPlaced`.
    pub event_type: String,
    /// The event's schema version.
    pub event_version: String,
    /// The event itself, as stored.
    pub payload: serde_json::Value,
    /// Correlation, causation, actor, time and trace context, as stored.
    pub metadata: serde_json::Value,
    /// When the event store recorded the event.
    pub recorded_at: DateTime<Utc>,
}

impl EventEnvelope {
    /// Where this event sits in commit order.
    #[must_use]
    pub fn commit_position(&self) -> CommitPosition {
        CommitPosition {
            transaction_id: self.transaction_id,
            position: self.position,
        }
    }

    /// The JetStream deduplication id: `<aggregate_type>:<aggregate_id>:<sequence>`,
    /// unique per event because the event store's primary key is that triple.
    #[must_use]
    pub fn message_id(&self) -> String {
        format!(
            "{}:{}:{}",
            self.aggregate_type, self.aggregate_id, self.sequence
        )
    }

    /// The headers the relay sends with this event.
    #[must_use]
    pub fn to_headers(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(headers::MESSAGE_ID, self.message_id());
        map.insert(headers::POSITION, self.position.to_string());
        map.insert(headers::TRANSACTION_ID, self.transaction_id.to_string());
        map.insert(headers::EVENT_ID, self.event_id.to_string());
        map.insert(headers::EVENT_TYPE, self.event_type.as_str());
        map.insert(headers::EVENT_VERSION, self.event_version.as_str());
        map.insert(headers::AGGREGATE_TYPE, self.aggregate_type.as_str());
        map.insert(headers::AGGREGATE_ID, self.aggregate_id.as_str());
        map.insert(headers::SEQUENCE, self.sequence.to_string());
        for (key, name) in [
            ("traceparent", headers::TRACEPARENT),
            ("tracestate", headers::TRACESTATE),
        ] {
            if let Some(value) = self.metadata.get(key).and_then(|v| v.as_str()) {
                map.insert(name, value);
            }
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn envelope() -> EventEnvelope {
        EventEnvelope {
            event_id: Uuid::nil(),
            aggregate_type: "order".to_owned(),
            aggregate_id: "o-1".to_owned(),
            sequence: 3,
            position: 42,
            transaction_id: 1000,
            event_type: "OrderPlaced".to_owned(),
            event_version: "1".to_owned(),
            payload: json!({"total": 1}),
            metadata: json!({"traceparent": "00-abc-def-01"}),
            recorded_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    #[test]
    fn headers_carry_the_commit_position_and_dedupe_id() {
        let e = envelope();
        let h = e.to_headers();
        assert_eq!(h.get(headers::MESSAGE_ID).unwrap().as_str(), "order:o-1:3");
        assert_eq!(
            h.get(headers::TRACEPARENT).unwrap().as_str(),
            "00-abc-def-01"
        );
        assert!(h.get(headers::TRACESTATE).is_none());
        assert_eq!(
            CommitPosition::from_headers(&h).unwrap(),
            CommitPosition {
                transaction_id: 1000,
                position: 42
            }
        );
    }

    #[test]
    fn commit_order_sorts_by_transaction_first() {
        let a = CommitPosition {
            transaction_id: 5,
            position: 9,
        };
        let b = CommitPosition {
            transaction_id: 6,
            position: 1,
        };
        assert!(a < b);
        assert!(CommitPosition::START < a);
    }

    #[test]
    fn envelope_round_trips_through_json() {
        let e = envelope();
        let back: EventEnvelope = serde_json::from_slice(&serde_json::to_vec(&e).unwrap()).unwrap();
        assert_eq!(back, e);
    }
}

/// A row of the `events` table as the relay and rebuilds read it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct StoredEvent {
    pub(crate) aggregate_type: String,
    pub(crate) aggregate_id: String,
    pub(crate) sequence: i64,
    pub(crate) event_type: String,
    pub(crate) event_version: String,
    pub(crate) payload: Option<serde_json::Value>,
    pub(crate) metadata: Option<serde_json::Value>,
    pub(crate) position: i64,
    pub(crate) transaction_id: i64,
    pub(crate) event_id: Uuid,
    pub(crate) recorded_at: DateTime<Utc>,
}

impl StoredEvent {
    /// The envelope that leaves the event store: sealed fields (password and token
    /// hashes) are published as null, so neither the stream nor a read model ever
    /// holds them.
    pub(crate) fn into_envelope(self) -> anyhow::Result<EventEnvelope> {
        use anyhow::Context;
        let mut payload = self.payload.unwrap_or_default();
        emporium_domain::schema::redact(&self.aggregate_type, &mut payload);
        Ok(EventEnvelope {
            event_id: self.event_id,
            sequence: u64::try_from(self.sequence).context("negative sequence")?,
            position: u64::try_from(self.position).context("negative position")?,
            transaction_id: u64::try_from(self.transaction_id).context("xid8 beyond i64")?,
            aggregate_type: self.aggregate_type,
            aggregate_id: self.aggregate_id,
            event_type: self.event_type,
            event_version: self.event_version,
            payload,
            metadata: self.metadata.unwrap_or_default(),
            recorded_at: self.recorded_at,
        })
    }
}
