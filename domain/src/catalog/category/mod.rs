//! The category tree aggregate: the whole category hierarchy in one instance.
//!
//! **Identity.** There is exactly one instance, with aggregate id
//! [`CategoryTree::ID`] (`"catalog"`). Holding every category in one aggregate is what
//! makes the hierarchy's rules checkable purely, without I/O: a catalog has hundreds or
//! a few thousand categories, and they change rarely, so one stream is small and its
//! write rate is low.
//!
//! **Rules enforced here.**
//! - The parent relation has no cycles: a category cannot move under itself or any of
//!   its descendants, and a parent must exist when a category is created or moved.
//! - Slugs are unique across the **whole tree** (not just among siblings), so a
//!   storefront URL `/c/<slug>` identifies a category on its own.
//! - Categories nest at most [`CategoryTree::MAX_DEPTH`] levels.
//! - Only a category without children can be deleted.
//! - A command that changes nothing (rename to the same name and slug, move to the
//!   current parent) is refused with a typed error.
//!
//! [`CategoryTree::descendants`] and [`CategoryTree::path`] serve "products in a
//! category including its descendants" and breadcrumbs.
//!
//! **What the domain cannot enforce alone.** Products reference categories by id from
//! other aggregates, so deleting a category that products still use is not refused
//! here: the command layer checks the product read model first (or products keep a
//! dangling id, which read models show as uncategorised). Category ids are chosen by
//! the command layer.

mod aggregate;
mod command;
mod error;
mod event;
mod value;

#[cfg(test)]
mod tests;

pub use aggregate::{Category, CategoryTree};
pub use command::CategoryCommand;
pub use error::CategoryError;
pub use event::CategoryEvent;
pub use value::CategoryName;
