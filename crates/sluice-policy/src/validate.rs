//! Raw policy → validated `model::Policy`: value checks, defaults, env expansion.
//!
//! Errors carry the key path of the offending value; the caller turns that into
//! a line number and a `PolicyError`.

mod values;

use crate::env::{self, EnvLookup};
use crate::locate::KeyPath;
use crate::model::{
    Feature, LocalSettings, OnUpstreamFailure, Policy, Price, Provider, Scoring, ScoringMethod,
    Tier, Weights,
};
use crate::raw::{RawLocal, RawPolicy, RawPrice, RawScoring, RawTier, RawWeights};

/// The only file format version.
pub const VERSION: i64 = 1;
/// `local.max_tokens` when not given.
pub const DEFAULT_LOCAL_MAX_TOKENS: u32 = 256;
/// Bounds of `local.max_tokens`.
pub const LOCAL_MAX_TOKENS: std::ops::RangeInclusive<u32> = 1..=8192;
/// Bounds of `tiers[].retries`.
pub const RETRIES: std::ops::RangeInclusive<u32> = 0..=10;

/// Scoring methods that are planned but not implemented yet.
const PLANNED_METHODS: [&str; 2] = ["difficulty_probe", "prompt_surprise"];

/// A validation failure: where, and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub path: KeyPath,
    pub message: String,
}

/// Attaches a key path to a value-level error message.
trait At<T> {
    fn at(self, path: &KeyPath) -> Result<T, Invalid>;
}

impl<T> At<T> for Result<T, String> {
    fn at(self, path: &KeyPath) -> Result<T, Invalid> {
        self.map_err(|message| Invalid {
            path: path.clone(),
            message,
        })
    }
}

/// Checks every value of `raw` and builds the domain policy (with `source: None`).
pub fn validate(raw: &RawPolicy, env: EnvLookup<'_>) -> Result<Policy, Invalid> {
    let root = KeyPath::default();
    if raw.version.0 != VERSION {
        return Err(format!(
            "expected version {VERSION}, found {}",
            raw.version.0
        ))
        .at(&root.key("version"));
    }
    values::check_name(&raw.name).at(&root.key("name"))?;
    let local = local(&raw.local, &root.key("local"))?;
    let tiers = tiers(&raw.tiers, &root.key("tiers"), env)?;
    let scoring = scoring(&raw.scoring, &root.key("scoring"))?;
    let on_upstream_failure = match raw.on_upstream_failure.as_deref() {
        None | Some("local") => OnUpstreamFailure::Local,
        Some("error") => OnUpstreamFailure::Error,
        Some(other) => {
            return Err(format!("expected local or error, found {other:?}"))
                .at(&root.key("on_upstream_failure"))
        }
    };
    Ok(Policy {
        name: raw.name.clone(),
        source: None,
        local,
        tiers,
        scoring,
        on_upstream_failure,
    })
}

fn local(raw: &RawLocal, path: &KeyPath) -> Result<LocalSettings, Invalid> {
    values::check_model(&raw.model).at(&path.key("model"))?;
    let max_tokens = match raw.max_tokens {
        None => DEFAULT_LOCAL_MAX_TOKENS,
        Some(n) => values::int_in(n.0, LOCAL_MAX_TOKENS).at(&path.key("max_tokens"))?,
    };
    Ok(LocalSettings {
        model: raw.model.clone(),
        max_tokens,
    })
}

fn tiers(raw: &[RawTier], path: &KeyPath, env: EnvLookup<'_>) -> Result<Vec<Tier>, Invalid> {
    let mut out: Vec<Tier> = Vec::with_capacity(raw.len());
    for (i, raw_tier) in raw.iter().enumerate() {
        let tier_path = path.index(i);
        let tier = tier(raw_tier, &tier_path, env)?;
        if let Some(first) = out.iter().position(|t| t.name == tier.name) {
            return Err(format!(
                "expected unique tier names, found {:?} again (first at {})",
                tier.name,
                path.index(first).key("name")
            ))
            .at(&tier_path.key("name"));
        }
        out.push(tier);
    }
    Ok(out)
}

fn tier(raw: &RawTier, path: &KeyPath, env: EnvLookup<'_>) -> Result<Tier, Invalid> {
    values::check_name(&raw.name).at(&path.key("name"))?;
    let provider = match raw.provider.as_str() {
        "openai" => Provider::OpenAi,
        other => {
            return Err(format!("expected a provider among openai, found {other:?}"))
                .at(&path.key("provider"))
        }
    };
    let url_path = path.key("base_url");
    let expanded = env::expand(&raw.base_url, env).at(&url_path)?;
    let base_url = values::base_url(&expanded, &raw.base_url).at(&url_path)?;
    values::check_model(&raw.model).at(&path.key("model"))?;
    if let Some(name) = &raw.api_key_env {
        if !env::is_env_name(name) {
            return Err(format!(
                "expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*), found {name:?}"
            ))
            .at(&path.key("api_key_env"));
        }
    }
    let price = price(&raw.price, &path.key("price"))?;
    let timeout = values::duration(&raw.timeout).at(&path.key("timeout"))?;
    let retries = match raw.retries {
        None => 0,
        Some(n) => values::int_in(n.0, RETRIES).at(&path.key("retries"))?,
    };
    Ok(Tier {
        name: raw.name.clone(),
        provider,
        base_url,
        model: raw.model.clone(),
        api_key_env: raw.api_key_env.clone(),
        price,
        timeout,
        retries,
    })
}

fn price(raw: &RawPrice, path: &KeyPath) -> Result<Price, Invalid> {
    Ok(Price {
        input_per_mtok: values::non_negative(raw.input_per_mtok.0)
            .at(&path.key("input_per_mtok"))?,
        output_per_mtok: values::non_negative(raw.output_per_mtok.0)
            .at(&path.key("output_per_mtok"))?,
    })
}

fn scoring(raw: &RawScoring, path: &KeyPath) -> Result<Scoring, Invalid> {
    let supported = [ScoringMethod::AnswerConfidence];
    let supported_names = supported.map(ScoringMethod::as_str).join(", ");
    let method = match supported.into_iter().find(|m| m.as_str() == raw.method) {
        Some(method) => method,
        None if PLANNED_METHODS.contains(&raw.method.as_str()) => {
            return Err(format!(
                "scoring method {:?} is not supported yet; expected one of {supported_names}",
                raw.method
            ))
            .at(&path.key("method"))
        }
        None => {
            return Err(format!(
                "expected a scoring method among {supported_names}, found {:?}",
                raw.method
            ))
            .at(&path.key("method"))
        }
    };
    let threshold = raw.threshold.0;
    if !(0.0..=1.0).contains(&threshold) {
        return Err(format!("expected a number in 0..=1, found {threshold}"))
            .at(&path.key("threshold"));
    }
    let weights = weights(&raw.weights, &path.key("weights"))?;
    Ok(Scoring {
        method,
        threshold,
        weights,
    })
}

fn weights(raw: &RawWeights, path: &KeyPath) -> Result<Weights, Invalid> {
    let mut bias = None;
    let mut terms: Vec<(Feature, f64)> = Vec::new();
    for (name, value) in &raw.0 {
        let key_path = path.key(name);
        let value = values::finite(value.0).at(&key_path)?;
        let seen = if name == "bias" {
            bias.replace(value).is_some()
        } else {
            let Some(feature) = Feature::parse(name) else {
                let valid: Vec<&str> = Feature::ALL.iter().map(|f| f.as_str()).collect();
                return Err(format!(
                    "expected bias or a feature name ({}), found {name:?}",
                    valid.join(", ")
                ))
                .at(&key_path);
            };
            let seen = terms.iter().any(|(f, _)| *f == feature);
            terms.push((feature, value));
            seen
        };
        if seen {
            return Err(format!("expected each weight once, found {name:?} again")).at(&key_path);
        }
    }
    Ok(Weights {
        bias: bias.unwrap_or(0.0),
        terms,
    })
}
