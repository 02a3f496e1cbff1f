//! Schema and validation agree, value by value, on what each key accepts; only validation
//! checks how values relate.

use serde_json::Value;

use super::*;

/// A change to `FULL` at a JSON pointer.
pub(super) enum Change {
    Set(Value),
    Remove,
    Rename(&'static str),
}
pub(super) use Change::{Remove, Rename, Set};

fn changed(pointer: &str, change: &Change) -> String {
    let mut value = full();
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let parent = value
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("no mapping at {parent}"));
    match change {
        Set(new) => {
            parent.insert(key.to_owned(), new.clone());
        }
        Remove => {
            parent.remove(key).unwrap_or_else(|| panic!("no {pointer}"));
        }
        Rename(to) => {
            let old = parent.remove(key).unwrap_or_else(|| panic!("no {pointer}"));
            parent.insert((*to).to_owned(), old);
        }
    }
    serde_norway::to_string(&value).unwrap()
}

/// Checks each case's verdicts: (schema accepts, validation accepts).
pub(super) fn verdicts(cases: &[(&str, Change)], want: (bool, bool)) {
    let schema = policy_schema();
    let mut wrong = Vec::new();
    for (pointer, change) in cases {
        let yaml = changed(pointer, change);
        let got = (schema_accepts(&schema, &yaml), validation_accepts(&yaml));
        if (got.0.is_ok(), got.1.is_ok()) != want {
            wrong.push(format!(
                "{pointer}: schema {:?}, validation {:?}",
                got.0, got.1
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn schema_and_validation_accept_the_same_values() {
    let ok = [
        ("/local/max_tokens", Set(json!(1))),
        ("/local/max_tokens", Set(json!(8192))),
        ("/local/max_tokens", Remove),
        ("/tiers/0/retries", Set(json!(0))),
        ("/tiers/0/retries", Set(json!(10))),
        ("/tiers/1/timeout", Set(json!("0.1s"))),
        ("/tiers/1/timeout", Set(json!("1.25ms"))),
        ("/tiers/0/api_key_env", Set(json!("_KEY_2"))),
        ("/tiers/0/circuit_breaker/error_ratio", Set(json!(1))),
        ("/tiers/0/circuit_breaker", Set(Value::Null)),
        ("/tiers/0/retry_budget/ratio", Set(json!(10))),
        ("/tiers/0/price/input_per_mtok", Set(json!(0))),
        ("/scoring/threshold", Set(json!(0))),
        ("/scoring/threshold", Set(json!(1))),
        ("/scoring/escalate_below", Set(json!(0))),
        ("/scoring/escalate_below", Set(json!(1))),
        ("/scoring/escalate_below", Remove),
        ("/scoring/tenant_thresholds/a-b_1", Set(json!(1))),
        (
            "/scoring",
            Set(json!({
                "method": "difficulty_probe",
                "threshold": 0.5,
                "weights": { "bias": 1, "probe_log_odds": 1, "prompt_nll": 1, "turns": 1 },
            })),
        ),
        (
            "/scoring",
            Set(json!({
                "method": "prompt_surprise",
                "threshold": 0.5,
                "weights": { "prompt_nll": 1, "code_blocks": 1 },
            })),
        ),
        ("/on_upstream_failure", Set(json!("local"))),
        ("/on_upstream_failure", Set(Value::Null)),
        ("/cache", Set(Value::Null)),
        ("/cache", Set(json!({}))),
        ("/cache/mode", Set(json!("off"))),
        ("/cache/mode", Set(json!("deterministic"))),
        ("/cache/max_bytes", Set(json!(65536))),
        ("/cache/max_bytes", Set(json!("65536"))),
        ("/cache/max_bytes", Set(json!("500 KB"))),
        ("/cache/max_bytes", Set(json!("2GiB"))),
        ("/cache/max_bytes", Set(json!("12B"))),
        ("/rules", Set(Value::Null)),
        ("/rules/0/when", Set(Value::Null)),
        ("/rules/0/when", Set(json!({}))),
        ("/rules/0/when/pii", Set(json!("email"))),
        ("/rules/0/when/pii", Set(json!("any"))),
        ("/rules/1/when/turns", Set(json!({ "min": 0 }))),
        ("/rules/1/when/tags/build id", Set(json!("*"))),
        ("/rules/1/when/code", Set(json!(false))),
        ("/rules/1/action", Set(json!({ "tier": "large" }))),
        ("/budget", Remove),
        (
            "/budget",
            Set(json!({ "tenants": { "acme": { "daily_usd": 1 } } })),
        ),
        ("/budget/on_exhausted", Set(json!("local"))),
        ("/budget/tenants", Set(Value::Null)),
    ];
    verdicts(&ok, (true, true));

    let bad = [
        // Keys.
        ("/on_upstream_failure", Rename("on_upstream_failures")),
        ("/scoring/weight_bias", Set(json!(1))),
        ("/tiers/0/circuit_breaker/windw", Set(json!("30s"))),
        ("/rules/1/when/colour", Set(json!("red"))),
        ("/budget/tenants/acme/weekly_usd", Set(json!(1))),
        ("/local", Remove),
        ("/tiers/0/timeout", Remove),
        ("/rules/3/action", Remove),
        // Choices.
        ("/version", Set(json!(2))),
        ("/scoring/method", Set(json!("confidence"))),
        ("/scoring/method", Set(json!("prompt_surprise"))),
        ("/scoring/weights/foo", Set(json!(1))),
        ("/tiers/0/provider", Set(json!("azure"))),
        ("/on_upstream_failure", Set(json!("retry"))),
        ("/cache/mode", Set(json!("sometimes"))),
        ("/budget/on_exhausted", Set(json!("drop"))),
        ("/rules/0/when/pii", Set(json!("ssn"))),
        ("/rules/0/when/pii", Set(json!(["any"]))),
        ("/rules/0/when/pii", Set(json!([]))),
        ("/rules/2/action", Set(json!("tier"))),
        ("/rules/2/action", Set(json!("escalate"))),
        (
            "/rules/2/action",
            Set(json!({ "tier": "large", "reject": "x" })),
        ),
        ("/rules/2/action", Set(json!({}))),
        ("/rules/2/action", Set(json!({ "reject": " " }))),
        ("/rules/2/action", Set(json!({ "tier": 1 }))),
        // Names and text.
        ("/name", Set(json!("Full"))),
        ("/tiers/0/name", Set(json!("-large"))),
        ("/rules/0/name", Set(json!("no secrets"))),
        ("/scoring/tenant_thresholds/Acme", Set(json!(0.5))),
        ("/budget/tenants/acme corp", Set(json!({ "daily_usd": 1 }))),
        ("/rules/1/when/tenant", Set(json!("Acme"))),
        ("/rules/1/when/tenant", Set(json!([]))),
        ("/tiers/0/api_key_env", Set(json!("1KEY"))),
        ("/tiers/0/model", Set(json!(" "))),
        ("/local/model", Set(json!(""))),
        ("/rules/1/when/tags", Set(json!({}))),
        ("/rules/1/when/tags/env", Set(json!(1))),
        ("/rules/1/when/tags/ ", Set(json!("x"))),
        ("/rules/1/when/regex", Set(json!(""))),
        // Durations and sizes.
        ("/tiers/0/timeout", Set(json!("30"))),
        ("/tiers/0/timeout", Set(json!(30))),
        ("/tiers/0/timeout", Set(json!("1d"))),
        ("/tiers/0/timeout", Set(json!("30 seconds"))),
        ("/tiers/0/read_timeout", Set(json!(".5s"))),
        ("/cache/ttl", Set(json!(600))),
        ("/cache/max_bytes", Set(json!("64mb"))),
        ("/cache/max_bytes", Set(json!("1.5MiB"))),
        ("/cache/max_bytes", Set(json!(0))),
        ("/cache/max_bytes", Set(json!(-1))),
        // Numbers.
        ("/local/max_tokens", Set(json!(0))),
        ("/local/max_tokens", Set(json!(8193))),
        ("/tiers/0/retries", Set(json!(11))),
        ("/tiers/0/retries", Set(json!(-1))),
        ("/tiers/0/price/input_per_mtok", Set(json!(-0.01))),
        ("/tiers/0/circuit_breaker/error_ratio", Set(json!(0))),
        ("/tiers/0/circuit_breaker/error_ratio", Set(json!(1.5))),
        ("/tiers/0/circuit_breaker/min_requests", Set(json!(0))),
        ("/tiers/0/retry_budget/ratio", Set(json!(10.5))),
        ("/tiers/0/retry_budget/min_per_second", Set(json!(-1))),
        ("/scoring/threshold", Set(json!(1.5))),
        ("/scoring/escalate_below", Set(json!(-0.5))),
        ("/scoring/escalate_below", Set(json!("low"))),
        ("/scoring/probe", Set(json!(3))),
        ("/scoring/tenant_thresholds/acme", Set(json!(2))),
        ("/rules/1/when/turns", Set(json!({}))),
        ("/rules/1/when/turns/min", Set(json!(-1))),
        ("/budget", Set(json!({}))),
        ("/budget", Set(json!({ "daily_usd": null, "tenants": {} }))),
        ("/budget/daily_usd", Set(json!(0))),
        ("/budget/tenants/acme", Set(json!({}))),
        ("/budget/tenants/acme", Set(json!({ "daily_usd": null }))),
    ];
    verdicts(&bad, (false, false));
}

/// What JSON Schema cannot say: how values relate. Only validation rejects these.
#[test]
fn only_validation_checks_how_values_relate() {
    let cases = [
        ("/tiers/1/name", Set(json!("large"))),
        ("/rules/3/name", Set(json!("secrets"))),
        ("/rules/1/action", Set(json!({ "tier": "missing" }))),
        ("/tiers/0/connect_timeout", Set(json!("1m"))),
        (
            "/rules/1/when/prompt_tokens",
            Set(json!({ "min": 10, "max": 5 })),
        ),
        ("/tiers/0/timeout", Set(json!("0s"))),
        ("/cache/max_bytes", Set(json!("0MiB"))),
        ("/rules/1/when/regex", Set(json!("("))),
        ("/tiers/0/base_url", Set(json!("ftp://example.com"))),
    ];
    verdicts(&cases, (true, false));
}
