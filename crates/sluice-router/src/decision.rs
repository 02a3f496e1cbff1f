//! From a request's hint, its policy and (when scored) its confidence to a route.

use sluice_policy::{Feature, Policy, ScoringMethod};

use crate::FeatureValues;

/// Where a request goes before any tier is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteChoice {
    Local,
    Remote,
}

/// Why a request went where it went; the string forms are stable (metrics labels, API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The caller asked for the local model.
    HintLocal,
    /// The caller asked for the tier chain.
    HintRemote,
    /// Scored at or above the threshold.
    Confident,
    /// Scored below the threshold.
    LowConfidence,
    /// Scored below the threshold, but the policy has no tier to escalate to.
    NoTier,
    /// A policy rule decided (`local`, `tier` or `reject`) before any scoring.
    Rule,
    /// The tenant's escalation budget is spent; answered locally.
    Budget,
    /// `cascade`: the hidden-state probe scored below `escalate_below`, so the request
    /// escalated without a draft.
    ProbeLow,
    /// The prompt does not fit the local model's context: escalated unscored.
    TooLong,
    /// The local model's queue is full: escalated unscored.
    LocalBusy,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::HintLocal => "hint_local",
            Reason::HintRemote => "hint_remote",
            Reason::Confident => "confident",
            Reason::LowConfidence => "low_confidence",
            Reason::NoTier => "no_tier",
            Reason::Rule => "rule",
            Reason::Budget => "budget",
            Reason::ProbeLow => "probe_low",
            Reason::TooLong => "too_long",
            Reason::LocalBusy => "local_busy",
        }
    }
}

/// The routing decision, as shown to the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub route: RouteChoice,
    pub reason: Reason,
    /// `None` when the request was not scored.
    pub confidence: Option<f64>,
    pub threshold: f64,
}

/// Route a scored request: local when confidence ≥ the tenant's threshold or no tier exists.
pub fn decide(policy: &Policy, tenant: &str, confidence: f64) -> Decision {
    let threshold = policy.scoring.threshold_for(tenant);
    let (route, reason) = if confidence >= threshold {
        (RouteChoice::Local, Reason::Confident)
    } else if policy.tiers.is_empty() {
        (RouteChoice::Local, Reason::NoTier)
    } else {
        (RouteChoice::Remote, Reason::LowConfidence)
    };
    Decision {
        route,
        reason,
        confidence: Some(confidence),
        threshold,
    }
}

/// `cascade`'s first stage: escalate at once, before any draft, when the probe's probability
/// (sigmoid of `hidden_probe`) is below `escalate_below` and there is a tier to go to.
pub fn prescreen(policy: &Policy, features: &FeatureValues) -> Option<Decision> {
    let scoring = &policy.scoring;
    let below = scoring
        .escalate_below
        .filter(|_| scoring.method == ScoringMethod::Cascade)?;
    let z = features.get(Feature::HiddenProbe)?;
    let p = 1.0 / (1.0 + (-z).exp());
    (p < below && !policy.tiers.is_empty()).then_some(Decision {
        route: RouteChoice::Remote,
        reason: Reason::ProbeLow,
        confidence: Some(p),
        threshold: below,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use sluice_policy::*;
    use std::time::Duration;

    /// A policy with `tiers` tiers, `answer_confidence` and threshold 0.5.
    pub(crate) fn policy(tiers: usize) -> Policy {
        Policy {
            name: "t".into(),
            source: None,
            local: LocalSettings {
                model: "m".into(),
                max_tokens: 16,
                max_queue: 16,
                max_wait: Duration::ZERO,
            },
            tiers: (0..tiers)
                .map(|i| Tier {
                    price: Price {
                        input_per_mtok: 1.0,
                        output_per_mtok: 2.0,
                    },
                    timeout: Duration::from_secs(1),
                    ..Tier::openai(format!("tier{i}"), "http://127.0.0.1:1", "big")
                })
                .collect(),
            scoring: Scoring {
                method: ScoringMethod::AnswerConfidence,
                threshold: 0.5,
                weights: Weights {
                    bias: 0.0,
                    terms: vec![],
                },
                tenant_thresholds: Default::default(),
                probe: None,
                escalate_below: None,
            },
            on_upstream_failure: OnUpstreamFailure::Local,
            cache: CacheSettings::default(),
            rules: vec![],
            budget: None,
            shadow: None,
            distill: None,
            fingerprint: 0,
            text: "".into(),
        }
    }

    #[test]
    fn threshold_splits_local_and_remote() {
        let p = policy(1);
        assert_eq!(decide(&p, "", 0.5).route, RouteChoice::Local);
        assert_eq!(decide(&p, "", 0.5).reason, Reason::Confident);
        assert_eq!(decide(&p, "", 0.49).route, RouteChoice::Remote);
        assert_eq!(decide(&p, "", 0.49).reason, Reason::LowConfidence);
    }

    #[test]
    fn cascade_escalates_below_the_first_threshold_only() {
        let mut p = policy(1);
        p.scoring.method = ScoringMethod::Cascade;
        p.scoring.escalate_below = Some(0.2);
        let with = |z: f64| FeatureValues(vec![(Feature::HiddenProbe, z)]);
        // sigmoid(-2) ≈ 0.12 < 0.2: escalate without a draft
        let d = prescreen(&p, &with(-2.0)).unwrap();
        assert_eq!((d.route, d.reason), (RouteChoice::Remote, Reason::ProbeLow));
        assert!((d.confidence.unwrap() - 0.1192).abs() < 1e-3);
        // sigmoid(0) = 0.5: go on to the draft
        assert_eq!(prescreen(&p, &with(0.0)), None);
        // no probe value, no tier, or another method: no first stage
        assert_eq!(prescreen(&p, &FeatureValues::default()), None);
        assert_eq!(prescreen(&policy(0), &with(-9.0)), None);
        p.scoring.method = ScoringMethod::AnswerConfidence;
        assert_eq!(prescreen(&p, &with(-9.0)), None);
    }

    #[test]
    fn no_tier_keeps_it_local() {
        let d = decide(&policy(0), "", 0.1);
        assert_eq!(d.route, RouteChoice::Local);
        assert_eq!(d.reason, Reason::NoTier);
    }
}
