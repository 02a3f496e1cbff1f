//! `policies/schema.json` is `policy_schema()`; the schema accepts every shipped policy and
//! agrees with validation on the keys and single values it covers.
//!
//! JSON Schema validators are heavy dependencies, so `errors` below is a small checker of
//! the keywords this schema uses; it fails on any other keyword, so it cannot silently
//! ignore part of the schema.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde_json::{json, Value};

use super::*;
use crate::parse_policy;

use crate::repo_file;

fn pretty(schema: &Value) -> String {
    let mut text = serde_json::to_string_pretty(schema).unwrap();
    text.push('\n');
    text
}

#[test]
fn schema_file_is_up_to_date() {
    let path = repo_file("policies/schema.json");
    let want = pretty(&policy_schema());
    if std::env::var_os("SLUICE_UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&path)
        .unwrap_or_default()
        .replace("\r\n", "\n");
    assert!(
        have == want,
        "policies/schema.json is not the schema the code generates; regenerate it with\n  \
         cargo run --release -p sluice -- policy schema > policies/schema.json\n\
         or\n  SLUICE_UPDATE_SCHEMA=1 cargo test -p sluice-policy schema_file_is_up_to_date"
    );
}

#[test]
fn schema_is_draft_2020_12_with_title_and_stable_text() {
    let schema = policy_schema();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["title"], TITLE);
    assert_eq!(
        schema["required"],
        json!(["version", "name", "local", "scoring"])
    );
    // Keys are sorted whatever serde_json's features, so the file is the same in every build.
    assert_eq!(pretty(&schema), pretty(&policy_schema()));
    let text = pretty(&schema);
    let reparsed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(pretty(&reparsed), text);
}

/// Every object schema with properties (every raw struct) denies unknown keys, and has a
/// description, as does each of its properties.
#[test]
fn every_mapping_denies_unknown_keys_and_every_key_is_described() {
    fn walk(schema: &Value, path: &str, found: &mut usize) {
        match schema {
            Value::Object(map) => {
                let is_object = match map.get("type") {
                    Some(Value::String(t)) => t == "object",
                    Some(Value::Array(ts)) => ts.iter().any(|t| t == "object"),
                    _ => false,
                };
                if let (true, Some(Value::Object(properties))) = (is_object, map.get("properties"))
                {
                    *found += 1;
                    assert_eq!(
                        map.get("additionalProperties"),
                        Some(&Value::Bool(false)),
                        "{path}"
                    );
                    for (key, property) in properties {
                        assert!(
                            property.get("description").is_some(),
                            "{path}/properties/{key} has no description"
                        );
                    }
                }
                for (key, value) in map {
                    walk(value, &format!("{path}/{key}"), found);
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, &format!("{path}/{i}"), found);
                }
            }
            _ => {}
        }
    }
    let mut found = 0;
    walk(&policy_schema(), "", &mut found);
    // policy, local, tier, price, circuit_breaker, retry_budget, scoring, weights, cache,
    // rule, when, prompt_tokens, turns, action {tier}, action {reject}, budget, its tenants,
    // shadow, distill.
    assert_eq!(found, 19);
}

mod checker;

use checker::errors;

mod agreement;

use agreement::{verdicts, Set};

// ---------------------------------------------------------------------------------------
// Policies: shipped, complete, and mutated.

/// Validation's verdict on a policy, read as YAML.
fn validation_accepts(yaml: &str) -> Result<(), String> {
    parse_policy(yaml, &probe_dir().join("case.yaml"), &|_| None)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A directory holding `probe.json`, a valid probe file, for the policies that name one.
fn probe_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("sluice-schema-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let probe = format!(
            r#"{{"version": 1, "model_sha256": "{}", "hidden_size": 1,
                "components": [{{"state": 0, "pool": "last", "bias": 0, "weights": [1]}}]}}"#,
            "0".repeat(64)
        );
        std::fs::write(dir.join("probe.json"), probe).unwrap();
        dir
    })
}

/// The schema's verdict on a policy, read as YAML.
fn schema_accepts(schema: &Value, yaml: &str) -> Result<(), String> {
    let instance: Value = serde_norway::from_str(yaml).map_err(|e| e.to_string())?;
    let found = errors(schema, &instance);
    if found.is_empty() {
        Ok(())
    } else {
        Err(found.join("; "))
    }
}

#[test]
fn shipped_policies_meet_the_schema() {
    let schema = policy_schema();
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_file("policies"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(
        files.iter().any(|f| f.ends_with("default.yaml")),
        "{files:?}"
    );
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        // Read where it lies, so the probe files it names resolve.
        let validated = parse_policy(&text, &file, &|_| None)
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert_eq!(validated, Ok(()), "{}", file.display());
        assert_eq!(schema_accepts(&schema, &text), Ok(()), "{}", file.display());
    }
}

/// A policy that sets every key the schema knows.
const FULL: &str = r#"
version: 1
name: full
local:
  model: smollm2-135m
  max_tokens: 64
  max_queue: 8
  max_wait: 250ms
tiers:
  - name: large
    provider: openai
    base_url: ${LARGE_URL:-http://127.0.0.1:8080}
    model: gpt-4o-mini
    api_key_env: LARGE_KEY
    price: { input_per_mtok: 0.15, output_per_mtok: 0.6 }
    timeout: 30s
    connect_timeout: 500ms
    read_timeout: 1.5m
    retries: 2
    circuit_breaker:
      consecutive_failures: 5
      error_ratio: 0.5
      min_requests: 20
      window: 30s
      open_for: 10s
      half_open_probes: 1
    retry_budget: { ratio: 0.2, min_per_second: 1 }
  - name: largest
    provider: anthropic
    base_url: https://api.anthropic.com
    model: claude
    price: { input_per_mtok: 3, output_per_mtok: 15 }
    timeout: 2h
scoring:
  method: cascade
  threshold: 0.5
  escalate_below: 0.1
  probe: probe.json
  weights:
    bias: 3.0
    mean_logprob: 2.5
    min_logprob: 0.15
    p10_logprob: 0.1
    mean_entropy: -0.2
    draft_tokens: 0.01
    stopped: 0.5
    prompt_tokens: -0.001
    prompt_digits: 0.1
    turns: -0.1
    code_blocks: -0.5
    question_words: 0.2
    prompt_nll: -0.3
    probe_log_odds: 0.4
    hidden_probe: 0.7
  tenant_thresholds: { acme: 0.7, initech: 0 }
on_upstream_failure: error
cache:
  mode: always
  ttl: 10m
  max_bytes: 64MiB
rules:
  - name: secrets
    when:
      pii: [api_key, private_key]
    action: { reject: "No secrets, please." }
  - name: acme-code
    when:
      tenant: acme
      tags: { env: "prod*", team: "?x" }
      regex: "(?i)refactor"
      prompt_tokens: { min: 10, max: 4000 }
      turns: { max: 3 }
      code: true
    action: { tier: largest }
  - name: any-pii
    when: { tenant: [acme, initech], pii: any }
    action: local
  - name: rest
    action: score
budget:
  daily_usd: 5
  monthly_usd: 100
  tenants:
    acme: { daily_usd: 10 }
    initech: { monthly_usd: 50 }
  on_exhausted: reject
shadow:
  rate: 0.02
  max_per_minute: 60
  budget_usd_daily: 1.5
  judge: true
distill:
  tenants: [acme]
"#;

fn full() -> Value {
    serde_norway::from_str(FULL).unwrap()
}

#[test]
fn a_policy_with_every_key_meets_the_schema_and_uses_all_its_keys() {
    let schema = policy_schema();
    assert_eq!(validation_accepts(FULL), Ok(()));
    assert_eq!(schema_accepts(&schema, FULL), Ok(()));

    fn property_names(schema: &Value, out: &mut BTreeSet<String>) {
        match schema {
            Value::Object(map) => {
                for (key, value) in map {
                    if key == "properties" {
                        out.extend(value.as_object().unwrap().keys().cloned());
                    }
                    property_names(value, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| property_names(i, out)),
            _ => {}
        }
    }
    fn used_keys(value: &Value, out: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                for (key, item) in map {
                    out.insert(key.clone());
                    used_keys(item, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| used_keys(i, out)),
            _ => {}
        }
    }
    let mut known = BTreeSet::new();
    property_names(&schema, &mut known);
    let mut used = BTreeSet::new();
    used_keys(&full(), &mut used);
    let unused: Vec<&String> = known.difference(&used).collect();
    assert!(unused.is_empty(), "FULL never sets {unused:?}");
}

/// The brief's own examples, as text edits of the shipped default policy.
#[test]
fn mutated_default_policy_is_rejected_by_both() {
    let schema = policy_schema();
    let text = std::fs::read_to_string(repo_file("policies/default.yaml")).unwrap();
    let cases = [
        ("\nscoring:\n", "\nscorng:\n"),
        ("\nscoring:\n", "\nscoring:\n  temperature: 0.5\n"),
        ("method: prefill_probe", "method: prefill-probe"),
        ("provider: openai", "provider: azure"),
        ("mode: deterministic", "mode: sometimes"),
        ("timeout: 30s ", "timeout: 30 "),
    ];
    for (from, to) in cases {
        assert!(text.contains(from), "{from:?}");
        let mutated = text.replacen(from, to, 1);
        assert!(schema_accepts(&schema, &mutated).is_err(), "{to:?}");
        assert!(validation_accepts(&mutated).is_err(), "{to:?}");
    }
}

/// Every choice the schema offers is one validation takes.
#[test]
fn every_choice_in_the_schema_is_valid() {
    let schema = policy_schema();
    let choices = |pointer: &str| -> Vec<Value> {
        schema
            .pointer(pointer)
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("no enum at {pointer}"))
            .iter()
            .filter(|v| !v.is_null())
            .cloned()
            .collect()
    };
    let props = "/properties";
    let cases = [
        (
            "/tiers/0/provider",
            format!("{props}/tiers/items/properties/provider/enum"),
        ),
        (
            "/on_upstream_failure",
            format!("{props}/on_upstream_failure/enum"),
        ),
        ("/cache/mode", format!("{props}/cache/properties/mode/enum")),
        (
            "/budget/on_exhausted",
            format!("{props}/budget/anyOf/0/properties/on_exhausted/enum"),
        ),
        (
            "/rules/0/when/pii",
            format!("{props}/rules/items/properties/when/properties/pii/anyOf/0/enum"),
        ),
        (
            "/rules/2/action",
            format!("{props}/rules/items/properties/action/oneOf/0/enum"),
        ),
    ];
    let mut all = Vec::new();
    for (target, pointer) in &cases {
        let found = choices(pointer);
        assert!(found.len() >= 2, "{pointer}");
        all.extend(found.into_iter().map(|v| (*target, Set(v))));
    }
    for method in choices(&format!("{props}/scoring/properties/method/enum")) {
        all.push((
            "/scoring",
            Set(json!({
                "method": method, "threshold": 0.5, "weights": { "bias": 1 }, "probe": "probe.json",
            })),
        ));
    }
    let features = schema
        .pointer(&format!("{props}/scoring/properties/weights/properties"))
        .and_then(Value::as_object)
        .unwrap();
    assert_eq!(features.len(), Feature::ALL.len() + 1);
    for feature in features.keys() {
        all.push(("/scoring/weights", Set(json!({ feature: 1 }))));
    }
    verdicts(&all, (true, true));
}

/// The patterns match what the checks in `validate::values` and `env` accept.
#[test]
fn patterns_agree_with_validation() {
    use crate::raw::Scalar;
    use crate::validate::values;

    let re = |pattern: &str| Regex::new(pattern).unwrap();
    for name in [
        "default",
        "a",
        "0",
        "large-2_b",
        "",
        "Default",
        "-a",
        "_a",
        "a b",
        "a.b",
        "é",
    ] {
        assert_eq!(
            re(NAME_PATTERN).is_match(name),
            values::check_name(name).is_ok(),
            "{name:?}"
        );
    }
    for name in ["KEY", "_k1", "a", "", "1A", "A-B", "A B"] {
        assert_eq!(
            re(ENV_NAME_PATTERN).is_match(name),
            crate::env::is_env_name(name),
            "{name:?}"
        );
    }
    for model in ["m", " m ", "", " ", "\t"] {
        assert_eq!(
            re(NON_BLANK_PATTERN).is_match(model),
            values::check_model(model).is_ok(),
            "{model:?}"
        );
    }
    let durations = [
        "500ms",
        "30s",
        "1.5m",
        "2h",
        "0.1s",
        " 30s ",
        "30",
        "30 seconds",
        "s",
        "1.s",
        ".5s",
        "-1s",
        "1d",
        "1e3s",
        "",
        "0s",
    ];
    for text in durations {
        let scalar = Scalar {
            text: text.into(),
            is_string: true,
        };
        // Zero has the form of a duration but is rejected for its value.
        let valid_form = match values::duration(&scalar) {
            Ok(_) => true,
            Err(message) => message.contains("greater than zero"),
        };
        assert_eq!(re(DURATION_PATTERN).is_match(text), valid_form, "{text:?}");
    }
}
