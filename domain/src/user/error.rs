//! Why the user aggregate refused a command.

use uuid::Uuid;

/// A broken user rule. Nothing is recorded for a refused command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// Any command but `RegisterUser` before the account exists.
    #[error("user is not registered")]
    NotRegistered,
    /// `RegisterUser` on an account that exists.
    #[error("user is already registered")]
    AlreadyRegistered,
    /// Any command but `ReactivateUser` on a deactivated account.
    #[error("user is deactivated")]
    Deactivated,
    /// `ReactivateUser` on an active account.
    #[error("user is not deactivated")]
    NotDeactivated,
    /// The verification link was for an address the account no longer has.
    #[error("email verification is for a different address than the account's")]
    EmailMismatch,
    /// A reset token that expires at or before the time of its request.
    #[error("password reset must expire after it is requested")]
    ResetExpiryNotInFuture,
    /// No reset was requested, or a password change voided it.
    #[error("no password reset is pending")]
    NoPendingPasswordReset,
    /// The presented token is not the one of the pending reset.
    #[error("password reset token does not match")]
    ResetTokenMismatch,
    /// The token was already used to reset the password.
    #[error("password reset token was already used")]
    ResetTokenAlreadyUsed,
    /// The token's expiry time has passed.
    #[error("password reset token has expired")]
    ResetTokenExpired,
    /// An address with this id is already in the address book.
    #[error("address {address_id} already exists")]
    AddressAlreadyExists {
        /// The id.
        address_id: Uuid,
    },
    /// No address with this id in the address book.
    #[error("address {address_id} not found")]
    AddressNotFound {
        /// The id.
        address_id: Uuid,
    },
    /// The address book is full.
    #[error("a user may have at most {max} addresses")]
    TooManyAddresses {
        /// The bound.
        max: usize,
    },
}
