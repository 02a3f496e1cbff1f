//! Raw policy → validated `model::Policy`: value checks, defaults, env expansion.
//!
//! Errors carry the key path of the offending value; the caller turns that into
//! a line number and a `PolicyError`.

mod budget;
mod cache;
mod distill;
mod rules;
mod shadow;
mod tier;
pub(crate) mod values;

use std::collections::BTreeMap;

use crate::env::EnvLookup;
use crate::locate::KeyPath;
use crate::model::{
    Feature, LocalSettings, OnUpstreamFailure, Policy, Scoring, ScoringMethod, Tier, Weights,
};
use crate::raw::{RawLocal, RawPolicy, RawScoring, RawTier, RawWeights};

/// The only file format version.
pub const VERSION: i64 = 1;
/// `local.max_tokens` when not given.
pub const DEFAULT_LOCAL_MAX_TOKENS: u32 = 256;
/// Bounds of `local.max_tokens`.
pub const LOCAL_MAX_TOKENS: std::ops::RangeInclusive<u32> = 1..=8192;
/// `local.max_queue` when not given, and its bounds.
pub const DEFAULT_LOCAL_MAX_QUEUE: u32 = 16;
pub const LOCAL_MAX_QUEUE: std::ops::RangeInclusive<u32> = 1..=4096;
/// Longest `local.max_wait`: a caller waiting longer for the local model is better served
/// by an error it can act on.
pub const LOCAL_MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

/// A validation failure: where, and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub path: KeyPath,
    pub message: String,
}

/// Attaches a key path to a value-level error message.
pub(crate) trait At<T> {
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

/// The file's `version`, which must be [`VERSION`] (policy and tenants files alike).
pub(crate) fn check_version(version: i64, root: &KeyPath) -> Result<(), Invalid> {
    if version == VERSION {
        return Ok(());
    }
    Err(format!("expected version {VERSION}, found {version}")).at(&root.key("version"))
}

/// Checks every value of `raw` and builds the domain policy, with `source: None` and
/// `fingerprint: 0` (the caller knows the file and its text).
pub fn validate(raw: &RawPolicy, env: EnvLookup<'_>) -> Result<Policy, Invalid> {
    let root = KeyPath::default();
    check_version(raw.version.0, &root)?;
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
    let cache = cache::cache(&raw.cache.clone().unwrap_or_default(), &root.key("cache"))?;
    let rules = rules::rules(
        raw.rules.as_deref().unwrap_or_default(),
        &root.key("rules"),
        &tiers,
    )?;
    let budget = raw
        .budget
        .as_ref()
        .map(|b| budget::budget(b, &root.key("budget")))
        .transpose()?;
    let shadow = raw
        .shadow
        .as_ref()
        .map(|s| shadow::shadow(s, &root.key("shadow"), &tiers))
        .transpose()?;
    let distill = raw
        .distill
        .as_ref()
        .map(|d| distill::distill(d, &root.key("distill")))
        .transpose()?;
    Ok(Policy {
        name: raw.name.clone(),
        source: None,
        local,
        tiers,
        scoring,
        on_upstream_failure,
        cache,
        rules,
        budget,
        shadow,
        distill,
        fingerprint: 0,
        text: std::sync::Arc::from(""),
    })
}

fn local(raw: &RawLocal, path: &KeyPath) -> Result<LocalSettings, Invalid> {
    values::check_model(&raw.model).at(&path.key("model"))?;
    let max_tokens = match raw.max_tokens {
        None => DEFAULT_LOCAL_MAX_TOKENS,
        Some(n) => values::int_in(n.0, LOCAL_MAX_TOKENS).at(&path.key("max_tokens"))?,
    };
    let max_queue = match raw.max_queue {
        None => DEFAULT_LOCAL_MAX_QUEUE,
        Some(n) => values::int_in(n.0, LOCAL_MAX_QUEUE).at(&path.key("max_queue"))?,
    };
    let max_wait = match &raw.max_wait {
        None => std::time::Duration::ZERO,
        Some(v) => {
            let at = path.key("max_wait");
            let d = values::duration_or_zero(v).at(&at)?;
            if d > LOCAL_MAX_WAIT {
                return Err(format!(
                    "expected at most {}s, found {}",
                    LOCAL_MAX_WAIT.as_secs(),
                    v.found()
                ))
                .at(&at);
            }
            d
        }
    };
    Ok(LocalSettings {
        model: raw.model.clone(),
        max_tokens,
        max_queue,
        max_wait,
    })
}

fn tiers(raw: &[RawTier], path: &KeyPath, env: EnvLookup<'_>) -> Result<Vec<Tier>, Invalid> {
    let mut out: Vec<Tier> = Vec::with_capacity(raw.len());
    for (i, raw_tier) in raw.iter().enumerate() {
        let tier_path = path.index(i);
        let tier = tier::tier(raw_tier, &tier_path, env)?;
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

fn scoring(raw: &RawScoring, path: &KeyPath) -> Result<Scoring, Invalid> {
    let Some(method) = ScoringMethod::ALL
        .into_iter()
        .find(|m| m.as_str() == raw.method)
    else {
        let names: Vec<&str> = ScoringMethod::ALL.iter().map(|m| m.as_str()).collect();
        return Err(format!(
            "expected a scoring method among {}, found {:?}",
            names.join(", "),
            raw.method
        ))
        .at(&path.key("method"));
    };
    let threshold = raw.threshold.0;
    if !(0.0..=1.0).contains(&threshold) {
        return Err(format!("expected a number in 0..=1, found {threshold}"))
            .at(&path.key("threshold"));
    }
    let weights = weights(&raw.weights, &path.key("weights"))?;
    if let Some((feature, _)) = weights.terms.iter().find(|(f, _)| !method.provides(*f)) {
        return Err(format!(
            "expected features that method {} computes before deciding, found {} \
             (it needs the draft of method answer_confidence{})",
            method.as_str(),
            feature.as_str(),
            match feature.source() {
                crate::FeatureSource::Probe => " or the probe of difficulty_probe",
                _ => "",
            }
        ))
        .at(&path.key("weights").key(feature.as_str()));
    }
    let mut tenant_thresholds = BTreeMap::new();
    let tenants_path = path.key("tenant_thresholds");
    for (tenant, value) in raw.tenant_thresholds.iter().flat_map(|t| &t.0) {
        let tenant_path = tenants_path.key(tenant);
        values::check_name(tenant).at(&tenant_path)?;
        let value = values::number_in(value.0, 0.0..=1.0).at(&tenant_path)?;
        if tenant_thresholds.insert(tenant.clone(), value).is_some() {
            return Err(format!("expected each tenant once, found {tenant:?} again"))
                .at(&tenant_path);
        }
    }
    let wants_probe = method.needs_probe()
        || weights
            .terms
            .iter()
            .any(|(f, _)| *f == Feature::HiddenProbe);
    if wants_probe && raw.probe.is_none() {
        return Err(format!(
            "expected a probe file (scoring.probe) for method {}{}, found none",
            method.as_str(),
            if method.needs_probe() {
                ""
            } else {
                " with a hidden_probe weight"
            }
        ))
        .at(&path.key("probe"));
    }
    let escalate_below = match &raw.escalate_below {
        None => None,
        Some(_) if method != ScoringMethod::Cascade => {
            return Err(format!(
                "expected escalate_below only with method cascade, found method {}",
                method.as_str()
            ))
            .at(&path.key("escalate_below"))
        }
        Some(v) => Some(values::number_in(v.0, 0.0..=1.0).at(&path.key("escalate_below"))?),
    };
    Ok(Scoring {
        method,
        threshold,
        weights,
        tenant_thresholds,
        // read from its file by `load`, which knows where the policy file is
        probe: None,
        escalate_below,
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
