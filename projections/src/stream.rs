//! The events stream's definition, in code. `infra/nats/events-stream.json` mirrors it
//! for the default prefix and a test keeps the two in step.

use std::time::Duration;

use async_nats::jetstream::stream::{Config, DiscardPolicy, RetentionPolicy, StorageType};

use crate::bus::StreamLayout;

/// What may be tuned about the events stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSettings {
    /// How long messages are kept; zero keeps them forever (the default: the stream
    /// is the platform's feed and the relay's checkpoint, and PostgreSQL can always
    /// rebuild it).
    pub max_age: Duration,
    /// How long JetStream remembers a `Nats-Msg-Id`. It must outlast the longest time
    /// a publish can be in doubt: an ack timeout plus a relay restart or a standby's
    /// takeover. Two minutes (JetStream's default) by default.
    pub duplicate_window: Duration,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            max_age: Duration::ZERO,
            duplicate_window: Duration::from_secs(120),
        }
    }
}

/// The events stream: `<PREFIX>_EVENTS` over `<prefix>.events.>`, file storage, limits
/// retention, one replica (a single server here; raise it on a cluster).
#[must_use]
pub fn events_stream_config(layout: &StreamLayout, settings: &StreamSettings) -> Config {
    Config {
        name: layout.stream_name(),
        description: Some(
            "Every committed Emporium event in commit order, published by the relay".to_owned(),
        ),
        subjects: vec![layout.all_subjects()],
        storage: StorageType::File,
        retention: RetentionPolicy::Limits,
        discard: DiscardPolicy::Old,
        max_age: settings.max_age,
        duplicate_window: settings.duplicate_window,
        num_replicas: 1,
        allow_direct: true,
        ..Config::default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    /// `infra/nats/events-stream.json` is what operators apply with the `nats` CLI;
    /// it must say what the code creates.
    #[test]
    fn infra_definition_mirrors_the_code() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../infra/nats/events-stream.json"
        );
        let infra: Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("infra file")).unwrap();
        let layout = StreamLayout::new("emporium").unwrap();
        let code = serde_json::to_value(events_stream_config(&layout, &StreamSettings::default()))
            .unwrap();
        for key in [
            "name",
            "subjects",
            "storage",
            "retention",
            "discard",
            "max_age",
            "duplicate_window",
            "num_replicas",
            "allow_direct",
        ] {
            assert_eq!(infra.get(key), code.get(key), "field `{key}` differs");
        }
    }
}
