//! What the category tree can be asked to do.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::value::CategoryName;
use crate::catalog::Slug;

/// A request to the [`CategoryTree`](super::CategoryTree).
#[derive(Debug, Clone, PartialEq)]
pub enum CategoryCommand {
    /// Adds a category, at the root or under an existing parent.
    CreateCategory {
        /// The new category's id, chosen by the command layer.
        category_id: Uuid,
        /// Display name.
        name: CategoryName,
        /// URL slug, unique across the whole tree.
        slug: Slug,
        /// Parent, or `None` for a root category.
        parent_id: Option<Uuid>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Changes a category's name and slug.
    RenameCategory {
        /// Which category.
        category_id: Uuid,
        /// New display name.
        name: CategoryName,
        /// New slug (may be the current one).
        slug: Slug,
        /// When.
        at: DateTime<Utc>,
    },
    /// Moves a category, with its whole subtree, under another parent or to the root.
    MoveCategory {
        /// Which category.
        category_id: Uuid,
        /// The new parent, or `None` for the root.
        new_parent_id: Option<Uuid>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Deletes a category that has no children.
    DeleteCategory {
        /// Which category.
        category_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
}
