//! Emporium's edge: the only crate that knows HTTP and GraphQL.
//!
//! It owns the axum server (GraphQL at `/graphql`, `/healthz`, `/readyz`,
//! `/metrics`), authentication and authorization (tokens, sessions, passwords,
//! guards), the abuse limits (query shape, body size, rate limits), configuration
//! loading, telemetry setup, and the `emporium` binary that runs the platform's
//! parts. It builds its own GraphQL types from domain and read-model types instead of
//! deriving GraphQL on them.
//!
//! It deliberately does **not** hold business rules (`domain`), write events
//! (`commands`) or build read models (`projections`). Nothing depends on this crate.

pub mod app;
pub mod auth;
mod backbone;
pub mod cli;
pub mod clock;
pub mod config;
mod cors;
pub mod db;
pub mod error;
pub mod graphql;
mod health;
mod http;
pub mod limits;
pub mod mailer;
pub mod notify;
pub mod payments;
pub mod ratelimit;
pub mod seed;
pub mod shop;
mod staff;
pub mod telemetry;
pub mod tracecontext;
mod ws;
