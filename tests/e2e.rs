//! End-to-end: the real `sluice` binary with the real model, called over gRPC, with an
//! in-process mock OpenAI-compatible upstream standing in for the large model.

// Helpers outside #[test] functions may fail loudly too: this is test code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod deploy;
mod eval_cli;
mod memory;
mod openai_sdk;
mod real_upstream;
mod support;

use std::time::Duration;

use sluice_proto::v1 as pb;
use support::{chat_request, metric_value, Server};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_end_to_end() {
    let mock = sluice_test_support::MockUpstream::start(Default::default())
        .await
        .expect("mock upstream starts");
    let server = Server::start(&mock.base_url()).await;
    let mut router = server.router().await;

    // (a) the shipped default decides from one prefill, before generating anything: its
    // hidden-state probe keeps an easy question local and sends a hard one on, undrafted
    let decide = |prompt: &str| chat_request(prompt, pb::RouteHint::Auto, "");
    let easy = router
        .chat(decide(
            "Can fish swim? Answer with one option. Options: yes / no",
        ))
        .await
        .expect("chat answers")
        .into_inner();
    let d = easy.decision.clone().expect("decision is set");
    assert_eq!(d.method, "prefill_probe");
    let probe = d.features.iter().find(|f| f.name == "hidden_probe");
    assert!(probe.is_some_and(|f| f.value.is_finite()), "{d:?}");
    assert!(
        !d.features.iter().any(|f| f.name == "mean_logprob"),
        "no draft was scored: {d:?}"
    );
    assert_eq!(easy.route.unwrap().kind(), pb::RouteKind::Local, "{d:?}");
    assert!(!easy.message.unwrap().content.trim().is_empty());
    let hard = router
        .chat(decide("What is 418 times 275?"))
        .await
        .expect("chat answers")
        .into_inner();
    let d = hard.decision.expect("decision is set");
    assert_eq!(hard.route.unwrap().kind(), pb::RouteKind::Remote, "{d:?}");
    assert!(d.confidence.unwrap() < d.threshold, "{d:?}");

    // (a') scored on a draft instead (`drafted`: answer_confidence, every draft kept), the
    // local model's answer comes with its token log-probabilities
    let resp = router
        .chat(chat_request(
            "Can fish swim? Answer with one option. Options: yes / no",
            pb::RouteHint::Auto,
            "drafted",
        ))
        .await
        .expect("chat answers")
        .into_inner();
    let answer = resp
        .message
        .as_ref()
        .map(|m| m.content.clone())
        .unwrap_or_default();
    let route = resp.route.clone().expect("route is set");
    let decision = resp.decision.clone().expect("decision is set");
    let usage = resp.usage.expect("usage is set");
    eprintln!("easy prompt: {answer:?} route={route:?} decision={decision:?}");
    assert!(!answer.trim().is_empty(), "the local answer is empty");
    assert_eq!(route.kind(), pb::RouteKind::Local, "{decision:?}");
    assert_eq!(decision.reason, "confident");
    assert!(!route.fallback);
    let confidence = decision
        .confidence
        .expect("a scored request has a confidence");
    assert!((0.0..=1.0).contains(&confidence), "confidence {confidence}");
    assert_eq!(decision.method, "answer_confidence");
    assert!(
        usage.prompt_tokens > 0 && usage.completion_tokens > 0,
        "{usage:?}"
    );
    assert_eq!(usage.cost_usd, 0.0);
    assert!(usage.cost_avoided_usd > 0.0, "{usage:?}");
    // the log-probabilities behind the confidence come from a softmax: never above 0
    for name in ["mean_logprob", "min_logprob", "p10_logprob"] {
        let f = decision
            .features
            .iter()
            .find(|f| f.name == name)
            .expect(name);
        assert!(
            f.value <= 0.0 && f.value.is_finite(),
            "{name} = {}",
            f.value
        );
    }
    let entropy = decision
        .features
        .iter()
        .find(|f| f.name == "mean_entropy")
        .unwrap();
    assert!(entropy.value >= 0.0, "entropy {}", entropy.value);

    // (b) route hint REMOTE gets the mock's answer, priced at the tier's rates
    let resp = router
        .chat(chat_request(
            "Prove Fermat's little theorem.",
            pb::RouteHint::Remote,
            "",
        ))
        .await
        .expect("remote chat answers")
        .into_inner();
    let route = resp.route.expect("route");
    assert_eq!(route.kind(), pb::RouteKind::Remote);
    assert_eq!(route.tier, "large");
    assert_eq!(route.model, "mock-large");
    assert_eq!(
        resp.message.unwrap().content,
        "Paris is the capital of France."
    );
    let usage = resp.usage.unwrap();
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (12, 7));
    let expected = (12.0 * 0.15 + 7.0 * 0.60) / 1e6;
    assert!(
        (usage.cost_usd - expected).abs() < 1e-12,
        "cost {}",
        usage.cost_usd
    );
    let seen = mock.requests();
    let last = seen.last().expect("the mock saw the request");
    assert_eq!(last.authorization.as_deref(), Some("Bearer test-key"));

    // (c) an empty message list names the field
    let err = router
        .chat(pb::ChatRequest::default())
        .await
        .expect_err("empty messages are rejected");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("messages:"), "{}", err.message());

    // (d) an unknown policy
    let err = router
        .chat(chat_request("hi", pb::RouteHint::Auto, "no-such-policy"))
        .await
        .expect_err("unknown policy is rejected");
    assert_eq!(err.code(), Code::NotFound);
    assert!(
        err.message().contains("no-such-policy"),
        "{}",
        err.message()
    );

    // (e) a stream delivers more than one chunk, metadata last
    for hint in [pb::RouteHint::Local, pb::RouteHint::Remote] {
        let mut stream = router
            .chat_stream(chat_request("Name three colours.", hint, ""))
            .await
            .expect("stream opens")
            .into_inner();
        let mut chunks = Vec::new();
        while let Some(c) = stream.message().await.expect("stream chunk") {
            chunks.push(c);
        }
        let text: String = chunks.iter().map(|c| c.delta.as_str()).collect();
        assert!(chunks.len() > 2, "{hint:?}: only {} chunks", chunks.len());
        assert!(!text.trim().is_empty(), "{hint:?}: empty stream");
        let last = chunks.last().unwrap();
        assert!(!last.finish_reason.is_empty(), "{hint:?}: no finish reason");
        let want = if hint == pb::RouteHint::Local {
            pb::RouteKind::Local
        } else {
            pb::RouteKind::Remote
        };
        assert_eq!(last.route.as_ref().unwrap().kind(), want);
    }

    // upstream down, policy says local: answered locally, marked as a fallback
    let resp = router
        .chat(chat_request(
            "Say hello.",
            pb::RouteHint::Remote,
            "down-local",
        ))
        .await
        .expect("fallback answers")
        .into_inner();
    let route = resp.route.unwrap();
    assert_eq!(route.kind(), pb::RouteKind::Local);
    assert!(route.fallback);
    assert!(!resp.message.unwrap().content.trim().is_empty());

    // upstream down, policy says error: UNAVAILABLE naming the tier
    let err = router
        .chat(chat_request(
            "Say hello.",
            pb::RouteHint::Remote,
            "down-error",
        ))
        .await
        .expect_err("no fallback");
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains("dead-tier"), "{}", err.message());

    // Score is a dry run: a decision, a draft where the method drafts, and no tier called
    let before = mock.requests().len();
    let score = |policy: &str| {
        let mut router = router.clone();
        let request = pb::ScoreRequest {
            messages: chat_request("What is 2 plus 2?", pb::RouteHint::Auto, "").messages,
            policy: policy.to_owned(),
            ..Default::default()
        };
        async move {
            router
                .score(request)
                .await
                .expect("score answers")
                .into_inner()
        }
    };
    let shipped = score("").await;
    let d = shipped.decision.unwrap();
    assert!((0.0..=1.0).contains(&d.confidence.unwrap()));
    let default = sluice_policy::load_policy_file(&support::repo().join("policies/default.yaml"))
        .expect("the shipped default policy loads");
    assert_eq!(d.threshold, default.scoring.threshold);
    assert_eq!(shipped.draft, "", "the probe decides without a draft");
    assert!(!score("drafted").await.draft.trim().is_empty());
    assert_eq!(mock.requests().len(), before, "Score called a tier");

    // /metrics counts what happened, in Prometheus text format
    let text = server.metrics().await;
    assert!(
        metric_value(
            &text,
            "sluice_requests_total",
            &[("route", "local"), ("reason", "confident")]
        ) >= 1.0,
        "{text}"
    );
    assert!(
        metric_value(
            &text,
            "sluice_requests_total",
            &[("route", "remote"), ("tier", "large")]
        ) >= 2.0,
        "{text}"
    );
    assert!(
        metric_value(
            &text,
            "sluice_requests_total",
            &[("route", "error"), ("reason", "upstream")]
        ) >= 1.0,
        "{text}"
    );
    assert!(
        metric_value(
            &text,
            "sluice_request_duration_seconds_count",
            &[("route", "local")]
        ) >= 1.0,
        "{text}"
    );
    assert!(
        metric_value(&text, "sluice_cost_usd_total", &[("tier", "large")]) > 0.0,
        "{text}"
    );
    assert!(
        text.contains("# TYPE sluice_request_duration_seconds histogram"),
        "{text}"
    );

    // reflection lists the services, so grpcurl works without the proto files
    let services = server.reflection_services().await;
    for s in [
        "sluice.v1.Router",
        "sluice.v1.Admin",
        "grpc.health.v1.Health",
    ] {
        assert!(
            services.iter().any(|x| x == s),
            "{s} missing from {services:?}"
        );
    }

    server.stop(Duration::from_secs(20)).await;
}

#[test]
fn missing_model_names_the_path_and_the_setup_command() {
    let out = support::sluice()
        .args(["serve", "--model", "/nonexistent/model.gguf", "--policy"])
        .arg(support::repo().join("policies/default.yaml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("/nonexistent/model.gguf"), "{stderr}");
    assert!(stderr.contains("scripts/fetch-model"), "{stderr}");
}

#[test]
fn invalid_policy_stops_check_and_serve_with_file_and_key() {
    let dir = support::temp_dir("badpolicy");
    let bad = dir.join("bad.yaml");
    let good = std::fs::read_to_string(support::repo().join("policies/default.yaml")).unwrap();
    std::fs::write(&bad, good.replace("threshold:", "threshhold:")).unwrap();

    let out = support::sluice()
        .args(["policy", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("bad.yaml") && stderr.contains("scoring.threshhold"),
        "{stderr}"
    );

    let ok = support::sluice()
        .args(["policy", "check"])
        .arg(support::repo().join("policies/default.yaml"))
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let out = support::sluice()
        .args([
            "serve",
            "--grpc-listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--policy",
        ])
        .arg(&bad)
        .arg("--model")
        .arg(support::model_path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("bad.yaml") && stderr.contains("scoring.threshhold"),
        "{stderr}"
    );
}
