//! The spend ledger replicas share: each tenant's total per UTC day and per UTC month in
//! Redis, in whole nano-dollars, changed only by Lua scripts so that "check the caps, then add
//! the reservation" is one atomic step whichever replica runs it.
//!
//! Each reservation is also kept under its own key until settled. A call that timed out may
//! still have been applied by Redis, so a replica cannot know whether its reservation
//! counts; the settle script can: it replaces the reservation by the cost when the
//! reservation's key is there and adds the cost alone when it is not. Settling is therefore
//! exact however the reservation's call ended, and safe to retry later.

use std::sync::LazyLock;

use sluice_cache::{CacheError, RedisClient, Script};
use sluice_policy::BudgetCaps;

use super::{exhausted_by, Exhausted, Period, Spent};

/// Nano-dollars per dollar: integer amounts in Redis (INCRBY is exact where float sums drift),
/// fine enough for a one-token call at the cheapest prices.
const NANO_PER_USD: f64 = 1e9;
/// A day's key outlives its day (replica clocks differ, a settle may come late), then expires.
const DAY_TTL_SECS: i64 = 3 * 86_400;
/// A month's key outlives the longest month by a few days, then expires.
const MONTH_TTL_SECS: i64 = 35 * 86_400;

/// KEYS: day, month, hold. ARGV: amount, day cap, month cap (-1: none), day ttl, month ttl.
/// Returns {0, day, month} after adding the amount (and keeping it under the hold's key), or
/// {1 (daily) | 2 (monthly), day, month} when a cap is already reached (nothing added).
static RESERVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local day = tonumber(redis.call('GET', KEYS[1]) or '0')
local month = tonumber(redis.call('GET', KEYS[2]) or '0')
local day_cap = tonumber(ARGV[2])
local month_cap = tonumber(ARGV[3])
if day_cap >= 0 and day >= day_cap then return {1, day, month} end
if month_cap >= 0 and month >= month_cap then return {2, day, month} end
day = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
month = redis.call('INCRBY', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[5])
redis.call('SET', KEYS[3], ARGV[1], 'EX', ARGV[4])
return {0, day, month}
",
    )
});

/// KEYS: day, month, hold. ARGV: cost, day ttl, month ttl. Adds the cost less the
/// reservation kept under the hold's key (0 when there is none), deletes that key; totals
/// never go below zero. Returns {day, month}.
static SETTLE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local held = tonumber(redis.call('GET', KEYS[3]) or '0')
redis.call('DEL', KEYS[3])
local delta = tonumber(ARGV[1]) - held
local out = {}
for i = 1, 2 do
  local v = redis.call('INCRBY', KEYS[i], delta)
  if v < 0 then
    redis.call('SET', KEYS[i], 0)
    v = 0
  end
  redis.call('EXPIRE', KEYS[i], ARGV[i + 1])
  out[i] = v
end
return out
",
    )
});

/// Per-tenant spend in Redis, shared by every replica pointed at it.
#[derive(Debug, Clone)]
pub struct SharedLedger {
    redis: RedisClient,
}

impl SharedLedger {
    pub fn new(redis: RedisClient) -> Self {
        Self { redis }
    }

    /// Checks `caps` against the shared totals and, when they allow, adds `usd` in the same
    /// atomic step. Returns the totals (after adding, when added) and `Err` naming the cap
    /// reached when it refused; the outer `Err` when Redis could not be asked.
    pub async fn reserve(
        &self,
        tenant: &str,
        caps: &BudgetCaps,
        usd: f64,
        period: &Period,
        hold: &str,
    ) -> Result<(Spent, Result<(), Exhausted>), CacheError> {
        let (day_key, month_key) = keys(tenant, period);
        let hold_key = hold_key(hold);
        let cap = |c: Option<f64>| c.map_or(-1, nano);
        let reply: Vec<i64> = self
            .redis
            .eval(
                &RESERVE,
                &[&day_key, &month_key, &hold_key],
                &[
                    nano(usd),
                    cap(caps.daily_usd),
                    cap(caps.monthly_usd),
                    DAY_TTL_SECS,
                    MONTH_TTL_SECS,
                ],
            )
            .await?;
        let [status, day, month] = reply[..] else {
            return Err(bad_reply("the reserve script", &reply));
        };
        let spent = Spent {
            day_usd: usd_of(day),
            month_usd: usd_of(month),
        };
        if status == 0 {
            return Ok((spent, Ok(())));
        }
        // The script refused because a cap is reached: the same rule names the same cap.
        match exhausted_by(tenant, caps, spent, period) {
            Some(exhausted) => Ok((spent, Err(exhausted))),
            None => Err(bad_reply("the reserve script", &reply)),
        }
    }

    /// Charges `usd` to the tenant's totals of `period`, replacing the reservation `hold`
    /// made if Redis has it (`None`: nothing was reserved); returns the totals after it.
    pub async fn settle(
        &self,
        tenant: &str,
        period: &Period,
        hold: Option<&str>,
        usd: f64,
    ) -> Result<Spent, CacheError> {
        let (day_key, month_key) = keys(tenant, period);
        // A key no reservation uses when there was none.
        let hold_key = hold_key(hold.unwrap_or("-"));
        let reply: Vec<i64> = self
            .redis
            .eval(
                &SETTLE,
                &[&day_key, &month_key, &hold_key],
                &[nano(usd), DAY_TTL_SECS, MONTH_TTL_SECS],
            )
            .await?;
        let [day, month] = reply[..] else {
            return Err(bad_reply("the settle script", &reply));
        };
        Ok(Spent {
            day_usd: usd_of(day),
            month_usd: usd_of(month),
        })
    }
}

fn hold_key(hold: &str) -> Vec<u8> {
    format!("sluice:spend:hold:{hold}").into_bytes()
}

/// `sluice:spend:day:2026-12-06:<tenant>` and `sluice:spend:month:2026-12:<tenant>`: the
/// tenant last, so any name is unambiguous.
fn keys(tenant: &str, period: &Period) -> (Vec<u8>, Vec<u8>) {
    (
        format!("sluice:spend:day:{}:{tenant}", period.day_string()).into_bytes(),
        format!("sluice:spend:month:{}:{tenant}", period.month_string()).into_bytes(),
    )
}

/// Dollars in whole nano-dollars, rounded up (a reservation or a charge is never made
/// smaller); NaN, infinite and negative-infinite amounts count as zero.
fn nano(usd: f64) -> i64 {
    if !usd.is_finite() {
        return 0;
    }
    // `as` saturates at the i64 range, far beyond any real spend.
    (usd * NANO_PER_USD).ceil() as i64
}

fn usd_of(nano: i64) -> f64 {
    nano as f64 / NANO_PER_USD
}

fn bad_reply(what: &str, reply: &[i64]) -> CacheError {
    CacheError::Protocol {
        message: format!("unexpected reply from {what}: {reply:?}"),
    }
}
