//! The hidden-state probe on the real gRPC path: `prefill_probe` decides from one prefill and
//! generates only what it keeps local; `cascade` sends a request the probe is sure about on
//! without a draft (reason `probe_low`); a probe fitted on another model file is refused.
//! The fake model's hidden state is `[digits, words]`; the probe here reads 2 − digits.

use super::*;

const PROBE: &str = r#"{"version":1,"model_sha256":"abababababababababababababababababababababababababababababababab","hidden_size":2,"fitted":"by hand","components":[{"state":0,"pool":"last","bias":2.0,"weights":[-1.0,0.0]}]}"#;

/// The policy with its scoring replaced by `scoring`, and the probe file beside it.
fn probed(mock: &str, scoring: &str) -> String {
    let yaml = policy_yaml("default", &[("large", mock)], "local");
    let (head, _) = yaml.split_once("scoring:\n").unwrap();
    format!("{head}scoring:\n  probe: probe.json\n{scoring}on_upstream_failure: local\n")
}

async fn harness(scoring: &str) -> (Harness, MockUpstream, FakeLocal) {
    let mock = MockUpstream::start(MockConfig::default()).await.unwrap();
    let local = FakeLocal::new("a local answer", SURE);
    let h = Harness::start(
        &[
            ("probe.json", PROBE.to_owned()),
            ("default.yaml", probed(&mock.base_url(), scoring)),
        ],
        loader_of(local.clone()),
    )
    .await;
    (h, mock, local)
}

#[tokio::test]
async fn prefill_probe_escalates_without_generating_and_generates_what_it_keeps() {
    let (h, mock, local) = harness(
        "  method: prefill_probe\n  threshold: 0.5\n  weights: { bias: 0.0, hidden_probe: 1.0 }\n",
    )
    .await;
    let resp = h
        .chat(ask("What is 1234 times 5678?", pb::RouteHint::Auto, ""))
        .await;
    assert_eq!(resp.route.unwrap().kind(), pb::RouteKind::Remote);
    let d = resp.decision.unwrap();
    assert_eq!(d.reason, "low_confidence");
    // sigmoid(2 − 8)
    let want = 1.0 / (1.0 + 6f64.exp());
    assert!((d.confidence.unwrap() - want).abs() < 1e-9, "{d:?}");
    assert_eq!(local.calls(), 0, "an escalated request was drafted");
    assert_eq!(mock.requests().len(), 1);

    let resp = h
        .chat(ask("Capital of France?", pb::RouteHint::Auto, ""))
        .await;
    assert_eq!(resp.route.unwrap().kind(), pb::RouteKind::Local);
    assert_eq!(resp.message.unwrap().content, "a local answer");
    assert_eq!(resp.decision.unwrap().reason, "confident");
    assert_eq!(local.calls(), 1, "kept local: generated once");
    assert_eq!(
        local.streams(),
        1,
        "generated with the caller's parameters, not drafted"
    );
    assert_eq!(mock.requests().len(), 1);

    // Streamed, a kept request streams from the model as it generates (no draft replayed),
    // with the caller's max_tokens.
    let mut router = h.router().await;
    let mut req = ask("Capital of France?", pb::RouteHint::Auto, "");
    req.params = Some(pb::GenerationParams {
        max_tokens: Some(2),
        ..Default::default()
    });
    let mut s = router.chat_stream(req).await.unwrap().into_inner();
    let mut text = String::new();
    let mut last = None;
    while let Some(c) = s.message().await.unwrap() {
        text.push_str(&c.delta);
        last = Some(c);
    }
    assert_eq!(text, "a local ");
    let last = last.unwrap();
    assert_eq!(last.route.unwrap().kind(), pb::RouteKind::Local);
    assert_eq!(last.decision.unwrap().reason, "confident");
    assert_eq!((local.calls(), local.streams()), (2, 2));

    // Score runs the same plan: the same decision, and no answer generated.
    let score = router
        .score(pb::ScoreRequest {
            messages: ask("Capital of France?", pb::RouteHint::Auto, "").messages,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(score.route.unwrap().kind(), pb::RouteKind::Local);
    assert_eq!(score.decision.unwrap().reason, "confident");
    assert_eq!(score.draft, "", "a pre-route method drafts nothing");
    // With a hint, what Chat would do with it.
    for (hint, kind, reason) in [
        (pb::RouteHint::Remote, pb::RouteKind::Remote, "hint_remote"),
        (pb::RouteHint::Local, pb::RouteKind::Local, "hint_local"),
    ] {
        let s = router
            .score(pb::ScoreRequest {
                messages: ask("Capital of France?", hint, "").messages,
                route_hint: hint.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(s.route.unwrap().kind(), kind, "{hint:?}");
        assert_eq!(s.decision.unwrap().reason, reason, "{hint:?}");
    }
    assert_eq!(local.calls(), 2, "Score generated nothing");
    assert_eq!(mock.requests().len(), 1, "Score called no tier");
}

#[tokio::test]
async fn cascade_sends_low_probe_requests_on_before_any_draft() {
    let (h, mock, local) = harness(
        "  method: cascade\n  escalate_below: 0.5\n  threshold: 0.5\n  \
         weights: { bias: 3.0, mean_logprob: 2.5 }\n",
    )
    .await;
    let resp = h
        .chat(ask("What is 1234 times 5678?", pb::RouteHint::Auto, ""))
        .await;
    assert_eq!(resp.route.unwrap().kind(), pb::RouteKind::Remote);
    assert_eq!(resp.decision.unwrap().reason, "probe_low");
    assert_eq!(local.calls(), 0, "the first stage drafted");
    assert_eq!(mock.requests().len(), 1);
    let (_, metrics) = h.http_get("/metrics").await;
    assert!(metrics.contains("reason=\"probe_low\""), "{metrics}");

    // Above the cut: drafted, and the draft's confidence decides (sure: kept local).
    let resp = h
        .chat(ask("Capital of France?", pb::RouteHint::Auto, ""))
        .await;
    assert_eq!(resp.route.unwrap().kind(), pb::RouteKind::Local);
    assert_eq!(resp.decision.unwrap().reason, "confident");
    assert_eq!(local.calls(), 1);
    assert_eq!(mock.requests().len(), 1);
}

#[test]
fn a_probe_fitted_on_another_model_file_is_refused() {
    let dir = temp_dir();
    std::fs::write(dir.join("probe.json"), PROBE).unwrap();
    let yaml = probed(
        "http://127.0.0.1:9",
        "  method: prefill_probe\n  threshold: 0.5\n  weights: { bias: 0.0, hidden_probe: 1.0 }\n",
    );
    std::fs::write(dir.join("default.yaml"), yaml).unwrap();
    let store = PolicyStore::load(&dir).unwrap();
    let err = store.for_model("cd".repeat(32)).err().unwrap().to_string();
    assert!(err.contains("abab") && err.contains("cdcd"), "{err}");
    let store = PolicyStore::load(&dir).unwrap();
    assert!(store.for_model("ab".repeat(32)).is_ok());
}
