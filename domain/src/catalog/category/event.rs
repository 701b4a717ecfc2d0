//! What happened to the category tree.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::value::CategoryName;
use crate::DomainEvent;
use crate::catalog::Slug;

/// A fact about the [`CategoryTree`](super::CategoryTree).
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, strum::IntoStaticStr,
)]
pub enum CategoryEvent {
    /// A category was added.
    CategoryCreated {
        /// Its id.
        category_id: Uuid,
        /// Display name.
        name: CategoryName,
        /// URL slug.
        slug: Slug,
        /// Parent, or `None` at the root.
        parent_id: Option<Uuid>,
        /// When.
        at: DateTime<Utc>,
    },
    /// A category's name or slug changed.
    CategoryRenamed {
        /// Its id.
        category_id: Uuid,
        /// New display name.
        name: CategoryName,
        /// The previous slug (kept by read models for redirects).
        old_slug: Slug,
        /// New slug.
        slug: Slug,
        /// When.
        at: DateTime<Utc>,
    },
    /// A category moved, with its subtree, under another parent.
    CategoryMoved {
        /// Its id.
        category_id: Uuid,
        /// The previous parent, `None` at the root.
        old_parent_id: Option<Uuid>,
        /// The new parent, `None` at the root.
        new_parent_id: Option<Uuid>,
        /// When.
        at: DateTime<Utc>,
    },
    /// A childless category was deleted.
    CategoryDeleted {
        /// Its id.
        category_id: Uuid,
        /// Its parent at the time, `None` at the root.
        parent_id: Option<Uuid>,
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for CategoryEvent {
    fn event_type(&self) -> &'static str {
        self.into()
    }

    fn event_version(&self) -> &'static str {
        "1.0"
    }
}
