//! What the user aggregate records.
//!
//! `UserRegistered` and `PasswordChanged` / `PasswordResetConfirmed` carry the
//! argon2id hash, because the event log is the only store of the credential. A
//! relay publishes `password_hash` and `token_hash` as null (they are `Sealed`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::values::{
    Email, PasswordHash, PersonName, PhoneNumber, Preferences, ResetTokenHash, Role,
};
use crate::{Address, DomainEvent, Sealed};

/// A fact about a user account.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, strum::IntoStaticStr,
)]
pub enum UserEvent {
    /// An account was created. Version 2.0; version 1.0 had a single `name` and no
    /// `preferences` and is upcast on read.
    UserRegistered {
        /// The account's id (the aggregate id).
        user_id: Uuid,
        /// Normalised e-mail address, unverified.
        email: Email,
        /// argon2id PHC string; sealed: published copies carry null.
        password_hash: Sealed<PasswordHash>,
        /// Given name.
        first_name: PersonName,
        /// Family name, absent for people with a single name.
        last_name: Option<PersonName>,
        /// Role granted.
        role: Role,
        /// Initial preferences.
        preferences: Preferences,
        /// When.
        registered_at: DateTime<Utc>,
    },
    /// The user proved they own their e-mail address.
    EmailVerified {
        /// The verified address.
        email: Email,
        /// When.
        verified_at: DateTime<Utc>,
    },
    /// The password was changed; any pending reset token is void.
    PasswordChanged {
        /// argon2id PHC string of the new password; sealed.
        password_hash: Sealed<PasswordHash>,
        /// When.
        changed_at: DateTime<Utc>,
    },
    /// A password reset was requested; it supersedes any earlier request.
    PasswordResetRequested {
        /// Hash of the mailed token; sealed.
        token_hash: Sealed<ResetTokenHash>,
        /// When the token stops being accepted.
        expires_at: DateTime<Utc>,
        /// When.
        requested_at: DateTime<Utc>,
    },
    /// A password reset was completed with a valid token, which is now used.
    PasswordResetConfirmed {
        /// argon2id PHC string of the new password; sealed.
        password_hash: Sealed<PasswordHash>,
        /// When.
        reset_at: DateTime<Utc>,
    },
    /// The profile was replaced.
    ProfileUpdated {
        /// Given name.
        first_name: PersonName,
        /// Family name, if any.
        last_name: Option<PersonName>,
        /// Contact phone, if any.
        phone: Option<PhoneNumber>,
        /// When.
        updated_at: DateTime<Utc>,
    },
    /// The preferences were replaced.
    PreferencesUpdated {
        /// The new preferences, whole.
        preferences: Preferences,
        /// When.
        updated_at: DateTime<Utc>,
    },
    /// An address was added to the address book.
    AddressAdded {
        /// Its id.
        address_id: Uuid,
        /// The address.
        address: Address,
        /// When.
        added_at: DateTime<Utc>,
    },
    /// An address was replaced.
    AddressUpdated {
        /// Its id.
        address_id: Uuid,
        /// Its new content.
        address: Address,
        /// When.
        updated_at: DateTime<Utc>,
    },
    /// An address was removed, and with it any default that pointed at it.
    AddressRemoved {
        /// Its id.
        address_id: Uuid,
        /// Whether it was the default shipping address (which is now unset).
        was_default_shipping: bool,
        /// Whether it was the default billing address (which is now unset).
        was_default_billing: bool,
        /// When.
        removed_at: DateTime<Utc>,
    },
    /// The default shipping address changed.
    DefaultShippingAddressSet {
        /// The address now used by default for shipping.
        address_id: Uuid,
        /// When.
        set_at: DateTime<Utc>,
    },
    /// The default billing address changed.
    DefaultBillingAddressSet {
        /// The address now used by default for billing.
        address_id: Uuid,
        /// When.
        set_at: DateTime<Utc>,
    },
    /// The user's role changed.
    RoleChanged {
        /// The role before.
        previous_role: Role,
        /// The role now.
        role: Role,
        /// When.
        changed_at: DateTime<Utc>,
    },
    /// The account was disabled.
    UserDeactivated {
        /// When.
        deactivated_at: DateTime<Utc>,
    },
    /// The account was re-enabled.
    UserReactivated {
        /// When.
        reactivated_at: DateTime<Utc>,
    },
}

impl DomainEvent for UserEvent {
    fn event_type(&self) -> &'static str {
        self.into()
    }

    fn event_version(&self) -> &'static str {
        match self {
            Self::UserRegistered { .. } => "2.0",
            _ => "1.0",
        }
    }
}
