//! Integration tests of the upstream client against the in-process mock server.

// Helpers outside `#[test]` functions fail loudly too.
#![allow(clippy::unwrap_used)]

#[path = "upstream/chat.rs"]
mod chat;
#[path = "upstream/stream.rs"]
mod stream;

use std::time::Duration;

use sluice_policy::{Message, Price, Provider, Role, Tier};
use sluice_test_support::{MockBehavior, MockConfig, MockUpstream};
use sluice_upstream::{UpstreamClient, UpstreamRequest};

/// The variable the test key lookup knows.
const KEY_ENV: &str = "SLUICE_TEST_UPSTREAM_KEY";
const KEY: &str = "sk-test-123";

fn tier(base_url: String) -> Tier {
    Tier {
        name: "large".into(),
        provider: Provider::OpenAi,
        base_url,
        model: "gpt-test".into(),
        api_key_env: None,
        price: Price {
            input_per_mtok: 0.15,
            output_per_mtok: 0.60,
        },
        timeout: Duration::from_secs(5),
        retries: 0,
    }
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
