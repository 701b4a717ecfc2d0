//! Value objects of the category tree.

use crate::catalog::text::bounded_text;

bounded_text! {
    /// A category's display name, e.g. `Men's shoes`.
    CategoryName { field: "category name", max: 100, allow_empty: false, multiline: false }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::TextError;

    #[test]
    fn category_names_are_bounded() {
        assert_eq!(CategoryName::parse(" Shoes ").unwrap().as_str(), "Shoes");
        assert!(matches!(
            CategoryName::parse(""),
            Err(TextError::Empty { .. })
        ));
        assert!(matches!(
            CategoryName::parse(&"n".repeat(101)),
            Err(TextError::TooLong { max: 100, .. })
        ));
    }
}
