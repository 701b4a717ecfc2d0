//! The catalog aggregate(s). (Being written.)

use crate::schema::Upcaster;

pub(crate) fn event_schemas() -> Vec<(&'static str, schemars::Schema)> {
    Vec::new()
}

pub(crate) fn upcasters() -> Vec<Upcaster> {
    Vec::new()
}
