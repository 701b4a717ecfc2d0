//! Access and refresh tokens: HS256 JWTs with `iss`, `aud`, `exp`, a session id and a
//! `typ` claim.
//!
//! Validation pins the algorithm (HS256: `none` and every other algorithm are
//! refused), requires and checks `iss`, `aud`, `sub` and `exp`, and checks `typ`, so
//! a refresh token is never accepted where an access token is expected (reset and
//! verification tokens are not JWTs at all). Expiry is checked against the injected
//! [`Clock`](crate::clock::Clock) with **no leeway**: a token is refused from the
//! second its `exp` is reached.

use chrono::{DateTime, Utc};
use emporium_domain::user::Role;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::AuthSettings;

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    /// Authorises API calls for 15 minutes.
    Access,
    /// Obtains a new token pair, once.
    Refresh,
}

/// The claims of both token types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// The user id.
    pub sub: Uuid,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
    /// Token id; for refresh tokens, what the session row's `current_token_id` holds.
    pub jti: Uuid,
    /// The session (refresh-token family) the token belongs to.
    pub sid: Uuid,
    /// What the token is for.
    pub typ: TokenType,
    /// The user's role when the token was issued (access tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
}

/// Why a token was refused. Callers answer all of them the same way
/// (`UNAUTHENTICATED`); the reason is for logs.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Bad signature, algorithm, issuer, audience, shape or missing claim.
    #[error("token rejected: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    /// `exp` reached.
    #[error("token expired")]
    Expired,
    /// A token of another type.
    #[error("expected a {expected:?} token, got {actual:?}")]
    WrongType {
        /// Wanted.
        expected: TokenType,
        /// Presented.
        actual: TokenType,
    },
}

/// Issues and validates tokens.
#[derive(Clone)]
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    access_ttl: chrono::Duration,
    refresh_ttl: chrono::Duration,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// A freshly issued token with its claims.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The encoded JWT.
    pub token: String,
    /// What it says.
    pub claims: Claims,
}

fn seconds(s: u64) -> chrono::Duration {
    chrono::Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1000))
}

impl Tokens {
    /// Tokens signed with `settings.jwt_secret`.
    #[must_use]
    pub fn new(settings: &AuthSettings) -> Self {
        let secret = settings.jwt_secret.expose().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Expiry is checked in `decode` against the injected clock, with no leeway.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            access_ttl: seconds(settings.access_token_ttl_seconds),
            refresh_ttl: seconds(settings.refresh_token_ttl_seconds),
        }
    }

    /// Lifetime of access tokens.
    #[must_use]
    pub fn access_ttl(&self) -> chrono::Duration {
        self.access_ttl
    }

    /// Lifetime of refresh tokens.
    #[must_use]
    pub fn refresh_ttl(&self) -> chrono::Duration {
        self.refresh_ttl
    }

    /// Signs a token of `typ` for `user` in session `sid`.
    ///
    /// # Errors
    /// When signing fails.
    pub fn issue(
        &self,
        typ: TokenType,
        user: Uuid,
        sid: Uuid,
        jti: Uuid,
        role: Option<Role>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Issued> {
        let ttl = match typ {
            TokenType::Access => self.access_ttl,
            TokenType::Refresh => self.refresh_ttl,
        };
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user,
            iat: now.timestamp(),
            exp: (now + ttl).timestamp(),
            jti,
            sid,
            typ,
            role: if typ == TokenType::Access { role } else { None },
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok(Issued { token, claims })
    }

    /// Validates `token` as a token of type `expected` at `now`.
    ///
    /// # Errors
    /// [`TokenError`].
    pub fn decode(
        &self,
        token: &str,
        expected: TokenType,
        now: DateTime<Utc>,
    ) -> Result<Claims, TokenError> {
        let claims =
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)?.claims;
        if claims.typ != expected {
            return Err(TokenError::WrongType {
                expected,
                actual: claims.typ,
            });
        }
        if now.timestamp() >= claims.exp {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;
    use crate::config::Secret;

    fn tokens() -> Tokens {
        Tokens::new(&AuthSettings {
            jwt_secret: Secret::new("unit-test-secret"),
            ..AuthSettings::default()
        })
    }

    #[test]
    fn access_tokens_round_trip_and_expire_without_leeway() {
        let t = tokens();
        let now = Utc::now();
        let (user, sid) = (Uuid::new_v4(), Uuid::new_v4());
        let issued = t
            .issue(
                TokenType::Access,
                user,
                sid,
                Uuid::new_v4(),
                Some(Role::Staff),
                now,
            )
            .unwrap();
        let claims = t.decode(&issued.token, TokenType::Access, now).unwrap();
        assert_eq!(
            (claims.sub, claims.sid, claims.role),
            (user, sid, Some(Role::Staff))
        );
        let at_expiry = now + t.access_ttl();
        assert!(matches!(
            t.decode(&issued.token, TokenType::Access, at_expiry),
            Err(TokenError::Expired)
        ));
        let just_before = at_expiry - chrono::Duration::seconds(1);
        assert!(
            t.decode(&issued.token, TokenType::Access, just_before)
                .is_ok()
        );
    }

    #[test]
    fn a_refresh_token_is_not_an_access_token() {
        let t = tokens();
        let now = Utc::now();
        let issued = t
            .issue(
                TokenType::Refresh,
                Uuid::new_v4(),
                Uuid::new_v4(),
                Uuid::new_v4(),
                None,
                now,
            )
            .unwrap();
        assert!(matches!(
            t.decode(&issued.token, TokenType::Access, now),
            Err(TokenError::WrongType { .. })
        ));
    }

    #[test]
    fn alg_none_and_foreign_keys_are_refused() {
        let t = tokens();
        let now = Utc::now();
        let issued = t
            .issue(
                TokenType::Access,
                Uuid::new_v4(),
                Uuid::new_v4(),
                Uuid::new_v4(),
                None,
                now,
            )
            .unwrap();
        let payload = issued.token.split('.').nth(1).unwrap();
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        for forged in [
            format!("{none_header}.{payload}."),
            format!("{none_header}.{payload}"),
        ] {
            assert!(
                t.decode(&forged, TokenType::Access, now).is_err(),
                "{forged}"
            );
        }
        let other = Tokens::new(&AuthSettings {
            jwt_secret: Secret::new("another-secret"),
            ..AuthSettings::default()
        });
        assert!(other.decode(&issued.token, TokenType::Access, now).is_err());
    }
}
