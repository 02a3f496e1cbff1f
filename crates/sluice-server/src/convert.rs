//! Wire types ↔ domain types. A failed conversion names the request field that was wrong.

use sluice_policy::{GenParams, Message, Role};
use sluice_proto::v1 as pb;

use crate::error::GatewayError;
use crate::gateway::types::{
    AnswerMeta, CacheControl, ChatInput, DecisionInfo, RouteHint, RouteInfo, RouteKind,
    ScoreOutput, Timings, UsageInfo,
};

fn role(value: i32, field: &str) -> Result<Role, GatewayError> {
    match pb::Role::try_from(value) {
        Ok(pb::Role::System) => Ok(Role::System),
        Ok(pb::Role::User) => Ok(Role::User),
        Ok(pb::Role::Assistant) => Ok(Role::Assistant),
        Ok(pb::Role::Unspecified) => Err(GatewayError::invalid(
            field,
            "expected ROLE_SYSTEM, ROLE_USER or ROLE_ASSISTANT, found ROLE_UNSPECIFIED",
        )),
        Err(_) => Err(GatewayError::invalid(
            field,
            format!(
                "expected ROLE_SYSTEM, ROLE_USER or ROLE_ASSISTANT, found unknown value {value}"
            ),
        )),
    }
}

fn messages(msgs: Vec<pb::Message>) -> Result<Vec<Message>, GatewayError> {
    msgs.into_iter()
        .enumerate()
        .map(|(i, m)| {
            Ok(Message {
                role: role(m.role, &format!("messages[{i}].role"))?,
                content: m.content,
            })
        })
        .collect()
}

fn params(p: Option<pb::GenerationParams>) -> GenParams {
    let p = p.unwrap_or_default();
    GenParams {
        max_tokens: p.max_tokens,
        temperature: p.temperature,
        top_p: p.top_p,
        stop: p.stop,
    }
}

pub(crate) fn request_id(id: String) -> String {
    if id.is_empty() {
        new_request_id()
    } else {
        id
    }
}

/// `cache_control`: comma-separated `no-cache` / `no-store`, case-insensitive.
pub(crate) fn cache_control(value: &str) -> Result<CacheControl, GatewayError> {
    let mut cc = CacheControl::default();
    for token in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        match token.to_ascii_lowercase().as_str() {
            "no-cache" => cc.no_cache = true,
            "no-store" => cc.no_store = true,
            _ => {
                return Err(GatewayError::invalid(
                    "cache_control",
                    format!("expected no-cache and/or no-store, found {token:?}"),
                ))
            }
        }
    }
    Ok(cc)
}

/// The caller's deadline from a `grpc-timeout` header value (`<1-8 digits><H|M|S|m|u|n>`);
/// `None` when absent or malformed (tonic rejects malformed values before we see them).
pub fn grpc_timeout(value: Option<&str>) -> Option<std::time::Duration> {
    use std::time::Duration;
    let v = value?;
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// A fresh request id: time-ordered, unique within the process.
pub fn new_request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    format!("{now:x}-{:x}", SEQ.fetch_add(1, Ordering::Relaxed))
}

impl TryFrom<pb::ChatRequest> for ChatInput {
    type Error = GatewayError;

    fn try_from(r: pb::ChatRequest) -> Result<Self, Self::Error> {
        let hint = route_hint(r.route_hint)?;
        Ok(ChatInput {
            tenant: String::new(),
            messages: messages(r.messages)?,
            policy: r.policy,
            tags: r.tags.into_iter().collect(),
            params: params(r.params),
            hint,
            request_id: request_id(r.request_id),
            deadline: None,
            cache: cache_control(&r.cache_control)?,
            access: None,
        })
    }
}

fn route_hint(value: i32) -> Result<RouteHint, GatewayError> {
    match pb::RouteHint::try_from(value) {
        Ok(pb::RouteHint::Auto) => Ok(RouteHint::Auto),
        Ok(pb::RouteHint::Local) => Ok(RouteHint::Local),
        Ok(pb::RouteHint::Remote) => Ok(RouteHint::Remote),
        Err(_) => Err(GatewayError::invalid(
            "route_hint",
            format!(
                "expected ROUTE_HINT_AUTO, ROUTE_HINT_LOCAL or ROUTE_HINT_REMOTE, found unknown value {value}"
            ),
        )),
    }
}

impl TryFrom<pb::ScoreRequest> for ChatInput {
    type Error = GatewayError;

    fn try_from(r: pb::ScoreRequest) -> Result<Self, Self::Error> {
        Ok(ChatInput {
            tenant: String::new(),
            messages: messages(r.messages)?,
            policy: r.policy,
            tags: r.tags.into_iter().collect(),
            params: params(r.params),
            hint: route_hint(r.route_hint)?,
            request_id: new_request_id(),
            deadline: None,
            cache: CacheControl::default(),
            access: None,
        })
    }
}

impl From<RouteInfo> for pb::Route {
    fn from(r: RouteInfo) -> Self {
        let kind = match r.kind {
            RouteKind::Local => pb::RouteKind::Local,
            RouteKind::Remote => pb::RouteKind::Remote,
            RouteKind::Cache => pb::RouteKind::Cache,
        };
        pb::Route {
            kind: kind.into(),
            tier: r.tier.unwrap_or_default(),
            model: r.model,
            fallback: r.fallback,
        }
    }
}

impl From<DecisionInfo> for pb::Decision {
    fn from(d: DecisionInfo) -> Self {
        pb::Decision {
            confidence: d.confidence,
            threshold: d.threshold,
            method: d.method.unwrap_or_default().to_string(),
            reason: d.reason.to_string(),
            features: d
                .features
                .into_iter()
                .map(|(name, value)| pb::Feature {
                    name: name.to_string(),
                    value,
                })
                .collect(),
            policy: d.policy,
            rule: d.rule.unwrap_or_default(),
        }
    }
}

impl From<UsageInfo> for pb::Usage {
    fn from(u: UsageInfo) -> Self {
        pb::Usage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            cost_usd: u.cost_usd,
            cost_avoided_usd: u.cost_avoided_usd,
        }
    }
}

impl From<Timings> for pb::Timings {
    fn from(t: Timings) -> Self {
        pb::Timings {
            total_ms: t.total_ms,
            score_ms: t.score_ms,
            upstream_ms: t.upstream_ms,
            local_ms: t.local_ms,
        }
    }
}

/// The answer as a response message.
pub fn chat_response(text: String, meta: AnswerMeta) -> pb::ChatResponse {
    pb::ChatResponse {
        request_id: meta.request_id,
        message: Some(pb::Message {
            role: pb::Role::Assistant.into(),
            content: text,
        }),
        finish_reason: meta.finish_reason,
        route: Some(meta.route.into()),
        decision: Some(meta.decision.into()),
        usage: Some(meta.usage.into()),
        timings: Some(meta.timings.into()),
    }
}

/// The last chunk of a stream: no text, all the metadata.
pub fn final_chunk(meta: AnswerMeta) -> pb::ChatChunk {
    pb::ChatChunk {
        request_id: meta.request_id,
        delta: String::new(),
        finish_reason: meta.finish_reason,
        route: Some(meta.route.into()),
        decision: Some(meta.decision.into()),
        usage: Some(meta.usage.into()),
        timings: Some(meta.timings.into()),
    }
}

pub fn score_response(s: ScoreOutput) -> pb::ScoreResponse {
    pb::ScoreResponse {
        decision: Some(s.decision.into()),
        route: Some(s.route.into()),
        draft: s.draft,
        timings: Some(s.timings.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: pb::Role, content: &str) -> pb::Message {
        pb::Message {
            role: role.into(),
            content: content.into(),
        }
    }

    #[test]
    fn unspecified_role_names_the_field() {
        let req = pb::ChatRequest {
            messages: vec![msg(pb::Role::User, "hi"), msg(pb::Role::Unspecified, "x")],
            ..Default::default()
        };
        let err = ChatInput::try_from(req).unwrap_err();
        assert_eq!(err.codes().0, tonic::Code::InvalidArgument);
        let text = err.to_string();
        assert!(text.starts_with("messages[1].role:"), "{text}");
        assert!(text.contains("ROLE_UNSPECIFIED"), "{text}");
    }

    #[test]
    fn grpc_timeout_values() {
        use std::time::Duration;
        assert_eq!(grpc_timeout(Some("250m")), Some(Duration::from_millis(250)));
        assert_eq!(grpc_timeout(Some("3S")), Some(Duration::from_secs(3)));
        assert_eq!(grpc_timeout(Some("2M")), Some(Duration::from_secs(120)));
        assert_eq!(grpc_timeout(Some("1H")), Some(Duration::from_secs(3600)));
        assert_eq!(grpc_timeout(Some("7u")), Some(Duration::from_micros(7)));
        assert_eq!(grpc_timeout(Some("9n")), Some(Duration::from_nanos(9)));
        for bad in ["", "S", "12", "1x", "-1S", "123456789S", "1.5S"] {
            assert_eq!(grpc_timeout(Some(bad)), None, "{bad}");
        }
        assert_eq!(grpc_timeout(None), None);
    }

    #[test]
    fn cache_control_tokens() {
        assert_eq!(cache_control("").unwrap(), CacheControl::default());
        let both = cache_control(" No-Store , no-cache").unwrap();
        assert!(both.no_cache && both.no_store);
        let err = cache_control("no-cache, max-age=5").unwrap_err();
        assert!(err.to_string().starts_with("cache_control:"), "{err}");
        assert!(err.to_string().contains("max-age=5"), "{err}");
    }

    #[test]
    fn unknown_hint_is_rejected() {
        let req = pb::ChatRequest {
            messages: vec![msg(pb::Role::User, "hi")],
            route_hint: 9,
            ..Default::default()
        };
        let err = ChatInput::try_from(req).unwrap_err();
        assert!(err.to_string().starts_with("route_hint:"), "{err}");
    }

    #[test]
    fn request_fields_carry_over() {
        let req = pb::ChatRequest {
            messages: vec![msg(pb::Role::System, "be brief"), msg(pb::Role::User, "hi")],
            policy: "p".into(),
            tags: [("team".to_string(), "a".to_string())].into(),
            params: Some(pb::GenerationParams {
                max_tokens: Some(5),
                temperature: Some(0.0),
                top_p: None,
                stop: vec!["\n".into()],
            }),
            route_hint: pb::RouteHint::Remote.into(),
            request_id: "r1".into(),
            cache_control: "no-store".into(),
        };
        let input = ChatInput::try_from(req).unwrap();
        assert!(input.cache.no_store && !input.cache.no_cache);
        assert_eq!(input.messages[0].role, Role::System);
        assert_eq!(input.policy, "p");
        assert_eq!(input.tags.get("team").map(String::as_str), Some("a"));
        assert_eq!(input.params.max_tokens, Some(5));
        assert_eq!(input.params.stop, vec!["\n".to_string()]);
        assert_eq!(input.hint, RouteHint::Remote);
        assert_eq!(input.request_id, "r1");
        let generated = ChatInput::try_from(pb::ChatRequest::default()).unwrap();
        assert!(!generated.request_id.is_empty());
    }
}
