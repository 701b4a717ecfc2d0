//! Building and running the HTTP server.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::sync::atomic::AtomicU64;

use anyhow::Context;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;
use tokio::net::TcpListener;

use crate::auth::Accounts;
use crate::auth::password::Passwords;
use crate::backbone::InProcessBackbone;
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::graphql::{ApiSchema, SchemaOptions, build_schema};
use crate::mailer::Mailer;
use crate::ratelimit::{InMemoryRateLimiter, RateLimiter, RedisRateLimiter};
use crate::shop::Shop;
use crate::{health, http, telemetry};
use emporium_commands::AnyStore;
use emporium_commands::sql::Db;

/// What the platform stores its data in and moves its events through.
#[derive(Debug, Clone)]
pub(crate) enum Backing {
    /// PostgreSQL (event store, read models, the gateway's tables) and NATS.
    Distributed {
        pool: PgPool,
        nats: async_nats::Client,
    },
    /// The embedded mode's files: the event store, the read models, the gateway's
    /// own tables.
    #[cfg(feature = "sqlite")]
    Embedded {
        store: emporium_commands::store::SqliteStore,
        read: sqlx::SqlitePool,
        own: sqlx::SqlitePool,
    },
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub(crate) backing: Backing,
    pub(crate) schema: ApiSchema,
    pub(crate) metrics: PrometheusHandle,
    pub(crate) settings: Arc<Settings>,
    pub(crate) accounts: Arc<Accounts>,
    /// Answers to public catalogue queries (see `graphql::cache`).
    pub(crate) catalog_cache: Arc<crate::graphql::CatalogCache>,
    /// Parsed documents by query text (see `graphql::parsed`).
    pub(crate) parsed: Arc<crate::graphql::parsed::ParsedQueries>,
}

/// The ports an embedder (or a test) may replace; the defaults are the real
/// adapters the settings select.
#[derive(Debug, Clone)]
pub struct Ports {
    /// The source of "now".
    pub clock: Arc<dyn Clock>,
    /// Outgoing mail; `None` picks from `settings.mail`.
    pub mailer: Option<Arc<dyn Mailer>>,
    /// The payment provider; `None` picks from the settings (`payments::provider`).
    pub payments: Option<Arc<dyn emporium_commands::payments::PaymentProvider>>,
}

impl Default for Ports {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            mailer: None,
            payments: None,
        }
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// How long `build` waits for the in-process runners to install their read models.
const INSTALL_WAIT: Duration = Duration::from_secs(30);

/// Waits (at most `limit`) until every projection has installed its read model (its
/// checkpoint is announced), as the embedded mode's start does, so no query meets a
/// view its runner has not built yet. A dead PostgreSQL or a slow build ends the wait
/// with a warning: the app then serves, and `/readyz` and the reads say what is wrong.
async fn installed(pool: &PgPool, limit: Duration) {
    let started = Instant::now();
    let watch = match emporium_projections::projection::CheckpointWatch::start(pool.clone()).await {
        Ok(watch) => watch,
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "read models not awaited");
            return;
        }
    };
    for projection in emporium_projections::projection::all() {
        let name = projection.name();
        let left = limit.saturating_sub(started.elapsed());
        let start = emporium_projections::envelope::CommitPosition::START;
        if watch.wait_for(name, start, left).await.is_err() {
            tracing::warn!(
                projection = name,
                waited_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                "read model not installed yet; serving anyway"
            );
        }
    }
}

/// The backbone running beside the server.
#[derive(Debug)]
enum Backbone {
    /// The relay and the JetStream projection runners.
    InProcess(InProcessBackbone),
    /// The embedded runners (and e-mail sender) over the store's feed.
    #[cfg(feature = "sqlite")]
    Embedded(crate::backbone::EmbeddedBackbone),
}

/// What `build` opened: the stores, the read models and how a mutation gets its
/// events to them.
struct Opened {
    backing: Backing,
    /// Where commands go.
    store: AnyStore,
    /// The read models (reads and read-your-writes).
    read: Db,
    /// The gateway's own tables.
    own: Db,
    /// PostgreSQL for the code that has no other form yet; in the embedded mode a
    /// lazy pool that never connects (such code fails instead of reaching a server).
    pool: PgPool,
    relay_waker: crate::shop::RelayWaker,
    relay_wake: emporium_projections::relay::RelayWake,
    #[cfg(feature = "sqlite")]
    embedded: Option<crate::backbone::EmbeddedBackbone>,
}

/// What the embedded mode's demo seeding needs of the running backbone: the
/// projections to wait for, how far they are, and how to wake them.
#[cfg(feature = "sqlite")]
#[derive(Debug, Clone)]
struct EmbeddedReadiness {
    store: sqlx::SqlitePool,
    watch: emporium_projections::projection::CheckpointWatch,
    wake: emporium_projections::projection::embedded::WakeHandle,
    projections: Vec<&'static str>,
}

/// What [`Application::demo_shop`] found and did about the demo shop.
pub enum DemoShop {
    /// Not asked for: the distributed mode, or `storage.seed_demo` off.
    Off,
    /// The store already holds events (a restart, or a shop of its own): nothing is
    /// seeded. `demo_account`: whether the demo login exists.
    Kept {
        /// The demo account exists.
        demo_account: bool,
    },
    /// Seeding to do through the running store while the server serves (poll it
    /// beside [`Application::run_until`]: it is not `Send`, so not a task of its own);
    /// it ends once every read model holds the seed (or has been waited for as long as
    /// it may).
    Seeding(std::pin::Pin<Box<dyn Future<Output = anyhow::Result<crate::seed::SeedSummary>>>>),
}

impl std::fmt::Debug for DemoShop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Off => f.write_str("Off"),
            Self::Kept { demo_account } => f
                .debug_struct("Kept")
                .field("demo_account", demo_account)
                .finish(),
            Self::Seeding(_) => f.write_str("Seeding"),
        }
    }
}

/// A bound, not yet serving, gateway.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    store: AnyStore,
    seed_demo: bool,
    #[cfg(feature = "sqlite")]
    readiness: Option<EmbeddedReadiness>,
    router: Router,
    grace: Duration,
    backing: Backing,
    password_verifications: Arc<AtomicU64>,
    backbone: Option<Backbone>,
    checkouts: Arc<emporium_commands::checkout::Checkouts>,
    checkout_driver: Option<(
        tokio::sync::watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    )>,
}

impl Application {
    /// Opens what `settings.storage` selects: PostgreSQL and NATS (lazily: a dead
    /// dependency makes the app not ready, not absent), optionally migrated; or the
    /// embedded mode's files under `storage.data_dir` (created and migrated, their read
    /// models built). Then binds the listener.
    ///
    /// # Errors
    /// When the listener cannot bind, a URL is malformed, or migrations fail.
    pub async fn build(settings: Settings, migrate: bool) -> anyhow::Result<Self> {
        Self::build_with(settings, migrate, Ports::default()).await
    }

    async fn open_distributed(settings: &Settings, migrate: bool) -> anyhow::Result<Opened> {
        let pool = emporium_commands::db::connect_lazy(
            settings.database.url.expose(),
            settings.database.max_connections,
        )?;
        if migrate {
            crate::db::prepare(settings.database.url.expose(), &pool).await?;
        }
        let nats =
            emporium_projections::bus::connect(settings.nats.url.expose(), Duration::from_secs(2))
                .await?;
        // Mutations wake the relay in memory when it runs here, else over PostgreSQL.
        let relay_wake = emporium_projections::relay::RelayWake::new();
        let relay_waker = if settings.backbone.in_process {
            crate::shop::RelayWaker::InProcess(relay_wake.clone())
        } else {
            crate::shop::RelayWaker::Postgres
        };
        Ok(Opened {
            store: AnyStore::from(emporium_commands::PgStore::new(pool.clone())),
            read: Db::Postgres(pool.clone()),
            own: Db::Postgres(pool.clone()),
            backing: Backing::Distributed {
                pool: pool.clone(),
                nats,
            },
            pool,
            relay_waker,
            relay_wake,
            #[cfg(feature = "sqlite")]
            embedded: None,
        })
    }

    #[cfg(feature = "sqlite")]
    async fn open_embedded(settings: &Settings) -> anyhow::Result<Opened> {
        let dir = &settings.storage.data_dir;
        let store = emporium_commands::store::SqliteStore::open(&dir.join("events.db")).await?;
        let read =
            emporium_projections::projection::embedded::ReadDb::open(&dir.join("read.db")).await?;
        let own = crate::db::open_local(&dir.join("gateway.db")).await?;
        let embedded =
            crate::backbone::EmbeddedBackbone::start(store.pool().clone(), read.clone()).await?;
        let relay_waker = crate::shop::RelayWaker::Embedded(embedded.projections().wake_handle());
        // Nothing here talks to PostgreSQL; a port nobody listens on makes any
        // leftover use fail at once rather than reach a server.
        let pool = emporium_commands::db::connect_lazy("postgres://embedded.invalid:1/none", 1)?;
        Ok(Opened {
            store: AnyStore::from(store.clone()),
            read: read.db(),
            own: Db::Sqlite(own.clone()),
            backing: Backing::Embedded {
                store,
                read: read.pool().clone(),
                own,
            },
            pool,
            relay_waker,
            relay_wake: emporium_projections::relay::RelayWake::new(),
            embedded: Some(embedded),
        })
    }

    /// [`Application::build`] with replaced ports.
    ///
    /// # Errors
    /// When the listener cannot bind, a URL is malformed, or migrations fail.
    pub async fn build_with(
        settings: Settings,
        migrate: bool,
        ports: Ports,
    ) -> anyhow::Result<Self> {
        let opened = match settings.storage.mode {
            #[cfg(feature = "sqlite")]
            crate::config::StorageMode::Embedded => Self::open_embedded(&settings).await?,
            #[cfg(not(feature = "sqlite"))]
            crate::config::StorageMode::Embedded => {
                anyhow::bail!("storage.mode = \"embedded\" needs a build with the `sqlite` feature")
            }
            crate::config::StorageMode::Distributed | crate::config::StorageMode::Auto => {
                Self::open_distributed(&settings, migrate).await?
            }
        };
        #[cfg(feature = "sqlite")]
        let Opened {
            backing,
            store,
            read,
            own,
            pool,
            relay_waker,
            relay_wake,
            embedded,
        } = opened;
        #[cfg(not(feature = "sqlite"))]
        let Opened {
            backing,
            store,
            read,
            own,
            pool,
            relay_waker,
            relay_wake,
        } = opened;
        let addr = SocketAddr::new(settings.http.host, settings.http.port);
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("bind http listener on {addr}"))?;
        let settings = Arc::new(settings);
        let limiter: Arc<dyn RateLimiter> = match &settings.redis.url {
            Some(url) => Arc::new(RedisRateLimiter::new(
                url.expose(),
                &settings.redis.key_prefix,
            )?),
            None => Arc::new(InMemoryRateLimiter::default()),
        };
        let mailer = match ports.mailer {
            Some(mailer) => mailer,
            None => crate::mailer::from_settings(&settings.mail, settings.env)?,
        };
        // The payment provider the settings select (the one constructor; the checkout
        // takes it from here too).
        let payment_provider = match ports.payments {
            Some(provider) => provider,
            None => crate::payments::provider(&settings, &store)?,
        };
        let checkouts = crate::shop::checkout::checkouts(
            store.clone(),
            read.clone(),
            &settings,
            Arc::clone(&payment_provider),
        )?;
        let webhooks = crate::payments::routes(
            &settings,
            store.clone(),
            Arc::clone(&payment_provider),
            Arc::clone(&ports.clock),
            Some(Arc::clone(&checkouts)),
        );
        let email_sender = settings.notifications.email.then(|| {
            crate::notify::EmailSender::new(
                store.clone(),
                own.clone(),
                Arc::clone(&mailer),
                Arc::clone(&ports.clock),
                settings.notifications.clone(),
            )
        });
        let parallelism = std::thread::available_parallelism().map_or(2, usize::from);
        let passwords = tokio::task::spawn_blocking(move || Passwords::new(parallelism * 2))
            .await
            .context("start password hasher")??;
        let password_verifications = passwords.verifications();
        let mut shop = Shop::new(
            store.clone(),
            pool.clone(),
            read.clone(),
            Arc::clone(&ports.clock),
            &settings,
        )?
        .with_checkouts(Arc::clone(&checkouts))
        .with_relay_waker(relay_waker);
        #[cfg(feature = "sqlite")]
        if let (Some(embedded), Backing::Embedded { store, read, .. }) = (&embedded, &backing) {
            let watch = embedded.projections().watch().clone();
            shop =
                shop.with_checkpoint_watch(watch.clone())
                    .with_live(crate::shop::Live::embedded(
                        store.pool().clone(),
                        read.clone(),
                        watch,
                    ));
        }
        let shop = Arc::new(shop);
        let catalog_cache = Arc::new(crate::graphql::CatalogCache::new(
            settings.shop.catalog_cache_bytes,
            Some(Arc::clone(&shop)),
        ));
        let checkout_driver = settings.checkout.driver.then(|| {
            let (stop, stop_rx) = tokio::sync::watch::channel(false);
            let task = crate::backbone::spawn_checkout_driver(
                Arc::clone(&checkouts),
                Arc::clone(&ports.clock),
                Duration::from_millis(settings.checkout.sweep_interval_ms.max(10)),
                stop_rx,
            );
            (stop, task)
        });
        let accounts = Arc::new(Accounts::new(
            store.clone(),
            own,
            passwords,
            mailer,
            limiter,
            ports.clock,
            Arc::clone(&settings),
        ));
        let schema = build_schema(
            &SchemaOptions {
                introspection: settings.introspection(),
                suggestions: settings.suggestions(),
                limits: settings.limits.clone(),
            },
            Some(Arc::clone(&accounts)),
            Some(shop),
        );
        let state = AppState {
            backing: backing.clone(),
            schema,
            metrics: telemetry::metrics_handle(),
            settings,
            accounts,
            catalog_cache,
            parsed: Arc::default(),
        };
        let grace = Duration::from_secs(state.settings.http.shutdown_grace_seconds);
        // The backbone beside the server: what makes the read models (and so
        // read-your-writes) work in one process.
        #[cfg(feature = "sqlite")]
        let readiness = match (&embedded, &backing) {
            (Some(embedded), Backing::Embedded { store, .. }) => Some(EmbeddedReadiness {
                store: store.pool().clone(),
                watch: embedded.projections().watch().clone(),
                wake: embedded.projections().wake_handle(),
                projections: embedded.projections().running(),
            }),
            _ => None,
        };
        let seed_demo = state.settings.storage.embedded() && state.settings.storage.seed_demo;
        let backbone = match &backing {
            Backing::Distributed { nats, .. } if state.settings.backbone.in_process => {
                let mut backbone = InProcessBackbone::spawn(&state.settings, nats, relay_wake)?;
                if let Some(sender) = email_sender {
                    backbone.spawn_email_sender(sender, nats, state.settings.nats.relay()?.0);
                }
                Some(Backbone::InProcess(backbone))
            }
            Backing::Distributed { .. } => None,
            #[cfg(feature = "sqlite")]
            Backing::Embedded { store, .. } => embedded.map(|mut embedded| {
                if let Some(sender) = email_sender {
                    embedded.spawn_email_sender(sender, store.pool().clone());
                }
                Backbone::Embedded(embedded)
            }),
        };
        if let (Some(Backbone::InProcess(_)), Backing::Distributed { pool, nats }) =
            (&backbone, &backing)
            && emporium_projections::bus::is_connected(nats)
        {
            installed(pool, INSTALL_WAIT).await;
        }
        Ok(Self {
            listener,
            store,
            seed_demo,
            #[cfg(feature = "sqlite")]
            readiness,
            router: router(state, webhooks),
            grace,
            backing,
            password_verifications,
            backbone,
            checkouts,
            checkout_driver,
        })
    }

    /// The checkout process manager the `checkout` mutation and the checkout driver
    /// share (one provider, one per-order lock), for code embedding the platform (the
    /// checkout bench): a second `Checkouts` with its own provider would race the
    /// driver on the same checkouts with intents the other cannot see.
    #[must_use]
    pub fn checkouts(&self) -> Arc<emporium_commands::checkout::Checkouts> {
        Arc::clone(&self.checkouts)
    }

    /// In the embedded mode with `storage.seed_demo` on: when the event store holds no
    /// event (a first start), starts seeding the demo shop of `size` through the
    /// running store (the server serves meanwhile: listings fill as the read models
    /// follow); the seeding wakes the projection runners and ends once each has applied
    /// the seed's last event (waiting at most `settle` for each).
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn demo_shop(
        &self,
        size: crate::seed::SeedSize,
        settle: Duration,
    ) -> anyhow::Result<DemoShop> {
        #[cfg(feature = "sqlite")]
        if let (true, Some(readiness)) = (self.seed_demo, &self.readiness) {
            use emporium_commands::EventStore as _;
            let seeder = crate::seed::Seeder::new(self.store.clone(), size);
            if !self
                .store
                .is_empty()
                .await
                .context("look into the event store")?
            {
                let demo_account = seeder.already_seeded().await?;
                return Ok(DemoShop::Kept { demo_account });
            }
            let readiness = readiness.clone();
            return Ok(DemoShop::Seeding(Box::pin(async move {
                let summary = match seeder.run().await? {
                    crate::seed::SeedOutcome::Seeded(summary) => summary,
                    crate::seed::SeedOutcome::AlreadySeeded => {
                        anyhow::bail!("the demo shop appeared while it was being seeded")
                    }
                };
                readiness.settle(settle).await?;
                Ok(summary)
            })));
        }
        let _ = (size, settle, self.seed_demo, &self.store);
        Ok(DemoShop::Off)
    }

    /// The PostgreSQL pool the gateway uses, for parts run beside it (the relay);
    /// `None` in the embedded mode.
    #[must_use]
    pub fn pool(&self) -> Option<&PgPool> {
        match &self.backing {
            Backing::Distributed { pool, .. } => Some(pool),
            #[cfg(feature = "sqlite")]
            Backing::Embedded { .. } => None,
        }
    }

    /// The event store the platform's commands go to (embedders and tests drive
    /// commands of their own through it; in the embedded mode it is the only handle
    /// on the store's file, which one process owns).
    #[must_use]
    pub fn store(&self) -> &AnyStore {
        &self.store
    }

    /// The read models' database.
    #[must_use]
    pub fn read_db(&self) -> Db {
        match &self.backing {
            Backing::Distributed { pool, .. } => Db::Postgres(pool.clone()),
            #[cfg(feature = "sqlite")]
            Backing::Embedded { read, .. } => Db::Sqlite(read.clone()),
        }
    }

    /// The database of the gateway's own tables (sessions, tokens, mail ledger).
    #[must_use]
    pub fn own_db(&self) -> Db {
        match &self.backing {
            Backing::Distributed { pool, .. } => Db::Postgres(pool.clone()),
            #[cfg(feature = "sqlite")]
            Backing::Embedded { own, .. } => Db::Sqlite(own.clone()),
        }
    }

    /// The embedded runners' checkpoint watch (read-your-writes for code beside the
    /// platform); `None` in the distributed mode, where one is started over
    /// PostgreSQL (`CheckpointWatch::start`).
    #[must_use]
    pub fn checkpoint_watch(&self) -> Option<emporium_projections::projection::CheckpointWatch> {
        match &self.backbone {
            #[cfg(feature = "sqlite")]
            Some(Backbone::Embedded(embedded)) => Some(embedded.projections().watch().clone()),
            _ => None,
        }
    }

    /// The NATS client the gateway uses; `None` in the embedded mode.
    #[must_use]
    pub fn nats(&self) -> Option<&async_nats::Client> {
        match &self.backing {
            Backing::Distributed { nats, .. } => Some(nats),
            #[cfg(feature = "sqlite")]
            Backing::Embedded { .. } => None,
        }
    }

    /// Password verifications this application has run (each costs an argon2id
    /// hash): what the attack tests count.
    #[must_use]
    pub fn password_verifications(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.password_verifications)
    }

    /// The address actually bound (useful with port 0).
    ///
    /// # Errors
    /// When the socket has no local address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then stops accepting and lets in-flight
    /// requests finish for up to the configured grace period; the in-process relay and
    /// projection runners (if any) stop after the server.
    ///
    /// # Errors
    /// When the server or the relay fails.
    pub async fn run_until(
        mut self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let backbone = self.backbone.take();
        let checkout_driver = self.checkout_driver.take();
        let served = self.serve_until(shutdown).await;
        if let Some((stop, task)) = checkout_driver {
            stop.send_replace(true);
            if let Err(e) = task.await {
                tracing::error!(error = %e, "checkout driver panicked");
            }
        }
        match backbone {
            Some(Backbone::InProcess(backbone)) => backbone.stop().await?,
            #[cfg(feature = "sqlite")]
            Some(Backbone::Embedded(backbone)) => backbone.stop().await,
            None => {}
        }
        served
    }

    async fn serve_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        let server = axum::serve(self.listener, service).with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            let _ = stopping_tx.send(());
        });
        let grace = self.grace;
        let deadline = async move {
            if stopping_rx.await.is_ok() {
                tokio::time::sleep(grace).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            result = server => result.context("http server"),
            () = deadline => {
                tracing::warn!(grace_seconds = grace.as_secs(), "grace period elapsed; dropping remaining requests");
                Ok(())
            }
        }
    }
}

#[cfg(feature = "sqlite")]
impl EmbeddedReadiness {
    /// Wakes the runners and waits until each has applied the store's last event (at
    /// most `timeout` each; a projection still behind is logged, not an error).
    async fn settle(&self, timeout: Duration) -> anyhow::Result<()> {
        let last: Option<i64> = sqlx::query_scalar("SELECT max(position) FROM events")
            .fetch_one(&self.store)
            .await
            .context("read the event store's last position")?;
        let Some(last) = last else { return Ok(()) };
        self.wake.wake();
        for name in &self.projections {
            if let Err(e) = self.watch.wait_for_position(name, last, timeout).await {
                tracing::warn!(projection = name, error = %e, "read model still behind the demo seed");
            }
        }
        Ok(())
    }
}

fn router(state: AppState, webhooks: Router<AppState>) -> Router {
    let max_body = state.settings.limits.max_body_bytes;
    let cors = crate::cors::layer(&state.settings.http.cors_allowed_origins);
    let router = Router::new()
        .merge(webhooks)
        .route(
            "/graphql",
            get(http::get)
                .post(http::post)
                .layer(DefaultBodyLimit::max(max_body)),
        )
        .route("/graphql/ws", get(crate::ws::subscriptions))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .layer(middleware::from_fn(track_requests));
    match cors {
        Some(cors) => router.layer(cors).with_state(state),
        None => router.with_state(state),
    }
}

/// Counts requests and their latency per matched route (never the raw path: its
/// cardinality is unbounded).
async fn track_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    let class = match response.status().as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    metrics::counter!("emporium_http_requests_total", "route" => route.clone(), "status" => class)
        .increment(1);
    metrics::histogram!("emporium_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        drop(tokio::signal::ctrl_c().await);
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
