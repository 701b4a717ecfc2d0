//! The order state and its decisions.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::command::OrderCommand;
use super::error::OrderError;
use super::event::{CancellationReason, OrderEvent, OrderLine};
use super::status::OrderStatus;
use crate::aggregate::Aggregate;
use crate::fraud::FraudReason;
use crate::{Address, Currency, Money, MoneyError};

/// One order.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Order {
    placed: Option<Placed>,
    status: Option<OrderStatus>,
    cancellation_reason: Option<CancellationReason>,
    payment_id: Option<Uuid>,
    paid: Option<Money>,
    refunds: BTreeMap<Uuid, Money>,
    refunded: Option<Money>,
    fraud: Option<(u8, Vec<FraudReason>)>,
}

/// The snapshot the order was placed with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Placed {
    order_id: Uuid,
    customer_id: Uuid,
    lines: Vec<OrderLine>,
    currency: Currency,
    subtotal: Money,
    tax_total: Money,
    shipping_total: Money,
    discount_total: Money,
    grand_total: Money,
    shipping_address: Address,
    billing_address: Address,
    placed_at: DateTime<Utc>,
}

/// The risk score's upper bound.
const MAX_RISK_SCORE: u8 = 100;
/// The tracking number's length bound.
const MAX_TRACKING_NUMBER: usize = 100;

fn overflow(_: MoneyError) -> OrderError {
    OrderError::AmountOverflow
}

fn same_currency(expected: Currency, amount: Money) -> Result<(), OrderError> {
    if amount.currency() == expected {
        Ok(())
    } else {
        Err(OrderError::CurrencyMismatch {
            expected,
            got: amount.currency(),
        })
    }
}

fn non_negative(field: &'static str, amount: Money) -> Result<(), OrderError> {
    if amount.is_negative() {
        Err(OrderError::NegativeAmount { field })
    } else {
        Ok(())
    }
}

/// The totals of an order: `(subtotal, grand_total)`. Exposed to tests so the proptest
/// checks the same arithmetic the aggregate enforces.
pub(super) fn totals(
    lines: &[OrderLine],
    tax_total: Money,
    shipping_total: Money,
    discount_total: Money,
    currency: Currency,
) -> Result<(Money, Money), OrderError> {
    let subtotal = Money::sum(currency, lines.iter().map(|l| l.line_total)).map_err(overflow)?;
    let grand_total = subtotal
        .checked_add(tax_total)
        .and_then(|m| m.checked_add(shipping_total))
        .and_then(|m| m.checked_sub(discount_total))
        .map_err(overflow)?;
    Ok((subtotal, grand_total))
}

impl Order {
    /// The order id, once placed.
    #[must_use]
    pub fn id(&self) -> Option<Uuid> {
        self.placed.as_ref().map(|p| p.order_id)
    }
    /// The customer, once placed.
    #[must_use]
    pub fn customer_id(&self) -> Option<Uuid> {
        self.placed.as_ref().map(|p| p.customer_id)
    }
    /// The status; `None` before the order is placed.
    #[must_use]
    pub fn status(&self) -> Option<OrderStatus> {
        self.status
    }
    /// The lines.
    #[must_use]
    pub fn lines(&self) -> &[OrderLine] {
        self.placed.as_ref().map_or(&[], |p| p.lines.as_slice())
    }
    /// Sum of the line totals.
    #[must_use]
    pub fn subtotal(&self) -> Option<Money> {
        self.placed.as_ref().map(|p| p.subtotal)
    }
    /// Tax, shipping and discount totals.
    #[must_use]
    pub fn adjustments(&self) -> Option<(Money, Money, Money)> {
        self.placed
            .as_ref()
            .map(|p| (p.tax_total, p.shipping_total, p.discount_total))
    }
    /// What the customer pays.
    #[must_use]
    pub fn grand_total(&self) -> Option<Money> {
        self.placed.as_ref().map(|p| p.grand_total)
    }
    /// What was paid, once paid.
    #[must_use]
    pub fn paid(&self) -> Option<Money> {
        self.paid
    }
    /// The sum of refunds so far, once anything was refunded.
    #[must_use]
    pub fn refunded(&self) -> Option<Money> {
        self.refunded
    }
    /// The fraud gate's score and reasons, once assessed.
    #[must_use]
    pub fn fraud(&self) -> Option<(u8, &[FraudReason])> {
        self.fraud.as_ref().map(|(s, r)| (*s, r.as_slice()))
    }
    /// The shipping and billing addresses, once placed.
    #[must_use]
    pub fn addresses(&self) -> Option<(&Address, &Address)> {
        self.placed
            .as_ref()
            .map(|p| (&p.shipping_address, &p.billing_address))
    }
    /// The currency, once placed.
    #[must_use]
    pub fn currency(&self) -> Option<Currency> {
        self.placed.as_ref().map(|p| p.currency)
    }
    /// The payment that paid it, once paid.
    #[must_use]
    pub fn payment_id(&self) -> Option<Uuid> {
        self.payment_id
    }
    /// Why it was cancelled, if it was.
    #[must_use]
    pub fn cancellation_reason(&self) -> Option<CancellationReason> {
        self.cancellation_reason
    }

    fn placed(&self) -> Result<(&Placed, OrderStatus), OrderError> {
        match (&self.placed, self.status) {
            (Some(p), Some(s)) => Ok((p, s)),
            _ => Err(OrderError::NotPlaced),
        }
    }

    /// The current status, if the machine allows `command` to move on to `to` from it
    /// (and, where a command serves only one edge of the table, from `only_from`).
    fn transition(
        &self,
        command: &'static str,
        to: OrderStatus,
        only_from: Option<OrderStatus>,
    ) -> Result<OrderStatus, OrderError> {
        let (_, from) = self.placed()?;
        if from.can_transition_to(to) && only_from.is_none_or(|only| only == from) {
            Ok(from)
        } else {
            Err(OrderError::InvalidTransition { from, command })
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn place(
        &self,
        order_id: Uuid,
        customer_id: Uuid,
        lines: Vec<OrderLine>,
        tax_total: Money,
        shipping_total: Money,
        discount_total: Money,
        shipping_address: Address,
        billing_address: Address,
        currency: Currency,
        at: DateTime<Utc>,
    ) -> Result<Vec<OrderEvent>, OrderError> {
        if lines.is_empty() {
            return Err(OrderError::EmptyOrder);
        }
        for line in &lines {
            same_currency(currency, line.unit_price)?;
            same_currency(currency, line.line_total)?;
            non_negative("unit price", line.unit_price)?;
            if line.name.trim().is_empty() {
                return Err(OrderError::BlankLineName {
                    sku: line.sku.clone(),
                });
            }
            let expected = line
                .unit_price
                .checked_mul(i64::from(line.quantity.get()))
                .map_err(overflow)?;
            if expected != line.line_total {
                return Err(OrderError::LineTotalMismatch {
                    sku: line.sku.clone(),
                    expected,
                    got: line.line_total,
                });
            }
        }
        for (field, amount) in [
            ("tax total", tax_total),
            ("shipping total", shipping_total),
            ("discount total", discount_total),
        ] {
            same_currency(currency, amount)?;
            non_negative(field, amount)?;
        }
        let (subtotal, grand_total) =
            totals(&lines, tax_total, shipping_total, discount_total, currency)?;
        if grand_total.is_negative() {
            return Err(OrderError::NegativeTotal { total: grand_total });
        }
        let snapshot = Placed {
            order_id,
            customer_id,
            lines,
            currency,
            subtotal,
            tax_total,
            shipping_total,
            discount_total,
            grand_total,
            shipping_address,
            billing_address,
            placed_at: at,
        };
        if let Some(existing) = &self.placed {
            // A retried checkout carries the same snapshot, perhaps with a later clock.
            let same = Placed {
                placed_at: existing.placed_at,
                ..snapshot
            } == *existing;
            return if same {
                Ok(Vec::new())
            } else {
                Err(OrderError::AlreadyPlaced {
                    order_id: existing.order_id,
                })
            };
        }
        let Placed {
            order_id,
            customer_id,
            lines,
            currency,
            subtotal,
            tax_total,
            shipping_total,
            discount_total,
            grand_total,
            shipping_address,
            billing_address,
            placed_at,
        } = snapshot;
        Ok(vec![OrderEvent::OrderPlaced {
            order_id,
            customer_id,
            lines,
            currency,
            subtotal,
            tax_total,
            shipping_total,
            discount_total,
            grand_total,
            shipping_address,
            billing_address,
            at: placed_at,
        }])
    }

    fn risk_score(score: u8) -> Result<u8, OrderError> {
        if score <= MAX_RISK_SCORE {
            Ok(score)
        } else {
            Err(OrderError::RiskScoreOutOfRange { score })
        }
    }

    fn mark_paid(
        &self,
        payment_id: Uuid,
        amount: Money,
        at: DateTime<Utc>,
    ) -> Result<Vec<OrderEvent>, OrderError> {
        let (placed, _) = self.placed()?;
        if self.payment_id == Some(payment_id) && self.paid == Some(amount) {
            // The same capture reported again (a redelivered webhook, say).
            return Ok(Vec::new());
        }
        self.transition("MarkPaid", OrderStatus::Paid, None)?;
        if amount != placed.grand_total {
            return Err(OrderError::PaymentAmountMismatch {
                expected: placed.grand_total,
                got: amount,
            });
        }
        Ok(vec![OrderEvent::OrderPaid {
            payment_id,
            amount,
            at,
        }])
    }

    fn ship(
        &self,
        tracking_number: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<Vec<OrderEvent>, OrderError> {
        self.transition("ShipOrder", OrderStatus::Shipped, None)?;
        let tracking_number = tracking_number.map(|t| t.trim().to_owned());
        if let Some(t) = &tracking_number
            && (t.is_empty() || t.chars().count() > MAX_TRACKING_NUMBER)
        {
            return Err(OrderError::InvalidTrackingNumber);
        }
        Ok(vec![OrderEvent::OrderShipped {
            tracking_number,
            at,
        }])
    }

    fn cancel(
        &self,
        reason: CancellationReason,
        at: DateTime<Utc>,
    ) -> Result<Vec<OrderEvent>, OrderError> {
        let from = self.transition("CancelOrder", OrderStatus::Cancelled, None)?;
        let unpaid = matches!(
            from,
            OrderStatus::Pending | OrderStatus::Reserved | OrderStatus::AwaitingPayment
        );
        if reason == CancellationReason::ReservationExpired && !unpaid {
            return Err(OrderError::InvalidTransition {
                from,
                command: "CancelOrder",
            });
        }
        Ok(vec![OrderEvent::OrderCancelled { reason, from, at }])
    }

    fn refund(
        &self,
        refund_id: Uuid,
        amount: Money,
        at: DateTime<Utc>,
    ) -> Result<Vec<OrderEvent>, OrderError> {
        let (placed, _) = self.placed()?;
        if let Some(existing) = self.refunds.get(&refund_id) {
            return if *existing == amount {
                Ok(Vec::new())
            } else {
                Err(OrderError::RefundConflict { refund_id })
            };
        }
        self.transition("RefundOrder", OrderStatus::Refunded, None)?;
        let paid = self.paid.ok_or(OrderError::NotPaid)?;
        same_currency(placed.currency, amount)?;
        if amount.amount_minor() <= 0 {
            return Err(OrderError::NonPositiveRefund);
        }
        let refunded = self.refunded.unwrap_or(Money::zero(placed.currency));
        let refundable = paid.checked_sub(refunded).map_err(overflow)?;
        if amount.amount_minor() > refundable.amount_minor() {
            return Err(OrderError::RefundExceedsPaid {
                requested: amount,
                refundable,
            });
        }
        let total_refunded = refunded.checked_add(amount).map_err(overflow)?;
        Ok(vec![OrderEvent::OrderRefunded {
            refund_id,
            amount,
            total_refunded,
            fully_refunded: total_refunded == paid,
            at,
        }])
    }
}

impl Aggregate for Order {
    const TYPE: &'static str = "order";
    type Command = OrderCommand;
    type Event = OrderEvent;
    type Error = OrderError;

    fn handle(&self, command: OrderCommand) -> Result<Vec<OrderEvent>, OrderError> {
        match command {
            OrderCommand::PlaceOrder {
                order_id,
                customer_id,
                lines,
                tax_total,
                shipping_total,
                discount_total,
                shipping_address,
                billing_address,
                currency,
                at,
            } => self.place(
                order_id,
                customer_id,
                lines,
                tax_total,
                shipping_total,
                discount_total,
                shipping_address,
                billing_address,
                currency,
                at,
            ),
            OrderCommand::MarkStockReserved { at } => {
                self.transition("MarkStockReserved", OrderStatus::Reserved, None)?;
                Ok(vec![OrderEvent::OrderStockReserved { at }])
            }
            OrderCommand::PassFraudCheck {
                risk_score,
                reasons,
                at,
            } => {
                self.transition(
                    "PassFraudCheck",
                    OrderStatus::AwaitingPayment,
                    Some(OrderStatus::Reserved),
                )?;
                let risk_score = Self::risk_score(risk_score)?;
                Ok(vec![OrderEvent::OrderFraudCheckPassed {
                    risk_score,
                    reasons,
                    at,
                }])
            }
            OrderCommand::HoldForReview {
                risk_score,
                reasons,
                at,
            } => {
                self.transition("HoldForReview", OrderStatus::HeldForReview, None)?;
                let risk_score = Self::risk_score(risk_score)?;
                Ok(vec![OrderEvent::OrderHeldForReview {
                    risk_score,
                    reasons,
                    at,
                }])
            }
            OrderCommand::ApproveHeldOrder { at } => {
                self.transition(
                    "ApproveHeldOrder",
                    OrderStatus::AwaitingPayment,
                    Some(OrderStatus::HeldForReview),
                )?;
                Ok(vec![OrderEvent::OrderReleasedFromReview { at }])
            }
            OrderCommand::RejectHeldOrder { at } => {
                let from = self.transition(
                    "RejectHeldOrder",
                    OrderStatus::Cancelled,
                    Some(OrderStatus::HeldForReview),
                )?;
                Ok(vec![OrderEvent::OrderCancelled {
                    reason: CancellationReason::FraudRejected,
                    from,
                    at,
                }])
            }
            OrderCommand::RecordPaymentFailure { payment_id, at } => {
                self.transition("RecordPaymentFailure", OrderStatus::PaymentFailed, None)?;
                Ok(vec![OrderEvent::OrderPaymentFailed { payment_id, at }])
            }
            OrderCommand::MarkPaid {
                payment_id,
                amount,
                at,
            } => self.mark_paid(payment_id, amount, at),
            OrderCommand::ShipOrder {
                tracking_number,
                at,
            } => self.ship(tracking_number, at),
            OrderCommand::MarkDelivered { at } => {
                self.transition("MarkDelivered", OrderStatus::Delivered, None)?;
                Ok(vec![OrderEvent::OrderDelivered { at }])
            }
            OrderCommand::CancelOrder { reason, at } => self.cancel(reason, at),
            OrderCommand::RefundOrder {
                refund_id,
                amount,
                at,
            } => self.refund(refund_id, amount, at),
        }
    }

    fn apply(&mut self, event: &OrderEvent) {
        match event {
            OrderEvent::OrderPlaced {
                order_id,
                customer_id,
                lines,
                currency,
                subtotal,
                tax_total,
                shipping_total,
                discount_total,
                grand_total,
                shipping_address,
                billing_address,
                at,
            } => {
                self.placed = Some(Placed {
                    order_id: *order_id,
                    customer_id: *customer_id,
                    lines: lines.clone(),
                    currency: *currency,
                    subtotal: *subtotal,
                    tax_total: *tax_total,
                    shipping_total: *shipping_total,
                    discount_total: *discount_total,
                    grand_total: *grand_total,
                    shipping_address: shipping_address.clone(),
                    billing_address: billing_address.clone(),
                    placed_at: *at,
                });
                self.status = Some(OrderStatus::Pending);
            }
            OrderEvent::OrderStockReserved { .. } => self.status = Some(OrderStatus::Reserved),
            OrderEvent::OrderFraudCheckPassed {
                risk_score,
                reasons,
                ..
            } => {
                self.status = Some(OrderStatus::AwaitingPayment);
                self.fraud = Some((*risk_score, reasons.clone()));
            }
            OrderEvent::OrderReleasedFromReview { .. } => {
                self.status = Some(OrderStatus::AwaitingPayment);
            }
            OrderEvent::OrderHeldForReview {
                risk_score,
                reasons,
                ..
            } => {
                self.status = Some(OrderStatus::HeldForReview);
                self.fraud = Some((*risk_score, reasons.clone()));
            }
            OrderEvent::OrderPaymentFailed { .. } => {
                self.status = Some(OrderStatus::PaymentFailed);
            }
            OrderEvent::OrderPaid {
                payment_id, amount, ..
            } => {
                self.status = Some(OrderStatus::Paid);
                self.payment_id = Some(*payment_id);
                self.paid = Some(*amount);
            }
            OrderEvent::OrderShipped { .. } => self.status = Some(OrderStatus::Shipped),
            OrderEvent::OrderDelivered { .. } => self.status = Some(OrderStatus::Delivered),
            OrderEvent::OrderCancelled { reason, .. } => {
                self.status = Some(OrderStatus::Cancelled);
                self.cancellation_reason = Some(*reason);
            }
            OrderEvent::OrderRefunded {
                refund_id,
                amount,
                total_refunded,
                fully_refunded,
                ..
            } => {
                self.refunds.insert(*refund_id, *amount);
                self.refunded = Some(*total_refunded);
                if *fully_refunded {
                    self.status = Some(OrderStatus::Refunded);
                }
            }
        }
    }
}
