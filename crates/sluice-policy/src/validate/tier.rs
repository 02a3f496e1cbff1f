//! One `tiers[]` entry: provider, address, key, price, timeouts, retries, and the
//! settings of its circuit breaker and retry budget.

use std::time::Duration;

use super::{values, At, Invalid};
use crate::env::{self, EnvLookup};
use crate::locate::KeyPath;
use crate::model::{BreakerSettings, Price, Provider, RetryBudgetSettings, Tier};
use crate::raw::{RawBreaker, RawPrice, RawRetryBudget, RawTier, Scalar};

/// Bounds of `tiers[].retries`.
pub const RETRIES: std::ops::RangeInclusive<u32> = 0..=10;
/// Bounds of `tiers[].retry_budget.ratio`.
pub const RETRY_RATIO: std::ops::RangeInclusive<f64> = 0.0..=10.0;

/// Every provider, in the order error messages list them.
const PROVIDERS: [Provider; 2] = [Provider::OpenAi, Provider::Anthropic];

pub(super) fn tier(raw: &RawTier, path: &KeyPath, env: EnvLookup<'_>) -> Result<Tier, Invalid> {
    values::check_name(&raw.name).at(&path.key("name"))?;
    let Some(provider) = PROVIDERS.into_iter().find(|p| p.as_str() == raw.provider) else {
        let names: Vec<&str> = PROVIDERS.iter().map(|p| p.as_str()).collect();
        return Err(format!(
            "expected a provider among {}, found {:?}",
            names.join(", "),
            raw.provider
        ))
        .at(&path.key("provider"));
    };
    let url_path = path.key("base_url");
    let expanded = env::expand(&raw.base_url, env).at(&url_path)?;
    let base_url = values::base_url(&expanded, &raw.base_url).at(&url_path)?;
    values::check_model(&raw.model).at(&path.key("model"))?;
    if let Some(name) = &raw.api_key_env {
        if !env::is_env_name(name) {
            return Err(format!(
                "expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*), found {name:?}"
            ))
            .at(&path.key("api_key_env"));
        }
    }
    let price = price(&raw.price, &path.key("price"))?;
    let timeout = values::duration(&raw.timeout).at(&path.key("timeout"))?;
    // The default never exceeds `timeout`, so a short timeout alone stays valid.
    let connect_timeout = optional_duration(&raw.connect_timeout, &path.key("connect_timeout"))?
        .unwrap_or(Tier::DEFAULT_CONNECT_TIMEOUT.min(timeout));
    if connect_timeout > timeout {
        return Err(format!(
            "expected a connect_timeout no longer than timeout ({timeout:?}), \
             found {connect_timeout:?}"
        ))
        .at(&path.key("connect_timeout"));
    }
    let read_timeout =
        optional_duration(&raw.read_timeout, &path.key("read_timeout"))?.unwrap_or(timeout);
    let retries = match raw.retries {
        None => 0,
        Some(n) => values::int_in(n.0, RETRIES).at(&path.key("retries"))?,
    };
    let circuit_breaker = breaker(
        &raw.circuit_breaker.clone().unwrap_or_default(),
        &path.key("circuit_breaker"),
    )?;
    let retry_budget = retry_budget(
        &raw.retry_budget.unwrap_or_default(),
        &path.key("retry_budget"),
    )?;
    Ok(Tier {
        name: raw.name.clone(),
        provider,
        base_url,
        model: raw.model.clone(),
        api_key_env: raw.api_key_env.clone(),
        price,
        timeout,
        connect_timeout,
        read_timeout,
        retries,
        circuit_breaker,
        retry_budget,
    })
}

fn price(raw: &RawPrice, path: &KeyPath) -> Result<Price, Invalid> {
    Ok(Price {
        input_per_mtok: values::non_negative(raw.input_per_mtok.0)
            .at(&path.key("input_per_mtok"))?,
        output_per_mtok: values::non_negative(raw.output_per_mtok.0)
            .at(&path.key("output_per_mtok"))?,
    })
}

fn breaker(raw: &RawBreaker, path: &KeyPath) -> Result<BreakerSettings, Invalid> {
    let defaults = BreakerSettings::default();
    let at_least_one = |value: Option<crate::raw::Int>, key: &str, default: u32| match value {
        None => Ok(default),
        Some(n) => values::int_at_least(n.0, 1).at(&path.key(key)),
    };
    Ok(BreakerSettings {
        consecutive_failures: at_least_one(
            raw.consecutive_failures,
            "consecutive_failures",
            defaults.consecutive_failures,
        )?,
        error_ratio: match raw.error_ratio {
            None => defaults.error_ratio,
            Some(n) => values::ratio(n.0).at(&path.key("error_ratio"))?,
        },
        min_requests: at_least_one(raw.min_requests, "min_requests", defaults.min_requests)?,
        window: optional_duration(&raw.window, &path.key("window"))?.unwrap_or(defaults.window),
        open_for: optional_duration(&raw.open_for, &path.key("open_for"))?
            .unwrap_or(defaults.open_for),
        half_open_probes: at_least_one(
            raw.half_open_probes,
            "half_open_probes",
            defaults.half_open_probes,
        )?,
    })
}

fn retry_budget(raw: &RawRetryBudget, path: &KeyPath) -> Result<RetryBudgetSettings, Invalid> {
    let defaults = RetryBudgetSettings::default();
    Ok(RetryBudgetSettings {
        ratio: match raw.ratio {
            None => defaults.ratio,
            Some(n) => values::number_in(n.0, RETRY_RATIO).at(&path.key("ratio"))?,
        },
        min_per_second: match raw.min_per_second {
            None => defaults.min_per_second,
            Some(n) => values::non_negative(n.0).at(&path.key("min_per_second"))?,
        },
    })
}

fn optional_duration(raw: &Option<Scalar>, path: &KeyPath) -> Result<Option<Duration>, Invalid> {
    raw.as_ref()
        .map(|scalar| values::duration(scalar).at(path))
        .transpose()
}
