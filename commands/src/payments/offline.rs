//! The offline provider: Stripe's test-card behaviour, without a network.
//!
//! | card                 | on confirm                                   |
//! | -------------------- | -------------------------------------------- |
//! | 4242 4242 4242 4242  | authorised                                   |
//! | 4000 0000 0000 0002  | declined, `card_declined`                    |
//! | 4000 0000 0000 9995  | declined, `insufficient_funds`               |
//! | 4000 0000 0000 0069  | declined, `expired_card`                     |
//! | 4000 0000 0000 0127  | declined, `incorrect_cvc`                    |
//! | 4000 0000 0000 0119  | declined, `processing_error`                 |
//! | 4000 0027 6000 3184  | requires 3-D Secure: `complete_action` authorises, `fail_action` declines |
//! | any other valid card | authorised (as Stripe's other test cards)    |
//!
//! A declined intent goes back to `requires_payment_method` and may be confirmed again
//! with another card, as at Stripe.
//!
//! **State lives in memory** behind one `std::sync::Mutex` (never held across an
//! `.await`): intents, refunds and idempotent responses vanish with the process. That
//! suits the tests and the embedded demo shop; a durable provider is Stripe itself.
//!
//! **Idempotency, as Stripe does it:** a key's first *successful* response is stored
//! with a fingerprint of its request; the same key and request return that response
//! again without acting (no second intent, capture or refund), the same key with
//! another request is [`ProviderError::IdempotencyKeyReused`]. Errors are not stored,
//! so a retry after one re-executes. Calls are serialised by the mutex, so concurrent
//! duplicates see the first one's stored response.
//!
//! **Cards:** only a [`CardSummary`] (brand, last four, fingerprint) is kept; the
//! confirm request's fingerprint uses that summary too, so no full number is stored.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use emporium_domain::Money;
use emporium_domain::payment::{DeclineCode, NextAction};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use super::card::{CardNumber, CardSummary};
use super::{
    Confirmation, CreateIntent, IdempotencyKey, IntentId, IntentStatus, PaymentIntent,
    PaymentMethod, PaymentProvider, ProviderError, Refund, RefundId, RefundStatus,
};

/// What a test card does on confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Authorise,
    Decline(DeclineCode),
    RequireAction,
}

fn behaviour(card: &CardNumber) -> Behaviour {
    match card.digits() {
        "4000000000000002" => Behaviour::Decline(DeclineCode::CardDeclined),
        "4000000000009995" => Behaviour::Decline(DeclineCode::InsufficientFunds),
        "4000000000000069" => Behaviour::Decline(DeclineCode::ExpiredCard),
        "4000000000000127" => Behaviour::Decline(DeclineCode::IncorrectCvc),
        "4000000000000119" => Behaviour::Decline(DeclineCode::ProcessingError),
        "4000002760003184" => Behaviour::RequireAction,
        _ => Behaviour::Authorise,
    }
}

/// A request as its idempotency fingerprint: everything that makes two requests the
/// same, and nothing secret.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Request {
    Create(CreateIntent),
    Confirm {
        intent: IntentId,
        method: MethodFingerprint,
    },
    Capture {
        intent: IntentId,
        amount: Option<Money>,
    },
    Cancel {
        intent: IntentId,
    },
    Refund {
        intent: IntentId,
        amount: Option<Money>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum MethodFingerprint {
    Provider(String),
    Card(String),
}

#[derive(Debug, Clone)]
enum Response {
    Intent(PaymentIntent),
    Confirmation(Confirmation),
    Refund(Refund),
}

#[derive(Debug, Default)]
struct State {
    intents: HashMap<IntentId, PaymentIntent>,
    refunds: Vec<Refund>,
    idempotent: HashMap<IdempotencyKey, (Request, Response)>,
}

/// The offline payment provider. See the module documentation for its behaviour.
#[derive(Debug)]
pub struct OfflineProvider {
    /// Keys the card fingerprints, so they identify a card without revealing it.
    fingerprint_key: [u8; 32],
    state: Mutex<State>,
}

impl Default for OfflineProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl OfflineProvider {
    /// A provider with no intents.
    #[must_use]
    pub fn new() -> Self {
        let mut fingerprint_key = [0u8; 32];
        fingerprint_key[..16].copy_from_slice(Uuid::new_v4().as_bytes());
        fingerprint_key[16..].copy_from_slice(Uuid::new_v4().as_bytes());
        Self {
            fingerprint_key,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves maps that are still consistent (every
        // change is a single insert), so a poisoned lock is used as it is.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn summary(&self, card: &CardNumber) -> CardSummary {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.fingerprint_key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(card.digits().as_bytes());
        let digest = mac.finalize().into_bytes();
        CardSummary {
            brand: card.brand(),
            last4: card.last4(),
            fingerprint: hex::encode(&digest[..8]),
        }
    }

    /// How many intents exist (to check that a retried create made no second one).
    #[must_use]
    pub fn intent_count(&self) -> usize {
        self.state().intents.len()
    }

    /// Every refund made.
    #[must_use]
    pub fn refunds(&self) -> Vec<Refund> {
        self.state().refunds.clone()
    }

    /// The customer completed 3-D Secure: a `requires_action` intent is authorised.
    /// Completing an intent that is already authorised is a no-op.
    ///
    /// # Errors
    /// [`ProviderError::NotFound`], or [`ProviderError::UnexpectedState`] when the
    /// intent is not waiting for an action.
    pub fn complete_action(&self, intent: &IntentId) -> Result<PaymentIntent, ProviderError> {
        self.finish_action(intent, true)
    }

    /// The customer failed (or abandoned) 3-D Secure: the intent goes back to
    /// `requires_payment_method`, declined with [`DeclineCode::Other`] (Stripe's
    /// `payment_intent_authentication_failure`).
    ///
    /// # Errors
    /// As [`OfflineProvider::complete_action`].
    pub fn fail_action(&self, intent: &IntentId) -> Result<PaymentIntent, ProviderError> {
        self.finish_action(intent, false)
    }

    fn finish_action(
        &self,
        id: &IntentId,
        authenticated: bool,
    ) -> Result<PaymentIntent, ProviderError> {
        let mut state = self.state();
        let intent = state
            .intents
            .get_mut(id)
            .ok_or_else(|| ProviderError::NotFound(id.clone()))?;
        match (intent.status, authenticated) {
            (IntentStatus::RequiresAction, true) => {
                intent.status = IntentStatus::RequiresCapture;
                intent.amount_capturable = intent.amount;
                intent.next_action = None;
            }
            (IntentStatus::RequiresAction, false) => {
                intent.status = IntentStatus::RequiresPaymentMethod;
                intent.next_action = None;
                intent.last_decline = Some(DeclineCode::Other);
            }
            (IntentStatus::RequiresCapture, true) => {}
            (status, _) => {
                return Err(ProviderError::UnexpectedState {
                    intent: id.clone(),
                    status,
                    operation: "complete the action",
                });
            }
        }
        Ok(intent.clone())
    }

    /// Runs `operation` once per idempotency key: replays the stored response of the
    /// same request, refuses another request under the same key.
    fn idempotent(
        &self,
        key: &IdempotencyKey,
        request: Request,
        operation: impl FnOnce(&mut State) -> Result<Response, ProviderError>,
    ) -> Result<Response, ProviderError> {
        let mut state = self.state();
        if let Some((stored, response)) = state.idempotent.get(key) {
            return if *stored == request {
                Ok(response.clone())
            } else {
                Err(ProviderError::IdempotencyKeyReused(key.clone()))
            };
        }
        let response = operation(&mut state)?;
        state
            .idempotent
            .insert(key.clone(), (request, response.clone()));
        Ok(response)
    }
}

fn intent_mut<'a>(
    state: &'a mut State,
    id: &IntentId,
) -> Result<&'a mut PaymentIntent, ProviderError> {
    state
        .intents
        .get_mut(id)
        .ok_or_else(|| ProviderError::NotFound(id.clone()))
}

fn unexpected(intent: &PaymentIntent, operation: &'static str) -> ProviderError {
    ProviderError::UnexpectedState {
        intent: intent.id.clone(),
        status: intent.status,
        operation,
    }
}

/// `amount` (or `default` when absent), checked to be positive, in the intent's
/// currency and at most `limit`.
fn amount_within(
    amount: Option<Money>,
    default: Money,
    limit: Money,
) -> Result<Money, ProviderError> {
    let amount = amount.unwrap_or(default);
    if amount.currency() != limit.currency() {
        return Err(ProviderError::InvalidAmount(
            "currency differs from the intent's",
        ));
    }
    if amount.amount_minor() <= 0 {
        return Err(ProviderError::InvalidAmount("amount must be positive"));
    }
    if amount.amount_minor() > limit.amount_minor() {
        return Err(ProviderError::InvalidAmount(
            "amount exceeds what is available",
        ));
    }
    Ok(amount)
}

/// A key is bound to one request, so its stored response has that request's kind;
/// another kind means the key was reused for another operation.
fn expect_intent(response: Response, key: &IdempotencyKey) -> Result<PaymentIntent, ProviderError> {
    match response {
        Response::Intent(intent) => Ok(intent),
        Response::Confirmation(_) | Response::Refund(_) => {
            Err(ProviderError::IdempotencyKeyReused(key.clone()))
        }
    }
}

#[async_trait]
impl PaymentProvider for OfflineProvider {
    fn name(&self) -> &'static str {
        "offline"
    }

    async fn create_intent(
        &self,
        request: CreateIntent,
        key: &IdempotencyKey,
    ) -> Result<PaymentIntent, ProviderError> {
        if request.amount.amount_minor() <= 0 {
            return Err(ProviderError::InvalidAmount("amount must be positive"));
        }
        let response = self.idempotent(key, Request::Create(request.clone()), |state| {
            let id = IntentId(format!("pi_offline_{}", Uuid::new_v4().simple()));
            let zero = Money::zero(request.amount.currency());
            let intent = PaymentIntent {
                client_secret: format!("{id}_secret_{}", Uuid::new_v4().simple()),
                id: id.clone(),
                order_id: request.order_id,
                amount: request.amount,
                amount_capturable: zero,
                amount_received: zero,
                amount_refunded: zero,
                status: IntentStatus::RequiresPaymentMethod,
                next_action: None,
                last_decline: None,
                card: None,
            };
            state.intents.insert(id, intent.clone());
            Ok(Response::Intent(intent))
        })?;
        expect_intent(response, key)
    }

    async fn confirm(
        &self,
        id: &IntentId,
        method: PaymentMethod,
        key: &IdempotencyKey,
    ) -> Result<Confirmation, ProviderError> {
        let (card, summary, fingerprint) = match &method {
            PaymentMethod::Card(card) => {
                let summary = self.summary(card);
                let fingerprint = MethodFingerprint::Card(summary.fingerprint.clone());
                (Some(card), Some(summary), fingerprint)
            }
            PaymentMethod::Provider(pm) => (None, None, MethodFingerprint::Provider(pm.clone())),
        };
        let request = Request::Confirm {
            intent: id.clone(),
            method: fingerprint,
        };
        let response = self.idempotent(key, request, |state| {
            let intent = intent_mut(state, id)?;
            if intent.status != IntentStatus::RequiresPaymentMethod {
                return Err(unexpected(intent, "confirm"));
            }
            let (Some(card), Some(summary)) = (card, summary) else {
                return Err(ProviderError::InvalidPaymentMethod(
                    "the offline provider takes card numbers, not provider payment methods",
                ));
            };
            intent.card = Some(summary);
            intent.last_decline = None;
            let confirmation = match behaviour(card) {
                Behaviour::Authorise => {
                    intent.status = IntentStatus::RequiresCapture;
                    intent.amount_capturable = intent.amount;
                    Confirmation::Authorised(intent.clone())
                }
                Behaviour::Decline(code) => {
                    intent.last_decline = Some(code);
                    Confirmation::Declined {
                        code,
                        intent: intent.clone(),
                    }
                }
                Behaviour::RequireAction => {
                    let next_action = NextAction::UseSdk {
                        client_secret: intent.client_secret.clone(),
                    };
                    intent.status = IntentStatus::RequiresAction;
                    intent.next_action = Some(next_action.clone());
                    Confirmation::RequiresAction {
                        next_action,
                        intent: intent.clone(),
                    }
                }
            };
            Ok(Response::Confirmation(confirmation))
        })?;
        match response {
            Response::Confirmation(c) => Ok(c),
            Response::Intent(_) | Response::Refund(_) => {
                Err(ProviderError::IdempotencyKeyReused(key.clone()))
            }
        }
    }

    async fn capture(
        &self,
        id: &IntentId,
        amount: Option<Money>,
        key: &IdempotencyKey,
    ) -> Result<PaymentIntent, ProviderError> {
        let request = Request::Capture {
            intent: id.clone(),
            amount,
        };
        let response = self.idempotent(key, request, |state| {
            let intent = intent_mut(state, id)?;
            if intent.status != IntentStatus::RequiresCapture {
                return Err(unexpected(intent, "capture"));
            }
            let captured =
                amount_within(amount, intent.amount_capturable, intent.amount_capturable)?;
            // A partial capture releases the rest, as at Stripe.
            intent.amount_received = captured;
            intent.amount_capturable = Money::zero(captured.currency());
            intent.status = IntentStatus::Succeeded;
            Ok(Response::Intent(intent.clone()))
        })?;
        expect_intent(response, key)
    }

    async fn cancel(
        &self,
        id: &IntentId,
        key: &IdempotencyKey,
    ) -> Result<PaymentIntent, ProviderError> {
        let request = Request::Cancel { intent: id.clone() };
        let response = self.idempotent(key, request, |state| {
            let intent = intent_mut(state, id)?;
            match intent.status {
                IntentStatus::RequiresPaymentMethod
                | IntentStatus::RequiresAction
                | IntentStatus::RequiresCapture => {
                    intent.status = IntentStatus::Canceled;
                    intent.amount_capturable = Money::zero(intent.amount.currency());
                    intent.next_action = None;
                    Ok(Response::Intent(intent.clone()))
                }
                IntentStatus::Processing | IntentStatus::Succeeded | IntentStatus::Canceled => {
                    Err(unexpected(intent, "cancel"))
                }
            }
        })?;
        expect_intent(response, key)
    }

    async fn refund(
        &self,
        id: &IntentId,
        amount: Option<Money>,
        key: &IdempotencyKey,
    ) -> Result<Refund, ProviderError> {
        let request = Request::Refund {
            intent: id.clone(),
            amount,
        };
        let response = self.idempotent(key, request, |state| {
            let intent = intent_mut(state, id)?;
            if intent.status != IntentStatus::Succeeded {
                return Err(unexpected(intent, "refund"));
            }
            let refundable = intent
                .amount_received
                .checked_sub(intent.amount_refunded)
                .map_err(|_| ProviderError::InvalidAmount("refundable amount overflows"))?;
            if refundable.amount_minor() == 0 {
                return Err(ProviderError::InvalidAmount("already fully refunded"));
            }
            let amount = amount_within(amount, refundable, refundable)?;
            intent.amount_refunded = intent
                .amount_refunded
                .checked_add(amount)
                .map_err(|_| ProviderError::InvalidAmount("refunded amount overflows"))?;
            let refund = Refund {
                id: RefundId(format!("re_offline_{}", Uuid::new_v4().simple())),
                intent: id.clone(),
                amount,
                status: RefundStatus::Succeeded,
            };
            state.refunds.push(refund.clone());
            Ok(Response::Refund(refund))
        })?;
        match response {
            Response::Refund(r) => Ok(r),
            Response::Intent(_) | Response::Confirmation(_) => {
                Err(ProviderError::IdempotencyKeyReused(key.clone()))
            }
        }
    }

    async fn retrieve(&self, id: &IntentId) -> Result<PaymentIntent, ProviderError> {
        self.state()
            .intents
            .get(id)
            .cloned()
            .ok_or_else(|| ProviderError::NotFound(id.clone()))
    }
}

#[cfg(test)]
mod tests;
