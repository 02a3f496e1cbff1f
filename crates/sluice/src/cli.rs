//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The model `serve` loads unless told otherwise; `scripts/fetch-model` puts it there.
pub const DEFAULT_MODEL: &str = "models/SmolLM2-135M-Instruct.Q4_1.gguf";

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
    /// Serve gRPC (Router, Admin, health, reflection) and admin HTTP (/metrics, /healthz, /readyz).
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
        /// GGUF file of the local model.
        #[arg(long, env = "SLUICE_MODEL", default_value = DEFAULT_MODEL)]
        model: PathBuf,
        /// Tenants file (API keys → tenants); without it authentication is off.
        #[arg(long, env = "SLUICE_TENANTS")]
        tenants: Option<PathBuf>,
        /// Shared cache tier for several replicas, e.g. redis://127.0.0.1:6379.
        #[arg(long, env = "SLUICE_REDIS_URL")]
        redis_url: Option<String>,
    },
    /// Run the local model over labelled prompts (JSONL), grade each draft, and report how
    /// well confidence separates right drafts from wrong ones (AUROC, AUPRC, fitted weights).
    Eval {
        #[command(flatten)]
        run: DraftRun,
        /// Write one JSON line per item (features, grade, draft) here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Fit the policy's weights on labelled prompts and pick the threshold for a target
    /// escalation rate; print the calibrated policy, or write it with --out / --write.
    Calibrate {
        #[command(flatten)]
        run: DraftRun,
        /// Share of requests to escalate, in [0, 1].
        #[arg(long, value_parser = share)]
        target_escalation: f64,
        /// Write the calibrated policy to this file.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Write the calibrated policy over --policy.
        #[arg(long)]
        write: bool,
    },
    /// Work with policy files.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
}

/// Which prompts to draft, with which model and policy (`eval` and `calibrate`).
#[derive(Debug, Args)]
pub struct DraftRun {
    /// Labelled prompts, one JSON object a line: id, task, prompt, answers, grade, choices.
    #[arg(long)]
    pub data: PathBuf,
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
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate policy files or directories; reports each invalid one and exits non-zero.
    Check {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
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
