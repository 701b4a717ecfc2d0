//! Sessions (refresh-token families): `auth_sessions`, in PostgreSQL or in the
//! embedded mode's `gateway.db`, through one statement text.

use anyhow::Context;
use chrono::{DateTime, Utc};
use emporium_commands::args;
use emporium_commands::sql::{Conn, Db};
use uuid::Uuid;

/// Outcome of presenting a refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rotation {
    /// The token was the family's current one; it is now replaced.
    Rotated {
        /// The session's user.
        user_id: Uuid,
    },
    /// The token had already been rotated: the family is now revoked.
    Reused,
    /// The family is revoked or expired, or unknown.
    Dead,
}

/// Records a new session whose current refresh token is `token_id`.
pub(crate) async fn start(
    db: &Db,
    sid: Uuid,
    user_id: Uuid,
    token_id: Uuid,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> anyhow::Result<()> {
    db.execute(
        "INSERT INTO auth_sessions (id, user_id, current_token_id, created_at, refreshed_at, expires_at)
         VALUES ($1, $2, $3, $4, $4, $5)",
        args![sid, user_id, token_id, now, expires_at],
    )
    .await
    .context("start session")?;
    Ok(())
}

/// Swaps the family's current token `presented` for `next`, in one conditional
/// UPDATE; when `presented` is not current, revokes the family (reuse detected).
pub(crate) async fn rotate(
    db: &Db,
    sid: Uuid,
    presented: Uuid,
    next: Uuid,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> anyhow::Result<Rotation> {
    let rotated: Option<Uuid> = db
        .scalar_optional(
            "UPDATE auth_sessions
                SET current_token_id = $3, generation = generation + 1,
                    refreshed_at = $4, expires_at = $5
              WHERE id = $1 AND current_token_id = $2
                AND revoked_at IS NULL AND expires_at > $4
             RETURNING user_id",
            args![sid, presented, next, now, expires_at],
        )
        .await
        .context("rotate refresh token")?;
    if let Some(user_id) = rotated {
        return Ok(Rotation::Rotated { user_id });
    }
    // Signed by us, for this family, but no longer current: it was rotated before,
    // so someone holds a copy. Revoke the whole family.
    let revoked = db
        .execute(
            "UPDATE auth_sessions SET revoked_at = $3, revoked_reason = 'refresh_token_reused'
              WHERE id = $1 AND current_token_id <> $2 AND revoked_at IS NULL",
            args![sid, presented, now],
        )
        .await
        .context("revoke reused session")?;
    Ok(if revoked > 0 {
        Rotation::Reused
    } else {
        Rotation::Dead
    })
}

/// Whether the session is live (not revoked) and belongs to `user_id`.
pub(crate) async fn is_live(db: &Db, sid: Uuid, user_id: Uuid) -> anyhow::Result<bool> {
    let live: Option<bool> = db
        .scalar_optional(
            "SELECT revoked_at IS NULL FROM auth_sessions WHERE id = $1 AND user_id = $2",
            args![sid, user_id],
        )
        .await
        .context("read session")?;
    Ok(live == Some(true))
}

/// Revokes one session.
pub(crate) async fn revoke(
    db: &Db,
    sid: Uuid,
    now: DateTime<Utc>,
    reason: &str,
) -> anyhow::Result<()> {
    db.execute(
        "UPDATE auth_sessions SET revoked_at = $2, revoked_reason = $3
          WHERE id = $1 AND revoked_at IS NULL",
        args![sid, now, reason],
    )
    .await
    .context("revoke session")?;
    Ok(())
}

const REVOKE_ALL: &str = "UPDATE auth_sessions SET revoked_at = $3, revoked_reason = $4
  WHERE user_id = $1 AND revoked_at IS NULL AND id IS DISTINCT FROM $2";

/// Revokes every live session of `user_id` except `keep`.
pub(crate) async fn revoke_all(
    db: &Db,
    user_id: Uuid,
    keep: Option<Uuid>,
    now: DateTime<Utc>,
    reason: &str,
) -> anyhow::Result<u64> {
    db.execute(REVOKE_ALL, args![user_id, keep, now, reason])
        .await
        .context("revoke sessions")
}

/// [`revoke_all`] inside the caller's transaction.
pub(crate) async fn revoke_all_in(
    conn: &mut Conn<'_>,
    user_id: Uuid,
    keep: Option<Uuid>,
    now: DateTime<Utc>,
    reason: &str,
) -> anyhow::Result<u64> {
    conn.execute(REVOKE_ALL, args![user_id, keep, now, reason])
        .await
        .context("revoke sessions")
}
