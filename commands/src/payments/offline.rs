//! The offline provider: Stripe's test-card behaviour, without a network.
//!
//! | card                 | on confirm                                   |
//! | -------------------- | -------------------------------------------- |
//! | 4242 4242 4242 4242  | authorised                                   |
//! | 4000 0000 0000 0002  | declined, `card_declined`                    |
//! | 4000 0000 0000 9995  | declined, `insufficient_funds`               |
//! | 4000 0000 0000 0069  | declined, `expired_card`                     |
//! | 4000 0000 0000 0127  | declined, `incorrect_cvc`                    |
//! | 4000 0000 0000 0119  | declined, `processing_error`                 |
//! | 4000 0027 6000 3184  | requires 3-D Secure: `complete_action` authorises, `fail_action` declines |
//! | any other valid card | authorised (as Stripe's other test cards)    |
//!
//! A declined intent goes back to `requires_payment_method` and may be confirmed again
//! with another card, as at Stripe.
//!
//! **Where state lives.** [`OfflineProvider::durable`] keeps intents, refunds and
//! idempotent responses in the event store's database (`offline_payment_*`, a
//! commands migration for PostgreSQL and one for the SQLite store), so a restarted
//! process, or another process on the same PostgreSQL database, sees the same intent
//! for the same idempotency key, as Stripe would: what `emporium serve` uses.
//! [`OfflineProvider::new`] keeps them in memory behind one `std::sync::Mutex` (never
//! held across an `.await`), for unit tests of code that needs a provider and nothing
//! else. Both run the same operations on the same state type; the durable one loads
//! the one intent an operation touches, runs it, and writes the result atomically.
//!
//! **Idempotency, as Stripe does it:** a key's first *successful* response is stored
//! with a fingerprint of its request; the same key and request return that response
//! again without acting (no second intent, capture or refund), the same key with
//! another request is [`ProviderError::IdempotencyKeyReused`]. Errors are not stored,
//! so a retry after one re-executes. In memory, calls take turns on the mutex. Durable,
//! a call is one read and one statement (two round trips, no transaction held open): a
//! create inserts its idempotency row and its intent only if the key is new; an
//! operation on an intent writes its new state only if the intent is still the state
//! it decided on, together with its idempotency row, both or neither
//! (`offline_payment_apply`, migration `20261127000300`). A call that lost (the
//! intent moved on, or a duplicate stored its response first) wrote nothing and
//! decides again from a new read, so concurrent duplicates replay the first one's
//! stored response and concurrent operations on one intent apply one at a time.
//! Refunds (they also add a refund row) keep the transaction: an advisory lock on the
//! key, then `SELECT ... FOR UPDATE` on the intent. On SQLite (one writer at a time,
//! one process per file) every call is one write transaction (`BEGIN IMMEDIATE`):
//! read the key's stored response and the intent, decide, write, commit; concurrent
//! calls take turns on the file's write lock, so a duplicate finds the first one's
//! response.
//!
//! **Cards:** only a [`CardSummary`] (brand, last four, fingerprint) is kept; the
//! confirm request's fingerprint uses that summary too, so no full number is stored.
//! The fingerprint key is random per provider: per process in memory, stored once per
//! database (`offline_provider_keys`, hex text on SQLite) when durable, so fingerprints stay comparable
//! across restarts.
//!
//! **Stripe-side events** (for tests and the demo shop): [`OfflineProvider::simulate`]
//! completes or fails a 3-D Secure action or refunds from "the dashboard", and returns
//! the webhook event Stripe would send for it ([`StripeEvent`]), ready to be signed.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use anyhow::Context as _;
use async_trait::async_trait;
use emporium_domain::Money;
use emporium_domain::payment::{DeclineCode, NextAction};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::card::{CardNumber, CardSummary};
use super::events::StripeEvent;
use super::{
    Confirmation, CreateIntent, IdempotencyKey, IntentId, IntentStatus, PaymentIntent,
    PaymentMethod, PaymentProvider, ProviderError, Refund, RefundId, RefundStatus,
};
use crate::sql::Db;

/// What a test card does on confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Authorise,
    Decline(DeclineCode),
    RequireAction,
}

fn behaviour(card: &CardNumber) -> Behaviour {
    match card.digits() {
        "4000000000000002" => Behaviour::Decline(DeclineCode::CardDeclined),
        "4000000000009995" => Behaviour::Decline(DeclineCode::InsufficientFunds),
        "4000000000000069" => Behaviour::Decline(DeclineCode::ExpiredCard),
        "4000000000000127" => Behaviour::Decline(DeclineCode::IncorrectCvc),
        "4000000000000119" => Behaviour::Decline(DeclineCode::ProcessingError),
        "4000002760003184" => Behaviour::RequireAction,
        _ => Behaviour::Authorise,
    }
}

/// A request as its idempotency fingerprint: everything that makes two requests the
/// same, and nothing secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Request {
    Create(CreateIntent),
    Confirm {
        intent: IntentId,
        method: MethodFingerprint,
    },
    Capture {
        intent: IntentId,
        amount: Option<Money>,
    },
    Cancel {
        intent: IntentId,
    },
    Refund {
        intent: IntentId,
        amount: Option<Money>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum MethodFingerprint {
    Provider(String),
    Card(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Response {
    Intent(PaymentIntent),
    Confirmation(Confirmation),
    Refund(Refund),
}

/// The provider's state, or (durable) the part of it one operation touches.
#[derive(Debug, Default)]
struct State {
    intents: HashMap<IntentId, PaymentIntent>,
    refunds: Vec<Refund>,
    idempotent: HashMap<IdempotencyKey, (Request, Response)>,
}

#[derive(Debug)]
enum Backend {
    Memory(Mutex<State>),
    Postgres(PgPool),
    /// The SQLite store's database.
    #[cfg(feature = "sqlite")]
    Sqlite(Db),
}

/// The fingerprint key: random in memory, stored once per database when durable
/// (read on first use, so building a provider needs no database).
enum FingerprintKey {
    Ready([u8; 32]),
    Stored(tokio::sync::OnceCell<[u8; 32]>),
}

/// A Stripe-side event to simulate with [`OfflineProvider::simulate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Simulation {
    /// The customer completed 3-D Secure: `payment_intent.amount_capturable_updated`.
    CompleteAction(IntentId),
    /// The customer failed 3-D Secure: `payment_intent.payment_failed`.
    FailAction(IntentId),
    /// Someone refunded in the provider's dashboard (all that is left, or `amount`):
    /// `charge.refunded`.
    DashboardRefund {
        /// The captured intent.
        intent: IntentId,
        /// How much; `None` refunds what is left.
        amount: Option<Money>,
    },
}

/// What a simulation did, and the webhook event that reports it.
#[derive(Debug, Clone)]
pub struct Simulated {
    /// The intent afterwards.
    pub intent: PaymentIntent,
    /// The event Stripe would deliver.
    pub event: StripeEvent,
}

/// The offline payment provider. See the module documentation for its behaviour.
pub struct OfflineProvider {
    /// Keys the card fingerprints, so they identify a card without revealing it.
    fingerprint_key: FingerprintKey,
    backend: Backend,
    /// Durable on PostgreSQL: the state this process last wrote for an intent, the
    /// guess its next operation decides on without a read (see [`one_statement`]).
    written: Written,
}

/// Intent id -> the state JSON this process last stored for it.
type Written = quick_cache::sync::Cache<String, serde_json::Value>;

/// Intents whose last written state a provider keeps.
const WRITTEN_CAPACITY: usize = 10_000;

impl std::fmt::Debug for OfflineProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The fingerprint key stays out of logs; the state (no card numbers) is shown.
        f.debug_struct("OfflineProvider")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Default for OfflineProvider {
    fn default() -> Self {
        Self::new()
    }
}

fn random_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    key[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    key
}

fn unavailable(e: impl Into<anyhow::Error>) -> ProviderError {
    ProviderError::Unavailable(e.into())
}

impl OfflineProvider {
    /// A provider with no intents, in memory.
    #[must_use]
    pub fn new() -> Self {
        Self {
            fingerprint_key: FingerprintKey::Ready(random_key()),
            backend: Backend::Memory(Mutex::new(State::default())),
            written: Written::new(1),
        }
    }

    /// A provider whose state lives in `db`, the event store's database (PostgreSQL
    /// or the SQLite store's file, whose migrations must have run before its first
    /// call): intents survive restarts and, on PostgreSQL, are shared by every process
    /// on the database. Nothing is read until the first call.
    #[must_use]
    pub fn durable(db: impl Into<Db>) -> Self {
        Self {
            fingerprint_key: FingerprintKey::Stored(tokio::sync::OnceCell::new()),
            backend: match db.into() {
                Db::Postgres(pool) => Backend::Postgres(pool),
                #[cfg(feature = "sqlite")]
                db @ Db::Sqlite(_) => Backend::Sqlite(db),
            },
            written: Written::new(WRITTEN_CAPACITY),
        }
    }

    async fn fingerprint_key(&self) -> Result<[u8; 32], ProviderError> {
        let FingerprintKey::Stored(cell) = &self.fingerprint_key else {
            let FingerprintKey::Ready(key) = &self.fingerprint_key else {
                unreachable!("the key is ready or stored")
            };
            return Ok(*key);
        };
        cell.get_or_try_init(|| async {
            let stored: Vec<u8> = match &self.backend {
                Backend::Memory(_) => unreachable!("an in-memory provider has its key"),
                Backend::Postgres(pool) => {
                    sqlx::query(
                        "INSERT INTO offline_provider_keys (id, fingerprint_key) VALUES (1, $1)
                         ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(random_key().as_slice())
                    .execute(pool)
                    .await
                    .map_err(unavailable)?;
                    sqlx::query_scalar(
                        "SELECT fingerprint_key FROM offline_provider_keys WHERE id = 1",
                    )
                    .fetch_one(pool)
                    .await
                    .map_err(unavailable)?
                }
                #[cfg(feature = "sqlite")]
                Backend::Sqlite(db) => {
                    db.execute(
                        "INSERT INTO offline_provider_keys (id, fingerprint_key) VALUES (1, $1)
                         ON CONFLICT (id) DO NOTHING",
                        crate::args![hex::encode(random_key())],
                    )
                    .await
                    .map_err(unavailable)?;
                    let stored: String = db
                        .scalar_optional(
                            "SELECT fingerprint_key FROM offline_provider_keys WHERE id = 1",
                            crate::args![],
                        )
                        .await
                        .map_err(unavailable)?
                        .ok_or_else(|| unavailable(anyhow::anyhow!("no fingerprint key stored")))?;
                    hex::decode(stored).map_err(unavailable)?
                }
            };
            <[u8; 32]>::try_from(stored)
                .map_err(|_| unavailable(anyhow::anyhow!("stored fingerprint key is not 32 bytes")))
        })
        .await
        .copied()
    }

    fn memory(state: &Mutex<State>) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves maps that are still consistent (every
        // change is a single insert), so a poisoned lock is used as it is.
        state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn summary(&self, card: &CardNumber) -> Result<CardSummary, ProviderError> {
        let key = self.fingerprint_key().await?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(card.digits().as_bytes());
        let digest = mac.finalize().into_bytes();
        Ok(CardSummary {
            brand: card.brand(),
            last4: card.last4(),
            fingerprint: hex::encode(&digest[..8]),
        })
    }

    /// How many intents exist (to check that a retried create made no second one).
    ///
    /// # Errors
    /// [`ProviderError::Unavailable`] when the database cannot be read.
    pub async fn intent_count(&self) -> Result<usize, ProviderError> {
        match &self.backend {
            Backend::Memory(state) => Ok(Self::memory(state).intents.len()),
            Backend::Postgres(pool) => {
                let n: i64 = sqlx::query_scalar("SELECT count(*) FROM offline_payment_intents")
                    .fetch_one(pool)
                    .await
                    .map_err(unavailable)?;
                Ok(usize::try_from(n).unwrap_or(0))
            }
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(db) => {
                let n: Option<i64> = db
                    .scalar_optional(
                        "SELECT count(*) FROM offline_payment_intents",
                        crate::args![],
                    )
                    .await
                    .map_err(unavailable)?;
                Ok(n.and_then(|n| usize::try_from(n).ok()).unwrap_or(0))
            }
        }
    }

    /// Every refund made, oldest first.
    ///
    /// # Errors
    /// [`ProviderError::Unavailable`] when the database cannot be read.
    pub async fn refunds(&self) -> Result<Vec<Refund>, ProviderError> {
        match &self.backend {
            Backend::Memory(state) => Ok(Self::memory(state).refunds.clone()),
            Backend::Postgres(pool) => {
                let rows: Vec<sqlx::types::Json<Refund>> =
                    sqlx::query_scalar("SELECT refund FROM offline_payment_refunds ORDER BY seq")
                        .fetch_all(pool)
                        .await
                        .map_err(unavailable)?;
                Ok(rows.into_iter().map(|r| r.0).collect())
            }
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(db) => {
                let rows: Vec<sqlx::types::Json<Refund>> = db
                    .scalar_all(
                        "SELECT refund FROM offline_payment_refunds ORDER BY seq",
                        crate::args![],
                    )
                    .await
                    .map_err(unavailable)?;
                Ok(rows.into_iter().map(|r| r.0).collect())
            }
        }
    }

    /// The customer completed 3-D Secure: a `requires_action` intent is authorised.
    /// Completing an intent that is already authorised is a no-op.
    ///
    /// # Errors
    /// [`ProviderError::NotFound`], or [`ProviderError::UnexpectedState`] when the
    /// intent is not waiting for an action.
    pub async fn complete_action(&self, intent: &IntentId) -> Result<PaymentIntent, ProviderError> {
        self.on_intent(intent, |i| finish_action(i, true)).await
    }

    /// The customer failed (or abandoned) 3-D Secure: the intent goes back to
    /// `requires_payment_method`, declined with [`DeclineCode::Other`] (Stripe's
    /// `payment_intent_authentication_failure`).
    ///
    /// # Errors
    /// As [`OfflineProvider::complete_action`].
    pub async fn fail_action(&self, intent: &IntentId) -> Result<PaymentIntent, ProviderError> {
        self.on_intent(intent, |i| finish_action(i, false)).await
    }

    /// Acts as Stripe's side would (the customer's 3-D Secure, a dashboard refund) and
    /// returns the intent afterwards with the webhook event Stripe sends for it.
    ///
    /// # Errors
    /// As the underlying operation: [`ProviderError::NotFound`],
    /// [`ProviderError::UnexpectedState`], [`ProviderError::InvalidAmount`].
    pub async fn simulate(&self, simulation: Simulation) -> Result<Simulated, ProviderError> {
        match simulation {
            Simulation::CompleteAction(id) => {
                let intent = self.complete_action(&id).await?;
                let event =
                    StripeEvent::for_intent("payment_intent.amount_capturable_updated", &intent);
                Ok(Simulated { intent, event })
            }
            Simulation::FailAction(id) => {
                let intent = self.fail_action(&id).await?;
                let event = StripeEvent::for_intent("payment_intent.payment_failed", &intent);
                Ok(Simulated { intent, event })
            }
            Simulation::DashboardRefund { intent: id, amount } => {
                // The dashboard sends its own idempotency key per click.
                let key = IdempotencyKey::for_command("dashboard_refund", Uuid::new_v4());
                self.refund(&id, amount, &key).await?;
                let intent = self.retrieve(&id).await?;
                let event = StripeEvent::charge_refunded(&intent);
                Ok(Simulated { intent, event })
            }
        }
    }

    /// Runs `operation` on one intent, without idempotency (Stripe-side changes).
    async fn on_intent(
        &self,
        id: &IntentId,
        operation: impl FnOnce(&mut PaymentIntent) -> Result<(), ProviderError>,
    ) -> Result<PaymentIntent, ProviderError> {
        match &self.backend {
            Backend::Memory(state) => {
                let mut state = Self::memory(state);
                let intent = intent_mut(&mut state, id)?;
                operation(intent)?;
                Ok(intent.clone())
            }
            Backend::Postgres(pool) => {
                let mut tx = pool.begin().await.map_err(unavailable)?;
                let mut intent = load_intent(&mut tx, id)
                    .await?
                    .ok_or_else(|| ProviderError::NotFound(id.clone()))?;
                operation(&mut intent)?;
                save_intent(&mut tx, &intent).await?;
                tx.commit().await.map_err(unavailable)?;
                Ok(intent)
            }
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(db) => {
                let mut tx = db.begin_write().await.map_err(unavailable)?;
                let mut intent = sqlite::load_intent(&mut tx.conn(), id)
                    .await?
                    .ok_or_else(|| ProviderError::NotFound(id.clone()))?;
                operation(&mut intent)?;
                sqlite::save_intent(&mut tx.conn(), &intent).await?;
                tx.commit().await.map_err(unavailable)?;
                Ok(intent)
            }
        }
    }

    /// Runs `operation` once per idempotency key: replays the stored response of the
    /// same request, refuses another request under the same key. `intent` is the
    /// intent the operation touches (loaded and locked first when durable).
    async fn idempotent(
        &self,
        key: &IdempotencyKey,
        request: Request,
        intent: Option<&IntentId>,
        operation: impl Fn(&mut State) -> Result<Response, ProviderError>,
    ) -> Result<Response, ProviderError> {
        match &self.backend {
            Backend::Memory(state) => {
                let mut state = Self::memory(state);
                if let Some((stored, response)) = state.idempotent.get(key) {
                    return replay(key, stored, response, &request);
                }
                let response = operation(&mut state)?;
                state
                    .idempotent
                    .insert(key.clone(), (request, response.clone()));
                Ok(response)
            }
            Backend::Postgres(pool) if !matches!(request, Request::Refund { .. }) => {
                one_statement(pool, &self.written, key, &request, intent, operation).await
            }
            Backend::Postgres(pool) => {
                if let Some(id) = intent {
                    // Changed below, not through the guess.
                    self.written.remove(&id.0);
                }
                let mut tx = pool.begin().await.map_err(unavailable)?;
                // One key at a time: a concurrent duplicate waits here, then replays.
                sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 7001))")
                    .bind(key.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                let stored: Option<(sqlx::types::Json<Request>, sqlx::types::Json<Response>)> =
                    sqlx::query_as(
                        "SELECT request, response FROM offline_payment_idempotency WHERE key = $1",
                    )
                    .bind(key.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                if let Some((stored, response)) = stored {
                    return replay(key, &stored.0, &response.0, &request);
                }
                let mut state = State::default();
                if let Some(id) = intent
                    && let Some(loaded) = load_intent(&mut tx, id).await?
                {
                    state.intents.insert(id.clone(), loaded);
                }
                // An error rolls the transaction back: nothing is stored, as at Stripe.
                let response = operation(&mut state)?;
                for changed in state.intents.values() {
                    save_intent(&mut tx, changed).await?;
                }
                for refund in &state.refunds {
                    sqlx::query(
                        "INSERT INTO offline_payment_refunds (refund_id, intent_id, refund)
                         VALUES ($1, $2, $3)",
                    )
                    .bind(&refund.id.0)
                    .bind(&refund.intent.0)
                    .bind(sqlx::types::Json(refund))
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                }
                sqlx::query(
                    "INSERT INTO offline_payment_idempotency (key, request, response)
                     VALUES ($1, $2, $3)",
                )
                .bind(key.as_str())
                .bind(sqlx::types::Json(&request))
                .bind(sqlx::types::Json(&response))
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
                tx.commit().await.map_err(unavailable)?;
                Ok(response)
            }
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(db) => sqlite::idempotent(db, key, request, intent, operation).await,
        }
    }
}

/// The SQLite store's durable path: one write transaction per call.
#[cfg(feature = "sqlite")]
mod sqlite {
    use sqlx::types::Json;

    use super::{
        IdempotencyKey, IntentId, PaymentIntent, ProviderError, Request, Response, State, replay,
        unavailable,
    };
    use crate::args;
    use crate::sql::{Conn, Db};

    /// Runs `operation` once per key, as `OfflineProvider::idempotent`: the stored
    /// response and the intent are read, the decision written, in one `BEGIN
    /// IMMEDIATE` transaction, so concurrent calls take turns; an error writes nothing.
    pub(super) async fn idempotent(
        db: &Db,
        key: &IdempotencyKey,
        request: Request,
        intent: Option<&IntentId>,
        operation: impl Fn(&mut State) -> Result<Response, ProviderError>,
    ) -> Result<Response, ProviderError> {
        let mut tx = db.begin_write().await.map_err(unavailable)?;
        let mut conn = tx.conn();
        let stored: Option<(Json<Request>, Json<Response>)> = conn
            .fetch_optional(
                "SELECT request, response FROM offline_payment_idempotency WHERE key = $1",
                args![key.as_str()],
            )
            .await
            .map_err(unavailable)?;
        if let Some((stored, response)) = stored {
            return replay(key, &stored.0, &response.0, &request);
        }
        let mut state = State::default();
        if let Some(id) = intent
            && let Some(loaded) = load_intent(&mut conn, id).await?
        {
            state.intents.insert(id.clone(), loaded);
        }
        // An error drops the transaction: nothing is stored, as at Stripe.
        let response = operation(&mut state)?;
        for changed in state.intents.values() {
            save_intent(&mut conn, changed).await?;
        }
        for refund in &state.refunds {
            conn.execute(
                "INSERT INTO offline_payment_refunds (refund_id, intent_id, refund)
                 VALUES ($1, $2, $3)",
                args![
                    refund.id.0.as_str(),
                    refund.intent.0.as_str(),
                    crate::sql::Value::json(refund).map_err(unavailable)?,
                ],
            )
            .await
            .map_err(unavailable)?;
        }
        conn.execute(
            "INSERT INTO offline_payment_idempotency (key, request, response) VALUES ($1, $2, $3)",
            args![
                key.as_str(),
                crate::sql::Value::json(&request).map_err(unavailable)?,
                crate::sql::Value::json(&response).map_err(unavailable)?,
            ],
        )
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(response)
    }

    pub(super) async fn load_intent(
        conn: &mut Conn<'_>,
        id: &IntentId,
    ) -> Result<Option<PaymentIntent>, ProviderError> {
        let row: Option<Json<PaymentIntent>> = conn
            .scalar_optional(
                "SELECT state FROM offline_payment_intents WHERE intent_id = $1",
                args![id.0.as_str()],
            )
            .await
            .map_err(unavailable)?;
        Ok(row.map(|r| r.0))
    }

    pub(super) async fn save_intent(
        conn: &mut Conn<'_>,
        intent: &PaymentIntent,
    ) -> Result<(), ProviderError> {
        conn.execute(
            "INSERT INTO offline_payment_intents (intent_id, order_id, state, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $4)
             ON CONFLICT (intent_id) DO UPDATE SET state = excluded.state, updated_at = $4",
            args![
                intent.id.0.as_str(),
                intent.order_id,
                crate::sql::Value::json(intent).map_err(unavailable)?,
                chrono::Utc::now(),
            ],
        )
        .await
        .map_err(unavailable)?;
        Ok(())
    }
}

/// How many times a durable call decides again after losing a race on its intent
/// before it reports the provider unavailable (each loss means another call changed
/// the intent, so this bounds a pathological storm, not a normal race).
const ATTEMPTS: usize = 64;

/// The durable path of every call but a refund: one statement, after one read unless
/// the first attempt can guess (no transaction round trips, no lock held across
/// them). A create inserts its idempotency row and, only if that was new, the intent
/// it made; an operation on an intent applies its new state only if the intent still
/// is what the operation decided on (compare-and-set, `offline_payment_apply`),
/// together with its idempotency row. A loss (the intent moved on, or a duplicate with
/// the same key stored first) writes nothing and decides again from a new read, where
/// a duplicate finds the first one's response and replays it.
///
/// The first attempt reads nothing when it can guess what the read would say: a
/// create guesses its key is new; an operation on an intent whose state this process
/// last wrote (`written`) guesses the key is new and the intent unchanged. A wrong
/// guess is one of the losses above.
async fn one_statement(
    pool: &PgPool,
    written: &Written,
    key: &IdempotencyKey,
    request: &Request,
    intent: Option<&IntentId>,
    operation: impl Fn(&mut State) -> Result<Response, ProviderError>,
) -> Result<Response, ProviderError> {
    type Read = (
        Option<serde_json::Value>,
        Option<sqlx::types::Json<Request>>,
        Option<sqlx::types::Json<Response>>,
    );
    for attempt in 0..ATTEMPTS {
        let guess = match intent {
            _ if attempt > 0 => None,
            None => Some(None),
            Some(id) => written.get(&id.0).map(Some),
        };
        let guessed = guess.is_some();
        let (stored_intent, stored_request, stored_response): Read = match guess {
            Some(state) => (state, None, None),
            None => sqlx::query_as(
                "SELECT (SELECT state FROM offline_payment_intents WHERE intent_id = $1),
                        k.request, k.response
                   FROM (SELECT 1) one
                   LEFT JOIN offline_payment_idempotency k ON k.key = $2",
            )
            .bind(intent.map(|i| i.0.as_str()))
            .bind(key.as_str())
            .fetch_one(pool)
            .await
            .context("read offline intent")
            .map_err(unavailable)?,
        };
        if let (Some(stored), Some(response)) = (stored_request, stored_response) {
            return replay(key, &stored.0, &response.0, request);
        }
        let mut state = State::default();
        let old = match (intent, stored_intent) {
            (Some(id), Some(raw)) => {
                let loaded: PaymentIntent = serde_json::from_value(raw.clone())
                    .context("stored offline intent")
                    .map_err(unavailable)?;
                state.intents.insert(id.clone(), loaded);
                Some((id, raw))
            }
            _ => None,
        };
        // An error writes nothing: it is not stored, as at Stripe. One decided on a
        // guess is decided again on what is stored.
        let response = match operation(&mut state) {
            Ok(response) => response,
            Err(_) if guessed => continue,
            Err(e) => return Err(e),
        };
        let mut remember: Vec<(String, serde_json::Value)> = Vec::new();
        let request_json = sqlx::types::Json(request);
        let response_json = sqlx::types::Json(&response);
        let outcome = match old {
            Some((id, raw)) => {
                let changed = state
                    .intents
                    .get(id)
                    .ok_or_else(|| ProviderError::NotFound(id.clone()))?;
                remember.push((
                    id.0.clone(),
                    serde_json::to_value(changed).map_err(unavailable)?,
                ));
                sqlx::query_scalar::<_, String>(
                    "SELECT offline_payment_apply($1, $2, $3, $4, $5, $6)",
                )
                .bind(&id.0)
                .bind(key.as_str())
                .bind(request_json)
                .bind(response_json)
                .bind(&raw)
                .bind(sqlx::types::Json(changed))
                .fetch_one(pool)
                .await
                .context("apply offline intent")
                .map_err(unavailable)?
            }
            None => {
                // A create (or an operation on an intent that does not exist, which
                // the operation refused above): the new intents, if the key is new.
                let made: Vec<&PaymentIntent> = state.intents.values().collect();
                let ids: Vec<&str> = made.iter().map(|i| i.id.0.as_str()).collect();
                let orders: Vec<Uuid> = made.iter().map(|i| i.order_id).collect();
                let states: Vec<serde_json::Value> = made
                    .iter()
                    .map(serde_json::to_value)
                    .collect::<Result<_, _>>()
                    .map_err(unavailable)?;
                remember.extend(
                    ids.iter()
                        .map(|id| (*id).to_owned())
                        .zip(states.iter().cloned()),
                );
                let inserted: bool = sqlx::query_scalar(
                    "WITH k AS (
                         INSERT INTO offline_payment_idempotency (key, request, response)
                         VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING RETURNING 1
                     ), i AS (
                         INSERT INTO offline_payment_intents (intent_id, order_id, state)
                         SELECT u.id, u.o, u.s FROM unnest($4::text[], $5::uuid[], $6::jsonb[]) AS u(id, o, s)
                          WHERE EXISTS (SELECT 1 FROM k)
                         RETURNING 1
                     )
                     SELECT EXISTS (SELECT 1 FROM k) AND (SELECT count(*) FROM i) = cardinality($4::text[])",
                )
                .bind(key.as_str())
                .bind(request_json)
                .bind(response_json)
                .bind(&ids)
                .bind(&orders)
                .bind(&states)
                .fetch_one(pool)
                .await
                .context("create offline intent")
                .map_err(unavailable)?;
                if inserted { "applied" } else { "key_taken" }.to_owned()
            }
        };
        if outcome == "applied" {
            for (id, state) in remember {
                written.insert(id, state);
            }
            return Ok(response);
        }
        // 'changed' or 'key_taken': nothing was written; read again.
        if let Some(id) = intent {
            written.remove(&id.0);
        }
        tokio::task::yield_now().await;
    }
    Err(unavailable(anyhow::anyhow!(
        "offline intent kept changing under {key}"
    )))
}

fn replay(
    key: &IdempotencyKey,
    stored: &Request,
    response: &Response,
    request: &Request,
) -> Result<Response, ProviderError> {
    if stored == request {
        Ok(response.clone())
    } else {
        Err(ProviderError::IdempotencyKeyReused(key.clone()))
    }
}

/// Loads an intent and locks its row for the transaction.
async fn load_intent(
    tx: &mut Transaction<'_, Postgres>,
    id: &IntentId,
) -> Result<Option<PaymentIntent>, ProviderError> {
    let row: Option<sqlx::types::Json<PaymentIntent>> = sqlx::query_scalar(
        "SELECT state FROM offline_payment_intents WHERE intent_id = $1 FOR UPDATE",
    )
    .bind(&id.0)
    .fetch_optional(&mut **tx)
    .await
    .context("load offline intent")
    .map_err(unavailable)?;
    Ok(row.map(|r| r.0))
}

async fn save_intent(
    tx: &mut Transaction<'_, Postgres>,
    intent: &PaymentIntent,
) -> Result<(), ProviderError> {
    sqlx::query(
        "INSERT INTO offline_payment_intents (intent_id, order_id, state) VALUES ($1, $2, $3)
         ON CONFLICT (intent_id) DO UPDATE SET state = EXCLUDED.state, updated_at = now()",
    )
    .bind(&intent.id.0)
    .bind(intent.order_id)
    .bind(sqlx::types::Json(intent))
    .execute(&mut **tx)
    .await
    .context("save offline intent")
    .map_err(unavailable)?;
    Ok(())
}

/// The end of a 3-D Secure action.
fn finish_action(intent: &mut PaymentIntent, authenticated: bool) -> Result<(), ProviderError> {
    match (intent.status, authenticated) {
        (IntentStatus::RequiresAction, true) => {
            intent.status = IntentStatus::RequiresCapture;
            intent.amount_capturable = intent.amount;
            intent.next_action = None;
        }
        (IntentStatus::RequiresAction, false) => {
            intent.status = IntentStatus::RequiresPaymentMethod;
            intent.next_action = None;
            intent.last_decline = Some(DeclineCode::Other);
        }
        (IntentStatus::RequiresCapture, true) => {}
        (status, _) => {
            return Err(ProviderError::UnexpectedState {
                intent: intent.id.clone(),
                status,
                operation: "complete the action",
            });
        }
    }
    Ok(())
}

fn intent_mut<'a>(
    state: &'a mut State,
    id: &IntentId,
) -> Result<&'a mut PaymentIntent, ProviderError> {
    state
        .intents
        .get_mut(id)
        .ok_or_else(|| ProviderError::NotFound(id.clone()))
}

fn unexpected(intent: &PaymentIntent, operation: &'static str) -> ProviderError {
    ProviderError::UnexpectedState {
        intent: intent.id.clone(),
        status: intent.status,
        operation,
    }
}

/// `amount` (or `default` when absent), checked to be positive, in the intent's
/// currency and at most `limit`.
fn amount_within(
    amount: Option<Money>,
    default: Money,
    limit: Money,
) -> Result<Money, ProviderError> {
    let amount = amount.unwrap_or(default);
    if amount.currency() != limit.currency() {
        return Err(ProviderError::InvalidAmount(
            "currency differs from the intent's",
        ));
    }
    if amount.amount_minor() <= 0 {
        return Err(ProviderError::InvalidAmount("amount must be positive"));
    }
    if amount.amount_minor() > limit.amount_minor() {
        return Err(ProviderError::InvalidAmount(
            "amount exceeds what is available",
        ));
    }
    Ok(amount)
}

/// A key is bound to one request, so its stored response has that request's kind;
/// another kind means the key was reused for another operation.
fn expect_intent(response: Response, key: &IdempotencyKey) -> Result<PaymentIntent, ProviderError> {
    match response {
        Response::Intent(intent) => Ok(intent),
        Response::Confirmation(_) | Response::Refund(_) => {
            Err(ProviderError::IdempotencyKeyReused(key.clone()))
        }
    }
}

#[async_trait]
impl PaymentProvider for OfflineProvider {
    fn name(&self) -> &'static str {
        "offline"
    }

    async fn create_intent(
        &self,
        request: CreateIntent,
        key: &IdempotencyKey,
    ) -> Result<PaymentIntent, ProviderError> {
        if request.amount.amount_minor() <= 0 {
            return Err(ProviderError::InvalidAmount("amount must be positive"));
        }
        let response = self
            .idempotent(key, Request::Create(request.clone()), None, |state| {
                let id = IntentId(format!("pi_offline_{}", Uuid::new_v4().simple()));
                let zero = Money::zero(request.amount.currency());
                let intent = PaymentIntent {
                    client_secret: format!("{id}_secret_{}", Uuid::new_v4().simple()),
                    id: id.clone(),
                    order_id: request.order_id,
                    amount: request.amount,
                    amount_capturable: zero,
                    amount_received: zero,
                    amount_refunded: zero,
                    status: IntentStatus::RequiresPaymentMethod,
                    next_action: None,
                    last_decline: None,
                    card: None,
                };
                state.intents.insert(id, intent.clone());
                Ok(Response::Intent(intent))
            })
            .await?;
        expect_intent(response, key)
    }

    async fn confirm(
        &self,
        id: &IntentId,
        method: PaymentMethod,
        key: &IdempotencyKey,
    ) -> Result<Confirmation, ProviderError> {
        let (card, summary, fingerprint) = match &method {
            PaymentMethod::Card(card) => {
                let summary = self.summary(card).await?;
                let fingerprint = MethodFingerprint::Card(summary.fingerprint.clone());
                (Some(card), Some(summary), fingerprint)
            }
            PaymentMethod::Provider(pm) => (None, None, MethodFingerprint::Provider(pm.clone())),
        };
        let request = Request::Confirm {
            intent: id.clone(),
            method: fingerprint,
        };
        let response = self
            .idempotent(key, request, Some(id), |state| {
                let intent = intent_mut(state, id)?;
                if intent.status != IntentStatus::RequiresPaymentMethod {
                    return Err(unexpected(intent, "confirm"));
                }
                let (Some(card), Some(summary)) = (card, summary.clone()) else {
                    return Err(ProviderError::InvalidPaymentMethod(
                        "the offline provider takes card numbers, not provider payment methods",
                    ));
                };
                intent.card = Some(summary);
                intent.last_decline = None;
                let confirmation = match behaviour(card) {
                    Behaviour::Authorise => {
                        intent.status = IntentStatus::RequiresCapture;
                        intent.amount_capturable = intent.amount;
                        Confirmation::Authorised(intent.clone())
                    }
                    Behaviour::Decline(code) => {
                        intent.last_decline = Some(code);
                        Confirmation::Declined {
                            code,
                            intent: intent.clone(),
                        }
                    }
                    Behaviour::RequireAction => {
                        let next_action = NextAction::UseSdk {
                            client_secret: intent.client_secret.clone(),
                        };
                        intent.status = IntentStatus::RequiresAction;
                        intent.next_action = Some(next_action.clone());
                        Confirmation::RequiresAction {
                            next_action,
                            intent: intent.clone(),
                        }
                    }
                };
                Ok(Response::Confirmation(confirmation))
            })
            .await?;
        match response {
            Response::Confirmation(c) => Ok(c),
            Response::Intent(_) | Response::Refund(_) => {
                Err(ProviderError::IdempotencyKeyReused(key.clone()))
            }
        }
    }

    async fn capture(
        &self,
        id: &IntentId,
        amount: Option<Money>,
        key: &IdempotencyKey,
    ) -> Result<PaymentIntent, ProviderError> {
        let request = Request::Capture {
            intent: id.clone(),
            amount,
        };
        let response = self
            .idempotent(key, request, Some(id), |state| {
                let intent = intent_mut(state, id)?;
                if intent.status != IntentStatus::RequiresCapture {
                    return Err(unexpected(intent, "capture"));
                }
                let captured =
                    amount_within(amount, intent.amount_capturable, intent.amount_capturable)?;
                // A partial capture releases the rest, as at Stripe.
                intent.amount_received = captured;
                intent.amount_capturable = Money::zero(captured.currency());
                intent.status = IntentStatus::Succeeded;
                Ok(Response::Intent(intent.clone()))
            })
            .await?;
        expect_intent(response, key)
    }

    async fn cancel(
        &self,
        id: &IntentId,
        key: &IdempotencyKey,
    ) -> Result<PaymentIntent, ProviderError> {
        let request = Request::Cancel { intent: id.clone() };
        let response = self
            .idempotent(key, request, Some(id), |state| {
                let intent = intent_mut(state, id)?;
                match intent.status {
                    IntentStatus::RequiresPaymentMethod
                    | IntentStatus::RequiresAction
                    | IntentStatus::RequiresCapture => {
                        intent.status = IntentStatus::Canceled;
                        intent.amount_capturable = Money::zero(intent.amount.currency());
                        intent.next_action = None;
                        Ok(Response::Intent(intent.clone()))
                    }
                    IntentStatus::Processing | IntentStatus::Succeeded | IntentStatus::Canceled => {
                        Err(unexpected(intent, "cancel"))
                    }
                }
            })
            .await?;
        expect_intent(response, key)
    }

    async fn refund(
        &self,
        id: &IntentId,
        amount: Option<Money>,
        key: &IdempotencyKey,
    ) -> Result<Refund, ProviderError> {
        let request = Request::Refund {
            intent: id.clone(),
            amount,
        };
        let response = self
            .idempotent(key, request, Some(id), |state| {
                let intent = intent_mut(state, id)?;
                if intent.status != IntentStatus::Succeeded {
                    return Err(unexpected(intent, "refund"));
                }
                let refundable = intent
                    .amount_received
                    .checked_sub(intent.amount_refunded)
                    .map_err(|_| ProviderError::InvalidAmount("refundable amount overflows"))?;
                if refundable.amount_minor() == 0 {
                    return Err(ProviderError::InvalidAmount("already fully refunded"));
                }
                let amount = amount_within(amount, refundable, refundable)?;
                intent.amount_refunded = intent
                    .amount_refunded
                    .checked_add(amount)
                    .map_err(|_| ProviderError::InvalidAmount("refunded amount overflows"))?;
                let refund = Refund {
                    id: RefundId(format!("re_offline_{}", Uuid::new_v4().simple())),
                    intent: id.clone(),
                    amount,
                    status: RefundStatus::Succeeded,
                };
                state.refunds.push(refund.clone());
                Ok(Response::Refund(refund))
            })
            .await?;
        match response {
            Response::Refund(r) => Ok(r),
            Response::Intent(_) | Response::Confirmation(_) => {
                Err(ProviderError::IdempotencyKeyReused(key.clone()))
            }
        }
    }

    async fn retrieve(&self, id: &IntentId) -> Result<PaymentIntent, ProviderError> {
        let found = match &self.backend {
            Backend::Memory(state) => Self::memory(state).intents.get(id).cloned(),
            Backend::Postgres(pool) => {
                let row: Option<sqlx::types::Json<PaymentIntent>> = sqlx::query_scalar(
                    "SELECT state FROM offline_payment_intents WHERE intent_id = $1",
                )
                .bind(&id.0)
                .fetch_optional(pool)
                .await
                .map_err(unavailable)?;
                row.map(|r| r.0)
            }
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(db) => {
                let row: Option<sqlx::types::Json<PaymentIntent>> = db
                    .scalar_optional(
                        "SELECT state FROM offline_payment_intents WHERE intent_id = $1",
                        crate::args![id.0.as_str()],
                    )
                    .await
                    .map_err(unavailable)?;
                row.map(|r| r.0)
            }
        };
        found.ok_or_else(|| ProviderError::NotFound(id.clone()))
    }
}

#[cfg(test)]
mod tests;
