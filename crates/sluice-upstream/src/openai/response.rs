//! Decoding what an OpenAI-compatible server answers: `chat.completion` bodies and
//! `chat.completion.chunk` stream payloads.

use serde::Deserialize;
use sluice_policy::Tier;

use crate::error::{truncate, UpstreamError};
use crate::response::{
    decode_error, decode_json, non_empty, Completion, Usage, DEFAULT_FINISH_REASON,
    MAX_EXCERPT_CHARS,
};

#[derive(Debug, Deserialize)]
pub(crate) struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

impl From<WireUsage> for Usage {
    fn from(w: WireUsage) -> Self {
        Usage {
            prompt_tokens: w.prompt_tokens,
            completion_tokens: w.completion_tokens,
        }
    }
}

#[derive(Debug, Deserialize)]
struct WireCompletion {
    model: Option<String>,
    #[serde(default)]
    choices: Vec<WireChoice>,
    usage: Option<WireUsage>,
    error: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct WireChoice {
    message: Option<WireContent>,
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireContent {
    content: Option<String>,
}

/// One `data:` payload of a streamed answer.
#[derive(Debug, Deserialize)]
pub(crate) struct WireChunk {
    pub(crate) model: Option<String>,
    #[serde(default)]
    choices: Vec<WireChunkChoice>,
    pub(crate) usage: Option<WireUsage>,
    error: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct WireChunkChoice {
    delta: Option<WireContent>,
    finish_reason: Option<String>,
}

impl WireChunk {
    /// Text of the first choice's delta, if any.
    pub(crate) fn content(&mut self) -> Option<String> {
        self.choices
            .first_mut()
            .and_then(|c| c.delta.as_mut())
            .and_then(|d| d.content.take())
            .filter(|s| !s.is_empty())
    }

    /// Finish reason of the first choice, if any.
    pub(crate) fn finish_reason(&mut self) -> Option<String> {
        self.choices
            .first_mut()
            .and_then(|c| c.finish_reason.take())
    }
}

/// Decodes a `chat.completion` body from `tier`.
pub(crate) fn decode_completion(tier: &Tier, body: &[u8]) -> Result<Completion, UpstreamError> {
    let wire: WireCompletion = decode_json(tier, body, "a chat.completion json object")?;
    if let Some(error) = wire.error {
        return Err(decode_error(
            tier,
            format!(
                "expected a chat.completion, found an error object: {}",
                truncate(&error.to_string(), MAX_EXCERPT_CHARS)
            ),
        ));
    }
    let Some(choice) = wire.choices.into_iter().next() else {
        return Err(decode_error(
            tier,
            "expected at least one choice in the chat.completion, found none".to_owned(),
        ));
    };
    let usage = wire.usage.map(Usage::from).unwrap_or_default();
    Ok(Completion {
        content: choice.message.and_then(|m| m.content).unwrap_or_default(),
        finish_reason: choice
            .finish_reason
            .unwrap_or_else(|| DEFAULT_FINISH_REASON.to_owned()),
        model: non_empty(wire.model).unwrap_or_else(|| tier.model.clone()),
        cost_usd: usage.cost(tier),
        usage,
    })
}

/// Decodes one `data:` payload of a stream from `tier`.
pub(crate) fn decode_chunk(tier: &Tier, data: &str) -> Result<WireChunk, UpstreamError> {
    let chunk: WireChunk =
        decode_json(tier, data.as_bytes(), "a chat.completion.chunk json object")?;
    if let Some(error) = &chunk.error {
        return Err(decode_error(
            tier,
            format!(
                "expected a chat.completion.chunk, found an error object: {}",
                truncate(&error.to_string(), MAX_EXCERPT_CHARS)
            ),
        ));
    }
    Ok(chunk)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::tests::tier;
    use crate::response::Usage;

    #[test]
    fn decodes_a_completion() {
        let body = br#"{"id":"x","object":"chat.completion","model":"m-1",
            "choices":[{"index":0,"message":{"role":"assistant","content":"Paris."},"finish_reason":"stop"}],
            "usage":{"prompt_tokens":1000000,"completion_tokens":2000000,"total_tokens":3000000}}"#;
        let c = decode_completion(&tier(), body).unwrap();
        assert_eq!(c.content, "Paris.");
        assert_eq!(c.finish_reason, "stop");
        assert_eq!(c.model, "m-1");
        assert_eq!(
            c.usage,
            Usage {
                prompt_tokens: 1_000_000,
                completion_tokens: 2_000_000
            }
        );
        assert!((c.cost_usd - 1.35).abs() < 1e-12);
    }

    #[test]
    fn missing_usage_and_model_fall_back() {
        let body = br#"{"choices":[{"message":{"content":null},"finish_reason":null}]}"#;
        let c = decode_completion(&tier(), body).unwrap();
        assert_eq!(c.content, "");
        assert_eq!(c.finish_reason, "stop");
        assert_eq!(c.model, "tier-model");
        assert_eq!(c.usage, Usage::default());
        assert_eq!(c.cost_usd, 0.0);
    }

    #[test]
    fn malformed_and_empty_bodies_are_decode_errors() {
        let err = decode_completion(&tier(), b"{not json").unwrap_err();
        let UpstreamError::Decode {
            tier: name,
            message,
        } = &err
        else {
            panic!("expected decode, got {err:?}");
        };
        assert_eq!(name, "big");
        assert!(message.contains("found \"{not json\""), "{message}");

        let err = decode_completion(&tier(), b"").unwrap_err();
        assert!(err.to_string().contains("found an empty body"), "{err}");

        let err = decode_completion(&tier(), br#"{"choices":[]}"#).unwrap_err();
        assert!(err.to_string().contains("found none"), "{err}");

        let err = decode_completion(&tier(), br#"{"error":{"message":"nope"}}"#).unwrap_err();
        assert!(err.to_string().contains("error object"), "{err}");
    }

    #[test]
    fn decodes_chunks() {
        let mut c = decode_chunk(
            &tier(),
            r#"{"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}],"usage":null}"#,
        )
        .unwrap();
        assert_eq!(c.content().as_deref(), Some("Hi"));
        assert_eq!(c.finish_reason(), None);
        assert!(c.usage.is_none());

        let mut c = decode_chunk(
            &tier(),
            r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}"#,
        )
        .unwrap();
        assert_eq!(c.content(), None);
        assert!(c.usage.is_some());
        assert!(decode_chunk(&tier(), "{oops").is_err());
    }
}
