//! A stand-in for the in-process model: fixed answers with chosen log-probabilities, so the
//! request path can be tested in milliseconds without model weights.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures::stream::BoxStream;
use futures::StreamExt;
use sluice_router::{
    Draft, FinishReason, LocalError, LocalEvent, LocalModel, LocalRequest, TokenStat,
};

/// Answers every request with `answer`, one word per token, each with `logprob`.
#[derive(Debug, Clone)]
pub struct FakeLocal {
    pub answer: String,
    /// Natural-log probability reported for every drafted token.
    pub logprob: f32,
    calls: Arc<AtomicUsize>,
}

impl FakeLocal {
    pub fn new(answer: impl Into<String>, logprob: f32) -> Self {
        Self {
            answer: answer.into(),
            logprob,
            calls: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// How many drafts and streams were requested.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn pieces(&self, max_tokens: u32) -> (Vec<String>, FinishReason) {
        let words: Vec<String> = self
            .answer
            .split_inclusive(' ')
            .map(str::to_string)
            .collect();
        if words.len() > max_tokens as usize {
            (words[..max_tokens as usize].to_vec(), FinishReason::Length)
        } else {
            (words, FinishReason::Stop)
        }
    }

    fn prompt_tokens(req: &LocalRequest) -> u32 {
        req.messages
            .iter()
            .map(|m| m.content.split_whitespace().count() as u32 + 4)
            .sum()
    }
}

#[async_trait::async_trait]
impl LocalModel for FakeLocal {
    fn model_id(&self) -> &str {
        "fake-local"
    }

    async fn draft(&self, req: LocalRequest) -> Result<Draft, LocalError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let (pieces, finish) = self.pieces(req.max_tokens);
        let n = pieces.len() as u32;
        Ok(Draft {
            text: pieces.concat(),
            tokens: vec![
                TokenStat {
                    logprob: self.logprob,
                    entropy: -self.logprob,
                };
                n as usize
            ],
            pieces,
            prompt_tokens: Self::prompt_tokens(&req),
            completion_tokens: n,
            finish,
        })
    }

    async fn stream(
        &self,
        req: LocalRequest,
    ) -> Result<BoxStream<'static, Result<LocalEvent, LocalError>>, LocalError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let (pieces, finish) = self.pieces(req.max_tokens);
        let done = LocalEvent::Done {
            prompt_tokens: Self::prompt_tokens(&req),
            completion_tokens: pieces.len() as u32,
            finish,
        };
        let events: Vec<Result<LocalEvent, LocalError>> = pieces
            .into_iter()
            .map(|p| Ok(LocalEvent::Delta(p)))
            .chain(std::iter::once(Ok(done)))
            .collect();
        Ok(futures::stream::iter(events).boxed())
    }
}
