//! `me` and the account mutations.
//!
//! Input types carry only what a customer may set: no role, status or owner.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use emporium_domain::user::{Role, User};

use super::ContextExt;
use crate::auth::{PreferencesChange, Registration, SignedIn};
use crate::error::ApiError;

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(name = "Role")]
pub(crate) enum RoleKind {
    /// Buys things.
    Customer,
    /// Runs the shop.
    Staff,
    /// Staff plus users and settings.
    Admin,
}

impl From<Role> for RoleKind {
    fn from(role: Role) -> Self {
        match role {
            Role::Customer => Self::Customer,
            Role::Staff => Self::Staff,
            Role::Admin => Self::Admin,
        }
    }
}

/// Communication and display choices.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "Preferences")]
pub(crate) struct PreferencesView {
    /// Newsletter opt-in.
    newsletter: bool,
    /// BCP 47 language tag.
    language: String,
    /// ISO 4217 display currency.
    currency: String,
}

/// An account, as its owner sees it.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "User")]
pub(crate) struct UserView {
    /// The user id.
    id: ID,
    /// The e-mail address (normalised).
    email: String,
    /// Whether the address was verified.
    email_verified: bool,
    /// Given name.
    first_name: String,
    /// Family name.
    last_name: Option<String>,
    /// Contact phone.
    phone: Option<String>,
    /// Role.
    role: RoleKind,
    /// Preferences.
    preferences: PreferencesView,
    /// When the account was created.
    registered_at: DateTime<Utc>,
}

impl TryFrom<&User> for UserView {
    type Error = ApiError;

    fn try_from(user: &User) -> Result<Self, ApiError> {
        let missing = || ApiError::internal(anyhow::anyhow!("account state incomplete"));
        let preferences = user.preferences().ok_or_else(missing)?;
        Ok(Self {
            id: ID(user.id().ok_or_else(missing)?.to_string()),
            email: user.email().ok_or_else(missing)?.to_string(),
            email_verified: user.is_email_verified(),
            first_name: user.first_name().ok_or_else(missing)?.to_string(),
            last_name: user.last_name().map(ToString::to_string),
            phone: user.phone().map(|p| p.as_str().to_owned()),
            role: user.role().ok_or_else(missing)?.into(),
            preferences: PreferencesView {
                newsletter: preferences.newsletter,
                language: preferences.language.as_str().to_owned(),
                currency: preferences.currency.code().to_owned(),
            },
            registered_at: user.registered_at().ok_or_else(missing)?,
        })
    }
}

/// Tokens of a new session, and its account.
#[derive(SimpleObject)]
pub(crate) struct AuthPayload {
    /// Bearer token for the `Authorization` header.
    access_token: String,
    /// Exchanges once for a new pair through `refreshToken`.
    refresh_token: String,
    /// Always `Bearer`.
    token_type: String,
    /// Seconds until the access token expires.
    expires_in: i64,
    /// Seconds until the refresh token expires.
    refresh_expires_in: i64,
    /// The account.
    user: UserView,
}

impl std::fmt::Debug for AuthPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthPayload")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl TryFrom<SignedIn> for AuthPayload {
    type Error = ApiError;

    fn try_from(s: SignedIn) -> Result<Self, ApiError> {
        let access = s.tokens.access.claims.exp - s.tokens.access.claims.iat;
        let refresh = s.tokens.refresh.claims.exp - s.tokens.refresh.claims.iat;
        Ok(Self {
            access_token: s.tokens.access.token,
            refresh_token: s.tokens.refresh.token,
            token_type: "Bearer".to_owned(),
            expires_in: access,
            refresh_expires_in: refresh,
            user: UserView::try_from(&s.user)?,
        })
    }
}

/// Preferences to change; omitted fields keep their value.
#[derive(Debug, Clone, Default, InputObject)]
pub(crate) struct PreferencesInput {
    /// Newsletter opt-in.
    newsletter: Option<bool>,
    /// BCP 47 language tag (`en`, `pt-BR`).
    language: Option<String>,
    /// ISO 4217 currency code (`EUR`).
    currency: Option<String>,
}

impl From<PreferencesInput> for PreferencesChange {
    fn from(p: PreferencesInput) -> Self {
        Self {
            newsletter: p.newsletter,
            language: p.language,
            currency: p.currency,
        }
    }
}

/// A new customer account.
#[derive(Clone, InputObject)]
pub(crate) struct RegisterInput {
    /// E-mail address; a verification link is mailed to it.
    email: String,
    /// 8 to 128 characters.
    password: String,
    /// Given name.
    first_name: String,
    /// Family name.
    last_name: Option<String>,
    /// Initial preferences.
    preferences: Option<PreferencesInput>,
}

impl std::fmt::Debug for RegisterInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterInput")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// Credentials.
#[derive(Clone, InputObject)]
pub(crate) struct LoginInput {
    /// E-mail address.
    email: String,
    /// Password.
    password: String,
}

impl std::fmt::Debug for LoginInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginInput")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// Account queries.
#[derive(Debug, Default)]
pub(crate) struct AccountQuery;

#[Object]
impl AccountQuery {
    /// The signed-in user's account.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<UserView> {
        let viewer = ctx.viewer()?;
        let user = ctx.accounts()?.load(viewer.user_id).await?;
        Ok(UserView::try_from(&user)?)
    }
}

/// Account mutations.
#[derive(Debug, Default)]
pub(crate) struct AccountMutation;

#[Object]
impl AccountMutation {
    /// Creates a customer account, mails a verification link, and signs in.
    #[graphql(complexity = 100)]
    async fn register(
        &self,
        ctx: &Context<'_>,
        input: RegisterInput,
    ) -> async_graphql::Result<AuthPayload> {
        let signed_in = ctx
            .accounts()?
            .register(Registration {
                email: input.email,
                password: input.password,
                first_name: input.first_name,
                last_name: input.last_name,
                preferences: input.preferences.unwrap_or_default().into(),
            })
            .await?;
        Ok(AuthPayload::try_from(signed_in)?)
    }

    /// Signs in (5 attempts a minute per account and per address).
    #[graphql(complexity = 100)]
    async fn login(
        &self,
        ctx: &Context<'_>,
        input: LoginInput,
    ) -> async_graphql::Result<AuthPayload> {
        let client = ctx.request_context()?.client_ip;
        let signed_in = ctx
            .accounts()?
            .login(&input.email, input.password, client)
            .await?;
        Ok(AuthPayload::try_from(signed_in)?)
    }

    /// Exchanges a refresh token for a new pair. Each refresh token works once;
    /// presenting a used one signs the whole session out.
    async fn refresh_token(
        &self,
        ctx: &Context<'_>,
        refresh_token: String,
    ) -> async_graphql::Result<AuthPayload> {
        let signed_in = ctx.accounts()?.refresh(&refresh_token).await?;
        Ok(AuthPayload::try_from(signed_in)?)
    }

    /// Ends this session (its access and refresh tokens stop working), or every
    /// session of the account with `everywhere: true`.
    async fn logout(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false)] everywhere: bool,
    ) -> async_graphql::Result<bool> {
        let viewer = *ctx.viewer()?;
        ctx.accounts()?.logout(&viewer, everywhere).await?;
        Ok(true)
    }

    /// Verifies the e-mail address with the mailed code.
    async fn verify_email(
        &self,
        ctx: &Context<'_>,
        token: String,
    ) -> async_graphql::Result<UserView> {
        let user = ctx.accounts()?.verify_email(&token).await?;
        Ok(UserView::try_from(&user)?)
    }

    /// Mails a reset code when an account has this address. Answers `true` either
    /// way, at once.
    async fn request_password_reset(
        &self,
        ctx: &Context<'_>,
        email: String,
    ) -> async_graphql::Result<bool> {
        ctx.accounts()?.request_password_reset(&email);
        Ok(true)
    }

    /// Sets a new password with the mailed code. Every session is signed out; this
    /// does not sign in.
    #[graphql(complexity = 100)]
    async fn confirm_password_reset(
        &self,
        ctx: &Context<'_>,
        token: String,
        new_password: String,
    ) -> async_graphql::Result<bool> {
        ctx.accounts()?
            .confirm_password_reset(&token, new_password)
            .await?;
        Ok(true)
    }

    /// Changes the password; every other session is signed out.
    #[graphql(complexity = 100)]
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        current_password: String,
        new_password: String,
    ) -> async_graphql::Result<UserView> {
        let viewer = *ctx.viewer()?;
        let user = ctx
            .accounts()?
            .change_password(&viewer, current_password, new_password)
            .await?;
        Ok(UserView::try_from(&user)?)
    }

    /// Changes some preferences.
    async fn update_preferences(
        &self,
        ctx: &Context<'_>,
        input: PreferencesInput,
    ) -> async_graphql::Result<UserView> {
        let viewer = *ctx.viewer()?;
        let user = ctx
            .accounts()?
            .update_preferences(&viewer, &input.into())
            .await?;
        Ok(UserView::try_from(&user)?)
    }
}
