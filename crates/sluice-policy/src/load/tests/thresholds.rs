//! Tests of `scoring.tenant_thresholds`.

use super::rules::{assert_invalid, example_with, EXAMPLE};
use super::*;

#[test]
fn tenant_thresholds_are_checked() {
    let cases = [
        (
            "acme: 0.7, initech",
            "acme: 1.2, initech",
            "scoring.tenant_thresholds.acme",
            "expected a number in 0..=1, found 1.2",
        ),
        (
            "initech: 0.4 }",
            "initech: -0.1 }",
            "scoring.tenant_thresholds.initech",
            "expected a number in 0..=1, found -0.1",
        ),
        (
            "initech: 0.4 }",
            "initech: .nan }",
            "scoring.tenant_thresholds.initech",
            "expected a number in 0..=1, found NaN",
        ),
        (
            "initech: 0.4 }",
            "Initech: 0.4 }",
            "scoring.tenant_thresholds.Initech",
            "expected a name of lowercase letters, digits, `_` and `-` \
             ([a-z0-9][a-z0-9_-]*), found \"Initech\"",
        ),
        (
            "initech: 0.4 }",
            "acme: 0.4 }",
            "scoring.tenant_thresholds.acme",
            "expected each tenant once, found \"acme\" again",
        ),
        (
            "initech: 0.4 }",
            "initech: high }",
            "scoring.tenant_thresholds.initech",
            "invalid type: string \"high\", expected a number",
        ),
    ];
    for (from, to, key, message) in cases {
        let src = example_with(from, to);
        assert_invalid(&src, key, "tenant_thresholds:", message);
    }
}

#[test]
fn threshold_for_uses_the_override_or_the_policy_threshold() {
    let scoring = parse(EXAMPLE).unwrap().scoring;
    assert_eq!(scoring.threshold_for("acme"), 0.7);
    assert_eq!(scoring.threshold_for("initech"), 0.4);
    assert_eq!(scoring.threshold_for("globex"), 0.5);
    assert_eq!(scoring.threshold_for(""), 0.5);
    // 0 and 1 are valid overrides.
    let src = example_with("{ acme: 0.7, initech: 0.4 }", "{ acme: 0, initech: 1 }");
    let scoring = parse(&src).unwrap().scoring;
    assert_eq!(
        (
            scoring.threshold_for("acme"),
            scoring.threshold_for("initech")
        ),
        (0.0, 1.0)
    );
}
