//! Escalation to a real OpenAI-compatible server (llama.cpp's server with
//! Qwen2.5-Coder-1.5B-Instruct, started by `scripts/real-upstream start`, which
//! `scripts/test` runs). Skipped, saying why, when no such server was started.

use sluice_proto::v1 as pb;

use crate::support::{chat_request, temp_dir, Server};

fn real_upstream() -> Option<String> {
    match std::env::var("SLUICE_REAL_UPSTREAM_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let why = std::env::var("SLUICE_REAL_UPSTREAM_SKIPPED").unwrap_or_else(|_| {
                "SLUICE_REAL_UPSTREAM_URL is not set (scripts/test sets it after \
                 `scripts/real-upstream start`)"
                    .into()
            });
            eprintln!("SKIPPED real-upstream escalation test: {why}");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalates_and_streams_through_a_real_openai_compatible_server() {
    let Some(url) = real_upstream() else { return };
    let dir = temp_dir("real-upstream");
    // threshold 1: every scored request escalates, so the AUTO path is exercised for real
    let policy = format!(
        "version: 1\nname: default\nlocal: {{ model: smollm2-135m, max_tokens: 64 }}\n\
         tiers:\n  - {{ name: llama, provider: openai, base_url: \"{url}\", \
         model: qwen2.5-coder-1.5b, price: {{ input_per_mtok: 0.15, output_per_mtok: 0.60 }}, \
         timeout: 5m, read_timeout: 2m }}\n\
         scoring: {{ method: answer_confidence, threshold: 1.0, weights: {{ bias: 0.0 }} }}\n\
         on_upstream_failure: error\n"
    );
    std::fs::write(dir.join("default.yaml"), policy).unwrap();
    let server = Server::start_policies(&dir, &[]).await;
    let mut router = server.router().await;

    let prompt = "Write a Python function that returns the square of a number.";
    // greedy, so the answer (and this test) repeats exactly
    let ask = |hint| {
        let mut r = chat_request(prompt, hint, "");
        if let Some(p) = r.params.as_mut() {
            p.temperature = Some(0.0);
        }
        r
    };
    let resp = router
        .chat(ask(pb::RouteHint::Auto))
        .await
        .expect("the real tier answers")
        .into_inner();
    let route = resp.route.unwrap();
    let decision = resp.decision.unwrap();
    let usage = resp.usage.unwrap();
    let text = resp.message.unwrap().content;
    eprintln!("real upstream answered {text:?} usage={usage:?}");
    assert_eq!(route.kind(), pb::RouteKind::Remote);
    assert_eq!(route.tier, "llama");
    assert_eq!(decision.reason, "low_confidence");
    assert!(text.contains("def "), "{text}");
    assert!(
        usage.prompt_tokens > 0 && usage.completion_tokens > 0,
        "{usage:?}"
    );
    assert!(usage.cost_usd > 0.0);

    let mut stream = router
        .chat_stream(ask(pb::RouteHint::Remote))
        .await
        .expect("the stream opens")
        .into_inner();
    let mut chunks = Vec::new();
    while let Some(c) = stream.message().await.expect("stream chunk") {
        chunks.push(c);
    }
    let streamed: String = chunks.iter().map(|c| c.delta.as_str()).collect();
    assert!(chunks.len() > 5, "only {} chunks", chunks.len());
    assert!(streamed.contains("def "), "{streamed}");
    let last = chunks.last().unwrap();
    assert_eq!(last.route.as_ref().unwrap().tier, "llama");
    assert!(!last.finish_reason.is_empty());
}
