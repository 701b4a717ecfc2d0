//! Typed, layered configuration.
//!
//! Layers, later ones winning: built-in defaults -> `config/<env>.toml` ->
//! conventional variables (`DATABASE_URL`, `NATS_URL`, `REDIS_URL`) -> `EMPORIUM_*`
//! variables with `__` for nesting (`EMPORIUM_HTTP__PORT=8080`) -> command-line flags.
//! Secrets are wrapped in [`Secret`] or [`SecretUrl`] so they never reach a log line or
//! `emporium config print`.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use emporium_projections::bus::StreamLayout;
use emporium_projections::relay::RelayConfig;
use emporium_projections::stream::StreamSettings;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Which set of defaults and files applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Readable logs, GraphiQL, introspection.
    #[default]
    Development,
    /// JSON logs, no GraphiQL.
    Production,
    /// Used by the test suites.
    Test,
}

impl Environment {
    /// The name used for `config/<name>.toml`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Production => "production",
            Self::Test => "test",
        }
    }
}

/// A secret string: deserialises from plain text, prints and serialises as
/// `[redacted]`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that needs it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

const REDACTED: &str = "[redacted]";

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self)
    }
}

/// A connection URL that may embed a password (`postgres://user:pw@host/db`). It
/// prints with the password masked, so operators still see where it points.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// Wraps a URL.
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The URL with its password.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `***` and any query string (which may
    /// carry credentials) dropped.
    #[must_use]
    pub fn redacted(&self) -> String {
        let url = self.0.split('?').next().unwrap_or_default();
        let Some((scheme, rest)) = url.split_once("://") else {
            return REDACTED.to_owned();
        };
        match rest.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
                None => format!("{scheme}://{userinfo}@{host}"),
            },
            None => format!("{scheme}://{rest}"),
        }
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for SecretUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for SecretUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self)
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Which environment this is.
    pub env: Environment,
    /// The HTTP listener.
    pub http: HttpSettings,
    /// The PostgreSQL event store and read models.
    pub database: DatabaseSettings,
    /// NATS JetStream.
    pub nats: NatsSettings,
    /// Redis, optional (rate limits and caches in distributed mode).
    pub redis: RedisSettings,
    /// Logs.
    pub log: LogSettings,
    /// OpenTelemetry traces.
    pub telemetry: TelemetrySettings,
    /// Tokens, passwords, one-time e-mail tokens.
    pub auth: AuthSettings,
    /// Abuse limits: query shape, request size, rate limits.
    pub limits: LimitSettings,
    /// Outgoing mail (verification and password-reset links).
    pub mail: MailSettings,
    /// The relay and projection runners beside the gateway, and read-your-writes.
    pub backbone: BackboneSettings,
    /// Storefront choices.
    pub shop: ShopSettings,
    /// The payment provider and its webhooks.
    pub payments: PaymentSettings,
    /// Notification e-mails.
    pub notifications: NotificationSettings,
    /// The checkout: reservation expiry, pricing (taxes, shipping), fraud gate, driver.
    pub checkout: CheckoutSettings,
    /// Where the platform keeps its data: embedded files or PostgreSQL + NATS.
    pub storage: StorageSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            env: Environment::Development,
            http: HttpSettings::default(),
            database: DatabaseSettings::default(),
            nats: NatsSettings::default(),
            redis: RedisSettings::default(),
            log: LogSettings::default(),
            telemetry: TelemetrySettings::default(),
            auth: AuthSettings::default(),
            limits: LimitSettings::default(),
            mail: MailSettings::default(),
            backbone: BackboneSettings::default(),
            shop: ShopSettings::default(),
            payments: PaymentSettings::default(),
            notifications: NotificationSettings::default(),
            checkout: CheckoutSettings::default(),
            storage: StorageSettings::default(),
        }
    }
}

/// How the platform stores and moves its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageMode {
    /// Distributed when a database or NATS URL is configured (a file, `DATABASE_URL`,
    /// `NATS_URL`, `EMPORIUM_DATABASE__URL`, a flag), embedded otherwise. Resolved
    /// when the settings load: a loaded `Settings` is never `Auto`.
    #[default]
    Auto,
    /// One process, SQLite files under `storage.data_dir`, no servers.
    Embedded,
    /// PostgreSQL (event store, read models) and NATS JetStream (the event stream).
    Distributed,
}

/// Where the platform keeps its data.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSettings {
    /// Embedded or distributed (see [`StorageMode`]).
    pub mode: StorageMode,
    /// The embedded mode's directory: `events.db` (the event store), `read.db` (the
    /// read models), `gateway.db` (sessions, tokens, mail ledger). Created on start.
    pub data_dir: PathBuf,
    /// Whether `emporium serve` in the embedded mode loads the demo shop on first
    /// start (an event store with no events). Defaults to on in development, off in
    /// test and production.
    pub seed_demo: bool,
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            mode: StorageMode::Auto,
            data_dir: PathBuf::from("data"),
            seed_demo: false,
        }
    }
}

impl StorageSettings {
    /// Whether the embedded mode runs.
    #[must_use]
    pub fn embedded(&self) -> bool {
        self.mode == StorageMode::Embedded
    }
}

/// Which payment provider takes the payments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentProviderKind {
    /// Stripe's test-card behaviour without a network, state in PostgreSQL (embedded
    /// mode, demos, tests).
    #[default]
    Offline,
    /// Stripe (async-stripe), with `payments.stripe.secret_key`.
    Stripe,
}

/// Payments: the provider and Stripe's webhooks (`POST /webhooks/stripe`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentSettings {
    /// `offline` (default) or `stripe`.
    pub provider: PaymentProviderKind,
    /// Production refuses the offline provider unless this is set (a demo shop).
    pub allow_offline_in_production: bool,
    /// The webhook endpoint's signing secrets (`whsec_...`); a delivery is accepted
    /// when any `v1` signature matches under any of them, so during a rotation both
    /// the old and the new secret are listed. Empty: every delivery is refused.
    pub webhook_secrets: Vec<Secret>,
    /// How far a webhook's signature timestamp may be from now, in seconds.
    pub webhook_tolerance_seconds: u64,
    /// The Stripe adapter.
    pub stripe: StripeSettings,
}

impl Default for PaymentSettings {
    fn default() -> Self {
        Self {
            provider: PaymentProviderKind::Offline,
            allow_offline_in_production: false,
            webhook_secrets: Vec::new(),
            webhook_tolerance_seconds: 300,
            stripe: StripeSettings::default(),
        }
    }
}

/// The Stripe adapter.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StripeSettings {
    /// The secret API key (`sk_live_...`, `sk_test_...` or a restricted `rk_...`).
    pub secret_key: Option<Secret>,
    /// Another API base (a proxy; tests); unset is Stripe's.
    pub api_base: Option<String>,
    /// Timeout of one API request, in seconds.
    pub timeout_seconds: u64,
}

impl Default for StripeSettings {
    fn default() -> Self {
        Self {
            secret_key: None,
            api_base: None,
            timeout_seconds: 30,
        }
    }
}

/// Notification e-mails (order confirmation, payment failed, shipped, refunded, low
/// stock), sent through `mail` by the sender `emporium serve` runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationSettings {
    /// Run the e-mail sender beside the gateway (with `backbone.in_process`).
    pub email: bool,
    /// Who receives staff mail (low stock).
    pub staff_emails: Vec<String>,
    /// Events recorded longer ago than this are not mailed (a new deployment does not
    /// mail the shop's history), in seconds.
    pub max_event_age_seconds: u64,
    /// The shop's name in mails (`{{ shop_name }}`).
    pub shop_name: String,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        Self {
            email: true,
            staff_emails: Vec::new(),
            max_event_age_seconds: 24 * 60 * 60,
            shop_name: "Emporium".to_owned(),
        }
    }
}

/// The event backbone as the gateway sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackboneSettings {
    /// Run the relay and every projection runner inside the gateway process (the
    /// embedded shape, `emporium serve` and the tests). Off when they run as their own
    /// processes (`emporium relay`, `emporium project all`).
    pub in_process: bool,
    /// How long a mutation waits for its read model to apply the command's events
    /// before answering with what the read model has, in milliseconds.
    pub read_your_writes_timeout_ms: u64,
    /// How long a projection runner may keep progress over events its projection
    /// only skips unwritten, in milliseconds (0: a checkpoint write per batch).
    /// Waiters in the runner's process hear of it at once; a gateway in another
    /// process waits up to this long for an event the projection does not read.
    pub skip_flush_ms: u64,
    /// Under load, the least time between a projection runner's writes, in
    /// milliseconds: a runner that wrote more recently gathers what arrives until
    /// then, so busy projections commit fewer, larger batches. An idle runner applies
    /// an event at once; 0 never waits.
    pub min_batch_interval_ms: u64,
}

impl Default for BackboneSettings {
    fn default() -> Self {
        Self {
            in_process: true,
            read_your_writes_timeout_ms: 2_000,
            skip_flush_ms: 100,
            min_batch_interval_ms: 10,
        }
    }
}

impl BackboneSettings {
    /// The read-your-writes bound.
    #[must_use]
    pub fn read_your_writes_timeout(&self) -> Duration {
        Duration::from_millis(self.read_your_writes_timeout_ms)
    }

    /// The projection runners' configuration.
    #[must_use]
    pub fn runner_config(&self) -> emporium_projections::projection::RunnerConfig {
        emporium_projections::projection::RunnerConfig {
            skip_flush: Duration::from_millis(self.skip_flush_ms),
            min_batch_interval: Duration::from_millis(self.min_batch_interval_ms),
            ..emporium_projections::projection::RunnerConfig::default()
        }
    }
}

/// Storefront choices.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShopSettings {
    /// ISO 4217 currency new carts are opened in (the catalogue's currency).
    pub currency: String,
    /// The most bytes of answers the public catalogue cache keeps (whole GraphQL
    /// responses to catalogue-only queries, valid until the catalogue's read models
    /// change); 0 turns the cache off.
    pub catalog_cache_bytes: usize,
}

impl Default for ShopSettings {
    fn default() -> Self {
        Self {
            currency: "EUR".to_owned(),
            catalog_cache_bytes: 64 * 1024 * 1024,
        }
    }
}

/// The checkout process manager and its driver.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckoutSettings {
    /// How long reserved stock waits for payment before the order is cancelled.
    pub reservation_ttl_seconds: u64,
    /// How long after a checkout starts (or last failed) the driver may resume it.
    pub resume_after_ms: u64,
    /// How often a checkout waiting on 3-D Secure or the provider is reconciled.
    pub recheck_after_seconds: u64,
    /// Run the driver (expiry and resumption sweeps) in this process.
    pub driver: bool,
    /// How often the driver sweeps, in real milliseconds (what is due is decided on
    /// the application clock).
    pub sweep_interval_ms: u64,
    /// Test-only fault injection: abort right after this checkout step
    /// (`stock_reserved`, `payment_created`, `payment_authorised`).
    pub crash_after: Option<String>,
    /// The fraud gate's rules.
    pub fraud: FraudSettings,
    /// Taxes and shipping methods, as `emporium_domain::pricing::Pricing` reads them
    /// (validated at startup): `currency`, `tax = { mode, rules = [{ country,
    /// region?, rate_bp, shipping_taxable? }] }`, `methods = [{ code, name, rates =
    /// [{ zone = { name, countries }, rate = { flat = <money> } | { by_weight =
    /// [{ up_to_grams, price }] }, free_over? }] }]`, money as `{ amount_minor,
    /// currency }`. Products carry no weight yet, so weight tiers see 0 g.
    pub pricing: toml::Table,
}

/// The fraud gate's rules (the rest are `FraudRules::with_defaults`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FraudSettings {
    /// Scores at or above this hold the order for staff review (0 to 100).
    pub review_threshold: u8,
    /// The amount (minor units of the shop currency) a new account's order must reach
    /// to count as high value.
    pub high_value_minor: i64,
}

impl Default for FraudSettings {
    fn default() -> Self {
        Self {
            review_threshold: 50,
            high_value_minor: 100_000,
        }
    }
}

/// The pricing a fresh configuration has: EU VAT included in prices, standard and
/// express shipping in the EU, standard by weight to the rest of the world.
const DEFAULT_PRICING: &str = r#"
currency = "EUR"

[tax]
mode = "tax_inclusive"
rules = [
    { country = "DE", rate_bp = 1900 },
    { country = "FR", rate_bp = 2000 },
    { country = "NL", rate_bp = 2100 },
    { country = "AT", rate_bp = 2000 },
    { country = "ES", rate_bp = 2100 },
    { country = "IT", rate_bp = 2200 },
]

[[methods]]
code = "standard"
name = "Standard (3-5 days)"
rates = [
    { zone = { name = "EU", countries = ["DE", "FR", "NL", "AT", "ES", "IT", "BE", "LU"] }, rate = { flat = { amount_minor = 499, currency = "EUR" } }, free_over = { amount_minor = 5000, currency = "EUR" } },
    { zone = { name = "World", countries = ["GB", "US", "CH", "CA"] }, rate = { by_weight = [{ up_to_grams = 2000, price = { amount_minor = 1499, currency = "EUR" } }, { up_to_grams = 20000, price = { amount_minor = 2999, currency = "EUR" } }] } },
]

[[methods]]
code = "express"
name = "Express (next day)"
rates = [
    { zone = { name = "EU", countries = ["DE", "FR", "NL", "AT", "ES", "IT", "BE", "LU"] }, rate = { flat = { amount_minor = 1299, currency = "EUR" } } },
]
"#;

impl Default for CheckoutSettings {
    fn default() -> Self {
        Self {
            reservation_ttl_seconds: 900,
            resume_after_ms: 10_000,
            recheck_after_seconds: 60,
            driver: true,
            sweep_interval_ms: 500,
            crash_after: None,
            fraud: FraudSettings::default(),
            pricing: toml::from_str(DEFAULT_PRICING).unwrap_or_default(),
        }
    }
}

impl CheckoutSettings {
    /// The pricing configuration, validated.
    ///
    /// # Errors
    /// When `checkout.pricing` is not a valid pricing configuration.
    pub fn pricing(&self) -> anyhow::Result<emporium_domain::pricing::Pricing> {
        toml::Value::Table(self.pricing.clone())
            .try_into()
            .map_err(|e| anyhow::anyhow!("checkout.pricing: {e}"))
    }
}

/// The HTTP listener.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Address to bind.
    pub host: IpAddr,
    /// Port to bind; 0 picks a free one.
    pub port: u16,
    /// How long in-flight requests may take to finish after a shutdown signal.
    pub shutdown_grace_seconds: u64,
    /// Take the client address for rate limits from the right-most `X-Forwarded-For`
    /// entry (the one the trusted proxy in front of the gateway appended). Off by
    /// default: without a proxy, clients could pick their own address.
    pub trust_forwarded_for: bool,
    /// Browser origins allowed to call the API (CORS): `https://shop.example.com`,
    /// `http://localhost:*` (any port) or `*`. None by default; development allows
    /// localhost.
    pub cors_allowed_origins: Vec<String>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 8000,
            shutdown_grace_seconds: 20,
            trust_forwarded_for: false,
            cors_allowed_origins: Vec::new(),
        }
    }
}

/// PostgreSQL.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// Connection URL.
    pub url: SecretUrl,
    /// Pool size. The event store's appends hold up to as many connections again
    /// (outside the pool, which pings each connection it takes back), so a process
    /// opens at most twice this many.
    pub max_connections: u32,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: SecretUrl::new("postgres://postgres@127.0.0.1:5432/emporium"),
            max_connections: 16,
        }
    }
}

/// NATS JetStream.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsSettings {
    /// Server URL.
    pub url: SecretUrl,
    /// Prefix of the stream name and subjects (`<prefix>.events.<aggregate>.<event>`).
    pub stream_prefix: String,
    /// How long the events stream keeps messages, in seconds; 0 keeps them forever
    /// (PostgreSQL can always rebuild the stream).
    pub max_age_seconds: u64,
    /// How long JetStream remembers a message id for deduplication, in seconds. It
    /// must outlast an ack timeout plus a relay restart.
    pub duplicate_window_seconds: u64,
}

impl Default for NatsSettings {
    fn default() -> Self {
        Self {
            url: SecretUrl::new("nats://127.0.0.1:4222"),
            stream_prefix: "emporium".to_owned(),
            max_age_seconds: 0,
            duplicate_window_seconds: 120,
        }
    }
}

impl NatsSettings {
    /// The relay's configuration from these settings.
    ///
    /// # Errors
    /// When the stream prefix is not a valid subject token.
    pub fn relay(&self) -> anyhow::Result<(StreamLayout, RelayConfig)> {
        let layout = StreamLayout::new(&self.stream_prefix)?;
        let config = RelayConfig {
            stream: StreamSettings {
                max_age: Duration::from_secs(self.max_age_seconds),
                duplicate_window: Duration::from_secs(self.duplicate_window_seconds),
            },
            ..RelayConfig::default()
        };
        Ok((layout, config))
    }
}

/// Redis.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    /// Connection URL; unset means in-process limits and caches.
    pub url: Option<SecretUrl>,
    /// Prefix of every key this deployment writes (`<prefix>:rl:...`), so several
    /// deployments (or tests) can share one Redis.
    pub key_prefix: String,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: None,
            key_prefix: "emporium".to_owned(),
        }
    }
}

/// Log output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Logs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `pretty` or `json`; unset picks by environment (json in production).
    pub format: Option<LogFormat>,
    /// An `EnvFilter` directive; `RUST_LOG` overrides it.
    pub filter: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: None,
            filter: "info,sqlx=warn,async_nats=warn".to_owned(),
        }
    }
}

/// OpenTelemetry traces, exported over OTLP/HTTP (protobuf) by the batch span
/// processor. Off unless an endpoint is configured here or through the standard
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT` variables.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySettings {
    /// The collector's traces URL, used as given (e.g.
    /// `http://127.0.0.1:4318/v1/traces`).
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported spans.
    pub service_name: String,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "emporium".to_owned(),
        }
    }
}

impl TelemetrySettings {
    /// Whether spans are exported: an endpoint here or in the standard variables.
    #[must_use]
    pub fn exporting(&self) -> bool {
        self.otlp_endpoint.as_deref().is_some_and(|e| !e.is_empty())
            || [
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ]
            .iter()
            .any(|v| std::env::var(v).is_ok_and(|e| !e.is_empty()))
    }
}

/// Token signing and lifetimes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// HMAC key for access and refresh tokens. The default is for development only;
    /// production refuses to start with it.
    pub jwt_secret: Secret,
    /// `iss` claim.
    pub issuer: String,
    /// `aud` claim.
    pub audience: String,
    /// Lifetime of an access token.
    pub access_token_ttl_seconds: u64,
    /// Lifetime of a refresh token (each rotation issues a new one with a fresh
    /// lifetime).
    pub refresh_token_ttl_seconds: u64,
    /// Lifetime of an e-mail verification link.
    pub email_verification_ttl_seconds: u64,
    /// Lifetime of a password-reset link.
    pub password_reset_ttl_seconds: u64,
    /// How long a session found live is taken as live without asking PostgreSQL
    /// again; a revocation is heard at once regardless (see `auth::live`). 0 asks
    /// for every request. The embedded mode always asks.
    pub session_cache_seconds: u64,
}

/// The development-only signing key.
pub const DEV_JWT_SECRET: &str = "emporium-development-secret-change-me";

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            jwt_secret: Secret::new(DEV_JWT_SECRET),
            issuer: "emporium".to_owned(),
            audience: "emporium-api".to_owned(),
            access_token_ttl_seconds: 15 * 60,
            refresh_token_ttl_seconds: 7 * 24 * 60 * 60,
            email_verification_ttl_seconds: 24 * 60 * 60,
            password_reset_ttl_seconds: 60 * 60,
            session_cache_seconds: 60,
        }
    }
}

/// Abuse limits. All are on by default; a limit of 0 is not "off" but "nothing
/// allowed", so turning one off means raising it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    /// Deepest field nesting of an operation.
    pub max_depth: usize,
    /// Highest complexity (sum of per-field costs; `login` and the other
    /// password-hashing mutations cost 100).
    pub max_complexity: usize,
    /// Most aliases in one document.
    pub max_aliases: usize,
    /// Most directives in one document.
    pub max_directives: usize,
    /// Most operations in one JSON batch.
    pub max_batch: usize,
    /// Largest request body, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Schema introspection; unset means on except in production.
    pub introspection: Option<bool>,
    /// "Did you mean ...?" suggestions in validation errors; unset means on except
    /// in production.
    pub suggestions: Option<bool>,
    /// Request rates.
    pub rate: RateLimitSettings,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            max_depth: 15,
            max_complexity: 300,
            max_aliases: 15,
            max_directives: 50,
            max_batch: 10,
            max_body_bytes: 128 * 1024,
            introspection: None,
            suggestions: None,
            rate: RateLimitSettings::default(),
        }
    }
}

/// Request rates, counted in fixed windows (Redis when configured, else in memory).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Whether rate limits apply at all.
    pub enabled: bool,
    /// Login attempts per minute per account (e-mail address).
    pub login_per_account_per_minute: u32,
    /// Login attempts per minute per client address.
    pub login_per_ip_per_minute: u32,
    /// GraphQL operations per hour per client address, without a token.
    pub anonymous_per_hour: u32,
    /// GraphQL operations per hour per signed-in user.
    pub authenticated_per_hour: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            login_per_account_per_minute: 5,
            login_per_ip_per_minute: 5,
            anonymous_per_hour: 100,
            authenticated_per_hour: 1000,
        }
    }
}

/// Outgoing mail.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailSettings {
    /// SMTP relay, `smtp://[user:password@]host[:port]` (plain SMTP: a relay on
    /// loopback or a trusted network). Unset: mails are logged (with their links
    /// only in development) and not delivered.
    pub smtp_url: Option<SecretUrl>,
    /// The `From:` mailbox.
    pub from: String,
    /// Base of the links in mails (`<base>/verify-email?token=...`).
    pub link_base_url: String,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            smtp_url: None,
            from: "Emporium <no-reply@emporium.invalid>".to_owned(),
            link_base_url: "http://127.0.0.1:8000".to_owned(),
        }
    }
}

/// Values given on the command line: the last layer.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    /// `--port`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// `--database-url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// `--nats-url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nats_url: Option<String>,
    /// `--stream-prefix`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_prefix: Option<String>,
    /// `--log-format`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadSettingsError {
    /// A layer holds a value of the wrong type or an unknown key.
    #[error("invalid configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
    /// Production with the development signing key.
    #[error("auth.jwt_secret must be set in production (EMPORIUM_AUTH__JWT_SECRET)")]
    DevelopmentSecretInProduction,
    /// Production with the offline payment provider, not explicitly allowed.
    #[error(
        "payments.provider = \"offline\" takes no real money: set payments.provider = \"stripe\" in production, or payments.allow_offline_in_production = true for a demo"
    )]
    OfflinePaymentsInProduction,
    /// Stripe selected without a key.
    #[error(
        "payments.provider = \"stripe\" needs payments.stripe.secret_key (EMPORIUM_PAYMENTS__STRIPE__SECRET_KEY)"
    )]
    StripeKeyMissing,
    /// An entry of `http.cors_allowed_origins` is not an origin.
    #[error("http.cors_allowed_origins: {0}")]
    InvalidCorsOrigin(String),
}

impl Settings {
    /// Loads every layer for `env` from `config_dir`.
    ///
    /// # Errors
    /// [`LoadSettingsError`] when a layer is malformed or production is misconfigured.
    pub fn load(
        config_dir: &Path,
        env: Environment,
        overrides: &Overrides,
    ) -> Result<Self, LoadSettingsError> {
        Self::resolved(&Self::figment(config_dir, env, overrides)).and_then(Self::validated)
    }

    /// The settings `figment` holds, with [`StorageMode::Auto`] resolved: a database
    /// or NATS URL from any layer means servers were asked for; and
    /// `storage.seed_demo`, when no layer sets it, on in development only.
    fn resolved(figment: &Figment) -> Result<Self, LoadSettingsError> {
        let mut settings = figment.extract::<Self>().map_err(Box::new)?;
        if figment.find_value("storage.seed_demo").is_err() {
            settings.storage.seed_demo = settings.env == Environment::Development;
        }
        if settings.storage.mode == StorageMode::Auto {
            let servers = figment.find_value("database.url").is_ok()
                || figment.find_value("nats.url").is_ok();
            settings.storage.mode = if servers {
                StorageMode::Distributed
            } else {
                StorageMode::Embedded
            };
        }
        Ok(settings)
    }

    fn figment(config_dir: &Path, env: Environment, o: &Overrides) -> Figment {
        let mut flags = Figment::new();
        if let Some(port) = o.port {
            flags = flags.merge(Serialized::default("http.port", port));
        }
        if let Some(url) = &o.database_url {
            flags = flags.merge(Serialized::default("database.url", url));
        }
        if let Some(url) = &o.nats_url {
            flags = flags.merge(Serialized::default("nats.url", url));
        }
        if let Some(prefix) = &o.stream_prefix {
            flags = flags.merge(Serialized::default("nats.stream_prefix", prefix));
        }
        if let Some(format) = o.log_format {
            flags = flags.merge(Serialized::default("log.format", format));
        }
        Figment::new()
            .merge(Serialized::default("env", env))
            .merge(Toml::file(
                config_dir.join(format!("{}.toml", env.as_str())),
            ))
            .merge(
                Env::raw()
                    .only(&["DATABASE_URL"])
                    .map(|_| "database.url".into()),
            )
            .merge(Env::raw().only(&["NATS_URL"]).map(|_| "nats.url".into()))
            .merge(Env::raw().only(&["REDIS_URL"]).map(|_| "redis.url".into()))
            .merge(
                Env::prefixed("EMPORIUM_")
                    .ignore(&["ENV", "CONFIG_DIR"])
                    .split("__"),
            )
            .merge(flags)
    }

    fn validated(self) -> Result<Self, LoadSettingsError> {
        if self.env == Environment::Production && self.auth.jwt_secret.expose() == DEV_JWT_SECRET {
            return Err(LoadSettingsError::DevelopmentSecretInProduction);
        }
        let payments = &self.payments;
        if self.env == Environment::Production
            && payments.provider == PaymentProviderKind::Offline
            && !payments.allow_offline_in_production
        {
            return Err(LoadSettingsError::OfflinePaymentsInProduction);
        }
        if payments.provider == PaymentProviderKind::Stripe
            && payments
                .stripe
                .secret_key
                .as_ref()
                .is_none_or(|k| k.expose().is_empty())
        {
            return Err(LoadSettingsError::StripeKeyMissing);
        }
        for origin in &self.http.cors_allowed_origins {
            crate::cors::OriginRule::parse(origin).map_err(LoadSettingsError::InvalidCorsOrigin)?;
        }
        Ok(self)
    }

    /// The effective log format.
    #[must_use]
    pub fn log_format(&self) -> LogFormat {
        self.log.format.unwrap_or(match self.env {
            Environment::Production => LogFormat::Json,
            Environment::Development | Environment::Test => LogFormat::Pretty,
        })
    }

    /// Whether schema introspection is served.
    #[must_use]
    pub fn introspection(&self) -> bool {
        self.limits
            .introspection
            .unwrap_or(self.env != Environment::Production)
    }

    /// Whether validation errors suggest similar names.
    #[must_use]
    pub fn suggestions(&self) -> bool {
        self.limits
            .suggestions
            .unwrap_or(self.env != Environment::Production)
    }

    /// The configuration as TOML, secrets redacted.
    ///
    /// # Errors
    /// Never in practice; TOML serialisation of these types cannot fail.
    pub fn to_redacted_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string_pretty(self)
    }
}

/// The default configuration folder: `./config`.
#[must_use]
pub fn default_config_dir() -> PathBuf {
    PathBuf::from("config")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_deserialize_from_nothing() {
        let s: Settings = Figment::new().extract().expect("defaults deserialize");
        assert_eq!(s.http.port, 8000);
        assert_eq!(s.nats.stream_prefix, "emporium");
        assert_eq!(s.log_format(), LogFormat::Pretty);
        assert_eq!(s.auth.access_token_ttl_seconds, 900);
        assert_eq!(s.auth.refresh_token_ttl_seconds, 604_800);
        assert!(s.limits.rate.enabled);
        assert_eq!(s.limits.rate.login_per_account_per_minute, 5);
        assert_eq!(s.limits.rate.anonymous_per_hour, 100);
        assert_eq!(s.limits.rate.authenticated_per_hour, 1000);
        assert!(s.backbone.in_process);
        assert_eq!(s.backbone.read_your_writes_timeout_ms, 2_000);
        assert_eq!(s.shop.currency, "EUR");
        assert_eq!(s.checkout.reservation_ttl_seconds, 900);
        let pricing = s.checkout.pricing().expect("default pricing is valid");
        assert_eq!(pricing.currency().code(), "EUR");
        assert_eq!(pricing.methods().len(), 2);
    }

    #[test]
    fn introspection_and_suggestions_are_off_only_in_production() {
        let mut s = Settings::default();
        assert!(s.introspection() && s.suggestions());
        s.env = Environment::Production;
        assert!(!s.introspection() && !s.suggestions());
        s.limits.introspection = Some(true);
        assert!(s.introspection());
    }

    #[test]
    fn shipped_config_files_parse() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config");
        for env in [Environment::Development, Environment::Test] {
            let s: Settings = Figment::new()
                .merge(Toml::file(dir.join(format!("{}.toml", env.as_str()))))
                .extract()
                .unwrap_or_else(|e| panic!("{}: {e}", env.as_str()));
            assert!(s.http.port > 0 || env == Environment::Test);
        }
    }

    #[test]
    fn secrets_never_serialize_or_debug() {
        let mut s = Settings::default();
        s.auth.jwt_secret = Secret::new("s3cr3t-key");
        s.database.url = SecretUrl::new("postgres://app:hunter2@db:5432/shop?password=hunter2");
        let toml = s.to_redacted_toml().unwrap();
        let debug = format!("{s:?}");
        for text in [&toml, &debug] {
            assert!(!text.contains("s3cr3t-key"), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
        }
        assert!(toml.contains("postgres://app:***@db:5432/shop"), "{toml}");
    }

    #[test]
    fn payment_keys_and_webhook_secrets_are_redacted() {
        let mut s = Settings::default();
        s.payments.provider = PaymentProviderKind::Stripe;
        s.payments.stripe.secret_key = Some(Secret::new("sk_live_topsecret"));
        s.payments.webhook_secrets =
            vec![Secret::new("whsec_old_one"), Secret::new("whsec_new_one")];
        let toml = s.to_redacted_toml().unwrap();
        let debug = format!("{s:?}");
        for text in [&toml, &debug] {
            for secret in ["sk_live_topsecret", "whsec_old_one", "whsec_new_one"] {
                assert!(!text.contains(secret), "{secret} in {text}");
            }
        }
        assert!(toml.contains("provider = \"stripe\""), "{toml}");
        assert!(toml.contains("[payments.stripe]"), "{toml}");
        assert!(s.validated().is_ok());
    }

    #[test]
    fn payment_settings_load_from_the_environment_layer() {
        let figment = Figment::new()
            .merge(Serialized::defaults(Settings::default()))
            .merge(Toml::string(
                "[payments]\nprovider = \"stripe\"\nwebhook_secrets = [\"whsec_a\", \"whsec_b\"]\n[payments.stripe]\nsecret_key = \"sk_test_1\"\n",
            ));
        let s: Settings = figment.extract().unwrap();
        assert_eq!(s.payments.provider, PaymentProviderKind::Stripe);
        assert_eq!(s.payments.webhook_secrets.len(), 2);
        assert_eq!(s.payments.webhook_secrets[1].expose(), "whsec_b");
        assert_eq!(
            s.payments.stripe.secret_key.as_ref().unwrap().expose(),
            "sk_test_1"
        );
        assert_eq!(s.payments.webhook_tolerance_seconds, 300);
        // EMPORIUM_PAYMENTS__WEBHOOK_SECRETS='["whsec_a", "whsec_b"]' is a list too:
        // figment parses environment values this way.
        let from_env: figment::value::Value = r#"["whsec_a", "whsec_b"]"#.parse().unwrap();
        let secrets: Vec<Secret> = from_env.deserialize().unwrap();
        assert_eq!(secrets.len(), 2);
        assert_eq!(secrets[0].expose(), "whsec_a");
    }

    #[test]
    fn production_refuses_offline_payments_unless_allowed_and_stripe_needs_a_key() {
        let mut s = Settings {
            env: Environment::Production,
            ..Settings::default()
        };
        s.auth.jwt_secret = Secret::new("a-real-production-key");
        assert!(matches!(
            s.clone().validated(),
            Err(LoadSettingsError::OfflinePaymentsInProduction)
        ));
        s.payments.allow_offline_in_production = true;
        assert!(s.clone().validated().is_ok());
        s.payments.provider = PaymentProviderKind::Stripe;
        assert!(matches!(
            s.clone().validated(),
            Err(LoadSettingsError::StripeKeyMissing)
        ));
        s.payments.stripe.secret_key = Some(Secret::new("sk_live_1"));
        assert!(s.validated().is_ok());
    }

    #[test]
    fn production_refuses_the_development_key() {
        let s = Settings {
            env: Environment::Production,
            ..Settings::default()
        };
        assert!(matches!(
            s.validated(),
            Err(LoadSettingsError::DevelopmentSecretInProduction)
        ));
    }

    #[test]
    fn the_embedded_mode_runs_unless_a_server_url_or_the_mode_is_configured() {
        let mode = |figment: Figment| Settings::resolved(&figment).expect("loads").storage.mode;
        assert_eq!(mode(Figment::new()), StorageMode::Embedded);
        assert_eq!(
            mode(Figment::new().merge(Serialized::default("database.url", "postgres://db/shop"))),
            StorageMode::Distributed
        );
        assert_eq!(
            mode(Figment::new().merge(Serialized::default("nats.url", "nats://bus:4222"))),
            StorageMode::Distributed
        );
        assert_eq!(
            mode(Figment::new().merge(Serialized::default("storage.mode", "distributed"))),
            StorageMode::Distributed
        );
        assert_eq!(
            mode(
                Figment::new()
                    .merge(Serialized::default("database.url", "postgres://db/shop"))
                    .merge(Serialized::default("storage.mode", "embedded"))
            ),
            StorageMode::Embedded
        );
        // The shipped test and development files name no server (each test chooses
        // its mode; `./dev run` is embedded); production names none either but
        // expects them from the environment.
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config");
        for env in ["test", "development"] {
            let file = Figment::new().merge(Toml::file(dir.join(format!("{env}.toml"))));
            assert_eq!(mode(file), StorageMode::Embedded, "{env}.toml");
        }
        // A server URL from a later layer still switches development to servers (the
        // file alone, not `Settings::figment`: this process's environment may name one).
        let development = |database_url: Option<&str>| {
            let figment = Figment::new()
                .merge(Serialized::default("env", Environment::Development))
                .merge(Toml::file(dir.join("development.toml")));
            let figment = match database_url {
                Some(url) => figment.merge(Serialized::default("database.url", url)),
                None => figment,
            };
            Settings::resolved(&figment).expect("loads").storage
        };
        let embedded = development(None);
        assert_eq!(embedded.mode, StorageMode::Embedded);
        assert_eq!(embedded.data_dir, PathBuf::from("data"));
        assert_eq!(
            development(Some("postgres://db/shop")).mode,
            StorageMode::Distributed
        );
    }

    #[test]
    fn development_sells_in_the_demo_shops_currency() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config");
        let figment = Figment::new()
            .merge(Serialized::default("env", Environment::Development))
            .merge(Toml::file(dir.join("development.toml")));
        let s = Settings::resolved(&figment).expect("loads");
        // The demo seed prices everything in USD; a cart in another currency refuses it.
        assert_eq!(s.shop.currency, "USD");
        let pricing = s.checkout.pricing().expect("development pricing is valid");
        assert_eq!(pricing.currency().code(), "USD");
    }

    #[test]
    fn the_demo_shop_is_seeded_on_first_start_in_development_only() {
        let seeds = |figment: Figment| {
            Settings::resolved(&figment)
                .expect("loads")
                .storage
                .seed_demo
        };
        let env = |e: Environment| Figment::new().merge(Serialized::default("env", e));
        assert!(seeds(env(Environment::Development)));
        assert!(!seeds(env(Environment::Test)));
        assert!(!seeds(env(Environment::Production)));
        assert!(!seeds(
            env(Environment::Development).merge(Serialized::default("storage.seed_demo", false))
        ));
        assert!(seeds(
            env(Environment::Test).merge(Serialized::default("storage.seed_demo", true))
        ));
    }

    #[test]
    fn flags_override_files() {
        let overrides = Overrides {
            port: Some(9),
            ..Overrides::default()
        };
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config");
        let s = Settings::load(&dir, Environment::Development, &overrides).unwrap();
        assert_eq!(s.http.port, 9);
    }
}
