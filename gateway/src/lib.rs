//! Emporium's edge: the only crate that knows HTTP and GraphQL.
//!
//! It owns the axum server (GraphQL at `/graphql`, `/healthz`, `/readyz`,
//! `/metrics`), configuration loading, telemetry setup, and the `emporium` binary that
//! runs the platform's parts. It builds its own GraphQL types from domain and
//! read-model types instead of deriving GraphQL on them.
//!
//! It deliberately does **not** hold business rules (`domain`), write events
//! (`commands`) or build read models (`projections`). Nothing depends on this crate.

pub mod app;
pub mod cli;
pub mod config;
pub mod graphql;
mod health;
pub mod telemetry;
