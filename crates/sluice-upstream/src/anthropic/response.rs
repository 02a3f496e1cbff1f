//! Decoding a Messages API `message`, and the wire types its stream events share.

use serde::Deserialize;
use sluice_policy::Tier;

use super::finish_reason;
use crate::error::{truncate, UpstreamError, MAX_BODY_CHARS};
use crate::response::{decode_error, decode_json, non_empty, Completion, Usage, MAX_EXCERPT_CHARS};

/// A `message` object: the whole answer, or the start of a streamed one.
#[derive(Debug, Deserialize)]
pub(super) struct WireMessage {
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    pub(super) model: Option<String>,
    #[serde(default)]
    pub(super) content: Vec<WireBlock>,
    pub(super) stop_reason: Option<String>,
    pub(super) usage: Option<WireUsage>,
    pub(super) error: Option<WireError>,
}

/// One content block; only `text` blocks carry answer text.
#[derive(Debug, Deserialize)]
pub(super) struct WireBlock {
    #[serde(rename = "type", default)]
    pub(super) kind: String,
    pub(super) text: Option<String>,
}

impl WireBlock {
    /// The block's text, when it is a non-empty text block.
    pub(super) fn text(self) -> Option<String> {
        (self.kind == "text")
            .then_some(self.text)
            .flatten()
            .filter(|t| !t.is_empty())
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub(super) struct WireUsage {
    pub(super) input_tokens: Option<u64>,
    pub(super) output_tokens: Option<u64>,
}

/// The `error` of an error body or an `error` stream event.
#[derive(Debug, Deserialize)]
pub(super) struct WireError {
    #[serde(rename = "type", default)]
    pub(super) kind: String,
    #[serde(default)]
    pub(super) message: String,
}

impl WireError {
    /// Overload and rate limiting become the statuses they stand for, so they count
    /// (and are labelled) like the HTTP answers; anything else is a bad answer.
    pub(super) fn into_error(self, tier: &Tier, expected: &str) -> UpstreamError {
        let status = match self.kind.as_str() {
            "overloaded_error" => 529,
            "rate_limit_error" => 429,
            _ => {
                return decode_error(
                    tier,
                    format!(
                        "expected {expected}, found an error of type {:?}: {}",
                        self.kind,
                        truncate(&self.message, MAX_EXCERPT_CHARS)
                    ),
                )
            }
        };
        UpstreamError::Status {
            tier: tier.name.clone(),
            status,
            body: truncate(&format!("{}: {}", self.kind, self.message), MAX_BODY_CHARS),
            retry_after: None,
        }
    }
}

/// Decodes a `message` body from `tier`.
pub(crate) fn decode_completion(tier: &Tier, body: &[u8]) -> Result<Completion, UpstreamError> {
    let expected = "a message json object";
    let wire: WireMessage = decode_json(tier, body, expected)?;
    if let Some(error) = wire.error {
        return Err(error.into_error(tier, "a message"));
    }
    if wire.kind.as_deref().is_some_and(|k| k != "message") {
        return Err(decode_error(
            tier,
            format!(
                "expected a json object of type \"message\", found type {:?}",
                wire.kind.unwrap_or_default()
            ),
        ));
    }
    let content: String = wire
        .content
        .into_iter()
        .filter_map(WireBlock::text)
        .collect();
    let usage = wire.usage.unwrap_or_default();
    let usage = Usage {
        prompt_tokens: usage.input_tokens.unwrap_or(0),
        completion_tokens: usage.output_tokens.unwrap_or(0),
    };
    Ok(Completion {
        content,
        finish_reason: finish_reason(wire.stop_reason),
        model: non_empty(wire.model).unwrap_or_else(|| tier.model.clone()),
        cost_usd: usage.cost(tier),
        usage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::tests::tier;

    #[test]
    fn decodes_a_message() {
        let body = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-9",
            "content":[{"type":"text","text":"Paris"},{"type":"tool_use","id":"t","name":"x","input":{}},
                       {"type":"text","text":" it is."}],
            "stop_reason":"max_tokens","stop_sequence":null,
            "usage":{"input_tokens":1000000,"output_tokens":2000000}}"#;
        let c = decode_completion(&tier(), body).unwrap();
        assert_eq!(c.content, "Paris it is.");
        assert_eq!(c.finish_reason, "length");
        assert_eq!(c.model, "claude-9");
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
    fn missing_parts_fall_back() {
        let c = decode_completion(&tier(), br#"{"content":[]}"#).unwrap();
        assert_eq!((c.content.as_str(), c.finish_reason.as_str()), ("", "stop"));
        assert_eq!(c.model, "tier-model");
        assert_eq!(c.usage, Usage::default());
    }

    #[test]
    fn errors_and_bad_bodies() {
        let err = decode_completion(&tier(), b"{\"type\": \"mess").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("tier big: expected a message json object, found \"{"),
            "{err}"
        );
        let overloaded =
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(
            decode_completion(&tier(), overloaded).unwrap_err(),
            UpstreamError::Status {
                tier: "big".into(),
                status: 529,
                body: "overloaded_error: Overloaded".into(),
                retry_after: None,
            }
        );
        let invalid =
            br#"{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}"#;
        let err = decode_completion(&tier(), invalid).unwrap_err();
        assert_eq!(
            err.to_string(),
            "tier big: expected a message, found an error of type \
             \"invalid_request_error\": bad"
        );
        let err = decode_completion(&tier(), br#"{"type":"completion"}"#).unwrap_err();
        assert!(
            err.to_string().contains("found type \"completion\""),
            "{err}"
        );
    }
}
