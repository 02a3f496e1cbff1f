//! An OpenAI-compatible upstream that answers at once, so a benchmark measures the gateway
//! and not a model: `POST /v1/chat/completions` gets a fixed short completion, or with
//! `"stream": true` the same answer as server-sent events.

use std::net::SocketAddr;

use anyhow::Context;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Json;
use serde_json::{json, Value};

/// The answer's usage: what every escalation costs at the bench policy's prices.
pub const PROMPT_TOKENS: u64 = 20;
pub const COMPLETION_TOKENS: u64 = 8;

/// The streamed answer: three content chunks, the finish, the usage, `[DONE]`.
fn sse(model: &str) -> Response {
    let chunk = |delta: Value, finish: Value| {
        json!({ "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0,
                "model": model, "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }] })
    };
    let mut body = String::new();
    for (i, piece) in ["An answer", " from the fast", " upstream."]
        .iter()
        .enumerate()
    {
        let delta = if i == 0 {
            json!({ "role": "assistant", "content": piece })
        } else {
            json!({ "content": piece })
        };
        body.push_str(&format!("data: {}\n\n", chunk(delta, Value::Null)));
    }
    body.push_str(&format!("data: {}\n\n", chunk(json!({}), json!("stop"))));
    let usage = json!({ "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0,
        "model": model, "choices": [], "usage": { "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS, "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS } });
    body.push_str(&format!("data: {usage}\n\ndata: [DONE]\n\n"));
    ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response()
}

async fn complete(Json(req): Json<Value>) -> Response {
    let model = req.get("model").and_then(Value::as_str).unwrap_or("fast");
    if req.get("stream").and_then(Value::as_bool) == Some(true) {
        return sse(model);
    }
    Json(json!({
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": "An answer from the fast upstream." },
            "finish_reason": "stop"
        }],
        "usage": {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": COMPLETION_TOKENS,
            "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS
        }
    }))
    .into_response()
}

/// Serves on a free loopback port until the process ends; returns the base URL.
pub async fn start() -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot bind the bench upstream")?;
    let addr: SocketAddr = listener.local_addr()?;
    let app = axum::Router::new().route("/v1/chat/completions", post(complete));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("bench upstream stopped: {e}");
        }
    });
    Ok(format!("http://{addr}"))
}
