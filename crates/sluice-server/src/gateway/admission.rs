//! Admission to the local model: at most the policy's `local.max_queue` requests hold it
//! at once, so a burst cannot pile up latency and memory on one CPU model. A request that
//! finds it full waits up to `local.max_wait` for room; then `ROUTE_HINT_AUTO` requests go
//! to the tiers (reason `local_busy`) and local-only ones fail with RESOURCE_EXHAUSTED.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::Notify;

/// Requests holding the local model, shared by every policy (there is one model).
#[derive(Debug)]
pub struct LocalAdmission {
    held: AtomicUsize,
    freed: Notify,
    /// Woken whenever a place is taken (a sample on the model gives way to a request).
    taken: Notify,
    gauge: Gauge<i64, AtomicI64>,
}

/// A place on the local model; given back when dropped.
#[derive(Debug)]
pub struct LocalPermit(Arc<LocalAdmission>);

impl Drop for LocalPermit {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Ordering::AcqRel);
        self.0.gauge.dec();
        self.0.freed.notify_waiters();
    }
}

impl LocalAdmission {
    /// `gauge` follows the number of places held.
    pub fn new(gauge: Gauge<i64, AtomicI64>) -> Arc<Self> {
        Arc::new(Self {
            held: AtomicUsize::new(0),
            freed: Notify::new(),
            taken: Notify::new(),
            gauge,
        })
    }

    /// Places held now.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    /// A place under `policy`'s `local.max_queue`, waiting up to its `local.max_wait`.
    pub async fn admit_for(
        self: &Arc<Self>,
        policy: &sluice_policy::Policy,
    ) -> Option<LocalPermit> {
        self.admit(policy.local.max_queue, policy.local.max_wait)
            .await
    }

    /// A place if fewer than `max` are held, waiting up to `wait` for one to free.
    pub async fn admit(self: &Arc<Self>, max: u32, wait: Duration) -> Option<LocalPermit> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before the check, so a place freed in between is not missed.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(permit) = self.try_take(max) {
                return Some(permit);
            }
            if wait.is_zero() || tokio::time::timeout_at(deadline, freed).await.is_err() {
                return self.try_take(max);
            }
        }
    }

    /// Returns once more than `n` places are held: someone else came for the model.
    pub async fn more_than(&self, n: usize) {
        loop {
            // Registered before the check, so a place taken in between is not missed.
            let taken = self.taken.notified();
            tokio::pin!(taken);
            taken.as_mut().enable();
            if self.held.load(Ordering::Acquire) > n {
                return;
            }
            taken.await;
        }
    }

    fn try_take(self: &Arc<Self>, max: u32) -> Option<LocalPermit> {
        let max = max as usize;
        let mut held = self.held.load(Ordering::Acquire);
        loop {
            if held >= max {
                return None;
            }
            match self.held.compare_exchange_weak(
                held,
                held + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    self.gauge.inc();
                    self.taken.notify_waiters();
                    return Some(LocalPermit(Arc::clone(self)));
                }
                Err(now) => held = now,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn at_most_max_are_admitted_and_a_freed_place_is_taken_by_a_waiter() {
        let gauge = Gauge::<i64, AtomicI64>::default();
        let adm = LocalAdmission::new(gauge.clone());
        let a = adm.admit(2, Duration::ZERO).await.unwrap();
        let _b = adm.admit(2, Duration::ZERO).await.unwrap();
        assert!(adm.admit(2, Duration::ZERO).await.is_none());
        assert_eq!((adm.held(), gauge.get()), (2, 2));
        // A policy with a larger bound still gets in: the bound is the caller's.
        let c = adm.admit(3, Duration::ZERO).await.unwrap();
        drop(c);
        let waiter = {
            let adm = Arc::clone(&adm);
            tokio::spawn(async move { adm.admit(2, Duration::from_secs(5)).await.is_some() })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(a);
        assert!(waiter.await.unwrap());
        assert_eq!((adm.held(), gauge.get()), (1, 1));
    }

    #[tokio::test]
    async fn a_place_taken_by_someone_else_is_noticed() {
        let adm = LocalAdmission::new(Gauge::default());
        let mine = adm.admit(1, Duration::ZERO).await.unwrap();
        let watch = tokio::spawn({
            let adm = adm.clone();
            async move { adm.more_than(1).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!watch.is_finished(), "only my place is held");
        let _other = adm.admit(2, Duration::ZERO).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), watch)
            .await
            .expect("noticed")
            .unwrap();
        drop(mine);
    }

    #[tokio::test]
    async fn a_wait_that_runs_out_is_refused() {
        let adm = LocalAdmission::new(Gauge::default());
        let _a = adm.admit(1, Duration::ZERO).await.unwrap();
        let t = std::time::Instant::now();
        assert!(adm.admit(1, Duration::from_millis(50)).await.is_none());
        assert!(t.elapsed() >= Duration::from_millis(50));
    }
}
