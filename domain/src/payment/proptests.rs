//! Invariants of the payment over random command sequences.

use proptest::prelude::*;
use uuid::Uuid;

use super::tests::{at, create, eur};
use super::*;

/// Stands for "whatever is left to refund" in a generated `RecordRefund`; the test fills
/// it in, so sequences reach fully refunded payments often.
const REST: i64 = i64::MIN;

fn decline() -> impl Strategy<Value = DeclineCode> {
    prop_oneof![
        Just(DeclineCode::CardDeclined),
        Just(DeclineCode::InsufficientFunds),
        Just(DeclineCode::ExpiredCard),
        Just(DeclineCode::IncorrectCvc),
        Just(DeclineCode::ProcessingError),
        Just(DeclineCode::Other),
    ]
}

/// Any command. Amounts are mostly small, so authorisations, captures and refunds often
/// fit, and sometimes anything, so the limits are hit too. Failing and voiding end a
/// payment, so they are rarer than the steps onwards.
fn command() -> impl Strategy<Value = PaymentCommand> {
    let minute = (1i64..100).prop_map(at);
    let amount = prop_oneof![3 => 1i64..800, 1 => -10i64..6_000].prop_map(eur);
    let refund_id = (0u128..5).prop_map(Uuid::from_u128);
    let next_action = prop_oneof![
        Just(NextAction::UseSdk {
            client_secret: "secret".into()
        }),
        Just(NextAction::RedirectToUrl {
            url: "https://bank.example/3ds".into()
        }),
    ];
    prop_oneof![
        1 => (1i64..6_000).prop_map(create),
        2 => (next_action, minute.clone())
            .prop_map(|(next_action, at)| PaymentCommand::RequireAction { next_action, at }),
        8 => (amount.clone(), minute.clone())
            .prop_map(|(amount, at)| PaymentCommand::AuthorisePayment { amount, at }),
        8 => (amount.clone(), minute.clone())
            .prop_map(|(amount, at)| PaymentCommand::CapturePayment { amount, at }),
        1 => (decline(), minute.clone())
            .prop_map(|(reason, at)| PaymentCommand::FailPayment { reason, at }),
        1 => minute.clone().prop_map(|at| PaymentCommand::VoidPayment { at }),
        6 => (refund_id.clone(), amount.clone(), minute.clone())
            .prop_map(|(refund_id, amount, at)| PaymentCommand::RequestRefund { refund_id, amount, at }),
        6 => (
            refund_id,
            prop::option::weighted(0.7, amount).prop_map(|a| a.unwrap_or(eur(REST))),
            minute,
        )
            .prop_map(|(refund_id, amount, at)| PaymentCommand::RecordRefund { refund_id, amount, at }),
    ]
}

fn check_invariants(p: &Payment) -> Result<(), TestCaseError> {
    let Some(amount) = p.amount() else {
        return Ok(());
    };
    if let Some(authorised) = p.authorised() {
        prop_assert!(authorised.amount_minor() > 0);
        prop_assert!(authorised.amount_minor() <= amount.amount_minor());
    }
    let captured = p.captured().map_or(0, |c| c.amount_minor());
    if let Some(c) = p.captured() {
        prop_assert!(c.amount_minor() <= p.authorised().map_or(0, |a| a.amount_minor()));
    }
    // Refunds, requested or completed, never exceed what was captured.
    prop_assert!(p.refunded_minor() <= p.committed_refunds_minor());
    prop_assert!(p.committed_refunds_minor() <= captured);
    prop_assert_eq!(
        p.status() == Some(PaymentStatus::Refunded),
        captured > 0 && p.refunded_minor() == captured
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn refunds_never_exceed_the_capture_and_transitions_are_legal(
        first in (800i64..6_000).prop_map(create),
        commands in prop::collection::vec(command(), 0..50),
    ) {
        let mut payment = Payment::default();
        for mut command in std::iter::once(first).chain(commands) {
            if let PaymentCommand::RecordRefund { amount, .. } = &mut command
                && amount.amount_minor() == REST
            {
                let captured = payment.captured().map_or(1, |c| c.amount_minor());
                *amount = eur(captured - payment.committed_refunds_minor());
            }
            let Ok(events) = payment.handle(command.clone()) else {
                continue;
            };
            for e in &events {
                let from = payment.status();
                payment.apply(e);
                if let (Some(from), Some(to)) = (from, payment.status())
                    && from != to
                {
                    prop_assert!(from.can_transition_to(to), "illegal {} -> {}", from, to);
                }
            }
            check_invariants(&payment)?;
            // Every accepted command is safe to redeliver.
            prop_assert_eq!(payment.handle(command), Ok(vec![]));
        }
    }
}
