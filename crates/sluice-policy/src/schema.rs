//! The JSON Schema of policy files (`policies/schema.json`), generated from the raw types.
//!
//! `schemars` derives the shape from the types in `raw`: every key, which keys are
//! required, that unknown keys are errors (`deny_unknown_fields`), the type of each value,
//! and descriptions from the doc comments. The `#[schemars(...)]` attributes there and the
//! types and transforms here add the value checks of `validate` that JSON Schema can state:
//! names, choices (provider, scoring method, cache mode, …), feature names and which
//! scoring method computes them, PII kinds, the forms of durations and sizes, and numeric
//! ranges. What relates values to each other is left to `validate` (and so to `sluice
//! policy check`): unique tier, rule and tenant names, a rule's tier existing,
//! `connect_timeout` no longer than `timeout`, `min` no greater than `max`, durations and
//! sizes above zero, regexes that compile, base URLs after `${VAR}` expansion.

use std::borrow::Cow;
use std::marker::PhantomData;

use schemars::generate::SchemaSettings;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

use crate::model::{
    CacheMode, Feature, FeatureSource, OnBudgetExhausted, OnUpstreamFailure, Provider,
    ScoringMethod,
};
use crate::pii::PiiKind;
use crate::raw::{Int, Num, RawAction, RawPolicy, RawWeights};

/// The schema's `title`.
pub const TITLE: &str = "Sluice routing policy";

const DESCRIPTION: &str = "A Sluice routing policy file (YAML): which model answers a request, \
    and when to escalate to a large model. This schema checks keys and single values; \
    `sluice policy check` also checks how values relate (unique names, the tier a rule names, \
    connect_timeout within timeout, min no greater than max, durations and sizes above zero, \
    regexes, base URLs).";

const COMMENT: &str = "Generated from crates/sluice-policy by `sluice policy schema`; \
    do not edit by hand.";

/// Names of policies, tiers, rules and tenants (as `validate::values::check_name`).
const NAME_PATTERN: &str = "^[a-z0-9][a-z0-9_-]*$";
/// Durations (as `validate::values::duration`, which trims the text first).
const DURATION_PATTERN: &str = r"^\s*[0-9]+(\.[0-9]+)?(ms|s|m|h)\s*$";
/// Sizes given as strings (as `validate::cache::byte_size`, which trims the text first).
const SIZE_PATTERN: &str = r"^\s*[0-9]+ ?(B|KB|MB|GB|KiB|MiB|GiB)?\s*$";
/// Environment variable names (as `env::is_env_name`).
const ENV_NAME_PATTERN: &str = "^[A-Za-z_][A-Za-z0-9_]*$";
/// Text that is not blank.
const NON_BLANK_PATTERN: &str = r"\S";

/// The JSON Schema (draft 2020-12) of a policy file; `policies/schema.json` is this value,
/// pretty-printed. Object keys are sorted, so the text does not depend on whether
/// `serde_json` keeps insertion order (its `preserve_order` feature).
pub fn policy_schema() -> Value {
    let generator = SchemaSettings::draft2020_12()
        .with(|settings| settings.inline_subschemas = true)
        .into_generator();
    let mut schema = generator.into_root_schema_for::<RawPolicy>().to_value();
    if let Some(root) = schema.as_object_mut() {
        root.insert("title".into(), TITLE.into());
        root.insert("description".into(), DESCRIPTION.into());
        root.insert("$comment".into(), COMMENT.into());
    }
    tidy(&mut schema);
    schema.sort_all_objects();
    schema
}

/// Joins the lines of each paragraph of every description (doc comments are wrapped at
/// 100 columns) and lifts an `anyOf` nested alone in an `anyOf` (what `Option` makes of
/// an `anyOf` schema) into its parent.
fn tidy(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(text)) = map.get_mut("description") {
                *text = text
                    .split("\n\n")
                    .map(|paragraph| paragraph.replace('\n', " "))
                    .collect::<Vec<_>>()
                    .join("\n\n");
            }
            if let Some(Value::Array(alternatives)) = map.get_mut("anyOf") {
                let mut flat = Vec::with_capacity(alternatives.len());
                for alternative in alternatives.drain(..) {
                    match alternative {
                        Value::Object(mut inner)
                            if inner.len() == 1 && inner.contains_key("anyOf") =>
                        {
                            if let Some(Value::Array(nested)) = inner.remove("anyOf") {
                                flat.extend(nested);
                            }
                        }
                        other => flat.push(other),
                    }
                }
                *alternatives = flat;
            }
            map.values_mut().for_each(tidy);
        }
        Value::Array(items) => items.iter_mut().for_each(tidy),
        _ => {}
    }
}

/// Declares a unit type whose schema (always inlined) is `$body`.
macro_rules! schema_type {
    ($(#[$meta:meta])* $name:ident => $body:expr) => {
        $(#[$meta])*
        pub(crate) struct $name;

        impl JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                $body
            }
        }
    };
}

schema_type! {
    /// A policy, tier, rule or tenant name.
    Name => name()
}

schema_type! {
    /// Text that is not blank (model names).
    NonBlank => json_schema!({ "type": "string", "pattern": NON_BLANK_PATTERN })
}

schema_type! {
    /// An environment variable name.
    EnvName => json_schema!({ "type": "string", "pattern": ENV_NAME_PATTERN })
}

schema_type! {
    /// A number in [0, 1].
    UnitInterval => json_schema!({ "type": "number", "minimum": 0, "maximum": 1 })
}

schema_type! {
    /// A duration: a string like `500ms`, `30s`, `1.5m` or `2h`.
    DurationText => json_schema!({
        "type": "string",
        "pattern": DURATION_PATTERN,
        "examples": ["500ms", "30s", "1.5m", "2h"],
    })
}

schema_type! {
    /// A size: integer bytes, or a string with a unit like `500KB` or `64MiB`.
    ByteSize => json_schema!({
        "anyOf": [
            { "type": "integer", "minimum": 1 },
            { "type": "string", "pattern": SIZE_PATTERN, "examples": ["500KB", "64MiB"] },
        ]
    })
}

schema_type! {
    /// `tiers[].provider`.
    ProviderName => choice(&provider_names())
}

schema_type! {
    /// `scoring.method`.
    ScoringMethodName => choice(&ScoringMethod::ALL.map(ScoringMethod::as_str))
}

schema_type! {
    /// `cache.mode`.
    CacheModeName => choice(&CacheMode::ALL.map(CacheMode::as_str))
}

schema_type! {
    /// `on_upstream_failure`.
    OnUpstreamFailureName => choice(&on_upstream_failure_names())
}

schema_type! {
    /// `budget.on_exhausted`.
    OnExhaustedName => choice(&OnBudgetExhausted::ALL.map(OnBudgetExhausted::as_str))
}

schema_type! {
    /// A rule's `tenant:` — a tenant name or a non-empty list of them.
    TenantNames => json_schema!({
        "anyOf": [
            name(),
            { "type": "array", "items": name(), "minItems": 1 },
        ]
    })
}

schema_type! {
    /// A rule's `pii:` — `any`, a kind, or a non-empty list of kinds.
    PiiKinds => {
        let kinds = PiiKind::ALL.map(PiiKind::as_str);
        let any_or_kind: Vec<&str> = std::iter::once("any").chain(kinds).collect();
        json_schema!({
            "anyOf": [
                choice(&any_or_kind),
                { "type": "array", "items": choice(&kinds), "minItems": 1 },
            ]
        })
    }
}

schema_type! {
    /// A rule's `tags:` — at least one tag name (not blank) with a pattern string each.
    TagPatterns => json_schema!({
        "type": "object",
        "propertyNames": { "pattern": NON_BLANK_PATTERN },
        "additionalProperties": { "type": "string" },
        "minProperties": 1,
    })
}

/// A mapping from tenant names to `V`s.
pub(crate) struct ByTenant<V>(PhantomData<V>);

impl<V: JsonSchema> JsonSchema for ByTenant<V> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        format!("ByTenant_{}", V::schema_name()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "propertyNames": { "pattern": NAME_PATTERN },
            "additionalProperties": generator.subschema_for::<V>(),
        })
    }
}

fn name() -> Schema {
    json_schema!({ "type": "string", "pattern": NAME_PATTERN })
}

/// A string that is one of `names`.
fn choice(names: &[&str]) -> Schema {
    json_schema!({ "type": "string", "enum": names })
}

fn provider_names() -> [&'static str; 2] {
    let all = [Provider::OpenAi, Provider::Anthropic];
    // Stops compiling when a provider is added, so that it is added to `all` too.
    match all[0] {
        Provider::OpenAi | Provider::Anthropic => {}
    }
    all.map(Provider::as_str)
}

fn on_upstream_failure_names() -> [&'static str; 2] {
    // As `validate` reads them; exhaustive, so that a new choice is not forgotten here.
    let name = |choice| match choice {
        OnUpstreamFailure::Local => "local",
        OnUpstreamFailure::Error => "error",
    };
    [OnUpstreamFailure::Local, OnUpstreamFailure::Error].map(name)
}

impl JsonSchema for Int {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Int".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "integer" })
    }
}

impl JsonSchema for Num {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Num".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "number" })
    }
}

/// `scoring.weights`: `bias` and the features, each a number.
impl JsonSchema for RawWeights {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "RawWeights".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let mut properties = Map::new();
        properties.insert(
            "bias".into(),
            json!({
                "type": "number",
                "description": "Constant term of the logistic model; default 0.",
            }),
        );
        for feature in Feature::ALL {
            let methods: Vec<&str> = ScoringMethod::ALL
                .into_iter()
                .filter(|m| m.provides(feature))
                .map(ScoringMethod::as_str)
                .collect();
            properties.insert(
                feature.as_str().into(),
                json!({
                    "type": "number",
                    "description": format!(
                        "Weight of feature {}, computed from {}; methods: {}.",
                        feature.as_str(),
                        source_text(feature.source()),
                        methods.join(", ")
                    ),
                }),
            );
        }
        json_schema!({
            "type": "object",
            "properties": properties,
            "additionalProperties": false,
        })
    }
}

fn source_text(source: FeatureSource) -> &'static str {
    match source {
        FeatureSource::Draft => "the draft of the answer",
        FeatureSource::Text => "the request text",
        FeatureSource::Prefill => "one prefill of the prompt",
        FeatureSource::Probe => "one prefill of a question whether the answer will be right",
    }
}

/// A rule's `action:`.
impl JsonSchema for RawAction {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "RawAction".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut tier = generator.subschema_for::<Name>();
        tier.insert(
            "description".into(),
            "Send to this tier of the policy (its name), without scoring.".into(),
        );
        json_schema!({
            "oneOf": [
                {
                    "type": "string",
                    "enum": ["local", "score"],
                    "description": "`local`: answer with the local model, without scoring; \
                        `score`: score with the local model and compare with the threshold, \
                        as without rules.",
                },
                {
                    "type": "object",
                    "properties": { "tier": tier },
                    "required": ["tier"],
                    "additionalProperties": false,
                },
                {
                    "type": "object",
                    "properties": {
                        "reject": {
                            "type": "string",
                            "pattern": NON_BLANK_PATTERN,
                            "description": "Refuse the request with this message.",
                        },
                    },
                    "required": ["reject"],
                    "additionalProperties": false,
                },
            ]
        })
    }
}

/// `scoring`: a method that does not compute every feature may weigh only those it does.
pub(crate) fn weights_by_method(schema: &mut Schema) {
    let mut cases = Vec::new();
    for method in ScoringMethod::ALL {
        if Feature::ALL.into_iter().all(|f| method.provides(f)) {
            continue;
        }
        let allowed: Vec<&str> = std::iter::once("bias")
            .chain(
                Feature::ALL
                    .into_iter()
                    .filter(|f| method.provides(*f))
                    .map(Feature::as_str),
            )
            .collect();
        cases.push(json!({
            "if": {
                "properties": { "method": { "const": method.as_str() } },
                "required": ["method"],
            },
            "then": {
                "properties": { "weights": { "propertyNames": { "enum": allowed } } },
            },
        }));
    }
    if !cases.is_empty() {
        schema.insert("allOf".into(), cases.into());
    }
}

/// Requires at least one of `keys`, not null.
fn at_least_one(schema: &mut Schema, keys: &[(&str, Value)]) {
    let alternatives: Vec<Value> = keys
        .iter()
        .map(|(key, value)| {
            json!({
                "required": [key],
                "properties": { *key: value },
            })
        })
        .collect();
    schema.insert("anyOf".into(), alternatives.into());
}

fn not_null() -> Value {
    json!({ "not": { "type": "null" } })
}

/// `prompt_tokens` and `turns` of a rule: `min` and/or `max`.
pub(crate) fn min_and_or_max(schema: &mut Schema) {
    at_least_one(schema, &[("min", not_null()), ("max", not_null())]);
}

/// An entry of `budget.tenants`: `daily_usd` and/or `monthly_usd`.
pub(crate) fn daily_and_or_monthly(schema: &mut Schema) {
    at_least_one(
        schema,
        &[("daily_usd", not_null()), ("monthly_usd", not_null())],
    );
}

/// `budget`: a policy-wide cap or a tenant's.
pub(crate) fn some_budget_cap(schema: &mut Schema) {
    at_least_one(
        schema,
        &[
            ("daily_usd", not_null()),
            ("monthly_usd", not_null()),
            ("tenants", json!({ "type": "object", "minProperties": 1 })),
        ],
    );
}

#[cfg(test)]
mod tests;
