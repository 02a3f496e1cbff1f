//! Response and score caches: canonical SHA-256 keys, an in-process tier (moka) and an
//! optional shared Redis tier, so that replicas answer a repeated request once.
//!
//! - [`keys`] turns a request into a [`CacheKey`] that ignores what cannot change the answer
//!   (surrounding whitespace, line endings, request ids) and keeps everything that can.
//! - [`LocalCache`] is a byte-bounded in-process cache with a TTL per entry.
//! - [`RedisClient`] talks to Redis through the `redis` crate's connection manager (TLS,
//!   AUTH, scripts) with a bounded time per operation.
//! - [`TieredCache`] puts the local tier in front of Redis; Redis failures are counted and
//!   served around, never returned.

pub mod error;
pub mod keys;
pub mod local;
pub mod redis;
pub mod tiered;

/// A Lua script for [`RedisClient::eval`].
pub use ::redis::Script;
pub use error::CacheError;
pub use keys::{
    normalize_text, response_key, score_key, CacheKey, ResponseKeyInput, ScoreKeyInput,
};
pub use local::LocalCache;
pub use redis::{RedisClient, RedisOptions};
pub use tiered::{CacheStats, Lookup, TieredCache};
