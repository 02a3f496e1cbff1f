//! The chat fine-tuning format (OpenAI's, which most trainers read): one JSON object a line,
//! `{"messages": [{"role": ..., "content": ...}, ...]}`, ending with the assistant's answer
//! the model is to learn. What the gateway writes with `distill:` and `sluice distill export`
//! checks line by line.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_policy::Message;

/// One training example.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatExample {
    pub messages: Vec<Message>,
}

/// Keys a message may have in the format.
const MESSAGE_KEYS: [&str; 5] = ["role", "content", "name", "weight", "function_call"];
const ROLES: [&str; 4] = ["system", "user", "assistant", "function"];

/// Checks one line's value against the format, as the format's documented checker does:
/// an object whose only key is a non-empty `messages` list; each message an object with a
/// known `role`, a non-empty string `content` and no unknown key; at least one assistant
/// message, and (so there is something to learn) the last one from the assistant.
pub fn check(example: &Value) -> Result<(), String> {
    let obj = example
        .as_object()
        .ok_or("expected an object with `messages`")?;
    if let Some(k) = obj.keys().find(|k| *k != "messages") {
        return Err(format!(
            "unknown key {k:?}: an example holds only `messages`"
        ));
    }
    let messages = obj
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or("expected a non-empty `messages` list")?;
    for (i, m) in messages.iter().enumerate() {
        let m = m
            .as_object()
            .ok_or_else(|| format!("messages[{i}]: expected an object"))?;
        if let Some(k) = m.keys().find(|k| !MESSAGE_KEYS.contains(&k.as_str())) {
            return Err(format!("messages[{i}]: unknown key {k:?}"));
        }
        match m.get("role").and_then(Value::as_str) {
            Some(r) if ROLES.contains(&r) => {}
            other => {
                return Err(format!(
                    "messages[{i}].role: expected one of {}, found {other:?}",
                    ROLES.join(", ")
                ))
            }
        }
        match m.get("content").and_then(Value::as_str) {
            Some(c) if !c.trim().is_empty() => {}
            _ => return Err(format!("messages[{i}].content: expected non-empty text")),
        }
    }
    let last = messages
        .last()
        .and_then(|m| m.get("role"))
        .and_then(Value::as_str);
    if last != Some("assistant") {
        return Err("the last message must be the assistant's answer to learn".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sluice_policy::Role;

    #[test]
    fn an_example_the_gateway_writes_passes() {
        let ex = ChatExample {
            messages: vec![
                Message::new(Role::System, "Be brief."),
                Message::new(Role::User, "2+2?"),
                Message::new(Role::Assistant, "4"),
            ],
        };
        let v = serde_json::to_value(&ex).unwrap();
        assert_eq!(check(&v), Ok(()));
        assert_eq!(v["messages"][1]["role"], "user");
    }

    #[test]
    fn what_the_format_forbids_is_named() {
        let cases = [
            (json!([]), "expected an object"),
            (json!({"messages": []}), "non-empty `messages`"),
            (
                json!({"messages": [{"role": "user", "content": "hi"}], "id": 1}),
                "unknown key \"id\"",
            ),
            (
                json!({"messages": [{"role": "robot", "content": "hi"}]}),
                "messages[0].role",
            ),
            (
                json!({"messages": [{"role": "user", "content": ""}]}),
                "messages[0].content",
            ),
            (
                json!({"messages": [{"role": "user", "content": "hi", "x": 1}]}),
                "unknown key \"x\"",
            ),
            (
                json!({"messages": [{"role": "user", "content": "hi"}]}),
                "assistant's answer",
            ),
        ];
        for (v, says) in cases {
            let e = check(&v).unwrap_err();
            assert!(e.contains(says), "{v}: {e}");
        }
    }
}
