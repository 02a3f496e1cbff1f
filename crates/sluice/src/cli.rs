//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The model `serve` loads unless told otherwise: `scripts/fetch-model` fetches
/// [`SHIPPED_MODEL`] and prepares this file from it with `sluice model prepare`.
pub const DEFAULT_MODEL: &str = "models/SmolLM2-135M-Instruct.Q8_0.gguf";

/// The model file as published (Q4_1), which `sluice model prepare` reads.
pub const SHIPPED_MODEL: &str = "models/SmolLM2-135M-Instruct.Q4_1.gguf";

#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    about = "LLM cost-cutting gateway: answers easy requests with an in-process small model, escalates hard ones"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve gRPC (Router, Admin, health, reflection), the OpenAI-compatible HTTP API and
    /// admin HTTP (/metrics, /healthz, /readyz).
    Serve {
        /// Policy file, or a directory of policy files.
        #[arg(long, env = "SLUICE_POLICY", default_value = "policies/default.yaml")]
        policy: PathBuf,
        /// gRPC listen address.
        #[arg(long, env = "SLUICE_GRPC_LISTEN", default_value = "127.0.0.1:50051")]
        grpc_listen: String,
        /// Admin HTTP listen address.
        #[arg(long, env = "SLUICE_ADMIN_LISTEN", default_value = "127.0.0.1:9464")]
        admin_listen: String,
        /// OpenAI-compatible HTTP API listen address (`POST /v1/chat/completions`,
        /// `GET /v1/models`); `off` serves none.
        #[arg(long, env = "SLUICE_HTTP_LISTEN", default_value = "127.0.0.1:8000")]
        http_listen: String,
        /// GGUF file of the local model.
        #[arg(long, env = "SLUICE_MODEL", default_value = DEFAULT_MODEL)]
        model: PathBuf,
        /// Tenants file (API keys → tenants); without it authentication is off.
        #[arg(long, env = "SLUICE_TENANTS")]
        tenants: Option<PathBuf>,
        /// Redis shared by replicas (response cache and spend ledger), e.g.
        /// redis://127.0.0.1:6379 or rediss://user:password@host:6380/0 (TLS). AUTH without
        /// the password in the URL: set SLUICE_REDIS_PASSWORD (and SLUICE_REDIS_USERNAME).
        #[arg(long, env = "SLUICE_REDIS_URL")]
        redis_url: Option<String>,
        /// PEM file of the CA that signed the Redis server's certificate (rediss:// with a
        /// private CA); default: the built-in web roots.
        #[arg(long, env = "SLUICE_REDIS_CA")]
        redis_ca: Option<PathBuf>,
        /// Check the policy file or directory this often (seconds) and reload it when it
        /// changed; 0 turns watching off (Admin.ReloadPolicy still works).
        #[arg(long, env = "SLUICE_POLICY_WATCH_SECS", default_value_t = 2.0, value_parser = seconds)]
        policy_watch_secs: f64,
        /// On SIGTERM or Ctrl-C, report not ready (/readyz 503, gRPC health NOT_SERVING) and
        /// keep serving this long, so load balancers stop sending first; then stop accepting
        /// and let in-flight requests finish.
        #[arg(long, env = "SLUICE_DRAIN_SECS", default_value_t = 0.0, value_parser = seconds)]
        drain_secs: f64,
        /// Most HTTP API connections open at once; further ones wait in the kernel's accept
        /// queue until one closes (an HTTP/1.1 client opens one per request in flight).
        #[arg(long, env = "SLUICE_HTTP_MAX_CONNECTIONS", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
        http_max_connections: u32,
        /// Write every judged shadow sample (a policy's `shadow:`) here, one directory per
        /// tenant, a JSONL file per UTC day; `sluice calibrate --rows DIR` refits a policy on
        /// them. Off when unset.
        #[arg(long, env = "SLUICE_SAMPLES_DIR")]
        samples_dir: Option<PathBuf>,
        /// Most megabytes of samples kept per tenant; the oldest files are deleted first.
        #[arg(long, env = "SLUICE_SAMPLES_MAX_MB", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
        samples_max_mb: u64,
        /// Write the tier's answers to escalated requests of the tenants a policy's
        /// `distill:` names here, as chat fine-tuning examples (one directory per tenant, a
        /// JSONL file per UTC day); `sluice distill export` gathers them. Off when unset.
        #[arg(long, env = "SLUICE_DISTILL_DIR")]
        distill_dir: Option<PathBuf>,
        /// Most megabytes of examples kept per tenant; the oldest files are deleted first.
        #[arg(long, env = "SLUICE_DISTILL_MAX_MB", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
        distill_max_mb: u64,
        /// OTLP/gRPC collector for traces, e.g. http://otel-collector:4317; unset: no traces.
        #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
        otlp_endpoint: Option<String>,
        /// Put prompts and answers into trace spans (gen_ai.input.messages /
        /// gen_ai.output.messages); off: routing, usage and timings only.
        #[arg(long, env = "SLUICE_TRACE_CONTENT")]
        trace_content: bool,
    },
    /// Run the local model over labelled prompts (JSONL), grade each draft, and report how
    /// well confidence separates right drafts from wrong ones (AUROC, AUPRC, fitted weights)
    /// and, given the large model's answers, routed accuracy, PGR/APGR and cost by share
    /// escalated.
    Eval {
        #[command(flatten)]
        run: DraftRun,
        #[command(flatten)]
        large: LargeArgs,
        /// Write one JSON line per item (features, grade, draft) here; --rows reads it back.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Write the report as JSON here.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Write an SVG plot of routed accuracy against share escalated here (needs the large
        /// model's answers).
        #[arg(long)]
        plot: Option<PathBuf>,
    },
    /// Fit the policy's weights on labelled prompts and pick the threshold for a target
    /// escalation rate or quality; print the calibrated policy, or write it with --out / --write.
    #[command(group(clap::ArgGroup::new("target").required(true).args(["target_escalation", "target_quality"])))]
    Calibrate {
        #[command(flatten)]
        run: DraftRun,
        #[command(flatten)]
        large: LargeArgs,
        /// Share of requests to escalate, in [0, 1].
        #[arg(long, value_parser = share)]
        target_escalation: Option<f64>,
        /// Routed accuracy to reach, as a share of large-only accuracy in [0, 1] (e.g. 0.95);
        /// escalates as little as reaches it. Needs the large model's answers.
        #[arg(long, value_parser = share)]
        target_quality: Option<f64>,
        /// Fit only these features: names, or the groups draft, text, prefill, probe
        /// (comma-separated); default: every feature the policy's scoring method computes.
        #[arg(long, value_delimiter = ',')]
        features: Vec<String>,
        /// Calibrate for this scoring method instead of the policy's (answer_confidence,
        /// difficulty_probe, prompt_surprise, prefill_probe, cascade); the policy is written
        /// with it.
        #[arg(long, value_parser = scoring_method)]
        method: Option<sluice_policy::ScoringMethod>,
        /// Fit the hidden-state probe on the prompts (needs the model file), write it to this
        /// file, and name it in the policy; the weights are fitted on its held-out scores.
        #[arg(long)]
        fit_probe: Option<PathBuf>,
        /// Write the calibrated policy to this file.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Write the calibrated policy over --policy.
        #[arg(long)]
        write: bool,
    },
    /// Show which rule of a policy matches a prompt and why, and what scoring would decide;
    /// calls no tier.
    Explain {
        /// Policy file.
        #[arg(long, default_value = "policies/default.yaml")]
        policy: PathBuf,
        /// The user message to route.
        #[arg(long)]
        prompt: String,
        /// The caller's tenant (as authentication would name it).
        #[arg(long, default_value = "default")]
        tenant: String,
        /// A request tag, KEY=VALUE; repeat for several.
        #[arg(long = "tag")]
        tags: Vec<String>,
        #[arg(long, env = "SLUICE_MODEL", default_value = DEFAULT_MODEL)]
        model: PathBuf,
        /// Evaluate the rules only, without loading the model (no scoring, and prompt_tokens
        /// conditions never match).
        #[arg(long)]
        rules_only: bool,
    },
    /// Work with policy files.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Prepare model files.
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
    /// Benchmarks (see BENCHMARKS.md).
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Fine-tuning data the gateway collected (`distill:` with `serve --distill-dir`).
    Distill {
        #[command(subcommand)]
        command: DistillCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum DistillCommand {
    /// Gather the examples into a training and a validation file in the chat fine-tuning
    /// format: every line checked, exact repeats dropped, split by each example's content.
    Export {
        /// The directory `serve --distill-dir` writes.
        #[arg(long)]
        dir: PathBuf,
        /// Only this tenant's examples; default: every tenant's.
        #[arg(long)]
        tenant: Option<String>,
        /// Only examples of this UTC day (YYYY-MM-DD) and later.
        #[arg(long)]
        since: Option<String>,
        /// The training file to write.
        #[arg(long)]
        out: PathBuf,
        /// The validation file to write.
        #[arg(long)]
        validation: Option<PathBuf>,
        /// Share of the examples that go to the validation file, in [0, 1).
        #[arg(long, default_value_t = 0.1)]
        validation_share: f64,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// The local model's speed, side by side in one run: raw mistral.rs, the gateway's local
    /// path over gRPC, and llama.cpp (through llama-cpp-python, when installed) on the same
    /// file and threads. Prefill and decode tok/s, scoring latency, aggregate tok/s under
    /// concurrency; medians of the rounds and ratios.
    Local(LocalBench),
    /// A burst of concurrent ROUTE_HINT_AUTO requests on the real model with the local queue
    /// bounded (`local.max_queue`, overflow to a fast in-process upstream) and unbounded,
    /// each in its own process, rounds alternating: outcomes, latency, RSS.
    Burst(BurstBench),
    /// What the gateway adds on the remote path: open-loop load at fixed rates against an
    /// upstream that answers at once, side by side in one run: the upstream directly, Sluice
    /// over gRPC and over HTTP (a `sluice serve` child), LiteLLM's proxy when installed.
    Gateway(GatewayBench),
    /// What shadow sampling costs the answers it samples: the real model and a fast
    /// in-process upstream, requests one after another, kept-local and escalated requests
    /// each with `shadow:` off and at rate 1, side by side in one run; medians of rounds.
    Shadow(ShadowBench),
}

#[derive(Debug, Args)]
pub struct ShadowBench {
    /// GGUF file to serve.
    #[arg(long, env = "SLUICE_MODEL", default_value = DEFAULT_MODEL)]
    pub model: PathBuf,
    /// Requests per column and round.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub requests: u32,
    /// Rounds; each runs every column once.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// `local.max_tokens`: the longest local answer.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_tokens: u32,
    /// Also write every round's figures as JSON here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct GatewayBench {
    /// GGUF file `sluice serve` loads (unused on the remote path, but served as always).
    #[arg(long, env = "SLUICE_MODEL", default_value = DEFAULT_MODEL)]
    pub model: PathBuf,
    /// Arrival rates, requests per second, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "500,1000,2000")]
    pub rates: Vec<u32>,
    /// Seconds per column per rate per round.
    #[arg(long, default_value_t = 30.0)]
    pub seconds: f64,
    /// Rounds; each runs every column at every rate.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// Streamed requests, one at a time, for the time-to-first-token figures.
    #[arg(long, default_value_t = 200)]
    pub ttft_requests: usize,
    /// The `litellm` executable; default ~/.cache/sluice/litellm-venv/bin/litellm.
    #[arg(long, env = "SLUICE_BENCH_LITELLM")]
    pub litellm: Option<PathBuf>,
    /// Leave LiteLLM out.
    #[arg(long)]
    pub no_litellm: bool,
    /// gRPC connections the load is spread over (a fleet of callers has many).
    #[arg(long, default_value_t = 1)]
    pub grpc_connections: usize,
    /// Also write every sample as JSON here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BurstBench {
    /// GGUF file to serve.
    #[arg(long, env = "SLUICE_MODEL", default_value = DEFAULT_MODEL)]
    pub model: PathBuf,
    /// Concurrent requests in the burst.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub requests: u32,
    /// `local.max_queue` of the bounded configuration.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_queue: u32,
    /// Rounds; each runs both configurations.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// Longest local answer.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_tokens: u32,
    /// Also write every round's figures as JSON here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Compare instead the bounded configuration as it is with the same under this
    /// environment variable, KEY=VALUE (e.g. MALLOC_ARENA_MAX=2).
    #[arg(long, value_parser = key_value)]
    pub with_env: Option<(String, String)>,
    /// Run one configuration with this local.max_queue and print its figures (used by the
    /// bench itself).
    #[arg(long, hide = true)]
    pub child: Option<u32>,
}

#[derive(Debug, Args)]
pub struct LocalBench {
    /// GGUF file all three engines load.
    #[arg(long, env = "SLUICE_MODEL", default_value = DEFAULT_MODEL)]
    pub model: PathBuf,
    /// Rounds; each runs every measurement once per engine, engines alternating.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// Prompt length of the prefill measurement (templated tokens).
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(16..=1900))]
    pub prefill_tokens: u32,
    /// Tokens generated by the decode and concurrency measurements.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(2..=1024))]
    pub decode_tokens: u32,
    /// Draft length of the scoring measurement.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub score_tokens: u32,
    /// Concurrent requests for the aggregate measurement, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,4,8")]
    pub concurrency: Vec<usize>,
    /// Python interpreter with llama-cpp-python; default: the one `scripts/real-upstream
    /// install` sets up (~/.cache/sluice/llama-venv), else python3.
    #[arg(long, env = "SLUICE_BENCH_PYTHON")]
    pub python: Option<PathBuf>,
    /// Leave llama.cpp out.
    #[arg(long)]
    pub no_llama: bool,
    /// Threads for llama.cpp; default: the CPUs this process may use (what mistral.rs uses).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Also write every sample and the medians as JSON here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Rewrite a GGUF file's weights that have no vectorised kernel in this build (Q4_1,
    /// Q5_0, Q5_1) into one that has; everything else is copied. `scripts/fetch-model` runs
    /// this once to make the served model from the shipped Q4_1 file.
    Prepare {
        /// The GGUF file to read.
        #[arg(long = "in", default_value = SHIPPED_MODEL)]
        input: PathBuf,
        /// Where to write the prepared file (atomically).
        #[arg(long = "out", default_value = DEFAULT_MODEL)]
        output: PathBuf,
        /// The quantization to write: q8_0 (keeps the answers; the default) or q4_0
        /// (smaller, requantizing 4-bit weights to 4 bits loses precision).
        #[arg(long, default_value = "q8_0")]
        quant: String,
    },
}

/// Which prompts to draft, with which model and policy (`eval` and `calibrate`).
#[derive(Debug, Args)]
pub struct DraftRun {
    /// Labelled prompts, one JSON object a line: id, task, prompt, answers, grade, choices.
    /// `calibrate` without it reads live traffic instead: shadow samples given with --rows.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Policy file whose weights are evaluated or calibrated.
    #[arg(long, default_value = "policies/default.yaml")]
    pub policy: PathBuf,
    #[arg(long, env = "SLUICE_MODEL", default_value = DEFAULT_MODEL)]
    pub model: PathBuf,
    /// Only the first N items.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Draft length; default: the policy's local.max_tokens.
    #[arg(long)]
    pub max_tokens: Option<u32>,
    /// Reuse the drafts an earlier `eval --out` wrote instead of running the model (the
    /// confidence is recomputed under --policy). For `calibrate` without --data: the shadow
    /// samples `sluice serve --samples-dir` wrote (a file, or a directory read at any depth),
    /// labelled by whether the local answer agreed with the tier's.
    #[arg(long, conflicts_with_all = ["max_tokens"])]
    pub rows: Option<PathBuf>,
}

/// Where the large model's answers come from (`eval` and `calibrate`).
#[derive(Debug, Args)]
pub struct LargeArgs {
    /// Read the large model's answers from this file (written by --save-large), calling nothing.
    #[arg(long, conflicts_with = "save_large")]
    pub large: Option<PathBuf>,
    /// Ask the large tier every prompt (temperature 0) and save its answers to this file.
    #[arg(long)]
    pub save_large: Option<PathBuf>,
    /// The policy's tier that answers and whose prices count; default: its first tier.
    #[arg(long)]
    pub large_tier: Option<String>,
    /// Answer length asked of the large tier.
    #[arg(long, default_value_t = 64)]
    pub large_max_tokens: u32,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate policy files or directories; reports each invalid one and exits non-zero.
    Check {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Print the JSON Schema of policy files (policies/schema.json is this output).
    Schema,
}

/// A number of seconds, ≥ 0 and finite.
fn seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("expected seconds ≥ 0, e.g. 2 or 0.5, found {s:?}")),
    }
}

/// A scoring method's name.
fn scoring_method(s: &str) -> Result<sluice_policy::ScoringMethod, String> {
    sluice_policy::ScoringMethod::ALL
        .into_iter()
        .find(|m| m.as_str() == s)
        .ok_or_else(|| {
            let names: Vec<&str> = sluice_policy::ScoringMethod::ALL
                .iter()
                .map(|m| m.as_str())
                .collect();
            format!("expected one of {}, found {s:?}", names.join(", "))
        })
}

/// A share in [0, 1], checked before any work starts.
fn share(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("expected a number in [0, 1], found {s:?}"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("expected a number in [0, 1], found {v}"))
    }
}

/// `KEY=VALUE`, for an environment variable.
fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() && !k.contains(char::is_whitespace) => {
            Ok((k.to_owned(), v.to_owned()))
        }
        _ => Err(format!("expected KEY=VALUE, found {s:?}")),
    }
}
