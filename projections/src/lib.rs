//! Emporium's event backbone.
//!
//! This crate owns the JetStream side of the platform: the stream layout (names and
//! subjects derived from a configurable prefix), the relay that publishes committed
//! events in commit order, and the projections that consume the stream to build read
//! models, search indexes and analytics, each writing its checkpoint in the same
//! transaction as its read-model change.
//!
//! It deliberately does **not** decide business rules (that is `domain`) or accept
//! commands (that is `commands`); it only reads the event store and the stream.

pub mod bus;
pub mod envelope;
pub mod relay;
pub mod stream;
