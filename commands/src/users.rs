//! User accounts: registration with a unique e-mail, then plain dispatch.

use emporium_domain::EventMetadata;
use emporium_domain::user::{User, UserCommand, UserError};
use sqlx::PgPool;
use uuid::Uuid;

use crate::dispatch::{CommandError, Committed, Dispatcher, Loading};
use crate::reservations::Claim;
use crate::store::{EventStore, KeyLookup, PendingClaim, PgStore};

/// The unique-keys scope of e-mail addresses.
pub const EMAIL_SCOPE: &str = "user_email";

/// Where committed events name an account's e-mail address.
pub const EMAIL_LOOKUP: KeyLookup = KeyLookup {
    aggregate_type: "user",
    fields: &[("UserRegistered", "email")],
};

/// Why a registration failed. Nothing is recorded for any of them.
#[derive(Debug, thiserror::Error)]
pub enum RegisterUserError {
    /// Another account holds the e-mail address.
    #[error("an account with this e-mail address already exists")]
    EmailTaken,
    /// The command is not a `RegisterUser`.
    #[error("expected a RegisterUser command")]
    NotARegistration,
    /// The user aggregate refused.
    #[error(transparent)]
    Rejected(#[from] UserError),
    /// The same user id was registered concurrently.
    #[error("user {0} was registered concurrently")]
    Conflict(Uuid),
    /// Infrastructure failed.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Commands to user accounts.
#[derive(Debug)]
pub struct Users<S: EventStore = PgStore> {
    dispatcher: Dispatcher<User, S>,
    store: S,
}

impl Users {
    /// Users over the PostgreSQL event store in `pool`.
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        Self::over(PgStore::new(pool))
    }
}

impl<S: EventStore> Users<S> {
    /// Users over `store`.
    #[must_use]
    pub fn over(store: S) -> Self {
        Self {
            dispatcher: Dispatcher::over(store.clone(), Loading::Replay),
            store,
        }
    }

    /// Registers an account: claims its normalised e-mail around recording
    /// `UserRegistered`, so the claim commits only with the account, and a refused
    /// registration leaves the address free.
    ///
    /// # Errors
    /// [`RegisterUserError`]; `EmailTaken` when another account holds the address.
    #[tracing::instrument(skip_all)]
    pub async fn register(
        &self,
        command: UserCommand,
        metadata: &EventMetadata,
    ) -> Result<Committed, RegisterUserError> {
        let UserCommand::RegisterUser { user_id, email, .. } = &command else {
            return Err(RegisterUserError::NotARegistration);
        };
        let (user_id, email) = (user_id.to_string(), email.as_str().to_owned());
        let Claim::Pending { mut pending, .. } =
            self.store.claim(EMAIL_SCOPE, &email, &user_id).await?
        else {
            return Err(RegisterUserError::EmailTaken);
        };
        // An account whose registration committed while its claim did not (the
        // process died in between) still owns the address.
        if pending
            .introduced_elsewhere(&EMAIL_LOOKUP, &email, &user_id)
            .await?
        {
            pending.abandon().await?;
            return Err(RegisterUserError::EmailTaken);
        }
        match self.dispatcher.execute(&user_id, command, metadata).await {
            Ok(committed) => {
                pending.confirm().await?;
                Ok(committed)
            }
            Err(e) => {
                pending.abandon().await?;
                Err(match e {
                    CommandError::Rejected(e) => RegisterUserError::Rejected(e),
                    CommandError::Conflict { .. } => {
                        RegisterUserError::Conflict(user_id.parse().unwrap_or_default())
                    }
                    CommandError::Unexpected(e) => RegisterUserError::Unexpected(e),
                })
            }
        }
    }

    /// Any other command to an existing account.
    ///
    /// # Errors
    /// [`CommandError`].
    pub async fn execute(
        &self,
        user_id: Uuid,
        command: UserCommand,
        metadata: &EventMetadata,
    ) -> Result<Committed, CommandError<UserError>> {
        self.dispatcher
            .execute(&user_id.to_string(), command, metadata)
            .await
    }

    /// The account's current state.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn load(&self, user_id: Uuid) -> Result<User, CommandError<UserError>> {
        self.dispatcher.load(&user_id.to_string()).await
    }
}
