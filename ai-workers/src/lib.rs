//! Emporium's AI workers.
//!
//! Each worker (fraud, forecasting, recommendations, search, pricing, assistant,
//! vision) consumes events, keeps its own model and state, and answers queries. Heavy
//! dependencies (smartcore, polars, candle, tantivy) stay behind this crate's
//! per-worker features so the rest of the workspace builds fast.
//!
//! It deliberately does **not** change aggregates directly: a worker's conclusion (a
//! fraud score, a price proposal) becomes a command sent through `commands`.
//!
//! No worker has landed yet; [`WORKERS`] lists the names the CLI accepts.

/// The workers this build can run, by the name `emporium worker <name>` takes.
pub const WORKERS: &[&str] = &[];
