//! The storefront's services over the read models: the catalogue (listings, product
//! pages, the category tree), the viewer's cart, wishlist, notifications and orders,
//! their payments, and product reviews.
//!
//! Reads are one indexed query per listing page (the read models are shaped for
//! them). Cart, wishlist, inbox and review changes dispatch a command, then wait, bounded, until the
//! projection that serves the answer has applied it (read-your-writes), and answer
//! from the read model. Prices always come from the catalogue read model; no input
//! carries one.

#[cfg(all(test, feature = "sqlite"))]
mod both_backends;
mod cart;
mod catalog;
pub mod checkout;
mod guest;
mod inbox;
mod live;
mod orders;
mod payments;
mod reviews;
mod rows;
mod wishlist;

use std::sync::Arc;
use std::time::Duration;

use emporium_commands::dispatch::Loading;
use emporium_commands::{AnyStore, Dispatcher};
use emporium_domain::cart::Cart;
use emporium_domain::catalog::{Review, Wishlist};
use emporium_domain::inbox::Inbox;
use emporium_domain::metadata::Actor;
use emporium_domain::{Currency, EventMetadata};
use emporium_projections::envelope::CommitPosition;
use emporium_projections::projection::{CheckpointWatch, WaitError};
use emporium_projections::sql::Db;
use sqlx::PgPool;
use tokio::sync::OnceCell;
use uuid::Uuid;

pub(crate) use cart::{CartState, Shopper, parse_quantity};
pub(crate) use catalog::{CategoryRow, ProductFilter, ProductRow, ProductSort};
pub(crate) use checkout::{CheckoutAnswer, CheckoutInput, HeldOrder};
pub(crate) use guest::{key_for as guest_key_for, mint as mint_guest_token};
pub(crate) use inbox::{InboxCounts, NotificationRow};
pub(crate) use live::{Live, OrderUpdate};
pub(crate) use orders::{COLUMNS as ORDER_COLUMNS, OrderPage, OrderRow, StatusChange};
pub(crate) use payments::PaymentRow;
pub(crate) use reviews::ReviewRow;
pub(crate) use wishlist::WishlistEntry;

use crate::clock::Clock;
use crate::config::Settings;

/// Shoppers whose open cart is remembered.
const OPEN_CARTS: usize = 100_000;
use crate::error::ApiError;

/// The storefront's services.
pub struct Shop {
    pool: PgPool,
    /// The event store the commands go to.
    store: AnyStore,
    /// The read models: every storefront read goes through this port, so it runs on
    /// PostgreSQL and on the embedded mode's SQLite `read.db` alike.
    read: Db,
    carts: Dispatcher<Cart, AnyStore>,
    wishlists: Dispatcher<Wishlist, AnyStore>,
    inboxes: Dispatcher<Inbox, AnyStore>,
    reviews: Dispatcher<Review, AnyStore>,
    /// Started on first use, so a gateway whose database is down still starts (and
    /// reports not ready) instead of failing to build.
    watch: OnceCell<CheckpointWatch>,
    clock: Arc<dyn Clock>,
    currency: Currency,
    read_your_writes: Duration,
    /// The change feeds subscriptions follow.
    live: Live,
    /// The checkout process manager (absent in a shop built without one).
    checkouts: Option<Arc<emporium_commands::checkout::Checkouts>>,
    /// How a mutation gets its events onto the stream before it waits for them.
    relay: RelayWaker,
    /// Each shopper's open cart as last seen (keyed by the shopper's first cart id),
    /// so a cart change skips finding it. Only a guess: see `cart::open_cart`.
    open_carts: quick_cache::sync::Cache<Uuid, Uuid>,
    /// The position of each shopper's latest cart change made through this process
    /// (keyed like `open_carts`): cart changes answer from the aggregate without
    /// waiting for `carts`, so the shopper's next cart read waits for it instead.
    cart_writes: quick_cache::sync::Cache<Uuid, Arc<std::sync::atomic::AtomicI64>>,
    /// Catalogue rows cart changes need, while the catalogue is unchanged (off with
    /// `shop.catalog_cache_bytes = 0`).
    catalog_rows: Option<rows::CatalogRows>,
}

/// Wakes the relay after a command commits, so the events reach the projections
/// without waiting for the relay's poll.
#[derive(Debug, Clone)]
pub enum RelayWaker {
    /// The relay runs in this process: a wake-up in memory.
    InProcess(emporium_projections::relay::RelayWake),
    /// The relay runs elsewhere: `NOTIFY emporium_relay_wake` (one round trip).
    Postgres,
    /// The embedded mode: no relay; the projection runners read the store's feed
    /// when woken.
    #[cfg(feature = "sqlite")]
    Embedded(emporium_projections::projection::embedded::WakeHandle),
}

impl std::fmt::Debug for Shop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shop")
            .field("currency", &self.currency)
            .field("read_your_writes", &self.read_your_writes)
            .finish_non_exhaustive()
    }
}

impl Shop {
    /// The services over `pool` (the event store, which commands go to) and `read`
    /// (the read models the answers come from: `Db::Postgres` over the same pool in
    /// the distributed mode).
    ///
    /// # Errors
    /// When `shop.currency` is not an ISO 4217 code this build knows.
    pub fn new(
        store: AnyStore,
        pool: PgPool,
        read: Db,
        clock: Arc<dyn Clock>,
        settings: &Settings,
    ) -> anyhow::Result<Self> {
        let currency = Currency::parse(&settings.shop.currency)
            .map_err(|e| anyhow::anyhow!("shop.currency: {e}"))?;
        Ok(Self {
            carts: Dispatcher::over(store.clone(), Loading::Replay),
            wishlists: Dispatcher::over(store.clone(), Loading::Replay),
            inboxes: Dispatcher::over(store.clone(), Loading::Replay),
            reviews: Dispatcher::over(store.clone(), Loading::Replay),
            store,
            pool: pool.clone(),
            read,
            watch: OnceCell::new(),
            clock,
            currency,
            read_your_writes: settings.backbone.read_your_writes_timeout(),
            live: Live::new(pool),
            checkouts: None,
            relay: RelayWaker::Postgres,
            open_carts: quick_cache::sync::Cache::new(OPEN_CARTS),
            cart_writes: quick_cache::sync::Cache::new(OPEN_CARTS),
            catalog_rows: (settings.shop.catalog_cache_bytes > 0).then(rows::CatalogRows::default),
        })
    }

    /// The shop waking the relay through `relay` (in memory when it runs in this
    /// process; over PostgreSQL by default).
    #[must_use]
    pub fn with_relay_waker(mut self, relay: RelayWaker) -> Self {
        self.relay = relay;
        self
    }

    /// The shop waiting on `watch` (the embedded runners' in-process announcements)
    /// instead of starting a PostgreSQL listener on first use.
    #[must_use]
    pub fn with_checkpoint_watch(self, watch: CheckpointWatch) -> Self {
        let _ = self.watch.set(watch);
        self
    }

    /// The shop whose subscriptions follow `live`.
    #[must_use]
    pub(crate) fn with_live(mut self, live: Live) -> Self {
        self.live = live;
        self
    }

    /// The event store the commands go to.
    pub(crate) fn store(&self) -> &AnyStore {
        &self.store
    }

    /// The process's checkpoint watch (started on first use).
    ///
    /// # Errors
    /// When it cannot start (PostgreSQL down).
    pub(crate) async fn checkpoint_watch(&self) -> Result<&CheckpointWatch, ApiError> {
        self.watch
            .get_or_try_init(|| CheckpointWatch::start(self.pool.clone()))
            .await
            .map_err(ApiError::internal)
    }

    /// Wakes an in-process relay (a write nobody waits for: its events reach the
    /// stream at once when the relay is idle); a relay elsewhere is not sent a
    /// `NOTIFY` for it and finds the events by its poll.
    fn nudge_relay(&self) {
        match &self.relay {
            RelayWaker::InProcess(wake) => wake.wake(),
            #[cfg(feature = "sqlite")]
            RelayWaker::Embedded(wake) => wake.wake(),
            RelayWaker::Postgres => {}
        }
    }

    async fn wake_relay(&self) {
        match &self.relay {
            RelayWaker::InProcess(wake) => wake.wake(),
            #[cfg(feature = "sqlite")]
            RelayWaker::Embedded(wake) => wake.wake(),
            RelayWaker::Postgres => {
                if let Err(e) = emporium_projections::relay::wake_over_postgres(&self.pool).await {
                    tracing::debug!(error = format!("{e:#}"), "relay wake-up not sent");
                }
            }
        }
    }

    /// The shop with the checkout process manager.
    #[must_use]
    pub fn with_checkouts(
        mut self,
        checkouts: Arc<emporium_commands::checkout::Checkouts>,
    ) -> Self {
        self.checkouts = Some(checkouts);
        self
    }

    /// The read models (for services beside the shop's own, e.g. the back office and
    /// payments).
    pub(crate) fn read(&self) -> &Db {
        &self.read
    }

    /// The clock.
    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Now, by the injected clock.
    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// The change feeds subscriptions follow.
    pub(crate) fn live(&self) -> &Live {
        &self.live
    }

    fn metadata(&self, user_id: Uuid) -> EventMetadata {
        crate::tracecontext::stamp(EventMetadata::new(
            Uuid::new_v4(),
            Actor::User(user_id),
            self.clock.now(),
        ))
    }

    /// Waits until `projection` has applied the event at `position` (nothing to wait
    /// for when the command recorded nothing). A timeout is logged and the answer
    /// comes from the read model as it is: the command did commit, so failing the
    /// mutation would invite a retry that repeats it.
    pub(crate) async fn read_your_writes(
        &self,
        projection: &'static str,
        position: Option<i64>,
    ) -> Result<(), ApiError> {
        let Some(position) = position else {
            return Ok(());
        };
        self.wake_relay().await;
        let watch = self.checkpoint_watch().await?;
        // The append told this process its transaction; otherwise it is read back.
        let known = self.store.transaction_of(position).and_then(|transaction| {
            Some(CommitPosition {
                transaction_id: u64::try_from(transaction).ok()?,
                position: u64::try_from(position).ok()?,
            })
        });
        let waited = match known {
            Some(target) => watch
                .wait_for(projection, target, self.read_your_writes)
                .await
                .map_err(|()| WaitError::Timeout {
                    projection: projection.to_owned(),
                    position,
                    timeout: self.read_your_writes,
                }),
            None => {
                watch
                    .wait_for_position(projection, position, self.read_your_writes)
                    .await
            }
        };
        match waited {
            Ok(()) => Ok(()),
            Err(WaitError::Timeout { .. }) => {
                metrics::counter!("emporium_read_your_writes_timeouts_total", "projection" => projection)
                    .increment(1);
                tracing::warn!(
                    projection,
                    position,
                    error_code = "read_your_writes_timeout",
                    "read model lags; answering with its current state"
                );
                Ok(())
            }
            Err(e) => Err(ApiError::internal(e)),
        }
    }
}

/// A database error caused by a malformed cursor value (a bad number or timestamp)
/// rather than by the database.
fn is_bad_cursor_value(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|code| matches!(code.as_ref(), "22P02" | "22007" | "22008" | "22003"))
}
