//! What happened to a wallet.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::card::{CardBrand, CardExpiry, Last4};
use crate::aggregate::DomainEvent;

/// An event of the wallet aggregate.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, strum::IntoStaticStr,
)]
pub enum WalletEvent {
    /// A card was saved.
    PaymentMethodAdded {
        /// Our id for it.
        payment_method_id: Uuid,
        /// The network.
        brand: CardBrand,
        /// Last four digits.
        last4: Last4,
        /// Expiry.
        expiry: CardExpiry,
        /// When.
        at: DateTime<Utc>,
    },
    /// A saved card became the default.
    DefaultPaymentMethodSet {
        /// The saved method.
        payment_method_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// A saved card was forgotten; if it was the default, there is none now.
    PaymentMethodRemoved {
        /// The saved method.
        payment_method_id: Uuid,
        /// Whether it was the default.
        was_default: bool,
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for WalletEvent {
    fn event_type(&self) -> &'static str {
        self.into()
    }

    fn event_version(&self) -> &'static str {
        "1.0"
    }
}
