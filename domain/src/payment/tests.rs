//! Given/when/then for every payment command, accepted and refused.

use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

use super::*;
use crate::testing::{given, given_no_history};
use crate::{Currency, Money};

pub(super) fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap() + Duration::minutes(minute)
}

pub(super) fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

pub(super) const PAYMENT: Uuid = Uuid::from_u128(1);
pub(super) const ORDER: Uuid = Uuid::from_u128(2);
const REFUND: Uuid = Uuid::from_u128(3);
const REFUND2: Uuid = Uuid::from_u128(4);

pub(super) fn create(amount: i64) -> PaymentCommand {
    PaymentCommand::CreatePayment {
        payment_id: PAYMENT,
        order_id: ORDER,
        provider: "stripe".into(),
        provider_intent_id: "pi_123".into(),
        amount: eur(amount),
        idempotency_key: "checkout-1-payment".into(),
        at: at(0),
    }
}

fn created() -> PaymentEvent {
    PaymentEvent::PaymentCreated {
        payment_id: PAYMENT,
        order_id: ORDER,
        provider: "stripe".into(),
        provider_intent_id: "pi_123".into(),
        amount: eur(5_000),
        idempotency_key: "checkout-1-payment".into(),
        at: at(0),
    }
}

fn sdk() -> NextAction {
    NextAction::UseSdk {
        client_secret: "pi_123_secret_abc".into(),
    }
}

fn action_required() -> Vec<PaymentEvent> {
    vec![
        created(),
        PaymentEvent::PaymentActionRequired {
            order_id: ORDER,
            next_action: sdk(),
            at: at(1),
        },
    ]
}

fn authorised() -> Vec<PaymentEvent> {
    vec![
        created(),
        PaymentEvent::PaymentAuthorised {
            order_id: ORDER,
            amount: eur(5_000),
            at: at(2),
        },
    ]
}

fn captured(amount: i64) -> Vec<PaymentEvent> {
    let mut h = authorised();
    h.push(PaymentEvent::PaymentCaptured {
        order_id: ORDER,
        amount: eur(amount),
        at: at(3),
    });
    h
}

fn failed() -> Vec<PaymentEvent> {
    vec![
        created(),
        PaymentEvent::PaymentFailed {
            order_id: ORDER,
            reason: DeclineCode::InsufficientFunds,
            at: at(2),
        },
    ]
}

fn voided() -> Vec<PaymentEvent> {
    let mut h = authorised();
    h.push(PaymentEvent::PaymentVoided {
        order_id: ORDER,
        at: at(3),
    });
    h
}

fn invalid(from: PaymentStatus, command: &'static str) -> PaymentError {
    PaymentError::InvalidTransition { from, command }
}

fn requested(id: Uuid, amount: i64) -> PaymentEvent {
    PaymentEvent::PaymentRefundRequested {
        order_id: ORDER,
        refund_id: id,
        amount: eur(amount),
        at: at(4),
    }
}

fn refunded(id: Uuid, amount: i64, total: i64, full: bool) -> PaymentEvent {
    PaymentEvent::PaymentRefunded {
        order_id: ORDER,
        refund_id: id,
        amount: eur(amount),
        total_refunded: eur(total),
        fully_refunded: full,
        at: at(5),
    }
}

// --- the status table ---------------------------------------------------------------------

#[test]
fn status_table() {
    use PaymentStatus::*;
    let legal = [
        (Created, RequiresAction),
        (Created, Authorised),
        (Created, Failed),
        (Created, Voided),
        (RequiresAction, Authorised),
        (RequiresAction, Failed),
        (RequiresAction, Voided),
        (Authorised, Captured),
        (Authorised, Voided),
        (Captured, Refunded),
    ];
    for from in PaymentStatus::ALL {
        for to in PaymentStatus::ALL {
            assert_eq!(
                from.can_transition_to(to),
                legal.contains(&(from, to)),
                "{from} -> {to}"
            );
        }
    }
}

#[test]
fn decline_codes_map_from_the_provider() {
    assert_eq!(
        DeclineCode::from_provider_code("card_declined"),
        DeclineCode::CardDeclined
    );
    assert_eq!(
        DeclineCode::from_provider_code("insufficient_funds"),
        DeclineCode::InsufficientFunds
    );
    assert_eq!(
        DeclineCode::from_provider_code("expired_card"),
        DeclineCode::ExpiredCard
    );
    assert_eq!(
        DeclineCode::from_provider_code("incorrect_cvc"),
        DeclineCode::IncorrectCvc
    );
    assert_eq!(
        DeclineCode::from_provider_code("processing_error"),
        DeclineCode::ProcessingError
    );
    assert_eq!(
        DeclineCode::from_provider_code("lost_card"),
        DeclineCode::Other
    );
    assert_eq!(
        serde_json::to_string(&DeclineCode::IncorrectCvc).unwrap(),
        "\"incorrect_cvc\""
    );
}

// --- CreatePayment ------------------------------------------------------------------------

#[test]
fn create_records_the_intent() {
    let (events, state) = given_no_history::<Payment>()
        .when(create(5_000))
        .then_state();
    assert_eq!(events, vec![created()]);
    assert_eq!(state.status(), Some(PaymentStatus::Created));
    assert_eq!(state.id(), Some(PAYMENT));
    assert_eq!(state.order_id(), Some(ORDER));
    assert_eq!(state.amount(), Some(eur(5_000)));
    assert_eq!(state.provider_intent_id(), Some("pi_123"));
}

#[test]
fn create_repeated_is_a_no_op_and_different_details_are_refused() {
    given::<Payment>([created()])
        .when(create(5_000))
        .then_expect_events([]);
    let err = given::<Payment>([created()])
        .when(create(4_000))
        .then_expect_error();
    assert_eq!(
        err,
        PaymentError::AlreadyCreated {
            payment_id: PAYMENT
        }
    );
}

#[test]
fn create_with_blank_fields_or_no_amount_is_refused() {
    let blank = |field: &str| {
        let mut c = create(5_000);
        if let PaymentCommand::CreatePayment {
            provider,
            provider_intent_id,
            idempotency_key,
            ..
        } = &mut c
        {
            match field {
                "provider" => *provider = " ".into(),
                "provider intent id" => *provider_intent_id = String::new(),
                _ => *idempotency_key = "\t".into(),
            }
        }
        c
    };
    for field in ["provider", "provider intent id", "idempotency key"] {
        let err = given_no_history::<Payment>()
            .when(blank(field))
            .then_expect_error();
        assert_eq!(err, PaymentError::BlankField { field });
    }
    let err = given_no_history::<Payment>()
        .when(create(0))
        .then_expect_error();
    assert_eq!(err, PaymentError::NonPositiveAmount);
}

#[test]
fn commands_before_creation_are_refused() {
    let commands = [
        PaymentCommand::RequireAction {
            next_action: sdk(),
            at: at(1),
        },
        PaymentCommand::AuthorisePayment {
            amount: eur(1),
            at: at(1),
        },
        PaymentCommand::CapturePayment {
            amount: eur(1),
            at: at(1),
        },
        PaymentCommand::FailPayment {
            reason: DeclineCode::Other,
            at: at(1),
        },
        PaymentCommand::VoidPayment { at: at(1) },
        PaymentCommand::RequestRefund {
            refund_id: REFUND,
            amount: eur(1),
            at: at(1),
        },
        PaymentCommand::RecordRefund {
            refund_id: REFUND,
            amount: eur(1),
            at: at(1),
        },
    ];
    for command in commands {
        let err = given_no_history::<Payment>()
            .when(command)
            .then_expect_error();
        assert_eq!(err, PaymentError::NotCreated);
    }
}

// --- RequireAction --------------------------------------------------------------------------

#[test]
fn require_action_records_what_the_client_must_do_once() {
    let command = PaymentCommand::RequireAction {
        next_action: sdk(),
        at: at(1),
    };
    let (events, state) = given::<Payment>([created()])
        .when(command.clone())
        .then_state();
    assert_eq!(events, action_required()[1..].to_vec());
    assert_eq!(state.status(), Some(PaymentStatus::RequiresAction));
    assert_eq!(state.next_action(), Some(&sdk()));
    given::<Payment>(action_required())
        .when(command)
        .then_expect_events([]);
}

#[test]
fn require_action_is_refused_after_authorisation_or_when_blank() {
    let err = given::<Payment>(authorised())
        .when(PaymentCommand::RequireAction {
            next_action: NextAction::RedirectToUrl {
                url: "https://bank.example/3ds".into(),
            },
            at: at(3),
        })
        .then_expect_error();
    assert_eq!(err, invalid(PaymentStatus::Authorised, "RequireAction"));
    let err = given::<Payment>([created()])
        .when(PaymentCommand::RequireAction {
            next_action: NextAction::RedirectToUrl { url: " ".into() },
            at: at(1),
        })
        .then_expect_error();
    assert_eq!(err, PaymentError::BlankField { field: "url" });
    let err = given::<Payment>([created()])
        .when(PaymentCommand::RequireAction {
            next_action: NextAction::UseSdk {
                client_secret: String::new(),
            },
            at: at(1),
        })
        .then_expect_error();
    assert_eq!(
        err,
        PaymentError::BlankField {
            field: "client secret"
        }
    );
}

// --- AuthorisePayment -----------------------------------------------------------------------

#[test]
fn authorise_after_creation_or_action() {
    for history in [vec![created()], action_required()] {
        let (events, state) = given::<Payment>(history)
            .when(PaymentCommand::AuthorisePayment {
                amount: eur(5_000),
                at: at(2),
            })
            .then_state();
        assert_eq!(events, authorised()[1..].to_vec());
        assert_eq!(state.authorised(), Some(eur(5_000)));
        assert_eq!(state.next_action(), None);
    }
}

#[test]
fn authorise_repeated_even_after_capture_is_a_no_op() {
    given::<Payment>(captured(5_000))
        .when(PaymentCommand::AuthorisePayment {
            amount: eur(5_000),
            at: at(9),
        })
        .then_expect_events([]);
}

#[test]
fn authorise_rules() {
    let err = given::<Payment>([created()])
        .when(PaymentCommand::AuthorisePayment {
            amount: eur(5_001),
            at: at(2),
        })
        .then_expect_error();
    assert_eq!(
        err,
        PaymentError::AuthorisationExceedsAmount {
            requested: eur(5_001),
            amount: eur(5_000)
        }
    );
    let err = given::<Payment>([created()])
        .when(PaymentCommand::AuthorisePayment {
            amount: Money::new(5_000, Currency::USD),
            at: at(2),
        })
        .then_expect_error();
    assert_eq!(
        err,
        PaymentError::CurrencyMismatch {
            expected: Currency::EUR,
            got: Currency::USD
        }
    );
    let err = given::<Payment>([created()])
        .when(PaymentCommand::AuthorisePayment {
            amount: eur(0),
            at: at(2),
        })
        .then_expect_error();
    assert_eq!(err, PaymentError::NonPositiveAmount);
    let err = given::<Payment>(failed())
        .when(PaymentCommand::AuthorisePayment {
            amount: eur(5_000),
            at: at(2),
        })
        .then_expect_error();
    assert_eq!(err, invalid(PaymentStatus::Failed, "AuthorisePayment"));
}

// --- CapturePayment -------------------------------------------------------------------------

#[test]
fn capture_up_to_the_authorised_amount_once() {
    let (events, state) = given::<Payment>(authorised())
        .when(PaymentCommand::CapturePayment {
            amount: eur(4_000),
            at: at(3),
        })
        .then_state();
    assert_eq!(events, captured(4_000)[2..].to_vec());
    assert_eq!(state.status(), Some(PaymentStatus::Captured));
    assert_eq!(state.captured(), Some(eur(4_000)));
    given::<Payment>(captured(4_000))
        .when(PaymentCommand::CapturePayment {
            amount: eur(4_000),
            at: at(4),
        })
        .then_expect_events([]);
}

#[test]
fn capture_rules() {
    let err = given::<Payment>(authorised())
        .when(PaymentCommand::CapturePayment {
            amount: eur(5_001),
            at: at(3),
        })
        .then_expect_error();
    assert_eq!(
        err,
        PaymentError::CaptureExceedsAuthorised {
            requested: eur(5_001),
            authorised: eur(5_000)
        }
    );
    for history in [vec![created()], voided()] {
        let from = Payment::from_events(&history).status().unwrap();
        let err = given::<Payment>(history)
            .when(PaymentCommand::CapturePayment {
                amount: eur(5_000),
                at: at(3),
            })
            .then_expect_error();
        assert_eq!(err, invalid(from, "CapturePayment"));
    }
    let err = given::<Payment>(captured(5_000))
        .when(PaymentCommand::CapturePayment {
            amount: eur(1_000),
            at: at(4),
        })
        .then_expect_error();
    assert_eq!(err, invalid(PaymentStatus::Captured, "CapturePayment"));
}

// --- FailPayment ----------------------------------------------------------------------------

#[test]
fn fail_records_the_decline_code_once() {
    let fail = PaymentCommand::FailPayment {
        reason: DeclineCode::InsufficientFunds,
        at: at(2),
    };
    let (events, state) = given::<Payment>([created()])
        .when(fail.clone())
        .then_state();
    assert_eq!(events, failed()[1..].to_vec());
    assert_eq!(state.failure(), Some(DeclineCode::InsufficientFunds));
    given::<Payment>(failed()).when(fail).then_expect_events([]);
    given::<Payment>(action_required())
        .when(PaymentCommand::FailPayment {
            reason: DeclineCode::CardDeclined,
            at: at(2),
        })
        .then_expect_events([PaymentEvent::PaymentFailed {
            order_id: ORDER,
            reason: DeclineCode::CardDeclined,
            at: at(2),
        }]);
}

#[test]
fn fail_after_authorisation_is_refused() {
    let err = given::<Payment>(authorised())
        .when(PaymentCommand::FailPayment {
            reason: DeclineCode::ProcessingError,
            at: at(3),
        })
        .then_expect_error();
    assert_eq!(err, invalid(PaymentStatus::Authorised, "FailPayment"));
}

// --- VoidPayment ----------------------------------------------------------------------------

#[test]
fn void_before_capture_once() {
    let (events, state) = given::<Payment>(authorised())
        .when(PaymentCommand::VoidPayment { at: at(3) })
        .then_state();
    assert_eq!(events, voided()[2..].to_vec());
    assert_eq!(state.status(), Some(PaymentStatus::Voided));
    given::<Payment>(voided())
        .when(PaymentCommand::VoidPayment { at: at(4) })
        .then_expect_events([]);
}

#[test]
fn void_after_capture_is_refused() {
    let err = given::<Payment>(captured(5_000))
        .when(PaymentCommand::VoidPayment { at: at(4) })
        .then_expect_error();
    assert_eq!(err, invalid(PaymentStatus::Captured, "VoidPayment"));
}

// --- RequestRefund --------------------------------------------------------------------------

fn request(id: Uuid, amount: i64) -> PaymentCommand {
    PaymentCommand::RequestRefund {
        refund_id: id,
        amount: eur(amount),
        at: at(4),
    }
}

fn record(id: Uuid, amount: i64) -> PaymentCommand {
    PaymentCommand::RecordRefund {
        refund_id: id,
        amount: eur(amount),
        at: at(5),
    }
}

#[test]
fn request_refund_of_part_of_the_capture() {
    let (events, state) = given::<Payment>(captured(5_000))
        .when(request(REFUND, 2_000))
        .then_state();
    assert_eq!(events, vec![requested(REFUND, 2_000)]);
    assert_eq!(state.committed_refunds_minor(), 2_000);
    assert_eq!(state.refunded_minor(), 0);
    let mut history = captured(5_000);
    history.push(requested(REFUND, 2_000));
    given::<Payment>(history.clone())
        .when(request(REFUND, 2_000))
        .then_expect_events([]);
    let err = given::<Payment>(history.clone())
        .when(request(REFUND, 2_500))
        .then_expect_error();
    assert_eq!(err, PaymentError::RefundConflict { refund_id: REFUND });
    // Pending refunds count against what is refundable.
    let err = given::<Payment>(history)
        .when(request(REFUND2, 3_001))
        .then_expect_error();
    assert_eq!(
        err,
        PaymentError::RefundExceedsCaptured {
            requested: eur(3_001),
            refundable: eur(3_000)
        }
    );
}

#[test]
fn request_refund_is_refused_before_capture_or_for_bad_amounts() {
    let err = given::<Payment>(authorised())
        .when(request(REFUND, 100))
        .then_expect_error();
    assert_eq!(err, invalid(PaymentStatus::Authorised, "RequestRefund"));
    let err = given::<Payment>(captured(5_000))
        .when(request(REFUND, 0))
        .then_expect_error();
    assert_eq!(err, PaymentError::NonPositiveAmount);
    let err = given::<Payment>(captured(5_000))
        .when(PaymentCommand::RequestRefund {
            refund_id: REFUND,
            amount: Money::new(100, Currency::GBP),
            at: at(4),
        })
        .then_expect_error();
    assert!(matches!(err, PaymentError::CurrencyMismatch { .. }));
}

// --- RecordRefund ---------------------------------------------------------------------------

#[test]
fn record_a_requested_refund_then_the_rest_fully_refunds() {
    let mut history = captured(5_000);
    history.push(requested(REFUND, 2_000));
    let (events, state) = given::<Payment>(history.clone())
        .when(record(REFUND, 2_000))
        .then_state();
    assert_eq!(events, vec![refunded(REFUND, 2_000, 2_000, false)]);
    assert_eq!(state.status(), Some(PaymentStatus::Captured));
    assert_eq!(state.refunded_minor(), 2_000);

    history.push(refunded(REFUND, 2_000, 2_000, false));
    given::<Payment>(history.clone())
        .when(record(REFUND, 2_000))
        .then_expect_events([]);
    let (events, state) = given::<Payment>(history)
        .when(record(REFUND2, 3_000))
        .then_state();
    assert_eq!(events, vec![refunded(REFUND2, 3_000, 5_000, true)]);
    assert_eq!(state.status(), Some(PaymentStatus::Refunded));
}

#[test]
fn record_an_unrequested_refund_made_at_the_provider() {
    given::<Payment>(captured(5_000))
        .when(record(REFUND, 5_000))
        .then_expect_events([refunded(REFUND, 5_000, 5_000, true)]);
}

#[test]
fn record_refund_rules() {
    let mut history = captured(5_000);
    history.push(requested(REFUND, 2_000));
    let err = given::<Payment>(history.clone())
        .when(record(REFUND, 1_000))
        .then_expect_error();
    assert_eq!(err, PaymentError::RefundConflict { refund_id: REFUND });
    let err = given::<Payment>(history)
        .when(record(REFUND2, 3_500))
        .then_expect_error();
    assert_eq!(
        err,
        PaymentError::RefundExceedsCaptured {
            requested: eur(3_500),
            refundable: eur(3_000)
        }
    );
    let err = given::<Payment>(failed())
        .when(record(REFUND, 100))
        .then_expect_error();
    assert_eq!(err, invalid(PaymentStatus::Failed, "RecordRefund"));
    let mut history = captured(5_000);
    history.push(refunded(REFUND, 5_000, 5_000, true));
    let err = given::<Payment>(history)
        .when(record(REFUND2, 1))
        .then_expect_error();
    assert_eq!(err, invalid(PaymentStatus::Refunded, "RecordRefund"));
}

#[test]
fn events_round_trip_through_json() {
    use crate::aggregate::DomainEvent;
    let mut all = action_required();
    all.extend(captured(5_000));
    all.push(requested(REFUND, 1));
    all.push(refunded(REFUND, 1, 1, false));
    all.extend(failed());
    all.extend(voided());
    for e in all {
        let json = serde_json::to_value(&e).unwrap();
        assert!(
            json.get(e.event_type()).is_some(),
            "externally tagged: {json}"
        );
        assert_eq!(e.event_version(), "1.0");
        assert_eq!(serde_json::from_value::<PaymentEvent>(json).unwrap(), e);
    }
    assert_eq!(
        invalid(PaymentStatus::Voided, "CapturePayment").to_string(),
        "CapturePayment is not allowed when the payment is voided"
    );
}
