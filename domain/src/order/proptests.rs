//! Invariants of the order over random command sequences.

use proptest::prelude::*;
use uuid::Uuid;

use super::tests::{address, at, eur, line};
use super::*;
use crate::{Currency, Money};

fn reason() -> impl Strategy<Value = CancellationReason> {
    prop_oneof![
        Just(CancellationReason::CustomerRequest),
        Just(CancellationReason::OutOfStock),
        Just(CancellationReason::ReservationExpired),
        Just(CancellationReason::PaymentFailed),
        Just(CancellationReason::FraudRejected),
        Just(CancellationReason::StaffDecision),
    ]
}

/// A checkout snapshot, sometimes invalid (bad line totals, big discounts).
fn place() -> impl Strategy<Value = OrderCommand> {
    let lines = prop::collection::vec((0i64..5_000, 1i64..5, any::<bool>()), 0..4);
    (lines, 0i64..2_000, 0i64..1_000, 0i64..6_000).prop_map(|(lines, tax, ship, discount)| {
        OrderCommand::PlaceOrder {
            order_id: Uuid::from_u128(1),
            customer_id: Uuid::from_u128(2),
            lines: lines
                .into_iter()
                .enumerate()
                .map(|(i, (price, qty, honest))| {
                    let mut l = line(&format!("SKU-{i}"), price, qty);
                    if !honest {
                        l.line_total = eur(price * qty + 1);
                    }
                    l
                })
                .collect(),
            tax_total: eur(tax),
            shipping_total: eur(ship),
            discount_total: eur(discount),
            shipping_address: address(),
            billing_address: address(),
            currency: Currency::EUR,
            at: at(0),
        }
    })
}

/// Any command; payments and refunds use a few ids and amounts near the totals.
fn command() -> impl Strategy<Value = OrderCommand> {
    let minute = (1i64..100).prop_map(at);
    let payment = (0u128..2).prop_map(Uuid::from_u128);
    prop_oneof![
        place(),
        minute
            .clone()
            .prop_map(|at| OrderCommand::MarkStockReserved { at }),
        (0u8..120, minute.clone())
            .prop_map(|(risk_score, at)| OrderCommand::PassFraudCheck { risk_score, at }),
        (0u8..120, minute.clone())
            .prop_map(|(risk_score, at)| OrderCommand::HoldForReview { risk_score, at }),
        minute
            .clone()
            .prop_map(|at| OrderCommand::ApproveHeldOrder { at }),
        minute
            .clone()
            .prop_map(|at| OrderCommand::RejectHeldOrder { at }),
        (payment.clone(), minute.clone())
            .prop_map(|(payment_id, at)| OrderCommand::RecordPaymentFailure { payment_id, at }),
        // `None` pays the exact grand total, filled in by the test.
        (payment, prop::option::of(0i64..10_000), minute.clone()).prop_map(
            |(payment_id, amount, at)| {
                OrderCommand::MarkPaid {
                    payment_id,
                    amount: eur(amount.unwrap_or(-1)),
                    at,
                }
            }
        ),
        (prop::option::of("[A-Z0-9 ]{0,4}"), minute.clone()).prop_map(|(tracking_number, at)| {
            OrderCommand::ShipOrder {
                tracking_number,
                at,
            }
        }),
        minute
            .clone()
            .prop_map(|at| OrderCommand::MarkDelivered { at }),
        (reason(), minute.clone())
            .prop_map(|(reason, at)| OrderCommand::CancelOrder { reason, at }),
        ((0u128..4).prop_map(Uuid::from_u128), -100i64..4_000, minute).prop_map(
            |(refund_id, amount, at)| OrderCommand::RefundOrder {
                refund_id,
                amount: eur(amount),
                at
            }
        ),
    ]
}

fn check_invariants(order: &Order) -> Result<(), TestCaseError> {
    let Some(grand_total) = order.grand_total() else {
        return Ok(());
    };
    // total = lines + tax + shipping - discounts, and never negative.
    let lines: i64 = order
        .lines()
        .iter()
        .map(|l| l.line_total.amount_minor())
        .sum();
    for l in order.lines() {
        prop_assert_eq!(
            l.line_total.amount_minor(),
            l.unit_price.amount_minor() * i64::from(l.quantity.get())
        );
    }
    let (tax, shipping, discount) = order.adjustments().unwrap();
    prop_assert_eq!(order.subtotal().unwrap().amount_minor(), lines);
    prop_assert_eq!(
        grand_total.amount_minor(),
        lines + tax.amount_minor() + shipping.amount_minor() - discount.amount_minor()
    );
    prop_assert!(!grand_total.is_negative());
    prop_assert!(!order.lines().is_empty());

    // Refunds never exceed what was paid; only paid orders are refunded.
    match (order.paid(), order.refunded()) {
        (_, None) => prop_assert_ne!(order.status(), Some(OrderStatus::Refunded)),
        (None, Some(_)) => prop_assert!(false, "refunded without payment"),
        (Some(paid), Some(refunded)) => {
            prop_assert_eq!(paid, grand_total);
            prop_assert!(refunded.amount_minor() <= paid.amount_minor());
            prop_assert_eq!(
                order.status() == Some(OrderStatus::Refunded),
                refunded == paid
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn only_legal_transitions_and_totals_and_refunds_hold(
        first in place(),
        commands in prop::collection::vec(command(), 0..40),
    ) {
        let mut order = Order::default();
        for mut command in std::iter::once(first).chain(commands) {
            if let (OrderCommand::MarkPaid { amount, .. }, Some(total)) = (&mut command, order.grand_total())
                && amount.amount_minor() < 0
            {
                *amount = total;
            }
            let before = order.status();
            let Ok(events) = order.handle(command) else {
                continue;
            };
            for e in &events {
                let from = order.status();
                order.apply(e);
                if let (Some(from), Some(to)) = (from, order.status())
                    && from != to
                {
                    prop_assert!(from.can_transition_to(to), "illegal {} -> {}", from, to);
                }
            }
            if before.is_none() {
                prop_assert!(events.is_empty() || order.status() == Some(OrderStatus::Pending));
            }
            check_invariants(&order)?;
        }
    }

    #[test]
    fn any_amounts_in_another_currency_are_refused(minor in 1i64..10_000) {
        let order = Order::default();
        let command = OrderCommand::PlaceOrder {
            order_id: Uuid::from_u128(1),
            customer_id: Uuid::from_u128(2),
            lines: vec![line("SKU-A", minor, 1)],
            tax_total: Money::new(minor, Currency::USD),
            shipping_total: eur(0),
            discount_total: eur(0),
            shipping_address: address(),
            billing_address: address(),
            currency: Currency::EUR,
            at: at(0),
        };
        let refused = matches!(order.handle(command), Err(OrderError::CurrencyMismatch { .. }));
        prop_assert!(refused);
    }
}
