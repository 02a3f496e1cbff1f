//! `budget:` — spend caps on escalations, policy-wide and per tenant.

use std::collections::BTreeMap;

use super::{values, At, Invalid};
use crate::locate::KeyPath;
use crate::model::{Budget, BudgetCaps, OnBudgetExhausted};
use crate::raw::{Num, RawBudget};

pub(super) fn budget(raw: &RawBudget, path: &KeyPath) -> Result<Budget, Invalid> {
    let daily_usd = cap(raw.daily_usd, &path.key("daily_usd"))?;
    let monthly_usd = cap(raw.monthly_usd, &path.key("monthly_usd"))?;
    let mut tenants = BTreeMap::new();
    let tenants_path = path.key("tenants");
    for (name, raw_caps) in raw.tenants.iter().flat_map(|t| &t.0) {
        let tenant_path = tenants_path.key(name);
        values::check_name(name).at(&tenant_path)?;
        if tenants.contains_key(name) {
            return Err(format!("expected each tenant once, found {name:?} again"))
                .at(&tenant_path);
        }
        let caps = BudgetCaps {
            daily_usd: cap(raw_caps.daily_usd, &tenant_path.key("daily_usd"))?,
            monthly_usd: cap(raw_caps.monthly_usd, &tenant_path.key("monthly_usd"))?,
        };
        if caps == BudgetCaps::default() {
            return Err("expected daily_usd and/or monthly_usd, found neither".to_owned())
                .at(&tenant_path);
        }
        tenants.insert(name.clone(), caps);
    }
    if daily_usd.is_none() && monthly_usd.is_none() && tenants.is_empty() {
        return Err(
            "expected a cap (daily_usd, monthly_usd, or a tenant's under tenants), found none"
                .to_owned(),
        )
        .at(path);
    }
    let on_exhausted = match raw.on_exhausted.as_deref() {
        None => OnBudgetExhausted::Local,
        Some(name) => match OnBudgetExhausted::ALL
            .into_iter()
            .find(|o| o.as_str() == name)
        {
            Some(choice) => choice,
            None => {
                return Err(format!("expected local or reject, found {name:?}"))
                    .at(&path.key("on_exhausted"))
            }
        },
    };
    Ok(Budget {
        daily_usd,
        monthly_usd,
        tenants,
        on_exhausted,
    })
}

/// A cap in USD: finite and greater than zero.
pub(super) fn cap(raw: Option<Num>, path: &KeyPath) -> Result<Option<f64>, Invalid> {
    match raw {
        None => Ok(None),
        Some(Num(usd)) if usd.is_finite() && usd > 0.0 => Ok(Some(usd)),
        Some(Num(usd)) => Err(format!(
            "expected a finite number of USD greater than 0, found {usd}"
        ))
        .at(path),
    }
}
