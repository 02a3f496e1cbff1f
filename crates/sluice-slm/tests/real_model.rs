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
    let p = Path::new(
        // At run time: a test binary cargo reuses from another checkout keeps that one's path.
        &std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned()),
    )
    .join("../../models/SmolLM2-135M-Instruct.Q8_0.gguf");
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

/// Prefills (raw logits, no generation) and drafts at the same time, prompts of one length so
/// the scheduler batches them together. mistral.rs 0.8.1 failed these: two raw sequences in one
/// batch ("Raw response only supports batch size of 1"), a raw one with a normal one (an
/// `assert!` that killed the engine thread), a finished raw one set running again (fixed in
/// third_party/mistralrs-core, `prompt_groups`). Every request must be answered, each as alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_prefills_and_drafts_equal_the_same_requests_alone() {
    let model = SlmModel::load(&model_path()).await.unwrap();
    let prompts = [
        "What is the capital of France?",
        "What is the capital of Spain?",
        "What is the capital of Japan?",
        "What is the capital of Egypt?",
    ];
    let msgs = |p: &str| vec![Message::new(Role::User, p)];
    let mut lengths = Vec::new();
    for p in prompts {
        lengths.push(model.count_tokens(&msgs(p)).await.unwrap());
    }
    assert!(
        lengths.windows(2).all(|w| w[0] == w[1]),
        "the prompts must have one length to be batched: {lengths:?}"
    );
    let mut stats_alone = Vec::new();
    let mut drafts_alone = Vec::new();
    for p in prompts {
        stats_alone.push(model.prompt_stats(&msgs(p)).await.unwrap());
        drafts_alone.push(model.draft(ask(p, 12)).await.unwrap().text);
    }
    // 16 requests: each prompt twice as a prefill, twice as a draft, interleaved.
    let model = &model;
    let stats = futures::future::join_all(prompts.iter().cycle().take(8).map(|p| {
        let m = msgs(p);
        async move { model.prompt_stats(&m).await }
    }));
    let drafts = futures::future::join_all(
        prompts
            .iter()
            .cycle()
            .take(8)
            .map(|p| model.draft(ask(p, 12))),
    );
    let (stats, drafts) = futures::join!(stats, drafts);
    for (i, s) in stats.into_iter().enumerate() {
        let s = s.unwrap_or_else(|e| panic!("prefill {i} failed: {e}"));
        assert_eq!(s, stats_alone[i % 4], "prefill {i}");
    }
    for (i, d) in drafts.into_iter().enumerate() {
        let d = d.unwrap_or_else(|e| panic!("draft {i} failed: {e}"));
        assert_eq!(d.text, drafts_alone[i % 4], "draft {i}");
    }
    // the engine is still serving
    assert_eq!(
        model.prompt_stats(&msgs(prompts[0])).await.unwrap(),
        stats_alone[0]
    );
}

/// One prefill returns the hidden states of every block (third_party/mistralrs-core,
/// `forward_states`): the embedding, 30 blocks and the final norm of SmolLM2-135M, 576 wide,
/// at the last token and averaged over the user's tokens; real values, not zeros.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefill_returns_the_hidden_states() {
    let model = SlmModel::load(&model_path()).await.unwrap();
    assert_eq!(model.sha256().len(), 64);
    let m = [Message::new(Role::User, "What is 12 plus 30?")];
    let s = model.prompt_stats(&m).await.unwrap();
    let states = s.states.expect("the Llama model returns hidden states");
    assert_eq!(states.last.len(), 32);
    assert_eq!(states.mean.len(), 32);
    for (k, v) in states.last.iter().chain(&states.mean).enumerate() {
        assert_eq!(v.len(), 576, "state {k}");
        assert!(v.iter().all(|x| x.is_finite()), "state {k}");
        assert!(v.iter().any(|x| *x != 0.0), "state {k}");
    }
    // the last token and the mean differ, and so do the layers
    assert_ne!(states.last[16], states.mean[16]);
    assert_ne!(states.last[8], states.last[24]);
    // a different prompt, different states
    let other = model
        .prompt_stats(&[Message::new(Role::User, "Name a red fruit.")])
        .await
        .unwrap();
    assert_ne!(other.states.unwrap().last[20], states.last[20]);
    // and the logits still score the prompt
    assert!(s.mean_nll > 0.0 && s.mean_nll.is_finite());
}

/// A forward pass runs on one of rayon's workers (third_party/README.md, mistralrs-core item
/// 13); on the engine's own thread, as before, the same draft and the same per-token
/// statistics must come out. One request at a time: whether concurrent requests are batched
/// depends on timing, and a batched draft's statistics can differ in the last bits from the
/// same draft alone (its text does not: `concurrent_drafts_equal_the_same_drafts_alone`). The
/// switch is process-wide, so other tests running meanwhile only change speed, never results.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_on_a_worker_answers_as_one_on_the_engine_thread() {
    let model = SlmModel::load(&model_path()).await.unwrap();
    let prompts = [
        "What is the capital of Japan?",
        "Write a haiku about rivers.",
    ];
    let mut on_worker = Vec::new();
    for p in prompts {
        on_worker.push(model.draft(ask(p, 24)).await.unwrap());
    }
    mistralrs_core::sluice_cpu_attention::set_forward_on_pool(false);
    let mut on_engine_thread = Vec::new();
    for p in prompts {
        on_engine_thread.push(model.draft(ask(p, 24)).await);
    }
    mistralrs_core::sluice_cpu_attention::set_forward_on_pool(true);
    for (w, e) in on_worker.iter().zip(on_engine_thread) {
        let e = e.unwrap();
        assert_eq!(w.text, e.text);
        assert_eq!(w.tokens, e.tokens, "per-token statistics of {:?}", w.text);
    }
    assert_ne!(on_worker[0].text, on_worker[1].text);
}
