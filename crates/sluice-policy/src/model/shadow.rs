//! Shadow sampling: for a sampled share of the requests the score decided, the other side
//! answers too (the first tier for those kept local, the local model for those escalated),
//! after the answer has gone out, so live traffic says how often the local answers agree.

/// How many requests are sampled, and what the tier calls of the samples may spend.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shadow {
    /// Share of the requests the score decided that are sampled, in (0, 1].
    pub rate: f64,
    /// Most samples started per minute (≥ 1).
    pub max_per_minute: u32,
    /// USD the tier calls of this policy's samples (kept-local answers and judgements) may
    /// spend per UTC day (> 0).
    pub budget_usd_daily: f64,
    /// Ask the first tier to judge answers too long to compare by rule.
    pub judge: bool,
}

impl Shadow {
    pub const DEFAULT_MAX_PER_MINUTE: u32 = 60;
    pub const DEFAULT_BUDGET_USD_DAILY: f64 = 1.0;
}
