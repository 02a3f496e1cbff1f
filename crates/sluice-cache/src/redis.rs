//! The shared tier's Redis client: the `redis` crate's connection manager (one multiplexed
//! connection, reconnected in the background), TLS for `rediss://`, AUTH from the URL or from
//! the options, and one bound on every call so that a down or hung Redis costs a request at
//! most that long.

mod url;

use std::time::Duration;

use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, RedisError, Script, TlsCertificates};

use crate::error::CacheError;

/// Reconnection attempts the manager makes after the connection dropped, before the next
/// call starts over; each is bounded by the operation timeout.
const RECONNECT_RETRIES: usize = 2;

/// How to reach Redis beyond its URL.
#[derive(Clone, Default)]
pub struct RedisOptions {
    /// The bound on every call, connecting included.
    pub op_timeout: Duration,
    /// User name for AUTH when the URL has none (Redis 6 ACL users).
    pub username: Option<String>,
    /// Password for AUTH when the URL has none (kept out of command lines and process lists).
    pub password: Option<String>,
    /// PEM certificates to trust for `rediss://` instead of the built-in web roots (a private
    /// CA, as managed Redis services and self-hosted TLS use).
    pub ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOptions")
            .field("op_timeout", &self.op_timeout)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("ca_pem", &self.ca_pem.as_ref().map(Vec::len))
            .finish()
    }
}

/// A Redis client whose every call returns within its operation timeout. Clones are cheap
/// and share one connection.
#[derive(Clone)]
pub struct RedisClient {
    manager: ConnectionManager,
    /// `host:port`, for messages.
    addr: String,
    tls: bool,
    op_timeout: Duration,
}

impl std::fmt::Debug for RedisClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisClient")
            .field("addr", &self.addr)
            .field("tls", &self.tls)
            .field("op_timeout", &self.op_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisClient {
    /// `url` like `redis://127.0.0.1:6379` or `rediss://user:password@host:6380/2`, each call
    /// bounded by `op_timeout`. See [`open`](Self::open).
    pub fn new(url: &str, op_timeout: Duration) -> Result<Self, CacheError> {
        Self::open(
            url,
            RedisOptions {
                op_timeout,
                ..RedisOptions::default()
            },
        )
    }

    /// A client for `url` (`redis://` or `rediss://`, `[[user]:password@]host[:port][/db]`).
    /// Parsing errors name the wrong part and never echo the password. A password in the URL
    /// wins over the one in `options`.
    ///
    /// Connects lazily: a Redis that is down is reported by the first call, not here. Must be
    /// called inside a Tokio runtime (the connection manager runs a task on it).
    pub fn open(url: &str, options: RedisOptions) -> Result<Self, CacheError> {
        let parsed = url::parse(url)?;
        let bad = |message: String| CacheError::BadUrl {
            url: url::redact(url),
            message,
        };
        let mut info = url.into_connection_info().map_err(|e| bad(e.to_string()))?;
        if parsed.password.is_none() {
            let mut settings = info.redis_settings().clone();
            if let Some(user) = &options.username {
                settings = settings.set_username(user);
            }
            if let Some(password) = &options.password {
                settings = settings.set_password(password);
            }
            info = info.set_redis_settings(settings);
        }
        if parsed.tls {
            use_one_crypto_provider();
        }
        let client = match (&options.ca_pem, parsed.tls) {
            (Some(pem), true) => redis::Client::build_with_tls(
                info,
                TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            ),
            (Some(_), false) => {
                return Err(bad(
                    "a CA certificate was given but the url is not `rediss://`".into(),
                ))
            }
            (None, _) => redis::Client::open(info),
        }
        .map_err(|e| bad(e.to_string()))?;
        let bound = Some(options.op_timeout);
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(bound)
            .set_response_timeout(bound)
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_max_delay(options.op_timeout);
        let addr = parsed.addr();
        let manager = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| from_redis(&addr, options.op_timeout, e))?;
        Ok(Self {
            manager,
            addr,
            tls: parsed.tls,
            op_timeout: options.op_timeout,
        })
    }

    /// `host:port` of the server.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The bound on every call.
    pub fn op_timeout(&self) -> Duration {
        self.op_timeout
    }

    /// Checks that the server answers.
    pub async fn ping(&self) -> Result<(), CacheError> {
        let reply: String = self.run(&redis::cmd("PING")).await?;
        match reply.as_str() {
            "PONG" => Ok(()),
            other => Err(CacheError::Protocol {
                message: format!("expected `PONG` in reply to PING, found `{other}`"),
            }),
        }
    }

    /// The value under `key`, `None` if there is none.
    pub async fn get(&self, key: &[u8]) -> Result<Option<Bytes>, CacheError> {
        let value: Option<Vec<u8>> = self.run(redis::cmd("GET").arg(key)).await?;
        Ok(value.map(Bytes::from))
    }

    /// Stores `value` under `key` for `ttl`, rounded up to whole milliseconds (Redis refuses
    /// `PX 0`).
    pub async fn set_px(&self, key: &[u8], value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        let ms = px_millis(ttl);
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(value).arg("PX").arg(ms);
        let () = self.run(&cmd).await?;
        Ok(())
    }

    /// Runs a Lua script atomically on the server (EVALSHA, loading it on first use), within
    /// the operation timeout.
    pub async fn eval<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        keys: &[&[u8]],
        args: &[i64],
    ) -> Result<T, CacheError> {
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(*key);
        }
        for arg in args {
            invocation.arg(*arg);
        }
        let mut conn = self.manager.clone();
        match tokio::time::timeout(self.op_timeout, invocation.invoke_async(&mut conn)).await {
            Ok(result) => result.map_err(|e| from_redis(&self.addr, self.op_timeout, e)),
            Err(_) => Err(self.timed_out()),
        }
    }

    /// Sends one command and reads its reply within the operation timeout.
    async fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, CacheError> {
        let mut conn = self.manager.clone();
        match tokio::time::timeout(self.op_timeout, cmd.query_async(&mut conn)).await {
            Ok(result) => result.map_err(|e| from_redis(&self.addr, self.op_timeout, e)),
            Err(_) => Err(self.timed_out()),
        }
    }

    fn timed_out(&self) -> CacheError {
        CacheError::Timeout {
            addr: self.addr.clone(),
            after: self.op_timeout,
        }
    }
}

/// rustls panics at the first handshake when more than one crypto provider is compiled in
/// (the dependency graph brings both ring and aws-lc-rs) and none was chosen: choose
/// aws-lc-rs for the process unless something already chose.
fn use_one_crypto_provider() {
    // `Err` means a provider is already installed, which is all that is needed.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// `ttl` in whole milliseconds, rounded up and at least 1.
fn px_millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_nanos().div_ceil(1_000_000).max(1)).unwrap_or(u64::MAX)
}

/// The crate's error as ours: the server's own error replies (`NOAUTH …`, `WRONGPASS …`)
/// keep their code first, as Redis sends them.
fn from_redis(addr: &str, op_timeout: Duration, e: RedisError) -> CacheError {
    if e.is_timeout() {
        return CacheError::Timeout {
            addr: addr.to_owned(),
            after: op_timeout,
        };
    }
    if e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() {
        return CacheError::Io {
            addr: addr.to_owned(),
            message: e.to_string(),
        };
    }
    if e.kind() == redis::ErrorKind::AuthenticationFailed {
        return CacheError::Redis {
            message: format!("authentication failed: {e}"),
        };
    }
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => CacheError::Redis {
            message: format!("{code} {detail}"),
        },
        (Some(code), None) => CacheError::Redis {
            message: code.to_owned(),
        },
        _ => CacheError::Protocol {
            message: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests;
