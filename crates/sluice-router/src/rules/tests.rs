//! Unit tests of each rule condition, of first-match order and of `explain`.

mod props;

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};

use sluice_policy::{
    Conditions, CountRange, Message, PiiKind, PiiMatch, Role, Rule, RuleAction, RuleRegex,
    TagPattern,
};

use super::*;

/// A stand-in for the real detector, so these tests do not depend on its heuristics:
/// `@` is an e-mail, `sk-` an API key, `BEGIN PRIVATE KEY` a private key.
pub(super) fn fake_pii(text: &str) -> BTreeSet<PiiKind> {
    let mut kinds = BTreeSet::new();
    if text.contains('@') {
        kinds.insert(PiiKind::Email);
    }
    if text.contains("sk-") {
        kinds.insert(PiiKind::ApiKey);
    }
    if text.contains("BEGIN PRIVATE KEY") {
        kinds.insert(PiiKind::PrivateKey);
    }
    kinds
}

fn rule(name: &str, when: Conditions) -> Rule {
    Rule {
        name: name.into(),
        when,
        action: RuleAction::Local,
    }
}

fn user(text: &str) -> Message {
    Message::new(Role::User, text)
}

/// A request from `tenant` with `tags` and `messages`, 10 prompt tokens.
struct Req {
    tenant: &'static str,
    tags: BTreeMap<String, String>,
    messages: Vec<Message>,
    prompt_tokens: Option<u32>,
}

impl Req {
    fn new(messages: Vec<Message>) -> Req {
        Req {
            tenant: "acme",
            tags: BTreeMap::new(),
            messages,
            prompt_tokens: Some(10),
        }
    }

    fn input(&self) -> RuleInput<'_> {
        RuleInput {
            tenant: self.tenant,
            tags: &self.tags,
            messages: &self.messages,
            prompt_tokens: self.prompt_tokens,
        }
    }

    /// The outcome of one rule with these conditions: its reasons, or why it failed.
    fn check(&self, when: Conditions) -> Result<Vec<String>, String> {
        let rules = [rule("r", when)];
        let mut out = explain_with(&rules, &self.input(), &fake_pii);
        out.remove(0).1
    }

    fn matches(&self, when: Conditions) -> bool {
        self.check(when).is_ok()
    }
}

fn range(min: Option<u32>, max: Option<u32>) -> CountRange {
    CountRange { min, max }
}

#[test]
fn tenant_must_be_in_the_list() {
    let req = Req::new(vec![user("hi")]);
    let when = |names: &[&str]| Conditions {
        tenants: names.iter().map(|n| n.to_string()).collect(),
        ..Conditions::default()
    };
    assert_eq!(
        req.check(when(&["initech", "acme"])),
        Ok(vec!["tenant \"acme\" is one of initech, acme".to_owned()])
    );
    assert_eq!(
        req.check(when(&["initech"])),
        Err("tenant \"acme\" is not one of initech".to_owned())
    );
    // No tenant list: any tenant.
    assert!(req.matches(when(&[])));
}

#[test]
fn every_tag_must_be_present_and_match_its_glob() {
    let mut req = Req::new(vec![user("hi")]);
    req.tags = [("team", "ml-infra"), ("env", "prod")]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .into();
    let when = |tags: &[(&str, &str)]| Conditions {
        tags: tags
            .iter()
            .map(|(k, p)| (k.to_string(), TagPattern::new(p)))
            .collect(),
        ..Conditions::default()
    };
    assert_eq!(
        req.check(when(&[("team", "ml-*"), ("env", "prod")])),
        Ok(vec![
            "tag team=\"ml-infra\" matches \"ml-*\"".to_owned(),
            "tag env=\"prod\" matches \"prod\"".to_owned(),
        ])
    );
    assert!(req.matches(when(&[("env", "p?od")])));
    assert_eq!(
        req.check(when(&[("team", "ml-*"), ("env", "dev")])),
        Err("tag env=\"prod\" does not match \"dev\"".to_owned())
    );
    // Exact without wildcards.
    assert!(!req.matches(when(&[("env", "pro")])));
    assert_eq!(
        req.check(when(&[("region", "*")])),
        Err("tag region is missing (wanted \"*\")".to_owned())
    );
}

#[test]
fn regex_searches_only_the_last_user_message() {
    let greeting = || Conditions {
        regex: Some(RuleRegex::new(r"(?i)^\s*(hi|hello|thanks)\b").unwrap()),
        ..Conditions::default()
    };
    let req = Req::new(vec![user("  Hello there")]);
    assert_eq!(
        req.check(greeting()),
        Ok(vec![
            r"last user message matches /(?i)^\s*(hi|hello|thanks)\b/".to_owned()
        ])
    );
    let req = Req::new(vec![
        user("hello"),
        Message::new(Role::Assistant, "hi!"),
        user("now explain monads"),
        Message::new(Role::Assistant, "thanks"),
    ]);
    assert_eq!(
        req.check(greeting()),
        Err(r"last user message does not match /(?i)^\s*(hi|hello|thanks)\b/".to_owned())
    );
    let req = Req::new(vec![Message::new(Role::System, "hello")]);
    let err = req.check(greeting()).unwrap_err();
    assert!(err.starts_with("no user message to search"), "{err}");
    // Unanchored patterns match anywhere.
    let req = Req::new(vec![user("call 555-0100 now")]);
    assert!(req.matches(Conditions {
        regex: Some(RuleRegex::new(r"\d{3}-\d{4}").unwrap()),
        ..Conditions::default()
    }));
}

#[test]
fn prompt_tokens_bounds_are_inclusive() {
    let when = |r| Conditions {
        prompt_tokens: Some(r),
        ..Conditions::default()
    };
    let mut req = Req::new(vec![user("x")]);
    for (tokens, want) in [(0, false), (1, true), (32, true), (33, false)] {
        req.prompt_tokens = Some(tokens);
        assert_eq!(
            req.matches(when(range(Some(1), Some(32)))),
            want,
            "{tokens}"
        );
    }
    req.prompt_tokens = Some(32);
    assert_eq!(
        req.check(when(range(None, Some(32)))),
        Ok(vec!["prompt tokens 32 in ..=32".to_owned()])
    );
    assert_eq!(
        req.check(when(range(Some(33), None))),
        Err("prompt tokens 32 not in 33..".to_owned())
    );
    req.prompt_tokens = Some(u32::MAX);
    assert!(req.matches(when(range(Some(5), None))));
}

#[test]
fn unknown_prompt_tokens_never_match() {
    let mut req = Req::new(vec![user("x")]);
    req.prompt_tokens = None;
    let when = |r| Conditions {
        prompt_tokens: Some(r),
        ..Conditions::default()
    };
    assert_eq!(
        req.check(when(range(None, Some(u32::MAX)))),
        Err("prompt tokens not counted (no tokenizer), wanted ..=4294967295".to_owned())
    );
    assert!(!req.matches(when(range(Some(0), None))));
    // Other rules are unaffected.
    assert!(req.matches(Conditions::default()));
}

#[test]
fn turns_count_user_messages_inclusively() {
    let when = Conditions {
        turns: Some(range(Some(1), Some(3))),
        ..Conditions::default()
    };
    let convo = |n: usize| {
        let mut messages = vec![Message::new(Role::System, "be brief")];
        for i in 0..n {
            messages.push(user(&format!("q{i}")));
            messages.push(Message::new(Role::Assistant, "a"));
        }
        Req::new(messages)
    };
    for (n, want) in [(0, false), (1, true), (3, true), (4, false)] {
        assert_eq!(convo(n).matches(when.clone()), want, "{n}");
    }
    assert_eq!(convo(4).check(when), Err("turns 4 not in 1..=3".to_owned()));
}

#[test]
fn code_true_needs_a_fence_and_false_needs_none() {
    let with = |code| Conditions {
        code: Some(code),
        ..Conditions::default()
    };
    let fenced = Req::new(vec![user("look:\n```rust\nfn main() {}\n```")]);
    let tilde = Req::new(vec![user("x"), user("  ~~~\nindented tilde fence\n  ~~~")]);
    let plain = Req::new(vec![
        user("inline `code` and ``two`` is not a fence; nor is x```"),
        Message::new(Role::Assistant, "```\nassistant code does not count\n```"),
        Message::new(Role::System, "```"),
    ]);
    assert_eq!(
        fenced.check(with(true)),
        Ok(vec!["a user message has a code fence".to_owned()])
    );
    assert!(tilde.matches(with(true)));
    assert!(!plain.matches(with(true)));
    assert_eq!(
        plain.check(with(false)),
        Ok(vec!["no user message has a code fence".to_owned()])
    );
    assert_eq!(
        fenced.check(with(false)),
        Err("a user message has a code fence".to_owned())
    );
}

#[test]
fn pii_any_and_kinds() {
    let any = || Conditions {
        pii: Some(PiiMatch::Any),
        ..Conditions::default()
    };
    let kinds = |k: &[PiiKind]| Conditions {
        pii: Some(PiiMatch::Kinds(k.iter().copied().collect())),
        ..Conditions::default()
    };
    let secrets = [PiiKind::PrivateKey, PiiKind::ApiKey];
    let email = Req::new(vec![user("write to bob@example.com"), user("thanks")]);
    assert_eq!(
        email.check(any()),
        Ok(vec!["user messages contain email".to_owned()])
    );
    assert_eq!(
        email.check(kinds(&secrets)),
        Err("personal data in user messages is email, not api_key, private_key".to_owned())
    );
    let key = Req::new(vec![user("my key is sk-abc, mail a@b.c")]);
    assert_eq!(
        key.check(kinds(&secrets)),
        Ok(vec!["user messages contain api_key".to_owned()])
    );
    let clean = Req::new(vec![
        user("nothing here"),
        Message::new(Role::Assistant, "sk-in-assistant@text"),
        Message::new(Role::System, "BEGIN PRIVATE KEY"),
    ]);
    assert_eq!(
        clean.check(any()),
        Err("no personal data in user messages (wanted any)".to_owned())
    );
}

/// Counts calls of the fake detector.
fn counting<'c>(calls: &'c Cell<usize>) -> impl Fn(&str) -> BTreeSet<PiiKind> + 'c {
    move |text| {
        calls.set(calls.get() + 1);
        fake_pii(text)
    }
}

#[test]
fn pii_is_scanned_only_when_a_pii_condition_is_reached_and_then_once() {
    let req = Req::new(vec![user("a@b.c"), user("sk-1")]);
    let no_pii = [
        rule(
            "a",
            Conditions {
                code: Some(true),
                ..Conditions::default()
            },
        ),
        rule("b", Conditions::default()),
    ];
    let calls = Cell::new(0);
    let detect = counting(&calls);
    assert_eq!(
        first_match_with(&no_pii, &req.input(), &detect)
            .unwrap()
            .index,
        1
    );
    explain_with(&no_pii, &req.input(), &detect);
    assert_eq!(calls.get(), 0);

    let pii = |name: &str, m: PiiMatch| {
        rule(
            name,
            Conditions {
                pii: Some(m),
                ..Conditions::default()
            },
        )
    };
    let rules = [
        pii("cards", PiiMatch::Kinds([PiiKind::Card].into())),
        pii("keys", PiiMatch::Kinds([PiiKind::ApiKey].into())),
        pii("any", PiiMatch::Any),
    ];
    let found = first_match_with(&rules, &req.input(), &detect).unwrap();
    assert_eq!(found.rule.name, "keys");
    // One call per user message, shared by both pii rules checked.
    assert_eq!(calls.get(), 2);

    // A rule that matches before any pii rule spares the scan; so does a failing condition
    // checked before pii in the same rule.
    calls.set(0);
    let mut early = vec![
        rule(
            "wrong-tenant",
            Conditions {
                tenants: vec!["initech".into()],
                pii: Some(PiiMatch::Any),
                ..Conditions::default()
            },
        ),
        rule("all", Conditions::default()),
    ];
    early.extend(rules);
    assert_eq!(
        first_match_with(&early, &req.input(), &detect)
            .unwrap()
            .index,
        1
    );
    assert_eq!(calls.get(), 0);
}

#[test]
fn first_rule_whose_conditions_all_hold_wins() {
    let mut req = Req::new(vec![user("hello"), user("```\nx\n```")]);
    req.tags.insert("env".into(), "prod".into());
    let rules = vec![
        // Every condition but one holds: no match.
        rule(
            "almost",
            Conditions {
                tenants: vec!["acme".into()],
                code: Some(true),
                turns: Some(range(Some(3), None)),
                ..Conditions::default()
            },
        ),
        rule(
            "prod-code",
            Conditions {
                tags: vec![("env".into(), TagPattern::new("prod"))],
                code: Some(true),
                ..Conditions::default()
            },
        ),
        rule("everything", Conditions::default()),
    ];
    let found = first_match_with(&rules, &req.input(), &fake_pii).unwrap();
    assert_eq!((found.index, found.rule.name.as_str()), (1, "prod-code"));
    assert_eq!(
        found.reasons,
        vec![
            "tag env=\"prod\" matches \"prod\"".to_owned(),
            "a user message has a code fence".to_owned(),
        ]
    );
    assert!(std::ptr::eq(found.rule, &rules[1]));
    // The public entry point agrees (no pii condition, so the detector is not involved).
    assert_eq!(first_match(&rules, &req.input()), Some(found));

    assert_eq!(first_match(&rules[..1], &req.input()), None);
    assert_eq!(first_match(&[], &req.input()), None);
}

#[test]
fn a_rule_without_conditions_matches_anything() {
    let req = Req::new(vec![]);
    let rules = [rule("all", Conditions::default())];
    let found = first_match(&rules, &req.input()).unwrap();
    assert_eq!(found.index, 0);
    assert_eq!(found.reasons, vec!["no conditions".to_owned()]);
}

#[test]
fn explain_reports_every_rule() {
    let req = Req::new(vec![user("hi")]);
    let rules = [
        rule(
            "tenant",
            Conditions {
                tenants: vec!["initech".into()],
                ..Conditions::default()
            },
        ),
        rule("all", Conditions::default()),
        rule(
            "short",
            Conditions {
                prompt_tokens: Some(range(None, Some(32))),
                turns: Some(range(Some(1), Some(1))),
                ..Conditions::default()
            },
        ),
    ];
    let explained = explain(&rules, &req.input());
    assert_eq!(
        explained,
        vec![
            (
                "tenant".to_owned(),
                Err("tenant \"acme\" is not one of initech".to_owned())
            ),
            ("all".to_owned(), Ok(vec!["no conditions".to_owned()])),
            (
                "short".to_owned(),
                Ok(vec![
                    "turns 1 in 1..=1".to_owned(),
                    "prompt tokens 10 in ..=32".to_owned()
                ])
            ),
        ]
    );
}
