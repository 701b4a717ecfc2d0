//! Connecting to NATS and naming the stream.

use std::time::Duration;

use anyhow::Context;

/// Names derived from the configured prefix, so every test (and every tenant of a
/// shared NATS) gets its own stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamLayout {
    prefix: String,
}

impl StreamLayout {
    /// A layout for `prefix`, which must be a single NATS subject token.
    ///
    /// # Errors
    /// When the prefix is empty or contains `.`, `*`, `>` or whitespace.
    pub fn new(prefix: &str) -> anyhow::Result<Self> {
        let valid = !prefix.is_empty()
            && prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        anyhow::ensure!(
            valid,
            "stream prefix `{prefix}` must be non-empty and use only letters, digits, `_` and `-`"
        );
        Ok(Self {
            prefix: prefix.to_owned(),
        })
    }

    /// The JetStream stream holding every event.
    #[must_use]
    pub fn stream_name(&self) -> String {
        format!(
            "{}_EVENTS",
            self.prefix.to_ascii_uppercase().replace('-', "_")
        )
    }

    /// The subject of one event: `<prefix>.events.<aggregate_type>.<event_type>`.
    #[must_use]
    pub fn subject(&self, aggregate_type: &str, event_type: &str) -> String {
        format!("{}.events.{aggregate_type}.{event_type}", self.prefix)
    }

    /// Every event subject of this layout.
    #[must_use]
    pub fn all_subjects(&self) -> String {
        format!("{}.events.>", self.prefix)
    }
}

/// Connects to NATS without failing when the server is down: the client keeps
/// retrying in the background and readiness reports the state. Waits up to
/// `initial_wait` for the first connection so a healthy start is ready at once.
///
/// # Errors
/// When the URL is malformed.
pub async fn connect(url: &str, initial_wait: Duration) -> anyhow::Result<async_nats::Client> {
    let (connected_tx, mut connected_rx) = tokio::sync::watch::channel(false);
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(2))
        .name("emporium")
        .event_callback(move |event| {
            let connected_tx = connected_tx.clone();
            async move {
                match event {
                    async_nats::Event::Connected => {
                        connected_tx.send_replace(true);
                    }
                    async_nats::Event::Disconnected => {
                        connected_tx.send_replace(false);
                        tracing::warn!("nats disconnected");
                    }
                    other => tracing::info!(event = %other, "nats event"),
                }
            }
        })
        .connect(url)
        .await
        .with_context(|| format!("connect to nats at {url}"))?;
    if tokio::time::timeout(initial_wait, connected_rx.wait_for(|c| *c))
        .await
        .is_err()
    {
        tracing::warn!(url, "nats not reachable yet; retrying in the background");
    }
    Ok(client)
}

/// Whether the client currently holds a live connection.
#[must_use]
pub fn is_connected(client: &async_nats::Client) -> bool {
    client.connection_state() == async_nats::connection::State::Connected
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_names_follow_the_prefix() {
        let l = StreamLayout::new("shop-1").unwrap();
        assert_eq!(l.stream_name(), "SHOP_1_EVENTS");
        assert_eq!(
            l.subject("order", "OrderPlaced"),
            "shop-1.events.order.OrderPlaced"
        );
        assert_eq!(l.all_subjects(), "shop-1.events.>");
        assert!(StreamLayout::new("a.b").is_err());
        assert!(StreamLayout::new("").is_err());
    }
}
