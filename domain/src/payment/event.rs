//! What happened to a payment.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Money;
use crate::aggregate::DomainEvent;

/// Where a payment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// The intent exists at the provider.
    Created,
    /// The customer must complete an action (3-D Secure).
    RequiresAction,
    /// Funds are held.
    Authorised,
    /// Funds are collected (refunds, if partial, keep this status).
    Captured,
    /// Declined or errored before authorisation.
    Failed,
    /// Cancelled before capture.
    Voided,
    /// Everything captured was refunded.
    Refunded,
}

impl PaymentStatus {
    /// Every status.
    pub const ALL: [Self; 7] = [
        Self::Created,
        Self::RequiresAction,
        Self::Authorised,
        Self::Captured,
        Self::Failed,
        Self::Voided,
        Self::Refunded,
    ];

    /// Whether a payment may go from `self` to `next`: the whole table.
    #[must_use]
    pub const fn can_transition_to(self, next: Self) -> bool {
        use PaymentStatus::{
            Authorised, Captured, Created, Failed, Refunded, RequiresAction, Voided,
        };
        matches!(
            (self, next),
            (Created, RequiresAction | Authorised | Failed | Voided)
                | (RequiresAction, Authorised | Failed | Voided)
                | (Authorised, Captured | Voided)
                | (Captured, Refunded)
        )
    }

    /// The snake_case name used in events and APIs.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::RequiresAction => "requires_action",
            Self::Authorised => "authorised",
            Self::Captured => "captured",
            Self::Failed => "failed",
            Self::Voided => "voided",
            Self::Refunded => "refunded",
        }
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a payment failed, mirroring Stripe's decline codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeclineCode {
    /// The issuer declined without a more specific reason.
    CardDeclined,
    /// Not enough funds.
    InsufficientFunds,
    /// The card has expired.
    ExpiredCard,
    /// The CVC was wrong.
    IncorrectCvc,
    /// The provider or issuer failed to process the payment.
    ProcessingError,
    /// Any other code.
    Other,
}

impl DeclineCode {
    /// Maps a provider's code (Stripe's `decline_code` or error `code`) to a reason;
    /// anything unrecognised is [`DeclineCode::Other`].
    #[must_use]
    pub fn from_provider_code(code: &str) -> Self {
        match code.trim() {
            "card_declined" | "generic_decline" => Self::CardDeclined,
            "insufficient_funds" => Self::InsufficientFunds,
            "expired_card" => Self::ExpiredCard,
            "incorrect_cvc" => Self::IncorrectCvc,
            "processing_error" => Self::ProcessingError,
            _ => Self::Other,
        }
    }
}

/// What the customer's client must do before the payment can be authorised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NextAction {
    /// Confirm in the client with the provider's SDK, using the intent's client secret.
    UseSdk {
        /// The intent's client secret.
        client_secret: String,
    },
    /// Send the customer to this URL (the issuer's 3-D Secure page).
    RedirectToUrl {
        /// The URL.
        url: String,
    },
}

/// An event of the payment aggregate. Each carries the order id, so consumers (the
/// checkout saga, notifications) need no lookup.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, strum::IntoStaticStr,
)]
pub enum PaymentEvent {
    /// A payment intent exists at the provider; status `created`.
    PaymentCreated {
        /// The payment.
        payment_id: Uuid,
        /// The order.
        order_id: Uuid,
        /// The provider.
        provider: String,
        /// The provider's intent id.
        provider_intent_id: String,
        /// The amount to collect.
        amount: Money,
        /// The idempotency key of the provider calls.
        idempotency_key: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The customer must act; status `requires_action`.
    PaymentActionRequired {
        /// The order.
        order_id: Uuid,
        /// What the client must do.
        next_action: NextAction,
        /// When.
        at: DateTime<Utc>,
    },
    /// Funds are held; status `authorised`.
    PaymentAuthorised {
        /// The order.
        order_id: Uuid,
        /// The amount held.
        amount: Money,
        /// When.
        at: DateTime<Utc>,
    },
    /// Funds are collected; status `captured`.
    PaymentCaptured {
        /// The order.
        order_id: Uuid,
        /// The amount collected.
        amount: Money,
        /// When.
        at: DateTime<Utc>,
    },
    /// The payment failed; status `failed`.
    PaymentFailed {
        /// The order.
        order_id: Uuid,
        /// Why.
        reason: DeclineCode,
        /// When.
        at: DateTime<Utc>,
    },
    /// The payment was cancelled before capture; status `voided`.
    PaymentVoided {
        /// The order.
        order_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// A refund was asked of the provider.
    PaymentRefundRequested {
        /// The order.
        order_id: Uuid,
        /// The refund.
        refund_id: Uuid,
        /// Its amount.
        amount: Money,
        /// When.
        at: DateTime<Utc>,
    },
    /// The provider completed a refund; once `fully_refunded`, status `refunded`.
    PaymentRefunded {
        /// The order.
        order_id: Uuid,
        /// The refund.
        refund_id: Uuid,
        /// Its amount.
        amount: Money,
        /// All completed refunds so far, this one included.
        total_refunded: Money,
        /// Whether everything captured is now refunded.
        fully_refunded: bool,
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for PaymentEvent {
    fn event_type(&self) -> &'static str {
        self.into()
    }

    fn event_version(&self) -> &'static str {
        "1.0"
    }
}
