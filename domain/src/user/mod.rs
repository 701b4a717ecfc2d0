//! The user aggregate: one customer, staff or admin account.
//!
//! **Aggregate id:** the user id, a UUID chosen by the command layer and carried in
//! `RegisterUser` (the command layer routes that command to the aggregate of the same
//! id; the domain cannot check the routing).
//!
//! What the domain enforces: the account lifecycle (nothing before registration, no
//! second registration, nothing but reactivation while deactivated), normalised and
//! well-formed values (e-mail, argon2id hash shape, names, phone, language), the
//! password-reset token rules (matching hash, single use, not expired at the command's
//! time), the address book (at most [`User::MAX_ADDRESSES`], defaults always point at
//! an existing address, removing a default clears it).
//!
//! What it cannot enforce alone, and who does:
//! - **E-mail uniqueness across users**: the command layer claims the normalised
//!   [`Email`] in its unique-keys table before `RegisterUser` commits (an orphaned
//!   claim, whose user never came to exist, is taken over); the domain only
//!   normalises.
//! - **Hashing and verifying** passwords and reset tokens: the command layer (argon2id
//!   for passwords, a digest for the mailed token), which passes hashes in.
//! - **Who may do what** (only admins change roles or reactivate, a user edits only
//!   their own profile): the gateway's authorisation.
//! - **Time**: every command carries `at`; the domain has no clock.
//!
//! Commands that would change nothing (setting the current default, the same role,
//! the same profile, verifying an already verified address) are accepted with no
//! events, so retrying them is safe.
//!
//! The event log holds the password hash: whoever publishes these events outside the
//! platform must drop `password_hash` and `token_hash`.

mod aggregate;
mod command;
mod error;
mod event;
mod upcast;
mod values;

#[cfg(test)]
mod tests;

pub use aggregate::User;
pub use command::UserCommand;
pub use error::UserError;
pub use event::UserEvent;
pub use values::{
    Email, EmailError, Language, LanguageError, PasswordHash, PasswordHashError, PersonName,
    PersonNameError, PhoneNumber, PhoneNumberError, Preferences, ResetTokenHash,
    ResetTokenHashError, Role,
};

use crate::Aggregate;
use crate::schema::Upcaster;

/// The JSON Schema of [`UserEvent`], for `schemas/events/user.json`.
pub(crate) fn event_schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![(User::TYPE, schemars::schema_for!(UserEvent))]
}

/// `UserRegistered` 1.0 (single `name`, no preferences) -> 2.0.
pub(crate) fn upcasters() -> Vec<Upcaster> {
    vec![Upcaster {
        aggregate_type: User::TYPE,
        event_type: "UserRegistered",
        from_version: "1.0",
        to_version: "2.0",
        upcast: upcast::user_registered_v1_to_v2,
    }]
}
