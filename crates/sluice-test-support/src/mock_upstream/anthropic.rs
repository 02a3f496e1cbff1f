//! The mock's Anthropic Messages API bodies: `message` objects, typed SSE events and
//! `{"type": "error"}` errors.

use axum::response::Response;
use serde_json::{json, Value};

use super::reply::{json_body, json_error, next_id, pieces, sse, Frames};
use super::{MockBehavior, MockConfig};

/// The error `type` Anthropic uses for `status`.
fn error_type(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ if status >= 500 => "api_error",
        _ => "invalid_request_error",
    }
}

/// `status` with an Anthropic-style error body.
pub(super) fn error(status: u16, message: &str, retry_after: Option<u64>) -> Response {
    let body = json!({
        "type": "error",
        "error": {"type": error_type(status), "message": message},
    });
    json_error(status, body, retry_after)
}

/// A whole `message`; malformed or cut like OpenAI answers.
pub(super) fn message(config: &MockConfig, behavior: MockBehavior) -> Response {
    let id = format!("msg_mock_{}", next_id());
    if behavior == MockBehavior::MalformedJson {
        let cut_off = format!(r#"{{"id": "{id}", "type": "message", "content": [{{"#);
        return json_body(cut_off, MockBehavior::Ok);
    }
    let body = json!({
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": config.model,
        "content": [{"type": "text", "text": config.answer}],
        "stop_reason": "end_turn",
        "stop_sequence": null,
        "usage": {"input_tokens": config.prompt_tokens, "output_tokens": config.completion_tokens},
    });
    json_body(body.to_string(), behavior)
}

fn event(kind: &str, data: &Value) -> String {
    format!("event: {kind}\ndata: {data}\n\n")
}

/// The events of a streamed message, `message_stop` included.
fn frames(config: &MockConfig, malformed: bool) -> Frames {
    let id = format!("msg_mock_{}", next_id());
    let mut frames = Frames::default();
    if malformed {
        frames.head.push(format!(
            "event: message_start\ndata: {{\"id\": \"{id}\", \"message\": [\n\n"
        ));
    }
    frames.head.push(event(
        "message_start",
        &json!({"type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "content": [],
            "model": config.model, "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": config.prompt_tokens, "output_tokens": 1},
        }}),
    ));
    frames.head.push(event(
        "content_block_start",
        &json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "text", "text": ""}}),
    ));
    frames.head.push(event("ping", &json!({"type": "ping"})));
    for piece in pieces(&config.answer) {
        frames.deltas.push(event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": piece}}),
        ));
    }
    frames.tail.push(event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": 0}),
    ));
    frames.tail.push(event(
        "message_delta",
        &json!({"type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                "usage": {"output_tokens": config.completion_tokens}}),
    ));
    frames
        .tail
        .push(event("message_stop", &json!({"type": "message_stop"})));
    frames
}

/// A streamed message, spoiled by `behavior` like OpenAI streams.
pub(super) fn stream(config: &MockConfig, behavior: MockBehavior) -> Response {
    sse(
        frames(config, behavior == MockBehavior::MalformedJson),
        behavior,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_has_usage_at_start_and_in_the_delta() {
        let config = MockConfig::default();
        let frames = frames(&config, false);
        assert!(frames.head[0].starts_with("event: message_start\n"));
        assert!(frames.head[0].contains(r#""input_tokens":12"#));
        assert_eq!(frames.deltas.len(), 6);
        assert!(frames.tail[1].contains(r#""output_tokens":7"#));
        assert!(frames.tail[2].contains("message_stop"));
    }

    #[test]
    fn error_types_follow_the_status() {
        assert_eq!(error_type(529), "overloaded_error");
        assert_eq!(error_type(429), "rate_limit_error");
        assert_eq!(error_type(503), "api_error");
        assert_eq!(error_type(418), "invalid_request_error");
    }
}
