//! Postal addresses and country codes, shared by customers and orders.

use serde::{Deserialize, Serialize};

/// Why an address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// A required field is empty.
    #[error("address field `{0}` must not be empty")]
    MissingField(&'static str),
    /// A field exceeds its length bound.
    #[error("address field `{field}` must be at most {max} characters")]
    TooLong {
        /// The field.
        field: &'static str,
        /// The bound.
        max: usize,
    },
    /// Not an ISO 3166-1 alpha-2 code.
    #[error("country must be a two-letter ISO 3166-1 code, got `{0}`")]
    InvalidCountry(String),
}

/// An ISO 3166-1 alpha-2 country code, upper case (`DE`, `US`).
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct CountryCode(String);

impl CountryCode {
    /// Validates a two-letter code, case-insensitively.
    ///
    /// # Errors
    /// [`AddressError::InvalidCountry`].
    pub fn parse(raw: &str) -> Result<Self, AddressError> {
        let s = raw.trim().to_ascii_uppercase();
        if s.len() == 2 && s.chars().all(|c| c.is_ascii_uppercase()) {
            Ok(Self(s))
        } else {
            Err(AddressError::InvalidCountry(raw.to_owned()))
        }
    }

    /// The code.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CountryCode {
    type Error = AddressError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<CountryCode> for String {
    fn from(c: CountryCode) -> Self {
        c.0
    }
}

/// The fields of an address as a client sends them, before validation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressInput {
    /// Recipient.
    pub full_name: String,
    /// Street and number.
    pub line1: String,
    /// Apartment, suite, ...
    pub line2: Option<String>,
    /// City or town.
    pub city: String,
    /// State, province or region, where the country uses one.
    pub region: Option<String>,
    /// Postal or ZIP code.
    pub postal_code: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// Contact phone.
    pub phone: Option<String>,
}

/// A validated postal address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Address {
    full_name: String,
    line1: String,
    line2: Option<String>,
    city: String,
    region: Option<String>,
    postal_code: String,
    country: CountryCode,
    phone: Option<String>,
}

const MAX_FIELD: usize = 200;

fn required(field: &'static str, value: String) -> Result<String, AddressError> {
    let v = value.trim().to_owned();
    if v.is_empty() {
        return Err(AddressError::MissingField(field));
    }
    bounded(field, v)
}

fn bounded(field: &'static str, v: String) -> Result<String, AddressError> {
    if v.chars().count() > MAX_FIELD {
        return Err(AddressError::TooLong {
            field,
            max: MAX_FIELD,
        });
    }
    Ok(v)
}

fn optional(field: &'static str, value: Option<String>) -> Result<Option<String>, AddressError> {
    value
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .map(|v| bounded(field, v))
        .transpose()
}

impl Address {
    /// Validates an address.
    ///
    /// # Errors
    /// [`AddressError`] naming the first broken rule.
    pub fn parse(input: AddressInput) -> Result<Self, AddressError> {
        Ok(Self {
            full_name: required("full_name", input.full_name)?,
            line1: required("line1", input.line1)?,
            line2: optional("line2", input.line2)?,
            city: required("city", input.city)?,
            region: optional("region", input.region)?,
            postal_code: required("postal_code", input.postal_code)?,
            country: CountryCode::parse(&input.country)?,
            phone: optional("phone", input.phone)?,
        })
    }

    /// Recipient.
    #[must_use]
    pub fn full_name(&self) -> &str {
        &self.full_name
    }
    /// Street and number.
    #[must_use]
    pub fn line1(&self) -> &str {
        &self.line1
    }
    /// Second address line.
    #[must_use]
    pub fn line2(&self) -> Option<&str> {
        self.line2.as_deref()
    }
    /// City.
    #[must_use]
    pub fn city(&self) -> &str {
        &self.city
    }
    /// Region.
    #[must_use]
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }
    /// Postal code.
    #[must_use]
    pub fn postal_code(&self) -> &str {
        &self.postal_code
    }
    /// Country.
    #[must_use]
    pub fn country(&self) -> &CountryCode {
        &self.country
    }
    /// Phone.
    #[must_use]
    pub fn phone(&self) -> Option<&str> {
        self.phone.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> AddressInput {
        AddressInput {
            full_name: "Ada Lovelace".into(),
            line1: "12 St James's Square".into(),
            line2: Some("  ".into()),
            city: "London".into(),
            region: None,
            postal_code: "SW1Y 4JH".into(),
            country: "gb".into(),
            phone: None,
        }
    }

    #[test]
    fn valid_address_is_normalised() {
        let a = Address::parse(input()).unwrap();
        assert_eq!(a.country().as_str(), "GB");
        assert_eq!(a.line2(), None);
    }

    #[test]
    fn invalid_fields_are_named() {
        let mut i = input();
        i.city = " ".into();
        assert_eq!(Address::parse(i), Err(AddressError::MissingField("city")));
        let mut i = input();
        i.country = "GBR".into();
        assert!(matches!(
            Address::parse(i),
            Err(AddressError::InvalidCountry(_))
        ));
    }
}
