//! The event backbone run inside the gateway process: the relay and one runner per
//! projection. `emporium serve` and the tests get it through
//! [`Application`](crate::app::Application) when `backbone.in_process` is on;
//! `emporium project` reuses the runner spawning.

use std::sync::Arc;

use async_nats::jetstream;
use emporium_projections::bus::StreamLayout;
use emporium_projections::projection::{
    self, Projection, ProjectionRunner, RunError, RunnerConfig,
};
use emporium_projections::relay::{Relay, RelayWake};
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Settings;

/// The relay and the projection runners, running until [`InProcessBackbone::stop`].
#[derive(Debug)]
pub(crate) struct InProcessBackbone {
    stop: watch::Sender<bool>,
    relay: JoinHandle<anyhow::Result<()>>,
    runners: Vec<(&'static str, JoinHandle<()>)>,
}

impl InProcessBackbone {
    /// Spawns the relay (woken by `wake` as well as by its poll) and every
    /// projection's runner. They get a pool of their own (one connection per runner,
    /// the relay's lock session and one spare), so a busy storefront cannot starve
    /// them, nor they it.
    ///
    /// # Errors
    /// When the stream prefix is invalid or the database URL malformed.
    pub(crate) fn spawn(
        settings: &Settings,
        nats: &async_nats::Client,
        wake: RelayWake,
    ) -> anyhow::Result<Self> {
        let (layout, relay_config) = settings.nats.relay()?;
        let projections = projection::all();
        let connections = u32::try_from(projections.len())
            .unwrap_or(u32::MAX)
            .saturating_add(2);
        let pool =
            emporium_commands::db::connect_lazy(settings.database.url.expose(), connections)?;
        let (stop, stop_rx) = watch::channel(false);
        let runners = spawn_runners(
            &pool,
            nats,
            &layout,
            projections,
            &settings.backbone.runner_config(),
            &stop_rx,
        );
        let relay =
            Relay::new(pool, jetstream::new(nats.clone()), layout, relay_config).with_wake(wake);
        let relay = tokio::spawn(relay.run(stopped(stop_rx)));
        Ok(Self {
            stop,
            relay,
            runners,
        })
    }

    /// Adds the e-mail sender (its own durable consumer), stopped with the rest.
    pub(crate) fn spawn_email_sender(
        &mut self,
        sender: crate::notify::EmailSender,
        nats: &async_nats::Client,
        layout: StreamLayout,
    ) {
        let stop = self.stop.subscribe();
        let jetstream = jetstream::new(nats.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = sender.run(jetstream, layout, stopped(stop)).await {
                tracing::error!(
                    error_code = "email_sender_failed",
                    error = format!("{e:#}"),
                    "e-mail sender ended"
                );
            }
        });
        self.runners.push(("email_sender", task));
    }

    /// Tells every part to stop and waits for them.
    ///
    /// # Errors
    /// When the relay failed.
    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        self.stop.send_replace(true);
        join_runners(self.runners).await;
        self.relay.await.map_err(anyhow::Error::from)?
    }
}

/// The embedded mode's backbone: the projection runners over the store's own feed
/// (no relay, no stream) and, when mails are on, the e-mail sender over the same
/// feed, running until [`EmbeddedBackbone::stop`].
#[cfg(feature = "sqlite")]
#[derive(Debug)]
pub(crate) struct EmbeddedBackbone {
    projections: emporium_projections::projection::embedded::EmbeddedProjections,
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

#[cfg(feature = "sqlite")]
impl EmbeddedBackbone {
    /// Builds (when needed) every projection's read model in `read` from the store
    /// whose pool is `store` and starts their runners.
    ///
    /// # Errors
    /// When a projection cannot start.
    pub(crate) async fn start(
        store: sqlx::SqlitePool,
        read: emporium_projections::projection::embedded::ReadDb,
    ) -> anyhow::Result<Self> {
        use emporium_projections::projection::embedded::{EmbeddedConfig, EmbeddedProjections};
        let projections =
            EmbeddedProjections::start(store, read, projection::all(), EmbeddedConfig::default())
                .await?;
        if !projections.skipped().is_empty() {
            anyhow::bail!(
                "projections without an embedded form: {}",
                projections.skipped().join(", ")
            );
        }
        Ok(Self {
            projections,
            stop: watch::channel(false).0,
            tasks: Vec::new(),
        })
    }

    /// The runners' projections.
    pub(crate) fn projections(
        &self,
    ) -> &emporium_projections::projection::embedded::EmbeddedProjections {
        &self.projections
    }

    /// Runs `sender` over the store's feed, woken with the runners.
    pub(crate) fn spawn_email_sender(
        &mut self,
        sender: crate::notify::EmailSender,
        store: sqlx::SqlitePool,
    ) {
        let stop = self.stop.subscribe();
        let feed = emporium_projections::feed::SqliteFeed::new(store);
        let wake = self.projections.wake_handle();
        let task = tokio::spawn(async move {
            if let Err(e) = sender.run_embedded(feed, wake, stopped(stop)).await {
                tracing::error!(
                    error_code = "email_sender_failed",
                    error = format!("{e:#}"),
                    "e-mail sender ended"
                );
            }
        });
        self.tasks.push(("email_sender", task));
    }

    /// Stops the sender and the runners (a batch in flight rolls back) and waits.
    pub(crate) async fn stop(self) {
        self.stop.send_replace(true);
        join_runners(self.tasks).await;
        for (name, ended) in self.projections.shutdown().await {
            if let Err(e) = ended {
                tracing::error!(
                    projection = name,
                    error = format!("{:#}", anyhow::Error::from(e)),
                    "projection runner ended with an error"
                );
            }
        }
    }
}

/// Resolves once `stop` turns true.
pub(crate) async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Spawns one runner per projection; each stops once `stop` turns true. A runner that
/// ends early (a newer version is live) is logged and the others go on; a poison
/// event never ends a runner: it logs the event and waits, stopped, for
/// `emporium projections retry`.
pub(crate) fn spawn_runners(
    pool: &PgPool,
    nats: &async_nats::Client,
    layout: &StreamLayout,
    projections: Vec<Arc<dyn Projection>>,
    config: &RunnerConfig,
    stop: &watch::Receiver<bool>,
) -> Vec<(&'static str, JoinHandle<()>)> {
    let jetstream = jetstream::new(nats.clone());
    projections
        .into_iter()
        .map(|p| {
            let name = p.name();
            let runner = ProjectionRunner::new(
                pool.clone(),
                jetstream.clone(),
                layout.clone(),
                p,
                config.clone(),
            );
            let stop = stop.clone();
            let task = tokio::spawn(async move {
                if let Err(e) = runner.run(stopped(stop)).await {
                    let error_code = match &e {
                        RunError::Superseded { .. } => "projection_superseded",
                        RunError::Stopped { .. } => "projection_poison_event",
                        RunError::Unexpected(_) => "projection_failed",
                    };
                    tracing::error!(
                        projection = name,
                        error_code,
                        error = format!("{:#}", anyhow::Error::from(e)),
                        "projection runner ended"
                    );
                }
            });
            (name, task)
        })
        .collect()
}

/// Waits for runners told to stop; a panic is logged, not propagated.
pub(crate) async fn join_runners(runners: Vec<(&'static str, JoinHandle<()>)>) {
    for (name, task) in runners {
        if let Err(e) = task.await {
            tracing::error!(
                projection = name,
                error_code = "projection_panicked",
                error = %e,
                "projection runner panicked"
            );
        }
    }
}

/// The checkout driver: every `interval` (real time) it sweeps the checkouts at the
/// application clock's "now": unpaid orders whose reservation expired are cancelled
/// and compensated, and open checkouts that are due (a crash mid-way, a provider
/// outage, a 3-D Secure intent to reconcile) are resumed. Stops once `stop` turns
/// true; a failing sweep is logged and the next one runs.
pub(crate) fn spawn_checkout_driver(
    checkouts: Arc<emporium_commands::checkout::Checkouts>,
    clock: Arc<dyn crate::clock::Clock>,
    interval: std::time::Duration,
    stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stopped = stopped(stop);
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                () = &mut stopped => break,
                _ = ticks.tick() => {
                    match checkouts.sweep(clock.now()).await {
                        Ok(report) if report != Default::default() => {
                            tracing::info!(
                                expired = report.expired,
                                resumed = report.resumed,
                                failed = report.failed,
                                "checkout sweep"
                            );
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(
                            error_code = "checkout_sweep_failed",
                            error = format!("{e:#}"),
                            "checkout sweep failed"
                        ),
                    }
                }
            }
        }
    })
}
