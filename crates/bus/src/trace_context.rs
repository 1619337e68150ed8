//! W3C trace context across the store and the bus: an event records the `traceparent` of the
//! span that appended it (it travels as the CloudEvents `traceparent` extension), and the relay's
//! publish and a consumer's handling are spans parented on it, so one trace runs from a gRPC
//! call through the append, the relay and the bus into the consuming service's handler.
//!
//! Without an OpenTelemetry layer installed (no `otlp_endpoint`) spans carry no context: nothing
//! is recorded and a traceparent received is passed on as it came.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The `traceparent` of `span` (version 00), when it belongs to an OpenTelemetry trace.
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    let otel = cx.span();
    let sc = otel.span_context();
    sc.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        )
    })
}

/// Makes `span` (not yet entered) a child of the span a `traceparent` names; a malformed or
/// absent one leaves it where it is.
pub fn follow(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(tp) = traceparent else { return };
    let carrier = HashMap::from([("traceparent".to_owned(), tp.to_owned())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}
