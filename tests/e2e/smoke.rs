//! The platform starts, answers health, readiness, metrics and a GraphQL query.

use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn health_readiness_metrics_and_graphql_answer() {
    let app = spawn_app().await;

    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");

    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready", "{body}");

    let response = app.graphql("{ version }", json!({})).await;
    assert_eq!(
        response["data"]["version"],
        env!("CARGO_PKG_VERSION"),
        "{response}"
    );

    let metrics = app.get("/metrics").await;
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains(r#"emporium_http_requests_total{route="/graphql",status="2xx"}"#),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("emporium_graphql_operations_total{")
                && l.contains(r#"operation_type="query""#)
                && l.contains(r#"status="ok""#)),
        "{text}"
    );

    app.teardown().await;
}

#[tokio::test]
async fn readiness_names_nats_when_it_is_down() {
    if crate::helpers::distributed_only("the embedded mode has no NATS") {
        return;
    }
    // A port nothing listens on: bind, note it, release it.
    let dead_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let app = spawn_app_with(|s| {
        s.nats.url =
            emporium_gateway::config::SecretUrl::new(format!("nats://127.0.0.1:{dead_port}"));
    })
    .await;

    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "not_ready");
    let checks = body["checks"].as_array().unwrap();
    let nats = checks.iter().find(|c| c["name"] == "nats").unwrap();
    let postgres = checks.iter().find(|c| c["name"] == "postgres").unwrap();
    assert_eq!(nats["ok"], false, "{body}");
    assert_eq!(postgres["ok"], true, "{body}");
    // Liveness is unaffected.
    assert_eq!(app.get("/healthz").await.status(), 200);

    app.teardown().await;
}

#[tokio::test]
async fn migrations_run_again_on_an_already_migrated_database() {
    if crate::helpers::distributed_only("PostgreSQL's shared migrations table") {
        return;
    }
    let app = spawn_app().await;
    // A restart migrates again: the event store's and the gateway's migrations share
    // one table, so each side must tolerate the other's.
    emporium_gateway::db::migrate(app.db())
        .await
        .expect("second migration run");
    app.teardown().await;
}

#[tokio::test]
async fn every_read_model_is_installed_before_the_app_serves() {
    let app = spawn_app().await;
    // Straight after start, with no wait: a query never meets a view its runner has
    // not built yet.
    let installed: Vec<(String,)> = app
        .read_db()
        .fetch_all(
            "SELECT name FROM projection_checkpoints ORDER BY name",
            emporium_commands::args![],
        )
        .await
        .expect("checkpoints");
    let installed: Vec<String> = installed.into_iter().map(|(n,)| n).collect();
    let mut expected: Vec<String> = emporium_projections::projection::all()
        .iter()
        .map(|p| p.name().to_owned())
        .collect();
    expected.sort();
    assert_eq!(installed, expected);
    app.teardown().await;
}
