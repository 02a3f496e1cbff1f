//! Validated policy: what the rest of Sluice reads. Built only by `validate`.

mod budget;
mod distill;
mod rules;
mod shadow;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::error::PolicyError;
use crate::hidden_probe::HiddenProbe;

pub use budget::{Budget, BudgetCaps, OnBudgetExhausted};
pub use distill::Distill;
pub use rules::{Conditions, CountRange, PiiMatch, Rule, RuleAction, RuleRegex, TagPattern};
pub use shadow::Shadow;

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
    /// Which answers this policy's response cache keeps, and for how long.
    pub cache: CacheSettings,
    /// Checked in order before scoring; the first rule whose conditions all hold decides
    /// the route. Empty: every request is scored.
    pub rules: Vec<Rule>,
    /// Spend caps on escalations, per tenant; `None`: no caps.
    pub budget: Option<Budget>,
    /// Second opinions on sampled requests the score decided; `None`: none.
    pub shadow: Option<Shadow>,
    /// Tenants whose escalated requests become fine-tuning examples; `None`: none.
    pub distill: Option<Distill>,
    /// FNV-1a 64 hash of the policy file's exact text (comments included), so that
    /// anything keyed on it, such as cached answers, changes when the file does.
    /// Stable across builds and Rust releases; 0 for policies not parsed from text.
    pub fingerprint: u64,
    /// The YAML it was parsed from, exactly as written (what Admin `GetPolicy` returns);
    /// empty for policies not parsed from text.
    pub text: std::sync::Arc<str>,
}

impl Policy {
    /// The tier escalations go to first.
    pub fn first_tier(&self) -> Option<&Tier> {
        self.tiers.first()
    }

    /// Refuses a policy whose probe was fitted on another model file than the one served
    /// (`model_sha256`, lowercase hex): its weights would score states they were not fitted on.
    pub fn check_model(&self, model_sha256: &str) -> Result<(), PolicyError> {
        match &self.scoring.probe {
            Some(probe) if probe.model_sha256 != model_sha256 => {
                Err(PolicyError::ProbeModelMismatch {
                    policy: self.name.clone(),
                    file: self.source.clone().unwrap_or_default(),
                    probe: probe.model_sha256.clone(),
                    model: model_sha256.to_string(),
                })
            }
            _ => Ok(()),
        }
    }
}

/// How the in-process model answers.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalSettings {
    /// A label for responses and metrics (the model file is chosen by the server).
    pub model: String,
    /// Upper bound on generated tokens for local answers and drafts.
    pub max_tokens: u32,
    /// Most requests admitted to the local model at once.
    pub max_queue: u32,
    /// How long a request may wait for room on the local model.
    pub max_wait: std::time::Duration,
}

/// API dialect of a tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Any server with an OpenAI-compatible `POST /v1/chat/completions`.
    OpenAi,
    /// Anthropic's Messages API, `POST /v1/messages`.
    Anthropic,
}

impl Provider {
    /// The name used in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
        }
    }
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
    /// Bound on making one connection (at most `timeout`).
    pub connect_timeout: Duration,
    /// Longest wait for the next chunk of a response body.
    pub read_timeout: Duration,
    /// Extra attempts after a failed one (connection errors, timeouts, 408, 429 and 5xx).
    pub retries: u32,
    /// When to stop sending to this tier for a while.
    pub circuit_breaker: BreakerSettings,
    /// How many retries this tier may add on top of first attempts.
    pub retry_budget: RetryBudgetSettings,
}

impl Tier {
    /// `timeout` of [`Tier::openai`].
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
    /// `connect_timeout` when the policy gives none (or `timeout`, if shorter).
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

    /// An OpenAI-compatible tier with the policy defaults: free, a 30s timeout, no key,
    /// no retries. Mostly for tests; change fields as needed.
    pub fn openai(
        name: impl Into<String>,
        base_url: impl Into<String>,
        model: impl Into<String>,
    ) -> Tier {
        Tier {
            name: name.into(),
            provider: Provider::OpenAi,
            base_url: base_url.into(),
            model: model.into(),
            api_key_env: None,
            price: Price {
                input_per_mtok: 0.0,
                output_per_mtok: 0.0,
            },
            timeout: Self::DEFAULT_TIMEOUT,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            read_timeout: Self::DEFAULT_TIMEOUT,
            retries: 0,
            circuit_breaker: BreakerSettings::default(),
            retry_budget: RetryBudgetSettings::default(),
        }
    }
}

/// When a tier's circuit breaker opens, and how it recovers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerSettings {
    /// Open after this many failures in a row (≥ 1).
    pub consecutive_failures: u32,
    /// Open when at least this share of the calls in `window` failed, in (0, 1],
    /// once `window` holds `min_requests` calls.
    pub error_ratio: f64,
    /// Calls `window` must hold before `error_ratio` is judged (≥ 1).
    pub min_requests: u32,
    /// The sliding window `error_ratio` is measured over.
    pub window: Duration,
    /// How long an open breaker refuses calls before it lets probes through.
    pub open_for: Duration,
    /// Trial calls let through once `open_for` has passed (≥ 1).
    pub half_open_probes: u32,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            error_ratio: 0.5,
            min_requests: 20,
            window: Duration::from_secs(30),
            open_for: Duration::from_secs(10),
            half_open_probes: 1,
        }
    }
}

/// How many retries a tier may make, relative to its first attempts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudgetSettings {
    /// Retries allowed per first attempt, in [0, 10] (0.2: one retry per five calls).
    pub ratio: f64,
    /// Retries allowed per second regardless of traffic (≥ 0), so a quiet tier can retry.
    pub min_per_second: f64,
}

impl Default for RetryBudgetSettings {
    fn default() -> Self {
        Self {
            ratio: 0.2,
            min_per_second: 1.0,
        }
    }
}

/// How a request is scored.
#[derive(Debug, Clone, PartialEq)]
pub struct Scoring {
    pub method: ScoringMethod,
    /// Escalate when confidence < threshold. In [0, 1].
    pub threshold: f64,
    pub weights: Weights,
    /// Per-tenant overrides of `threshold`, each in [0, 1].
    pub tenant_thresholds: BTreeMap<String, f64>,
    /// The hidden-state probe (`scoring.probe`), which `prefill_probe`, `cascade` and the
    /// `hidden_probe` feature read.
    pub probe: Option<Arc<HiddenProbe>>,
    /// `cascade` only: escalate without drafting when the probe's probability is below this.
    pub escalate_below: Option<f64>,
}

impl Scoring {
    /// Whether scoring takes a prefill of the local model (a prefill feature, the
    /// classification probe, or the hidden-state probe of `prefill_probe` and `cascade`).
    pub fn uses_prefill(&self) -> bool {
        self.weights.uses_prefill() || self.method.needs_probe()
    }

    /// The threshold for this tenant: its override, or the policy's `threshold`.
    pub fn threshold_for(&self, tenant: &str) -> f64 {
        self.tenant_thresholds
            .get(tenant)
            .copied()
            .unwrap_or(self.threshold)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoringMethod {
    /// The SLM drafts the answer; confidence comes from its token log-probabilities (and any
    /// other feature). The draft is the local answer when confidence holds.
    AnswerConfidence,
    /// Pre-route: one prefill over a classification prompt ("will this be answered
    /// correctly?"), no generation; the answer is generated only when kept local.
    DifficultyProbe,
    /// Pre-route: the mean negative log-likelihood of the prompt (one prefill), no generation.
    PromptSurprise,
    /// Pre-route: the hidden-state probe (and any other prefill feature) from one prefill of
    /// the prompt, no generation.
    PrefillProbe,
    /// Two stages: the probe first (one prefill); below `escalate_below` the request escalates
    /// without a draft, otherwise the model drafts and every feature decides.
    Cascade,
}

impl ScoringMethod {
    pub const ALL: [ScoringMethod; 5] = [
        ScoringMethod::AnswerConfidence,
        ScoringMethod::DifficultyProbe,
        ScoringMethod::PromptSurprise,
        ScoringMethod::PrefillProbe,
        ScoringMethod::Cascade,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ScoringMethod::AnswerConfidence => "answer_confidence",
            ScoringMethod::DifficultyProbe => "difficulty_probe",
            ScoringMethod::PromptSurprise => "prompt_surprise",
            ScoringMethod::PrefillProbe => "prefill_probe",
            ScoringMethod::Cascade => "cascade",
        }
    }

    /// Whether the method drafts the answer before deciding.
    pub fn drafts(self) -> bool {
        matches!(
            self,
            ScoringMethod::AnswerConfidence | ScoringMethod::Cascade
        )
    }

    /// Whether the method reads the hidden-state probe (so the policy must name one).
    pub fn needs_probe(self) -> bool {
        matches!(self, ScoringMethod::PrefillProbe | ScoringMethod::Cascade)
    }

    /// Whether the method can compute `feature` before deciding.
    pub fn provides(self, feature: Feature) -> bool {
        matches!(
            (self, feature.source()),
            (ScoringMethod::AnswerConfidence | ScoringMethod::Cascade, _)
                | (_, FeatureSource::Text)
                | (
                    ScoringMethod::DifficultyProbe,
                    FeatureSource::Probe | FeatureSource::Prefill
                )
                | (
                    ScoringMethod::PromptSurprise | ScoringMethod::PrefillProbe,
                    FeatureSource::Prefill
                )
        )
    }
}

/// What a feature is computed from, and so what it costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureSource {
    /// The greedy draft of the answer (its generation).
    Draft,
    /// The request text alone: no model call.
    Text,
    /// One prefill of the prompt, no generation.
    Prefill,
    /// One prefill of the classification prompt, no generation.
    Probe,
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
    /// Digits (0-9) in the user messages.
    PromptDigits,
    /// Number of user messages in the conversation.
    Turns,
    /// Fenced code blocks (```) in the user messages.
    CodeBlocks,
    /// Question words (what, who, whom, whose, which, when, where, why, how) in the last user
    /// message.
    QuestionWords,
    /// Mean negative log-likelihood (nats per token) of the last user message under the local
    /// model: how surprising the request is to it.
    PromptNll,
    /// ln p(yes) − ln p(no) when the local model is asked whether it will answer the request
    /// correctly.
    ProbeLogOdds,
    /// Log-odds that the local model answers correctly, from the hidden-state probe
    /// (`scoring.probe`) on one prefill of the prompt.
    HiddenProbe,
}

impl Feature {
    pub const ALL: [Feature; 14] = [
        Feature::MeanLogprob,
        Feature::MinLogprob,
        Feature::P10Logprob,
        Feature::MeanEntropy,
        Feature::DraftTokens,
        Feature::Stopped,
        Feature::PromptTokens,
        Feature::PromptDigits,
        Feature::Turns,
        Feature::CodeBlocks,
        Feature::QuestionWords,
        Feature::PromptNll,
        Feature::ProbeLogOdds,
        Feature::HiddenProbe,
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
            Feature::PromptDigits => "prompt_digits",
            Feature::Turns => "turns",
            Feature::CodeBlocks => "code_blocks",
            Feature::QuestionWords => "question_words",
            Feature::PromptNll => "prompt_nll",
            Feature::ProbeLogOdds => "probe_log_odds",
            Feature::HiddenProbe => "hidden_probe",
        }
    }

    /// What computing this feature takes.
    pub fn source(self) -> FeatureSource {
        match self {
            Feature::MeanLogprob
            | Feature::MinLogprob
            | Feature::P10Logprob
            | Feature::MeanEntropy
            | Feature::DraftTokens
            | Feature::Stopped
            | Feature::PromptTokens => FeatureSource::Draft,
            Feature::PromptDigits
            | Feature::Turns
            | Feature::CodeBlocks
            | Feature::QuestionWords => FeatureSource::Text,
            Feature::PromptNll | Feature::HiddenProbe => FeatureSource::Prefill,
            Feature::ProbeLogOdds => FeatureSource::Probe,
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

impl Weights {
    /// Whether a feature from `source` has a weight.
    pub fn uses(&self, source: FeatureSource) -> bool {
        self.terms.iter().any(|(f, _)| f.source() == source)
    }

    /// Whether `feature` has a weight.
    pub fn uses_feature(&self, feature: Feature) -> bool {
        self.terms.iter().any(|(f, _)| *f == feature)
    }

    /// Whether scoring takes a prefill of the local model beyond the draft (the prompt's
    /// likelihood or the probe).
    pub fn uses_prefill(&self) -> bool {
        self.uses(FeatureSource::Prefill) || self.uses(FeatureSource::Probe)
    }
}

/// Which requests a policy's response cache answers and stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    /// Only requests with temperature 0, whose answer is meant to be repeatable.
    Deterministic,
    /// Every request, whatever its sampling settings.
    Always,
    /// No caching.
    Off,
}

impl CacheMode {
    /// Every mode, in the order error messages list them.
    pub const ALL: [CacheMode; 3] = [CacheMode::Deterministic, CacheMode::Always, CacheMode::Off];

    /// The name used in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheMode::Deterministic => "deterministic",
            CacheMode::Always => "always",
            CacheMode::Off => "off",
        }
    }
}

/// A policy's in-process response cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    pub mode: CacheMode,
    /// How long a cached answer may be served (> 0).
    pub ttl: Duration,
    /// Upper bound on the memory this policy's cache holds, in bytes (> 0).
    pub max_bytes: u64,
}

impl Default for CacheSettings {
    /// Deterministic requests only, kept 10 minutes, at most 64 MiB.
    fn default() -> Self {
        Self {
            mode: CacheMode::Deterministic,
            ttl: Duration::from_secs(600),
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

/// What to do when every tier fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnUpstreamFailure {
    /// Answer with the local model and mark the route as a fallback.
    Local,
    /// Fail the request with UNAVAILABLE naming the tier.
    Error,
}
