//! Policy rules through the real gRPC path: first match wins before scoring, whatever the
//! caller's hint; `local`, `tier`, `reject` and `score` actions; per-tenant thresholds; the
//! matched rule in `Score` and in the metrics.

use super::*;

/// Two tiers, the rules given, and a per-tenant threshold for the unauthenticated tenant.
fn ruled_policy(mock_a: &str, mock_b: &str, rules: &str) -> String {
    policy_yaml("default", &[("large", mock_a), ("huge", mock_b)], "local") + "rules:\n" + rules
}

const RULES: &str = "  - name: secrets\n    when: { pii: [private_key, api_key] }\n    \
                     action: { reject: \"remove secrets first\" }\n  \
                     - name: privacy\n    when: { pii: any }\n    action: local\n  \
                     - name: code\n    when: { code: true }\n    action: { tier: huge }\n  \
                     - name: greetings\n    when: { regex: \"(?i)^hello\" }\n    action: score\n";

async fn harness() -> (Harness, MockUpstream, MockUpstream, FakeLocal) {
    let a = MockUpstream::start(MockConfig::default()).await.unwrap();
    let b = MockUpstream::start(MockConfig {
        model: "mock-huge".into(),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let local = FakeLocal::new("a local answer", SURE);
    let h = Harness::single(
        ruled_policy(&a.base_url(), &b.base_url(), RULES),
        local.clone(),
    )
    .await;
    (h, a, b, local)
}

#[tokio::test]
async fn privacy_rule_keeps_pii_local_even_when_the_caller_asks_for_the_tiers() {
    let (h, a, b, _) = harness().await;
    let resp = h
        .chat(ask(
            "Mail jane.doe@example.com the report",
            pb::RouteHint::Remote,
            "",
        ))
        .await;
    let route = resp.route.unwrap();
    assert_eq!(route.kind(), pb::RouteKind::Local);
    let d = resp.decision.unwrap();
    assert_eq!((d.reason.as_str(), d.rule.as_str()), ("rule", "privacy"));
    assert!(a.requests().is_empty() && b.requests().is_empty());
    let (_, metrics) = h.http_get("/metrics").await;
    assert!(
        metrics.contains("sluice_rule_matches_total{policy=\"default\",rule=\"privacy\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn reject_rule_fails_with_permission_denied_naming_the_rule() {
    let (h, a, b, local) = harness().await;
    let err = h
        .router()
        .await
        .chat(ask(
            "why is this key rejected?\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n",
            pb::RouteHint::Auto,
            "",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(
        err.message().contains("rule \"secrets\"") && err.message().contains("remove secrets"),
        "{}",
        err.message()
    );
    assert_eq!(
        local.calls(),
        0,
        "a rejected request never reaches the model"
    );
    assert!(a.requests().is_empty() && b.requests().is_empty());
}

#[tokio::test]
async fn tier_rule_sends_to_that_tier_only_and_score_reports_the_rule() {
    let (h, a, b, local) = harness().await;
    let code = "Why does this fail?\n```rust\nfn main() { let x: u8 = 300; }\n```";
    let resp = h.chat(ask(code, pb::RouteHint::Auto, "")).await;
    let route = resp.route.unwrap();
    assert_eq!(
        (route.kind(), route.tier.as_str()),
        (pb::RouteKind::Remote, "huge")
    );
    assert_eq!(resp.decision.unwrap().rule, "code");
    assert_eq!((a.requests().len(), b.requests().len()), (0, 1));
    assert_eq!(local.calls(), 0, "no scoring when a rule decides");

    // Score: the rule and where it would go, calling nothing.
    let score = h
        .router()
        .await
        .score(pb::ScoreRequest {
            messages: ask(code, pb::RouteHint::Auto, "").messages,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let d = score.decision.unwrap();
    assert_eq!((d.rule.as_str(), d.reason.as_str()), ("code", "rule"));
    assert_eq!(score.route.unwrap().tier, "huge");
    assert_eq!(b.requests().len(), 1);

    // A `score` rule is reported, and the request is scored as usual.
    let resp = h
        .chat(ask("Hello there, how are you?", pb::RouteHint::Auto, ""))
        .await;
    let d = resp.decision.unwrap();
    assert_eq!(
        (d.rule.as_str(), d.reason.as_str()),
        ("greetings", "confident")
    );
    // No rule matched: scored, no rule named.
    let resp = h
        .chat(ask("Capital of France?", pb::RouteHint::Auto, ""))
        .await;
    assert_eq!(resp.decision.unwrap().rule, "");
}

#[tokio::test]
async fn tenant_threshold_overrides_the_policy_threshold() {
    let mock = MockUpstream::start(MockConfig::default()).await.unwrap();
    // SURE drafts score about 0.95: kept at 0.5, escalated at the tenant's 0.99.
    let yaml = policy_yaml("default", &[("large", &mock.base_url())], "local").replace(
        "  threshold: 0.5\n",
        "  threshold: 0.5\n  tenant_thresholds: { default: 0.99 }\n",
    );
    let h = Harness::single(yaml, FakeLocal::new("a local answer", SURE)).await;
    let resp = h
        .chat(ask("Capital of France?", pb::RouteHint::Auto, ""))
        .await;
    let d = resp.decision.unwrap();
    assert_eq!(d.threshold, 0.99);
    assert_eq!(resp.route.unwrap().kind(), pb::RouteKind::Remote);
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test]
async fn a_cached_answer_is_not_served_across_tags_a_rule_tells_apart() {
    let mock = MockUpstream::start(MockConfig::default()).await.unwrap();
    let yaml = policy_yaml("default", &[("large", &mock.base_url())], "local")
        + "rules:\n  - name: ml\n    when: { tags: { team: \"ml-*\" } }\n    action: local\n\
           cache: { mode: always }\n";
    let h = Harness::single(yaml, FakeLocal::new("a local answer", UNSURE)).await;
    let tagged = |team: Option<&str>| {
        let mut r = ask("Summarise the meeting", pb::RouteHint::Auto, "");
        if let Some(t) = team {
            r.tags.insert("team".into(), t.into());
        }
        r
    };
    let first = h.chat(tagged(Some("ml-infra"))).await;
    assert_eq!(first.route.unwrap().kind(), pb::RouteKind::Local);
    // Same messages, no tag: the rule does not match, the unsure draft escalates.
    let second = h.chat(tagged(None)).await;
    assert_eq!(second.route.unwrap().kind(), pb::RouteKind::Remote);
    // The tagged request again: a cache hit of its own.
    let third = h.chat(tagged(Some("ml-infra"))).await;
    assert_eq!(third.route.unwrap().kind(), pb::RouteKind::Cache);
    assert_eq!(mock.requests().len(), 1);
}
