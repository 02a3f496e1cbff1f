//! `shadow:` — sampled second opinions from the first tier.

use super::{budget, values, At, Invalid};
use crate::locate::KeyPath;
use crate::model::{Shadow, Tier};
use crate::raw::RawShadow;

pub(super) fn shadow(raw: &RawShadow, path: &KeyPath, tiers: &[Tier]) -> Result<Shadow, Invalid> {
    if tiers.is_empty() {
        return Err("expected a tier to ask for the second opinion, found no tiers".to_owned())
            .at(path);
    }
    let rate = values::ratio(raw.rate.0).at(&path.key("rate"))?;
    let max_per_minute = match raw.max_per_minute {
        None => Shadow::DEFAULT_MAX_PER_MINUTE,
        Some(n) => values::int_at_least(n.0, 1).at(&path.key("max_per_minute"))?,
    };
    let budget_usd_daily = budget::cap(raw.budget_usd_daily, &path.key("budget_usd_daily"))?
        .unwrap_or(Shadow::DEFAULT_BUDGET_USD_DAILY);
    Ok(Shadow {
        rate,
        max_per_minute,
        budget_usd_daily,
        judge: raw.judge.unwrap_or(false),
    })
}
