//! Budgets through the real gRPC path: a tenant's escalations stop at its cap, with
//! RESOURCE_EXHAUSTED or a local answer as the policy says, and the spend survives reloads.

use super::*;

/// Each escalation costs (12 × 1 + 7 × 2) / 1e6 = 0.000026 USD (the mock's usage at the
/// tier's prices); a daily cap of 0.00002 allows exactly one.
fn budget_policy(url: &str, on_exhausted: &str) -> String {
    policy_yaml("default", &[("large", url)], "local")
        + &format!("budget:\n  daily_usd: 0.00002\n  on_exhausted: {on_exhausted}\n")
}

#[tokio::test]
async fn reject_when_the_daily_cap_is_reached_and_keep_the_spend_across_reloads() {
    let mock = MockUpstream::start(MockConfig::default()).await.unwrap();
    let h = Harness::single(
        budget_policy(&mock.base_url(), "reject"),
        FakeLocal::new("draft", UNSURE),
    )
    .await;
    let first = h.chat(ask("hard one", pb::RouteHint::Auto, "")).await;
    assert_eq!(first.route.unwrap().kind(), pb::RouteKind::Remote);
    assert!((first.usage.unwrap().cost_usd - 0.000026).abs() < 1e-12);

    let err = h
        .router()
        .await
        .chat(ask("hard two", pb::RouteHint::Auto, ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(
        err.message()
            .contains("tenant default reached its daily escalation budget of $0.00002"),
        "{}",
        err.message()
    );
    assert_eq!(
        mock.requests().len(),
        1,
        "the refused request never reached the tier"
    );

    // A reload (here: a new threshold) does not reset what was spent.
    std::fs::write(
        h.dir.join("default.yaml"),
        budget_policy(&mock.base_url(), "reject").replace("threshold: 0.5", "threshold: 0.6"),
    )
    .unwrap();
    pb::admin_client::AdminClient::new(h.channel().await)
        .reload_policy(pb::ReloadPolicyRequest {})
        .await
        .unwrap();
    let err = h
        .router()
        .await
        .chat(ask("hard three", pb::RouteHint::Auto, ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    let (_, metrics) = h.http_get("/metrics").await;
    assert!(
        metrics.contains(
            "sluice_budget_exhausted_total{policy=\"default\",cap=\"daily\",action=\"reject\"} 2"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn answer_locally_when_the_policy_says_so() {
    let mock = MockUpstream::start(MockConfig::default()).await.unwrap();
    let h = Harness::single(
        budget_policy(&mock.base_url(), "local"),
        FakeLocal::new("draft answer", UNSURE),
    )
    .await;
    let first = h.chat(ask("hard one", pb::RouteHint::Auto, "")).await;
    assert_eq!(first.route.unwrap().kind(), pb::RouteKind::Remote);
    let second = h.chat(ask("hard two", pb::RouteHint::Auto, "")).await;
    let route = second.route.unwrap();
    assert_eq!(
        (route.kind(), route.fallback),
        (pb::RouteKind::Local, false)
    );
    assert_eq!(second.decision.unwrap().reason, "budget");
    assert_eq!(second.message.unwrap().content, "draft answer");
    assert_eq!(second.usage.unwrap().cost_usd, 0.0);
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test]
async fn a_stream_whose_caller_hangs_up_is_still_charged() {
    let mock = MockUpstream::start(MockConfig {
        behavior: MockBehavior::SlowStream(Duration::from_millis(200)),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    // 1e-6 USD a day: the 100-token prompt alone (1e-4 USD at 1 USD per Mtok) spends it.
    let yaml = policy_yaml("default", &[("large", &mock.base_url())], "local")
        + "budget:\n  daily_usd: 0.000001\n  on_exhausted: reject\n";
    let h = Harness::single(yaml, FakeLocal::new("draft", UNSURE)).await;
    let prompt = "word ".repeat(80);
    let mut stream = h
        .router()
        .await
        .chat_stream(ask(&prompt, pb::RouteHint::Remote, ""))
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert!(!first.delta.is_empty(), "{first:?}");
    drop(stream);
    // The gateway sees the hang-up at its next chunk, then charges the tenant.
    let cost = |metrics: &str| -> Option<f64> {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("sluice_cost_usd_total{tier=\"large\"} "))
            .map(|v| v.parse().unwrap())
    };
    let mut charged = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        charged = cost(&h.http_get("/metrics").await.1);
        if charged.is_some() {
            break;
        }
    }
    // 80 words of prompt: 400 chars, 100 tokens at 1 USD per Mtok, plus the answer so far.
    let charged = charged.expect("the hung-up stream was never charged");
    assert!((1e-4..2e-4).contains(&charged), "{charged}");
    let err = h
        .router()
        .await
        .chat(ask("again", pb::RouteHint::Remote, ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(err.message().contains("daily escalation budget"), "{err:?}");
    assert_eq!(mock.requests().len(), 1, "only the stream reached the tier");
}
