//! Shadow sampling: the first tier answers a sampled share of the requests kept local too,
//! after the answer has gone out, so live traffic says how often the local answers agree.

/// How many kept-local requests are shadowed, and what the shadow calls may spend.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shadow {
    /// Share of the requests the score kept local that are shadowed, in (0, 1].
    pub rate: f64,
    /// Most shadow calls started per minute (≥ 1).
    pub max_per_minute: u32,
    /// USD the shadow calls of this policy may spend per UTC day (> 0).
    pub budget_usd_daily: f64,
}

impl Shadow {
    pub const DEFAULT_MAX_PER_MINUTE: u32 = 60;
    pub const DEFAULT_BUDGET_USD_DAILY: f64 = 1.0;
}
