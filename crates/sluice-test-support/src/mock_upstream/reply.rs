//! The mock's OpenAI-style response bodies (completions, SSE streams, errors) and the
//! plumbing both APIs share: spoiling bodies by cutting them or slowing them down.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, StreamExt};
use serde_json::{json, Value};

use super::{MockBehavior, MockConfig};

/// A number unique within the process, for response ids.
pub(super) fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn usage(config: &MockConfig) -> Value {
    json!({
        "prompt_tokens": config.prompt_tokens,
        "completion_tokens": config.completion_tokens,
        "total_tokens": config.prompt_tokens + config.completion_tokens,
    })
}

/// `status` with `body` as JSON, and a `Retry-After` when given.
pub(super) fn json_error(status: u16, body: Value, retry_after: Option<u64>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// `status` with an OpenAI-style error body.
pub(super) fn error(status: u16, message: &str, retry_after: Option<u64>) -> Response {
    let kind = if status >= 500 {
        "server_error"
    } else {
        "invalid_request_error"
    };
    let body = json!({
        "error": {"message": message, "type": kind, "param": null, "code": status}
    });
    json_error(status, body, retry_after)
}

/// A whole `chat.completion`; see [`json_body`] for how `behavior` spoils it.
pub(super) fn completion(config: &MockConfig, behavior: MockBehavior) -> Response {
    let id = format!("chatcmpl-mock-{}", next_id());
    if behavior == MockBehavior::MalformedJson {
        let cut_off = format!(r#"{{"id": "{id}", "object": "chat.completion", "choices": [{{"#);
        return json_body(cut_off, MockBehavior::Ok);
    }
    let body = json!({
        "id": id,
        "object": "chat.completion",
        "created": 0,
        "model": config.model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": config.answer},
            "finish_reason": "stop",
        }],
        "usage": usage(config),
    });
    json_body(body.to_string(), behavior)
}

/// A JSON 200; under [`MockBehavior::StreamCut`] only its first half is sent before the
/// connection is closed.
pub(super) fn json_body(body: String, behavior: MockBehavior) -> Response {
    let content_type = [(header::CONTENT_TYPE, "application/json")];
    if !matches!(behavior, MockBehavior::StreamCut { .. }) {
        return (content_type, body).into_response();
    }
    let bytes = Bytes::from(body);
    let half = bytes.slice(..bytes.len() / 2);
    (content_type, cut_body(vec![half], None)).into_response()
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

/// The SSE frames of a streamed answer: those before the text, one per piece of
/// text, and those after it (up to the end marker).
#[derive(Debug, Default)]
pub(super) struct Frames {
    pub(super) head: Vec<String>,
    pub(super) deltas: Vec<String>,
    pub(super) tail: Vec<String>,
}

/// The frames of a `chat.completion.chunk` stream, `[DONE]` included.
fn frames(config: &MockConfig, include_usage: bool, malformed: bool) -> Frames {
    let id = format!("chatcmpl-mock-{}", next_id());
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

    let mut frames = Frames::default();
    frames.head.push(": mock upstream stream\n\n".to_owned());
    if malformed {
        frames
            .head
            .push(format!("data: {{\"id\": \"{id}\", \"choices\": [\n\n"));
    }
    frames.head.push(delta(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    ));
    for piece in pieces(&config.answer) {
        frames
            .deltas
            .push(delta(json!({"content": piece}), Value::Null));
    }
    frames.tail.push(delta(json!({}), json!("stop")));
    if include_usage {
        frames.tail.push(chunk(json!([]), usage(config)));
    }
    frames.tail.push("data: [DONE]\n\n".to_owned());
    frames
}

/// An OpenAI-style streamed answer; see [`sse`] for how `behavior` spoils it.
pub(super) fn stream(config: &MockConfig, include_usage: bool, behavior: MockBehavior) -> Response {
    let malformed = behavior == MockBehavior::MalformedJson;
    sse(frames(config, include_usage, malformed), behavior)
}

/// A `text/event-stream` answer. Each frame is sent in two parts cut mid-line, so
/// clients see `data:` lines split across reads. Under [`MockBehavior::SlowStream`]
/// its delay is waited before each part; under [`MockBehavior::StreamCut`] the body
/// stops after that many text frames and the connection is closed.
pub(super) fn sse(frames: Frames, behavior: MockBehavior) -> Response {
    let (all, cut): (Vec<String>, bool) = match behavior {
        MockBehavior::StreamCut { after_chunks } => {
            let kept = after_chunks.min(frames.deltas.len());
            let mut all = frames.head;
            all.extend(frames.deltas.into_iter().take(kept));
            (all, true)
        }
        _ => {
            let mut all = frames.head;
            all.extend(frames.deltas);
            all.extend(frames.tail);
            (all, false)
        }
    };
    let mut parts: Vec<Bytes> = Vec::new();
    for frame in all {
        let bytes = Bytes::from(frame);
        let cut = bytes.len() / 2;
        parts.push(bytes.slice(..cut));
        parts.push(bytes.slice(cut..));
    }
    let chunk_delay = match behavior {
        MockBehavior::SlowStream(delay) => Some(delay),
        _ => None,
    };
    let body = if cut {
        cut_body(parts, chunk_delay)
    } else {
        Body::from_stream(paced(parts, chunk_delay).map(Ok::<_, std::io::Error>))
    };
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// `parts`, each after `delay` (or a yield, so they go out as separate writes).
fn paced(parts: Vec<Bytes>, delay: Option<Duration>) -> stream::BoxStream<'static, Bytes> {
    stream::iter(parts)
        .then(move |part| async move {
            match delay {
                Some(delay) => tokio::time::sleep(delay).await,
                None => tokio::task::yield_now().await,
            }
            part
        })
        .boxed()
}

/// A body of `parts` that then fails, which makes the server close the connection
/// without ending the body.
fn cut_body(parts: Vec<Bytes>, delay: Option<Duration>) -> Body {
    let failure = stream::once(async {
        // Time for the parts to be flushed before the close.
        tokio::time::sleep(Duration::from_millis(20)).await;
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "stream cut by the mock upstream",
        ))
    });
    Body::from_stream(paced(parts, delay).map(Ok).chain(failure))
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
        assert_eq!(frames.deltas.len(), 6);
        assert_eq!(
            frames.tail.last().map(String::as_str),
            Some("data: [DONE]\n\n")
        );
        let usage_frame = &frames.tail[frames.tail.len() - 2];
        assert!(usage_frame.contains(r#""choices":[]"#), "{usage_frame}");
        assert!(
            usage_frame.contains(r#""prompt_tokens":12"#),
            "{usage_frame}"
        );
        let plain = super::frames(&config, false, false);
        assert!(!plain
            .head
            .iter()
            .chain(&plain.deltas)
            .chain(&plain.tail)
            .any(|f| f.contains("usage")));
    }
}
