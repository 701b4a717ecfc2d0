//! Value objects of a product: its name, description, tags, attributes, variant labels
//! and images.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::catalog::TextError;
use crate::catalog::text::bounded_text;

bounded_text! {
    /// A product's display name, e.g. `Red cotton T-shirt`.
    ProductName { field: "product name", max: 200, allow_empty: false, multiline: false }
}

bounded_text! {
    /// A product's long description (plain text or Markdown, rendered elsewhere). May
    /// be empty while the product is a draft.
    Description { field: "description", max: 10_000, allow_empty: true, multiline: true }
}

bounded_text! {
    /// A variant's size or colour as shown to shoppers, e.g. `M` or `Navy blue`.
    VariantLabel { field: "variant label", max: 64, allow_empty: false, multiline: false }
}

bounded_text! {
    /// An image's alternative text, required for accessibility.
    AltText { field: "alt text", max: 250, allow_empty: false, multiline: false }
}

/// Why a tag was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    /// Empty after trimming.
    #[error("tag must not be empty")]
    Empty,
    /// Longer than [`Tag::MAX_LEN`].
    #[error("tag must be at most {max} characters")]
    TooLong {
        /// The bound.
        max: usize,
    },
    /// A character other than a letter, digit, space or `-`.
    #[error("tag may contain only letters, digits, spaces and `-`")]
    InvalidCharacter,
}

/// A free-form label used for filtering and search facets, e.g. `summer sale`.
/// Normalised to lower case with inner runs of spaces collapsed, so `Summer  Sale` and
/// `summer sale` are one tag.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct Tag(String);

impl Tag {
    /// The longest tag accepted, in characters.
    pub const MAX_LEN: usize = 40;

    /// Validates and normalises a tag.
    ///
    /// # Errors
    /// [`TagError`] naming the broken rule.
    pub fn parse(raw: &str) -> Result<Self, TagError> {
        let s = raw
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        if s.is_empty() {
            return Err(TagError::Empty);
        }
        if s.chars().count() > Self::MAX_LEN {
            return Err(TagError::TooLong { max: Self::MAX_LEN });
        }
        if !s
            .chars()
            .all(|c| c.is_alphanumeric() || c == ' ' || c == '-')
        {
            return Err(TagError::InvalidCharacter);
        }
        Ok(Self(s))
    }

    /// The tag text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Tag {
    type Error = TagError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Tag> for String {
    fn from(t: Tag) -> Self {
        t.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a set of attributes was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttributesError {
    /// More entries than [`Attributes::MAX_ENTRIES`].
    #[error("at most {max} attributes are allowed")]
    TooMany {
        /// The bound.
        max: usize,
    },
    /// An attribute name that is empty after trimming.
    #[error("attribute name must not be empty")]
    EmptyKey,
    /// Two entries whose names are equal after trimming.
    #[error("attribute `{0}` is given twice")]
    DuplicateKey(String),
    /// An attribute name or value that is too long, or contains control characters.
    #[error("attribute `{key}`: {source}")]
    InvalidText {
        /// The attribute's name (possibly truncated).
        key: String,
        /// What is wrong with it.
        source: TextError,
    },
}

/// Free-form specifications such as `material -> cotton`: a bounded string-to-string
/// map with trimmed names and values, ordered by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(
    try_from = "BTreeMap<String, String>",
    into = "BTreeMap<String, String>"
)]
pub struct Attributes(BTreeMap<String, String>);

impl Attributes {
    /// The most entries a product or variant may carry.
    pub const MAX_ENTRIES: usize = 50;
    /// The longest attribute name, in characters.
    pub const MAX_KEY_LEN: usize = 64;
    /// The longest attribute value, in characters.
    pub const MAX_VALUE_LEN: usize = 500;

    /// No attributes.
    #[must_use]
    pub fn empty() -> Self {
        Self::default()
    }

    /// Validates `(name, value)` pairs.
    ///
    /// # Errors
    /// [`AttributesError`] naming the broken rule.
    pub fn parse<K, V>(entries: impl IntoIterator<Item = (K, V)>) -> Result<Self, AttributesError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut map = BTreeMap::new();
        for (k, v) in entries {
            let raw_key = k.as_ref();
            let short_key: String = raw_key.trim().chars().take(Self::MAX_KEY_LEN).collect();
            let invalid = |source| AttributesError::InvalidText {
                key: short_key.clone(),
                source,
            };
            let key = crate::catalog::text::check(
                raw_key,
                "attribute name",
                Self::MAX_KEY_LEN,
                false,
                false,
            )
            .map_err(|e| match e {
                TextError::Empty { .. } => AttributesError::EmptyKey,
                other => invalid(other),
            })?;
            let value = crate::catalog::text::check(
                v.as_ref(),
                "attribute value",
                Self::MAX_VALUE_LEN,
                true,
                false,
            )
            .map_err(invalid)?;
            if map.contains_key(&key) {
                return Err(AttributesError::DuplicateKey(key));
            }
            map.insert(key, value);
            if map.len() > Self::MAX_ENTRIES {
                return Err(AttributesError::TooMany {
                    max: Self::MAX_ENTRIES,
                });
            }
        }
        Ok(Self(map))
    }

    /// The value of attribute `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The entries, ordered by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// How many entries there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl TryFrom<BTreeMap<String, String>> for Attributes {
    type Error = AttributesError;
    fn try_from(map: BTreeMap<String, String>) -> Result<Self, Self::Error> {
        Self::parse(map)
    }
}

impl From<Attributes> for BTreeMap<String, String> {
    fn from(a: Attributes) -> Self {
        a.0
    }
}

/// Why an image source was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageSourceError {
    /// Empty after trimming.
    #[error("image key or url must not be empty")]
    Empty,
    /// Longer than [`ImageSource::MAX_LEN`].
    #[error("image key or url must be at most {max} characters")]
    TooLong {
        /// The bound.
        max: usize,
    },
    /// Whitespace or a control character inside.
    #[error("image key or url must not contain whitespace or control characters")]
    InvalidCharacter,
    /// A URL that is not `http://` or `https://`.
    #[error("image url must start with `https://` or `http://`")]
    NotHttpUrl,
}

/// Where an image lives: a key in the platform's object store (uploaded images) or an
/// external `http(s)` URL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImageSource {
    /// An object-store key, e.g. `products/6f1c/front.jpg`.
    Key(ImageRef),
    /// An external URL.
    Url(ImageRef),
}

/// The text of an [`ImageSource`]: non-empty, bounded, without whitespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct ImageRef(String);

impl ImageRef {
    fn parse(raw: &str) -> Result<Self, ImageSourceError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(ImageSourceError::Empty);
        }
        if s.chars().count() > ImageSource::MAX_LEN {
            return Err(ImageSourceError::TooLong {
                max: ImageSource::MAX_LEN,
            });
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ImageSourceError::InvalidCharacter);
        }
        Ok(Self(s.to_owned()))
    }

    /// The key or URL text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ImageRef {
    type Error = ImageSourceError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<ImageRef> for String {
    fn from(r: ImageRef) -> Self {
        r.0
    }
}

impl ImageSource {
    /// The longest key or URL accepted.
    pub const MAX_LEN: usize = 2_048;

    /// An object-store key.
    ///
    /// # Errors
    /// [`ImageSourceError`] naming the broken rule.
    pub fn key(raw: &str) -> Result<Self, ImageSourceError> {
        ImageRef::parse(raw).map(Self::Key)
    }

    /// An external `http(s)` URL.
    ///
    /// # Errors
    /// [`ImageSourceError`] naming the broken rule.
    pub fn url(raw: &str) -> Result<Self, ImageSourceError> {
        let r = ImageRef::parse(raw)?;
        let lower = r.0.to_ascii_lowercase();
        if !(lower.starts_with("https://") || lower.starts_with("http://")) {
            return Err(ImageSourceError::NotHttpUrl);
        }
        Ok(Self::Url(r))
    }

    /// The key or URL text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Key(r) | Self::Url(r) => r.as_str(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_values_use_their_bounds() {
        assert_eq!(ProductName::parse(" Shirt ").unwrap().as_str(), "Shirt");
        assert!(matches!(
            ProductName::parse(""),
            Err(TextError::Empty { .. })
        ));
        assert!(ProductName::parse(&"x".repeat(200)).is_ok());
        assert!(matches!(
            ProductName::parse(&"x".repeat(201)),
            Err(TextError::TooLong { max: 200, .. })
        ));
        assert_eq!(Description::parse("").unwrap().as_str(), "");
        assert!(Description::parse("line one\nline two").is_ok());
        assert!(VariantLabel::parse("XL").is_ok());
        assert!(AltText::parse(" ").is_err());
        // Serde validates too.
        assert!(serde_json::from_str::<ProductName>("\"\"").is_err());
    }

    #[test]
    fn tags_are_normalised_and_validated() {
        assert_eq!(
            Tag::parse("  Summer   SALE ").unwrap().as_str(),
            "summer sale"
        );
        assert_eq!(Tag::parse("Über-Cool").unwrap().as_str(), "über-cool");
        assert_eq!(Tag::parse("  "), Err(TagError::Empty));
        assert_eq!(
            Tag::parse(&"t".repeat(41)),
            Err(TagError::TooLong { max: 40 })
        );
        assert_eq!(Tag::parse("50%"), Err(TagError::InvalidCharacter));
    }

    #[test]
    fn attributes_are_bounded_and_trimmed() {
        let a = Attributes::parse([(" material ", " cotton "), ("fit", "")]).unwrap();
        assert_eq!(a.get("material"), Some("cotton"));
        assert_eq!(a.get("fit"), Some(""));
        assert_eq!(a.len(), 2);
        assert_eq!(
            Attributes::parse([(" ", "x")]),
            Err(AttributesError::EmptyKey)
        );
        assert_eq!(
            Attributes::parse([("a", "1"), (" a", "2")]),
            Err(AttributesError::DuplicateKey("a".into()))
        );
        let too_many = (0..=Attributes::MAX_ENTRIES).map(|i| (format!("k{i}"), "v".to_owned()));
        assert_eq!(
            Attributes::parse(too_many),
            Err(AttributesError::TooMany { max: 50 })
        );
        assert!(matches!(
            Attributes::parse([("k".repeat(65), "v".to_owned())]),
            Err(AttributesError::InvalidText {
                source: TextError::TooLong { max: 64, .. },
                ..
            })
        ));
        assert!(matches!(
            Attributes::parse([("k", "v".repeat(501))]),
            Err(AttributesError::InvalidText {
                source: TextError::TooLong { max: 500, .. },
                ..
            })
        ));
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, r#"{"fit":"","material":"cotton"}"#);
        assert!(serde_json::from_str::<Attributes>(r#"{" ":"x"}"#).is_err());
    }

    #[test]
    fn image_sources_are_keys_or_http_urls() {
        let key = ImageSource::key("products/1/front.jpg").unwrap();
        assert_eq!(key.as_str(), "products/1/front.jpg");
        assert_eq!(
            serde_json::to_string(&key).unwrap(),
            r#"{"key":"products/1/front.jpg"}"#
        );
        assert!(ImageSource::url("https://cdn.example.com/a.png").is_ok());
        assert_eq!(
            ImageSource::url("ftp://example.com/a.png"),
            Err(ImageSourceError::NotHttpUrl)
        );
        assert_eq!(ImageSource::key(" "), Err(ImageSourceError::Empty));
        assert_eq!(
            ImageSource::key("a b"),
            Err(ImageSourceError::InvalidCharacter)
        );
        assert_eq!(
            ImageSource::key(&"k".repeat(2_049)),
            Err(ImageSourceError::TooLong { max: 2_048 })
        );
    }
}
