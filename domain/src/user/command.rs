//! What a user aggregate can be asked to do.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::values::{
    Email, Language, PasswordHash, PersonName, PhoneNumber, Preferences, ResetTokenHash, Role,
};
use crate::{Address, Currency};

/// A request to the user aggregate. Every value is already validated; `at` is when the
/// command layer handled the request (the domain has no clock).
#[derive(Debug, Clone, PartialEq)]
pub enum UserCommand {
    /// Creates the account. The command layer has already reserved `email` for
    /// `user_id`, hashed the password and picked the role (customer for a sign-up).
    RegisterUser {
        /// The aggregate id, chosen by the command layer.
        user_id: Uuid,
        /// Normalised e-mail address, reserved for this user.
        email: Email,
        /// argon2id hash of the password.
        password_hash: PasswordHash,
        /// Given name.
        first_name: PersonName,
        /// Family name; `None` for people with a single name.
        last_name: Option<PersonName>,
        /// Role granted at registration.
        role: Role,
        /// Initial preferences ([`Preferences::default`] when the client sent none).
        preferences: Preferences,
        /// When.
        at: DateTime<Utc>,
    },
    /// Records that the owner of `email` followed the verification link. The command
    /// layer checks the link's token; the domain checks it was sent to the current
    /// address.
    VerifyEmail {
        /// The address the verification link was sent to.
        email: Email,
        /// When.
        at: DateTime<Utc>,
    },
    /// Replaces the password hash (the command layer verified the old password).
    ChangePassword {
        /// argon2id hash of the new password.
        new_password_hash: PasswordHash,
        /// When.
        at: DateTime<Utc>,
    },
    /// Starts a password reset. The command layer generated a random token, mailed it
    /// and passes only its hash; a new request supersedes any earlier one.
    RequestPasswordReset {
        /// Hash of the mailed token.
        token_hash: ResetTokenHash,
        /// When the token stops being accepted.
        expires_at: DateTime<Utc>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Completes a password reset with the token from the e-mail (hashed by the
    /// command layer with the same function as at request time).
    ConfirmPasswordReset {
        /// Hash of the token the user presented.
        token_hash: ResetTokenHash,
        /// argon2id hash of the new password.
        new_password_hash: PasswordHash,
        /// When.
        at: DateTime<Utc>,
    },
    /// Replaces the profile (names and phone).
    UpdateProfile {
        /// Given name.
        first_name: PersonName,
        /// Family name, if any.
        last_name: Option<PersonName>,
        /// Contact phone, if any.
        phone: Option<PhoneNumber>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Changes some preferences (a partial update: `None` keeps the current value).
    UpdatePreferences {
        /// Newsletter opt-in.
        newsletter: Option<bool>,
        /// Storefront language.
        language: Option<Language>,
        /// Display currency.
        currency: Option<Currency>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Adds an address to the address book.
    AddAddress {
        /// The address's id, chosen by the command layer (or the client, as an
        /// idempotency key).
        address_id: Uuid,
        /// The address.
        address: Address,
        /// When.
        at: DateTime<Utc>,
    },
    /// Replaces an address in the address book; defaults keep pointing at it.
    UpdateAddress {
        /// Which address.
        address_id: Uuid,
        /// Its new content.
        address: Address,
        /// When.
        at: DateTime<Utc>,
    },
    /// Removes an address; a default that pointed at it is cleared.
    RemoveAddress {
        /// Which address.
        address_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// Makes an address the default for shipping.
    SetDefaultShippingAddress {
        /// Which address.
        address_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// Makes an address the default for billing.
    SetDefaultBillingAddress {
        /// Which address.
        address_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// Grants a role (the gateway checks the caller is an admin).
    ChangeRole {
        /// The new role.
        role: Role,
        /// When.
        at: DateTime<Utc>,
    },
    /// Disables the account: every later command except [`UserCommand::ReactivateUser`]
    /// is refused.
    DeactivateUser {
        /// When.
        at: DateTime<Utc>,
    },
    /// Re-enables a deactivated account.
    ReactivateUser {
        /// When.
        at: DateTime<Utc>,
    },
}
