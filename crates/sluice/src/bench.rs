//! `sluice bench local`: the local model's speed through the gateway, beside raw mistral.rs
//! and llama.cpp on the same file and threads, in one run with the engines alternating
//! round by round. Medians of the rounds and their ratios.

pub mod burst;
mod gateway;
mod llama;
pub mod overhead;
mod report;
pub mod shadow;
mod upstream;
mod workload;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use sluice_policy::Message;
use sluice_slm::SlmModel;

use crate::cli::LocalBench;
use report::{Engine, Metric, Samples};

/// One timed request (the same figures for every engine).
pub use sluice_slm::Timed as Run;

fn prefill_tps(r: &Run) -> f64 {
    f64::from(r.prompt_tokens) / r.first.as_secs_f64()
}

/// Tokens after the first, over the time after the first.
fn decode_tps(r: &Run) -> Option<f64> {
    let steps = r.completion_tokens.checked_sub(1).filter(|s| *s > 0)?;
    Some(f64::from(steps) / (r.last - r.first).as_secs_f64())
}

/// The prompts, as messages and as the token ids llama.cpp is given.
struct Prompts {
    prefill: Vec<Message>,
    prefill_ids: Vec<u32>,
    decode: Vec<Message>,
    decode_ids: Vec<u32>,
    score: Vec<Message>,
    score_ids: Vec<u32>,
}

struct Engines {
    raw: Arc<SlmModel>,
    gateway: gateway::Gateway,
    llama: Option<llama::Llama>,
}

/// Fails, saying how to get one, when the model file a bench loads is missing.
pub(crate) fn require_model(path: &std::path::Path) -> anyhow::Result<()> {
    if !path.is_file() {
        bail!(
            "model file {} does not exist; `scripts/fetch-model` makes the default one, or pass --model",
            path.display()
        );
    }
    Ok(())
}

/// The async runtime a bench runs on.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The median of the finite values of `v` (NaN when there are none).
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The `q` quantile (nearest rank) of the sorted `sorted` (NaN when empty).
pub(crate) fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

pub fn run(args: &LocalBench) -> anyhow::Result<ExitCode> {
    require_model(&args.model)?;
    if args.concurrency.iter().any(|&n| n == 0 || n > 64) {
        bail!(
            "--concurrency takes numbers from 1 to 64, found {:?}",
            args.concurrency
        );
    }
    runtime()?.block_on(bench(args))?;
    Ok(ExitCode::SUCCESS)
}

async fn bench(args: &LocalBench) -> anyhow::Result<()> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = args.threads.unwrap_or(cpus);
    let model = Arc::new(SlmModel::load(&args.model).await?);
    let (prefill, n) = workload::prefill(&model, args.prefill_tokens).await?;
    eprintln!("prefill prompt: {n} tokens");
    let ids = |m: Vec<Message>| {
        let model = model.clone();
        async move { model.prompt_ids(&m).await.map(|ids| (m, ids)) }
    };
    let (prefill, prefill_ids) = ids(prefill).await?;
    let (decode, decode_ids) = ids(workload::decode()).await?;
    let (score, score_ids) = ids(workload::score()).await?;
    let prompts = Prompts {
        prefill,
        prefill_ids,
        decode,
        decode_ids,
        score,
        score_ids,
    };

    let gateway = gateway::Gateway::start(model.clone()).await?;
    let mut notes = Vec::new();
    let llama = if args.no_llama {
        notes.push("llama.cpp: left out (--no-llama)".to_owned());
        None
    } else {
        let python = llama::python(args.python.as_deref());
        match llama::Llama::start(&python, &args.model, threads).await? {
            Ok(l) => {
                notes.push(format!(
                    "llama.cpp: llama-cpp-python {} ({}), {threads} threads",
                    l.version,
                    python.display()
                ));
                notes.push(
                    "llama.cpp: no concurrency figures (llama-cpp-python runs one sequence \
                     per context)"
                        .to_owned(),
                );
                Some(l)
            }
            Err(why) => {
                let msg = format!(
                    "llama.cpp: skipped, {why}; `scripts/real-upstream install` installs it"
                );
                eprintln!("{msg}");
                notes.push(msg);
                None
            }
        }
    };
    let mut engines = Engines {
        raw: model,
        gateway,
        llama,
    };

    // Warm-up: first requests pay for allocations and page faults.
    for engine in Engine::ALL {
        measure_once(
            &mut engines,
            engine,
            &prompts,
            args,
            &mut Samples::default(),
            true,
        )
        .await?;
    }
    let mut samples = Samples::default();
    for round in 1..=args.rounds {
        let started = Instant::now();
        for engine in Engine::ALL {
            measure_once(&mut engines, engine, &prompts, args, &mut samples, false).await?;
        }
        eprintln!(
            "round {round}/{}: {:.0} s",
            args.rounds,
            started.elapsed().as_secs_f64()
        );
    }
    let report = report::Report {
        model: args.model.display().to_string(),
        cpus,
        threads,
        rounds: args.rounds,
        prefill_prompt_tokens: n,
        decode_tokens: args.decode_tokens,
        score_tokens: args.score_tokens,
        notes,
        samples,
    };
    print!("{}", report.table());
    if let Some(out) = &args.out {
        std::fs::write(out, report.json()?)
            .with_context(|| format!("cannot write {}", out.display()))?;
    }
    engines.gateway.stop().await;
    if let Some(l) = engines.llama {
        l.stop().await;
    }
    Ok(())
}

/// Every measurement once on one engine.
async fn measure_once(
    e: &mut Engines,
    engine: Engine,
    p: &Prompts,
    args: &LocalBench,
    out: &mut Samples,
    warmup: bool,
) -> anyhow::Result<()> {
    let (decode_max, score_max) = if warmup {
        (8, 4)
    } else {
        (args.decode_tokens, args.score_tokens)
    };
    // prefill: one token after the long prompt
    let r = match engine {
        Engine::Raw => e.raw.timed(&p.prefill, 1, false).await?,
        Engine::Gateway => e.gateway.stream(&p.prefill, 1).await?,
        Engine::Llama => match e.llama.as_mut() {
            Some(l) => l.run(&p.prefill_ids, 1, false).await?,
            None => return Ok(()),
        },
    };
    out.push(Metric::Prefill, engine, prefill_tps(&r));
    // decode: one stream of decode_max tokens
    let r = match engine {
        Engine::Raw => e.raw.timed(&p.decode, decode_max, false).await?,
        Engine::Gateway => e.gateway.stream(&p.decode, decode_max).await?,
        Engine::Llama => match e.llama.as_mut() {
            Some(l) => l.run(&p.decode_ids, decode_max, false).await?,
            None => return Ok(()),
        },
    };
    if let Some(tps) = decode_tps(&r) {
        out.push(Metric::Decode, engine, tps);
    }
    out.push(Metric::DecodeTokens, engine, f64::from(r.completion_tokens));
    // scoring: a short draft with per-step log-softmax statistics
    let latency = match engine {
        Engine::Raw => e.raw.timed(&p.score, score_max, true).await?.last,
        Engine::Gateway => e.gateway.score(&p.score, score_max).await?,
        Engine::Llama => match e.llama.as_mut() {
            Some(l) => l.run(&p.score_ids, score_max, true).await?.last,
            None => return Ok(()),
        },
    };
    out.push(Metric::ScoreMs, engine, latency.as_secs_f64() * 1e3);
    // aggregate throughput under concurrency (not llama.cpp: one sequence per context)
    if engine == Engine::Llama {
        return Ok(());
    }
    for &n in &args.concurrency {
        let started = Instant::now();
        let runs = futures::future::join_all((0..n).map(|_| async {
            match engine {
                Engine::Raw => e
                    .raw
                    .timed(&p.decode, decode_max, false)
                    .await
                    .map_err(anyhow::Error::from),
                _ => e.gateway.stream(&p.decode, decode_max).await,
            }
        }))
        .await;
        let wall = started.elapsed().as_secs_f64();
        let mut tokens = 0u64;
        for r in runs {
            tokens += u64::from(r?.completion_tokens);
        }
        out.push(Metric::Aggregate(n), engine, tokens as f64 / wall);
    }
    Ok(())
}
