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
    all.extend(crate::inbox::event_schemas());
    all.extend(crate::activity::event_schemas());
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
    all.extend(crate::inbox::upcasters());
    all.extend(crate::activity::upcasters());
    all
}

/// A field that is [`crate::Sealed`]: recorded in the event store, published as null.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedField {
    /// Aggregate type.
    pub aggregate_type: &'static str,
    /// Event type (the enum variant).
    pub event_type: String,
    /// Field name inside the variant.
    pub field: String,
}

/// Every sealed field of every event, found in the events' JSON Schemas (a field
/// whose schema refers to a `Sealed_*` definition), so a new `Sealed` field is
/// covered without a list to maintain.
#[must_use]
pub fn sealed_fields() -> &'static [SealedField] {
    static FIELDS: std::sync::OnceLock<Vec<SealedField>> = std::sync::OnceLock::new();
    FIELDS.get_or_init(|| {
        let mut found = Vec::new();
        for (aggregate_type, schema) in event_schemas() {
            let json = schema.as_value();
            let variants = json
                .get("oneOf")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for variant in variants {
                let Some(props) = variant.get("properties").and_then(Value::as_object) else {
                    continue;
                };
                for (event_type, body) in props {
                    let Some(fields) = body.get("properties").and_then(Value::as_object) else {
                        continue;
                    };
                    for (field, field_schema) in fields {
                        let sealed = field_schema
                            .get("$ref")
                            .and_then(Value::as_str)
                            .is_some_and(|r| r.starts_with("#/$defs/Sealed_"));
                        if sealed {
                            found.push(SealedField {
                                aggregate_type,
                                event_type: event_type.clone(),
                                field: field.clone(),
                            });
                        }
                    }
                }
            }
        }
        found
    })
}

/// Replaces every sealed field of an event payload (externally tagged JSON) with
/// null: what leaves the event store.
pub fn redact(aggregate_type: &str, payload: &mut Value) {
    let Some(object) = payload.as_object_mut() else {
        return;
    };
    for sealed in sealed_fields() {
        if sealed.aggregate_type != aggregate_type {
            continue;
        }
        if let Some(body) = object
            .get_mut(&sealed.event_type)
            .and_then(Value::as_object_mut)
            && let Some(value) = body.get_mut(&sealed.field)
        {
            *value = Value::Null;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_fields_are_found_in_the_schemas() {
        let names: Vec<(&str, &str, &str)> = sealed_fields()
            .iter()
            .map(|s| (s.aggregate_type, s.event_type.as_str(), s.field.as_str()))
            .collect();
        for expected in [
            ("user", "UserRegistered", "password_hash"),
            ("user", "PasswordChanged", "password_hash"),
            ("user", "PasswordResetRequested", "token_hash"),
            ("user", "PasswordResetConfirmed", "password_hash"),
        ] {
            assert!(
                names.contains(&expected),
                "{expected:?} missing from {names:?}"
            );
        }
    }

    #[test]
    fn redaction_nulls_sealed_fields_and_keeps_the_rest_decodable() {
        let mut payload = serde_json::json!({ "PasswordChanged": {
            "password_hash": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
            "changed_at": "2026-01-01T00:00:00Z",
        }});
        redact("user", &mut payload);
        assert_eq!(payload["PasswordChanged"]["password_hash"], Value::Null);
        let event: crate::user::UserEvent = serde_json::from_value(payload).unwrap();
        assert!(matches!(
            event,
            crate::user::UserEvent::PasswordChanged {
                password_hash: crate::Sealed::Redacted,
                ..
            }
        ));
    }
}
