//! The checkout as the storefront offers it: the viewer's open cart handed to the
//! process manager (`emporium_commands::checkout::Checkouts`), its outcome turned
//! into an answer or a coded error, and the order read back from `orders` once the
//! projection has applied what the checkout committed (read-your-writes).
//!
//! Also the adapters the process manager needs from this crate: the catalogue read
//! model as its [`Catalog`] port, the payment provider (one function,
//! [`payment_provider`], so provider selection slots in), and the fraud rules from
//! the settings.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use emporium_commands::checkout::{
    Catalog, CatalogItem, CheckoutConfig, CheckoutError, CheckoutFailure, CheckoutRequest,
    CheckoutView, Checkouts, ids,
};
use emporium_commands::payments::{PaymentMethod, PaymentProvider};
use emporium_commands::sql::{Backend, Db};
use emporium_commands::{AnyStore, Dispatcher, args};
use emporium_domain::cart::{Cart, CartStatus};
use emporium_domain::coupon::CouponCode;
use emporium_domain::fraud::{FraudReason, FraudRules, FraudScorer};
use emporium_domain::metadata::Actor;
use emporium_domain::order::{CancellationReason, OrderStatus};
use emporium_domain::payment::{DeclineCode, NextAction};
use emporium_domain::pricing::{Quote, ShippingMethod, ShippingMethodCode};
use emporium_domain::{Address, CountryCode, Currency, Money, Sku};
use sqlx::types::Json;
use uuid::Uuid;

use super::orders::{COLUMNS, OrderRow};
use super::{Shop, cart::cart_id};
use crate::config::Settings;
use crate::error::ApiError;

/// The projection whose checkpoint a checkout answer waits for.
const PROJECTION: &str = "orders";

/// A second submission within this long of the first, with no new cart, is the same
/// checkout (on the application clock).
const DUPLICATE_WINDOW: chrono::Duration = chrono::Duration::seconds(60);

/// The catalogue read model as the checkout's price list.
#[derive(Debug, Clone)]
pub(crate) struct ReadModelCatalog {
    read: Db,
}

#[derive(Debug, serde::Deserialize)]
struct VariantJson {
    sku: String,
    price_minor: i64,
}

type CatalogDbRow = (
    String,
    Uuid,
    String,
    String,
    String,
    i64,
    Json<Vec<VariantJson>>,
);

#[async_trait]
impl Catalog for ReadModelCatalog {
    async fn items(&self, skus: &[Sku]) -> anyhow::Result<HashMap<Sku, CatalogItem>> {
        let wanted: Vec<String> = skus.iter().map(|s| s.as_str().to_owned()).collect();
        let sql = match self.read.backend() {
            Backend::Postgres => {
                "SELECT s.sku, p.product_id, p.name, p.sku, p.currency, p.price_minor, p.variants
                 FROM catalog_stock s JOIN catalog_products p ON p.product_id = s.product_id
                 WHERE s.sku = ANY($1) AND p.published"
            }
            Backend::Sqlite => {
                "SELECT s.sku, p.product_id, p.name, p.sku, p.currency, p.price_minor, p.variants
                 FROM catalog_stock s JOIN catalog_products p ON p.product_id = s.product_id
                 WHERE s.sku IN (SELECT value FROM json_each($1)) AND p.published"
            }
        };
        let rows: Vec<CatalogDbRow> = self.read.fetch_all(sql, args![wanted]).await?;
        let mut items = HashMap::with_capacity(rows.len());
        for (sku, product_id, name, product_sku, currency, price_minor, variants) in rows {
            let currency = Currency::parse(&currency)?;
            let price = if sku == product_sku {
                Some(price_minor)
            } else {
                variants
                    .0
                    .iter()
                    .find(|v| v.sku == sku)
                    .map(|v| v.price_minor)
            };
            if let (Some(price), Ok(sku)) = (price, Sku::parse(&sku)) {
                items.insert(
                    sku,
                    CatalogItem {
                        product_id,
                        name,
                        unit_price: Money::new(price, currency),
                        // Products have no weight yet: weight tiers see 0 g.
                        weight_grams: 0,
                    },
                );
            }
        }
        Ok(items)
    }
}

/// The process manager over `store`, pricing from the catalogue read model in `read`,
/// configured by `settings`.
///
/// # Errors
/// When the pricing configuration or the shop currency is invalid.
pub fn checkouts(
    store: AnyStore,
    read: Db,
    settings: &Settings,
    provider: Arc<dyn PaymentProvider>,
) -> anyhow::Result<Arc<Checkouts>> {
    let c = &settings.checkout;
    let pricing = c.pricing()?;
    let currency = pricing.currency();
    let mut rules = FraudRules::with_defaults(Money::new(c.fraud.high_value_minor, currency));
    rules.review_threshold = c.fraud.review_threshold;
    let scorer: Arc<dyn FraudScorer> = Arc::new(rules);
    let millis = |ms: u64| chrono::Duration::milliseconds(i64::try_from(ms).unwrap_or(i64::MAX));
    let config = CheckoutConfig {
        pricing,
        reservation_ttl: millis(c.reservation_ttl_seconds.saturating_mul(1000)),
        resume_after: millis(c.resume_after_ms),
        recheck_after: millis(c.recheck_after_seconds.saturating_mul(1000)),
        crash_after: c.crash_after.clone(),
    };
    Ok(Arc::new(Checkouts::new(
        store,
        provider,
        Arc::new(ReadModelCatalog { read }),
        scorer,
        config,
    )))
}

/// A checkout as the client submits it, parsed.
#[derive(Debug, Clone)]
pub(crate) struct CheckoutInput {
    pub(crate) shipping_address: Address,
    pub(crate) billing_address: Option<Address>,
    pub(crate) shipping_method: ShippingMethodCode,
    pub(crate) coupon: Option<CouponCode>,
    pub(crate) payment_method: PaymentMethod,
    pub(crate) idempotency_key: Option<String>,
}

/// What a checkout answers: the order (once placed) and what the client must do.
#[derive(Debug, Clone)]
pub(crate) struct CheckoutAnswer {
    pub(crate) order_id: Uuid,
    pub(crate) order: Option<OrderRow>,
    pub(crate) status: Option<OrderStatus>,
    pub(crate) next_action: Option<NextAction>,
}

/// A held order for the staff review queue.
#[derive(Debug, Clone)]
pub(crate) struct HeldOrder {
    pub(crate) order: OrderRow,
    pub(crate) customer_id: Uuid,
    pub(crate) risk_score: Option<i32>,
    pub(crate) reasons: Vec<FraudReason>,
}

/// One of the known `BAD_USER_INPUT` names, as a static string.
fn known(s: &str, names: &[&'static str], fallback: &'static str) -> &'static str {
    names.iter().find(|n| **n == s).copied().unwrap_or(fallback)
}

fn failure_error(failure: CheckoutFailure, order_id: Option<Uuid>) -> ApiError {
    let mut details = Vec::new();
    if let Some(id) = order_id {
        details.push(("orderId", id.to_string()));
    }
    match failure {
        CheckoutFailure::OutOfStock { sku } => {
            details.push(("sku", sku.clone()));
            ApiError::Refused {
                code: "OUT_OF_STOCK",
                message: format!("{sku} is out of stock"),
                details,
            }
        }
        CheckoutFailure::CouponRefused { code, message } => ApiError::Refused {
            code: known(
                &code,
                &[
                    "COUPON_NOT_FOUND",
                    "COUPON_INACTIVE",
                    "COUPON_NOT_YET_VALID",
                    "COUPON_EXPIRED",
                    "COUPON_MINIMUM_NOT_MET",
                    "COUPON_USAGE_LIMIT_REACHED",
                    "COUPON_CUSTOMER_LIMIT_REACHED",
                    "COUPON_CURRENCY_MISMATCH",
                ],
                "COUPON_INVALID",
            ),
            message,
            details,
        },
        CheckoutFailure::Invalid {
            field,
            rule,
            message,
        } => ApiError::BadUserInput {
            field: known(&field, &["cart", "shippingMethod"], "input"),
            rule: known(
                &rule,
                &[
                    "cart_empty",
                    "product_unavailable",
                    "cart_refused",
                    "cart_closed",
                    "shipping_unavailable",
                ],
                "invalid",
            ),
            message,
        },
    }
}

fn checkout_error(e: CheckoutError) -> ApiError {
    match e {
        CheckoutError::Refused(failure) => failure_error(failure, None),
        CheckoutError::NotFound => ApiError::NotFound { what: "order" },
        CheckoutError::NotAllowed { status, command } => ApiError::Refused {
            code: "INVALID_ORDER_STATUS",
            message: format!("{command} is not allowed when the order is {status}"),
            details: vec![("status", status.as_str().to_owned())],
        },
        CheckoutError::RefundRefused(message) => {
            ApiError::bad_input("amountMinor", "refund_not_allowed", message)
        }
        CheckoutError::Unexpected(e) => ApiError::Internal(e),
    }
}

fn decline_code(code: DeclineCode) -> &'static str {
    match code {
        DeclineCode::CardDeclined => "card_declined",
        DeclineCode::InsufficientFunds => "insufficient_funds",
        DeclineCode::ExpiredCard => "expired_card",
        DeclineCode::IncorrectCvc => "incorrect_cvc",
        DeclineCode::ProcessingError => "processing_error",
        DeclineCode::Other => "other",
    }
}

impl Shop {
    fn checkouts(&self) -> Result<&Arc<Checkouts>, ApiError> {
        self.checkouts
            .as_ref()
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("checkout is not configured")))
    }

    /// The viewer's cart to check out: the open one with lines, else the last one
    /// checked out (so a duplicate submission finds its first one's checkout).
    async fn checkout_cart(&self, user_id: Uuid) -> Result<(Uuid, bool), ApiError> {
        let carts: &Dispatcher<Cart, AnyStore> = &self.carts;
        let mut last_checked_out = None;
        for generation in 0..10_000 {
            let id = cart_id(user_id, generation);
            let cart = carts
                .load(&id.to_string())
                .await
                .map_err(|e| ApiError::internal(anyhow::anyhow!("load cart: {e}")))?;
            match cart.status() {
                Some(CartStatus::Open) if !cart.lines().is_empty() => return Ok((id, true)),
                Some(CartStatus::CheckedOut) => last_checked_out = Some(id),
                Some(CartStatus::Merged) => {}
                _ => break,
            }
        }
        last_checked_out
            .map(|id| (id, false))
            .ok_or_else(|| ApiError::bad_input("cart", "cart_empty", "the cart is empty"))
    }

    /// Checks the viewer's cart out.
    ///
    /// # Errors
    /// `OUT_OF_STOCK`, `PAYMENT_DECLINED` (with `declineCode` and `orderId`),
    /// `COUPON_*`, `BAD_USER_INPUT`.
    pub(crate) async fn checkout(
        &self,
        user_id: Uuid,
        client_ip: Option<String>,
        input: CheckoutInput,
    ) -> Result<CheckoutAnswer, ApiError> {
        let checkouts = self.checkouts()?;
        let now = self.clock.now();
        let (cart_id, open) = self.checkout_cart(user_id).await?;
        let order_id = match &input.idempotency_key {
            Some(key) => ids::order_for_key(user_id, key),
            None => ids::order_for_cart(cart_id),
        };
        if !open {
            // Only a duplicate of a recent checkout may name a closed cart.
            let recent = checkouts
                .created_at(cart_id)
                .await
                .map_err(checkout_error)?
                .is_some_and(|at| now - at <= DUPLICATE_WINDOW);
            if !recent && input.idempotency_key.is_none() {
                return Err(ApiError::bad_input(
                    "cart",
                    "cart_empty",
                    "the cart is empty",
                ));
            }
        }
        let request = CheckoutRequest {
            order_id,
            cart_id,
            customer_id: user_id,
            email: None,
            client_ip,
            billing_address: input
                .billing_address
                .unwrap_or_else(|| input.shipping_address.clone()),
            shipping_address: input.shipping_address,
            shipping_method: input.shipping_method,
            coupon: input.coupon,
            payment_method: input.payment_method,
        };
        let view = checkouts
            .start(request, now)
            .await
            .map_err(checkout_error)?;
        self.answer(user_id, view).await
    }

    /// Continues a checkout after the customer's 3-D Secure (or any time): the
    /// process manager re-reads the intent and goes on.
    ///
    /// # Errors
    /// `NOT_FOUND` for a foreign or unknown order; as [`Shop::checkout`].
    pub(crate) async fn confirm_checkout_payment(
        &self,
        user_id: Uuid,
        order_id: Uuid,
    ) -> Result<CheckoutAnswer, ApiError> {
        let checkouts = self.checkouts()?;
        self.ensure_checkout_owner(user_id, order_id).await?;
        let view = checkouts
            .advance(order_id, self.clock.now())
            .await
            .map_err(checkout_error)?;
        self.answer(user_id, view).await
    }

    async fn ensure_checkout_owner(&self, user_id: Uuid, order_id: Uuid) -> Result<(), ApiError> {
        let owner = self
            .checkouts()?
            .owner(order_id)
            .await
            .map_err(checkout_error)?
            .ok_or(ApiError::NotFound { what: "order" })?;
        if owner == user_id {
            Ok(())
        } else {
            Err(ApiError::NotFound { what: "order" })
        }
    }

    /// Turns a run's outcome into the answer or its coded error.
    async fn answer(&self, user_id: Uuid, view: CheckoutView) -> Result<CheckoutAnswer, ApiError> {
        self.read_your_writes(PROJECTION, view.position).await?;
        if let Some(failure) = view.failure.clone() {
            let placed = view.status.is_some();
            return Err(failure_error(failure, placed.then_some(view.order_id)));
        }
        if view.status == Some(OrderStatus::PaymentFailed)
            || (view.status == Some(OrderStatus::AwaitingPayment) && view.decline.is_some())
        {
            let code = view.decline.unwrap_or(DeclineCode::Other);
            return Err(ApiError::Refused {
                code: "PAYMENT_DECLINED",
                message: format!("the payment was declined ({})", decline_code(code)),
                details: vec![
                    ("declineCode", decline_code(code).to_owned()),
                    ("orderId", view.order_id.to_string()),
                ],
            });
        }
        let order = match view.status {
            // A read model that lags past the wait answers without the order; the
            // id and status come from the aggregate.
            Some(_) => match self.my_order(user_id, view.order_id).await {
                Ok(order) => Some(order),
                Err(ApiError::NotFound { .. }) => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        Ok(CheckoutAnswer {
            order_id: view.order_id,
            order,
            status: view.status,
            next_action: view.next_action,
        })
    }

    /// The customer cancels their order: voided before capture, refunded after.
    ///
    /// # Errors
    /// `NOT_FOUND` for a foreign order; `INVALID_ORDER_STATUS` once shipped.
    pub(crate) async fn cancel_my_order(
        &self,
        user_id: Uuid,
        order_id: Uuid,
    ) -> Result<OrderRow, ApiError> {
        self.ensure_checkout_owner(user_id, order_id).await?;
        let view = self
            .checkouts()?
            .cancel(
                order_id,
                CancellationReason::CustomerRequest,
                Actor::User(user_id),
                self.clock.now(),
            )
            .await
            .map_err(checkout_error)?;
        self.read_your_writes(PROJECTION, view.position).await?;
        self.my_order(user_id, order_id).await
    }

    /// The staff review queue: held orders, oldest first, with the fraud reasons.
    ///
    /// # Errors
    /// When the read model or the store cannot be read.
    pub(crate) async fn held_orders(&self, first: i64) -> Result<Vec<HeldOrder>, ApiError> {
        let rows: Vec<(Uuid, Option<i32>)> = self
            .read
            .fetch_all(
                "SELECT order_id, risk_score FROM orders WHERE status = 'held_for_review'
                 ORDER BY placed_at, order_id LIMIT $1",
                args![first.clamp(1, 100)],
            )
            .await
            .map_err(|e| ApiError::internal(anyhow::Error::from(e).context("read held orders")))?;
        let mut held = Vec::with_capacity(rows.len());
        for (order_id, risk_score) in rows {
            let (order, customer_id) = self.any_order(order_id).await?;
            let reasons = self
                .checkouts()?
                .fraud_reasons(order_id)
                .await
                .map_err(checkout_error)?;
            held.push(HeldOrder {
                order,
                customer_id,
                risk_score,
                reasons,
            });
        }
        Ok(held)
    }

    /// Any order by id (staff).
    async fn any_order(&self, order_id: Uuid) -> Result<(OrderRow, Uuid), ApiError> {
        let read_error =
            |e: sqlx::Error| ApiError::internal(anyhow::Error::from(e).context("read order"));
        let order: OrderRow = self
            .read
            .fetch_optional(
                &format!("SELECT {COLUMNS} FROM orders WHERE order_id = $1"),
                args![order_id],
            )
            .await
            .map_err(read_error)?
            .ok_or(ApiError::NotFound { what: "order" })?;
        let (customer,): (Uuid,) = self
            .read
            .fetch_one(
                "SELECT customer_id FROM orders WHERE order_id = $1",
                args![order_id],
            )
            .await
            .map_err(read_error)?;
        Ok((order, customer))
    }

    /// Staff decide a held order (approve: on to payment; reject: cancelled).
    ///
    /// # Errors
    /// `NOT_FOUND`; `INVALID_ORDER_STATUS` unless held.
    pub(crate) async fn review_held_order(
        &self,
        staff_id: Uuid,
        order_id: Uuid,
        approve: bool,
    ) -> Result<OrderRow, ApiError> {
        let checkouts = self.checkouts()?;
        let now = self.clock.now();
        let actor = Actor::User(staff_id);
        let view = if approve {
            checkouts.approve(order_id, actor, now).await
        } else {
            checkouts.reject(order_id, actor, now).await
        }
        .map_err(checkout_error)?;
        self.read_your_writes(PROJECTION, view.position).await?;
        Ok(self.any_order(order_id).await?.0)
    }

    /// Staff refund part or all of a paid order.
    ///
    /// # Errors
    /// `NOT_FOUND`; `INVALID_ORDER_STATUS` unless paid; `BAD_USER_INPUT` for an
    /// amount above what is refundable.
    pub(crate) async fn refund_order(
        &self,
        staff_id: Uuid,
        order_id: Uuid,
        amount_minor: Option<i64>,
        reason: &str,
    ) -> Result<OrderRow, ApiError> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(ApiError::bad_input(
                "reason",
                "reason_length",
                "a reason of 1 to 500 characters is required",
            ));
        }
        if amount_minor.is_some_and(|a| a <= 0) {
            return Err(ApiError::bad_input(
                "amountMinor",
                "amount_positive",
                "a refund must be positive",
            ));
        }
        tracing::info!(%order_id, %staff_id, reason, "staff refund");
        let view = self
            .checkouts()?
            .refund(
                order_id,
                amount_minor,
                Uuid::new_v4(),
                Actor::User(staff_id),
                self.clock.now(),
            )
            .await
            .map_err(checkout_error)?;
        self.read_your_writes(PROJECTION, view.position).await?;
        Ok(self.any_order(order_id).await?.0)
    }

    /// The shipping methods that ship to `country`.
    ///
    /// # Errors
    /// When checkout is not configured.
    pub(crate) fn shipping_methods(
        &self,
        country: &CountryCode,
    ) -> Result<Vec<ShippingMethod>, ApiError> {
        Ok(self
            .checkouts()?
            .pricing()
            .methods_to(country)
            .cloned()
            .collect())
    }

    /// What the viewer's cart would cost, shipped to `address` by `method` with
    /// `coupon`; writes nothing.
    ///
    /// # Errors
    /// `COUPON_*`, `BAD_USER_INPUT` as a checkout would answer them.
    pub(crate) async fn checkout_quote(
        &self,
        user_id: Uuid,
        address: &Address,
        method: &ShippingMethodCode,
        coupon: Option<&CouponCode>,
    ) -> Result<Quote, ApiError> {
        let (cart_id, open) = self.checkout_cart(user_id).await?;
        if !open {
            return Err(ApiError::bad_input(
                "cart",
                "cart_empty",
                "the cart is empty",
            ));
        }
        self.checkouts()?
            .quote(user_id, cart_id, address, method, coupon, self.clock.now())
            .await
            .map_err(checkout_error)
    }
}
