//! The gateway served on 127.0.0.1:0 in-process, with a fake local model and a mock
//! OpenAI-compatible upstream: routing, escalation, fallbacks, streaming, health, reload,
//! metrics and draining on shutdown.

// Helpers outside #[test] functions may fail loudly too: this is test code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use sluice_proto::v1 as pb;
use sluice_router::LocalModel;
use sluice_server::serve::{start, LocalLoader, RunningServer, ServeConfig};
use sluice_server::PolicyStore;
use sluice_test_support::{unused_local_addr, FakeLocal, MockBehavior, MockConfig, MockUpstream};
use tonic::transport::Channel;
use tonic::Code;

fn policy_yaml(name: &str, tiers: &[(&str, &str)], on_failure: &str) -> String {
    let mut s =
        format!("version: 1\nname: {name}\nlocal: {{ model: fake, max_tokens: 64 }}\ntiers:\n");
    for (tier, url) in tiers {
        s.push_str(&format!(
            "  - {{ name: {tier}, provider: openai, base_url: \"{url}\", model: big, \
             price: {{ input_per_mtok: 1.0, output_per_mtok: 2.0 }}, timeout: 5s }}\n"
        ));
    }
    if tiers.is_empty() {
        s = s.replace("tiers:\n", "tiers: []\n");
    }
    s.push_str(
        "scoring:\n  method: answer_confidence\n  threshold: 0.5\n  \
         weights: { bias: 3.0, mean_logprob: 2.5 }\n",
    );
    s.push_str(&format!("on_upstream_failure: {on_failure}\n"));
    s
}

struct Harness {
    server: RunningServer,
    dir: PathBuf,
}

fn temp_dir() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "sluice-gw-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn loader_of(model: FakeLocal) -> LocalLoader {
    Box::new(move || async move { Ok(Arc::new(model) as Arc<dyn LocalModel>) }.boxed())
}

impl Harness {
    async fn start(policies: &[(&str, String)], loader: LocalLoader) -> Harness {
        Harness::start_with(ServeConfig::default(), policies, loader).await
    }

    async fn start_with(
        config: ServeConfig,
        policies: &[(&str, String)],
        loader: LocalLoader,
    ) -> Harness {
        let dir = temp_dir();
        for (file, yaml) in policies {
            std::fs::write(dir.join(file), yaml).unwrap();
        }
        let server = start(
            ServeConfig {
                grpc_listen: "127.0.0.1:0".into(),
                admin_listen: "127.0.0.1:0".into(),
                ..config
            },
            PolicyStore::load(&dir).unwrap(),
            loader,
        )
        .await
        .unwrap();
        Harness { server, dir }
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.server.grpc_addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    async fn router(&self) -> pb::router_client::RouterClient<Channel> {
        let c = self.channel().await;
        // the model loads in the background; fake models are ready at once
        for _ in 0..100 {
            if self.server.gateway.is_ready() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        pb::router_client::RouterClient::new(c)
    }

    /// One `default` policy.
    async fn single(yaml: String, local: FakeLocal) -> Harness {
        Harness::start(&[("default.yaml", yaml)], loader_of(local)).await
    }

    async fn chat(&self, req: pb::ChatRequest) -> pb::ChatResponse {
        self.router().await.chat(req).await.unwrap().into_inner()
    }

    async fn http_get(&self, path: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(self.server.admin_addr)
            .await
            .unwrap();
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        let status = out[9..12].parse().unwrap();
        let body = out
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }
}

fn ask(prompt: &str, hint: pb::RouteHint, policy: &str) -> pb::ChatRequest {
    pb::ChatRequest {
        messages: vec![pb::Message {
            role: pb::Role::User.into(),
            content: prompt.into(),
        }],
        policy: policy.into(),
        route_hint: hint.into(),
        ..Default::default()
    }
}

#[path = "gateway/budget.rs"]
mod budget;
#[path = "gateway/cache.rs"]
mod cache;
#[path = "gateway/distill.rs"]
mod distill;
#[path = "gateway/escalation.rs"]
mod escalation;
#[path = "gateway/http.rs"]
mod http;
#[path = "gateway/limits.rs"]
mod limits;
#[path = "gateway/probe.rs"]
mod probe;
#[path = "gateway/promtool.rs"]
mod promtool;
#[path = "gateway/reload.rs"]
mod reload;
#[path = "gateway/rules.rs"]
mod rules;
#[path = "gateway/shadow.rs"]
mod shadow;
#[path = "gateway/soak.rs"]
mod soak;
#[path = "gateway/tenants.rs"]
mod tenants;
#[path = "gateway/trace.rs"]
mod trace;

const SURE: f32 = -0.01;
const UNSURE: f32 = -4.0;

#[tokio::test]
async fn confident_draft_is_the_local_answer() {
    let mock = MockUpstream::start(MockConfig::default()).await.unwrap();
    let local = FakeLocal::new("Paris is the capital.", SURE);
    let h = Harness::single(
        policy_yaml("default", &[("large", &mock.base_url())], "local"),
        local.clone(),
    )
    .await;
    let resp = h
        .chat(ask("Capital of France?", pb::RouteHint::Auto, ""))
        .await;
    let route = resp.route.unwrap();
    assert_eq!(route.kind(), pb::RouteKind::Local);
    assert_eq!(route.model, "fake-local");
    assert_eq!(resp.message.unwrap().content, "Paris is the capital.");
    let d = resp.decision.unwrap();
    assert_eq!(d.reason, "confident");
    assert!(d.confidence.unwrap() > 0.9);
    assert_eq!(
        local.calls(),
        1,
        "the draft must be reused, not generated twice"
    );
    assert!(
        mock.requests().is_empty(),
        "a confident request called the tier"
    );
    let u = resp.usage.unwrap();
    // cost avoided: the local tokens priced at the first tier (1 and 2 USD per Mtok)
    let expected = (u.prompt_tokens as f64 * 1.0 + u.completion_tokens as f64 * 2.0) / 1e6;
    assert!((u.cost_avoided_usd - expected).abs() < 1e-12);
    assert_eq!(u.cost_usd, 0.0);
}

#[tokio::test]
async fn unsure_draft_escalates_and_is_priced() {
    let mock = MockUpstream::start(MockConfig::default()).await.unwrap();
    let h = Harness::single(
        policy_yaml("default", &[("large", &mock.base_url())], "local"),
        FakeLocal::new("I think maybe 17", UNSURE),
    )
    .await;
    let resp = h.chat(ask("17 * 389?", pb::RouteHint::Auto, "")).await;
    let route = resp.route.unwrap();
    assert_eq!(route.kind(), pb::RouteKind::Remote);
    assert_eq!(route.tier, "large");
    assert_eq!(resp.decision.unwrap().reason, "low_confidence");
    let u = resp.usage.unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens), (12, 7));
    assert!((u.cost_usd - (12.0 + 14.0) / 1e6).abs() < 1e-12);
    assert_eq!(mock.requests().len(), 1);

    let (status, text) = h.http_get("/metrics").await;
    assert_eq!(status, 200);
    assert!(text.contains(r#"sluice_requests_total{route="remote",tier="large",policy="default",reason="low_confidence"} 1"#), "{text}");
    assert!(
        text.contains(r#"sluice_upstream_requests_total{tier="large",status="ok"} 1"#),
        "{text}"
    );
    assert!(text.contains("sluice_confidence_count 1"), "{text}");
}

#[tokio::test]
async fn streams_deliver_chunks_then_metadata() {
    let mock = MockUpstream::start(MockConfig::default()).await.unwrap();
    let h = Harness::single(
        policy_yaml("default", &[("large", &mock.base_url())], "error"),
        FakeLocal::new("one two three four", SURE),
    )
    .await;
    let mut router = h.router().await;
    for (hint, text, kind) in [
        (
            pb::RouteHint::Auto,
            "one two three four",
            pb::RouteKind::Local,
        ),
        (
            pb::RouteHint::Local,
            "one two three four",
            pb::RouteKind::Local,
        ),
        (
            pb::RouteHint::Remote,
            "Paris is the capital of France.",
            pb::RouteKind::Remote,
        ),
    ] {
        let mut s = router
            .chat_stream(ask("q", hint, ""))
            .await
            .unwrap()
            .into_inner();
        let mut chunks = Vec::new();
        while let Some(c) = s.message().await.unwrap() {
            chunks.push(c);
        }
        assert!(chunks.len() >= 4, "{hint:?}: {} chunks", chunks.len());
        let got: String = chunks.iter().map(|c| c.delta.as_str()).collect();
        assert_eq!(got, text, "{hint:?}");
        let last = chunks.last().unwrap();
        assert_eq!(last.route.as_ref().unwrap().kind(), kind, "{hint:?}");
        assert!(chunks[..chunks.len() - 1].iter().all(|c| c.route.is_none()));
        assert_eq!(last.finish_reason, "stop");
    }
}

#[tokio::test]
async fn bad_requests_name_the_field() {
    let h = Harness::single(
        policy_yaml("default", &[], "local"),
        FakeLocal::new("x", SURE),
    )
    .await;
    let mut router = h.router().await;
    let err = router.chat(pb::ChatRequest::default()).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        err.message(),
        "messages: expected at least one message, found none"
    );
    let mut req = ask("hi", pb::RouteHint::Auto, "");
    req.params = Some(pb::GenerationParams {
        temperature: Some(7.0),
        ..Default::default()
    });
    let err = router.chat(req).await.unwrap_err();
    assert!(
        err.message().starts_with("params.temperature:"),
        "{}",
        err.message()
    );
    let err = router
        .chat(ask("hi", pb::RouteHint::Auto, "nope"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(
        err.message().contains("default"),
        "names the known policies: {}",
        err.message()
    );
    let err = router
        .chat_stream(pb::ChatRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    // no tier at all: a low score stays local, and says why
    let h2 = Harness::single(
        policy_yaml("default", &[], "local"),
        FakeLocal::new("x", UNSURE),
    )
    .await;
    let resp = h2.chat(ask("hi", pb::RouteHint::Auto, "")).await;
    assert_eq!(resp.decision.unwrap().reason, "no_tier");
    assert_eq!(resp.route.unwrap().kind(), pb::RouteKind::Local);
}

#[tokio::test]
async fn not_serving_until_the_model_has_loaded() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
    let (release, wait) = tokio::sync::oneshot::channel::<()>();
    let loader: LocalLoader = Box::new(move || {
        async move {
            let _ = wait.await;
            Ok(Arc::new(FakeLocal::new("ready now", SURE)) as Arc<dyn LocalModel>)
        }
        .boxed()
    });
    let h = Harness::start(
        &[("default.yaml", policy_yaml("default", &[], "local"))],
        loader,
    )
    .await;
    let mut health = HealthClient::new(h.channel().await);
    let check = |svc: &str| HealthCheckRequest {
        service: svc.into(),
    };
    let status = health
        .check(check("sluice.v1.Router"))
        .await
        .unwrap()
        .into_inner()
        .status();
    assert_eq!(status, ServingStatus::NotServing);
    assert_eq!(h.http_get("/readyz").await.0, 503);
    assert_eq!(h.http_get("/healthz").await.0, 200);
    let mut router = pb::router_client::RouterClient::new(h.channel().await);
    let err = router
        .chat(ask("hi", pb::RouteHint::Auto, ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains("loading"), "{}", err.message());

    release.send(()).unwrap();
    for _ in 0..200 {
        if health
            .check(check("sluice.v1.Router"))
            .await
            .unwrap()
            .into_inner()
            .status()
            == ServingStatus::Serving
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(h.http_get("/readyz").await.0, 200);
    let resp = router
        .chat(ask("hi", pb::RouteHint::Auto, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.message.unwrap().content, "ready now");
}

#[tokio::test]
async fn a_model_that_fails_to_load_stops_the_server() {
    let loader: LocalLoader = Box::new(|| async { Err("bad gguf header".to_string()) }.boxed());
    let h = Harness::start(
        &[("default.yaml", policy_yaml("default", &[], "local"))],
        loader,
    )
    .await;
    let err = tokio::time::timeout(Duration::from_secs(10), h.server.wait())
        .await
        .expect("server stops")
        .unwrap_err();
    assert!(err.to_string().contains("bad gguf header"), "{err}");
}

#[tokio::test]
async fn reload_rejects_a_bad_file_and_keeps_the_running_policy() {
    let h = Harness::single(
        policy_yaml("default", &[], "local"),
        FakeLocal::new("x", SURE),
    )
    .await;
    let mut admin = pb::admin_client::AdminClient::new(h.channel().await);
    let info = admin
        .get_policy(pb::GetPolicyRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.name, "default");
    assert_eq!(info.threshold, 0.5);

    std::fs::write(
        h.dir.join("default.yaml"),
        policy_yaml("default", &[], "local").replace("threshold: 0.5", "threshold: 5"),
    )
    .unwrap();
    let err = admin
        .reload_policy(pb::ReloadPolicyRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("default.yaml") && err.message().contains("scoring.threshold"),
        "{}",
        err.message()
    );
    let info = admin
        .get_policy(pb::GetPolicyRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.threshold, 0.5, "the running policy must stay");

    std::fs::write(
        h.dir.join("default.yaml"),
        policy_yaml("default", &[], "local").replace("threshold: 0.5", "threshold: 0.8"),
    )
    .unwrap();
    let info = admin
        .reload_policy(pb::ReloadPolicyRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.threshold, 0.8);
    let (_, text) = h.http_get("/metrics").await;
    assert!(
        text.contains(r#"sluice_policy_reloads_total{result="error"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"sluice_policy_reloads_total{result="ok"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn shutdown_drains_requests_in_flight() {
    let mock = MockUpstream::start(MockConfig {
        behavior: MockBehavior::Delay(Duration::from_millis(800)),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let h = Harness::single(
        policy_yaml("default", &[("large", &mock.base_url())], "error"),
        FakeLocal::new("x", SURE),
    )
    .await;
    let mut router = h.router().await;
    let call =
        tokio::spawn(async move { router.chat(ask("slow", pb::RouteHint::Remote, "")).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    h.server.shutdown().await.unwrap();
    let resp = call
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(
        resp.into_inner().route.unwrap().kind(),
        pb::RouteKind::Remote
    );
}

#[tokio::test]
async fn a_stop_reports_not_ready_serves_through_the_drain_then_finishes_in_flight_requests() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
    let slow = Duration::from_millis(800);
    let mock = MockUpstream::start(MockConfig {
        behavior: MockBehavior::Delay(slow),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let h = Harness::single(
        policy_yaml("default", &[("large", &mock.base_url())], "error"),
        FakeLocal::new("a local answer", SURE).with_delay(slow),
    )
    .await;
    assert_eq!(h.http_get("/readyz").await.0, 200);
    let router = h.router().await;
    let call = |hint, prompt: &'static str| {
        let mut r = router.clone();
        tokio::spawn(async move { r.chat(ask(prompt, hint, "")).await })
    };
    // One request in flight on each path.
    let local = call(pb::RouteHint::Local, "in flight, local");
    let remote = call(pb::RouteHint::Remote, "in flight, remote");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (admin, grpc) = (h.server.admin_addr, h.server.grpc_addr);
    let Harness { server, dir } = h;
    let h_admin = move |path: &'static str| async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(admin).await?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
            .await?;
        let mut out = String::new();
        s.read_to_string(&mut out).await?;
        Ok::<_, std::io::Error>(out)
    };
    let stopping = tokio::spawn(server.drain_and_shutdown(Duration::from_millis(1500)));
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Not ready at once, over HTTP and gRPC health, while requests are still answered.
    let ready = h_admin("/readyz").await.unwrap();
    assert!(
        ready.starts_with("HTTP/1.0 503") || ready.starts_with("HTTP/1.1 503"),
        "{ready}"
    );
    assert!(ready.contains("draining"), "{ready}");
    let mut health = HealthClient::new(
        Channel::from_shared(format!("http://{grpc}"))
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    let status = health
        .check(HealthCheckRequest {
            service: "sluice.v1.Router".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status();
    assert_eq!(status, ServingStatus::NotServing);
    let late = call(pb::RouteHint::Remote, "sent during the drain")
        .await
        .unwrap()
        .expect("a request during the drain period is answered");
    assert_eq!(
        late.into_inner().route.unwrap().kind(),
        pb::RouteKind::Remote
    );

    // The requests in flight when the stop came finished, on both paths.
    for (path, kind, call) in [
        ("local", pb::RouteKind::Local, local),
        ("remote", pb::RouteKind::Remote, remote),
    ] {
        let resp = call
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("the in-flight {path} request failed: {e}"));
        assert_eq!(resp.into_inner().route.unwrap().kind(), kind, "{path}");
    }
    stopping.await.unwrap().unwrap();
    // Stopped: no new connections.
    assert!(tokio::net::TcpStream::connect(grpc).await.is_err());
    assert!(h_admin("/readyz").await.is_err());
    let _ = std::fs::remove_dir_all(dir);
}
