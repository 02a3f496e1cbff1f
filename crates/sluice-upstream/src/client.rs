//! The shared HTTP transport and its two calls, whole answers and streamed answers:
//! per-tier connect, read and total timeouts, the retry loop (jittered backoff or the
//! upstream's `Retry-After`) and the [`CallGuard`] consulted by it. What is sent and
//! how answers are read depends on the tier's provider (`crate::openai`,
//! `crate::anthropic`).

mod backoff;
mod body;
mod retry_after;
mod stream;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use sluice_policy::{Provider, Tier};
use tokio::time::Instant;
use tracing::Instrument;

use crate::error::{truncate, UpstreamError, MAX_BODY_CHARS, TIMEOUT_TOTAL};
use crate::guard::{CallGuard, NoGuard};
use crate::request::UpstreamRequest;
use crate::response::{Completion, StreamEvent};
use crate::{anthropic, openai};

pub(crate) use body::Body;
pub(crate) use stream::{Decoded, StreamDecoder};

/// Looks up an environment variable by name; `None` when unset.
pub type KeyLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Adds headers to every attempt, called inside the attempt's span (the gateway puts the
/// W3C `traceparent` of that span there).
pub type HeaderHook = Arc<dyn Fn(&mut HeaderMap) + Send + Sync>;

/// One provider-specific request, ready to send (and to send again on a retry).
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub(crate) url: String,
    /// Keys and versions; the JSON content type is added by the transport.
    pub(crate) headers: HeaderMap,
    /// The JSON body.
    pub(crate) body: Bytes,
}

/// Calls the tiers over pooled (keep-alive) HTTP clients, one per distinct connect
/// timeout. Cheap to clone; clones share the pools and the guard.
#[derive(Clone)]
pub struct UpstreamClient {
    /// HTTP clients by connect timeout (reqwest sets that limit per client).
    http: Arc<Mutex<HashMap<Duration, reqwest::Client>>>,
    key_lookup: KeyLookup,
    guard: Arc<dyn CallGuard>,
    header_hook: Option<HeaderHook>,
}

impl fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut connect_timeouts: Vec<Duration> = self.clients().keys().copied().collect();
        connect_timeouts.sort();
        f.debug_struct("UpstreamClient")
            .field("connect_timeouts", &connect_timeouts)
            .field("guard", &self.guard)
            .finish_non_exhaustive()
    }
}

impl UpstreamClient {
    /// A client that reads API keys from the process environment.
    pub fn new() -> Result<Self, UpstreamError> {
        Self::with_key_lookup(|name| std::env::var(name).ok())
    }

    /// A client that reads API keys through `lookup` (given the variable name) instead of
    /// the process environment; for tests and embedders with their own secret store.
    pub fn with_key_lookup<F>(lookup: F) -> Result<Self, UpstreamError>
    where
        F: Fn(&str) -> Option<String> + Send + Sync + 'static,
    {
        // Built now so that a broken TLS setup shows at start-up, not at the first call.
        let default = Tier::DEFAULT_CONNECT_TIMEOUT;
        let http = HashMap::from([(default, build_http(default)?)]);
        Ok(Self {
            http: Arc::new(Mutex::new(http)),
            key_lookup: Arc::new(lookup),
            guard: Arc::new(NoGuard),
            header_hook: None,
        })
    }

    /// This client with `hook` adding headers to every attempt.
    pub fn with_header_hook(mut self, hook: HeaderHook) -> Self {
        self.header_hook = Some(hook);
        self
    }

    /// This client with `guard` consulted before every attempt and told every outcome.
    pub fn with_guard(mut self, guard: Arc<dyn CallGuard>) -> Self {
        self.guard = guard;
        self
    }

    /// Non-streaming chat completion, in the tier's provider's dialect.
    ///
    /// Retries retryable failures up to `tier.retries` times with jittered exponential
    /// backoff, or after the `Retry-After` a 429 or 503 asks for; `tier.timeout` bounds
    /// the whole call, retries included, and `tier.read_timeout` each wait for more of
    /// the body.
    pub async fn chat(
        &self,
        tier: &Tier,
        req: &UpstreamRequest,
    ) -> Result<Completion, UpstreamError> {
        let prepared = &self.prepare(tier, req, false)?;
        let deadline = deadline_after(tier.timeout);
        self.with_retries(tier, deadline, || async move {
            let response = self.send(tier, prepared, deadline).await?;
            let bytes = Body::new(tier, response, deadline).read_all().await?;
            let completion = match tier.provider {
                Provider::OpenAi => openai::decode_completion(tier, &bytes),
                Provider::Anthropic => anthropic::decode_completion(tier, &bytes),
            }?;
            let span = tracing::Span::current();
            span.record("gen_ai.response.model", completion.model.as_str());
            span.record("gen_ai.usage.input_tokens", completion.usage.prompt_tokens);
            span.record(
                "gen_ai.usage.output_tokens",
                completion.usage.completion_tokens,
            );
            Ok(completion)
        })
        .await
    }

    /// Streaming chat completion (SSE), in the tier's provider's dialect.
    ///
    /// Failures before the response headers arrive (retried like [`Self::chat`]) are
    /// returned here; later ones come through the stream, which then ends. A successful
    /// stream ends with [`StreamEvent::Done`]. `tier.timeout` bounds the time to the
    /// headers and, from the same start, the whole stream; `tier.read_timeout` bounds
    /// each wait for the next chunk.
    pub async fn chat_stream(
        &self,
        tier: &Tier,
        req: &UpstreamRequest,
    ) -> Result<BoxStream<'static, Result<StreamEvent, UpstreamError>>, UpstreamError> {
        let prepared = &self.prepare(tier, req, true)?;
        let deadline = deadline_after(tier.timeout);
        let response = self
            .with_retries(tier, deadline, || self.send(tier, prepared, deadline))
            .await?;
        let decoder: Box<dyn StreamDecoder> = match tier.provider {
            Provider::OpenAi => Box::new(openai::StreamState::new(tier)),
            Provider::Anthropic => Box::new(anthropic::StreamState::new(tier)),
        };
        Ok(stream::events(
            tier,
            response,
            deadline,
            decoder,
            Arc::clone(&self.guard),
        ))
    }

    /// The request for `tier`'s provider, with its key.
    fn prepare(
        &self,
        tier: &Tier,
        req: &UpstreamRequest,
        stream: bool,
    ) -> Result<Prepared, UpstreamError> {
        let key = self.api_key(tier)?;
        let key = key.as_deref();
        match tier.provider {
            Provider::OpenAi => openai::prepare(tier, key, req, stream),
            Provider::Anthropic => anthropic::prepare(tier, key, req, stream),
        }
    }

    /// The tier's key, if it names one.
    fn api_key(&self, tier: &Tier) -> Result<Option<String>, UpstreamError> {
        let Some(env) = &tier.api_key_env else {
            return Ok(None);
        };
        match (self.key_lookup)(env) {
            Some(key) if !key.trim().is_empty() => Ok(Some(key.trim().to_owned())),
            _ => Err(UpstreamError::MissingApiKey {
                tier: tier.name.clone(),
                env: env.clone(),
            }),
        }
    }

    fn clients(&self) -> std::sync::MutexGuard<'_, HashMap<Duration, reqwest::Client>> {
        self.http.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The HTTP client whose connect timeout is `tier.connect_timeout`.
    fn http(&self, tier: &Tier) -> Result<reqwest::Client, UpstreamError> {
        let mut clients = self.clients();
        if let Some(client) = clients.get(&tier.connect_timeout) {
            return Ok(client.clone());
        }
        let client = build_http(tier.connect_timeout)?;
        clients.insert(tier.connect_timeout, client.clone());
        Ok(client)
    }

    /// One attempt: sends the request and returns the response if its status is 2xx.
    async fn send(
        &self,
        tier: &Tier,
        prepared: &Prepared,
        deadline: Instant,
    ) -> Result<reqwest::Response, UpstreamError> {
        tracing::debug!(tier = %tier.name, url = %prepared.url, "sending upstream request");
        let mut headers = prepared.headers.clone();
        if let Some(hook) = &self.header_hook {
            hook(&mut headers);
        }
        let response = self
            .http(tier)?
            .post(&prepared.url)
            .headers(headers)
            .header(CONTENT_TYPE, "application/json")
            .body(prepared.body.clone())
            .send()
            .await
            .map_err(|err| UpstreamError::from_reqwest(&tier.name, tier.connect_timeout, &err))?;
        let status = response.status();
        tracing::Span::current().record("http.response.status_code", status.as_u16());
        if status.is_success() {
            return Ok(response);
        }
        let retry_after = match status.as_u16() {
            429 | 503 => retry_after::from_headers(response.headers()),
            _ => None,
        };
        // The status is the error; a body that cannot be read just stays empty.
        let body = Body::new(tier, response, deadline)
            .read_all()
            .await
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body);
        Err(UpstreamError::Status {
            tier: tier.name.clone(),
            status: status.as_u16(),
            body: truncate(text.trim(), MAX_BODY_CHARS),
            retry_after,
        })
    }

    /// Runs `attempt` until it succeeds, fails for good, or `tier.retries` retries are
    /// spent, asking the guard first and telling it each outcome. Each attempt ends at
    /// `deadline`; a retry whose wait would end past it is not made.
    async fn with_retries<T, F, Fut>(
        &self,
        tier: &Tier,
        deadline: Instant,
        mut attempt: F,
    ) -> Result<T, UpstreamError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, UpstreamError>>,
    {
        self.guard
            .admit(tier)
            .map_err(|reason| UpstreamError::Rejected {
                tier: tier.name.clone(),
                reason,
            })?;
        // Dropped before the first outcome (the caller left): give the admission back.
        let mut admitted = Admitted {
            guard: self.guard.as_ref(),
            tier,
            pending: true,
        };
        let mut retry = 0;
        loop {
            let span = attempt_span(tier, retry);
            let outcome = tokio::time::timeout_at(deadline, attempt().instrument(span.clone()))
                .await
                .unwrap_or_else(|_| Err(total_timeout(tier)));
            if let Err(e) = &outcome {
                span.record("otel.status_code", "ERROR");
                span.record("error.type", e.kind());
            }
            drop(span);
            admitted.pending = false;
            self.guard.record(tier, outcome.is_ok());
            let err = match outcome {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            if retry >= tier.retries || !err.is_retryable() {
                return Err(err);
            }
            let asked = err.retry_after();
            let delay = asked.unwrap_or_else(|| backoff::delay(retry));
            if Instant::now()
                .checked_add(delay)
                .is_none_or(|at| at >= deadline)
                || !self.guard.allow_retry(tier)
            {
                return Err(err);
            }
            retry += 1;
            tracing::warn!(
                tier = %tier.name,
                retry,
                of = tier.retries,
                delay_ms = delay.as_millis() as u64,
                retry_after = asked.is_some(),
                error = %err,
                "retrying upstream call"
            );
            let wait = tracing::info_span!(
                "sluice.retry_wait",
                "sluice.tier" = %tier.name,
                "sluice.retry" = retry,
                "sluice.delay_ms" = delay.as_millis() as u64,
            );
            tokio::time::sleep(delay).instrument(wait).await;
        }
    }
}

/// The span of one HTTP attempt on `tier` (a GenAI client span, `chat {model}`).
fn attempt_span(tier: &Tier, retry: u32) -> tracing::Span {
    let provider = match tier.provider {
        Provider::OpenAi => "openai",
        Provider::Anthropic => "anthropic",
    };
    tracing::info_span!(
        "sluice.tier_attempt",
        otel.name = %format!("chat {}", tier.model),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        "gen_ai.operation.name" = "chat",
        "gen_ai.provider.name" = provider,
        "gen_ai.request.model" = %tier.model,
        "gen_ai.response.model" = tracing::field::Empty,
        "gen_ai.usage.input_tokens" = tracing::field::Empty,
        "gen_ai.usage.output_tokens" = tracing::field::Empty,
        "sluice.tier" = %tier.name,
        "sluice.retry" = retry,
        "http.response.status_code" = tracing::field::Empty,
        "error.type" = tracing::field::Empty,
    )
}

/// An admission by the guard whose first outcome is not recorded yet; dropped while
/// pending, it tells the guard the call was abandoned.
struct Admitted<'a> {
    guard: &'a dyn CallGuard,
    tier: &'a Tier,
    pending: bool,
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        if self.pending {
            self.guard.abandon(self.tier);
        }
    }
}

/// An HTTP client with the shared settings and this connect timeout.
fn build_http(connect_timeout: Duration) -> Result<reqwest::Client, UpstreamError> {
    reqwest::Client::builder()
        .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_keepalive(Duration::from_secs(60))
        .connect_timeout(connect_timeout)
        .build()
        .map_err(|err| UpstreamError::Init {
            message: err.to_string(),
        })
}

/// `after` from now; a limit too large to represent is as good as none.
fn deadline_after(after: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(after)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// The tier's whole-call limit elapsed.
fn total_timeout(tier: &Tier) -> UpstreamError {
    UpstreamError::Timeout {
        tier: tier.name.clone(),
        after: tier.timeout,
        what: TIMEOUT_TOTAL,
    }
}

#[cfg(test)]
mod tests;
