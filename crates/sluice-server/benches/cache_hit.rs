//! Cache-hit latency over gRPC at a fixed arrival rate, beside the same RPC answered by a
//! server that does no work at all. Open loop: requests are sent on schedule whatever the
//! responses do, and latency is measured from the scheduled send time, so slow answers are
//! not hidden.
//!
//! cargo bench -p sluice-server --bench cache_hit -- [RATE_PER_S] [SECONDS] [ROUNDS]

// A benchmark is a program that reports and exits; failing loudly is fine here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use sluice_proto::v1 as pb;
use sluice_proto::v1::router_client::RouterClient;
use sluice_proto::v1::router_server::{Router, RouterServer};
use sluice_router::LocalModel;
use sluice_server::serve::{start, ServeConfig};
use sluice_server::PolicyStore;
use sluice_test_support::{FakeLocal, MockConfig, MockUpstream};
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

/// The baseline: the same RPC, answered at once with a response of the same shape.
#[derive(Debug, Default)]
struct NoWork;

#[tonic::async_trait]
impl Router for NoWork {
    async fn chat(
        &self,
        _r: Request<pb::ChatRequest>,
    ) -> Result<Response<pb::ChatResponse>, Status> {
        Ok(Response::new(pb::ChatResponse {
            request_id: "r".into(),
            message: Some(pb::Message {
                role: pb::Role::Assistant.into(),
                content: "Paris is the capital of France.".into(),
            }),
            finish_reason: "stop".into(),
            route: Some(pb::Route {
                kind: pb::RouteKind::Cache.into(),
                tier: "large".into(),
                model: "mock-large".into(),
                fallback: false,
            }),
            decision: Some(pb::Decision::default()),
            usage: Some(pb::Usage::default()),
            timings: Some(pb::Timings::default()),
        }))
    }
    type ChatStreamStream =
        std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::ChatChunk, Status>> + Send>>;
    async fn chat_stream(
        &self,
        _r: Request<pb::ChatRequest>,
    ) -> Result<Response<Self::ChatStreamStream>, Status> {
        Err(Status::unimplemented("not benchmarked"))
    }
    async fn score(
        &self,
        _r: Request<pb::ScoreRequest>,
    ) -> Result<Response<pb::ScoreResponse>, Status> {
        Err(Status::unimplemented("not benchmarked"))
    }
}

async fn serve_no_work() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .add_service(RouterServer::new(NoWork))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    addr
}

fn request(i: usize) -> pb::ChatRequest {
    pb::ChatRequest {
        messages: vec![pb::Message {
            role: pb::Role::User.into(),
            content: format!("Question number {} about the capital of France?", i % 64),
        }],
        params: Some(pb::GenerationParams {
            temperature: Some(0.0),
            ..Default::default()
        }),
        route_hint: pb::RouteHint::Remote.into(),
        ..Default::default()
    }
}

async fn client(addr: SocketAddr) -> RouterClient<Channel> {
    RouterClient::new(
        Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap(),
    )
}

/// Percentiles in µs.
struct Pcts {
    p50: f64,
    p99: f64,
    p999: f64,
}

fn pcts(mut xs: Vec<f64>) -> Pcts {
    xs.sort_by(f64::total_cmp);
    let q = |p: f64| xs[((p * xs.len() as f64).ceil() as usize).clamp(1, xs.len()) - 1];
    Pcts {
        p50: q(0.50),
        p99: q(0.99),
        p999: q(0.999),
    }
}

struct Run {
    /// From the scheduled send time: includes any queueing and timer lateness (~1 ms timer).
    scheduled: Pcts,
    /// From the moment the request was handed to the client: the RPC itself.
    service: Pcts,
    errors: usize,
    sent: usize,
}

/// Send `rate` requests per second for `secs` seconds on schedule; latency from the schedule.
async fn open_loop(client: RouterClient<Channel>, rate: f64, secs: f64) -> Run {
    let n = (rate * secs) as usize;
    let t0 = tokio::time::Instant::now() + Duration::from_millis(50);
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        let due = t0 + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due).await;
        let mut c = client.clone();
        handles.push(tokio::spawn(async move {
            let sent = Instant::now();
            let ok = c.chat(request(i)).await.is_ok();
            let end = Instant::now();
            (
                end.duration_since(due.into_std()),
                end.duration_since(sent),
                ok,
            )
        }));
    }
    let (mut from_schedule, mut service) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut errors = 0;
    for h in handles {
        let (d, s, ok) = h.await.unwrap();
        if !ok {
            errors += 1;
        }
        from_schedule.push(d.as_secs_f64() * 1e6);
        service.push(s.as_secs_f64() * 1e6);
    }
    Run {
        scheduled: pcts(from_schedule),
        service: pcts(service),
        errors,
        sent: n,
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    // medians of the rounds' percentiles
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let args: Vec<f64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let rate = args.first().copied().unwrap_or(2000.0);
    let secs = args.get(1).copied().unwrap_or(5.0);
    let rounds = args.get(2).copied().unwrap_or(5.0) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let mock = MockUpstream::start(MockConfig::default()).await.unwrap();
        let dir = std::env::temp_dir().join(format!("sluice-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("default.yaml"),
            format!(
                "version: 1\nname: default\nlocal: {{ model: fake }}\ntiers:\n  - {{ name: large, \
                 provider: openai, base_url: \"{}\", model: big, price: {{ input_per_mtok: 0.15, \
                 output_per_mtok: 0.6 }}, timeout: 5s }}\nscoring: {{ method: answer_confidence, \
                 threshold: 0.5, weights: {{ bias: 0.0 }} }}\ncache: {{ mode: deterministic, \
                 ttl: 1h, max_bytes: 16MiB }}\n",
                mock.base_url()
            ),
        )
        .unwrap();
        let gw = start(
            ServeConfig {
                grpc_listen: "127.0.0.1:0".into(),
                admin_listen: "127.0.0.1:0".into(),
                ..ServeConfig::default()
            },
            PolicyStore::load(&dir).unwrap(),
            Box::new(|| {
                async { Ok(Arc::new(FakeLocal::new("x", -0.01)) as Arc<dyn LocalModel>) }.boxed()
            }),
        )
        .await
        .unwrap();
        let cached = client(gw.grpc_addr).await;
        // warm: every prompt of the benchmark is answered once by the tier, then cached
        for i in 0..64 {
            let r = cached.clone().chat(request(i)).await.unwrap().into_inner();
            assert_eq!(r.route.unwrap().kind(), pb::RouteKind::Remote);
        }
        let r = cached.clone().chat(request(0)).await.unwrap().into_inner();
        assert_eq!(r.route.unwrap().kind(), pb::RouteKind::Cache, "the cache must answer");
        let baseline = client(serve_no_work().await).await;

        println!("open loop, {rate} req/s for {secs} s, {rounds} rounds, alternating");
        // [baseline, cache-hit] × [scheduled p50, p99, service p50, p99], one value per round
        let mut acc = [[vec![], vec![], vec![], vec![]], [vec![], vec![], vec![], vec![]]];
        for round in 1..=rounds {
            for (k, (name, c)) in [("baseline", &baseline), ("cache-hit", &cached)]
                .into_iter()
                .enumerate()
            {
                let run = open_loop(c.clone(), rate, secs).await;
                println!(
                    "round {round} {name:>9}: from schedule p50 {:>6.0} p99 {:>6.0} p99.9 {:>6.0} µs | \
                     service p50 {:>6.0} p99 {:>6.0} p99.9 {:>6.0} µs | errors {}/{}",
                    run.scheduled.p50, run.scheduled.p99, run.scheduled.p999,
                    run.service.p50, run.service.p99, run.service.p999, run.errors, run.sent
                );
                assert_eq!(run.errors, 0, "{name}: requests failed");
                for (slot, v) in acc[k].iter_mut().zip([
                    run.scheduled.p50,
                    run.scheduled.p99,
                    run.service.p50,
                    run.service.p99,
                ]) {
                    slot.push(v);
                }
            }
        }
        let [b, c] = acc.map(|a| a.map(median));
        println!("median of {rounds} rounds (µs)      from schedule p50 / p99 | service p50 / p99");
        println!("  baseline (no work)          {:>6.0} / {:>6.0}     | {:>6.0} / {:>6.0}", b[0], b[1], b[2], b[3]);
        println!("  cache hit                   {:>6.0} / {:>6.0}     | {:>6.0} / {:>6.0}", c[0], c[1], c[2], c[3]);
        println!(
            "  ratio cache / baseline      {:>6.2} / {:>6.2}     | {:>6.2} / {:>6.2}",
            c[0] / b[0], c[1] / b[1], c[2] / b[2], c[3] / b[3]
        );
        let _ = std::fs::remove_dir_all(&dir);
    });
}
