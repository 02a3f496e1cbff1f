//! A minimal RESP2 client for the shared tier: PING, GET and SET PX over a small pool of
//! TCP connections, each operation bounded by one timeout (connecting included).
//!
//! Written here rather than taken from the `redis` crate: the gateway needs three commands,
//! a hard bound on every call and no background reconnection machinery.

mod resp;
mod url;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::CacheError;
use resp::Reply;
use url::RedisUrl;

/// Idle connections kept for reuse; more may be open while busy, the extra ones are closed.
const DEFAULT_MAX_IDLE: usize = 8;

/// A Redis client whose every call returns within its operation timeout. Clones are cheap
/// and share one connection pool.
#[derive(Clone)]
pub struct RedisClient {
    shared: Arc<Shared>,
}

struct Shared {
    url: RedisUrl,
    addr: String,
    op_timeout: Duration,
    idle: Mutex<Vec<Conn>>,
    max_idle: usize,
}

impl std::fmt::Debug for RedisClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisClient")
            .field("url", &self.shared.url)
            .field("op_timeout", &self.shared.op_timeout)
            .field("max_idle", &self.shared.max_idle)
            .finish_non_exhaustive()
    }
}

impl RedisClient {
    /// `url` like `redis://127.0.0.1:6379` (optionally `redis://:password@host:port/db` → AUTH and SELECT on connect). Parsing errors name what was wrong.
    ///
    /// Connects lazily: a Redis that is down is reported by the first call, not here.
    pub fn new(url: &str, op_timeout: Duration) -> Result<Self, CacheError> {
        let url = url::parse(url)?;
        Ok(Self::build(url, op_timeout, DEFAULT_MAX_IDLE))
    }

    /// Keeps at most `max_idle` idle connections (default 8). Starts a new pool: call it
    /// before cloning the client.
    pub fn with_max_idle(self, max_idle: usize) -> Self {
        Self::build(self.shared.url.clone(), self.shared.op_timeout, max_idle)
    }

    fn build(url: RedisUrl, op_timeout: Duration, max_idle: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                addr: url.addr(),
                url,
                op_timeout,
                idle: Mutex::new(Vec::new()),
                max_idle,
            }),
        }
    }

    /// `host:port` of the server.
    pub fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// The bound on every call.
    pub fn op_timeout(&self) -> Duration {
        self.shared.op_timeout
    }

    /// Checks that the server answers.
    pub async fn ping(&self) -> Result<(), CacheError> {
        match self.call(&[b"PING"]).await? {
            Reply::Simple(s) if &s[..] == b"PONG" => Ok(()),
            other => Err(unexpected("PING", "`PONG`", &other)),
        }
    }

    /// The value under `key`, `None` if there is none.
    pub async fn get(&self, key: &[u8]) -> Result<Option<Bytes>, CacheError> {
        match self.call(&[b"GET", key]).await? {
            Reply::Bulk(value) => Ok(value),
            other => Err(unexpected("GET", "a bulk string", &other)),
        }
    }

    /// Stores `value` under `key` for `ttl`, rounded up to whole milliseconds (Redis refuses
    /// `PX 0`).
    pub async fn set_px(&self, key: &[u8], value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        let ms = px_millis(ttl).to_string();
        match self
            .call(&[b"SET", key, value, b"PX", ms.as_bytes()])
            .await?
        {
            Reply::Simple(s) if &s[..] == b"OK" => Ok(()),
            other => Err(unexpected("SET", "`OK`", &other)),
        }
    }

    /// Sends one command and reads its reply within the operation timeout. An error reply
    /// becomes [`CacheError::Redis`].
    async fn call(&self, args: &[&[u8]]) -> Result<Reply, CacheError> {
        match tokio::time::timeout(self.shared.op_timeout, self.call_unbounded(args)).await {
            Ok(Ok(Reply::Error(message))) => Err(CacheError::Redis { message }),
            Ok(result) => result,
            // The connection in flight was dropped with the future: never reused half-read.
            Err(_) => Err(CacheError::Timeout {
                addr: self.shared.addr.clone(),
                after: self.shared.op_timeout,
            }),
        }
    }

    async fn call_unbounded(&self, args: &[&[u8]]) -> Result<Reply, CacheError> {
        loop {
            let (mut conn, reused) = match self.take_idle() {
                Some(conn) => (conn, true),
                None => (
                    Conn::open(&self.shared.url, &self.shared.addr).await?,
                    false,
                ),
            };
            match conn.call(args, &self.shared.addr).await {
                Ok(reply) => {
                    self.put_idle(conn);
                    return Ok(reply);
                }
                // An idle connection may have been closed by the server (restart, idle
                // timeout) since its last use; our commands are idempotent, so try the next.
                Err(e @ CacheError::Io { .. }) if reused => {
                    tracing::debug!(error = %e, "dropping a stale redis connection");
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn take_idle(&self) -> Option<Conn> {
        self.shared
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }

    fn put_idle(&self, conn: Conn) {
        // Leftover bytes would mean the stream is out of step with our requests.
        if !conn.buf.is_empty() {
            return;
        }
        let mut idle = self
            .shared
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.shared.max_idle {
            idle.push(conn);
        }
    }
}

/// `ttl` in whole milliseconds, rounded up and at least 1.
fn px_millis(ttl: Duration) -> u128 {
    ttl.as_nanos().div_ceil(1_000_000).max(1)
}

fn unexpected(command: &str, expected: &str, found: &Reply) -> CacheError {
    CacheError::Protocol {
        message: format!(
            "expected {expected} in reply to {command}, found {}",
            found.kind()
        ),
    }
}

/// One connection and the bytes read from it but not yet parsed.
#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    buf: BytesMut,
}

impl Conn {
    /// Connects, then authenticates and selects the database if the URL asks for it.
    async fn open(url: &RedisUrl, addr: &str) -> Result<Self, CacheError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| io_error(addr, "cannot connect", &e))?;
        // Requests are single small writes awaiting a reply: do not let Nagle delay them.
        stream
            .set_nodelay(true)
            .map_err(|e| io_error(addr, "cannot set TCP_NODELAY", &e))?;
        let mut conn = Conn {
            stream,
            buf: BytesMut::with_capacity(4096),
        };
        if let Some(password) = &url.password {
            let reply = match &url.username {
                Some(user) => conn.call(&[b"AUTH", user, password], addr).await?,
                None => conn.call(&[b"AUTH", password], addr).await?,
            };
            expect_ok("AUTH", reply)?;
        }
        if url.db != 0 {
            let db = url.db.to_string();
            let reply = conn.call(&[b"SELECT", db.as_bytes()], addr).await?;
            expect_ok("SELECT", reply)?;
        }
        Ok(conn)
    }

    async fn call(&mut self, args: &[&[u8]], addr: &str) -> Result<Reply, CacheError> {
        let mut out = BytesMut::new();
        resp::encode(args, &mut out);
        self.stream
            .write_all(&out)
            .await
            .map_err(|e| io_error(addr, "cannot send a command", &e))?;
        loop {
            if let Some((reply, used)) = resp::parse(&self.buf)? {
                self.buf.advance(used);
                return Ok(reply);
            }
            self.buf.reserve(8192);
            let n = self
                .stream
                .read_buf(&mut self.buf)
                .await
                .map_err(|e| io_error(addr, "cannot read a reply", &e))?;
            if n == 0 {
                return Err(CacheError::Io {
                    addr: addr.to_owned(),
                    message: "connection closed by the server before a full reply".into(),
                });
            }
        }
    }
}

fn expect_ok(command: &str, reply: Reply) -> Result<(), CacheError> {
    match reply {
        Reply::Simple(s) if &s[..] == b"OK" => Ok(()),
        Reply::Error(message) => Err(CacheError::Redis { message }),
        other => Err(unexpected(command, "`OK`", &other)),
    }
}

fn io_error(addr: &str, what: &str, e: &std::io::Error) -> CacheError {
    CacheError::Io {
        addr: addr.to_owned(),
        message: format!("{what}: {e}"),
    }
}

#[cfg(test)]
mod tests;
