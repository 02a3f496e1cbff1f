//! Reading a streamed message: `message_start` (model, input tokens), text from
//! `content_block_delta`, `message_delta` (stop reason, output tokens), then
//! `message_stop`; `error` events end the stream, `ping` and unknown events are skipped.

use serde::Deserialize;
use sluice_policy::Tier;

use super::finish_reason;
use super::response::{WireBlock, WireError, WireMessage, WireUsage};
use crate::client::{Decoded, StreamDecoder};
use crate::error::UpstreamError;
use crate::response::{decode_json, non_empty, StreamEvent, Usage};

/// One stream event's `data:` payload; which fields are set depends on its type.
#[derive(Debug, Deserialize)]
struct WireEvent {
    #[serde(rename = "type")]
    kind: String,
    message: Option<WireMessage>,
    content_block: Option<WireBlock>,
    delta: Option<WireDelta>,
    usage: Option<WireUsage>,
    error: Option<WireError>,
}

/// The `delta` of `content_block_delta` (text) or of `message_delta` (stop reason).
#[derive(Debug, Deserialize)]
struct WireDelta {
    text: Option<String>,
    stop_reason: Option<String>,
}

/// What the stream has told so far.
pub(crate) struct StreamState {
    tier: Tier,
    model: Option<String>,
    stop_reason: Option<String>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
}

impl StreamState {
    pub(crate) fn new(tier: &Tier) -> Self {
        Self {
            tier: tier.clone(),
            model: None,
            stop_reason: None,
            input_tokens: None,
            output_tokens: None,
        }
    }

    fn done(&mut self) -> StreamEvent {
        let usage = (self.input_tokens.is_some() || self.output_tokens.is_some()).then(|| Usage {
            prompt_tokens: self.input_tokens.unwrap_or(0),
            completion_tokens: self.output_tokens.unwrap_or(0),
        });
        StreamEvent::Done {
            finish_reason: finish_reason(self.stop_reason.take()),
            model: self.model.take().unwrap_or_else(|| self.tier.model.clone()),
            usage,
            cost_usd: usage.map_or(0.0, |u| u.cost(&self.tier)),
        }
    }
}

impl StreamDecoder for StreamState {
    fn data(&mut self, payload: &str) -> Result<Decoded, UpstreamError> {
        let event: WireEvent = decode_json(
            &self.tier,
            payload.as_bytes(),
            "a message stream event json object",
        )?;
        match event.kind.as_str() {
            "message_start" => {
                if let Some(message) = event.message {
                    if let Some(model) = non_empty(message.model) {
                        self.model = Some(model);
                    }
                    let usage = message.usage.unwrap_or_default();
                    self.input_tokens = usage.input_tokens.or(self.input_tokens);
                    self.output_tokens = usage.output_tokens.or(self.output_tokens);
                }
                Ok(Decoded::Nothing)
            }
            "content_block_start" => Ok(text(event.content_block.and_then(WireBlock::text))),
            "content_block_delta" => Ok(text(event.delta.and_then(|d| d.text))),
            "message_delta" => {
                if let Some(reason) = event.delta.and_then(|d| d.stop_reason) {
                    self.stop_reason = Some(reason);
                }
                if let Some(tokens) = event.usage.and_then(|u| u.output_tokens) {
                    self.output_tokens = Some(tokens);
                }
                Ok(Decoded::Nothing)
            }
            "message_stop" => Ok(Decoded::Done(self.done())),
            "error" => {
                let error = event.error.unwrap_or(WireError {
                    kind: String::new(),
                    message: String::new(),
                });
                Err(error.into_error(&self.tier, "a message stream"))
            }
            // `ping`, `content_block_stop` and event types added after this was written.
            _ => Ok(Decoded::Nothing),
        }
    }

    /// Fine after a stop reason, else truncated.
    fn end(&mut self) -> Result<StreamEvent, UpstreamError> {
        if self.stop_reason.is_some() {
            return Ok(self.done());
        }
        Err(UpstreamError::Decode {
            tier: self.tier.name.clone(),
            message: "expected a message_delta with a stop_reason or a message_stop before \
                      the stream ended, found the end of the body"
                .to_owned(),
        })
    }
}

fn text(text: Option<String>) -> Decoded {
    text.filter(|t| !t.is_empty())
        .map_or(Decoded::Nothing, Decoded::Delta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::tests::tier;

    const START: &str = r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-9","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":1000000,"output_tokens":1}}}"#;

    #[test]
    fn events_then_done() {
        let mut s = StreamState::new(&tier());
        let events = [
            START,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            r#"{"type": "ping"}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Par"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"is"}}"#,
            r#"{"type":"content_block_stop","index":0}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":2000000}}"#,
        ];
        let decoded: Vec<Decoded> = events.iter().map(|e| s.data(e).unwrap()).collect();
        let deltas: Vec<&Decoded> = decoded.iter().filter(|d| **d != Decoded::Nothing).collect();
        assert_eq!(
            deltas,
            [&Decoded::Delta("Par".into()), &Decoded::Delta("is".into())]
        );
        let Decoded::Done(done) = s.data(r#"{"type":"message_stop"}"#).unwrap() else {
            panic!("expected done");
        };
        let StreamEvent::Done {
            finish_reason,
            model,
            usage,
            cost_usd,
        } = done
        else {
            panic!("expected done");
        };
        assert_eq!(
            (finish_reason.as_str(), model.as_str()),
            ("stop", "claude-9")
        );
        assert_eq!(
            usage,
            Some(Usage {
                prompt_tokens: 1_000_000,
                completion_tokens: 2_000_000
            })
        );
        assert!((cost_usd - 1.35).abs() < 1e-12);
    }

    #[test]
    fn error_events() {
        let mut s = StreamState::new(&tier());
        s.data(START).unwrap();
        let overloaded =
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        let err = s.data(overloaded).unwrap_err();
        assert!(
            matches!(err, UpstreamError::Status { status: 529, .. }),
            "{err:?}"
        );
        let limited =
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#;
        assert_eq!(s.data(limited).unwrap_err().kind(), "status_429");
        let other = r#"{"type":"error","error":{"type":"api_error","message":"boom"}}"#;
        let err = s.data(other).unwrap_err();
        assert_eq!(
            err.to_string(),
            "tier big: expected a message stream, found an error of type \"api_error\": boom"
        );
    }

    #[test]
    fn bad_payloads_and_truncation() {
        let mut s = StreamState::new(&tier());
        let err = s.data("{oops").unwrap_err();
        assert!(
            err.to_string()
                .contains("expected a message stream event json object, found \"{oops\""),
            "{err}"
        );
        assert!(s.data(r#"{"no_type":1}"#).is_err());
        assert_eq!(
            s.data(r#"{"type":"future_event"}"#).unwrap(),
            Decoded::Nothing
        );

        s.data(START).unwrap();
        let err = s.end().unwrap_err();
        assert!(
            err.to_string().contains("found the end of the body"),
            "{err}"
        );
        s.data(r#"{"type":"message_delta","delta":{"stop_reason":"max_tokens"}}"#)
            .unwrap();
        let Ok(StreamEvent::Done { finish_reason, .. }) = s.end() else {
            panic!("expected done");
        };
        assert_eq!(finish_reason, "length");
    }
}
