//! The ledger the gateway charges: the shared one in Redis when there is one, with this
//! replica's in-memory ledger as its mirror and its stand-in while Redis cannot be reached.
//!
//! An escalation [`reserve`](Ledger::reserve)s its estimated cost before the tier is called
//! and [`settle`](Ledger::settle)s to what it cost after, so concurrent escalations (through
//! any replica) overshoot a cap by at most one reservation. While Redis is down or hung the
//! ledger is *degraded*: each replica enforces the caps from the last shared totals it saw
//! plus its own spend since, keeps each settle it could not make, and makes them once Redis
//! answers again (exact whether or not a timed-out reservation reached Redis: see
//! [`SharedLedger`]). A request is never failed because the ledger is degraded.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use sluice_policy::BudgetCaps;

use super::{Exhausted, Period, SharedLedger, SpendLedger};

/// While degraded, Redis is asked again at most this often; other calls go straight to the
/// local ledger instead of each waiting out the operation timeout.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// Settles kept for Redis while it is unreachable; past this many, the oldest are merged
/// per tenant and period (their reservations then expire with their keys instead of being
/// replaced: the totals may count both until the day's key expires, never less).
const MAX_UNSYNCED: usize = 100_000;

/// An escalation's reserved cost, to settle once it is known.
#[derive(Debug)]
#[must_use = "a hold is settled with Ledger::settle"]
pub struct Hold {
    tenant: String,
    period: Period,
    reserved_usd: f64,
    /// The reservation's name in Redis, when one may have been made there.
    id: Option<String>,
}

/// A settle Redis has not seen yet.
#[derive(Debug)]
struct Owed {
    tenant: String,
    period: Period,
    hold: Option<String>,
    usd: f64,
}

/// The ledger's health, for `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct LedgerHealth {
    /// 1 while the shared ledger cannot be reached.
    pub degraded: Gauge,
    /// Shared-ledger operations that failed.
    pub errors: Counter,
}

/// What the gateway charges escalations to.
#[derive(Debug)]
pub struct Ledger {
    local: SpendLedger,
    shared: Option<SharedLedger>,
    health: LedgerHealth,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Settles made while Redis was unreachable, in order: made there when it is back.
    unsynced: Vec<Owed>,
    /// While degraded: when Redis may be asked again.
    retry_at: Option<Instant>,
}

impl Ledger {
    /// This replica's ledger only.
    pub fn local(local: SpendLedger, health: LedgerHealth) -> Self {
        Self::new(local, None, health)
    }

    /// `shared` in front of `local`, when given.
    pub fn new(local: SpendLedger, shared: Option<SharedLedger>, health: LedgerHealth) -> Self {
        Self {
            local,
            shared,
            health,
            state: Mutex::new(State::default()),
        }
    }

    /// This replica's ledger (its own spend, and the mirror of the shared totals).
    pub fn replica(&self) -> &SpendLedger {
        &self.local
    }

    /// Whether the shared ledger could not be reached at the last attempt.
    pub fn degraded(&self) -> bool {
        self.health.degraded.get() != 0
    }

    /// A hold for an escalation under no cap: nothing reserved, the cost still charged.
    pub fn unbudgeted(&self, tenant: &str) -> Hold {
        Hold {
            tenant: tenant.to_owned(),
            period: self.local.period(),
            reserved_usd: 0.0,
            id: None,
        }
    }

    /// Checks `caps` and reserves `estimate_usd` for one escalation of `tenant`: in Redis
    /// when it answers, else in this replica's ledger.
    pub async fn reserve(
        &self,
        tenant: &str,
        caps: &BudgetCaps,
        estimate_usd: f64,
    ) -> Result<Hold, Exhausted> {
        let period = self.local.period();
        let id = self.shared.as_ref().map(|_| hold_id());
        if let (Some(shared), Some(id)) = (self.try_shared(), &id) {
            self.sync(shared).await;
            match shared
                .reserve(tenant, caps, estimate_usd, &period, id)
                .await
            {
                Ok((spent, allowed)) => {
                    self.reached();
                    // The mirror this replica falls back on should Redis go away.
                    self.local.mirror(tenant, &period, spent);
                    return allowed.map(|()| Hold {
                        tenant: tenant.to_owned(),
                        period,
                        reserved_usd: estimate_usd,
                        id: Some(id.clone()),
                    });
                }
                Err(e) => self.unreachable(&e),
            }
        }
        let period = self.local.reserve(tenant, caps, estimate_usd)?;
        Ok(Hold {
            tenant: tenant.to_owned(),
            period,
            reserved_usd: estimate_usd,
            id,
        })
    }

    /// Settles `hold` to `cost_usd`, what the escalation cost (0 when no tier answered).
    pub async fn settle(&self, hold: Hold, cost_usd: f64) {
        let cost = if cost_usd.is_finite() && cost_usd > 0.0 {
            cost_usd
        } else {
            0.0
        };
        self.local
            .adjust(&hold.tenant, &hold.period, cost - hold.reserved_usd);
        let Some(shared) = &self.shared else {
            return;
        };
        if hold.id.is_none() && cost == 0.0 {
            return;
        }
        let owed = Owed {
            tenant: hold.tenant,
            period: hold.period,
            hold: hold.id,
            usd: cost,
        };
        if self.try_shared().is_some() {
            match shared
                .settle(&owed.tenant, &owed.period, owed.hold.as_deref(), owed.usd)
                .await
            {
                Ok(spent) => {
                    self.reached();
                    self.local.mirror(&owed.tenant, &owed.period, spent);
                    self.sync(shared).await;
                    return;
                }
                Err(e) => self.unreachable(&e),
            }
        }
        self.keep(owed);
    }

    /// Keeps a settle for when Redis is back, within [`MAX_UNSYNCED`].
    fn keep(&self, owed: Owed) {
        let mut state = self.lock();
        state.unsynced.push(owed);
        if state.unsynced.len() > MAX_UNSYNCED {
            // Merge the older half per tenant and period into plain charges.
            let older: Vec<Owed> = state.unsynced.drain(..MAX_UNSYNCED / 2).collect();
            let mut merged: Vec<Owed> = Vec::new();
            for o in older {
                match merged
                    .iter_mut()
                    .find(|m| m.tenant == o.tenant && m.period == o.period)
                {
                    Some(m) => m.usd += o.usd,
                    None => merged.push(Owed { hold: None, ..o }),
                }
            }
            merged.append(&mut state.unsynced);
            state.unsynced = merged;
        }
    }

    /// The shared ledger, unless it failed less than [`RETRY_EVERY`] ago.
    fn try_shared(&self) -> Option<&SharedLedger> {
        let shared = self.shared.as_ref()?;
        match self.lock().retry_at {
            Some(at) if Instant::now() < at => None,
            _ => Some(shared),
        }
    }

    /// Makes in Redis the settles kept while it was unreachable, in order; stops at the first
    /// failure, keeping it and the rest.
    async fn sync(&self, shared: &SharedLedger) {
        let pending = std::mem::take(&mut self.lock().unsynced);
        let mut left = pending.into_iter();
        while let Some(owed) = left.next() {
            let done = shared
                .settle(&owed.tenant, &owed.period, owed.hold.as_deref(), owed.usd)
                .await;
            if let Err(e) = done {
                self.unreachable(&e);
                let mut state = self.lock();
                let newer = std::mem::take(&mut state.unsynced);
                state.unsynced = std::iter::once(owed).chain(left).chain(newer).collect();
                return;
            }
            tracing::info!(tenant = %owed.tenant, usd = owed.usd, "a settle kept while redis was unreachable is now made");
        }
    }

    fn reached(&self) {
        if self.health.degraded.set(0) != 0 {
            tracing::info!("the shared spend ledger is reachable again");
        }
        self.lock().retry_at = None;
    }

    fn unreachable(&self, e: &sluice_cache::CacheError) {
        self.health.errors.inc();
        if self.health.degraded.set(1) == 0 {
            tracing::warn!(error = %e, "shared spend ledger unreachable: budgets enforced per replica until it is back");
        }
        self.lock().retry_at = Some(Instant::now() + RETRY_EVERY);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every update is one statement on the maps: a panic elsewhere leaves them whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A name for a reservation, unique across replicas: a per-process random part and a count.
fn hold_id() -> String {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    static PROCESS: std::sync::LazyLock<u64> = std::sync::LazyLock::new(|| {
        std::collections::hash_map::RandomState::new().hash_one(std::process::id())
    });
    format!(
        "{:016x}-{}",
        *PROCESS,
        COUNT.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests;
