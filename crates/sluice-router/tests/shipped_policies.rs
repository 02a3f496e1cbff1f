//! Every policy shipped in `policies/` loads, and the example policies do what their comments
//! say.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;

use sluice_policy::{Message, PolicySet, Role, RuleAction};
use sluice_router::{first_match, RuleInput};

fn shipped() -> PolicySet {
    let dir = Path::new(
        // At run time: a test binary cargo reuses from another checkout keeps that one's path.
        &std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned()),
    )
    .join("../../policies");
    PolicySet::load(&dir).unwrap_or_else(|e| panic!("policies/ does not load: {e}"))
}

#[test]
fn every_shipped_policy_validates() {
    let set = shipped();
    assert_eq!(
        set.names(),
        ["cost-saver", "default", "privacy-first", "quality-first"]
    );
    for name in set.names() {
        let p = set.get(&name).unwrap();
        assert!(!p.tiers.is_empty(), "{name} has no tier");
        assert!(
            !p.scoring.weights.terms.is_empty(),
            "{name} ships without calibrated weights"
        );
    }
}

#[test]
fn every_shipped_policy_decides_before_drafting_with_the_probe_of_the_served_model_file() {
    let set = shipped();
    // The SHA-256 of SmolLM2-135M-Instruct Q8_0 as scripts/fetch-model prepares it.
    let served = "f2e29b5f84188ce3bd5ffdf39645ec4512caa667a5f0ed30d4647eff233cc4cd";
    for name in set.names() {
        let p = set.get(&name).unwrap();
        assert_eq!(
            p.scoring.method,
            sluice_policy::ScoringMethod::PrefillProbe,
            "{name}"
        );
        assert!(p.scoring.method.needs_probe() && !p.scoring.method.drafts());
        let probe = p.scoring.probe.as_deref().expect("a probe is named");
        assert_eq!(probe.model_sha256, served, "{name}");
        assert!(p.check_model(served).is_ok());
        assert!(p.check_model(&"0".repeat(64)).is_err());
        assert_eq!(probe.hidden_size, 576);
        assert_eq!(probe.components.len(), 10);
    }
    // The quality targets order the thresholds: cost-saver keeps the most local.
    let threshold = |n: &str| set.get(n).unwrap().scoring.threshold;
    assert!(threshold("cost-saver") < threshold("default"));
    assert!(threshold("default") < threshold("quality-first"));
}

#[test]
fn privacy_first_refuses_secrets_and_keeps_personal_data_local() {
    let policy = shipped().get("privacy-first").unwrap();
    let route = |text: &str| {
        let messages = [Message::new(Role::User, text)];
        let tags = BTreeMap::new();
        let input = RuleInput {
            tenant: "default",
            tags: &tags,
            messages: &messages,
            prompt_tokens: None,
        };
        first_match(&policy.rules, &input).map(|m| m.rule.action.clone())
    };
    assert!(matches!(
        route("my key is AKIAIOSFODNN7EXAMPLE, why is it refused?"),
        Some(RuleAction::Reject(_))
    ));
    assert_eq!(
        route("Write to jane.doe@example.com about the invoice"),
        Some(RuleAction::Local)
    );
    assert_eq!(
        route("Card 4111 1111 1111 1111 was declined"),
        Some(RuleAction::Local)
    );
    assert_eq!(
        route("What is the capital of France?"),
        None,
        "scored as usual"
    );
}
