//! Given/when/then for every order command, accepted and refused.

use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

use super::*;
use crate::testing::{given, given_no_history};
use crate::{Address, AddressInput, Currency, Money, Quantity, Sku};

pub(super) fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap() + Duration::minutes(minute)
}

pub(super) fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

pub(super) fn address() -> Address {
    Address::parse(AddressInput {
        full_name: "Ada Lovelace".into(),
        line1: "12 St James's Square".into(),
        city: "London".into(),
        postal_code: "SW1Y 4JH".into(),
        country: "GB".into(),
        ..AddressInput::default()
    })
    .unwrap()
}

pub(super) fn line(sku: &str, unit_price: i64, quantity: i64) -> OrderLine {
    OrderLine {
        sku: Sku::parse(sku).unwrap(),
        product_id: Uuid::from_u128(7),
        name: format!("Product {sku}"),
        unit_price: eur(unit_price),
        quantity: Quantity::new(quantity).unwrap(),
        line_total: eur(unit_price * quantity),
    }
}

pub(super) const ORDER: Uuid = Uuid::from_u128(1);
const CUSTOMER: Uuid = Uuid::from_u128(2);
const PAYMENT: Uuid = Uuid::from_u128(3);
const REFUND: Uuid = Uuid::from_u128(4);

/// Two lines (2 x 10.00 + 1 x 5.50 = 25.50), tax 5.10, shipping 4.90, discount 2.50:
/// grand total 33.00.
pub(super) fn place() -> OrderCommand {
    OrderCommand::PlaceOrder {
        order_id: ORDER,
        customer_id: CUSTOMER,
        lines: vec![line("SKU-A", 1_000, 2), line("SKU-B", 550, 1)],
        tax_total: eur(510),
        shipping_total: eur(490),
        discount_total: eur(250),
        shipping_address: address(),
        billing_address: address(),
        currency: Currency::EUR,
        at: at(0),
    }
}

fn with_place(
    edit: impl FnOnce(&mut Vec<OrderLine>, &mut [&mut Money; 3], &mut Currency),
) -> OrderCommand {
    let mut command = place();
    if let OrderCommand::PlaceOrder {
        lines,
        tax_total,
        shipping_total,
        discount_total,
        currency,
        ..
    } = &mut command
    {
        edit(
            lines,
            &mut [tax_total, shipping_total, discount_total],
            currency,
        );
    }
    command
}

fn placed() -> OrderEvent {
    OrderEvent::OrderPlaced {
        order_id: ORDER,
        customer_id: CUSTOMER,
        lines: vec![line("SKU-A", 1_000, 2), line("SKU-B", 550, 1)],
        currency: Currency::EUR,
        subtotal: eur(2_550),
        tax_total: eur(510),
        shipping_total: eur(490),
        discount_total: eur(250),
        grand_total: eur(3_300),
        shipping_address: address(),
        billing_address: address(),
        at: at(0),
    }
}

fn reserved() -> Vec<OrderEvent> {
    vec![placed(), OrderEvent::OrderStockReserved { at: at(1) }]
}

fn held() -> Vec<OrderEvent> {
    let mut h = reserved();
    h.push(OrderEvent::OrderHeldForReview {
        risk_score: 80,
        reasons: Vec::new(),
        at: at(2),
    });
    h
}

fn awaiting_payment() -> Vec<OrderEvent> {
    let mut h = reserved();
    h.push(OrderEvent::OrderFraudCheckPassed {
        risk_score: 10,
        reasons: Vec::new(),
        at: at(2),
    });
    h
}

fn paid() -> Vec<OrderEvent> {
    let mut h = awaiting_payment();
    h.push(OrderEvent::OrderPaid {
        payment_id: PAYMENT,
        amount: eur(3_300),
        at: at(3),
    });
    h
}

fn shipped() -> Vec<OrderEvent> {
    let mut h = paid();
    h.push(OrderEvent::OrderShipped {
        tracking_number: Some("1Z999".into()),
        at: at(4),
    });
    h
}

fn delivered() -> Vec<OrderEvent> {
    let mut h = shipped();
    h.push(OrderEvent::OrderDelivered { at: at(5) });
    h
}

fn refunded(amount: i64, total: i64, full: bool) -> OrderEvent {
    OrderEvent::OrderRefunded {
        refund_id: REFUND,
        amount: eur(amount),
        total_refunded: eur(total),
        fully_refunded: full,
        at: at(6),
    }
}

fn invalid(from: OrderStatus, command: &'static str) -> OrderError {
    OrderError::InvalidTransition { from, command }
}

// --- the status table -----------------------------------------------------------------

#[test]
fn status_table_matches_the_documented_machine() {
    use OrderStatus::*;
    let legal = [
        (Pending, Reserved),
        (Pending, Cancelled),
        (Reserved, AwaitingPayment),
        (Reserved, HeldForReview),
        (Reserved, Cancelled),
        (HeldForReview, AwaitingPayment),
        (HeldForReview, Cancelled),
        (AwaitingPayment, Paid),
        (AwaitingPayment, PaymentFailed),
        (AwaitingPayment, Cancelled),
        (PaymentFailed, Cancelled),
        (Paid, Shipped),
        (Paid, Cancelled),
        (Paid, Refunded),
        (Shipped, Delivered),
        (Shipped, Refunded),
        (Delivered, Refunded),
        (Cancelled, Refunded),
    ];
    for from in OrderStatus::ALL {
        for to in OrderStatus::ALL {
            assert_eq!(
                from.can_transition_to(to),
                legal.contains(&(from, to)),
                "{from} -> {to}"
            );
        }
        // Nothing cancels after shipment.
        if from.is_shipped() {
            assert!(!from.can_transition_to(Cancelled));
        }
    }
    assert_eq!(
        serde_json::to_string(&HeldForReview).unwrap(),
        "\"held_for_review\""
    );
}

// --- PlaceOrder --------------------------------------------------------------------------

#[test]
fn place_computes_totals_and_records_the_snapshot() {
    let (events, state) = given_no_history::<Order>().when(place()).then_state();
    assert_eq!(events, vec![placed()]);
    assert_eq!(state.status(), Some(OrderStatus::Pending));
    assert_eq!(state.id(), Some(ORDER));
    assert_eq!(state.customer_id(), Some(CUSTOMER));
    assert_eq!(state.lines().len(), 2);
    assert_eq!(state.subtotal(), Some(eur(2_550)));
    assert_eq!(state.adjustments(), Some((eur(510), eur(490), eur(250))));
    assert_eq!(state.grand_total(), Some(eur(3_300)));
}

#[test]
fn place_repeated_is_a_no_op_and_a_different_snapshot_is_refused() {
    let mut retry = place();
    if let OrderCommand::PlaceOrder { at: when, .. } = &mut retry {
        *when = at(9);
    }
    given::<Order>([placed()])
        .when(retry)
        .then_expect_events([]);
    let err = given::<Order>([placed()])
        .when(with_place(|_, amounts, _| *amounts[1] = eur(0)))
        .then_expect_error();
    assert_eq!(err, OrderError::AlreadyPlaced { order_id: ORDER });
}

#[test]
fn place_without_lines_is_refused() {
    let err = given_no_history::<Order>()
        .when(with_place(|lines, _, _| lines.clear()))
        .then_expect_error();
    assert_eq!(err, OrderError::EmptyOrder);
}

#[test]
fn place_with_mixed_currencies_is_refused() {
    let err = given_no_history::<Order>()
        .when(with_place(|lines, _, _| {
            lines[1].unit_price = Money::new(550, Currency::USD);
            lines[1].line_total = Money::new(550, Currency::USD);
        }))
        .then_expect_error();
    assert_eq!(
        err,
        OrderError::CurrencyMismatch {
            expected: Currency::EUR,
            got: Currency::USD
        }
    );
    let err = given_no_history::<Order>()
        .when(with_place(|_, _, currency| *currency = Currency::GBP))
        .then_expect_error();
    assert!(matches!(err, OrderError::CurrencyMismatch { .. }));
    let err = given_no_history::<Order>()
        .when(with_place(|_, amounts, _| {
            *amounts[0] = Money::new(510, Currency::USD)
        }))
        .then_expect_error();
    assert!(matches!(err, OrderError::CurrencyMismatch { .. }));
}

#[test]
fn place_with_negative_amounts_is_refused() {
    let err = given_no_history::<Order>()
        .when(with_place(|lines, _, _| {
            lines[0].unit_price = eur(-1);
            lines[0].line_total = eur(-2);
        }))
        .then_expect_error();
    assert_eq!(
        err,
        OrderError::NegativeAmount {
            field: "unit price"
        }
    );
    for (i, field) in ["tax total", "shipping total", "discount total"]
        .into_iter()
        .enumerate()
    {
        let err = given_no_history::<Order>()
            .when(with_place(|_, amounts, _| *amounts[i] = eur(-1)))
            .then_expect_error();
        assert_eq!(err, OrderError::NegativeAmount { field });
    }
}

#[test]
fn place_with_a_wrong_line_total_is_refused() {
    let err = given_no_history::<Order>()
        .when(with_place(|lines, _, _| lines[0].line_total = eur(1)))
        .then_expect_error();
    assert_eq!(
        err,
        OrderError::LineTotalMismatch {
            sku: Sku::parse("SKU-A").unwrap(),
            expected: eur(2_000),
            got: eur(1)
        }
    );
}

#[test]
fn place_with_a_blank_product_name_is_refused() {
    let err = given_no_history::<Order>()
        .when(with_place(|lines, _, _| lines[1].name = "  ".into()))
        .then_expect_error();
    assert_eq!(
        err,
        OrderError::BlankLineName {
            sku: Sku::parse("SKU-B").unwrap()
        }
    );
}

#[test]
fn place_with_discounts_above_the_total_is_refused() {
    let err = given_no_history::<Order>()
        .when(with_place(|_, amounts, _| *amounts[2] = eur(4_000)))
        .then_expect_error();
    assert_eq!(err, OrderError::NegativeTotal { total: eur(-450) });
}

#[test]
fn place_with_overflowing_amounts_is_refused() {
    let err = given_no_history::<Order>()
        .when(with_place(|lines, _, _| {
            lines[0].unit_price = eur(i64::MAX / 2 + 1);
            lines[0].line_total = eur(0);
        }))
        .then_expect_error();
    assert_eq!(err, OrderError::AmountOverflow);
    let err = given_no_history::<Order>()
        .when(with_place(|_, amounts, _| *amounts[0] = eur(i64::MAX)))
        .then_expect_error();
    assert_eq!(err, OrderError::AmountOverflow);
}

#[test]
fn commands_before_placement_are_refused() {
    let commands = [
        OrderCommand::MarkStockReserved { at: at(1) },
        OrderCommand::PassFraudCheck {
            risk_score: 1,
            reasons: Vec::new(),
            at: at(1),
        },
        OrderCommand::HoldForReview {
            risk_score: 1,
            reasons: Vec::new(),
            at: at(1),
        },
        OrderCommand::ApproveHeldOrder { at: at(1) },
        OrderCommand::RejectHeldOrder { at: at(1) },
        OrderCommand::RecordPaymentFailure {
            payment_id: PAYMENT,
            at: at(1),
        },
        OrderCommand::MarkPaid {
            payment_id: PAYMENT,
            amount: eur(1),
            at: at(1),
        },
        OrderCommand::ShipOrder {
            tracking_number: None,
            at: at(1),
        },
        OrderCommand::MarkDelivered { at: at(1) },
        OrderCommand::CancelOrder {
            reason: CancellationReason::CustomerRequest,
            at: at(1),
        },
        OrderCommand::RefundOrder {
            refund_id: REFUND,
            amount: eur(1),
            at: at(1),
        },
    ];
    for command in commands {
        let err = given_no_history::<Order>()
            .when(command)
            .then_expect_error();
        assert_eq!(err, OrderError::NotPlaced);
    }
}

// --- MarkStockReserved -----------------------------------------------------------------

#[test]
fn mark_stock_reserved_moves_pending_to_reserved_only() {
    let (events, state) = given::<Order>([placed()])
        .when(OrderCommand::MarkStockReserved { at: at(1) })
        .then_state();
    assert_eq!(events, vec![OrderEvent::OrderStockReserved { at: at(1) }]);
    assert_eq!(state.status(), Some(OrderStatus::Reserved));
    let err = given::<Order>(reserved())
        .when(OrderCommand::MarkStockReserved { at: at(1) })
        .then_expect_error();
    assert_eq!(err, invalid(OrderStatus::Reserved, "MarkStockReserved"));
}

// --- fraud gate --------------------------------------------------------------------------

#[test]
fn pass_fraud_check_clears_for_payment() {
    let (events, state) = given::<Order>(reserved())
        .when(OrderCommand::PassFraudCheck {
            risk_score: 10,
            reasons: Vec::new(),
            at: at(2),
        })
        .then_state();
    assert_eq!(
        events,
        vec![OrderEvent::OrderFraudCheckPassed {
            risk_score: 10,
            reasons: Vec::new(),
            at: at(2)
        }]
    );
    assert_eq!(state.status(), Some(OrderStatus::AwaitingPayment));
}

#[test]
fn pass_fraud_check_is_refused_outside_reserved_and_for_bad_scores() {
    for (history, from) in [
        (vec![placed()], OrderStatus::Pending),
        (held(), OrderStatus::HeldForReview),
    ] {
        let err = given::<Order>(history)
            .when(OrderCommand::PassFraudCheck {
                risk_score: 10,
                reasons: Vec::new(),
                at: at(2),
            })
            .then_expect_error();
        assert_eq!(err, invalid(from, "PassFraudCheck"));
    }
    let err = given::<Order>(reserved())
        .when(OrderCommand::PassFraudCheck {
            risk_score: 101,
            reasons: Vec::new(),
            at: at(2),
        })
        .then_expect_error();
    assert_eq!(err, OrderError::RiskScoreOutOfRange { score: 101 });
}

#[test]
fn hold_for_review_from_reserved() {
    let (events, state) = given::<Order>(reserved())
        .when(OrderCommand::HoldForReview {
            risk_score: 80,
            reasons: Vec::new(),
            at: at(2),
        })
        .then_state();
    assert_eq!(events, held()[2..].to_vec());
    assert_eq!(state.status(), Some(OrderStatus::HeldForReview));
    let err = given::<Order>(awaiting_payment())
        .when(OrderCommand::HoldForReview {
            risk_score: 80,
            reasons: Vec::new(),
            at: at(2),
        })
        .then_expect_error();
    assert_eq!(err, invalid(OrderStatus::AwaitingPayment, "HoldForReview"));
    let err = given::<Order>(reserved())
        .when(OrderCommand::HoldForReview {
            risk_score: 200,
            reasons: Vec::new(),
            at: at(2),
        })
        .then_expect_error();
    assert_eq!(err, OrderError::RiskScoreOutOfRange { score: 200 });
}

#[test]
fn approve_held_order_goes_to_payment() {
    let (events, state) = given::<Order>(held())
        .when(OrderCommand::ApproveHeldOrder { at: at(3) })
        .then_state();
    assert_eq!(
        events,
        vec![OrderEvent::OrderReleasedFromReview { at: at(3) }]
    );
    assert_eq!(state.status(), Some(OrderStatus::AwaitingPayment));
    let err = given::<Order>(reserved())
        .when(OrderCommand::ApproveHeldOrder { at: at(3) })
        .then_expect_error();
    assert_eq!(err, invalid(OrderStatus::Reserved, "ApproveHeldOrder"));
}

#[test]
fn reject_held_order_cancels_it() {
    let (events, state) = given::<Order>(held())
        .when(OrderCommand::RejectHeldOrder { at: at(3) })
        .then_state();
    assert_eq!(
        events,
        vec![OrderEvent::OrderCancelled {
            reason: CancellationReason::FraudRejected,
            from: OrderStatus::HeldForReview,
            at: at(3)
        }]
    );
    assert_eq!(state.status(), Some(OrderStatus::Cancelled));
    assert_eq!(
        state.cancellation_reason(),
        Some(CancellationReason::FraudRejected)
    );
    let err = given::<Order>(awaiting_payment())
        .when(OrderCommand::RejectHeldOrder { at: at(3) })
        .then_expect_error();
    assert_eq!(
        err,
        invalid(OrderStatus::AwaitingPayment, "RejectHeldOrder")
    );
}

// --- payment -----------------------------------------------------------------------------

#[test]
fn record_payment_failure_from_awaiting_payment() {
    let (events, state) = given::<Order>(awaiting_payment())
        .when(OrderCommand::RecordPaymentFailure {
            payment_id: PAYMENT,
            at: at(3),
        })
        .then_state();
    assert_eq!(
        events,
        vec![OrderEvent::OrderPaymentFailed {
            payment_id: PAYMENT,
            at: at(3)
        }]
    );
    assert_eq!(state.status(), Some(OrderStatus::PaymentFailed));
    let err = given::<Order>(paid())
        .when(OrderCommand::RecordPaymentFailure {
            payment_id: PAYMENT,
            at: at(3),
        })
        .then_expect_error();
    assert_eq!(err, invalid(OrderStatus::Paid, "RecordPaymentFailure"));
}

#[test]
fn mark_paid_records_the_payment_once() {
    let pay = OrderCommand::MarkPaid {
        payment_id: PAYMENT,
        amount: eur(3_300),
        at: at(3),
    };
    let (events, state) = given::<Order>(awaiting_payment())
        .when(pay.clone())
        .then_state();
    assert_eq!(events, paid()[3..].to_vec());
    assert_eq!(state.status(), Some(OrderStatus::Paid));
    assert_eq!(state.paid(), Some(eur(3_300)));
    // A redelivered capture, even after shipping, is a no-op.
    given::<Order>(shipped()).when(pay).then_expect_events([]);
}

#[test]
fn mark_paid_is_refused_before_clearance_or_for_another_amount() {
    let err = given::<Order>(held())
        .when(OrderCommand::MarkPaid {
            payment_id: PAYMENT,
            amount: eur(3_300),
            at: at(3),
        })
        .then_expect_error();
    assert_eq!(err, invalid(OrderStatus::HeldForReview, "MarkPaid"));
    let err = given::<Order>(awaiting_payment())
        .when(OrderCommand::MarkPaid {
            payment_id: PAYMENT,
            amount: eur(3_299),
            at: at(3),
        })
        .then_expect_error();
    assert_eq!(
        err,
        OrderError::PaymentAmountMismatch {
            expected: eur(3_300),
            got: eur(3_299)
        }
    );
}

// --- fulfilment --------------------------------------------------------------------------

#[test]
fn ship_a_paid_order_with_a_trimmed_tracking_number() {
    let (events, state) = given::<Order>(paid())
        .when(OrderCommand::ShipOrder {
            tracking_number: Some(" 1Z999 ".into()),
            at: at(4),
        })
        .then_state();
    assert_eq!(events, shipped()[4..].to_vec());
    assert_eq!(state.status(), Some(OrderStatus::Shipped));
    given::<Order>(paid())
        .when(OrderCommand::ShipOrder {
            tracking_number: None,
            at: at(4),
        })
        .then_expect_events([OrderEvent::OrderShipped {
            tracking_number: None,
            at: at(4),
        }]);
}

#[test]
fn ship_is_refused_unpaid_or_with_a_bad_tracking_number() {
    let err = given::<Order>(awaiting_payment())
        .when(OrderCommand::ShipOrder {
            tracking_number: None,
            at: at(4),
        })
        .then_expect_error();
    assert_eq!(err, invalid(OrderStatus::AwaitingPayment, "ShipOrder"));
    for bad in ["  ".to_owned(), "x".repeat(101)] {
        let err = given::<Order>(paid())
            .when(OrderCommand::ShipOrder {
                tracking_number: Some(bad),
                at: at(4),
            })
            .then_expect_error();
        assert_eq!(err, OrderError::InvalidTrackingNumber);
    }
}

#[test]
fn mark_delivered_after_shipping_only() {
    let (events, state) = given::<Order>(shipped())
        .when(OrderCommand::MarkDelivered { at: at(5) })
        .then_state();
    assert_eq!(events, vec![OrderEvent::OrderDelivered { at: at(5) }]);
    assert_eq!(state.status(), Some(OrderStatus::Delivered));
    let err = given::<Order>(paid())
        .when(OrderCommand::MarkDelivered { at: at(5) })
        .then_expect_error();
    assert_eq!(err, invalid(OrderStatus::Paid, "MarkDelivered"));
}

// --- CancelOrder -------------------------------------------------------------------------

#[test]
fn cancel_before_shipment_records_where_it_came_from() {
    for (history, from) in [
        (vec![placed()], OrderStatus::Pending),
        (reserved(), OrderStatus::Reserved),
        (held(), OrderStatus::HeldForReview),
        (awaiting_payment(), OrderStatus::AwaitingPayment),
        (paid(), OrderStatus::Paid),
    ] {
        let (events, state) = given::<Order>(history)
            .when(OrderCommand::CancelOrder {
                reason: CancellationReason::CustomerRequest,
                at: at(9),
            })
            .then_state();
        assert_eq!(
            events,
            vec![OrderEvent::OrderCancelled {
                reason: CancellationReason::CustomerRequest,
                from,
                at: at(9)
            }]
        );
        assert_eq!(state.status(), Some(OrderStatus::Cancelled));
    }
}

#[test]
fn cancel_after_shipment_or_twice_is_refused() {
    for (history, from) in [
        (shipped(), OrderStatus::Shipped),
        (delivered(), OrderStatus::Delivered),
    ] {
        let err = given::<Order>(history)
            .when(OrderCommand::CancelOrder {
                reason: CancellationReason::CustomerRequest,
                at: at(9),
            })
            .then_expect_error();
        assert_eq!(err, invalid(from, "CancelOrder"));
    }
    let mut history = reserved();
    history.push(OrderEvent::OrderCancelled {
        reason: CancellationReason::OutOfStock,
        from: OrderStatus::Reserved,
        at: at(2),
    });
    let err = given::<Order>(history)
        .when(OrderCommand::CancelOrder {
            reason: CancellationReason::StaffDecision,
            at: at(9),
        })
        .then_expect_error();
    assert_eq!(err, invalid(OrderStatus::Cancelled, "CancelOrder"));
}

// --- RefundOrder -------------------------------------------------------------------------

fn refund(amount: i64) -> OrderCommand {
    OrderCommand::RefundOrder {
        refund_id: REFUND,
        amount: eur(amount),
        at: at(6),
    }
}

#[test]
fn partial_refund_keeps_the_status_and_full_refund_ends_it() {
    let (events, state) = given::<Order>(delivered()).when(refund(1_000)).then_state();
    assert_eq!(events, vec![refunded(1_000, 1_000, false)]);
    assert_eq!(state.status(), Some(OrderStatus::Delivered));
    assert_eq!(state.refunded(), Some(eur(1_000)));

    let mut history = delivered();
    history.push(refunded(1_000, 1_000, false));
    let (events, state) = given::<Order>(history)
        .when(OrderCommand::RefundOrder {
            refund_id: Uuid::from_u128(5),
            amount: eur(2_300),
            at: at(7),
        })
        .then_state();
    assert_eq!(
        events,
        vec![OrderEvent::OrderRefunded {
            refund_id: Uuid::from_u128(5),
            amount: eur(2_300),
            total_refunded: eur(3_300),
            fully_refunded: true,
            at: at(7)
        }]
    );
    assert_eq!(state.status(), Some(OrderStatus::Refunded));
}

#[test]
fn refund_after_cancelling_a_paid_order() {
    let mut history = paid();
    history.push(OrderEvent::OrderCancelled {
        reason: CancellationReason::CustomerRequest,
        from: OrderStatus::Paid,
        at: at(4),
    });
    let (_, state) = given::<Order>(history).when(refund(3_300)).then_state();
    assert_eq!(state.status(), Some(OrderStatus::Refunded));
}

#[test]
fn refund_repeated_is_a_no_op_and_a_different_amount_is_refused() {
    let mut history = paid();
    history.push(refunded(1_000, 1_000, false));
    given::<Order>(history.clone())
        .when(refund(1_000))
        .then_expect_events([]);
    let err = given::<Order>(history)
        .when(refund(999))
        .then_expect_error();
    assert_eq!(err, OrderError::RefundConflict { refund_id: REFUND });
}

#[test]
fn refund_is_refused_before_payment_and_once_fully_refunded() {
    let err = given::<Order>(awaiting_payment())
        .when(refund(100))
        .then_expect_error();
    assert_eq!(err, invalid(OrderStatus::AwaitingPayment, "RefundOrder"));

    let mut history = paid();
    history.push(refunded(3_300, 3_300, true));
    let err = given::<Order>(history)
        .when(OrderCommand::RefundOrder {
            refund_id: Uuid::from_u128(5),
            amount: eur(1),
            at: at(7),
        })
        .then_expect_error();
    assert_eq!(err, invalid(OrderStatus::Refunded, "RefundOrder"));
}

#[test]
fn refund_of_an_order_cancelled_unpaid_is_refused() {
    let mut history = reserved();
    history.push(OrderEvent::OrderCancelled {
        reason: CancellationReason::OutOfStock,
        from: OrderStatus::Reserved,
        at: at(2),
    });
    let err = given::<Order>(history)
        .when(refund(100))
        .then_expect_error();
    assert_eq!(err, OrderError::NotPaid);
}

#[test]
fn refund_amount_rules() {
    let err = given::<Order>(paid()).when(refund(0)).then_expect_error();
    assert_eq!(err, OrderError::NonPositiveRefund);
    let err = given::<Order>(paid()).when(refund(-5)).then_expect_error();
    assert_eq!(err, OrderError::NonPositiveRefund);
    let err = given::<Order>(paid())
        .when(OrderCommand::RefundOrder {
            refund_id: REFUND,
            amount: Money::new(100, Currency::USD),
            at: at(6),
        })
        .then_expect_error();
    assert!(matches!(err, OrderError::CurrencyMismatch { .. }));

    let mut history = paid();
    history.push(refunded(3_000, 3_000, false));
    let err = given::<Order>(history)
        .when(OrderCommand::RefundOrder {
            refund_id: Uuid::from_u128(5),
            amount: eur(301),
            at: at(7),
        })
        .then_expect_error();
    assert_eq!(
        err,
        OrderError::RefundExceedsPaid {
            requested: eur(301),
            refundable: eur(300)
        }
    );
}

#[test]
fn events_round_trip_through_json_and_messages_read_well() {
    use crate::aggregate::DomainEvent;
    for e in delivered() {
        let json = serde_json::to_value(&e).unwrap();
        assert!(
            json.get(e.event_type()).is_some(),
            "externally tagged: {json}"
        );
        let expected = if matches!(e, OrderEvent::OrderFraudCheckPassed { .. }) {
            "1.1"
        } else {
            "1.0"
        };
        assert_eq!(e.event_version(), expected);
        assert_eq!(serde_json::from_value::<OrderEvent>(json).unwrap(), e);
    }
    assert_eq!(
        invalid(OrderStatus::Shipped, "CancelOrder").to_string(),
        "CancelOrder is not allowed when the order is shipped"
    );
}

#[test]
fn the_fraud_reasons_are_recorded_and_kept() {
    use crate::CountryCode;
    use crate::aggregate::DomainEvent as _;
    use crate::fraud::{FraudReason, FraudSignal};
    let reasons = vec![FraudReason {
        signal: FraudSignal::CountryMismatch {
            billing: CountryCode::parse("DE").unwrap(),
            shipping: CountryCode::parse("FR").unwrap(),
        },
        points: 20,
    }];
    let mut order = Order::default();
    for e in reserved() {
        order.apply(&e);
    }
    let events = order
        .handle(OrderCommand::HoldForReview {
            risk_score: 20,
            reasons: reasons.clone(),
            at: at(2),
        })
        .unwrap();
    assert_eq!(
        events,
        vec![OrderEvent::OrderHeldForReview {
            risk_score: 20,
            reasons: reasons.clone(),
            at: at(2),
        }]
    );
    assert_eq!(events[0].event_version(), "1.1");
    order.apply(&events[0]);
    assert_eq!(order.fraud(), Some((20, reasons.as_slice())));
}

#[test]
fn a_version_1_0_fraud_event_is_upcast_with_no_reasons() {
    let v1 = serde_json::json!({"OrderFraudCheckPassed": {"risk_score": 5, "at": at(2)}});
    let upcaster = super::upcasters()
        .into_iter()
        .find(|u| u.event_type == "OrderFraudCheckPassed")
        .unwrap();
    assert_eq!((upcaster.from_version, upcaster.to_version), ("1.0", "1.1"));
    let event: OrderEvent = serde_json::from_value((upcaster.upcast)(v1)).unwrap();
    assert_eq!(
        event,
        OrderEvent::OrderFraudCheckPassed {
            risk_score: 5,
            reasons: Vec::new(),
            at: at(2),
        }
    );
}

#[test]
fn an_expiry_cancels_only_an_unpaid_order() {
    let expire = || OrderCommand::CancelOrder {
        reason: CancellationReason::ReservationExpired,
        at: at(9),
    };
    for history in [reserved(), awaiting_payment()] {
        let mut order = Order::default();
        for e in &history {
            order.apply(e);
        }
        assert!(order.handle(expire()).is_ok());
    }
    for (history, from) in [
        (paid(), OrderStatus::Paid),
        (held(), OrderStatus::HeldForReview),
    ] {
        let mut order = Order::default();
        for e in &history {
            order.apply(e);
        }
        assert_eq!(order.handle(expire()), Err(invalid(from, "CancelOrder")));
    }
}
