//! The mock's response bodies: OpenAI-style completions, SSE streams and errors.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, StreamExt};
use serde_json::{json, Value};

use super::MockConfig;

/// A response id, unique within the process.
fn next_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("chatcmpl-mock-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn usage(config: &MockConfig) -> Value {
    json!({
        "prompt_tokens": config.prompt_tokens,
        "completion_tokens": config.completion_tokens,
        "total_tokens": config.prompt_tokens + config.completion_tokens,
    })
}

/// `status` with an OpenAI-style error body.
pub(super) fn error(status: u16, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let kind = if status.is_server_error() {
        "server_error"
    } else {
        "invalid_request_error"
    };
    let body = json!({
        "error": {"message": message, "type": kind, "param": null, "code": status.as_u16()}
    });
    (status, axum::Json(body)).into_response()
}

/// A whole `chat.completion`, or, when `malformed`, a cut-off JSON body.
pub(super) fn completion(config: &MockConfig, malformed: bool) -> Response {
    let body = if malformed {
        format!(
            r#"{{"id": "{}", "object": "chat.completion", "choices": [{{"#,
            next_id()
        )
    } else {
        json!({
            "id": next_id(),
            "object": "chat.completion",
            "created": 0,
            "model": config.model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": config.answer},
                "finish_reason": "stop",
            }],
            "usage": usage(config),
        })
        .to_string()
    };
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The answer split into word-sized pieces, each but the first starting with its
/// whitespace: "Paris is" -> ["Paris", " is"]. They concatenate back to the answer.
pub(super) fn pieces(answer: &str) -> Vec<String> {
    let mut pieces: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut after_word = false;
    for c in answer.chars() {
        if c.is_whitespace() && after_word {
            pieces.push(std::mem::take(&mut current));
        }
        after_word = !c.is_whitespace();
        current.push(c);
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

/// The SSE frames of a streamed answer, `[DONE]` included.
fn frames(config: &MockConfig, include_usage: bool, malformed: bool) -> Vec<String> {
    let id = next_id();
    let chunk = |choices: Value, usage: Value| {
        let mut chunk = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": 0,
            "model": config.model,
            "choices": choices,
        });
        if include_usage {
            chunk["usage"] = usage;
        }
        format!("data: {chunk}\n\n")
    };
    let delta = |delta: Value, finish_reason: Value| {
        chunk(
            json!([{"index": 0, "delta": delta, "finish_reason": finish_reason}]),
            Value::Null,
        )
    };

    let mut frames = vec![": mock upstream stream\n\n".to_owned()];
    if malformed {
        frames.push(format!("data: {{\"id\": \"{id}\", \"choices\": [\n\n"));
    }
    frames.push(delta(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    ));
    for piece in pieces(&config.answer) {
        frames.push(delta(json!({"content": piece}), Value::Null));
    }
    frames.push(delta(json!({}), json!("stop")));
    if include_usage {
        frames.push(chunk(json!([]), usage(config)));
    }
    frames.push("data: [DONE]\n\n".to_owned());
    frames
}

/// A `text/event-stream` answer. Each frame is sent in two parts cut mid-line, so
/// clients see `data:` lines split across reads; `chunk_delay` is waited before each part.
pub(super) fn stream(
    config: &MockConfig,
    include_usage: bool,
    malformed: bool,
    chunk_delay: Option<Duration>,
) -> Response {
    let mut parts: Vec<Bytes> = Vec::new();
    for frame in frames(config, include_usage, malformed) {
        let bytes = Bytes::from(frame);
        let cut = bytes.len() / 2;
        parts.push(bytes.slice(..cut));
        parts.push(bytes.slice(cut..));
    }
    let body = stream::iter(parts).then(move |part| async move {
        match chunk_delay {
            Some(delay) => tokio::time::sleep(delay).await,
            None => tokio::task::yield_now().await,
        }
        Ok::<_, Infallible>(part)
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_concatenate_to_the_answer() {
        let answer = "Paris is the capital of France.";
        let pieces = pieces(answer);
        assert_eq!(pieces[..3], ["Paris", " is", " the"]);
        assert_eq!(pieces.len(), 6);
        assert_eq!(pieces.concat(), answer);
        for odd in ["", "  lead", "trail  ", "a\n\nb", "one"] {
            assert_eq!(super::pieces(odd).concat(), odd);
        }
    }

    #[test]
    fn frames_end_with_usage_then_done() {
        let config = MockConfig::default();
        let frames = frames(&config, true, false);
        assert_eq!(frames.last().map(String::as_str), Some("data: [DONE]\n\n"));
        let usage_frame = &frames[frames.len() - 2];
        assert!(usage_frame.contains(r#""choices":[]"#), "{usage_frame}");
        assert!(
            usage_frame.contains(r#""prompt_tokens":12"#),
            "{usage_frame}"
        );
        assert!(!super::frames(&config, false, false)
            .iter()
            .any(|f| f.contains("usage")));
    }
}
