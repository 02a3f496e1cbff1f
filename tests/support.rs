//! Starting the real binary and talking to it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sluice_proto::v1 as pb;
use tonic::transport::Channel;

pub fn repo() -> PathBuf {
    Path::new(
        // At run time: a test binary cargo reuses from another checkout keeps that one's path.
        &std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned()),
    )
    .join("../..")
}

pub fn model_path() -> PathBuf {
    let p = repo().join("models/SmolLM2-135M-Instruct.Q8_0.gguf");
    assert!(
        p.is_file(),
        "{} is missing: run scripts/fetch-model (scripts/test does it for you)",
        p.display()
    );
    p
}

pub fn sluice() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sluice"));
    c.current_dir(repo());
    c
}

pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sluice-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Copies the shipped policy `name` into `dir` as `as_file`, with the probe files it names
/// (`probes/`, relative to the policy), so it loads there as it does from `policies/`.
pub fn copy_shipped_policy(name: &str, dir: &Path, as_file: &str) -> PathBuf {
    let probes = dir.join("probes");
    std::fs::create_dir_all(&probes).unwrap();
    for entry in std::fs::read_dir(repo().join("policies/probes")).unwrap() {
        let from = entry.unwrap().path();
        std::fs::copy(&from, probes.join(from.file_name().unwrap())).unwrap();
    }
    let to = dir.join(as_file);
    std::fs::copy(repo().join(format!("policies/{name}.yaml")), &to).unwrap();
    to
}

pub fn chat_request(prompt: &str, hint: pb::RouteHint, policy: &str) -> pb::ChatRequest {
    pb::ChatRequest {
        messages: vec![pb::Message {
            role: pb::Role::User.into(),
            content: prompt.into(),
        }],
        policy: policy.into(),
        params: Some(pb::GenerationParams {
            max_tokens: Some(48),
            ..Default::default()
        }),
        route_hint: hint.into(),
        ..Default::default()
    }
}

/// Sum of the samples of `name` whose labels include all of `labels`.
pub fn metric_value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            if n != name {
                return None;
            }
            let all = labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
            all.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// A running `sluice serve`; killed when dropped.
pub struct Server {
    child: Child,
    pub grpc: String,
    pub admin: String,
    /// The OpenAI-compatible HTTP API.
    pub http: String,
}

impl Server {
    /// Start with four policies: the shipped `default` escalating to `upstream`; `drafted`,
    /// the same scoring a draft's confidence (`answer_confidence`) with a threshold that keeps
    /// every scored request local; and `down-local` / `down-error` whose only tier is
    /// unreachable.
    pub async fn start(upstream: &str) -> Server {
        let dir = temp_dir("policies");
        let default =
            std::fs::read_to_string(copy_shipped_policy("default", &dir, "default.yaml")).unwrap();
        let scoring = default
            .find("\nscoring:\n")
            .and_then(|at| {
                default[at + 1..]
                    .find("\n\n")
                    .map(|len| at + 1..at + 1 + len)
            })
            .expect("default.yaml has a scoring block ending in a blank line");
        let drafted = format!(
            "{}scoring: {{ method: answer_confidence, threshold: 0.0, weights: {{ bias: 0.0, mean_logprob: 1.0 }} }}{}",
            &default[..scoring.start],
            &default[scoring.end..]
        )
        .replace("name: default", "name: drafted");
        std::fs::write(dir.join("drafted.yaml"), drafted).unwrap();
        let dead = sluice_test_support::unused_local_addr();
        for (name, on_failure) in [("down-local", "local"), ("down-error", "error")] {
            let p = default
                .replace("name: default", &format!("name: {name}"))
                .replace("name: large", "name: dead-tier")
                .replace("${SLUICE_LARGE_URL:-http://127.0.0.1:8080}", &dead)
                .replace(
                    "on_upstream_failure: local",
                    &format!("on_upstream_failure: {on_failure}"),
                );
            std::fs::write(dir.join(format!("{name}.yaml")), p).unwrap();
        }
        Server::start_policies(
            &dir,
            &[
                ("SLUICE_LARGE_URL", upstream),
                ("SLUICE_LARGE_API_KEY", "test-key"),
            ],
        )
        .await
    }

    /// Start with the policies in `dir` and these extra environment variables.
    pub async fn start_policies(dir: &Path, env: &[(&str, &str)]) -> Server {
        let mut child = sluice()
            .args([
                "serve",
                "--grpc-listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
                "--http-listen",
                "127.0.0.1:0",
            ])
            .arg("--policy")
            .arg(dir)
            .arg("--model")
            .arg(model_path())
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[sluice] {line}");
                if line.contains("sluice listening") {
                    let _ = tx.send(line);
                }
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("sluice did not report its listen addresses");
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{key}=")))
                .unwrap()
                .to_string()
        };
        let server = Server {
            grpc: field("grpc"),
            admin: field("admin"),
            http: field("http"),
            child,
        };
        server.wait_serving(Duration::from_secs(120)).await;
        server
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.grpc))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    async fn wait_serving(&self, limit: Duration) {
        use tonic_health::pb::health_check_response::ServingStatus;
        use tonic_health::pb::health_client::HealthClient;
        let mut health = HealthClient::new(self.channel().await);
        let started = Instant::now();
        loop {
            let status = health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: "sluice.v1.Router".into(),
                })
                .await
                .map(|r| r.into_inner().status());
            if matches!(status, Ok(ServingStatus::Serving)) {
                return;
            }
            assert!(
                started.elapsed() < limit,
                "not serving after {limit:?}: {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn router(&self) -> pb::router_client::RouterClient<Channel> {
        pb::router_client::RouterClient::new(self.channel().await)
    }

    pub async fn metrics(&self) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(&self.admin).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).await.unwrap();
        assert!(
            body.starts_with("HTTP/1.0 200") || body.starts_with("HTTP/1.1 200"),
            "{body}"
        );
        body
    }

    pub async fn reflection_services(&self) -> Vec<String> {
        use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
        use tonic_reflection::pb::v1::ServerReflectionRequest;
        let mut client = ServerReflectionClient::new(self.channel().await);
        let req = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut resp = client
            .server_reflection_info(tokio_stream::iter([req]))
            .await
            .unwrap()
            .into_inner();
        let msg = resp.message().await.unwrap().unwrap();
        match msg.message_response {
            Some(MessageResponse::ListServicesResponse(l)) => {
                l.service.into_iter().map(|s| s.name).collect()
            }
            other => panic!("unexpected reflection answer {other:?}"),
        }
    }

    /// SIGTERM, then expect a clean exit within `limit`.
    pub async fn stop(mut self, limit: Duration) {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(ok.success());
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "sluice exited with {status}");
                return;
            }
            assert!(
                started.elapsed() < limit,
                "sluice did not stop within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
