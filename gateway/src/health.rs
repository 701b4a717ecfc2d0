//! Liveness, readiness and metrics endpoints.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;

use crate::app::AppState;

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

/// `GET /readyz`: 200 when PostgreSQL and NATS answer, else 503 naming what failed.
pub(crate) async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let postgres = async {
        let ping = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&state.pool);
        match tokio::time::timeout(CHECK_TIMEOUT, ping).await {
            Ok(Ok(_)) => Check {
                name: "postgres",
                ok: true,
                error: None,
            },
            Ok(Err(e)) => Check {
                name: "postgres",
                ok: false,
                error: Some(e.to_string()),
            },
            Err(_) => Check {
                name: "postgres",
                ok: false,
                error: Some("timed out".into()),
            },
        }
    };
    let nats = async {
        if emporium_projections::bus::is_connected(&state.nats) {
            Check {
                name: "nats",
                ok: true,
                error: None,
            }
        } else {
            Check {
                name: "nats",
                ok: false,
                error: Some(format!(
                    "not connected ({:?})",
                    state.nats.connection_state()
                )),
            }
        }
    };
    let (postgres, nats) = tokio::join!(postgres, nats);
    let checks = vec![postgres, nats];
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
