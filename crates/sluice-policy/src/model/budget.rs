//! Spend caps on escalations, per tenant.

use std::collections::BTreeMap;

/// How much each tenant may spend on escalations (tier prices × reported usage).
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    /// USD per tenant per UTC day (> 0); `None`: no daily cap.
    pub daily_usd: Option<f64>,
    /// USD per tenant per UTC calendar month (> 0); `None`: no monthly cap.
    pub monthly_usd: Option<f64>,
    /// Per-tenant overrides of either cap, by tenant name.
    pub tenants: BTreeMap<String, BudgetCaps>,
    /// What happens to a request that would escalate once a cap is reached.
    pub on_exhausted: OnBudgetExhausted,
}

impl Budget {
    /// The caps that apply to this tenant: its overrides, each missing one falling back to
    /// the policy-wide cap.
    pub fn caps_for(&self, tenant: &str) -> BudgetCaps {
        let own = self.tenants.get(tenant).copied().unwrap_or_default();
        BudgetCaps {
            daily_usd: own.daily_usd.or(self.daily_usd),
            monthly_usd: own.monthly_usd.or(self.monthly_usd),
        }
    }
}

/// A tenant's caps, in USD; `None`: no cap for that period.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BudgetCaps {
    /// Per UTC day (> 0).
    pub daily_usd: Option<f64>,
    /// Per UTC calendar month (> 0).
    pub monthly_usd: Option<f64>,
}

/// What to do with a request that would escalate when its tenant's budget is spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnBudgetExhausted {
    /// Answer with the local model instead.
    Local,
    /// Fail the request with RESOURCE_EXHAUSTED.
    Reject,
}

impl OnBudgetExhausted {
    /// Every choice, in the order error messages list them.
    pub const ALL: [OnBudgetExhausted; 2] = [OnBudgetExhausted::Local, OnBudgetExhausted::Reject];

    /// The name used in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            OnBudgetExhausted::Local => "local",
            OnBudgetExhausted::Reject => "reject",
        }
    }
}
