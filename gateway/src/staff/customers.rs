//! The staff customer list over `customers`, newest first. The read model holds no
//! credentials (the projection drops password and reset-token hashes), and the
//! columns read here are profile fields only.

use chrono::{DateTime, Utc};
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

const COLUMNS: &str = "user_id, email, email_verified, first_name, last_name, phone, role, \
     active, jsonb_array_length(addresses)::bigint AS address_count, registered_at";

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
        let mut rows: Vec<CustomerRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM customers
             WHERE ($1::text IS NULL OR email ILIKE $1 OR first_name ILIKE $1
                    OR coalesce(last_name, '') ILIKE $1)
               AND ($2::text IS NULL OR role = $2)
               AND ($3::timestamptz IS NULL OR (registered_at, user_id) < ($3, $4))
             ORDER BY registered_at DESC, user_id DESC
             LIMIT $5"
        ))
        .bind(search)
        .bind(filter.role.as_deref())
        .bind(after.as_ref().map(|c| c.t))
        .bind(after.as_ref().map(|c| c.i))
        .bind(first + 1)
        .fetch_all(&self.pool)
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
