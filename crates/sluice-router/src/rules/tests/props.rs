//! Property tests of first-match semantics, against a reference that checks every condition
//! on its own with deliberately naive code.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use proptest::prelude::*;
use proptest::sample::select;
use sluice_policy::{
    Conditions, CountRange, Message, PiiKind, PiiMatch, Role, Rule, RuleAction, RuleRegex,
    TagPattern,
};

use super::super::{explain_with, first_match_with, RuleInput};
use super::fake_pii;

const TENANTS: [&str; 3] = ["acme", "initech", "globex"];
const TAG_NAMES: [&str; 2] = ["team", "env"];
const TAG_VALUES: [&str; 6] = ["ml-infra", "ml", "prod", "dev", "", "pröd"];
const TAG_PATTERNS: [&str; 8] = ["ml-*", "prod", "*", "?", "d?v", "ml", "*o*", "pr?d"];
const TEXTS: [&str; 10] = [
    "hello there",
    "Hi",
    "```\ncode\n```",
    "  ~~~ tilde",
    "mail a@b.c",
    "key sk-123",
    "-----BEGIN PRIVATE KEY-----",
    "42 apples",
    "thanks, bye",
    "",
];

static REGEXES: LazyLock<Vec<RuleRegex>> = LazyLock::new(|| {
    ["hello", r"(?i)^hi\b", r"\d+", "code", "^$", "bye$"]
        .iter()
        .filter_map(|p| RuleRegex::new(p).ok())
        .collect()
});

fn range() -> impl Strategy<Value = CountRange> {
    (prop::option::of(0u32..6), prop::option::of(0u32..6))
        .prop_map(|(min, max)| CountRange { min, max })
}

fn pii_match() -> impl Strategy<Value = PiiMatch> {
    prop_oneof![
        Just(PiiMatch::Any),
        prop::collection::btree_set(select(PiiKind::ALL.to_vec()), 1..3).prop_map(PiiMatch::Kinds),
    ]
}

/// Conditions that are often empty, so rules match often enough to be interesting.
fn conditions() -> impl Strategy<Value = Conditions> {
    let tenants = prop_oneof![
        3 => Just(Vec::new()),
        1 => prop::collection::vec(select(TENANTS.to_vec()), 1..3)
            .prop_map(|v| v.into_iter().map(String::from).collect()),
    ];
    let tags = prop_oneof![
        3 => Just(Vec::new()),
        1 => prop::collection::btree_map(select(TAG_NAMES.to_vec()), select(TAG_PATTERNS.to_vec()), 1..3)
            .prop_map(|m| m.into_iter().map(|(k, p)| (k.to_owned(), TagPattern::new(p))).collect()),
    ];
    (
        tenants,
        tags,
        prop::option::weighted(0.25, select(REGEXES.clone())),
        prop::option::weighted(0.25, range()),
        prop::option::weighted(0.25, range()),
        prop::option::weighted(0.25, any::<bool>()),
        prop::option::weighted(0.25, pii_match()),
    )
        .prop_map(
            |(tenants, tags, regex, prompt_tokens, turns, code, pii)| Conditions {
                tenants,
                tags,
                regex,
                prompt_tokens,
                turns,
                code,
                pii,
            },
        )
}

fn action() -> impl Strategy<Value = RuleAction> {
    prop_oneof![
        Just(RuleAction::Local),
        Just(RuleAction::Score),
        Just(RuleAction::Tier("large".into())),
        Just(RuleAction::Reject("no".into())),
    ]
}

/// Rules named `r0`, `r1`, … in order.
fn rules(max: usize) -> impl Strategy<Value = Vec<Rule>> {
    prop::collection::vec((conditions(), action()), 0..max).prop_map(|list| {
        list.into_iter()
            .enumerate()
            .map(|(i, (when, action))| Rule {
                name: format!("r{i}"),
                when,
                action,
            })
            .collect()
    })
}

/// A request, owned.
#[derive(Debug, Clone)]
struct Req {
    tenant: &'static str,
    tags: BTreeMap<String, String>,
    messages: Vec<Message>,
    prompt_tokens: Option<u32>,
}

impl Req {
    fn input(&self) -> RuleInput<'_> {
        RuleInput {
            tenant: self.tenant,
            tags: &self.tags,
            messages: &self.messages,
            prompt_tokens: self.prompt_tokens,
        }
    }
}

fn request() -> impl Strategy<Value = Req> {
    let role = select(vec![Role::User, Role::User, Role::Assistant, Role::System]);
    (
        select(TENANTS.to_vec()),
        prop::collection::btree_map(
            select(TAG_NAMES.to_vec()),
            select(TAG_VALUES.to_vec()),
            0..3,
        ),
        prop::collection::vec((role, select(TEXTS.to_vec())), 0..6),
        prop::option::weighted(0.8, 0u32..7),
    )
        .prop_map(|(tenant, tags, messages, prompt_tokens)| Req {
            tenant,
            tags: tags
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            messages: messages
                .into_iter()
                .map(|(role, text)| Message::new(role, text))
                .collect(),
            prompt_tokens,
        })
}

/// Reference glob: plain recursion over characters.
fn glob(pattern: &[char], value: &[char]) -> bool {
    match pattern.split_first() {
        None => value.is_empty(),
        Some(('*', rest)) => (0..=value.len()).any(|skip| glob(rest, &value[skip..])),
        Some((&p, rest)) => match value.split_first() {
            Some((&v, tail)) if p == '?' || p == v => glob(rest, tail),
            _ => false,
        },
    }
}

fn in_range(range: &CountRange, n: u32) -> bool {
    let above_min = match range.min {
        Some(min) => min <= n,
        None => true,
    };
    let below_max = match range.max {
        Some(max) => n <= max,
        None => true,
    };
    above_min && below_max
}

/// Reference: whether every condition holds, each checked on its own.
fn holds(when: &Conditions, req: &Req) -> bool {
    let users: Vec<&str> = req
        .messages
        .iter()
        .filter(|m| matches!(m.role, Role::User))
        .map(|m| m.content.as_str())
        .collect();
    let tenant = when.tenants.is_empty() || when.tenants.iter().any(|t| t == req.tenant);
    let tags = when.tags.iter().all(|(name, pattern)| {
        req.tags.get(name).is_some_and(|value| {
            let p: Vec<char> = pattern.as_str().chars().collect();
            let v: Vec<char> = value.chars().collect();
            glob(&p, &v)
        })
    });
    let regex = match &when.regex {
        None => true,
        Some(re) => users.last().is_some_and(|text| re.0.is_match(text)),
    };
    let prompt_tokens = match &when.prompt_tokens {
        None => true,
        Some(range) => req.prompt_tokens.is_some_and(|n| in_range(range, n)),
    };
    let turns = when
        .turns
        .is_none_or(|range| in_range(&range, users.len() as u32));
    let fenced = users.iter().any(|text| {
        text.split('\n').any(|line| {
            let line = line.trim_start();
            line.starts_with("```") || line.starts_with("~~~")
        })
    });
    let code = when.code.is_none_or(|want| want == fenced);
    let pii = match &when.pii {
        None => true,
        Some(wanted) => {
            let found: BTreeSet<PiiKind> = users.iter().flat_map(|t| fake_pii(t)).collect();
            match wanted {
                PiiMatch::Any => !found.is_empty(),
                PiiMatch::Kinds(kinds) => kinds.iter().any(|k| found.contains(k)),
            }
        }
    };
    tenant && tags && regex && prompt_tokens && turns && code && pii
}

fn matched(rules: &[Rule], req: &Req) -> Option<(usize, String)> {
    first_match_with(rules, &req.input(), &fake_pii).map(|m| (m.index, m.rule.name.clone()))
}

fn always(name: &str) -> Rule {
    Rule {
        name: name.into(),
        when: Conditions::default(),
        action: RuleAction::Score,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// (a) The result is the lowest-index rule whose conditions all hold; `explain` agrees.
    #[test]
    fn result_is_the_first_rule_that_holds(rules in rules(8), req in request()) {
        let expected = rules.iter().position(|r| holds(&r.when, &req));
        let found = first_match_with(&rules, &req.input(), &fake_pii);
        prop_assert_eq!(found.as_ref().map(|m| m.index), expected);
        if let Some(m) = &found {
            prop_assert!(std::ptr::eq(m.rule, &rules[m.index]));
            prop_assert!(!m.reasons.is_empty());
        }
        let explained = explain_with(&rules, &req.input(), &fake_pii);
        prop_assert_eq!(explained.len(), rules.len());
        for ((name, outcome), rule) in explained.iter().zip(&rules) {
            prop_assert_eq!(name, &rule.name);
            prop_assert_eq!(outcome.is_ok(), holds(&rule.when, &req), "{}", name);
        }
        if let Some(m) = found {
            prop_assert_eq!(&explained[m.index].1, &Ok(m.reasons));
        }
    }

    /// (b) Appending rules after a matching one never changes the result; after no match,
    /// a match can only come from the appended rules.
    #[test]
    fn appending_rules_keeps_an_earlier_match(
        rules in rules(6),
        extra in rules(6),
        req in request(),
    ) {
        let before = matched(&rules, &req);
        let mut longer = rules.clone();
        longer.extend(extra.into_iter().map(|mut r| {
            r.name = format!("extra-{}", r.name);
            r
        }));
        let after = matched(&longer, &req);
        match before {
            Some(_) => prop_assert_eq!(after, before),
            None => prop_assert!(after.is_none_or(|(i, _)| i >= rules.len())),
        }
    }

    /// (c) A match-everything rule inserted at position i makes the result index at most i:
    /// exactly i unless an earlier rule already matched.
    #[test]
    fn inserted_catch_all_bounds_the_index(
        rules in rules(8),
        at in any::<prop::sample::Index>(),
        req in request(),
    ) {
        let i = at.index(rules.len() + 1);
        let before = matched(&rules, &req);
        let mut with = rules.clone();
        with.insert(i, always("catch-all"));
        let (index, name) = matched(&with, &req).expect("a catch-all always matches");
        prop_assert!(index <= i);
        match before {
            Some((j, earlier)) if j < i => prop_assert_eq!((index, name), (j, earlier)),
            _ => prop_assert_eq!((index, name.as_str()), (i, "catch-all")),
        }
    }

    /// (d) Removing rules that do not match never changes which rule matches.
    #[test]
    fn removing_non_matching_rules_keeps_the_match(
        rules in rules(8),
        drop in prop::collection::vec(any::<bool>(), 8),
        req in request(),
    ) {
        let before = matched(&rules, &req).map(|(_, name)| name);
        let kept: Vec<Rule> = rules
            .iter()
            .zip(&drop)
            // Only rules that do not hold may be dropped.
            .filter(|(rule, &dropped)| !dropped || holds(&rule.when, &req))
            .map(|(rule, _)| rule.clone())
            .collect();
        let after = matched(&kept, &req).map(|(_, name)| name);
        prop_assert_eq!(after, before);
    }

    /// (e) A rule with no conditions matches every request.
    #[test]
    fn rule_without_conditions_always_matches(req in request(), tokens in any::<Option<u32>>()) {
        let req = Req { prompt_tokens: tokens, ..req };
        let rules = [always("all")];
        let found = first_match_with(&rules, &req.input(), &fake_pii)
            .expect("no conditions always match");
        prop_assert_eq!(found.index, 0);
        prop_assert_eq!(found.reasons, vec!["no conditions".to_owned()]);
    }

    /// The glob matcher agrees with the naive recursive one on arbitrary short strings.
    #[test]
    fn glob_agrees_with_reference(pattern in "[ab*?é]{0,8}", value in "[abé]{0,10}") {
        let p: Vec<char> = pattern.chars().collect();
        let v: Vec<char> = value.chars().collect();
        prop_assert_eq!(TagPattern::new(&pattern).matches(&value), glob(&p, &v));
    }
}
