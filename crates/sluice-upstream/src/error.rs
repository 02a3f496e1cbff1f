//! The one error type of this crate.

use std::time::Duration;

/// Longest error-body excerpt kept in [`UpstreamError::Status`], in characters.
pub(crate) const MAX_BODY_CHARS: usize = 512;

/// Why a call to a tier failed. Every variant but [`UpstreamError::Init`] names the tier.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UpstreamError {
    /// The shared HTTP client could not be built.
    #[error("expected a working http client, found an initialisation error: {message}")]
    Init { message: String },

    /// The tier names an environment variable for its key, and it is unset or empty.
    #[error(
        "tier {tier}: expected an api key in environment variable {env}, found it unset or empty"
    )]
    MissingApiKey { tier: String, env: String },

    /// The request could not be built (for example, the base URL is not a URL).
    #[error("tier {tier}: expected a valid request, found: {message}")]
    Request { tier: String, message: String },

    /// No connection could be made to the tier.
    #[error("tier {tier}: expected to connect to the upstream, found: {message}")]
    Connect { tier: String, message: String },

    /// The connection broke after it was made (while sending, or reading the body).
    #[error("tier {tier}: expected a complete exchange with the upstream, found: {message}")]
    Transport { tier: String, message: String },

    /// One of the tier's time limits elapsed: `total` (the whole call, retries
    /// included), `connect` (one connection) or `read` (the gap between two chunks
    /// of a response body).
    #[error(
        "tier {tier}: expected {} within {after:?} ({what} timeout), found none in time",
        awaited(what)
    )]
    Timeout {
        tier: String,
        after: Duration,
        what: &'static str,
    },

    /// The upstream answered with a non-2xx status.
    #[error("tier {tier}: expected http status 2xx, found {status}: {body}")]
    Status {
        tier: String,
        status: u16,
        /// The response body, cut to about 512 characters.
        body: String,
        /// The `Retry-After` of a 429 or 503, when it sent a valid one.
        retry_after: Option<Duration>,
    },

    /// The upstream's answer is not what the tier's provider sends.
    #[error("tier {tier}: {message}")]
    Decode { tier: String, message: String },

    /// The call guard refused to start the call (an open circuit breaker, say);
    /// nothing was sent.
    #[error("tier {tier}: expected the tier to accept calls, found it refusing them: {reason}")]
    Rejected { tier: String, reason: String },
}

/// What each kind of [`UpstreamError::Timeout`] was waiting for.
fn awaited(what: &str) -> &'static str {
    match what {
        TIMEOUT_CONNECT => "a connection",
        TIMEOUT_READ => "the next part of the response body",
        _ => "an answer",
    }
}

/// `what` of a timeout of the whole call.
pub(crate) const TIMEOUT_TOTAL: &str = "total";
/// `what` of a timeout of one connection.
pub(crate) const TIMEOUT_CONNECT: &str = "connect";
/// `what` of a timeout between two body chunks.
pub(crate) const TIMEOUT_READ: &str = "read";

impl UpstreamError {
    /// The tier the failed call went to; empty for [`UpstreamError::Init`].
    pub fn tier(&self) -> &str {
        match self {
            UpstreamError::Init { .. } => "",
            UpstreamError::MissingApiKey { tier, .. }
            | UpstreamError::Request { tier, .. }
            | UpstreamError::Connect { tier, .. }
            | UpstreamError::Transport { tier, .. }
            | UpstreamError::Timeout { tier, .. }
            | UpstreamError::Status { tier, .. }
            | UpstreamError::Decode { tier, .. }
            | UpstreamError::Rejected { tier, .. } => tier,
        }
    }

    /// A short, fixed label for metrics: `config`, `connect`, `timeout`, `status_429`,
    /// `status_4xx`, `status_5xx`, `decode` or `rejected`.
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamError::Init { .. }
            | UpstreamError::MissingApiKey { .. }
            | UpstreamError::Request { .. } => "config",
            UpstreamError::Connect { .. } | UpstreamError::Transport { .. } => "connect",
            UpstreamError::Timeout { .. } => "timeout",
            UpstreamError::Status { status: 429, .. } => "status_429",
            UpstreamError::Status { status, .. } if *status < 500 => "status_4xx",
            UpstreamError::Status { .. } => "status_5xx",
            UpstreamError::Decode { .. } => "decode",
            UpstreamError::Rejected { .. } => "rejected",
        }
    }

    /// Whether another attempt may succeed: connection failures, timeouts,
    /// and statuses 408, 429 and 5xx. Other 4xx, bad keys and bad answers are final.
    pub fn is_retryable(&self) -> bool {
        match self {
            UpstreamError::Connect { .. }
            | UpstreamError::Transport { .. }
            | UpstreamError::Timeout { .. } => true,
            UpstreamError::Status { status, .. } => {
                matches!(status, 408 | 429) || (500..=599).contains(status)
            }
            UpstreamError::Init { .. }
            | UpstreamError::MissingApiKey { .. }
            | UpstreamError::Request { .. }
            | UpstreamError::Decode { .. }
            | UpstreamError::Rejected { .. } => false,
        }
    }

    /// How long the upstream asked to be left alone, for a 429 or 503 that said so.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            UpstreamError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Maps a reqwest failure of sending a request or reading its body; a connection
    /// that took too long is a `connect` timeout of `connect_timeout`.
    pub(crate) fn from_reqwest(
        tier: &str,
        connect_timeout: Duration,
        err: &reqwest::Error,
    ) -> Self {
        let tier = tier.to_owned();
        let message = error_chain(err);
        if err.is_builder() {
            UpstreamError::Request { tier, message }
        } else if err.is_connect() && err.is_timeout() {
            UpstreamError::Timeout {
                tier,
                after: connect_timeout,
                what: TIMEOUT_CONNECT,
            }
        } else if err.is_connect() {
            UpstreamError::Connect { tier, message }
        } else {
            UpstreamError::Transport { tier, message }
        }
    }
}

/// An error and its sources, joined with ": ", skipping repeats.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// The first `max` characters of `text`, with "…" when it was cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> UpstreamError {
        UpstreamError::Status {
            tier: "t".into(),
            status: code,
            body: String::new(),
            retry_after: None,
        }
    }

    #[test]
    fn retryable_statuses() {
        for code in [408, 429, 500, 502, 503, 504, 599] {
            assert!(status(code).is_retryable(), "{code}");
        }
        for code in [400, 401, 403, 404, 409, 422] {
            assert!(!status(code).is_retryable(), "{code}");
        }
    }

    #[test]
    fn retryable_kinds() {
        let connect = UpstreamError::Connect {
            tier: "t".into(),
            message: "refused".into(),
        };
        let decode = UpstreamError::Decode {
            tier: "t".into(),
            message: "bad".into(),
        };
        assert!(connect.is_retryable());
        assert!(!decode.is_retryable());
        assert_eq!(decode.tier(), "t");
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(truncate("héllo", 5), "héllo");
        assert_eq!(truncate("", 3), "");
    }

    #[test]
    fn timeouts_name_the_tier_and_the_limit() {
        let timeout = |what| UpstreamError::Timeout {
            tier: "big".into(),
            after: Duration::from_millis(250),
            what,
        };
        assert_eq!(
            timeout(TIMEOUT_TOTAL).to_string(),
            "tier big: expected an answer within 250ms (total timeout), found none in time"
        );
        assert_eq!(
            timeout(TIMEOUT_CONNECT).to_string(),
            "tier big: expected a connection within 250ms (connect timeout), found none in time"
        );
        assert_eq!(
            timeout(TIMEOUT_READ).to_string(),
            "tier big: expected the next part of the response body within 250ms \
             (read timeout), found none in time"
        );
        assert_eq!(timeout(TIMEOUT_READ).kind(), "timeout");
    }

    #[test]
    fn rejections_are_final_and_labelled() {
        let err = UpstreamError::Rejected {
            tier: "big".into(),
            reason: "circuit open".into(),
        };
        assert_eq!(
            err.to_string(),
            "tier big: expected the tier to accept calls, found it refusing them: circuit open"
        );
        assert_eq!(err.kind(), "rejected");
        assert_eq!(err.tier(), "big");
        assert!(!err.is_retryable());
        assert_eq!(err.retry_after(), None);
    }

    #[test]
    fn retry_after_is_exposed() {
        let err = UpstreamError::Status {
            tier: "t".into(),
            status: 429,
            body: String::new(),
            retry_after: Some(Duration::from_secs(2)),
        };
        assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
        assert_eq!(err.kind(), "status_429");
    }
}
