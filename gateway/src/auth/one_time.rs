//! Single-use tokens mailed to users: 32 random bytes (base64url), stored as their
//! SHA-256 in `auth_one_time_tokens`, consumed by one conditional UPDATE.

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use emporium_commands::args;
use emporium_commands::sql::Conn;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;

/// What a token proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// The holder reads the mailbox of the account's address.
    VerifyEmail,
    /// The holder may set a new password.
    PasswordReset,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::PasswordReset => "password_reset",
        }
    }
}

/// A new token and its hash (lowercase hex SHA-256).
pub(crate) fn generate() -> (String, String) {
    let mut bytes = [0u8; TOKEN_BYTES];
    OsRng.fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash(&token);
    (token, hash)
}

/// The stored form of `token`.
pub(crate) fn hash(token: &str) -> String {
    let digest = Sha256::digest(token.trim().as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

/// Stores a token hash, superseding the user's unused tokens of the same purpose.
pub(crate) async fn store(
    tx: &mut Conn<'_>,
    hash: &str,
    purpose: Purpose,
    user_id: Uuid,
    email: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> anyhow::Result<()> {
    tx.execute(
        "UPDATE auth_one_time_tokens SET used_at = $3
          WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
        args![user_id, purpose.as_str(), now],
    )
    .await
    .context("supersede earlier tokens")?;
    tx.execute(
        "INSERT INTO auth_one_time_tokens (token_hash, purpose, user_id, email, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        args![hash, purpose.as_str(), user_id, email, now, expires_at],
    )
    .await
    .context("store one-time token")?;
    Ok(())
}

/// Marks the token used when it is of `purpose`, unused and unexpired at `now`;
/// returns its user and address. Inside the caller's transaction, so the token is
/// spent only if what it authorises commits too.
pub(crate) async fn consume(
    tx: &mut Conn<'_>,
    hash: &str,
    purpose: Purpose,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<(Uuid, String)>> {
    tx.fetch_optional(
        "UPDATE auth_one_time_tokens SET used_at = $3
          WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3
         RETURNING user_id, email",
        args![hash, purpose.as_str(), now],
    )
    .await
    .context("consume one-time token")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_hashed() {
        let (a, ha) = generate();
        let (b, hb) = generate();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43, "32 bytes in base64url");
        assert_eq!(ha.len(), 64);
        assert_eq!(hash(&a), ha);
        assert_ne!(ha, hb);
        assert!(
            ha.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }
}
