//! Per-tenant spend caps on escalations: a reservation of the estimated cost before a tier is
//! called, settled to what it cost after. The ledger lives in the gateway (and in Redis when
//! replicas share one), so spend survives policy reloads.

use sluice_policy::{OnBudgetExhausted, Policy, Tier};

use super::escalate::tiers;
use super::{ChatInput, Gateway};
use crate::budget::Hold;
use crate::error::GatewayError;

/// Characters per token when a tier's own count is missing: the usual figure for English
/// text with BPE tokenizers.
const CHARS_PER_TOKEN: usize = 4;

/// Answer tokens reserved for a request that sets no `max_tokens` (the tier's own limit is
/// unknown here); the settle after the answer corrects the reservation either way.
const RESERVED_ANSWER_TOKENS: u32 = 1024;

impl Gateway {
    /// Reserves the escalation's estimated cost against the tenant's caps: `Ok(Some(hold))`
    /// go ahead (settle the hold with [`settle`](Self::settle)), `Ok(None)` a cap is reached
    /// and the policy says answer locally, `Err` a cap is reached and the policy says reject
    /// (RESOURCE_EXHAUSTED naming the cap).
    pub(super) async fn reserve_budget(
        &self,
        policy: &Policy,
        input: &ChatInput,
        only: Option<&str>,
    ) -> Result<Option<Hold>, GatewayError> {
        let ledger = &self.inner.ledger;
        let Some(budget) = &policy.budget else {
            return Ok(Some(ledger.unbudgeted(&input.tenant)));
        };
        let caps = budget.caps_for(&input.tenant);
        let estimate = reservation_usd(policy, input, only);
        let exhausted = match ledger.reserve(&input.tenant, &caps, estimate).await {
            Ok(hold) => return Ok(Some(hold)),
            Err(exhausted) => exhausted,
        };
        self.metrics().budget_refusal(
            &policy.name,
            exhausted.cap.as_str(),
            budget.on_exhausted.as_str(),
        );
        match budget.on_exhausted {
            OnBudgetExhausted::Local => Ok(None),
            OnBudgetExhausted::Reject => Err(GatewayError::BudgetExhausted(exhausted.to_string())),
        }
    }

    /// Settles an escalation's reservation to what it cost (0 when no tier answered).
    pub(super) async fn settle(&self, hold: Hold, cost_usd: f64) {
        self.inner.ledger.settle(hold, cost_usd).await;
    }

    /// Settles a streamed escalation that ended before the tier reported its usage: the
    /// whole prompt and the `received_chars` of answer it had sent, estimated at
    /// [`CHARS_PER_TOKEN`] and rounded up (providers bill what they generated before the
    /// connection closed). Counted in `sluice_cost_usd_total` too.
    pub(super) async fn settle_unfinished(
        &self,
        hold: Hold,
        input: &ChatInput,
        tier: &Tier,
        received_chars: usize,
    ) {
        let cost = tier
            .price
            .cost(tokens(prompt_chars(input)), tokens(received_chars));
        self.metrics().tier_cost(&tier.name, cost);
        self.settle(hold, cost).await;
    }

    /// The shared ledger could not be reached at the last attempt (budgets are then enforced
    /// per replica).
    pub fn ledger_degraded(&self) -> bool {
        self.inner.ledger.degraded()
    }

    /// What `tenant` spent today and this month as this replica's ledger knows it: its own
    /// spend, raised to the shared totals whenever Redis answered.
    pub fn spent(&self, tenant: &str) -> crate::budget::Spent {
        self.inner.ledger.replica().spent(tenant)
    }
}

/// The most the escalation can cost: the prompt (at [`CHARS_PER_TOKEN`]) and the answer's
/// `max_tokens` (else [`RESERVED_ANSWER_TOKENS`]) at the dearest tier it may reach.
fn reservation_usd(policy: &Policy, input: &ChatInput, only: Option<&str>) -> f64 {
    let prompt = tokens(prompt_chars(input));
    let answer = u64::from(input.params.max_tokens.unwrap_or(RESERVED_ANSWER_TOKENS));
    tiers(policy, only)
        .map(|t| t.price.cost(prompt, answer))
        .fold(0.0, f64::max)
}

fn prompt_chars(input: &ChatInput) -> usize {
    input.messages.iter().map(|m| m.content.len()).sum()
}

fn tokens(chars: usize) -> u64 {
    chars.div_ceil(CHARS_PER_TOKEN) as u64
}
