//! Bringing a [`Payment`] in line with the provider's intent.
//!
//! Webhooks arrive late, twice, or out of order (a refund before the success that
//! preceded it). Their payload is therefore only a hint of *which* intent changed: the
//! webhook endpoint retrieves the intent's current state from the provider and asks
//! [`reconcile`] which payment commands close the gap. The answer depends only on the
//! payment's state and the intent's, never on the order events arrived in, and
//! reconciling a payment that is already in line yields nothing, so a redelivered or
//! stale webhook records nothing.
//!
//! Each step is decided by the domain itself on a copy of the payment (`handle`, then
//! `apply`), so every returned command is one the aggregate accepts in sequence. The
//! walk follows the payment's status machine towards the intent's status:
//!
//! | intent (provider)                         | payment reaches                     |
//! | ----------------------------------------- | ----------------------------------- |
//! | any, payment not created yet              | `created` first (ids by convention) |
//! | `requires_payment_method` with a decline  | `failed` (with the decline code)    |
//! | `requires_action`                         | `requires_action`                   |
//! | `requires_capture`                        | `authorised`                        |
//! | `succeeded`                               | `captured`, plus refunds up to `amount_refunded` |
//! | `canceled`                                | `voided`                            |
//! | `processing`, `requires_payment_method` without a decline | unchanged           |
//!
//! A payment further along than the intent (or in a terminal status the intent
//! contradicts, e.g. `failed` while a later card succeeded at Stripe) is left as it
//! is: the status machine cannot go back, and [`in_line`] reports the drift.
//!
//! **Refunds** are matched against the payment's own: the difference between the
//! intent's `amount_refunded` and the refunds the payment has completed first
//! completes refunds the platform requested (oldest id first, when one fits), and any
//! rest is recorded as a refund made at the provider (its dashboard) under an id
//! derived from the payment and the cumulative refunded total, so two deliveries of
//! the same state derive the same id and record it once.

use chrono::{DateTime, Utc};
use emporium_domain::Money;
use emporium_domain::aggregate::Aggregate;
use emporium_domain::payment::{NextAction, Payment, PaymentCommand, PaymentStatus};
use uuid::Uuid;

use super::{IdempotencyKey, IntentStatus, PaymentIntent};

/// The payment of `order_id`: one payment per order, by convention of the checkout and
/// the webhook alike.
#[must_use]
pub fn payment_id_for(order_id: Uuid) -> Uuid {
    Uuid::new_v5(&order_id, b"payment")
}

/// The idempotency key of the intent creation for `payment_id` (and the key the
/// payment records).
#[must_use]
pub fn create_intent_key(payment_id: Uuid) -> IdempotencyKey {
    IdempotencyKey::for_command("create_intent", payment_id)
}

/// What [`reconcile`] needs besides the two states.
#[derive(Debug, Clone, Copy)]
pub struct Reconciling<'a> {
    /// The provider's name, recorded when the payment has to be created.
    pub provider: &'a str,
    /// The time the commands carry.
    pub at: DateTime<Utc>,
}

/// More steps than any walk needs (create, action, authorise, capture, and a refund per
/// pending request): a guard against a loop, never reached.
const MAX_STEPS: usize = 64;

/// The commands that bring `payment` in line with `intent`, in order; empty when it is
/// in line already (or cannot be brought further). Pure.
#[must_use]
pub fn reconcile(
    payment: &Payment,
    intent: &PaymentIntent,
    ctx: Reconciling<'_>,
) -> Vec<PaymentCommand> {
    let mut state = payment.clone();
    let mut commands = Vec::new();
    for _ in 0..MAX_STEPS {
        let Some(command) = next_step(&state, intent, ctx) else {
            break;
        };
        match state.handle(command.clone()) {
            Ok(events) if !events.is_empty() => {
                for event in &events {
                    state.apply(event);
                }
                commands.push(command);
            }
            // A step the payment refuses, or one it already holds: the walk ends here.
            Ok(_) | Err(_) => break,
        }
    }
    commands
}

/// Whether `payment` agrees with `intent`: what [`reconcile`] would reach is where the
/// payment is. `false` means drift that commands cannot fix (log it).
#[must_use]
pub fn in_line(payment: &Payment, intent: &PaymentIntent) -> bool {
    let Some(status) = payment.status() else {
        return false;
    };
    let refunded_in_line = payment.refunded_minor() == intent.amount_refunded.amount_minor();
    match intent.status {
        IntentStatus::RequiresPaymentMethod => match intent.last_decline {
            Some(_) => status == PaymentStatus::Failed,
            None => status == PaymentStatus::Created,
        },
        IntentStatus::RequiresAction => status == PaymentStatus::RequiresAction,
        IntentStatus::Processing => matches!(
            status,
            PaymentStatus::Created | PaymentStatus::RequiresAction
        ),
        IntentStatus::RequiresCapture => status == PaymentStatus::Authorised,
        IntentStatus::Succeeded => {
            matches!(status, PaymentStatus::Captured | PaymentStatus::Refunded) && refunded_in_line
        }
        IntentStatus::Canceled => status == PaymentStatus::Voided,
    }
}

fn next_step(
    payment: &Payment,
    intent: &PaymentIntent,
    ctx: Reconciling<'_>,
) -> Option<PaymentCommand> {
    use PaymentStatus as P;
    let at = ctx.at;
    let Some(status) = payment.status() else {
        let payment_id = payment_id_for(intent.order_id);
        return Some(PaymentCommand::CreatePayment {
            payment_id,
            order_id: intent.order_id,
            provider: ctx.provider.to_owned(),
            provider_intent_id: intent.id.0.clone(),
            amount: intent.amount,
            idempotency_key: create_intent_key(payment_id).as_str().to_owned(),
            at,
        });
    };
    match (status, intent.status) {
        (P::Created | P::RequiresAction, IntentStatus::RequiresPaymentMethod) => intent
            .last_decline
            .map(|reason| PaymentCommand::FailPayment { reason, at }),
        (P::Created, IntentStatus::RequiresAction) => Some(PaymentCommand::RequireAction {
            next_action: intent
                .next_action
                .clone()
                .unwrap_or_else(|| NextAction::UseSdk {
                    client_secret: intent.client_secret.clone(),
                }),
            at,
        }),
        (P::Created | P::RequiresAction, IntentStatus::RequiresCapture) => {
            Some(PaymentCommand::AuthorisePayment {
                amount: if intent.amount_capturable.is_zero() {
                    intent.amount
                } else {
                    intent.amount_capturable
                },
                at,
            })
        }
        // Authorised for the whole amount; a partial capture released the rest.
        (P::Created | P::RequiresAction, IntentStatus::Succeeded) => {
            Some(PaymentCommand::AuthorisePayment {
                amount: intent.amount,
                at,
            })
        }
        (P::Authorised, IntentStatus::Succeeded) => Some(PaymentCommand::CapturePayment {
            amount: intent.amount_received,
            at,
        }),
        (P::Created | P::RequiresAction | P::Authorised, IntentStatus::Canceled) => {
            Some(PaymentCommand::VoidPayment { at })
        }
        (P::Captured, IntentStatus::Succeeded) => refund_step(payment, intent, at),
        _ => None,
    }
}

/// The next refund to record, if the provider refunded more than the payment knows.
fn refund_step(
    payment: &Payment,
    intent: &PaymentIntent,
    at: DateTime<Utc>,
) -> Option<PaymentCommand> {
    let missing = intent.amount_refunded.amount_minor() - payment.refunded_minor();
    if missing <= 0 {
        return None;
    }
    let currency = intent.amount_refunded.currency();
    // A refund the platform requested, completed at the provider.
    if let Some((refund_id, amount)) = payment
        .pending_refunds()
        .find(|(_, amount)| amount.amount_minor() <= missing)
    {
        return Some(PaymentCommand::RecordRefund {
            refund_id,
            amount,
            at,
        });
    }
    // A refund made at the provider directly.
    let payment_id = payment.id()?;
    let total = intent.amount_refunded.amount_minor();
    Some(PaymentCommand::RecordRefund {
        refund_id: Uuid::new_v5(
            &payment_id,
            format!("provider-refund-to-{total}").as_bytes(),
        ),
        amount: Money::new(missing, currency),
        at,
    })
}

#[cfg(test)]
mod tests {
    use emporium_domain::Currency;
    use emporium_domain::payment::{DeclineCode, PaymentEvent};

    use super::*;
    use crate::payments::IntentId;

    const ORDER: Uuid = Uuid::from_u128(7);

    fn eur(minor: i64) -> Money {
        Money::new(minor, Currency::EUR)
    }

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).unwrap()
    }

    fn ctx() -> Reconciling<'static> {
        Reconciling {
            provider: "offline",
            at: at(),
        }
    }

    fn run(payment: &mut Payment, command: PaymentCommand) {
        let events = payment
            .handle(command.clone())
            .unwrap_or_else(|e| panic!("{command:?}: {e}"));
        for e in &events {
            payment.apply(e);
        }
    }

    fn apply_all(payment: &Payment, commands: &[PaymentCommand]) -> Payment {
        let mut p = payment.clone();
        for c in commands {
            run(&mut p, c.clone());
        }
        p
    }

    fn create() -> PaymentCommand {
        let payment_id = payment_id_for(ORDER);
        PaymentCommand::CreatePayment {
            payment_id,
            order_id: ORDER,
            provider: "offline".into(),
            provider_intent_id: "pi_1".into(),
            amount: eur(5_000),
            idempotency_key: create_intent_key(payment_id).as_str().to_owned(),
            at: at(),
        }
    }

    /// A payment in `status` (`None`: never created), with `refunded` of 5 000 completed
    /// when captured/refunded.
    fn payment_in(status: Option<PaymentStatus>) -> Payment {
        use PaymentStatus as P;
        let mut p = Payment::default();
        let Some(status) = status else { return p };
        run(&mut p, create());
        let action = PaymentCommand::RequireAction {
            next_action: NextAction::UseSdk {
                client_secret: "pi_1_secret".into(),
            },
            at: at(),
        };
        match status {
            P::Created => {}
            P::RequiresAction => run(&mut p, action),
            P::Failed => run(
                &mut p,
                PaymentCommand::FailPayment {
                    reason: DeclineCode::CardDeclined,
                    at: at(),
                },
            ),
            P::Voided => run(&mut p, PaymentCommand::VoidPayment { at: at() }),
            P::Authorised | P::Captured | P::Refunded => {
                run(
                    &mut p,
                    PaymentCommand::AuthorisePayment {
                        amount: eur(5_000),
                        at: at(),
                    },
                );
                if status != P::Authorised {
                    run(
                        &mut p,
                        PaymentCommand::CapturePayment {
                            amount: eur(5_000),
                            at: at(),
                        },
                    );
                }
                if status == P::Refunded {
                    run(
                        &mut p,
                        PaymentCommand::RecordRefund {
                            refund_id: Uuid::from_u128(1),
                            amount: eur(5_000),
                            at: at(),
                        },
                    );
                }
            }
        }
        assert_eq!(p.status(), Some(status));
        p
    }

    fn intent(status: IntentStatus) -> PaymentIntent {
        let zero = eur(0);
        let mut i = PaymentIntent {
            id: IntentId("pi_1".into()),
            order_id: ORDER,
            amount: eur(5_000),
            amount_capturable: zero,
            amount_received: zero,
            amount_refunded: zero,
            status,
            next_action: None,
            last_decline: None,
            card: None,
            client_secret: "pi_1_secret".into(),
        };
        match status {
            IntentStatus::RequiresCapture => i.amount_capturable = eur(5_000),
            IntentStatus::Succeeded => i.amount_received = eur(5_000),
            IntentStatus::RequiresAction => {
                i.next_action = Some(NextAction::UseSdk {
                    client_secret: "pi_1_secret".into(),
                });
            }
            _ => {}
        }
        i
    }

    /// The intent states the table covers, each with the status a payment created
    /// before it should reach (`None`: unchanged).
    fn intents() -> Vec<(&'static str, PaymentIntent, Option<PaymentStatus>)> {
        use PaymentStatus as P;
        let mut declined = intent(IntentStatus::RequiresPaymentMethod);
        declined.last_decline = Some(DeclineCode::InsufficientFunds);
        let mut part_refunded = intent(IntentStatus::Succeeded);
        part_refunded.amount_refunded = eur(2_000);
        let mut refunded = intent(IntentStatus::Succeeded);
        refunded.amount_refunded = eur(5_000);
        vec![
            (
                "requires_payment_method",
                intent(IntentStatus::RequiresPaymentMethod),
                None,
            ),
            ("declined", declined, Some(P::Failed)),
            (
                "requires_action",
                intent(IntentStatus::RequiresAction),
                Some(P::RequiresAction),
            ),
            ("processing", intent(IntentStatus::Processing), None),
            (
                "requires_capture",
                intent(IntentStatus::RequiresCapture),
                Some(P::Authorised),
            ),
            (
                "succeeded",
                intent(IntentStatus::Succeeded),
                Some(P::Captured),
            ),
            ("partly refunded", part_refunded, Some(P::Captured)),
            ("refunded", refunded, Some(P::Refunded)),
            ("canceled", intent(IntentStatus::Canceled), Some(P::Voided)),
        ]
    }

    /// Where a payment in `from` ends for an intent whose own target is `target`: the
    /// status machine only goes forward.
    fn expected(
        from: Option<PaymentStatus>,
        target: Option<PaymentStatus>,
    ) -> Option<PaymentStatus> {
        use PaymentStatus as P;
        let from_or_created = from.unwrap_or(P::Created);
        let Some(target) = target else {
            return Some(from_or_created);
        };
        let rank = |s: PaymentStatus| match s {
            P::Created => 0,
            P::RequiresAction => 1,
            P::Authorised => 2,
            P::Captured => 3,
            P::Refunded => 4,
            P::Failed | P::Voided => 5,
        };
        if from_or_created == target {
            return Some(target);
        }
        let reachable = match (from_or_created, target) {
            (P::Failed | P::Voided | P::Refunded, _) => false,
            (_, P::Failed) => matches!(from_or_created, P::Created | P::RequiresAction),
            (_, P::Voided) => matches!(
                from_or_created,
                P::Created | P::RequiresAction | P::Authorised
            ),
            // Requires action only from created.
            (_, P::RequiresAction) => from_or_created == P::Created,
            _ => rank(from_or_created) < rank(target),
        };
        Some(if reachable { target } else { from_or_created })
    }

    #[test]
    fn every_payment_status_against_every_intent_status() {
        let mut statuses: Vec<Option<PaymentStatus>> = vec![None];
        statuses.extend(PaymentStatus::ALL.map(Some));
        for from in statuses {
            for (name, intent, target) in intents() {
                let payment = payment_in(from);
                let commands = reconcile(&payment, &intent, ctx());
                let after = apply_all(&payment, &commands);
                assert_eq!(
                    after.status(),
                    expected(from, target),
                    "payment {from:?}, intent {name}: {commands:?}"
                );
                // Reconciling again changes nothing: a redelivered webhook is a no-op.
                assert!(
                    reconcile(&after, &intent, ctx()).is_empty(),
                    "payment {from:?}, intent {name}: not idempotent"
                );
                let refunded_expected = matches!(
                    after.status(),
                    Some(PaymentStatus::Captured | PaymentStatus::Refunded)
                ) && intent.status == IntentStatus::Succeeded;
                if refunded_expected && from != Some(PaymentStatus::Refunded) {
                    assert_eq!(
                        after.refunded_minor(),
                        intent.amount_refunded.amount_minor(),
                        "{from:?} {name}"
                    );
                }
                if expected(from, target) == target.or(Some(from.unwrap_or(PaymentStatus::Created)))
                    && target.is_some()
                {
                    assert!(
                        in_line(&after, &intent) || from == Some(PaymentStatus::Refunded),
                        "payment {from:?}, intent {name}: not in line"
                    );
                }
            }
        }
    }

    #[test]
    fn a_refund_seen_before_the_capture_brings_an_authorised_payment_to_refunded() {
        let payment = payment_in(Some(PaymentStatus::Authorised));
        let mut refunded = intent(IntentStatus::Succeeded);
        refunded.amount_refunded = eur(5_000);
        let commands = reconcile(&payment, &refunded, ctx());
        assert!(
            matches!(commands[0], PaymentCommand::CapturePayment { amount, .. } if amount == eur(5_000))
        );
        assert!(
            matches!(commands[1], PaymentCommand::RecordRefund { amount, .. } if amount == eur(5_000))
        );
        assert_eq!(commands.len(), 2);
        let after = apply_all(&payment, &commands);
        assert_eq!(after.status(), Some(PaymentStatus::Refunded));
        // The success webhook arriving afterwards finds nothing to do.
        assert!(reconcile(&after, &intent(IntentStatus::Succeeded), ctx()).is_empty());
    }

    #[test]
    fn requested_refunds_are_completed_before_provider_refunds_are_recorded() {
        let mut payment = payment_in(Some(PaymentStatus::Captured));
        let ours = Uuid::from_u128(99);
        run(
            &mut payment,
            PaymentCommand::RequestRefund {
                refund_id: ours,
                amount: eur(1_000),
                at: at(),
            },
        );
        // The provider reports 1 000 refunded: ours, completed.
        let mut i = intent(IntentStatus::Succeeded);
        i.amount_refunded = eur(1_000);
        let commands = reconcile(&payment, &i, ctx());
        assert_eq!(
            commands,
            vec![PaymentCommand::RecordRefund {
                refund_id: ours,
                amount: eur(1_000),
                at: at()
            }]
        );
        // Then 1 500 more from the dashboard: recorded under a derived id, the same for
        // every delivery of that state.
        let payment = apply_all(&payment, &commands);
        i.amount_refunded = eur(2_500);
        let first = reconcile(&payment, &i, ctx());
        let again = reconcile(&payment, &i, ctx());
        assert_eq!(first, again);
        let [
            PaymentCommand::RecordRefund {
                refund_id, amount, ..
            },
        ] = first.as_slice()
        else {
            panic!("{first:?}");
        };
        assert_ne!(*refund_id, ours);
        assert_eq!(*amount, eur(1_500));
        let after = apply_all(&payment, &first);
        assert_eq!(after.refunded_minor(), 2_500);
        assert!(in_line(&after, &i));
    }

    #[test]
    fn a_missing_payment_is_created_by_the_conventions() {
        let commands = reconcile(
            &Payment::default(),
            &intent(IntentStatus::RequiresCapture),
            ctx(),
        );
        let after = apply_all(&Payment::default(), &commands);
        assert_eq!(after.id(), Some(payment_id_for(ORDER)));
        assert_eq!(after.order_id(), Some(ORDER));
        assert_eq!(after.provider_intent_id(), Some("pi_1"));
        assert_eq!(after.status(), Some(PaymentStatus::Authorised));
        assert!(matches!(
            &commands[0],
            PaymentCommand::CreatePayment { idempotency_key, .. } if *idempotency_key == format!("create_intent-{}", payment_id_for(ORDER))
        ));
        let _unused: Option<PaymentEvent> = None;
    }

    #[test]
    fn drift_the_machine_cannot_undo_is_reported() {
        // Failed here, but another card succeeded at the provider.
        let failed = payment_in(Some(PaymentStatus::Failed));
        let succeeded = intent(IntentStatus::Succeeded);
        assert!(reconcile(&failed, &succeeded, ctx()).is_empty());
        assert!(!in_line(&failed, &succeeded));
    }
}
