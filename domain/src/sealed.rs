//! Secrets an event must carry but no consumer may see.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A value recorded in the event store (the aggregate needs it to be rebuilt: a
/// password hash, a reset-token hash) that never leaves it. The relay publishes
/// sealed fields as `null` (see [`crate::schema::sealed_fields`]); a published copy
/// therefore deserialises to [`Sealed::Redacted`], and `Debug` never prints the value.
#[derive(Clone, PartialEq, Eq)]
pub enum Sealed<T> {
    /// The value, as the event store holds it.
    Value(T),
    /// Removed before the event left the store.
    Redacted,
}

impl<T> Sealed<T> {
    /// The value, unless it was redacted.
    #[must_use]
    pub fn value(&self) -> Option<&T> {
        match self {
            Self::Value(v) => Some(v),
            Self::Redacted => None,
        }
    }
}

impl<T> From<T> for Sealed<T> {
    fn from(value: T) -> Self {
        Self::Value(value)
    }
}

impl<T> fmt::Debug for Sealed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Value(_) => f.write_str("Sealed(..)"),
            Self::Redacted => f.write_str("Redacted"),
        }
    }
}

impl<T: Serialize> Serialize for Sealed<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Value(v) => v.serialize(s),
            Self::Redacted => s.serialize_none(),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sealed<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Option::<T>::deserialize(d)?.map_or(Self::Redacted, Self::Value))
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for Sealed<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("Sealed_{}", T::schema_name()).into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let mut schema = Option::<T>::json_schema(generator);
        schema.insert(
            "description".to_owned(),
            "A secret kept in the event store; published copies carry null.".into(),
        );
        schema
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_round_trips_and_a_redacted_one_is_null() {
        let sealed = Sealed::from("secret".to_owned());
        let json = serde_json::to_value(&sealed).unwrap();
        assert_eq!(json, serde_json::json!("secret"));
        assert_eq!(
            serde_json::from_value::<Sealed<String>>(json).unwrap(),
            sealed
        );
        let redacted: Sealed<String> = serde_json::from_value(serde_json::Value::Null).unwrap();
        assert_eq!(redacted, Sealed::Redacted);
        assert_eq!(redacted.value(), None);
        assert!(!format!("{sealed:?}").contains("secret"));
    }
}
