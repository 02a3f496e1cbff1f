//! One request straight on mistral.rs with the time of its first and last token: the
//! baseline the gateway's local path is benchmarked against (`sluice bench local`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use mistralrs::{ChatCompletionChunkResponse, Response};
use sluice_policy::Message;
use sluice_router::{LocalError, LocalRequest};

use crate::engine::{gen_err, request, SlmModel};
use crate::stats::StatsRecorder;

/// Timings of one request, from the moment it was sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timed {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// Until the first generated token arrived: the prefill, plus one sampling step.
    pub first: Duration,
    /// Until the last one arrived.
    pub last: Duration,
}

impl SlmModel {
    /// The templated prompt's token ids (chat template and generation prompt included).
    pub async fn prompt_ids(&self, messages: &[Message]) -> Result<Vec<u32>, LocalError> {
        crate::prompt::prompt_ids(&self.model, messages).await
    }

    /// Generate greedily straight on mistral.rs, no gateway. With `stats`, every step's
    /// log-softmax statistics are recorded as the gateway's draft does (and then dropped).
    pub async fn timed(
        &self,
        messages: &[Message],
        max_tokens: u32,
        stats: bool,
    ) -> Result<Timed, LocalError> {
        let req = LocalRequest {
            messages: messages.to_vec(),
            max_tokens,
            temperature: None,
            top_p: None,
            stop: Vec::new(),
        };
        let mut builder = request(&req, true);
        if stats {
            builder = builder.add_logits_processor(Arc::new(StatsRecorder::new()));
        }
        let sent = Instant::now();
        let mut stream = self
            .model
            .stream_chat_request(builder)
            .await
            .map_err(gen_err)?;
        let mut first = None;
        while let Some(resp) = stream.next().await {
            let now = sent.elapsed();
            match resp {
                Response::Chunk(ChatCompletionChunkResponse { choices, usage, .. }) => {
                    let first = *first.get_or_insert(now);
                    let Some(choice) = choices.first() else {
                        continue;
                    };
                    if choice.finish_reason.is_some() {
                        let u = usage.ok_or_else(|| gen_err("the last chunk has no usage"))?;
                        return Ok(Timed {
                            prompt_tokens: u.prompt_tokens as u32,
                            completion_tokens: u.completion_tokens as u32,
                            first,
                            last: now,
                        });
                    }
                }
                Response::InternalError(e) | Response::ValidationError(e) => {
                    return Err(gen_err(e))
                }
                Response::ModelError(e, _) => return Err(gen_err(e)),
                _ => {
                    return Err(gen_err(
                        "the model engine sent a response of an unexpected kind",
                    ))
                }
            }
        }
        Err(gen_err("stream ended without a finish reason"))
    }
}
