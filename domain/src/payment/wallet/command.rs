//! What a wallet can be asked to do.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::card::{CardBrand, CardExpiry, Last4};

/// A command to one user's wallet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum WalletCommand {
    /// Saves a card. The first card saved becomes the default. Repeating it with the
    /// same details is a no-op.
    AddPaymentMethod {
        /// Our id for the saved method.
        payment_method_id: Uuid,
        /// The network.
        brand: CardBrand,
        /// Last four digits.
        last4: Last4,
        /// Expiry; must not have passed at `at`.
        expiry: CardExpiry,
        /// Make it the default even if another one is.
        make_default: bool,
        /// When.
        at: DateTime<Utc>,
    },
    /// Forgets a saved card.
    RemovePaymentMethod {
        /// The saved method.
        payment_method_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// Makes a saved, unexpired card the default.
    SetDefaultPaymentMethod {
        /// The saved method.
        payment_method_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
}
