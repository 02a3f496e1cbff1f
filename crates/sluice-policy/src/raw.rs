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
#[serde(deny_unknown_fields, expecting = "a mapping with model and max_tokens")]
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
    /// draft.
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

/// One entry of `rules:`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a rule mapping with name, when and action"
)]
pub struct RawRule {
    /// Unique within the policy; shown in logs.
    #[schemars(with = "Name")]
    pub name: String,
    /// Conditions that must all hold. Absent or null: the rule has no conditions.
    pub when: Option<RawConditions>,
    /// What the first matching rule does with the request.
    pub action: RawAction,
}

/// `when:` of a rule; every condition is optional.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of conditions (tenant, tags, regex, prompt_tokens, turns, code, pii)"
)]
pub struct RawConditions {
    /// The caller's tenant is this one, or one of these.
    #[schemars(with = "Option<TenantNames>")]
    pub tenant: Option<OneOrMany>,
    /// Every tag is present on the request and its value matches the pattern (`*`: any
    /// run of characters, `?`: one character).
    #[schemars(with = "Option<TagPatterns>")]
    pub tags: Option<Entries<Scalar>>,
    /// A regular expression (Rust `regex` syntax) found somewhere in the last user
    /// message.
    #[schemars(length(min = 1))]
    pub regex: Option<String>,
    /// Prompt tokens, counted by the local model's tokenizer, are within the range.
    pub prompt_tokens: Option<RawRange>,
    /// The number of user messages is within the range.
    pub turns: Option<RawRange>,
    /// `true`: a user message has a code fence line; `false`: none has.
    pub code: Option<bool>,
    /// Personal data or secrets appear in the user messages: `any`, or a kind or a list
    /// of kinds.
    #[schemars(with = "Option<PiiKinds>")]
    pub pii: Option<OneOrMany>,
}

/// `prompt_tokens:` or `turns:` of a rule: bounds, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a mapping with min and/or max")]
#[schemars(transform = crate::schema::min_and_or_max)]
pub struct RawRange {
    /// Lowest count that matches.
    #[schemars(range(min = 0, max = u32::MAX))]
    pub min: Option<Int>,
    /// Highest count that matches.
    #[schemars(range(min = 0, max = u32::MAX))]
    pub max: Option<Int>,
}

/// A rule's `action:` — a plain word (`local`, `score`) or a one-key mapping
/// (`{tier: NAME}`, `{reject: MESSAGE}`), checked by `validate`.
#[derive(Debug, Clone, PartialEq)]
pub enum RawAction {
    /// Any scalar.
    Word(Scalar),
    /// A mapping, in file order, duplicates kept.
    Map(Vec<(String, Scalar)>),
}

impl<'de> Deserialize<'de> for RawAction {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ActionVisitor;

        impl<'de> Visitor<'de> for ActionVisitor {
            type Value = RawAction;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(ACTIONS)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawAction, E> {
                Ok(RawAction::Word(Scalar {
                    text: v.to_owned(),
                    is_string: true,
                }))
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawAction, E> {
                Ok(RawAction::Word(Scalar::other(v)))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawAction, E> {
                Ok(RawAction::Word(Scalar::other(v)))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawAction, E> {
                Ok(RawAction::Word(Scalar::other(v)))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawAction, E> {
                Ok(RawAction::Word(Scalar::other(v)))
            }

            fn visit_unit<E: de::Error>(self) -> Result<RawAction, E> {
                Ok(RawAction::Word(Scalar::other("null")))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawAction, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Scalar>()? {
                    entries.push(entry);
                }
                Ok(RawAction::Map(entries))
            }
        }

        deserializer.deserialize_any(ActionVisitor)
    }
}

/// What a rule's action may be, for messages.
pub const ACTIONS: &str = "local, score, {tier: NAME} or {reject: MESSAGE}";

/// A string or a list of strings (`tenant: acme` or `tenant: [acme, initech]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OneOrManyVisitor;

        impl<'de> Visitor<'de> for OneOrManyVisitor {
            type Value = OneOrMany;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(v.to_owned()))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<String>()? {
                    items.push(item);
                }
                Ok(OneOrMany::Many(items))
            }
        }

        deserializer.deserialize_any(OneOrManyVisitor)
    }
}

/// `budget:` — spend caps on escalations, per tenant.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with daily_usd, monthly_usd, tenants and on_exhausted"
)]
#[schemars(transform = crate::schema::some_budget_cap)]
pub struct RawBudget {
    /// USD each tenant may spend on escalations per UTC day; absent: no daily cap.
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub daily_usd: Option<Num>,
    /// USD each tenant may spend on escalations per UTC calendar month; absent: no
    /// monthly cap.
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub monthly_usd: Option<Num>,
    /// Per-tenant overrides of either cap, by tenant name.
    #[schemars(with = "Option<ByTenant<RawBudgetCaps>>")]
    pub tenants: Option<Entries<RawBudgetCaps>>,
    /// What happens to a request that would escalate once its tenant's cap is reached:
    /// `local` (default) answers with the local model, `reject` fails the request.
    #[schemars(with = "Option<OnExhaustedName>")]
    pub on_exhausted: Option<String>,
}

/// One entry of `budget.tenants`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with daily_usd and/or monthly_usd"
)]
#[schemars(transform = crate::schema::daily_and_or_monthly)]
pub struct RawBudgetCaps {
    /// USD per UTC day; absent: the policy-wide `daily_usd`.
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub daily_usd: Option<Num>,
    /// USD per UTC calendar month; absent: the policy-wide `monthly_usd`.
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub monthly_usd: Option<Num>,
}

/// A mapping from names to values in file order, duplicates kept so validation can
/// reject them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Entries<V>(pub Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Entries<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<V>(PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for EntriesVisitor<V> {
            type Value = Entries<V>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<V>, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, V>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }

        deserializer.deserialize_map(EntriesVisitor(PhantomData))
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
}

/// One entry of `tenants:`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a tenant mapping")]
pub struct RawTenant {
    pub name: String,
    pub api_key_env: String,
    pub policy: Option<String>,
}

/// An integer; wide so that validation can report out-of-range values itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int(pub i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IntVisitor;

        impl Visitor<'_> for IntVisitor {
            type Value = Int;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int, E> {
                Ok(Int(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int, E> {
                i64::try_from(v)
                    .map(Int)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
        }

        deserializer.deserialize_i64(IntVisitor)
    }
}

/// A number, integer or not.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Num(pub f64);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NumVisitor;

        impl Visitor<'_> for NumVisitor {
            type Value = Num;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number")
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Num, E> {
                Ok(Num(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Num, E> {
                Ok(Num(v as f64))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Num, E> {
                Ok(Num(v as f64))
            }
        }

        deserializer.deserialize_f64(NumVisitor)
    }
}

/// Any YAML scalar, kept as text, for values whose type is part of the check
/// (a bare `30` is not a duration, and the error should say so in our words).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar {
    pub text: String,
    /// Whether the YAML value was a string (affects how it is quoted in errors).
    pub is_string: bool,
}

impl Scalar {
    /// A scalar that was not a string, as text.
    pub fn other(text: impl ToString) -> Scalar {
        Scalar {
            text: text.to_string(),
            is_string: false,
        }
    }

    /// The value as it should appear after "found" in an error message.
    pub fn found(&self) -> String {
        if self.is_string {
            format!("{:?}", self.text)
        } else {
            self.text.clone()
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;

        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar value")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar {
                    text: v.to_owned(),
                    is_string: true,
                })
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::other(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::other(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::other(v))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::other(v))
            }

            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar::other("null"))
            }
        }

        deserializer.deserialize_any(ScalarVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_keep_file_order_and_duplicates() {
        let w: RawWeights = serde_norway::from_str("{ b: 1, a: 2.5, b: -3 }").unwrap();
        assert_eq!(
            w.0,
            vec![
                ("b".into(), Num(1.0)),
                ("a".into(), Num(2.5)),
                ("b".into(), Num(-3.0))
            ]
        );
    }

    #[test]
    fn scalar_records_whether_it_was_a_string() {
        let s: Scalar = serde_norway::from_str("30s").unwrap();
        assert_eq!(s.found(), "\"30s\"");
        let n: Scalar = serde_norway::from_str("30").unwrap();
        assert_eq!((n.text.as_str(), n.is_string), ("30", false));
        assert_eq!(n.found(), "30");
    }

    #[test]
    fn numbers_accept_integers_and_say_what_they_expect() {
        let n: Num = serde_norway::from_str("2").unwrap();
        assert_eq!(n, Num(2.0));
        let i: Int = serde_norway::from_str("-3").unwrap();
        assert_eq!(i, Int(-3));
        let err = serde_norway::from_str::<Int>("1.5")
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected an integer"), "{err}");
        let err = serde_norway::from_str::<Num>("x").unwrap_err().to_string();
        assert!(err.contains("expected a number"), "{err}");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = serde_norway::from_str::<RawLocal>("{ model: m, max_token: 3 }").unwrap_err();
        assert!(
            err.to_string().contains("unknown field `max_token`"),
            "{err}"
        );
    }
}
