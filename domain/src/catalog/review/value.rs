//! Value objects of a review.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::catalog::text::bounded_text;

bounded_text! {
    /// A review's headline.
    ReviewTitle { field: "review title", max: 120, allow_empty: false, multiline: false }
}

bounded_text! {
    /// A review's text.
    ReviewBody { field: "review body", max: 5_000, allow_empty: false, multiline: true }
}

bounded_text! {
    /// Why a moderator rejected or hid a review (shown to its author).
    ModerationReason { field: "moderation reason", max: 500, allow_empty: false, multiline: true }
}

/// Why a rating was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RatingError {
    /// Outside `1..=5`.
    #[error("rating must be from 1 to 5, got {0}")]
    OutOfRange(i64),
}

/// A star rating from 1 to 5.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u8")]
pub struct Rating(u8);

// Written by hand so the published event schemas carry the range.
impl schemars::JsonSchema for Rating {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Rating".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A star rating from 1 to 5.",
            "type": "integer",
            "minimum": Self::MIN,
            "maximum": Self::MAX,
        })
    }
}

impl Rating {
    /// The lowest rating.
    pub const MIN: u8 = 1;
    /// The highest rating.
    pub const MAX: u8 = 5;

    /// Validates a rating.
    ///
    /// # Errors
    /// [`RatingError::OutOfRange`] outside `1..=5`.
    pub fn new(stars: i64) -> Result<Self, RatingError> {
        u8::try_from(stars)
            .ok()
            .filter(|s| (Self::MIN..=Self::MAX).contains(s))
            .map(Self)
            .ok_or(RatingError::OutOfRange(stars))
    }

    /// The number of stars.
    #[must_use]
    pub fn stars(self) -> u8 {
        self.0
    }
}

impl TryFrom<i64> for Rating {
    type Error = RatingError;
    fn try_from(stars: i64) -> Result<Self, Self::Error> {
        Self::new(stars)
    }
}

impl From<Rating> for u8 {
    fn from(r: Rating) -> Self {
        r.0
    }
}

impl fmt::Display for Rating {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::TextError;

    #[test]
    fn ratings_are_one_to_five() {
        assert_eq!(Rating::new(1).unwrap().stars(), 1);
        assert_eq!(Rating::new(5).unwrap().stars(), 5);
        assert_eq!(Rating::new(0), Err(RatingError::OutOfRange(0)));
        assert_eq!(Rating::new(6), Err(RatingError::OutOfRange(6)));
        assert_eq!(Rating::new(-1), Err(RatingError::OutOfRange(-1)));
        assert_eq!(Rating::new(261), Err(RatingError::OutOfRange(261)));
        assert_eq!(
            serde_json::to_string(&Rating::new(4).unwrap()).unwrap(),
            "4"
        );
        assert!(serde_json::from_str::<Rating>("9").is_err());
    }

    #[test]
    fn review_text_is_bounded() {
        assert!(ReviewTitle::parse("Great").is_ok());
        assert!(matches!(
            ReviewTitle::parse(&"t".repeat(121)),
            Err(TextError::TooLong { max: 120, .. })
        ));
        assert!(ReviewBody::parse("Fits well.\nWashes well.").is_ok());
        assert!(matches!(
            ReviewBody::parse(" "),
            Err(TextError::Empty { .. })
        ));
        assert!(matches!(
            ReviewBody::parse(&"b".repeat(5_001)),
            Err(TextError::TooLong { max: 5_000, .. })
        ));
        assert!(ModerationReason::parse("spam").is_ok());
    }
}
