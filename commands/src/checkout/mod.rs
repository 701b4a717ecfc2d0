//! The checkout process manager: from a cart to a paid order, and every compensation.
//!
//! [`Checkouts::advance`] is the whole algorithm: *move order X as far as possible
//! from its current state*. It loads the aggregates, decides the next step from their
//! state alone, sends one idempotent command with a deterministic id ([`ids`]),
//! and repeats until the order waits on someone outside (the customer's 3-D Secure,
//! staff review, a shipment) or is finished. Because every decision is made from
//! stored state and every command is idempotent, any number of runs of `advance` for
//! one order, in one process or several, at once or after a crash, converge on the
//! same outcome: one order, one reservation per SKU, one PaymentIntent, one capture.
//!
//! ```text
//! cart open --redeem coupon--> --CheckOut--> cart checked out --PlaceOrder--> pending
//! pending --ReserveStock (every SKU, all or nothing)--> reserved   (short: cancel OutOfStock)
//! reserved --fraud scorer--> awaiting_payment | held_for_review (staff approve / reject)
//! awaiting_payment --create intent, CreatePayment, confirm--> authorised | requires_action | failed
//! authorised --capture--> captured --MarkPaid--> paid
//! failed --RecordPaymentFailure--> payment_failed: release stock and coupon
//! cancelled: release stock, coupon (unless it was paid), void before capture, refund after
//! shipped / delivered: commit the reservations
//! ```
//!
//! **Durability.** [`Checkouts::start`] writes a `checkouts` row before the first
//! command (the customer's choices exist nowhere else), then drives the fast path
//! inline. [`Checkouts::sweep`], run periodically on the injected clock by the
//! gateway's driver, resumes every open checkout whose next attempt is due (a crash
//! mid-way, a provider outage, a 3-D Secure intent to reconcile) and cancels the
//! unpaid orders whose reservation expired.
//!
//! Steps run under a per-order lock within the process, so the inline run and the
//! sweeper take turns instead of racing; across processes the aggregates'
//! optimistic concurrency and idempotency decide.
//!
//! Nothing here knows HTTP, GraphQL or NATS; prices come through the [`Catalog`] port
//! and the payment provider through [`PaymentProvider`].

pub mod ids;
mod payment;
mod store;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use emporium_domain::cart::{Cart, CartCommand, CartError, CartEvent, CartOwner, CartStatus};
use emporium_domain::coupon::{Coupon, CouponCode, CouponCommand, CouponError};
use emporium_domain::fraud::{
    CustomerHistory, FraudDecision, FraudFacts, FraudScorer, Velocity, WindowCounts,
};
use emporium_domain::inventory::{Inventory, InventoryCommand, InventoryError};
use emporium_domain::metadata::Actor;
use emporium_domain::order::{CancellationReason, Order, OrderCommand, OrderError, OrderStatus};
use emporium_domain::payment::{
    DeclineCode, NextAction, Payment, PaymentCommand, PaymentError, PaymentStatus,
};
use emporium_domain::pricing::{Discount, PricedLine, Pricing, Quote, ShippingMethodCode};
use emporium_domain::user::User;
use emporium_domain::{Address, EventMetadata, Money, Quantity, Sku};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use payment::commands_for as payment_commands;

use crate::dispatch::{CommandError, Committed, Dispatcher, Loading};
use crate::payments::{
    Confirmation, CreateIntent, IdempotencyKey, IntentId, PaymentMethod, PaymentProvider,
    ProviderError, RefundStatus,
};
use crate::sql::Db;
use crate::store::{AnyStore, Appended, EventStore as _, UnitRow};
use store::{CheckoutRow, Choices, StoredMethod};

/// What the checkout needs of the catalogue: current prices and names of SKUs that
/// are for sale. The gateway implements it over the catalogue read model.
#[async_trait]
pub trait Catalog: Send + Sync + fmt::Debug {
    /// The SKUs that are for sale, with their product, name, price and weight; a SKU
    /// not for sale is absent.
    ///
    /// # Errors
    /// When the catalogue cannot be read.
    async fn items(&self, skus: &[Sku]) -> anyhow::Result<HashMap<Sku, CatalogItem>>;
}

/// One SKU as the catalogue sells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogItem {
    /// The product (or the variant's product).
    pub product_id: Uuid,
    /// The product's name.
    pub name: String,
    /// The price of one unit.
    pub unit_price: Money,
    /// The weight of one unit in grams (products have no weight yet: 0).
    pub weight_grams: u32,
}

/// How the checkout behaves.
#[derive(Debug, Clone)]
pub struct CheckoutConfig {
    /// Taxes and shipping methods.
    pub pricing: Pricing,
    /// How long reserved stock waits for payment.
    pub reservation_ttl: chrono::Duration,
    /// How long after a start (or an attempt) the sweeper may resume a checkout the
    /// inline run did not finish (so it does not race a healthy inline run).
    pub resume_after: chrono::Duration,
    /// How often a checkout waiting on the customer or the provider is re-checked
    /// (reconciling with the provider's intent).
    pub recheck_after: chrono::Duration,
    /// Test-only fault injection: a run stops for good right after this step commits
    /// (`"stock_reserved"`, `"intent_created"` (at the provider, before the payment
    /// records it), `"payment_created"`, `"payment_authorised"`), so a test
    /// can kill -9 the process at a known point.
    pub crash_after: Option<String>,
}

/// Why a checkout ended without an order or without payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CheckoutFailure {
    /// Stock could not be reserved for this SKU.
    OutOfStock {
        /// The SKU short of stock.
        sku: String,
    },
    /// The coupon was refused.
    CouponRefused {
        /// Stable code, `COUPON_*`.
        code: String,
        /// For humans.
        message: String,
    },
    /// The checkout's input broke a rule.
    Invalid {
        /// The input field.
        field: String,
        /// The rule's stable name.
        rule: String,
        /// For humans.
        message: String,
    },
}

impl CheckoutFailure {
    fn invalid(field: &str, rule: &str, message: impl ToString) -> Self {
        Self::Invalid {
            field: field.to_owned(),
            rule: rule.to_owned(),
            message: message.to_string(),
        }
    }

    fn coupon(e: &CouponError) -> Self {
        Self::CouponRefused {
            code: coupon_code(e).to_owned(),
            message: e.to_string(),
        }
    }
}

/// The stable code of a coupon refusal.
#[must_use]
pub fn coupon_code(e: &CouponError) -> &'static str {
    match e {
        CouponError::NotCreated => "COUPON_NOT_FOUND",
        CouponError::Inactive => "COUPON_INACTIVE",
        CouponError::NotYetValid { .. } => "COUPON_NOT_YET_VALID",
        CouponError::Expired { .. } => "COUPON_EXPIRED",
        CouponError::BelowMinimumSubtotal { .. } => "COUPON_MINIMUM_NOT_MET",
        CouponError::UsageLimitReached { .. } => "COUPON_USAGE_LIMIT_REACHED",
        CouponError::CustomerLimitReached { .. } => "COUPON_CUSTOMER_LIMIT_REACHED",
        CouponError::CurrencyMismatch { .. } => "COUPON_CURRENCY_MISMATCH",
        _ => "COUPON_INVALID",
    }
}

/// A customer's checkout, as the gateway validated it. No price, no owner beyond the
/// signed-in customer.
#[derive(Debug, Clone)]
pub struct CheckoutRequest {
    /// The order id ([`ids::order_for_cart`] or [`ids::order_for_key`]).
    pub order_id: Uuid,
    /// The cart to check out (the customer's open cart).
    pub cart_id: Uuid,
    /// The signed-in customer.
    pub customer_id: Uuid,
    /// Their e-mail address (fraud velocity).
    pub email: Option<String>,
    /// The client's address (fraud velocity).
    pub client_ip: Option<String>,
    /// Where to ship.
    pub shipping_address: Address,
    /// Where to bill.
    pub billing_address: Address,
    /// How to ship.
    pub shipping_method: ShippingMethodCode,
    /// A coupon, if any.
    pub coupon: Option<CouponCode>,
    /// How to pay.
    pub payment_method: PaymentMethod,
}

/// Where a checkout stands after a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutView {
    /// The order.
    pub order_id: Uuid,
    /// The customer.
    pub customer_id: Uuid,
    /// The order's status; `None` while (or when) no order was placed.
    pub status: Option<OrderStatus>,
    /// Why it ended without an order or payment, if it did.
    pub failure: Option<CheckoutFailure>,
    /// The payment's status, once created.
    pub payment_status: Option<PaymentStatus>,
    /// What the customer must do (3-D Secure), while the payment requires it.
    pub next_action: Option<NextAction>,
    /// Why the payment failed, if it did.
    pub decline: Option<DeclineCode>,
    /// Why the order was cancelled, if it was.
    pub cancellation: Option<CancellationReason>,
    /// What the customer pays.
    pub grand_total: Option<Money>,
    /// The highest event position this run committed (for read-your-writes).
    pub position: Option<i64>,
}

/// Why a checkout operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    /// Refused before anything was written.
    #[error("checkout refused: {0:?}")]
    Refused(CheckoutFailure),
    /// No such checkout or order (or not the caller's).
    #[error("not found")]
    NotFound,
    /// The order's status does not allow it.
    #[error("{command} is not allowed when the order is {status}")]
    NotAllowed {
        /// The order's status.
        status: OrderStatus,
        /// What was asked.
        command: &'static str,
    },
    /// A refund the order or payment refuses (amount, currency).
    #[error("refund refused: {0}")]
    RefundRefused(String),
    /// Infrastructure failed; the checkout resumes later.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// What a sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Unpaid orders cancelled because their reservation expired.
    pub expired: usize,
    /// Checkouts resumed.
    pub resumed: usize,
    /// Resumptions that failed (retried later with backoff).
    pub failed: usize,
}

/// What the next step of a run is.
enum Next {
    /// Look again: something changed.
    Continue,
    /// Waiting on the customer, staff, the provider or a shipment.
    Wait,
    /// Nothing left to do.
    Done,
}

/// A run of `advance` for one order: its clock reading, what it committed, and what
/// it already knows (so a step does not read again what the run just wrote).
struct Run {
    order_id: Uuid,
    now: DateTime<Utc>,
    position: Option<i64>,
    decline: Option<DeclineCode>,
    /// The order, payment and cart were read from the store in this run: later steps
    /// use the state the run holds (the dispatchers' caches, updated by each commit;
    /// a conflict evicts, and the next read goes to the store again).
    order_fresh: bool,
    payment_fresh: bool,
    cart_fresh: bool,
    /// Catalogue items read in this run.
    items: Option<HashMap<Sku, CatalogItem>>,
    /// A failure recorded in this run (written to the row at once, kept here too).
    failure: Option<CheckoutFailure>,
    /// The provider has the payment method: the row forgets it when the run ends.
    clear_method: bool,
    /// A one-unit fast path gave up in this run: the rest goes step by step.
    no_fast_path: bool,
}

impl Run {
    fn new(order_id: Uuid, now: DateTime<Utc>) -> Self {
        Self {
            order_id,
            now,
            position: None,
            decline: None,
            order_fresh: false,
            payment_fresh: false,
            cart_fresh: false,
            items: None,
            failure: None,
            clear_method: false,
            no_fast_path: false,
        }
    }

    fn note(&mut self, c: &Committed) {
        if let Some(p) = c.position {
            self.position = Some(self.position.map_or(p, |q| q.max(p)));
        }
    }

    fn meta(&self, step: &str) -> EventMetadata {
        let mut m = EventMetadata::new(
            ids::command(self.order_id, step),
            Actor::System("checkout".to_owned()),
            self.now,
        );
        m.correlation_id = self.order_id;
        m
    }
}

fn unexpected<E: std::error::Error + Send + Sync + 'static>(
    what: &'static str,
) -> impl FnOnce(CommandError<E>) -> anyhow::Error {
    move |e| match e {
        CommandError::Unexpected(e) => e.context(what),
        other => anyhow::Error::from(other).context(what),
    }
}

/// The checkout process manager. See the module documentation.
pub struct Checkouts {
    /// The event store's database: the `checkouts` table lives beside the events.
    db: Db,
    carts: Dispatcher<Cart, AnyStore>,
    orders: Dispatcher<Order, AnyStore>,
    payments: Dispatcher<Payment, AnyStore>,
    inventory: Dispatcher<Inventory, AnyStore>,
    coupons: Dispatcher<Coupon, AnyStore>,
    users: Dispatcher<User, AnyStore>,
    provider: Arc<dyn PaymentProvider>,
    catalog: Arc<dyn Catalog>,
    scorer: Arc<dyn FraudScorer>,
    config: CheckoutConfig,
    locks: Box<[tokio::sync::Mutex<()>]>,
}

impl fmt::Debug for Checkouts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkouts")
            .field("provider", &self.provider.name())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

const LOCKS: usize = 256;

impl Checkouts {
    /// The process manager over the event store `store` (PostgreSQL or SQLite), its
    /// `checkouts` table in the store's database (migrated with the store).
    #[must_use]
    pub fn new(
        store: AnyStore,
        provider: Arc<dyn PaymentProvider>,
        catalog: Arc<dyn Catalog>,
        scorer: Arc<dyn FraudScorer>,
        config: CheckoutConfig,
    ) -> Self {
        Self {
            db: store.db(),
            carts: Dispatcher::over(store.clone(), Loading::Replay),
            orders: Dispatcher::over(store.clone(), Loading::Replay),
            payments: Dispatcher::over(store.clone(), Loading::Replay),
            inventory: Dispatcher::over(store.clone(), Loading::Snapshot(100)),
            coupons: Dispatcher::over(store.clone(), Loading::Snapshot(100)),
            users: Dispatcher::over(store, Loading::Replay),
            provider,
            catalog,
            scorer,
            config,
            locks: (0..LOCKS).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }

    /// The pricing configuration (shipping methods, taxes).
    #[must_use]
    pub fn pricing(&self) -> &Pricing {
        &self.config.pricing
    }

    /// The payment provider.
    #[must_use]
    pub fn provider(&self) -> &Arc<dyn PaymentProvider> {
        &self.provider
    }

    fn lock(&self, order_id: Uuid) -> &tokio::sync::Mutex<()> {
        let i = usize::try_from(order_id.as_u128() % LOCKS as u128).unwrap_or(0);
        &self.locks[i]
    }

    /// Test-only fault injection: at the configured step the run stops for good
    /// (the process stays up, holding the order's lock) so a test can kill -9 it at a
    /// known point.
    async fn crash_point(&self, step: &str) {
        if self.config.crash_after.as_deref() == Some(step) {
            tracing::error!(
                step,
                "checkout.crash_after reached: parking this run (fault injection)"
            );
            std::future::pending::<()>().await;
        }
    }

    // --- the customer's operations -------------------------------------------------

    /// Prices the customer's open cart for `address` and `method` with `coupon`,
    /// writing nothing: the quote a checkout would place.
    ///
    /// # Errors
    /// [`CheckoutError::Refused`] naming the broken rule (empty cart, a product no
    /// longer for sale, no such method, no shipping there, a refused coupon).
    pub async fn quote(
        &self,
        customer_id: Uuid,
        cart_id: Uuid,
        address: &Address,
        method: &ShippingMethodCode,
        coupon: Option<&CouponCode>,
        now: DateTime<Utc>,
    ) -> Result<Quote, CheckoutError> {
        let cart = self
            .carts
            .load(&cart_id.to_string())
            .await
            .map_err(unexpected("load cart"))?;
        let mut run = Run::new(Uuid::nil(), now);
        self.quote_cart(&cart, customer_id, address, method, coupon, &mut run)
            .await
    }

    /// [`Checkouts::quote`] of a loaded cart; the catalogue items stay in `run`.
    async fn quote_cart(
        &self,
        cart: &Cart,
        customer_id: Uuid,
        address: &Address,
        method: &ShippingMethodCode,
        coupon: Option<&CouponCode>,
        run: &mut Run,
    ) -> Result<Quote, CheckoutError> {
        let now = run.now;
        let lines = cart.lines();
        if cart.status() != Some(CartStatus::Open) || lines.is_empty() {
            return Err(CheckoutError::Refused(CheckoutFailure::invalid(
                "cart",
                "cart_empty",
                "the cart is empty",
            )));
        }
        if cart.owner()
            != Some(&CartOwner::User {
                user_id: customer_id,
            })
        {
            return Err(CheckoutError::NotFound);
        }
        let skus: Vec<Sku> = lines.iter().map(|l| l.sku.clone()).collect();
        let items = self.items_of(&skus, run).await?;
        let mut priced = Vec::with_capacity(lines.len());
        for line in &lines {
            let item = items.get(&line.sku).ok_or_else(|| {
                CheckoutError::Refused(CheckoutFailure::invalid(
                    "cart",
                    "product_unavailable",
                    format!("{} is no longer for sale", line.sku.as_str()),
                ))
            })?;
            priced.push(PricedLine {
                sku: line.sku.clone(),
                product_id: item.product_id,
                name: item.name.clone(),
                unit_price: item.unit_price,
                quantity: line.quantity,
                unit_weight_grams: item.weight_grams,
            });
        }
        let subtotal = Money::sum(
            self.config.pricing.currency(),
            priced.iter().map(|l| {
                l.unit_price
                    .checked_mul(i64::from(l.quantity.get()))
                    .unwrap_or(l.unit_price)
            }),
        )
        .map_err(|e| CheckoutError::Unexpected(anyhow::anyhow!("subtotal: {e}")))?;
        let discount = match coupon {
            Some(code) => {
                let c = self
                    .coupons
                    .load(code.as_str())
                    .await
                    .map_err(unexpected("load coupon"))?;
                c.preview(customer_id, subtotal, now)
                    .map_err(|e| CheckoutError::Refused(CheckoutFailure::coupon(&e)))?;
                c.terms().map(|t| t.discount)
            }
            None => None,
        };
        self.config
            .pricing
            .quote(&priced, address, method, discount.as_ref())
            .map_err(|e| {
                CheckoutError::Refused(CheckoutFailure::invalid(
                    "shippingMethod",
                    "shipping_unavailable",
                    e,
                ))
            })
    }

    /// Starts a checkout: validates it against the cart, the catalogue, the coupon and
    /// the stock (writing nothing when it is refused), records it, and runs it as far
    /// as it goes. A second submission of the same checkout (same order or same cart)
    /// finds the first one's record and runs that instead.
    ///
    /// # Errors
    /// [`CheckoutError::Refused`] before anything is written; `Unexpected` otherwise
    /// (the recorded checkout then resumes in the background).
    pub async fn start(
        &self,
        request: CheckoutRequest,
        now: DateTime<Utc>,
    ) -> Result<CheckoutView, CheckoutError> {
        if let Some(row) = store::find(&self.db, request.order_id).await? {
            if row.customer_id != request.customer_id {
                return Err(CheckoutError::NotFound);
            }
            return self.advance(request.order_id, now).await;
        }
        let mut run = Run::new(request.order_id, now);
        let cart = self.cart_of(request.cart_id, &mut run).await?;
        if cart.status() == Some(CartStatus::CheckedOut) {
            // A duplicate that lost the race to the cart: the first submission's.
            return match store::find_by_cart(&self.db, request.cart_id).await? {
                Some(row) if row.customer_id == request.customer_id => {
                    self.advance(row.order_id, now).await
                }
                _ => Err(CheckoutError::Refused(CheckoutFailure::invalid(
                    "cart",
                    "cart_empty",
                    "the cart is empty",
                ))),
            };
        }
        let quote = self
            .quote_cart(
                &cart,
                request.customer_id,
                &request.shipping_address,
                &request.shipping_method,
                request.coupon.as_ref(),
                &mut run,
            )
            .await?;
        // A stock check that writes nothing: most shortages are answered before the
        // cart closes. The reservation itself is what guarantees it.
        for (sku, quantity) in quantities(quote.lines().iter().map(|l| (&l.sku, l.quantity))) {
            // This process's latest state first (no read); a shortage is checked again
            // on the stored state, as stock may have been received elsewhere.
            let mut inventory = self
                .inventory
                .current(sku.as_str())
                .await
                .map_err(unexpected("load inventory"))?;
            if u64::from(inventory.available()) < quantity {
                inventory = self
                    .inventory
                    .refresh(sku.as_str())
                    .await
                    .map_err(unexpected("load inventory"))?;
            }
            if u64::from(inventory.available()) < quantity {
                return Err(CheckoutError::Refused(CheckoutFailure::OutOfStock {
                    sku: sku.as_str().to_owned(),
                }));
            }
        }
        let email = match request.email {
            Some(email) => Some(email),
            None => self
                .users
                .load(&request.customer_id.to_string())
                .await
                .map_err(unexpected("load user"))?
                .email()
                .map(|e| e.as_str().to_owned()),
        };
        let choices = Choices {
            shipping_address: request.shipping_address,
            billing_address: request.billing_address,
            shipping_method: request.shipping_method,
            coupon: request.coupon,
        };
        let method = StoredMethod::from_method(&request.payment_method);
        let (row, inserted) = store::insert(
            &self.db,
            store::NewCheckout {
                order_id: request.order_id,
                cart_id: request.cart_id,
                customer_id: request.customer_id,
                email: email.as_deref(),
                client_ip: request.client_ip.as_deref(),
                choices: &choices,
                method: &method,
                expires_at: now + self.config.reservation_ttl,
                next_attempt_at: now + self.config.resume_after,
                now,
            },
        )
        .await?;
        if row.customer_id != request.customer_id {
            return Err(CheckoutError::NotFound);
        }
        if row.order_id != request.order_id {
            // Another submission of this cart recorded its checkout first.
            return self.advance(row.order_id, now).await;
        }
        // The row just written and what this run has read (the cart, the catalogue)
        // carry into the first run.
        let _turn = self.lock(row.order_id).lock().await;
        if inserted {
            // This submission created the checkout, so nothing was ever sent to its
            // order or payment (their ids derive from the order's): no reads. A
            // wrong guess only costs a conflict, after which they are read.
            self.orders.assume_new(&row.order_id.to_string());
            self.payments
                .assume_new(&ids::payment(row.order_id).to_string());
            run.order_fresh = true;
            run.payment_fresh = true;
        }
        self.drive(row, run).await
    }

    /// Runs the checkout of `order_id` as far as it goes, then reports where it
    /// stands.
    ///
    /// # Errors
    /// [`CheckoutError::NotFound`] for an unknown checkout; `Unexpected` when a step
    /// failed (the checkout is rescheduled with backoff).
    pub async fn advance(
        &self,
        order_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<CheckoutView, CheckoutError> {
        let _turn = self.lock(order_id).lock().await;
        self.advance_locked(order_id, now).await
    }

    async fn advance_locked(
        &self,
        order_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<CheckoutView, CheckoutError> {
        let Some(row) = store::find(&self.db, order_id).await? else {
            return Err(CheckoutError::NotFound);
        };
        self.drive(row, Run::new(order_id, now)).await
    }

    /// Runs the steps of `row`'s checkout under its turn. The row is read once per
    /// run: only this run changes it meanwhile (a failure, the method once the provider
    /// has it), and those changes are applied to it here as well as in the table.
    async fn drive(
        &self,
        mut row: CheckoutRow,
        mut run: Run,
    ) -> Result<CheckoutView, CheckoutError> {
        let (order_id, now) = (run.order_id, run.now);
        // Bounded: each step moves a state machine forward or waits.
        let mut outcome = Next::Continue;
        for _ in 0..32 {
            let stepped = self.step(&row, &mut run).await;
            if let Some(failure) = run.failure.take()
                && row.failure.is_none()
            {
                row.failure = Some(sqlx::types::Json(failure));
            }
            if run.clear_method {
                row.payment_method = None;
            }
            match stepped {
                Ok(Next::Continue) => {}
                Ok(next) => {
                    outcome = next;
                    break;
                }
                Err(e) => {
                    tracing::warn!(
                        %order_id,
                        error_code = "checkout_step_failed",
                        error = format!("{e:#}"),
                        "checkout step failed; retrying later"
                    );
                    store::backoff(
                        &self.db,
                        order_id,
                        now,
                        self.config.resume_after,
                        run.clear_method,
                    )
                    .await?;
                    return Err(CheckoutError::Unexpected(e));
                }
            }
        }
        let view = self.view_of(&row, &mut run).await?;
        if view.status.is_none() && view.failure.is_some() {
            // Refused before an order existed (a coupon lost its last use, say): the
            // cart is still open, so the record goes and a new submission starts over.
            store::forget(&self.db, order_id).await?;
            return Ok(view);
        }
        let paid = matches!(
            view.status,
            Some(OrderStatus::Paid | OrderStatus::Shipped | OrderStatus::Delivered)
        );
        let open = !matches!(outcome, Next::Done);
        let end = store::RunEnd {
            open,
            paid,
            total: view.grand_total,
            clear_method: run.clear_method,
        };
        let next_attempt = if open {
            now + self.config.recheck_after
        } else {
            now
        };
        store::schedule(&self.db, order_id, end, next_attempt, now).await?;
        Ok(view)
    }

    /// The order as this run knows it (read from the store on the run's first look).
    async fn order_of(&self, run: &mut Run) -> anyhow::Result<Order> {
        let key = run.order_id.to_string();
        let order = if run.order_fresh {
            self.orders.current(&key).await
        } else {
            self.orders.refresh(&key).await
        }
        .map_err(unexpected("load order"))?;
        run.order_fresh = true;
        Ok(order)
    }

    /// The order's payment as this run knows it.
    async fn payment_of(&self, run: &mut Run) -> anyhow::Result<Payment> {
        let key = ids::payment(run.order_id).to_string();
        let payment = if run.payment_fresh {
            self.payments.current(&key).await
        } else {
            self.payments.refresh(&key).await
        }
        .map_err(unexpected("load payment"))?;
        run.payment_fresh = true;
        Ok(payment)
    }

    /// The cart as this run knows it.
    async fn cart_of(&self, cart_id: Uuid, run: &mut Run) -> anyhow::Result<Cart> {
        let key = cart_id.to_string();
        let cart = if run.cart_fresh {
            self.carts.current(&key).await
        } else {
            self.carts.refresh(&key).await
        }
        .map_err(unexpected("load cart"))?;
        run.cart_fresh = true;
        Ok(cart)
    }

    /// Catalogue items of `skus`, read once per run.
    async fn items_of(
        &self,
        skus: &[Sku],
        run: &mut Run,
    ) -> anyhow::Result<HashMap<Sku, CatalogItem>> {
        if let Some(items) = &run.items
            && skus.iter().all(|s| items.contains_key(s))
        {
            return Ok(items.clone());
        }
        let items = self.catalog.items(skus).await?;
        run.items = Some(items.clone());
        Ok(items)
    }

    /// Where the checkout of `order_id` stands, without acting.
    ///
    /// # Errors
    /// [`CheckoutError::NotFound`]; `Unexpected` when the store cannot be read.
    pub async fn view(&self, order_id: Uuid) -> Result<CheckoutView, CheckoutError> {
        let row = store::find(&self.db, order_id)
            .await?
            .ok_or(CheckoutError::NotFound)?;
        let mut run = Run::new(order_id, Utc::now());
        self.view_of(&row, &mut run).await
    }

    /// When the checkout of `cart_id` was started, if it was.
    ///
    /// # Errors
    /// `Unexpected` when the store cannot be read.
    pub async fn created_at(&self, cart_id: Uuid) -> Result<Option<DateTime<Utc>>, CheckoutError> {
        Ok(store::created_at(&self.db, cart_id).await?)
    }

    /// The fraud gate's reasons for an order (empty before the gate).
    ///
    /// # Errors
    /// `Unexpected` when the store cannot be read.
    pub async fn fraud_reasons(
        &self,
        order_id: Uuid,
    ) -> Result<Vec<emporium_domain::fraud::FraudReason>, CheckoutError> {
        let order = self
            .orders
            .load(&order_id.to_string())
            .await
            .map_err(unexpected("load order"))?;
        Ok(order.fraud().map(|(_, r)| r.to_vec()).unwrap_or_default())
    }

    /// The customer who owns the checkout of `order_id`.
    ///
    /// # Errors
    /// `Unexpected` when the store cannot be read.
    pub async fn owner(&self, order_id: Uuid) -> Result<Option<Uuid>, CheckoutError> {
        Ok(store::find(&self.db, order_id)
            .await?
            .map(|r| r.customer_id))
    }

    async fn view_of(
        &self,
        row: &CheckoutRow,
        run: &mut Run,
    ) -> Result<CheckoutView, CheckoutError> {
        let order = self.order_of(run).await?;
        let payment = self.payment_of(run).await?;
        let payment_status = payment.status();
        Ok(CheckoutView {
            order_id: row.order_id,
            customer_id: row.customer_id,
            status: order.status(),
            failure: row.failure.as_ref().map(|f| f.0.clone()),
            payment_status,
            next_action: (payment_status == Some(PaymentStatus::RequiresAction))
                .then(|| payment.next_action().cloned())
                .flatten(),
            decline: payment.failure().or(run.decline),
            cancellation: order.cancellation_reason(),
            grand_total: order.grand_total(),
            position: run.position,
        })
    }

    /// The customer (or staff) cancels the order: before capture the payment is
    /// voided, after capture refunded; stock and coupon are released.
    ///
    /// # Errors
    /// [`CheckoutError::NotAllowed`] once shipped (or already cancelled).
    pub async fn cancel(
        &self,
        order_id: Uuid,
        reason: CancellationReason,
        actor: Actor,
        now: DateTime<Utc>,
    ) -> Result<CheckoutView, CheckoutError> {
        self.order_command(order_id, "CancelOrder", actor, now, |at| {
            OrderCommand::CancelOrder { reason, at }
        })
        .await
    }

    /// Staff approve a held order: it continues to payment.
    ///
    /// # Errors
    /// [`CheckoutError::NotAllowed`] unless the order is held.
    pub async fn approve(
        &self,
        order_id: Uuid,
        actor: Actor,
        now: DateTime<Utc>,
    ) -> Result<CheckoutView, CheckoutError> {
        self.order_command(order_id, "ApproveHeldOrder", actor, now, |at| {
            OrderCommand::ApproveHeldOrder { at }
        })
        .await
    }

    /// Staff reject a held order: it is cancelled and its stock released.
    ///
    /// # Errors
    /// [`CheckoutError::NotAllowed`] unless the order is held.
    pub async fn reject(
        &self,
        order_id: Uuid,
        actor: Actor,
        now: DateTime<Utc>,
    ) -> Result<CheckoutView, CheckoutError> {
        self.order_command(order_id, "RejectHeldOrder", actor, now, |at| {
            OrderCommand::RejectHeldOrder { at }
        })
        .await
    }

    async fn order_command(
        &self,
        order_id: Uuid,
        command: &'static str,
        actor: Actor,
        now: DateTime<Utc>,
        make: impl FnOnce(DateTime<Utc>) -> OrderCommand,
    ) -> Result<CheckoutView, CheckoutError> {
        let _turn = self.lock(order_id).lock().await;
        if store::find(&self.db, order_id).await?.is_none() {
            return Err(CheckoutError::NotFound);
        }
        let meta = EventMetadata::new(Uuid::new_v4(), actor, now);
        let committed = match self
            .orders
            .execute_retrying(&order_id.to_string(), make(now), &meta)
            .await
        {
            Ok(c) => c,
            Err(CommandError::Rejected(OrderError::InvalidTransition { from, .. })) => {
                return Err(CheckoutError::NotAllowed {
                    status: from,
                    command,
                });
            }
            Err(CommandError::Rejected(OrderError::NotPlaced)) => {
                return Err(CheckoutError::NotFound);
            }
            Err(e) => return Err(CheckoutError::Unexpected(unexpected(command)(e))),
        };
        let mut view = self.advance_locked(order_id, now).await?;
        if let Some(p) = committed.position {
            view.position = Some(view.position.map_or(p, |q| q.max(p)));
        }
        Ok(view)
    }

    /// Staff refund part (`amount`) or all (`None`) of a paid order: the provider
    /// refunds first, then the payment and the order record it. `refund_id` is the
    /// idempotency key: a repeat refunds nothing twice.
    ///
    /// # Errors
    /// [`CheckoutError::NotAllowed`] for an unpaid order; `RefundRefused` for an amount
    /// above what is refundable or in another currency.
    pub async fn refund(
        &self,
        order_id: Uuid,
        amount: Option<i64>,
        refund_id: Uuid,
        actor: Actor,
        now: DateTime<Utc>,
    ) -> Result<CheckoutView, CheckoutError> {
        let _turn = self.lock(order_id).lock().await;
        let order = self
            .orders
            .load(&order_id.to_string())
            .await
            .map_err(unexpected("load order"))?;
        let Some(status) = order.status() else {
            return Err(CheckoutError::NotFound);
        };
        let Some(paid) = order.paid() else {
            return Err(CheckoutError::NotAllowed {
                status,
                command: "RefundOrder",
            });
        };
        let refunded = order.refunded().map_or(0, Money::amount_minor);
        let amount = Money::new(
            amount.unwrap_or(paid.amount_minor() - refunded),
            paid.currency(),
        );
        let mut run = Run::new(order_id, now);
        self.refund_payment(&mut run, refund_id, amount, actor, true)
            .await
            .map_err(|e| match e.downcast::<RefundRefused>() {
                Ok(r) => CheckoutError::RefundRefused(r.0),
                Err(e) => CheckoutError::Unexpected(e),
            })?;
        let mut view = self.advance_locked(order_id, now).await?;
        view.position = run.position.max(view.position);
        Ok(view)
    }

    // --- the sweeper ---------------------------------------------------------------

    /// One pass of the driver at `now`: cancels the unpaid orders whose reservation
    /// expired (compensating them), then resumes every open checkout that is due.
    ///
    /// # Errors
    /// When the store cannot be read; a failing checkout is counted, not returned.
    pub async fn sweep(&self, now: DateTime<Utc>) -> anyhow::Result<SweepReport> {
        let mut report = SweepReport::default();
        for order_id in store::expired(&self.db, now, 200).await? {
            match self.expire(order_id, now).await {
                Ok(true) => report.expired += 1,
                Ok(false) => {}
                Err(e) => {
                    report.failed += 1;
                    tracing::warn!(%order_id, error = format!("{e:#}"), "checkout expiry failed");
                }
            }
        }
        // Shipments are recorded by staff outside the checkout: commit their stock.
        for order_id in store::shipped(&self.db, 200).await? {
            match self.advance(order_id, now).await {
                Ok(_) => report.resumed += 1,
                Err(_) => report.failed += 1,
            }
        }
        for order_id in store::due(&self.db, now, 200).await? {
            match self.advance(order_id, now).await {
                Ok(_) => report.resumed += 1,
                Err(_) => report.failed += 1,
            }
        }
        Ok(report)
    }

    /// Cancels an unpaid order whose reservation expired and compensates it; `true`
    /// when it was cancelled now. A held order keeps its stock until staff decide.
    async fn expire(&self, order_id: Uuid, now: DateTime<Utc>) -> anyhow::Result<bool> {
        let _turn = self.lock(order_id).lock().await;
        let key = order_id.to_string();
        let order = self
            .orders
            .load(&key)
            .await
            .map_err(unexpected("load order"))?;
        let cancelled = match order.status() {
            Some(OrderStatus::Pending | OrderStatus::Reserved | OrderStatus::AwaitingPayment) => {
                let run = Run::new(order_id, now);
                match self
                    .orders
                    .execute(
                        &key,
                        OrderCommand::CancelOrder {
                            reason: CancellationReason::ReservationExpired,
                            at: now,
                        },
                        &run.meta("expire"),
                    )
                    .await
                {
                    Ok(_) => true,
                    // Paid (or held) meanwhile: the expiry loses.
                    Err(CommandError::Rejected(_) | CommandError::Conflict { .. }) => false,
                    Err(e) => return Err(unexpected("expire order")(e)),
                }
            }
            Some(OrderStatus::HeldForReview) => {
                // Not expired while staff review it; look again after the next recheck.
                return Ok(false);
            }
            _ => false,
        };
        if let Err(e) = self.advance_locked(order_id, now).await {
            return Err(anyhow::anyhow!("compensate expired order: {e}"));
        }
        Ok(cancelled)
    }

    // --- the steps -------------------------------------------------------------------

    async fn step(&self, row: &CheckoutRow, run: &mut Run) -> anyhow::Result<Next> {
        let order = self.order_of(run).await?;
        match order.status() {
            None => self.place(row, run).await,
            Some(OrderStatus::Pending) => self.reserve(row, &order, run).await,
            Some(OrderStatus::Reserved) => self.assess_fraud(row, &order, run).await,
            Some(OrderStatus::HeldForReview) => Ok(Next::Wait),
            Some(OrderStatus::AwaitingPayment) => self.pay(row, &order, run).await,
            Some(OrderStatus::PaymentFailed) => {
                self.release_stock(&order, run, false).await?;
                self.release_coupon(row, &order, run).await?;
                Ok(Next::Done)
            }
            Some(OrderStatus::Paid) => Ok(Next::Done),
            Some(OrderStatus::Shipped | OrderStatus::Delivered) => {
                self.commit_stock(&order, run).await?;
                store::mark_committed(&self.db, row.order_id).await?;
                Ok(Next::Done)
            }
            Some(OrderStatus::Cancelled) => {
                let expired =
                    order.cancellation_reason() == Some(CancellationReason::ReservationExpired);
                self.release_stock(&order, run, expired).await?;
                self.release_coupon(row, &order, run).await?;
                self.compensate_payment(&order, run).await
            }
            Some(OrderStatus::Refunded) => Ok(Next::Done),
        }
    }

    async fn fail(
        &self,
        row: &CheckoutRow,
        run: &mut Run,
        failure: CheckoutFailure,
    ) -> anyhow::Result<Next> {
        store::set_failure(&self.db, row.order_id, &failure, run.now).await?;
        run.failure = Some(failure);
        Ok(Next::Done)
    }

    /// Coupon, cart and order: up to `pending`.
    async fn place(&self, row: &CheckoutRow, run: &mut Run) -> anyhow::Result<Next> {
        if row.failure.is_some() {
            return Ok(Next::Done);
        }
        let choices = &row.request.0;
        let cart_key = row.cart_id.to_string();
        let cart = self.cart_of(row.cart_id, run).await?;
        let coupon = match &choices.coupon {
            Some(code) => Some(
                self.coupons
                    .load(code.as_str())
                    .await
                    .map_err(unexpected("load coupon"))?,
            ),
            None => None,
        };
        match cart.status() {
            Some(CartStatus::Open) => {
                let lines = cart.lines();
                if lines.is_empty() {
                    return self
                        .fail(
                            row,
                            run,
                            CheckoutFailure::invalid("cart", "cart_empty", "the cart is empty"),
                        )
                        .await;
                }
                let skus: Vec<Sku> = lines.iter().map(|l| l.sku.clone()).collect();
                let items = self.items_of(&skus, run).await?;
                let mut prices = BTreeMap::new();
                for line in &lines {
                    let Some(item) = items.get(&line.sku) else {
                        return self
                            .fail(
                                row,
                                run,
                                CheckoutFailure::invalid(
                                    "cart",
                                    "product_unavailable",
                                    format!("{} is no longer for sale", line.sku.as_str()),
                                ),
                            )
                            .await;
                    };
                    prices.insert(line.sku.clone(), item.unit_price);
                }
                let subtotal = Money::sum(
                    self.config.pricing.currency(),
                    lines.iter().map(|l| {
                        prices[&l.sku]
                            .checked_mul(i64::from(l.quantity.get()))
                            .unwrap_or(prices[&l.sku])
                    }),
                )?;
                if choices.coupon.is_none()
                    && self.fast_path(run)
                    && let Some(next) = self.place_at_once(row, prices.clone(), run).await?
                {
                    return Ok(next);
                }
                // The coupon first: refused, it leaves the cart open to try again.
                if let Some(code) = &choices.coupon {
                    match self.redeem(row, code, subtotal, run).await? {
                        Ok(()) => {}
                        Err(e) => return self.fail(row, run, CheckoutFailure::coupon(&e)).await,
                    }
                }
                match self
                    .carts
                    .execute(
                        &cart_key,
                        CartCommand::CheckOut {
                            prices,
                            at: run.now,
                        },
                        &run.meta("check_out"),
                    )
                    .await
                {
                    Ok(c) => run.note(&c),
                    Err(CommandError::Rejected(CartError::AlreadyCheckedOut)) => {}
                    Err(CommandError::Conflict { .. }) => return Ok(Next::Continue),
                    Err(CommandError::Rejected(e)) => {
                        self.release_coupon_of(row, run).await?;
                        return self
                            .fail(
                                row,
                                run,
                                CheckoutFailure::invalid("cart", "cart_refused", e),
                            )
                            .await;
                    }
                    Err(e) => return Err(unexpected("check out cart")(e)),
                }
                return Ok(Next::Continue);
            }
            Some(CartStatus::CheckedOut) => {}
            _ => {
                return self
                    .fail(
                        row,
                        run,
                        CheckoutFailure::invalid("cart", "cart_closed", "the cart is closed"),
                    )
                    .await;
            }
        }
        let snapshot = store::checked_out_cart(&self.db, row.cart_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("cart {} checked out without its event", row.cart_id))?;
        if let Some(code) = &choices.coupon {
            // A repeat of the redemption made before the cart closed (a no-op), or the
            // first one when the cart changed meanwhile.
            if let Err(e) = self.redeem(row, code, snapshot.subtotal, run).await? {
                return self.fail(row, run, CheckoutFailure::coupon(&e)).await;
            }
        }
        let discount: Option<Discount> =
            coupon.as_ref().and_then(|c| c.terms().map(|t| t.discount));
        let command = match self
            .place_command(row, &snapshot, discount.as_ref(), run)
            .await?
        {
            Ok(command) => command,
            Err(e) => {
                self.release_coupon_of(row, run).await?;
                return self
                    .fail(
                        row,
                        run,
                        CheckoutFailure::invalid("shippingMethod", "shipping_unavailable", e),
                    )
                    .await;
            }
        };
        // Placed by a concurrent run (perhaps with a newer product name): done.
        self.order_step(row, command, run, "place", "place order", |e| {
            matches!(e, OrderError::AlreadyPlaced { .. })
        })
        .await?;
        Ok(Next::Continue)
    }

    /// Sends `command` to the run's order as step `step`; a refusal `done` accepts
    /// (another run took the step first) or a conflict is the step already taken, and
    /// records nothing here.
    async fn order_step(
        &self,
        row: &CheckoutRow,
        command: OrderCommand,
        run: &mut Run,
        step: &str,
        what: &'static str,
        done: impl Fn(&OrderError) -> bool,
    ) -> anyhow::Result<()> {
        match self
            .orders
            .execute(&row.order_id.to_string(), command, &run.meta(step))
            .await
        {
            Ok(c) => run.note(&c),
            Err(CommandError::Conflict { .. }) => {}
            Err(CommandError::Rejected(e)) if done(&e) => {}
            Err(e) => return Err(unexpected(what)(e)),
        }
        Ok(())
    }

    /// The `PlaceOrder` of a checked-out cart: the quote of its priced snapshot
    /// (names and weights from the catalogue), or why shipping refused it.
    async fn place_command(
        &self,
        row: &CheckoutRow,
        snapshot: &store::CartSnapshot,
        discount: Option<&Discount>,
        run: &mut Run,
    ) -> anyhow::Result<Result<OrderCommand, String>> {
        let choices = &row.request.0;
        let skus: Vec<Sku> = snapshot.lines.iter().map(|l| l.sku.clone()).collect();
        let items = self.items_of(&skus, run).await?;
        let priced: Vec<PricedLine> = snapshot
            .lines
            .iter()
            .map(|l| {
                let item = items.get(&l.sku);
                PricedLine {
                    sku: l.sku.clone(),
                    product_id: l.product_id,
                    // A product that left the catalogue since keeps its SKU as name.
                    name: item.map_or_else(|| l.sku.as_str().to_owned(), |i| i.name.clone()),
                    unit_price: l.unit_price,
                    quantity: l.quantity,
                    unit_weight_grams: item.map_or(0, |i| i.weight_grams),
                }
            })
            .collect();
        let quote = match self.config.pricing.quote(
            &priced,
            &choices.shipping_address,
            &choices.shipping_method,
            discount,
        ) {
            Ok(q) => q,
            Err(e) => return Ok(Err(e.to_string())),
        };
        Ok(Ok(OrderCommand::PlaceOrder {
            order_id: row.order_id,
            customer_id: row.customer_id,
            lines: quote.order_lines(),
            tax_total: quote.tax_added(),
            shipping_total: quote.shipping(),
            discount_total: quote.discount(),
            shipping_address: choices.shipping_address.clone(),
            billing_address: choices.billing_address.clone(),
            currency: snapshot.currency,
            at: run.now,
        }))
    }

    /// Commits `rows` as one unit; `true` when they were recorded (the position is
    /// noted), `false` on a conflict (nothing was recorded).
    async fn commit_unit(&self, rows: &[UnitRow], run: &mut Run) -> anyhow::Result<Option<bool>> {
        match self.orders.event_store().append_unit(rows).await? {
            Some(Appended::At(position)) => {
                run.position = Some(run.position.map_or(position, |p| p.max(position)));
                Ok(Some(true))
            }
            Some(Appended::Conflict) => Ok(Some(false)),
            None => Ok(None),
        }
    }

    /// The happy path of a checkout without a coupon, as one unit: the cart checked
    /// out, the order placed, every SKU reserved, the stock marked reserved and the
    /// fraud gate's decision, each decided on the state the previous one left and
    /// committed together in one statement (all or nothing: a reservation never
    /// stands without its order, nor an order half reserved). `None` when anything
    /// leaves the happy path (a refusal, a no-op, a snapshot due, a stale guess):
    /// nothing was written, and the step-by-step path decides on stored state.
    async fn place_at_once(
        &self,
        row: &CheckoutRow,
        prices: BTreeMap<Sku, Money>,
        run: &mut Run,
    ) -> anyhow::Result<Option<Next>> {
        let cart_key = row.cart_id.to_string();
        let order_key = row.order_id.to_string();
        let mut cart = self
            .carts
            .draft(&cart_key)
            .await
            .map_err(unexpected("load cart"))?;
        if !matches!(
            cart.decide(
                CartCommand::CheckOut {
                    prices,
                    at: run.now
                },
                &run.meta("check_out")
            ),
            Ok(1)
        ) {
            return Ok(None);
        }
        let Some(CartEvent::CartCheckedOut {
            lines,
            subtotal,
            currency,
            ..
        }) = cart.events().first().map(|e| (*e).clone())
        else {
            return Ok(None);
        };
        let snapshot = store::CartSnapshot {
            lines,
            subtotal,
            currency,
        };
        let mut order = self
            .orders
            .draft(&order_key)
            .await
            .map_err(unexpected("load order"))?;
        if order.state().status().is_some() {
            return Ok(None);
        }
        let Ok(place) = self.place_command(row, &snapshot, None, run).await? else {
            return Ok(None);
        };
        if !matches!(order.decide(place, &run.meta("place")), Ok(n) if n > 0) {
            return Ok(None);
        }
        let wanted: Vec<(Sku, u64)> =
            quantities(order.state().lines().iter().map(|l| (&l.sku, l.quantity)))
                .into_iter()
                .map(|(sku, q)| (sku.clone(), q))
                .collect();
        let mut stock = Vec::with_capacity(wanted.len());
        for (sku, quantity) in wanted {
            let Ok(quantity) = Quantity::new(i64::try_from(quantity).unwrap_or(i64::MAX)) else {
                return Ok(None);
            };
            let mut draft = self
                .inventory
                .draft(sku.as_str())
                .await
                .map_err(unexpected("load inventory"))?;
            let command = InventoryCommand::ReserveStock {
                reservation_id: ids::reservation(row.order_id, &sku),
                order_id: row.order_id,
                quantity,
                expires_at: row.expires_at,
                at: run.now,
            };
            let meta = run.meta(&format!("reserve:{}", sku.as_str()));
            if !matches!(draft.decide(command, &meta), Ok(n) if n > 0) {
                return Ok(None);
            }
            stock.push(draft);
        }
        if !matches!(
            order.decide(
                OrderCommand::MarkStockReserved { at: run.now },
                &run.meta("stock_reserved")
            ),
            Ok(n) if n > 0
        ) {
            return Ok(None);
        }
        let total = order
            .state()
            .grand_total()
            .ok_or_else(|| anyhow::anyhow!("placed order without total"))?;
        let facts = self.fraud_facts(row, total, run.now).await?;
        let assessment = self.scorer.assess(&facts)?;
        let gate = match assessment.decision {
            FraudDecision::Pass => OrderCommand::PassFraudCheck {
                risk_score: assessment.score,
                reasons: assessment.reasons,
                at: run.now,
            },
            FraudDecision::Review => OrderCommand::HoldForReview {
                risk_score: assessment.score,
                reasons: assessment.reasons,
                at: run.now,
            },
        };
        if !matches!(order.decide(gate, &run.meta("fraud")), Ok(n) if n > 0) {
            return Ok(None);
        }
        let mut rows = Vec::new();
        let Some(r) = self.carts.rows(&cart)? else {
            return Ok(None);
        };
        rows.extend(r);
        let Some(r) = self.orders.rows(&order)? else {
            return Ok(None);
        };
        rows.extend(r);
        for draft in &stock {
            let Some(r) = self.inventory.rows(draft)? else {
                return Ok(None);
            };
            rows.extend(r);
        }
        match self.commit_unit(&rows, run).await? {
            Some(true) => {
                self.carts.accept(cart);
                self.orders.accept(order);
                for draft in stock {
                    self.inventory.accept(draft);
                }
                self.crash_point("stock_reserved").await;
                Ok(Some(Next::Continue))
            }
            Some(false) => {
                // A guess was stale: look again on stored state.
                self.carts.forget(&cart_key);
                self.orders.forget(&order_key);
                for draft in &stock {
                    self.inventory.forget(draft.id());
                }
                run.no_fast_path = true;
                Ok(Some(Next::Continue))
            }
            None => Ok(None),
        }
    }

    /// Whether the run may take the one-unit fast paths: not after one of them gave
    /// up, and not when a test parks the run at a step they merge.
    fn fast_path(&self, run: &Run) -> bool {
        !run.no_fast_path
            && !matches!(
                self.config.crash_after.as_deref(),
                Some("payment_created" | "payment_authorised")
            )
    }

    /// The happy path of a payment, as one unit after the provider calls: intent,
    /// confirm and (authorised) capture at the provider, each idempotent by its key,
    /// then the payment's created/authorised/captured (or declined, or waiting for 3-D
    /// Secure) and the order paid, committed in one statement. A crash before that
    /// commit leaves no payment: the next run asks the provider again with the same
    /// keys and gets the same intent and answers. Anything off the happy path
    /// commits nothing here and goes step by step.
    async fn pay_at_once(
        &self,
        row: &CheckoutRow,
        total: Money,
        method: &StoredMethod,
        run: &mut Run,
    ) -> anyhow::Result<Next> {
        let payment_id = ids::payment(row.order_id);
        let payment_key = payment_id.to_string();
        let order_key = row.order_id.to_string();
        let key = IdempotencyKey::for_command("create_intent", payment_id);
        let intent = self
            .provider
            .create_intent(
                CreateIntent {
                    amount: total,
                    order_id: row.order_id,
                },
                &key,
            )
            .await?;
        // The provider has the intent, the payment does not name it yet: a rerun
        // asks again with the same key and gets the same intent.
        self.crash_point("intent_created").await;
        let mut payment = self
            .payments
            .draft(&payment_key)
            .await
            .map_err(unexpected("load payment"))?;
        let create = PaymentCommand::CreatePayment {
            payment_id,
            order_id: row.order_id,
            provider: self.provider.name().to_owned(),
            provider_intent_id: intent.id.0.clone(),
            amount: total,
            idempotency_key: key.as_str().to_owned(),
            at: run.now,
        };
        if !matches!(payment.decide(create, &run.meta("create_payment")), Ok(1)) {
            run.no_fast_path = true;
            return Ok(Next::Continue);
        }
        let confirmation = self
            .provider
            .confirm(
                &intent.id,
                method.to_method()?,
                &IdempotencyKey::for_command("confirm", payment_id),
            )
            .await?;
        // The provider has the method: the row forgets it when the run ends.
        run.clear_method = true;
        let decline = match &confirmation {
            Confirmation::Declined { code, .. } => Some(*code),
            _ => None,
        };
        let reported = confirmation.intent();
        for (i, command) in payment_commands(payment.state(), reported, decline, run.now)
            .into_iter()
            .enumerate()
        {
            let meta = run.meta(&format!("payment:{}:{i}", reported.status));
            if payment.decide(command, &meta).is_err() {
                run.no_fast_path = true;
                return Ok(Next::Continue);
            }
        }
        let mut paid = None;
        if matches!(confirmation, Confirmation::Authorised(_)) {
            let captured = self
                .provider
                .capture(
                    &intent.id,
                    None,
                    &IdempotencyKey::for_command("capture", payment_id),
                )
                .await?;
            for (i, command) in payment_commands(payment.state(), &captured, None, run.now)
                .into_iter()
                .enumerate()
            {
                let meta = run.meta(&format!("payment:{}:{i}", captured.status));
                if payment.decide(command, &meta).is_err() {
                    run.no_fast_path = true;
                    return Ok(Next::Continue);
                }
            }
            if payment.state().status() == Some(PaymentStatus::Captured) {
                let mut order = self
                    .orders
                    .draft(&order_key)
                    .await
                    .map_err(unexpected("load order"))?;
                let amount = payment.state().captured().unwrap_or(total);
                let mark = OrderCommand::MarkPaid {
                    payment_id,
                    amount,
                    at: run.now,
                };
                if !matches!(order.decide(mark, &run.meta("mark_paid")), Ok(n) if n > 0) {
                    run.no_fast_path = true;
                    return Ok(Next::Continue);
                }
                paid = Some(order);
            }
        }
        let mut rows = match self.payments.rows(&payment)? {
            Some(rows) => rows,
            None => {
                run.no_fast_path = true;
                return Ok(Next::Continue);
            }
        };
        if let Some(order) = &paid {
            match self.orders.rows(order)? {
                Some(r) => rows.extend(r),
                None => {
                    run.no_fast_path = true;
                    return Ok(Next::Continue);
                }
            }
        }
        match self.commit_unit(&rows, run).await? {
            Some(true) => {
                self.payments.accept(payment);
                if let Some(order) = paid {
                    self.orders.accept(order);
                }
            }
            Some(false) | None => {
                self.payments.forget(&payment_key);
                self.orders.forget(&order_key);
                run.no_fast_path = true;
            }
        }
        Ok(Next::Continue)
    }

    /// Redeems the checkout's coupon: `Ok(Err(_))` when the coupon refuses.
    async fn redeem(
        &self,
        row: &CheckoutRow,
        code: &CouponCode,
        subtotal: Money,
        run: &mut Run,
    ) -> anyhow::Result<Result<(), CouponError>> {
        match self
            .coupons
            .execute_retrying(
                code.as_str(),
                CouponCommand::RedeemCoupon {
                    redemption_id: ids::redemption(row.order_id),
                    customer_id: row.customer_id,
                    order_id: row.order_id,
                    subtotal,
                    at: run.now,
                },
                &run.meta("redeem_coupon"),
            )
            .await
        {
            Ok(c) => {
                run.note(&c);
                Ok(Ok(()))
            }
            Err(CommandError::Rejected(e)) => Ok(Err(e)),
            Err(e) => Err(unexpected("redeem coupon")(e)),
        }
    }

    /// Every SKU of the order reserved, all or nothing.
    async fn reserve(
        &self,
        row: &CheckoutRow,
        order: &Order,
        run: &mut Run,
    ) -> anyhow::Result<Next> {
        let key = row.order_id.to_string();
        let mut cancel = None;
        for (sku, quantity) in quantities(order.lines().iter().map(|l| (&l.sku, l.quantity))) {
            let Ok(quantity) = Quantity::new(i64::try_from(quantity).unwrap_or(i64::MAX)) else {
                cancel = Some((CancellationReason::OutOfStock, Some(sku.clone())));
                break;
            };
            let command = InventoryCommand::ReserveStock {
                reservation_id: ids::reservation(row.order_id, sku),
                order_id: row.order_id,
                quantity,
                expires_at: row.expires_at,
                at: run.now,
            };
            match self
                .inventory
                .execute_retrying(
                    sku.as_str(),
                    command,
                    &run.meta(&format!("reserve:{}", sku.as_str())),
                )
                .await
            {
                Ok(c) => run.note(&c),
                Err(CommandError::Rejected(
                    InventoryError::InsufficientStock { .. } | InventoryError::NotTracked,
                )) => {
                    cancel = Some((CancellationReason::OutOfStock, Some(sku.clone())));
                    break;
                }
                Err(CommandError::Rejected(InventoryError::ExpiryNotInFuture { .. })) => {
                    cancel = Some((CancellationReason::ReservationExpired, None));
                    break;
                }
                Err(e) => return Err(unexpected("reserve stock")(e)),
            }
        }
        let (command, step) = match cancel {
            Some((reason, sku)) => {
                if let Some(sku) = sku {
                    let failure = CheckoutFailure::OutOfStock {
                        sku: sku.as_str().to_owned(),
                    };
                    store::set_failure(&self.db, row.order_id, &failure, run.now).await?;
                    run.failure = Some(failure);
                }
                (
                    OrderCommand::CancelOrder {
                        reason,
                        at: run.now,
                    },
                    "cancel_unreserved",
                )
            }
            None => (
                OrderCommand::MarkStockReserved { at: run.now },
                "stock_reserved",
            ),
        };
        match self.orders.execute(&key, command, &run.meta(step)).await {
            Ok(c) => run.note(&c),
            Err(
                CommandError::Rejected(OrderError::InvalidTransition { .. })
                | CommandError::Conflict { .. },
            ) => {}
            Err(e) => return Err(unexpected("record reservation")(e)),
        }
        self.crash_point(step).await;
        Ok(Next::Continue)
    }

    /// The fraud gate: score, reasons, pass or hold.
    async fn assess_fraud(
        &self,
        row: &CheckoutRow,
        order: &Order,
        run: &mut Run,
    ) -> anyhow::Result<Next> {
        let total = order
            .grand_total()
            .ok_or_else(|| anyhow::anyhow!("placed order without total"))?;
        let facts = self.fraud_facts(row, total, run.now).await?;
        let assessment = self.scorer.assess(&facts)?;
        let command = match assessment.decision {
            FraudDecision::Pass => OrderCommand::PassFraudCheck {
                risk_score: assessment.score,
                reasons: assessment.reasons,
                at: run.now,
            },
            FraudDecision::Review => OrderCommand::HoldForReview {
                risk_score: assessment.score,
                reasons: assessment.reasons,
                at: run.now,
            },
        };
        self.order_step(row, command, run, "fraud", "record fraud assessment", |e| {
            matches!(e, OrderError::InvalidTransition { .. })
        })
        .await?;
        Ok(Next::Continue)
    }

    async fn fraud_facts(
        &self,
        row: &CheckoutRow,
        total: Money,
        now: DateTime<Utc>,
    ) -> anyhow::Result<FraudFacts> {
        let counts = |(hour, day): (i64, i64)| WindowCounts {
            last_hour: u32::try_from(hour).unwrap_or(u32::MAX),
            last_day: u32::try_from(day).unwrap_or(u32::MAX),
        };
        let found = store::fraud_counts(
            &self.db,
            row.customer_id,
            row.email.as_deref(),
            row.client_ip.as_deref(),
            row.order_id,
            now,
        )
        .await?;
        let user = counts(found.customer);
        let email = found.email.map_or(user, counts);
        let ip = found.ip.map(counts);
        let (completed, median) = (found.completed, found.median);
        #[allow(clippy::cast_possible_truncation, reason = "a median of i64 amounts")]
        let median_order = median.map(|m| Money::new(m.round() as i64, total.currency()));
        let account_age = found.registered_at.map(|at| now - at);
        let choices = &row.request.0;
        Ok(FraudFacts {
            order_total: total,
            velocity: Velocity {
                user,
                email,
                ip,
                // Unknown before the card reaches the provider.
                card: None,
            },
            history: CustomerHistory {
                completed_orders: u32::try_from(completed).unwrap_or(u32::MAX),
                median_order,
            },
            billing_country: choices.billing_address.country().clone(),
            shipping_country: choices.shipping_address.country().clone(),
            account_age,
        })
    }

    /// Payment: intent, confirm, (3-D Secure), capture, paid; or failed.
    async fn pay(&self, row: &CheckoutRow, order: &Order, run: &mut Run) -> anyhow::Result<Next> {
        let order_key = row.order_id.to_string();
        let payment_id = ids::payment(row.order_id);
        let payment_key = payment_id.to_string();
        let total = order
            .grand_total()
            .ok_or_else(|| anyhow::anyhow!("placed order without total"))?;
        if total.is_zero() {
            // Nothing to collect (a coupon covered it all).
            let paid = self
                .orders
                .execute(
                    &order_key,
                    OrderCommand::MarkPaid {
                        payment_id,
                        amount: total,
                        at: run.now,
                    },
                    &run.meta("mark_paid"),
                )
                .await;
            return self.after_mark_paid(paid, run);
        }
        let payment = self.payment_of(run).await?;
        if payment.status().is_none()
            && self.fast_path(run)
            && let Some(method) = &row.payment_method
        {
            return self.pay_at_once(row, total, &method.0, run).await;
        }
        let Some(status) = payment.status() else {
            let key = IdempotencyKey::for_command("create_intent", payment_id);
            let intent = self
                .provider
                .create_intent(
                    CreateIntent {
                        amount: total,
                        order_id: row.order_id,
                    },
                    &key,
                )
                .await?;
            // The provider has the intent, the payment does not name it yet: a rerun
            // asks again with the same key and gets the same intent.
            self.crash_point("intent_created").await;
            let command = PaymentCommand::CreatePayment {
                payment_id,
                order_id: row.order_id,
                provider: self.provider.name().to_owned(),
                provider_intent_id: intent.id.0.clone(),
                amount: total,
                idempotency_key: key.as_str().to_owned(),
                at: run.now,
            };
            match self
                .payments
                .execute(&payment_key, command, &run.meta("create_payment"))
                .await
            {
                Ok(c) => run.note(&c),
                Err(CommandError::Conflict { .. }) => {}
                Err(e) => return Err(unexpected("record payment")(e)),
            }
            self.crash_point("payment_created").await;
            return Ok(Next::Continue);
        };
        let intent_id = IntentId(
            payment
                .provider_intent_id()
                .ok_or_else(|| anyhow::anyhow!("payment without intent"))?
                .to_owned(),
        );
        match status {
            PaymentStatus::Created => {
                let Some(method) = &row.payment_method else {
                    // Confirmed earlier (the method is cleared after): ask the provider.
                    let intent = self.provider.retrieve(&intent_id).await?;
                    return self
                        .reconcile(&payment_key, &payment, &intent, None, run)
                        .await;
                };
                let method = method.0.to_method()?;
                let key = IdempotencyKey::for_command("confirm", payment_id);
                let confirmation = self.provider.confirm(&intent_id, method, &key).await?;
                let decline = match &confirmation {
                    Confirmation::Declined { code, .. } => Some(*code),
                    _ => None,
                };
                let next = self
                    .reconcile(&payment_key, &payment, confirmation.intent(), decline, run)
                    .await?;
                // The row forgets the method when the run ends (one row write per run).
                run.clear_method = true;
                if matches!(confirmation, Confirmation::Authorised(_)) {
                    self.crash_point("payment_authorised").await;
                }
                Ok(next)
            }
            PaymentStatus::RequiresAction => {
                // Waiting for the customer's 3-D Secure: has the provider moved on?
                let intent = self.provider.retrieve(&intent_id).await?;
                self.reconcile(&payment_key, &payment, &intent, None, run)
                    .await
            }
            PaymentStatus::Authorised => {
                let key = IdempotencyKey::for_command("capture", payment_id);
                let intent = self.provider.capture(&intent_id, None, &key).await?;
                self.reconcile(&payment_key, &payment, &intent, None, run)
                    .await
            }
            PaymentStatus::Captured => {
                let amount = payment.captured().unwrap_or(total);
                let paid = self
                    .orders
                    .execute(
                        &order_key,
                        OrderCommand::MarkPaid {
                            payment_id,
                            amount,
                            at: run.now,
                        },
                        &run.meta("mark_paid"),
                    )
                    .await;
                self.after_mark_paid(paid, run)
            }
            PaymentStatus::Failed => {
                run.decline = payment.failure();
                match self
                    .orders
                    .execute(
                        &order_key,
                        OrderCommand::RecordPaymentFailure {
                            payment_id,
                            at: run.now,
                        },
                        &run.meta("payment_failed"),
                    )
                    .await
                {
                    Ok(c) => run.note(&c),
                    Err(
                        CommandError::Rejected(OrderError::InvalidTransition { .. })
                        | CommandError::Conflict { .. },
                    ) => {}
                    Err(e) => return Err(unexpected("record payment failure")(e)),
                }
                Ok(Next::Continue)
            }
            // Voided or refunded while the order awaits payment: only a cancellation
            // does that, and it is being recorded; look again.
            PaymentStatus::Voided | PaymentStatus::Refunded => Ok(Next::Wait),
        }
    }

    fn after_mark_paid(
        &self,
        paid: Result<Committed, CommandError<OrderError>>,
        run: &mut Run,
    ) -> anyhow::Result<Next> {
        match paid {
            Ok(c) => run.note(&c),
            // Cancelled meanwhile: the next look compensates (refund).
            Err(
                CommandError::Rejected(OrderError::InvalidTransition { .. })
                | CommandError::Conflict { .. },
            ) => {}
            Err(e) => return Err(unexpected("mark paid")(e)),
        }
        Ok(Next::Continue)
    }

    /// Applies [`payment_commands`] for what the provider reported.
    async fn reconcile(
        &self,
        payment_key: &str,
        payment: &Payment,
        intent: &crate::payments::PaymentIntent,
        decline: Option<DeclineCode>,
        run: &mut Run,
    ) -> anyhow::Result<Next> {
        let commands = payment_commands(payment, intent, decline, run.now);
        let waiting = commands.is_empty();
        for (i, command) in commands.into_iter().enumerate() {
            let step = format!("payment:{}:{i}", intent.status);
            match self
                .payments
                .execute(payment_key, command, &run.meta(&step))
                .await
            {
                Ok(c) => run.note(&c),
                Err(CommandError::Conflict { .. }) => return Ok(Next::Continue),
                Err(CommandError::Rejected(e)) => {
                    tracing::warn!(payment = payment_key, error = %e, "payment refused a provider report");
                    return Ok(Next::Continue);
                }
                Err(e) => return Err(unexpected("record payment")(e)),
            }
        }
        if waiting {
            return Ok(Next::Wait);
        }
        Ok(Next::Continue)
    }

    async fn release_stock(
        &self,
        order: &Order,
        run: &mut Run,
        expired: bool,
    ) -> anyhow::Result<()> {
        for (sku, _) in quantities(order.lines().iter().map(|l| (&l.sku, l.quantity))) {
            let reservation_id = ids::reservation(run.order_id, sku);
            let command = if expired {
                InventoryCommand::ExpireReservation {
                    reservation_id,
                    at: run.now,
                }
            } else {
                InventoryCommand::ReleaseReservation {
                    reservation_id,
                    at: run.now,
                }
            };
            let step = format!("release:{}", sku.as_str());
            let result = match self
                .inventory
                .execute_retrying(sku.as_str(), command, &run.meta(&step))
                .await
            {
                // Expired before its time (a customer cancel carried the expiry
                // reason, say): release instead.
                Err(CommandError::Rejected(InventoryError::ReservationNotExpired { .. })) => {
                    self.inventory
                        .execute_retrying(
                            sku.as_str(),
                            InventoryCommand::ReleaseReservation {
                                reservation_id,
                                at: run.now,
                            },
                            &run.meta(&step),
                        )
                        .await
                }
                other => other,
            };
            match result {
                Ok(c) => run.note(&c),
                // Never reserved (the shortage itself, or lines after it), or gone.
                Err(CommandError::Rejected(
                    InventoryError::ReservationNotFound { .. }
                    | InventoryError::NotTracked
                    | InventoryError::ReservationAlreadyCommitted { .. },
                )) => {}
                Err(e) => return Err(unexpected("release stock")(e)),
            }
        }
        Ok(())
    }

    async fn commit_stock(&self, order: &Order, run: &mut Run) -> anyhow::Result<()> {
        for (sku, _) in quantities(order.lines().iter().map(|l| (&l.sku, l.quantity))) {
            let command = InventoryCommand::CommitReservation {
                reservation_id: ids::reservation(run.order_id, sku),
                at: run.now,
            };
            let step = format!("commit:{}", sku.as_str());
            match self
                .inventory
                .execute_retrying(sku.as_str(), command, &run.meta(&step))
                .await
            {
                Ok(c) => run.note(&c),
                Err(CommandError::Rejected(
                    e @ InventoryError::ReservationAlreadyReleased { .. },
                )) => {
                    tracing::error!(order_id = %run.order_id, sku = sku.as_str(), error = %e, error_code = "shipped_without_reservation", "shipped stock was released");
                }
                Err(e) => return Err(unexpected("commit stock")(e)),
            }
        }
        Ok(())
    }

    async fn release_coupon(
        &self,
        row: &CheckoutRow,
        order: &Order,
        run: &mut Run,
    ) -> anyhow::Result<()> {
        // The coupon comes back only for an order that was never paid.
        if order.paid().is_some() {
            return Ok(());
        }
        self.release_coupon_of(row, run).await
    }

    async fn release_coupon_of(&self, row: &CheckoutRow, run: &mut Run) -> anyhow::Result<()> {
        let Some(code) = &row.request.0.coupon else {
            return Ok(());
        };
        match self
            .coupons
            .execute_retrying(
                code.as_str(),
                CouponCommand::ReleaseRedemption {
                    redemption_id: ids::redemption(row.order_id),
                    at: run.now,
                },
                &run.meta("release_coupon"),
            )
            .await
        {
            Ok(c) => run.note(&c),
            Err(CommandError::Rejected(
                CouponError::UnknownRedemption { .. } | CouponError::NotCreated,
            )) => {}
            Err(e) => return Err(unexpected("release coupon")(e)),
        }
        Ok(())
    }

    /// A cancelled order's payment: void before capture, refund after.
    async fn compensate_payment(&self, order: &Order, run: &mut Run) -> anyhow::Result<Next> {
        let payment_id = ids::payment(run.order_id);
        let payment_key = payment_id.to_string();
        let payment = self
            .payments
            .load(&payment_key)
            .await
            .map_err(unexpected("load payment"))?;
        let Some(status) = payment.status() else {
            return Ok(Next::Done);
        };
        let intent_id = IntentId(payment.provider_intent_id().unwrap_or_default().to_owned());
        match status {
            PaymentStatus::Created | PaymentStatus::RequiresAction | PaymentStatus::Authorised => {
                let key = IdempotencyKey::for_command("cancel", payment_id);
                let intent = match self.provider.cancel(&intent_id, &key).await {
                    Ok(intent) => intent,
                    // Captured at the provider meanwhile: record it, then refund.
                    Err(ProviderError::UnexpectedState { .. }) => {
                        self.provider.retrieve(&intent_id).await?
                    }
                    Err(e) => return Err(e.into()),
                };
                self.reconcile(&payment_key, &payment, &intent, None, run)
                    .await?;
                Ok(Next::Continue)
            }
            PaymentStatus::Captured => {
                let Some(captured) = payment.captured() else {
                    return Ok(Next::Done);
                };
                let left = captured.amount_minor() - payment.committed_refunds_minor();
                if left <= 0 {
                    return Ok(Next::Done);
                }
                self.refund_payment(
                    run,
                    ids::cancellation_refund(run.order_id),
                    Money::new(left, captured.currency()),
                    Actor::System("checkout".to_owned()),
                    order.paid().is_some(),
                )
                .await?;
                Ok(Next::Continue)
            }
            PaymentStatus::Failed | PaymentStatus::Voided | PaymentStatus::Refunded => {
                Ok(Next::Done)
            }
        }
    }

    /// Refunds `amount` of the order's payment under `refund_id`: payment request,
    /// provider refund, payment and order records. Every step is idempotent by the id.
    async fn refund_payment(
        &self,
        run: &mut Run,
        refund_id: Uuid,
        amount: Money,
        actor: Actor,
        record_on_order: bool,
    ) -> anyhow::Result<()> {
        let payment_id = ids::payment(run.order_id);
        let payment_key = payment_id.to_string();
        let mut meta = EventMetadata::new(Uuid::new_v5(&refund_id, b"command"), actor, run.now);
        meta.correlation_id = run.order_id;
        match self
            .payments
            .execute_retrying(
                &payment_key,
                PaymentCommand::RequestRefund {
                    refund_id,
                    amount,
                    at: run.now,
                },
                &meta,
            )
            .await
        {
            Ok(c) => run.note(&c),
            Err(CommandError::Rejected(e)) => {
                return Err(anyhow::Error::new(RefundRefused(refund_refusal(&e))));
            }
            Err(e) => return Err(unexpected("request refund")(e)),
        }
        let payment = self
            .payments
            .load(&payment_key)
            .await
            .map_err(unexpected("load payment"))?;
        let intent_id = IntentId(payment.provider_intent_id().unwrap_or_default().to_owned());
        let refund = self
            .provider
            .refund(
                &intent_id,
                Some(amount),
                &IdempotencyKey::for_command("refund", refund_id),
            )
            .await?;
        if refund.status == RefundStatus::Failed {
            anyhow::bail!("provider could not refund {refund_id}");
        }
        if refund.status == RefundStatus::Succeeded {
            match self
                .payments
                .execute_retrying(
                    &payment_key,
                    PaymentCommand::RecordRefund {
                        refund_id,
                        amount,
                        at: run.now,
                    },
                    &meta,
                )
                .await
            {
                Ok(c) => run.note(&c),
                Err(e) => return Err(unexpected("record refund")(e)),
            }
        }
        if !record_on_order {
            // Captured by a race the order never saw paid: the payment alone records it.
            return Ok(());
        }
        match self
            .orders
            .execute_retrying(
                &run.order_id.to_string(),
                OrderCommand::RefundOrder {
                    refund_id,
                    amount,
                    at: run.now,
                },
                &meta,
            )
            .await
        {
            Ok(c) => run.note(&c),
            Err(CommandError::Rejected(e)) => {
                return Err(anyhow::Error::new(RefundRefused(e.to_string())));
            }
            Err(e) => return Err(unexpected("record order refund")(e)),
        }
        Ok(())
    }
}

/// A refund the aggregates refused (amount, currency), as opposed to a failure.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct RefundRefused(String);

fn refund_refusal(e: &PaymentError) -> String {
    e.to_string()
}

/// Quantities per SKU, lines sharing a SKU counted together, in SKU order (every
/// run reserves in the same order).
fn quantities<'a>(lines: impl Iterator<Item = (&'a Sku, Quantity)>) -> BTreeMap<&'a Sku, u64> {
    let mut map: BTreeMap<&Sku, u64> = BTreeMap::new();
    for (sku, q) in lines {
        *map.entry(sku).or_default() += u64::from(q.get());
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_sharing_a_sku_are_counted_together() {
        let a = Sku::parse("A").unwrap_or_else(|_| Sku::parse("AAA").unwrap());
        let b = Sku::parse("B-2").unwrap();
        let q = |n| Quantity::new(n).unwrap();
        let lines = [(&a, q(2)), (&b, q(1)), (&a, q(3))];
        let got = quantities(lines.iter().map(|(s, n)| (*s, *n)));
        assert_eq!(got.into_iter().collect::<Vec<_>>(), vec![(&a, 5), (&b, 1)]);
    }

    #[test]
    fn coupon_refusals_have_stable_codes() {
        assert_eq!(coupon_code(&CouponError::NotCreated), "COUPON_NOT_FOUND");
        assert_eq!(
            coupon_code(&CouponError::UsageLimitReached { limit: 1 }),
            "COUPON_USAGE_LIMIT_REACHED"
        );
    }
}
