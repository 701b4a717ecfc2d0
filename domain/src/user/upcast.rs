//! Upcasters for older user event payloads.

use serde_json::{Map, Value, json};

use super::values::Preferences;

/// `UserRegistered` 1.0 -> 2.0.
///
/// Version 1.0 had one `name` field and no `preferences`. The name is split on its
/// first whitespace into `first_name` and `last_name` (absent for a single name) and
/// the default preferences are filled in. A payload that is not a 1.0
/// `UserRegistered` is returned unchanged, so loading it fails loudly on
/// deserialisation instead of this function inventing data.
pub(super) fn user_registered_v1_to_v2(payload: Value) -> Value {
    let Value::Object(mut outer) = payload else {
        return payload;
    };
    if let Some(Value::Object(fields)) = outer.get_mut("UserRegistered") {
        upcast_fields(fields);
    }
    Value::Object(outer)
}

fn upcast_fields(fields: &mut Map<String, Value>) {
    let Some(Value::String(name)) = fields.get("name") else {
        return;
    };
    let name = name.trim();
    let (first, last) = match name.split_once(char::is_whitespace) {
        Some((first, rest)) => (first.to_owned(), rest.trim().to_owned()),
        None => (name.to_owned(), String::new()),
    };
    fields.remove("name");
    fields.insert("first_name".to_owned(), Value::String(first));
    let last = if last.is_empty() {
        Value::Null
    } else {
        Value::String(last)
    };
    fields.insert("last_name".to_owned(), last);
    fields
        .entry("preferences")
        .or_insert_with(default_preferences);
}

fn default_preferences() -> Value {
    let Preferences {
        newsletter,
        language,
        currency,
    } = Preferences::default();
    json!({
        "newsletter": newsletter,
        "language": language.as_str(),
        "currency": currency.code(),
    })
}
