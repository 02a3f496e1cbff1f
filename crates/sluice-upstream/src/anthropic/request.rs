//! The JSON body of `POST /v1/messages`.

use serde::Serialize;
use sluice_policy::Role;

use crate::request::UpstreamRequest;

/// `max_tokens` when the request sets none; the Messages API requires one.
pub(crate) const DEFAULT_MAX_TOKENS: u32 = 1024;

#[derive(Debug, Serialize)]
pub(super) struct WireRequest<'a> {
    model: &'a str,
    max_tokens: u32,
    /// The system messages, joined by blank lines: this API has no system role.
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
}

#[derive(Debug, Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: &'a str,
}

impl<'a> WireRequest<'a> {
    /// The body for `req` sent to a tier serving `model`; `stream` asks for SSE.
    pub(super) fn new(model: &'a str, req: &'a UpstreamRequest, stream: bool) -> Self {
        let system: Vec<&str> = req
            .messages
            .iter()
            .filter(|m| m.role == Role::System)
            .map(|m| m.content.as_str())
            .collect();
        Self {
            model,
            max_tokens: req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
            system: (!system.is_empty()).then(|| system.join("\n\n")),
            messages: req
                .messages
                .iter()
                .filter(|m| m.role != Role::System)
                .map(|m| WireMessage {
                    role: m.role.as_str(),
                    content: &m.content,
                })
                .collect(),
            temperature: req.temperature,
            top_p: req.top_p,
            stop_sequences: &req.stop,
            stream,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sluice_policy::Message;

    #[test]
    fn system_messages_go_to_the_system_field() {
        let req = UpstreamRequest {
            messages: vec![
                Message::new(Role::System, "be brief"),
                Message::new(Role::User, "capital of France?"),
                Message::new(Role::Assistant, "Paris."),
                Message::new(Role::System, "answer in French"),
                Message::new(Role::User, "and of Spain?"),
            ],
            ..Default::default()
        };
        let body = serde_json::to_value(WireRequest::new("claude-x", &req, false)).unwrap();
        assert_eq!(
            body,
            json!({
                "model": "claude-x",
                "max_tokens": 1024,
                "system": "be brief\n\nanswer in French",
                "messages": [
                    {"role": "user", "content": "capital of France?"},
                    {"role": "assistant", "content": "Paris."},
                    {"role": "user", "content": "and of Spain?"}
                ]
            })
        );
    }

    #[test]
    fn parameters_and_stream_flag() {
        let req = UpstreamRequest {
            messages: vec![Message::new(Role::User, "hi")],
            max_tokens: Some(64),
            temperature: Some(0.5),
            top_p: Some(0.25),
            stop: vec!["END".into()],
        };
        let body = serde_json::to_value(WireRequest::new("claude-x", &req, true)).unwrap();
        assert_eq!(body["max_tokens"], 64);
        assert_eq!(body["temperature"], 0.5);
        assert_eq!(body["top_p"], 0.25);
        assert_eq!(body["stop_sequences"], json!(["END"]));
        assert_eq!(body["stream"], true);
        assert!(body.get("system").is_none());
        assert!(body.get("stop").is_none());
    }
}
