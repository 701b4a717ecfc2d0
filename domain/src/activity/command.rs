//! What a user-activity record can be asked to do.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What the visitor did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    /// Looked at a product page.
    View,
    /// Clicked something (a product tile, a banner).
    Click,
    /// Put a product in the cart.
    AddToCart,
    /// Searched.
    Search,
    /// Bought.
    Purchase,
}

impl ActivityKind {
    /// The snake_case name used in events and read models.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::View => "view",
            Self::Click => "click",
            Self::AddToCart => "add_to_cart",
            Self::Search => "search",
            Self::Purchase => "purchase",
        }
    }
}

impl fmt::Display for ActivityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request to a [`UserActivity`](super::UserActivity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActivityCommand {
    /// Records one activity.
    RecordActivity {
        /// The activity's id, chosen by the client so a retry is recognised.
        activity_id: Uuid,
        /// What happened.
        kind: ActivityKind,
        /// The product concerned, if any.
        product_id: Option<Uuid>,
        /// The search text, if any.
        query: Option<String>,
        /// When.
        at: DateTime<Utc>,
    },
}
