//! `shadow:` of a policy, as written.

use super::*;

/// `shadow:` — for a sampled share of the requests the policy's score decided, have the other
/// side answer too, off the request's path: the first tier for a request kept local, the local
/// model (when idle) for an escalated one; measures how often the local answers agree.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with rate, max_per_minute, budget_usd_daily and judge"
)]
pub struct RawShadow {
    /// Share of the requests the score decided (kept local or escalated) that are sampled,
    /// greater than 0 and at most 1.
    #[schemars(range(max = 1), extend("exclusiveMinimum" = 0))]
    pub rate: Num,
    /// Most samples started per minute, at least 1; default 60.
    #[schemars(range(min = 1, max = u32::MAX))]
    pub max_per_minute: Option<Int>,
    /// USD the tier calls of kept-local samples may spend per UTC day, greater than 0;
    /// default 1.
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub budget_usd_daily: Option<Num>,
    /// Ask the first tier to judge answers too long to compare by rule (each judgement is
    /// one more tier call, paid from budget_usd_daily); default false.
    pub judge: Option<bool>,
}
