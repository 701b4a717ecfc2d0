//! Invariants of the order over random command sequences.

use proptest::prelude::*;
use uuid::Uuid;

use super::tests::{address, at, eur, line};
use super::*;
use crate::{Currency, Money};

/// Stands for "the exact amount due" in generated `MarkPaid` / `RefundOrder` commands;
/// the test fills in the grand total or the remainder, so sequences reach paid and fully
/// refunded orders often.
const EXACT: i64 = i64::MIN;

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

/// A checkout snapshot. With `valid`, one the aggregate accepts; otherwise sometimes
/// empty, with a dishonest line total or with discounts above the total.
fn place(valid: bool) -> impl Strategy<Value = OrderCommand> {
    let (min_lines, honest, max_discount) = if valid { (1, 1.0, 1) } else { (0, 0.9, 6_000) };
    let lines = prop::collection::vec(
        (0i64..5_000, 1i64..5, prop::bool::weighted(honest)),
        min_lines..4,
    );
    (lines, 0i64..2_000, 0i64..1_000, 0i64..max_discount).prop_map(
        |(lines, tax, ship, discount)| OrderCommand::PlaceOrder {
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
        },
    )
}

/// Any command, weighted towards the happy path: cancellation is terminal and would
/// otherwise end most sequences before payment.
fn command() -> impl Strategy<Value = OrderCommand> {
    let minute = (1i64..100).prop_map(at);
    let payment = (0u128..2).prop_map(Uuid::from_u128);
    let exact_or = |range: std::ops::Range<i64>| {
        prop::option::weighted(0.3, range).prop_map(|a| eur(a.unwrap_or(EXACT)))
    };
    prop_oneof![
        1 => place(false),
        8 => minute.clone().prop_map(|at| OrderCommand::MarkStockReserved { at }),
        6 => (0u8..120, minute.clone())
            .prop_map(|(risk_score, at)| OrderCommand::PassFraudCheck { risk_score, reasons: Vec::new(), at }),
        2 => (0u8..120, minute.clone())
            .prop_map(|(risk_score, at)| OrderCommand::HoldForReview { risk_score, reasons: Vec::new(), at }),
        4 => minute.clone().prop_map(|at| OrderCommand::ApproveHeldOrder { at }),
        1 => minute.clone().prop_map(|at| OrderCommand::RejectHeldOrder { at }),
        1 => (payment.clone(), minute.clone())
            .prop_map(|(payment_id, at)| OrderCommand::RecordPaymentFailure { payment_id, at }),
        8 => (payment, exact_or(0..10_000), minute.clone())
            .prop_map(|(payment_id, amount, at)| OrderCommand::MarkPaid { payment_id, amount, at }),
        6 => (prop::option::of("[A-Z0-9 ]{0,4}"), minute.clone())
            .prop_map(|(tracking_number, at)| OrderCommand::ShipOrder { tracking_number, at }),
        4 => minute.clone().prop_map(|at| OrderCommand::MarkDelivered { at }),
        1 => (reason(), minute.clone())
            .prop_map(|(reason, at)| OrderCommand::CancelOrder { reason, at }),
        12 => ((0u128..4).prop_map(Uuid::from_u128), exact_or(-100..4_000), minute)
            .prop_map(|(refund_id, amount, at)| OrderCommand::RefundOrder { refund_id, amount, at }),
    ]
}

/// Replaces the `EXACT` placeholder by the amount due now.
fn fill_in(command: &mut OrderCommand, order: &Order) {
    match command {
        OrderCommand::MarkPaid { amount, .. } if amount.amount_minor() == EXACT => {
            *amount = order.grand_total().unwrap_or(eur(1));
        }
        OrderCommand::RefundOrder { amount, .. } if amount.amount_minor() == EXACT => {
            let paid = order.paid().map_or(1, Money::amount_minor);
            let refunded = order.refunded().map_or(0, Money::amount_minor);
            *amount = eur(paid - refunded);
        }
        _ => {}
    }
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
        first in place(true),
        commands in prop::collection::vec(command(), 0..40),
    ) {
        let mut order = Order::default();
        for mut command in std::iter::once(first).chain(commands) {
            fill_in(&mut command, &order);
            let Ok(events) = order.handle(command) else {
                continue;
            };
            for e in &events {
                let from = order.status();
                order.apply(e);
                match (from, order.status()) {
                    (Some(from), Some(to)) if from != to => {
                        prop_assert!(from.can_transition_to(to), "illegal {} -> {}", from, to);
                    }
                    (None, to) => prop_assert_eq!(to, Some(OrderStatus::Pending)),
                    _ => {}
                }
            }
            check_invariants(&order)?;
        }
    }

    #[test]
    fn any_amounts_in_another_currency_are_refused(minor in 1i64..10_000) {
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
        let refused = matches!(
            Order::default().handle(command),
            Err(OrderError::CurrencyMismatch { .. })
        );
        prop_assert!(refused);
    }
}
