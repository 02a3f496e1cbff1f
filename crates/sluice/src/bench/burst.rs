//! `sluice bench burst`: a burst of concurrent `ROUTE_HINT_AUTO` requests on the real local
//! model, with the local queue bounded (`local.max_queue`, overflow sent to a fast upstream)
//! and effectively unbounded, each configuration in its own child process so its memory is
//! its own; rounds alternate the two. Reports outcomes, latency and RSS, medians of rounds.
//! With `--with-env KEY=VALUE` the pair is the bounded configuration as it is and with that
//! environment variable (e.g. glibc's `MALLOC_ARENA_MAX`), to tell what a setting changes.

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use sluice_policy::{Message, Role};
use sluice_proto::v1 as pb;
use sluice_slm::SlmModel;

use super::gateway::{messages, Gateway};
use super::{median, quantile, upstream};
use crate::cli::BurstBench;

/// `local.max_queue` of the unbounded configuration: the largest a policy takes.
const UNBOUNDED: u32 = 4096;

/// What one child measured.
#[derive(Debug, Serialize, Deserialize)]
struct Sample {
    max_queue: u32,
    local: usize,
    remote: usize,
    errors: usize,
    first_error: Option<String>,
    /// Per request, from send to answer.
    latencies_ms: Vec<f64>,
    wall_s: f64,
    /// Resident memory after the model loaded and answered one request.
    rss_loaded_mb: f64,
    /// Resident memory once the burst is over.
    rss_after_mb: f64,
    /// Peak resident memory of the process.
    peak_mb: f64,
}

fn policy(max_tokens: u32, max_queue: u32, upstream: &str) -> String {
    format!(
        "version: 1\nname: default\nlocal: {{ model: bench, max_tokens: {max_tokens}, \
         max_queue: {max_queue} }}\ntiers:\n  - {{ name: large, provider: openai, base_url: \
         \"{upstream}\", model: fast, price: {{ input_per_mtok: 0.15, output_per_mtok: 0.60 }}, \
         timeout: 30s }}\nscoring:\n  method: answer_confidence\n  threshold: 0.5\n  \
         weights: {{ bias: 10.0 }}\ncache:\n  mode: off\n"
    )
}

fn question(i: u32) -> Vec<Message> {
    vec![Message {
        role: Role::User,
        content: format!(
            "Question {i}: in one short paragraph, explain why the sky looks blue at noon \
             and red at sunset."
        ),
    }]
}

/// VmRSS and VmHWM of this process, in MB.
fn memory_mb() -> anyhow::Result<(f64, f64)> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let field = |name: &str| -> anyhow::Result<f64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("no {name} in /proc/self/status"))?;
        let kb: f64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("unreadable {line:?}"))?;
        Ok(kb / 1024.0)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

pub fn run(args: &BurstBench) -> anyhow::Result<ExitCode> {
    super::require_model(&args.model)?;
    let runtime = super::runtime()?;
    if let Some(max_queue) = args.child {
        let sample = runtime.block_on(child(args, max_queue))?;
        println!("{}", serde_json::to_string(&sample)?);
        return Ok(ExitCode::SUCCESS);
    }
    parent(args)
}

/// One configuration: load the model, answer one request, fire the burst.
async fn child(args: &BurstBench, max_queue: u32) -> anyhow::Result<Sample> {
    let model = Arc::new(SlmModel::load(&args.model).await?);
    let url = upstream::start().await?;
    let gw = Gateway::with_policy(model, &policy(args.max_tokens, max_queue, &url)).await?;
    let ask = |i: u32| pb::ChatRequest {
        messages: messages(&question(i)),
        route_hint: pb::RouteHint::Auto.into(),
        ..Default::default()
    };
    gw.client()
        .chat(ask(u32::MAX))
        .await
        .context("the warm-up request failed")?;
    let (rss_loaded_mb, _) = memory_mb()?;
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.requests)
        .map(|i| {
            let mut client = gw.client();
            let req = ask(i);
            tokio::spawn(async move {
                let sent = Instant::now();
                let r = client.chat(req).await;
                (sent.elapsed(), r)
            })
        })
        .collect();
    let mut sample = Sample {
        max_queue,
        local: 0,
        remote: 0,
        errors: 0,
        first_error: None,
        latencies_ms: Vec::with_capacity(tasks.len()),
        wall_s: 0.0,
        rss_loaded_mb,
        rss_after_mb: 0.0,
        peak_mb: 0.0,
    };
    for task in tasks {
        let (took, result) = task.await?;
        sample.latencies_ms.push(took.as_secs_f64() * 1000.0);
        match result.map(|r| r.into_inner().route.map(|r| r.kind())) {
            Ok(Some(pb::RouteKind::Local)) => sample.local += 1,
            Ok(_) => sample.remote += 1,
            Err(e) => {
                sample.errors += 1;
                sample.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    sample.wall_s = started.elapsed().as_secs_f64();
    // Let the allocator settle before reading what the burst left behind.
    tokio::time::sleep(Duration::from_millis(500)).await;
    (sample.rss_after_mb, sample.peak_mb) = memory_mb()?;
    gw.stop().await;
    Ok(sample)
}

/// One configuration of the comparison: its name, `local.max_queue`, and an environment
/// variable set for its process (`None`: the environment as inherited).
struct Config {
    name: String,
    max_queue: u32,
    env: Option<(String, String)>,
}

fn run_child(args: &BurstBench, config: &Config) -> anyhow::Result<Sample> {
    let max_queue = config.max_queue;
    let exe = std::env::current_exe().context("cannot find the sluice binary")?;
    let mut command = Command::new(exe);
    if let Some((key, value)) = &config.env {
        command.env(key, value);
    }
    let out = command
        .args(["bench", "burst", "--child", &max_queue.to_string()])
        .args(["--model", &args.model.display().to_string()])
        .args(["--requests", &args.requests.to_string()])
        .args(["--max-tokens", &args.max_tokens.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .context("cannot start the bench child")?;
    if !out.status.success() {
        bail!(
            "the bench child (max_queue {max_queue}) failed: {}",
            out.status
        );
    }
    let line = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(line.trim()).with_context(|| format!("unreadable child output {line:?}"))
}

/// The `q` quantile of unsorted `v`.
fn quantile_of(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    quantile(&v, q)
}

fn parent(args: &BurstBench) -> anyhow::Result<ExitCode> {
    let config = |name: &str, max_queue, env| Config {
        name: name.to_owned(),
        max_queue,
        env,
    };
    let configs = match &args.with_env {
        None => [
            config("unbounded", UNBOUNDED, None),
            config("bounded", args.max_queue, None),
        ],
        Some((key, value)) => [
            config("bounded", args.max_queue, None),
            config(
                &format!("bounded, {key}={value}"),
                args.max_queue,
                Some((key.clone(), value.clone())),
            ),
        ],
    };
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(), Vec::new()];
    for round in 1..=args.rounds {
        for (i, c) in configs.iter().enumerate() {
            eprintln!(
                "round {round}/{}: {} (local.max_queue {}), {} concurrent requests…",
                args.rounds, c.name, c.max_queue, args.requests
            );
            let s = run_child(args, c)?;
            eprintln!(
                "  local {}, remote {}, errors {}, wall {:.1} s, RSS {:.0} → {:.0} MB (peak {:.0})",
                s.local, s.remote, s.errors, s.wall_s, s.rss_loaded_mb, s.rss_after_mb, s.peak_mb
            );
            samples[i].push(s);
        }
    }
    let rows: Vec<Row> = configs
        .iter()
        .zip(&samples)
        .map(|(c, s)| Row::of(&c.name, c.max_queue, s))
        .collect();
    print!("{}", report(args, &rows));
    if let Some(path) = &args.out {
        write_json(path, &samples)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Medians over the rounds of one configuration.
struct Row {
    name: String,
    max_queue: u32,
    local: f64,
    remote: f64,
    errors: f64,
    p50_ms: f64,
    p99_ms: f64,
    wall_s: f64,
    rss_loaded_mb: f64,
    rss_after_mb: f64,
    peak_mb: f64,
}

impl Row {
    fn of(name: &str, max_queue: u32, s: &[Sample]) -> Row {
        let m = |f: &dyn Fn(&Sample) -> f64| median(s.iter().map(f).collect());
        Row {
            name: name.to_owned(),
            max_queue,
            local: m(&|s| s.local as f64),
            remote: m(&|s| s.remote as f64),
            errors: m(&|s| s.errors as f64),
            p50_ms: m(&|s| quantile_of(s.latencies_ms.clone(), 0.5)),
            p99_ms: m(&|s| quantile_of(s.latencies_ms.clone(), 0.99)),
            wall_s: m(&|s| s.wall_s),
            rss_loaded_mb: m(&|s| s.rss_loaded_mb),
            rss_after_mb: m(&|s| s.rss_after_mb),
            peak_mb: m(&|s| s.peak_mb),
        }
    }
}

fn report(args: &BurstBench, rows: &[Row]) -> String {
    let mut out = format!(
        "\n{} concurrent ROUTE_HINT_AUTO requests, local answers of up to {} tokens, overflow \
         to an upstream that answers at once; medians of {} rounds\n\n",
        args.requests, args.max_tokens, args.rounds
    );
    out.push_str(
        "| config | local.max_queue | local | remote | errors | p50 ms | p99 ms | wall s | RSS loaded MB | RSS after MB | peak MB |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} | {:.0} | {:.0} | {:.0} |\n",
            r.name,
            r.max_queue,
            r.local,
            r.remote,
            r.errors,
            r.p50_ms,
            r.p99_ms,
            r.wall_s,
            r.rss_loaded_mb,
            r.rss_after_mb,
            r.peak_mb
        ));
    }
    if let [u, b] = rows {
        out.push_str(&format!(
            "\n{} / {}: p50 {:.3}×, p99 {:.2}×, peak RSS {:.2}×, RSS growth {:.0} MB vs {:.0} MB\n",
            b.name,
            u.name,
            b.p50_ms / u.p50_ms,
            b.p99_ms / u.p99_ms,
            b.peak_mb / u.peak_mb,
            b.rss_after_mb - b.rss_loaded_mb,
            u.rss_after_mb - u.rss_loaded_mb,
        ));
    }
    out
}

fn write_json(path: &Path, samples: &[Vec<Sample>]) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(samples)?;
    std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_medians() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile_of(v.clone(), 0.5), 50.0);
        assert_eq!(quantile_of(v.iter().rev().copied().collect(), 0.99), 99.0);
        assert_eq!(quantile_of(vec![3.0], 0.99), 3.0);
        assert!(median(vec![f64::NAN]).is_nan());
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn the_bench_policy_loads() {
        let p = sluice_policy::parse_policy(
            &policy(64, 16, "http://127.0.0.1:9"),
            Path::new("bench.yaml"),
            &|_| None,
        )
        .unwrap();
        assert_eq!((p.local.max_queue, p.local.max_tokens), (16, 64));
    }
}
