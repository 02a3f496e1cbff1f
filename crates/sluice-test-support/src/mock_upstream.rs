//! [`MockUpstream`]: a real HTTP server on `127.0.0.1` that answers
//! `POST /v1/chat/completions` like an OpenAI-compatible server, and records what it got.

mod reply;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// What the mock answers, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct MockConfig {
    /// The assistant's answer, whole or streamed in word-sized pieces.
    pub answer: String,
    /// The model the mock reports.
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
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

/// How the mock answers each request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MockBehavior {
    /// A normal answer.
    #[default]
    Ok,
    /// This HTTP status with an OpenAI-style error JSON body.
    Status(u16),
    /// Waits this long before the response headers, then answers normally.
    Delay(Duration),
    /// A 200 whose body (or, streaming, whose first `data:` payload) is not valid JSON.
    MalformedJson,
    /// Streams normally but waits this long before each chunk of the body;
    /// non-streaming requests are answered normally.
    SlowStream(Duration),
    /// The first `failures` requests get `status` (as [`MockBehavior::Status`]), later
    /// ones a normal answer. The count starts when this behavior is set.
    FailThenOk { status: u16, failures: u32 },
}

/// One request the mock received.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// The client's address: requests over one kept-alive connection share it.
    pub peer: SocketAddr,
    /// The `Authorization` header, if any (e.g. `Bearer sk-...`).
    pub authorization: Option<String>,
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
    requests: Mutex<Vec<RecordedRequest>>,
    /// Failures served under the current [`MockBehavior::FailThenOk`].
    failures_served: Mutex<u32>,
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
    shutdown: Option<oneshot::Sender<()>>,
    _server: JoinHandle<()>,
}

impl MockUpstream {
    /// Starts a mock on `127.0.0.1` at a free port. Needs a Tokio runtime.
    pub async fn start(config: MockConfig) -> std::io::Result<MockUpstream> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config: Mutex::new(config),
            requests: Mutex::new(Vec::new()),
            failures_served: Mutex::new(0),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(chat_completions))
            .with_state(Arc::clone(&shared));
        let (shutdown, stop) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let app = app.into_make_service_with_connect_info::<SocketAddr>();
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    // A dropped sender means shut down, too.
                    let _ = stop.await;
                })
                .await;
            if let Err(err) = served {
                eprintln!("mock upstream on {addr} stopped: {err}");
            }
        });
        Ok(MockUpstream {
            addr,
            shared,
            shutdown: Some(shutdown),
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

    /// Changes how later requests are answered.
    pub fn set_behavior(&self, behavior: MockBehavior) {
        let mut config = lock(&self.shared.config);
        config.behavior = behavior;
        *lock(&self.shared.failures_served) = 0;
    }

    /// Replaces the whole configuration for later requests.
    pub fn set_config(&self, config: MockConfig) {
        *lock(&self.shared.config) = config;
        *lock(&self.shared.failures_served) = 0;
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// `POST /v1/chat/completions`.
async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let parsed = serde_json::from_slice::<Value>(&raw);
    let body = match &parsed {
        Ok(value) => value.clone(),
        Err(_) => Value::String(String::from_utf8_lossy(&raw).into_owned()),
    };
    let request = RecordedRequest {
        peer,
        authorization,
        body,
    };
    let stream = request.is_stream();
    let include_usage = request
        .body
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        == Some(true);
    lock(&shared.requests).push(request);

    if let Err(err) = parsed {
        return reply::error(400, &format!("expected a json body, found: {err}"));
    }
    let config = lock(&shared.config).clone();
    let behavior = match config.behavior {
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
    let chunk_delay = match behavior {
        MockBehavior::Status(status) => {
            return reply::error(status, &format!("mock upstream failure (status {status})"))
        }
        MockBehavior::Delay(delay) => {
            tokio::time::sleep(delay).await;
            None
        }
        MockBehavior::SlowStream(delay) => Some(delay),
        MockBehavior::Ok | MockBehavior::MalformedJson | MockBehavior::FailThenOk { .. } => None,
    };
    let malformed = behavior == MockBehavior::MalformedJson;
    if stream {
        reply::stream(&config, include_usage, malformed, chunk_delay)
    } else {
        reply::completion(&config, malformed)
    }
}
