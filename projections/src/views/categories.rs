//! `categories`: the category tree, one row per category with its path (ids, names
//! and the slug path) precomputed, so the whole tree is one ordered scan and a
//! breadcrumb or a slug-path lookup is one indexed row.

use emporium_domain::catalog::CategoryEvent;

use super::{array_remove_append, one_changed, sqlite_uuid_text};
use crate::args;
use crate::envelope::EventEnvelope;
use crate::projection::{Projection, decode};
use crate::sql::{Backend, Conn};

/// Builds `categories`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CategoriesProjection;

const SCHEMA: &str = "
CREATE TABLE categories (
    category_id uuid        PRIMARY KEY,
    parent_id   uuid,
    name        text        NOT NULL,
    slug        text        NOT NULL,
    old_slugs   text[]      NOT NULL DEFAULT '{}',
    -- Root first, this category last.
    path_ids    uuid[]      NOT NULL DEFAULT '{}',
    path_names  text[]      NOT NULL DEFAULT '{}',
    -- e.g. `men/shoes/running`
    path_slugs  text        NOT NULL DEFAULT '',
    depth       integer     NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX categories_parent ON categories (parent_id, name);
CREATE INDEX categories_path_slugs ON categories (path_slugs);
CREATE INDEX categories_slug ON categories (slug);
";

/// The same columns on SQLite, whose arrays are JSON array text (`old_slugs` and
/// `path_names` of strings, `path_ids` of hyphenated UUIDs), with the same indexes.
const SQLITE_SCHEMA: &str = "
CREATE TABLE categories (
    category_id uuid        PRIMARY KEY,
    parent_id   uuid,
    name        text        NOT NULL,
    slug        text        NOT NULL,
    old_slugs   text        NOT NULL DEFAULT '[]',
    -- Root first, this category last.
    path_ids    text        NOT NULL DEFAULT '[]',
    path_names  text        NOT NULL DEFAULT '[]',
    -- e.g. `men/shoes/running`
    path_slugs  text        NOT NULL DEFAULT '',
    depth       integer     NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX categories_parent ON categories (parent_id, name);
CREATE INDEX categories_path_slugs ON categories (path_slugs);
CREATE INDEX categories_slug ON categories (slug);
";

/// Recomputes the paths of `$1` and its whole subtree from its parent's.
const REFRESH_PATHS: &str = "
WITH RECURSIVE t(category_id, ids, names, slugs, depth) AS (
    SELECT c.category_id,
           coalesce(p.path_ids, '{}') || c.category_id,
           coalesce(p.path_names, '{}') || c.name,
           CASE WHEN p.category_id IS NULL THEN c.slug ELSE p.path_slugs || '/' || c.slug END,
           coalesce(p.depth + 1, 0)
    FROM categories c LEFT JOIN categories p ON p.category_id = c.parent_id
    WHERE c.category_id = $1
    UNION ALL
    SELECT c.category_id, t.ids || c.category_id, t.names || c.name, t.slugs || '/' || c.slug,
           t.depth + 1
    FROM categories c JOIN t ON c.parent_id = t.category_id
    WHERE t.depth < 64
)
UPDATE categories c
SET path_ids = t.ids, path_names = t.names, path_slugs = t.slugs, depth = t.depth
FROM t
WHERE c.category_id = t.category_id";

/// [`REFRESH_PATHS`] on SQLite: arrays are JSON text, appended to with `json_insert`.
const SQLITE_REFRESH_PATHS: &str = concat!(
    "
WITH RECURSIVE t(category_id, ids, names, slugs, depth) AS (
    SELECT c.category_id,
           json_insert(coalesce(p.path_ids, '[]'), '$[#]', ",
    sqlite_uuid_text!("c.category_id"),
    "),
           json_insert(coalesce(p.path_names, '[]'), '$[#]', c.name),
           CASE WHEN p.category_id IS NULL THEN c.slug ELSE p.path_slugs || '/' || c.slug END,
           coalesce(p.depth + 1, 0)
    FROM categories c LEFT JOIN categories p ON p.category_id = c.parent_id
    WHERE c.category_id = $1
    UNION ALL
    SELECT c.category_id, json_insert(t.ids, '$[#]', ",
    sqlite_uuid_text!("c.category_id"),
    "),
           json_insert(t.names, '$[#]', c.name), t.slugs || '/' || c.slug, t.depth + 1
    FROM categories c JOIN t ON c.parent_id = t.category_id
    WHERE t.depth < 64
)
UPDATE categories AS c
SET path_ids = t.ids, path_names = t.names, path_slugs = t.slugs, depth = t.depth
FROM t
WHERE c.category_id = t.category_id"
);

#[async_trait::async_trait]
impl Projection for CategoriesProjection {
    fn name(&self) -> &'static str {
        "categories"
    }

    fn version(&self) -> u32 {
        1
    }

    fn tables(&self) -> &'static [&'static str] {
        &["categories"]
    }

    fn schema(&self) -> &'static str {
        SCHEMA
    }

    fn sqlite_schema(&self) -> Option<&'static str> {
        Some(SQLITE_SCHEMA)
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &["category_tree"]
    }

    async fn apply(&self, conn: &mut Conn<'_>, event: &EventEnvelope) -> anyhow::Result<()> {
        use CategoryEvent as E;
        let backend = conn.backend();
        let touched = match decode::<CategoryEvent>(event)? {
            E::CategoryCreated {
                category_id,
                name,
                slug,
                parent_id,
                at,
            } => {
                conn.execute(
                    "INSERT INTO categories (category_id, parent_id, name, slug, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $5)",
                    args![category_id, parent_id, name.as_str(), slug.as_str(), at],
                )
                .await?;
                category_id
            }
            E::CategoryRenamed {
                category_id,
                name,
                old_slug,
                slug,
                at,
            } => {
                let changed = conn
                    .execute(
                        &format!(
                            "UPDATE categories
                             SET name = $2, slug = $3, updated_at = $5,
                                 old_slugs = CASE WHEN $3 = $4 THEN old_slugs
                                                  ELSE {} END
                             WHERE category_id = $1",
                            array_remove_append(backend, "old_slugs", "$3", "$4")
                        ),
                        args![
                            category_id,
                            name.as_str(),
                            slug.as_str(),
                            old_slug.as_str(),
                            at
                        ],
                    )
                    .await?;
                one_changed(changed, "category")?;
                category_id
            }
            E::CategoryMoved {
                category_id,
                new_parent_id,
                at,
                ..
            } => {
                let changed = conn
                    .execute(
                        "UPDATE categories SET parent_id = $2, updated_at = $3 WHERE category_id = $1",
                        args![category_id, new_parent_id, at],
                    )
                    .await?;
                one_changed(changed, "category")?;
                category_id
            }
            E::CategoryDeleted { category_id, .. } => {
                let changed = conn
                    .execute(
                        "DELETE FROM categories WHERE category_id = $1",
                        args![category_id],
                    )
                    .await?;
                return one_changed(changed, "category");
            }
        };
        let refresh = match backend {
            Backend::Postgres => REFRESH_PATHS,
            Backend::Sqlite => SQLITE_REFRESH_PATHS,
        };
        conn.execute(refresh, args![touched]).await?;
        Ok(())
    }
}
