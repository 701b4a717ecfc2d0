//! Applying provider webhooks to payments: deduplicated by event id, reconciled with
//! the intent's current state, serialised per payment.
//!
//! [`WebhookProcessor::process`] takes an event whose signature the caller verified:
//!
//! 1. Event types other than [`HANDLED_EVENT_TYPES`], or events about no
//!    PaymentIntent, are ignored (the endpoint answers 200 so Stripe stops sending).
//! 2. The payment is found from the intent: the provider's current intent (retrieved,
//!    never taken from the payload) names its order in `metadata.order_id`, and the
//!    payment id is `Uuid::new_v5(&order_id, b"payment")`.
//! 3. Work on one payment is serialised: an in-process lock (no database connection is
//!    held while waiting), then, on PostgreSQL, a session advisory lock keyed by the
//!    payment, so replicas of the gateway take turns too (an SQLite store has one
//!    process, so the in-process lock is all it needs).
//! 4. Under the lock: an event id already in `stripe_webhook_events` is a duplicate and
//!    does nothing. Otherwise the intent is retrieved and [`reconcile`] decides the
//!    commands, one at a time on freshly loaded state, until the payment is in line;
//!    then the event id is recorded.
//!
//! The effect and the event id are not one transaction (the commands commit through
//! the dispatcher); instead the effect is idempotent: a crash between them leaves the
//! payment in line with the intent, so the redelivery reconciles to nothing and records
//! the id. Ten concurrent deliveries of one event therefore record its effect once.

use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use emporium_domain::EventMetadata;
use emporium_domain::metadata::Actor;
use emporium_domain::payment::{Payment, PaymentError};
use uuid::Uuid;

use super::events::ParsedEvent;
use super::reconcile::{Reconciling, in_line, payment_id_for, reconcile};
use super::{PaymentProvider, ProviderError};
use crate::args;
use crate::dispatch::{CommandError, Dispatcher, Loading};
use crate::sql::Db;
use crate::store::AnyStore;

/// The event types that can change a payment; any other is acknowledged and ignored.
pub const HANDLED_EVENT_TYPES: [&str; 6] = [
    "payment_intent.succeeded",
    "payment_intent.amount_capturable_updated",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "payment_intent.requires_action",
    "charge.refunded",
];

/// Turns on one payment within this process (beside the advisory lock across them).
const STRIPES: usize = 64;

/// What became of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Reconciled: this many commands recorded something (0 when the payment was in
    /// line already).
    Processed {
        /// The payment.
        payment_id: Uuid,
        /// Its order (the intent's), whose checkout may move on now.
        order_id: Uuid,
        /// Commands that recorded events.
        changes: usize,
    },
    /// The event id was processed before.
    Duplicate,
    /// Not about a payment this platform handles.
    Ignored(&'static str),
}

/// Why an event could not be processed now; the endpoint answers 5xx and the provider
/// delivers it again later.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The provider could not be asked for the intent.
    #[error("payment provider unavailable")]
    Provider(#[source] ProviderError),
    /// The payment refused a reconciling command, or the store failed.
    #[error("could not reconcile payment {payment_id}")]
    Reconcile {
        /// The payment.
        payment_id: Uuid,
        /// Why.
        #[source]
        source: anyhow::Error,
    },
    /// The database failed.
    #[error("webhook bookkeeping failed")]
    Unexpected(#[from] anyhow::Error),
}

/// Applies verified webhook events; see the module documentation.
pub struct WebhookProcessor {
    /// The event store's database, where `stripe_webhook_events` lives.
    db: Db,
    provider: Arc<dyn PaymentProvider>,
    payments: Dispatcher<Payment, AnyStore>,
    turns: Vec<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for WebhookProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookProcessor")
            .field("provider", &self.provider.name())
            .finish_non_exhaustive()
    }
}

/// Bounded, so a persistent conflict cannot spin.
const MAX_STEPS: usize = 16;

impl WebhookProcessor {
    /// A processor dispatching to `store` (its processed events kept in the store's
    /// database).
    #[must_use]
    pub fn new(store: AnyStore, provider: Arc<dyn PaymentProvider>) -> Self {
        Self {
            db: store.db(),
            payments: Dispatcher::over(store, Loading::Replay),
            provider,
            turns: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }

    /// Processes one verified event at `now`.
    ///
    /// # Errors
    /// [`ProcessError`]: the provider or the database is unavailable, or the payment
    /// refused a command; nothing is marked processed, so a redelivery tries again.
    #[tracing::instrument(skip_all, fields(event_id = %event.id, event_type = %event.event_type))]
    pub async fn process(
        &self,
        event: &ParsedEvent,
        now: DateTime<Utc>,
    ) -> Result<Outcome, ProcessError> {
        if !HANDLED_EVENT_TYPES.contains(&event.event_type.as_str()) {
            return Ok(Outcome::Ignored("event type not handled"));
        }
        let Some(intent_id) = &event.intent else {
            return Ok(Outcome::Ignored("event names no payment intent"));
        };
        if self.seen(&event.id).await? {
            return Ok(Outcome::Duplicate);
        }
        let intent = match self.provider.retrieve(intent_id).await {
            Ok(intent) => intent,
            Err(ProviderError::NotFound(_)) => {
                self.record(event, None, "intent not found").await?;
                return Ok(Outcome::Ignored("intent not found at the provider"));
            }
            Err(e) => return Err(ProcessError::Provider(e)),
        };
        let payment_id = payment_id_for(intent.order_id);
        let _turn = self.turn(payment_id).lock().await;
        match &self.db {
            Db::Postgres(pool) => {
                self.locked_on_postgres(pool, event, payment_id, intent_id, now)
                    .await
            }
            // One process owns an SQLite store: the in-process turn is the lock.
            #[cfg(feature = "sqlite")]
            Db::Sqlite(_) => self.reconciled(event, payment_id, intent_id, now).await,
        }
    }

    /// [`Self::reconciled`] under the payment's advisory lock, so replicas take turns.
    async fn locked_on_postgres(
        &self,
        pool: &sqlx::PgPool,
        event: &ParsedEvent,
        payment_id: Uuid,
        intent_id: &super::IntentId,
        now: DateTime<Utc>,
    ) -> Result<Outcome, ProcessError> {
        let mut lock = pool
            .acquire()
            .await
            .context("acquire a connection for the payment lock")?;
        sqlx::query("SELECT pg_advisory_lock(hashtextextended($1, 7002))")
            .bind(payment_id.to_string())
            .execute(&mut *lock)
            .await
            .context("lock the payment")?;
        let result = self.reconciled(event, payment_id, intent_id, now).await;
        // Unlocked on every path; a failed unlock closes the session, which unlocks.
        if sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 7002))")
            .bind(payment_id.to_string())
            .execute(&mut *lock)
            .await
            .is_err()
        {
            drop(lock.detach());
        }
        result
    }

    /// The locked part: dedupe, reconcile, record.
    async fn reconciled(
        &self,
        event: &ParsedEvent,
        payment_id: Uuid,
        intent_id: &super::IntentId,
        now: DateTime<Utc>,
    ) -> Result<Outcome, ProcessError> {
        if self.seen(&event.id).await? {
            return Ok(Outcome::Duplicate);
        }
        // Retrieved again under the lock: what the provider holds now is the truth.
        let intent = self
            .provider
            .retrieve(intent_id)
            .await
            .map_err(ProcessError::Provider)?;
        let aggregate_id = payment_id.to_string();
        let command_id = Uuid::new_v5(
            &Uuid::NAMESPACE_OID,
            format!("stripe:{}", event.id).as_bytes(),
        );
        let metadata =
            EventMetadata::new(command_id, Actor::System("stripe-webhook".to_owned()), now);
        let reconciling = Reconciling {
            provider: self.provider.name(),
            at: now,
        };
        let failed = |source: anyhow::Error| ProcessError::Reconcile { payment_id, source };
        let mut changes = 0;
        for _ in 0..MAX_STEPS {
            let payment = self
                .payments
                .load(&aggregate_id)
                .await
                .map_err(|e| failed(command_error(e)))?;
            if let Some(recorded) = payment.provider_intent_id()
                && recorded != intent.id.0
            {
                tracing::warn!(%payment_id, recorded, intent = %intent.id, "webhook for another intent than the payment's; ignored");
                self.record(event, Some(payment_id), "another intent")
                    .await?;
                return Ok(Outcome::Ignored("the payment has another intent"));
            }
            // One step at a time, each decided on fresh state.
            let Some(command) = reconcile(&payment, &intent, reconciling).into_iter().next() else {
                if !in_line(&payment, &intent) {
                    tracing::warn!(%payment_id, intent = %intent.id, intent_status = %intent.status, payment_status = ?payment.status(), "payment cannot follow its intent");
                }
                self.record(event, Some(payment_id), "processed").await?;
                return Ok(Outcome::Processed {
                    payment_id,
                    order_id: intent.order_id,
                    changes,
                });
            };
            match self
                .payments
                .execute(&aggregate_id, command, &metadata)
                .await
            {
                Ok(committed) => changes += usize::from(committed.events > 0),
                // Another process moved the payment: decide again.
                Err(CommandError::Conflict { .. }) => {}
                Err(e) => return Err(failed(command_error(e))),
            }
        }
        Err(failed(anyhow::anyhow!(
            "payment did not settle after {MAX_STEPS} steps"
        )))
    }

    fn turn(&self, payment_id: Uuid) -> &tokio::sync::Mutex<()> {
        let index = usize::from(payment_id.as_bytes()[15]) % STRIPES;
        &self.turns[index]
    }

    async fn seen(&self, event_id: &str) -> Result<bool, ProcessError> {
        let seen: Option<i32> = self
            .db
            .scalar_optional(
                "SELECT 1 FROM stripe_webhook_events WHERE event_id = $1",
                args![event_id],
            )
            .await
            .context("read processed webhook events")?;
        Ok(seen.is_some())
    }

    async fn record(
        &self,
        event: &ParsedEvent,
        payment_id: Option<Uuid>,
        outcome: &str,
    ) -> Result<(), ProcessError> {
        self.db
            .execute(
                "INSERT INTO stripe_webhook_events (event_id, event_type, intent_id, payment_id, outcome)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING",
                args![
                    event.id.as_str(),
                    event.event_type.as_str(),
                    event.intent.as_ref().map(|i| i.0.clone()),
                    payment_id,
                    outcome,
                ],
            )
            .await
            .context("record a processed webhook event")?;
        Ok(())
    }
}

fn command_error(e: CommandError<PaymentError>) -> anyhow::Error {
    match e {
        CommandError::Rejected(rule) => {
            anyhow::Error::new(rule).context("payment refused the reconciling command")
        }
        CommandError::Unexpected(e) => e,
        conflict @ CommandError::Conflict { .. } => anyhow::anyhow!("{conflict}"),
    }
}
