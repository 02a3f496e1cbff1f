//! Requests and responses of the request path, free of wire types.

use std::collections::BTreeMap;

use sluice_policy::{GenParams, Message};

/// What the caller asked for about routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RouteHint {
    #[default]
    Auto,
    Local,
    Remote,
}

/// What the caller allows the cache to do with this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheControl {
    /// Do not answer from the cache.
    pub no_cache: bool,
    /// Do not keep the answer.
    pub no_store: bool,
}

/// A validated chat request.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatInput {
    /// Who is asking; cache entries never cross tenants.
    pub tenant: String,
    pub messages: Vec<Message>,
    /// Empty: the default policy.
    pub policy: String,
    pub tags: BTreeMap<String, String>,
    pub params: GenParams,
    pub hint: RouteHint,
    pub request_id: String,
    /// The caller's deadline (gRPC `grpc-timeout`); tier calls never run past it.
    pub deadline: Option<std::time::Instant>,
    pub cache: CacheControl,
    /// The caller's tenant entry, which lists the policies it may use; `None`: any loaded
    /// policy (authentication off).
    pub access: Option<std::sync::Arc<sluice_policy::Tenant>>,
}

impl ChatInput {
    /// Whether any message, or any of `answers`, holds personal data or a secret.
    pub fn private_with(&self, answers: &[&str]) -> bool {
        let messages = self.messages.iter().map(|m| m.content.as_str());
        sluice_policy::pii::found_in(messages.chain(answers.iter().copied()))
    }
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    Local,
    Remote,
    Cache,
}

impl RouteKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteKind::Local => "local",
            RouteKind::Remote => "remote",
            RouteKind::Cache => "cache",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteInfo {
    pub kind: RouteKind,
    /// Tier name for remote answers.
    pub tier: Option<String>,
    pub model: String,
    /// The local model answered because every tier failed.
    pub fallback: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DecisionInfo {
    pub confidence: Option<f64>,
    pub threshold: f64,
    /// Scoring method; `None` when the request was not scored.
    pub method: Option<&'static str>,
    pub reason: &'static str,
    pub features: Vec<(&'static str, f64)>,
    pub policy: String,
    /// The policy rule that matched first, if any.
    pub rule: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct UsageInfo {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_usd: f64,
    pub cost_avoided_usd: f64,
}

/// Milliseconds spent per stage.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Timings {
    pub total_ms: f64,
    pub score_ms: f64,
    pub upstream_ms: f64,
    pub local_ms: f64,
}

/// Everything about an answer except its text.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerMeta {
    pub request_id: String,
    pub finish_reason: String,
    pub route: RouteInfo,
    pub decision: DecisionInfo,
    pub usage: UsageInfo,
    pub timings: Timings,
}

/// A complete answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatOutput {
    pub text: String,
    pub meta: AnswerMeta,
}

/// One item of a streamed answer: text as it comes, then the metadata once.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamItem {
    Delta(String),
    End(Box<AnswerMeta>),
}

/// What `Score` reports: the decision and the route `Chat` would take.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreOutput {
    pub decision: DecisionInfo,
    pub route: RouteInfo,
    pub draft: String,
    pub timings: Timings,
}
