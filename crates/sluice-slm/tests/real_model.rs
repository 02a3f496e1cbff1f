//! The real default model through mistral.rs: statistics per token are real log-softmax values,
//! drafts are deterministic, streams arrive in pieces.

// Helpers outside #[test] functions may fail loudly too: this is test code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use futures::StreamExt;
use sluice_policy::{Message, Role};
use sluice_router::{FinishReason, LocalEvent, LocalModel, LocalRequest};
use sluice_slm::{SlmError, SlmModel};

fn model_path() -> PathBuf {
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/SmolLM2-135M-Instruct.Q8_0.gguf");
    assert!(
        p.is_file(),
        "{} is missing: run scripts/fetch-model",
        p.display()
    );
    p
}

fn ask(prompt: &str, max_tokens: u32) -> LocalRequest {
    LocalRequest {
        messages: vec![Message::new(Role::User, prompt)],
        max_tokens,
        temperature: None,
        top_p: None,
        stop: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drafts_carry_real_log_probabilities() {
    let model = SlmModel::load(&model_path()).await.unwrap();
    assert_eq!(model.model_id(), "smollm2-135m-instruct.q8_0");

    let d = model
        .draft(ask("What is the capital of France?", 32))
        .await
        .unwrap();
    assert!(!d.text.trim().is_empty());
    assert!(d.prompt_tokens > 5, "prompt tokens {}", d.prompt_tokens);
    assert!(d.completion_tokens > 0);
    assert_eq!(
        d.tokens.len(),
        d.completion_tokens as usize,
        "one statistic per generated token"
    );
    assert_eq!(d.pieces.concat(), d.text);
    for t in &d.tokens {
        assert!(
            t.logprob <= 0.0 && t.logprob.is_finite(),
            "logprob {}",
            t.logprob
        );
        assert!(
            t.entropy >= 0.0 && t.entropy.is_finite(),
            "entropy {}",
            t.entropy
        );
    }
    // some token of a real answer is not certain; a log10-of-logit value would not look like this
    assert!(d.tokens.iter().any(|t| t.logprob < -1e-3));

    // greedy drafts repeat exactly
    let again = model
        .draft(ask("What is the capital of France?", 32))
        .await
        .unwrap();
    assert_eq!(again.text, d.text);
    assert_eq!(again.tokens, d.tokens);

    // max_tokens cuts the draft and says so
    let cut = model
        .draft(ask("Write a long story about a dragon.", 5))
        .await
        .unwrap();
    assert_eq!(cut.completion_tokens, 5);
    assert_eq!(cut.finish, FinishReason::Length);

    // streams arrive in several pieces, then Done with the token counts
    let mut s = model.stream(ask("Name three colours.", 24)).await.unwrap();
    let mut deltas = 0;
    let mut done = None;
    while let Some(ev) = s.next().await {
        match ev.unwrap() {
            LocalEvent::Delta(_) => deltas += 1,
            LocalEvent::Done {
                completion_tokens, ..
            } => done = Some(completion_tokens),
        }
    }
    assert!(deltas > 1, "{deltas} deltas");
    assert!(done.unwrap() > 1);
}

#[tokio::test]
async fn a_missing_file_is_named() {
    match SlmModel::load(Path::new("/nonexistent/x.gguf")).await {
        Err(SlmError::Missing { path }) => assert_eq!(path, Path::new("/nonexistent/x.gguf")),
        other => panic!("expected Missing, got {other:?}"),
    }
}

/// Sequences decoding at the same time are batched by the engine (same prompt length). Each
/// must still get its own answer: mistral.rs 0.8.1's CPU decode attention gave every sequence
/// of a batch the last one's attention (fixed in third_party/mistralrs-core).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_drafts_equal_the_same_drafts_alone() {
    let model = SlmModel::load(&model_path()).await.unwrap();
    let prompts = [
        "What is the capital of France?",
        "What is the capital of Spain?",
        "What is the capital of Japan?",
        "What is the capital of Egypt?",
    ];
    let mut lengths = Vec::new();
    for p in prompts {
        let m = [Message::new(Role::User, p)];
        lengths.push(model.count_tokens(&m).await.unwrap());
    }
    assert!(
        lengths.windows(2).all(|w| w[0] == w[1]),
        "the prompts must have one length to be batched: {lengths:?}"
    );
    let mut alone = Vec::new();
    for p in prompts {
        alone.push(model.draft(ask(p, 24)).await.unwrap().text);
    }
    let together: Vec<String> =
        futures::future::join_all(prompts.iter().map(|p| model.draft(ask(p, 24))))
            .await
            .into_iter()
            .map(|d| d.unwrap().text)
            .collect();
    assert_eq!(together, alone);
    // the answers differ, so a mix-up between sequences would show
    assert!(alone.windows(2).any(|w| w[0] != w[1]), "{alone:?}");
}
