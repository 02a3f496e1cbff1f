//! Escalation through the real gRPC path: the tier chain, fallbacks, the caller's deadline,
//! circuit breaking.

use super::*;

#[tokio::test]
async fn failing_tier_falls_through_to_the_next() {
    let broken = MockUpstream::start(MockConfig {
        behavior: MockBehavior::Status(500),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let good = MockUpstream::start(MockConfig {
        model: "second".into(),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let h = Harness::single(
        policy_yaml(
            "default",
            &[("first", &broken.base_url()), ("second", &good.base_url())],
            "error",
        ),
        FakeLocal::new("x", UNSURE),
    )
    .await;
    let resp = h.chat(ask("hard", pb::RouteHint::Remote, "")).await;
    assert_eq!(resp.route.unwrap().tier, "second");
    assert_eq!(broken.requests().len(), 1);
    let (_, text) = h.http_get("/metrics").await;
    assert!(
        text.contains(r#"sluice_upstream_requests_total{tier="first",status="status_5xx"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn upstream_down_falls_back_to_the_draft_or_fails_as_told() {
    let dead = unused_local_addr();
    let local = FakeLocal::new("my best guess", UNSURE);
    let h = Harness::start(
        &[
            (
                "default.yaml",
                policy_yaml("default", &[("gone", &dead)], "local"),
            ),
            (
                "strict.yaml",
                policy_yaml("strict", &[("gone", &dead)], "error"),
            ),
        ],
        loader_of(local.clone()),
    )
    .await;
    let mut router = h.router().await;
    let resp = router
        .chat(ask("hard", pb::RouteHint::Auto, ""))
        .await
        .unwrap()
        .into_inner();
    let route = resp.route.unwrap();
    assert_eq!(route.kind(), pb::RouteKind::Local);
    assert!(route.fallback);
    assert_eq!(resp.message.unwrap().content, "my best guess");
    assert_eq!(local.calls(), 1, "the fallback must reuse the draft");

    let err = router
        .chat(ask("hard", pb::RouteHint::Auto, "strict"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains("gone"), "{}", err.message());

    // streams fall back the same way
    let mut s = router
        .chat_stream(ask("hard", pb::RouteHint::Remote, ""))
        .await
        .unwrap()
        .into_inner();
    let mut last = None;
    while let Some(c) = s.message().await.unwrap() {
        last = Some(c);
    }
    assert!(last.unwrap().route.unwrap().fallback);
    let err = router
        .chat_stream(ask("hard", pb::RouteHint::Remote, "strict"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
}

#[tokio::test]
async fn the_callers_deadline_bounds_escalation() {
    let mock = MockUpstream::start(MockConfig {
        behavior: MockBehavior::Delay(Duration::from_secs(3)),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let h = Harness::start(
        &[
            (
                "default.yaml",
                policy_yaml("default", &[("slow", &mock.base_url())], "local"),
            ),
            (
                "strict.yaml",
                policy_yaml("strict", &[("slow", &mock.base_url())], "error"),
            ),
        ],
        loader_of(FakeLocal::new("draft answer", UNSURE)),
    )
    .await;
    let mut router = h.router().await;
    let timed = |policy: &str| {
        let mut r = tonic::Request::new(ask("hard", pb::RouteHint::Auto, policy));
        r.set_timeout(Duration::from_millis(500));
        r
    };
    let started = std::time::Instant::now();
    let resp = router.chat(timed("")).await.unwrap().into_inner();
    assert!(started.elapsed() < Duration::from_millis(500));
    let route = resp.route.unwrap();
    assert!(
        route.fallback,
        "the draft answers when the deadline cuts the tier short"
    );
    assert_eq!(resp.message.unwrap().content, "draft answer");

    let err = router.chat(timed("strict")).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    assert!(err.message().contains("slow"), "{}", err.message());
}

#[tokio::test]
async fn a_failing_tier_trips_its_breaker_and_is_skipped() {
    let broken = MockUpstream::start(MockConfig {
        behavior: MockBehavior::Status(500),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let good = MockUpstream::start(MockConfig::default()).await.unwrap();
    let yaml = policy_yaml(
        "default",
        &[("flaky", &broken.base_url()), ("backup", &good.base_url())],
        "error",
    )
    .replace(
        "timeout: 5s }",
        "timeout: 5s, circuit_breaker: { consecutive_failures: 3, open_for: 1m } }",
    );
    let h = Harness::single(yaml, FakeLocal::new("x", UNSURE)).await;
    for _ in 0..10 {
        let resp = h.chat(ask("hard", pb::RouteHint::Remote, "")).await;
        assert_eq!(resp.route.unwrap().tier, "backup");
    }
    // three failures open the breaker; the other seven calls never reach the broken tier
    assert_eq!(broken.requests().len(), 3);
    assert_eq!(good.requests().len(), 10);
    let (_, text) = h.http_get("/metrics").await;
    assert!(
        text.contains(r#"sluice_upstream_requests_total{tier="flaky",status="rejected"} 7"#),
        "{text}"
    );
}
