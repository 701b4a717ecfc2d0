//! `spawn_app()`: a platform of one's own, per test.

use std::path::PathBuf;
use std::time::Duration;

use emporium_gateway::app::Application;
use emporium_gateway::config::{Environment, Overrides, SecretUrl, Settings};
use emporium_tests::{TestDatabase, nats_url, unique_prefix};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running platform and a client for it.
pub(crate) struct TestApp {
    pub(crate) address: String,
    pub(crate) client: reqwest::Client,
    db: Option<TestDatabase>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Starts the platform with the test configuration, a fresh database and a unique
/// stream prefix; `customise` may change settings before it starts.
pub(crate) async fn spawn_app_with(customise: impl FnOnce(&mut Settings)) -> TestApp {
    let db = TestDatabase::create(1).await.expect("test database");
    let config_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config");
    let overrides = Overrides {
        port: Some(0),
        ..Overrides::default()
    };
    let mut settings = Settings::load(&config_dir, Environment::Test, &overrides)
        .expect("test configuration loads");
    settings.database.url = SecretUrl::new(db.url());
    settings.database.max_connections = 5;
    settings.nats.url = SecretUrl::new(nats_url());
    settings.nats.stream_prefix = unique_prefix();
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
        db: Some(db),
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
        if let Some(db) = self.db.take() {
            db.drop_database().await.expect("drop test database");
        }
    }
}
