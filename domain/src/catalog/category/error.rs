//! Why the category tree refused a command.

use uuid::Uuid;

use crate::catalog::Slug;

/// A broken category rule. Nothing is recorded for a refused command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CategoryError {
    /// Creating a category whose id is taken.
    #[error("category {0} already exists")]
    CategoryAlreadyExists(Uuid),
    /// A category id that is not in the tree.
    #[error("category {0} does not exist")]
    CategoryNotFound(Uuid),
    /// A parent id that is not in the tree.
    #[error("parent category {0} does not exist")]
    ParentNotFound(Uuid),
    /// A slug another category already uses.
    #[error("slug `{0}` is already used by another category")]
    SlugTaken(Slug),
    /// Moving a category under itself or one of its descendants.
    #[error(
        "category {category_id} cannot move under {new_parent_id}, which is itself or one of its descendants"
    )]
    WouldCreateCycle {
        /// The category being moved.
        category_id: Uuid,
        /// The parent asked for.
        new_parent_id: Uuid,
    },
    /// Moving a category to the parent it already has.
    #[error("category is already under that parent")]
    AlreadyUnderParent,
    /// A create or move that would nest categories deeper than
    /// [`CategoryTree::MAX_DEPTH`](super::CategoryTree::MAX_DEPTH).
    #[error("categories may nest at most {max} levels deep")]
    TooDeep {
        /// The bound.
        max: usize,
    },
    /// Deleting a category that still has children.
    #[error("category {0} has children; move or delete them first")]
    HasChildren(Uuid),
    /// A rename to the current name and slug.
    #[error("category name and slug are unchanged")]
    CategoryUnchanged,
}
