//! The JSON body of `POST /v1/chat/completions`.

use serde::Serialize;

use crate::request::UpstreamRequest;

/// The JSON body of `POST /v1/chat/completions`.
#[derive(Debug, Serialize)]
pub(super) struct WireRequest<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
}

#[derive(Debug, Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Debug, Serialize)]
struct StreamOptions {
    include_usage: bool,
}

impl<'a> WireRequest<'a> {
    /// The body for `req` sent to a tier serving `model`; `stream` asks for SSE with usage.
    pub(super) fn new(model: &'a str, req: &'a UpstreamRequest, stream: bool) -> Self {
        Self {
            model,
            messages: req
                .messages
                .iter()
                .map(|m| WireMessage {
                    role: m.role.as_str(),
                    content: &m.content,
                })
                .collect(),
            max_tokens: req.max_tokens,
            temperature: req.temperature,
            top_p: req.top_p,
            stop: &req.stop,
            stream,
            stream_options: stream.then_some(StreamOptions {
                include_usage: true,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sluice_policy::{GenParams, Message, Role};

    fn messages() -> Vec<Message> {
        vec![
            Message::new(Role::System, "be brief"),
            Message::new(Role::User, "capital of France?"),
        ]
    }

    #[test]
    fn minimal_body_omits_unset_fields() {
        let req = UpstreamRequest {
            messages: messages(),
            ..Default::default()
        };
        let body = serde_json::to_value(WireRequest::new("gpt-x", &req, false)).unwrap();
        assert_eq!(
            body,
            json!({
                "model": "gpt-x",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "capital of France?"}
                ]
            })
        );
    }

    #[test]
    fn full_streaming_body() {
        let params = GenParams {
            max_tokens: Some(64),
            temperature: Some(0.5),
            top_p: Some(0.25),
            stop: vec!["\n\n".into()],
        };
        let req = UpstreamRequest::new(messages(), &params);
        let body = serde_json::to_value(WireRequest::new("gpt-x", &req, true)).unwrap();
        assert_eq!(body["max_tokens"], 64);
        assert_eq!(body["temperature"], 0.5);
        assert_eq!(body["top_p"], 0.25);
        assert_eq!(body["stop"], json!(["\n\n"]));
        assert_eq!(body["stream"], true);
        assert_eq!(body["stream_options"], json!({"include_usage": true}));
    }
}
