//! The in-process tier: a moka cache bounded in bytes, with a time to live per entry.

use std::time::{Duration, Instant};

use bytes::Bytes;
use moka::Expiry;

use crate::keys::CacheKey;

/// Bookkeeping charged to every entry besides its value and key (moka's own per-entry cost is
/// of this order), so that many tiny entries still count against the byte budget.
const ENTRY_OVERHEAD: u32 = 64;

/// Longest TTL honoured; longer ones are cut to it so that deadline arithmetic never overflows.
const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// A cached value and when it stops being served.
#[derive(Debug, Clone)]
struct Entry {
    value: Bytes,
    ttl: Duration,
    expires_at: Instant,
}

/// Expires every entry after the TTL it was inserted with; reads do not extend it.
#[derive(Debug)]
struct PerEntryTtl;

impl Expiry<CacheKey, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _: &CacheKey, entry: &Entry, _: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }

    fn expire_after_update(
        &self,
        _: &CacheKey,
        entry: &Entry,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        // A replaced value gets its own TTL, not what was left of the old one.
        Some(entry.ttl)
    }
}

/// An in-process cache holding at most `max_bytes` of values (plus per-entry overhead).
#[derive(Debug, Clone)]
pub struct LocalCache {
    inner: moka::future::Cache<CacheKey, Entry>,
    max_bytes: u64,
}

impl LocalCache {
    /// A cache that evicts the least useful entries once `max_bytes` is exceeded.
    pub fn new(max_bytes: u64) -> Self {
        let inner = moka::future::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|_: &CacheKey, e: &Entry| weight(e.value.len()))
            .expire_after(PerEntryTtl)
            .build();
        Self { inner, max_bytes }
    }

    /// The value stored under `key`, unless absent or expired.
    pub async fn get(&self, key: &CacheKey) -> Option<Bytes> {
        let entry = self.inner.get(key).await?;
        (entry.expires_at > Instant::now()).then_some(entry.value)
    }

    /// Stores `value` for `ttl`, replacing any previous value. A zero TTL stores nothing.
    pub async fn insert(&self, key: CacheKey, value: Bytes, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        let ttl = ttl.min(MAX_TTL);
        let entry = Entry {
            value,
            ttl,
            expires_at: Instant::now() + ttl,
        };
        self.inner.insert(key, entry).await;
    }

    /// Remaining time to live of an entry, if present.
    pub async fn ttl_left(&self, key: &CacheKey) -> Option<Duration> {
        let entry = self.inner.get(key).await?;
        let left = entry.expires_at.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left)
    }

    /// Bytes charged for the entries held; exact only after [`Self::run_pending_tasks`],
    /// because moka applies inserts and evictions in batches.
    pub fn weighted_size(&self) -> u64 {
        self.inner.weighted_size()
    }

    /// Number of entries held; exact only after [`Self::run_pending_tasks`].
    pub fn entry_count(&self) -> u64 {
        self.inner.entry_count()
    }

    /// The byte budget given to [`Self::new`].
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Applies pending inserts, evictions and expirations now (tests, metrics scrapes).
    pub async fn run_pending_tasks(&self) {
        self.inner.run_pending_tasks().await;
    }
}

/// What an entry costs against the byte budget: value, key and bookkeeping.
fn weight(value_len: usize) -> u32 {
    let key = std::mem::size_of::<CacheKey>() as u32;
    u32::try_from(value_len)
        .unwrap_or(u32::MAX)
        .saturating_add(key)
        .saturating_add(ENTRY_OVERHEAD)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> CacheKey {
        CacheKey([n; 32])
    }

    #[tokio::test]
    async fn hit_after_insert_miss_otherwise() {
        let cache = LocalCache::new(1 << 20);
        cache
            .insert(
                key(1),
                Bytes::from_static(b"answer"),
                Duration::from_secs(60),
            )
            .await;
        assert_eq!(
            cache.get(&key(1)).await,
            Some(Bytes::from_static(b"answer"))
        );
        assert_eq!(cache.get(&key(2)).await, None);
    }

    #[tokio::test]
    async fn each_entry_expires_after_its_own_ttl() {
        let cache = LocalCache::new(1 << 20);
        cache
            .insert(
                key(1),
                Bytes::from_static(b"short"),
                Duration::from_millis(50),
            )
            .await;
        cache
            .insert(key(2), Bytes::from_static(b"long"), Duration::from_secs(60))
            .await;
        let left = cache.ttl_left(&key(1)).await;
        assert!(
            left.is_some_and(|d| d <= Duration::from_millis(50)),
            "{left:?}"
        );
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(cache.get(&key(1)).await, None);
        assert_eq!(cache.ttl_left(&key(1)).await, None);
        assert_eq!(cache.get(&key(2)).await, Some(Bytes::from_static(b"long")));
        let left = cache.ttl_left(&key(2)).await;
        assert!(
            left.is_some_and(|d| d > Duration::from_secs(59)),
            "{left:?}"
        );
    }

    #[tokio::test]
    async fn replacing_a_value_restarts_its_ttl() {
        let cache = LocalCache::new(1 << 20);
        cache
            .insert(
                key(1),
                Bytes::from_static(b"old"),
                Duration::from_millis(50),
            )
            .await;
        cache
            .insert(key(1), Bytes::from_static(b"new"), Duration::from_secs(60))
            .await;
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(cache.get(&key(1)).await, Some(Bytes::from_static(b"new")));
    }

    #[tokio::test]
    async fn zero_ttl_stores_nothing() {
        let cache = LocalCache::new(1 << 20);
        cache
            .insert(key(1), Bytes::from_static(b"x"), Duration::ZERO)
            .await;
        assert_eq!(cache.get(&key(1)).await, None);
    }

    #[tokio::test]
    async fn the_byte_budget_bounds_what_is_held() {
        let max = 10_000;
        let cache = LocalCache::new(max);
        let value = Bytes::from(vec![7u8; 1_000]);
        for n in 0..=u8::MAX {
            cache
                .insert(key(n), value.clone(), Duration::from_secs(60))
                .await;
        }
        cache.run_pending_tasks().await;
        let size = cache.weighted_size();
        assert!(size <= max, "weighted size {size} exceeds {max}");
        assert!(size > 0, "everything was evicted");
        let held = cache.entry_count();
        assert!((1..=9).contains(&held), "{held} entries of ~1 KiB in 10 kB");
        assert_eq!(size, held * u64::from(weight(1_000)));
    }

    #[tokio::test]
    async fn a_value_larger_than_the_budget_is_not_kept() {
        let cache = LocalCache::new(100);
        cache
            .insert(
                key(1),
                Bytes::from(vec![0u8; 1_000]),
                Duration::from_secs(60),
            )
            .await;
        cache.run_pending_tasks().await;
        assert_eq!(cache.get(&key(1)).await, None);
        assert_eq!(cache.weighted_size(), 0);
    }
}
