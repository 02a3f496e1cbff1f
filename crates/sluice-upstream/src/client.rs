//! The shared HTTP client and its two calls: whole answers and streamed answers.

mod backoff;
mod stream;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use sluice_policy::Tier;
use tokio::time::Instant;

use crate::error::{truncate, UpstreamError, MAX_BODY_CHARS};
use crate::request::{UpstreamRequest, WireRequest};
use crate::response::{decode_completion, Completion, StreamEvent};

/// Looks up an environment variable by name; `None` when unset.
pub type KeyLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Calls OpenAI-compatible tiers over one shared, pooled (keep-alive) HTTP client.
/// Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct UpstreamClient {
    http: reqwest::Client,
    key_lookup: KeyLookup,
}

impl fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamClient")
            .field("http", &self.http)
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
        let http = reqwest::Client::builder()
            .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_keepalive(Duration::from_secs(60))
            .build()
            .map_err(|err| UpstreamError::Init {
                message: err.to_string(),
            })?;
        Ok(Self {
            http,
            key_lookup: Arc::new(lookup),
        })
    }

    /// Non-streaming chat completion against `POST {tier.base_url}/v1/chat/completions`.
    ///
    /// Retries retryable failures up to `tier.retries` times with jittered exponential
    /// backoff; `tier.timeout` bounds the whole call, retries included.
    pub async fn chat(
        &self,
        tier: &Tier,
        req: &UpstreamRequest,
    ) -> Result<Completion, UpstreamError> {
        let key = self.api_key(tier)?;
        let key = key.as_deref();
        let body = &WireRequest::new(&tier.model, req, false);
        let deadline = Instant::now() + tier.timeout;
        let call = self.with_retries(tier, deadline, || async move {
            let response = self.send(tier, key, body).await?;
            let bytes = response
                .bytes()
                .await
                .map_err(|err| UpstreamError::from_reqwest(&tier.name, &err))?;
            decode_completion(tier, &bytes)
        });
        tokio::time::timeout_at(deadline, call)
            .await
            .unwrap_or_else(|_| Err(timeout(tier)))
    }

    /// Streaming chat completion (SSE, `stream: true`, `stream_options.include_usage`).
    ///
    /// Failures before the response headers arrive (retried like [`Self::chat`]) are
    /// returned here; later ones come through the stream, which then ends. A successful
    /// stream ends with [`StreamEvent::Done`]. `tier.timeout` bounds the time to the
    /// headers and, from the same start, the whole stream.
    pub async fn chat_stream(
        &self,
        tier: &Tier,
        req: &UpstreamRequest,
    ) -> Result<BoxStream<'static, Result<StreamEvent, UpstreamError>>, UpstreamError> {
        let key = self.api_key(tier)?;
        let key = key.as_deref();
        let body = &WireRequest::new(&tier.model, req, true);
        let deadline = Instant::now() + tier.timeout;
        let call = self.with_retries(tier, deadline, || self.send(tier, key, body));
        let response = tokio::time::timeout_at(deadline, call)
            .await
            .unwrap_or_else(|_| Err(timeout(tier)))?;
        Ok(stream::events(tier, response, deadline))
    }

    /// The tier's bearer key, if it names one.
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

    /// One attempt: sends the request and returns the response if its status is 2xx.
    async fn send(
        &self,
        tier: &Tier,
        key: Option<&str>,
        body: &WireRequest<'_>,
    ) -> Result<reqwest::Response, UpstreamError> {
        let url = format!(
            "{}/v1/chat/completions",
            tier.base_url.trim_end_matches('/')
        );
        tracing::debug!(tier = %tier.name, %url, "sending chat completion request");
        let mut request = self.http.post(url).json(body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request
            .send()
            .await
            .map_err(|err| UpstreamError::from_reqwest(&tier.name, &err))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        // The status is the error; a body that cannot be read just stays empty.
        let text = response.text().await.unwrap_or_default();
        Err(UpstreamError::Status {
            tier: tier.name.clone(),
            status: status.as_u16(),
            body: truncate(text.trim(), MAX_BODY_CHARS),
        })
    }

    /// Runs `attempt` until it succeeds, fails for good, or `tier.retries` retries are
    /// spent. A retry whose backoff would end past `deadline` is not made.
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
        let mut retry = 0;
        loop {
            let err = match attempt().await {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            if retry >= tier.retries || !err.is_retryable() {
                return Err(err);
            }
            let delay = backoff::delay(retry);
            if Instant::now() + delay >= deadline {
                return Err(err);
            }
            retry += 1;
            tracing::warn!(
                tier = %tier.name,
                retry,
                of = tier.retries,
                delay_ms = delay.as_millis() as u64,
                error = %err,
                "retrying upstream call"
            );
            tokio::time::sleep(delay).await;
        }
    }
}

fn timeout(tier: &Tier) -> UpstreamError {
    UpstreamError::Timeout {
        tier: tier.name.clone(),
        after: tier.timeout,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::tests::tier;

    #[test]
    fn api_key_comes_from_the_lookup() {
        let client =
            UpstreamClient::with_key_lookup(|name| (name == "SET").then(|| " sk-1 ".to_owned()))
                .unwrap();
        let mut tier = tier();
        assert_eq!(client.api_key(&tier).unwrap(), None);

        tier.api_key_env = Some("SET".into());
        assert_eq!(client.api_key(&tier).unwrap().as_deref(), Some("sk-1"));

        tier.api_key_env = Some("UNSET".into());
        let err = client.api_key(&tier).unwrap_err();
        assert_eq!(
            err.to_string(),
            "tier big: expected an api key in environment variable UNSET, found it unset or empty"
        );
    }

    #[test]
    fn empty_key_is_missing() {
        let client = UpstreamClient::with_key_lookup(|_| Some(String::new())).unwrap();
        let mut tier = tier();
        tier.api_key_env = Some("EMPTY".into());
        assert!(matches!(
            client.api_key(&tier),
            Err(UpstreamError::MissingApiKey { .. })
        ));
    }
}
