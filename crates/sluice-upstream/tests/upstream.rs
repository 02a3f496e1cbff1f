//! Integration tests of the upstream client against the in-process mock server.

// Helpers outside `#[test]` functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "upstream/anthropic.rs"]
mod anthropic;
#[path = "upstream/chat.rs"]
mod chat;
#[path = "upstream/faults.rs"]
mod faults;
#[path = "upstream/guard.rs"]
mod guard;
#[path = "upstream/stream.rs"]
mod stream;
#[path = "upstream/timeouts.rs"]
mod timeouts;

use std::time::Duration;

use futures::stream::BoxStream;
use futures::StreamExt;
use sluice_policy::{Message, Price, Provider, Role, Tier};
use sluice_test_support::{MockBehavior, MockConfig, MockUpstream};
use sluice_upstream::{StreamEvent, UpstreamError};
use sluice_upstream::{UpstreamClient, UpstreamRequest};

/// The variable the test key lookup knows.
const KEY_ENV: &str = "SLUICE_TEST_UPSTREAM_KEY";
const KEY: &str = "sk-test-123";

/// An OpenAI tier `large` at 0.15/0.60 USD per Mtok with a 5s timeout and no retries.
fn tier(base_url: String) -> Tier {
    Tier {
        price: Price {
            input_per_mtok: 0.15,
            output_per_mtok: 0.60,
        },
        timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(5),
        ..Tier::openai("large", base_url, "gpt-test")
    }
}

/// [`tier`] speaking Anthropic's Messages API.
fn anthropic_tier(base_url: String) -> Tier {
    Tier {
        provider: Provider::Anthropic,
        model: "claude-test".into(),
        ..tier(base_url)
    }
}

/// All events of a stream, up to and including its end.
async fn collect(
    stream: BoxStream<'static, Result<StreamEvent, UpstreamError>>,
) -> Vec<Result<StreamEvent, UpstreamError>> {
    stream.collect().await
}

/// The text of a stream's deltas and its last event.
fn split_stream(
    events: &[Result<StreamEvent, UpstreamError>],
) -> (String, &Result<StreamEvent, UpstreamError>) {
    let (last, deltas) = events.split_last().expect("a stream ends with an event");
    let text = deltas
        .iter()
        .map(|e| match e {
            Ok(StreamEvent::Delta(text)) => text.as_str(),
            other => panic!("expected a delta, got {other:?}"),
        })
        .collect();
    (text, last)
}

fn request() -> UpstreamRequest {
    UpstreamRequest {
        messages: vec![
            Message::new(Role::System, "Answer briefly."),
            Message::new(Role::User, "What is the capital of France?"),
        ],
        max_tokens: Some(32),
        ..Default::default()
    }
}

/// A client whose key lookup knows only [`KEY_ENV`].
fn client() -> UpstreamClient {
    UpstreamClient::with_key_lookup(|name| (name == KEY_ENV).then(|| KEY.to_owned())).unwrap()
}

async fn mock(behavior: MockBehavior) -> MockUpstream {
    MockUpstream::start(MockConfig {
        behavior,
        ..Default::default()
    })
    .await
    .unwrap()
}

/// Cost of the mock's default usage (12 prompt, 7 completion tokens) at 0.15/0.60 per Mtok.
const DEFAULT_COST: f64 = (12.0 * 0.15 + 7.0 * 0.60) / 1_000_000.0;
