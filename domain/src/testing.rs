//! Given/when/then for aggregates, in the spirit of cqrs-es's `TestFramework`.
//!
//! ```ignore
//! given::<Inventory>([ItemReceived { .. }])
//!     .when(InventoryCommand::Reserve { .. })
//!     .then_expect_events([StockReserved { .. }]);
//! ```

use std::fmt::Debug;

use crate::aggregate::Aggregate;

/// Starts a scenario from past events.
pub(crate) fn given<A: Aggregate>(events: impl IntoIterator<Item = A::Event>) -> Given<A> {
    let events: Vec<A::Event> = events.into_iter().collect();
    Given(A::from_events(&events))
}

/// Starts a scenario from no history.
pub(crate) fn given_no_history<A: Aggregate>() -> Given<A> {
    Given(A::default())
}

/// A scenario's starting state.
#[derive(Debug)]
pub(crate) struct Given<A>(A);

impl<A: Aggregate> Given<A> {
    /// Handles one command against the state.
    pub(crate) fn when(self, command: A::Command) -> Then<A> {
        let result = self.0.handle(command);
        Then {
            state: self.0,
            result,
        }
    }
}

/// A scenario's outcome.
#[derive(Debug)]
pub(crate) struct Then<A: Aggregate> {
    state: A,
    result: Result<Vec<A::Event>, A::Error>,
}

impl<A: Aggregate> Then<A>
where
    A::Error: Debug,
{
    /// Asserts the command was accepted with exactly these events.
    #[track_caller]
    pub(crate) fn then_expect_events(self, expected: impl IntoIterator<Item = A::Event>) {
        let expected: Vec<A::Event> = expected.into_iter().collect();
        match self.result {
            Ok(events) => assert_eq!(events, expected),
            Err(e) => panic!("expected events {expected:?}, got error {e:?}"),
        }
    }

    /// Asserts the command was refused, and returns the error for matching.
    #[track_caller]
    pub(crate) fn then_expect_error(self) -> A::Error {
        match self.result {
            Ok(events) => panic!("expected an error, got events {events:?}"),
            Err(e) => e,
        }
    }

    /// Returns the events and the state after applying them, for further checks.
    #[track_caller]
    pub(crate) fn then_state(self) -> (Vec<A::Event>, A) {
        match self.result {
            Ok(events) => {
                let mut state = self.state;
                for e in &events {
                    state.apply(e);
                }
                (events, state)
            }
            Err(e) => panic!("expected events, got error {e:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::aggregate::DomainEvent;

    /// A toy aggregate that exercises the harness itself.
    #[derive(Debug, Default, Clone, Serialize, Deserialize)]
    struct Counter(u32);

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum CounterEvent {
        Incremented,
    }

    impl DomainEvent for CounterEvent {
        fn event_type(&self) -> &'static str {
            "Incremented"
        }
        fn event_version(&self) -> &'static str {
            "1.0"
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("counter is full")]
    struct Full;

    impl Aggregate for Counter {
        const TYPE: &'static str = "counter";
        type Command = ();
        type Event = CounterEvent;
        type Error = Full;
        fn handle(&self, (): ()) -> Result<Vec<CounterEvent>, Full> {
            if self.0 >= 2 {
                Err(Full)
            } else {
                Ok(vec![CounterEvent::Incremented])
            }
        }
        fn apply(&mut self, _: &CounterEvent) {
            self.0 += 1;
        }
    }

    #[test]
    fn harness_reports_events_errors_and_state() {
        given_no_history::<Counter>()
            .when(())
            .then_expect_events([CounterEvent::Incremented]);
        let _: Full = given::<Counter>([CounterEvent::Incremented, CounterEvent::Incremented])
            .when(())
            .then_expect_error();
        let (events, state) = given::<Counter>([CounterEvent::Incremented])
            .when(())
            .then_state();
        assert_eq!(events.len(), 1);
        assert_eq!(state.0, 2);
    }
}
