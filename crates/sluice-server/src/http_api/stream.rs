//! Streamed answers as OpenAI's `chat.completion.chunk` server-sent events, ending with
//! `data: [DONE]`. An error before any text is a plain error response; after text has gone
//! out, it is one `data: {"error": …}` event and no `[DONE]`, so a cut answer is never
//! mistaken for a whole one.

use crate::telemetry::{record_answer, record_error};
use std::convert::Infallible;

use axum::http::HeaderValue;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{json, Value};

use super::wire::{now_secs, sluice, usage};
use super::ApiError;
use crate::gateway::types::{ChatInput, StreamItem};
use crate::gateway::Gateway;

fn chunk(id: &str, created: u64, model: &str, delta: Value, finish: Option<&str>) -> Value {
    json!({
        "id": id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }],
    })
}

fn event(v: &Value) -> Result<Event, Infallible> {
    Ok(Event::default().data(v.to_string()))
}

pub async fn respond(
    gw: &Gateway,
    input: ChatInput,
    include_usage: bool,
    span: tracing::Span,
) -> Result<Response, ApiError> {
    let request_id = input.request_id.clone();
    let id = format!("chatcmpl-{request_id}");
    let created = now_secs();
    // Which model answers is known at the end; the chunks before it name the gateway.
    let model = "sluice".to_owned();
    let mut items = span.in_scope(|| gw.chat_stream(input));
    // Errors before any text fail the request itself, with its status.
    let first = match items.next().await {
        Some(Err(e)) => {
            record_error(&span, e.kind());
            return Err(e.into());
        }
        other => other,
    };
    let mut role_sent = false;
    let events = futures::stream::iter(first)
        .chain(items)
        .flat_map(move |item| {
            let out: Vec<Result<Event, Infallible>> = match item {
                Ok(StreamItem::Delta(text)) => {
                    let delta = if role_sent {
                        json!({ "content": text })
                    } else {
                        role_sent = true;
                        json!({ "role": "assistant", "content": text })
                    };
                    vec![event(&chunk(&id, created, &model, delta, None))]
                }
                Ok(StreamItem::End(meta)) => {
                    record_answer(&span, &meta);
                    let mut last = chunk(
                        &id,
                        created,
                        &meta.route.model,
                        json!({}),
                        Some(&meta.finish_reason),
                    );
                    last["sluice"] = sluice(&meta);
                    let mut out = vec![event(&last)];
                    if include_usage {
                        out.push(event(&json!({
                            "id": id,
                            "object": "chat.completion.chunk",
                            "created": created,
                            "model": meta.route.model,
                            "choices": [],
                            "usage": usage(&meta),
                        })));
                    }
                    out.push(Ok(Event::default().data("[DONE]")));
                    out
                }
                // The status line has gone out: the event says what happened.
                Err(e) => {
                    record_error(&span, e.kind());
                    vec![event(&json!({ "error": {
                    "message": e.to_string(),
                    "type": "api_error",
                    "param": null,
                    "code": e.kind(),
                    }}))]
                }
            };
            futures::stream::iter(out)
        });
    let mut response = Sse::new(events).into_response();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    Ok(response)
}
