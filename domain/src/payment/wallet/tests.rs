//! Given/when/then for every wallet command, accepted and refused, and the card types.

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use super::*;
use crate::testing::{given, given_no_history};

fn on(year: i32, month: u32, day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(year, month, day, 12, 0, 0).unwrap()
}

const CARD: Uuid = Uuid::from_u128(1);
const CARD2: Uuid = Uuid::from_u128(2);

fn expiry() -> CardExpiry {
    CardExpiry::new(12, 2027).unwrap()
}

fn add(id: Uuid, make_default: bool) -> WalletCommand {
    WalletCommand::AddPaymentMethod {
        payment_method_id: id,
        brand: CardBrand::Visa,
        last4: Last4::parse("4242").unwrap(),
        expiry: expiry(),
        make_default,
        at: on(2026, 1, 1),
    }
}

fn added(id: Uuid) -> WalletEvent {
    WalletEvent::PaymentMethodAdded {
        payment_method_id: id,
        brand: CardBrand::Visa,
        last4: Last4::parse("4242").unwrap(),
        expiry: expiry(),
        at: on(2026, 1, 1),
    }
}

fn default_set(id: Uuid) -> WalletEvent {
    WalletEvent::DefaultPaymentMethodSet {
        payment_method_id: id,
        at: on(2026, 1, 1),
    }
}

fn two_cards() -> Vec<WalletEvent> {
    vec![added(CARD), default_set(CARD), added(CARD2)]
}

// --- card types ---------------------------------------------------------------------------

#[test]
fn last4_holds_exactly_four_digits() {
    assert_eq!(Last4::parse("0042").unwrap().as_str(), "0042");
    for bad in [
        "",
        "424",
        "42424",
        "4242424242424242",
        "42a2",
        " 424",
        "４２４２",
    ] {
        assert_eq!(Last4::parse(bad), Err(WalletError::InvalidLast4), "{bad:?}");
    }
    let json = serde_json::to_string(&Last4::parse("4242").unwrap()).unwrap();
    assert_eq!(json, "\"4242\"");
    assert!(serde_json::from_str::<Last4>("\"4242424242424242\"").is_err());
}

#[test]
fn expiry_is_validated_and_lasts_through_its_month() {
    assert_eq!(
        CardExpiry::new(13, 2027),
        Err(WalletError::InvalidExpiry {
            month: 13,
            year: 2027
        })
    );
    assert!(CardExpiry::new(0, 2027).is_err());
    assert!(CardExpiry::new(1, 27).is_err());
    let e = expiry();
    assert!(!e.is_expired_at(on(2027, 12, 31)));
    assert!(e.is_expired_at(on(2028, 1, 1)));
    assert_eq!(e.to_string(), "12/2027");
    let json = serde_json::to_string(&e).unwrap();
    assert_eq!(serde_json::from_str::<CardExpiry>(&json).unwrap(), e);
    assert!(serde_json::from_str::<CardExpiry>(r#"{"year":2027,"month":13}"#).is_err());
}

// --- AddPaymentMethod ---------------------------------------------------------------------

#[test]
fn first_card_becomes_the_default() {
    let (events, state) = given_no_history::<Wallet>()
        .when(add(CARD, false))
        .then_state();
    assert_eq!(events, vec![added(CARD), default_set(CARD)]);
    assert_eq!(state.default_method(), Some(CARD));
    let m = state.method(CARD).unwrap();
    assert_eq!(
        (m.brand(), m.last4().as_str(), m.expiry()),
        (CardBrand::Visa, "4242", expiry())
    );
}

#[test]
fn later_cards_become_default_only_when_asked() {
    given::<Wallet>([added(CARD), default_set(CARD)])
        .when(add(CARD2, false))
        .then_expect_events([added(CARD2)]);
    given::<Wallet>([added(CARD), default_set(CARD)])
        .when(add(CARD2, true))
        .then_expect_events([added(CARD2), default_set(CARD2)]);
}

#[test]
fn add_repeated_is_a_no_op_and_other_details_are_refused() {
    given::<Wallet>(two_cards())
        .when(add(CARD, false))
        .then_expect_events([]);
    let err = given::<Wallet>(two_cards())
        .when(WalletCommand::AddPaymentMethod {
            payment_method_id: CARD,
            brand: CardBrand::Mastercard,
            last4: Last4::parse("4444").unwrap(),
            expiry: expiry(),
            make_default: false,
            at: on(2026, 1, 1),
        })
        .then_expect_error();
    assert_eq!(
        err,
        WalletError::PaymentMethodConflict {
            payment_method_id: CARD
        }
    );
}

#[test]
fn add_an_expired_card_is_refused() {
    let err = given_no_history::<Wallet>()
        .when(WalletCommand::AddPaymentMethod {
            payment_method_id: CARD,
            brand: CardBrand::Amex,
            last4: Last4::parse("0005").unwrap(),
            expiry: CardExpiry::new(12, 2025).unwrap(),
            make_default: false,
            at: on(2026, 1, 1),
        })
        .then_expect_error();
    assert_eq!(
        err,
        WalletError::CardExpired {
            month: 12,
            year: 2025
        }
    );
}

#[test]
fn a_full_wallet_refuses_more_cards() {
    let history: Vec<WalletEvent> = (0..Wallet::MAX_METHODS as u128)
        .map(|i| added(Uuid::from_u128(100 + i)))
        .collect();
    let err = given::<Wallet>(history)
        .when(add(CARD, false))
        .then_expect_error();
    assert_eq!(
        err,
        WalletError::TooManyPaymentMethods {
            max: Wallet::MAX_METHODS
        }
    );
}

// --- RemovePaymentMethod ------------------------------------------------------------------

#[test]
fn remove_forgets_the_card_and_clears_the_default() {
    let (events, state) = given::<Wallet>(two_cards())
        .when(WalletCommand::RemovePaymentMethod {
            payment_method_id: CARD,
            at: on(2026, 2, 1),
        })
        .then_state();
    assert_eq!(
        events,
        vec![WalletEvent::PaymentMethodRemoved {
            payment_method_id: CARD,
            was_default: true,
            at: on(2026, 2, 1)
        }]
    );
    assert_eq!(state.default_method(), None);
    assert_eq!(state.methods().count(), 1);
    given::<Wallet>(two_cards())
        .when(WalletCommand::RemovePaymentMethod {
            payment_method_id: CARD2,
            at: on(2026, 2, 1),
        })
        .then_expect_events([WalletEvent::PaymentMethodRemoved {
            payment_method_id: CARD2,
            was_default: false,
            at: on(2026, 2, 1),
        }]);
}

#[test]
fn remove_an_unknown_card_is_refused() {
    let err = given_no_history::<Wallet>()
        .when(WalletCommand::RemovePaymentMethod {
            payment_method_id: CARD,
            at: on(2026, 2, 1),
        })
        .then_expect_error();
    assert_eq!(
        err,
        WalletError::PaymentMethodNotFound {
            payment_method_id: CARD
        }
    );
}

// --- SetDefaultPaymentMethod ----------------------------------------------------------------

#[test]
fn set_default_switches_and_is_a_no_op_when_already_default() {
    let (events, state) = given::<Wallet>(two_cards())
        .when(WalletCommand::SetDefaultPaymentMethod {
            payment_method_id: CARD2,
            at: on(2026, 1, 1),
        })
        .then_state();
    assert_eq!(events, vec![default_set(CARD2)]);
    assert_eq!(state.default_method(), Some(CARD2));
    given::<Wallet>(two_cards())
        .when(WalletCommand::SetDefaultPaymentMethod {
            payment_method_id: CARD,
            at: on(2026, 1, 1),
        })
        .then_expect_events([]);
}

#[test]
fn set_default_to_an_expired_or_unknown_card_is_refused() {
    let err = given::<Wallet>(two_cards())
        .when(WalletCommand::SetDefaultPaymentMethod {
            payment_method_id: CARD2,
            at: on(2028, 1, 1),
        })
        .then_expect_error();
    assert_eq!(
        err,
        WalletError::CardExpired {
            month: 12,
            year: 2027
        }
    );
    let err = given::<Wallet>(two_cards())
        .when(WalletCommand::SetDefaultPaymentMethod {
            payment_method_id: Uuid::from_u128(9),
            at: on(2026, 1, 1),
        })
        .then_expect_error();
    assert_eq!(
        err,
        WalletError::PaymentMethodNotFound {
            payment_method_id: Uuid::from_u128(9)
        }
    );
}

#[test]
fn events_round_trip_through_json() {
    use crate::aggregate::DomainEvent;
    let mut all = two_cards();
    all.push(WalletEvent::PaymentMethodRemoved {
        payment_method_id: CARD,
        was_default: true,
        at: on(2026, 1, 1),
    });
    for e in all {
        let json = serde_json::to_value(&e).unwrap();
        assert!(
            json.get(e.event_type()).is_some(),
            "externally tagged: {json}"
        );
        assert_eq!(e.event_version(), "1.0");
        assert_eq!(serde_json::from_value::<WalletEvent>(json).unwrap(), e);
    }
}
