//! OpenTelemetry: `emporium serve` with `telemetry.otlp_endpoint` exports its spans
//! over OTLP/HTTP to a collector this test runs on loopback, and the trace a client
//! started continues through the gateway into the event store.
//!
//! A request carrying `traceparent` (trace T, span P) registers a user. After the
//! process is stopped with SIGTERM (which flushes the exporter), the collector holds a
//! `server` span "POST /graphql" of trace T whose parent is P, an operation span under
//! it, and the `UserRegistered` event's metadata names trace T with the request span as
//! its parent: one trace from the client to the event store.
#![cfg(feature = "otel")]

use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use emporium_tests::{TestDatabase, nats_url, unique_prefix};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message as _;
use serde_json::json;
use support::{emporium, free_port, graphql};

mod support;

type Received = Arc<Mutex<Vec<(String, Span)>>>;

/// A collector: every span of every export request, with its resource's service name.
async fn collector() -> (u16, Received) {
    async fn export(State(received): State<Received>, body: Bytes) -> &'static str {
        let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf body");
        let mut received = received.lock().unwrap();
        for resource in request.resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .map(|v| format!("{:?}", v.value))
                .unwrap_or_default();
            for scope in resource.scope_spans {
                for span in scope.spans {
                    received.push((service.clone(), span));
                }
            }
        }
        ""
    }
    let received = Received::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new()
        .route("/v1/traces", post(export))
        .with_state(Arc::clone(&received));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, received)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_trace_continues_through_the_gateway_into_the_event_store() {
    let db = TestDatabase::create(4).await.unwrap();
    emporium_gateway::db::migrate(db.pool()).await.unwrap();
    let (collector_port, received) = collector().await;
    let port = free_port();
    let prefix = unique_prefix();

    let mut child = emporium()
        .args(["--env", "test", "--port", &port.to_string(), "serve"])
        .env("DATABASE_URL", db.url())
        .env("NATS_URL", nats_url())
        .env("EMPORIUM_NATS__STREAM_PREFIX", &prefix)
        .env("EMPORIUM_LIMITS__RATE__ENABLED", "false")
        .env(
            "EMPORIUM_TELEMETRY__OTLP_ENDPOINT",
            format!("http://127.0.0.1:{collector_port}/v1/traces"),
        )
        .env("EMPORIUM_TELEMETRY__SERVICE_NAME", "emporium-otel-test")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start emporium serve");
    let deadline = Instant::now() + Duration::from_secs(120);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "emporium serve exited early"
        );
        assert!(Instant::now() < deadline, "emporium serve never listened");
        std::thread::sleep(Duration::from_millis(50));
    }

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_id = "00f067aa0ba902b7";
    let answer = tokio::task::spawn_blocking(move || {
        graphql(
            port,
            "mutation R($input: RegisterInput!) { register(input: $input) { tokenType } }",
            json!({ "input": {
                "email": "traced@example.com",
                "password": "correct horse battery",
                "firstName": "Tracy"
            }}),
            &[("traceparent", &format!("00-{trace_id}-{parent_id}-01"))],
        )
    })
    .await
    .unwrap();
    assert_eq!(
        answer["data"]["register"]["tokenType"], "Bearer",
        "{answer}"
    );

    // SIGTERM: graceful shutdown flushes the exporter's last batch.
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let spans = received.lock().unwrap().clone();
    let request = spans
        .iter()
        .map(|(_, s)| s)
        .find(|s| s.name == "POST /graphql" && hex(&s.trace_id) == trace_id)
        .unwrap_or_else(|| panic!("no request span of the client's trace in {spans:?}"));
    assert_eq!(hex(&request.parent_span_id), parent_id);
    assert_eq!(request.kind, SpanKind::Server as i32);
    assert!(
        spans
            .iter()
            .all(|(service, _)| service.contains("emporium-otel-test")),
        "{spans:?}"
    );
    let operation = spans
        .iter()
        .map(|(_, s)| s)
        .find(|s| s.parent_span_id == request.span_id)
        .unwrap_or_else(|| panic!("no operation span under the request span in {spans:?}"));
    assert_eq!(operation.name, "graphql mutation register");
    assert_eq!(hex(&operation.trace_id), trace_id);

    let stored: String = sqlx::query_scalar(
        "SELECT metadata->>'traceparent' FROM events WHERE event_type = 'UserRegistered'",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(
        stored,
        format!("00-{trace_id}-{}-01", hex(&request.span_id)),
        "the event names the exported request span as its parent"
    );

    let client = async_nats::connect(nats_url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let layout = emporium_projections::bus::StreamLayout::new(&prefix).unwrap();
    drop(js.delete_stream(layout.stream_name()).await);
    db.drop_database().await.unwrap();
}
