//! Tests of `rules:`.

use std::collections::BTreeMap;

use super::{invalid, no_env, parse, FULL, MINIMAL};
use crate::model::*;
use crate::pii::PiiKind;
use crate::raw::ACTIONS;

/// Two tiers, the rules of the policy-language example, tenant thresholds and a budget.
pub(super) const EXAMPLE: &str = r#"version: 1
name: rules
local: { model: m }
tiers:
  - name: large
    provider: openai
    base_url: http://127.0.0.1:9
    model: m-large
    price: { input_per_mtok: 1, output_per_mtok: 2 }
    timeout: 10s
  - name: huge
    provider: anthropic
    base_url: http://127.0.0.1:10
    model: m-huge
    price: { input_per_mtok: 3, output_per_mtok: 15 }
    timeout: 10s
# Evaluated in order before scoring.
rules:
  - name: no-secrets
    when:
      pii: [private_key, api_key]
    action: { reject: "remove secrets before sending" }
  - name: privacy
    when: { pii: any }
    action: local
  - name: acme-code
    when:
      tenant: [acme, initech]
      tags: { team: "ml-*", env: prod }
      code: true
    action: { tier: large }
  - name: greetings
    when:
      regex: "(?i)^\\s*(hi|hello|thanks)\\b"
      prompt_tokens: { max: 32 }
      turns: { min: 1, max: 3 }
    action: local
  - name: everything-else
    action: score
scoring:
  method: answer_confidence
  threshold: 0.5
  weights: { mean_logprob: 1 }
  tenant_thresholds: { acme: 0.7, initech: 0.4 }
budget:
  daily_usd: 5.0
  monthly_usd: 100.0
  tenants:
    acme: { daily_usd: 50, monthly_usd: 1000 }
  on_exhausted: local
"#;

/// `EXAMPLE` with `from` replaced by `to` (which must occur).
pub(super) fn example_with(from: &str, to: &str) -> String {
    assert!(EXAMPLE.contains(from), "{from}");
    EXAMPLE.replacen(from, to, 1)
}

/// The 1-based line of the first occurrence of `needle` in `src`.
pub(super) fn line_with(src: &str, needle: &str) -> Option<usize> {
    src.lines().position(|l| l.contains(needle)).map(|i| i + 1)
}

/// `MINIMAL` (no tiers) with these `rules:` lines (given without indentation).
fn minimal_with_rules(lines: &[&str]) -> String {
    let body: String = lines.iter().map(|l| format!("  {l}\n")).collect();
    format!("{MINIMAL}rules:\n{body}")
}

/// Asserts the error of `src`: key path, line (that of `line_needle`) and message.
#[track_caller]
pub(super) fn assert_invalid(src: &str, key: &str, line_needle: &str, message: &str) {
    let (key_path, line, got) = invalid(src);
    assert_eq!(key_path, key, "{got}");
    assert_eq!(line, line_with(src, line_needle), "{key}: {got}");
    assert!(line.is_some(), "{key}: no line");
    assert_eq!(got, message, "{key}");
}

fn tags(pairs: &[(&str, &str)]) -> Vec<(String, TagPattern)> {
    pairs
        .iter()
        .map(|(k, p)| (k.to_string(), TagPattern::new(p)))
        .collect()
}

#[test]
fn example_parses_into_domain_values() {
    let policy = parse(EXAMPLE).unwrap();
    let expected = vec![
        Rule {
            name: "no-secrets".into(),
            when: Conditions {
                pii: Some(PiiMatch::Kinds(
                    [PiiKind::PrivateKey, PiiKind::ApiKey].into(),
                )),
                ..Conditions::default()
            },
            action: RuleAction::Reject("remove secrets before sending".into()),
        },
        Rule {
            name: "privacy".into(),
            when: Conditions {
                pii: Some(PiiMatch::Any),
                ..Conditions::default()
            },
            action: RuleAction::Local,
        },
        Rule {
            name: "acme-code".into(),
            when: Conditions {
                tenants: vec!["acme".into(), "initech".into()],
                tags: tags(&[("team", "ml-*"), ("env", "prod")]),
                code: Some(true),
                ..Conditions::default()
            },
            action: RuleAction::Tier("large".into()),
        },
        Rule {
            name: "greetings".into(),
            when: Conditions {
                regex: Some(RuleRegex::new(r"(?i)^\s*(hi|hello|thanks)\b").unwrap()),
                prompt_tokens: Some(CountRange {
                    min: None,
                    max: Some(32),
                }),
                turns: Some(CountRange {
                    min: Some(1),
                    max: Some(3),
                }),
                ..Conditions::default()
            },
            action: RuleAction::Local,
        },
        Rule {
            name: "everything-else".into(),
            when: Conditions::default(),
            action: RuleAction::Score,
        },
    ];
    assert_eq!(policy.rules, expected);
    assert!(policy.rules[3]
        .when
        .regex
        .as_ref()
        .unwrap()
        .is_match("  Hello, sluice"));
    assert!(policy.rules[4].when.is_empty());
    assert_eq!(
        policy.scoring.tenant_thresholds,
        BTreeMap::from([("acme".to_owned(), 0.7), ("initech".to_owned(), 0.4)])
    );
    assert_eq!(
        policy.budget,
        Some(Budget {
            daily_usd: Some(5.0),
            monthly_usd: Some(100.0),
            tenants: BTreeMap::from([(
                "acme".to_owned(),
                BudgetCaps {
                    daily_usd: Some(50.0),
                    monthly_usd: Some(1000.0),
                }
            )]),
            on_exhausted: OnBudgetExhausted::Local,
        })
    );
}

#[test]
fn files_without_the_new_keys_load_unchanged() {
    let path = crate::repo_file("policies/default.yaml");
    let src = std::fs::read_to_string(&path).unwrap();
    let shipped = crate::parse_policy(&src, &path, &no_env).unwrap();
    for policy in [shipped, parse(FULL).unwrap(), parse(MINIMAL).unwrap()] {
        assert!(policy.rules.is_empty(), "{}", policy.name);
        assert_eq!(policy.budget, None, "{}", policy.name);
        assert!(policy.scoring.tenant_thresholds.is_empty());
        assert_eq!(
            policy.scoring.threshold_for("acme"),
            policy.scoring.threshold
        );
    }
}

#[test]
fn empty_and_null_sections_mean_nothing() {
    for rules in ["rules:\n", "rules: []\n", "rules: ~\n"] {
        let policy = parse(&format!("{MINIMAL}{rules}")).unwrap();
        assert!(policy.rules.is_empty(), "{rules}");
    }
    let policy = parse(&format!("{MINIMAL}budget:\n")).unwrap();
    assert_eq!(policy.budget, None);
    let src = MINIMAL.replace(
        "mean_logprob: 1 }",
        "mean_logprob: 1 }\n  tenant_thresholds: {}",
    );
    assert!(parse(&src).unwrap().scoring.tenant_thresholds.is_empty());
    let policy = parse(&minimal_with_rules(&[
        "- { name: a, action: local }",
        "- { name: b, when: {}, action: score }",
        "- name: c",
        "  when:",
        "  action: local",
    ]))
    .unwrap();
    assert!(policy.rules.iter().all(|r| r.when.is_empty()));
}

#[test]
fn single_tenant_and_single_pii_kind_are_accepted() {
    let src = example_with("tenant: [acme, initech]", "tenant: acme")
        .replace("pii: [private_key, api_key]", "pii: email");
    let policy = parse(&src).unwrap();
    assert_eq!(policy.rules[2].when.tenants, vec!["acme".to_owned()]);
    assert_eq!(
        policy.rules[0].when.pii,
        Some(PiiMatch::Kinds([PiiKind::Email].into()))
    );
}

#[test]
fn every_action_form() {
    let cases = [
        ("local", RuleAction::Local),
        ("score", RuleAction::Score),
        ("'score'", RuleAction::Score),
        ("{ tier: huge }", RuleAction::Tier("huge".into())),
        ("{ reject: \"no\" }", RuleAction::Reject("no".into())),
        (
            "\n      reject: not here",
            RuleAction::Reject("not here".into()),
        ),
    ];
    for (written, want) in cases {
        let src = example_with("action: score", &format!("action: {written}"));
        assert_eq!(parse(&src).unwrap().rules[4].action, want, "{written}");
    }
}

#[test]
fn bad_actions_say_what_is_expected() {
    let bad = |to: &str, message: String| {
        let src = example_with("action: score", to);
        assert_invalid(&src, "rules[4].action", to, &message);
    };
    bad(
        "action: scor",
        format!("expected {ACTIONS}, found \"scor\""),
    );
    bad("action: true", format!("expected {ACTIONS}, found true"));
    bad("action: 3", format!("expected {ACTIONS}, found 3"));
    bad("action: ~", format!("expected {ACTIONS}, found null"));
    bad(
        "action: tier",
        format!("expected {ACTIONS}, found \"tier\" (write {{tier: NAME}})"),
    );
    bad(
        "action: reject",
        format!("expected {ACTIONS}, found \"reject\" (write {{reject: MESSAGE}})"),
    );
    bad(
        "action: {}",
        format!("expected {ACTIONS}, found an empty mapping"),
    );
    bad(
        "action: { tier: large, reject: no }",
        format!("expected {ACTIONS}, found a mapping with keys tier, reject"),
    );
    bad(
        "action: { tiers: large }",
        format!("expected {ACTIONS}, found a mapping with key \"tiers\""),
    );
    // Neither a scalar nor a mapping: serde's message, still at the action's key.
    bad(
        "action: [local]",
        format!("invalid type: sequence, expected {ACTIONS}"),
    );
}

#[test]
fn missing_action_is_an_error() {
    let src = example_with("    action: score\n", "");
    let (key_path, line, message) = invalid(&src);
    assert_eq!(key_path, "rules[4]");
    assert!(line.is_some());
    assert_eq!(message, "missing field `action`");
}

#[test]
fn unknown_tier_lists_the_policy_tiers() {
    let src = example_with("{ tier: large }", "{ tier: larg }");
    assert_invalid(
        &src,
        "rules[2].action.tier",
        "tier: larg",
        "expected a tier of this policy (large, huge), found \"larg\"",
    );
    let src = example_with("{ tier: large }", "{ tier: 2 }");
    assert_invalid(
        &src,
        "rules[2].action.tier",
        "tier: 2",
        "expected a tier of this policy (large, huge), found 2",
    );
    let src = minimal_with_rules(&["- name: up", "  action: { tier: large }"]);
    assert_invalid(
        &src,
        "rules[0].action.tier",
        "tier: large",
        "expected a tier of this policy, found \"large\", but the policy has no tiers",
    );
}

#[test]
fn reject_needs_a_message() {
    for (to, found) in [
        ("{ reject: \"\" }", "\"\""),
        ("{ reject: \"  \" }", "\"  \""),
        ("{ reject: 42 }", "42"),
        ("{ reject: ~ }", "null"),
    ] {
        let src = example_with("{ reject: \"remove secrets before sending\" }", to);
        assert_invalid(
            &src,
            "rules[0].action.reject",
            "reject:",
            &format!("expected a non-empty message string, found {found}"),
        );
    }
}

#[test]
fn invalid_regex_includes_the_regex_error() {
    let src = example_with(r#""(?i)^\\s*(hi|hello|thanks)\\b""#, r#""(hi|hello""#);
    let (key_path, line, message) = invalid(&src);
    assert_eq!(key_path, "rules[3].when.regex");
    assert_eq!(line, line_with(&src, "regex:"));
    assert!(
        message.starts_with("expected a valid regular expression, found \"(hi|hello\": "),
        "{message}"
    );
    let regex_error = RuleRegex::new("(hi|hello").unwrap_err().to_string();
    assert!(message.ends_with(&regex_error), "{message}");
    assert!(message.contains("unclosed group"), "{message}");

    let src = example_with(r#""(?i)^\\s*(hi|hello|thanks)\\b""#, "''");
    assert_invalid(
        &src,
        "rules[3].when.regex",
        "regex:",
        "expected a regular expression, found an empty string",
    );
}

#[test]
fn unknown_pii_kind_lists_valid_names() {
    let src = example_with("[private_key, api_key]", "[private_key, api_keys]");
    let (key_path, line, message) = invalid(&src);
    assert_eq!(key_path, "rules[0].when.pii[1]");
    assert_eq!(line, line_with(&src, "api_keys"));
    assert!(message.ends_with("found \"api_keys\""), "{message}");
    for kind in PiiKind::ALL {
        assert!(message.contains(kind.as_str()), "{message}");
    }
    assert_eq!(
        message,
        "expected a kind among email, phone, card, iban, api_key, private_key, \
         found \"api_keys\""
    );

    let src = example_with("[private_key, api_key]", "[any, email]");
    let (key_path, _, message) = invalid(&src);
    assert_eq!(key_path, "rules[0].when.pii[0]");
    assert!(
        message.ends_with("(any stands alone: `pii: any`)"),
        "{message}"
    );

    let src = example_with("pii: any", "pii: everything");
    assert_invalid(
        &src,
        "rules[1].when.pii",
        "pii: everything",
        "expected any, or a kind or list of kinds among email, phone, card, iban, api_key, \
         private_key, found \"everything\"",
    );
    let src = example_with("[private_key, api_key]", "[]");
    let (key_path, _, message) = invalid(&src);
    assert_eq!(key_path, "rules[0].when.pii");
    assert!(message.ends_with("found an empty list"), "{message}");
}

#[test]
fn bad_ranges() {
    let src = example_with("turns: { min: 1, max: 3 }", "turns: { min: 4, max: 3 }");
    assert_invalid(
        &src,
        "rules[3].when.turns",
        "turns:",
        "expected min no greater than max, found min 4 and max 3",
    );
    let src = example_with(
        "prompt_tokens: { max: 32 }",
        "prompt_tokens: { min: 33, max: 32 }",
    );
    assert_invalid(
        &src,
        "rules[3].when.prompt_tokens",
        "prompt_tokens:",
        "expected min no greater than max, found min 33 and max 32",
    );
    let src = example_with("prompt_tokens: { max: 32 }", "prompt_tokens: { max: -1 }");
    assert_invalid(
        &src,
        "rules[3].when.prompt_tokens.max",
        "prompt_tokens:",
        "expected an integer in 0..=4294967295, found -1",
    );
    let src = example_with("turns: { min: 1, max: 3 }", "turns: { min: -2 }");
    assert_invalid(
        &src,
        "rules[3].when.turns.min",
        "turns:",
        "expected an integer in 0..=4294967295, found -2",
    );
    let src = example_with("prompt_tokens: { max: 32 }", "prompt_tokens: {}");
    assert_invalid(
        &src,
        "rules[3].when.prompt_tokens",
        "prompt_tokens:",
        "expected min and/or max, found neither",
    );
    // Equal bounds are a valid one-value range.
    let src = example_with("turns: { min: 1, max: 3 }", "turns: { min: 2, max: 2 }");
    assert_eq!(
        parse(&src).unwrap().rules[3].when.turns,
        Some(CountRange {
            min: Some(2),
            max: Some(2)
        })
    );
}

#[test]
fn rule_names_are_checked_and_unique() {
    let src = example_with("name: everything-else", "name: privacy");
    let (key_path, line, message) = invalid(&src);
    assert_eq!(key_path, "rules[4].name");
    let lines: Vec<&str> = src.lines().collect();
    let last = lines.iter().rposition(|l| l.contains("name: privacy"));
    assert_eq!(line, last.map(|i| i + 1));
    assert_eq!(
        message,
        "expected unique rule names, found \"privacy\" again (first at rules[1].name)"
    );
    let src = example_with("name: greetings", "name: Greetings");
    assert_invalid(
        &src,
        "rules[3].name",
        "name: Greetings",
        "expected a name of lowercase letters, digits, `_` and `-` \
         ([a-z0-9][a-z0-9_-]*), found \"Greetings\"",
    );
    let src = example_with("  - name: everything-else\n    action", "  - action");
    let (key_path, _, message) = invalid(&src);
    assert_eq!(key_path, "rules[4]");
    assert_eq!(message, "missing field `name`");
}

#[test]
fn bad_tenants_and_tags() {
    let cases = [
        (
            "tenant: [acme, initech]",
            "tenant: [acme, Initech]",
            "rules[2].when.tenant[1]",
            "expected a name of lowercase letters, digits, `_` and `-` \
             ([a-z0-9][a-z0-9_-]*), found \"Initech\"",
        ),
        (
            "tenant: [acme, initech]",
            "tenant: ACME",
            "rules[2].when.tenant",
            "expected a name of lowercase letters, digits, `_` and `-` \
             ([a-z0-9][a-z0-9_-]*), found \"ACME\"",
        ),
        (
            "tenant: [acme, initech]",
            "tenant: []",
            "rules[2].when.tenant",
            "expected a tenant name or a list of them, found an empty list",
        ),
        (
            "tenant: [acme, initech]",
            "tenant: [acme, [x]]",
            "rules[2].when.tenant[1]",
            "invalid type: sequence, expected a string",
        ),
        (
            "env: prod }",
            "env: prod, version: 2 }",
            "rules[2].when.tags.version",
            "expected a pattern string (quote numbers and booleans: \"2\"), found 2",
        ),
        (
            "env: prod }",
            "env: prod, env: dev }",
            "rules[2].when.tags.env",
            "expected each tag once, found \"env\" again",
        ),
        (
            "tags: { team: \"ml-*\", env: prod }",
            "tags: {}",
            "rules[2].when.tags",
            "expected at least one tag, found an empty mapping",
        ),
        (
            "code: true",
            "code: yes",
            "rules[2].when.code",
            "invalid type: string \"yes\", expected a boolean",
        ),
    ];
    for (from, to, key, message) in cases {
        let src = example_with(from, to);
        let (key_path, line, got) = invalid(&src);
        assert_eq!(key_path, key, "{to}: {got}");
        assert_eq!(line, line_with(&src, to.trim_end_matches(" }")), "{to}");
        assert_eq!(got, message, "{to}");
    }
}

#[test]
fn misspelled_rule_keys_are_errors_naming_the_key() {
    let cases = [
        (
            "tenant: [acme",
            "tenants: [acme",
            "rules[2].when.tenants",
            "`tenant`",
        ),
        (
            "    action: local\n  - name: acme",
            "    actions: local\n  - name: acme",
            "rules[1].actions",
            "`action`",
        ),
        (
            "{ max: 32 }",
            "{ maximum: 32 }",
            "rules[3].when.prompt_tokens.maximum",
            "`max`",
        ),
        (
            "  tenant_thresholds:",
            "  tenant_threshold:",
            "scoring.tenant_threshold",
            "`tenant_thresholds`",
        ),
    ];
    for (from, to, key, suggests) in cases {
        let (key_path, line, message) = invalid(&example_with(from, to));
        assert_eq!(key_path, key, "{message}");
        assert!(line.is_some(), "{key}");
        let field = key.rsplit('.').next().unwrap_or(key);
        let field = field.rsplit(']').next().unwrap_or(field);
        assert!(
            message.starts_with(&format!("unknown field `{field}`")),
            "{key}: {message}"
        );
        assert!(message.contains(suggests), "{key}: {message}");
    }
}
