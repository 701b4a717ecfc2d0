//! The one adapter between the pure domain and cqrs-es.
//!
//! `domain` cannot implement cqrs-es's traits (they are async and the crate pulls
//! tokio), and Rust's orphan rule forbids implementing them here for domain types, so
//! [`Es`] and [`EsEvent`] wrap any domain aggregate and event. Both are
//! `#[serde(transparent)]`: what is stored is exactly the domain's JSON.

use emporium_domain::schema::Upcaster;
use emporium_domain::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

/// A domain aggregate seen by cqrs-es.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Es<A>(pub A);

/// A domain event seen by cqrs-es.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EsEvent<E>(pub E);

impl<E: DomainEvent> cqrs_es::DomainEvent for EsEvent<E> {
    fn event_type(&self) -> String {
        self.0.event_type().to_owned()
    }
    fn event_version(&self) -> String {
        self.0.event_version().to_owned()
    }
}

impl<A: Aggregate> cqrs_es::Aggregate for Es<A> {
    const TYPE: &'static str = A::TYPE;
    type Command = A::Command;
    type Event = EsEvent<A::Event>;
    type Error = A::Error;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &cqrs_es::event_sink::EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.0.handle(command)? {
            sink.write(EsEvent(event), self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.0.apply(&event.0);
    }
}

/// A domain [`Upcaster`] as cqrs-es's `EventUpcaster`.
#[derive(Debug)]
pub struct DomainUpcaster(pub Upcaster);

impl cqrs_es::persist::EventUpcaster for DomainUpcaster {
    fn can_upcast(&self, event_type: &str, event_version: &str) -> bool {
        event_type == self.0.event_type && event_version == self.0.from_version
    }

    fn upcast(
        &self,
        mut event: cqrs_es::persist::SerializedEvent,
    ) -> cqrs_es::persist::SerializedEvent {
        event.payload = (self.0.upcast)(event.payload);
        self.0.to_version.clone_into(&mut event.event_version);
        event
    }
}

/// A stored payload of `aggregate_type`'s `event_type` at `event_version`, brought to
/// the current version by the domain's upcasters, chained as a load does: for a
/// caller that reads one event itself instead of loading the aggregate.
#[must_use]
pub fn upcast_stored(
    aggregate_type: &str,
    event_type: &str,
    event_version: &str,
    mut payload: serde_json::Value,
) -> serde_json::Value {
    static ALL: std::sync::OnceLock<Vec<Upcaster>> = std::sync::OnceLock::new();
    let all = ALL.get_or_init(emporium_domain::schema::upcasters);
    let mut version = event_version;
    // Bounded: each step moves to another version and the chains are short.
    for _ in 0..16 {
        let Some(step) = all.iter().find(|u| {
            u.aggregate_type == aggregate_type
                && u.event_type == event_type
                && u.from_version == version
        }) else {
            break;
        };
        payload = (step.upcast)(payload);
        version = step.to_version;
    }
    payload
}

/// The upcasters of aggregate type `aggregate_type`, ready for an event store. They
/// chain: a v1 payload goes through 1->2 then 2->3.
#[must_use]
pub fn upcasters_for(aggregate_type: &str) -> Vec<Box<dyn cqrs_es::persist::EventUpcaster>> {
    emporium_domain::schema::upcasters()
        .into_iter()
        .filter(|u| u.aggregate_type == aggregate_type)
        .map(|u| Box::new(DomainUpcaster(u)) as Box<dyn cqrs_es::persist::EventUpcaster>)
        .collect()
}
