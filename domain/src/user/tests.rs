//! Given/when/then for every user command, the upcaster, and proptest invariants.

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::testing::{given, given_no_history};
use crate::{Address, AddressInput, Currency, DomainEvent};

fn t(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000 + seconds, 0).expect("valid timestamp")
}

fn user_id() -> Uuid {
    Uuid::from_u128(0xA11CE)
}

fn addr_id(n: u128) -> Uuid {
    Uuid::from_u128(0xADD0_0000 + n)
}

fn email() -> Email {
    Email::parse("ada@example.org").unwrap()
}

fn hash(salt: &str) -> PasswordHash {
    PasswordHash::parse(&format!(
        "$argon2id$v=19$m=19456,t=2,p=1${salt}$RdescudvJCsgt3ub+b+dWRWJTmaaJObG"
    ))
    .unwrap()
}

fn token(digit: char) -> ResetTokenHash {
    ResetTokenHash::parse(&digit.to_string().repeat(64)).unwrap()
}

fn name(s: &str) -> PersonName {
    PersonName::parse(s).unwrap()
}

fn address(city: &str) -> Address {
    Address::parse(AddressInput {
        full_name: "Ada Lovelace".into(),
        line1: "12 St James's Square".into(),
        city: city.into(),
        postal_code: "SW1Y 4JH".into(),
        country: "GB".into(),
        ..AddressInput::default()
    })
    .unwrap()
}

fn registered() -> UserEvent {
    UserEvent::UserRegistered {
        user_id: user_id(),
        email: email(),
        password_hash: hash("c2FsdDE").into(),
        first_name: name("Ada"),
        last_name: Some(name("Lovelace")),
        role: Role::Customer,
        preferences: Preferences::default(),
        registered_at: t(0),
    }
}

fn address_added(n: u128, city: &str) -> UserEvent {
    UserEvent::AddressAdded {
        address_id: addr_id(n),
        address: address(city),
        added_at: t(1),
    }
}

fn reset_requested(digit: char, expires_at: DateTime<Utc>) -> UserEvent {
    UserEvent::PasswordResetRequested {
        token_hash: token(digit).into(),
        expires_at,
        requested_at: t(10),
    }
}

fn register_command() -> UserCommand {
    UserCommand::RegisterUser {
        user_id: user_id(),
        email: email(),
        password_hash: hash("c2FsdDE"),
        first_name: name("Ada"),
        last_name: Some(name("Lovelace")),
        role: Role::Customer,
        preferences: Preferences::default(),
        at: t(0),
    }
}

/// One of every command but `RegisterUser`, each valid against a registered user with
/// address 1 and a pending reset for token `a`.
fn every_other_command() -> Vec<UserCommand> {
    vec![
        UserCommand::VerifyEmail {
            email: email(),
            at: t(20),
        },
        UserCommand::ChangePassword {
            new_password_hash: hash("c2FsdDI"),
            at: t(20),
        },
        UserCommand::RequestPasswordReset {
            token_hash: token('b'),
            expires_at: t(99),
            at: t(20),
        },
        UserCommand::ConfirmPasswordReset {
            token_hash: token('a'),
            new_password_hash: hash("c2FsdDI"),
            at: t(20),
        },
        UserCommand::UpdateProfile {
            first_name: name("Augusta"),
            last_name: None,
            phone: None,
            at: t(20),
        },
        UserCommand::UpdatePreferences {
            newsletter: Some(true),
            language: None,
            currency: None,
            at: t(20),
        },
        UserCommand::AddAddress {
            address_id: addr_id(2),
            address: address("Paris"),
            at: t(20),
        },
        UserCommand::UpdateAddress {
            address_id: addr_id(1),
            address: address("Paris"),
            at: t(20),
        },
        UserCommand::RemoveAddress {
            address_id: addr_id(1),
            at: t(20),
        },
        UserCommand::SetDefaultShippingAddress {
            address_id: addr_id(1),
            at: t(20),
        },
        UserCommand::SetDefaultBillingAddress {
            address_id: addr_id(1),
            at: t(20),
        },
        UserCommand::ChangeRole {
            role: Role::Staff,
            at: t(20),
        },
        UserCommand::DeactivateUser { at: t(20) },
        UserCommand::ReactivateUser { at: t(20) },
    ]
}

// --- registration and lifecycle ---

#[test]
fn register_user_is_accepted_from_no_history() {
    given_no_history::<User>()
        .when(register_command())
        .then_expect_events([registered()]);
}

#[test]
fn registration_sets_the_state() {
    let (_, user) = given_no_history::<User>()
        .when(register_command())
        .then_state();
    assert_eq!(user.id(), Some(user_id()));
    assert_eq!(user.email(), Some(&email()));
    assert!(!user.is_email_verified());
    assert!(user.is_active());
    assert_eq!(user.role(), Some(Role::Customer));
    assert_eq!(user.first_name().map(PersonName::as_str), Some("Ada"));
    assert_eq!(user.registered_at(), Some(t(0)));
    assert_eq!(user.preferences(), Some(&Preferences::default()));
}

#[test]
fn registering_twice_is_refused() {
    let err = given::<User>([registered()])
        .when(register_command())
        .then_expect_error();
    assert_eq!(err, UserError::AlreadyRegistered);
}

#[test]
fn every_command_before_registration_is_refused() {
    for command in every_other_command() {
        let err = given_no_history::<User>()
            .when(command.clone())
            .then_expect_error();
        assert_eq!(err, UserError::NotRegistered, "{command:?}");
    }
}

#[test]
fn deactivate_user_is_accepted() {
    given::<User>([registered()])
        .when(UserCommand::DeactivateUser { at: t(5) })
        .then_expect_events([UserEvent::UserDeactivated {
            deactivated_at: t(5),
        }]);
}

#[test]
fn a_deactivated_user_refuses_everything_but_reactivation() {
    let history = [
        registered(),
        address_added(1, "London"),
        reset_requested('a', t(99)),
        UserEvent::UserDeactivated {
            deactivated_at: t(15),
        },
    ];
    for command in every_other_command() {
        let reactivation = matches!(command, UserCommand::ReactivateUser { .. });
        let then = given::<User>(history.clone()).when(command.clone());
        if reactivation {
            then.then_expect_events([UserEvent::UserReactivated {
                reactivated_at: t(20),
            }]);
        } else {
            assert_eq!(
                then.then_expect_error(),
                UserError::Deactivated,
                "{command:?}"
            );
        }
    }
    let err = given::<User>(history)
        .when(register_command())
        .then_expect_error();
    assert_eq!(err, UserError::AlreadyRegistered);
}

#[test]
fn reactivating_an_active_user_is_refused() {
    let err = given::<User>([registered()])
        .when(UserCommand::ReactivateUser { at: t(5) })
        .then_expect_error();
    assert_eq!(err, UserError::NotDeactivated);
}

#[test]
fn reactivation_restores_an_active_account_without_the_old_reset_link() {
    let (_, user) = given::<User>([
        registered(),
        reset_requested('a', t(99)),
        UserEvent::UserDeactivated {
            deactivated_at: t(15),
        },
    ])
    .when(UserCommand::ReactivateUser { at: t(16) })
    .then_state();
    assert!(user.is_active());
    let err = given::<User>([
        registered(),
        reset_requested('a', t(99)),
        UserEvent::UserDeactivated {
            deactivated_at: t(15),
        },
        UserEvent::UserReactivated {
            reactivated_at: t(16),
        },
    ])
    .when(UserCommand::ConfirmPasswordReset {
        token_hash: token('a'),
        new_password_hash: hash("c2FsdDI"),
        at: t(20),
    })
    .then_expect_error();
    assert_eq!(err, UserError::NoPendingPasswordReset);
}

// --- e-mail verification ---

#[test]
fn verify_email_is_accepted_for_the_current_address() {
    given::<User>([registered()])
        .when(UserCommand::VerifyEmail {
            email: email(),
            at: t(3),
        })
        .then_expect_events([UserEvent::EmailVerified {
            email: email(),
            verified_at: t(3),
        }]);
    let (_, user) = given::<User>([registered()])
        .when(UserCommand::VerifyEmail {
            email: email(),
            at: t(3),
        })
        .then_state();
    assert!(user.is_email_verified());
}

#[test]
fn verifying_another_address_is_refused() {
    let err = given::<User>([registered()])
        .when(UserCommand::VerifyEmail {
            email: Email::parse("eve@example.org").unwrap(),
            at: t(3),
        })
        .then_expect_error();
    assert_eq!(err, UserError::EmailMismatch);
}

#[test]
fn verifying_twice_records_nothing() {
    given::<User>([
        registered(),
        UserEvent::EmailVerified {
            email: email(),
            verified_at: t(3),
        },
    ])
    .when(UserCommand::VerifyEmail {
        email: email(),
        at: t(4),
    })
    .then_expect_events([]);
}

// --- passwords ---

#[test]
fn change_password_is_accepted() {
    given::<User>([registered()])
        .when(UserCommand::ChangePassword {
            new_password_hash: hash("c2FsdDI"),
            at: t(4),
        })
        .then_expect_events([UserEvent::PasswordChanged {
            password_hash: hash("c2FsdDI").into(),
            changed_at: t(4),
        }]);
    let (_, user) = given::<User>([registered()])
        .when(UserCommand::ChangePassword {
            new_password_hash: hash("c2FsdDI"),
            at: t(4),
        })
        .then_state();
    assert_eq!(user.password_hash(), Some(&hash("c2FsdDI")));
}

#[test]
fn request_password_reset_is_accepted() {
    given::<User>([registered()])
        .when(UserCommand::RequestPasswordReset {
            token_hash: token('a'),
            expires_at: t(99),
            at: t(10),
        })
        .then_expect_events([reset_requested('a', t(99))]);
}

#[test]
fn a_reset_expiring_before_its_request_is_refused() {
    let err = given::<User>([registered()])
        .when(UserCommand::RequestPasswordReset {
            token_hash: token('a'),
            expires_at: t(10),
            at: t(10),
        })
        .then_expect_error();
    assert_eq!(err, UserError::ResetExpiryNotInFuture);
}

#[test]
fn confirm_password_reset_is_accepted_with_the_right_token_in_time() {
    let confirm = || UserCommand::ConfirmPasswordReset {
        token_hash: token('a'),
        new_password_hash: hash("c2FsdDI"),
        at: t(98),
    };
    given::<User>([registered(), reset_requested('a', t(99))])
        .when(confirm())
        .then_expect_events([UserEvent::PasswordResetConfirmed {
            password_hash: hash("c2FsdDI").into(),
            reset_at: t(98),
        }]);
    let (_, user) = given::<User>([registered(), reset_requested('a', t(99))])
        .when(confirm())
        .then_state();
    assert_eq!(user.password_hash(), Some(&hash("c2FsdDI")));
}

#[test]
fn confirm_password_reset_rules() {
    let confirm = |digit, at| UserCommand::ConfirmPasswordReset {
        token_hash: token(digit),
        new_password_hash: hash("c2FsdDI"),
        at,
    };
    let cases = [
        (
            vec![registered()],
            confirm('a', t(20)),
            UserError::NoPendingPasswordReset,
        ),
        (
            vec![registered(), reset_requested('a', t(99))],
            confirm('b', t(20)),
            UserError::ResetTokenMismatch,
        ),
        (
            vec![registered(), reset_requested('a', t(99))],
            confirm('a', t(99)),
            UserError::ResetTokenExpired,
        ),
        (
            vec![
                registered(),
                reset_requested('a', t(99)),
                UserEvent::PasswordResetConfirmed {
                    password_hash: hash("c2FsdDI").into(),
                    reset_at: t(20),
                },
            ],
            confirm('a', t(21)),
            UserError::ResetTokenAlreadyUsed,
        ),
        (
            // A password change voids the reset link.
            vec![
                registered(),
                reset_requested('a', t(99)),
                UserEvent::PasswordChanged {
                    password_hash: hash("c2FsdDI").into(),
                    changed_at: t(15),
                },
            ],
            confirm('a', t(20)),
            UserError::NoPendingPasswordReset,
        ),
        (
            // A newer request supersedes the older token.
            vec![
                registered(),
                reset_requested('a', t(99)),
                reset_requested('b', t(99)),
            ],
            confirm('a', t(20)),
            UserError::ResetTokenMismatch,
        ),
    ];
    for (history, command, expected) in cases {
        let err = given::<User>(history)
            .when(command.clone())
            .then_expect_error();
        assert_eq!(err, expected, "{command:?}");
    }
}

// --- profile and preferences ---

#[test]
fn update_profile_is_accepted() {
    let phone = PhoneNumber::parse("+44 20 7946 0018").unwrap();
    given::<User>([registered()])
        .when(UserCommand::UpdateProfile {
            first_name: name("Augusta"),
            last_name: None,
            phone: Some(phone.clone()),
            at: t(6),
        })
        .then_expect_events([UserEvent::ProfileUpdated {
            first_name: name("Augusta"),
            last_name: None,
            phone: Some(phone.clone()),
            updated_at: t(6),
        }]);
    let (_, user) = given::<User>([registered()])
        .when(UserCommand::UpdateProfile {
            first_name: name("Augusta"),
            last_name: None,
            phone: Some(phone.clone()),
            at: t(6),
        })
        .then_state();
    assert_eq!(user.first_name(), Some(&name("Augusta")));
    assert_eq!(user.last_name(), None);
    assert_eq!(user.phone(), Some(&phone));
}

#[test]
fn an_unchanged_profile_records_nothing() {
    given::<User>([registered()])
        .when(UserCommand::UpdateProfile {
            first_name: name("Ada"),
            last_name: Some(name("Lovelace")),
            phone: None,
            at: t(6),
        })
        .then_expect_events([]);
}

#[test]
fn update_preferences_is_a_partial_update() {
    let german = Language::parse("de-DE").unwrap();
    given::<User>([registered()])
        .when(UserCommand::UpdatePreferences {
            newsletter: None,
            language: Some(german.clone()),
            currency: Some(Currency::EUR),
            at: t(7),
        })
        .then_expect_events([UserEvent::PreferencesUpdated {
            preferences: Preferences {
                newsletter: false,
                language: german,
                currency: Currency::EUR,
            },
            updated_at: t(7),
        }]);
}

#[test]
fn unchanged_preferences_record_nothing() {
    given::<User>([registered()])
        .when(UserCommand::UpdatePreferences {
            newsletter: Some(false),
            language: None,
            currency: Some(Currency::USD),
            at: t(7),
        })
        .then_expect_events([]);
}

// --- addresses ---

#[test]
fn add_address_is_accepted() {
    given::<User>([registered()])
        .when(UserCommand::AddAddress {
            address_id: addr_id(1),
            address: address("London"),
            at: t(1),
        })
        .then_expect_events([address_added(1, "London")]);
}

#[test]
fn adding_an_existing_address_id_is_refused() {
    let err = given::<User>([registered(), address_added(1, "London")])
        .when(UserCommand::AddAddress {
            address_id: addr_id(1),
            address: address("Paris"),
            at: t(2),
        })
        .then_expect_error();
    assert_eq!(
        err,
        UserError::AddressAlreadyExists {
            address_id: addr_id(1)
        }
    );
}

#[test]
fn the_address_book_is_bounded() {
    let mut history = vec![registered()];
    history.extend((0..20).map(|n| address_added(n, "London")));
    let err = given::<User>(history)
        .when(UserCommand::AddAddress {
            address_id: addr_id(99),
            address: address("Paris"),
            at: t(2),
        })
        .then_expect_error();
    assert_eq!(
        err,
        UserError::TooManyAddresses {
            max: User::MAX_ADDRESSES
        }
    );
}

#[test]
fn update_address_is_accepted() {
    given::<User>([registered(), address_added(1, "London")])
        .when(UserCommand::UpdateAddress {
            address_id: addr_id(1),
            address: address("Paris"),
            at: t(2),
        })
        .then_expect_events([UserEvent::AddressUpdated {
            address_id: addr_id(1),
            address: address("Paris"),
            updated_at: t(2),
        }]);
    given::<User>([registered(), address_added(1, "London")])
        .when(UserCommand::UpdateAddress {
            address_id: addr_id(1),
            address: address("London"),
            at: t(2),
        })
        .then_expect_events([]);
}

#[test]
fn commands_on_an_unknown_address_are_refused() {
    let unknown = addr_id(7);
    for command in [
        UserCommand::UpdateAddress {
            address_id: unknown,
            address: address("Paris"),
            at: t(2),
        },
        UserCommand::RemoveAddress {
            address_id: unknown,
            at: t(2),
        },
        UserCommand::SetDefaultShippingAddress {
            address_id: unknown,
            at: t(2),
        },
        UserCommand::SetDefaultBillingAddress {
            address_id: unknown,
            at: t(2),
        },
    ] {
        let err = given::<User>([registered(), address_added(1, "London")])
            .when(command.clone())
            .then_expect_error();
        assert_eq!(
            err,
            UserError::AddressNotFound {
                address_id: unknown
            },
            "{command:?}"
        );
    }
}

#[test]
fn set_default_addresses_is_accepted_and_idempotent() {
    given::<User>([registered(), address_added(1, "London")])
        .when(UserCommand::SetDefaultShippingAddress {
            address_id: addr_id(1),
            at: t(2),
        })
        .then_expect_events([UserEvent::DefaultShippingAddressSet {
            address_id: addr_id(1),
            set_at: t(2),
        }]);
    given::<User>([registered(), address_added(1, "London")])
        .when(UserCommand::SetDefaultBillingAddress {
            address_id: addr_id(1),
            at: t(2),
        })
        .then_expect_events([UserEvent::DefaultBillingAddressSet {
            address_id: addr_id(1),
            set_at: t(2),
        }]);
    given::<User>([
        registered(),
        address_added(1, "London"),
        UserEvent::DefaultShippingAddressSet {
            address_id: addr_id(1),
            set_at: t(2),
        },
        UserEvent::DefaultBillingAddressSet {
            address_id: addr_id(1),
            set_at: t(2),
        },
    ])
    .when(UserCommand::SetDefaultShippingAddress {
        address_id: addr_id(1),
        at: t(3),
    })
    .then_expect_events([]);
    given::<User>([
        registered(),
        address_added(1, "London"),
        UserEvent::DefaultBillingAddressSet {
            address_id: addr_id(1),
            set_at: t(2),
        },
    ])
    .when(UserCommand::SetDefaultBillingAddress {
        address_id: addr_id(1),
        at: t(3),
    })
    .then_expect_events([]);
}

#[test]
fn removing_the_default_address_clears_it() {
    let history = [
        registered(),
        address_added(1, "London"),
        address_added(2, "Paris"),
        UserEvent::DefaultShippingAddressSet {
            address_id: addr_id(1),
            set_at: t(2),
        },
        UserEvent::DefaultBillingAddressSet {
            address_id: addr_id(2),
            set_at: t(2),
        },
    ];
    given::<User>(history.clone())
        .when(UserCommand::RemoveAddress {
            address_id: addr_id(1),
            at: t(3),
        })
        .then_expect_events([UserEvent::AddressRemoved {
            address_id: addr_id(1),
            was_default_shipping: true,
            was_default_billing: false,
            removed_at: t(3),
        }]);
    let (_, user) = given::<User>(history)
        .when(UserCommand::RemoveAddress {
            address_id: addr_id(1),
            at: t(3),
        })
        .then_state();
    assert_eq!(user.address(addr_id(1)), None);
    assert_eq!(user.default_shipping_address(), None);
    assert_eq!(user.default_billing_address(), Some(addr_id(2)));
    assert_eq!(user.addresses().count(), 1);
}

// --- roles ---

#[test]
fn change_role_is_accepted_and_records_the_previous_role() {
    given::<User>([registered()])
        .when(UserCommand::ChangeRole {
            role: Role::Admin,
            at: t(8),
        })
        .then_expect_events([UserEvent::RoleChanged {
            previous_role: Role::Customer,
            role: Role::Admin,
            changed_at: t(8),
        }]);
    given::<User>([registered()])
        .when(UserCommand::ChangeRole {
            role: Role::Customer,
            at: t(8),
        })
        .then_expect_events([]);
}

// --- events, versions, upcasting ---

#[test]
fn event_type_is_the_serialised_variant_name() {
    let events = [
        registered(),
        UserEvent::EmailVerified {
            email: email(),
            verified_at: t(1),
        },
        UserEvent::PasswordChanged {
            password_hash: hash("c2FsdDI").into(),
            changed_at: t(1),
        },
        reset_requested('a', t(99)),
        UserEvent::PasswordResetConfirmed {
            password_hash: hash("c2FsdDI").into(),
            reset_at: t(1),
        },
        UserEvent::ProfileUpdated {
            first_name: name("A"),
            last_name: None,
            phone: None,
            updated_at: t(1),
        },
        UserEvent::PreferencesUpdated {
            preferences: Preferences::default(),
            updated_at: t(1),
        },
        address_added(1, "London"),
        UserEvent::AddressUpdated {
            address_id: addr_id(1),
            address: address("Paris"),
            updated_at: t(1),
        },
        UserEvent::AddressRemoved {
            address_id: addr_id(1),
            was_default_shipping: false,
            was_default_billing: false,
            removed_at: t(1),
        },
        UserEvent::DefaultShippingAddressSet {
            address_id: addr_id(1),
            set_at: t(1),
        },
        UserEvent::DefaultBillingAddressSet {
            address_id: addr_id(1),
            set_at: t(1),
        },
        UserEvent::RoleChanged {
            previous_role: Role::Customer,
            role: Role::Staff,
            changed_at: t(1),
        },
        UserEvent::UserDeactivated {
            deactivated_at: t(1),
        },
        UserEvent::UserReactivated {
            reactivated_at: t(1),
        },
    ];
    for event in events {
        let json = serde_json::to_value(&event).unwrap();
        let tag = json
            .as_object()
            .and_then(|o| o.keys().next().cloned())
            .unwrap();
        assert_eq!(tag, event.event_type());
        let expected_version = if tag == "UserRegistered" {
            "2.0"
        } else {
            "1.0"
        };
        assert_eq!(event.event_version(), expected_version);
        assert_eq!(serde_json::from_value::<UserEvent>(json).unwrap(), event);
    }
}

fn registered_v1_upcaster() -> Upcaster {
    upcasters()
        .into_iter()
        .find(|u| {
            u.aggregate_type == "user"
                && u.event_type == "UserRegistered"
                && u.from_version == "1.0"
        })
        .expect("UserRegistered 1.0 upcaster is registered")
}

fn v1_registered(name: &str) -> serde_json::Value {
    json!({
        "UserRegistered": {
            "user_id": user_id(),
            "email": "ada@example.org",
            "password_hash": hash("c2FsdDE").as_str(),
            "name": name,
            "role": "customer",
            "registered_at": "2025-06-15T15:06:40Z",
        }
    })
}

#[test]
fn user_registered_v1_is_upcast_then_loaded() {
    let upcaster = registered_v1_upcaster();
    assert_eq!(upcaster.to_version, "2.0");
    let upcast = (upcaster.upcast)(v1_registered("  Ada   King Lovelace "));
    let event: UserEvent =
        serde_json::from_value(upcast).expect("upcast payload is a current UserRegistered");
    assert_eq!(event.event_version(), "2.0");
    let user = User::from_events([&event, &address_added(1, "London")]);
    assert_eq!(user.id(), Some(user_id()));
    assert_eq!(user.email(), Some(&email()));
    assert_eq!(user.first_name(), Some(&name("Ada")));
    assert_eq!(user.last_name(), Some(&name("King Lovelace")));
    assert_eq!(user.preferences(), Some(&Preferences::default()));
    assert_eq!(user.role(), Some(Role::Customer));
    assert_eq!(
        user.registered_at(),
        Some(DateTime::from_timestamp(1_750_000_000, 0).unwrap())
    );
    assert!(user.is_active());
    assert_eq!(user.addresses().count(), 1);
}

#[test]
fn a_single_v1_name_becomes_a_first_name_only() {
    let upcast = (registered_v1_upcaster().upcast)(v1_registered("Plato"));
    let event: UserEvent = serde_json::from_value(upcast).unwrap();
    let user = User::from_events([&event]);
    assert_eq!(user.first_name(), Some(&name("Plato")));
    assert_eq!(user.last_name(), None);
}

#[test]
fn the_upcaster_leaves_other_payloads_alone() {
    let upcast = registered_v1_upcaster().upcast;
    let other = json!({"EmailVerified": {"email": "ada@example.org", "verified_at": "2025-06-15T15:06:40Z"}});
    assert_eq!(upcast(other.clone()), other);
    assert_eq!(upcast(json!("garbage")), json!("garbage"));
    // An empty legacy name is not invented into a valid one: loading it fails loudly.
    let empty = upcast(v1_registered("  "));
    assert!(serde_json::from_value::<UserEvent>(empty).is_err());
}

#[test]
fn the_schema_names_every_event() {
    let schemas = event_schemas();
    assert_eq!(schemas.len(), 1);
    let (aggregate, schema) = &schemas[0];
    assert_eq!(*aggregate, "user");
    let text = serde_json::to_string(schema).unwrap();
    for tag in [
        "UserRegistered",
        "AddressRemoved",
        "UserReactivated",
        "first_name",
        "preferences",
    ] {
        assert!(text.contains(tag), "{tag}");
    }
}

#[test]
fn state_survives_a_snapshot_round_trip() {
    let user = User::from_events(&[
        registered(),
        address_added(1, "London"),
        UserEvent::DefaultShippingAddressSet {
            address_id: addr_id(1),
            set_at: t(2),
        },
        reset_requested('a', t(99)),
    ]);
    let json = serde_json::to_string(&user).unwrap();
    assert_eq!(serde_json::from_str::<User>(&json).unwrap(), user);
}

// --- invariants over random command sequences ---

fn command_strategy() -> impl Strategy<Value = UserCommand> {
    // 24 ids for a 20-address book, so adds collide and the bound is reached.
    let id = (0u128..24).prop_map(addr_id);
    let city = prop::sample::select(vec!["London", "Paris", "Oslo"]);
    let digit = prop::sample::select(vec!['a', 'b']);
    prop_oneof![
        8 => (id.clone(), city.clone()).prop_map(|(address_id, c)| UserCommand::AddAddress { address_id, address: address(c), at: t(0) }),
        1 => (id.clone(), city).prop_map(|(address_id, c)| UserCommand::UpdateAddress { address_id, address: address(c), at: t(0) }),
        1 => id.clone().prop_map(|address_id| UserCommand::RemoveAddress { address_id, at: t(0) }),
        2 => id.clone().prop_map(|address_id| UserCommand::SetDefaultShippingAddress { address_id, at: t(0) }),
        2 => id.prop_map(|address_id| UserCommand::SetDefaultBillingAddress { address_id, at: t(0) }),
        1 => Just(UserCommand::DeactivateUser { at: t(0) }),
        3 => Just(UserCommand::ReactivateUser { at: t(0) }),
        1 => prop::sample::select(vec![Role::Customer, Role::Staff, Role::Admin]).prop_map(|role| UserCommand::ChangeRole { role, at: t(0) }),
        2 => (digit.clone(), 1i64..20).prop_map(|(d, ttl)| UserCommand::RequestPasswordReset { token_hash: token(d), expires_at: t(ttl), at: t(0) }),
        2 => digit.prop_map(|d| UserCommand::ConfirmPasswordReset { token_hash: token(d), new_password_hash: hash("c2FsdDM"), at: t(0) }),
        1 => Just(UserCommand::ChangePassword { new_password_hash: hash("c2FsdDI"), at: t(0) }),
        1 => Just(UserCommand::VerifyEmail { email: email(), at: t(0) }),
        1 => Just(register_command()),
    ]
}

/// Moves a command to time `step`, so time advances along a sequence.
fn at_step(command: UserCommand, step: i64) -> UserCommand {
    use UserCommand as C;
    let now = t(step);
    match command {
        C::RequestPasswordReset {
            token_hash,
            expires_at,
            ..
        } => C::RequestPasswordReset {
            token_hash,
            expires_at: now + (expires_at - t(0)),
            at: now,
        },
        C::ConfirmPasswordReset {
            token_hash,
            new_password_hash,
            ..
        } => C::ConfirmPasswordReset {
            token_hash,
            new_password_hash,
            at: now,
        },
        C::AddAddress {
            address_id,
            address,
            ..
        } => C::AddAddress {
            address_id,
            address,
            at: now,
        },
        C::UpdateAddress {
            address_id,
            address,
            ..
        } => C::UpdateAddress {
            address_id,
            address,
            at: now,
        },
        C::RemoveAddress { address_id, .. } => C::RemoveAddress {
            address_id,
            at: now,
        },
        C::SetDefaultShippingAddress { address_id, .. } => C::SetDefaultShippingAddress {
            address_id,
            at: now,
        },
        C::SetDefaultBillingAddress { address_id, .. } => C::SetDefaultBillingAddress {
            address_id,
            at: now,
        },
        C::DeactivateUser { .. } => C::DeactivateUser { at: now },
        C::ReactivateUser { .. } => C::ReactivateUser { at: now },
        C::ChangeRole { role, .. } => C::ChangeRole { role, at: now },
        C::ChangePassword {
            new_password_hash, ..
        } => C::ChangePassword {
            new_password_hash,
            at: now,
        },
        C::VerifyEmail { email, .. } => C::VerifyEmail { email, at: now },
        other => other,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn user_invariants_hold_over_random_commands(
        registered_first in prop::bool::weighted(0.9),
        // A head start of addresses, so the address-book bound is reached.
        prefilled in 0u128..=20,
        commands in prop::collection::vec(command_strategy(), 0..100),
    ) {
        let mut user = User::default();
        let mut history: Vec<UserEvent> = Vec::new();
        let mut sequence = Vec::new();
        if registered_first {
            sequence.push(register_command());
            sequence.extend((0..prefilled).map(|n| UserCommand::AddAddress {
                address_id: addr_id(n),
                address: address("Rome"),
                at: t(0),
            }));
        }
        sequence.extend(commands);
        for (step, command) in sequence.into_iter().enumerate() {
            let command = at_step(command, i64::try_from(step).unwrap() * 5);
            let before = user.clone();
            let was_active = user.is_active();
            let is_reactivation = matches!(command, UserCommand::ReactivateUser { .. });
            let is_registration = matches!(command, UserCommand::RegisterUser { .. });
            match user.handle(command) {
                Ok(events) => {
                    prop_assert!(user.is_registered() || is_registration, "accepted before registration");
                    prop_assert!(was_active || is_reactivation || !user.is_registered(), "a deactivated user changed");
                    for event in &events {
                        // Every event survives the JSON round trip it takes through the store.
                        let json = serde_json::to_value(event).unwrap();
                        prop_assert_eq!(&serde_json::from_value::<UserEvent>(json).unwrap(), event);
                        user.apply(event);
                    }
                    history.extend(events);
                }
                Err(error) => {
                    if !before.is_registered() {
                        prop_assert_eq!(error, UserError::NotRegistered);
                    } else if !was_active && !is_reactivation && !is_registration {
                        prop_assert_eq!(error, UserError::Deactivated);
                    }
                }
            }
            // Defaults always point at an address in the book; the book is bounded.
            for default in [user.default_shipping_address(), user.default_billing_address()].into_iter().flatten() {
                prop_assert!(user.address(default).is_some(), "dangling default {default}");
            }
            prop_assert!(user.addresses().count() <= User::MAX_ADDRESSES);
        }
        // Replaying the history gives the same state as evolving step by step.
        prop_assert_eq!(User::from_events(&history), user);
    }
}

#[test]
fn every_rejection_is_named_in_lowercase_without_a_period() {
    let errors = [
        UserError::NotRegistered,
        UserError::AlreadyRegistered,
        UserError::Deactivated,
        UserError::NotDeactivated,
        UserError::EmailMismatch,
        UserError::ResetExpiryNotInFuture,
        UserError::NoPendingPasswordReset,
        UserError::ResetTokenMismatch,
        UserError::ResetTokenAlreadyUsed,
        UserError::ResetTokenExpired,
        UserError::AddressAlreadyExists {
            address_id: addr_id(1),
        },
        UserError::AddressNotFound {
            address_id: addr_id(1),
        },
        UserError::TooManyAddresses { max: 20 },
    ];
    for error in errors {
        let text = error.to_string();
        assert!(
            text.chars().next().is_some_and(char::is_lowercase),
            "{text}"
        );
        assert!(!text.ends_with('.'), "{text}");
    }
}
