//! Raw policy and tenants file types: exactly the YAML shape, checked only for structure.
//!
//! Values are kept loose here (strings, wide integers) so that `validate` can
//! report bad values with its own "expected …, found …" messages and key paths.
//! Every struct denies unknown fields so a misspelled key is an error, not a
//! silently ignored setting.

use std::fmt;
use std::marker::PhantomData;

use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::schema::{
    ByTenant, ByteSize, CacheModeName, DurationText, EnvName, Name, NonBlank, OnExhaustedName,
    OnUpstreamFailureName, PiiKinds, ProviderName, ScoringMethodName, TagPatterns, TenantNames,
    UnitInterval,
};

/// A whole policy file, as written.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a policy mapping")]
pub struct RawPolicy {
    /// Format version; only 1 exists.
    #[schemars(extend("const" = crate::validate::VERSION))]
    pub version: Int,
    /// Policy name: lowercase letters, digits, `_` and `-`; requests choose a policy by
    /// it, and those that name none use the policy named `default`.
    #[schemars(with = "Name")]
    pub name: String,
    /// The small in-process model that drafts or scores every request.
    pub local: RawLocal,
    /// Escalation chain, in order; absent means none.
    #[serde(default)]
    pub tiers: Vec<RawTier>,
    /// How confident the local model is: sigmoid(bias + sum of weight × feature),
    /// compared with a threshold.
    pub scoring: RawScoring,
    /// When every tier fails: `local` (default) answers with the local model, `error`
    /// fails the request.
    #[schemars(with = "Option<OnUpstreamFailureName>")]
    pub on_upstream_failure: Option<String>,
    /// Answers kept in memory and served again for the same request; every key is
    /// optional.
    pub cache: Option<RawCache>,
    /// Routing rules, in order; absent or null means none.
    pub rules: Option<Vec<RawRule>>,
    /// Spend caps on escalations; absent means none.
    pub budget: Option<RawBudget>,
    /// Second opinions on a sampled share of the requests the score decided, off the
    /// request's path; absent means none.
    pub shadow: Option<RawShadow>,
    /// Fine-tuning examples from the tier's answers to escalated requests of these tenants;
    /// absent means none.
    pub distill: Option<RawDistill>,
}

/// `cache:` — the policy's response cache; every key is optional.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with mode, ttl and max_bytes"
)]
pub struct RawCache {
    /// `deterministic` (default): only requests with temperature 0; `always`: every
    /// request; `off`: no cache.
    #[schemars(with = "Option<CacheModeName>")]
    pub mode: Option<String>,
    /// How long an answer is served from the cache, greater than zero; default 10m.
    #[schemars(with = "Option<DurationText>")]
    pub ttl: Option<Scalar>,
    /// Memory for this policy's cache, greater than zero: integer bytes or a string with
    /// a unit (B, KB, MB, GB: powers of 1000; KiB, MiB, GiB: powers of 1024); default
    /// 64MiB.
    #[schemars(with = "Option<ByteSize>")]
    pub max_bytes: Option<Scalar>,
}

/// `local:` — the in-process model.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with model, max_tokens, max_queue and max_wait"
)]
pub struct RawLocal {
    /// A label for responses and metrics (the model file is chosen by the server).
    #[schemars(with = "NonBlank")]
    pub model: String,
    /// Upper bound on generated tokens for local answers and drafts; default 256.
    #[schemars(range(
        min = *crate::validate::LOCAL_MAX_TOKENS.start(),
        max = *crate::validate::LOCAL_MAX_TOKENS.end()
    ))]
    pub max_tokens: Option<Int>,
    /// Most requests admitted to the local model at once (generating, or waiting in its
    /// batch queue); when full, `ROUTE_HINT_AUTO` requests go to the tiers and local-only
    /// ones wait up to `max_wait`, then fail with RESOURCE_EXHAUSTED; default 16.
    #[schemars(range(
        min = *crate::validate::LOCAL_MAX_QUEUE.start(),
        max = *crate::validate::LOCAL_MAX_QUEUE.end()
    ))]
    pub max_queue: Option<Int>,
    /// How long a request may wait for room on the local model; default 0s (no waiting).
    #[schemars(with = "Option<DurationText>")]
    pub max_wait: Option<Scalar>,
}

/// One entry of `tiers:`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a tier mapping")]
pub struct RawTier {
    /// Unique within the policy; rules send requests to a tier by it.
    #[schemars(with = "Name")]
    pub name: String,
    /// `openai`: any OpenAI-compatible `/v1/chat/completions` server; `anthropic`:
    /// Anthropic's Messages API (`/v1/messages`).
    #[schemars(with = "ProviderName")]
    pub provider: String,
    /// http:// or https:// URL without query or fragment. May hold `${VAR}` /
    /// `${VAR:-default}` references, expanded from the environment.
    pub base_url: String,
    /// The model name sent to the tier.
    #[schemars(with = "NonBlank")]
    pub model: String,
    /// Environment variable holding the API key; absent: no key is sent.
    #[schemars(with = "Option<EnvName>")]
    pub api_key_env: Option<String>,
    /// USD per million tokens, for costs and budgets.
    pub price: RawPrice,
    /// Bound on one whole call to this tier, retries included.
    #[schemars(with = "DurationText")]
    pub timeout: Scalar,
    /// Bound on opening one connection, at most `timeout`; default 2s (or `timeout` if
    /// shorter).
    #[schemars(with = "Option<DurationText>")]
    pub connect_timeout: Option<Scalar>,
    /// Longest wait between two chunks of an answer; default `timeout`.
    #[schemars(with = "Option<DurationText>")]
    pub read_timeout: Option<Scalar>,
    /// Extra attempts on connection errors, timeouts, 408, 429 and 5xx; default 0.
    #[schemars(range(min = 0, max = 10))]
    pub retries: Option<Int>,
    /// When to stop sending to this tier for a while; every key is optional.
    pub circuit_breaker: Option<RawBreaker>,
    /// How many retries this tier may add on top of first attempts; every key is
    /// optional.
    pub retry_budget: Option<RawRetryBudget>,
}

/// `circuit_breaker:` of a tier; every key is optional.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a circuit_breaker mapping")]
pub struct RawBreaker {
    /// Open after this many failures in a row; default 5.
    #[schemars(range(min = 1, max = u32::MAX))]
    pub consecutive_failures: Option<Int>,
    /// Open when at least this share of the calls in `window` failed, greater than 0 and
    /// at most 1; default 0.5.
    #[schemars(range(max = 1), extend("exclusiveMinimum" = 0))]
    pub error_ratio: Option<Num>,
    /// Calls `window` must hold before `error_ratio` is judged; default 20.
    #[schemars(range(min = 1, max = u32::MAX))]
    pub min_requests: Option<Int>,
    /// The sliding window `error_ratio` is measured over; default 30s.
    #[schemars(with = "Option<DurationText>")]
    pub window: Option<Scalar>,
    /// How long an open breaker refuses calls; default 10s.
    #[schemars(with = "Option<DurationText>")]
    pub open_for: Option<Scalar>,
    /// Trial calls let through once `open_for` has passed; default 1.
    #[schemars(range(min = 1, max = u32::MAX))]
    pub half_open_probes: Option<Int>,
}

/// `retry_budget:` of a tier; every key is optional.
#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with ratio and min_per_second"
)]
pub struct RawRetryBudget {
    /// Retries allowed per first attempt (0.2: one retry per five calls); default 0.2.
    #[schemars(range(min = 0, max = 10))]
    pub ratio: Option<Num>,
    /// Retries allowed per second regardless of traffic; default 1.
    #[schemars(range(min = 0))]
    pub min_per_second: Option<Num>,
}

/// `price:` of a tier, USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with input_per_mtok and output_per_mtok"
)]
pub struct RawPrice {
    /// USD per million prompt tokens.
    #[schemars(range(min = 0))]
    pub input_per_mtok: Num,
    /// USD per million completion tokens.
    #[schemars(range(min = 0))]
    pub output_per_mtok: Num,
}

/// `scoring:` — how confidence is computed and compared.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with method, threshold and weights"
)]
#[schemars(transform = crate::schema::weights_by_method)]
pub struct RawScoring {
    /// `answer_confidence`: the local model drafts the answer, scored by its token
    /// probabilities; `difficulty_probe`: one prefill of a question whether the model
    /// will answer correctly, no draft; `prompt_surprise`: one prefill of the prompt, no
    /// draft; `prefill_probe`: the hidden-state probe on one prefill of the prompt, no
    /// draft; `cascade`: the probe first, escalating below `escalate_below` without a
    /// draft, then the draft and every feature.
    #[schemars(with = "ScoringMethodName")]
    pub method: String,
    /// Escalate when confidence is below this.
    #[schemars(range(min = 0, max = 1))]
    pub threshold: Num,
    /// `bias` and a weight per feature; a method may use only the features it computes
    /// before deciding.
    pub weights: RawWeights,
    /// Per-tenant overrides of `threshold`, by tenant name.
    #[schemars(with = "Option<ByTenant<UnitInterval>>")]
    pub tenant_thresholds: Option<Entries<Num>>,
    /// The hidden-state probe file (JSON, written by `sluice calibrate --fit-probe`),
    /// relative to this policy file; required by `prefill_probe`, `cascade` and the
    /// `hidden_probe` weight.
    pub probe: Option<String>,
    /// `cascade` only: escalate at once, without a draft, when the probe's probability
    /// that the local answer is right is below this.
    #[schemars(range(min = 0, max = 1))]
    pub escalate_below: Option<Num>,
}

/// `weights:` in file order, duplicates kept so validation can reject them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RawWeights(pub Vec<(String, Num)>);

impl<'de> Deserialize<'de> for RawWeights {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct WeightsVisitor;

        impl<'de> Visitor<'de> for WeightsVisitor {
            type Value = RawWeights;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping from weight names to numbers")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawWeights, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Num>()? {
                    entries.push(entry);
                }
                Ok(RawWeights(entries))
            }
        }

        deserializer.deserialize_map(WeightsVisitor)
    }
}

/// A whole tenants file, as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a tenants mapping")]
pub struct RawTenants {
    /// Format version; only 1 exists.
    pub version: Int,
    /// Absent, null and empty are all reported by `tenants` as "no tenants".
    pub tenants: Option<Vec<RawTenant>>,
    /// Keys for the Admin service; absent: no caller may use it.
    pub admins: Option<Vec<RawAdmin>>,
}

/// One entry of `tenants:`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a tenant mapping")]
pub struct RawTenant {
    pub name: String,
    pub api_key_env: String,
    pub policy: Option<String>,
    /// The policies the tenant may name; absent: only its default.
    pub policies: Option<Vec<String>>,
}

/// One entry of `admins:`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an admin mapping")]
pub struct RawAdmin {
    pub name: String,
    pub api_key_env: String,
}

mod budget;
mod distill;
mod rules;
mod shadow;
mod values;

pub use budget::*;
pub use distill::*;
pub use rules::*;
pub use shadow::*;
pub use values::*;
