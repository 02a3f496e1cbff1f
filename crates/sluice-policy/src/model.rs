//! Validated policy: what the rest of Sluice reads. Built only by `validate`.

use std::path::PathBuf;
use std::time::Duration;

/// One routing policy, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub name: String,
    /// The file it was loaded from, when it came from a file.
    pub source: Option<PathBuf>,
    pub local: LocalSettings,
    /// Escalation chain, in order.
    pub tiers: Vec<Tier>,
    pub scoring: Scoring,
    pub on_upstream_failure: OnUpstreamFailure,
}

impl Policy {
    /// The tier escalations go to first.
    pub fn first_tier(&self) -> Option<&Tier> {
        self.tiers.first()
    }
}

/// How the in-process model answers.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalSettings {
    /// A label for responses and metrics (the model file is chosen by the server).
    pub model: String,
    /// Upper bound on generated tokens for local answers and drafts.
    pub max_tokens: u32,
}

/// API dialect of a tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Any server with an OpenAI-compatible `POST /v1/chat/completions`.
    OpenAi,
}

/// Price of a tier in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

impl Price {
    /// Cost in USD of one call with these token counts.
    pub fn cost(&self, prompt_tokens: u64, completion_tokens: u64) -> f64 {
        (prompt_tokens as f64 * self.input_per_mtok
            + completion_tokens as f64 * self.output_per_mtok)
            / 1_000_000.0
    }
}

/// One large model behind an HTTP API.
#[derive(Debug, Clone, PartialEq)]
pub struct Tier {
    pub name: String,
    pub provider: Provider,
    /// Base URL with environment references already expanded, no trailing slash.
    pub base_url: String,
    pub model: String,
    /// Environment variable that holds the bearer key; `None` sends no key.
    pub api_key_env: Option<String>,
    pub price: Price,
    /// Bound on one whole call to this tier, retries included.
    pub timeout: Duration,
    /// Extra attempts after a failed one (connection errors and 5xx only).
    pub retries: u32,
}

/// How a request is scored.
#[derive(Debug, Clone, PartialEq)]
pub struct Scoring {
    pub method: ScoringMethod,
    /// Escalate when confidence < threshold. In [0, 1].
    pub threshold: f64,
    pub weights: Weights,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoringMethod {
    /// The SLM drafts the answer; confidence comes from its token log-probabilities.
    AnswerConfidence,
}

impl ScoringMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            ScoringMethod::AnswerConfidence => "answer_confidence",
        }
    }
}

/// Features a scoring method can feed into the logistic model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Feature {
    /// Mean natural-log probability of the drafted tokens (≤ 0).
    MeanLogprob,
    /// Lowest token log-probability of the draft (≤ 0).
    MinLogprob,
    /// 10th-percentile token log-probability of the draft (≤ 0).
    P10Logprob,
    /// Mean entropy (nats) of the next-token distribution over the draft.
    MeanEntropy,
    /// Number of drafted tokens.
    DraftTokens,
    /// 1 when the draft ended on its own (end of sequence), 0 when cut at max_tokens.
    Stopped,
    /// Number of prompt tokens.
    PromptTokens,
}

impl Feature {
    pub const ALL: [Feature; 7] = [
        Feature::MeanLogprob,
        Feature::MinLogprob,
        Feature::P10Logprob,
        Feature::MeanEntropy,
        Feature::DraftTokens,
        Feature::Stopped,
        Feature::PromptTokens,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Feature::MeanLogprob => "mean_logprob",
            Feature::MinLogprob => "min_logprob",
            Feature::P10Logprob => "p10_logprob",
            Feature::MeanEntropy => "mean_entropy",
            Feature::DraftTokens => "draft_tokens",
            Feature::Stopped => "stopped",
            Feature::PromptTokens => "prompt_tokens",
        }
    }

    pub fn parse(s: &str) -> Option<Feature> {
        Feature::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// Logistic model: confidence = sigmoid(bias + Σ weight·feature).
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    pub bias: f64,
    pub terms: Vec<(Feature, f64)>,
}

/// What to do when every tier fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnUpstreamFailure {
    /// Answer with the local model and mark the route as a fallback.
    Local,
    /// Fail the request with UNAVAILABLE naming the tier.
    Error,
}
