//! Traces: OpenTelemetry over OTLP/gRPC, fed by the `tracing` spans of the request path.
//!
//! Every request is one trace: a server span (`chat`) whose parent is the caller's W3C
//! `traceparent` (gRPC metadata or HTTP header), with a child per stage (`sluice.auth`,
//! `sluice.rules`, `sluice.cache`, `sluice.score`, `sluice.local`, `sluice.budget`, one
//! `sluice.tier` per tier tried, each holding its HTTP attempts and retry waits, and
//! `sluice.fallback`). The tier's HTTP call carries the attempt span as its `traceparent`.
//! Attributes follow the OpenTelemetry GenAI conventions (`gen_ai.operation.name`,
//! `gen_ai.request.model`, `gen_ai.usage.input_tokens`, …) plus `sluice.route`,
//! `sluice.confidence`, `sluice.tier`. Prompts and answers are left out unless
//! `--trace-content` asks for them.

use std::time::Duration;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::gateway::types::AnswerMeta;

/// Bound on one export to the collector.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// The exporter of this process's spans; flush or shut it down before exit, or the last
/// batch is lost.
#[derive(Debug, Clone)]
pub struct Tracing {
    provider: SdkTracerProvider,
}

/// Why traces cannot be exported.
#[derive(Debug, thiserror::Error)]
#[error("cannot export traces to {endpoint}: {message}")]
pub struct TracingError {
    endpoint: String,
    message: String,
}

impl Tracing {
    /// Batches spans to the OTLP/gRPC collector at `endpoint` (like
    /// `http://otel-collector:4317`) as service `service`. Must run inside a Tokio runtime
    /// (the gRPC channel needs it). Connects lazily: a collector that is down costs dropped
    /// batches (logged), never a request.
    pub fn start(endpoint: &str, service: &str) -> Result<Self, TracingError> {
        let error = |message: String| TracingError {
            endpoint: endpoint.to_owned(),
            message,
        };
        if !endpoint.starts_with("http://") && !endpoint.starts_with("https://") {
            return Err(error(
                "expected an http:// or https:// url of the collector's gRPC port (4317)".into(),
            ));
        }
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| error(e.to_string()))?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                Resource::builder()
                    .with_service_name(service.to_owned())
                    .build(),
            )
            .build();
        Ok(Self { provider })
    }

    /// The `tracing` layer that turns spans into OpenTelemetry spans for this exporter.
    pub fn layer<S>(
        &self,
    ) -> tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        tracing_opentelemetry::layer().with_tracer(self.provider.tracer("sluice"))
    }

    /// Sends the spans ended so far. Blocks until the export is done: call it off the async
    /// workers (`spawn_blocking`), whose runtime carries the gRPC channel.
    pub fn flush(&self) {
        if let Err(e) = self.provider.force_flush() {
            tracing::warn!(error = %e, "could not flush traces");
        }
    }

    /// Sends what is left and stops the exporter. Blocks like [`flush`](Self::flush).
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "could not flush traces at shutdown");
        }
    }
}

/// The server span of one request, its parent taken from the W3C `traceparent` (and
/// `tracestate`) the caller sent, if any. `operation` is `chat` or `score`.
pub fn request_span(carrier: &dyn Extractor, operation: &'static str) -> tracing::Span {
    let span = tracing::info_span!(
        "sluice.request",
        otel.name = operation,
        otel.kind = "server",
        otel.status_code = Empty,
        "gen_ai.operation.name" = operation,
        "gen_ai.request.model" = Empty,
        "gen_ai.response.model" = Empty,
        "gen_ai.response.finish_reasons" = Empty,
        "gen_ai.usage.input_tokens" = Empty,
        "gen_ai.usage.output_tokens" = Empty,
        "gen_ai.input.messages" = Empty,
        "gen_ai.output.messages" = Empty,
        "sluice.tenant" = Empty,
        "sluice.policy" = Empty,
        "sluice.route" = Empty,
        "sluice.reason" = Empty,
        "sluice.confidence" = Empty,
        "sluice.tier" = Empty,
        "sluice.cost_usd" = Empty,
        "error.type" = Empty,
    );
    let parent = TraceContextPropagator::new().extract(carrier);
    // Fails only when the span is disabled (no subscriber wants it): nothing to parent.
    let _ = span.set_parent(parent);
    span
}

/// Records the answer's routing and usage on the request span.
pub fn record_answer(span: &tracing::Span, meta: &AnswerMeta) {
    span.record("sluice.policy", meta.decision.policy.as_str());
    span.record("sluice.route", meta.route.kind.as_str());
    span.record("sluice.reason", meta.decision.reason);
    if let Some(c) = meta.decision.confidence {
        span.record("sluice.confidence", c);
    }
    if let Some(tier) = &meta.route.tier {
        span.record("sluice.tier", tier.as_str());
    }
    span.record("gen_ai.response.model", meta.route.model.as_str());
    span.record(
        "gen_ai.response.finish_reasons",
        format!("[\"{}\"]", meta.finish_reason).as_str(),
    );
    span.record("gen_ai.usage.input_tokens", meta.usage.prompt_tokens);
    span.record("gen_ai.usage.output_tokens", meta.usage.completion_tokens);
    span.record("sluice.cost_usd", meta.usage.cost_usd);
}

/// Records a failed request on its span.
pub fn record_error(span: &tracing::Span, kind: &str) {
    span.record("otel.status_code", "ERROR");
    span.record("error.type", kind);
}

/// Puts the current span's context into `headers` as `traceparent` (and `tracestate`), for
/// a call to a tier. Nothing when tracing is off.
pub fn inject_current(headers: &mut http::HeaderMap) {
    let cx = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(headers));
}

/// gRPC metadata as a source of `traceparent`, read in place.
#[derive(Debug)]
pub struct MetadataExtractor<'a>(pub &'a tonic::metadata::MetadataMap);

impl Extractor for MetadataExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|k| match k {
                tonic::metadata::KeyRef::Ascii(k) => Some(k.as_str()),
                tonic::metadata::KeyRef::Binary(_) => None,
            })
            .collect()
    }
}

/// HTTP headers as a source of `traceparent`.
#[derive(Debug)]
pub struct HeaderExtractor<'a>(pub &'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}
