//! Escalation spend per tenant, per UTC day and month, checked against the policy's
//! [`BudgetCaps`].
//!
//! The ledger lives in the gateway rather than in a policy, so a policy reload changes the
//! caps but keeps what tenants have spent. [`SpendLedger`] is one replica's, in memory (a
//! restart starts from zero); [`Ledger`] puts it behind the Redis ledger that replicas share
//! when there is one.

pub(crate) mod civil;
mod ledger;
mod shared;

pub use ledger::{Hold, Ledger, LedgerHealth};
pub use shared::SharedLedger;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use sluice_policy::BudgetCaps;

use civil::{civil_from_days, unix_day, Civil};

/// The source of "now"; swapped in tests.
type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Escalation spend per tenant, per UTC day and per UTC calendar month. Lives in the gateway,
/// not in a policy, so it survives policy reloads. Thread-safe (Mutex inside; short critical
/// sections).
///
/// Each tenant keeps only its current day and month: the first access in a new period resets
/// that period's total, so memory grows with the number of tenants, never with time.
///
/// [`reserve`](Self::reserve) checks the caps and adds an escalation's estimated cost in one
/// step, and [`adjust`](Self::adjust) settles it to what it cost, so escalations running
/// concurrently for one tenant overshoot a cap by at most one reservation.
pub struct SpendLedger {
    clock: Clock,
    tenants: Mutex<HashMap<String, TenantSpend>>,
}

/// What a tenant spent in the current UTC day and month, in USD.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spent {
    pub day_usd: f64,
    pub month_usd: f64,
}

/// Which cap a tenant reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CapKind {
    /// Per UTC day.
    Daily,
    /// Per UTC calendar month.
    Monthly,
}

impl CapKind {
    /// `daily` or `monthly`, as used in messages and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            CapKind::Daily => "daily",
            CapKind::Monthly => "monthly",
        }
    }
}

/// A tenant reached one of its caps; displays as the message to send the client.
#[derive(Debug, Clone, PartialEq)]
pub struct Exhausted {
    pub tenant: String,
    pub cap: CapKind,
    /// The cap, in USD.
    pub limit_usd: f64,
    /// What the tenant spent in the period, in USD (≥ `limit_usd`).
    pub spent_usd: f64,
    /// The UTC period: `2026-11-29` for a daily cap, `2026-11` for a monthly one.
    pub period: String,
}

impl fmt::Display for Exhausted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tenant {} reached its {} escalation budget of ${} (spent ${} ",
            self.tenant,
            self.cap.as_str(),
            usd(self.limit_usd),
            usd(self.spent_usd),
        )?;
        match self.cap {
            CapKind::Daily => f.write_str("today, UTC)"),
            CapKind::Monthly => write!(f, "in {}, UTC)", self.period),
        }
    }
}

impl std::error::Error for Exhausted {}

/// Dollars with at least 2 decimals and up to 4, or up to 4 significant digits for amounts
/// under a cent (at most 8 decimals): `5.00`, `100.50`, `5.0123`, `0.000026`.
fn usd(x: f64) -> String {
    let decimals = if x.is_finite() && x.abs() > 0.0 && x.abs() < 0.01 {
        ((-x.abs().log10()).floor() as usize + 4).min(8)
    } else {
        4
    };
    let mut s = format!("{x:.decimals$}");
    // drop trailing zeros, keeping two decimals
    while s.ends_with('0') && s.split_once('.').is_some_and(|(_, d)| d.len() > 2) {
        s.pop();
    }
    s
}

/// One tenant's totals for the periods they belong to.
#[derive(Debug, Clone, Copy)]
struct TenantSpend {
    /// Days since 1970-01-01 UTC.
    day: i64,
    day_usd: f64,
    /// [`Civil::month_index`].
    month: i64,
    month_usd: f64,
}

impl TenantSpend {
    fn empty(now: &Period) -> Self {
        TenantSpend {
            day: now.day,
            day_usd: 0.0,
            month: now.date.month_index(),
            month_usd: 0.0,
        }
    }

    fn add(&mut self, usd: f64) {
        self.day_usd += usd;
        self.month_usd += usd;
    }

    /// Drop the totals of periods that are over.
    fn roll(&mut self, now: &Period) {
        if self.day != now.day {
            self.day = now.day;
            self.day_usd = 0.0;
        }
        let month = now.date.month_index();
        if self.month != month {
            self.month = month;
            self.month_usd = 0.0;
        }
    }
}

/// A UTC day and the month it is in: the periods a charge counts towards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Period {
    /// Days since 1970-01-01 UTC.
    day: i64,
    date: Civil,
}

impl Period {
    /// The period `t` falls in.
    pub fn at(t: SystemTime) -> Self {
        let day = unix_day(t);
        Period {
            day,
            date: civil_from_days(day),
        }
    }

    /// `2026-11-29`.
    pub fn day_string(&self) -> String {
        self.date.day_string()
    }

    /// `2026-11`.
    pub fn month_string(&self) -> String {
        self.date.month_string()
    }
}

/// The first cap of `caps` that `spent` reached in `period`, daily before monthly: a cap is
/// reached when the spend is ≥ the cap, so spending exactly the cap exhausts it; a `None` cap
/// never stops anything.
pub(crate) fn exhausted_by(
    tenant: &str,
    caps: &BudgetCaps,
    spent: Spent,
    period: &Period,
) -> Option<Exhausted> {
    let exhausted = |cap, limit_usd, spent_usd, period| Exhausted {
        tenant: tenant.to_owned(),
        cap,
        limit_usd,
        spent_usd,
        period,
    };
    if let Some(limit) = caps.daily_usd {
        if spent.day_usd >= limit {
            return Some(exhausted(
                CapKind::Daily,
                limit,
                spent.day_usd,
                period.day_string(),
            ));
        }
    }
    if let Some(limit) = caps.monthly_usd {
        if spent.month_usd >= limit {
            return Some(exhausted(
                CapKind::Monthly,
                limit,
                spent.month_usd,
                period.month_string(),
            ));
        }
    }
    None
}

impl SpendLedger {
    /// A ledger on the system clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemTime::now))
    }

    /// A ledger on another clock, for tests.
    pub fn with_clock(clock: Arc<dyn Fn() -> SystemTime + Send + Sync>) -> Self {
        SpendLedger {
            clock,
            tenants: Mutex::new(HashMap::new()),
        }
    }

    /// Record `usd` spent by `tenant` now. Negative, NaN and infinite amounts are ignored
    /// (a price or usage bug must not poison the totals), as are zero amounts.
    pub fn record(&self, tenant: &str, usd: f64) {
        if !usd.is_finite() || usd <= 0.0 {
            return;
        }
        let now = self.period();
        let mut tenants = self.lock();
        Self::entry(&mut tenants, tenant, &now).add(usd);
    }

    /// Checks `caps` and, when they allow another escalation, adds its estimated cost `usd`
    /// to the tenant's totals in the same step; returns the period it was added to, for
    /// [`adjust`](Self::adjust). A NaN, infinite or negative estimate reserves nothing.
    pub fn reserve(&self, tenant: &str, caps: &BudgetCaps, usd: f64) -> Result<Period, Exhausted> {
        let now = self.period();
        let mut tenants = self.lock();
        let spend = Self::entry(&mut tenants, tenant, &now);
        let spent = Spent {
            day_usd: spend.day_usd,
            month_usd: spend.month_usd,
        };
        if let Some(exhausted) = exhausted_by(tenant, caps, spent, &now) {
            return Err(exhausted);
        }
        if usd.is_finite() && usd > 0.0 {
            spend.add(usd);
        }
        Ok(now)
    }

    /// Adds `delta_usd` (negative when a reservation settles lower than reserved) to the
    /// tenant's totals of `period`, where that period is still the current one (a later day
    /// or month starts from zero anyway). Totals never go below zero; NaN and infinite
    /// deltas are ignored.
    pub fn adjust(&self, tenant: &str, period: &Period, delta_usd: f64) {
        if !delta_usd.is_finite() || delta_usd == 0.0 {
            return;
        }
        let now = self.period();
        let mut tenants = self.lock();
        let spend = Self::entry(&mut tenants, tenant, &now);
        if spend.day == period.day {
            spend.day_usd = (spend.day_usd + delta_usd).max(0.0);
        }
        if spend.month == period.date.month_index() {
            spend.month_usd = (spend.month_usd + delta_usd).max(0.0);
        }
    }

    /// Sets the tenant's totals of `period`, if it is the current one, to `spent`: what the
    /// shared ledger said at its last answer, so that, should it become unreachable, this
    /// replica goes on from there rather than from its own spend alone.
    pub fn mirror(&self, tenant: &str, period: &Period, spent: Spent) {
        let now = self.period();
        if now != *period {
            return;
        }
        let mut tenants = self.lock();
        let spend = Self::entry(&mut tenants, tenant, &now);
        spend.day_usd = spent.day_usd;
        spend.month_usd = spent.month_usd;
    }

    /// What `tenant` spent in the current UTC day and month.
    pub fn spent(&self, tenant: &str) -> Spent {
        let now = self.period();
        self.spent_at(tenant, &now)
    }

    /// Whether `caps` allow another escalation for `tenant` now: `Ok(())` or the first cap
    /// reached, daily checked before monthly. A cap is reached when the spend is ≥ the cap,
    /// so spending exactly the cap exhausts it. A `None` cap never stops anything.
    pub fn check(&self, tenant: &str, caps: &BudgetCaps) -> Result<(), Exhausted> {
        let now = self.period();
        let spent = self.spent_at(tenant, &now);
        exhausted_by(tenant, caps, spent, &now).map_or(Ok(()), Err)
    }

    /// The current UTC period on this ledger's clock.
    pub fn period(&self) -> Period {
        Period::at((self.clock)())
    }

    /// The tenant's totals, rolled to `now`, created empty if missing.
    fn entry<'a>(
        tenants: &'a mut HashMap<String, TenantSpend>,
        tenant: &str,
        now: &Period,
    ) -> &'a mut TenantSpend {
        let spend = tenants
            .entry(tenant.to_owned())
            .or_insert_with(|| TenantSpend::empty(now));
        spend.roll(now);
        spend
    }

    fn spent_at(&self, tenant: &str, now: &Period) -> Spent {
        let mut tenants = self.lock();
        let Some(spend) = tenants.get_mut(tenant) else {
            return Spent::default();
        };
        spend.roll(now);
        if spend.day_usd == 0.0 && spend.month_usd == 0.0 {
            // Nothing spent this month: forget the tenant until it spends again.
            tenants.remove(tenant);
            return Spent::default();
        }
        Spent {
            day_usd: spend.day_usd,
            month_usd: spend.month_usd,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, TenantSpend>> {
        // The map is consistent after every statement, so a panic elsewhere cannot corrupt it.
        self.tenants.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for SpendLedger {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for SpendLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpendLedger")
            .field("tenants", &self.lock().len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
