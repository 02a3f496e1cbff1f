//! The production `CallGuard`: one circuit breaker and one retry budget per tier, with the
//! state changes kept for metrics and logs.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use sluice_policy::Tier;

use crate::breaker::{Breaker, BreakerState};
use crate::budget::RetryBudget;
use crate::CallGuard;

/// Tiers are told apart by name and address: two policies may each have a tier `large`.
type Key = (String, String);

#[derive(Debug)]
struct TierState {
    breaker: Breaker,
    budget: RetryBudget,
}

/// Breakers and retry budgets of every tier the gateway has called.
#[derive(Debug, Default)]
pub struct TierGuards {
    tiers: Mutex<HashMap<Key, TierState>>,
}

impl TierGuards {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, tier: &Tier, f: impl FnOnce(&mut TierState) -> R) -> R {
        let mut map = match self.tiers.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let state = map
            .entry((tier.name.clone(), tier.base_url.clone()))
            .or_insert_with(|| TierState {
                breaker: Breaker::new(tier.circuit_breaker),
                budget: RetryBudget::new(tier.retry_budget),
            });
        // A policy reload may have changed the tier's settings: follow them.
        if state.breaker.settings() != tier.circuit_breaker {
            state.breaker.reconfigure(tier.circuit_breaker);
        }
        if state.budget.settings() != tier.retry_budget {
            state.budget.reconfigure(tier.retry_budget);
        }
        f(state)
    }

    /// The breaker state of a tier as of now.
    pub fn state(&self, tier: &Tier) -> BreakerState {
        self.with(tier, |s| s.breaker.state(Instant::now()))
    }
}

impl CallGuard for TierGuards {
    fn admit(&self, tier: &Tier) -> Result<(), String> {
        let now = Instant::now();
        self.with(tier, |s| {
            let before = s.breaker.state(now);
            let r = s.breaker.admit(now);
            if r.is_ok() {
                s.budget.request(now);
            }
            let after = s.breaker.state(now);
            if before != after {
                tracing::info!(tier = %tier.name, from = before.as_str(), to = after.as_str(), "circuit breaker");
            }
            r
        })
    }

    fn allow_retry(&self, tier: &Tier) -> bool {
        let now = Instant::now();
        self.with(tier, |s| {
            let ok = s.budget.try_retry(now);
            if !ok {
                tracing::warn!(tier = %tier.name, "retry budget exhausted, not retrying");
            }
            ok
        })
    }

    fn abandon(&self, tier: &Tier) {
        self.with(tier, |s| s.breaker.abandon());
    }

    fn record(&self, tier: &Tier, success: bool) {
        let now = Instant::now();
        self.with(tier, |s| {
            let before = s.breaker.state(now);
            s.breaker.record(now, success);
            let after = s.breaker.state(now);
            if before != after {
                tracing::warn!(tier = %tier.name, from = before.as_str(), to = after.as_str(), "circuit breaker");
            }
        })
    }
}
