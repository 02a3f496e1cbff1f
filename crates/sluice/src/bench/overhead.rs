//! `sluice bench gateway`: what the gateway adds to the requests it forwards. Open-loop load
//! at fixed arrival rates on the remote path (the REMOTE hint, so no local model work)
//! against an upstream that answers at once, side by side in one run: the upstream called
//! directly, Sluice over gRPC, Sluice over HTTP, and LiteLLM's proxy when it is installed.
//! Rounds alternate the columns; latency is measured from each request's scheduled send time
//! (no coordinated omission); reported as medians of the rounds.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use serde_json::json;
use sluice_proto::v1 as pb;
use sluice_proto::v1::router_client::RouterClient;
use tokio::sync::mpsc;
use tonic::transport::Channel;

mod procs;

use super::{median, quantile, upstream};
use crate::cli::GatewayBench;
use procs::{cpu_seconds, rss_mb, settle, start_litellm, start_sluice, LITELLM_KEY, SETTLE_LIMIT};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Column {
    Direct,
    SluiceGrpc,
    SluiceHttp,
    Litellm,
}

impl Column {
    fn label(self) -> &'static str {
        match self {
            Column::Direct => "upstream direct",
            Column::SluiceGrpc => "Sluice gRPC",
            Column::SluiceHttp => "Sluice HTTP",
            Column::Litellm => "LiteLLM proxy",
        }
    }
}

/// One round of one column at one rate.
#[derive(Debug, Clone, Serialize)]
struct Sample {
    column: Column,
    round: u32,
    rate: u32,
    sent: usize,
    errors: usize,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    /// CPU seconds of the gateway process per 1,000 requests (none for the direct column).
    cpu_s_per_1k: Option<f64>,
    rss_mb: Option<f64>,
}

/// How one request is sent.
#[derive(Clone)]
enum Target {
    Http {
        url: String,
        remote_header: bool,
        bearer: Option<String>,
        client: reqwest::Client,
    },
    /// Clients on separate connections, taken in turn.
    Grpc(Arc<[RouterClient<Channel>]>, Arc<AtomicUsize>),
}

const PROMPT: &str = "Summarise the plot of Hamlet in one sentence.";

impl Target {
    async fn once(&self, stream: bool) -> Result<Duration, String> {
        let t = Instant::now();
        match self {
            Target::Http {
                url,
                remote_header,
                bearer,
                client,
            } => {
                let body = json!({ "model": if *remote_header { "sluice" } else { "fast" },
                    "messages": [{ "role": "user", "content": PROMPT }], "stream": stream });
                let mut req = client.post(url).json(&body);
                if *remote_header {
                    req = req.header("x-sluice-route-hint", "remote");
                }
                if let Some(key) = bearer {
                    req = req.bearer_auth(key);
                }
                let r = req.send().await.map_err(|e| e.to_string())?;
                if !r.status().is_success() {
                    return Err(format!("status {}", r.status()));
                }
                if stream {
                    use futures::StreamExt;
                    let mut body = r.bytes_stream();
                    while let Some(chunk) = body.next().await {
                        let chunk = chunk.map_err(|e| e.to_string())?;
                        if chunk.windows(9).any(|w| w == b"\"content\"") {
                            return Ok(t.elapsed());
                        }
                    }
                    return Err("no content chunk".into());
                }
                r.bytes().await.map_err(|e| e.to_string())?;
            }
            Target::Grpc(clients, next) => {
                let client = &clients[next.fetch_add(1, Ordering::Relaxed) % clients.len()];
                let req = pb::ChatRequest {
                    messages: vec![pb::Message {
                        role: pb::Role::User.into(),
                        content: PROMPT.into(),
                    }],
                    route_hint: pb::RouteHint::Remote.into(),
                    ..Default::default()
                };
                let mut c = client.clone();
                if stream {
                    let mut s = c
                        .chat_stream(req)
                        .await
                        .map_err(|e| e.to_string())?
                        .into_inner();
                    while let Some(chunk) = s.message().await.map_err(|e| e.to_string())? {
                        if !chunk.delta.is_empty() {
                            return Ok(t.elapsed());
                        }
                    }
                    return Err("no content chunk".into());
                }
                c.chat(req).await.map_err(|e| e.to_string())?;
            }
        }
        Ok(t.elapsed())
    }
}

/// Open loop: a request every 1/rate s for `secs`, latency from its scheduled time.
async fn open_loop(target: &Target, rate: u32, secs: f64) -> (Vec<f64>, usize) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Result<f64, ()>>();
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let n = (secs * f64::from(rate)) as usize;
    let start = tokio::time::Instant::now();
    for i in 0..n {
        let at = start + interval * i as u32;
        tokio::time::sleep_until(at).await;
        let (t, tx) = (target.clone(), tx.clone());
        tokio::spawn(async move {
            let r = t.once(false).await;
            let done = tokio::time::Instant::now();
            let _ = tx.send(
                r.map(|_| (done - at).as_secs_f64() * 1000.0)
                    .map_err(|_| ()),
            );
        });
    }
    drop(tx);
    let (mut ok, mut errors) = (Vec::with_capacity(n), 0);
    while let Some(r) = rx.recv().await {
        match r {
            Ok(ms) => ok.push(ms),
            Err(()) => errors += 1,
        }
    }
    ok.sort_by(f64::total_cmp);
    (ok, errors)
}

pub fn run(args: &GatewayBench) -> anyhow::Result<ExitCode> {
    // `sluice serve` loads the model even when every request goes to the tier.
    super::require_model(&args.model)?;
    super::runtime()?.block_on(bench(args))?;
    Ok(ExitCode::SUCCESS)
}

async fn bench(args: &GatewayBench) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("sluice-bench-gw-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let up = upstream::start().await?;
    let (sluice, grpc_url, http_url) = start_sluice(args, &up, &dir).await?;
    // A request not answered in 10 s counts as an error rather than holding the round open.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(10))
        .build()?;
    let mut grpc = Vec::new();
    for _ in 0..args.grpc_connections.max(1) {
        grpc.push(RouterClient::connect(grpc_url.clone()).await?);
    }
    let grpc = Target::Grpc(grpc.into(), Arc::new(AtomicUsize::new(0)));
    let mut targets: Vec<(Column, Target, Option<u32>)> = vec![
        (
            Column::Direct,
            Target::Http {
                url: format!("{up}/v1/chat/completions"),
                remote_header: false,
                bearer: None,
                client: http.clone(),
            },
            None,
        ),
        (Column::SluiceGrpc, grpc, Some(sluice.pid())),
        (
            Column::SluiceHttp,
            Target::Http {
                url: format!("{http_url}/v1/chat/completions"),
                remote_header: true,
                bearer: None,
                client: http.clone(),
            },
            Some(sluice.pid()),
        ),
    ];
    let mut notes = Vec::new();
    let litellm = if args.no_litellm {
        notes.push("LiteLLM: left out (--no-litellm)".to_owned());
        None
    } else {
        match start_litellm(args, &up, &dir).await {
            Ok((proc, base)) => {
                targets.push((
                    Column::Litellm,
                    Target::Http {
                        url: format!("{base}/v1/chat/completions"),
                        remote_header: false,
                        bearer: Some(LITELLM_KEY.to_owned()),
                        client: http.clone(),
                    },
                    Some(proc.pid()),
                ));
                Some(proc)
            }
            Err(why) => {
                eprintln!("LiteLLM: skipped, {why}");
                notes.push(format!("LiteLLM: skipped, {why}"));
                None
            }
        }
    };
    // Warm-up: connections, pools, first allocations.
    for (_, t, _) in &targets {
        for _ in 0..50 {
            t.once(false)
                .await
                .map_err(|e| anyhow::anyhow!("warm-up failed: {e}"))?;
        }
    }
    let mut samples = Vec::new();
    let mut saturated: Vec<(u32, Column)> = Vec::new();
    for round in 1..=args.rounds {
        for &rate in &args.rates {
            // Alternate the order of the columns from round to round.
            let mut order: Vec<usize> = (0..targets.len()).collect();
            if round % 2 == 0 {
                order.reverse();
            }
            for i in order {
                let (column, target, pid) = &targets[i];
                // A rate the column did not sustain is not offered again, nor any higher one.
                if saturated.iter().any(|(at, c)| c == column && rate >= *at) {
                    continue;
                }
                let cpu0 = pid.and_then(cpu_seconds);
                let (lat, errors) = open_loop(target, rate, args.seconds).await;
                let cpu1 = pid.and_then(cpu_seconds);
                let sent = lat.len() + errors;
                let s = Sample {
                    column: *column,
                    round,
                    rate,
                    sent,
                    errors,
                    p50_ms: quantile(&lat, 0.5),
                    p99_ms: quantile(&lat, 0.99),
                    p999_ms: quantile(&lat, 0.999),
                    cpu_s_per_1k: cpu0
                        .zip(cpu1)
                        .map(|(a, b)| (b - a) / sent.max(1) as f64 * 1000.0),
                    rss_mb: pid.and_then(rss_mb),
                };
                eprintln!(
                    "round {round}/{} {rate}/s {}: p50 {:.3} ms p99 {:.3} ms p99.9 {:.3} ms, {} errors of {}",
                    args.rounds, column.label(), s.p50_ms, s.p99_ms, s.p999_ms, s.errors, s.sent
                );
                // Not sustained: errors, or answers queueing past a second. Higher rates would
                // only queue longer, so neither it nor they are offered to this column again.
                let failed = s.errors as f64 > 0.001 * s.sent as f64 || s.p99_ms > 1000.0;
                samples.push(s);
                if failed && !saturated.iter().any(|(_, c)| c == column) {
                    eprintln!(
                        "  {} did not sustain {rate}/s: it and higher rates skipped from now on",
                        column.label()
                    );
                    saturated.push((rate, *column));
                    // A proxy may go on working through requests its callers gave up on; the
                    // next column must not share the cores with that.
                    if let Some(pid) = pid {
                        let waited = settle(*pid).await;
                        eprintln!("  waited {waited:.0} s for it to go idle");
                        if waited >= SETTLE_LIMIT.as_secs_f64() {
                            notes.push(format!(
                                "{} was still busy {} s after its {rate}/s round; later rounds \
                                 shared the cores with it",
                                column.label(),
                                SETTLE_LIMIT.as_secs()
                            ));
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    // Time to first token on a streamed answer, one request at a time.
    let mut ttft = Vec::new();
    for (column, target, _) in &targets {
        let mut v = Vec::new();
        for _ in 0..args.ttft_requests {
            if let Ok(d) = target.once(true).await {
                v.push(d.as_secs_f64() * 1000.0);
            }
        }
        v.sort_by(f64::total_cmp);
        ttft.push((*column, quantile(&v, 0.5), quantile(&v, 0.99), v.len()));
    }
    let columns: Vec<Column> = targets.iter().map(|(c, _, _)| *c).collect();
    print!("{}", report(args, &columns, &samples, &ttft, &notes));
    if let Some(path) = &args.out {
        std::fs::write(
            path,
            serde_json::to_string_pretty(&json!({ "samples": samples, "notes": notes }))?,
        )
        .with_context(|| format!("cannot write {}", path.display()))?;
    }
    drop(litellm);
    drop(sluice);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn report(
    args: &GatewayBench,
    columns: &[Column],
    samples: &[Sample],
    ttft: &[(Column, f64, f64, usize)],
    notes: &[String],
) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nopen-loop load on the remote path against an upstream that answers at once; {} s per \
         round, {} rounds, medians of the rounds; added = the column's quantile less the direct \
         call's in the same round\n",
        args.seconds, args.rounds
    );
    out.push_str("| rate/s | column | p50 ms | p99 ms | p99.9 ms | added p50 ms | added p99 ms | added p99.9 ms | errors | CPU s / 1k req | RSS MB |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    let rounds = |col: Column, rate: u32| -> Vec<&Sample> {
        samples
            .iter()
            .filter(|s| s.column == col && s.rate == rate)
            .collect()
    };
    for &rate in &args.rates {
        let direct = rounds(Column::Direct, rate);
        for &col in columns {
            let rs = rounds(col, rate);
            if rs.is_empty() {
                let _ = writeln!(
                    out,
                    "| {rate} | {} | not offered: a lower rate was not sustained | | | | | | | | |",
                    col.label()
                );
                continue;
            }
            let m = |f: &dyn Fn(&Sample) -> f64| median(rs.iter().map(|s| f(s)).collect());
            let added = |f: &dyn Fn(&Sample) -> f64| {
                median(
                    rs.iter()
                        .filter_map(|s| {
                            direct
                                .iter()
                                .find(|d| d.round == s.round)
                                .map(|d| f(s) - f(d))
                        })
                        .collect(),
                )
            };
            let errors: usize = rs.iter().map(|s| s.errors).sum();
            let sent: usize = rs.iter().map(|s| s.sent).sum();
            let cpu = median(rs.iter().filter_map(|s| s.cpu_s_per_1k).collect());
            let rss = median(rs.iter().filter_map(|s| s.rss_mb).collect());
            let opt = |v: f64, p: usize| {
                if v.is_finite() {
                    format!("{v:.p$}")
                } else {
                    "–".into()
                }
            };
            // A rate not sustained is run once only.
            let label = if rs.len() < args.rounds as usize {
                format!("{} ({} of {} rounds)", col.label(), rs.len(), args.rounds)
            } else {
                col.label().to_owned()
            };
            let _ = writeln!(
                out,
                "| {rate} | {label} | {:.3} | {:.3} | {:.3} | {} | {} | {} | {errors} of {sent} | {} | {} |",
                m(&|s| s.p50_ms),
                m(&|s| s.p99_ms),
                m(&|s| s.p999_ms),
                if col == Column::Direct { "–".into() } else { opt(added(&|s| s.p50_ms), 3) },
                if col == Column::Direct { "–".into() } else { opt(added(&|s| s.p99_ms), 3) },
                if col == Column::Direct { "–".into() } else { opt(added(&|s| s.p999_ms), 3) },
                opt(cpu, 3),
                opt(rss, 0),
            );
        }
    }
    let _ = writeln!(
        out,
        "\ntime to the first content chunk of a streamed answer, {} requests one at a time\n",
        args.ttft_requests
    );
    out.push_str("| column | p50 ms | p99 ms | answered |\n|---|---|---|---|\n");
    for (col, p50, p99, n) in ttft {
        let _ = writeln!(out, "| {} | {p50:.3} | {p99:.3} | {n} |", col.label());
    }
    for n in notes {
        let _ = writeln!(out, "\n{n}");
    }
    out
}
