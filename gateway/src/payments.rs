//! Payments at the edge: the provider the settings select, and the Stripe webhook
//! endpoint `POST /webhooks/stripe`.
//!
//! **Provider.** [`provider`] is the one constructor: `payments.provider = "offline"`
//! (the default) gives the durable [`OfflineProvider`] over the platform's database,
//! `"stripe"` the [`StripeProvider`] with `payments.stripe.secret_key`. Production
//! refuses the offline provider unless `payments.allow_offline_in_production` is set
//! (checked when the settings load, too).
//!
//! **Webhook.** The raw body is verified against `Stripe-Signature` (any `v1` under
//! any of `payments.webhook_secrets`, `payments.webhook_tolerance_seconds`) before it
//! is parsed; a bad or missing signature is 400 and nothing is recorded. A genuine
//! event goes to [`WebhookProcessor`]: deduplicated by event id, reconciled with the
//! intent the provider reports now. Answers: 200 (processed, duplicate, or ignored:
//! unknown types and events about no intent), 400 (signature or body), 503 (provider
//! or database unavailable: Stripe retries).

use std::sync::Arc;

use anyhow::Context as _;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use emporium_commands::AnyStore;
use emporium_commands::checkout::CheckoutError;
use emporium_commands::payments::events::StripeEvent;
use emporium_commands::payments::sync::{Outcome, ProcessError, WebhookProcessor};
use emporium_commands::payments::webhook::{SignatureVerifier, WebhookSecret};
use emporium_commands::payments::{OfflineProvider, PaymentProvider, StripeConfig, StripeProvider};
use serde_json::json;

use crate::clock::Clock;
use crate::config::{Environment, PaymentProviderKind, Settings};

/// The route of the Stripe webhook endpoint.
pub const STRIPE_WEBHOOK_PATH: &str = "/webhooks/stripe";

/// Largest webhook body accepted (Stripe's events are a few KiB).
const MAX_WEBHOOK_BODY: usize = 512 * 1024;

/// The payment provider `settings.payments` selects, over `pool` (the offline
/// provider's state lives there). Builds without touching the network or database.
///
/// # Errors
/// When Stripe is selected without a secret key or with a malformed API base, or the
/// offline provider is selected in production without
/// `payments.allow_offline_in_production`.
pub fn provider(settings: &Settings, store: &AnyStore) -> anyhow::Result<Arc<dyn PaymentProvider>> {
    let payments = &settings.payments;
    match payments.provider {
        PaymentProviderKind::Offline => {
            anyhow::ensure!(
                settings.env != Environment::Production || payments.allow_offline_in_production,
                "payments.provider = \"offline\" in production needs payments.allow_offline_in_production = true"
            );
            Ok(Arc::new(OfflineProvider::durable(store.db())))
        }
        PaymentProviderKind::Stripe => {
            let key = payments
                .stripe
                .secret_key
                .as_ref()
                .filter(|k| !k.expose().is_empty())
                .context("payments.provider = \"stripe\" needs payments.stripe.secret_key (EMPORIUM_PAYMENTS__STRIPE__SECRET_KEY)")?;
            let mut config = StripeConfig::new(key.expose()).with_timeout(
                std::time::Duration::from_secs(payments.stripe.timeout_seconds),
            );
            if let Some(base) = &payments.stripe.api_base {
                config = config.with_api_base(base.clone());
            }
            Ok(Arc::new(
                StripeProvider::new(config).context("configure the Stripe client")?,
            ))
        }
    }
}

/// What the webhook endpoint needs.
#[derive(Clone)]
pub(crate) struct WebhookState {
    verifier: Arc<SignatureVerifier>,
    processor: Arc<WebhookProcessor>,
    clock: Arc<dyn Clock>,
    /// Moves the order's checkout on right after its payment changed, instead of at
    /// the driver's next recheck.
    checkouts: Option<Arc<emporium_commands::checkout::Checkouts>>,
}

impl std::fmt::Debug for WebhookState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookState").finish_non_exhaustive()
    }
}

/// The webhook route, ready to merge into the application's router.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>(
    settings: &Settings,
    store: AnyStore,
    provider: Arc<dyn PaymentProvider>,
    clock: Arc<dyn Clock>,
    checkouts: Option<Arc<emporium_commands::checkout::Checkouts>>,
) -> axum::Router<S> {
    let secrets = settings
        .payments
        .webhook_secrets
        .iter()
        .map(|s| WebhookSecret::new(s.expose()))
        .collect();
    let tolerance = chrono::Duration::seconds(
        i64::try_from(settings.payments.webhook_tolerance_seconds).unwrap_or(i64::MAX),
    );
    let state = WebhookState {
        verifier: Arc::new(SignatureVerifier::new(secrets).with_tolerance(tolerance)),
        processor: Arc::new(WebhookProcessor::new(store, provider)),
        clock,
        checkouts,
    };
    axum::Router::new()
        .route(STRIPE_WEBHOOK_PATH, axum::routing::post(stripe_webhook))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_WEBHOOK_BODY))
        .with_state(state)
}

fn answer(status: StatusCode, outcome: &str) -> Response {
    metrics::counter!("emporium_webhook_events_total", "outcome" => outcome.to_owned())
        .increment(1);
    let body = if status.is_success() {
        json!({ "received": true, "outcome": outcome })
    } else {
        json!({ "received": false, "error": outcome })
    };
    (status, Json(body)).into_response()
}

/// `POST /webhooks/stripe`.
#[tracing::instrument(skip_all)]
async fn stripe_webhook(
    State(state): State<WebhookState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = state.clock.now();
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    if let Err(e) = state.verifier.verify(&body, signature, now) {
        tracing::warn!(error = %e, "webhook refused");
        return answer(StatusCode::BAD_REQUEST, "invalid_signature");
    }
    let event = match StripeEvent::parse(&body) {
        Ok(event) => event,
        Err(e) => {
            tracing::warn!(error = %e, "signed webhook body is not an event");
            return answer(StatusCode::BAD_REQUEST, "invalid_event");
        }
    };
    match state.processor.process(&event, now).await {
        Ok(Outcome::Processed { order_id, .. }) => {
            // The payment moved (3-D Secure completed, a capture or refund elsewhere):
            // the checkout takes its next steps now. A failure here is the checkout's
            // to retry (the driver resumes it); the event itself was processed.
            if let Some(checkouts) = &state.checkouts {
                match checkouts.advance(order_id, now).await {
                    Ok(_) | Err(CheckoutError::NotFound) => {}
                    Err(e) => tracing::warn!(
                        %order_id,
                        error_code = "checkout_after_webhook_failed",
                        error = format!("{e:#}"),
                        "checkout did not advance after the webhook; the driver retries"
                    ),
                }
            }
            answer(StatusCode::OK, "processed")
        }
        Ok(Outcome::Duplicate) => answer(StatusCode::OK, "duplicate"),
        Ok(Outcome::Ignored(why)) => {
            tracing::debug!(event_id = %event.id, event_type = %event.event_type, why, "webhook ignored");
            answer(StatusCode::OK, "ignored")
        }
        Err(e) => {
            let status = match e {
                ProcessError::Provider(_) => StatusCode::SERVICE_UNAVAILABLE,
                ProcessError::Reconcile { .. } | ProcessError::Unexpected(_) => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            };
            tracing::error!(
                event_id = %event.id,
                error_code = "webhook_failed",
                error = format!("{:#}", anyhow::Error::from(e)),
                "webhook not processed; the provider will deliver it again"
            );
            answer(status, "not_processed")
        }
    }
}
