//! URL slugs, shared by products and categories.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a slug was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlugError {
    /// Empty after trimming.
    #[error("slug must not be empty")]
    Empty,
    /// Longer than [`Slug::MAX_LEN`].
    #[error("slug must be at most {max} characters")]
    TooLong {
        /// The bound.
        max: usize,
    },
    /// A character outside `a-z 0-9 -`.
    #[error("slug may contain only lowercase letters, digits and `-`")]
    InvalidCharacter,
    /// A `-` at the start or end, or two in a row.
    #[error("slug must not start or end with `-` or contain `--`")]
    MisplacedHyphen,
}

/// The URL-safe name of a product or category, e.g. `red-cotton-t-shirt`.
///
/// Lowercase ASCII letters, digits and single inner hyphens; ASCII upper case is
/// lowered on parse. The domain validates the shape only: uniqueness across products
/// is the command layer's job (see [`Product`](crate::catalog::Product)).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Slug(String);

// Written by hand so the published event schemas carry the shape.
impl schemars::JsonSchema for Slug {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Slug".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "URL slug: lowercase ASCII letters, digits and single inner hyphens.",
            "type": "string",
            "maxLength": Self::MAX_LEN,
            "pattern": "^[a-z0-9]+(-[a-z0-9]+)*$",
        })
    }
}

impl Slug {
    /// The longest slug accepted.
    pub const MAX_LEN: usize = 100;

    /// Validates and normalises a slug.
    ///
    /// # Errors
    /// [`SlugError`] naming the broken rule.
    pub fn parse(raw: &str) -> Result<Self, SlugError> {
        let s = raw.trim().to_ascii_lowercase();
        if s.is_empty() {
            return Err(SlugError::Empty);
        }
        if s.chars().count() > Self::MAX_LEN {
            return Err(SlugError::TooLong { max: Self::MAX_LEN });
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(SlugError::InvalidCharacter);
        }
        if s.starts_with('-') || s.ends_with('-') || s.contains("--") {
            return Err(SlugError::MisplacedHyphen);
        }
        Ok(Self(s))
    }

    /// The slug text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Slug {
    type Error = SlugError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Slug> for String {
    fn from(s: Slug) -> Self {
        s.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_normalised_and_validated() {
        assert_eq!(
            Slug::parse(" Red-Shirt-2 ").unwrap().as_str(),
            "red-shirt-2"
        );
        assert_eq!(Slug::parse(" "), Err(SlugError::Empty));
        assert_eq!(
            Slug::parse(&"a".repeat(101)),
            Err(SlugError::TooLong { max: 100 })
        );
        assert!(Slug::parse(&"a".repeat(100)).is_ok());
        assert_eq!(Slug::parse("red shirt"), Err(SlugError::InvalidCharacter));
        assert_eq!(Slug::parse("rot-hemd-ä"), Err(SlugError::InvalidCharacter));
        assert_eq!(Slug::parse("red_shirt"), Err(SlugError::InvalidCharacter));
        assert_eq!(Slug::parse("-red"), Err(SlugError::MisplacedHyphen));
        assert_eq!(Slug::parse("red-"), Err(SlugError::MisplacedHyphen));
        assert_eq!(Slug::parse("red--shirt"), Err(SlugError::MisplacedHyphen));
    }

    #[test]
    fn deserialising_validates() {
        assert!(serde_json::from_str::<Slug>("\"ok-slug\"").is_ok());
        assert!(serde_json::from_str::<Slug>("\"Not OK\"").is_err());
    }
}
