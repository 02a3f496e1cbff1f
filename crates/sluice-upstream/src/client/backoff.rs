//! Exponential backoff with full jitter: retry `n` (from 0) waits a uniformly random
//! time in `[0, min(CAP, BASE * 2^n)]`.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Backoff ceiling of the first retry.
const BASE: Duration = Duration::from_millis(100);
/// Largest backoff.
const CAP: Duration = Duration::from_secs(2);

/// How long to wait before retry number `retry` (0 for the first retry).
pub(super) fn delay(retry: u32) -> Duration {
    ceiling(retry).mul_f64(unit_random())
}

/// The most retry number `retry` may wait.
fn ceiling(retry: u32) -> Duration {
    let factor = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
    BASE.saturating_mul(factor).min(CAP)
}

/// A number in `[0, 1)`; not cryptographic, just enough to spread retries apart.
fn unit_random() -> f64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    // Every `RandomState` has fresh keys, so equal inputs still hash differently.
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(nanos);
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_up_to_the_cap() {
        assert_eq!(ceiling(0), Duration::from_millis(100));
        assert_eq!(ceiling(1), Duration::from_millis(200));
        assert_eq!(ceiling(3), Duration::from_millis(800));
        assert_eq!(ceiling(5), CAP);
        assert_eq!(ceiling(40), CAP);
    }

    #[test]
    fn delays_stay_within_their_ceiling_and_vary() {
        let delays: Vec<Duration> = (0..200).map(|_| delay(2)).collect();
        assert!(delays.iter().all(|d| *d <= ceiling(2)));
        let first = delays[0];
        assert!(delays.iter().any(|d| *d != first));
    }
}
