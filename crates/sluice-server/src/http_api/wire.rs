//! OpenAI's chat-completions JSON ↔ the gateway's request and answer. Unknown fields are
//! ignored, as OpenAI's clients expect; a field of the wrong type is a 400 naming it.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};
use sluice_policy::{GenParams, Message, Role};

use crate::convert::{cache_control, request_id};
use crate::error::GatewayError;
use crate::gateway::types::{AnswerMeta, ChatInput, RouteHint};

/// `model` values that mean "the tenant's default policy".
pub const DEFAULT_MODELS: [&str; 2] = ["", "sluice"];

#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    #[serde(default)]
    pub model: String,
    pub messages: Vec<WireMessage>,
    pub max_tokens: Option<u32>,
    pub max_completion_tokens: Option<u32>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub stop: Option<Stop>,
    #[serde(default)]
    pub stream: bool,
    pub stream_options: Option<StreamOptions>,
    pub user: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
    /// Sluice's own controls, for clients that can add body fields more easily than headers.
    pub sluice: Option<SluiceOptions>,
}

#[derive(Debug, Deserialize)]
pub struct WireMessage {
    pub role: String,
    pub content: Content,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Debug, Deserialize)]
pub struct Part {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct SluiceOptions {
    pub route_hint: Option<String>,
    pub cache_control: Option<String>,
}

/// Sluice's request headers, read by the handler.
#[derive(Debug, Default)]
pub struct Headers<'a> {
    pub route_hint: Option<&'a str>,
    pub cache_control: Option<&'a str>,
    pub request_id: Option<&'a str>,
}

/// The body as a request, or a 400 naming the field that was wrong.
pub fn parse(body: &[u8]) -> Result<ChatRequest, GatewayError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        GatewayError::invalid(field, e.into_inner().to_string())
    })
}

fn role(value: &str, field: &str) -> Result<Role, GatewayError> {
    match value {
        "system" | "developer" => Ok(Role::System),
        "user" => Ok(Role::User),
        "assistant" => Ok(Role::Assistant),
        other => Err(GatewayError::invalid(
            field,
            format!("expected system, developer, user or assistant, found {other:?}"),
        )),
    }
}

fn content(c: Content, field: &str) -> Result<String, GatewayError> {
    match c {
        Content::Text(t) => Ok(t),
        Content::Parts(parts) => {
            let mut text = String::new();
            for (i, p) in parts.into_iter().enumerate() {
                match (p.kind.as_str(), p.text) {
                    ("text", Some(t)) => text.push_str(&t),
                    ("text", None) => {
                        return Err(GatewayError::invalid(
                            format!("{field}[{i}].text"),
                            "expected the part's text, found none",
                        ))
                    }
                    (other, _) => {
                        return Err(GatewayError::invalid(
                            format!("{field}[{i}].type"),
                            format!(
                            "expected \"text\" (the only content Sluice routes), found {other:?}"
                        ),
                        ))
                    }
                }
            }
            Ok(text)
        }
    }
}

fn hint(value: &str, field: &str) -> Result<RouteHint, GatewayError> {
    match value.to_ascii_lowercase().as_str() {
        "" | "auto" => Ok(RouteHint::Auto),
        "local" => Ok(RouteHint::Local),
        "remote" => Ok(RouteHint::Remote),
        other => Err(GatewayError::invalid(
            field,
            format!("expected auto, local or remote, found {other:?}"),
        )),
    }
}

impl ChatRequest {
    /// The gateway's request (tenant and access are the caller's, set after).
    pub fn into_input(self, headers: &Headers<'_>) -> Result<ChatInput, GatewayError> {
        let messages = self
            .messages
            .into_iter()
            .enumerate()
            .map(|(i, m)| {
                Ok(Message {
                    role: role(&m.role, &format!("messages[{i}].role"))?,
                    content: content(m.content, &format!("messages[{i}].content"))?,
                })
            })
            .collect::<Result<Vec<_>, GatewayError>>()?;
        let sluice = self.sluice.unwrap_or_default();
        let hint = match (headers.route_hint, sluice.route_hint.as_deref()) {
            (Some(h), _) => hint(h, "x-sluice-route-hint")?,
            (None, Some(h)) => hint(h, "sluice.route_hint")?,
            (None, None) => RouteHint::Auto,
        };
        let cache = match (headers.cache_control, sluice.cache_control.as_deref()) {
            (Some(c), _) => cache_control(c).map_err(|e| rename(e, "x-sluice-cache-control"))?,
            (None, Some(c)) => cache_control(c).map_err(|e| rename(e, "sluice.cache_control"))?,
            (None, None) => Default::default(),
        };
        let mut tags = self.metadata.unwrap_or_default();
        if let Some(user) = self.user {
            tags.entry("user".to_owned()).or_insert(user);
        }
        let policy = if DEFAULT_MODELS.contains(&self.model.as_str()) {
            String::new()
        } else {
            self.model
        };
        Ok(ChatInput {
            tenant: String::new(),
            messages,
            policy,
            tags,
            params: GenParams {
                max_tokens: self.max_completion_tokens.or(self.max_tokens),
                temperature: self.temperature,
                top_p: self.top_p,
                stop: match self.stop {
                    None => Vec::new(),
                    Some(Stop::One(s)) => vec![s],
                    Some(Stop::Many(v)) => v,
                },
            },
            hint,
            request_id: request_id(headers.request_id.unwrap_or_default().to_owned()),
            deadline: None,
            cache,
            access: None,
        })
    }
}

/// The same error, naming where the value came from on this front door.
fn rename(e: GatewayError, field: &str) -> GatewayError {
    match e {
        GatewayError::InvalidArgument { message, .. } => GatewayError::invalid(field, message),
        other => other,
    }
}

/// Seconds since the epoch, for `created`.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub fn usage(meta: &AnswerMeta) -> Value {
    let (p, c) = (meta.usage.prompt_tokens, meta.usage.completion_tokens);
    json!({ "prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c })
}

/// Sluice's facts about an answer, beside OpenAI's fields.
pub fn sluice(meta: &AnswerMeta) -> Value {
    let d = &meta.decision;
    json!({
        "request_id": meta.request_id,
        "route": meta.route.kind.as_str(),
        "tier": meta.route.tier,
        "fallback": meta.route.fallback,
        "decision": {
            "policy": d.policy,
            "reason": d.reason,
            "confidence": d.confidence,
            "threshold": d.threshold,
            "method": d.method,
            "rule": d.rule,
        },
        "cost_usd": meta.usage.cost_usd,
        "cost_avoided_usd": meta.usage.cost_avoided_usd,
        "timings_ms": {
            "total": meta.timings.total_ms,
            "score": meta.timings.score_ms,
            "upstream": meta.timings.upstream_ms,
            "local": meta.timings.local_ms,
        },
    })
}

/// `chat.completion` for a complete answer.
pub fn completion(text: &str, meta: &AnswerMeta) -> Value {
    json!({
        "id": format!("chatcmpl-{}", meta.request_id),
        "object": "chat.completion",
        "created": now_secs(),
        "model": meta.route.model,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": text },
            "finish_reason": meta.finish_reason,
        }],
        "usage": usage(meta),
        "sluice": sluice(meta),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(body: &str) -> Result<ChatInput, GatewayError> {
        parse(body.as_bytes())?.into_input(&Headers::default())
    }

    fn invalid(body: &str) -> (String, String) {
        match input(body) {
            Err(GatewayError::InvalidArgument { field, message }) => (field, message),
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn the_openai_shapes_map_onto_the_request() {
        let i = input(
            r#"{"model":"sluice","messages":[{"role":"developer","content":"Be brief."},
            {"role":"user","content":[{"type":"text","text":"Hi "},{"type":"text","text":"there"}]}],
            "max_tokens":9,"max_completion_tokens":7,"temperature":0,"top_p":0.5,"stop":"\n",
            "user":"u1","metadata":{"team":"ml"},"logprobs":true,"n":1,
            "sluice":{"route_hint":"local","cache_control":"no-store"}}"#,
        )
        .unwrap();
        assert_eq!(i.policy, "");
        assert_eq!(i.messages[0], Message::new(Role::System, "Be brief."));
        assert_eq!(i.messages[1], Message::new(Role::User, "Hi there"));
        assert_eq!(i.params.max_tokens, Some(7), "max_completion_tokens wins");
        assert_eq!(i.params.stop, ["\n"]);
        assert_eq!(i.hint, RouteHint::Local);
        assert!(i.cache.no_store && !i.cache.no_cache);
        assert_eq!(i.tags.get("team").map(String::as_str), Some("ml"));
        assert_eq!(i.tags.get("user").map(String::as_str), Some("u1"));
        let named = input(r#"{"model":"cost-saver","messages":[{"role":"user","content":"x"}]}"#);
        assert_eq!(named.unwrap().policy, "cost-saver");
    }

    #[test]
    fn headers_win_over_body_fields() {
        let req = parse(
            br#"{"messages":[{"role":"user","content":"x"}],"sluice":{"route_hint":"local"}}"#,
        )
        .unwrap();
        let headers = Headers {
            route_hint: Some("remote"),
            cache_control: Some("no-cache"),
            request_id: Some("r-1"),
        };
        let i = req.into_input(&headers).unwrap();
        assert_eq!((i.hint, i.cache.no_cache), (RouteHint::Remote, true));
        assert_eq!(i.request_id, "r-1");
    }

    #[test]
    fn wrong_types_and_values_name_the_field() {
        let (field, message) =
            invalid(r#"{"messages":[{"role":"user","content":"x"}],"max_tokens":"9"}"#);
        assert_eq!(field, "max_tokens");
        assert!(message.contains("expected u32"), "{message}");
        assert_eq!(invalid(r#"{"model":"x"}"#).0, "body");
        assert_eq!(
            invalid(r#"{"messages":[{"role":"tool","content":"x"}]}"#),
            (
                "messages[0].role".to_owned(),
                "expected system, developer, user or assistant, found \"tool\"".to_owned()
            )
        );
        let (field, _) = invalid(
            r#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]}"#,
        );
        assert_eq!(field, "messages[0].content[0].type");
        let (field, _) = invalid(
            r#"{"messages":[{"role":"user","content":"x"}],"sluice":{"route_hint":"sideways"}}"#,
        );
        assert_eq!(field, "sluice.route_hint");
        assert_eq!(invalid("not json").0, "body");
    }
}
