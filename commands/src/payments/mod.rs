//! Payments through a provider port.
//!
//! [`PaymentProvider`] is what the checkout needs of a payment provider, in Stripe's
//! terms: a PaymentIntent with **manual capture** (funds are authorised at confirm and
//! collected later), confirmed with a payment method, captured, cancelled (voided) or
//! refunded, and retrieved to reconcile out-of-order webhooks. Every mutating call
//! carries an [`IdempotencyKey`], derived from the command that causes it
//! ([`IdempotencyKey::for_command`]), so a retried command never charges twice.
//!
//! Adapters: [`OfflineProvider`] (Stripe's test-card behaviour, durable in PostgreSQL or
//! in memory) serves the embedded mode and the tests; `StripeProvider` (async-stripe)
//! is compiled only with this crate's `stripe` feature, so the command layer builds
//! without it. [`webhook`] verifies `Stripe-Signature` headers, [`events`] reads (and,
//! for the offline provider, writes) webhook events, [`reconcile`] decides how a
//! payment follows its intent, and [`sync`] applies verified webhooks to payments.
//!
//! Amounts always come from the order, never from the client.

mod card;
pub mod events;
mod offline;
pub mod reconcile;
#[cfg(feature = "stripe")]
mod stripe;
pub mod sync;
pub mod webhook;

use std::fmt;

use async_trait::async_trait;
use emporium_domain::Money;
use emporium_domain::payment::{DeclineCode, NextAction};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[cfg(feature = "stripe")]
pub use self::stripe::{STRIPE_API_BASE, StripeConfig, StripeConfigError, StripeProvider};
pub use card::{CardNumber, CardNumberError, CardSummary};
pub use offline::{OfflineProvider, Simulated, Simulation};

/// A provider's idempotency key: 1 to 255 printable ASCII characters (Stripe's
/// bound). The same key with the same request returns the first response and does
/// nothing again; with a different request it is refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Validates a key.
    ///
    /// # Errors
    /// [`ProviderError::InvalidRequest`] when the key is empty, too long or not
    /// printable ASCII.
    pub fn parse(raw: &str) -> Result<Self, ProviderError> {
        let valid = (1..=255).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic());
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ProviderError::InvalidRequest(
                "idempotency key must be 1 to 255 printable ASCII characters",
            ))
        }
    }

    /// The key for one provider operation caused by one command: `<operation>-<id>`,
    /// e.g. `capture-0190...`. Deterministic, so a retried command reuses it.
    #[must_use]
    pub fn for_command(operation: &str, command_id: Uuid) -> Self {
        let operation: String = operation
            .chars()
            .filter(char::is_ascii_graphic)
            .take(200)
            .collect();
        Self(format!("{operation}-{}", command_id.as_hyphenated()))
    }

    /// The key.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for IdempotencyKey {
    type Error = ProviderError;
    fn try_from(raw: String) -> Result<Self, ProviderError> {
        Self::parse(&raw)
    }
}

impl From<IdempotencyKey> for String {
    fn from(key: IdempotencyKey) -> Self {
        key.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A provider's PaymentIntent id (`pi_...`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IntentId(pub String);

impl fmt::Display for IntentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A provider's refund id (`re_...`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RefundId(pub String);

/// Where an intent is, in Stripe's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentStatus {
    /// Waiting for a payment method (new, or after a decline: see `last_decline`).
    RequiresPaymentMethod,
    /// The customer must act (3-D Secure): see `next_action`.
    RequiresAction,
    /// The provider is still working on it (Stripe only; reconcile later).
    Processing,
    /// Authorised: funds held, waiting for capture.
    RequiresCapture,
    /// Captured.
    Succeeded,
    /// Cancelled (voided) before capture.
    Canceled,
}

impl IntentStatus {
    /// Stripe's name for the status.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::RequiresPaymentMethod => "requires_payment_method",
            Self::RequiresAction => "requires_action",
            Self::Processing => "processing",
            Self::RequiresCapture => "requires_capture",
            Self::Succeeded => "succeeded",
            Self::Canceled => "canceled",
        }
    }
}

impl fmt::Display for IntentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A PaymentIntent as the provider reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentIntent {
    /// The provider's id.
    pub id: IntentId,
    /// The order it pays for (sent as metadata).
    pub order_id: Uuid,
    /// The amount to collect.
    pub amount: Money,
    /// What can still be captured (the amount while `requires_capture`, else zero).
    pub amount_capturable: Money,
    /// What was captured.
    pub amount_received: Money,
    /// What was refunded so far.
    pub amount_refunded: Money,
    /// The status.
    pub status: IntentStatus,
    /// What the client must do, while `requires_action`.
    pub next_action: Option<NextAction>,
    /// Why the last confirmation was declined, if it was.
    pub last_decline: Option<DeclineCode>,
    /// The card used, once confirmed with one.
    pub card: Option<CardSummary>,
    /// The secret the client's SDK confirms with; give it to the paying client only.
    pub client_secret: String,
}

/// What to create an intent for. Capture is always manual.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateIntent {
    /// The order's grand total; positive.
    pub amount: Money,
    /// The order.
    pub order_id: Uuid,
}

/// How the customer pays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentMethod {
    /// A provider payment method id (`pm_...`), created by the client's SDK: what the
    /// Stripe adapter takes, so card numbers never reach the server.
    Provider(String),
    /// A card number: the offline provider's stand-in for a payment method.
    Card(CardNumber),
}

/// The outcome of confirming an intent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Confirmation {
    /// Funds are held; capture when the order is ready.
    Authorised(PaymentIntent),
    /// The customer must act first (3-D Secure); return this to the client.
    RequiresAction {
        /// What the client must do.
        next_action: NextAction,
        /// The intent, `requires_action`.
        intent: PaymentIntent,
    },
    /// The card was declined; the intent waits for another payment method.
    Declined {
        /// Why.
        code: DeclineCode,
        /// The intent, `requires_payment_method`.
        intent: PaymentIntent,
    },
}

impl Confirmation {
    /// The intent, whatever the outcome.
    #[must_use]
    pub fn intent(&self) -> &PaymentIntent {
        match self {
            Self::Authorised(intent)
            | Self::RequiresAction { intent, .. }
            | Self::Declined { intent, .. } => intent,
        }
    }
}

/// A refund's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    /// Still in progress (reconcile by webhook).
    Pending,
    /// Done.
    Succeeded,
    /// The provider could not refund.
    Failed,
}

/// A refund as the provider reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// The provider's id.
    pub id: RefundId,
    /// The intent refunded.
    pub intent: IntentId,
    /// How much.
    pub amount: Money,
    /// Its status.
    pub status: RefundStatus,
}

/// Why a provider call failed. Declines are not errors: they are
/// [`Confirmation::Declined`].
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// No intent has this id.
    #[error("no payment intent {0}")]
    NotFound(IntentId),
    /// The intent's status does not allow the operation (capturing a cancelled
    /// intent, refunding an uncaptured one, ...).
    #[error("payment intent {intent} is {status}; cannot {operation}")]
    UnexpectedState {
        /// The intent.
        intent: IntentId,
        /// Its status.
        status: IntentStatus,
        /// What was asked.
        operation: &'static str,
    },
    /// The idempotency key was already used for a different request.
    #[error("idempotency key `{0}` was already used for a different request")]
    IdempotencyKeyReused(IdempotencyKey),
    /// An amount the operation cannot take: not positive, another currency than the
    /// intent's, more than is capturable or refundable.
    #[error("invalid amount: {0}")]
    InvalidAmount(&'static str),
    /// A payment method the provider cannot use.
    #[error("payment method refused: {0}")]
    InvalidPaymentMethod(&'static str),
    /// A malformed request.
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// The provider could not be reached or failed; retrying with the same
    /// idempotency key is safe.
    #[error("payment provider unavailable")]
    Unavailable(#[source] anyhow::Error),
}

/// A payment provider, in Stripe's PaymentIntent terms.
#[async_trait]
pub trait PaymentProvider: Send + Sync + fmt::Debug {
    /// The provider's name as payments record it (`"stripe"`, `"offline"`).
    fn name(&self) -> &'static str;

    /// Creates an intent with manual capture.
    ///
    /// # Errors
    /// [`ProviderError`]; a non-positive amount is [`ProviderError::InvalidAmount`].
    async fn create_intent(
        &self,
        request: CreateIntent,
        key: &IdempotencyKey,
    ) -> Result<PaymentIntent, ProviderError>;

    /// Confirms an intent with a payment method: authorised, action required or
    /// declined.
    ///
    /// # Errors
    /// [`ProviderError`] (a decline is not an error).
    async fn confirm(
        &self,
        intent: &IntentId,
        method: PaymentMethod,
        key: &IdempotencyKey,
    ) -> Result<Confirmation, ProviderError>;

    /// Captures an authorised intent: all of it (`None`) or part, releasing the rest.
    ///
    /// # Errors
    /// [`ProviderError`].
    async fn capture(
        &self,
        intent: &IntentId,
        amount: Option<Money>,
        key: &IdempotencyKey,
    ) -> Result<PaymentIntent, ProviderError>;

    /// Cancels an intent before capture, releasing any authorisation (a void).
    ///
    /// # Errors
    /// [`ProviderError`]; a captured intent must be refunded instead.
    async fn cancel(
        &self,
        intent: &IntentId,
        key: &IdempotencyKey,
    ) -> Result<PaymentIntent, ProviderError>;

    /// Refunds a captured intent: what is left (`None`) or part of it.
    ///
    /// # Errors
    /// [`ProviderError`].
    async fn refund(
        &self,
        intent: &IntentId,
        amount: Option<Money>,
        key: &IdempotencyKey,
    ) -> Result<Refund, ProviderError>;

    /// The intent's current state, to reconcile with.
    ///
    /// # Errors
    /// [`ProviderError`].
    async fn retrieve(&self, intent: &IntentId) -> Result<PaymentIntent, ProviderError>;
}
