//! The mock's injected faults, as the real client sees them.

use std::time::{Duration, Instant};

use sluice_test_support::{FaultPlan, MockBehavior, FAULT_HEADER};
use sluice_upstream::UpstreamError;

use super::*;

#[tokio::test]
async fn latency_then_an_answer() {
    let mock = mock(MockBehavior::Latency(Duration::from_millis(300))).await;
    let started = Instant::now();
    client()
        .chat(&tier(mock.base_url()), &request())
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(mock.counts(), [("latency".to_owned(), 1)].into());
}

#[tokio::test]
async fn retry_after_is_exposed_on_the_error() {
    let mock = mock(MockBehavior::RetryAfter {
        status: 429,
        seconds: 7,
    })
    .await;
    let err = client()
        .chat(&tier(mock.base_url()), &request())
        .await
        .unwrap_err();
    assert!(
        matches!(err, UpstreamError::Status { status: 429, .. }),
        "{err:?}"
    );
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    // Other statuses say nothing about waiting, even with the header.
    mock.set_behavior(MockBehavior::RetryAfter {
        status: 500,
        seconds: 7,
    });
    let err = client()
        .chat(&tier(mock.base_url()), &request())
        .await
        .unwrap_err();
    assert_eq!(err.retry_after(), None);
}

#[tokio::test]
async fn retry_after_sets_the_wait_before_the_retry() {
    let mock = mock(MockBehavior::Ok).await;
    mock.set_fault_plan(FaultPlan::Sequence(vec![MockBehavior::RetryAfter {
        status: 503,
        seconds: 1,
    }]));
    let mut tier = tier(mock.base_url());
    tier.retries = 1;
    let started = Instant::now();
    client().chat(&tier, &request()).await.unwrap();
    // The jittered backoff of a first retry is at most 100ms.
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(mock.requests().len(), 2);
}

#[tokio::test]
async fn retry_after_past_the_timeout_stops_retrying() {
    let mock = mock(MockBehavior::RetryAfter {
        status: 429,
        seconds: 10,
    })
    .await;
    let mut tier = tier(mock.base_url());
    tier.retries = 3;
    tier.timeout = Duration::from_secs(2);
    let started = Instant::now();
    let err = client().chat(&tier, &request()).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(10)));
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test]
async fn hang_is_a_timeout() {
    let mock = mock(MockBehavior::Hang).await;
    let mut tier = tier(mock.base_url());
    tier.timeout = Duration::from_millis(300);
    let started = Instant::now();
    let err = client().chat(&tier, &request()).await.unwrap_err();
    assert_eq!(
        err,
        UpstreamError::Timeout {
            tier: "large".into(),
            after: Duration::from_millis(300),
            what: "total",
        }
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(mock.counts(), [("hang".to_owned(), 1)].into());
}

#[tokio::test]
async fn reset_is_a_transport_error_and_retried() {
    let mock = mock(MockBehavior::Reset).await;
    let tier = tier(mock.base_url());
    let err = client().chat(&tier, &request()).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Transport { .. }), "{err:?}");
    assert!(err.is_retryable());
    let err = client().chat_stream(&tier, &request()).await.err().unwrap();
    assert!(matches!(err, UpstreamError::Transport { .. }), "{err:?}");

    mock.set_fault_plan(FaultPlan::Sequence(vec![MockBehavior::Reset]));
    let mut tier = tier;
    tier.retries = 1;
    client().chat(&tier, &request()).await.unwrap();
    assert_eq!(
        mock.counts(),
        [("ok".to_owned(), 1), ("reset".to_owned(), 3)].into()
    );
}

#[tokio::test]
async fn stream_cut_ends_the_stream_after_its_chunks() {
    let mock = mock(MockBehavior::StreamCut { after_chunks: 3 }).await;
    let tier = tier(mock.base_url());
    let events = collect(client().chat_stream(&tier, &request()).await.unwrap()).await;
    let (text, last) = split_stream(&events);
    assert_eq!(text, "Paris is the");
    assert!(
        matches!(last, Err(UpstreamError::Transport { .. })),
        "{last:?}"
    );
    // A whole answer is cut halfway through its body.
    let err = client().chat(&tier, &request()).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Transport { .. }), "{err:?}");
}

/// A raw request to the mock's OpenAI endpoint with an `x-mock-fault` header.
async fn post_with_fault(mock: &MockUpstream, fault: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", mock.base_url()))
        .header(FAULT_HEADER, fault)
        .json(&serde_json::json!({"model": "m", "messages": []}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_fault_header_picks_one_request_s_behaviour() {
    let mock = mock(MockBehavior::Ok).await;
    mock.set_fault_plan(FaultPlan::Sequence(vec![MockBehavior::Status(500)]));

    let response = post_with_fault(&mock, "retry_after=429,3").await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "3");
    let response = post_with_fault(&mock, &MockBehavior::Status(418).to_string()).await;
    assert_eq!(response.status(), 418);
    let response = post_with_fault(&mock, "sideways").await;
    assert_eq!(response.status(), 400);
    let text = response.text().await.unwrap();
    assert!(text.contains("expected a mock fault like"), "{text}");

    // Header-picked requests leave the plan where it was.
    let err = client()
        .chat(&tier(mock.base_url()), &request())
        .await
        .unwrap_err();
    assert!(
        matches!(err, UpstreamError::Status { status: 500, .. }),
        "{err:?}"
    );
    client()
        .chat(&tier(mock.base_url()), &request())
        .await
        .unwrap();
    assert_eq!(
        mock.counts(),
        [
            ("ok".to_owned(), 1),
            ("retry_after_429".to_owned(), 1),
            ("status_418".to_owned(), 1),
            ("status_500".to_owned(), 1),
        ]
        .into()
    );
}

#[tokio::test]
async fn the_fault_header_can_reset_and_hang() {
    let mock = mock(MockBehavior::Ok).await;
    let err = reqwest::Client::new()
        .post(format!("{}/v1/messages", mock.base_url()))
        .header(FAULT_HEADER, "reset")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_status(), "{err:?}");
    let hung = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", mock.base_url()))
        .header(FAULT_HEADER, "hang")
        .timeout(Duration::from_millis(200))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap_err();
    assert!(hung.is_timeout(), "{hung:?}");
}

/// The behaviours a random plan served over `n` calls.
async fn random_run(seed: u64, n: usize) -> std::collections::BTreeMap<String, usize> {
    let mock = mock(MockBehavior::Ok).await;
    mock.set_fault_plan(FaultPlan::Random {
        seed,
        faults: vec![
            (MockBehavior::Status(503), 0.3),
            (MockBehavior::MalformedJson, 0.2),
        ],
    });
    let tier = tier(mock.base_url());
    let client = client();
    for _ in 0..n {
        let _ = client.chat(&tier, &request()).await;
    }
    mock.counts()
}

#[tokio::test]
async fn random_plans_are_repeatable() {
    let counts = random_run(11, 60).await;
    assert_eq!(counts.values().sum::<usize>(), 60);
    for label in ["ok", "status_503", "malformed_json"] {
        assert!(counts.get(label).is_some_and(|n| *n > 3), "{counts:?}");
    }
    assert_eq!(random_run(11, 60).await, counts);
}
