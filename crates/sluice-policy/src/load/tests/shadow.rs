//! Tests of `shadow:` and `distill:`.

use super::{invalid, parse, MINIMAL};
use crate::model::*;

/// A tier for the second opinions.
const TIER: &str =
    "tiers:\n  - { name: large, provider: openai, base_url: \"http://127.0.0.1:1\", \
                    model: m, price: { input_per_mtok: 1, output_per_mtok: 2 }, timeout: 5s }\n";

/// `MINIMAL` with a tier, followed by a `shadow:` section with these lines (given without
/// indentation).
fn with_shadow(lines: &[&str]) -> String {
    let body: String = lines.iter().map(|l| format!("  {l}\n")).collect();
    format!("{MINIMAL}{TIER}shadow:\n{body}")
}

#[test]
fn a_rate_is_enough_and_the_rest_has_defaults() {
    let p = parse(&with_shadow(&["rate: 0.05"])).unwrap();
    assert_eq!(
        p.shadow,
        Some(Shadow {
            rate: 0.05,
            max_per_minute: 60,
            budget_usd_daily: 1.0,
            judge: false,
        })
    );
    let p = parse(&with_shadow(&[
        "rate: 1",
        "max_per_minute: 5",
        "budget_usd_daily: 0.25",
        "judge: true",
    ]))
    .unwrap();
    assert_eq!(
        p.shadow,
        Some(Shadow {
            rate: 1.0,
            max_per_minute: 5,
            budget_usd_daily: 0.25,
            judge: true,
        })
    );
    assert_eq!(parse(MINIMAL).unwrap().shadow, None);
}

#[test]
fn bad_values_are_named_with_what_was_expected() {
    let cases: [(&[&str], &str, &str); 5] = [
        (
            &["rate: 0"],
            "shadow.rate",
            "greater than 0 and at most 1, found 0",
        ),
        (&["rate: 1.5"], "shadow.rate", "found 1.5"),
        (
            &["rate: 0.1", "max_per_minute: 0"],
            "shadow.max_per_minute",
            "expected an integer in 1..=",
        ),
        (
            &["rate: 0.1", "budget_usd_daily: -1"],
            "shadow.budget_usd_daily",
            "greater than 0, found -1",
        ),
        (&["max_per_minute: 3"], "shadow", "missing field `rate`"),
    ];
    for (lines, path, message) in cases {
        let (key_path, _, got) = invalid(&with_shadow(lines));
        assert_eq!(key_path, path, "{lines:?}: {got}");
        assert!(got.contains(message), "{lines:?}: {got}");
    }
}

#[test]
fn a_policy_without_tiers_cannot_shadow() {
    let (key_path, _, message) = invalid(&format!("{MINIMAL}shadow: {{ rate: 0.1 }}\n"));
    assert_eq!(key_path, "shadow");
    assert!(message.contains("found no tiers"), "{message}");
}

#[test]
fn distill_names_the_tenants_that_opted_in() {
    let p = parse(&format!("{MINIMAL}distill: {{ tenants: [acme, \"*\"] }}\n")).unwrap();
    let d = p.distill.unwrap();
    assert!(d.covers("acme") && d.covers("anyone"), "{d:?}");
    let p = parse(&format!("{MINIMAL}distill: {{ tenants: [acme] }}\n")).unwrap();
    let d = p.distill.unwrap();
    assert!(d.covers("acme") && !d.covers("globex"), "{d:?}");
    assert_eq!(parse(MINIMAL).unwrap().distill, None);
    for (body, at, says) in [
        ("{ tenants: [] }", "distill.tenants", "at least one tenant"),
        ("{ tenants: [a, \"\"] }", "distill.tenants[1]", "empty"),
        ("{ tenants: [a, a] }", "distill.tenants[1]", "named twice"),
    ] {
        let (key_path, _, message) = invalid(&format!("{MINIMAL}distill: {body}\n"));
        assert_eq!(key_path, at, "{body}");
        assert!(message.contains(says), "{body}: {message}");
    }
}
