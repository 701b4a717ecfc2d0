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
