//! The gateway's local path: a real `sluice serve` in this process (sharing the loaded model
//! with the raw runs), called over gRPC on loopback like a service would.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::{FutureExt, StreamExt};
use sluice_policy::{Message, Role};
use sluice_proto::v1 as pb;
use sluice_proto::v1::router_client::RouterClient;
use sluice_router::LocalModel;
use sluice_server::serve::{start, RunningServer, ServeConfig};
use sluice_server::PolicyStore;
use sluice_slm::SlmModel;
use tonic::transport::Channel;

use super::Run;

/// Local answers up to 1024 tokens, no cache (every run must reach the model), a tier that is
/// never called (local hints and Score do not escalate).
const POLICY: &str = r#"version: 1
name: default
local:
  model: bench
  max_tokens: 1024
tiers:
  - name: large
    provider: openai
    base_url: http://127.0.0.1:9
    model: unused
    price: { input_per_mtok: 0.15, output_per_mtok: 0.60 }
    timeout: 1s
scoring:
  method: answer_confidence
  threshold: 0.5
  weights: { bias: 0.0, mean_logprob: 1.0 }
cache:
  mode: off
"#;

#[derive(Debug)]
pub struct Gateway {
    server: RunningServer,
    client: RouterClient<Channel>,
    _dir: TempDir,
}

#[derive(Debug)]
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn messages(m: &[Message]) -> Vec<pb::Message> {
    m.iter()
        .map(|m| pb::Message {
            role: match m.role {
                Role::System => pb::Role::System,
                Role::User => pb::Role::User,
                Role::Assistant => pb::Role::Assistant,
            }
            .into(),
            content: m.content.clone(),
        })
        .collect()
}

fn params(max_tokens: u32) -> Option<pb::GenerationParams> {
    Some(pb::GenerationParams {
        max_tokens: Some(max_tokens),
        ..Default::default()
    })
}

impl Gateway {
    pub async fn start(model: Arc<SlmModel>) -> anyhow::Result<Self> {
        Self::with_policy(model, POLICY).await
    }

    /// The gateway serving `policy` (YAML) with `model`.
    pub async fn with_policy(model: Arc<SlmModel>, policy: &str) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("sluice-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let dir = TempDir(dir);
        std::fs::write(dir.0.join("bench.yaml"), policy)?;
        let policies = PolicyStore::load(&dir.0)?;
        let config = ServeConfig {
            grpc_listen: "127.0.0.1:0".into(),
            admin_listen: "127.0.0.1:0".into(),
            http_listen: None,
            drain: std::time::Duration::ZERO,
            ..ServeConfig::default()
        };
        let loader: sluice_server::serve::LocalLoader =
            Box::new(move || async move { Ok(model as Arc<dyn LocalModel>) }.boxed());
        let server = start(config, policies, loader).await?;
        let client = RouterClient::connect(format!("http://{}", server.grpc_addr)).await?;
        let started = Instant::now();
        while !server.gateway.is_ready() {
            if started.elapsed() > Duration::from_secs(30) {
                bail!("the gateway did not become ready within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self {
            server,
            client,
            _dir: dir,
        })
    }

    /// Shadow samples both sides answered so far (`sluice_shadow_samples_total`, summed).
    pub fn shadow_samples(&self) -> f64 {
        self.server
            .gateway
            .metrics()
            .encode()
            .lines()
            .filter(|l| l.starts_with("sluice_shadow_samples_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// A client of the gateway's gRPC port.
    pub fn client(&self) -> RouterClient<Channel> {
        self.client.clone()
    }

    fn chat(&self, m: &[Message], max_tokens: u32) -> pb::ChatRequest {
        pb::ChatRequest {
            messages: messages(m),
            policy: String::new(),
            params: params(max_tokens),
            route_hint: pb::RouteHint::Local.into(),
            ..Default::default()
        }
    }

    /// `Router/ChatStream` with the local hint: the time of the first and the last chunk.
    pub async fn stream(&self, m: &[Message], max_tokens: u32) -> anyhow::Result<Run> {
        let mut client = self.client.clone();
        let sent = Instant::now();
        let mut stream = client
            .chat_stream(self.chat(m, max_tokens))
            .await?
            .into_inner();
        let mut first = None;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            let now = sent.elapsed();
            let first = *first.get_or_insert(now);
            if !chunk.finish_reason.is_empty() {
                let usage = chunk.usage.context("the last chunk has no usage")?;
                let route = chunk.route.map(|r| r.kind());
                if route != Some(pb::RouteKind::Local) {
                    bail!("expected a local answer, got route {route:?}");
                }
                return Ok(Run {
                    prompt_tokens: usage.prompt_tokens as u32,
                    completion_tokens: usage.completion_tokens as u32,
                    first,
                    last: now,
                });
            }
        }
        bail!("the stream ended without a last chunk")
    }

    /// `Router/Score`: one draft with its statistics, and the decision.
    pub async fn score(&self, m: &[Message], max_tokens: u32) -> anyhow::Result<Duration> {
        let mut client = self.client.clone();
        let sent = Instant::now();
        let r = client
            .score(pb::ScoreRequest {
                messages: messages(m),
                policy: String::new(),
                params: params(max_tokens),
                ..Default::default()
            })
            .await?
            .into_inner();
        if r.decision.and_then(|d| d.confidence).is_none() {
            bail!("Score returned no confidence");
        }
        Ok(sent.elapsed())
    }

    pub async fn stop(self) {
        let _ = self.server.shutdown().await;
    }
}
