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
    metrics::describe_counter!(
        crate::auth::METRIC_SESSION_CHECKS,
        "Access-token session checks, by answer: kept (known live, no statement) or asked"
    );
    metrics::describe_counter!(
        crate::graphql::parsed::METRIC,
        "Query documents handed to the schema, by answer: kept (parsed before) or parsed"
    );
}

/// OpenTelemetry traces: each GraphQL request is a `server` span (a child of the
/// caller's `traceparent` when it sent one) and each operation in it an `internal`
/// span under it. The request span's ids are the trace context every command of the
/// request carries ([`crate::tracecontext`]), so the spans a collector receives and
/// the `traceparent` stored with the events and published on the bus name the same
/// trace and parent. Exported over OTLP/HTTP by the SDK's batch processor (its own
/// thread); off unless [`TelemetrySettings::exporting`].
pub mod traces {
    use std::time::SystemTime;

    use crate::config::TelemetrySettings;
    use crate::tracecontext::TraceContext;

    #[cfg(feature = "otel")]
    mod imp {
        use std::sync::OnceLock;
        use std::time::SystemTime;

        use anyhow::Context as _;
        use opentelemetry::trace::{
            Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags,
            TraceId, TraceState, Tracer as _, TracerProvider as _,
        };
        use opentelemetry::{Context, KeyValue};
        use opentelemetry_sdk::Resource;
        use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

        use crate::config::TelemetrySettings;
        use crate::tracecontext::TraceContext;

        static PROVIDER: OnceLock<(SdkTracerProvider, SdkTracer)> = OnceLock::new();

        pub(super) fn init(settings: &TelemetrySettings) -> anyhow::Result<()> {
            if PROVIDER.get().is_some() || !settings.exporting() {
                return Ok(());
            }
            let mut builder = opentelemetry_otlp::SpanExporter::builder().with_http();
            if let Some(endpoint) = settings.otlp_endpoint.as_deref().filter(|e| !e.is_empty()) {
                use opentelemetry_otlp::WithExportConfig as _;
                builder = builder.with_endpoint(endpoint);
            }
            let exporter = builder.build().context("telemetry: OTLP span exporter")?;
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(
                    Resource::builder()
                        .with_service_name(settings.service_name.clone())
                        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
                        .build(),
                )
                .build();
            let tracer = provider.tracer("emporium-gateway");
            // A concurrent first call may win; either provider exports the same way.
            drop(PROVIDER.set((provider, tracer)));
            Ok(())
        }

        pub(super) fn shutdown() {
            if let Some((provider, _)) = PROVIDER.get() {
                if let Err(e) = provider.force_flush() {
                    tracing::warn!(error = %e, "telemetry: flushing spans failed");
                }
                drop(provider.shutdown());
            }
        }

        fn remote(context: &TraceContext) -> Context {
            Context::new().with_remote_span_context(SpanContext::new(
                TraceId::from_bytes(context.trace_id_bytes()),
                SpanId::from_bytes(context.span_id_bytes()),
                TraceFlags::new(context.flags()),
                true,
                TraceState::default(),
            ))
        }

        pub(super) struct Open(opentelemetry_sdk::trace::Span);

        pub(super) fn start(
            name: &'static str,
            parent: Option<&TraceContext>,
            tracestate: Option<String>,
        ) -> Option<(TraceContext, Open)> {
            let (_, tracer) = PROVIDER.get()?;
            let parent = parent.map_or_else(Context::new, remote);
            let span = tracer.build_with_context(
                tracer.span_builder(name).with_kind(SpanKind::Server),
                &parent,
            );
            let sc = span.span_context().clone();
            let context = TraceContext::from_parts(
                sc.trace_id().to_bytes(),
                sc.span_id().to_bytes(),
                sc.trace_flags().to_u8(),
                tracestate,
            );
            Some((context, Open(span)))
        }

        pub(super) fn end(mut open: Open, attributes: Vec<(&'static str, String)>, ok: bool) {
            for (k, v) in attributes {
                open.0.set_attribute(KeyValue::new(k, v));
            }
            if !ok {
                open.0.set_status(Status::error("failed"));
            }
            open.0.end();
        }

        pub(super) fn record(
            name: String,
            parent: &TraceContext,
            started: SystemTime,
            attributes: Vec<(&'static str, String)>,
            ok: bool,
        ) {
            let Some((_, tracer)) = PROVIDER.get() else {
                return;
            };
            let mut span = tracer.build_with_context(
                tracer
                    .span_builder(name)
                    .with_kind(SpanKind::Internal)
                    .with_start_time(started)
                    .with_attributes(attributes.into_iter().map(|(k, v)| KeyValue::new(k, v))),
                &remote(parent),
            );
            if !ok {
                span.set_status(Status::error("failed"));
            }
            span.end();
        }
    }

    #[cfg(not(feature = "otel"))]
    mod imp {
        use std::time::SystemTime;

        use crate::config::TelemetrySettings;
        use crate::tracecontext::TraceContext;

        pub(super) struct Open;

        pub(super) fn init(settings: &TelemetrySettings) -> anyhow::Result<()> {
            anyhow::ensure!(
                !settings.exporting(),
                "telemetry: an OTLP endpoint is configured but this build has no `otel` feature"
            );
            Ok(())
        }

        pub(super) fn shutdown() {}

        pub(super) fn start(
            _: &'static str,
            _: Option<&TraceContext>,
            _: Option<String>,
        ) -> Option<(TraceContext, Open)> {
            None
        }

        pub(super) fn end(_: Open, _: Vec<(&'static str, String)>, _: bool) {}

        pub(super) fn record(
            _: String,
            _: &TraceContext,
            _: SystemTime,
            _: Vec<(&'static str, String)>,
            _: bool,
        ) {
        }
    }

    /// Starts exporting spans when `settings` ask for it (once per process).
    ///
    /// # Errors
    /// When the exporter cannot be built (a malformed endpoint), or one is configured
    /// in a build without the `otel` feature.
    pub fn init(settings: &TelemetrySettings) -> anyhow::Result<()> {
        imp::init(settings)
    }

    /// Exports the spans still buffered and stops exporting (at shutdown).
    pub fn shutdown() {
        imp::shutdown();
    }

    /// A request's span, open until [`RequestSpan::end`] (not exported when dropped
    /// without it, e.g. a request cancelled by the client).
    pub struct RequestSpan(Option<imp::Open>);

    impl std::fmt::Debug for RequestSpan {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("RequestSpan")
                .field("exported", &self.0.is_some())
                .finish()
        }
    }

    impl RequestSpan {
        /// Ends the span with `attributes`, marked failed unless `ok`.
        pub fn end(self, attributes: Vec<(&'static str, String)>, ok: bool) {
            if let Some(open) = self.0 {
                imp::end(open, attributes, ok);
            }
        }
    }

    /// The trace context of a request that sent `traceparent`/`tracestate`, and its
    /// span: a child of the caller's span when the headers carry a valid context, else
    /// the root of a new trace. Without an exporter the context is made here alone
    /// ([`TraceContext::for_request`]) and nothing is exported.
    #[must_use]
    pub fn request(
        name: &'static str,
        traceparent: Option<&str>,
        tracestate: Option<&str>,
    ) -> (TraceContext, RequestSpan) {
        let parent = traceparent.and_then(|tp| TraceContext::parse(tp, tracestate));
        let state = parent
            .as_ref()
            .and_then(|p| p.tracestate().map(ToOwned::to_owned));
        match imp::start(name, parent.as_ref(), state) {
            Some((context, open)) => (context, RequestSpan(Some(open))),
            None => (
                TraceContext::for_request(traceparent, tracestate),
                RequestSpan(None),
            ),
        }
    }

    /// Exports a finished span named `name` under `parent` that started at `started`
    /// and ends now.
    pub fn record(
        name: String,
        parent: &TraceContext,
        started: SystemTime,
        attributes: Vec<(&'static str, String)>,
        ok: bool,
    ) {
        imp::record(name, parent, started, attributes, ok);
    }
}
