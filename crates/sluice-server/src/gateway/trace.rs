//! What of a request goes into its trace span beyond routing and usage: the prompt and the
//! answer, only when `--trace-content` says so (traces often go where prompts must not).

use std::sync::atomic::Ordering;

use super::{ChatInput, Gateway};

impl Gateway {
    /// Put prompts and answers into trace spans from now on (off by default).
    pub fn set_trace_content(&self, on: bool) {
        self.inner.trace_content.store(on, Ordering::Relaxed);
    }

    /// Records the request's messages on its span (`gen_ai.input.messages`) when allowed.
    pub fn trace_content(&self, span: &tracing::Span, input: &ChatInput) {
        if !self.inner.trace_content.load(Ordering::Relaxed) {
            return;
        }
        let messages: Vec<_> = input
            .messages
            .iter()
            .map(|m| serde_json::json!({ "role": m.role.as_str(), "content": m.content }))
            .collect();
        span.record(
            "gen_ai.input.messages",
            serde_json::Value::from(messages).to_string().as_str(),
        );
    }

    /// Records the answer on the request's span (`gen_ai.output.messages`) when allowed.
    pub fn trace_answer(&self, span: &tracing::Span, text: &str) {
        if !self.inner.trace_content.load(Ordering::Relaxed) {
            return;
        }
        let out = serde_json::json!([{ "role": "assistant", "content": text }]);
        span.record("gen_ai.output.messages", out.to_string().as_str());
    }
}
