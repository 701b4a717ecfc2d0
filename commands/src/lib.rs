//! Emporium's application layer.
//!
//! This crate owns command dispatch: it loads an aggregate from the event store, asks
//! the pure `domain` aggregate to decide, and commits the resulting events with
//! optimistic concurrency (cqrs-es over postgres-es, or sqlite-es with the `sqlite`
//! feature: see [`store`]). It also owns the event store's
//! schema (migrations), uniqueness reservations the domain cannot enforce alone
//! (e-mail addresses, slugs), and bounded retries for commands that are safe to retry.
//! [`sql`] is the relational store port (PostgreSQL or SQLite behind one statement
//! text) that the read models in `projections` and the tables owned beside the event
//! store share.
//!
//! It deliberately does **not** build read models, publish to NATS (that is the relay,
//! in `projections`) or know about HTTP and GraphQL (that is `gateway`).

pub mod catalog;
pub mod checkout;
pub mod db;
pub mod dispatch;
pub mod es;
pub mod log;
pub mod payments;
pub mod reservations;
pub mod sql;
pub mod store;
pub mod users;

pub use dispatch::{CommandError, Committed, Dispatcher, Loading, RetryPolicy};
pub use store::{AnyStore, EventStore, PgStore};
