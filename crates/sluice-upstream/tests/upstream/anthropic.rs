//! Calls to Anthropic tiers (the Messages API), whole and streamed.

use serde_json::json;
use sluice_test_support::MockConfig;
use sluice_upstream::{StreamEvent, UpstreamError, Usage};

use super::*;

#[tokio::test]
async fn answers_with_usage_and_sends_the_messages_api_request() {
    let mock = mock(MockBehavior::Ok).await;
    let mut tier = anthropic_tier(mock.base_url());
    tier.api_key_env = Some(KEY_ENV.into());
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
    assert!((completion.cost_usd - DEFAULT_COST).abs() < 1e-15);

    let requests = mock.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.api_key.as_deref(), Some(KEY));
    assert_eq!(sent.authorization, None);
    assert_eq!(sent.anthropic_version.as_deref(), Some("2023-06-01"));
    assert_eq!(
        sent.body,
        json!({
            "model": "claude-test",
            "max_tokens": 32,
            "system": "Answer briefly.",
            "messages": [{"role": "user", "content": "What is the capital of France?"}]
        })
    );
}

#[tokio::test]
async fn max_tokens_defaults_to_1024() {
    let mock = mock(MockBehavior::Ok).await;
    let tier = anthropic_tier(mock.base_url());
    let mut request = request();
    request.max_tokens = None;
    client().chat(&tier, &request).await.unwrap();
    assert_eq!(mock.requests()[0].body["max_tokens"], 1024);
    assert_eq!(mock.requests()[0].api_key, None);
}

#[tokio::test]
async fn streams_deltas_then_done_with_usage() {
    let mock = mock(MockBehavior::Ok).await;
    let mut tier = anthropic_tier(mock.base_url());
    tier.api_key_env = Some(KEY_ENV.into());
    let stream = client().chat_stream(&tier, &request()).await.unwrap();
    let events = collect(stream).await;
    let (text, done) = split_stream(&events);
    assert_eq!(text, MockConfig::default().answer);
    assert!(events.len() >= 4, "{events:?}");
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
    let sent = &mock.requests()[0];
    assert_eq!(sent.body["stream"], true);
    assert!(sent.body.get("stream_options").is_none());
    assert_eq!(sent.api_key.as_deref(), Some(KEY));
}

#[tokio::test]
async fn overloaded_is_status_529_and_retried() {
    let mock = mock(MockBehavior::Status(529)).await;
    let mut tier = anthropic_tier(mock.base_url());
    tier.retries = 1;
    let err = client().chat(&tier, &request()).await.unwrap_err();
    let UpstreamError::Status { status, body, .. } = &err else {
        panic!("expected a status error, got {err:?}");
    };
    assert_eq!(*status, 529);
    assert!(body.contains("overloaded_error"), "{body}");
    assert_eq!(err.kind(), "status_5xx");
    assert_eq!(mock.requests().len(), 2);
}

#[tokio::test]
async fn malformed_answers_are_decode_errors() {
    let mock = mock(MockBehavior::MalformedJson).await;
    let tier = anthropic_tier(mock.base_url());
    let err = client().chat(&tier, &request()).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("tier large: expected a message json object, found"),
        "{err}"
    );
    let events = collect(client().chat_stream(&tier, &request()).await.unwrap()).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let Err(err) = &events[0] else {
        panic!("expected an error, got {events:?}");
    };
    assert!(
        err.to_string()
            .contains("expected a message stream event json object"),
        "{err}"
    );
}

#[tokio::test]
async fn a_cut_stream_fails_after_its_deltas() {
    let mock = mock(MockBehavior::StreamCut { after_chunks: 2 }).await;
    let tier = anthropic_tier(mock.base_url());
    let events = collect(client().chat_stream(&tier, &request()).await.unwrap()).await;
    let (text, last) = split_stream(&events);
    assert_eq!(text, "Paris is");
    assert!(
        matches!(last, Err(UpstreamError::Transport { .. })),
        "{last:?}"
    );
}
