//! `budget:` of a policy, as written.

use super::*;

/// `budget:` — spend caps on escalations, per tenant.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with daily_usd, monthly_usd, tenants and on_exhausted"
)]
#[schemars(transform = crate::schema::some_budget_cap)]
pub struct RawBudget {
    /// USD each tenant may spend on escalations per UTC day; absent: no daily cap.
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub daily_usd: Option<Num>,
    /// USD each tenant may spend on escalations per UTC calendar month; absent: no
    /// monthly cap.
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub monthly_usd: Option<Num>,
    /// Per-tenant overrides of either cap, by tenant name.
    #[schemars(with = "Option<ByTenant<RawBudgetCaps>>")]
    pub tenants: Option<Entries<RawBudgetCaps>>,
    /// What happens to a request that would escalate once its tenant's cap is reached:
    /// `local` (default) answers with the local model, `reject` fails the request.
    #[schemars(with = "Option<OnExhaustedName>")]
    pub on_exhausted: Option<String>,
}

/// One entry of `budget.tenants`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with daily_usd and/or monthly_usd"
)]
#[schemars(transform = crate::schema::daily_and_or_monthly)]
pub struct RawBudgetCaps {
    /// USD per UTC day; absent: the policy-wide `daily_usd`.
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub daily_usd: Option<Num>,
    /// USD per UTC calendar month; absent: the policy-wide `monthly_usd`.
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub monthly_usd: Option<Num>,
}
