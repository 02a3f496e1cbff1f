//! Routing rules: the first rule of a policy whose conditions all hold decides a request
//! before any scoring. Pure functions over the request, no I/O.

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet};

use sluice_policy::{Conditions, Message, PiiKind, Role, Rule};

/// What a rule sees of a request.
#[derive(Debug, Clone, Copy)]
pub struct RuleInput<'a> {
    /// The caller's tenant name.
    pub tenant: &'a str,
    /// The request's tags.
    pub tags: &'a BTreeMap<String, String>,
    /// The conversation; only user messages are looked at.
    pub messages: &'a [Message],
    /// Prompt tokens as the local model's tokenizer counts them. `None` when the tokenizer is
    /// not available: a rule with a `prompt_tokens` condition then does not match.
    pub prompt_tokens: Option<u32>,
}

/// Why a rule matched, condition by condition, for `sluice explain` and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleMatch<'a> {
    /// The rule that matched.
    pub rule: &'a Rule,
    /// Its position in the policy's `rules`.
    pub index: usize,
    /// One line per condition, in checking order (`["no conditions"]` for a rule without any).
    pub reasons: Vec<String>,
}

/// Finds the personal data kinds in one text.
pub(crate) type Detect<'d> = &'d dyn Fn(&str) -> BTreeSet<PiiKind>;

/// The first rule whose every condition holds, or `None` (then: score). User messages are
/// scanned for personal data only when a rule with a `pii` condition gets that far.
pub fn first_match<'a>(rules: &'a [Rule], input: &RuleInput<'_>) -> Option<RuleMatch<'a>> {
    first_match_with(rules, input, &sluice_policy::pii::kinds)
}

/// For each rule, in order: its name, and either why it matches (one line per condition) or
/// the first condition that fails. Every rule is checked, also after a match.
pub fn explain(
    rules: &[Rule],
    input: &RuleInput<'_>,
) -> Vec<(String, Result<Vec<String>, String>)> {
    explain_with(rules, input, &sluice_policy::pii::kinds)
}

/// `first_match` with the personal data detector given.
pub(crate) fn first_match_with<'a>(
    rules: &'a [Rule],
    input: &RuleInput<'_>,
    detect: Detect<'_>,
) -> Option<RuleMatch<'a>> {
    let facts = Facts::new(input, detect);
    rules.iter().enumerate().find_map(|(index, rule)| {
        check(&rule.when, &facts).ok().map(|reasons| RuleMatch {
            rule,
            index,
            reasons,
        })
    })
}

/// `explain` with the personal data detector given.
pub(crate) fn explain_with(
    rules: &[Rule],
    input: &RuleInput<'_>,
    detect: Detect<'_>,
) -> Vec<(String, Result<Vec<String>, String>)> {
    let facts = Facts::new(input, detect);
    rules
        .iter()
        .map(|rule| (rule.name.clone(), check(&rule.when, &facts)))
        .collect()
}

/// What the conditions look at, worked out once per request; personal data only on demand.
struct Facts<'a> {
    input: &'a RuleInput<'a>,
    /// The user messages' text, in order.
    user: Vec<&'a str>,
    code: OnceCell<bool>,
    pii: OnceCell<BTreeSet<PiiKind>>,
    detect: Detect<'a>,
}

impl<'a> Facts<'a> {
    fn new(input: &'a RuleInput<'a>, detect: Detect<'a>) -> Facts<'a> {
        let user = input
            .messages
            .iter()
            .filter(|m| m.role == Role::User)
            .map(|m| m.content.as_str())
            .collect();
        Facts {
            input,
            user,
            code: OnceCell::new(),
            pii: OnceCell::new(),
            detect,
        }
    }

    /// The number of user messages.
    fn turns(&self) -> u32 {
        u32::try_from(self.user.len()).unwrap_or(u32::MAX)
    }

    /// Whether a user message has a line opening or closing a fenced code block.
    fn has_code(&self) -> bool {
        *self.code.get_or_init(|| {
            self.user.iter().any(|text| {
                text.lines().any(|line| {
                    let line = line.trim_start();
                    line.starts_with("```") || line.starts_with("~~~")
                })
            })
        })
    }

    /// Every kind of personal data in the user messages.
    fn pii(&self) -> &BTreeSet<PiiKind> {
        self.pii.get_or_init(|| {
            self.user
                .iter()
                .flat_map(|text| (self.detect)(text))
                .collect()
        })
    }
}

/// The reason for each condition when all hold, or the first failing one. Cheap conditions
/// are checked first, the personal data scan last.
fn check(when: &Conditions, facts: &Facts<'_>) -> Result<Vec<String>, String> {
    let input = facts.input;
    let mut reasons = Vec::new();
    if !when.tenants.is_empty() {
        let tenant = input.tenant;
        let list = when.tenants.join(", ");
        if !when.tenants.iter().any(|t| t == tenant) {
            return Err(format!("tenant {tenant:?} is not one of {list}"));
        }
        reasons.push(format!("tenant {tenant:?} is one of {list}"));
    }
    for (name, pattern) in &when.tags {
        let want = pattern.as_str();
        match input.tags.get(name) {
            None => return Err(format!("tag {name} is missing (wanted {want:?})")),
            Some(value) if !pattern.matches(value) => {
                return Err(format!("tag {name}={value:?} does not match {want:?}"))
            }
            Some(value) => reasons.push(format!("tag {name}={value:?} matches {want:?}")),
        }
    }
    if let Some(range) = when.turns {
        let turns = facts.turns();
        if !range.contains(turns) {
            return Err(format!("turns {turns} not in {range}"));
        }
        reasons.push(format!("turns {turns} in {range}"));
    }
    if let Some(range) = when.prompt_tokens {
        let Some(tokens) = input.prompt_tokens else {
            return Err(format!(
                "prompt tokens not counted (no tokenizer), wanted {range}"
            ));
        };
        if !range.contains(tokens) {
            return Err(format!("prompt tokens {tokens} not in {range}"));
        }
        reasons.push(format!("prompt tokens {tokens} in {range}"));
    }
    if let Some(want) = when.code {
        let has = facts.has_code();
        let with = "a user message has a code fence";
        let without = "no user message has a code fence";
        if has != want {
            return Err(if has { with } else { without }.to_owned());
        }
        reasons.push(if has { with } else { without }.to_owned());
    }
    if let Some(regex) = &when.regex {
        let pattern = regex.as_str();
        match facts.user.last() {
            None => return Err(format!("no user message to search for /{pattern}/")),
            Some(text) if !regex.is_match(text) => {
                return Err(format!("last user message does not match /{pattern}/"))
            }
            Some(_) => reasons.push(format!("last user message matches /{pattern}/")),
        }
    }
    if let Some(wanted) = &when.pii {
        let found = facts.pii();
        let names = |kinds: &mut dyn Iterator<Item = &PiiKind>| {
            kinds.map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
        };
        if !wanted.is_met_by(found) {
            return Err(if found.is_empty() {
                format!("no personal data in user messages (wanted {wanted})")
            } else {
                format!(
                    "personal data in user messages is {}, not {wanted}",
                    names(&mut found.iter())
                )
            });
        }
        let hits = match wanted {
            sluice_policy::PiiMatch::Any => names(&mut found.iter()),
            sluice_policy::PiiMatch::Kinds(kinds) => names(&mut found.intersection(kinds)),
        };
        reasons.push(format!("user messages contain {hits}"));
    }
    if reasons.is_empty() {
        reasons.push("no conditions".to_owned());
    }
    Ok(reasons)
}

#[cfg(test)]
mod tests;
