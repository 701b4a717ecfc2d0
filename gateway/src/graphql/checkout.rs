//! Checkout: `checkout`, `confirmCheckoutPayment` (after 3-D Secure), `cancelOrder`,
//! `shippingMethods`, `checkoutQuote`; for staff the review queue (`heldOrders`,
//! `approveHeldOrder`, `rejectHeldOrder`) and `refundOrder`.
//!
//! No input carries a price, a total, a status or an owner: prices come from the
//! catalogue, totals from the pricing configuration, the owner from the token.
//! Refusals have stable codes: `OUT_OF_STOCK` (`sku`), `PAYMENT_DECLINED`
//! (`declineCode`, `orderId`), `COUPON_*`, `BAD_USER_INPUT` (`field`, `rule`),
//! `INVALID_ORDER_STATUS`, `NOT_FOUND`.

use async_graphql::{Context, ID, InputObject, Json, Object, OneofObject, SimpleObject};
use emporium_commands::payments::{CardNumber, PaymentMethod};
use emporium_domain::coupon::CouponCode;
use emporium_domain::payment::NextAction;
use emporium_domain::pricing::{Quote, ShippingMethod, ShippingMethodCode, ShippingRate};
use emporium_domain::{Address, AddressInput, CountryCode};
use uuid::Uuid;

use super::ContextExt;
use super::customer::Order;
use super::guard::RoleGuard;
use super::shop::Money;
use crate::error::ApiError;
use crate::shop::{CheckoutAnswer, CheckoutInput as ShopCheckoutInput, HeldOrder};

/// A postal address.
#[derive(Debug, Clone, InputObject)]
pub(crate) struct CheckoutAddressInput {
    /// Recipient.
    full_name: String,
    /// Street and number.
    line1: String,
    /// Apartment, suite, ...
    line2: Option<String>,
    /// City or town.
    city: String,
    /// State, province or region.
    region: Option<String>,
    /// Postal or ZIP code.
    postal_code: String,
    /// ISO 3166-1 alpha-2 country code.
    country: String,
    /// Contact phone.
    phone: Option<String>,
}

fn address(field: &'static str, a: CheckoutAddressInput) -> Result<Address, ApiError> {
    Address::parse(AddressInput {
        full_name: a.full_name,
        line1: a.line1,
        line2: a.line2,
        city: a.city,
        region: a.region,
        postal_code: a.postal_code,
        country: a.country,
        phone: a.phone,
    })
    .map_err(|e| ApiError::bad_input(field, "address", e))
}

/// How the customer pays: exactly one.
#[derive(Debug, Clone, OneofObject)]
pub(crate) enum PaymentMethodInput {
    /// A card number (the offline provider's stand-in; Stripe takes a method id).
    Card(String),
    /// A provider payment method id (`pm_...`) created by the client's SDK.
    ProviderMethodId(String),
}

/// A checkout of the viewer's cart.
#[derive(Debug, Clone, InputObject)]
pub(crate) struct CheckoutInput {
    /// Where to ship.
    shipping_address: CheckoutAddressInput,
    /// Where to bill; the shipping address when absent.
    billing_address: Option<CheckoutAddressInput>,
    /// A code from `shippingMethods`.
    shipping_method: String,
    /// A coupon code.
    coupon_code: Option<String>,
    /// How to pay.
    payment_method: PaymentMethodInput,
    /// The client's key for this checkout (1 to 100 characters): a retry with the
    /// same key is the same checkout. Without one, the cart is the key.
    idempotency_key: Option<String>,
}

/// What a quote is for.
#[derive(Debug, Clone, InputObject)]
pub(crate) struct CheckoutQuoteInput {
    /// Where to ship.
    shipping_address: CheckoutAddressInput,
    /// A code from `shippingMethods`.
    shipping_method: String,
    /// A coupon code.
    coupon_code: Option<String>,
}

fn method_code(raw: &str) -> Result<ShippingMethodCode, ApiError> {
    ShippingMethodCode::parse(raw)
        .map_err(|e| ApiError::bad_input("shippingMethod", "shipping_method", e))
}

fn coupon(raw: Option<&str>) -> Result<Option<CouponCode>, ApiError> {
    raw.map(|c| {
        CouponCode::parse(c).map_err(|e| ApiError::Refused {
            code: "COUPON_INVALID",
            message: e.to_string(),
            details: Vec::new(),
        })
    })
    .transpose()
}

impl CheckoutInput {
    fn parse(self) -> Result<ShopCheckoutInput, ApiError> {
        let payment_method = match self.payment_method {
            PaymentMethodInput::Card(number) => PaymentMethod::Card(
                CardNumber::parse(&number)
                    .map_err(|e| ApiError::bad_input("paymentMethod", "card_number", e))?,
            ),
            PaymentMethodInput::ProviderMethodId(id) => {
                let id = id.trim();
                if !(id.starts_with("pm_") && (4..=255).contains(&id.len())) {
                    return Err(ApiError::bad_input(
                        "paymentMethod",
                        "provider_method_id",
                        "a provider payment method id looks like pm_...",
                    ));
                }
                PaymentMethod::Provider(id.to_owned())
            }
        };
        let idempotency_key = match self.idempotency_key {
            Some(k) if !(1..=100).contains(&k.trim().chars().count()) => {
                return Err(ApiError::bad_input(
                    "idempotencyKey",
                    "idempotency_key_length",
                    "1 to 100 characters",
                ));
            }
            k => k.map(|k| k.trim().to_owned()),
        };
        Ok(ShopCheckoutInput {
            shipping_address: address("shippingAddress", self.shipping_address)?,
            billing_address: self
                .billing_address
                .map(|a| address("billingAddress", a))
                .transpose()?,
            shipping_method: method_code(&self.shipping_method)?,
            coupon: coupon(self.coupon_code.as_deref())?,
            payment_method,
            idempotency_key,
        })
    }
}

/// What the customer's client must do before the payment can go on (3-D Secure).
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct PaymentAction {
    /// `use_sdk` (confirm with the client secret) or `redirect_to_url`.
    kind: String,
    /// The intent's client secret, for `use_sdk`.
    client_secret: Option<String>,
    /// Where to send the customer, for `redirect_to_url`.
    redirect_url: Option<String>,
}

impl From<NextAction> for PaymentAction {
    fn from(a: NextAction) -> Self {
        match a {
            NextAction::UseSdk { client_secret } => Self {
                kind: "use_sdk".to_owned(),
                client_secret: Some(client_secret),
                redirect_url: None,
            },
            NextAction::RedirectToUrl { url } => Self {
                kind: "redirect_to_url".to_owned(),
                client_secret: None,
                redirect_url: Some(url),
            },
        }
    }
}

/// A checkout's outcome.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct CheckoutResult {
    /// The order id.
    order_id: ID,
    /// Where the order stands (`paid`, `awaiting_payment`, `held_for_review`, ...).
    status: String,
    /// Whether the customer must complete an action (3-D Secure), then call
    /// `confirmCheckoutPayment`.
    requires_action: bool,
    /// The action, when one is required.
    next_action: Option<PaymentAction>,
    /// The order.
    order: Option<Order>,
}

impl From<CheckoutAnswer> for CheckoutResult {
    fn from(a: CheckoutAnswer) -> Self {
        Self {
            order_id: ID(a.order_id.to_string()),
            status: a.status.map_or("pending", |s| s.as_str()).to_owned(),
            requires_action: a.next_action.is_some(),
            next_action: a.next_action.map(PaymentAction::from),
            order: a.order.map(Order::from),
        }
    }
}

/// A shipping method offered for a destination.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct ShippingOption {
    /// The code to check out with.
    code: String,
    /// Its name.
    name: String,
    /// The flat price, when the rate is flat.
    flat_price: Option<Money>,
    /// Whether the price depends on the parcel's weight.
    by_weight: bool,
    /// Free at or above this discounted subtotal.
    free_over: Option<Money>,
}

fn option_for(method: &ShippingMethod, country: &CountryCode) -> Option<ShippingOption> {
    let rate = method.rate_for(country)?;
    let money = |m: emporium_domain::Money| Money::new(m.amount_minor(), m.currency().code());
    Some(ShippingOption {
        code: method.code().as_str().to_owned(),
        name: method.name().to_owned(),
        flat_price: match &rate.rate {
            ShippingRate::Flat(m) => Some(money(*m)),
            ShippingRate::ByWeight(_) => None,
        },
        by_weight: matches!(rate.rate, ShippingRate::ByWeight(_)),
        free_over: rate.free_over.map(money),
    })
}

/// What a checkout would cost.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct CheckoutQuote {
    /// Sum of the lines at catalogue prices.
    subtotal: Money,
    /// The coupon's discount.
    discount: Money,
    /// Shipping.
    shipping: Money,
    /// Tax (contained in the prices when `taxIncluded`).
    tax: Money,
    /// Whether prices include tax.
    tax_included: bool,
    /// What the customer would pay.
    total: Money,
}

impl From<Quote> for CheckoutQuote {
    fn from(q: Quote) -> Self {
        let money = |m: emporium_domain::Money| Money::new(m.amount_minor(), m.currency().code());
        Self {
            subtotal: money(q.subtotal()),
            discount: money(q.discount()),
            shipping: money(q.shipping()),
            tax: money(q.tax()),
            tax_included: q.tax_added().is_zero() && !q.tax().is_zero(),
            total: money(q.total()),
        }
    }
}

/// A held order in the staff review queue.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct HeldOrderView {
    /// The order.
    order: Order,
    /// Its customer.
    customer_id: ID,
    /// The fraud score, 0 to 100.
    risk_score: Option<i32>,
    /// What made up the score (`[{signal: {rule, ...}, points}]`).
    reasons: Json<serde_json::Value>,
}

impl From<HeldOrder> for HeldOrderView {
    fn from(h: HeldOrder) -> Self {
        Self {
            order: Order::from(h.order),
            customer_id: ID(h.customer_id.to_string()),
            risk_score: h.risk_score,
            reasons: Json(serde_json::to_value(&h.reasons).unwrap_or_default()),
        }
    }
}

fn order_id(id: &ID) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id.as_str()).map_err(|_| ApiError::NotFound { what: "order" })
}

fn country(raw: &str) -> Result<CountryCode, ApiError> {
    CountryCode::parse(raw).map_err(|e| ApiError::bad_input("country", "country_code", e))
}

/// Checkout queries.
#[derive(Debug, Default)]
pub(crate) struct CheckoutQuery;

#[Object]
impl CheckoutQuery {
    /// The shipping methods that ship to a country (ISO 3166-1 alpha-2).
    async fn shipping_methods(
        &self,
        ctx: &Context<'_>,
        country: String,
    ) -> async_graphql::Result<Vec<ShippingOption>> {
        let country = self::country(&country)?;
        let methods = ctx.shop()?.shipping_methods(&country)?;
        Ok(methods
            .iter()
            .filter_map(|m| option_for(m, &country))
            .collect())
    }

    /// What checking out the viewer's cart would cost; writes nothing.
    async fn checkout_quote(
        &self,
        ctx: &Context<'_>,
        input: CheckoutQuoteInput,
    ) -> async_graphql::Result<CheckoutQuote> {
        let viewer = ctx.viewer()?;
        let address = address("shippingAddress", input.shipping_address)?;
        let method = method_code(&input.shipping_method)?;
        let coupon = coupon(input.coupon_code.as_deref())?;
        Ok(ctx
            .shop()?
            .checkout_quote(viewer.user_id, &address, &method, coupon.as_ref())
            .await?
            .into())
    }

    /// Staff: orders held by the fraud gate, oldest first, with their reasons.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn held_orders(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i64,
    ) -> async_graphql::Result<Vec<HeldOrderView>> {
        Ok(ctx
            .shop()?
            .held_orders(first)
            .await?
            .into_iter()
            .map(HeldOrderView::from)
            .collect())
    }
}

/// Checkout mutations.
#[derive(Debug, Default)]
pub(crate) struct CheckoutMutation;

#[Object]
impl CheckoutMutation {
    /// Checks the viewer's cart out: an order at catalogue prices with tax, shipping
    /// and the coupon, stock reserved, the fraud gate, and the payment authorised and
    /// captured. With 3-D Secure the answer has `requiresAction`; complete it, then
    /// call `confirmCheckoutPayment`.
    async fn checkout(
        &self,
        ctx: &Context<'_>,
        input: CheckoutInput,
    ) -> async_graphql::Result<CheckoutResult> {
        let viewer = ctx.viewer()?;
        let client_ip = ctx.request_context()?.client_ip.to_string();
        let input = input.parse()?;
        Ok(ctx
            .shop()?
            .checkout(viewer.user_id, Some(client_ip), input)
            .await?
            .into())
    }

    /// Continues the viewer's checkout after 3-D Secure: the provider's intent is read
    /// again and the payment goes on (or fails with `PAYMENT_DECLINED`).
    async fn confirm_checkout_payment(
        &self,
        ctx: &Context<'_>,
        order_id: ID,
    ) -> async_graphql::Result<CheckoutResult> {
        let viewer = ctx.viewer()?;
        let id = self::order_id(&order_id)?;
        Ok(ctx
            .shop()?
            .confirm_checkout_payment(viewer.user_id, id)
            .await?
            .into())
    }

    /// Cancels one of the viewer's orders before it ships: an uncaptured payment is
    /// voided, a captured one refunded; stock (and an unpaid order's coupon) released.
    async fn cancel_order(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Order> {
        let viewer = ctx.viewer()?;
        let id = order_id(&id)?;
        Ok(ctx
            .shop()?
            .cancel_my_order(viewer.user_id, id)
            .await?
            .into())
    }

    /// Staff: a held order goes on to payment.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn approve_held_order(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Order> {
        let viewer = ctx.viewer()?;
        let id = order_id(&id)?;
        Ok(ctx
            .shop()?
            .review_held_order(viewer.user_id, id, true)
            .await?
            .into())
    }

    /// Staff: a held order is cancelled and its stock released.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn reject_held_order(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Order> {
        let viewer = ctx.viewer()?;
        let id = order_id(&id)?;
        Ok(ctx
            .shop()?
            .review_held_order(viewer.user_id, id, false)
            .await?
            .into())
    }

    /// Staff: refunds part (`amountMinor`) or the rest of a paid order, through the
    /// payment provider.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn refund_order(
        &self,
        ctx: &Context<'_>,
        id: ID,
        amount_minor: Option<i64>,
        reason: String,
    ) -> async_graphql::Result<Order> {
        let viewer = ctx.viewer()?;
        let id = order_id(&id)?;
        Ok(ctx
            .shop()?
            .refund_order(viewer.user_id, id, amount_minor, &reason)
            .await?
            .into())
    }
}
