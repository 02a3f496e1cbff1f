//! Reading a response body chunk by chunk, each wait bounded by the tier's read
//! timeout and all of them by the call's deadline.

use std::time::Duration;

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use sluice_policy::Tier;
use tokio::time::Instant;

use crate::error::{UpstreamError, TIMEOUT_READ, TIMEOUT_TOTAL};

/// The body of one response.
pub(crate) struct Body {
    chunks: BoxStream<'static, reqwest::Result<Bytes>>,
    tier: String,
    connect_timeout: Duration,
    read_timeout: Duration,
    timeout: Duration,
    deadline: Instant,
}

impl Body {
    /// The body of `response` from `tier`, to be read by `deadline`.
    pub(crate) fn new(tier: &Tier, response: reqwest::Response, deadline: Instant) -> Self {
        Self {
            chunks: response.bytes_stream().boxed(),
            tier: tier.name.clone(),
            connect_timeout: tier.connect_timeout,
            read_timeout: tier.read_timeout,
            timeout: tier.timeout,
            deadline,
        }
    }

    /// The next chunk; `None` at the end of the body.
    pub(crate) async fn next(&mut self) -> Result<Option<Bytes>, UpstreamError> {
        let read_by = Instant::now().checked_add(self.read_timeout);
        let (limit, after, what) = match read_by {
            Some(read_by) if read_by < self.deadline => (read_by, self.read_timeout, TIMEOUT_READ),
            _ => (self.deadline, self.timeout, TIMEOUT_TOTAL),
        };
        match tokio::time::timeout_at(limit, self.chunks.next()).await {
            Err(_) => Err(UpstreamError::Timeout {
                tier: self.tier.clone(),
                after,
                what,
            }),
            Ok(None) => Ok(None),
            Ok(Some(Ok(bytes))) => Ok(Some(bytes)),
            Ok(Some(Err(err))) => Err(UpstreamError::from_reqwest(
                &self.tier,
                self.connect_timeout,
                &err,
            )),
        }
    }

    /// The rest of the body.
    pub(crate) async fn read_all(mut self) -> Result<Vec<u8>, UpstreamError> {
        let mut all = Vec::new();
        while let Some(bytes) = self.next().await? {
            all.extend_from_slice(&bytes);
        }
        Ok(all)
    }
}
