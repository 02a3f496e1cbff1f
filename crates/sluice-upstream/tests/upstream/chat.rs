//! Non-streaming calls.

use std::time::{Duration, Instant};

use serde_json::json;
use sluice_test_support::{unused_local_addr, MockBehavior, MockConfig};
use sluice_upstream::{UpstreamError, Usage};

use super::*;

#[tokio::test]
async fn answers_with_usage_and_cost() {
    let mock = mock(MockBehavior::Ok).await;
    let tier = tier(mock.base_url());
    let completion = client().chat(&tier, &request()).await.unwrap();

    assert_eq!(completion.content, MockConfig::default().answer);
    assert_eq!(completion.finish_reason, "stop");
    assert_eq!(completion.model, "mock-large");
    assert_eq!(
        completion.usage,
        Usage {
            prompt_tokens: 12,
            completion_tokens: 7
        }
    );
    assert_eq!(completion.cost_usd, tier.price.cost(12, 7));
    assert!((completion.cost_usd - 0.000_006).abs() < 1e-15);
    assert!((completion.cost_usd - DEFAULT_COST).abs() < 1e-15);

    let requests = mock.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].authorization, None);
    assert_eq!(
        requests[0].body,
        json!({
            "model": "gpt-test",
            "messages": [
                {"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": "What is the capital of France?"}
            ],
            "max_tokens": 32
        })
    );
}

#[tokio::test]
async fn sends_the_bearer_key() {
    let mock = mock(MockBehavior::Ok).await;
    let mut tier = tier(mock.base_url());
    tier.api_key_env = Some(KEY_ENV.into());
    client().chat(&tier, &request()).await.unwrap();
    let requests = mock.requests();
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some("Bearer sk-test-123")
    );
}

#[tokio::test]
async fn missing_key_fails_before_sending() {
    let mock = mock(MockBehavior::Ok).await;
    let mut tier = tier(mock.base_url());
    tier.api_key_env = Some("SLUICE_TEST_UNSET_KEY".into());
    let err = client().chat(&tier, &request()).await.unwrap_err();
    assert_eq!(
        err,
        UpstreamError::MissingApiKey {
            tier: "large".into(),
            env: "SLUICE_TEST_UNSET_KEY".into()
        }
    );
    assert!(!err.is_retryable());
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn server_errors_are_retried_then_reported() {
    let mock = mock(MockBehavior::Status(500)).await;
    let mut tier = tier(mock.base_url());
    tier.retries = 2;
    let err = client().chat(&tier, &request()).await.unwrap_err();
    let UpstreamError::Status {
        tier: name,
        status,
        body,
        retry_after,
    } = &err
    else {
        panic!("expected a status error, got {err:?}");
    };
    assert_eq!((name.as_str(), *status), ("large", 500));
    assert!(body.contains("mock upstream failure"), "{body}");
    assert_eq!(*retry_after, None);
    assert!(err.is_retryable());
    assert_eq!(mock.requests().len(), 3);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let mock = mock(MockBehavior::Status(400)).await;
    let mut tier = tier(mock.base_url());
    tier.retries = 3;
    let err = client().chat(&tier, &request()).await.unwrap_err();
    assert!(
        matches!(err, UpstreamError::Status { status: 400, .. }),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test]
async fn a_retry_can_succeed() {
    let mock = mock(MockBehavior::FailThenOk {
        status: 429,
        failures: 1,
    })
    .await;
    let mut tier = tier(mock.base_url());
    tier.retries = 1;
    let completion = client().chat(&tier, &request()).await.unwrap();
    assert_eq!(completion.usage.completion_tokens, 7);
    assert_eq!(mock.requests().len(), 2);
}

#[tokio::test]
async fn slow_upstream_times_out() {
    let mock = mock(MockBehavior::Delay(Duration::from_secs(3))).await;
    let mut tier = tier(mock.base_url());
    tier.timeout = Duration::from_millis(200);
    let started = Instant::now();
    let err = client().chat(&tier, &request()).await.unwrap_err();
    assert_eq!(
        err,
        UpstreamError::Timeout {
            tier: "large".into(),
            after: Duration::from_millis(200),
            what: "total",
        }
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn timeout_bounds_the_retries() {
    let mock = mock(MockBehavior::Status(503)).await;
    let mut tier = tier(mock.base_url());
    tier.timeout = Duration::from_millis(300);
    tier.retries = 50;
    let started = Instant::now();
    let err = client().chat(&tier, &request()).await.unwrap_err();
    assert!(
        matches!(
            err,
            UpstreamError::Status { status: 503, .. } | UpstreamError::Timeout { .. }
        ),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(mock.requests().len() < 51);
}

#[tokio::test]
async fn connection_refused_names_the_tier() {
    let mut tier = tier(unused_local_addr());
    tier.retries = 1;
    let err = client().chat(&tier, &request()).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Connect { .. }), "{err:?}");
    assert_eq!(err.tier(), "large");
    assert!(err.to_string().starts_with("tier large: "), "{err}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn malformed_json_is_a_decode_error() {
    let mock = mock(MockBehavior::MalformedJson).await;
    let mut tier = tier(mock.base_url());
    tier.retries = 2;
    let err = client().chat(&tier, &request()).await.unwrap_err();
    let UpstreamError::Decode {
        tier: name,
        message,
    } = &err
    else {
        panic!("expected a decode error, got {err:?}");
    };
    assert_eq!(name, "large");
    assert!(
        message.starts_with("expected a chat.completion json object, found \"{"),
        "{message}"
    );
    assert_eq!(mock.requests().len(), 1, "decode errors are not retried");
}

#[tokio::test]
async fn sends_generation_parameters_only_when_set() {
    let mock = mock(MockBehavior::Ok).await;
    let tier = tier(mock.base_url());
    let mut request = request();
    request.max_tokens = None;
    request.temperature = Some(0.25);
    request.top_p = Some(0.5);
    request.stop = vec!["END".into()];
    client().chat(&tier, &request).await.unwrap();
    let body = &mock.requests()[0].body;
    assert!(body.get("max_tokens").is_none());
    assert_eq!(body["temperature"], 0.25);
    assert_eq!(body["top_p"], 0.5);
    assert_eq!(body["stop"], json!(["END"]));
    assert!(body.get("stream").is_none());
}

#[tokio::test]
async fn one_client_reuses_its_connection() {
    let mock = mock(MockBehavior::Ok).await;
    let tier = tier(mock.base_url());
    let client = client();
    for _ in 0..3 {
        client.chat(&tier, &request()).await.unwrap();
    }
    let requests = mock.requests();
    assert_eq!(requests.len(), 3);
    assert!(
        requests.iter().all(|r| r.peer == requests[0].peer),
        "expected one kept-alive connection, found peers {:?}",
        requests.iter().map(|r| r.peer).collect::<Vec<_>>()
    );
}
