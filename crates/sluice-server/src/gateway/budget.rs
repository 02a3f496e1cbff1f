//! Per-tenant spend caps on escalations: checked before a tier is called, charged after it
//! answered. The ledger lives in the gateway, so spend survives policy reloads.

use sluice_policy::{OnBudgetExhausted, Policy, Tier};

use super::{ChatInput, Gateway};
use crate::error::GatewayError;

/// Characters per token when a tier's own count is missing: the usual figure for English
/// text with BPE tokenizers.
const CHARS_PER_TOKEN: usize = 4;

impl Gateway {
    /// Whether the tenant may escalate now: `Ok(true)` yes, `Ok(false)` no and the policy says
    /// answer locally, `Err` no and the policy says reject (RESOURCE_EXHAUSTED naming the cap).
    pub(super) fn budget_allows(
        &self,
        policy: &Policy,
        input: &ChatInput,
    ) -> Result<bool, GatewayError> {
        let Some(budget) = &policy.budget else {
            return Ok(true);
        };
        let Err(exhausted) = self
            .inner
            .ledger
            .check(&input.tenant, &budget.caps_for(&input.tenant))
        else {
            return Ok(true);
        };
        self.metrics().budget_refusal(
            &policy.name,
            exhausted.cap.as_str(),
            budget.on_exhausted.as_str(),
        );
        match budget.on_exhausted {
            OnBudgetExhausted::Local => Ok(false),
            OnBudgetExhausted::Reject => Err(GatewayError::BudgetExhausted(exhausted.to_string())),
        }
    }

    /// Charge an answered escalation to the tenant.
    pub(super) fn charge(&self, input: &ChatInput, cost_usd: f64) {
        self.inner.ledger.record(&input.tenant, cost_usd);
    }

    /// Charge a streamed escalation that ended before the tier reported its usage: the
    /// whole prompt and the `received_chars` of answer it had sent, estimated at
    /// [`CHARS_PER_TOKEN`] and rounded up (providers bill what they generated before the
    /// connection closed). Counted in `sluice_cost_usd_total` too.
    pub(super) fn charge_unfinished(&self, input: &ChatInput, tier: &Tier, received_chars: usize) {
        let prompt_chars: usize = input.messages.iter().map(|m| m.content.len()).sum();
        let tokens = |chars: usize| chars.div_ceil(CHARS_PER_TOKEN) as u64;
        let cost = tier
            .price
            .cost(tokens(prompt_chars), tokens(received_chars));
        self.charge(input, cost);
        self.metrics().tier_cost(&tier.name, cost);
    }
}
