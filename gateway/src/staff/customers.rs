//! The staff customer list over `customers`, newest first. The read model holds no
//! credentials (the projection drops password and reset-token hashes), and the
//! columns read here are profile fields only.

use chrono::{DateTime, Utc};
use emporium_projections::args;
use emporium_projections::sql::Backend;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Staff, cursor, page_size, read_error};
use crate::error::ApiError;

/// A customer as staff see them.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct CustomerRow {
    pub(crate) user_id: Uuid,
    pub(crate) email: String,
    pub(crate) email_verified: bool,
    pub(crate) first_name: String,
    pub(crate) last_name: Option<String>,
    pub(crate) phone: Option<String>,
    pub(crate) role: String,
    pub(crate) active: bool,
    pub(crate) address_count: i64,
    pub(crate) registered_at: DateTime<Utc>,
}

/// The columns read, with `$length` the JSON array length function of the backend.
macro_rules! columns {
    ($length:literal) => {
        concat!(
            "user_id, email, email_verified, first_name, last_name, phone, role, active, \
             CAST(",
            $length,
            "(addresses) AS bigint) AS address_count, registered_at"
        )
    };
}

fn columns(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => columns!("jsonb_array_length"),
        Backend::Sqlite => columns!("json_array_length"),
    }
}

/// Which customers the list shows.
#[derive(Debug, Clone, Default)]
pub(crate) struct CustomerFilter {
    /// E-mail or name contains this (case-insensitive).
    pub(crate) search: Option<String>,
    /// With this role (snake_case).
    pub(crate) role: Option<String>,
}

/// One page of customers.
#[derive(Debug)]
pub(crate) struct CustomerPage {
    pub(crate) items: Vec<(String, CustomerRow)>,
    pub(crate) has_next_page: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct CustomerCursor {
    t: DateTime<Utc>,
    i: Uuid,
}

fn contains_pattern(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('%');
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

impl Staff {
    /// Customers, newest first, a page at a time.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` for a page size outside 1..=100 or a foreign cursor.
    pub(crate) async fn customers(
        &self,
        filter: &CustomerFilter,
        first: i64,
        after: Option<&str>,
    ) -> Result<CustomerPage, ApiError> {
        let first = page_size(first)?;
        let after: Option<CustomerCursor> = after.map(cursor::decode).transpose()?;
        let search = filter
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(contains_pattern);
        // `lower(…) LIKE lower(…)` is what PostgreSQL's ILIKE does; SQLite has no
        // ILIKE and no default escape character.
        let mut rows: Vec<CustomerRow> = self
            .read
            .fetch_all(
                &format!(
                    "SELECT {} FROM customers
                     WHERE ($1 IS NULL OR lower(email) LIKE lower($1) ESCAPE '\\'
                            OR lower(first_name) LIKE lower($1) ESCAPE '\\'
                            OR lower(coalesce(last_name, '')) LIKE lower($1) ESCAPE '\\')
                       AND ($2 IS NULL OR role = $2)
                       AND ($3 IS NULL OR (registered_at, user_id) < ($3, $4))
                     ORDER BY registered_at DESC, user_id DESC
                     LIMIT $5",
                    columns(self.read.backend())
                ),
                args![
                    search,
                    filter.role.as_deref(),
                    after.as_ref().map(|c| c.t),
                    after.as_ref().map(|c| c.i),
                    first + 1
                ],
            )
            .await
            .map_err(|e| read_error(e, "list customers"))?;
        let has_next_page = i64::try_from(rows.len()).unwrap_or(i64::MAX) > first;
        rows.truncate(usize::try_from(first).unwrap_or(usize::MAX));
        Ok(CustomerPage {
            items: rows
                .into_iter()
                .map(|r| {
                    let c = cursor::encode(&CustomerCursor {
                        t: r.registered_at,
                        i: r.user_id,
                    });
                    (c, r)
                })
                .collect(),
            has_next_page,
        })
    }
}
