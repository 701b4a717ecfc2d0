//! The viewer's payments, from the `payments` read model: only the customer's own
//! rows are ever selected, so a foreign payment id finds nothing, exactly like a
//! missing one.

use chrono::{DateTime, Utc};
use emporium_projections::args;
use uuid::Uuid;

use super::Shop;
use crate::error::ApiError;

/// The most payments one answer shows.
pub(crate) const MAX_PAGE: i64 = 100;

/// A payment as its customer sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct PaymentRow {
    pub(crate) payment_id: Uuid,
    pub(crate) order_id: Uuid,
    pub(crate) status: String,
    pub(crate) provider: String,
    pub(crate) currency: String,
    pub(crate) amount_minor: i64,
    pub(crate) authorised_minor: i64,
    pub(crate) captured_minor: i64,
    pub(crate) refunded_minor: i64,
    pub(crate) failure_reason: Option<String>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "payment_id, order_id, status, provider, currency, amount_minor, \
     authorised_minor, captured_minor, refunded_minor, failure_reason, created_at, updated_at";

fn read_error(e: sqlx::Error, what: &'static str) -> ApiError {
    ApiError::internal(anyhow::Error::from(e).context(what))
}

impl Shop {
    /// The customer's payments, newest first (`first` clamped to 1..=100).
    ///
    /// # Errors
    /// When the read model cannot be read.
    pub(crate) async fn my_payments(
        &self,
        user_id: Uuid,
        first: i64,
    ) -> Result<Vec<PaymentRow>, ApiError> {
        self.read
            .fetch_all(
                &format!(
                    "SELECT {COLUMNS} FROM payments WHERE customer_id = $1
                     ORDER BY created_at DESC, payment_id DESC LIMIT $2"
                ),
                args![user_id, first.clamp(1, MAX_PAGE)],
            )
            .await
            .map_err(|e| read_error(e, "read payments"))
    }

    /// One of the customer's payments (`None` for a missing or foreign one).
    ///
    /// # Errors
    /// When the read model cannot be read.
    pub(crate) async fn my_payment(
        &self,
        user_id: Uuid,
        payment_id: Uuid,
    ) -> Result<Option<PaymentRow>, ApiError> {
        self.read
            .fetch_optional(
                &format!(
                    "SELECT {COLUMNS} FROM payments WHERE payment_id = $1 AND customer_id = $2"
                ),
                args![payment_id, user_id],
            )
            .await
            .map_err(|e| read_error(e, "read payment"))
    }
}
