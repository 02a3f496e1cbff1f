//! The one error type of the crate.

use std::time::Duration;

/// What can go wrong talking to the shared (Redis) tier. The local tier cannot fail.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The Redis URL could not be understood; `url` has any password masked.
    #[error("bad redis url `{url}`: {message}")]
    BadUrl { url: String, message: String },
    /// Connecting to, reading from or writing to Redis failed.
    #[error("redis at {addr}: {message}")]
    Io { addr: String, message: String },
    /// The operation (connection included) did not finish within the operation timeout.
    #[error("redis at {addr} did not answer within {after:?}")]
    Timeout { addr: String, after: Duration },
    /// Redis answered with an error reply (`-ERR ...`, `-WRONGPASS ...`).
    #[error("redis replied with an error: {message}")]
    Redis { message: String },
    /// Redis answered something that is not the RESP2 reply expected.
    #[error("redis protocol error: {message}")]
    Protocol { message: String },
}
