//! Distillation data (a policy's `distill:`, with `--distill-dir`): the tier's answer to an
//! escalated request of an opted-in tenant is written, with the conversation, as one
//! fine-tuning example for the local model. Requests or answers with personal data or
//! secrets are never written; nor are fallbacks, cut answers, or answers from the cache.
//! Written on a blocking thread after the answer; never a request's error.

use std::sync::Arc;
use std::time::SystemTime;

use sluice_policy::{Message, Policy, Role};
use sluice_router::eval::finetune::ChatExample;

use super::{AnswerMeta, ChatInput, Gateway, RouteKind};
use crate::records::RecordLog;

impl Gateway {
    /// After a request's answer is complete: keep it as an example when the policy and the
    /// tenant opted in.
    pub(super) fn distill(
        &self,
        policy: &Policy,
        input: &ChatInput,
        meta: &AnswerMeta,
        text: &str,
    ) {
        let (Some(d), Some(log)) = (&policy.distill, self.inner.distill.get()) else {
            return;
        };
        let complete = meta.route.kind == RouteKind::Remote
            && !meta.route.fallback
            && meta.finish_reason == "stop";
        if !complete || !d.covers(&input.tenant) || text.trim().is_empty() {
            return;
        }
        let metrics = self.metrics().clone();
        if input.private_with(&[text]) {
            metrics.shadow.distilled(&policy.name, "private");
            return;
        }
        let mut messages = input.messages.clone();
        messages.push(Message::new(Role::Assistant, text));
        let line = match serde_json::to_string(&ChatExample { messages }) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot encode a distillation example");
                return;
            }
        };
        let (log, tenant, name) = (Arc::clone(log), input.tenant.clone(), policy.name.clone());
        tokio::task::spawn_blocking(
            move || match log.append(&tenant, SystemTime::now(), &line) {
                Ok(_) => metrics.shadow.distilled(&name, "written"),
                Err(e) => {
                    metrics.shadow.distilled(&name, "write_error");
                    tracing::warn!(policy = %name, error = %e, "cannot write a distillation example");
                }
            },
        );
    }

    /// Write distillation examples to `log` (`--distill-dir`); set once, before serving.
    pub fn set_distill_log(&self, log: Arc<RecordLog>) {
        if self.inner.distill.set(log).is_err() {
            tracing::warn!("the distillation directory was set already; the first one stays");
        }
    }
}
