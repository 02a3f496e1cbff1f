//! The processes `sluice bench gateway` measures: a `sluice serve` child and LiteLLM's proxy,
//! their CPU time and memory, and waiting for them to be ready or idle.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::cli::GatewayBench;

/// A gateway process under test: its address and pid.
pub(super) struct Proc {
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// utime + stime of `pid`, in seconds.
pub(super) fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

pub(super) fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

pub(super) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

pub(super) async fn wait_http(url: &str, limit: Duration) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let started = Instant::now();
    loop {
        if let Ok(r) = client.get(url).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        if started.elapsed() > limit {
            bail!("{url} did not answer within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `sluice serve` (this binary) with a policy whose one tier is the fast upstream.
pub(super) async fn start_sluice(
    args: &GatewayBench,
    upstream: &str,
    dir: &Path,
) -> anyhow::Result<(Proc, String, String)> {
    let policy = format!(
        "version: 1\nname: default\nlocal: {{ model: bench, max_tokens: 64 }}\ntiers:\n  - {{ name: fast, \
         provider: openai, base_url: \"{upstream}\", model: fast, price: {{ input_per_mtok: 0.15, \
         output_per_mtok: 0.60 }}, timeout: 10s, retries: 0 }}\nscoring:\n  method: answer_confidence\n  \
         threshold: 0.5\n  weights: {{ bias: 0.0 }}\ncache:\n  mode: off\n"
    );
    std::fs::write(dir.join("default.yaml"), policy)?;
    let (grpc, http, admin) = (free_port()?, free_port()?, free_port()?);
    let exe = std::env::current_exe()?;
    let child = Command::new(exe)
        .args(["serve", "--policy"])
        .arg(dir.join("default.yaml"))
        .args(["--grpc-listen", &format!("127.0.0.1:{grpc}")])
        .args(["--http-listen", &format!("127.0.0.1:{http}")])
        .args(["--admin-listen", &format!("127.0.0.1:{admin}")])
        .arg("--model")
        .arg(&args.model)
        .args(["--policy-watch-secs", "0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start sluice serve")?;
    let proc = Proc { child };
    wait_http(
        &format!("http://127.0.0.1:{admin}/readyz"),
        Duration::from_secs(120),
    )
    .await?;
    Ok((
        proc,
        format!("http://127.0.0.1:{grpc}"),
        format!("http://127.0.0.1:{http}"),
    ))
}

/// The master key the LiteLLM proxy is started with (it refuses to start without one).
pub(super) const LITELLM_KEY: &str = "sk-sluice-bench-0123456789abcdef0123456789abcdef";

/// LiteLLM's proxy forwarding model `fast` to the upstream, or why it could not start.
pub(super) async fn start_litellm(
    args: &GatewayBench,
    upstream: &str,
    dir: &Path,
) -> Result<(Proc, String), String> {
    let litellm = args.litellm.clone().unwrap_or_else(|| {
        let home = std::env::var("HOME").unwrap_or_default();
        PathBuf::from(home).join(".cache/sluice/litellm-venv/bin/litellm")
    });
    if !litellm.is_file() {
        return Err(format!(
            "{} not found (python3 -m venv ~/.cache/sluice/litellm-venv && \
             ~/.cache/sluice/litellm-venv/bin/pip install 'litellm[proxy]')",
            litellm.display()
        ));
    }
    let config = dir.join("litellm.yaml");
    let yaml = format!(
        "model_list:\n  - model_name: fast\n    litellm_params:\n      model: openai/fast\n      \
         api_base: {upstream}/v1\n      api_key: bench\n"
    );
    std::fs::write(&config, yaml).map_err(|e| e.to_string())?;
    let port = free_port().map_err(|e| e.to_string())?;
    let log_path = dir.join("litellm.log");
    let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
    let child = Command::new(&litellm)
        .arg("--config")
        .arg(&config)
        .args(["--port", &port.to_string(), "--num_workers", "1"])
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .env("LITELLM_MASTER_KEY", LITELLM_KEY)
        .env("LITELLM_LOG", "ERROR")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", litellm.display()))?;
    let proc = Proc { child };
    let base = format!("http://127.0.0.1:{port}");
    wait_http(
        &format!("{base}/health/liveliness"),
        Duration::from_secs(180),
    )
    .await
    .map_err(|e| {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        format!(
            "{e}; its log ends: {}",
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        )
    })?;
    Ok((proc, base))
}

/// The longest wait for a process to go idle after a round it could not keep up with.
pub(super) const SETTLE_LIMIT: Duration = Duration::from_secs(900);

/// Wait until `pid` uses under 5% of a core over a second (or `SETTLE_LIMIT` passes); the
/// seconds waited.
pub(super) async fn settle(pid: u32) -> f64 {
    let started = Instant::now();
    let mut last = cpu_seconds(pid);
    while started.elapsed() < SETTLE_LIMIT {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = cpu_seconds(pid);
        match (last, now) {
            (Some(a), Some(b)) if b - a < 0.05 => break,
            (_, None) => break,
            _ => last = now,
        }
    }
    started.elapsed().as_secs_f64()
}
