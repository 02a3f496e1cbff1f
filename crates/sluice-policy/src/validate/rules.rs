//! `rules:` — names, conditions and actions of the routing rules.

use std::collections::BTreeSet;

use super::{values, At, Invalid};
use crate::locate::KeyPath;
use crate::model::{
    Conditions, CountRange, PiiMatch, Rule, RuleAction, RuleRegex, TagPattern, Tier,
};
use crate::pii::PiiKind;
use crate::raw::{
    Entries, OneOrMany, RawAction, RawConditions, RawRange, RawRule, Scalar, ACTIONS,
};

/// Checks every rule; `tiers` are the policy's, which `{tier: NAME}` must name.
pub(super) fn rules(raw: &[RawRule], path: &KeyPath, tiers: &[Tier]) -> Result<Vec<Rule>, Invalid> {
    let mut out: Vec<Rule> = Vec::with_capacity(raw.len());
    for (i, raw_rule) in raw.iter().enumerate() {
        let rule_path = path.index(i);
        let name_path = rule_path.key("name");
        values::check_name(&raw_rule.name).at(&name_path)?;
        if let Some(first) = out.iter().position(|r| r.name == raw_rule.name) {
            return Err(format!(
                "expected unique rule names, found {:?} again (first at {})",
                raw_rule.name,
                path.index(first).key("name")
            ))
            .at(&name_path);
        }
        let when = match &raw_rule.when {
            None => Conditions::default(),
            Some(raw_when) => conditions(raw_when, &rule_path.key("when"))?,
        };
        let action = action(&raw_rule.action, &rule_path.key("action"), tiers)?;
        out.push(Rule {
            name: raw_rule.name.clone(),
            when,
            action,
        });
    }
    Ok(out)
}

fn conditions(raw: &RawConditions, path: &KeyPath) -> Result<Conditions, Invalid> {
    let tenants = match &raw.tenant {
        None => Vec::new(),
        Some(list) => tenants(list, &path.key("tenant"))?,
    };
    let tags = match &raw.tags {
        None => Vec::new(),
        Some(entries) => tags(entries, &path.key("tags"))?,
    };
    let regex = match &raw.regex {
        None => None,
        Some(source) => Some(regex(source).at(&path.key("regex"))?),
    };
    let prompt_tokens = raw
        .prompt_tokens
        .map(|r| range(&r, &path.key("prompt_tokens")))
        .transpose()?;
    let turns = raw
        .turns
        .map(|r| range(&r, &path.key("turns")))
        .transpose()?;
    let pii = raw
        .pii
        .as_ref()
        .map(|p| pii(p, &path.key("pii")))
        .transpose()?;
    Ok(Conditions {
        tenants,
        tags,
        regex,
        prompt_tokens,
        turns,
        code: raw.code,
        pii,
    })
}

fn tenants(raw: &OneOrMany, path: &KeyPath) -> Result<Vec<String>, Invalid> {
    match raw {
        OneOrMany::One(name) => {
            values::check_name(name).at(path)?;
            Ok(vec![name.clone()])
        }
        OneOrMany::Many(names) if names.is_empty() => {
            Err("expected a tenant name or a list of them, found an empty list".to_owned()).at(path)
        }
        OneOrMany::Many(names) => {
            for (i, name) in names.iter().enumerate() {
                values::check_name(name).at(&path.index(i))?;
            }
            Ok(names.clone())
        }
    }
}

fn tags(raw: &Entries<Scalar>, path: &KeyPath) -> Result<Vec<(String, TagPattern)>, Invalid> {
    if raw.0.is_empty() {
        return Err("expected at least one tag, found an empty mapping".to_owned()).at(path);
    }
    let mut out: Vec<(String, TagPattern)> = Vec::with_capacity(raw.0.len());
    for (name, value) in &raw.0 {
        let tag_path = path.key(name);
        if name.trim().is_empty() {
            return Err(format!("expected a tag name, found {name:?}")).at(&tag_path);
        }
        if out.iter().any(|(n, _)| n == name) {
            return Err(format!("expected each tag once, found {name:?} again")).at(&tag_path);
        }
        if !value.is_string {
            return Err(format!(
                "expected a pattern string (quote numbers and booleans: \"{}\"), found {}",
                value.text,
                value.found()
            ))
            .at(&tag_path);
        }
        out.push((name.clone(), TagPattern::new(&value.text)));
    }
    Ok(out)
}

fn regex(source: &str) -> Result<RuleRegex, String> {
    if source.is_empty() {
        return Err("expected a regular expression, found an empty string".to_owned());
    }
    RuleRegex::new(source)
        .map_err(|err| format!("expected a valid regular expression, found {source:?}: {err}"))
}

fn range(raw: &RawRange, path: &KeyPath) -> Result<CountRange, Invalid> {
    if raw.min.is_none() && raw.max.is_none() {
        return Err("expected min and/or max, found neither".to_owned()).at(path);
    }
    let bound = |value: Option<crate::raw::Int>, key: &str| {
        value
            .map(|n| values::int_at_least(n.0, 0).at(&path.key(key)))
            .transpose()
    };
    let range = CountRange {
        min: bound(raw.min, "min")?,
        max: bound(raw.max, "max")?,
    };
    if let (Some(min), Some(max)) = (range.min, range.max) {
        if min > max {
            return Err(format!(
                "expected min no greater than max, found min {min} and max {max}"
            ))
            .at(path);
        }
    }
    Ok(range)
}

fn kind_names() -> String {
    let names: Vec<&str> = PiiKind::ALL.iter().map(|k| k.as_str()).collect();
    names.join(", ")
}

fn pii(raw: &OneOrMany, path: &KeyPath) -> Result<PiiMatch, Invalid> {
    match raw {
        OneOrMany::One(word) if word == "any" => Ok(PiiMatch::Any),
        OneOrMany::One(word) => match PiiKind::parse(word) {
            Some(kind) => Ok(PiiMatch::Kinds([kind].into())),
            None => Err(format!(
                "expected any, or a kind or list of kinds among {}, found {word:?}",
                kind_names()
            ))
            .at(path),
        },
        OneOrMany::Many(words) if words.is_empty() => Err(format!(
            "expected any, or a kind or list of kinds among {}, found an empty list",
            kind_names()
        ))
        .at(path),
        OneOrMany::Many(words) => {
            let mut kinds = BTreeSet::new();
            for (i, word) in words.iter().enumerate() {
                let Some(kind) = PiiKind::parse(word) else {
                    let hint = if word == "any" {
                        " (any stands alone: `pii: any`)"
                    } else {
                        ""
                    };
                    return Err(format!(
                        "expected a kind among {}, found {word:?}{hint}",
                        kind_names()
                    ))
                    .at(&path.index(i));
                };
                kinds.insert(kind);
            }
            Ok(PiiMatch::Kinds(kinds))
        }
    }
}

fn action(raw: &RawAction, path: &KeyPath, tiers: &[Tier]) -> Result<RuleAction, Invalid> {
    let entries = match raw {
        RawAction::Word(word) if word.is_string && word.text == "local" => {
            return Ok(RuleAction::Local)
        }
        RawAction::Word(word) if word.is_string && word.text == "score" => {
            return Ok(RuleAction::Score)
        }
        RawAction::Word(word) if word.is_string && ["tier", "reject"].contains(&&*word.text) => {
            let arg = if word.text == "tier" {
                "NAME"
            } else {
                "MESSAGE"
            };
            return Err(format!(
                "expected {ACTIONS}, found {} (write {{{}: {arg}}})",
                word.found(),
                word.text
            ))
            .at(path);
        }
        RawAction::Word(word) => {
            return Err(format!("expected {ACTIONS}, found {}", word.found())).at(path)
        }
        RawAction::Map(entries) => entries,
    };
    let (key, value) = match entries.as_slice() {
        [entry] => entry,
        [] => return Err(format!("expected {ACTIONS}, found an empty mapping")).at(path),
        many => {
            let keys: Vec<&str> = many.iter().map(|(k, _)| k.as_str()).collect();
            return Err(format!(
                "expected {ACTIONS}, found a mapping with keys {}",
                keys.join(", ")
            ))
            .at(path);
        }
    };
    match key.as_str() {
        "tier" => {
            let tier_path = path.key("tier");
            if value.is_string && tiers.iter().any(|t| t.name == value.text) {
                return Ok(RuleAction::Tier(value.text.clone()));
            }
            let message = if tiers.is_empty() {
                format!(
                    "expected a tier of this policy, found {}, but the policy has no tiers",
                    value.found()
                )
            } else {
                let names: Vec<&str> = tiers.iter().map(|t| t.name.as_str()).collect();
                format!(
                    "expected a tier of this policy ({}), found {}",
                    names.join(", "),
                    value.found()
                )
            };
            Err(message).at(&tier_path)
        }
        "reject" if value.is_string && !value.text.trim().is_empty() => {
            Ok(RuleAction::Reject(value.text.clone()))
        }
        "reject" => Err(format!(
            "expected a non-empty message string, found {}",
            value.found()
        ))
        .at(&path.key("reject")),
        other => Err(format!(
            "expected {ACTIONS}, found a mapping with key {other:?}"
        ))
        .at(path),
    }
}
