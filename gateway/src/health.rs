//! Liveness, readiness and metrics endpoints.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;

use crate::app::{AppState, Backing};

/// `GET /healthz`: the process is up and serving.
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// One dependency's readiness.
#[derive(Debug, Serialize)]
pub(crate) struct Check {
    name: &'static str,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Readiness {
    status: &'static str,
    checks: Vec<Check>,
}

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs `ping` with the check timeout and names the outcome `name`.
async fn check<E: std::fmt::Display>(
    name: &'static str,
    ping: impl std::future::Future<Output = Result<i32, E>>,
) -> Check {
    match tokio::time::timeout(CHECK_TIMEOUT, ping).await {
        Ok(Ok(_)) => Check {
            name,
            ok: true,
            error: None,
        },
        Ok(Err(e)) => Check {
            name,
            ok: false,
            error: Some(e.to_string()),
        },
        Err(_) => Check {
            name,
            ok: false,
            error: Some("timed out".into()),
        },
    }
}

/// `GET /readyz`: 200 when PostgreSQL and NATS answer (in the embedded mode: when
/// the event store and the read-model files answer), else 503 naming what failed.
pub(crate) async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let checks = match &state.backing {
        Backing::Distributed { pool, nats } => {
            let postgres = check(
                "postgres",
                sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(pool),
            );
            let nats = async {
                if emporium_projections::bus::is_connected(nats) {
                    Check {
                        name: "nats",
                        ok: true,
                        error: None,
                    }
                } else {
                    Check {
                        name: "nats",
                        ok: false,
                        error: Some(format!("not connected ({:?})", nats.connection_state())),
                    }
                }
            };
            let (postgres, nats) = tokio::join!(postgres, nats);
            vec![postgres, nats]
        }
        #[cfg(feature = "sqlite")]
        Backing::Embedded { store, read, own } => {
            let (events, read, own) = tokio::join!(
                check(
                    "events.db",
                    sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(store.pool())
                ),
                check(
                    "read.db",
                    sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(read)
                ),
                check(
                    "gateway.db",
                    sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(own)
                ),
            );
            vec![events, read, own]
        }
    };
    let ready = checks.iter().all(|c| c.ok);
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let status = if ready { "ready" } else { "not_ready" };
    (code, Json(Readiness { status, checks }))
}

/// `GET /metrics`: Prometheus text format.
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
