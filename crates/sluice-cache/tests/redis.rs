#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `RedisClient` and `TieredCache` against a real `redis-server`, started per test on a free
//! port and killed on drop. Skipped, saying so, where `redis-server` is not installed.

use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_cache::{
    CacheError, CacheKey, LocalCache, Lookup, RedisClient, RedisOptions, TieredCache,
};
use sluice_test_support::RedisServer;

/// The bound under test where Redis goes away or hangs.
const OP_TIMEOUT: Duration = Duration::from_millis(100);
/// Where Redis is healthy: generous, so a busy machine does not turn a hit into a miss.
const RELAXED: Duration = Duration::from_secs(5);
/// Scheduling slack on a busy two-core machine on top of the operation timeout.
const SLACK: Duration = Duration::from_millis(150);
const TTL: Duration = Duration::from_secs(60);

trait Client {
    fn client(&self, op_timeout: Duration) -> RedisClient;
}

impl Client for RedisServer {
    fn client(&self, op_timeout: Duration) -> RedisClient {
        RedisClient::new(&self.url(), op_timeout).unwrap()
    }
}

fn key(n: u8) -> CacheKey {
    CacheKey([n; 32])
}

/// Runs `op`, checking it returned within the operation timeout (plus scheduling slack).
async fn bounded<T>(op: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    let out = op.await;
    let took = started.elapsed();
    assert!(
        took <= OP_TIMEOUT + SLACK,
        "call took {took:?}, bound is {OP_TIMEOUT:?}"
    );
    out
}

#[tokio::test]
async fn binary_values_round_trip_and_missing_keys_are_none() {
    let Some(server) = RedisServer::start(&[]) else {
        return;
    };
    let client = server.client(RELAXED);
    client.ping().await.unwrap();
    let value: Vec<u8> = (0..=255u8).chain(*b"\r\n$-1\r\n").collect();
    let binary_key = b"k\r\n\0\xff";
    client.set_px(binary_key, &value, TTL).await.unwrap();
    assert_eq!(
        client.get(binary_key).await.unwrap(),
        Some(Bytes::from(value))
    );
    client.set_px(b"empty", b"", TTL).await.unwrap();
    assert_eq!(client.get(b"empty").await.unwrap(), Some(Bytes::new()));
    let big = vec![b'x'; 1 << 20];
    client.set_px(b"big", &big, TTL).await.unwrap();
    assert_eq!(
        client.get(b"big").await.unwrap().map(|b| b.len()),
        Some(1 << 20)
    );
    assert_eq!(client.get(b"never set").await.unwrap(), None);
}

#[tokio::test]
async fn px_expires_the_value() {
    let Some(server) = RedisServer::start(&[]) else {
        return;
    };
    let client = server.client(RELAXED);
    client
        .set_px(b"short", b"v", Duration::from_millis(100))
        .await
        .unwrap();
    assert_eq!(
        client.get(b"short").await.unwrap(),
        Some(Bytes::from_static(b"v"))
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(client.get(b"short").await.unwrap(), None);
}

#[tokio::test]
async fn password_and_database_from_the_url_are_used() {
    let Some(server) = RedisServer::start(&["--requirepass", "s3cret"]) else {
        return;
    };
    let url = |auth: &str, db: u32| format!("redis://{auth}127.0.0.1:{}/{db}", server.port());
    let db1 = RedisClient::new(&url(":s3cret@", 1), RELAXED).unwrap();
    let db2 = RedisClient::new(&url(":s3cret@", 2), RELAXED).unwrap();
    db1.set_px(b"k", b"in db 1", TTL).await.unwrap();
    assert_eq!(
        db1.get(b"k").await.unwrap(),
        Some(Bytes::from_static(b"in db 1"))
    );
    assert_eq!(db2.get(b"k").await.unwrap(), None, "SELECT was not applied");

    let anonymous = RedisClient::new(&url("", 0), RELAXED).unwrap();
    let err = anonymous.get(b"k").await.unwrap_err();
    assert!(
        matches!(&err, CacheError::Redis { message } if message.starts_with("NOAUTH")),
        "{err}"
    );
    let wrong = RedisClient::new(&url(":nope@", 0), RELAXED).unwrap();
    let err = wrong.ping().await.unwrap_err();
    assert!(
        matches!(&err, CacheError::Redis { message } if message.starts_with("authentication failed")),
        "{err}"
    );
}

#[tokio::test]
async fn another_replica_is_filled_from_redis() {
    let Some(server) = RedisServer::start(&[]) else {
        return;
    };
    let first = TieredCache::new(LocalCache::new(1 << 20), Some(server.client(RELAXED)));
    let second = TieredCache::new(LocalCache::new(1 << 20), Some(server.client(RELAXED)));
    let answer = Bytes::from_static(b"the answer");

    assert_eq!(second.get(&key(1), TTL).await, Lookup::Miss);
    first.insert(key(1), answer.clone(), TTL).await;
    assert_eq!(
        first.get(&key(1), TTL).await,
        Lookup::HitLocal(answer.clone())
    );

    let fill_ttl = Duration::from_secs(5);
    assert_eq!(
        second.get(&key(1), fill_ttl).await,
        Lookup::HitRemote(answer.clone())
    );
    let left = second.local().ttl_left(&key(1)).await;
    assert!(
        left.is_some_and(|d| d <= fill_ttl),
        "local copy ttl {left:?}"
    );
    assert_eq!(
        second.get(&key(1), fill_ttl).await,
        Lookup::HitLocal(answer)
    );
    let stats = second.stats();
    assert_eq!(
        (stats.local_hits(), stats.remote_hits(), stats.misses()),
        (1, 1, 1)
    );
    assert_eq!(first.remote_errors() + second.remote_errors(), 0);
}

#[tokio::test]
async fn redis_going_away_leaves_the_local_tier_serving() {
    let Some(server) = RedisServer::start(&[]) else {
        return;
    };
    let cache = TieredCache::new(LocalCache::new(1 << 20), Some(server.client(OP_TIMEOUT)));
    cache.insert(key(1), Bytes::from_static(b"kept"), TTL).await;
    drop(server);
    let before = cache.remote_errors();

    // A local hit does not touch Redis at all.
    let hit = bounded(cache.get(&key(1), TTL)).await;
    assert_eq!(hit, Lookup::HitLocal(Bytes::from_static(b"kept")));
    assert_eq!(cache.remote_errors(), before);
    // A local miss asks Redis, which fails: a miss, counted.
    assert_eq!(bounded(cache.get(&key(2), TTL)).await, Lookup::Miss);
    assert_eq!(cache.remote_errors(), before + 1);
    // Inserts still fill the local tier; the failed write is counted.
    bounded(cache.insert(key(3), Bytes::from_static(b"new"), TTL)).await;
    assert_eq!(cache.remote_errors(), before + 2);
    let hit = bounded(cache.get(&key(3), TTL)).await;
    assert_eq!(hit, Lookup::HitLocal(Bytes::from_static(b"new")));
    assert_eq!(cache.remote_errors(), before + 2);
}

#[tokio::test]
async fn a_hung_redis_costs_at_most_the_timeout_and_is_used_again_when_back() {
    let Some(server) = RedisServer::start(&[]) else {
        return;
    };
    let cache = TieredCache::new(LocalCache::new(1 << 20), Some(server.client(OP_TIMEOUT)));
    // Leaves a pooled connection, which then meets the hang.
    cache.insert(key(1), Bytes::from_static(b"v"), TTL).await;

    // A stopped server still accepts connections (the kernel does) but never answers.
    server.signal("-STOP");
    let before = cache.remote_errors();
    assert_eq!(bounded(cache.get(&key(2), TTL)).await, Lookup::Miss);
    bounded(cache.insert(key(3), Bytes::from_static(b"w"), TTL)).await;
    assert_eq!(cache.remote_errors(), before + 2);
    assert_eq!(
        cache.get(&key(3), TTL).await,
        Lookup::HitLocal(Bytes::from_static(b"w"))
    );

    server.signal("-CONT");
    // A just-resumed server on a busy machine may miss one 100 ms bound: allow a few tries.
    let mut tries = 0;
    loop {
        let errors = cache.remote_errors();
        cache.insert(key(4), Bytes::from_static(b"x"), TTL).await;
        if cache.remote_errors() == errors {
            break;
        }
        tries += 1;
        assert!(tries < 20, "redis still failing 20 tries after SIGCONT");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let other = TieredCache::new(LocalCache::new(1 << 20), Some(server.client(RELAXED)));
    assert_eq!(
        other.get(&key(4), TTL).await,
        Lookup::HitRemote(Bytes::from_static(b"x"))
    );
}

/// A fresh directory for one test's files.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-cache-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn rediss_reaches_a_tls_server_trusting_the_given_ca_and_not_without_it() {
    let dir = scratch("tls");
    let Some(server) = RedisServer::start_tls(&dir, &["--requirepass", "s3cret"]) else {
        return;
    };
    let url = server.url();
    assert!(url.starts_with("rediss://"), "{url}");
    let options = |ca_pem: Option<Vec<u8>>| RedisOptions {
        op_timeout: RELAXED,
        password: Some("s3cret".into()),
        ca_pem,
        ..RedisOptions::default()
    };
    let client = RedisClient::open(&url, options(server.tls_ca())).unwrap();
    client.ping().await.unwrap();
    client.set_px(b"k", b"over tls", TTL).await.unwrap();
    assert_eq!(
        client.get(b"k").await.unwrap(),
        Some(Bytes::from_static(b"over tls"))
    );
    let cache = TieredCache::new(LocalCache::new(1 << 20), Some(client));
    cache
        .insert(key(7), Bytes::from_static(b"shared"), TTL)
        .await;
    assert_eq!(cache.remote_errors(), 0);

    // The web roots do not know the test CA: the handshake fails, as it must.
    let untrusting = RedisClient::open(&url, options(None)).unwrap();
    let err = untrusting.ping().await.unwrap_err();
    assert!(
        matches!(err, CacheError::Io { .. } | CacheError::Protocol { .. }),
        "{err}"
    );
    // Plain TCP to the TLS port is no Redis conversation either.
    let plain =
        RedisClient::new(&url.replace("rediss://", "redis://:s3cret@"), OP_TIMEOUT).unwrap();
    assert!(plain.ping().await.is_err());
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_password_from_the_options_is_used_when_the_url_has_none() {
    let Some(server) = RedisServer::start(&["--requirepass", "s3cret"]) else {
        return;
    };
    let with = |password: &str| {
        RedisClient::open(
            &server.url(),
            RedisOptions {
                op_timeout: RELAXED,
                password: Some(password.into()),
                ..RedisOptions::default()
            },
        )
        .unwrap()
    };
    with("s3cret").ping().await.unwrap();
    let err = with("nope").ping().await.unwrap_err();
    assert!(err.to_string().contains("authentication failed"), "{err}");
}
