//! Streaming calls.

use std::time::Duration;

use serde_json::json;
use sluice_test_support::{unused_local_addr, MockBehavior, MockConfig};
use sluice_upstream::{StreamEvent, UpstreamError, Usage};

use super::*;

#[tokio::test]
async fn streams_deltas_then_done_with_usage() {
    let mock = mock(MockBehavior::Ok).await;
    let mut tier = tier(mock.base_url());
    tier.api_key_env = Some(KEY_ENV.into());
    let stream = client().chat_stream(&tier, &request()).await.unwrap();
    let events = collect(stream).await;

    let (done, deltas) = events.split_last().unwrap();
    let deltas: Vec<String> = deltas
        .iter()
        .map(|e| match e {
            Ok(StreamEvent::Delta(text)) => text.clone(),
            other => panic!("expected a delta, got {other:?}"),
        })
        .collect();
    assert!(deltas.len() >= 3, "{deltas:?}");
    assert_eq!(deltas.concat(), MockConfig::default().answer);
    assert_eq!(
        done,
        &Ok(StreamEvent::Done {
            finish_reason: "stop".into(),
            model: "mock-large".into(),
            usage: Some(Usage {
                prompt_tokens: 12,
                completion_tokens: 7
            }),
            cost_usd: tier.price.cost(12, 7),
        })
    );
    let Ok(StreamEvent::Done { cost_usd, .. }) = done else {
        unreachable!()
    };
    assert!((cost_usd - DEFAULT_COST).abs() < 1e-15);

    let requests = mock.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some("Bearer sk-test-123")
    );
    assert_eq!(requests[0].body["stream"], true);
    assert_eq!(
        requests[0].body["stream_options"],
        json!({"include_usage": true})
    );
}

#[tokio::test]
async fn status_before_headers_is_returned_directly() {
    let mock = mock(MockBehavior::Status(503)).await;
    let mut tier = tier(mock.base_url());
    tier.retries = 1;
    let err = client().chat_stream(&tier, &request()).await.err().unwrap();
    assert!(
        matches!(err, UpstreamError::Status { status: 503, .. }),
        "{err:?}"
    );
    assert_eq!(mock.requests().len(), 2);
}

#[tokio::test]
async fn connection_refused_is_returned_directly() {
    let tier = tier(unused_local_addr());
    let err = client().chat_stream(&tier, &request()).await.err().unwrap();
    assert!(matches!(err, UpstreamError::Connect { .. }), "{err:?}");
    assert_eq!(err.tier(), "large");
}

#[tokio::test]
async fn slow_headers_time_out() {
    let mock = mock(MockBehavior::Delay(Duration::from_secs(3))).await;
    let mut tier = tier(mock.base_url());
    tier.timeout = Duration::from_millis(200);
    let err = client().chat_stream(&tier, &request()).await.err().unwrap();
    assert!(matches!(err, UpstreamError::Timeout { .. }), "{err:?}");
}

#[tokio::test]
async fn timeout_bounds_the_whole_stream() {
    let mock = mock(MockBehavior::SlowStream(Duration::from_millis(100))).await;
    let mut tier = tier(mock.base_url());
    tier.timeout = Duration::from_millis(600);
    tier.read_timeout = tier.timeout;
    let stream = client().chat_stream(&tier, &request()).await.unwrap();
    let events = collect(stream).await;
    assert_eq!(
        events.last(),
        Some(&Err(UpstreamError::Timeout {
            tier: "large".into(),
            after: Duration::from_millis(600),
            what: "total",
        }))
    );
    assert!(events[..events.len() - 1]
        .iter()
        .all(|e| matches!(e, Ok(StreamEvent::Delta(_)))));
}

#[tokio::test]
async fn malformed_chunk_ends_the_stream_with_a_decode_error() {
    let mock = mock(MockBehavior::MalformedJson).await;
    let tier = tier(mock.base_url());
    let stream = client().chat_stream(&tier, &request()).await.unwrap();
    let events = collect(stream).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let Err(UpstreamError::Decode {
        tier: name,
        message,
    }) = &events[0]
    else {
        panic!("expected a decode error, got {events:?}");
    };
    assert_eq!(name, "large");
    assert!(
        message.starts_with("expected a chat.completion.chunk json object, found"),
        "{message}"
    );
}
