//! [`MockUpstream`]: a real HTTP server on `127.0.0.1` that answers like an
//! OpenAI-compatible server (`POST /v1/chat/completions`) and like Anthropic's Messages
//! API (`POST /v1/messages`), records what it got, and injects faults: per request by
//! the `x-mock-fault` header, otherwise by its [`FaultPlan`].

mod anthropic;
mod behavior;
mod conn;
mod reply;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use behavior::{FaultPlan, MockBehavior, FAULT_HEADER};

use behavior::PlanState;
use conn::{CuttableListener, Peer};

/// What the mock answers, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct MockConfig {
    /// The assistant's answer, whole or streamed in word-sized pieces.
    pub answer: String,
    /// The model the mock reports.
    pub model: String,
    /// Reported as `prompt_tokens` (OpenAI) and `input_tokens` (Anthropic).
    pub prompt_tokens: u64,
    /// Reported as `completion_tokens` (OpenAI) and `output_tokens` (Anthropic).
    pub completion_tokens: u64,
    /// How every request is answered, until [`MockUpstream::set_fault_plan`] says
    /// otherwise (this is [`FaultPlan::Always`] of it).
    pub behavior: MockBehavior,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            answer: "Paris is the capital of France.".to_owned(),
            model: "mock-large".to_owned(),
            prompt_tokens: 12,
            completion_tokens: 7,
            behavior: MockBehavior::Ok,
        }
    }
}

/// One request the mock received.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// The client's address: requests over one kept-alive connection share it.
    pub peer: SocketAddr,
    /// `/v1/chat/completions` or `/v1/messages`.
    pub path: String,
    /// The `Authorization` header, if any (e.g. `Bearer sk-...`).
    pub authorization: Option<String>,
    /// The `x-api-key` header (Anthropic's), if any.
    pub api_key: Option<String>,
    /// The `anthropic-version` header, if any.
    pub anthropic_version: Option<String>,
    /// The W3C `traceparent` header, if any.
    pub traceparent: Option<String>,
    /// The body parsed as JSON; a JSON string of the raw body when it was not JSON.
    pub body: Value,
}

impl RecordedRequest {
    /// Whether the request asked for a streamed answer.
    pub fn is_stream(&self) -> bool {
        self.body.get("stream").and_then(Value::as_bool) == Some(true)
    }
}

/// State shared by the handle and the server.
#[derive(Debug)]
struct Shared {
    config: Mutex<MockConfig>,
    plan: Mutex<PlanState>,
    requests: Mutex<Vec<RecordedRequest>>,
    /// Failures served under the current [`MockBehavior::FailThenOk`].
    failures_served: Mutex<u32>,
    /// Behaviours served, by [`MockBehavior::label`].
    counts: Mutex<BTreeMap<String, usize>>,
    /// Becomes true (or closes) when the mock stops; hanging requests wait for it.
    stopping: watch::Receiver<bool>,
}

/// Locks `mutex`, ignoring poisoning (a panicking test must not hide the mock's state).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running mock upstream; the server shuts down (gracefully) when this is dropped.
#[derive(Debug)]
pub struct MockUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    _server: JoinHandle<()>,
}

impl MockUpstream {
    /// Starts a mock on `127.0.0.1` at a free port. Needs a Tokio runtime.
    pub async fn start(config: MockConfig) -> std::io::Result<MockUpstream> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (stop, stopping) = watch::channel(false);
        let shared = Arc::new(Shared {
            plan: Mutex::new(PlanState::new(FaultPlan::Always(config.behavior))),
            config: Mutex::new(config),
            requests: Mutex::new(Vec::new()),
            failures_served: Mutex::new(0),
            counts: Mutex::new(BTreeMap::new()),
            stopping: stopping.clone(),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(chat_completions))
            .route("/v1/messages", post(messages))
            .with_state(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            let app = app.into_make_service_with_connect_info::<Peer>();
            let mut stopping = stopping;
            let served = axum::serve(CuttableListener(listener), app)
                .with_graceful_shutdown(async move {
                    // A dropped sender means stop, too.
                    let _ = stopping.wait_for(|stop| *stop).await;
                })
                .await;
            if let Err(err) = served {
                eprintln!("mock upstream on {addr} stopped: {err}");
            }
        });
        Ok(MockUpstream {
            addr,
            shared,
            stop,
            _server: server,
        })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the mock listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// How many requests got each behaviour so far, by [`MockBehavior::label`]
    /// (`ok`, `status_503`, `reset`, …); requests rejected as malformed are not counted.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        lock(&self.shared.counts).clone()
    }

    /// Answers every later request with `behavior`: [`FaultPlan::Always`].
    pub fn set_behavior(&self, behavior: MockBehavior) {
        lock(&self.shared.config).behavior = behavior;
        self.set_fault_plan(FaultPlan::Always(behavior));
    }

    /// Chooses the behaviour of later requests that do not pick one by header; the
    /// plan starts from its beginning.
    pub fn set_fault_plan(&self, plan: FaultPlan) {
        *lock(&self.shared.plan) = PlanState::new(plan);
        *lock(&self.shared.failures_served) = 0;
    }

    /// Replaces the whole configuration for later requests, the fault plan included
    /// (it becomes [`FaultPlan::Always`] of `config.behavior`).
    pub fn set_config(&self, config: MockConfig) {
        let behavior = config.behavior;
        *lock(&self.shared.config) = config;
        self.set_fault_plan(FaultPlan::Always(behavior));
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// The API a request came in through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    OpenAi,
    Anthropic,
}

/// `POST /v1/chat/completions`.
async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    answer(Api::OpenAi, &shared, &peer, &headers, &raw).await
}

/// `POST /v1/messages`.
async fn messages(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    answer(Api::Anthropic, &shared, &peer, &headers, &raw).await
}

fn header_text(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// Records the request, picks its behaviour and answers accordingly.
async fn answer(
    api: Api,
    shared: &Shared,
    peer: &Peer,
    headers: &HeaderMap,
    raw: &Bytes,
) -> Response {
    let parsed = serde_json::from_slice::<Value>(raw);
    let body = match &parsed {
        Ok(value) => value.clone(),
        Err(_) => Value::String(String::from_utf8_lossy(raw).into_owned()),
    };
    let request = RecordedRequest {
        peer: peer.addr,
        path: match api {
            Api::OpenAi => "/v1/chat/completions",
            Api::Anthropic => "/v1/messages",
        }
        .to_owned(),
        authorization: header_text(headers, header::AUTHORIZATION),
        api_key: header_text(headers, "x-api-key"),
        anthropic_version: header_text(headers, "anthropic-version"),
        traceparent: header_text(headers, "traceparent"),
        body,
    };
    let stream = request.is_stream();
    let include_usage = request
        .body
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        == Some(true);
    lock(&shared.requests).push(request);

    let error = |status: u16, message: &str, retry_after: Option<u64>| match api {
        Api::OpenAi => reply::error(status, message, retry_after),
        Api::Anthropic => anthropic::error(status, message, retry_after),
    };
    if let Err(err) = parsed {
        return error(400, &format!("expected a json body, found: {err}"), None);
    }
    let behavior = match header_text(headers, FAULT_HEADER) {
        Some(text) => match text.parse::<MockBehavior>() {
            Ok(behavior) => behavior,
            Err(message) => return error(400, &format!("{FAULT_HEADER}: {message}"), None),
        },
        None => lock(&shared.plan).next(),
    };
    let behavior = match behavior {
        MockBehavior::FailThenOk { status, failures } => {
            let mut served = lock(&shared.failures_served);
            if *served < failures {
                *served += 1;
                MockBehavior::Status(status)
            } else {
                MockBehavior::Ok
            }
        }
        other => other,
    };
    *lock(&shared.counts).entry(behavior.label()).or_default() += 1;

    let failure = |status: u16| format!("mock upstream failure (status {status})");
    match behavior {
        MockBehavior::Status(status) => return error(status, &failure(status), None),
        MockBehavior::RetryAfter { status, seconds } => {
            return error(status, &failure(status), Some(seconds))
        }
        MockBehavior::Latency(delay) | MockBehavior::Delay(delay) => {
            tokio::time::sleep(delay).await;
        }
        MockBehavior::Hang => {
            let mut stopping = shared.stopping.clone();
            let _ = stopping.wait_for(|stop| *stop).await;
            return error(503, "mock upstream stopped", None);
        }
        MockBehavior::Reset => {
            peer.cut();
            // Never written: the connection fails first.
            return ().into_response();
        }
        MockBehavior::Ok
        | MockBehavior::StreamCut { .. }
        | MockBehavior::MalformedJson
        | MockBehavior::SlowStream(_)
        | MockBehavior::FailThenOk { .. } => {}
    }
    let config = lock(&shared.config).clone();
    match (api, stream) {
        (Api::OpenAi, true) => reply::stream(&config, include_usage, behavior),
        (Api::OpenAi, false) => reply::completion(&config, behavior),
        (Api::Anthropic, true) => anthropic::stream(&config, behavior),
        (Api::Anthropic, false) => anthropic::message(&config, behavior),
    }
}
