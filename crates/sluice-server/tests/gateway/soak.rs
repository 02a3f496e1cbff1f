//! Fault soak: 10,000 requests over two tiers that fail about 30% of the time in every way
//! an upstream can. Every request must end with an answer (a tier, or the local fallback) or
//! with the clear error its policy asked for; none may be lost or hang.

use std::collections::BTreeMap;

use futures::StreamExt;
use sluice_test_support::FaultPlan;

use super::*;

const REQUESTS: usize = 10_000;
const CONCURRENCY: usize = 32;

fn faults(seed: u64) -> FaultPlan {
    FaultPlan::Random {
        seed,
        faults: vec![
            (MockBehavior::Status(500), 0.07),
            (MockBehavior::Status(503), 0.03),
            (
                MockBehavior::RetryAfter {
                    status: 429,
                    seconds: 0,
                },
                0.04,
            ),
            (MockBehavior::Hang, 0.02),
            (MockBehavior::Reset, 0.05),
            (MockBehavior::StreamCut { after_chunks: 2 }, 0.04),
            (MockBehavior::MalformedJson, 0.03),
            (MockBehavior::Latency(Duration::from_millis(30)), 0.02),
        ],
    }
}

/// Short pauses of the breakers, so they open and close many times within the run.
fn soak_policy(name: &str, a: &str, b: &str, on_failure: &str) -> String {
    policy_yaml(name, &[("tier-a", a), ("tier-b", b)], on_failure).replace(
        "timeout: 5s }",
        "timeout: 400ms, read_timeout: 200ms, connect_timeout: 200ms, retries: 1, \
         circuit_breaker: { open_for: 200ms } }",
    )
}

/// What became of one request.
fn outcome_of_chat(r: Result<pb::ChatResponse, tonic::Status>) -> String {
    match r {
        Ok(resp) => {
            let route = resp.route.unwrap_or_default();
            match route.kind() {
                pb::RouteKind::Remote => format!("answer:{}", route.tier),
                pb::RouteKind::Local if route.fallback => "answer:local-fallback".into(),
                pb::RouteKind::Local => "answer:local".into(),
                other => format!("unexpected route {other:?}"),
            }
        }
        Err(s) => format!("error:{:?}", s.code()),
    }
}

async fn outcome_of_stream(
    mut router: pb::router_client::RouterClient<Channel>,
    req: pb::ChatRequest,
) -> String {
    let mut stream = match router.chat_stream(req).await {
        Ok(s) => s.into_inner(),
        Err(s) => return format!("stream-error:{:?}", s.code()),
    };
    let mut text = String::new();
    loop {
        match stream.message().await {
            Ok(Some(chunk)) if chunk.route.is_some() => {
                let route = chunk.route.unwrap_or_default();
                if route.kind() == pb::RouteKind::Remote
                    && text != "Paris is the capital of France."
                {
                    return format!("stream-garbled:{text:?}");
                }
                return match (route.kind(), route.fallback) {
                    (pb::RouteKind::Remote, _) => format!("stream:{}", route.tier),
                    (pb::RouteKind::Local, true) => "stream:local-fallback".into(),
                    (kind, _) => format!("stream:{kind:?}"),
                };
            }
            Ok(Some(chunk)) => text.push_str(&chunk.delta),
            Ok(None) => return "stream-ended-without-metadata".into(),
            Err(s) if s.code() == Code::Aborted && s.message().contains("cut") => {
                return "stream-cut-reported".into()
            }
            Err(s) => return format!("stream-error-mid:{:?}:{}", s.code(), s.message()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_requests_through_faulty_tiers_none_lost() {
    let a = MockUpstream::start(MockConfig::default()).await.unwrap();
    let b = MockUpstream::start(MockConfig::default()).await.unwrap();
    a.set_fault_plan(faults(7));
    b.set_fault_plan(faults(11));
    let h = Harness::start(
        &[
            (
                "default.yaml",
                soak_policy("default", &a.base_url(), &b.base_url(), "local"),
            ),
            (
                "strict.yaml",
                soak_policy("strict", &a.base_url(), &b.base_url(), "error"),
            ),
        ],
        loader_of(FakeLocal::new("local draft", UNSURE)),
    )
    .await;
    let router = h.router().await;
    let started = std::time::Instant::now();

    let outcomes: Vec<(&'static str, String)> = futures::stream::iter(0..REQUESTS)
        .map(|i| {
            let mut router = router.clone();
            async move {
                // a mix of what callers send: scored chats, forced escalations, streams, and a
                // strict policy that wants errors instead of local answers
                let (kind, call) = match i % 10 {
                    0..=3 => ("chat-auto", ask("hard", pb::RouteHint::Auto, "")),
                    4..=5 => ("chat-remote", ask("hard", pb::RouteHint::Remote, "")),
                    6 => ("chat-strict", ask("hard", pb::RouteHint::Remote, "strict")),
                    _ => ("stream-remote", ask("hard", pb::RouteHint::Remote, "")),
                };
                let work = async {
                    if kind == "stream-remote" {
                        outcome_of_stream(router.clone(), call).await
                    } else {
                        outcome_of_chat(router.chat(call).await.map(|r| r.into_inner()))
                    }
                };
                let outcome = match tokio::time::timeout(Duration::from_secs(20), work).await {
                    Ok(o) => o,
                    Err(_) => "HUNG".to_string(),
                };
                (kind, outcome)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;

    let mut counts: BTreeMap<(&str, String), usize> = BTreeMap::new();
    for (kind, outcome) in &outcomes {
        *counts.entry((kind, outcome.clone())).or_default() += 1;
    }
    eprintln!(
        "soak: {} requests in {:.1} s; tier-a served {:?}; tier-b served {:?}",
        outcomes.len(),
        started.elapsed().as_secs_f64(),
        a.counts(),
        b.counts()
    );
    for ((kind, outcome), n) in &counts {
        eprintln!("soak: {kind:>14} {outcome:<28} {n}");
    }

    assert_eq!(outcomes.len(), REQUESTS, "requests were lost");
    for ((kind, outcome), n) in &counts {
        let allowed = match *kind {
            // the default policy falls back to the local model: every call is answered
            "chat-auto" | "chat-remote" => outcome.starts_with("answer:"),
            // strict asked for errors: UNAVAILABLE when every tier failed
            "chat-strict" => outcome.starts_with("answer:tier-") || outcome == "error:Unavailable",
            // streams: an answer, or a cut reported as an error, never silence or garbage
            _ => outcome.starts_with("stream:") || outcome == "stream-cut-reported",
        };
        assert!(allowed, "{n} × {kind} ended as {outcome}");
    }
    // the faults really were injected and really were survived
    let served = |m: &MockUpstream| m.counts().values().sum::<usize>();
    let faulted = |m: &MockUpstream| {
        m.counts()
            .iter()
            .filter(|(k, _)| k.as_str() != "ok")
            .map(|(_, v)| *v)
            .sum::<usize>()
    };
    let ratio = (faulted(&a) + faulted(&b)) as f64 / (served(&a) + served(&b)) as f64;
    assert!((0.2..0.4).contains(&ratio), "fault ratio {ratio}");
    let fallbacks: usize = counts
        .iter()
        .filter(|((_, o), _)| o.contains("local-fallback"))
        .map(|(_, n)| n)
        .sum();
    assert!(fallbacks > 0, "no request needed the local fallback");
}
