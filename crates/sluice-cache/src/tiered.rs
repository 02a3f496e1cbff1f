//! The local tier in front of an optional shared Redis tier. Redis is an optimisation: its
//! failures are counted and logged once per outage, and requests go on from the local tier.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;

use crate::keys::CacheKey;
use crate::local::LocalCache;
use crate::redis::RedisClient;

/// Prefix of every key written to Redis, so Sluice's keys are recognisable in a shared server.
pub const DEFAULT_KEY_PREFIX: &str = "sluice:";

/// Where a lookup was answered from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    HitLocal(Bytes),
    HitRemote(Bytes),
    Miss,
}

/// Counters of a [`TieredCache`], for metrics.
#[derive(Debug, Default)]
pub struct CacheStats {
    local_hits: AtomicU64,
    remote_hits: AtomicU64,
    misses: AtomicU64,
    remote_errors: AtomicU64,
}

impl CacheStats {
    /// Lookups answered by the local tier.
    pub fn local_hits(&self) -> u64 {
        self.local_hits.load(Ordering::Relaxed)
    }

    /// Lookups answered by Redis after a local miss.
    pub fn remote_hits(&self) -> u64 {
        self.remote_hits.load(Ordering::Relaxed)
    }

    /// Lookups answered by neither tier (a Redis error counts here too).
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// Redis calls that failed (connection, timeout, error reply), reads and writes alike.
    pub fn remote_errors(&self) -> u64 {
        self.remote_errors.load(Ordering::Relaxed)
    }
}

/// A local cache backed by an optional Redis shared between replicas.
#[derive(Debug)]
pub struct TieredCache {
    local: LocalCache,
    remote: Option<(RedisClient, String)>,
    stats: CacheStats,
    /// Whether the last Redis call succeeded; logs only the transitions, not every failure.
    remote_up: AtomicBool,
}

impl TieredCache {
    /// A tiered cache; without `remote` it is the local tier alone. Redis keys are
    /// [`DEFAULT_KEY_PREFIX`] followed by the key's hex.
    pub fn new(local: LocalCache, remote: Option<RedisClient>) -> Self {
        Self {
            local,
            remote: remote.map(|r| (r, DEFAULT_KEY_PREFIX.to_owned())),
            stats: CacheStats::default(),
            remote_up: AtomicBool::new(true),
        }
    }

    /// Uses `prefix` instead of [`DEFAULT_KEY_PREFIX`] for Redis keys (e.g. per deployment).
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        if let Some((_, p)) = &mut self.remote {
            *p = prefix.into();
        }
        self
    }

    /// Local first; on a local miss ask Redis (errors are counted and treated as a miss); a remote hit is copied into the local tier (the remote TTL is not known cheaply: use the `ttl` argument given here).
    pub async fn get(&self, key: &CacheKey, ttl_on_fill: Duration) -> Lookup {
        if let Some(value) = self.local.get(key).await {
            self.stats.local_hits.fetch_add(1, Ordering::Relaxed);
            return Lookup::HitLocal(value);
        }
        if let Some((redis, prefix)) = &self.remote {
            let result = redis.get(remote_key(prefix, key).as_bytes()).await;
            if let Some(Some(value)) = self.record("get", result) {
                self.local.insert(*key, value.clone(), ttl_on_fill).await;
                self.stats.remote_hits.fetch_add(1, Ordering::Relaxed);
                return Lookup::HitRemote(value);
            }
        }
        self.stats.misses.fetch_add(1, Ordering::Relaxed);
        Lookup::Miss
    }

    /// Local insert, and a Redis SET PX (errors counted, never returned: the gateway keeps serving).
    pub async fn insert(&self, key: CacheKey, value: Bytes, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        self.local.insert(key, value.clone(), ttl).await;
        if let Some((redis, prefix)) = &self.remote {
            let result = redis
                .set_px(remote_key(prefix, &key).as_bytes(), &value, ttl)
                .await;
            self.record("set", result);
        }
    }

    /// Redis calls that failed so far.
    pub fn remote_errors(&self) -> u64 {
        self.stats.remote_errors()
    }

    /// All counters.
    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }

    /// The in-process tier.
    pub fn local(&self) -> &LocalCache {
        &self.local
    }

    /// Whether a shared tier is configured.
    pub fn has_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// Counts a failure and logs when Redis goes away or comes back.
    fn record<T>(&self, op: &str, result: Result<T, crate::CacheError>) -> Option<T> {
        match result {
            Ok(v) => {
                if !self.remote_up.swap(true, Ordering::Relaxed) {
                    tracing::info!("shared cache reachable again");
                }
                Some(v)
            }
            Err(error) => {
                self.stats.remote_errors.fetch_add(1, Ordering::Relaxed);
                if self.remote_up.swap(false, Ordering::Relaxed) {
                    tracing::warn!(%error, op, "shared cache unavailable, serving from the local tier");
                } else {
                    tracing::debug!(%error, op, "shared cache call failed");
                }
                None
            }
        }
    }
}

fn remote_key(prefix: &str, key: &CacheKey) -> String {
    format!("{prefix}{}", key.hex())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> CacheKey {
        CacheKey([n; 32])
    }

    #[tokio::test]
    async fn without_redis_it_is_the_local_tier() {
        let cache = TieredCache::new(LocalCache::new(1 << 20), None);
        let ttl = Duration::from_secs(60);
        assert_eq!(cache.get(&key(1), ttl).await, Lookup::Miss);
        cache.insert(key(1), Bytes::from_static(b"v"), ttl).await;
        assert_eq!(
            cache.get(&key(1), ttl).await,
            Lookup::HitLocal(Bytes::from_static(b"v"))
        );
        assert_eq!((cache.stats().local_hits(), cache.stats().misses()), (1, 1));
        assert_eq!(cache.remote_errors(), 0);
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_counted_and_served_around() {
        // Bind then release a port, so nothing listens on it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let redis = RedisClient::new(
            &format!("redis://127.0.0.1:{port}"),
            Duration::from_millis(200),
        )
        .unwrap();
        let cache = TieredCache::new(LocalCache::new(1 << 20), Some(redis));
        let ttl = Duration::from_secs(60);
        cache.insert(key(1), Bytes::from_static(b"v"), ttl).await;
        assert_eq!(cache.remote_errors(), 1);
        assert_eq!(
            cache.get(&key(1), ttl).await,
            Lookup::HitLocal(Bytes::from_static(b"v"))
        );
        assert_eq!(cache.get(&key(2), ttl).await, Lookup::Miss);
        assert_eq!(cache.remote_errors(), 2);
    }

    #[test]
    fn remote_keys_are_prefixed_hex() {
        assert_eq!(
            remote_key("sluice:", &key(0xab)),
            format!("sluice:{}", "ab".repeat(32))
        );
    }
}
