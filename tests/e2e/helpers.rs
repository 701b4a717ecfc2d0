//! `spawn_app()`: a platform of one's own, per test, with a clock the test moves, a
//! real SMTP server receiving its mail, and one helper per GraphQL operation.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use emporium_domain::user::Role;
use emporium_gateway::app::{Application, Ports};
use emporium_gateway::clock::{Clock, ManualClock};
use emporium_gateway::config::{Environment, Overrides, SecretUrl, Settings};
use emporium_tests::{TestDatabase, nats_url, unique_prefix};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::smtp::SmtpSink;

/// A running platform and a client for it.
pub(crate) struct TestApp {
    pub(crate) address: String,
    pub(crate) client: reqwest::Client,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) mail: SmtpSink,
    pub(crate) settings: Settings,
    /// The offline payment provider the platform pays through (tests complete 3-D
    /// Secure on it and count its intents).
    pub(crate) payments: Arc<emporium_commands::payments::OfflineProvider>,
    password_verifications: Arc<AtomicU64>,
    /// The event store the platform writes (PostgreSQL, or the embedded mode's file).
    store: emporium_commands::AnyStore,
    read_db: emporium_commands::sql::Db,
    own_db: emporium_commands::sql::Db,
    watch: Option<emporium_projections::projection::CheckpointWatch>,
    db: Option<TestDatabase>,
    /// The embedded mode's data directory.
    _data_dir: Option<tempfile::TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

/// A GraphQL answer: the HTTP status, `Retry-After`, and the body.
#[derive(Debug)]
pub(crate) struct Gql {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<u64>,
    pub(crate) body: Value,
}

impl Gql {
    /// `data.<field>`.
    pub(crate) fn data(&self, field: &str) -> &Value {
        &self.body["data"][field]
    }

    /// The first error's `extensions.code`, if any.
    pub(crate) fn code(&self) -> Option<&str> {
        self.body["errors"][0]["extensions"]["code"].as_str()
    }

    /// Asserts success and returns `data.<field>`.
    pub(crate) fn ok(&self, field: &str) -> &Value {
        assert_eq!(self.status, 200, "{self:?}");
        assert!(self.body.get("errors").is_none(), "{self:?}");
        self.data(field)
    }

    /// Asserts the first error's code.
    pub(crate) fn expect_code(&self, code: &str) {
        assert_eq!(self.code(), Some(code), "{}", self.body);
    }
}

const USER_FIELDS: &str = "id email emailVerified firstName lastName role preferences { newsletter language currency } registeredAt";
const AUTH_FIELDS: &str = "accessToken refreshToken tokenType expiresIn refreshExpiresIn user { id email emailVerified role }";

/// The one number `sql` answers with (a count, a position).
pub(crate) async fn number(
    db: &emporium_commands::sql::Db,
    sql: &str,
    args: emporium_commands::sql::Args,
) -> i64 {
    db.fetch_one::<(i64,)>(sql, args)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .0
}

/// True (with a line saying why) when this run is on the embedded mode and the
/// test exercises machinery only the distributed mode has (NATS, a second replica on
/// one PostgreSQL database, PostgreSQL migrations): the caller then returns.
#[allow(clippy::print_stderr)] // a skipped test says so where the test runner shows it
pub(crate) fn distributed_only(why: &str) -> bool {
    let skip = embedded();
    if skip {
        eprintln!("skipped in the embedded mode: {why}");
    }
    skip
}

/// Whether this run of the suite is on the embedded mode (`EMPORIUM_STORAGE__MODE=
/// embedded`, the platform's own setting: SQLite files in a temporary directory per
/// test, no PostgreSQL or NATS) rather than on PostgreSQL + NATS JetStream (the
/// default).
pub(crate) fn embedded() -> bool {
    std::env::var("EMPORIUM_STORAGE__MODE").is_ok_and(|mode| mode == "embedded")
}

/// A second gateway replica on the same database and stream, without a backbone of
/// its own (the first app's relay and projections serve both): its address, and a
/// sender that stops it.
pub(crate) async fn replica(
    app: &TestApp,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let mut settings = app.settings.clone();
    settings.backbone.in_process = false;
    let replica = emporium_gateway::app::Application::build(settings, false)
        .await
        .expect("replica builds");
    let address = format!("http://{}", replica.local_addr().expect("bound"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(replica.run_until(async {
        let _ = rx.await;
    }));
    (address, tx, server)
}

/// Starts the platform with the test configuration, a fresh database (or, embedded,
/// a fresh data directory), a unique stream prefix, a manual clock and an SMTP sink;
/// `customise` may change settings before it starts.
pub(crate) async fn spawn_app_with(customise: impl FnOnce(&mut Settings)) -> TestApp {
    if embedded() {
        return spawn_embedded(customise).await;
    }
    let db = TestDatabase::create(1).await.expect("test database");
    let mail = SmtpSink::start().await;
    let config_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config");
    let overrides = Overrides {
        port: Some(0),
        ..Overrides::default()
    };
    let mut settings = Settings::load(&config_dir, Environment::Test, &overrides)
        .expect("test configuration loads");
    settings.storage.mode = emporium_gateway::config::StorageMode::Distributed;
    settings.database.url = SecretUrl::new(db.url());
    settings.database.max_connections = 5;
    settings.nats.url = SecretUrl::new(nats_url());
    settings.nats.stream_prefix = unique_prefix();
    settings.redis.key_prefix = unique_prefix();
    settings.mail.smtp_url = Some(SecretUrl::new(mail.url()));
    customise(&mut settings);
    emporium_gateway::telemetry::init_tracing(settings.log_format(), &settings.log.filter);

    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    // The durable offline provider, as `serve` builds it: the webhook endpoint and the
    // checkout share it, and tests inspect it.
    let payments = Arc::new(emporium_commands::payments::OfflineProvider::durable(
        db.pool().clone(),
    ));
    let ports = Ports {
        clock: Arc::clone(&clock) as Arc<dyn Clock>,
        mailer: None,
        payments: Some(Arc::clone(&payments) as _),
    };
    let app = Application::build_with(settings.clone(), true, ports)
        .await
        .expect("application builds");
    serve(app, clock, mail, settings, payments, Some(db), None)
}

/// [`spawn_app_with`] on the embedded mode: the platform opens its files in a
/// temporary directory and builds its own durable offline provider there; the test's
/// handle on the provider reads the same tables.
async fn spawn_embedded(customise: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("data directory");
    let mail = SmtpSink::start().await;
    let config_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config");
    let overrides = Overrides {
        port: Some(0),
        ..Overrides::default()
    };
    let mut settings = Settings::load(&config_dir, Environment::Test, &overrides)
        .expect("test configuration loads");
    settings.storage.mode = emporium_gateway::config::StorageMode::Embedded;
    settings.storage.data_dir = dir.path().to_owned();
    settings.mail.smtp_url = Some(SecretUrl::new(mail.url()));
    settings.redis.key_prefix = unique_prefix();
    customise(&mut settings);
    emporium_gateway::telemetry::init_tracing(settings.log_format(), &settings.log.filter);
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let ports = Ports {
        clock: Arc::clone(&clock) as Arc<dyn Clock>,
        mailer: None,
        payments: None,
    };
    let app = Application::build_with(settings.clone(), true, ports)
        .await
        .expect("application builds");
    let payments = Arc::new(emporium_commands::payments::OfflineProvider::durable(
        app.store().db(),
    ));
    serve(app, clock, mail, settings, payments, None, Some(dir))
}

fn serve(
    app: Application,
    clock: Arc<ManualClock>,
    mail: SmtpSink,
    settings: Settings,
    payments: Arc<emporium_commands::payments::OfflineProvider>,
    db: Option<TestDatabase>,
    data_dir: Option<tempfile::TempDir>,
) -> TestApp {
    let address = format!("http://{}", app.local_addr().expect("bound"));
    let password_verifications = app.password_verifications();
    let store = app.store().clone();
    let (read_db, own_db, watch) = (app.read_db(), app.own_db(), app.checkpoint_watch());
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    TestApp {
        address,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client"),
        clock,
        mail,
        settings,
        payments,
        password_verifications,
        store,
        read_db,
        own_db,
        watch,
        db,
        _data_dir: data_dir,
        shutdown: Some(tx),
        server: Some(server),
    }
}

/// Starts the platform with the test configuration.
pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

async fn into_gql(response: reqwest::Response) -> Gql {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Gql {
        status,
        retry_after,
        body,
    }
}

impl TestApp {
    /// `GET path`.
    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request sent")
    }

    /// Runs a GraphQL operation and returns the whole response body.
    pub(crate) async fn graphql(&self, query: &str, variables: Value) -> Value {
        self.post_graphql(query, variables, None).await.body
    }

    /// POSTs one operation, with a bearer token when given.
    pub(crate) async fn post_graphql(
        &self,
        query: &str,
        variables: Value,
        bearer: Option<&str>,
    ) -> Gql {
        self.post_json(
            &json!({ "query": query, "variables": variables }),
            bearer,
            None,
        )
        .await
    }

    /// POSTs any JSON body, with a bearer token and an `X-Forwarded-For` when given.
    pub(crate) async fn post_json(
        &self,
        body: &Value,
        bearer: Option<&str>,
        forwarded_for: Option<&str>,
    ) -> Gql {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.address))
            .json(body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        if let Some(ip) = forwarded_for {
            request = request.header("x-forwarded-for", ip);
        }
        into_gql(request.send().await.expect("request sent")).await
    }

    /// POSTs raw bytes with a content type.
    pub(crate) async fn post_raw(&self, body: Vec<u8>, content_type: &str) -> Gql {
        let response = self
            .client
            .post(format!("{}/graphql", self.address))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request sent");
        into_gql(response).await
    }

    /// GETs `/graphql?query=...`.
    pub(crate) async fn get_graphql(&self, query: &str) -> Gql {
        let response = self
            .client
            .get(format!("{}/graphql", self.address))
            .query(&[("query", query)])
            .send()
            .await
            .expect("request sent");
        into_gql(response).await
    }

    /// Password verifications the app has run.
    pub(crate) fn password_verifications(&self) -> u64 {
        self.password_verifications.load(Ordering::Relaxed)
    }

    /// A pool on the test's PostgreSQL database (the distributed mode only: a test
    /// that reads PostgreSQL directly says so with [`distributed_only`]).
    pub(crate) fn db(&self) -> &sqlx::PgPool {
        self.db
            .as_ref()
            .expect("this test reads PostgreSQL directly: guard it with distributed_only")
            .pool()
    }

    /// The event store the platform writes, for commands a test drives itself.
    pub(crate) fn store(&self) -> &emporium_commands::AnyStore {
        &self.store
    }

    /// The event store's database (`events`, `unique_keys`, the checkout's and the
    /// payment provider's tables), through the store port.
    pub(crate) fn events_db(&self) -> emporium_commands::sql::Db {
        self.store.db()
    }

    /// The read models' database.
    pub(crate) fn read_db(&self) -> &emporium_commands::sql::Db {
        &self.read_db
    }

    /// The gateway's own tables' database (sessions, tokens, the mail ledger).
    pub(crate) fn own_db(&self) -> &emporium_commands::sql::Db {
        &self.own_db
    }

    /// A checkpoint watch over the platform's read models, for tests that wait for
    /// commands they drove themselves.
    pub(crate) async fn watch(&self) -> emporium_projections::projection::CheckpointWatch {
        match &self.watch {
            Some(watch) => watch.clone(),
            None => {
                // A pool of its own: the test database's pool has one connection.
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(4)
                    .connect(self.settings.database.url.expose())
                    .await
                    .expect("watch pool");
                emporium_projections::projection::CheckpointWatch::start(pool)
                    .await
                    .expect("checkpoint watch")
            }
        }
    }

    /// Waits until `projection` has applied every event recorded so far (the store's
    /// last position), through the checkpoint watch: no polling of the read model.
    pub(crate) async fn caught_up(&self, projection: &str) {
        let last = number(
            &self.events_db(),
            "SELECT coalesce(max(position), 0) FROM events",
            emporium_commands::args![],
        )
        .await;
        if last == 0 {
            return;
        }
        self.watch()
            .await
            .wait_for_position(projection, last, Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("{projection} did not catch up: {e}"));
    }

    /// Moves the app's clock forward.
    pub(crate) fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    // One helper per operation.

    /// `register`.
    pub(crate) async fn register(&self, email: &str, password: &str) -> Gql {
        self.post_graphql(
            &format!("mutation($input: RegisterInput!) {{ register(input: $input) {{ {AUTH_FIELDS} }} }}"),
            json!({ "input": { "email": email, "password": password, "firstName": "Ada", "lastName": "Lovelace" } }),
            None,
        )
        .await
    }

    /// `login`, optionally as a client at `ip` (needs `http.trust_forwarded_for`).
    pub(crate) async fn login_from(&self, email: &str, password: &str, ip: Option<&str>) -> Gql {
        self.post_json(
            &json!({
                "query": format!("mutation($input: LoginInput!) {{ login(input: $input) {{ {AUTH_FIELDS} }} }}"),
                "variables": { "input": { "email": email, "password": password } },
            }),
            None,
            ip,
        )
        .await
    }

    /// `login`.
    pub(crate) async fn login(&self, email: &str, password: &str) -> Gql {
        self.login_from(email, password, None).await
    }

    /// `refreshToken`.
    pub(crate) async fn refresh_token(&self, refresh_token: &str) -> Gql {
        self.post_graphql(
            &format!(
                "mutation($t: String!) {{ refreshToken(refreshToken: $t) {{ {AUTH_FIELDS} }} }}"
            ),
            json!({ "t": refresh_token }),
            None,
        )
        .await
    }

    /// `logout`.
    pub(crate) async fn logout(&self, access: &str, everywhere: bool) -> Gql {
        self.post_graphql(
            "mutation($e: Boolean!) { logout(everywhere: $e) }",
            json!({ "e": everywhere }),
            Some(access),
        )
        .await
    }

    /// `me`.
    pub(crate) async fn me(&self, access: Option<&str>) -> Gql {
        self.post_graphql(&format!("{{ me {{ {USER_FIELDS} }} }}"), json!({}), access)
            .await
    }

    /// `verifyEmail`.
    pub(crate) async fn verify_email(&self, token: &str) -> Gql {
        self.post_graphql(
            &format!("mutation($t: String!) {{ verifyEmail(token: $t) {{ {USER_FIELDS} }} }}"),
            json!({ "t": token }),
            None,
        )
        .await
    }

    /// `requestPasswordReset`.
    pub(crate) async fn request_password_reset(&self, email: &str) -> Gql {
        self.post_graphql(
            "mutation($e: String!) { requestPasswordReset(email: $e) }",
            json!({ "e": email }),
            None,
        )
        .await
    }

    /// `confirmPasswordReset`.
    pub(crate) async fn confirm_password_reset(&self, token: &str, new_password: &str) -> Gql {
        self.post_graphql(
            "mutation($t: String!, $p: String!) { confirmPasswordReset(token: $t, newPassword: $p) }",
            json!({ "t": token, "p": new_password }),
            None,
        )
        .await
    }

    /// `changePassword`.
    pub(crate) async fn change_password(
        &self,
        access: &str,
        current: &str,
        new_password: &str,
    ) -> Gql {
        self.post_graphql(
            &format!(
                "mutation($c: String!, $n: String!) {{ changePassword(currentPassword: $c, newPassword: $n) {{ {USER_FIELDS} }} }}"
            ),
            json!({ "c": current, "n": new_password }),
            Some(access),
        )
        .await
    }

    /// `updatePreferences`.
    pub(crate) async fn update_preferences(&self, access: &str, input: Value) -> Gql {
        self.post_graphql(
            &format!(
                "mutation($i: PreferencesInput!) {{ updatePreferences(input: $i) {{ {USER_FIELDS} }} }}"
            ),
            json!({ "i": input }),
            Some(access),
        )
        .await
    }

    /// Registers `email` and returns its (access, refresh) tokens.
    pub(crate) async fn signed_up(&self, email: &str, password: &str) -> (String, String) {
        let r = self.register(email, password).await;
        let payload = r.ok("register");
        (
            payload["accessToken"]
                .as_str()
                .expect("access token")
                .to_owned(),
            payload["refreshToken"]
                .as_str()
                .expect("refresh token")
                .to_owned(),
        )
    }

    /// Registers `email` as a staff member (the operator's `users set-role`, then a
    /// fresh sign-in so the token carries the role) and returns its access token.
    pub(crate) async fn staff_signed_up(&self, email: &str, password: &str) -> String {
        self.signed_up_with_role(email, password, Role::Staff).await
    }

    /// Registers `email`, gives it `role` as an operator would, signs in again and
    /// returns the new access token.
    pub(crate) async fn signed_up_with_role(
        &self,
        email: &str,
        password: &str,
        role: Role,
    ) -> String {
        self.signed_up(email, password).await;
        self.promoted(email, password, role).await
    }

    async fn promoted(&self, email: &str, password: &str, role: Role) -> String {
        emporium_gateway::auth::set_role(self.store(), email, role, self.clock.now())
            .await
            .expect("role changed");
        let r = self.login(email, password).await;
        tokens(r.ok("login")).0
    }

    /// Stops the server gracefully and drops the test's database.
    pub(crate) async fn teardown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task")
                .expect("server stopped cleanly");
        }
        if let Some(db) = self.db.take() {
            db.drop_database().await.expect("drop test database");
        }
    }
}

/// The (access, refresh) tokens of an `AuthPayload`.
pub(crate) fn tokens(payload: &Value) -> (String, String) {
    (
        payload["accessToken"]
            .as_str()
            .expect("access token")
            .to_owned(),
        payload["refreshToken"]
            .as_str()
            .expect("refresh token")
            .to_owned(),
    )
}
