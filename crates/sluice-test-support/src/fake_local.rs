//! A stand-in for the in-process model: fixed answers with chosen log-probabilities, so the
//! request path can be tested in milliseconds without model weights.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures::stream::BoxStream;
use futures::StreamExt;
use sluice_policy::Message;
use sluice_router::{
    Draft, FinishReason, LocalError, LocalEvent, LocalModel, LocalRequest, PromptStats, TokenStat,
};

/// Answers every request with `answer`, one word per token, each with `logprob`.
#[derive(Debug, Clone)]
pub struct FakeLocal {
    pub answer: String,
    /// Natural-log probability reported for every drafted token.
    pub logprob: f32,
    /// Context length in tokens; a longer prompt fails as the real engine's does.
    pub context: Option<u32>,
    /// How long each draft, stream and prefill takes, as a busy CPU model would.
    pub delay: std::time::Duration,
    calls: Arc<AtomicUsize>,
    streams: Arc<AtomicUsize>,
}

impl FakeLocal {
    pub fn new(answer: impl Into<String>, logprob: f32) -> Self {
        Self {
            answer: answer.into(),
            logprob,
            context: None,
            delay: std::time::Duration::ZERO,
            calls: Arc::new(AtomicUsize::new(0)),
            streams: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// This model with a context of `tokens`.
    pub fn with_context(mut self, tokens: u32) -> Self {
        self.context = Some(tokens);
        self
    }

    /// This model taking `delay` for each piece of work.
    pub fn with_delay(mut self, delay: std::time::Duration) -> Self {
        self.delay = delay;
        self
    }

    /// The real engine's refusal of a prompt longer than its context, after the delay.
    async fn check_length(&self, messages: &[Message]) -> Result<(), LocalError> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        match self.context {
            Some(c) if Self::tokens_of(messages) > c => Err(LocalError::Generation(format!(
                "Prompt sequence length is greater than {c}"
            ))),
            _ => Ok(()),
        }
    }

    /// How many drafts and streams were requested.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// How many of those were streams (generation with the caller's parameters).
    pub fn streams(&self) -> usize {
        self.streams.load(Ordering::SeqCst)
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
        Self::tokens_of(&req.messages)
    }

    /// One token per word plus four per message for the template.
    fn tokens_of(messages: &[Message]) -> u32 {
        messages
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

    fn context_tokens(&self) -> Option<u32> {
        self.context
    }

    async fn draft(&self, req: LocalRequest) -> Result<Draft, LocalError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.check_length(&req.messages).await?;
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
        self.streams.fetch_add(1, Ordering::SeqCst);
        self.check_length(&req.messages).await?;
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

    async fn count_tokens(&self, messages: &[Message]) -> Result<u32, LocalError> {
        Ok(Self::tokens_of(messages))
    }

    /// The mean NLL is the mean word length in characters divided by 4: longer words are
    /// "more surprising", which is enough for the request path's tests. The hidden state is
    /// `[digits, words]` of the last user message.
    async fn prompt_stats(&self, messages: &[Message]) -> Result<PromptStats, LocalError> {
        self.check_length(messages).await?;
        let words: Vec<&str> = messages
            .iter()
            .rev()
            .find(|m| m.role == sluice_policy::Role::User)
            .map(|m| m.content.split_whitespace().collect())
            .unwrap_or_default();
        let chars: usize = words.iter().map(|w| w.chars().count()).sum();
        // One hidden state of width 2, the same for both pools: digits and words in the
        // request, so a probe file can be written by hand for the request path's tests.
        let digits = words
            .iter()
            .flat_map(|w| w.chars())
            .filter(char::is_ascii_digit)
            .count();
        let state = vec![digits as f32, words.len() as f32];
        Ok(PromptStats {
            prompt_tokens: Self::tokens_of(messages),
            mean_nll: chars as f64 / words.len().max(1) as f64 / 4.0,
            states: Some(sluice_policy::PromptStates {
                last: vec![state.clone()],
                mean: vec![state],
            }),
        })
    }

    /// Every label equally likely.
    async fn label_logprobs(
        &self,
        _messages: &[Message],
        labels: &[&str],
    ) -> Result<Vec<f64>, LocalError> {
        let p = (1.0 / labels.len().max(1) as f64).ln();
        Ok(vec![p; labels.len()])
    }
}
