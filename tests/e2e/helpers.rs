//! `spawn_app()`: a platform of one's own, per test.

use std::path::PathBuf;
use std::time::Duration;

use emporium_gateway::app::Application;
use emporium_gateway::config::{Environment, Overrides, SecretUrl, Settings};
use serde_json::{Value, json};
use sqlx::Connection;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// The server used to create and drop per-test databases.
fn maintenance_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn nats_url() -> String {
    std::env::var("TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// A running platform and a client for it.
pub(crate) struct TestApp {
    pub(crate) address: String,
    pub(crate) client: reqwest::Client,
    db_name: String,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Starts the platform with the test configuration, a fresh database and a unique
/// stream prefix; `customise` may change settings before it starts.
pub(crate) async fn spawn_app_with(customise: impl FnOnce(&mut Settings)) -> TestApp {
    let id = Uuid::new_v4().simple().to_string();
    let db_name = format!("emporium_test_{id}");
    let config_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config");
    let overrides = Overrides {
        port: Some(0),
        ..Overrides::default()
    };
    let mut settings = Settings::load(&config_dir, Environment::Test, &overrides)
        .expect("test configuration loads");
    let base = maintenance_url();
    let (server_url, _) = base
        .rsplit_once('/')
        .expect("maintenance url names a database");
    settings.database.url = SecretUrl::new(format!("{server_url}/{db_name}"));
    settings.database.max_connections = 5;
    settings.nats.url = SecretUrl::new(nats_url());
    settings.nats.stream_prefix = format!("t{id}");
    customise(&mut settings);

    let app = Application::build(settings, true)
        .await
        .expect("application builds");
    let address = format!("http://{}", app.local_addr().expect("bound"));
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
        db_name,
        shutdown: Some(tx),
        server: Some(server),
    }
}

/// Starts the platform with the test configuration.
pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
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
        self.client
            .post(format!("{}/graphql", self.address))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("request sent")
            .json()
            .await
            .expect("json body")
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
        let mut conn = sqlx::PgConnection::connect(&maintenance_url())
            .await
            .expect("maintenance connection");
        sqlx::query(&format!(
            r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#,
            self.db_name
        ))
        .execute(&mut conn)
        .await
        .expect("drop test database");
    }
}
