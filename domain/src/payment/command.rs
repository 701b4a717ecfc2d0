//! What a payment can be asked to do.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::event::{DeclineCode, NextAction};
use crate::Money;

/// A command to one payment. Amounts come from the order, never from the client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum PaymentCommand {
    /// Records a payment intent created at the provider. Repeating it with the same
    /// details is a no-op.
    CreatePayment {
        /// The payment id (the aggregate id).
        payment_id: Uuid,
        /// The order paid for.
        order_id: Uuid,
        /// The provider, e.g. `"stripe"` or `"offline"`.
        provider: String,
        /// The provider's intent id, e.g. `"pi_..."`.
        provider_intent_id: String,
        /// The amount to collect; positive.
        amount: Money,
        /// The idempotency key sent with every provider call for this payment.
        idempotency_key: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Records that the customer must act (3-D Secure) before authorisation.
    RequireAction {
        /// What the client has to do.
        next_action: NextAction,
        /// When.
        at: DateTime<Utc>,
    },
    /// Records that the provider authorised (holds) the funds.
    AuthorisePayment {
        /// The amount authorised; positive, at most the payment amount.
        amount: Money,
        /// When.
        at: DateTime<Utc>,
    },
    /// Records that the provider captured the funds.
    CapturePayment {
        /// The amount captured; positive, at most the authorised amount.
        amount: Money,
        /// When.
        at: DateTime<Utc>,
    },
    /// Records that the payment failed before authorisation.
    FailPayment {
        /// The provider's decline code.
        reason: DeclineCode,
        /// When.
        at: DateTime<Utc>,
    },
    /// Records that the payment was cancelled before capture (authorisation released).
    VoidPayment {
        /// When.
        at: DateTime<Utc>,
    },
    /// Asks for part or all of the captured amount back.
    RequestRefund {
        /// Chosen by the caller, the idempotency key.
        refund_id: Uuid,
        /// The amount; positive.
        amount: Money,
        /// When.
        at: DateTime<Utc>,
    },
    /// Records that the provider completed a refund: one we requested, or one made
    /// directly at the provider (its webhook may be the first we hear of it).
    RecordRefund {
        /// The refund id.
        refund_id: Uuid,
        /// The amount refunded; positive.
        amount: Money,
        /// When.
        at: DateTime<Utc>,
    },
}
