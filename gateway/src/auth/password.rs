//! Password hashing: argon2id at OWASP's minimum (19 MiB, 2 passes, 1 lane), run on
//! the blocking pool behind a semaphore so a burst of logins cannot take every core
//! or allocate unbounded memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use emporium_domain::user::PasswordHash;
use rand_core::OsRng;
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// Memory cost in KiB (19 MiB).
const M_COST: u32 = 19 * 1024;
/// Passes.
const T_COST: u32 = 2;
/// Lanes.
const P_COST: u32 = 1;

/// Shortest password accepted, in characters (NIST SP 800-63B).
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password accepted, in characters (hashing cost grows with length).
pub const MAX_PASSWORD_CHARS: usize = 128;

/// Hashes and verifies passwords; counts verifications.
#[derive(Debug, Clone)]
pub struct Passwords {
    /// Verifies against this when the account does not exist, so an unknown e-mail
    /// costs the same time as a wrong password.
    dummy: Arc<str>,
    permits: Arc<Semaphore>,
    verifications: Arc<AtomicU64>,
}

fn argon2() -> Argon2<'static> {
    // The parameters are constants known to be valid.
    let params = Params::new(M_COST, T_COST, P_COST, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(argon2()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?
        .to_string())
}

/// Hashes `password` with a fixed `salt` (base64, no padding): the same PHC string
/// on every call. Only for demo data (`emporium seed --demo`), whose events must be
/// identical on every run; real accounts get a random salt from [`Passwords::hash`].
///
/// # Errors
/// When the salt is not valid base64 or hashing fails.
pub fn hash_with_fixed_salt(password: &str, salt: &str) -> anyhow::Result<PasswordHash> {
    let salt = SaltString::from_b64(salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let phc = argon2()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?
        .to_string();
    PasswordHash::parse(&phc).map_err(|e| anyhow::anyhow!("password hash: {e}"))
}

impl Passwords {
    /// A hasher allowing `parallelism` hashes at once.
    ///
    /// # Errors
    /// When the dummy hash cannot be computed.
    pub fn new(parallelism: usize) -> anyhow::Result<Self> {
        let dummy = hash_blocking("emporium-dummy-password").context("compute dummy hash")?;
        Ok(Self {
            dummy: dummy.into(),
            permits: Arc::new(Semaphore::new(parallelism.max(1))),
            verifications: Arc::new(AtomicU64::new(0)),
        })
    }

    /// How many verifications ran since start (tests and `/metrics`).
    #[must_use]
    pub fn verifications(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.verifications)
    }

    /// Checks the password policy.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` naming the broken rule.
    pub fn check_policy(field: &'static str, password: &str) -> Result<(), ApiError> {
        let chars = password.chars().count();
        if chars < MIN_PASSWORD_CHARS {
            return Err(ApiError::bad_input(
                field,
                "password_min_length",
                format!("password must be at least {MIN_PASSWORD_CHARS} characters"),
            ));
        }
        if chars > MAX_PASSWORD_CHARS {
            return Err(ApiError::bad_input(
                field,
                "password_max_length",
                format!("password must be at most {MAX_PASSWORD_CHARS} characters"),
            ));
        }
        Ok(())
    }

    /// Hashes `password` (argon2id PHC string).
    ///
    /// # Errors
    /// `INTERNAL` when hashing fails.
    pub async fn hash(&self, password: String) -> Result<PasswordHash, ApiError> {
        let _permit = self.permits.acquire().await.map_err(ApiError::internal)?;
        let phc = tokio::task::spawn_blocking(move || hash_blocking(&password))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
        PasswordHash::parse(&phc).map_err(ApiError::internal)
    }

    /// Whether `password` matches `hash`; with no hash (unknown account), verifies
    /// against a dummy hash and answers `false`, taking the same time.
    ///
    /// # Errors
    /// `INTERNAL` when the blocking task fails.
    pub async fn verify(
        &self,
        password: String,
        hash: Option<&PasswordHash>,
    ) -> Result<bool, ApiError> {
        let known = hash.is_some();
        let phc: String = hash.map_or_else(|| self.dummy.to_string(), |h| h.as_str().to_owned());
        let _permit = self.permits.acquire().await.map_err(ApiError::internal)?;
        self.verifications.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("emporium_auth_password_verifications_total").increment(1);
        let matches = tokio::task::spawn_blocking(move || {
            argon2::password_hash::PasswordHash::new(&phc).is_ok_and(|parsed| {
                argon2()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
        })
        .await
        .map_err(ApiError::internal)?;
        Ok(known && matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_at_owasp_parameters_and_verify() {
        let passwords = Passwords::new(2).unwrap();
        let hash = passwords.hash("correct horse".to_owned()).await.unwrap();
        assert!(
            hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            hash.as_str()
        );
        assert!(
            passwords
                .verify("correct horse".to_owned(), Some(&hash))
                .await
                .unwrap()
        );
        assert!(
            !passwords
                .verify("wrong horse".to_owned(), Some(&hash))
                .await
                .unwrap()
        );
        assert!(
            !passwords
                .verify("correct horse".to_owned(), None)
                .await
                .unwrap()
        );
        assert_eq!(passwords.verifications().load(Ordering::Relaxed), 3);
    }

    #[test]
    fn policy_names_the_rule() {
        let short = Passwords::check_policy("password", "short").unwrap_err();
        assert!(matches!(
            short,
            ApiError::BadUserInput {
                rule: "password_min_length",
                ..
            }
        ));
        let long = Passwords::check_policy("password", &"x".repeat(129)).unwrap_err();
        assert!(matches!(
            long,
            ApiError::BadUserInput {
                rule: "password_max_length",
                ..
            }
        ));
        assert!(Passwords::check_policy("password", "eight ch").is_ok());
    }
}
