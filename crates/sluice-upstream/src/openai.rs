//! OpenAI-compatible tiers: `POST {base_url}/v1/chat/completions` with a bearer key,
//! answered by a `chat.completion` or, streaming, by `chat.completion.chunk` payloads
//! ending with `data: [DONE]`.

mod request;
mod response;
mod stream;

use reqwest::header::{HeaderMap, AUTHORIZATION};
use sluice_policy::Tier;

use crate::client::Prepared;
use crate::error::UpstreamError;
use crate::request::{key_header, to_json, UpstreamRequest};

pub(crate) use response::decode_completion;
pub(crate) use stream::StreamState;

/// The request for `req` to `tier`; `stream` asks for SSE with usage.
pub(crate) fn prepare(
    tier: &Tier,
    key: Option<&str>,
    req: &UpstreamRequest,
    stream: bool,
) -> Result<Prepared, UpstreamError> {
    let mut headers = HeaderMap::new();
    if let Some(key) = key {
        headers.insert(AUTHORIZATION, key_header(tier, &format!("Bearer {key}"))?);
    }
    Ok(Prepared {
        url: format!(
            "{}/v1/chat/completions",
            tier.base_url.trim_end_matches('/')
        ),
        headers,
        body: to_json(tier, &request::WireRequest::new(&tier.model, req, stream))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::tests::tier;

    #[test]
    fn sends_the_bearer_key_to_chat_completions() {
        let mut tier = tier();
        tier.base_url = "http://up.example/api/".into();
        let prepared = prepare(&tier, Some("sk-1"), &UpstreamRequest::default(), false).unwrap();
        assert_eq!(prepared.url, "http://up.example/api/v1/chat/completions");
        assert_eq!(prepared.headers[AUTHORIZATION], "Bearer sk-1");
        assert!(prepared.headers[AUTHORIZATION].is_sensitive());
        let none = prepare(&tier, None, &UpstreamRequest::default(), false).unwrap();
        assert!(none.headers.is_empty());
    }

    #[test]
    fn a_key_with_a_newline_is_a_request_error_that_hides_it() {
        let err = prepare(&tier(), Some("sk\n1"), &UpstreamRequest::default(), false).unwrap_err();
        assert!(matches!(err, UpstreamError::Request { .. }), "{err:?}");
        assert!(!err.to_string().contains("sk"), "{err}");
    }
}
