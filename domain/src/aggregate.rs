//! The two traits every aggregate and its events implement.
//!
//! They mirror cqrs-es's `Aggregate` and `DomainEvent`, minus everything async and
//! service-related, so the business rules stay pure and synchronous. The `commands`
//! crate adapts them to cqrs-es with one generic wrapper.

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// An event emitted by an aggregate: past tense, versioned, serialisable.
pub trait DomainEvent:
    Serialize + DeserializeOwned + Clone + PartialEq + Debug + Send + Sync + 'static
{
    /// Stable name of the event, e.g. `"OrderPlaced"`. Never changes once published.
    fn event_type(&self) -> &'static str;
    /// Version of the payload shape, e.g. `"1.0"`. Bumped when the shape changes; older
    /// versions are upcast on read.
    fn event_version(&self) -> &'static str;
}

/// A consistency boundary: it decides which events a command produces and folds events
/// into its state.
pub trait Aggregate:
    Default + Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static
{
    /// Stable aggregate type name, used as the stream's aggregate type, e.g. `"order"`.
    const TYPE: &'static str;
    /// What the aggregate can be asked to do.
    type Command: Debug + Send + Sync;
    /// What the aggregate records.
    type Event: DomainEvent;
    /// Why a command was refused.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Decides what happens. Pure: returns the events to record or a typed refusal, and
    /// never mutates `self`.
    ///
    /// # Errors
    /// A typed error naming the broken rule; nothing is recorded for it.
    fn handle(&self, command: Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

    /// Evolves the state by one event. Never fails: an event is a fact.
    fn apply(&mut self, event: &Self::Event);

    /// Folds a sequence of events into a fresh aggregate.
    fn from_events<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self {
        let mut aggregate = Self::default();
        for event in events {
            aggregate.apply(event);
        }
        aggregate
    }
}
