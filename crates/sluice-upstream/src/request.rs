//! What a caller asks a tier for, whatever its provider, and helpers the providers
//! share to put it on the wire.

use reqwest::header::HeaderValue;
use sluice_policy::{GenParams, Message, Tier};

use crate::error::UpstreamError;

/// One chat-completion request to a tier; the model comes from the tier.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpstreamRequest {
    pub messages: Vec<Message>,
    /// Sent only when set; Anthropic tiers, which require it, get 1024 when unset.
    pub max_tokens: Option<u32>,
    /// Sent only when set.
    pub temperature: Option<f32>,
    /// Sent only when set.
    pub top_p: Option<f32>,
    /// Sent only when non-empty.
    pub stop: Vec<String>,
}

impl UpstreamRequest {
    /// A request with these messages and generation parameters.
    pub fn new(messages: Vec<Message>, params: &GenParams) -> Self {
        Self {
            messages,
            max_tokens: params.max_tokens,
            temperature: params.temperature,
            top_p: params.top_p,
            stop: params.stop.clone(),
        }
    }
}

/// An API key as a header value (marked sensitive, so it is never logged).
pub(crate) fn key_header(tier: &Tier, value: &str) -> Result<HeaderValue, UpstreamError> {
    let mut value = HeaderValue::from_str(value).map_err(|_| UpstreamError::Request {
        tier: tier.name.clone(),
        message: "expected an api key of visible ascii characters, found other characters"
            .to_owned(),
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// `body` as JSON bytes.
pub(crate) fn to_json(
    tier: &Tier,
    body: &impl serde::Serialize,
) -> Result<bytes::Bytes, UpstreamError> {
    serde_json::to_vec(body)
        .map(bytes::Bytes::from)
        .map_err(|err| UpstreamError::Request {
            tier: tier.name.clone(),
            message: format!("expected a request serializable as json, found: {err}"),
        })
}
