//! llama.cpp through llama-cpp-python in a child process (`llama_cpp.py`), one JSON line per
//! request each way, so its rounds interleave with ours in the same run.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::Run;

const SCRIPT: &str = include_str!("llama_cpp.py");

/// A loaded llama.cpp model.
#[derive(Debug)]
pub struct Llama {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    pub version: String,
}

#[derive(Deserialize)]
struct Hello {
    ready: Option<bool>,
    version: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct Reply {
    prompt_tokens: u32,
    completion_tokens: u32,
    first_s: f64,
    last_s: f64,
}

/// The interpreter to use: the flag, else the venv `scripts/real-upstream install` makes.
pub fn python(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| home.map(|h| h.join(".cache")));
    match cache.map(|c| c.join("sluice/llama-venv/bin/python")) {
        Some(p) if p.is_file() => p,
        _ => PathBuf::from("python3"),
    }
}

impl Llama {
    /// Start the child and load the model; `Ok(Err(why))` when llama-cpp-python is missing.
    pub async fn start(
        python: &Path,
        model: &Path,
        threads: usize,
    ) -> anyhow::Result<Result<Self, String>> {
        let mut child = match Command::new(python)
            .arg("-c")
            .arg(SCRIPT)
            .arg(model)
            .arg(threads.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
        {
            Ok(c) => c,
            Err(e) => return Ok(Err(format!("cannot run {}: {e}", python.display()))),
        };
        let stdin = child.stdin.take().context("child stdin")?;
        let stdout = child.stdout.take().context("child stdout")?;
        let mut stdout = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(120), stdout.next_line())
            .await
            .context("llama.cpp did not load the model within 120 s")??;
        let Some(line) = line else {
            bail!("llama.cpp exited while loading {}", model.display());
        };
        let hello: Hello = serde_json::from_str(&line)
            .with_context(|| format!("unexpected first line from llama.cpp: {line}"))?;
        if let Some(e) = hello.error {
            return Ok(Err(format!("{e} (python: {})", python.display())));
        }
        if hello.ready != Some(true) {
            bail!("unexpected first line from llama.cpp: {line}");
        }
        Ok(Ok(Self {
            child,
            stdin,
            stdout,
            version: hello.version.unwrap_or_default(),
        }))
    }

    /// One greedy generation of at most `max_tokens` from exactly these prompt tokens.
    pub async fn run(
        &mut self,
        tokens: &[u32],
        max_tokens: u32,
        stats: bool,
    ) -> anyhow::Result<Run> {
        let req = serde_json::json!({"tokens": tokens, "max_tokens": max_tokens, "stats": stats});
        self.stdin.write_all(format!("{req}\n").as_bytes()).await?;
        self.stdin.flush().await?;
        let line = self
            .stdout
            .next_line()
            .await?
            .context("llama.cpp exited during a run")?;
        let r: Reply = serde_json::from_str(&line)
            .with_context(|| format!("unexpected reply from llama.cpp: {line}"))?;
        Ok(Run {
            prompt_tokens: r.prompt_tokens,
            completion_tokens: r.completion_tokens,
            first: Duration::from_secs_f64(r.first_s),
            last: Duration::from_secs_f64(r.last_s),
        })
    }

    pub async fn stop(mut self) {
        drop(self.stdin);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}
