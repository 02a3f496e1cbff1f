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

/// One replica of a two-replica deployment sharing `redis`, with a daily cap of 0.0001 USD
/// (each escalation costs 0.000026: the cap allows 3, and the 4th starts at 0.000078 < cap).
async fn shared_budget_replica(mock: &MockUpstream, redis_url: &str) -> Harness {
    let yaml = policy_yaml("default", &[("large", &mock.base_url())], "local")
        + "budget:\n  daily_usd: 0.0001\n  on_exhausted: local\n";
    Harness::start_with(
        ServeConfig {
            redis_url: Some(redis_url.to_owned()),
            ..ServeConfig::default()
        },
        &[("default.yaml", yaml)],
        loader_of(FakeLocal::new("draft answer", UNSURE)),
    )
    .await
}

/// `max_tokens: 20` makes the reservation (prompt at 4 chars a token, 20 answer tokens at
/// 2 USD/Mtok: 0.000043) cover what the mock charges (0.000026).
fn capped_ask(prompt: &str) -> pb::ChatRequest {
    pb::ChatRequest {
        params: Some(pb::GenerationParams {
            max_tokens: Some(20),
            ..Default::default()
        }),
        ..ask(prompt, pb::RouteHint::Auto, "")
    }
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

#[tokio::test]
async fn two_replicas_enforce_one_cap_through_redis_and_keep_answering_without_it() {
    let Some(mut redis) = sluice_test_support::RedisServer::start(&[]) else {
        return; // said why
    };
    // Slow enough that the escalations of both replicas overlap.
    let mock = MockUpstream::start(MockConfig {
        behavior: MockBehavior::Latency(Duration::from_millis(300)),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let a = shared_budget_replica(&mock, &redis.url()).await;
    let b = shared_budget_replica(&mock, &redis.url()).await;
    let (ra, rb) = (a.router().await, b.router().await);
    let calls = (0..16).map(|i| {
        let mut client = if i % 2 == 0 { ra.clone() } else { rb.clone() };
        async move {
            client
                .chat(capped_ask(&format!("hard question {i}")))
                .await
                .unwrap()
                .into_inner()
        }
    });
    let answers = futures::future::join_all(calls).await;
    let remote: Vec<_> = answers
        .iter()
        .filter(|r| r.route.as_ref().unwrap().kind() == pb::RouteKind::Remote)
        .collect();
    let charged: f64 = remote.iter().map(|r| r.usage.unwrap().cost_usd).sum();
    // Within the cap plus one request's reservation: at most 5 escalations of 0.000026
    // (each replica alone would have let through 4, 8 together: 0.000208).
    let (cap, one_reservation) = (0.0001, 0.000043);
    assert!(
        charged <= cap + one_reservation + 1e-12,
        "charged {charged} over {} escalations",
        remote.len()
    );
    assert!(remote.len() >= 3, "only {} escalated", remote.len());
    assert_eq!(mock.requests().len(), remote.len());
    assert!(
        answers.iter().all(
            |r| r.route.as_ref().unwrap().kind() == pb::RouteKind::Remote
                || r.decision.as_ref().unwrap().reason == "budget"
        ),
        "every other request was answered locally for the budget"
    );
    for h in [&a, &b] {
        let (_, text) = h.http_get("/metrics").await;
        assert_eq!(
            metric(&text, "sluice_budget_ledger_degraded"),
            Some(0.0),
            "{text}"
        );
    }

    // Redis dies: both replicas keep answering (enforcing the cap from the totals Redis last
    // gave them plus their own spend) and say the ledger is degraded.
    redis.kill();
    for h in [&a, &b] {
        for i in 0..2 {
            let r = h.chat(capped_ask(&format!("after redis died {i}"))).await;
            let reason = r.decision.unwrap().reason;
            assert!(
                ["budget", "low_confidence"].contains(&reason.as_str()),
                "{reason}"
            );
        }
        let (_, text) = h.http_get("/metrics").await;
        assert_eq!(
            metric(&text, "sluice_budget_ledger_degraded"),
            Some(1.0),
            "{text}"
        );
        assert!(metric(&text, "sluice_budget_ledger_errors_total").unwrap() >= 1.0);
    }
}
