//! The Stripe adapter: [`PaymentProvider`] over Stripe's PaymentIntents API
//! (async-stripe, behind this crate's `stripe` feature).
//!
//! **Requests.** An intent is created with `capture_method=manual`, card payments only
//! (`allowed_payment_method_types[]=card`, so a server-side confirm never needs a
//! `return_url`), the amount in minor units and the lower-case ISO code, both from the
//! order's [`CreateIntent`] (never from the client), and `metadata[order_id]`. Confirm
//! takes a payment method id created by the client's SDK (`pm_...`); card numbers are
//! refused before any request. Every mutating call (create, confirm, capture, cancel,
//! refund) sends the caller's [`IdempotencyKey`] as the `Idempotency-Key` header and is
//! tried exactly once: retrying is the caller's decision, with the same key. Intent
//! responses expand `latest_charge`, which carries the card's brand, last four and
//! fingerprint and the amount refunded.
//!
//! **Statuses.** `requires_payment_method` and `requires_confirmation` (a method is
//! attached but not confirmed; the port confirms and attaches in one call, so both mean
//! "confirm next") are [`IntentStatus::RequiresPaymentMethod`]; `requires_action` keeps
//! its next action (`redirect_to_url` -> [`NextAction::RedirectToUrl`], anything else,
//! such as `use_stripe_sdk`, -> [`NextAction::UseSdk`] with the client secret);
//! `requires_capture` is authorised, `succeeded` captured, `canceled` voided,
//! `processing` processing. A status Stripe adds later reads as processing: nothing is
//! assumed held or collected, and the caller reconciles.
//!
//! **Outcomes of confirm.** `requires_capture` (and `succeeded`, which manual capture
//! does not produce) is [`Confirmation::Authorised`]; `requires_action` is
//! [`Confirmation::RequiresAction`]; a card error (HTTP 402, or a 200 that left the
//! intent waiting with a `last_payment_error`) is [`Confirmation::Declined`] with the
//! most specific code the port knows: `decline_code` first (`insufficient_funds`), else
//! the error `code` (`card_declined`, `expired_card`, `incorrect_cvc`,
//! `processing_error`). `processing` or `canceled` after a confirm is
//! [`ProviderError::UnexpectedState`]: reconcile with [`PaymentProvider::retrieve`].
//!
//! **Errors.** No response, a timeout, an unreadable answer, HTTP 429, 5xx, a 409
//! `idempotency_key_in_use` (the first request is still running) and a refused API key
//! (401/403: configuration, not the request) are [`ProviderError::Unavailable`]: retry
//! with the same key. `idempotency_error` is [`ProviderError::IdempotencyKeyReused`];
//! 404 is [`ProviderError::NotFound`]; `payment_intent_unexpected_state` is
//! [`ProviderError::UnexpectedState`]; amount codes are [`ProviderError::InvalidAmount`];
//! payment-method errors [`ProviderError::InvalidPaymentMethod`]; any other 4xx
//! [`ProviderError::InvalidRequest`]. Stripe's code, type, parameter and request-log URL
//! are logged; its message is not returned to callers.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use ::stripe::{Client, ClientBuilder, RequestStrategy, StripeError, StripeRequest as _};
use anyhow::anyhow;
use async_trait::async_trait;
use emporium_domain::payment::{CardBrand, DeclineCode, Last4, NextAction};
use emporium_domain::{Currency, Money};
use stripe_core::payment_intent::{
    CancelPaymentIntent, CapturePaymentIntent, ConfirmPaymentIntent, CreatePaymentIntent,
    RetrievePaymentIntent,
};
use stripe_core::refund::CreateRefund;
use stripe_shared::{
    ApiErrors, ApiErrorsType, PaymentIntentAllowedPaymentMethodTypes, PaymentIntentCaptureMethod,
    PaymentIntentStatus,
};
use stripe_types::Expandable;
use uuid::Uuid;

use super::card::CardSummary;
use super::{
    Confirmation, CreateIntent, IdempotencyKey, IntentId, IntentStatus, PaymentIntent,
    PaymentMethod, PaymentProvider, ProviderError, Refund, RefundId, RefundStatus,
};

/// Stripe's API, where production talks to.
pub const STRIPE_API_BASE: &str = "https://api.stripe.com/";

/// The metadata key under which an intent names its order.
const ORDER_ID: &str = "order_id";

/// How to reach Stripe.
#[derive(Clone)]
pub struct StripeConfig {
    secret_key: String,
    api_base: String,
    timeout: Duration,
}

impl StripeConfig {
    /// Stripe's API with a secret key (`sk_test_...`, `sk_live_...` or a restricted
    /// `rk_...`), and a 30 s timeout per request.
    #[must_use]
    pub fn new(secret_key: impl Into<String>) -> Self {
        Self {
            secret_key: secret_key.into(),
            api_base: STRIPE_API_BASE.to_owned(),
            timeout: Duration::from_secs(30),
        }
    }

    /// Another API base URL (a local server in tests, a proxy); requests go to
    /// `<base>/v1/...`.
    #[must_use]
    pub fn with_api_base(mut self, api_base: impl Into<String>) -> Self {
        let mut base = api_base.into();
        if !base.ends_with('/') {
            base.push('/');
        }
        self.api_base = base;
        self
    }

    /// Another timeout per request; a request that takes longer is
    /// [`ProviderError::Unavailable`].
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The API base URL.
    #[must_use]
    pub fn api_base(&self) -> &str {
        &self.api_base
    }
}

impl fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeConfig")
            .field("secret_key", &"[redacted]")
            .field("api_base", &self.api_base)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The Stripe client could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
#[error("invalid stripe configuration")]
pub struct StripeConfigError(#[source] StripeError);

/// The Stripe payment provider. See the module documentation for the mapping.
#[derive(Debug, Clone)]
pub struct StripeProvider {
    client: Client,
}

impl StripeProvider {
    /// A provider talking to Stripe as configured. No request is made.
    ///
    /// # Errors
    /// [`StripeConfigError`] when the key is not a valid header value or the base
    /// URL is not a URL.
    pub fn new(config: StripeConfig) -> Result<Self, StripeConfigError> {
        let client = ClientBuilder::new(config.secret_key)
            .url(config.api_base)
            .timeout(config.timeout)
            .request_strategy(RequestStrategy::Once)
            .app_info("emporium", Some(env!("CARGO_PKG_VERSION").to_owned()), None)
            .build()
            .map_err(StripeConfigError)?;
        Ok(Self { client })
    }
}

/// One attempt, under the caller's key: Stripe stores the first response per key and
/// replays it, so a retry by the caller cannot act twice.
fn idempotent(key: &IdempotencyKey) -> Result<RequestStrategy, ProviderError> {
    ::stripe::IdempotencyKey::new(key.as_str())
        .map(RequestStrategy::Idempotent)
        .map_err(|_| ProviderError::InvalidRequest("idempotency key refused by the client"))
}

/// Intent ids are interpolated into the request path, so only Stripe's id alphabet
/// is let through.
fn checked_id(intent: &IntentId) -> Result<&str, ProviderError> {
    let id = intent.0.as_str();
    let valid =
        (1..=255).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if valid {
        Ok(id)
    } else {
        Err(ProviderError::InvalidRequest("malformed payment intent id"))
    }
}

fn positive(amount: Money) -> Result<i64, ProviderError> {
    if amount.amount_minor() > 0 {
        Ok(amount.amount_minor())
    } else {
        Err(ProviderError::InvalidAmount("amount must be positive"))
    }
}

fn stripe_currency(currency: Currency) -> stripe_types::Currency {
    // Infallible: an unknown code becomes `Currency::Unknown`, sent as written.
    currency
        .code()
        .to_ascii_lowercase()
        .parse()
        .unwrap_or_else(|never| match never {})
}

fn our_currency(currency: &stripe_types::Currency) -> Result<Currency, ProviderError> {
    Currency::parse(&currency.to_string())
        .map_err(|_| ProviderError::InvalidRequest("stripe answered in an unsupported currency"))
}

/// The expansion every intent response carries: the charge, for the card and refunds.
fn expand() -> Vec<String> {
    vec!["latest_charge".to_owned()]
}

fn status(status: &PaymentIntentStatus) -> IntentStatus {
    match status {
        PaymentIntentStatus::RequiresPaymentMethod | PaymentIntentStatus::RequiresConfirmation => {
            IntentStatus::RequiresPaymentMethod
        }
        PaymentIntentStatus::RequiresAction => IntentStatus::RequiresAction,
        PaymentIntentStatus::RequiresCapture => IntentStatus::RequiresCapture,
        PaymentIntentStatus::Succeeded => IntentStatus::Succeeded,
        PaymentIntentStatus::Canceled => IntentStatus::Canceled,
        PaymentIntentStatus::Processing => IntentStatus::Processing,
        // `Unknown` and whatever a later release adds (the enum is non-exhaustive).
        other => {
            tracing::warn!(
                status = other.as_str(),
                "unknown stripe payment intent status; read as processing"
            );
            IntentStatus::Processing
        }
    }
}

/// The most specific reason the port knows: the issuer's `decline_code` when it is
/// one, else Stripe's error `code`.
fn decline_code(error: &ApiErrors) -> DeclineCode {
    let specific = error
        .decline_code
        .as_deref()
        .map(DeclineCode::from_provider_code);
    let general = error
        .code
        .as_ref()
        .map(|code| DeclineCode::from_provider_code(code.as_str()));
    match (specific, general) {
        (Some(code), _) if code != DeclineCode::Other => code,
        (_, Some(code)) => code,
        (Some(code), None) => code,
        (None, None) => DeclineCode::Other,
    }
}

fn brand(brand: &str) -> CardBrand {
    match brand {
        "visa" => CardBrand::Visa,
        "mastercard" => CardBrand::Mastercard,
        "amex" | "american_express" => CardBrand::Amex,
        "discover" => CardBrand::Discover,
        "diners" | "diners_club" => CardBrand::Diners,
        "jcb" => CardBrand::Jcb,
        "unionpay" => CardBrand::Unionpay,
        _ => CardBrand::Unknown,
    }
}

fn card(charge: &stripe_shared::Charge) -> Option<CardSummary> {
    let card = charge.payment_method_details.as_ref()?.card.as_ref()?;
    let last4 = Last4::parse(card.last4.as_deref()?).ok()?;
    Some(CardSummary {
        brand: card.brand.as_deref().map_or(CardBrand::Unknown, brand),
        last4,
        fingerprint: card.fingerprint.clone().unwrap_or_default(),
    })
}

/// Stripe's intent in the port's terms.
fn intent(pi: &stripe_shared::PaymentIntent) -> Result<PaymentIntent, ProviderError> {
    let currency = our_currency(&pi.currency)?;
    let money = |minor: i64| Money::new(minor, currency);
    let order_id = pi
        .metadata
        .get(ORDER_ID)
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or(ProviderError::InvalidRequest(
            "the payment intent names no order in its metadata",
        ))?;
    let status = status(&pi.status);
    let client_secret = pi.client_secret.clone().unwrap_or_default();
    let next_action = (status == IntentStatus::RequiresAction).then(|| {
        let redirect = pi
            .next_action
            .as_ref()
            .and_then(|action| action.redirect_to_url.as_ref())
            .and_then(|redirect| redirect.url.clone());
        match redirect {
            Some(url) => NextAction::RedirectToUrl { url },
            None => NextAction::UseSdk {
                client_secret: client_secret.clone(),
            },
        }
    });
    let charge = pi.latest_charge.as_ref().and_then(Expandable::as_object);
    Ok(PaymentIntent {
        id: IntentId(pi.id.as_str().to_owned()),
        order_id,
        amount: money(pi.amount),
        amount_capturable: money(pi.amount_capturable),
        amount_received: money(pi.amount_received),
        amount_refunded: money(charge.map_or(0, |c| c.amount_refunded)),
        status,
        next_action,
        last_decline: pi.last_payment_error.as_deref().map(decline_code),
        card: charge.and_then(card),
        client_secret,
    })
}

fn confirmation(intent: PaymentIntent) -> Result<Confirmation, ProviderError> {
    match (
        intent.status,
        intent.next_action.clone(),
        intent.last_decline,
    ) {
        (IntentStatus::RequiresCapture | IntentStatus::Succeeded, ..) => {
            Ok(Confirmation::Authorised(intent))
        }
        (IntentStatus::RequiresAction, Some(next_action), _) => Ok(Confirmation::RequiresAction {
            next_action,
            intent,
        }),
        (IntentStatus::RequiresPaymentMethod, _, Some(code)) => {
            Ok(Confirmation::Declined { code, intent })
        }
        (status, ..) => Err(ProviderError::UnexpectedState {
            intent: intent.id,
            status,
            operation: "confirm",
        }),
    }
}

fn refund_status(status: Option<&str>) -> RefundStatus {
    match status {
        Some("succeeded") => RefundStatus::Succeeded,
        Some("failed" | "canceled") => RefundStatus::Failed,
        // `pending`, `requires_action`, or a status Stripe adds later: reconcile.
        _ => RefundStatus::Pending,
    }
}

/// What a failed call was about, for the error mapping.
#[derive(Clone, Copy)]
struct Call<'a> {
    operation: &'static str,
    intent: Option<&'a IntentId>,
    key: Option<&'a IdempotencyKey>,
}

fn unavailable(error: StripeError) -> ProviderError {
    ProviderError::Unavailable(anyhow::Error::new(error).context("calling stripe"))
}

/// Maps a failed call. Declines on confirm never get here (see `confirm`).
fn provider_error(error: StripeError, call: Call<'_>) -> ProviderError {
    let (api, http_status) = match error {
        StripeError::Stripe(api, http_status) => (api, http_status),
        StripeError::ConfigError(_) => {
            return ProviderError::InvalidRequest("the stripe client configuration is invalid");
        }
        // No response, a timeout, or an answer that is not Stripe's.
        other @ (StripeError::ClientError(_)
        | StripeError::Timeout
        | StripeError::JSONDeserialize(_)) => return unavailable(other),
    };
    let code = api.code.as_ref().map(|c| c.as_str().to_owned());
    let code = code.as_deref().unwrap_or_default();
    let param = api.param.as_deref().unwrap_or_default();
    tracing::warn!(
        operation = call.operation,
        http_status,
        error_type = api.type_.as_str(),
        error_code = code,
        param,
        request_log_url = api.request_log_url.as_deref().unwrap_or_default(),
        "stripe refused a request"
    );
    let retry_later = |reason: &str| {
        ProviderError::Unavailable(anyhow!(
            "stripe answered {http_status} ({reason}) to {}",
            call.operation
        ))
    };
    match (http_status, &api.type_, code) {
        (429 | 500.., ..) => retry_later("stripe failed or is rate limiting"),
        (_, _, "idempotency_key_in_use") => {
            retry_later("a request with this idempotency key is in flight")
        }
        (401 | 403, ..) => retry_later("stripe refused the api key"),
        (_, ApiErrorsType::IdempotencyError, _) => match call.key {
            Some(key) => ProviderError::IdempotencyKeyReused(key.clone()),
            None => ProviderError::InvalidRequest("idempotency error without a key"),
        },
        (404, ..) => match call.intent {
            Some(intent) if param != "payment_method" => ProviderError::NotFound(intent.clone()),
            _ => ProviderError::InvalidPaymentMethod("no such payment method at stripe"),
        },
        (_, _, "payment_intent_unexpected_state") => {
            match (api.payment_intent.as_ref(), call.intent) {
                (Some(pi), Some(intent)) => ProviderError::UnexpectedState {
                    intent: intent.clone(),
                    status: status(&pi.status),
                    operation: call.operation,
                },
                _ => {
                    ProviderError::InvalidRequest("the payment intent's state does not allow this")
                }
            }
        }
        (_, _, "charge_already_refunded") => ProviderError::InvalidAmount("already fully refunded"),
        (_, _, "amount_too_large") => {
            ProviderError::InvalidAmount("amount exceeds what is available")
        }
        (_, _, "amount_too_small") => {
            ProviderError::InvalidAmount("amount is below stripe's minimum")
        }
        (_, _, "resource_missing") if param == "payment_method" => {
            ProviderError::InvalidPaymentMethod("no such payment method at stripe")
        }
        (_, ApiErrorsType::CardError, _) => {
            ProviderError::InvalidPaymentMethod("the card was refused")
        }
        _ if param.starts_with("amount") => {
            ProviderError::InvalidAmount("amount refused by stripe")
        }
        _ if param.starts_with("payment_method") || code.starts_with("payment_method") => {
            ProviderError::InvalidPaymentMethod("payment method refused by stripe")
        }
        _ => ProviderError::InvalidRequest("request refused by stripe"),
    }
}

impl StripeProvider {
    /// The intent's currency, to check an explicit amount against before acting.
    async fn currency_of(&self, intent: &IntentId) -> Result<Currency, ProviderError> {
        Ok(self.retrieve(intent).await?.amount.currency())
    }

    /// A partial amount: positive and in the intent's currency.
    async fn partial_amount(
        &self,
        intent: &IntentId,
        amount: Option<Money>,
    ) -> Result<Option<i64>, ProviderError> {
        let Some(amount) = amount else {
            return Ok(None);
        };
        let minor = positive(amount)?;
        if self.currency_of(intent).await? != amount.currency() {
            return Err(ProviderError::InvalidAmount(
                "currency differs from the intent's",
            ));
        }
        Ok(Some(minor))
    }
}

#[async_trait]
impl PaymentProvider for StripeProvider {
    fn name(&self) -> &'static str {
        "stripe"
    }

    #[tracing::instrument(skip_all, fields(order_id = %request.order_id, key = %key))]
    async fn create_intent(
        &self,
        request: CreateIntent,
        key: &IdempotencyKey,
    ) -> Result<PaymentIntent, ProviderError> {
        let amount = positive(request.amount)?;
        let metadata = HashMap::from([(ORDER_ID.to_owned(), request.order_id.to_string())]);
        let pi = CreatePaymentIntent::new(amount, stripe_currency(request.amount.currency()))
            .capture_method(PaymentIntentCaptureMethod::Manual)
            .allowed_payment_method_types(vec![PaymentIntentAllowedPaymentMethodTypes::Card])
            .metadata(metadata)
            .expand(expand())
            .customize()
            .request_strategy(idempotent(key)?)
            .send(&self.client)
            .await
            .map_err(|e| {
                provider_error(
                    e,
                    Call {
                        operation: "create",
                        intent: None,
                        key: Some(key),
                    },
                )
            })?;
        intent(&pi)
    }

    #[tracing::instrument(skip_all, fields(intent = %id, key = %key))]
    async fn confirm(
        &self,
        id: &IntentId,
        method: PaymentMethod,
        key: &IdempotencyKey,
    ) -> Result<Confirmation, ProviderError> {
        let PaymentMethod::Provider(method) = method else {
            return Err(ProviderError::InvalidPaymentMethod(
                "stripe takes payment method ids from the client's sdk, never card numbers",
            ));
        };
        let method = method.trim();
        if method.is_empty() {
            return Err(ProviderError::InvalidPaymentMethod(
                "payment method id is blank",
            ));
        }
        let sent = ConfirmPaymentIntent::new(checked_id(id)?)
            .payment_method(method)
            .expand(expand())
            .customize()
            .request_strategy(idempotent(key)?)
            .send(&self.client)
            .await;
        match sent {
            Ok(pi) => confirmation(intent(&pi)?),
            // A decline: HTTP 402, the intent back to `requires_payment_method`.
            Err(StripeError::Stripe(api, _)) if api.type_ == ApiErrorsType::CardError => {
                let code = decline_code(&api);
                let intent = match api.payment_intent.as_ref() {
                    Some(pi) => intent(pi)?,
                    None => self.retrieve(id).await?,
                };
                Ok(Confirmation::Declined { code, intent })
            }
            Err(e) => Err(provider_error(
                e,
                Call {
                    operation: "confirm",
                    intent: Some(id),
                    key: Some(key),
                },
            )),
        }
    }

    #[tracing::instrument(skip_all, fields(intent = %id, key = %key))]
    async fn capture(
        &self,
        id: &IntentId,
        amount: Option<Money>,
        key: &IdempotencyKey,
    ) -> Result<PaymentIntent, ProviderError> {
        let mut request = CapturePaymentIntent::new(checked_id(id)?).expand(expand());
        if let Some(minor) = self.partial_amount(id, amount).await? {
            request = request.amount_to_capture(minor);
        }
        let pi = request
            .customize()
            .request_strategy(idempotent(key)?)
            .send(&self.client)
            .await
            .map_err(|e| {
                provider_error(
                    e,
                    Call {
                        operation: "capture",
                        intent: Some(id),
                        key: Some(key),
                    },
                )
            })?;
        intent(&pi)
    }

    #[tracing::instrument(skip_all, fields(intent = %id, key = %key))]
    async fn cancel(
        &self,
        id: &IntentId,
        key: &IdempotencyKey,
    ) -> Result<PaymentIntent, ProviderError> {
        let pi = CancelPaymentIntent::new(checked_id(id)?)
            .expand(expand())
            .customize()
            .request_strategy(idempotent(key)?)
            .send(&self.client)
            .await
            .map_err(|e| {
                provider_error(
                    e,
                    Call {
                        operation: "cancel",
                        intent: Some(id),
                        key: Some(key),
                    },
                )
            })?;
        intent(&pi)
    }

    #[tracing::instrument(skip_all, fields(intent = %id, key = %key))]
    async fn refund(
        &self,
        id: &IntentId,
        amount: Option<Money>,
        key: &IdempotencyKey,
    ) -> Result<Refund, ProviderError> {
        let mut request = CreateRefund::new().payment_intent(checked_id(id)?);
        if let Some(minor) = self.partial_amount(id, amount).await? {
            request = request.amount(minor);
        }
        let refund = request
            .customize()
            .request_strategy(idempotent(key)?)
            .send(&self.client)
            .await
            .map_err(|e| {
                provider_error(
                    e,
                    Call {
                        operation: "refund",
                        intent: Some(id),
                        key: Some(key),
                    },
                )
            })?;
        Ok(Refund {
            id: RefundId(refund.id.as_str().to_owned()),
            intent: id.clone(),
            amount: Money::new(refund.amount, our_currency(&refund.currency)?),
            status: refund_status(refund.status.as_deref()),
        })
    }

    #[tracing::instrument(skip_all, fields(intent = %id))]
    async fn retrieve(&self, id: &IntentId) -> Result<PaymentIntent, ProviderError> {
        let pi = RetrievePaymentIntent::new(checked_id(id)?)
            .expand(expand())
            .customize()
            .send(&self.client)
            .await
            .map_err(|e| {
                provider_error(
                    e,
                    Call {
                        operation: "retrieve",
                        intent: Some(id),
                        key: None,
                    },
                )
            })?;
        intent(&pi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stripe_status_has_a_port_status() {
        let cases = [
            (
                PaymentIntentStatus::RequiresPaymentMethod,
                IntentStatus::RequiresPaymentMethod,
            ),
            (
                PaymentIntentStatus::RequiresConfirmation,
                IntentStatus::RequiresPaymentMethod,
            ),
            (
                PaymentIntentStatus::RequiresAction,
                IntentStatus::RequiresAction,
            ),
            (PaymentIntentStatus::Processing, IntentStatus::Processing),
            (
                PaymentIntentStatus::RequiresCapture,
                IntentStatus::RequiresCapture,
            ),
            (PaymentIntentStatus::Succeeded, IntentStatus::Succeeded),
            (PaymentIntentStatus::Canceled, IntentStatus::Canceled),
            (
                PaymentIntentStatus::Unknown("new".into()),
                IntentStatus::Processing,
            ),
        ];
        for (stripe, ours) in cases {
            assert_eq!(status(&stripe), ours, "{stripe:?}");
        }
    }

    #[test]
    fn currencies_go_to_stripe_in_lower_case() {
        assert_eq!(stripe_currency(Currency::EUR).to_string(), "eur");
        assert_eq!(stripe_currency(Currency::JPY).to_string(), "jpy");
        assert_eq!(
            our_currency(&stripe_currency(Currency::GBP)).unwrap(),
            Currency::GBP
        );
    }

    #[test]
    fn intent_ids_cannot_reshape_the_request_path() {
        assert!(checked_id(&IntentId("pi_3Nx9AbC".into())).is_ok());
        for bad in ["", "pi_1/../../refunds", "pi_1?expand[]=x", "pi 1", "pi_1#"] {
            assert!(checked_id(&IntentId(bad.into())).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_secret_key_stays_out_of_debug_output() {
        let config = StripeConfig::new("sk_test_secret").with_api_base("http://127.0.0.1:9");
        let shown = format!("{config:?}");
        assert!(!shown.contains("sk_test_secret"), "{shown}");
        assert_eq!(config.api_base(), "http://127.0.0.1:9/");
        let provider = format!("{:?}", StripeProvider::new(config).unwrap());
        assert!(!provider.contains("sk_test_secret"), "{provider}");
    }
}
