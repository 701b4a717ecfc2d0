//! Event contracts: JSON Schemas of every aggregate's events, and the upcasters that
//! turn older payload versions into the current one.
//!
//! The schemas are written to `schemas/events/<aggregate>.json`; a test fails when
//! the code and the committed files drift (`UPDATE_SCHEMAS=1 cargo test -p
//! emporium-domain --test schemas` rewrites them).

use serde_json::Value;

/// Turns a stored payload of an older version into the next version's shape.
#[derive(Debug, Clone, Copy)]
pub struct Upcaster {
    /// Aggregate type the event belongs to.
    pub aggregate_type: &'static str,
    /// Event type it applies to.
    pub event_type: &'static str,
    /// The version it reads.
    pub from_version: &'static str,
    /// The version it produces.
    pub to_version: &'static str,
    /// The transformation of the event payload (the event enum's externally tagged
    /// JSON, e.g. `{"UserRegistered": {...}}`).
    pub upcast: fn(Value) -> Value,
}

/// `(aggregate type, JSON Schema of its event enum)` for every aggregate.
#[must_use]
pub fn event_schemas() -> Vec<(&'static str, schemars::Schema)> {
    let mut all = Vec::new();
    all.extend(crate::user::event_schemas());
    all.extend(crate::cart::event_schemas());
    all.extend(crate::catalog::event_schemas());
    all.extend(crate::inventory::event_schemas());
    all.extend(crate::order::event_schemas());
    all.extend(crate::payment::event_schemas());
    all.extend(crate::coupon::event_schemas());
    all
}

/// Every upcaster the event store must install.
#[must_use]
pub fn upcasters() -> Vec<Upcaster> {
    let mut all = Vec::new();
    all.extend(crate::user::upcasters());
    all.extend(crate::cart::upcasters());
    all.extend(crate::catalog::upcasters());
    all.extend(crate::inventory::upcasters());
    all.extend(crate::order::upcasters());
    all.extend(crate::payment::upcasters());
    all.extend(crate::coupon::upcasters());
    all
}
