//! Logs and metrics.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

/// Installs the global tracing subscriber: readable lines or JSON, filtered by
/// `RUST_LOG` when set, else by `filter`. A second call is a no-op, so tests may start
/// several apps in one process.
pub fn init_tracing(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(filter));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Pretty => registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    // Already installed (a second app in the same test process): keep the first.
    drop(result);
}

/// The process-wide Prometheus recorder. `metrics` has one global recorder per
/// process, so every app in the process renders the same registry.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only when another recorder was installed first, in which case
            // this handle renders an empty registry: acceptable for embedders.
            drop(metrics::set_global_recorder(recorder));
            describe_metrics();
            handle
        })
        .clone()
}

fn describe_metrics() {
    metrics::describe_counter!(
        "emporium_http_requests_total",
        "HTTP requests served, by route and status class"
    );
    metrics::describe_histogram!(
        "emporium_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "HTTP request latency, by route"
    );
    metrics::describe_gauge!("emporium_build_info", "Always 1; labels carry the version");
}
