//! What the gateway needs from the in-process model.

use std::fmt;

use futures::stream::BoxStream;
use sluice_policy::Message;

/// One generation request to the local model.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalRequest {
    pub messages: Vec<Message>,
    pub max_tokens: u32,
    /// `None` or 0: greedy decoding.
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub stop: Vec<String>,
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FinishReason {
    /// The model ended the answer itself, or a stop sequence matched.
    Stop,
    /// Cut at `max_tokens`.
    Length,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
        }
    }
}

/// What the model's next-token distribution looked like at one generated token.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TokenStat {
    /// Natural-log probability of the chosen token under the model's softmax (≤ 0).
    pub logprob: f32,
    /// Entropy of the next-token distribution, in nats (≥ 0).
    pub entropy: f32,
}

/// A complete greedy answer with the statistics scoring needs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Draft {
    pub text: String,
    /// Text pieces in the order they were generated, for streaming a draft.
    pub pieces: Vec<String>,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub finish: FinishReason,
    /// One entry per generated token, in order.
    pub tokens: Vec<TokenStat>,
}

/// One event of a streamed local answer.
#[derive(Debug, Clone, PartialEq)]
pub enum LocalEvent {
    Delta(String),
    Done {
        prompt_tokens: u32,
        completion_tokens: u32,
        finish: FinishReason,
    },
}

/// Failure of the local model.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("local model failed: {0}")]
    Generation(String),
    #[error("local model is not loaded yet")]
    NotReady,
}

/// The in-process small model: drafts answers with token statistics and streams answers.
/// What one prefill of a prompt says about it, without generating anything.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PromptStats {
    /// Tokens of the whole prompt as the model sees it (chat template included).
    pub prompt_tokens: u32,
    /// Mean negative natural-log likelihood, per token, of the last user message's tokens
    /// under the model (≥ 0): how surprising the request is to it.
    pub mean_nll: f64,
    /// The model's hidden states over the prompt, pooled; `None` from a model that cannot
    /// return them.
    #[serde(skip)]
    pub states: Option<sluice_policy::PromptStates>,
}

#[async_trait::async_trait]
pub trait LocalModel: Send + Sync + fmt::Debug {
    /// Name reported in responses, e.g. the GGUF file stem.
    fn model_id(&self) -> &str;

    /// The most tokens a sequence may hold, prompt and answer together; `None` when the
    /// model sets no limit.
    fn context_tokens(&self) -> Option<u32>;

    /// Generate a complete greedy answer, recording per-token log-probabilities and entropy.
    async fn draft(&self, req: LocalRequest) -> Result<Draft, LocalError>;

    /// Generate an answer, yielding text as it is produced, then `Done`.
    async fn stream(
        &self,
        req: LocalRequest,
    ) -> Result<BoxStream<'static, Result<LocalEvent, LocalError>>, LocalError>;

    /// Tokens of the prompt as the model sees it (chat template included), for rules on
    /// prompt length. Tokenizes only: no forward pass.
    async fn count_tokens(&self, messages: &[Message]) -> Result<u32, LocalError>;

    /// One prefill of the prompt, no generation.
    async fn prompt_stats(&self, messages: &[Message]) -> Result<PromptStats, LocalError>;

    /// One prefill of `messages`, no generation: for each label, the natural-log probability
    /// that the model's answer starts with that label's first token.
    async fn label_logprobs(
        &self,
        messages: &[Message],
        labels: &[&str],
    ) -> Result<Vec<f64>, LocalError>;
}
