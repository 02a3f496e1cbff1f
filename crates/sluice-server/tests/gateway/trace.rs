//! Traces: a real OTLP/gRPC receiver (tonic, the OTLP proto types) gets the spans of one
//! escalated request as one trace under the caller's `traceparent`, the tier's HTTP call
//! carries the attempt span's `traceparent`, and no prompt text is exported.
//!
//! The tracing subscriber is process-wide: spans of other tests running beside this one are
//! exported too, and told apart by their trace id.

use std::collections::HashMap;
use std::sync::Mutex;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use sluice_server::telemetry::Tracing;
use tracing_subscriber::layer::SubscriberExt;

use super::*;

#[derive(Debug, Default, Clone)]
struct Collector(Arc<Mutex<Vec<Span>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans);
        self.0.lock().unwrap().extend(spans);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attr(span: &Span, key: &str) -> Option<String> {
    let value = span
        .attributes
        .iter()
        .find(|a| a.key == key)?
        .value
        .as_ref()?;
    Some(match value.value.as_ref()? {
        AnyValue::StringValue(s) => s.clone(),
        AnyValue::IntValue(i) => i.to_string(),
        AnyValue::DoubleValue(d) => d.to_string(),
        AnyValue::BoolValue(b) => b.to_string(),
        other => format!("{other:?}"),
    })
}

// Flushing blocks its thread until the export is done, which a second worker carries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escalated_request_arrives_as_one_trace_under_the_callers_parent() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let collector = Collector::default();
    let server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(collector.clone()))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    tokio::spawn(server);
    let traces = Tracing::start(&endpoint, "sluice-test").unwrap();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(traces.layer()))
        .expect("no other test sets a global subscriber");

    let mock = MockUpstream::start(MockConfig::default()).await.unwrap();
    let h = Harness::single(
        policy_yaml("default", &[("large", &mock.base_url())], "local"),
        FakeLocal::new("draft", UNSURE),
    )
    .await;
    let (trace_id, parent_id) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let secret = "the secret prompt text";
    let mut req = tonic::Request::new(ask(secret, pb::RouteHint::Auto, ""));
    req.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-{parent_id}-01").parse().unwrap(),
    );
    let answer = h.router().await.chat(req).await.unwrap().into_inner();
    assert_eq!(answer.route.unwrap().kind(), pb::RouteKind::Remote);

    // The server span ends when the handler's response is sent: wait for it, then flush.
    let mut spans = Vec::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t = traces.clone();
        tokio::task::spawn_blocking(move || t.flush())
            .await
            .unwrap();
        spans = collector
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|s| hex(&s.trace_id) == trace_id)
            .cloned()
            .collect();
        if spans.iter().any(|s| s.name == "chat") && spans.iter().any(|s| s.name == "chat big") {
            break;
        }
    }
    let by_name: HashMap<&str, &Span> = spans.iter().map(|s| (s.name.as_str(), s)).collect();
    let names: Vec<&str> = by_name.keys().copied().collect();
    for stage in [
        "chat",
        "sluice.auth",
        "sluice.cache",
        "sluice.score",
        "sluice.budget",
        "sluice.tier",
        "chat big",
    ] {
        assert!(by_name.contains_key(stage), "no {stage} span in {names:?}");
    }

    // The server span hangs under the caller's span; every other span under one of the trace.
    let root = by_name["chat"];
    assert_eq!(hex(&root.parent_span_id), parent_id);
    let ids: Vec<String> = spans.iter().map(|s| hex(&s.span_id)).collect();
    for s in &spans {
        if s.name != "chat" {
            assert!(
                ids.contains(&hex(&s.parent_span_id)),
                "{} has a parent outside the trace",
                s.name
            );
        }
    }
    let tier = by_name["sluice.tier"];
    let attempt = by_name["chat big"];
    assert_eq!(hex(&tier.parent_span_id), hex(&root.span_id));
    assert_eq!(hex(&attempt.parent_span_id), hex(&tier.span_id));

    // GenAI attributes and ours.
    assert_eq!(attr(root, "gen_ai.operation.name").as_deref(), Some("chat"));
    assert_eq!(attr(root, "sluice.route").as_deref(), Some("remote"));
    assert_eq!(attr(root, "sluice.tier").as_deref(), Some("large"));
    assert!(attr(root, "sluice.confidence").is_some());
    assert_eq!(
        attr(root, "gen_ai.usage.input_tokens").as_deref(),
        Some("12")
    );
    assert_eq!(
        attr(root, "gen_ai.usage.output_tokens").as_deref(),
        Some("7")
    );
    assert_eq!(
        attr(attempt, "gen_ai.request.model").as_deref(),
        Some("big")
    );
    assert_eq!(
        attr(attempt, "gen_ai.usage.input_tokens").as_deref(),
        Some("12")
    );
    assert_eq!(
        attr(attempt, "http.response.status_code").as_deref(),
        Some("200")
    );

    // The tier was called with the attempt span as its parent.
    let sent = mock.requests()[0]
        .traceparent
        .clone()
        .expect("no traceparent sent");
    assert_eq!(sent, format!("00-{trace_id}-{}-01", hex(&attempt.span_id)));

    // No prompt in any span unless --trace-content says so.
    for s in &spans {
        for a in &s.attributes {
            assert!(
                !format!("{:?}", a.value).contains(secret),
                "{} holds the prompt",
                s.name
            );
        }
    }
    tokio::task::spawn_blocking(move || traces.shutdown())
        .await
        .unwrap();
}
