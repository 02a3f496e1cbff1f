//! The policy's rules: the first that matches a request decides before any scoring.

use sluice_policy::{Policy, RuleAction};
use sluice_router::{first_match, RuleInput};

use super::{ChatInput, Gateway};
use crate::error::GatewayError;

impl Gateway {
    /// The first rule of the policy that matches the request: its name and action; a
    /// `reject` rule is the `PERMISSION_DENIED` error naming it.
    pub(super) async fn matching_rule(
        &self,
        policy: &Policy,
        input: &ChatInput,
    ) -> Result<Option<(String, RuleAction)>, GatewayError> {
        if policy.rules.is_empty() {
            return Ok(None);
        }
        // Count prompt tokens only when some rule asks about them (it takes the tokenizer).
        let prompt_tokens = if policy.rules.iter().any(|r| r.when.prompt_tokens.is_some()) {
            Some(self.local()?.count_tokens(&input.messages).await?)
        } else {
            None
        };
        let rule_input = RuleInput {
            tenant: &input.tenant,
            tags: &input.tags,
            messages: &input.messages,
            prompt_tokens,
        };
        let matched = first_match(&policy.rules, &rule_input);
        if let Some(m) = &matched {
            self.metrics().rule_match(&policy.name, &m.rule.name);
            tracing::debug!(policy = %policy.name, rule = %m.rule.name, reasons = ?m.reasons, "rule matched");
        }
        match matched.map(|m| (m.rule.name.clone(), m.rule.action.clone())) {
            Some((rule, RuleAction::Reject(message))) => Err(GatewayError::Rejected {
                policy: policy.name.clone(),
                rule,
                message,
            }),
            other => Ok(other),
        }
    }
}
