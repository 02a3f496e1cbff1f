//! Tests of the tier settings: provider, connect and read timeouts, circuit breaker
//! and retry budget.

use std::time::Duration;

use super::{invalid, parse};
use crate::model::*;

/// A policy with one tier; `{extra}` is replaced by more tier keys (indented by four).
const TEMPLATE: &str = "\
version: 1
name: tiers
local: { model: m }
tiers:
  - name: big
    provider: openai
    base_url: http://127.0.0.1:9
    model: m-large
    price: { input_per_mtok: 1, output_per_mtok: 2 }
    timeout: 10s
{extra}scoring:
  method: answer_confidence
  threshold: 0.5
  weights: { mean_logprob: 1 }
";

/// The policy with `extra` tier lines (each given without indentation).
fn with(extra: &[&str]) -> String {
    let lines: String = extra.iter().map(|l| format!("    {l}\n")).collect();
    TEMPLATE.replace("{extra}", &lines)
}

fn tier(extra: &[&str]) -> Tier {
    let policy = parse(&with(extra)).unwrap();
    policy.tiers.into_iter().next().unwrap()
}

#[test]
fn defaults_apply() {
    let tier = tier(&[]);
    assert_eq!(tier.provider, Provider::OpenAi);
    assert_eq!(tier.connect_timeout, Duration::from_secs(2));
    assert_eq!(tier.read_timeout, Duration::from_secs(10));
    assert_eq!(
        tier.circuit_breaker,
        BreakerSettings {
            consecutive_failures: 5,
            error_ratio: 0.5,
            min_requests: 20,
            window: Duration::from_secs(30),
            open_for: Duration::from_secs(10),
            half_open_probes: 1,
        }
    );
    assert_eq!(
        tier.retry_budget,
        RetryBudgetSettings {
            ratio: 0.2,
            min_per_second: 1.0,
        }
    );
    let empty = self::tier(&["circuit_breaker: {}", "retry_budget: {}"]);
    assert_eq!(empty.circuit_breaker, BreakerSettings::default());
    assert_eq!(empty.retry_budget, RetryBudgetSettings::default());
}

#[test]
fn default_connect_timeout_never_exceeds_a_short_timeout() {
    let src = with(&[]).replace("timeout: 10s", "timeout: 500ms");
    let tier = &parse(&src).unwrap().tiers[0];
    assert_eq!(tier.connect_timeout, Duration::from_millis(500));
    assert_eq!(tier.read_timeout, Duration::from_millis(500));
}

#[test]
fn every_key_can_be_set() {
    let src = with(&[
        "connect_timeout: 250ms",
        "read_timeout: 3s",
        "circuit_breaker:",
        "  consecutive_failures: 3",
        "  error_ratio: 1",
        "  min_requests: 4",
        "  window: 1m",
        "  open_for: 1.5s",
        "  half_open_probes: 2",
        "retry_budget: { ratio: 0, min_per_second: 0.5 }",
    ])
    .replace("provider: openai", "provider: anthropic");
    let tier = &parse(&src).unwrap().tiers[0];
    assert_eq!(tier.provider, Provider::Anthropic);
    assert_eq!(tier.connect_timeout, Duration::from_millis(250));
    assert_eq!(tier.read_timeout, Duration::from_secs(3));
    assert_eq!(
        tier.circuit_breaker,
        BreakerSettings {
            consecutive_failures: 3,
            error_ratio: 1.0,
            min_requests: 4,
            window: Duration::from_secs(60),
            open_for: Duration::from_millis(1500),
            half_open_probes: 2,
        }
    );
    assert_eq!(
        tier.retry_budget,
        RetryBudgetSettings {
            ratio: 0.0,
            min_per_second: 0.5,
        }
    );
}

#[test]
fn anthropic_parses_and_unknown_providers_list_both() {
    let src = with(&[]).replace("provider: openai", "provider: anthropic");
    assert_eq!(parse(&src).unwrap().tiers[0].provider, Provider::Anthropic);

    let src = with(&[]).replace("provider: openai", "provider: claude");
    let (key_path, line, message) = invalid(&src);
    assert_eq!((key_path.as_str(), line), ("tiers[0].provider", Some(6)));
    assert_eq!(
        message,
        "expected a provider among openai, anthropic, found \"claude\""
    );
}

#[test]
fn connect_timeout_must_fit_in_timeout() {
    let (key_path, line, message) = invalid(&with(&["connect_timeout: 11s"]));
    assert_eq!(
        (key_path.as_str(), line),
        ("tiers[0].connect_timeout", Some(11))
    );
    assert_eq!(
        message,
        "expected a connect_timeout no longer than timeout (10s), found 11s"
    );
    assert_eq!(
        tier(&["connect_timeout: 10s"]).connect_timeout,
        Duration::from_secs(10)
    );
}

/// Each bad value is reported at its key with an "expected …, found …" message.
#[test]
fn bad_values_name_their_key() {
    let cases: [(&[&str], &str, &str); 14] = [
        (
            &["connect_timeout: 2"],
            "tiers[0].connect_timeout",
            "expected a duration like 500ms, 30s or 2m, found 2",
        ),
        (
            &["read_timeout: 0s"],
            "tiers[0].read_timeout",
            "expected a duration greater than zero, found \"0s\"",
        ),
        (
            &["circuit_breaker: { consecutive_failures: 0 }"],
            "tiers[0].circuit_breaker.consecutive_failures",
            "expected an integer in 1..=4294967295, found 0",
        ),
        (
            &["circuit_breaker: { error_ratio: 0 }"],
            "tiers[0].circuit_breaker.error_ratio",
            "expected a number greater than 0 and at most 1, found 0",
        ),
        (
            &["circuit_breaker: { error_ratio: 1.5 }"],
            "tiers[0].circuit_breaker.error_ratio",
            "expected a number greater than 0 and at most 1, found 1.5",
        ),
        (
            &["circuit_breaker: { min_requests: -1 }"],
            "tiers[0].circuit_breaker.min_requests",
            "expected an integer in 1..=4294967295, found -1",
        ),
        (
            &["circuit_breaker: { window: 30 }"],
            "tiers[0].circuit_breaker.window",
            "expected a duration like 500ms, 30s or 2m, found 30",
        ),
        (
            &["circuit_breaker: { open_for: soon }"],
            "tiers[0].circuit_breaker.open_for",
            "expected a duration like 500ms, 30s or 2m, found \"soon\"",
        ),
        (
            &["circuit_breaker: { half_open_probes: 0 }"],
            "tiers[0].circuit_breaker.half_open_probes",
            "expected an integer in 1..=4294967295, found 0",
        ),
        (
            &["retry_budget: { ratio: -0.1 }"],
            "tiers[0].retry_budget.ratio",
            "expected a number in 0..=10, found -0.1",
        ),
        (
            &["retry_budget: { ratio: 11 }"],
            "tiers[0].retry_budget.ratio",
            "expected a number in 0..=10, found 11",
        ),
        (
            &["retry_budget: { min_per_second: -1 }"],
            "tiers[0].retry_budget.min_per_second",
            "expected a non-negative finite number, found -1",
        ),
        (
            &["retry_budget: { min_per_second: .inf }"],
            "tiers[0].retry_budget.min_per_second",
            "expected a non-negative finite number, found inf",
        ),
        (
            &["circuit_breaker: { consecutive_failures: 5000000000 }"],
            "tiers[0].circuit_breaker.consecutive_failures",
            "expected an integer in 1..=4294967295, found 5000000000",
        ),
    ];
    for (extra, key, want) in cases {
        let (key_path, line, message) = invalid(&with(extra));
        assert_eq!(key_path, key, "{extra:?}");
        assert_eq!(line, Some(11), "{extra:?}");
        assert_eq!(message, want, "{extra:?}");
    }
}

#[test]
fn misspelled_breaker_and_budget_keys_are_rejected() {
    let (key_path, _, message) = invalid(&with(&["circuit_breaker: { open_fro: 1s }"]));
    assert_eq!(key_path, "tiers[0].circuit_breaker.open_fro");
    assert!(message.starts_with("unknown field `open_fro`"), "{message}");
    let (key_path, _, message) = invalid(&with(&["retry_budget: { ratios: 1 }"]));
    assert_eq!(key_path, "tiers[0].retry_budget.ratios");
    assert!(message.contains("`min_per_second`"), "{message}");
    let (key_path, _, message) = invalid(&with(&["circuit_breaker: 5"]));
    assert_eq!(key_path, "tiers[0].circuit_breaker");
    assert!(
        message.contains("expected a circuit_breaker mapping"),
        "{message}"
    );
}

#[test]
fn tier_openai_has_the_policy_defaults() {
    let src = with(&[]).replace("timeout: 10s", "timeout: 30s").replace(
        "input_per_mtok: 1, output_per_mtok: 2",
        "input_per_mtok: 0, output_per_mtok: 0",
    );
    let parsed = parse(&src).unwrap().tiers.remove(0);
    assert_eq!(Tier::openai("big", "http://127.0.0.1:9", "m-large"), parsed);
}
