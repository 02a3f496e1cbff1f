//! `sluice bench shadow`: what shadow sampling costs the answers it samples. The real model
//! behind the gateway (in this process) and a fast in-process upstream; requests sent one
//! after another, so each answer's latency is the caller's. Four columns side by side in
//! one run, rounds alternating them: requests the score keeps local and requests it
//! escalates, each with `shadow:` off and at rate 1 (every request sampled: the tier asked
//! after a kept-local answer, the local model after an escalated one). Medians of rounds.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use serde::Serialize;
use sluice_policy::{Message, Role};
use sluice_proto::v1 as pb;
use sluice_slm::SlmModel;

use super::gateway::{messages, Gateway};
use super::{median, upstream};
use crate::cli::ShadowBench;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Route {
    Kept,
    Escalated,
}

/// `threshold: 0` keeps every scored request; `1` escalates every one. A pre-route method
/// (one prefill, no draft), as the shipped policies use: a kept request's answer is generated
/// after the decision, and an escalated request's sample needs the local model (a drafting
/// method's sample reuses the draft scoring made, which costs nothing).
fn policy(route: Route, shadow: bool, max_tokens: u32, upstream: &str) -> String {
    let threshold = match route {
        Route::Kept => 0,
        Route::Escalated => 1,
    };
    let mut p = format!(
        "version: 1\nname: default\nlocal: {{ model: bench, max_tokens: {max_tokens} }}\n\
         tiers:\n  - {{ name: large, provider: openai, base_url: \"{upstream}\", model: fast, \
         price: {{ input_per_mtok: 0.15, output_per_mtok: 0.60 }}, timeout: 30s }}\n\
         scoring:\n  method: prompt_surprise\n  threshold: {threshold}\n  \
         weights: {{ bias: 0.0, prompt_nll: 1.0 }}\ncache:\n  mode: off\n"
    );
    if shadow {
        p.push_str("shadow: { rate: 1, max_per_minute: 100000, budget_usd_daily: 1000 }\n");
    }
    p
}

const QUESTIONS: [&str; 8] = [
    "What is 7 plus 5?",
    "Can fish swim? Answer with one option. Options: yes / no",
    "Name the capital of France.",
    "How many legs does a spider have?",
    "What colour is the sky on a clear day?",
    "Is ice colder than steam? Answer with one option. Options: yes / no",
    "What is 12 minus 4?",
    "Name a planet in the solar system.",
];

#[derive(Debug, Serialize)]
struct Sample {
    route: Route,
    shadow: bool,
    round: u32,
    median_ms: f64,
    /// Samples both sides answered so far in this column's gateway (all rounds).
    samples_judged: f64,
}

/// One round of one column: the requests one after another; the median latency.
async fn round(gw: &Gateway, route: Route, requests: u32) -> anyhow::Result<f64> {
    let mut ms = Vec::with_capacity(requests as usize);
    for i in 0..requests {
        let q = QUESTIONS[i as usize % QUESTIONS.len()];
        let req = pb::ChatRequest {
            messages: messages(&[Message::new(Role::User, q)]),
            ..Default::default()
        };
        let sent = Instant::now();
        let r = gw.client().chat(req).await?.into_inner();
        ms.push(sent.elapsed().as_secs_f64() * 1e3);
        let kind = r.route.map(|r| r.kind());
        let want = match route {
            Route::Kept => pb::RouteKind::Local,
            Route::Escalated => pb::RouteKind::Remote,
        };
        if kind != Some(want) {
            bail!("expected route {want:?}, got {kind:?}");
        }
    }
    Ok(median(ms))
}

pub fn run(args: &ShadowBench) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        let model = Arc::new(SlmModel::load(&args.model).await?);
        let url = upstream::start().await?;
        let columns = [
            (Route::Kept, false),
            (Route::Kept, true),
            (Route::Escalated, false),
            (Route::Escalated, true),
        ];
        let mut gateways = Vec::new();
        for (route, shadow) in columns {
            let yaml = policy(route, shadow, args.max_tokens, &url);
            let gw = Gateway::with_policy(model.clone(), &yaml).await?;
            // One answer first, so no column pays a first-call cost.
            round(&gw, route, 1).await?;
            gateways.push(gw);
        }
        let mut samples = Vec::new();
        for r in 0..args.rounds {
            for (i, &(route, shadow)) in columns.iter().enumerate() {
                let median_ms = round(&gateways[i], route, args.requests).await?;
                eprintln!(
                    "bench shadow: round {} {:?} shadow {}: median {median_ms:.1} ms",
                    r + 1,
                    route,
                    if shadow { "on" } else { "off" }
                );
                samples.push(Sample {
                    route,
                    shadow,
                    round: r + 1,
                    median_ms,
                    samples_judged: gateways[i].shadow_samples(),
                });
                // Let this column's last sample finish before the next column starts.
                tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
            }
        }
        println!("| requests | shadow off (median ms) | shadow on, rate 1 | on / off |");
        println!("|---|---|---|---|");
        for route in [Route::Kept, Route::Escalated] {
            let of = |on: bool| {
                median(
                    samples
                        .iter()
                        .filter(|s| s.route == route && s.shadow == on)
                        .map(|s| s.median_ms)
                        .collect(),
                )
            };
            let (off, on) = (of(false), of(true));
            let label = match route {
                Route::Kept => "kept local (the tier asked after)",
                Route::Escalated => "escalated (the local model answers after)",
            };
            println!("| {label} | {off:.1} | {on:.1} | {:.3} |", on / off);
        }
        if let Some(path) = &args.out {
            std::fs::write(path, serde_json::to_string_pretty(&samples)? + "\n")
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        anyhow::Ok(ExitCode::SUCCESS)
    })
}
