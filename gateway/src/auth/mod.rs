//! Accounts and authentication: registration, sign-in, sessions, e-mail
//! verification, password reset and change, preferences.
//!
//! Where each secret lives:
//! - passwords: argon2id PHC strings inside the user's events (hashed here, in
//!   [`password`], on the blocking pool);
//! - sessions: `auth_sessions`, one row per refresh-token family ([`sessions`]);
//! - mailed tokens: SHA-256 hashes in `auth_one_time_tokens` ([`one_time`]); the
//!   password-reset hash also goes into the user's `PasswordResetRequested` event,
//!   so the aggregate enforces single use and expiry as well.
//!
//! Every method reads time from the injected clock.

pub(crate) mod addresses;
#[cfg(all(test, feature = "sqlite"))]
mod both_backends;
mod live;
mod one_time;
pub mod password;
mod sessions;
pub mod tokens;

use std::net::IpAddr;
use std::sync::Arc;

use emporium_commands::sql::Db;
use emporium_commands::users::{EMAIL_SCOPE, RegisterUserError, Users};
use emporium_commands::{AnyStore, CommandError, EventStore as _};
use emporium_domain::metadata::Actor;
use emporium_domain::user::{
    Email, Language, PersonName, Preferences, ResetTokenHash, Role, User, UserCommand, UserError,
};
use emporium_domain::{Currency, EventMetadata};
use uuid::Uuid;

use self::one_time::Purpose;
use self::password::Passwords;
use self::sessions::Rotation;
use self::tokens::{Issued, TokenType, Tokens};
use crate::clock::Clock;
use crate::config::Settings;
use crate::error::ApiError;
use crate::mailer::{Mail, Mailer};
use crate::ratelimit::{Quota, RateLimiter, Verdict};

/// Access-token session checks, by `answer`: `kept` (known live, no statement) or
/// `asked` (read from the database).
pub const METRIC_SESSION_CHECKS: &str = "emporium_auth_session_checks_total";

/// Who is calling: the subject of a valid access token whose session is live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Viewer {
    /// The user.
    pub user_id: Uuid,
    /// The role when the token was issued (at most one access-token lifetime old).
    pub role: Role,
    /// The session the token belongs to.
    pub session_id: Uuid,
}

impl Viewer {
    /// Whether the viewer runs the shop.
    #[must_use]
    pub fn is_staff(&self) -> bool {
        matches!(self.role, Role::Staff | Role::Admin)
    }

    /// Succeeds when the viewer owns what `owner_id` owns; otherwise answers
    /// exactly as for a missing `what`, so a foreign id reveals nothing.
    ///
    /// # Errors
    /// `NOT_FOUND`.
    pub fn ensure_owns(&self, owner_id: Uuid, what: &'static str) -> Result<(), ApiError> {
        if owner_id == self.user_id {
            Ok(())
        } else {
            Err(ApiError::NotFound { what })
        }
    }
}

/// A signed-in session's tokens.
#[derive(Debug, Clone)]
pub struct TokenPair {
    /// The access token.
    pub access: Issued,
    /// The refresh token.
    pub refresh: Issued,
}

/// The outcome of a sign-in, registration or refresh.
#[derive(Debug)]
pub struct SignedIn {
    /// The account.
    pub user: User,
    /// Its new tokens.
    pub tokens: TokenPair,
}

/// A registration as the client sent it (validated here).
#[derive(Debug, Clone)]
pub struct Registration {
    /// E-mail address.
    pub email: String,
    /// Password.
    pub password: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: Option<String>,
    /// Initial preferences.
    pub preferences: PreferencesChange,
}

/// A partial preferences update (`None` keeps the current value).
#[derive(Debug, Clone, Default)]
pub struct PreferencesChange {
    /// Newsletter opt-in.
    pub newsletter: Option<bool>,
    /// BCP 47 language tag.
    pub language: Option<String>,
    /// ISO 4217 currency code.
    pub currency: Option<String>,
}

impl PreferencesChange {
    fn parse(&self) -> Result<ParsedPreferences, ApiError> {
        let language = self
            .language
            .as_deref()
            .map(Language::parse)
            .transpose()
            .map_err(|e| ApiError::bad_input("language", "language_invalid", e))?;
        let currency = self
            .currency
            .as_deref()
            .map(Currency::parse)
            .transpose()
            .map_err(|e| ApiError::bad_input("currency", "currency_invalid", e))?;
        Ok((self.newsletter, language, currency))
    }
}

/// Validated preference changes: newsletter, language, currency.
type ParsedPreferences = (Option<bool>, Option<Language>, Option<Currency>);

/// The account service behind the account mutations and `me`.
pub struct Accounts {
    /// The gateway's own tables (sessions, one-time tokens): PostgreSQL, or
    /// `gateway.db` in the embedded mode.
    db: Db,
    users: Users<AnyStore>,
    store: AnyStore,
    passwords: Passwords,
    tokens: Tokens,
    mailer: Arc<dyn Mailer>,
    limiter: Arc<dyn RateLimiter>,
    clock: Arc<dyn Clock>,
    settings: Arc<Settings>,
    live: Arc<live::LiveSessions>,
    /// The revocation listener (PostgreSQL only), stopped with the service.
    _listener: Option<AbortOnDrop>,
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts")
            .field("mailer", &self.mailer)
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

fn user_error(e: CommandError<UserError>) -> ApiError {
    match e {
        CommandError::Rejected(UserError::NotRegistered | UserError::Deactivated) => {
            ApiError::Unauthenticated
        }
        CommandError::Rejected(e) => ApiError::internal(anyhow::anyhow!("user refused: {e}")),
        CommandError::Conflict { .. } => ApiError::Conflict,
        CommandError::Unexpected(e) => ApiError::Internal(e),
    }
}

impl Accounts {
    /// The service over the event store `store`, keeping sessions and one-time
    /// tokens in `db`.
    #[allow(clippy::too_many_arguments)]
    #[must_use]
    pub fn new(
        store: AnyStore,
        db: Db,
        passwords: Passwords,
        mailer: Arc<dyn Mailer>,
        limiter: Arc<dyn RateLimiter>,
        clock: Arc<dyn Clock>,
        settings: Arc<Settings>,
    ) -> Self {
        let live = Arc::new(live::LiveSessions::new(std::time::Duration::from_secs(
            settings.auth.session_cache_seconds,
        )));
        let listener = match &db {
            Db::Postgres(pool) => live::listen(&live, pool).map(AbortOnDrop),
            #[cfg(feature = "sqlite")]
            Db::Sqlite(_) => None,
        };
        Self {
            users: Users::over(store.clone()),
            store,
            tokens: Tokens::new(&settings.auth),
            db,
            passwords,
            mailer,
            limiter,
            clock,
            settings,
            live,
            _listener: listener,
        }
    }

    /// The gateway's own tables (sessions, one-time tokens, e-mail templates).
    #[must_use]
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The token codec.
    #[must_use]
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// The clock.
    #[must_use]
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The rate limiter.
    #[must_use]
    pub fn limiter(&self) -> &Arc<dyn RateLimiter> {
        &self.limiter
    }

    fn metadata(&self, actor: Uuid) -> EventMetadata {
        crate::tracecontext::stamp(EventMetadata::new(
            Uuid::new_v4(),
            Actor::User(actor),
            self.clock.now(),
        ))
    }

    /// Counts a hit against a quota; fails open (logged) when the store is down.
    ///
    /// # Errors
    /// `RATE_LIMITED`.
    pub async fn limit(
        &self,
        bucket: &str,
        subject: &str,
        quota: Quota,
        cost: u32,
    ) -> Result<(), ApiError> {
        if !self.settings.limits.rate.enabled {
            return Ok(());
        }
        match self
            .limiter
            .hit(bucket, subject, quota, cost, self.clock.now())
            .await
        {
            Ok(Verdict::Allowed) => Ok(()),
            Ok(Verdict::Limited { retry_after }) => {
                metrics::counter!("emporium_rate_limited_total", "bucket" => bucket.to_owned())
                    .increment(1);
                Err(ApiError::RateLimited { retry_after })
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), bucket, "rate limiter unavailable; allowing");
                Ok(())
            }
        }
    }

    /// The account registered with `email`, if any.
    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, ApiError> {
        let Some(holder) = self
            .store
            .holder(EMAIL_SCOPE, email.as_str())
            .await
            .map_err(ApiError::Internal)?
        else {
            return Ok(None);
        };
        let Ok(user_id) = holder.parse::<Uuid>() else {
            return Ok(None);
        };
        let user = self.users.load(user_id).await.map_err(user_error)?;
        Ok(user.is_registered().then_some(user))
    }

    /// The account `user_id`, which must exist.
    ///
    /// # Errors
    /// `UNAUTHENTICATED` when it does not.
    pub async fn load(&self, user_id: Uuid) -> Result<User, ApiError> {
        let user = self.users.load(user_id).await.map_err(user_error)?;
        if user.is_registered() {
            Ok(user)
        } else {
            Err(ApiError::Unauthenticated)
        }
    }

    async fn start_session(&self, user: &User) -> Result<TokenPair, ApiError> {
        let user_id = user.id().ok_or(ApiError::Unauthenticated)?;
        let now = self.clock.now();
        let (sid, jti) = (Uuid::new_v4(), Uuid::new_v4());
        let refresh = self
            .tokens
            .issue(TokenType::Refresh, user_id, sid, jti, None, now)
            .map_err(ApiError::Internal)?;
        sessions::start(
            &self.db,
            sid,
            user_id,
            jti,
            now,
            now + self.tokens.refresh_ttl(),
        )
        .await
        .map_err(ApiError::Internal)?;
        let access = self
            .tokens
            .issue(
                TokenType::Access,
                user_id,
                sid,
                Uuid::new_v4(),
                user.role(),
                now,
            )
            .map_err(ApiError::Internal)?;
        Ok(TokenPair { access, refresh })
    }

    /// Validates a bearer access token and its session.
    ///
    /// # Errors
    /// `UNAUTHENTICATED` for any invalid, expired, mistyped or revoked token.
    pub async fn authenticate(&self, token: &str) -> Result<Viewer, ApiError> {
        Ok(self.authenticate_for(token).await?.0)
    }

    /// [`Accounts::authenticate`], with how much longer the token stays valid (for
    /// connections that outlive a request: subscriptions end when it runs out).
    ///
    /// # Errors
    /// As [`Accounts::authenticate`].
    pub async fn authenticate_for(
        &self,
        token: &str,
    ) -> Result<(Viewer, std::time::Duration), ApiError> {
        let now = self.clock.now();
        let claims = self
            .tokens
            .decode(token, TokenType::Access, now)
            .map_err(|e| {
                tracing::debug!(reason = %e, "access token refused");
                ApiError::Unauthenticated
            })?;
        // A session known live costs no statement (see `live`).
        if let Err(epoch) = self.live.check(claims.sid, claims.sub) {
            metrics::counter!(METRIC_SESSION_CHECKS, "answer" => "asked").increment(1);
            if !sessions::is_live(&self.db, claims.sid, claims.sub)
                .await
                .map_err(ApiError::Internal)?
            {
                return Err(ApiError::Unauthenticated);
            }
            self.live.keep(claims.sid, claims.sub, epoch);
        } else {
            metrics::counter!(METRIC_SESSION_CHECKS, "answer" => "kept").increment(1);
        }
        let left = u64::try_from(claims.exp.saturating_sub(now.timestamp())).unwrap_or(0);
        Ok((
            Viewer {
                user_id: claims.sub,
                role: claims.role.unwrap_or_default(),
                session_id: claims.sid,
            },
            std::time::Duration::from_secs(left),
        ))
    }

    /// Creates a customer account, mails a verification link and signs in.
    ///
    /// # Errors
    /// `BAD_USER_INPUT`, `EMAIL_TAKEN`, `INTERNAL`.
    #[tracing::instrument(skip_all)]
    pub async fn register(&self, r: Registration) -> Result<SignedIn, ApiError> {
        let email =
            Email::parse(&r.email).map_err(|e| ApiError::bad_input("email", "email_invalid", e))?;
        Passwords::check_policy("password", &r.password)?;
        let first_name = PersonName::parse(&r.first_name)
            .map_err(|e| ApiError::bad_input("firstName", "name_invalid", e))?;
        let last_name = r
            .last_name
            .as_deref()
            .map(PersonName::parse)
            .transpose()
            .map_err(|e| ApiError::bad_input("lastName", "name_invalid", e))?;
        let (newsletter, language, currency) = r.preferences.parse()?;
        let defaults = Preferences::default();
        let preferences = Preferences {
            newsletter: newsletter.unwrap_or(defaults.newsletter),
            language: language.unwrap_or(defaults.language),
            currency: currency.unwrap_or(defaults.currency),
        };
        let password_hash = self.passwords.hash(r.password).await?;
        let user_id = Uuid::now_v7();
        let command = UserCommand::RegisterUser {
            user_id,
            email: email.clone(),
            password_hash,
            first_name,
            last_name,
            role: Role::Customer,
            preferences,
            at: self.clock.now(),
        };
        self.users
            .register(command, &self.metadata(user_id))
            .await
            .map_err(|e| match e {
                RegisterUserError::EmailTaken => ApiError::EmailTaken,
                RegisterUserError::Conflict(_) => ApiError::Conflict,
                RegisterUserError::Unexpected(e) => ApiError::Internal(e),
                e @ (RegisterUserError::Rejected(_) | RegisterUserError::NotARegistration) => {
                    ApiError::internal(e)
                }
            })?;
        if let Err(e) = self.send_verification(user_id, &email).await {
            tracing::error!(error = %format!("{e:#}"), "verification mail not sent");
        }
        let user = self.load(user_id).await?;
        let tokens = self.start_session(&user).await?;
        Ok(SignedIn { user, tokens })
    }

    async fn send_verification(&self, user_id: Uuid, email: &Email) -> anyhow::Result<()> {
        let (token, hash) = one_time::generate();
        let now = self.clock.now();
        let ttl = chrono::Duration::seconds(
            i64::try_from(self.settings.auth.email_verification_ttl_seconds)
                .unwrap_or(i64::MAX / 1000),
        );
        let mut tx = self.db.begin().await?;
        one_time::store(
            &mut tx.conn(),
            &hash,
            Purpose::VerifyEmail,
            user_id,
            email.as_str(),
            now,
            now + ttl,
        )
        .await?;
        tx.commit().await?;
        let base = self.settings.mail.link_base_url.trim_end_matches('/');
        self.mailer
            .send(Mail {
                to: email.to_string(),
                subject: "Verify your e-mail address".to_owned(),
                body: format!(
                    "Welcome to Emporium.\r\n\r\nConfirm your e-mail address by opening\r\n{base}/verify-email?token={token}\r\n\r\nor by entering this code:\r\nCode: {token}\r\n\r\nThe code expires in {} hours.\r\n",
                    self.settings.auth.email_verification_ttl_seconds / 3600
                ),
            })
            .await
    }

    /// Signs in. Limited per client address and per account before any password
    /// is verified; an unknown address costs one verification too (of a dummy hash).
    ///
    /// # Errors
    /// `RATE_LIMITED`, `INVALID_CREDENTIALS`, `INTERNAL`.
    #[tracing::instrument(skip_all)]
    pub async fn login(
        &self,
        email: &str,
        password: String,
        client: IpAddr,
    ) -> Result<SignedIn, ApiError> {
        let rate = &self.settings.limits.rate;
        self.limit(
            "login_ip",
            &client.to_string(),
            Quota::per_minute(rate.login_per_ip_per_minute),
            1,
        )
        .await?;
        let account_key = email.trim().to_ascii_lowercase();
        self.limit(
            "login_account",
            &account_key,
            Quota::per_minute(rate.login_per_account_per_minute),
            1,
        )
        .await?;
        if password.chars().count() > password::MAX_PASSWORD_CHARS {
            return Err(ApiError::InvalidCredentials);
        }
        let user = match Email::parse(email) {
            Ok(email) => self.find_by_email(&email).await?,
            Err(_) => None,
        };
        let user = user.filter(User::is_active);
        let verified = self
            .passwords
            .verify(password, user.as_ref().and_then(User::password_hash))
            .await?;
        let Some(user) = user.filter(|_| verified) else {
            metrics::counter!("emporium_auth_logins_total", "outcome" => "failed").increment(1);
            return Err(ApiError::InvalidCredentials);
        };
        metrics::counter!("emporium_auth_logins_total", "outcome" => "succeeded").increment(1);
        let tokens = self.start_session(&user).await?;
        Ok(SignedIn { user, tokens })
    }

    /// Exchanges a refresh token for a new pair. The presented token stops working;
    /// presenting it again revokes the whole session.
    ///
    /// # Errors
    /// `UNAUTHENTICATED`, `INTERNAL`.
    #[tracing::instrument(skip_all)]
    pub async fn refresh(&self, token: &str) -> Result<SignedIn, ApiError> {
        let now = self.clock.now();
        let claims = self
            .tokens
            .decode(token, TokenType::Refresh, now)
            .map_err(|e| {
                tracing::debug!(reason = %e, "refresh token refused");
                ApiError::Unauthenticated
            })?;
        let next = Uuid::new_v4();
        let rotation = sessions::rotate(
            &self.db,
            claims.sid,
            claims.jti,
            next,
            now,
            now + self.tokens.refresh_ttl(),
        )
        .await
        .map_err(ApiError::Internal)?;
        match rotation {
            Rotation::Rotated { user_id } if user_id == claims.sub => {}
            Rotation::Rotated { .. } | Rotation::Dead => return Err(ApiError::Unauthenticated),
            Rotation::Reused => {
                self.live.forget(Some(claims.sid));
                tracing::warn!(session = %claims.sid, user = %claims.sub, "refresh token reused; session revoked");
                metrics::counter!("emporium_auth_refresh_reuse_total").increment(1);
                return Err(ApiError::Unauthenticated);
            }
        }
        let user = self.load(claims.sub).await?;
        if !user.is_active() {
            sessions::revoke(&self.db, claims.sid, now, "user_deactivated")
                .await
                .map_err(ApiError::Internal)?;
            self.live.forget(Some(claims.sid));
            return Err(ApiError::Unauthenticated);
        }
        let refresh = self
            .tokens
            .issue(TokenType::Refresh, claims.sub, claims.sid, next, None, now)
            .map_err(ApiError::Internal)?;
        let access = self
            .tokens
            .issue(
                TokenType::Access,
                claims.sub,
                claims.sid,
                Uuid::new_v4(),
                user.role(),
                now,
            )
            .map_err(ApiError::Internal)?;
        Ok(SignedIn {
            user,
            tokens: TokenPair { access, refresh },
        })
    }

    /// Ends the viewer's session (or all of the user's sessions).
    ///
    /// # Errors
    /// `INTERNAL`.
    pub async fn logout(&self, viewer: &Viewer, everywhere: bool) -> Result<(), ApiError> {
        let now = self.clock.now();
        if everywhere {
            sessions::revoke_all(&self.db, viewer.user_id, None, now, "logout_everywhere")
                .await
                .map_err(ApiError::Internal)?;
            self.live.forget(None);
        } else {
            sessions::revoke(&self.db, viewer.session_id, now, "logout")
                .await
                .map_err(ApiError::Internal)?;
            self.live.forget(Some(viewer.session_id));
        }
        Ok(())
    }

    /// Marks the address verified with the mailed token (single use).
    ///
    /// # Errors
    /// `INVALID_TOKEN`, `INTERNAL`.
    #[tracing::instrument(skip_all)]
    pub async fn verify_email(&self, token: &str) -> Result<User, ApiError> {
        let now = self.clock.now();
        let mut tx = self.db.begin().await.map_err(ApiError::internal)?;
        let (user_id, email) = one_time::consume(
            &mut tx.conn(),
            &one_time::hash(token),
            Purpose::VerifyEmail,
            now,
        )
        .await
        .map_err(ApiError::Internal)?
        .ok_or(ApiError::InvalidToken)?;
        let email = Email::parse(&email).map_err(ApiError::internal)?;
        match self
            .users
            .execute(
                user_id,
                UserCommand::VerifyEmail { email, at: now },
                &self.metadata(user_id),
            )
            .await
        {
            Ok(_) => {}
            Err(CommandError::Rejected(_)) => return Err(ApiError::InvalidToken),
            Err(e) => return Err(user_error(e)),
        }
        tx.commit().await.map_err(ApiError::internal)?;
        self.load(user_id).await
    }

    /// Starts a password reset in the background and returns at once, so the
    /// answer and its timing are the same whether or not the account exists.
    pub fn request_password_reset(self: &Arc<Self>, email: &str) {
        let this = Arc::clone(self);
        let email = email.to_owned();
        tokio::spawn(async move {
            if let Err(e) = this.start_password_reset(&email).await {
                tracing::error!(error = %format!("{e:#}"), "password reset not started");
            }
        });
    }

    async fn start_password_reset(&self, email: &str) -> anyhow::Result<()> {
        let Ok(email) = Email::parse(email) else {
            return Ok(());
        };
        // Bound the mails one address can be sent.
        let rate = &self.settings.limits.rate;
        if self
            .limit(
                "password_reset",
                email.as_str(),
                Quota::per_minute(rate.login_per_account_per_minute),
                1,
            )
            .await
            .is_err()
        {
            return Ok(());
        }
        let Some(user) = self
            .find_by_email(&email)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?
        else {
            return Ok(());
        };
        let (Some(user_id), true) = (user.id(), user.is_active()) else {
            return Ok(());
        };
        let (token, hash) = one_time::generate();
        let now = self.clock.now();
        let ttl = self.settings.auth.password_reset_ttl_seconds;
        let expires_at = now + chrono::Duration::seconds(i64::try_from(ttl).unwrap_or(3600));
        let mut tx = self.db.begin().await?;
        one_time::store(
            &mut tx.conn(),
            &hash,
            Purpose::PasswordReset,
            user_id,
            email.as_str(),
            now,
            expires_at,
        )
        .await?;
        self.users
            .execute(
                user_id,
                UserCommand::RequestPasswordReset {
                    token_hash: ResetTokenHash::parse(&hash)?,
                    expires_at,
                    at: now,
                },
                &self.metadata(user_id),
            )
            .await?;
        tx.commit().await?;
        let base = self.settings.mail.link_base_url.trim_end_matches('/');
        self.mailer
            .send(Mail {
                to: email.to_string(),
                subject: "Reset your password".to_owned(),
                body: format!(
                    "Someone asked to reset the password of your Emporium account.\r\n\r\nTo choose a new password, open\r\n{base}/reset-password?token={token}\r\n\r\nor enter this code:\r\nCode: {token}\r\n\r\nThe code expires in {} minutes. If you did not ask, ignore this mail.\r\n",
                    ttl / 60
                ),
            })
            .await
    }

    /// Sets a new password with the mailed token (single use), signs every session
    /// out, and does not sign in.
    ///
    /// # Errors
    /// `BAD_USER_INPUT`, `INVALID_TOKEN`, `INTERNAL`.
    #[tracing::instrument(skip_all)]
    pub async fn confirm_password_reset(
        &self,
        token: &str,
        new_password: String,
    ) -> Result<(), ApiError> {
        Passwords::check_policy("newPassword", &new_password)?;
        let now = self.clock.now();
        let hash = one_time::hash(token);
        let mut tx = self.db.begin().await.map_err(ApiError::internal)?;
        let (user_id, _) = one_time::consume(&mut tx.conn(), &hash, Purpose::PasswordReset, now)
            .await
            .map_err(ApiError::Internal)?
            .ok_or(ApiError::InvalidToken)?;
        let new_password_hash = self.passwords.hash(new_password).await?;
        let command = UserCommand::ConfirmPasswordReset {
            token_hash: ResetTokenHash::parse(&hash).map_err(ApiError::internal)?,
            new_password_hash,
            at: now,
        };
        match self
            .users
            .execute(user_id, command, &self.metadata(user_id))
            .await
        {
            Ok(_) => {}
            Err(CommandError::Rejected(_)) => return Err(ApiError::InvalidToken),
            Err(e) => return Err(user_error(e)),
        }
        sessions::revoke_all_in(&mut tx.conn(), user_id, None, now, "password_reset")
            .await
            .map_err(ApiError::Internal)?;
        tx.commit().await.map_err(ApiError::internal)?;
        self.live.forget(None);
        Ok(())
    }

    /// Changes the viewer's password after checking the current one; signs out
    /// every other session.
    ///
    /// # Errors
    /// `BAD_USER_INPUT`, `RATE_LIMITED`, `INVALID_CREDENTIALS`, `INTERNAL`.
    #[tracing::instrument(skip_all)]
    pub async fn change_password(
        &self,
        viewer: &Viewer,
        current: String,
        new_password: String,
    ) -> Result<User, ApiError> {
        Passwords::check_policy("newPassword", &new_password)?;
        let user = self.load(viewer.user_id).await?;
        let email = user.email().map(ToString::to_string).unwrap_or_default();
        let rate = &self.settings.limits.rate;
        self.limit(
            "login_account",
            &email,
            Quota::per_minute(rate.login_per_account_per_minute),
            1,
        )
        .await?;
        if current.chars().count() > password::MAX_PASSWORD_CHARS
            || !self.passwords.verify(current, user.password_hash()).await?
        {
            return Err(ApiError::InvalidCredentials);
        }
        let new_password_hash = self.passwords.hash(new_password).await?;
        let now = self.clock.now();
        self.users
            .execute(
                viewer.user_id,
                UserCommand::ChangePassword {
                    new_password_hash,
                    at: now,
                },
                &self.metadata(viewer.user_id),
            )
            .await
            .map_err(user_error)?;
        sessions::revoke_all(
            &self.db,
            viewer.user_id,
            Some(viewer.session_id),
            now,
            "password_changed",
        )
        .await
        .map_err(ApiError::Internal)?;
        self.live.forget(None);
        self.load(viewer.user_id).await
    }

    /// Changes some of the viewer's preferences.
    ///
    /// # Errors
    /// `BAD_USER_INPUT`, `INTERNAL`.
    pub async fn update_preferences(
        &self,
        viewer: &Viewer,
        change: &PreferencesChange,
    ) -> Result<User, ApiError> {
        let (newsletter, language, currency) = change.parse()?;
        self.users
            .execute(
                viewer.user_id,
                UserCommand::UpdatePreferences {
                    newsletter,
                    language,
                    currency,
                    at: self.clock.now(),
                },
                &self.metadata(viewer.user_id),
            )
            .await
            .map_err(user_error)?;
        self.load(viewer.user_id).await
    }
}

/// Gives the account registered with `email` a role: an operator's action (`emporium
/// users set-role`), recorded with the actor `System("operator")`. Tokens issued from
/// now on carry the new role; access tokens already issued keep the old one until they
/// expire (at most one access-token lifetime). `store` is either mode's event store.
///
/// # Errors
/// `NOT_FOUND` when no account has the address; `INTERNAL` when the store fails.
pub async fn set_role(
    store: &AnyStore,
    email: &str,
    role: Role,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Uuid, ApiError> {
    let not_found = || ApiError::NotFound { what: "account" };
    let email = Email::parse(email).map_err(|_| not_found())?;
    let holder = store
        .holder(EMAIL_SCOPE, email.as_str())
        .await
        .map_err(ApiError::Internal)?
        .ok_or_else(not_found)?;
    let user_id = holder.parse::<Uuid>().map_err(|_| not_found())?;
    let users = Users::over(store.clone());
    let user = users.load(user_id).await.map_err(user_error)?;
    if !user.is_registered() {
        return Err(not_found());
    }
    let metadata = EventMetadata::new(Uuid::new_v4(), Actor::System("operator".to_owned()), now);
    users
        .execute(
            user_id,
            UserCommand::ChangeRole { role, at: now },
            &metadata,
        )
        .await
        .map_err(user_error)?;
    Ok(user_id)
}
