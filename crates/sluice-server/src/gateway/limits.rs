//! What one request may hold, and whether its prompt fits the local model.
//!
//! The limits bound the work and memory a single call can cost the gateway (rules and
//! personal-data detectors read every byte; the cache key hashes them); each breach is
//! `INVALID_ARGUMENT` naming the field and the limit.

use sluice_policy::Policy;

use super::{local_request, ChatInput, Gateway};
use crate::error::GatewayError;

/// Messages in one request.
pub const MAX_MESSAGES: usize = 10_000;
/// Bytes of message text in one request, all messages together (as gRPC's default frame).
pub const MAX_PROMPT_BYTES: usize = 4 * 1024 * 1024;
/// Stop sequences, and bytes in each.
pub const MAX_STOP: usize = 8;
pub const MAX_STOP_BYTES: usize = 256;
/// Tags, and bytes in each key and value.
pub const MAX_TAGS: usize = 128;
pub const MAX_TAG_KEY_BYTES: usize = 128;
pub const MAX_TAG_VALUE_BYTES: usize = 1024;

/// Tokens a chat template may add around the messages, counted generously: the
/// template's own system prompt and generation prompt, and per message its role markers.
const TEMPLATE_TOKENS: usize = 64;
const TEMPLATE_TOKENS_PER_MESSAGE: usize = 8;

fn over(field: impl Into<String>, what: &str, limit: usize, found: usize) -> GatewayError {
    GatewayError::invalid(
        field,
        format!("expected at most {limit} {what}, found {found}"),
    )
}

/// Fails on the first limit the request breaks.
pub fn check(input: &ChatInput) -> Result<(), GatewayError> {
    let n = input.messages.len();
    if n > MAX_MESSAGES {
        return Err(over("messages", "messages", MAX_MESSAGES, n));
    }
    let bytes: usize = input.messages.iter().map(|m| m.content.len()).sum();
    if bytes > MAX_PROMPT_BYTES {
        return Err(over(
            "messages",
            "bytes of message content in all",
            MAX_PROMPT_BYTES,
            bytes,
        ));
    }
    let stop = &input.params.stop;
    if stop.len() > MAX_STOP {
        return Err(over("params.stop", "stop sequences", MAX_STOP, stop.len()));
    }
    if let Some((i, s)) = stop
        .iter()
        .enumerate()
        .find(|(_, s)| s.len() > MAX_STOP_BYTES)
    {
        return Err(over(
            format!("params.stop[{i}]"),
            "bytes",
            MAX_STOP_BYTES,
            s.len(),
        ));
    }
    if input.tags.len() > MAX_TAGS {
        return Err(over("tags", "tags", MAX_TAGS, input.tags.len()));
    }
    for (k, v) in &input.tags {
        if k.len() > MAX_TAG_KEY_BYTES {
            return Err(over(
                "tags",
                "bytes in a tag key",
                MAX_TAG_KEY_BYTES,
                k.len(),
            ));
        }
        if v.len() > MAX_TAG_VALUE_BYTES {
            return Err(over(
                format!("tags[{k:?}]"),
                "bytes",
                MAX_TAG_VALUE_BYTES,
                v.len(),
            ));
        }
    }
    Ok(())
}

impl Gateway {
    /// `Err(TooLong)` when the prompt and the local answer's `max_tokens` do not fit the
    /// local model's context. Tokenizes only when the text is long enough to matter: a
    /// token is at least one byte, so a prompt whose bytes plus the template's tokens fit
    /// cannot be too long.
    pub(super) async fn local_fits(
        &self,
        policy: &Policy,
        input: &ChatInput,
    ) -> Result<(), GatewayError> {
        let local = self.local()?;
        let Some(context) = local.context_tokens() else {
            return Ok(());
        };
        let max_tokens = local_request(policy, input).max_tokens;
        let limit = context.saturating_sub(max_tokens) as usize;
        let bytes: usize = input.messages.iter().map(|m| m.content.len()).sum();
        let bound = bytes + TEMPLATE_TOKENS + TEMPLATE_TOKENS_PER_MESSAGE * input.messages.len();
        if bound <= limit {
            return Ok(());
        }
        let tokens = local.count_tokens(&input.messages).await? as usize;
        if tokens <= limit {
            return Ok(());
        }
        Err(GatewayError::TooLong {
            tokens,
            context,
            max_tokens,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use sluice_policy::{GenParams, Message, Role};

    use super::*;
    use crate::gateway::types::{CacheControl, RouteHint};

    fn input(messages: Vec<Message>) -> ChatInput {
        ChatInput {
            tenant: "t".into(),
            messages,
            policy: String::new(),
            tags: BTreeMap::new(),
            params: GenParams::default(),
            hint: RouteHint::Auto,
            request_id: "r".into(),
            deadline: None,
            cache: CacheControl::default(),
            access: None,
        }
    }

    fn message(text: &str) -> Message {
        Message::new(Role::User, text)
    }

    fn field_and_message(r: Result<(), GatewayError>) -> (String, String) {
        match r {
            Err(GatewayError::InvalidArgument { field, message }) => (field, message),
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
    }

    #[test]
    fn requests_within_the_limits_pass() {
        let mut ok = input(vec![message("hi"); MAX_MESSAGES]);
        ok.params.stop = vec!["x".repeat(MAX_STOP_BYTES); MAX_STOP];
        ok.tags = (0..MAX_TAGS).map(|i| (i.to_string(), "v".into())).collect();
        assert!(check(&ok).is_ok());
        let big = input(vec![message(&"a".repeat(MAX_PROMPT_BYTES))]);
        assert!(check(&big).is_ok());
    }

    #[test]
    fn each_limit_is_named_with_what_was_found() {
        let many = input(vec![message("hi"); MAX_MESSAGES + 1]);
        assert_eq!(
            field_and_message(check(&many)),
            (
                "messages".into(),
                "expected at most 10000 messages, found 10001".into()
            )
        );
        let half = "a".repeat(MAX_PROMPT_BYTES / 2);
        let huge = input(vec![message(&half), message(&half), message("b")]);
        assert_eq!(
            field_and_message(check(&huge)),
            (
                "messages".into(),
                "expected at most 4194304 bytes of message content in all, found 4194305".into()
            )
        );
        let mut stops = input(vec![message("hi")]);
        stops.params.stop = vec!["s".into(); MAX_STOP + 1];
        assert_eq!(field_and_message(check(&stops)).0, "params.stop");
        stops.params.stop = vec!["s".into(), "x".repeat(MAX_STOP_BYTES + 1)];
        assert_eq!(
            field_and_message(check(&stops)),
            (
                "params.stop[1]".into(),
                "expected at most 256 bytes, found 257".into()
            )
        );
        let mut tags = input(vec![message("hi")]);
        tags.tags = (0..=MAX_TAGS)
            .map(|i| (i.to_string(), "v".into()))
            .collect();
        assert_eq!(
            field_and_message(check(&tags)),
            ("tags".into(), "expected at most 128 tags, found 129".into())
        );
        tags.tags = BTreeMap::from([("team".into(), "v".repeat(MAX_TAG_VALUE_BYTES + 1))]);
        assert_eq!(field_and_message(check(&tags)).0, "tags[\"team\"]");
        tags.tags = BTreeMap::from([("k".repeat(MAX_TAG_KEY_BYTES + 1), "v".into())]);
        assert_eq!(field_and_message(check(&tags)).0, "tags");
    }
}
