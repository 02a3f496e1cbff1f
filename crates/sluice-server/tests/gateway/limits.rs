//! Request limits, prompts longer than the local model's context, and admission to a full
//! local model, through the real gRPC path.

use super::*;

/// The fake counts one token per word and four per message: a context of 100 tokens less
/// `max_tokens: 64` takes prompts of at most 36.
fn short_context(answer: &str) -> FakeLocal {
    FakeLocal::new(answer, SURE).with_context(100)
}

fn long_prompt() -> String {
    "word ".repeat(200)
}

async fn harness(local: FakeLocal, extra: &str) -> (Harness, MockUpstream) {
    let mock = MockUpstream::start(MockConfig::default()).await.unwrap();
    let yaml = policy_yaml("default", &[("large", &mock.base_url())], "local") + extra;
    (Harness::single(yaml, local).await, mock)
}

#[tokio::test]
async fn a_prompt_too_long_for_the_local_model_escalates_on_auto() {
    let (h, mock) = harness(short_context("a local answer"), "").await;
    let resp = h.chat(ask(&long_prompt(), pb::RouteHint::Auto, "")).await;
    assert_eq!(resp.route.unwrap().kind(), pb::RouteKind::Remote);
    let d = resp.decision.unwrap();
    assert_eq!(d.reason, "too_long");
    assert_eq!(mock.requests().len(), 1);
    // Streamed and dry-run alike.
    let mut stream = h
        .router()
        .await
        .chat_stream(ask(&long_prompt(), pb::RouteHint::Auto, ""))
        .await
        .unwrap()
        .into_inner();
    let mut last = None;
    while let Some(chunk) = stream.message().await.unwrap() {
        last = Some(chunk);
    }
    assert_eq!(last.unwrap().decision.unwrap().reason, "too_long");
    let score = h
        .router()
        .await
        .score(pb::ScoreRequest {
            messages: ask(&long_prompt(), pb::RouteHint::Auto, "").messages,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(score.decision.unwrap().reason, "too_long");
    // A short prompt still stays local.
    let short = h.chat(ask("hi there", pb::RouteHint::Auto, "")).await;
    assert_eq!(short.route.unwrap().kind(), pb::RouteKind::Local);
}

#[tokio::test]
async fn a_prompt_too_long_that_must_stay_local_is_a_clear_invalid_argument() {
    let (h, mock) = harness(short_context("a local answer"), "").await;
    let mut router = h.router().await;
    let expected = "messages: the prompt is 204 tokens; the local model takes at most 36 \
                    (its context of 100 tokens less max_tokens 64); send it to a tier \
                    (ROUTE_HINT_AUTO or _REMOTE) or shorten it";
    let err = router
        .chat(ask(&long_prompt(), pb::RouteHint::Local, ""))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (Code::InvalidArgument, expected)
    );
    let err = router
        .chat_stream(ask(&long_prompt(), pb::RouteHint::Local, ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    // A smaller max_tokens leaves room for a longer prompt.
    let mut fits = ask(&"word ".repeat(40), pb::RouteHint::Local, "");
    fits.params = Some(pb::GenerationParams {
        max_tokens: Some(8),
        ..Default::default()
    });
    let resp = router.chat(fits).await.unwrap().into_inner();
    assert_eq!(resp.route.unwrap().kind(), pb::RouteKind::Local);
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn when_the_tiers_fail_a_prompt_too_long_gets_their_error_not_a_local_crash() {
    let (h, mock) = harness(short_context("a local answer"), "").await;
    mock.set_behavior(MockBehavior::Status(500));
    let err = h
        .router()
        .await
        .chat(ask(&long_prompt(), pb::RouteHint::Auto, ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    let err = h
        .router()
        .await
        .chat_stream(ask(&long_prompt(), pb::RouteHint::Remote, ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
}

#[tokio::test]
async fn a_rule_still_routes_by_length() {
    let rule = "rules:\n  - name: long\n    when: { prompt_tokens: { min: 30 } }\n    \
                action: local\n";
    let (h, _mock) = harness(short_context("a local answer"), rule).await;
    // The rule says local, and the prompt does not fit: a clear error, not a crash.
    let err = h
        .router()
        .await
        .chat(ask(&long_prompt(), pb::RouteHint::Auto, ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let resp = h
        .chat(ask(&"word ".repeat(28), pb::RouteHint::Remote, ""))
        .await;
    let d = resp.decision.unwrap();
    assert_eq!((d.reason.as_str(), d.rule.as_str()), ("rule", "long"));
}

#[tokio::test]
async fn requests_over_the_limits_are_invalid_arguments_naming_the_limit() {
    let (h, mock) = harness(FakeLocal::new("a", SURE), "").await;
    let mut many = ask("hi", pb::RouteHint::Auto, "");
    many.messages = vec![many.messages[0].clone(); 10_001];
    let err = h.router().await.chat(many).await.unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (
            Code::InvalidArgument,
            "messages: expected at most 10000 messages, found 10001"
        )
    );
    let mut tags = ask("hi", pb::RouteHint::Auto, "");
    tags.tags = (0..129)
        .map(|i| (format!("k{i}"), "v".to_string()))
        .collect();
    let err = h.router().await.chat(tags).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(err.message(), "tags: expected at most 128 tags, found 129");
    assert!(mock.requests().is_empty());
}

/// A local model that takes 300 ms per request, admitting 4 at once.
async fn busy_harness(max_wait: &str) -> (Harness, MockUpstream, FakeLocal) {
    let local = FakeLocal::new("a local answer", SURE).with_delay(Duration::from_millis(300));
    let mock = MockUpstream::start(MockConfig::default()).await.unwrap();
    let yaml = policy_yaml("default", &[("large", &mock.base_url())], "local").replace(
        "local: { model: fake, max_tokens: 64 }",
        &format!("local: {{ model: fake, max_tokens: 64, max_queue: 4, max_wait: {max_wait} }}"),
    );
    let h = Harness::single(yaml, local.clone()).await;
    (h, mock, local)
}

/// `n` concurrent Chat calls with `hint`, each a different question; their results in order.
async fn burst(
    h: &Harness,
    n: usize,
    hint: pb::RouteHint,
) -> Vec<Result<pb::ChatResponse, tonic::Status>> {
    let router = h.router().await;
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let mut r = router.clone();
            tokio::spawn(async move {
                r.chat(ask(&format!("question {i}"), hint, ""))
                    .await
                    .map(tonic::Response::into_inner)
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test]
async fn a_burst_beyond_the_local_queue_goes_to_the_tiers_on_auto() {
    let (h, mock, local) = busy_harness("0s").await;
    let mut local_answers = 0;
    let mut busy = 0;
    for resp in burst(&h, 16, pb::RouteHint::Auto).await {
        let resp = resp.unwrap();
        match resp.route.unwrap().kind() {
            pb::RouteKind::Local => local_answers += 1,
            _ => {
                assert_eq!(resp.decision.unwrap().reason, "local_busy");
                busy += 1;
            }
        }
    }
    assert_eq!(local_answers + busy, 16);
    assert!((1..=4).contains(&local_answers), "{local_answers} local");
    assert_eq!(mock.requests().len(), busy);
    assert!(local.calls() <= 4, "{} local calls", local.calls());
    let (_, metrics) = h.http_get("/metrics").await;
    assert!(metrics.contains("sluice_local_queue 0\n"), "{metrics}");
    assert!(
        metrics.contains(&format!(
            "sluice_local_busy_total{{action=\"escalated\"}} {busy}\n"
        )),
        "{metrics}"
    );
}

#[tokio::test]
async fn local_only_requests_beyond_the_queue_wait_then_fail_with_resource_exhausted() {
    let (h, _mock, _local) = busy_harness("100ms").await;
    let mut ok = 0;
    for result in burst(&h, 8, pb::RouteHint::Local).await {
        match result {
            Ok(_) => ok += 1,
            Err(e) => {
                assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
                assert_eq!(
                    e.message(),
                    "the local model is busy: policy \"default\" admits 4 requests at once \
                     (local.max_queue) and none freed within 100 ms (local.max_wait); retry \
                     later or let it go to a tier (ROUTE_HINT_AUTO)"
                );
            }
        }
    }
    assert_eq!(
        ok, 4,
        "the 300 ms answers free no place within the 100 ms wait"
    );
    // Once the burst is over there is room again.
    let resp = h.chat(ask("later", pb::RouteHint::Local, "")).await;
    assert_eq!(resp.route.unwrap().kind(), pb::RouteKind::Local);
}

#[tokio::test]
async fn fallbacks_after_a_tier_outage_take_a_place_on_the_local_model_too() {
    let (h, mock, local) = busy_harness("0s").await;
    mock.set_behavior(MockBehavior::Status(500));
    // REMOTE requests have no draft: each fallback would be a fresh local generation.
    let (mut fell_back, mut unavailable) = (0, 0);
    for result in burst(&h, 8, pb::RouteHint::Remote).await {
        match result {
            Ok(resp) => {
                assert!(resp.route.unwrap().fallback);
                fell_back += 1;
            }
            Err(e) => {
                assert_eq!(e.code(), Code::Unavailable, "{e:?}");
                unavailable += 1;
            }
        }
    }
    assert_eq!(fell_back + unavailable, 8);
    assert!((1..=4).contains(&fell_back), "{fell_back} fell back");
    assert!(local.calls() <= 4, "{} local generations", local.calls());
}
