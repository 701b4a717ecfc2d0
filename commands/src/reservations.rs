//! Uniqueness across aggregates (one account per e-mail, one product per slug).
//!
//! An aggregate sees only itself, so a key is claimed in `unique_keys` before the
//! owner's first command commits. The claim and the command are two transactions (the
//! event store owns its own), so a crash between them can leave a claim whose owner
//! never came to exist: such an orphan is taken over by the next claimant instead of
//! blocking the key forever.

use anyhow::Context;
use sqlx::PgPool;

/// Outcome of a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is now (or already was) held by this owner.
    Granted,
    /// Another owner, one that exists, holds the key.
    TakenBy(String),
}

/// Claims `key` in `scope` for `owner_id`, whose aggregate is of type
/// `owner_type`.
///
/// # Errors
/// When the database fails.
pub async fn claim(
    pool: &PgPool,
    scope: &str,
    key: &str,
    owner_type: &str,
    owner_id: &str,
) -> anyhow::Result<Claim> {
    let inserted = sqlx::query(
        "INSERT INTO unique_keys (scope, key, owner_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(scope)
    .bind(key)
    .bind(owner_id)
    .execute(pool)
    .await
    .context("claim unique key")?
    .rows_affected();
    if inserted == 1 {
        return Ok(Claim::Granted);
    }
    // Held already: by us (a retried request), by a live owner, or by an orphan.
    // Taking over an orphan is one conditional UPDATE, so two claimants racing for
    // the same orphan cannot both win.
    let holder: Option<String> = sqlx::query_scalar(
        "UPDATE unique_keys u SET owner_id = $3, reserved_at = now()
          WHERE u.scope = $1 AND u.key = $2
            AND (u.owner_id = $3 OR NOT EXISTS (
                 SELECT 1 FROM events e WHERE e.aggregate_type = $4 AND e.aggregate_id = u.owner_id))
         RETURNING owner_id",
    )
    .bind(scope)
    .bind(key)
    .bind(owner_id)
    .bind(owner_type)
    .fetch_optional(pool)
    .await
    .context("take over unique key")?;
    if holder.is_some() {
        return Ok(Claim::Granted);
    }
    let current: Option<String> =
        sqlx::query_scalar("SELECT owner_id FROM unique_keys WHERE scope = $1 AND key = $2")
            .bind(scope)
            .bind(key)
            .fetch_optional(pool)
            .await
            .context("read unique key holder")?;
    Ok(current.map_or(Claim::Granted, Claim::TakenBy))
}

/// Gives up a claim held by `owner_id` (its command was rejected, or the key changed).
///
/// # Errors
/// When the database fails.
pub async fn release(pool: &PgPool, scope: &str, key: &str, owner_id: &str) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM unique_keys WHERE scope = $1 AND key = $2 AND owner_id = $3")
        .bind(scope)
        .bind(key)
        .bind(owner_id)
        .execute(pool)
        .await
        .context("release unique key")?;
    Ok(())
}

/// Who holds `key` in `scope`, if anyone.
///
/// # Errors
/// When the database fails.
pub async fn holder(pool: &PgPool, scope: &str, key: &str) -> anyhow::Result<Option<String>> {
    sqlx::query_scalar("SELECT owner_id FROM unique_keys WHERE scope = $1 AND key = $2")
        .bind(scope)
        .bind(key)
        .fetch_optional(pool)
        .await
        .context("read unique key holder")
}
