//! Tracing for binaries: a log layer (text or JSON) and, when an OTLP endpoint is configured,
//! an OpenTelemetry span exporter with W3C trace-context propagation. Only binaries call this.

use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer};

use crate::Config;

/// Keeps the exporter alive; flushes spans when dropped.
#[derive(Debug, Default)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

/// Installs the global subscriber for a binary whose spans name `service_name` as their
/// OpenTelemetry service. Logs are filtered by `log`, exported spans by `trace_filter`.
pub fn init(config: &Config, service_name: &str) -> anyhow::Result<TelemetryGuard> {
    let filter = EnvFilter::try_new(&config.log).or_else(|_| EnvFilter::try_new("info"))?;
    let fmt: Box<dyn Layer<_> + Send + Sync> = if config.log_format == "json" {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed()
    } else {
        // Colour only for a person at a terminal, never in files, journald or pipes.
        use std::io::IsTerminal as _;
        tracing_subscriber::fmt::layer()
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed()
    };
    let registry = tracing_subscriber::registry().with(fmt);
    if config.otlp_endpoint.is_empty() {
        registry.try_init()?;
        return Ok(TelemetryGuard::default());
    }
    let spans = EnvFilter::try_new(&config.trace_filter).map_err(|e| {
        anyhow::anyhow!(
            "trace_filter {:?} is not a filter ({e}); use RUST_LOG syntax, e.g. info",
            config.trace_filter
        )
    })?;
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(&config.otlp_endpoint)
        .build()?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service_name.to_owned())
                .with_attribute(opentelemetry::KeyValue::new(
                    "service.namespace",
                    config.namespace.clone(),
                ))
                .build(),
        )
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    registry
        .with(
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer(service_name.to_owned()))
                .with_filter(spans),
        )
        .try_init()?;
    Ok(TelemetryGuard {
        provider: Some(provider),
    })
}

/// Reads W3C trace context from HTTP/gRPC headers.
pub struct HeaderExtractor<'a>(pub &'a tonic::codegen::http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The span of one gRPC request, parented on the caller's `traceparent` when it sends one.
pub fn request_span(req: &tonic::codegen::http::Request<()>) -> tracing::Span {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let path = req.uri().path();
    let (service, method) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or((path, ""));
    let span = tracing::info_span!(
        "grpc",
        otel.name = %path.trim_start_matches('/'),
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = %service,
        rpc.method = %method,
    );
    let parent = opentelemetry::global::get_text_map_propagator(|p| {
        p.extract(&HeaderExtractor(req.headers()))
    });
    let _ = span.set_parent(parent);
    span
}
