//! The one scoring pipeline every caller runs (the gateway's Chat, ChatStream and Score,
//! `sluice explain`, `sluice eval`): prefill features → the pre-route stage → maybe a draft →
//! the decision over everything computed. A new scoring method changes these three steps
//! and nothing else; the callers only say how a draft is made (the gateway through its draft
//! cache, the CLI from the model directly) and in what order the steps run.

use sluice_policy::{Message, Policy};

use crate::{
    confidence, decide, prefill_features, prescreen, request_features, Decision, Draft,
    FeatureValues, LocalError, LocalModel,
};

/// Step 1: what the policy's method reads from one prefill of the prompt (nothing, without a
/// prefill call, when it reads none of it).
pub async fn prefill_stage(
    model: &dyn LocalModel,
    policy: &Policy,
    messages: &[Message],
) -> Result<FeatureValues, LocalError> {
    if policy.scoring.uses_prefill() {
        prefill_features(model, messages, &policy.scoring).await
    } else {
        Ok(FeatureValues::default())
    }
}

/// Step 2: whether the method drafts the answer before deciding: `answer_confidence` always,
/// `cascade` unless its first stage already escalates, the pre-route methods never.
pub fn wants_draft(policy: &Policy, prefill: &FeatureValues) -> bool {
    policy.scoring.method.drafts() && prescreen(policy, prefill).is_none()
}

/// Step 3: every feature of the request, and the decision over them.
pub fn conclude(
    policy: &Policy,
    tenant: &str,
    messages: &[Message],
    prefill: FeatureValues,
    draft: Option<&Draft>,
) -> (FeatureValues, Decision) {
    let features = request_features(messages, draft, prefill);
    let decision = decision(policy, tenant, &features);
    (features, decision)
}

/// The policy's decision over computed features: the cascade's first stage when it escalates,
/// else the logistic model against the tenant's threshold. `eval` calls this on each row's
/// stored features, so its routing is the gateway's.
pub fn decision(policy: &Policy, tenant: &str, features: &FeatureValues) -> Decision {
    prescreen(policy, features).unwrap_or_else(|| {
        decide(
            policy,
            tenant,
            confidence(&policy.scoring.weights, features),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::tests::policy;
    use crate::RouteChoice;
    use sluice_policy::{Feature, Role, ScoringMethod, Weights};

    fn cascade() -> Policy {
        let mut p = policy(1);
        p.scoring.method = ScoringMethod::Cascade;
        p.scoring.escalate_below = Some(0.2);
        p.scoring.weights = Weights {
            bias: 0.0,
            terms: vec![(Feature::HiddenProbe, 1.0)],
        };
        p
    }

    fn probe_value(z: f64) -> FeatureValues {
        FeatureValues(vec![(Feature::HiddenProbe, z)])
    }

    #[test]
    fn only_drafting_methods_draft_and_the_cascade_not_below_its_cut() {
        assert!(wants_draft(&policy(1), &FeatureValues::default()));
        // p = sigmoid(-3) ≈ 0.047 < 0.2: escalated by the first stage, no draft.
        assert!(!wants_draft(&cascade(), &probe_value(-3.0)));
        assert!(wants_draft(&cascade(), &probe_value(0.0)));
        let mut pre_route = cascade();
        pre_route.scoring.method = ScoringMethod::PrefillProbe;
        assert!(!wants_draft(&pre_route, &probe_value(0.0)));
    }

    #[test]
    fn the_decision_is_the_first_stage_when_it_escalates_else_the_threshold() {
        let msgs = [Message::new(Role::User, "hi")];
        let (_, low) = conclude(&cascade(), "t", &msgs, probe_value(-3.0), None);
        assert_eq!(
            (low.route, low.reason.as_str()),
            (RouteChoice::Remote, "probe_low")
        );
        let (features, high) = conclude(&cascade(), "t", &msgs, probe_value(2.0), None);
        assert_eq!(
            (high.route, high.reason.as_str()),
            (RouteChoice::Local, "confident"),
            "sigmoid(2) ≥ 0.5"
        );
        assert_eq!(features.get(Feature::HiddenProbe), Some(2.0));
        // The lexical features are there too, and the same features decide the same through
        // `decision` (what eval calls on stored rows).
        assert_eq!(features.get(Feature::Turns), Some(1.0));
        assert_eq!(decision(&cascade(), "t", &features), high);
    }
}
