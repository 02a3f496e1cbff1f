//! Tests of `budget:`.

use std::collections::BTreeMap;

use super::rules::{example_with, line_with, EXAMPLE};
use super::{invalid, parse, MINIMAL};
use crate::model::*;

/// `MINIMAL` followed by a `budget:` section with these lines (given without indentation).
fn with_budget(lines: &[&str]) -> String {
    let body: String = lines.iter().map(|l| format!("  {l}\n")).collect();
    format!("{MINIMAL}budget:\n{body}")
}

fn budget(lines: &[&str]) -> Budget {
    parse(&with_budget(lines)).unwrap().budget.unwrap()
}

#[test]
fn caps_are_optional_but_one_is_needed() {
    assert_eq!(
        budget(&["daily_usd: 2"]),
        Budget {
            daily_usd: Some(2.0),
            monthly_usd: None,
            tenants: BTreeMap::new(),
            on_exhausted: OnBudgetExhausted::Local,
        }
    );
    let only_tenant = budget(&[
        "tenants: { acme: { monthly_usd: 7.5 } }",
        "on_exhausted: reject",
    ]);
    assert_eq!(
        (only_tenant.daily_usd, only_tenant.monthly_usd),
        (None, None)
    );
    assert_eq!(only_tenant.on_exhausted, OnBudgetExhausted::Reject);
    assert_eq!(
        only_tenant.tenants["acme"],
        BudgetCaps {
            daily_usd: None,
            monthly_usd: Some(7.5)
        }
    );

    let expected =
        "expected a cap (daily_usd, monthly_usd, or a tenant's under tenants), found none";
    for lines in [&["on_exhausted: reject"][..], &["tenants: {}"]] {
        let src = with_budget(lines);
        let (key_path, line, message) = invalid(&src);
        assert_eq!(key_path, "budget", "{lines:?}");
        assert_eq!(line, line_with(&src, "budget:"));
        assert_eq!(message, expected);
    }
    let src = format!("{MINIMAL}budget: {{}}\n");
    assert_eq!(invalid(&src).2, expected);
}

#[test]
fn caps_for_falls_back_to_policy_wide_caps() {
    let budget = parse(EXAMPLE).unwrap().budget.unwrap();
    let caps = |daily: Option<f64>, monthly: Option<f64>| BudgetCaps {
        daily_usd: daily,
        monthly_usd: monthly,
    };
    assert_eq!(budget.caps_for("acme"), caps(Some(50.0), Some(1000.0)));
    assert_eq!(budget.caps_for("globex"), caps(Some(5.0), Some(100.0)));

    // A tenant overriding one cap keeps the other from the policy.
    let partial = self::budget(&[
        "daily_usd: 5",
        "tenants:",
        "  acme: { monthly_usd: 20 }",
        "  initech: { daily_usd: 1 }",
    ]);
    assert_eq!(partial.caps_for("acme"), caps(Some(5.0), Some(20.0)));
    assert_eq!(partial.caps_for("initech"), caps(Some(1.0), None));
    assert_eq!(partial.caps_for("globex"), caps(Some(5.0), None));

    // Only tenant caps: the others are uncapped.
    let only = self::budget(&["tenants: { acme: { daily_usd: 3 } }"]);
    assert_eq!(only.caps_for("globex"), BudgetCaps::default());
    assert_eq!(only.caps_for("acme"), caps(Some(3.0), None));
}

#[test]
fn bad_budget_values_name_their_key_and_line() {
    let positive = "expected a finite number of USD greater than 0, found";
    let cases = [
        (
            "daily_usd: 5.0",
            "daily_usd: 0",
            "budget.daily_usd",
            format!("{positive} 0"),
        ),
        (
            "daily_usd: 5.0",
            "daily_usd: -1",
            "budget.daily_usd",
            format!("{positive} -1"),
        ),
        (
            "daily_usd: 5.0",
            "daily_usd: .inf",
            "budget.daily_usd",
            format!("{positive} inf"),
        ),
        (
            "daily_usd: 5.0",
            "daily_usd: .nan",
            "budget.daily_usd",
            format!("{positive} NaN"),
        ),
        (
            "monthly_usd: 100.0",
            "monthly_usd: -0.5",
            "budget.monthly_usd",
            format!("{positive} -0.5"),
        ),
        (
            "acme: { daily_usd: 50,",
            "acme: { daily_usd: 0,",
            "budget.tenants.acme.daily_usd",
            format!("{positive} 0"),
        ),
        (
            "acme: { daily_usd: 50, monthly_usd: 1000 }",
            "acme: {}",
            "budget.tenants.acme",
            "expected daily_usd and/or monthly_usd, found neither".to_owned(),
        ),
        (
            "acme: { daily_usd: 50, monthly_usd: 1000 }",
            "Acme: { daily_usd: 50 }",
            "budget.tenants.Acme",
            "expected a name of lowercase letters, digits, `_` and `-` \
             ([a-z0-9][a-z0-9_-]*), found \"Acme\""
                .to_owned(),
        ),
        (
            "on_exhausted: local",
            "on_exhausted: degrade",
            "budget.on_exhausted",
            "expected local or reject, found \"degrade\"".to_owned(),
        ),
        (
            "daily_usd: 5.0",
            "daily_usd: lots",
            "budget.daily_usd",
            "invalid type: string \"lots\", expected a number".to_owned(),
        ),
    ];
    for (from, to, key, message) in cases {
        let src = example_with(from, to);
        let (key_path, line, got) = invalid(&src);
        assert_eq!(key_path, key, "{to}: {got}");
        assert_eq!(line, line_with(&src, to), "{to}");
        assert_eq!(got, message, "{to}");
    }

    let src = example_with(
        "    acme: { daily_usd: 50, monthly_usd: 1000 }\n",
        "    acme: { daily_usd: 50 }\n    acme: { monthly_usd: 9 }\n",
    );
    let (key_path, _, message) = invalid(&src);
    assert_eq!(key_path, "budget.tenants.acme");
    assert_eq!(message, "expected each tenant once, found \"acme\" again");
}

#[test]
fn misspelled_budget_keys_are_errors() {
    let cases = [
        (
            "daily_usd: 5.0",
            "daily: 5.0",
            "budget.daily",
            "`daily_usd`",
        ),
        (
            "acme: { daily_usd: 50,",
            "acme: { day_usd: 50,",
            "budget.tenants.acme.day_usd",
            "`monthly_usd`",
        ),
        (
            "on_exhausted: local",
            "on_exhaust: local",
            "budget.on_exhaust",
            "`on_exhausted`",
        ),
    ];
    for (from, to, key, suggests) in cases {
        let (key_path, line, message) = invalid(&example_with(from, to));
        assert_eq!(key_path, key, "{message}");
        assert!(line.is_some(), "{key}");
        assert!(message.starts_with("unknown field"), "{message}");
        assert!(message.contains(suggests), "{message}");
    }
    let (key_path, _, message) = invalid(&example_with(
        "  tenants:\n    acme",
        "  tenants:\n    - acme",
    ));
    assert_eq!(key_path, "budget.tenants");
    assert!(message.contains("expected a mapping"), "{message}");
}
