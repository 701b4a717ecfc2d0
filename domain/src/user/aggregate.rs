//! The user aggregate: decisions over one account's state.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::command::UserCommand;
use super::error::UserError;
use super::event::UserEvent;
use super::values::{
    Email, PasswordHash, PersonName, PhoneNumber, Preferences, ResetTokenHash, Role,
};
use crate::{Address, Aggregate, Sealed};

/// One user account. `Default` is the state before registration.
#[derive(Default, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct User {
    /// `None` until `UserRegistered`.
    account: Option<Account>,
}

/// A registered account's state.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Account {
    id: Uuid,
    email: Email,
    email_verified: bool,
    password_hash: Sealed<PasswordHash>,
    first_name: PersonName,
    last_name: Option<PersonName>,
    phone: Option<PhoneNumber>,
    role: Role,
    preferences: Preferences,
    addresses: BTreeMap<Uuid, Address>,
    default_shipping_address: Option<Uuid>,
    default_billing_address: Option<Uuid>,
    password_reset: Option<PasswordReset>,
    active: bool,
    registered_at: DateTime<Utc>,
}

/// The latest password-reset request.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct PasswordReset {
    token_hash: Sealed<ResetTokenHash>,
    expires_at: DateTime<Utc>,
    used: bool,
}

impl User {
    /// The most addresses one address book holds.
    pub const MAX_ADDRESSES: usize = 20;

    /// Whether the account exists.
    #[must_use]
    pub fn is_registered(&self) -> bool {
        self.account.is_some()
    }

    /// The account id, once registered.
    #[must_use]
    pub fn id(&self) -> Option<Uuid> {
        self.account.as_ref().map(|a| a.id)
    }

    /// The normalised e-mail address.
    #[must_use]
    pub fn email(&self) -> Option<&Email> {
        self.account.as_ref().map(|a| &a.email)
    }

    /// Whether the e-mail address was verified.
    #[must_use]
    pub fn is_email_verified(&self) -> bool {
        self.account.as_ref().is_some_and(|a| a.email_verified)
    }

    /// The current password hash, for the command layer's verifier.
    #[must_use]
    pub fn password_hash(&self) -> Option<&PasswordHash> {
        self.account.as_ref().and_then(|a| a.password_hash.value())
    }

    /// Given name.
    #[must_use]
    pub fn first_name(&self) -> Option<&PersonName> {
        self.account.as_ref().map(|a| &a.first_name)
    }

    /// Family name.
    #[must_use]
    pub fn last_name(&self) -> Option<&PersonName> {
        self.account.as_ref().and_then(|a| a.last_name.as_ref())
    }

    /// Contact phone.
    #[must_use]
    pub fn phone(&self) -> Option<&PhoneNumber> {
        self.account.as_ref().and_then(|a| a.phone.as_ref())
    }

    /// The role.
    #[must_use]
    pub fn role(&self) -> Option<Role> {
        self.account.as_ref().map(|a| a.role)
    }

    /// The preferences.
    #[must_use]
    pub fn preferences(&self) -> Option<&Preferences> {
        self.account.as_ref().map(|a| &a.preferences)
    }

    /// Whether the account exists and is not deactivated.
    #[must_use]
    pub fn is_active(&self) -> bool {
        self.account.as_ref().is_some_and(|a| a.active)
    }

    /// When the account was registered.
    #[must_use]
    pub fn registered_at(&self) -> Option<DateTime<Utc>> {
        self.account.as_ref().map(|a| a.registered_at)
    }

    /// The address book, by address id.
    pub fn addresses(&self) -> impl Iterator<Item = (Uuid, &Address)> + '_ {
        self.account
            .iter()
            .flat_map(|a| a.addresses.iter().map(|(id, address)| (*id, address)))
    }

    /// One address.
    #[must_use]
    pub fn address(&self, address_id: Uuid) -> Option<&Address> {
        self.account
            .as_ref()
            .and_then(|a| a.addresses.get(&address_id))
    }

    /// The default shipping address's id.
    #[must_use]
    pub fn default_shipping_address(&self) -> Option<Uuid> {
        self.account
            .as_ref()
            .and_then(|a| a.default_shipping_address)
    }

    /// The default billing address's id.
    #[must_use]
    pub fn default_billing_address(&self) -> Option<Uuid> {
        self.account
            .as_ref()
            .and_then(|a| a.default_billing_address)
    }
}

impl Aggregate for User {
    const TYPE: &'static str = "user";
    type Command = UserCommand;
    type Event = UserEvent;
    type Error = UserError;

    fn handle(&self, command: UserCommand) -> Result<Vec<UserEvent>, UserError> {
        match (&self.account, command) {
            (
                None,
                UserCommand::RegisterUser {
                    user_id,
                    email,
                    password_hash,
                    first_name,
                    last_name,
                    role,
                    preferences,
                    at,
                },
            ) => Ok(vec![UserEvent::UserRegistered {
                user_id,
                email,
                password_hash: password_hash.into(),
                first_name,
                last_name,
                role,
                preferences,
                registered_at: at,
            }]),
            (Some(_), UserCommand::RegisterUser { .. }) => Err(UserError::AlreadyRegistered),
            (None, _) => Err(UserError::NotRegistered),
            (Some(account), UserCommand::ReactivateUser { at }) => {
                if account.active {
                    Err(UserError::NotDeactivated)
                } else {
                    Ok(vec![UserEvent::UserReactivated { reactivated_at: at }])
                }
            }
            (Some(account), _) if !account.active => Err(UserError::Deactivated),
            (Some(account), command) => account.decide(command),
        }
    }

    fn apply(&mut self, event: &UserEvent) {
        if let UserEvent::UserRegistered {
            user_id,
            email,
            password_hash,
            first_name,
            last_name,
            role,
            preferences,
            registered_at,
        } = event
        {
            self.account = Some(Account {
                id: *user_id,
                email: email.clone(),
                email_verified: false,
                password_hash: password_hash.clone(),
                first_name: first_name.clone(),
                last_name: last_name.clone(),
                phone: None,
                role: *role,
                preferences: preferences.clone(),
                addresses: BTreeMap::new(),
                default_shipping_address: None,
                default_billing_address: None,
                password_reset: None,
                active: true,
                registered_at: *registered_at,
            });
        } else if let Some(account) = &mut self.account {
            account.evolve(event);
        }
        // Any other event before registration cannot have been emitted by `handle`;
        // an event is a fact, so it is ignored rather than failed on.
    }
}

impl Account {
    /// Decides a command for an active, registered account.
    fn decide(&self, command: UserCommand) -> Result<Vec<UserEvent>, UserError> {
        use UserCommand as C;
        use UserEvent as E;
        match command {
            C::RegisterUser { .. } => Err(UserError::AlreadyRegistered),
            C::ReactivateUser { .. } => Err(UserError::NotDeactivated),
            C::VerifyEmail { email, at } => {
                if email != self.email {
                    Err(UserError::EmailMismatch)
                } else if self.email_verified {
                    // Following the link twice is harmless.
                    Ok(vec![])
                } else {
                    Ok(vec![E::EmailVerified {
                        email,
                        verified_at: at,
                    }])
                }
            }
            C::ChangePassword {
                new_password_hash,
                at,
            } => Ok(vec![E::PasswordChanged {
                password_hash: new_password_hash.into(),
                changed_at: at,
            }]),
            C::RequestPasswordReset {
                token_hash,
                expires_at,
                at,
            } => {
                if expires_at <= at {
                    return Err(UserError::ResetExpiryNotInFuture);
                }
                Ok(vec![E::PasswordResetRequested {
                    token_hash: token_hash.into(),
                    expires_at,
                    requested_at: at,
                }])
            }
            C::ConfirmPasswordReset {
                token_hash,
                new_password_hash,
                at,
            } => {
                let reset = self
                    .password_reset
                    .as_ref()
                    .ok_or(UserError::NoPendingPasswordReset)?;
                // The token is checked first, so a wrong guess learns nothing about
                // whether the real token is used or expired.
                if !reset
                    .token_hash
                    .value()
                    .is_some_and(|h| h.matches(&token_hash))
                {
                    return Err(UserError::ResetTokenMismatch);
                }
                if reset.used {
                    return Err(UserError::ResetTokenAlreadyUsed);
                }
                if at >= reset.expires_at {
                    return Err(UserError::ResetTokenExpired);
                }
                Ok(vec![E::PasswordResetConfirmed {
                    password_hash: new_password_hash.into(),
                    reset_at: at,
                }])
            }
            C::UpdateProfile {
                first_name,
                last_name,
                phone,
                at,
            } => {
                if first_name == self.first_name
                    && last_name == self.last_name
                    && phone == self.phone
                {
                    return Ok(vec![]);
                }
                Ok(vec![E::ProfileUpdated {
                    first_name,
                    last_name,
                    phone,
                    updated_at: at,
                }])
            }
            C::UpdatePreferences {
                newsletter,
                language,
                currency,
                at,
            } => {
                let current = &self.preferences;
                let preferences = Preferences {
                    newsletter: newsletter.unwrap_or(current.newsletter),
                    language: language.unwrap_or_else(|| current.language.clone()),
                    currency: currency.unwrap_or(current.currency),
                };
                if &preferences == current {
                    return Ok(vec![]);
                }
                Ok(vec![E::PreferencesUpdated {
                    preferences,
                    updated_at: at,
                }])
            }
            C::AddAddress {
                address_id,
                address,
                at,
            } => {
                if self.addresses.contains_key(&address_id) {
                    return Err(UserError::AddressAlreadyExists { address_id });
                }
                if self.addresses.len() >= User::MAX_ADDRESSES {
                    return Err(UserError::TooManyAddresses {
                        max: User::MAX_ADDRESSES,
                    });
                }
                Ok(vec![E::AddressAdded {
                    address_id,
                    address,
                    added_at: at,
                }])
            }
            C::UpdateAddress {
                address_id,
                address,
                at,
            } => {
                if self.existing_address(address_id)? == &address {
                    return Ok(vec![]);
                }
                Ok(vec![E::AddressUpdated {
                    address_id,
                    address,
                    updated_at: at,
                }])
            }
            C::RemoveAddress { address_id, at } => {
                self.existing_address(address_id)?;
                Ok(vec![E::AddressRemoved {
                    address_id,
                    was_default_shipping: self.default_shipping_address == Some(address_id),
                    was_default_billing: self.default_billing_address == Some(address_id),
                    removed_at: at,
                }])
            }
            C::SetDefaultShippingAddress { address_id, at } => {
                self.existing_address(address_id)?;
                if self.default_shipping_address == Some(address_id) {
                    return Ok(vec![]);
                }
                Ok(vec![E::DefaultShippingAddressSet {
                    address_id,
                    set_at: at,
                }])
            }
            C::SetDefaultBillingAddress { address_id, at } => {
                self.existing_address(address_id)?;
                if self.default_billing_address == Some(address_id) {
                    return Ok(vec![]);
                }
                Ok(vec![E::DefaultBillingAddressSet {
                    address_id,
                    set_at: at,
                }])
            }
            C::ChangeRole { role, at } => {
                if role == self.role {
                    return Ok(vec![]);
                }
                Ok(vec![E::RoleChanged {
                    previous_role: self.role,
                    role,
                    changed_at: at,
                }])
            }
            C::DeactivateUser { at } => Ok(vec![E::UserDeactivated { deactivated_at: at }]),
        }
    }

    fn existing_address(&self, address_id: Uuid) -> Result<&Address, UserError> {
        self.addresses
            .get(&address_id)
            .ok_or(UserError::AddressNotFound { address_id })
    }

    /// Folds every event but `UserRegistered` into the account.
    fn evolve(&mut self, event: &UserEvent) {
        match event {
            // Registration is folded by `User::apply`; a second one cannot be emitted.
            UserEvent::UserRegistered { .. } => {}
            UserEvent::EmailVerified { email, .. } => {
                if *email == self.email {
                    self.email_verified = true;
                }
            }
            UserEvent::PasswordChanged { password_hash, .. } => {
                self.password_hash = password_hash.clone();
                // A new password voids any reset link still in a mailbox.
                self.password_reset = None;
            }
            UserEvent::PasswordResetRequested {
                token_hash,
                expires_at,
                ..
            } => {
                self.password_reset = Some(PasswordReset {
                    token_hash: token_hash.clone(),
                    expires_at: *expires_at,
                    used: false,
                });
            }
            UserEvent::PasswordResetConfirmed { password_hash, .. } => {
                self.password_hash = password_hash.clone();
                if let Some(reset) = &mut self.password_reset {
                    reset.used = true;
                }
            }
            UserEvent::ProfileUpdated {
                first_name,
                last_name,
                phone,
                ..
            } => {
                self.first_name = first_name.clone();
                self.last_name = last_name.clone();
                self.phone = phone.clone();
            }
            UserEvent::PreferencesUpdated { preferences, .. } => {
                self.preferences = preferences.clone();
            }
            UserEvent::AddressAdded {
                address_id,
                address,
                ..
            }
            | UserEvent::AddressUpdated {
                address_id,
                address,
                ..
            } => {
                self.addresses.insert(*address_id, address.clone());
            }
            UserEvent::AddressRemoved { address_id, .. } => {
                self.addresses.remove(address_id);
                if self.default_shipping_address == Some(*address_id) {
                    self.default_shipping_address = None;
                }
                if self.default_billing_address == Some(*address_id) {
                    self.default_billing_address = None;
                }
            }
            UserEvent::DefaultShippingAddressSet { address_id, .. } => {
                self.default_shipping_address = Some(*address_id);
            }
            UserEvent::DefaultBillingAddressSet { address_id, .. } => {
                self.default_billing_address = Some(*address_id);
            }
            UserEvent::RoleChanged { role, .. } => self.role = *role,
            UserEvent::UserDeactivated { .. } => {
                self.active = false;
                // A reset link must not outlive the deactivation that it predates.
                self.password_reset = None;
            }
            UserEvent::UserReactivated { .. } => self.active = true,
        }
    }
}
