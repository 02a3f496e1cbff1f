//! Anthropic tiers: the Messages API, `POST {base_url}/v1/messages` with `x-api-key`
//! and `anthropic-version`, answered by a `message` or, streaming, by typed events
//! (`message_start`, `content_block_delta`, `message_delta`, `message_stop`, …).

mod request;
mod response;
mod stream;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use sluice_policy::Tier;

use crate::client::Prepared;
use crate::error::UpstreamError;
use crate::request::{key_header, to_json, UpstreamRequest};

pub(crate) use response::decode_completion;
pub(crate) use stream::StreamState;

/// The API version every request is written against.
pub(crate) const API_VERSION: &str = "2023-06-01";

/// The request for `req` to `tier`; `stream` asks for server-sent events.
pub(crate) fn prepare(
    tier: &Tier,
    key: Option<&str>,
    req: &UpstreamRequest,
    stream: bool,
) -> Result<Prepared, UpstreamError> {
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static("anthropic-version"),
        HeaderValue::from_static(API_VERSION),
    );
    if let Some(key) = key {
        headers.insert(HeaderName::from_static("x-api-key"), key_header(tier, key)?);
    }
    Ok(Prepared {
        url: format!("{}/v1/messages", tier.base_url.trim_end_matches('/')),
        headers,
        body: to_json(tier, &request::WireRequest::new(&tier.model, req, stream))?,
    })
}

/// Anthropic's `stop_reason` in the OpenAI words the rest of Sluice uses: `stop` for
/// a natural end or a stop sequence, `length` at `max_tokens`; others pass through.
pub(crate) fn finish_reason(stop_reason: Option<String>) -> String {
    match stop_reason.as_deref() {
        None | Some("end_turn" | "stop_sequence") => "stop".to_owned(),
        Some("max_tokens") => "length".to_owned(),
        Some(_) => stop_reason.unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::tests::tier;

    #[test]
    fn sends_key_and_version_to_messages() {
        let mut tier = tier();
        tier.base_url = "https://api.anthropic.example/".into();
        let prepared = prepare(&tier, Some("sk-ant"), &UpstreamRequest::default(), true).unwrap();
        assert_eq!(prepared.url, "https://api.anthropic.example/v1/messages");
        assert_eq!(prepared.headers["x-api-key"], "sk-ant");
        assert!(prepared.headers["x-api-key"].is_sensitive());
        assert_eq!(prepared.headers["anthropic-version"], "2023-06-01");
        assert!(!prepared.headers.contains_key("authorization"));
        let keyless = prepare(&tier, None, &UpstreamRequest::default(), true).unwrap();
        assert!(!keyless.headers.contains_key("x-api-key"));
    }

    #[test]
    fn stop_reasons_map_to_finish_reasons() {
        let cases = [
            (None, "stop"),
            (Some("end_turn"), "stop"),
            (Some("stop_sequence"), "stop"),
            (Some("max_tokens"), "length"),
            (Some("refusal"), "refusal"),
        ];
        for (stop_reason, want) in cases {
            assert_eq!(finish_reason(stop_reason.map(str::to_owned)), want);
        }
    }
}
