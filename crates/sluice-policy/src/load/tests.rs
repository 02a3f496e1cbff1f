//! Tests of parsing and validating single policies.

mod budget;
mod cache;
mod probe;
mod rules;
mod shadow;
mod thresholds;
mod tier;

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::model::*;

const FULL: &str = "\
version: 1
name: default
local: { model: smollm2-135m, max_tokens: 128 }
tiers:
  - name: large
    provider: openai
    base_url: ${SLUICE_LARGE_URL:-http://127.0.0.1:8080}
    model: gpt-4o-mini
    api_key_env: SLUICE_LARGE_API_KEY
    price: { input_per_mtok: 0.15, output_per_mtok: 0.60 }
    timeout: 30s
    retries: 2
  - name: huge
    provider: openai
    base_url: https://api.example.com/v1/
    model: gpt-4o
    price: { input_per_mtok: 2.5, output_per_mtok: 10 }
    timeout: 1.5m
scoring:
  method: answer_confidence
  threshold: 0.55
  weights: { bias: 2.0, mean_logprob: 3.0, min_logprob: 0.2 }
on_upstream_failure: error
";

const MINIMAL: &str = "\
version: 1
name: tiny
local: { model: m }
scoring:
  method: answer_confidence
  threshold: 0.5
  weights: { mean_logprob: 1 }
";

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse(src: &str) -> Result<Policy, PolicyError> {
    parse_policy(src, Path::new("policies/test.yaml"), &no_env)
}

/// `FULL` with `from` replaced by `to` (which must occur).
fn full_with(from: &str, to: &str) -> String {
    assert!(FULL.contains(from), "{from}");
    FULL.replacen(from, to, 1)
}

/// The error's (key path, line, message); panics when parsing succeeds.
fn invalid(src: &str) -> (String, Option<usize>, String) {
    match parse(src) {
        Err(PolicyError::Invalid {
            file,
            key_path,
            line,
            message,
        }) => {
            assert_eq!(file, Path::new("policies/test.yaml"));
            (key_path, line, message)
        }
        other => panic!("expected an invalid-policy error, got {other:?}"),
    }
}

#[test]
fn full_file_parses_into_domain_values() {
    let policy = parse(FULL).unwrap();
    let expected = Policy {
        name: "default".into(),
        source: None,
        local: LocalSettings {
            model: "smollm2-135m".into(),
            max_tokens: 128,
            max_queue: 16,
            max_wait: Duration::ZERO,
        },
        tiers: vec![
            Tier {
                name: "large".into(),
                provider: Provider::OpenAi,
                base_url: "http://127.0.0.1:8080".into(),
                model: "gpt-4o-mini".into(),
                api_key_env: Some("SLUICE_LARGE_API_KEY".into()),
                price: Price {
                    input_per_mtok: 0.15,
                    output_per_mtok: 0.60,
                },
                timeout: Duration::from_secs(30),
                connect_timeout: Duration::from_secs(2),
                read_timeout: Duration::from_secs(30),
                retries: 2,
                circuit_breaker: BreakerSettings::default(),
                retry_budget: RetryBudgetSettings::default(),
            },
            Tier {
                name: "huge".into(),
                provider: Provider::OpenAi,
                base_url: "https://api.example.com/v1".into(),
                model: "gpt-4o".into(),
                api_key_env: None,
                price: Price {
                    input_per_mtok: 2.5,
                    output_per_mtok: 10.0,
                },
                timeout: Duration::from_secs(90),
                connect_timeout: Duration::from_secs(2),
                read_timeout: Duration::from_secs(90),
                retries: 0,
                circuit_breaker: BreakerSettings::default(),
                retry_budget: RetryBudgetSettings::default(),
            },
        ],
        scoring: Scoring {
            method: ScoringMethod::AnswerConfidence,
            threshold: 0.55,
            weights: Weights {
                bias: 2.0,
                terms: vec![(Feature::MeanLogprob, 3.0), (Feature::MinLogprob, 0.2)],
            },
            tenant_thresholds: Default::default(),
            probe: None,
            escalate_below: None,
        },
        on_upstream_failure: OnUpstreamFailure::Error,
        cache: CacheSettings::default(),
        rules: vec![],
        budget: None,
        shadow: None,
        distill: None,
        fingerprint: fingerprint(FULL),
        text: std::sync::Arc::from(FULL),
    };
    assert_eq!(policy, expected);
}

#[test]
fn optional_keys_take_defaults() {
    let policy = parse(MINIMAL).unwrap();
    assert_eq!(policy.local.max_tokens, 256);
    assert!(policy.tiers.is_empty());
    assert_eq!(policy.on_upstream_failure, OnUpstreamFailure::Local);
    assert_eq!(policy.scoring.weights.bias, 0.0);
}

#[test]
fn misspelled_key_names_key_path_file_and_line() {
    let src = full_with("  threshold: 0.55", "  threshhold: 0.55");
    let (key_path, line, message) = invalid(&src);
    assert_eq!(key_path, "scoring.threshhold");
    assert_eq!(line, Some(21));
    assert!(
        message.starts_with("unknown field `threshhold`"),
        "{message}"
    );
    assert!(message.contains("`threshold`"), "{message}");
    let shown = parse(&src).unwrap_err().to_string();
    assert!(
        shown.starts_with("policies/test.yaml: scoring.threshhold (line 21): unknown field"),
        "{shown}"
    );
}

#[test]
fn misspelled_top_level_and_tier_keys() {
    let (key_path, _, _) = invalid(&full_with("on_upstream_failure", "on_upstream_fail"));
    assert_eq!(key_path, "on_upstream_fail");
    let (key_path, line, _) = invalid(&full_with("    retries: 2", "    retry: 2"));
    assert_eq!((key_path.as_str(), line), ("tiers[0].retry", Some(12)));
}

#[test]
fn bad_duration_names_tier_timeout() {
    let src = full_with("timeout: 30s", "timeout: 30 seconds");
    assert_eq!(
        parse(&src).unwrap_err().to_string(),
        "policies/test.yaml: tiers[0].timeout (line 11): \
         expected a duration like 500ms, 30s or 2m, found \"30 seconds\""
    );
    let (key_path, _, message) = invalid(&full_with("timeout: 1.5m", "timeout: 90"));
    assert_eq!(key_path, "tiers[1].timeout");
    assert!(message.ends_with("found 90"), "{message}");
}

#[test]
fn unknown_feature_weight_lists_valid_names() {
    let src = full_with("min_logprob: 0.2", "min_logprb: 0.2");
    let (key_path, line, message) = invalid(&src);
    assert_eq!(key_path, "scoring.weights.min_logprb");
    assert_eq!(line, Some(22));
    assert!(message.contains("found \"min_logprb\""), "{message}");
    for feature in Feature::ALL {
        assert!(message.contains(feature.as_str()), "{message}");
    }
    assert!(message.contains("bias"), "{message}");
}

#[test]
fn weights_must_be_finite_and_given_once() {
    let (key_path, _, message) = invalid(&full_with("bias: 2.0", "bias: .nan"));
    assert_eq!(key_path, "scoring.weights.bias");
    assert!(message.starts_with("expected a finite number"), "{message}");
    let (_, _, message) = invalid(&full_with("bias: 2.0", "bias: 2.0, mean_logprob: 1"));
    assert!(message.contains("\"mean_logprob\" again"), "{message}");
}

#[test]
fn env_reference_set_unset_and_default() {
    let url = "base_url: ${SLUICE_LARGE_URL:-http://127.0.0.1:8080}";
    let file = Path::new("p.yaml");
    let set = |name: &str| (name == "SLUICE_LARGE_URL").then(|| "https://big.example/".to_owned());

    let policy = parse_policy(FULL, file, &set).unwrap();
    assert_eq!(policy.tiers[0].base_url, "https://big.example");

    let policy = parse_policy(FULL, file, &no_env).unwrap();
    assert_eq!(policy.tiers[0].base_url, "http://127.0.0.1:8080");

    let src = full_with(url, "base_url: ${SLUICE_LARGE_URL}/v1");
    let policy = parse_policy(&src, file, &set).unwrap();
    assert_eq!(policy.tiers[0].base_url, "https://big.example//v1");
    let err = parse_policy(&src, file, &no_env).unwrap_err().to_string();
    assert!(
        err.starts_with(
            "p.yaml: tiers[0].base_url (line 7): environment variable SLUICE_LARGE_URL is not set"
        ),
        "{err}"
    );
}

#[test]
fn base_url_must_be_http_after_expansion() {
    let env = |_: &str| Some("ftp://files".to_owned());
    let err = parse_policy(FULL, Path::new("p.yaml"), &env).unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains("tiers[0].base_url (line 7)"), "{shown}");
    assert!(
        shown.contains("found \"ftp://files\" (expanded from"),
        "{shown}"
    );
}

#[test]
fn threshold_out_of_range() {
    let (key_path, line, message) = invalid(&full_with("threshold: 0.55", "threshold: 1.5"));
    assert_eq!((key_path.as_str(), line), ("scoring.threshold", Some(21)));
    assert_eq!(message, "expected a number in 0..=1, found 1.5");
    let (_, _, message) = invalid(&full_with("threshold: 0.55", "threshold: -0.1"));
    assert_eq!(message, "expected a number in 0..=1, found -0.1");
}

#[test]
fn duplicate_tier_names() {
    let (key_path, line, message) = invalid(&full_with("name: huge", "name: large"));
    assert_eq!((key_path.as_str(), line), ("tiers[1].name", Some(13)));
    assert!(
        message.contains("\"large\" again (first at tiers[0].name)"),
        "{message}"
    );
}

#[test]
fn version_2_is_rejected() {
    let (key_path, line, message) = invalid(&full_with("version: 1", "version: 2"));
    assert_eq!((key_path.as_str(), line), ("version", Some(1)));
    assert_eq!(message, "expected version 1, found 2");
}

#[test]
fn scoring_methods_and_the_features_they_compute() {
    let src = full_with("method: answer_confidence", "method: vibes");
    let (key_path, _, message) = invalid(&src);
    assert_eq!(key_path, "scoring.method");
    assert_eq!(
        message,
        "expected a scoring method among answer_confidence, difficulty_probe, prompt_surprise, \
         prefill_probe, cascade, found \"vibes\""
    );
    // A pre-route method cannot use features of a draft it does not make.
    let src = full_with("method: answer_confidence", "method: difficulty_probe");
    let (key_path, _, message) = invalid(&src);
    assert_eq!(key_path, "scoring.weights.mean_logprob");
    assert!(
        message.contains("method difficulty_probe") && message.contains("found mean_logprob"),
        "{message}"
    );
    for m in ScoringMethod::ALL {
        assert!(m.provides(Feature::Turns), "text features need no model");
    }
    assert!(ScoringMethod::DifficultyProbe.provides(Feature::ProbeLogOdds));
    assert!(!ScoringMethod::PromptSurprise.provides(Feature::ProbeLogOdds));
    assert!(ScoringMethod::PromptSurprise.provides(Feature::PromptNll));
    assert!(ScoringMethod::AnswerConfidence.drafts() && !ScoringMethod::PromptSurprise.drafts());
}

#[test]
fn other_bad_values_name_their_key() {
    let cases = [
        ("name: default", "name: Default", "name"),
        ("max_tokens: 128", "max_tokens: 0", "local.max_tokens"),
        ("max_tokens: 128", "max_tokens: 9000", "local.max_tokens"),
        (
            "max_tokens: 128",
            "max_tokens: 128, max_queue: 0",
            "local.max_queue",
        ),
        (
            "max_tokens: 128",
            "max_tokens: 128, max_queue: 5000",
            "local.max_queue",
        ),
        (
            "max_tokens: 128",
            "max_tokens: 128, max_wait: 5",
            "local.max_wait",
        ),
        (
            "max_tokens: 128",
            "max_tokens: 128, max_wait: 11m",
            "local.max_wait",
        ),
        (
            "max_tokens: 128",
            "max_tokens: 128, max_wait: -1s",
            "local.max_wait",
        ),
        ("model: smollm2-135m", "model: ''", "local.model"),
        ("provider: openai", "provider: gemini", "tiers[0].provider"),
        ("name: large", "name: Large", "tiers[0].name"),
        ("model: gpt-4o-mini", "model: ' '", "tiers[0].model"),
        (
            "api_key_env: SLUICE_LARGE_API_KEY",
            "api_key_env: sk-123",
            "tiers[0].api_key_env",
        ),
        (
            "input_per_mtok: 0.15",
            "input_per_mtok: -1",
            "tiers[0].price.input_per_mtok",
        ),
        (
            "output_per_mtok: 10",
            "output_per_mtok: .inf",
            "tiers[1].price.output_per_mtok",
        ),
        ("timeout: 30s", "timeout: 0s", "tiers[0].timeout"),
        ("retries: 2", "retries: 11", "tiers[0].retries"),
        ("failure: error", "failure: retry", "on_upstream_failure"),
    ];
    for (from, to, key) in cases {
        let (key_path, line, message) = invalid(&full_with(from, to));
        assert_eq!(key_path, key, "{to}: {message}");
        assert!(line.is_some(), "{to}: no line");
        assert!(message.starts_with("expected"), "{to}: {message}");
    }
}

#[test]
fn structural_errors_have_key_path_and_line() {
    let (key_path, line, message) = invalid(&full_with("retries: 2", "retries: lots"));
    assert_eq!((key_path.as_str(), line), ("tiers[0].retries", Some(12)));
    assert!(
        message.starts_with("invalid type: string \"lots\""),
        "{message}"
    );
    assert!(!message.contains(" at line "), "{message}");

    let (key_path, _, message) = invalid(&FULL.replace("name: default\n", ""));
    assert_eq!(key_path, "");
    assert!(message.starts_with("missing field `name`"), "{message}");
}

#[test]
fn broken_and_empty_documents() {
    let (key_path, line, message) = invalid("version: 1\nname: [unclosed\n");
    assert_eq!(key_path, "name");
    assert!(line.is_some());
    assert!(!message.contains(" at line "), "{message}");

    let (_, _, message) = invalid("# only a comment\n\n");
    assert_eq!(
        message,
        "expected a policy mapping, found an empty document"
    );

    let (_, _, message) = invalid("- just\n- a list\n");
    assert_eq!(message, "invalid type: sequence, expected a policy mapping");
}

#[test]
fn shipped_default_policy_parses() {
    let path = crate::repo_file("policies/default.yaml");
    let src = std::fs::read_to_string(&path).unwrap();
    let policy = parse_policy(&src, &path, &no_env).unwrap();
    assert_eq!(policy.name, "default");
    assert_eq!(policy.local.max_tokens, 64);
    assert_eq!(policy.tiers.len(), 1);
    let tier = &policy.tiers[0];
    assert_eq!(tier.name, "large");
    assert_eq!(tier.base_url, "http://127.0.0.1:8080");
    assert_eq!(tier.api_key_env.as_deref(), Some("SLUICE_LARGE_API_KEY"));
    assert_eq!(tier.timeout, Duration::from_secs(30));
    assert_eq!(tier.retries, 1);
    assert_eq!(tier.provider, Provider::OpenAi);
    assert_eq!(tier.connect_timeout, Duration::from_secs(2));
    assert_eq!(tier.read_timeout, Duration::from_secs(30));
    assert_eq!(tier.circuit_breaker, BreakerSettings::default());
    assert_eq!(tier.retry_budget, RetryBudgetSettings::default());
    // Calibrated by `sluice calibrate --method prefill_probe --features hidden_probe`: a
    // threshold strictly inside (0, 1), one weight, on the probe's log-odds, and the probe
    // file beside the policy, bound to the served model file.
    let threshold = policy.scoring.threshold;
    assert!(threshold > 0.0 && threshold < 1.0, "{threshold}");
    assert_eq!(policy.scoring.method, ScoringMethod::PrefillProbe);
    let weighted: Vec<Feature> = policy
        .scoring
        .weights
        .terms
        .iter()
        .map(|(f, _)| *f)
        .collect();
    assert_eq!(weighted, [Feature::HiddenProbe]);
    let probe = policy
        .scoring
        .probe
        .as_deref()
        .expect("the probe is loaded");
    assert_eq!(probe.hidden_size, 576);
    assert_eq!(policy.on_upstream_failure, OnUpstreamFailure::Local);
    assert_eq!(policy.cache, CacheSettings::default());
    // The file's text and the probe's: a refitted probe changes the answers too.
    let probe_text = std::fs::read_to_string(crate::repo_file(
        "policies/probes/smollm2-135m-instruct-q8_0.json",
    ))
    .unwrap();
    assert_eq!(
        policy.fingerprint,
        fingerprint(&src) ^ fingerprint(&probe_text).rotate_left(1)
    );

    let loaded = load_policy_file(&path).unwrap();
    assert_eq!(loaded.source.as_deref(), Some(path.as_path()));
}
