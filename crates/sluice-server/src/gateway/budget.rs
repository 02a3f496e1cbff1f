//! Per-tenant spend caps on escalations: checked before a tier is called, charged after it
//! answered. The ledger lives in the gateway, so spend survives policy reloads.

use sluice_policy::{OnBudgetExhausted, Policy};

use super::{ChatInput, Gateway};
use crate::error::GatewayError;

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
}
