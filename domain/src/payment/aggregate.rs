//! The payment state and its decisions.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::command::PaymentCommand;
use super::error::PaymentError;
use super::event::{DeclineCode, NextAction, PaymentEvent, PaymentStatus};
use crate::Money;
use crate::aggregate::Aggregate;

/// One payment (one provider intent).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Payment {
    created: Option<Created>,
    status: Option<PaymentStatus>,
    next_action: Option<NextAction>,
    authorised: Option<Money>,
    captured: Option<Money>,
    failure: Option<DeclineCode>,
    refunds: BTreeMap<Uuid, Refund>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Created {
    payment_id: Uuid,
    order_id: Uuid,
    provider: String,
    provider_intent_id: String,
    amount: Money,
    idempotency_key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Refund {
    amount: Money,
    completed: bool,
}

fn not_blank(field: &'static str, value: String) -> Result<String, PaymentError> {
    let value = value.trim().to_owned();
    if value.is_empty() {
        Err(PaymentError::BlankField { field })
    } else {
        Ok(value)
    }
}

impl Payment {
    /// The payment id, once created.
    #[must_use]
    pub fn id(&self) -> Option<Uuid> {
        self.created.as_ref().map(|c| c.payment_id)
    }
    /// The order paid for.
    #[must_use]
    pub fn order_id(&self) -> Option<Uuid> {
        self.created.as_ref().map(|c| c.order_id)
    }
    /// The status; `None` before creation.
    #[must_use]
    pub fn status(&self) -> Option<PaymentStatus> {
        self.status
    }
    /// The amount to collect.
    #[must_use]
    pub fn amount(&self) -> Option<Money> {
        self.created.as_ref().map(|c| c.amount)
    }
    /// The provider's intent id.
    #[must_use]
    pub fn provider_intent_id(&self) -> Option<&str> {
        self.created.as_ref().map(|c| c.provider_intent_id.as_str())
    }
    /// The pending customer action, while `requires_action`.
    #[must_use]
    pub fn next_action(&self) -> Option<&NextAction> {
        self.next_action.as_ref()
    }
    /// The amount authorised.
    #[must_use]
    pub fn authorised(&self) -> Option<Money> {
        self.authorised
    }
    /// The amount captured.
    #[must_use]
    pub fn captured(&self) -> Option<Money> {
        self.captured
    }
    /// Why it failed.
    #[must_use]
    pub fn failure(&self) -> Option<DeclineCode> {
        self.failure
    }
    /// Sum of completed refunds, in minor units.
    #[must_use]
    pub fn refunded_minor(&self) -> i64 {
        self.refunds
            .values()
            .filter(|r| r.completed)
            .map(|r| r.amount.amount_minor())
            .sum()
    }
    /// Sum of refunds requested or completed, in minor units: what is no longer
    /// refundable.
    #[must_use]
    pub fn committed_refunds_minor(&self) -> i64 {
        self.refunds.values().map(|r| r.amount.amount_minor()).sum()
    }

    /// Refunds requested and not completed yet, by refund id (lowest first), with
    /// their amounts: what a provider's refund report may complete.
    pub fn pending_refunds(&self) -> impl Iterator<Item = (Uuid, Money)> + '_ {
        self.refunds
            .iter()
            .filter(|(_, r)| !r.completed)
            .map(|(id, r)| (*id, r.amount))
    }

    fn created(&self) -> Result<(&Created, PaymentStatus), PaymentError> {
        match (&self.created, self.status) {
            (Some(c), Some(s)) => Ok((c, s)),
            _ => Err(PaymentError::NotCreated),
        }
    }

    /// The payment, if `command` may move it to `to` from its current status.
    fn transition(
        &self,
        command: &'static str,
        to: PaymentStatus,
    ) -> Result<&Created, PaymentError> {
        let (created, from) = self.created()?;
        if from.can_transition_to(to) {
            Ok(created)
        } else {
            Err(PaymentError::InvalidTransition { from, command })
        }
    }

    /// A positive amount in the payment's currency.
    fn valid_amount(created: &Created, amount: Money) -> Result<Money, PaymentError> {
        let expected = created.amount.currency();
        if amount.currency() != expected {
            return Err(PaymentError::CurrencyMismatch {
                expected,
                got: amount.currency(),
            });
        }
        if amount.amount_minor() <= 0 {
            return Err(PaymentError::NonPositiveAmount);
        }
        Ok(amount)
    }

    #[allow(clippy::too_many_arguments)]
    fn create(
        &self,
        payment_id: Uuid,
        order_id: Uuid,
        provider: String,
        provider_intent_id: String,
        amount: Money,
        idempotency_key: String,
        at: DateTime<Utc>,
    ) -> Result<Vec<PaymentEvent>, PaymentError> {
        let provider = not_blank("provider", provider)?;
        let provider_intent_id = not_blank("provider intent id", provider_intent_id)?;
        let idempotency_key = not_blank("idempotency key", idempotency_key)?;
        if amount.amount_minor() <= 0 {
            return Err(PaymentError::NonPositiveAmount);
        }
        let details = Created {
            payment_id,
            order_id,
            provider,
            provider_intent_id,
            amount,
            idempotency_key,
        };
        if let Some(existing) = &self.created {
            return if *existing == details {
                Ok(Vec::new())
            } else {
                Err(PaymentError::AlreadyCreated {
                    payment_id: existing.payment_id,
                })
            };
        }
        let Created {
            payment_id,
            order_id,
            provider,
            provider_intent_id,
            amount,
            idempotency_key,
        } = details;
        Ok(vec![PaymentEvent::PaymentCreated {
            payment_id,
            order_id,
            provider,
            provider_intent_id,
            amount,
            idempotency_key,
            at,
        }])
    }

    fn require_action(
        &self,
        next_action: NextAction,
        at: DateTime<Utc>,
    ) -> Result<Vec<PaymentEvent>, PaymentError> {
        let next_action = match next_action {
            NextAction::UseSdk { client_secret } => NextAction::UseSdk {
                client_secret: not_blank("client secret", client_secret)?,
            },
            NextAction::RedirectToUrl { url } => NextAction::RedirectToUrl {
                url: not_blank("url", url)?,
            },
        };
        let (_, status) = self.created()?;
        if status == PaymentStatus::RequiresAction
            && self.next_action.as_ref() == Some(&next_action)
        {
            return Ok(Vec::new());
        }
        let created = self.transition("RequireAction", PaymentStatus::RequiresAction)?;
        Ok(vec![PaymentEvent::PaymentActionRequired {
            order_id: created.order_id,
            next_action,
            at,
        }])
    }

    fn authorise(
        &self,
        amount: Money,
        at: DateTime<Utc>,
    ) -> Result<Vec<PaymentEvent>, PaymentError> {
        self.created()?;
        if self.authorised == Some(amount) {
            // The same authorisation reported again, possibly after the capture.
            return Ok(Vec::new());
        }
        let created = self.transition("AuthorisePayment", PaymentStatus::Authorised)?;
        let amount = Self::valid_amount(created, amount)?;
        if amount.amount_minor() > created.amount.amount_minor() {
            return Err(PaymentError::AuthorisationExceedsAmount {
                requested: amount,
                amount: created.amount,
            });
        }
        Ok(vec![PaymentEvent::PaymentAuthorised {
            order_id: created.order_id,
            amount,
            at,
        }])
    }

    fn capture(&self, amount: Money, at: DateTime<Utc>) -> Result<Vec<PaymentEvent>, PaymentError> {
        self.created()?;
        if self.captured == Some(amount) {
            return Ok(Vec::new());
        }
        let created = self.transition("CapturePayment", PaymentStatus::Captured)?;
        let amount = Self::valid_amount(created, amount)?;
        // Authorised is set whenever the status allows a capture.
        let authorised = self.authorised.unwrap_or(created.amount);
        if amount.amount_minor() > authorised.amount_minor() {
            return Err(PaymentError::CaptureExceedsAuthorised {
                requested: amount,
                authorised,
            });
        }
        Ok(vec![PaymentEvent::PaymentCaptured {
            order_id: created.order_id,
            amount,
            at,
        }])
    }

    fn fail(
        &self,
        reason: DeclineCode,
        at: DateTime<Utc>,
    ) -> Result<Vec<PaymentEvent>, PaymentError> {
        let (_, status) = self.created()?;
        if status == PaymentStatus::Failed && self.failure == Some(reason) {
            return Ok(Vec::new());
        }
        let created = self.transition("FailPayment", PaymentStatus::Failed)?;
        Ok(vec![PaymentEvent::PaymentFailed {
            order_id: created.order_id,
            reason,
            at,
        }])
    }

    fn void(&self, at: DateTime<Utc>) -> Result<Vec<PaymentEvent>, PaymentError> {
        let (_, status) = self.created()?;
        if status == PaymentStatus::Voided {
            return Ok(Vec::new());
        }
        let created = self.transition("VoidPayment", PaymentStatus::Voided)?;
        Ok(vec![PaymentEvent::PaymentVoided {
            order_id: created.order_id,
            at,
        }])
    }

    /// Checks a new refund against the captured amount.
    fn refundable(&self, command: &'static str, amount: Money) -> Result<&Created, PaymentError> {
        let created = self.transition(command, PaymentStatus::Refunded)?;
        let amount = Self::valid_amount(created, amount)?;
        let captured = self
            .captured
            .unwrap_or(Money::zero(created.amount.currency()));
        let refundable = Money::new(
            captured.amount_minor() - self.committed_refunds_minor(),
            captured.currency(),
        );
        if amount.amount_minor() > refundable.amount_minor() {
            return Err(PaymentError::RefundExceedsCaptured {
                requested: amount,
                refundable,
            });
        }
        Ok(created)
    }

    fn request_refund(
        &self,
        refund_id: Uuid,
        amount: Money,
        at: DateTime<Utc>,
    ) -> Result<Vec<PaymentEvent>, PaymentError> {
        self.created()?;
        if let Some(existing) = self.refunds.get(&refund_id) {
            return if existing.amount == amount {
                Ok(Vec::new())
            } else {
                Err(PaymentError::RefundConflict { refund_id })
            };
        }
        let created = self.refundable("RequestRefund", amount)?;
        Ok(vec![PaymentEvent::PaymentRefundRequested {
            order_id: created.order_id,
            refund_id,
            amount,
            at,
        }])
    }

    fn record_refund(
        &self,
        refund_id: Uuid,
        amount: Money,
        at: DateTime<Utc>,
    ) -> Result<Vec<PaymentEvent>, PaymentError> {
        let (created, _) = self.created()?;
        match self.refunds.get(&refund_id) {
            Some(existing) if existing.amount != amount => {
                return Err(PaymentError::RefundConflict { refund_id });
            }
            Some(existing) if existing.completed => return Ok(Vec::new()),
            // Requested earlier: already counted against the captured amount.
            Some(_) => {}
            None => {
                self.refundable("RecordRefund", amount)?;
            }
        }
        let captured = self.captured.unwrap_or(created.amount);
        let total_refunded = Money::new(
            self.refunded_minor() + amount.amount_minor(),
            amount.currency(),
        );
        Ok(vec![PaymentEvent::PaymentRefunded {
            order_id: created.order_id,
            refund_id,
            amount,
            total_refunded,
            fully_refunded: total_refunded == captured,
            at,
        }])
    }
}

impl Aggregate for Payment {
    const TYPE: &'static str = "payment";
    type Command = PaymentCommand;
    type Event = PaymentEvent;
    type Error = PaymentError;

    fn handle(&self, command: PaymentCommand) -> Result<Vec<PaymentEvent>, PaymentError> {
        match command {
            PaymentCommand::CreatePayment {
                payment_id,
                order_id,
                provider,
                provider_intent_id,
                amount,
                idempotency_key,
                at,
            } => self.create(
                payment_id,
                order_id,
                provider,
                provider_intent_id,
                amount,
                idempotency_key,
                at,
            ),
            PaymentCommand::RequireAction { next_action, at } => {
                self.require_action(next_action, at)
            }
            PaymentCommand::AuthorisePayment { amount, at } => self.authorise(amount, at),
            PaymentCommand::CapturePayment { amount, at } => self.capture(amount, at),
            PaymentCommand::FailPayment { reason, at } => self.fail(reason, at),
            PaymentCommand::VoidPayment { at } => self.void(at),
            PaymentCommand::RequestRefund {
                refund_id,
                amount,
                at,
            } => self.request_refund(refund_id, amount, at),
            PaymentCommand::RecordRefund {
                refund_id,
                amount,
                at,
            } => self.record_refund(refund_id, amount, at),
        }
    }

    fn apply(&mut self, event: &PaymentEvent) {
        match event {
            PaymentEvent::PaymentCreated {
                payment_id,
                order_id,
                provider,
                provider_intent_id,
                amount,
                idempotency_key,
                ..
            } => {
                self.created = Some(Created {
                    payment_id: *payment_id,
                    order_id: *order_id,
                    provider: provider.clone(),
                    provider_intent_id: provider_intent_id.clone(),
                    amount: *amount,
                    idempotency_key: idempotency_key.clone(),
                });
                self.status = Some(PaymentStatus::Created);
            }
            PaymentEvent::PaymentActionRequired { next_action, .. } => {
                self.next_action = Some(next_action.clone());
                self.status = Some(PaymentStatus::RequiresAction);
            }
            PaymentEvent::PaymentAuthorised { amount, .. } => {
                self.next_action = None;
                self.authorised = Some(*amount);
                self.status = Some(PaymentStatus::Authorised);
            }
            PaymentEvent::PaymentCaptured { amount, .. } => {
                self.captured = Some(*amount);
                self.status = Some(PaymentStatus::Captured);
            }
            PaymentEvent::PaymentFailed { reason, .. } => {
                self.next_action = None;
                self.failure = Some(*reason);
                self.status = Some(PaymentStatus::Failed);
            }
            PaymentEvent::PaymentVoided { .. } => {
                self.next_action = None;
                self.status = Some(PaymentStatus::Voided);
            }
            PaymentEvent::PaymentRefundRequested {
                refund_id, amount, ..
            } => {
                self.refunds.insert(
                    *refund_id,
                    Refund {
                        amount: *amount,
                        completed: false,
                    },
                );
            }
            PaymentEvent::PaymentRefunded {
                refund_id,
                amount,
                fully_refunded,
                ..
            } => {
                self.refunds.insert(
                    *refund_id,
                    Refund {
                        amount: *amount,
                        completed: true,
                    },
                );
                if *fully_refunded {
                    self.status = Some(PaymentStatus::Refunded);
                }
            }
        }
    }
}
