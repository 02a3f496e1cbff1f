//! Retry budget for one tier: retries may add at most `ratio` of the first attempts, plus a
//! small floor per second, so retries cannot multiply an outage.
//!
//! A pure state machine over a sliding window; every method takes `now`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use sluice_policy::RetryBudgetSettings;

/// How long attempts are remembered.
const WINDOW: Duration = Duration::from_secs(10);

/// The retry budget of one tier.
#[derive(Debug)]
pub struct RetryBudget {
    settings: RetryBudgetSettings,
    /// (second it started, first attempts, retries)
    buckets: VecDeque<(Instant, u64, u64)>,
}

impl RetryBudget {
    pub fn new(settings: RetryBudgetSettings) -> Self {
        Self {
            settings,
            buckets: VecDeque::new(),
        }
    }

    fn bucket(&mut self, now: Instant) -> &mut (Instant, u64, u64) {
        while let Some(&(t, _, _)) = self.buckets.front() {
            if now.saturating_duration_since(t) >= WINDOW {
                self.buckets.pop_front();
            } else {
                break;
            }
        }
        let fresh = match self.buckets.back() {
            Some(&(t, _, _)) => now.saturating_duration_since(t) >= Duration::from_secs(1),
            None => true,
        };
        if fresh {
            self.buckets.push_back((now, 0, 0));
        }
        let last = self.buckets.len() - 1;
        &mut self.buckets[last]
    }

    /// Follow a policy reload; the attempts counted so far stay.
    pub fn reconfigure(&mut self, settings: RetryBudgetSettings) {
        self.settings = settings;
    }

    pub fn settings(&self) -> RetryBudgetSettings {
        self.settings
    }

    /// Count a first attempt.
    pub fn request(&mut self, now: Instant) {
        self.bucket(now).1 += 1;
    }

    /// Take one retry from the budget, if there is one left.
    pub fn try_retry(&mut self, now: Instant) -> bool {
        self.bucket(now);
        let (requests, retries) = self
            .buckets
            .iter()
            .fold((0u64, 0u64), |(q, r), &(_, a, b)| (q + a, r + b));
        let allowed = self.settings.ratio * requests as f64
            + self.settings.min_per_second * WINDOW.as_secs_f64();
        if (retries as f64) < allowed {
            self.bucket(now).2 += 1;
            true
        } else {
            false
        }
    }

    /// Retries still allowed right now.
    #[cfg(test)]
    pub fn remaining(&mut self, now: Instant) -> f64 {
        self.bucket(now);
        let (requests, retries) = self
            .buckets
            .iter()
            .fold((0u64, 0u64), |(q, r), &(_, a, b)| (q + a, r + b));
        (self.settings.ratio * requests as f64
            + self.settings.min_per_second * WINDOW.as_secs_f64()
            - retries as f64)
            .max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_capped_at_the_ratio_plus_the_floor() {
        let t0 = Instant::now();
        let mut b = RetryBudget::new(RetryBudgetSettings {
            ratio: 0.2,
            min_per_second: 0.1, // 1 retry per 10 s window
        });
        for _ in 0..100 {
            b.request(t0);
        }
        // 0.2 × 100 + 1 = 21 retries, then none
        let granted = (0..50).filter(|_| b.try_retry(t0)).count();
        assert_eq!(granted, 21);
        assert_eq!(b.remaining(t0), 0.0);
        // more traffic earns more retries
        for _ in 0..10 {
            b.request(t0);
        }
        assert_eq!((0..50).filter(|_| b.try_retry(t0)).count(), 2);
    }

    #[test]
    fn the_budget_refills_as_the_window_moves() {
        let t0 = Instant::now();
        let mut b = RetryBudget::new(RetryBudgetSettings {
            ratio: 0.0,
            min_per_second: 0.2, // 2 per window
        });
        assert!(b.try_retry(t0));
        assert!(b.try_retry(t0));
        assert!(!b.try_retry(t0));
        assert!(!b.try_retry(t0 + Duration::from_secs(9)));
        assert!(b.try_retry(t0 + Duration::from_secs(10)));
    }

    #[test]
    fn a_zero_budget_allows_no_retry() {
        let t0 = Instant::now();
        let mut b = RetryBudget::new(RetryBudgetSettings {
            ratio: 0.0,
            min_per_second: 0.0,
        });
        b.request(t0);
        assert!(!b.try_retry(t0));
    }
}
