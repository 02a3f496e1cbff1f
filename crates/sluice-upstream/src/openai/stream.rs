//! Reading a streamed chat completion: `chat.completion.chunk` payloads, then
//! `data: [DONE]`.

use sluice_policy::Tier;

use super::response::decode_chunk;
use crate::client::{Decoded, StreamDecoder};
use crate::error::UpstreamError;
use crate::response::{non_empty, StreamEvent, Usage, DEFAULT_FINISH_REASON};

/// What the stream has told so far.
pub(crate) struct StreamState {
    tier: Tier,
    model: Option<String>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
}

impl StreamState {
    pub(crate) fn new(tier: &Tier) -> Self {
        Self {
            tier: tier.clone(),
            model: None,
            finish_reason: None,
            usage: None,
        }
    }

    fn done(&mut self) -> StreamEvent {
        StreamEvent::Done {
            finish_reason: self
                .finish_reason
                .take()
                .unwrap_or_else(|| DEFAULT_FINISH_REASON.to_owned()),
            model: self.model.take().unwrap_or_else(|| self.tier.model.clone()),
            usage: self.usage,
            cost_usd: self.usage.map_or(0.0, |u| u.cost(&self.tier)),
        }
    }
}

impl StreamDecoder for StreamState {
    fn data(&mut self, payload: &str) -> Result<Decoded, UpstreamError> {
        if payload.trim() == "[DONE]" {
            return Ok(Decoded::Done(self.done()));
        }
        let mut chunk = decode_chunk(&self.tier, payload)?;
        if let Some(model) = non_empty(chunk.model.take()) {
            self.model = Some(model);
        }
        if let Some(usage) = chunk.usage.take() {
            self.usage = Some(usage.into());
        }
        if let Some(reason) = chunk.finish_reason() {
            self.finish_reason = Some(reason);
        }
        Ok(chunk.content().map_or(Decoded::Nothing, Decoded::Delta))
    }

    /// Fine after a finish reason (some servers never send `[DONE]`), else truncated.
    fn end(&mut self) -> Result<StreamEvent, UpstreamError> {
        if self.finish_reason.is_some() {
            return Ok(self.done());
        }
        Err(UpstreamError::Decode {
            tier: self.tier.name.clone(),
            message: "expected a finish_reason or data: [DONE] before the stream ended, \
                      found the end of the body"
                .to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::tests::tier;

    #[test]
    fn chunks_then_done() {
        let mut s = StreamState::new(&tier());
        assert_eq!(
            s.data(r#"{"model":"m-9","choices":[{"delta":{"role":"assistant","content":""}}]}"#)
                .unwrap(),
            Decoded::Nothing
        );
        assert_eq!(
            s.data(r#"{"choices":[{"delta":{"content":"Hi"}}]}"#)
                .unwrap(),
            Decoded::Delta("Hi".into())
        );
        s.data(r#"{"choices":[{"delta":{},"finish_reason":"length"}]}"#)
            .unwrap();
        s.data(r#"{"choices":[],"usage":{"prompt_tokens":1000000,"completion_tokens":0}}"#)
            .unwrap();
        assert_eq!(
            s.data("[DONE]").unwrap(),
            Decoded::Done(StreamEvent::Done {
                finish_reason: "length".into(),
                model: "m-9".into(),
                usage: Some(Usage {
                    prompt_tokens: 1_000_000,
                    completion_tokens: 0
                }),
                cost_usd: 0.15,
            })
        );
    }

    #[test]
    fn end_without_finish_reason_is_truncation() {
        let mut s = StreamState::new(&tier());
        s.data(r#"{"choices":[{"delta":{"content":"Hi"}}]}"#)
            .unwrap();
        let err = s.end().unwrap_err();
        assert!(
            err.to_string().contains("found the end of the body"),
            "{err}"
        );

        let mut s = StreamState::new(&tier());
        s.data(r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#)
            .unwrap();
        assert!(matches!(s.end(), Ok(StreamEvent::Done { .. })));
    }
}
