//! The category tree's state, its decisions and how events evolve it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::command::CategoryCommand;
use super::error::CategoryError;
use super::event::CategoryEvent;
use super::value::CategoryName;
use crate::Aggregate;
use crate::catalog::Slug;

/// One node of the tree.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Category {
    /// Its id.
    pub id: Uuid,
    /// Display name.
    pub name: CategoryName,
    /// URL slug, unique in the tree.
    pub slug: Slug,
    /// Parent, `None` at the root.
    pub parent_id: Option<Uuid>,
    /// Direct children (kept in step with `parent_id` by `apply`).
    pub children: BTreeSet<Uuid>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// The whole category hierarchy, one instance with id [`CategoryTree::ID`]. Its rules,
/// and what the command layer must enforce, are documented in `catalog/category/mod.rs`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CategoryTree {
    categories: BTreeMap<Uuid, Category>,
}

impl CategoryTree {
    /// The id of the one category tree aggregate.
    pub const ID: &'static str = "catalog";
    /// How many levels categories may nest (a root category is level 1).
    pub const MAX_DEPTH: usize = 8;

    /// The category with this id.
    #[must_use]
    pub fn get(&self, id: Uuid) -> Option<&Category> {
        self.categories.get(&id)
    }

    /// The category with this slug.
    #[must_use]
    pub fn by_slug(&self, slug: &Slug) -> Option<&Category> {
        self.categories.values().find(|c| &c.slug == slug)
    }

    /// Every category, ordered by id.
    pub fn categories(&self) -> impl Iterator<Item = &Category> {
        self.categories.values()
    }

    /// The categories without a parent, ordered by id.
    pub fn roots(&self) -> impl Iterator<Item = &Category> {
        self.categories.values().filter(|c| c.parent_id.is_none())
    }

    /// How many categories there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.categories.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.categories.is_empty()
    }

    /// Every category below `id` (children, grandchildren, ...), breadth first, without
    /// `id` itself; empty when `id` is unknown. "Products in a category including its
    /// descendants" filters on `id` plus this list.
    #[must_use]
    pub fn descendants(&self, id: Uuid) -> Vec<Uuid> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::from([id]);
        let mut queue = VecDeque::from([id]);
        while let Some(next) = queue.pop_front() {
            let Some(c) = self.categories.get(&next) else {
                continue;
            };
            for &child in &c.children {
                // `seen` only guards against a corrupt snapshot; the tree has no cycles.
                if seen.insert(child) {
                    out.push(child);
                    queue.push_back(child);
                }
            }
        }
        out
    }

    /// The ids from the root down to `id` inclusive (a breadcrumb); empty when `id` is
    /// unknown.
    #[must_use]
    pub fn path(&self, id: Uuid) -> Vec<Uuid> {
        let mut path = Vec::new();
        let mut current = self.categories.get(&id);
        // The step bound only guards against a corrupt snapshot; the tree has no cycles.
        while let Some(c) = current {
            if path.len() > self.categories.len() {
                break;
            }
            path.push(c.id);
            current = c.parent_id.and_then(|p| self.categories.get(&p));
        }
        path.reverse();
        path
    }

    /// The level of `id`: 1 for a root category, 0 when unknown.
    #[must_use]
    pub fn depth(&self, id: Uuid) -> usize {
        self.path(id).len()
    }

    /// How many levels the subtree rooted at `id` spans (1 for a leaf).
    fn height(&self, id: Uuid) -> usize {
        let own = self.depth(id);
        self.descendants(id)
            .into_iter()
            .map(|d| self.depth(d) - own)
            .max()
            .unwrap_or(0)
            + 1
    }

    fn existing(&self, id: Uuid) -> Result<&Category, CategoryError> {
        self.categories
            .get(&id)
            .ok_or(CategoryError::CategoryNotFound(id))
    }

    fn check_parent(&self, parent_id: Uuid) -> Result<(), CategoryError> {
        if self.categories.contains_key(&parent_id) {
            Ok(())
        } else {
            Err(CategoryError::ParentNotFound(parent_id))
        }
    }

    fn check_slug_free(&self, slug: &Slug, except: Option<Uuid>) -> Result<(), CategoryError> {
        match self.by_slug(slug) {
            Some(c) if Some(c.id) != except => Err(CategoryError::SlugTaken(slug.clone())),
            _ => Ok(()),
        }
    }
}

fn too_deep() -> CategoryError {
    CategoryError::TooDeep {
        max: CategoryTree::MAX_DEPTH,
    }
}

impl Aggregate for CategoryTree {
    const TYPE: &'static str = "category_tree";
    type Command = CategoryCommand;
    type Event = CategoryEvent;
    type Error = CategoryError;

    fn handle(&self, command: CategoryCommand) -> Result<Vec<CategoryEvent>, CategoryError> {
        let event = match command {
            CategoryCommand::CreateCategory {
                category_id,
                name,
                slug,
                parent_id,
                at,
            } => {
                if self.categories.contains_key(&category_id) {
                    return Err(CategoryError::CategoryAlreadyExists(category_id));
                }
                if let Some(p) = parent_id {
                    self.check_parent(p)?;
                }
                self.check_slug_free(&slug, None)?;
                let parent_depth = parent_id.map_or(0, |p| self.depth(p));
                if parent_depth + 1 > Self::MAX_DEPTH {
                    return Err(too_deep());
                }
                CategoryEvent::CategoryCreated {
                    category_id,
                    name,
                    slug,
                    parent_id,
                    at,
                }
            }
            CategoryCommand::RenameCategory {
                category_id,
                name,
                slug,
                at,
            } => {
                let c = self.existing(category_id)?;
                self.check_slug_free(&slug, Some(category_id))?;
                if name == c.name && slug == c.slug {
                    return Err(CategoryError::CategoryUnchanged);
                }
                CategoryEvent::CategoryRenamed {
                    category_id,
                    name,
                    old_slug: c.slug.clone(),
                    slug,
                    at,
                }
            }
            CategoryCommand::MoveCategory {
                category_id,
                new_parent_id,
                at,
            } => {
                let c = self.existing(category_id)?;
                if new_parent_id == c.parent_id {
                    return Err(CategoryError::AlreadyUnderParent);
                }
                if let Some(p) = new_parent_id {
                    self.check_parent(p)?;
                    if p == category_id || self.descendants(category_id).contains(&p) {
                        return Err(CategoryError::WouldCreateCycle {
                            category_id,
                            new_parent_id: p,
                        });
                    }
                    if self.depth(p) + self.height(category_id) > Self::MAX_DEPTH {
                        return Err(too_deep());
                    }
                }
                CategoryEvent::CategoryMoved {
                    category_id,
                    old_parent_id: c.parent_id,
                    new_parent_id,
                    at,
                }
            }
            CategoryCommand::DeleteCategory { category_id, at } => {
                let c = self.existing(category_id)?;
                if !c.children.is_empty() {
                    return Err(CategoryError::HasChildren(category_id));
                }
                CategoryEvent::CategoryDeleted {
                    category_id,
                    parent_id: c.parent_id,
                    at,
                }
            }
        };
        Ok(vec![event])
    }

    fn apply(&mut self, event: &CategoryEvent) {
        match event {
            CategoryEvent::CategoryCreated {
                category_id,
                name,
                slug,
                parent_id,
                at,
            } => {
                if let Some(parent) = parent_id.and_then(|p| self.categories.get_mut(&p)) {
                    parent.children.insert(*category_id);
                }
                self.categories.insert(
                    *category_id,
                    Category {
                        id: *category_id,
                        name: name.clone(),
                        slug: slug.clone(),
                        parent_id: *parent_id,
                        children: BTreeSet::new(),
                        created_at: *at,
                        updated_at: *at,
                    },
                );
            }
            CategoryEvent::CategoryRenamed {
                category_id,
                name,
                slug,
                at,
                ..
            } => {
                if let Some(c) = self.categories.get_mut(category_id) {
                    c.name = name.clone();
                    c.slug = slug.clone();
                    c.updated_at = *at;
                }
            }
            CategoryEvent::CategoryMoved {
                category_id,
                new_parent_id,
                at,
                ..
            } => {
                let Some(c) = self.categories.get_mut(category_id) else {
                    return;
                };
                let old_parent_id = std::mem::replace(&mut c.parent_id, *new_parent_id);
                c.updated_at = *at;
                if let Some(old) = old_parent_id.and_then(|p| self.categories.get_mut(&p)) {
                    old.children.remove(category_id);
                }
                if let Some(new) = new_parent_id.and_then(|p| self.categories.get_mut(&p)) {
                    new.children.insert(*category_id);
                }
            }
            CategoryEvent::CategoryDeleted { category_id, .. } => {
                if let Some(c) = self.categories.remove(category_id)
                    && let Some(parent) = c.parent_id.and_then(|p| self.categories.get_mut(&p))
                {
                    parent.children.remove(category_id);
                }
            }
        }
    }
}
