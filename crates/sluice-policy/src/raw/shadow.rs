//! `shadow:` of a policy, as written.

use super::*;

/// `shadow:` — ask the first tier too, off the request's path, for a sampled share of the
/// requests the policy's score kept local, to measure how often the local answers agree.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with rate, max_per_minute and budget_usd_daily"
)]
pub struct RawShadow {
    /// Share of the requests kept local by the score that are shadowed, greater than 0 and
    /// at most 1.
    #[schemars(range(max = 1), extend("exclusiveMinimum" = 0))]
    pub rate: Num,
    /// Most shadow calls per minute, at least 1; default 60.
    #[schemars(range(min = 1, max = u32::MAX))]
    pub max_per_minute: Option<Int>,
    /// USD the shadow calls may spend per UTC day, greater than 0; default 1.
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub budget_usd_daily: Option<Num>,
}
