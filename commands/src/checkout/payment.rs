//! The one place where a provider's answer becomes payment commands.
//!
//! Whatever reported the intent (a confirm, a capture, a cancel, a retrieve after 3-D
//! Secure, a webhook's reconciliation), [`commands_for`] compares it with what the
//! payment aggregate already holds and returns the commands that bring the aggregate
//! up to the provider's state, in order. Every one of them is idempotent in the
//! aggregate, so reporting the same intent twice records nothing the second time.

use chrono::{DateTime, Utc};
use emporium_domain::payment::{DeclineCode, Payment, PaymentCommand, PaymentStatus};

use crate::payments::{IntentStatus, PaymentIntent};

/// The commands that move `payment` to what `intent` says; `decline` is the code a
/// confirmation reported when the intent itself does not carry it.
#[must_use]
pub fn commands_for(
    payment: &Payment,
    intent: &PaymentIntent,
    decline: Option<DeclineCode>,
    at: DateTime<Utc>,
) -> Vec<PaymentCommand> {
    let Some(status) = payment.status() else {
        return Vec::new();
    };
    let authorised = matches!(
        status,
        PaymentStatus::Authorised | PaymentStatus::Captured | PaymentStatus::Refunded
    );
    let mut commands = Vec::new();
    match intent.status {
        IntentStatus::RequiresAction => {
            if status == PaymentStatus::Created
                && let Some(next_action) = intent.next_action.clone()
            {
                commands.push(PaymentCommand::RequireAction { next_action, at });
            }
        }
        IntentStatus::RequiresCapture => {
            if !authorised && !is_final(status) {
                commands.push(PaymentCommand::AuthorisePayment {
                    amount: intent.amount_capturable,
                    at,
                });
            }
        }
        IntentStatus::Succeeded => {
            if !authorised && !is_final(status) {
                commands.push(PaymentCommand::AuthorisePayment {
                    amount: intent.amount_received,
                    at,
                });
            }
            if !matches!(status, PaymentStatus::Captured | PaymentStatus::Refunded)
                && !is_final(status)
            {
                commands.push(PaymentCommand::CapturePayment {
                    amount: intent.amount_received,
                    at,
                });
            }
        }
        IntentStatus::RequiresPaymentMethod => {
            if let Some(reason) = intent.last_decline.or(decline)
                && matches!(
                    status,
                    PaymentStatus::Created | PaymentStatus::RequiresAction
                )
            {
                commands.push(PaymentCommand::FailPayment { reason, at });
            }
        }
        IntentStatus::Canceled => {
            if matches!(
                status,
                PaymentStatus::Created | PaymentStatus::RequiresAction | PaymentStatus::Authorised
            ) {
                commands.push(PaymentCommand::VoidPayment { at });
            }
        }
        IntentStatus::Processing => {}
    }
    commands
}

/// A payment that no provider report can move on (except refunds, recorded apart).
fn is_final(status: PaymentStatus) -> bool {
    matches!(status, PaymentStatus::Failed | PaymentStatus::Voided)
}

#[cfg(test)]
mod tests {
    use emporium_domain::payment::NextAction;
    use emporium_domain::{Aggregate, Currency, Money};
    use uuid::Uuid;

    use super::*;
    use crate::payments::IntentId;

    fn eur(minor: i64) -> Money {
        Money::new(minor, Currency::EUR)
    }

    fn created() -> Payment {
        let mut p = Payment::default();
        let events = p
            .handle(PaymentCommand::CreatePayment {
                payment_id: Uuid::new_v4(),
                order_id: Uuid::new_v4(),
                provider: "offline".into(),
                provider_intent_id: "pi_1".into(),
                amount: eur(1000),
                idempotency_key: "create_intent-x".into(),
                at: Utc::now(),
            })
            .unwrap();
        for e in &events {
            p.apply(e);
        }
        p
    }

    fn intent(status: IntentStatus) -> PaymentIntent {
        PaymentIntent {
            id: IntentId("pi_1".into()),
            order_id: Uuid::new_v4(),
            amount: eur(1000),
            amount_capturable: if status == IntentStatus::RequiresCapture {
                eur(1000)
            } else {
                eur(0)
            },
            amount_received: if status == IntentStatus::Succeeded {
                eur(1000)
            } else {
                eur(0)
            },
            amount_refunded: eur(0),
            status,
            next_action: (status == IntentStatus::RequiresAction).then(|| NextAction::UseSdk {
                client_secret: "s".into(),
            }),
            last_decline: (status == IntentStatus::RequiresPaymentMethod)
                .then_some(DeclineCode::CardDeclined),
            card: None,
            client_secret: "s".into(),
        }
    }

    fn names(commands: &[PaymentCommand]) -> Vec<&'static str> {
        commands
            .iter()
            .map(|c| match c {
                PaymentCommand::RequireAction { .. } => "require_action",
                PaymentCommand::AuthorisePayment { .. } => "authorise",
                PaymentCommand::CapturePayment { .. } => "capture",
                PaymentCommand::FailPayment { .. } => "fail",
                PaymentCommand::VoidPayment { .. } => "void",
                _ => "other",
            })
            .collect()
    }

    #[test]
    fn each_intent_status_maps_to_the_missing_commands() {
        let p = created();
        let now = Utc::now();
        let cases = [
            (IntentStatus::RequiresAction, vec!["require_action"]),
            (IntentStatus::RequiresCapture, vec!["authorise"]),
            (IntentStatus::Succeeded, vec!["authorise", "capture"]),
            (IntentStatus::RequiresPaymentMethod, vec!["fail"]),
            (IntentStatus::Canceled, vec!["void"]),
            (IntentStatus::Processing, vec![]),
        ];
        for (status, expected) in cases {
            assert_eq!(
                names(&commands_for(&p, &intent(status), None, now)),
                expected,
                "{status}"
            );
        }
        assert!(
            commands_for(
                &Payment::default(),
                &intent(IntentStatus::Succeeded),
                None,
                now
            )
            .is_empty()
        );
    }

    #[test]
    fn applying_the_commands_twice_records_nothing_new() {
        let mut p = created();
        let now = Utc::now();
        let i = intent(IntentStatus::Succeeded);
        for c in commands_for(&p, &i, None, now) {
            for e in p.handle(c).unwrap() {
                p.apply(&e);
            }
        }
        assert_eq!(p.status(), Some(PaymentStatus::Captured));
        assert!(commands_for(&p, &i, None, now).is_empty());
    }
}
