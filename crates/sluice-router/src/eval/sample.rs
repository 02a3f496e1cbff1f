//! A shadow sample: one live request answered by both the local model and the first tier,
//! as the gateway records it (`sluice serve --samples-dir`) and `sluice calibrate --rows`
//! reads it back to refit a policy on real traffic.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sluice_policy::Message;

use super::agree::Agreement;

/// One JSON line of a samples file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShadowSample {
    /// The request's id.
    pub id: String,
    /// Milliseconds since the Unix epoch when the sample was judged.
    pub unix_ms: u64,
    pub tenant: String,
    pub policy: String,
    /// The request's `task` tag, when it had one (groups samples as routing-dev's tasks do).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub task: String,
    /// Which answer the caller got.
    pub route: SampleRoute,
    /// The scoring method that decided, and its confidence and threshold.
    pub method: String,
    pub confidence: f64,
    pub threshold: f64,
    /// The features the method computed before it decided.
    pub features: BTreeMap<String, f64>,
    pub messages: Vec<Message>,
    /// The local model's answer.
    pub local: String,
    /// The tier's answer, and what it reported and cost.
    pub large: String,
    pub tier: String,
    pub large_model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub large_cost_usd: f64,
    /// The comparer's (or the judge's) judgement: `yes`, `no` or `unknown`.
    pub agree: Agreement,
}

/// Which answer the caller got, written `local` or `remote`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SampleRoute {
    /// Kept local: the tier was asked too.
    Local,
    /// Escalated: the local model answered too (or its draft stands for it).
    Remote,
}
