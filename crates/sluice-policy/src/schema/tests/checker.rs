//! A checker for the keywords this schema uses (JSON Schema validators are heavy
//! dependencies); it fails on any other keyword, so it cannot silently ignore part of the
//! schema.

use serde_json::Value;

use super::*;

const KEYWORDS: &[&str] = &[
    "$schema",
    "$comment",
    "title",
    "description",
    "examples",
    "type",
    "enum",
    "const",
    "pattern",
    "minLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "properties",
    "required",
    "additionalProperties",
    "propertyNames",
    "minProperties",
    "items",
    "minItems",
    "anyOf",
    "oneOf",
    "allOf",
    "if",
    "then",
    "not",
];

/// Where and why `instance` does not meet `schema`; empty when it does.
pub(super) fn errors(schema: &Value, instance: &Value) -> Vec<String> {
    let mut out = Vec::new();
    check(schema, instance, "", &mut out);
    out
}

fn has_type(value: &Value, ty: &str) -> bool {
    match ty {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "number" => value.is_number(),
        "integer" => {
            value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|x| x.fract() == 0.0)
        }
        other => panic!("unknown type {other:?}"),
    }
}

fn check(schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    let schema = match schema {
        Value::Bool(true) => return,
        Value::Bool(false) => return out.push(format!("{path}: not allowed")),
        Value::Object(map) => map,
        other => panic!("{path}: not a schema: {other}"),
    };
    for keyword in schema.keys() {
        assert!(
            KEYWORDS.contains(&keyword.as_str()),
            "the checker does not know keyword {keyword:?}"
        );
    }
    let mut fail = |message: String| out.push(format!("{path}: {message}"));
    if let Some(ty) = schema.get("type") {
        let types: Vec<&str> = match ty {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            other => panic!("bad type {other}"),
        };
        if !types.iter().any(|t| has_type(value, t)) {
            return fail(format!("expected {}, found {value}", types.join(" or ")));
        }
    }
    if let Some(Value::Array(choices)) = schema.get("enum") {
        if !choices.contains(value) {
            fail(format!("expected one of {choices:?}, found {value}"));
        }
    }
    if let Some(constant) = schema.get("const") {
        if constant != value {
            fail(format!("expected {constant}, found {value}"));
        }
    }
    if let Value::String(text) = value {
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
            if !Regex::new(pattern).unwrap().is_match(text) {
                fail(format!("expected a match of {pattern}, found {text:?}"));
            }
        }
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
            if (text.chars().count() as u64) < min {
                fail(format!(
                    "expected at least {min} characters, found {text:?}"
                ));
            }
        }
    }
    if let Some(x) = value.as_f64() {
        let bound = |key: &str| schema.get(key).and_then(Value::as_f64);
        if bound("minimum").is_some_and(|min| x < min)
            || bound("maximum").is_some_and(|max| x > max)
            || bound("exclusiveMinimum").is_some_and(|min| x <= min)
        {
            fail(format!("{x} is out of range"));
        }
    }
    if let Value::Object(map) = value {
        let properties = schema.get("properties").and_then(Value::as_object);
        for key in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !map.contains_key(key) {
                fail(format!("missing key {key}"));
            }
        }
        if let Some(min) = schema.get("minProperties").and_then(Value::as_u64) {
            if (map.len() as u64) < min {
                fail(format!("expected at least {min} keys"));
            }
        }
        for (key, item) in map {
            let item_path = format!("{path}/{key}");
            if let Some(names) = schema.get("propertyNames") {
                check(names, &Value::String(key.clone()), &item_path, out);
            }
            match (
                properties.and_then(|p| p.get(key)),
                schema.get("additionalProperties"),
            ) {
                (Some(sub), _) => check(sub, item, &item_path, out),
                (None, Some(extra)) => check(extra, item, &item_path, out),
                (None, None) => {}
            }
        }
    }
    if let Value::Array(items) = value {
        if let Some(min) = schema.get("minItems").and_then(Value::as_u64) {
            if (items.len() as u64) < min {
                out.push(format!("{path}: expected at least {min} items"));
            }
        }
        if let Some(sub) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                check(sub, item, &format!("{path}/{i}"), out);
            }
        }
    }
    let passing = |key: &str| -> Option<usize> {
        let alternatives = schema.get(key)?.as_array()?;
        Some(
            alternatives
                .iter()
                .filter(|s| errors(s, value).is_empty())
                .count(),
        )
    };
    if passing("anyOf") == Some(0) {
        out.push(format!("{path}: matches no alternative of anyOf"));
    }
    if let Some(n) = passing("oneOf").filter(|n| *n != 1) {
        out.push(format!("{path}: matches {n} alternatives of oneOf, not 1"));
    }
    for sub in schema
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        check(sub, value, path, out);
    }
    if let Some(condition) = schema.get("if") {
        if errors(condition, value).is_empty() {
            if let Some(then) = schema.get("then") {
                check(then, value, path, out);
            }
        }
    }
    if let Some(not) = schema.get("not") {
        if errors(not, value).is_empty() {
            out.push(format!("{path}: matches what `not` excludes"));
        }
    }
}

#[test]
fn the_checker_knows_every_keyword_of_the_schema() {
    fn walk(schema: &Value) {
        if let Value::Object(map) = schema {
            for (key, value) in map {
                assert!(KEYWORDS.contains(&key.as_str()), "{key}");
                match key.as_str() {
                    "properties" => value.as_object().unwrap().values().for_each(walk),
                    "enum" | "const" | "examples" | "required" => {}
                    _ => match value {
                        Value::Array(items) => items.iter().for_each(walk),
                        other => walk(other),
                    },
                }
            }
        }
    }
    walk(&policy_schema());
}
